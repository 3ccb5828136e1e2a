//! Opening images from disk: docker-archive tarballs, OCI layouts (directory or tar) and rootfs directories.

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::Deserialize;

use crate::config::ImageConfig;
use crate::digest::{Digest, VerifyingReader};
use crate::error::{Error, Result};
use crate::fs::{FsBuilder, FsView, LayerInfo};
use crate::layer::{Interest, LayerChanges, decompress, read_layer_tar};
use crate::path::normalize_entry;
use crate::registry::{MANIFEST_ACCEPT, Reference, RegistryClient, RegistryOptions};

/// Largest manifest, index or config we read into memory. Real ones are a few KiB.
const MAX_METADATA_BYTES: u64 = 16 << 20;

/// Where an image comes from, as the user wrote it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// `docker save` / `buildah push docker-archive:` output, optionally with a tag to pick.
    DockerArchive {
        /// The tarball.
        path: PathBuf,
        /// A `RepoTags` entry to pick when the archive holds several images.
        tag: Option<String>,
    },
    /// An OCI image layout, as a directory or a tar of one, optionally with a ref name to pick.
    OciLayout {
        /// The directory or tarball.
        path: PathBuf,
        /// An `org.opencontainers.image.ref.name` annotation to pick.
        reference: Option<String>,
    },
    /// An unpacked root filesystem, read as a single layer.
    Rootfs(PathBuf),
    /// An image in a registry.
    Registry(Reference),
}

impl Source {
    /// Parses `docker-archive:PATH[:TAG]`, `oci:PATH[:REF]`, `oci-archive:PATH[:REF]`, `dir:PATH`,
    /// `docker://REF` or `registry:REF`, a bare path whose kind is detected from its content,
    /// or else a bare image reference (`registry.example.com/team/app:1.0`).
    pub fn parse(spec: &str) -> Result<Source> {
        if let Some(r) = spec.strip_prefix("docker://").or_else(|| spec.strip_prefix("registry:")) {
            return r.parse().map(Source::Registry).map_err(|e| Error::invalid(spec, e));
        }
        let (transport, rest) = match spec.split_once(':') {
            Some((t @ ("docker-archive" | "oci" | "oci-archive" | "dir"), rest)) => (Some(t), rest),
            _ => (None, spec),
        };
        // `PATH:REF` only when PATH exists and the whole string does not.
        let (path, reference) = if Path::new(rest).exists() {
            (PathBuf::from(rest), None)
        } else {
            match rest.rsplit_once(':') {
                Some((p, r)) if Path::new(p).exists() && !r.contains('/') => (PathBuf::from(p), Some(r.to_string())),
                _ if transport.is_none() && !looks_like_path(rest) && rest.parse::<Reference>().is_ok() => {
                    return rest.parse().map(Source::Registry).map_err(|e| Error::invalid(spec, e));
                }
                _ => {
                    return Err(Error::invalid(
                        rest,
                        "no such file or directory; give a docker-archive tarball, an OCI layout (directory or .tar), a rootfs directory or docker://REFERENCE",
                    ));
                }
            }
        };
        match transport {
            Some("docker-archive") => Ok(Source::DockerArchive { path, tag: reference }),
            Some("oci" | "oci-archive") => Ok(Source::OciLayout { path, reference }),
            Some(_) => Ok(Source::Rootfs(path)),
            None => Source::detect(path, reference),
        }
    }

    fn detect(path: PathBuf, reference: Option<String>) -> Result<Source> {
        let shown = path.display().to_string();
        if path.is_dir() {
            return Ok(if path.join("oci-layout").is_file() || path.join("index.json").is_file() {
                Source::OciLayout { path, reference }
            } else {
                Source::Rootfs(path)
            });
        }
        let index = TarIndex::build(&path, &shown)?;
        if index.entries.contains_key("manifest.json") {
            Ok(Source::DockerArchive { path, tag: reference })
        } else if index.entries.contains_key("index.json") {
            Ok(Source::OciLayout { path, reference })
        } else {
            Err(Error::invalid(
                shown,
                "tar holds neither manifest.json (docker-archive) nor index.json (OCI layout)",
            ))
        }
    }
}

