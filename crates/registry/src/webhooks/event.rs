//! What the registry tells webhooks: the events, their CloudEvents 1.0 envelope (structured JSON mode), and the
//! Slack and Teams messages made by the gate's notifier. The schema is in `docs/registry-webhooks.md`.

use serde::Deserialize;
use serde_json::{Value, json};

use customs_policy::NotifyFormat;
use customs_vulndb::Finding;

/// The kinds of event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// A manifest was pushed (an image, index, signature or other artifact).
    Push,
    /// A manifest or tag was deleted.
    Delete,
    /// A scan stored its result.
    ScanCompleted,
    /// A scan failed for good (after its retries).
    ScanFailed,
    /// An image's verdict under its repository's policy flipped between two scans (a new advisory, a fix).
    VerdictChanged,
    /// A pull was refused by a protection rule.
    PullBlocked,
    /// A tag that other images are built on now points at a new image: they should be rebuilt.
    BaseUpdated,
    /// An alert: a lockout, a burst of refused requests, a pull spike, a principal used from a new address or
    /// sweeping repositories ([`crate::alerts`]).
    Alert(crate::alerts::AlertKind),
    /// The audit chain's head was signed ([`crate::checkpoint`]): a copy for a place the registry cannot rewrite.
    AuditCheckpoint,
}

impl EventKind {
    /// Every kind, in documentation order.
    pub const ALL: [EventKind; 13] = [
        EventKind::Push,
        EventKind::Delete,
        EventKind::ScanCompleted,
        EventKind::ScanFailed,
        EventKind::VerdictChanged,
        EventKind::PullBlocked,
        EventKind::BaseUpdated,
        EventKind::Alert(crate::alerts::AlertKind::Lockout),
        EventKind::Alert(crate::alerts::AlertKind::AuthFailures),
        EventKind::Alert(crate::alerts::AlertKind::PullSpike),
        EventKind::Alert(crate::alerts::AlertKind::NewClientIp),
        EventKind::Alert(crate::alerts::AlertKind::RepositorySweep),
        EventKind::AuditCheckpoint,
    ];

    /// As configured and in the envelope's `type` (after `customs.registry.`).
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Push => "push",
            EventKind::Delete => "delete",
            EventKind::ScanCompleted => "scan.completed",
            EventKind::ScanFailed => "scan.failed",
            EventKind::VerdictChanged => "verdict.changed",
            EventKind::PullBlocked => "pull.blocked",
            EventKind::BaseUpdated => "base.updated",
            EventKind::Alert(kind) => kind.event_type(),
            EventKind::AuditCheckpoint => "audit.checkpoint",
        }
    }

    /// Parses a configured name; `alert.*` is every alert kind.
    pub fn parse(name: &str) -> Result<Vec<EventKind>, String> {
        if name == "alert.*" {
            return Ok(EventKind::ALL.into_iter().filter(|k| matches!(k, EventKind::Alert(_))).collect());
        }
        EventKind::ALL
            .into_iter()
            .find(|k| k.as_str() == name)
            .map(|k| vec![k])
            .ok_or_else(|| {
                let names: Vec<&str> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
                format!(
                    "unknown event `{name}`; the events are {} (and alert.* for every alert)",
                    names.join(", ")
                )
            })
    }
}

/// The body shape a webhook receives.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// A CloudEvents 1.0 JSON envelope with the event in `data`.
    #[default]
    Cloudevents,
    /// A Slack incoming-webhook message.
    Slack,
    /// A Microsoft Teams incoming-webhook MessageCard.
    Teams,
}

/// What a chat message says about an event.
#[derive(Clone, Debug)]
pub enum Message {
    /// A verdict on an image, rendered like `customs gate --notify`.
    Verdict {
        /// `repository@digest`.
        image: String,
        /// Whether it passes.
        pass: bool,
        /// Why.
        reasons: Vec<String>,
        /// The findings that fail it.
        failing: Vec<Finding>,
        /// A line before the verdict (what happened: rescanned, base updated, pull blocked).
        headline: String,
    },
    /// Anything else.
    Text {
        /// One line.
        title: String,
        /// More lines.
        text: String,
        /// Green or red.
        good: bool,
    },
}

/// One event, before it is addressed to webhooks.
#[derive(Clone, Debug)]
pub struct Event {
    /// Unique id (the `webhook-id` header and the envelope's `id`; the same on every retry).
    pub id: String,
    /// What happened.
    pub kind: EventKind,
    /// The repository it is about (webhooks filter on it).
    pub repository: String,
    /// `repository@digest` or `repository:tag`.
    pub subject: String,
    /// When (RFC 3339).
    pub time: String,
    /// The event's data (documented per kind).
    pub data: Value,
    /// What chat formats say.
    pub message: Message,
}

impl Event {
    /// A new event with a fresh id.
    pub fn new(kind: EventKind, repository: &str, subject: String, time: String, data: Value, message: Message) -> Event {
        Event {
            id: uuid::Uuid::new_v4().to_string(),
            kind,
            repository: repository.to_string(),
            subject,
            time,
            data,
            message,
        }
    }

