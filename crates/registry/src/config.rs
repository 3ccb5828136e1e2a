//! `registry.toml`: listen address, TLS, storage, database, token settings, audit log, groups and grants.
//! Relative paths are resolved against the config file's directory.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::access::{AccessPolicy, Action, Grant};

/// The whole config file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryConfig {
    /// Listener settings.
    #[serde(default)]
    pub server: ServerConfig,
    /// Certificate and key; required unless the server runs with `--insecure-dev`.
    pub tls: Option<TlsConfig>,
    /// Where blobs and upload staging live.
    #[serde(default)]
    pub storage: StorageConfig,
    /// Metadata database.
    #[serde(default)]
    pub database: DatabaseConfig,
    /// Token settings.
    #[serde(default)]
    pub auth: AuthConfig,
    /// Audit log.
    #[serde(default)]
    pub audit: AuditConfig,
    /// Lockout after repeated failed logins.
    #[serde(default)]
    pub lockout: crate::lockout::LockoutConfig,
    /// Anomaly detection thresholds (pull spikes, bursts of refusals, repository sweeps).
    #[serde(default)]
    pub anomaly: crate::anomaly::AnomalyConfig,
    /// Request rate limits per principal, address and repository pattern.
    #[serde(default)]
    pub rate_limits: crate::rate_limit::RateLimitConfig,
    /// Static groups: name to member principals (more can be added with `customs registry group add`).
    #[serde(default)]
    pub groups: BTreeMap<String, BTreeSet<String>>,
    /// The authorization matrix rows.
    #[serde(default, rename = "grant")]
    pub grants: Vec<GrantConfig>,
    /// Scan on push; off without a `[scanning]` section.
    pub scanning: Option<crate::scanning::ScanningConfig>,
    /// Protection rules: which repositories refuse pulls of failing images.
    #[serde(default, rename = "protect")]
    pub protect: Vec<crate::protect::ProtectConfig>,
    /// Webhooks: who is told about pushes, scans, verdict changes, blocked pulls and base-image updates.
    #[serde(default, rename = "webhook")]
    pub webhooks: Vec<crate::webhooks::WebhookConfig>,
    /// The pinned trust root, for `require_signature` rules.
    pub trust: Option<crate::signatures::TrustConfig>,
    /// Garbage collection: schedule, grace period, upload time to live, untagged manifests.
    #[serde(default)]
    pub gc: crate::gc::GcConfig,
}

/// `[server]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Token realm URL; by default `https://<Host header>/token`.
    pub realm: Option<String>,
    /// Service name in tokens and challenges.
    #[serde(default = "default_service")]
    pub service: String,
    /// Largest manifest accepted, in bytes (Distribution uses 4 MiB).
    #[serde(default = "default_manifest_limit")]
    pub max_manifest_bytes: usize,
    /// Largest blob accepted, in bytes.
    #[serde(default = "default_blob_limit")]
    pub max_blob_bytes: u64,
    /// Who may read `/metrics`: `authenticated` (any principal's basic credentials or token, the default),
    /// `public` (anyone who reaches the port), or a list of principal names.
    #[serde(default)]
    pub metrics: MetricsAccess,
}

/// `[server] metrics`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum MetricsAccess {
    /// Any authenticated principal.
    #[default]
    Authenticated,
    /// Anyone.
    Public,
    /// These principals only.
    Principals(Vec<String>),
}

impl<'de> Deserialize<'de> for MetricsAccess {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Word(String),
            Names(Vec<String>),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Word(w) if w == "authenticated" => Ok(MetricsAccess::Authenticated),
            Raw::Word(w) if w == "public" => Ok(MetricsAccess::Public),
            Raw::Word(w) => Err(serde::de::Error::custom(format!(
                "metrics = \"{w}\": use \"authenticated\", \"public\" or a list of principal names"
            ))),
            Raw::Names(names) => Ok(MetricsAccess::Principals(names)),
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: default_listen(),
            realm: None,
            service: default_service(),
            max_manifest_bytes: default_manifest_limit(),
            max_blob_bytes: default_blob_limit(),
            metrics: MetricsAccess::default(),
        }
    }
}

fn default_listen() -> SocketAddr {
    "127.0.0.1:5443".parse().expect("valid address")
}
fn default_service() -> String {
    "customs-registry".into()
}
fn default_manifest_limit() -> usize {
    4 << 20
}
fn default_blob_limit() -> u64 {
    64 << 30
}

/// `[tls]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
}