/// Paths the user surely meant as files: never reinterpreted as registry references.
fn looks_like_path(s: &str) -> bool {
    s.starts_with(['/', '.', '~']) || [".tar", ".tar.gz", ".tgz", ".oci"].iter().any(|ext| s.ends_with(ext))
}

/// How to open an image: which platform to pick and how to reach registries.
#[derive(Clone, Debug, Default)]
pub struct OpenOptions {
    /// Platform to pick from multi-platform indexes.
    pub platform: Platform,
    /// Registry access (credentials, CA, plain HTTP for loopback).
    pub registry: RegistryOptions,
}

/// An operating system and CPU architecture, as in `linux/arm64/v8`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Platform {
    /// `linux`, `windows`, …
    pub os: String,
    /// `amd64`, `arm64`, …
    pub architecture: String,
    /// `v7`, `v8`, … when it matters.
    pub variant: Option<String>,
}

impl Default for Platform {
    fn default() -> Self {
        Platform {
            os: "linux".into(),
            architecture: "amd64".into(),
            variant: None,
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

impl FromStr for Platform {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut parts = s.split('/');
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(os), Some(arch), variant, None) if !os.is_empty() && !arch.is_empty() => Ok(Platform {
                os: os.into(),
                architecture: arch.into(),
                variant: variant.map(String::from),
            }),
            _ => Err(format!("invalid platform {s:?}: expected OS/ARCH[/VARIANT], e.g. linux/arm64/v8")),
        }
    }
}

impl Platform {
    fn matches(&self, other: &PlatformJson) -> bool {
        let norm = |arch: &str, v: Option<&str>| -> Option<String> {
            // arm64 has one variant in practice; treat a missing one as v8.
            match (arch, v) {
                ("arm64", None) => Some("v8".into()),
                (_, v) => v.map(String::from),
            }
        };
        self.os == other.os
            && self.architecture == other.architecture
            && (self.variant.is_none()
                || norm(&self.architecture, self.variant.as_deref()) == norm(&other.architecture, other.variant.as_deref()))
    }
}

/// A layer blob of an image, with what is known about it.
#[derive(Clone, Debug)]
pub struct LayerBlob {
    /// Digests and history.
    pub info: LayerInfo,
    /// The descriptor's media type, when there is one.
    pub media_type: Option<String>,
    /// The descriptor's size, when there is one.
    pub size: Option<u64>,
    /// Where the blob lives inside the source.
    location: String,
}

/// An opened image: its config and layers, ready to be read.
#[derive(Debug)]
pub struct Image {
    /// The source, as given.
    pub name: String,
    /// Digest of the manifest, when the source has one.
    pub manifest_digest: Option<Digest>,
    /// Digest of the config blob.
    pub config_digest: Option<Digest>,
    /// The config (empty for a rootfs).
    pub config: ImageConfig,
    /// Tags the source records for this image.
    pub tags: Vec<String>,
    /// The layers, base first.
    pub layers: Vec<LayerBlob>,
    store: BlobStore,
}

#[derive(Debug)]
enum BlobStore {
    Dir(PathBuf),
    Tar(TarIndex),
    Rootfs(PathBuf),
    Registry(RegistryClient),
    Custom(std::sync::Arc<dyn BlobSource>),
}

/// Blobs and manifests by digest, wherever they are kept: what a registry implements over its own storage so
/// that scanning a pushed image reads the stored bytes directly, with no HTTP round trip to itself.
pub trait BlobSource: Send + Sync + fmt::Debug {
    /// Opens the blob (a config or layer) with this digest as a stream. The reader verifies the digest.
    fn open_blob(&self, digest: &Digest) -> std::io::Result<Box<dyn Read + Send>>;
    /// The manifest or index with this digest, as stored.
    fn manifest(&self, digest: &Digest) -> std::io::Result<Vec<u8>>;
}

impl BlobStore {
    /// Where a manifest or index with this digest lives.
    fn manifest_location(&self, d: &Digest) -> String {
        match self {
            BlobStore::Registry(_) | BlobStore::Custom(_) => format!("manifests/{d}"),
            _ => blob_location(d),
        }
    }