    /// The body sent to a webhook of `format`; `source` names the registry (its service name).
    pub fn body(&self, format: Format, source: &str) -> Value {
        let chat = match format {
            Format::Cloudevents => {
                return json!({
                    "specversion": "1.0",
                    "id": self.id,
                    "source": format!("customs-registry:{source}"),
                    "type": format!("customs.registry.{}", self.kind.as_str()),
                    "subject": self.subject,
                    "time": self.time,
                    "datacontenttype": "application/json",
                    "dataschema": "https://customs.dev/schemas/registry-webhook/v1",
                    "data": self.data,
                });
            }
            Format::Slack => NotifyFormat::Slack,
            Format::Teams => NotifyFormat::Teams,
        };
        match &self.message {
            Message::Verdict {
                image,
                pass,
                reasons,
                failing,
                headline,
            } => {
                let notice = customs_report::notify::Notice {
                    image,
                    pass: *pass,
                    reasons,
                    failing: failing.iter().collect(),
                };
                let mut body = customs_report::notify::payload(chat, &notice);
                let separator = if chat == NotifyFormat::Slack { "\n" } else { "<br>" };
                if let Some(Value::String(text)) = body.get_mut("text") {
                    *text = format!("{headline}{separator}{text}");
                }
                body
            }
            Message::Text { title, text, good } => customs_report::notify::chat_message(chat, title, &format!("{title}\n{text}"), *good),
        }
    }
}

/// A verdict as events carry it: pass, reasons, counts by severity of the failing findings, the first 20 of them,
/// and the secrets that fail.
pub fn verdict_json(inspection: &customs_inspect::Inspection) -> Value {
    let mut counts = serde_json::Map::new();
    for &i in &inspection.verdict.failing {
        let severity = inspection.findings[i].severity.as_str().to_string();
        let n = counts.get(&severity).and_then(Value::as_u64).unwrap_or(0);
        counts.insert(severity, json!(n + 1));
    }
    json!({
        "pass": inspection.verdict.pass,
        "reasons": inspection.verdict.reasons,
        "failing_count": inspection.verdict.failing.len(),
        "failing_by_severity": counts,
        "failing": inspection.verdict.failing.iter().take(20).map(|&i| finding_json(&inspection.findings[i])).collect::<Vec<_>>(),
        "secrets_failing": inspection.secret_failing.iter().map(|&i| {
            let s = &inspection.secrets[i].finding;
            json!({"rule_id": s.rule_id, "path": s.path})
        }).collect::<Vec<_>>(),
        "findings": inspection.findings.len(),
    })
}

impl Event {
    /// An event about an image's verdict (`scan.completed`, `verdict.changed`, `base.updated`): `data` gains
    /// `repository`, `digest` and `verdict`; chats get the gate's message after `headline`.
    pub fn about_verdict(
        kind: EventKind,
        repository: &str,
        digest: &str,
        inspection: &customs_inspect::Inspection,
        headline: String,
        mut data: Value,
        time: String,
    ) -> Event {
        data["repository"] = json!(repository);
        data["digest"] = json!(digest);
        data["verdict"] = verdict_json(inspection);
        let image = format!("{repository}@{digest}");
        let message = Message::Verdict {
            image: image.clone(),
            pass: inspection.verdict.pass,
            reasons: inspection.verdict.reasons.clone(),
            failing: inspection.verdict.failing.iter().map(|&i| inspection.findings[i].clone()).collect(),
            headline,
        };
        Event::new(kind, repository, image, time, data, message)
    }

    /// Anything else: `data` gains `repository`; chats say `title` and `text`.
    pub fn about(
        kind: EventKind,
        repository: &str,
        subject: String,
        mut data: Value,
        (title, text, good): (String, String, bool),
        time: String,
    ) -> Event {
        data["repository"] = json!(repository);
        Event::new(kind, repository, subject, time, data, Message::Text { title, text, good })
    }
}

/// A finding as events list it.
pub fn finding_json(f: &Finding) -> Value {
    json!({
        "id": f.id,
        "aliases": f.aliases,
        "severity": f.severity.as_str(),
        "package": f.package.name,
        "version": f.package.version,
        "fixed_version": f.fixed_version,
        "kev": f.kev.is_some(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_parse_and_bodies_have_their_shape() {
        assert_eq!(EventKind::parse("verdict.changed"), Ok(vec![EventKind::VerdictChanged]));
        assert_eq!(EventKind::parse("alert.*").unwrap().len(), 5);
        assert_eq!(
            EventKind::parse("alert.lockout"),
            Ok(vec![EventKind::Alert(crate::alerts::AlertKind::Lockout)])
        );
        assert!(EventKind::parse("pushed").unwrap_err().contains("base.updated"));
        let event = Event::new(
            EventKind::Push,
            "prod/app",
            "prod/app:1".into(),
            "2026-12-02T10:00:00.000000000Z".into(),
            json!({"repository": "prod/app", "tag": "1"}),
            Message::Text {
                title: "prod/app:1 pushed".into(),
                text: "by ci".into(),
                good: true,
            },
        );
        let envelope = event.body(Format::Cloudevents, "registry.example");
        assert_eq!(envelope["specversion"], "1.0");
        assert_eq!(envelope["type"], "customs.registry.push");
        assert_eq!(envelope["id"], event.id.as_str());
        assert_eq!(envelope["data"]["tag"], "1");
        assert_eq!(event.body(Format::Slack, "r")["text"], "prod/app:1 pushed\nby ci");
        let teams = event.body(Format::Teams, "r");
        assert_eq!(teams["@type"], "MessageCard");
        assert_eq!(teams["themeColor"], "2EB886");
    }
}