/// `[storage]`: where blobs and upload parts live.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// `local` (a directory, the default), `s3` (S3 or an S3-compatible service) or `azure` (Azure Blob).
    #[serde(default)]
    pub backend: StorageBackend,
    /// Local directory for blobs and upload staging (`local`).
    #[serde(default = "default_storage_root")]
    pub root: PathBuf,
    /// Flush every completed blob to stable storage before answering (the durability S3 and GCS give).
    #[serde(default = "default_true")]
    pub fsync: bool,
    /// The S3 bucket or the Azure container (`s3`, `azure`).
    #[serde(default)]
    pub bucket: Option<String>,
    /// A key prefix inside the bucket, so several registries (or tests) can share one.
    #[serde(default)]
    pub prefix: Option<String>,
    /// `object_store` settings by their documented names: `endpoint`, `region`, `azure_storage_account_name`,
    /// `azure_storage_account_key`, `azure_client_id`, `aws_access_key_id`, `allow_http` (loopback only), …
    /// Unset ones come from the environment (`AWS_*`, `AZURE_*`), managed identity included.
    #[serde(default)]
    pub options: std::collections::BTreeMap<String, String>,
}

/// The blob store kinds.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum StorageBackend {
    /// A local (or shared) directory.
    #[default]
    Local,
    /// Amazon S3 or a compatible service.
    S3,
    /// Azure Blob Storage.
    Azure,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            backend: StorageBackend::Local,
            root: default_storage_root(),
            fsync: true,
            bucket: None,
            prefix: None,
            options: Default::default(),
        }
    }
}
fn default_true() -> bool {
    true
}
fn default_storage_root() -> PathBuf {
    "data/blobs".into()
}

/// `[database]`: an embedded SQLite file (the default), or a PostgreSQL server that several replicas share.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// SQLite file, used when `url` is not set.
    #[serde(default = "default_db_path")]
    pub path: PathBuf,
    /// `postgres://user:password@host:5432/database?sslmode=verify-full`: metadata in PostgreSQL. The password
    /// may be left out of the URL and given in `PGPASSWORD` instead.
    #[serde(default)]
    pub url: Option<String>,
    /// Connections each process keeps open at most (PostgreSQL; SQLite uses 8).
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
    /// How long one statement may run before PostgreSQL cancels it (`30s`, `2m`).
    #[serde(default = "default_statement_timeout")]
    pub statement_timeout: String,
    /// How long a request waits for a free connection before it fails.
    #[serde(default = "default_acquire_timeout")]
    pub acquire_timeout: String,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            path: default_db_path(),
            url: None,
            max_connections: default_max_connections(),
            statement_timeout: default_statement_timeout(),
            acquire_timeout: default_acquire_timeout(),
        }
    }
}
fn default_max_connections() -> u32 {
    16
}
fn default_statement_timeout() -> String {
    "30s".into()
}
fn default_acquire_timeout() -> String {
    "10s".into()
}
fn default_db_path() -> PathBuf {
    "data/registry.db".into()
}

/// `[auth]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// Lifetime of access tokens.
    #[serde(default = "default_ttl")]
    pub token_ttl_seconds: u64,
    /// File holding the token signing key; created (mode 0600) with a random key when missing.
    #[serde(default = "default_token_key")]
    pub token_key_file: PathBuf,
    /// How long a verified login is remembered, so Argon2's cost is paid once per client per period; a
    /// disabled or rotated principal's old secret works for at most this long.
    #[serde(default = "default_login_cache")]
    pub login_cache_seconds: u64,
    /// How long a login waits for one of the password-hash slots (one per core) before it is answered 429 with
    /// `Retry-After`: concurrent hashing is bounded so a storm of bogus logins cannot take memory or CPU.
    #[serde(default = "default_login_wait")]
    pub login_wait_ms: u64,
    /// Whether every user principal must log in with a second factor, enrolled or not (a user without one
    /// cannot log in until `customs registry principal totp enroll`); enrolled users always must.
    #[serde(default = "default_true")]
    pub users_require_second_factor: bool,
    /// How long a personal token (password + TOTP code at `/token/personal`) is valid.
    #[serde(default = "default_personal_token_hours")]
    pub personal_token_hours: u64,
    /// File holding the key TOTP seeds are sealed with in the database; created (mode 0600) when missing.
    #[serde(default = "default_second_factor_key")]
    pub second_factor_key_file: PathBuf,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            token_ttl_seconds: default_ttl(),
            token_key_file: default_token_key(),
            login_cache_seconds: default_login_cache(),
            login_wait_ms: default_login_wait(),
            users_require_second_factor: true,
            personal_token_hours: default_personal_token_hours(),
            second_factor_key_file: default_second_factor_key(),
        }
    }
}
fn default_login_wait() -> u64 {
    2000
}
fn default_ttl() -> u64 {
    300
}
fn default_login_cache() -> u64 {
    60
}
fn default_personal_token_hours() -> u64 {
    12
}
fn default_second_factor_key() -> PathBuf {
    "data/second-factor.key".into()
}
fn default_token_key() -> PathBuf {
    "data/token.key".into()
}