    /// Opens a stored object (blob, manifest, layout file) as a stream.
    fn open(&self, location: &str, input: &str) -> Result<Box<dyn Read + Send>> {
        Ok(match self {
            BlobStore::Dir(root) => Box::new(File::open(root.join(location)).map_err(|e| Error::io(input, e))?),
            BlobStore::Tar(index) => Box::new(index.open(location, input)?),
            BlobStore::Rootfs(_) => return Err(Error::invalid(input, "a rootfs directory has no blobs")),
            BlobStore::Registry(client) => match location.strip_prefix("manifests/") {
                Some(target) => Box::new(client.get(&format!("manifests/{target}"), MANIFEST_ACCEPT)?.into_reader()),
                None => {
                    let digest =
                        digest_from_blob_path(location).ok_or_else(|| Error::invalid(input, format!("not a blob path: {location}")))?;
                    client.blob(&digest.to_string())?
                }
            },
            BlobStore::Custom(source) => {
                let io = |e| Error::io(input, e);
                match location.strip_prefix("manifests/") {
                    Some(target) => {
                        let digest = target.parse::<Digest>().map_err(|e| Error::invalid(input, e.to_string()))?;
                        Box::new(std::io::Cursor::new(source.manifest(&digest).map_err(io)?))
                    }
                    None => {
                        let digest =
                            digest_from_blob_path(location).ok_or_else(|| Error::invalid(input, format!("not a blob path: {location}")))?;
                        source.open_blob(&digest).map_err(io)?
                    }
                }
            }
        })
    }
}

impl Image {
    /// Opens the image `spec` names (see [`Source::parse`]) for `platform`, with default registry access.
    pub fn open(spec: &str, platform: &Platform) -> Result<Image> {
        Image::open_with(
            spec,
            &OpenOptions {
                platform: platform.clone(),
                ..OpenOptions::default()
            },
        )
    }

    /// Opens the image `spec` names (see [`Source::parse`]).
    pub fn open_with(spec: &str, options: &OpenOptions) -> Result<Image> {
        Image::from_source(Source::parse(spec)?, options)
    }

    /// Opens an image from a parsed source.
    pub fn from_source(source: Source, options: &OpenOptions) -> Result<Image> {
        let platform = &options.platform;
        match source {
            Source::DockerArchive { path, tag } => open_docker_archive(&path, tag.as_deref()),
            Source::OciLayout { path, reference } => open_oci_layout(&path, reference.as_deref(), platform),
            Source::Registry(reference) => open_registry(reference, options),
            Source::Rootfs(path) => Ok(Image {
                name: path.display().to_string(),
                manifest_digest: None,
                config_digest: None,
                config: ImageConfig::default(),
                tags: Vec::new(),
                layers: vec![LayerBlob {
                    info: LayerInfo {
                        index: 0,
                        digest: None,
                        diff_id: None,
                        created_by: None,
                    },
                    media_type: None,
                    size: None,
                    location: String::new(),
                }],
                store: BlobStore::Rootfs(path),
            }),
        }
    }

    /// Opens the image a stored manifest (or index, resolved for `platform`) describes, reading manifests and
    /// blobs from `source`. `name` is how reports name the image (`registry.example.com/team/app:1.0`).
    pub fn from_blob_source(
        source: std::sync::Arc<dyn BlobSource>,
        name: String,
        manifest: &Digest,
        tags: Vec<String>,
        platform: &Platform,
    ) -> Result<Image> {
        let store = BlobStore::Custom(source);
        let input = format!("{name}: manifest {manifest}");
        let bytes = read_small(&store, &store.manifest_location(manifest), Some(manifest), &input)?;
        image_from_manifest(store, name, bytes, manifest.clone(), tags, platform)
    }

    /// Reads every layer once, verifying digests, and merges them into a filesystem view.
    ///
    /// Layers are read on all cores; only files `interest` wants are kept in memory.
    pub fn filesystem(&self, interest: &dyn Interest) -> Result<FsView> {
        self.filesystem_with_progress(interest, &NoProgress)
    }

    /// The compressed size of all layers, when every descriptor gives one (what [`Progress`] counts up to).
    pub fn layer_bytes(&self) -> Option<u64> {
        self.layers.iter().map(|l| l.size).sum()
    }

