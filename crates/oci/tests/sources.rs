//! Opening images from every source kind, and refusing hostile or corrupt ones clearly.

mod support;

use customs_oci::{Digest, EntryMeta, Error, HiddenBy, Image, Interest, NoContent, Platform};
use support::{Entry, docker_archive, docker_archive_blobs, docker_archive_claiming, gzip, layer, oci_layout, zstd};

/// Keeps every regular file's bytes.
struct All;
impl Interest for All {
    fn wants(&self, _: &EntryMeta) -> Option<u64> {
        Some(1 << 20)
    }
}

fn two_layers() -> (Vec<u8>, Vec<u8>) {
    let base = layer(&[
        Entry::Dir("app"),
        Entry::File("app/secret.env", b"AWS=1"),
        Entry::File("etc/os-release", b"ID=debian\n"),
    ]);
    let top = layer(&[Entry::File("app/.wh.secret.env", b""), Entry::File("app/new", b"hello")]);
    (base, top)
}

fn open(path: &std::path::Path) -> customs_oci::Result<Image> {
    Image::open(path.to_str().unwrap(), &Platform::default())
}

#[test]
fn oci_layout_gzip_and_zstd_with_whiteouts() {
    let (base, top) = two_layers();
    for (name, compress) in [
        ("gzip", gzip as fn(&[u8]) -> Vec<u8>),
        ("zstd", zstd),
        ("plain", |b: &[u8]| b.to_vec()),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let md = oci_layout(dir.path(), &[(compress(&base), base.clone()), (compress(&top), top.clone())]);
        let img = open(dir.path()).unwrap();
        assert_eq!(img.manifest_digest.as_ref(), Some(&md), "{name}");
        let v = img.filesystem(&All).unwrap();
        assert!(v.get("app/secret.env").is_none(), "{name}: whiteout not applied");
        assert_eq!(v.read("app/new").unwrap(), b"hello");
        assert_eq!(v.get("app/new").unwrap().layer, 1);
        let h = &v.hidden()[0];
        assert_eq!(
            (h.entry.path.as_str(), h.hidden_in, h.by),
            ("app/secret.env", 1, HiddenBy::Whiteout)
        );
        assert_eq!(v.layers[1].created_by.as_deref(), Some("step 1"));
    }
}

#[test]
fn oci_layout_as_tar_and_ref_selection() {
    let (base, _) = two_layers();
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    oci_layout(&layout, &[(gzip(&base), base.clone())]);
    let tar_path = dir.path().join("image.tar");
    let mut b = tar::Builder::new(std::fs::File::create(&tar_path).unwrap());
    b.append_dir_all(".", &layout).unwrap();
    b.finish().unwrap();
    let img = Image::open(&format!("{}:test", tar_path.display()), &Platform::default()).unwrap();
    assert_eq!(img.tags, vec!["test".to_string()]);
    assert!(img.filesystem(&NoContent).unwrap().get("etc/os-release").is_some());
    let err = Image::open(&format!("{}:nope", tar_path.display()), &Platform::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("no manifest has ref name \"nope\""), "{err}");
}

#[test]
fn docker_archive_verifies_diff_ids() {
    let (base, top) = two_layers();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("img.tar");
    docker_archive(&path, &[base.clone(), top.clone()]);
    let img = open(&path).unwrap();
    assert_eq!(img.tags, vec!["localhost/t:1".to_string()]);
    let v = img.filesystem(&All).unwrap();
    assert!(v.get("app/secret.env").is_none());
    assert_eq!(v.hidden().len(), 1);

    // The config promises the original bytes; the archive carries others.
    let mut tampered = top.clone();
    tampered[10] ^= 1;
    let bad = dir.path().join("bad.tar");
    let promised = [Digest::sha256_of(&base), Digest::sha256_of(&top)];
    docker_archive_claiming(&bad, &[base, tampered], &promised);
    let err = open(&bad).unwrap().filesystem(&All).unwrap_err().to_string();
    eprintln!("{err}");
    assert!(
        err.contains("bad.tar layer 1") && err.contains(&format!("expected {}", promised[1])),
        "{err}"
    );
}

#[test]
fn rootfs_directory_does_not_follow_symlinks_out() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(root.join("etc/os-release"), "ID=alpine\n").unwrap();
    std::os::unix::fs::symlink("/", root.join("hostroot")).unwrap();
    let img = Image::open(&format!("dir:{}", root.display()), &Platform::default()).unwrap();
    let v = img.filesystem(&All).unwrap();
    assert_eq!(v.read("etc/os-release").unwrap(), b"ID=alpine\n");
    // The link resolves inside the scanned tree, never to the host's /etc.
    assert_eq!(v.read("hostroot/etc/os-release").unwrap(), b"ID=alpine\n");
    assert!(v.get("hostroot/etc/passwd").is_none() && v.resolve("hostroot/etc/passwd").is_none());
}

// ---- hostile and corrupt inputs: a clear error naming the input, never a panic ----

fn layout_with(stored: Vec<u8>, raw: Vec<u8>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    oci_layout(dir.path(), &[(stored, raw)]);
    dir
}

fn scan_err(dir: &std::path::Path) -> String {
    let img = open(dir).unwrap();
    img.filesystem(&All).unwrap_err().to_string()
}