/// `[audit]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// Directory of `audit-NNNNNN.jsonl` segments.
    #[serde(default = "default_audit_dir")]
    pub dir: PathBuf,
    /// Segment size that triggers rotation.
    #[serde(default = "default_rotate")]
    pub rotate_bytes: u64,
    /// How many bytes of audit records one address may cause per minute with requests that carry no valid
    /// credentials; past it they are refused (429) until the budget refills. 0 turns the limit off.
    #[serde(default = "default_unauthenticated_budget")]
    pub unauthenticated_bytes_per_minute: u64,
    /// Signed checkpoints of the chain head, when `[audit.checkpoints]` is configured.
    #[serde(default)]
    pub checkpoints: Option<crate::checkpoint::CheckpointConfig>,
    /// `directory` (segments in `dir`) or `database` (the `[database]`, one chain for every replica)
    /// [default: `database` when `[database] url` is set, else `directory`].
    #[serde(default)]
    pub store: Option<String>,
    /// An object store URL the database chain is copied to as segments, create-only
    /// (`s3://bucket/audit`, `az://container/audit`, `file:///mnt/worm/audit`). Only with the database store.
    #[serde(default)]
    pub export: Option<String>,
    /// How often new records are exported (`1m`).
    #[serde(default = "default_export_interval")]
    pub export_interval: String,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            dir: default_audit_dir(),
            rotate_bytes: default_rotate(),
            unauthenticated_bytes_per_minute: default_unauthenticated_budget(),
            checkpoints: None,
            store: None,
            export: None,
            export_interval: default_export_interval(),
        }
    }
}
fn default_export_interval() -> String {
    "1m".into()
}
fn default_audit_dir() -> PathBuf {
    "data/audit".into()
}
fn default_unauthenticated_budget() -> u64 {
    256 << 10
}
fn default_rotate() -> u64 {
    64 << 20
}

/// `[[grant]]`: `to` may do `actions` on `repositories`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantConfig {
    /// `NAME`, `principal:NAME`, `group:NAME` or `anonymous`.
    pub to: String,
    /// Exact names or globs (`*` within a segment, `**` across).
    pub repositories: Vec<String>,
    /// `pull`, `push`, `delete`, `sign`, `admin`.
    pub actions: Vec<String>,
}

