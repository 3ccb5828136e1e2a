//! Object stores other than a local directory, built from `[storage]`: S3 (or an S3-compatible service) and
//! Azure Blob, through `object_store`. Credentials come from the settings or the environment (`AWS_*`,
//! `AZURE_*`; on Azure also workload and managed identity), so a key need not sit in `registry.toml`.

use std::str::FromStr;
use std::sync::Arc;

use object_store::ObjectStore;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::prefix::PrefixStore;

use crate::config::{StorageBackend, StorageConfig};

/// Whether an endpoint URL points at this machine (the only place plain HTTP is allowed: emulators in tests).
fn loopback(endpoint: &str) -> bool {
    url::Url::parse(endpoint).is_ok_and(|u| match u.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    })
}

/// Refuses plain HTTP to anything but loopback: blobs (and request signatures) travel over TLS.
fn check_http(config: &StorageConfig) -> Result<(), String> {
    let allow_http = config
        .options
        .iter()
        .any(|(k, v)| k.trim_start_matches("aws_").trim_start_matches("azure_") == "allow_http" && v.eq_ignore_ascii_case("true"));
    if !allow_http {
        return Ok(());
    }
    let mut endpoints = config
        .options
        .iter()
        .filter(|(k, _)| k.ends_with("endpoint") || k.ends_with("endpoint_url") || k.ends_with("endpoint_url_s3"))
        .map(|(_, v)| v)
        .peekable();
    if endpoints.peek().is_some() && endpoints.all(|e| loopback(e)) {
        Ok(())
    } else {
        Err("[storage] allow_http is only for an endpoint on loopback (an emulator); use https".into())
    }
}

/// The object store `[storage]` names, for the `s3` and `azure` backends.
pub fn build(config: &StorageConfig) -> Result<Arc<dyn ObjectStore>, String> {
    let bucket = config
        .bucket
        .as_deref()
        .filter(|b| !b.is_empty())
        .ok_or("[storage] bucket is required for the s3 and azure backends (the bucket or container name)")?;
    let unknown = |k: &str| format!("[storage] options: `{k}` is not an object_store setting for this backend");
    let store: Arc<dyn ObjectStore> = match config.backend {
        StorageBackend::Local => return Err("a local store is built by BlobStore::local".into()),
        StorageBackend::S3 => {
            check_http(config)?;
            let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
            for (k, v) in &config.options {
                builder = builder.with_config(AmazonS3ConfigKey::from_str(k).map_err(|_| unknown(k))?, v);
            }
            Arc::new(builder.build().map_err(|e| format!("[storage] s3: {e}"))?)
        }
        StorageBackend::Azure => {
            check_http(config)?;
            let mut builder = MicrosoftAzureBuilder::from_env().with_container_name(bucket);
            for (k, v) in &config.options {
                builder = builder.with_config(AzureConfigKey::from_str(k).map_err(|_| unknown(k))?, v);
            }
            Arc::new(builder.build().map_err(|e| format!("[storage] azure: {e}"))?)
        }
    };
    Ok(
        match config.prefix.as_deref().map(|p| p.trim_matches('/')).filter(|p| !p.is_empty()) {
            Some(prefix) => Arc::new(PrefixStore::new(store, prefix)),
            None => store,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> StorageConfig {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn settings_are_checked_and_plain_http_is_for_loopback_only() {
        let err = |text: &str| build(&config(text)).err().unwrap_or_default();
        assert!(err("backend = \"s3\"").contains("bucket is required"));
        assert!(err("backend = \"azure\"\nbucket = \"c\"\n[options]\nno_such_thing = \"1\"").contains("no_such_thing"));
        let remote_http = "backend = \"s3\"\nbucket = \"b\"\n[options]\nendpoint = \"http://s3.example.com\"\nallow_http = \"true\"";
        assert!(err(remote_http).contains("only for an endpoint on loopback"));
        let local_http = "backend = \"s3\"\nbucket = \"b\"\nprefix = \"team-a\"\n[options]\nendpoint = \"http://127.0.0.1:9000\"\n\
                          allow_http = \"true\"\nregion = \"us-east-1\"\naws_access_key_id = \"k\"\naws_secret_access_key = \"s\"";
        assert!(build(&config(local_http)).is_ok());
        assert!(loopback("http://localhost:10000/devstoreaccount1") && loopback("http://[::1]:1"));
        assert!(!loopback("http://10.0.0.1") && !loopback("not a url"));
    }
}
