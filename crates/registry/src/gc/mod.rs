//! Garbage collection: untagged manifests (by policy), blob links no manifest uses, blobs no repository links,
//! uploads abandoned past their time to live and staging objects left by crashes.
//!
//! A run plans from what the database and storage hold, then sweeps with deletes that re-check the plan's
//! condition row by row ([`store`]). It is safe beside pushes, on any number of replicas, without a lock:
//! - a push claims a blob (touching its `blobs` row) before the bytes become visible and links it after, and
//!   the collector deletes only blobs unlinked and untouched for the grace period; a push that finds a blob
//!   being deleted waits for the delete to finish and stores it again;
//! - a manifest push touches every link and child manifest it refers to in the transaction that stores it,
//!   so a link or manifest it relies on is either collected before (the push is refused, nothing is lost) or
//!   not at all;
//! - manifests are deleted parents first (an index before its children, a subject before its referrers) and a
//!   repository's manifest sweep stops at the first one that was tagged or touched meanwhile, so nothing
//!   a kept manifest needs is deleted;
//! - a client's `HEAD` of a blob before pushing the manifest that uses it refreshes an old link.

pub(crate) mod store;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use globset::GlobMatcher;
use serde::{Deserialize, Serialize};

use crate::audit::AuditEvent;
use crate::digest::Digest;
use crate::meta::{MetaError, MetaStore, now_ms};
use crate::storage::{BlobStore, StorageError, StoredObject};
use store::GcStore;

/// `[gc]` in `registry.toml`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GcConfig {
    /// Run on a schedule in the server (`customs registry gc` runs it on demand either way).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Time between scheduled runs (`24h`); the first runs one interval after start.
    #[serde(default = "default_interval")]
    pub interval: String,
    /// How long anything new or relied on is left alone (`1h`): at least the longest a client takes between
    /// checking a blob and pushing the manifest that uses it.
    #[serde(default = "default_grace")]
    pub grace: String,
    /// Uploads untouched this long are abandoned (`24h`): their session and staged bytes are removed.
    #[serde(default = "default_upload_ttl")]
    pub upload_ttl: String,
    /// Deletion of untagged manifests; off without this table.
    pub untagged: Option<UntaggedConfig>,
}

/// `[gc.untagged]`: which untagged manifests are deleted.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UntaggedConfig {
    /// Untagged and untouched for this long (`14d`).
    pub after: String,
    /// In these repositories (patterns as in grants); all by default.
    #[serde(default = "all_repositories")]
    pub repositories: Vec<String>,
}

fn yes() -> bool {
    true
}
fn default_interval() -> String {
    "24h".into()
}
fn default_grace() -> String {
    "1h".into()
}
fn default_upload_ttl() -> String {
    "24h".into()
}
fn all_repositories() -> Vec<String> {
    vec!["**".into()]
}

impl Default for GcConfig {
    fn default() -> Self {
        GcConfig {
            enabled: true,
            interval: default_interval(),
            grace: default_grace(),
            upload_ttl: default_upload_ttl(),
            untagged: None,
        }
    }
}

/// What a run collects, checked from [`GcConfig`] (or built directly by tests).
#[derive(Clone, Debug)]
pub struct GcSettings {
    /// Left alone when touched more recently than this.
    pub grace: std::time::Duration,
    /// Uploads untouched this long are abandoned.
    pub upload_ttl: std::time::Duration,
    /// Untagged manifests older than this, in repositories matching the patterns, are deleted.
    pub untagged: Option<(std::time::Duration, Vec<GlobMatcher>)>,
    /// Time between scheduled runs; `None` when the server does not schedule them.
    pub interval: Option<std::time::Duration>,
}

fn span(what: &str, text: &str) -> Result<std::time::Duration, String> {
    crate::protect::setting_duration("[gc]", what, text)
}

impl GcSettings {
    /// Checks the config; an error names the setting.
    pub fn from_config(config: &GcConfig) -> Result<GcSettings, String> {
        let grace = span("grace", &config.grace)?;
        if grace < std::time::Duration::from_secs(1) {
            return Err("[gc] grace must be at least 1s (a push's claim protects its blob for this long)".into());
        }
        let upload_ttl = span("upload_ttl", &config.upload_ttl)?.max(grace);
        let interval = span("interval", &config.interval)?;
        if config.enabled && interval < std::time::Duration::from_secs(1) {
            return Err("[gc] interval must be positive (or set enabled = false)".into());
        }
        let untagged = config
            .untagged
            .as_ref()
            .map(|u| {
                let after = span("untagged.after", &u.after)?.max(grace);
                let matchers = crate::access::repository_matchers(&u.repositories).map_err(|e| format!("[gc.untagged] {e}"))?;
                Ok::<_, String>((after, matchers))
            })
            .transpose()?;
        Ok(GcSettings {
            grace,
            upload_ttl,
            untagged,
            interval: config.enabled.then_some(interval),
        })
    }
}