    /// [`Image::filesystem`], telling `progress` how many bytes of each layer blob have been read.
    pub fn filesystem_with_progress(&self, interest: &dyn Interest, progress: &dyn Progress) -> Result<FsView> {
        let read_one = |layer: &LayerBlob| {
            let changes = self.read_layer(layer, interest, progress);
            progress.layer_done(layer.info.index);
            changes
        };
        let mut results: Vec<Result<LayerChanges>> = Vec::with_capacity(self.layers.len());
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(self.layers.len())
            .max(1);
        if threads == 1 {
            results.extend(self.layers.iter().map(read_one));
        } else {
            // Hand layers out biggest-first is not possible without sizes; round-robin is fine.
            let mut slots: Vec<Option<Result<LayerChanges>>> = (0..self.layers.len()).map(|_| None).collect();
            let next = std::sync::atomic::AtomicUsize::new(0);
            let done = std::sync::Mutex::new(&mut slots);
            std::thread::scope(|s| {
                for _ in 0..threads {
                    s.spawn(|| {
                        loop {
                            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            let Some(layer) = self.layers.get(i) else { break };
                            let r = read_one(layer);
                            done.lock().expect("no thread panics while holding the lock")[i] = Some(r);
                        }
                    });
                }
            });
            results.extend(slots.into_iter().map(|r| r.expect("every layer was read")));
        }
        let mut builder = FsBuilder::new();
        let mut oversized = Vec::new();
        for (layer, changes) in self.layers.iter().zip(results) {
            let changes = changes?;
            builder.begin_layer(layer.info.clone());
            for w in changes.warnings {
                builder.warn(w);
            }
            oversized.extend(
                changes
                    .oversized
                    .into_iter()
                    .map(|(path, size, limit)| (layer.info.index, path, size, limit)),
            );
            for c in changes.changes {
                builder.apply(c);
            }
            builder.finish_layer();
        }
        if let Some(w) = oversized_warning(&self.name, &oversized) {
            builder.warn(w);
        }
        Ok(builder.build())
    }

    fn layer_name(&self, layer: &LayerBlob) -> String {
        match &layer.info.digest {
            Some(d) => format!("{} layer {} ({d})", self.name, layer.info.index),
            None => format!("{} layer {}", self.name, layer.info.index),
        }
    }

    fn read_layer(&self, layer: &LayerBlob, interest: &dyn Interest, progress: &dyn Progress) -> Result<LayerChanges> {
        let input = self.layer_name(layer);
        let raw = match &self.store {
            BlobStore::Rootfs(root) => return crate::rootfs::read_rootfs(root, interest),
            store => store.open(&layer.location, &input)?,
        };
        let raw = Counting { inner: raw, progress };
        let mut raw = VerifyingReader::new(raw, layer.info.digest.clone());
        // Verify even when the tar is unreadable: a digest mismatch is the root cause to report.
        let parsed = {
            let decoded = decompress(BufReader::with_capacity(256 << 10, &mut raw), &input)?;
            let mut diff = VerifyingReader::new(decoded, layer.info.digest.is_none().then(|| layer.info.diff_id.clone()).flatten());
            let parsed = read_layer_tar(&mut diff, &input, layer.info.index, interest);
            prefer_mismatch(parsed, diff.verify(&input))
        };
        let verified = raw.verify(&input);
        let changes = prefer_mismatch(
            parsed,
            verified.as_ref().map(|_| ()).map_err(|e| match e {
                Error::DigestMismatch { input, expected, actual } => Error::DigestMismatch {
                    input: input.clone(),
                    expected: expected.clone(),
                    actual: actual.clone(),
                },
                other => Error::invalid(&input, other.to_string()),
            }),
        )?;
        let read = verified?;
        check_size(layer.size, read, &input)?;
        Ok(changes)
    }

    fn read_blob(&self, location: &str, expected: Option<&Digest>, input: &str) -> Result<Vec<u8>> {
        read_small(&self.store, location, expected, input)
    }
}

