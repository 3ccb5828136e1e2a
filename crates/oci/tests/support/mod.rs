//! Builds small images by hand for tests: layer tars (with hostile entries when asked),
//! OCI layouts and docker-archives.
#![allow(dead_code)]

use std::io::Write;
use std::path::Path;

use customs_oci::Digest;
use serde_json::json;

/// One entry of a layer tar.
pub enum Entry<'a> {
    File(&'a str, &'a [u8]),
    Dir(&'a str),
    Symlink(&'a str, &'a str),
    /// A file whose header claims `size` bytes but carries only `data`.
    Lying(&'a str, u64, &'a [u8]),
}

fn header(name: &str, kind: tar::EntryType, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    // Write the name bytes raw: tar's own setters refuse `..`, and hostile layers don't ask.
    let raw = &mut h.as_gnu_mut().unwrap().name;
    raw[..name.len()].copy_from_slice(name.as_bytes());
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(if kind == tar::EntryType::Directory { 0o755 } else { 0o644 });
    h.set_mtime(0);
    h
}

pub fn layer(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        let (h, data): (tar::Header, &[u8]) = match e {
            Entry::File(p, d) => (header(p, tar::EntryType::Regular, d.len() as u64), d),
            Entry::Dir(p) => (header(p, tar::EntryType::Directory, 0), &[]),
            Entry::Symlink(p, t) => {
                let mut h = header(p, tar::EntryType::Symlink, 0);
                h.set_link_name(t).unwrap();
                (h, &[])
            }
            Entry::Lying(p, size, d) => (header(p, tar::EntryType::Regular, *size), d),
        };
        let mut h = h;
        h.set_cksum();
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(data);
        let pad = (512 - data.len() % 512) % 512;
        out.extend(std::iter::repeat_n(0u8, pad));
    }
    out.extend(std::iter::repeat_n(0u8, 1024));
    out
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

pub fn zstd(bytes: &[u8]) -> Vec<u8> {
    zstd::stream::encode_all(bytes, 1).unwrap()
}

fn put_blob(dir: &Path, bytes: &[u8]) -> Digest {
    let d = Digest::sha256_of(bytes);
    let p = dir.join("blobs/sha256");
    std::fs::create_dir_all(&p).unwrap();
    std::fs::write(p.join(d.hex()), bytes).unwrap();
    d
}

/// Writes an OCI layout holding one image. `layers` are (stored bytes, uncompressed bytes).
pub fn oci_layout(dir: &Path, layers: &[(Vec<u8>, Vec<u8>)]) -> Digest {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let diff_ids: Vec<String> = layers.iter().map(|(_, raw)| Digest::sha256_of(raw).to_string()).collect();
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": layers.iter().enumerate().map(|(i, _)| json!({"created_by": format!("step {i}")})).collect::<Vec<_>>(),
    }))
    .unwrap();
    let config_d = put_blob(dir, &config);
    let layer_descs: Vec<_> = layers
        .iter()
        .map(|(stored, _)| {
            let d = put_blob(dir, stored);
            json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d.to_string(), "size": stored.len()})
        })
        .collect();
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_d.to_string(), "size": config.len()},
        "layers": layer_descs,
    }))
    .unwrap();
    let md = put_blob(dir, &manifest);
    let index = json!({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md.to_string(), "size": manifest.len(), "annotations": {"org.opencontainers.image.ref.name": "test"}}]});
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    md
}

/// Writes a classic `docker save` tarball holding one image with uncompressed layers.
pub fn docker_archive(path: &Path, layers: &[Vec<u8>]) {
    let diff_ids: Vec<Digest> = layers.iter().map(|raw| Digest::sha256_of(raw)).collect();
    docker_archive_claiming(path, layers, &diff_ids);
}

/// Like [`docker_archive`], but the config promises `diff_ids` whatever the layers hold.
pub fn docker_archive_claiming(path: &Path, layers: &[Vec<u8>], diff_ids: &[Digest]) {
    let diff_ids: Vec<String> = diff_ids.iter().map(ToString::to_string).collect();
    let config =
        serde_json::to_vec(&json!({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": diff_ids}})).unwrap();
    let config_name = format!("{}.json", Digest::sha256_of(&config).hex());
    let names: Vec<String> = (0..layers.len()).map(|i| format!("layer{i}/layer.tar")).collect();
    let manifest = serde_json::to_vec(&json!([{"Config": config_name, "RepoTags": ["localhost/t:1"], "Layers": names}])).unwrap();
    let mut b = tar::Builder::new(std::fs::File::create(path).unwrap());
    let mut add = |name: &str, bytes: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, name, bytes).unwrap();
    };
    add("manifest.json", &manifest);
    add(&config_name, &config);
    for (n, l) in names.iter().zip(layers) {
        add(n, l);
    }
    b.finish().unwrap();
}

/// Writes a Docker 25+ style `docker save` tarball: blobs under `blobs/sha256/`, a
/// `manifest.json` pointing at them, plus `index.json` and `oci-layout`.
/// `layer_bytes` are stored as given; `layers` are what the config's diff_ids promise.
pub fn docker_archive_blobs(path: &Path, layers: &[Vec<u8>], layer_bytes: &[Vec<u8>]) {
    let diff_ids: Vec<String> = layers.iter().map(|raw| Digest::sha256_of(raw).to_string()).collect();
    let config =
        serde_json::to_vec(&json!({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": diff_ids}})).unwrap();
    let blob_name = |b: &[u8]| format!("blobs/sha256/{}", Digest::sha256_of(b).hex());
    let names: Vec<String> = layers.iter().map(|l| blob_name(l)).collect();
    let manifest = serde_json::to_vec(&json!([{"Config": blob_name(&config), "RepoTags": ["localhost/t:2"], "Layers": names}])).unwrap();
    let mut b = tar::Builder::new(std::fs::File::create(path).unwrap());
    let mut add = |name: &str, bytes: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, name, bytes).unwrap();
    };
    add("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
    add("index.json", br#"{"schemaVersion":2,"manifests":[]}"#);
    add("manifest.json", &manifest);
    add(&blob_name(&config), &config);
    for (n, l) in names.iter().zip(layer_bytes) {
        add(n, l);
    }
    b.finish().unwrap();
}
