//! The parts of an image config (`application/vnd.oci.image.config.v1+json`) that scanners use.
//!
//! Parsing is lenient on purpose: Docker, buildah and old registries disagree on
//! which fields may be null or missing, and a scan should not fail over that.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

use crate::digest::Digest;

/// An image config.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct ImageConfig {
    /// CPU architecture (`amd64`, `arm64`, …).
    pub architecture: Option<String>,
    /// Operating system (`linux`).
    pub os: Option<String>,
    /// CPU variant (`v8`).
    pub variant: Option<String>,
    /// When the image was built (RFC 3339).
    pub created: Option<String>,
    /// How a container of this image runs.
    pub config: Option<RuntimeConfig>,
    /// The uncompressed layer digests.
    pub rootfs: Option<RootFs>,
    /// One step per build instruction, including ones that made no layer.
    #[serde(deserialize_with = "null_as_default")]
    pub history: Vec<History>,
}

/// Run-time settings of an image.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct RuntimeConfig {
    /// The user the container runs as (`USER`).
    pub user: Option<String>,
    /// Environment variables, `NAME=value`.
    #[serde(deserialize_with = "null_as_default")]
    pub env: Vec<String>,
    /// `ENTRYPOINT`.
    #[serde(deserialize_with = "null_as_default")]
    pub entrypoint: Vec<String>,
    /// `CMD`.
    #[serde(deserialize_with = "null_as_default")]
    pub cmd: Vec<String>,
    /// `LABEL`s.
    #[serde(deserialize_with = "null_as_default")]
    pub labels: BTreeMap<String, String>,
}

/// `rootfs` of a config.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct RootFs {
    /// Digests of the uncompressed layers, base first.
    #[serde(deserialize_with = "null_as_default")]
    pub diff_ids: Vec<Digest>,
}

/// One build step.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct History {
    /// The instruction, as the builder recorded it.
    pub created_by: Option<String>,
    /// True when the step made no layer (`ENV`, `USER`, …).
    pub empty_layer: bool,
}

impl ImageConfig {
    /// The `created_by` of each layer, in layer order, skipping steps that made no layer.
    pub fn layer_history(&self) -> Vec<Option<String>> {
        self.history
            .iter()
            .filter(|h| !h.empty_layer)
            .map(|h| h.created_by.clone())
            .collect()
    }
}

fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}