/// One warning for every file left unread for its size: how many, and the first few with their sizes.
fn oversized_warning(image: &str, files: &[(usize, String, u64, u64)]) -> Option<String> {
    let shown: Vec<String> = files
        .iter()
        .take(3)
        .map(|(layer, path, size, limit)| format!("{path} in layer {layer} ({size} bytes, limit {limit})"))
        .collect();
    let more = files.len().saturating_sub(shown.len());
    (!files.is_empty()).then(|| {
        format!(
            "{image}: {} file(s) not read for being over the size limit for their kind (secrets: --max-file-size): {}{}",
            files.len(),
            shown.join(", "),
            if more > 0 { format!(" and {more} more") } else { String::new() }
        )
    })
}

/// Told how reading an image's layers advances (a progress display); called from the threads that read them.
pub trait Progress: Sync {
    /// `bytes` more of some layer's blob (compressed, as stored) were read.
    fn read(&self, bytes: u64);
    /// The layer with this index is read whole.
    fn layer_done(&self, _index: usize) {}
}

/// Nobody is told.
pub struct NoProgress;

impl Progress for NoProgress {
    fn read(&self, _bytes: u64) {}
}

/// Passes reads through, telling `progress` their size.
struct Counting<'a, R> {
    inner: R,
    progress: &'a dyn Progress,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.read(n as u64);
        Ok(n)
    }
}

/// The parse result, unless verification found a digest mismatch, which explains any parse error.
fn prefer_mismatch<T, U>(parsed: Result<T>, verified: Result<U>) -> Result<T> {
    match (parsed, verified) {
        (_, Err(e @ Error::DigestMismatch { .. })) => Err(e),
        (Err(e), _) => Err(e),
        (Ok(_), Err(e)) => Err(e),
        (Ok(v), Ok(_)) => Ok(v),
    }
}

fn read_small(store: &BlobStore, location: &str, expected: Option<&Digest>, input: &str) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    store
        .open(location, input)?
        .take(MAX_METADATA_BYTES + 1)
        .read_to_end(&mut buf)
        .map_err(|e| Error::io(input, e))?;
    if buf.len() as u64 > MAX_METADATA_BYTES {
        return Err(Error::invalid(
            input,
            format!("over the {MAX_METADATA_BYTES}-byte limit for manifests and configs"),
        ));
    }
    if let Some(d) = expected {
        d.verify(input, &buf)?;
    }
    Ok(buf)
}

fn parse_json<'a, T: Deserialize<'a>>(bytes: &'a [u8], input: &str) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| Error::invalid(input, format!("malformed JSON: {e}")))
}

/// Where each regular file of a tarball starts, so blobs can be read without unpacking.
#[derive(Debug)]
struct TarIndex {
    path: PathBuf,
    entries: HashMap<String, (u64, u64)>,
}

impl TarIndex {
    fn build(path: &Path, shown: &str) -> Result<TarIndex> {
        let file = File::open(path).map_err(|e| Error::io(shown, e))?;
        let file_len = file.metadata().map_err(|e| Error::io(shown, e))?.len();
        let mut archive = tar::Archive::new(file);
        let mut entries = HashMap::new();
        for entry in archive.entries_with_seek().map_err(|e| Error::io(shown, e))? {
            let entry = entry.map_err(|e| Error::io(shown, e))?;
            if !entry.header().entry_type().is_file() {
                continue;
            }
            let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let name = normalize_entry(&raw).map_err(|why| Error::UnsafePath {
                input: shown.to_string(),
                path: raw.clone(),
                why,
            })?;
            let (offset, size) = (entry.raw_file_position(), entry.size());
            if offset.checked_add(size).is_none_or(|end| end > file_len) {
                return Err(Error::invalid(
                    shown,
                    format!("{name} claims {size} bytes but the tarball ends first; the file is truncated"),
                ));
            }
            entries.insert(name, (offset, size));
        }
        Ok(TarIndex {
            path: path.to_path_buf(),
            entries,
        })
    }

