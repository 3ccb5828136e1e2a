//! `customs registry dependents`: the images built on a base, read from the registry's metadata database on the
//! machine that runs it (like the identity and scan commands).

use std::process::ExitCode;

use anyhow::{Context, Result};
use customs_registry::RegistryConfig;
use customs_registry::meta::MetaStore;

/// `REPOSITORY:TAG` or `REPOSITORY@DIGEST` → (repository, digest, tag), for any stored manifest (a base may be an
/// index; `registry scans` narrows to images).
pub(crate) async fn resolve(meta: &MetaStore, reference: &str) -> Result<(String, String, Option<String>)> {
    if let Some((repository, digest)) = reference.split_once('@') {
        meta.manifest(repository, digest)
            .await?
            .with_context(|| format!("{reference} does not exist in this registry"))?;
        return Ok((repository.to_string(), digest.to_string(), None));
    }
    let (repository, tag) = reference
        .rsplit_once(':')
        .filter(|(repository, tag)| !tag.contains('/') && !repository.is_empty())
        .with_context(|| format!("{reference}: write REPOSITORY:TAG or REPOSITORY@DIGEST"))?;
    let digest = meta
        .resolve_tag(repository, tag)
        .await?
        .with_context(|| format!("{reference} does not exist in this registry"))?;
    Ok((repository.to_string(), digest, Some(tag.to_string())))
}

/// Prints the tagged images built on `reference`'s image (by its layers or by their base annotations).
pub(crate) fn dependents(config: &RegistryConfig, reference: &str, format: &str) -> Result<ExitCode> {
    crate::registry::runtime()?.block_on(async {
        let meta = MetaStore::open(&config.database.path).await?;
        let (repository, digest, tag) = resolve(&meta, reference).await?;
        let found = customs_registry::lineage::dependents(&meta, &repository, &digest, tag.as_deref())
            .await
            .map_err(anyhow::Error::msg)?;
        if format == "json" {
            let doc = serde_json::json!({
                "base": {"repository": repository, "tag": tag, "digest": digest},
                "dependents": found,
            });
            println!("{}", serde_json::to_string_pretty(&doc)?);
            return Ok(ExitCode::SUCCESS);
        }
        eprintln!(
            "{} image(s) built on {reference} ({digest}){}",
            found.len(),
            if tag.is_some() { " or an earlier image of the tag" } else { "" }
        );
        println!(
            "{:<30} {:<20} {:<73} {:<10} {:<7} PUSHED",
            "REPOSITORY", "TAGS", "DIGEST", "FOUND BY", "CURRENT"
        );
        for d in &found {
            println!(
                "{:<30} {:<20} {:<73} {:<10} {:<7} {}",
                d.lineage.repository,
                d.tags.join(","),
                d.lineage.digest,
                d.lineage.base_source.as_deref().unwrap_or("-"),
                if d.base_current { "yes" } else { "no" },
                d.lineage.recorded_at
            );
        }
        Ok(ExitCode::SUCCESS)
    })
}