#[test]
fn truncated_gzip_is_named() {
    let raw = layer(&[Entry::File("etc/big", &vec![7u8; 200_000])]);
    let mut stored = gzip(&raw);
    stored.truncate(stored.len() / 2);
    let dir = layout_with(stored, raw);
    let err = scan_err(dir.path());
    eprintln!("{err}");
    assert!(err.contains("layer 0 (sha256:"), "{err}");
}

#[test]
fn bad_digest_is_refused() {
    let raw = layer(&[Entry::File("etc/x", b"good")]);
    let dir = layout_with(gzip(&raw), raw);
    // Swap the blob's bytes for other valid gzip after the manifest was written.
    let img = open(dir.path()).unwrap();
    let d = img.layers[0].info.digest.clone().unwrap();
    std::fs::write(
        dir.path().join("blobs/sha256").join(d.hex()),
        gzip(&layer(&[Entry::File("etc/x", b"evil")])),
    )
    .unwrap();
    let err = scan_err(dir.path());
    assert!(err.contains("digest mismatch") && err.contains(&d.to_string()), "{err}");
}

#[test]
fn dot_dot_entry_is_refused() {
    let raw = layer(&[Entry::File("../etc/passwd", b"root::0:0")]);
    let dir = layout_with(gzip(&raw), raw);
    let err = scan_err(dir.path());
    assert!(
        err.contains("layer 0") && err.contains("refusing unsafe path \"../etc/passwd\""),
        "{err}"
    );
}

#[test]
fn symlink_to_root_stays_in_the_image() {
    let raw = layer(&[
        Entry::Symlink("escape", "/"),
        Entry::File("escape/etc/passwd", b"root:x:0:0"),
        Entry::Symlink("up", "../../../../../"),
    ]);
    let dir = layout_with(gzip(&raw), raw);
    let v = open(dir.path()).unwrap().filesystem(&All).unwrap();
    // Written through the link means written at the image root, not the host's.
    assert_eq!(v.read("etc/passwd").unwrap(), b"root:x:0:0");
    assert_eq!(v.read("up/up/etc/passwd").unwrap(), b"root:x:0:0");
}

#[test]
fn ten_gigabyte_claim_is_not_believed() {
    // A header that claims 10 GB with a few bytes behind it.
    let raw = layer(&[Entry::Lying("var/lib/dpkg/status", 10 << 30, b"Package: x\n")]);
    let dir = layout_with(gzip(&raw), raw);
    let err = scan_err(dir.path());
    eprintln!("{err}");
    assert!(err.contains("layer 0"), "{err}");

    // The same claim inside a docker-archive's outer tar is caught before any read.
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("claim.tar");
    std::fs::write(
        &path,
        layer(&[Entry::File("manifest.json", b"[]"), Entry::Lying("layer.tar", 10 << 30, b"")]),
    )
    .unwrap();
    let err = open(&path).unwrap_err().to_string();
    assert!(err.contains("claim.tar") && err.contains("truncated"), "{err}");
}

#[test]
fn malformed_manifests_are_named() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("oci-layout"), "{}").unwrap();
    std::fs::write(dir.path().join("index.json"), "{\"manifests\": [").unwrap();
    let err = open(dir.path()).unwrap_err();
    assert!(matches!(err, Error::Invalid { .. }));
    assert!(err.to_string().contains("index.json: malformed JSON"), "{err}");

    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("not-an-image.tar");
    std::fs::write(&path, layer(&[Entry::File("hello.txt", b"hi")])).unwrap();
    let err = open(&path).unwrap_err().to_string();
    assert!(err.contains("not-an-image.tar") && err.contains("neither manifest.json"), "{err}");

    let err = Image::open("/nonexistent/image.tar", &Platform::default()).unwrap_err().to_string();
    assert!(err.contains("/nonexistent/image.tar") && err.contains("no such file"), "{err}");
}

#[test]
fn platform_selection_in_index() {
    let (base, _) = two_layers();
    let dir = tempfile::tempdir().unwrap();
    let md = oci_layout(dir.path(), &[(gzip(&base), base.clone())]);
    let size = std::fs::metadata(dir.path().join("blobs/sha256").join(md.hex())).unwrap().len();
    let index = serde_json::json!({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md.to_string(), "size": size, "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md.to_string(), "size": size, "platform": {"os": "unknown", "architecture": "unknown"}}
    ]});
    std::fs::write(dir.path().join("index.json"), index.to_string()).unwrap();
    let err = open(dir.path()).unwrap_err().to_string();
    assert!(
        err.contains("no image for platform linux/amd64; available: linux/arm64/v8"),
        "{err}"
    );
    assert!(Image::open(dir.path().to_str().unwrap(), &"linux/arm64".parse().unwrap()).is_ok());
}

#[test]
fn docker_archive_with_blob_layout_verifies_blob_digests() {
    let (base, top) = two_layers();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new.tar");
    docker_archive_blobs(&path, &[base.clone(), top.clone()], &[base.clone(), top.clone()]);
    let img = open(&path).unwrap();
    assert_eq!(img.layers[1].info.digest, Some(Digest::sha256_of(&top)));
    assert!(img.filesystem(&All).unwrap().get("app/new").is_some());

    let mut tampered = top.clone();
    tampered[600] ^= 1;
    docker_archive_blobs(&path, &[base.clone(), top], &[base, tampered]);
    let err = open(&path).unwrap().filesystem(&All).unwrap_err().to_string();
    assert!(err.contains("digest mismatch") && err.contains("new.tar layer 1"), "{err}");
}