    fn open(&self, name: &str, input: &str) -> Result<impl Read + use<>> {
        let name = normalize_entry(name).map_err(|why| Error::UnsafePath {
            input: input.to_string(),
            path: name.to_string(),
            why,
        })?;
        let &(offset, size) = self
            .entries
            .get(&name)
            .ok_or_else(|| Error::invalid(input, format!("{name} is missing from {}", self.path.display())))?;
        let mut file = File::open(&self.path).map_err(|e| Error::io(input, e))?;
        file.seek(SeekFrom::Start(offset)).map_err(|e| Error::io(input, e))?;
        Ok(file.take(size))
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerManifestEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// A blob path like `blobs/sha256/<hex>` names its own digest.
fn digest_from_blob_path(location: &str) -> Option<Digest> {
    let rest = location.strip_prefix("blobs/")?;
    let (alg, hex) = rest.split_once('/')?;
    format!("{alg}:{hex}").parse().ok()
}

fn open_docker_archive(path: &Path, tag: Option<&str>) -> Result<Image> {
    let shown = path.display().to_string();
    let index = TarIndex::build(path, &shown)?;
    let store = BlobStore::Tar(index);
    let manifest_input = format!("{shown}: manifest.json");
    let bytes = read_small(&store, "manifest.json", None, &manifest_input)?;
    let manifests: Vec<DockerManifestEntry> = parse_json(&bytes, &manifest_input)?;
    let tags_of = |m: &DockerManifestEntry| m.repo_tags.clone().unwrap_or_default();
    let chosen = match (tag, manifests.len()) {
        (_, 0) => return Err(Error::invalid(manifest_input, "lists no image")),
        (None, 1) => &manifests[0],
        (None, _) => {
            let all: Vec<String> = manifests.iter().flat_map(tags_of).collect();
            return Err(Error::invalid(
                &shown,
                format!(
                    "holds {} images; pick one with {shown}:TAG, one of: {}",
                    manifests.len(),
                    all.join(", ")
                ),
            ));
        }
        (Some(t), _) => manifests
            .iter()
            .find(|m| {
                tags_of(m)
                    .iter()
                    .any(|x| x == t || x.rsplit_once(':').is_some_and(|(_, tag)| tag == t))
            })
            .ok_or_else(|| Error::invalid(&shown, format!("no image tagged {t:?}")))?,
    };
    let config_input = format!("{shown}: {}", chosen.config);
    // Old archives name the config `<hex>.json`, new ones `blobs/sha256/<hex>`; both spell its digest.
    let config_digest = digest_from_blob_path(&chosen.config)
        .or_else(|| chosen.config.strip_suffix(".json").and_then(|h| format!("sha256:{h}").parse().ok()));
    let config_bytes = read_small(&store, &chosen.config, config_digest.as_ref(), &config_input)?;
    let config: ImageConfig = parse_json(&config_bytes, &config_input)?;
    let layers = layer_blobs(
        &shown,
        &config,
        chosen
            .layers
            .iter()
            .map(|l| (l.clone(), digest_from_blob_path(l), None, None))
            .collect(),
    )?;
    Ok(Image {
        name: shown,
        manifest_digest: None,
        config_digest,
        config,
        tags: tags_of(chosen),
        layers,
        store,
    })
}

/// A layer as a manifest lists it: location, digest, media type, size.
type LayerListing = (String, Option<Digest>, Option<String>, Option<u64>);

fn check_size(declared: Option<u64>, actual: u64, input: &str) -> Result<()> {
    match declared {
        Some(d) if d != actual => Err(Error::invalid(
            input,
            format!("descriptor says {d} bytes but the blob has {actual}; the image is corrupt"),
        )),
        _ => Ok(()),
    }
}

fn layer_blobs(shown: &str, config: &ImageConfig, blobs: Vec<LayerListing>) -> Result<Vec<LayerBlob>> {
    let diff_ids = config.rootfs.as_ref().map(|r| r.diff_ids.clone()).unwrap_or_default();
    if !diff_ids.is_empty() && diff_ids.len() != blobs.len() {
        return Err(Error::invalid(
            shown,
            format!("config lists {} diff_ids but the manifest {} layers", diff_ids.len(), blobs.len()),
        ));
    }
    let history = config.layer_history();
    Ok(blobs
        .into_iter()
        .enumerate()
        .map(|(index, (location, digest, media_type, size))| LayerBlob {
            info: LayerInfo {
                index,
                digest,
                diff_id: diff_ids.get(index).cloned(),
                created_by: history.get(index).cloned().flatten(),
            },
            media_type,
            size,
            location,
        })
        .collect())
}

#[derive(Deserialize)]
struct DescriptorJson {
    #[serde(rename = "mediaType", default)]
    media_type: Option<String>,
    digest: Digest,
    #[serde(default)]
    size: Option<u64>,
    #[serde(default)]
    platform: Option<PlatformJson>,
    #[serde(default)]
    annotations: Option<HashMap<String, String>>,
}

#[derive(Deserialize, Clone)]
struct PlatformJson {
    os: String,
    architecture: String,
    #[serde(default)]
    variant: Option<String>,
}

#[derive(Deserialize)]
struct IndexJson {
    #[serde(rename = "mediaType", default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Option<Vec<DescriptorJson>>,
    #[serde(default)]
    config: Option<DescriptorJson>,
    #[serde(default)]
    layers: Option<Vec<DescriptorJson>>,
}

const INDEX_TYPES: [&str; 2] = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];
const REF_ANNOTATIONS: [&str; 2] = ["org.opencontainers.image.ref.name", "io.containerd.image.name"];

fn blob_location(d: &Digest) -> String {
    format!(
        "blobs/{}/{}",
        match d.algorithm() {
            crate::digest::Algorithm::Sha256 => "sha256",
            crate::digest::Algorithm::Sha512 => "sha512",
        },
        d.hex()
    )
}

fn open_oci_layout(path: &Path, reference: Option<&str>, platform: &Platform) -> Result<Image> {
    let shown = path.display().to_string();
    let store = if path.is_dir() {
        BlobStore::Dir(path.to_path_buf())
    } else {
        BlobStore::Tar(TarIndex::build(path, &shown)?)
    };
    let index_input = format!("{shown}: index.json");
    let bytes = read_small(&store, "index.json", None, &index_input)?;
    let mut doc: IndexJson = parse_json(&bytes, &index_input)?;
    let mut candidates = doc.manifests.take().unwrap_or_default();
    if let Some(r) = reference {
        candidates.retain(|d| {
            d.annotations.as_ref().is_some_and(|a| {
                REF_ANNOTATIONS
                    .iter()
                    .any(|k| a.get(*k).is_some_and(|v| v == r || v.rsplit_once(':').is_some_and(|(_, t)| t == r)))
            })
        });
        if candidates.is_empty() {
            return Err(Error::invalid(index_input, format!("no manifest has ref name {r:?}")));
        }
    }
    let chosen = choose_manifest(&candidates, platform, &index_input)?;
    let tags = chosen
        .annotations
        .as_ref()
        .and_then(|a| REF_ANNOTATIONS.iter().find_map(|k| a.get(*k).cloned()))
        .into_iter()
        .collect();
    let input = format!("{shown}: {}", chosen.digest);
    let bytes = read_small(&store, &store.manifest_location(&chosen.digest), Some(&chosen.digest), &input)?;
    check_size(chosen.size, bytes.len() as u64, &input)?;
    image_from_manifest(store, shown, bytes, chosen.digest.clone(), tags, platform)
}

fn open_registry(reference: Reference, options: &OpenOptions) -> Result<Image> {
    let shown = reference.to_string();
    let client = RegistryClient::new(reference, &options.registry)?;
    let target = client.reference().target();
    let tags = client
        .reference()
        .tag
        .iter()
        .map(|t| format!("{}/{}:{t}", client.reference().registry, client.reference().repository))
        .collect();
    let store = BlobStore::Registry(client);
    let input = format!("{shown}: manifest");
    let bytes = read_small(&store, &format!("manifests/{target}"), None, &input)?;
    let digest = Digest::sha256_of(&bytes);
    if let BlobStore::Registry(c) = &store
        && let Some(expected) = &c.reference().digest
    {
        expected.verify(&input, &bytes)?;
    }
    image_from_manifest(store, shown, bytes, digest, tags, &options.platform)
}

/// Walks from a manifest or index (already read and verified) down to one image.
fn image_from_manifest(
    store: BlobStore,
    shown: String,
    mut bytes: Vec<u8>,
    mut digest: Digest,
    tags: Vec<String>,
    platform: &Platform,
) -> Result<Image> {
    for _depth in 0..8 {
        let input = format!("{shown}: {digest}");
        let doc: IndexJson = parse_json(&bytes, &input)?;
        if doc.manifests.is_some() || doc.media_type.as_deref().is_some_and(|t| INDEX_TYPES.contains(&t)) {
            let candidates = doc.manifests.unwrap_or_default();
            let chosen = choose_manifest(&candidates, platform, &input)?;
            let next_input = format!("{shown}: {}", chosen.digest);
            bytes = read_small(&store, &store.manifest_location(&chosen.digest), Some(&chosen.digest), &next_input)?;
            check_size(chosen.size, bytes.len() as u64, &next_input)?;
            digest = chosen.digest.clone();
            continue;
        }
        let config_desc = doc
            .config
            .ok_or_else(|| Error::invalid(&input, "manifest has no config (schema 1 manifests are not supported)"))?;
        let config_input = format!("{shown}: config {}", config_desc.digest);
        let config_bytes = read_small(
            &store,
            &blob_location(&config_desc.digest),
            Some(&config_desc.digest),
            &config_input,
        )?;
        check_size(config_desc.size, config_bytes.len() as u64, &config_input)?;
        let config: ImageConfig = parse_json(&config_bytes, &config_input)?;
        let blobs = doc
            .layers
            .unwrap_or_default()
            .into_iter()
            .map(|l| (blob_location(&l.digest), Some(l.digest), l.media_type, l.size))
            .collect();
        let layers = layer_blobs(&shown, &config, blobs)?;
        return Ok(Image {
            name: shown,
            manifest_digest: Some(digest),
            config_digest: Some(config_desc.digest),
            config,
            tags,
            layers,
            store,
        });
    }
    Err(Error::invalid(shown, "indexes nest more than 8 deep"))
}

fn choose_manifest<'a>(candidates: &'a [DescriptorJson], platform: &Platform, input: &str) -> Result<&'a DescriptorJson> {
    // Build attestations ride along in indexes as `unknown/unknown`; they are not images.
    let images: Vec<&DescriptorJson> = candidates
        .iter()
        .filter(|d| d.platform.as_ref().is_none_or(|p| p.os != "unknown"))
        .collect();
    match images.as_slice() {
        [] => Err(Error::invalid(input, "lists no image manifest")),
        [only] if only.platform.is_none() => Ok(only),
        _ => {
            if let Some(d) = images.iter().find(|d| d.platform.as_ref().is_some_and(|p| platform.matches(p))) {
                return Ok(d);
            }
            if images.iter().all(|d| d.platform.is_none()) {
                return Err(Error::invalid(
                    input,
                    format!("lists {} images and no platform; pick one with PATH:REF", images.len()),
                ));
            }
            let available: Vec<String> = images
                .iter()
                .filter_map(|d| d.platform.as_ref())
                .map(|p| {
                    Platform {
                        os: p.os.clone(),
                        architecture: p.architecture.clone(),
                        variant: p.variant.clone(),
                    }
                    .to_string()
                })
                .collect();
            Err(Error::PlatformNotFound {
                input: input.to_string(),
                wanted: platform.to_string(),
                available: available.join(", "),
            })
        }
    }
}

impl Image {
    /// Reads a blob of this image by digest (configs, attached artifacts).
    pub fn blob(&self, digest: &Digest) -> Result<Vec<u8>> {
        self.read_blob(&blob_location(digest), Some(digest), &format!("{}: {digest}", self.name))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn files_over_their_size_limit_are_said_once_for_the_image() {
        let files: Vec<(usize, String, u64, u64)> = (0..5).map(|i| (i % 2, format!("var/big{i}"), 50 << 20, 32 << 20)).collect();
        let w = super::oversized_warning("img", &files).unwrap();
        assert!(
            w.starts_with(
                "img: 5 file(s) not read for being over the size limit for their kind (secrets: --max-file-size): var/big0 in layer 0 (52428800 bytes, limit 33554432)"
            ),
            "{w}"
        );
        assert!(w.ends_with(" and 2 more"), "{w}");
        assert_eq!(super::oversized_warning("img", &[]), None);
    }
}