/// A run that could not complete, with what failed.
#[derive(Debug, thiserror::Error)]
pub enum GcError {
    /// The database failed.
    #[error(transparent)]
    Meta(#[from] MetaError),
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Why an object of upload staging is collected.
#[derive(Clone, Debug, PartialEq, Eq)]
enum StagingOwner {
    /// Its upload session no longer exists.
    NoUpload,
    /// It belongs to an abandoned upload collected in the same run.
    StaleUpload,
}

/// How a blob came to be collected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BlobCase {
    /// Its row is live but nothing links it.
    Unlinked,
    /// An earlier run marked it and did not finish.
    Unfinished,
    /// Stored with no row and no link (a crash between storing and linking, before this registry version).
    Orphan,
}

/// What a run will delete, found from the database and storage as they stood.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    /// Unix ms the plan was made at.
    pub made_at: i64,
    /// Untagged manifests, per repository, parents first.
    manifests: BTreeMap<String, Vec<String>>,
    /// Links `(repository, digest, size, only used by a manifest deleted in this run)`.
    links: Vec<(String, String, u64, bool)>,
    /// Blobs `(digest, size, case)`.
    blobs: Vec<(String, u64, BlobCase)>,
    /// Abandoned uploads, by id.
    uploads: Vec<String>,
    /// Staging objects.
    staging: Vec<(StoredObject, StagingOwner)>,
    /// Repositories left out of link collection, with why.
    pub skipped: Vec<String>,
    cutoff: i64,
    untagged_cutoff: i64,
    upload_cutoff: i64,
}

/// What a run deleted (or, dry, would delete).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct GcReport {
    /// Nothing was deleted: this is what would be.
    pub dry_run: bool,
    /// Untagged manifests deleted, as `repository@digest`.
    pub manifests: Vec<String>,
    /// Blob links removed.
    pub links: u64,
    /// Blobs deleted.
    pub blobs: u64,
    /// Their bytes.
    pub blob_bytes: u64,
    /// Abandoned uploads removed.
    pub uploads: u64,
    /// Staging objects removed (parts, assembled copies, unfinished writes).
    pub staging_objects: u64,
    /// Their bytes.
    pub staging_bytes: u64,
    /// What the plan had and the sweep left alone because a push relied on it meanwhile.
    pub kept_by_pushes: u64,
    /// Repositories left out of link collection, with why.
    pub skipped: Vec<String>,
}

impl GcReport {
    /// Bytes reclaimed (or reclaimable).
    pub fn bytes(&self) -> u64 {
        self.blob_bytes + self.staging_bytes
    }

    /// One line for logs and the audit record.
    pub fn summary(&self) -> String {
        format!(
            "{}{} untagged manifests, {} blob links, {} blobs ({} bytes), {} abandoned uploads, {} staging objects ({} bytes); {} kept because a push relied on them meanwhile{}",
            if self.dry_run { "would delete " } else { "deleted " },
            self.manifests.len(),
            self.links,
            self.blobs,
            self.blob_bytes,
            self.uploads,
            self.staging_objects,
            self.staging_bytes,
            self.kept_by_pushes,
            if self.skipped.is_empty() {
                String::new()
            } else {
                format!("; skipped: {}", self.skipped.join("; "))
            }
        )
    }

    /// The audit records of a run: one per deleted manifest and a summary.
    pub fn audit_events(&self, principal: &str) -> Vec<AuditEvent> {
        let mut events: Vec<AuditEvent> = self
            .manifests
            .iter()
            .filter_map(|m| m.split_once('@'))
            .map(|(repository, digest)| AuditEvent {
                principal: principal.into(),
                action: "gc.delete".into(),
                repository: repository.into(),
                reference: digest.into(),
                result: "allowed".into(),
                detail: "untagged manifest past [gc.untagged] after".into(),
                ..AuditEvent::default()
            })
            .collect();
        events.push(AuditEvent {
            principal: principal.into(),
            action: "gc".into(),
            result: "allowed".into(),
            detail: self.summary(),
            ..AuditEvent::default()
        });
        events
    }
}