/// A config file that cannot be used, naming the file.
#[derive(Debug, thiserror::Error)]
#[error("registry config {path}: {message}")]
pub struct ConfigError {
    /// The config file.
    pub path: PathBuf,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl RegistryConfig {
    /// Reads and checks a config file; relative paths become relative to its directory.
    pub fn load(path: &Path) -> Result<RegistryConfig, ConfigError> {
        let err = |message: String| ConfigError {
            path: path.to_path_buf(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        let mut config: RegistryConfig = toml::from_str(&text).map_err(|e| err(e.to_string()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        config.resolve_paths(base);
        config.access_policy().map_err(err)?;
        config.protection().map_err(err)?;
        crate::gc::GcSettings::from_config(&config.gc).map_err(err)?;
        Ok(config)
    }

    /// Makes every relative path relative to `base`.
    pub fn resolve_paths(&mut self, base: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        if let Some(tls) = &mut self.tls {
            fix(&mut tls.cert);
            fix(&mut tls.key);
        }
        fix(&mut self.storage.root);
        if let Some(trust) = &mut self.trust {
            fix(&mut trust.root);
        }
        fix(&mut self.database.path);
        fix(&mut self.auth.token_key_file);
        fix(&mut self.auth.second_factor_key_file);
        fix(&mut self.audit.dir);
        if let Some(checkpoints) = &mut self.audit.checkpoints {
            fix(&mut checkpoints.key);
            if let Some(dir) = &mut checkpoints.dir {
                fix(dir);
            }
        }
        if let Some(scanning) = &mut self.scanning {
            fix(&mut scanning.vulnerability_db);
        }
        for hook in &mut self.webhooks {
            let file = hook
                .secret_file
                .get_or_insert_with(|| PathBuf::from(format!("data/webhooks/{}.secret", hook.name)));
            fix(file);
        }
    }

    /// The `[[protect]]` rules, checked; they need scanning on (a rule over images nobody scans would block
    /// every pull, or none).
    pub fn protection(&self) -> Result<crate::protect::Protection, String> {
        if !self.protect.is_empty() && !self.scanning.as_ref().is_some_and(|s| s.enabled) {
            return Err("[[protect]] rules need scanning: add a [scanning] section (vulnerability_db = \"...\")".into());
        }
        if self.protect.iter().any(|p| p.require_signature) && self.trust.is_none() {
            return Err("a [[protect]] rule with require_signature needs the trust root: add [trust] root = \"root.pub\" (from `customs trust init`)".into());
        }
        crate::protect::Protection::new(&self.protect)
    }

    /// Where the audit chain is kept. Replicas on PostgreSQL keep it there by default: a directory per replica
    /// would be a chain per replica, and a shared folder's file locks are not to be trusted across machines.
    pub fn audit_store(&self) -> Result<crate::audit::AuditStore, String> {
        use crate::audit::AuditStore;
        let store = match self.audit.store.as_deref() {
            None if self.database.url.is_some() => AuditStore::Database,
            None | Some("directory") => AuditStore::Directory,
            Some("database") => AuditStore::Database,
            Some(other) => return Err(format!("[audit] store = \"{other}\": expected \"directory\" or \"database\"")),
        };
        if self.audit.export.is_some() && store == AuditStore::Directory {
            return Err("[audit] export copies the database chain: set store = \"database\", or copy the \
                        directory's segments with the tools that back it up"
                .into());
        }
        Ok(store)
    }

    /// The groups and grants as an [`AccessPolicy`]; an error names the bad grant.
    pub fn access_policy(&self) -> Result<AccessPolicy, String> {
        let grants = self
            .grants
            .iter()
            .enumerate()
            .map(|(i, g)| {
                let at = |e: String| format!("grant #{} (to = \"{}\"): {e}", i + 1, g.to);
                let subject = g.to.parse().map_err(at)?;
                let actions = g
                    .actions
                    .iter()
                    .map(|a| a.parse::<Action>())
                    .collect::<Result<_, _>>()
                    .map_err(at)?;
                Grant::new(subject, g.repositories.clone(), actions).map_err(at)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(AccessPolicy::new(self.groups.clone(), grants))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_grants_and_unknown_keys_name_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("registry.toml");
        std::fs::write(&path, "[[grant]]\nto = \"sp1\"\nrepositories = [\"p1\"]\nactions = [\"write\"]\n").unwrap();
        let err = RegistryConfig::load(&path).unwrap_err().to_string();
        assert!(err.contains("grant #1") && err.contains("unknown action `write`"), "{err}");
        std::fs::write(&path, "[server]\nlisten = \"127.0.0.1:1\"\nport = 3\n").unwrap();
        let err = RegistryConfig::load(&path).unwrap_err().to_string();
        assert!(err.contains("registry.toml") && err.contains("port"), "{err}");
    }

    #[test]
    fn protection_needs_scanning_and_scanning_paths_follow_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("registry.toml");
        std::fs::write(&path, "[[protect]]\nrepositories = [\"prod/**\"]\n").unwrap();
        let err = RegistryConfig::load(&path).unwrap_err().to_string();
        assert!(err.contains("[[protect]] rules need scanning"), "{err}");
        std::fs::write(&path, "[scanning]\nenabled = false\n[[protect]]\nrepositories = [\"prod/**\"]\n").unwrap();
        assert!(RegistryConfig::load(&path).is_err(), "a rule over images nobody scans");
        std::fs::write(
            &path,
            "[scanning]\nvulnerability_db = \"db/v.sqlite\"\n[[protect]]\nrepositories = [\"prod/**\"]\n",
        )
        .unwrap();
        let config = RegistryConfig::load(&path).unwrap();
        let scanning = config.scanning.unwrap();
        assert_eq!(scanning.vulnerability_db, dir.path().join("db/v.sqlite"));
        assert_eq!(scanning.rescan_window_days, 30);
        std::fs::write(&path, "[scanning]\nworkers = 2\nwindow = 3\n").unwrap();
        let err = RegistryConfig::load(&path).unwrap_err().to_string();
        assert!(err.contains("window"), "unknown keys are refused: {err}");
    }

    #[test]
    fn relative_paths_follow_the_config_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("registry.toml");
        std::fs::write(&path, "[tls]\ncert = \"tls/c.pem\"\nkey = \"/abs/k.pem\"\n").unwrap();
        let config = RegistryConfig::load(&path).unwrap();
        let tls = config.tls.unwrap();
        assert_eq!(tls.cert, dir.path().join("tls/c.pem"));
        assert_eq!(tls.key, PathBuf::from("/abs/k.pem"));
        assert_eq!(config.database.path, dir.path().join("data/registry.db"));
    }
}
