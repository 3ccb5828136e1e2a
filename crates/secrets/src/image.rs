//! Secrets in images: every layer's files (deleted and overwritten versions too), and the config.

use customs_oci::{EntryKind, EntryMeta, FsView, HiddenBy, ImageConfig, Interest};
use serde::Serialize;

use crate::scanner::{Finding, Scanner};

/// Files larger than this are not read (a note says so).
pub const MAX_FILE_BYTES: u64 = 32 << 20;

/// An [`Interest`] that scans each file as it streams by and keeps only its findings.
pub struct SecretInterest<'a> {
    /// The scanner.
    pub scanner: &'a Scanner,
    /// Layers below this index are not read (`--skip-base-layers`).
    pub first_layer: usize,
}

impl Interest for SecretInterest<'_> {
    fn wants(&self, entry: &EntryMeta) -> Option<u64> {
        (entry.layer >= self.first_layer && self.scanner.reads(entry.path)).then_some(self.scanner.max_file_bytes())
    }

    fn keep(&self, entry: &EntryMeta, bytes: &[u8]) -> Option<Vec<u8>> {
        let found = self.scanner.scan_content(entry.path, bytes);
        (!found.is_empty()).then(|| serde_json::to_vec(&found).expect("findings serialize"))
    }
}

/// Where in the image a secret is.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct ImageFinding {
    /// The finding.
    #[serde(flatten)]
    pub finding: Finding,
    /// The layer holding the file (`None` for the image config).
    pub layer: Option<usize>,
    /// That layer's build step.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    /// `deleted` or `overwritten` when a later layer hid the file: it still ships in the image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hidden: Option<String>,
    /// The layer that hid it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hidden_in: Option<usize>,
}

/// The number of layers that belong to the base image, read from the history:
/// everything up to the first `CMD`/`ENTRYPOINT`, when more steps follow it.
pub fn base_layer_count(config: &ImageConfig) -> Option<usize> {
    let steps = &config.history;
    let first = steps.iter().position(|h| {
        h.created_by
            .as_deref()
            .is_some_and(|c| c.contains("CMD") || c.contains("ENTRYPOINT"))
    })?;
    if first + 1 >= steps.len() {
        return None;
    }
    Some(steps[..=first].iter().filter(|h| !h.empty_layer).count())
}

/// Collects the findings kept in `view` (visible and hidden files) and scans the config.
pub fn image_findings(view: &FsView, config: &ImageConfig, scanner: &Scanner, first_layer: usize) -> Vec<ImageFinding> {
    // Build commands can hold the very secret reported: print them redacted.
    let created_by = |l: usize| view.layers.get(l).and_then(|i| i.created_by.as_deref()).map(|c| scanner.redact(c));
    let decode = |bytes: &[u8]| serde_json::from_slice::<Vec<Finding>>(bytes).unwrap_or_default();
    let mut out = Vec::new();
    // A hard link shares its target's bytes (and the findings the target's path was scanned under): report them
    // once, at the target while it is there, else at the link.
    let via_link = |e: &customs_oci::FileEntry| match &e.kind {
        EntryKind::Hardlink(target) => Some(view.get(target).is_some_and(|t| t.content.is_some())),
        _ => None,
    };
    for e in view.files().filter(|e| e.layer >= first_layer) {
        if via_link(e) == Some(true) {
            continue;
        }
        if let Some(c) = &e.content {
            let relinked = via_link(e).is_some();
            out.extend(
                decode(c)
                    .into_iter()
                    .map(|mut finding| {
                        if relinked {
                            finding.path = e.path.clone();
                        }
                        finding
                    })
                    .map(|finding| ImageFinding {
                        finding,
                        layer: Some(e.layer),
                        created_by: created_by(e.layer),
                        hidden: None,
                        hidden_in: None,
                    }),
            );
        }
    }
    for h in view.hidden().iter().filter(|h| h.entry.layer >= first_layer) {
        if via_link(&h.entry) == Some(true) {
            continue;
        }
        if let Some(c) = &h.entry.content {
            let how = match h.by {
                HiddenBy::Whiteout => "deleted",
                HiddenBy::Overwrite => "overwritten",
            };
            out.extend(decode(c).into_iter().map(|finding| ImageFinding {
                finding,
                layer: Some(h.entry.layer),
                created_by: created_by(h.entry.layer),
                hidden: Some(how.to_string()),
                hidden_in: Some(h.hidden_in),
            }));
        }
    }
    let mut in_config = |origin: String, text: &str| {
        out.extend(scanner.scan_text(&origin, text).into_iter().map(|finding| ImageFinding {
            finding,
            layer: None,
            created_by: None,
            hidden: None,
            hidden_in: None,
        }));
    };
    if let Some(rc) = &config.config {
        for (i, env) in rc.env.iter().enumerate() {
            in_config(format!("config:env[{i}]"), env);
        }
        // Labels, the entrypoint and the command ship in the image config just as ENV does.
        for (name, value) in &rc.labels {
            in_config(format!("config:label[{name}]"), &format!("{name}={value}"));
        }
        if !rc.entrypoint.is_empty() {
            in_config("config:entrypoint".into(), &rc.entrypoint.join(" "));
        }
        if !rc.cmd.is_empty() {
            in_config("config:cmd".into(), &rc.cmd.join(" "));
        }
    }
    for (i, h) in config.history.iter().enumerate() {
        if let Some(cmd) = &h.created_by {
            in_config(format!("config:history[{i}]"), cmd);
        }
    }
    out
}
