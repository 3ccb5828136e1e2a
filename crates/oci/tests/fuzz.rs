//! Property tests: the layer and manifest readers never panic, whatever the bytes.

mod support;

use customs_oci::{EntryMeta, Image, Interest, Platform, read_layer_tar};
use proptest::prelude::*;
use support::{Entry, gzip, layer, oci_layout};

struct All;
impl Interest for All {
    fn wants(&self, _: &EntryMeta) -> Option<u64> {
        Some(1 << 16)
    }
}

fn sample_layer() -> Vec<u8> {
    layer(&[
        Entry::Dir("etc"),
        Entry::File("etc/os-release", b"ID=debian\n"),
        Entry::Symlink("bin", "usr/bin"),
        Entry::File("etc/.wh.gone", b""),
    ])
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn layer_reader_survives_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let _ = read_layer_tar(&bytes[..], "fuzz", 0, &All);
    }

    #[test]
    fn layer_reader_survives_mutations(flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..16), cut in any::<prop::sample::Index>()) {
        let mut bytes = sample_layer();
        for (at, value) in flips {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        let keep = cut.index(bytes.len() + 1);
        bytes.truncate(keep);
        let _ = read_layer_tar(&bytes[..], "fuzz", 0, &All);
    }

    #[test]
    fn layout_reader_survives_random_index(index in "\\PC{0,300}") {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("oci-layout"), "{}").unwrap();
        std::fs::write(dir.path().join("index.json"), index).unwrap();
        let _ = Image::open(dir.path().to_str().unwrap(), &Platform::default());
    }

    /// One of the layout's four files (index.json, manifest, config, layer) is mutated. A changed blob must fail
    /// its digest check whichever blob it is; a changed index.json must fail cleanly or still open.
    #[test]
    fn layout_reader_survives_mutated_files(flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8), target in 0usize..4) {
        let dir = tempfile::tempdir().unwrap();
        let raw = sample_layer();
        oci_layout(dir.path(), &[(gzip(&raw), raw)]);
        let mut files: Vec<_> = std::fs::read_dir(dir.path().join("blobs/sha256")).unwrap().map(|e| e.unwrap().path()).collect();
        files.sort();
        files.push(dir.path().join("index.json"));
        prop_assert_eq!(files.len(), 4, "manifest, config, layer and index.json");
        let path = &files[target];
        let before = std::fs::read(path).unwrap();
        let mut bytes = before.clone();
        for (at, value) in flips {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        std::fs::write(path, &bytes).unwrap();
        let opened = Image::open(dir.path().to_str().unwrap(), &Platform::default());
        let read = opened.map(|img| img.filesystem(&All).map(|_| ()));
        let is_blob = target < 3;
        if is_blob && bytes != before {
            prop_assert!(
                !matches!(read, Ok(Ok(()))),
                "a changed blob {} was read without a digest error",
                path.display()
            );
        }
    }

    #[test]
    fn docker_archive_reader_survives_random_tarballs(manifest in "\\PC{0,200}", junk in proptest::collection::vec(any::<u8>(), 0..600)) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.tar");
        let mut bytes = layer(&[Entry::File("manifest.json", manifest.as_bytes())]);
        bytes.extend(junk);
        std::fs::write(&path, bytes).unwrap();
        if let Ok(img) = Image::open(path.to_str().unwrap(), &Platform::default()) {
            let _ = img.filesystem(&All);
        }
    }
}