fn ms(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Called with a blob's digest between marking it and deleting its bytes ([`Collector::after_marking`]).
pub type MarkHook = std::sync::Arc<dyn Fn(&str) + Send + Sync>;

/// The collector over one registry's database and storage.
#[derive(Clone)]
pub struct Collector {
    store: GcStore,
    blobs: BlobStore,
    settings: GcSettings,
    after_marking: Option<MarkHook>,
}

/// A manifest's place in its repository's graph.
struct Node {
    tagged: bool,
    recent: bool,
    children: Vec<String>,
    subject: Option<String>,
    blobs: Vec<String>,
}

impl Collector {
    /// A collector with these settings.
    pub fn new(meta: MetaStore, blobs: BlobStore, settings: GcSettings) -> Collector {
        Collector {
            store: GcStore::new(meta),
            blobs,
            settings,
            after_marking: None,
        }
    }

    /// Calls `hook` with each blob's digest once it is marked for deletion and before its bytes go: lets a
    /// test hold the collector there while a push of the same blob runs.
    #[doc(hidden)]
    pub fn after_marking(mut self, hook: MarkHook) -> Collector {
        self.after_marking = Some(hook);
        self
    }

    /// Plans, then sweeps (or with `dry_run` reports the plan).
    pub async fn run(&self, dry_run: bool) -> Result<GcReport, GcError> {
        let plan = self.plan().await?;
        if dry_run { Ok(plan.report()) } else { self.sweep(&plan).await }
    }

    /// Finds what is garbage now, as if each deletion of the plan succeeds in order.
    pub async fn plan(&self) -> Result<Plan, GcError> {
        let made_at = now_ms();
        let cutoff = made_at - ms(self.settings.grace);
        let mut plan = Plan {
            made_at,
            cutoff,
            untagged_cutoff: self.settings.untagged.as_ref().map_or(i64::MIN, |(after, _)| made_at - ms(*after)),
            upload_cutoff: made_at - ms(self.settings.upload_ttl),
            ..Plan::default()
        };
        let mut linked: HashSet<String> = HashSet::new();
        for repository in self.store.meta().repositories().await? {
            self.plan_repository(&repository, &mut plan, &mut linked).await?;
        }
        // Blobs: rows nothing will link; objects with no row at all.
        let rows = self.store.blob_rows().await?;
        let known: HashSet<&str> = rows.iter().map(|r| r.digest.as_str()).collect();
        for row in &rows {
            if row.deleting {
                plan.blobs.push((row.digest.clone(), row.size, BlobCase::Unfinished));
            } else if row.touched_at < cutoff && !linked.contains(&row.digest) {
                plan.blobs.push((row.digest.clone(), row.size, BlobCase::Unlinked));
            }
        }
        for (digest, object) in self.blobs.list_blobs().await? {
            let digest = digest.to_string();
            if !known.contains(digest.as_str()) && !linked.contains(&digest) && object.modified_ms < cutoff {
                plan.blobs.push((digest, object.size, BlobCase::Orphan));
            }
        }
        // Uploads and their staging.
        let uploads = self.store.uploads().await?;
        let stale: HashSet<&str> = uploads
            .iter()
            .filter(|u| u.touched_at < plan.upload_cutoff)
            .map(|u| u.id.as_str())
            .collect();
        let live: HashSet<&str> = uploads.iter().map(|u| u.id.as_str()).collect();
        plan.uploads = uploads
            .iter()
            .filter(|u| stale.contains(u.id.as_str()))
            .map(|u| u.id.clone())
            .collect();
        for object in self.blobs.list_staging().await? {
            let Some(id) = object.upload_id() else { continue };
            let owner = if stale.contains(id) {
                StagingOwner::StaleUpload
            } else if !live.contains(id) && object.modified_ms < cutoff {
                StagingOwner::NoUpload
            } else {
                continue;
            };
            plan.staging.push((object, owner));
        }
        Ok(plan)
    }

    /// Plans one repository's untagged manifests and links; adds the links that stay to `linked`.
    async fn plan_repository(&self, repository: &str, plan: &mut Plan, linked: &mut HashSet<String>) -> Result<(), GcError> {
        let manifests = self.store.manifests(repository).await?;
        let tagged: HashSet<String> = self.store.meta().tagged_digests(repository).await?.into_iter().collect();
        let mut nodes: HashMap<String, Node> = HashMap::new();
        let mut unreadable = Vec::new();
        for m in manifests {
            let info = match crate::manifest::inspect(Some(&m.media_type), &m.content) {
                Ok(info) => info,
                Err(e) => {
                    unreadable.push(format!("{}: {e}", m.digest));
                    continue;
                }
            };
            nodes.insert(
                m.digest.clone(),
                Node {
                    tagged: tagged.contains(&m.digest),
                    recent: m.touched_at >= plan.untagged_cutoff,
                    children: info.manifests.iter().map(Digest::to_string).collect(),
                    subject: info.subject,
                    blobs: info.blobs.iter().map(Digest::to_string).collect(),
                },
            );
        }
        let applies = self
            .settings
            .untagged
            .as_ref()
            .is_some_and(|(_, matchers)| matchers.iter().any(|m| m.is_match(repository)));
        let doomed = if applies && unreadable.is_empty() {
            doomed_in_order(&nodes)
        } else {
            Vec::new()
        };
        let doomed_set: HashSet<&str> = doomed.iter().map(String::as_str).collect();
        let links = self.store.links(repository).await?;
        if !unreadable.is_empty() {
            // A manifest that cannot be read may use any blob: keep every link of the repository.
            plan.skipped
                .push(format!("{repository}: unreadable manifests ({})", unreadable.join("; ")));
            linked.extend(links.into_iter().map(|(digest, _, _)| digest));
            return Ok(());
        }
        let mut used: HashSet<&str> = HashSet::new();
        let mut used_by_doomed: HashSet<&str> = HashSet::new();
        for (digest, node) in &nodes {
            let set = if doomed_set.contains(digest.as_str()) {
                &mut used_by_doomed
            } else {
                &mut used
            };
            set.extend(node.blobs.iter().map(String::as_str));
        }
        for (digest, size, linked_at) in links {
            if used.contains(digest.as_str()) || linked_at >= plan.cutoff {
                linked.insert(digest);
            } else {
                let via_doomed = used_by_doomed.contains(digest.as_str());
                plan.links.push((repository.to_string(), digest, size, via_doomed));
            }
        }
        if !doomed.is_empty() {
            plan.manifests.insert(repository.to_string(), doomed);
        }
        Ok(())
    }

    /// Deletes what the plan found, re-checking each item (see the module documentation).
    pub async fn sweep(&self, plan: &Plan) -> Result<GcReport, GcError> {
        let mut report = GcReport {
            skipped: plan.skipped.clone(),
            ..GcReport::default()
        };
        let mut stopped: BTreeSet<&str> = BTreeSet::new();
        for (repository, digests) in &plan.manifests {
            for digest in digests {
                if self
                    .store
                    .delete_untagged_manifest(repository, digest, plan.untagged_cutoff)
                    .await?
                {
                    report.manifests.push(format!("{repository}@{digest}"));
                } else {
                    // Tagged or used meanwhile: what it keeps must stay, so this repository waits a run.
                    report.kept_by_pushes += 1;
                    stopped.insert(repository);
                    break;
                }
            }
        }
        for (repository, digest, _, via_doomed) in &plan.links {
            if *via_doomed && stopped.contains(repository.as_str()) {
                continue;
            }
            if self.store.unlink_if_stale(repository, digest, plan.cutoff).await? {
                report.links += 1;
            } else {
                report.kept_by_pushes += 1;
            }
        }
        for (digest, size, case) in &plan.blobs {
            let claimed = match case {
                BlobCase::Unfinished => true,
                BlobCase::Unlinked => self.store.mark_deleting(digest, plan.cutoff).await?,
                BlobCase::Orphan => self.store.claim_orphan(digest, *size).await?,
            };
            if !claimed {
                report.kept_by_pushes += 1;
                continue;
            }
            if let Some(hook) = &self.after_marking {
                hook(digest);
            }
            let Ok(parsed) = digest.parse::<Digest>() else {
                self.store.forget_blob(digest).await?;
                continue;
            };
            let deleted = self.blobs.delete_blob(&parsed).await?;
            self.store.forget_blob(digest).await?;
            if deleted {
                report.blobs += 1;
                report.blob_bytes += size;
            }
        }
        let mut ended: HashSet<&str> = HashSet::new();
        let mut counted: HashSet<String> = HashSet::new();
        for id in &plan.uploads {
            match self.store.end_stale_upload(id, plan.upload_cutoff).await? {
                Some(parts) => {
                    report.uploads += 1;
                    for part in &parts {
                        let object = StoredObject {
                            key: part.key.clone(),
                            size: part.size,
                            modified_ms: 0,
                        };
                        self.blobs.delete_staging(&object).await?;
                        if counted.insert(object.key) {
                            report.staging_objects += 1;
                            report.staging_bytes += part.size;
                        }
                    }
                    ended.insert(id);
                }
                None => report.kept_by_pushes += 1,
            }
        }
        for (object, owner) in &plan.staging {
            let Some(id) = object.upload_id() else { continue };
            let collect = match owner {
                StagingOwner::StaleUpload => ended.contains(id),
                // Upload ids are random: one that did not exist at the plan never will.
                StagingOwner::NoUpload => self.store.meta().upload(id).await?.is_none(),
            };
            if collect && !counted.contains(&object.key) {
                self.blobs.delete_staging(object).await?;
                report.staging_objects += 1;
                report.staging_bytes += object.size;
            }
        }
        Ok(report)
    }

    /// How old a link may get before a client's check of it refreshes it: half the grace period.
    pub fn refresh_links_after_ms(&self) -> i64 {
        ms(self.settings.grace) / 2
    }

    /// Time between scheduled runs, when the server schedules them.
    pub fn interval(&self) -> Option<std::time::Duration> {
        self.settings.interval
    }
}

impl Plan {
    /// The plan as a dry run's report.
    pub fn report(&self) -> GcReport {
        let manifests = self
            .manifests
            .iter()
            .flat_map(|(repository, digests)| digests.iter().map(move |d| format!("{repository}@{d}")))
            .collect();
        let staging: Vec<&StoredObject> = self.staging.iter().map(|(o, _)| o).collect();
        GcReport {
            dry_run: true,
            manifests,
            links: self.links.len() as u64,
            blobs: self.blobs.len() as u64,
            blob_bytes: self.blobs.iter().map(|(_, size, _)| size).sum(),
            uploads: self.uploads.len() as u64,
            staging_objects: staging.len() as u64,
            staging_bytes: staging.iter().map(|o| o.size).sum(),
            kept_by_pushes: 0,
            skipped: self.skipped.clone(),
        }
    }
}

/// The untagged, old manifests nothing kept needs, ordered so that whatever could keep one (an index listing
/// it, its subject) comes before it. Kept: tagged or recent manifests, the children of kept indexes, the
/// referrers of kept subjects. Manifests caught in a cycle of keepers (only contrived content makes one) stay.
fn doomed_in_order(nodes: &HashMap<String, Node>) -> Vec<String> {
    let mut referrers: HashMap<&str, Vec<&str>> = HashMap::new();
    for (digest, node) in nodes {
        if let Some(subject) = &node.subject {
            referrers.entry(subject.as_str()).or_default().push(digest);
        }
    }
    let mut kept: HashSet<&str> = HashSet::new();
    let mut queue: Vec<&str> = nodes
        .iter()
        .filter(|(_, n)| n.tagged || n.recent)
        .map(|(d, _)| d.as_str())
        .collect();
    while let Some(digest) = queue.pop() {
        if !kept.insert(digest) {
            continue;
        }
        if let Some(node) = nodes.get(digest) {
            queue.extend(node.children.iter().map(String::as_str).filter(|c| nodes.contains_key(*c)));
        }
        if let Some(list) = referrers.get(digest) {
            queue.extend(list.iter().copied());
        }
    }
    // Keepers of each doomed manifest among the doomed: indexes listing it, and its subject.
    let doomed: BTreeSet<&str> = nodes.keys().map(String::as_str).filter(|d| !kept.contains(d)).collect();
    let mut keepers: BTreeMap<&str, usize> = doomed.iter().map(|d| (*d, 0)).collect();
    let mut kept_by: HashMap<&str, Vec<&str>> = HashMap::new();
    for &digest in &doomed {
        let node = &nodes[digest];
        for child in node.children.iter().map(String::as_str).filter(|c| doomed.contains(c)) {
            *keepers.get_mut(child).expect("doomed") += 1;
            kept_by.entry(digest).or_default().push(child);
        }
        if let Some(subject) = node.subject.as_deref().filter(|s| doomed.contains(s)) {
            *keepers.get_mut(digest).expect("doomed") += 1;
            kept_by.entry(subject).or_default().push(digest);
        }
    }
    let mut ready: Vec<&str> = keepers.iter().filter(|(_, n)| **n == 0).map(|(d, _)| *d).collect();
    let mut order = Vec::new();
    while let Some(digest) = ready.pop() {
        order.push(digest.to_string());
        for &next in kept_by.get(digest).map(Vec::as_slice).unwrap_or_default() {
            let n = keepers.get_mut(next).expect("doomed");
            *n -= 1;
            if *n == 0 {
                ready.push(next);
            }
        }
    }
    order
}

/// The server's scheduled collection: every interval, a run whose deletions are audited and counted.
pub(crate) async fn run_scheduled(registry: &crate::server::Registry, collector: Collector) {
    let Some(interval) = collector.interval() else {
        return;
    };
    loop {
        tokio::time::sleep(interval).await;
        collect(registry, &collector).await;
    }
}

/// One audited, counted run in the server.
pub(crate) async fn collect(registry: &crate::server::Registry, collector: &Collector) {
    use crate::metrics::{KindLabels, OutcomeLabels};
    match collector.run(false).await {
        Ok(report) => {
            registry
                .metrics
                .gc_runs
                .get_or_create(&OutcomeLabels { outcome: "completed" })
                .inc();
            for (kind, n) in [
                ("manifest", report.manifests.len() as u64),
                ("link", report.links),
                ("blob", report.blobs),
                ("upload", report.uploads),
                ("staging", report.staging_objects),
            ] {
                registry.metrics.gc_deleted.get_or_create(&KindLabels { kind }).inc_by(n);
            }
            registry.metrics.gc_reclaimed_bytes.inc_by(report.bytes());
            tracing::info!("garbage collection: {}", report.summary());
            for event in report.audit_events("registry") {
                registry.record(event);
            }
        }
        Err(e) => {
            registry.metrics.gc_runs.get_or_create(&OutcomeLabels { outcome: "failed" }).inc();
            tracing::error!("garbage collection failed: {e}; the next run starts over");
            registry.record(AuditEvent {
                principal: "registry".into(),
                action: "gc".into(),
                result: "error".into(),
                detail: e.to_string(),
                ..AuditEvent::default()
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(tagged: bool, children: &[&str], subject: Option<&str>) -> Node {
        Node {
            tagged,
            recent: false,
            children: children.iter().map(|c| c.to_string()).collect(),
            subject: subject.map(str::to_string),
            blobs: Vec::new(),
        }
    }

    #[test]
    fn keepers_come_first_and_kept_manifests_keep_what_they_need() {
        let nodes: HashMap<String, Node> = [
            ("index", node(false, &["amd64", "arm64"], None)),
            ("amd64", node(false, &[], None)),
            ("arm64", node(false, &[], None)),
            ("sig", node(false, &[], Some("index"))),
            ("tagged", node(true, &["shared"], None)),
            ("shared", node(false, &[], None)),
            ("tagged-sig", node(false, &[], Some("tagged"))),
        ]
        .into_iter()
        .map(|(d, n)| (d.to_string(), n))
        .collect();
        let order = doomed_in_order(&nodes);
        let position = |d: &str| order.iter().position(|o| o == d);
        assert_eq!(order.len(), 4, "{order:?}");
        assert!(position("index") < position("amd64") && position("index") < position("arm64"));
        assert!(position("index") < position("sig"), "a subject goes before its referrers");
        for kept in ["tagged", "shared", "tagged-sig"] {
            assert_eq!(position(kept), None, "{kept} is kept");
        }
    }

    #[test]
    fn a_cycle_of_keepers_is_left_alone() {
        // An index whose subject is its own child: each keeps the other.
        let nodes: HashMap<String, Node> = [("index", node(false, &["child"], Some("child"))), ("child", node(false, &[], None))]
            .into_iter()
            .map(|(d, n)| (d.to_string(), n))
            .collect();
        assert!(doomed_in_order(&nodes).is_empty());
    }

    #[test]
    fn settings_are_checked() {
        let mut config = GcConfig::default();
        assert!(GcSettings::from_config(&config).is_ok());
        config.grace = "0s".into();
        assert!(GcSettings::from_config(&config).unwrap_err().contains("grace"));
        config.grace = "1h".into();
        config.untagged = Some(UntaggedConfig {
            after: "1m".into(),
            repositories: vec!["[".into()],
        });
        assert!(GcSettings::from_config(&config).unwrap_err().contains("[gc.untagged]"));
    }
}
