//! `customs registry gc`: garbage collection on demand, beside a running registry or not.

use std::process::ExitCode;

use anyhow::Result;
use customs_registry::RegistryConfig;
use customs_registry::audit::AuditLog;
use customs_registry::gc::{Collector, GcSettings};
use customs_registry::meta::MetaStore;
use customs_registry::storage::BlobStore;

/// Runs one collection (or with `dry_run` lists what it would delete) and prints the report.
pub(crate) fn gc(config: &RegistryConfig, dry_run: bool, format: &str) -> Result<ExitCode> {
    let settings = GcSettings::from_config(&config.gc).map_err(anyhow::Error::msg)?;
    let report = crate::registry::runtime()?.block_on(async {
        let meta = MetaStore::from_config(&config.database).await.map_err(anyhow::Error::msg)?;
        let blobs = BlobStore::from_config(&config.storage).map_err(anyhow::Error::msg)?;
        Ok::<_, anyhow::Error>(Collector::new(meta, blobs, settings).run(dry_run).await?)
    })?;
    if !dry_run {
        let log = AuditLog::from_config(config)?;
        for event in report.audit_events(&crate::registry::operator()) {
            log.append(event)?;
        }
    }
    if format == "json" {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    for manifest in &report.manifests {
        println!("{} {manifest}", if dry_run { "would delete" } else { "deleted" });
    }
    println!("{}", report.summary());
    Ok(ExitCode::SUCCESS)
}
