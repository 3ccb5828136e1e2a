//! Verdicts that change with no rescan: a repository's exceptions are set (through the API, or by
//! `customs registry exceptions set` on the registry's machine, which writes the database directly) or one of
//! them expires as the date moves. The stored scans of the repository's tagged images are judged under the old
//! and the new exceptions and dates, and each image whose verdict flips gets `verdict.changed`.

use std::collections::HashMap;

use customs_inspect::Inspection;

use crate::server::Registry;

/// What the watch saw last: the date and each repository's exceptions (exclusions.json text).
type Snapshot = (time::Date, HashMap<String, String>);

/// Compares the exceptions and the date with what it saw at its last look.
#[derive(Default)]
pub struct ExceptionWatch {
    seen: tokio::sync::Mutex<Option<Snapshot>>,
}

impl ExceptionWatch {
    /// Looks once: the first look only remembers; later ones announce every verdict that flipped since.
    /// Returns how many `verdict.changed` events were sent. Nothing is read without webhooks to tell.
    pub async fn check(&self, registry: &Registry) -> Result<usize, String> {
        let Some(scanning) = &registry.scanning else { return Ok(0) };
        if registry.webhooks.is_none() {
            return Ok(0);
        }
        let mut seen = self.seen.lock().await;
        let today = registry.clock.today();
        let now: HashMap<String, String> = scanning
            .store
            .all_exceptions()
            .await
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(|(repository, row)| (repository, row.body))
            .collect();
        let Some((then, before)) = seen.replace((today, now.clone())) else {
            return Ok(0);
        };
        let mut repositories: Vec<&String> = before.keys().chain(now.keys()).collect();
        repositories.sort();
        repositories.dedup();
        let mut sent = 0;
        for repository in repositories {
            let (old, new) = (before.get(repository), now.get(repository));
            let why = if old != new {
                "its exceptions changed"
            } else if then != today {
                "an exception expired"
            } else {
                continue;
            };
            sent += rejudge(registry, repository, (old, then), (new, today), why).await?;
        }
        Ok(sent)
    }
}

fn exceptions(registry: &Registry, repository: &str, body: Option<&String>) -> Vec<customs_policy::Exception> {
    let require_reason = registry.protection.rule_for(repository).is_some_and(|r| r.config.require_reason);
    body.and_then(|b| crate::protect::parse_exceptions(repository, b, require_reason).ok())
        .unwrap_or_default()
}

/// Judges the repository's tagged images under `before` and `after`; announces each flip.
async fn rejudge(
    registry: &Registry,
    repository: &str,
    before: (Option<&String>, time::Date),
    after: (Option<&String>, time::Date),
    why: &str,
) -> Result<usize, String> {
    let scanning = registry.scanning.as_ref().expect("checked by the caller");
    let (old, new) = (
        exceptions(registry, repository, before.0),
        exceptions(registry, repository, after.0),
    );
    let mut images = Vec::new();
    for digest in registry.meta.tagged_digests(repository).await.map_err(|e| e.to_string())? {
        let Some(row) = registry.meta.manifest(repository, &digest).await.map_err(|e| e.to_string())? else {
            continue;
        };
        images.extend(crate::scanning::images_of(&row));
    }
    images.sort();
    images.dedup();
    let mut sent = 0;
    for digest in images {
        let Some(latest) = scanning.store.latest(&digest).await.map_err(|e| e.to_string())? else {
            continue;
        };
        let Some(scan) = scanning.parsed(&latest) else { continue };
        let was = crate::protect::judge_with(&registry.protection, repository, &scan, old.clone(), before.1);
        let is = crate::protect::judge_with(&registry.protection, repository, &scan, new.clone(), after.1);
        if was.verdict.pass == is.verdict.pass {
            continue;
        }
        announce(registry, repository, &digest, &latest, &was, &is, why).await;
        sent += 1;
    }
    Ok(sent)
}

async fn announce(
    registry: &Registry,
    repository: &str,
    digest: &str,
    latest: &super::ResultRow,
    was: &Inspection,
    is: &Inspection,
    why: &str,
) {
    use crate::webhooks::{Event, EventKind};
    let verdict = |pass: bool| if pass { "pass" } else { "fail" };
    let headline = format!(
        "verdict of {repository}@{digest} changed: {} → {} ({why})",
        verdict(was.verdict.pass),
        verdict(is.verdict.pass)
    );
    let data = serde_json::json!({
        "db_version": latest.db_version,
        "reason": if why.contains("expired") { "exception-expired" } else { "exceptions" },
        "previous": {"pass": was.verdict.pass, "db_version": latest.db_version, "scanned_at": latest.finished_at,
                     "failing_count": was.verdict.failing.len()},
    });
    tracing::info!("{headline}");
    registry
        .emit(Event::about_verdict(
            EventKind::VerdictChanged,
            repository,
            digest,
            is,
            headline,
            data,
            registry.clock.now_rfc3339(),
        ))
        .await;
}
