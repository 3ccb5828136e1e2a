//! A layer of `d`, `d/d`, `d/d/d`, … 4,000 deep (the attack run went to 10,000: `bench/deep-tree.sh`) builds its view with every
//! entry in place; path resolution used to rebuild each prefix string per component, so building the view was
//! cubic in the depth (0.36 s at 1,000, over 120 s at 10,000). No timing is asserted here: `bench/deep-tree.sh`
//! prints the figures; a regression shows as a test that does not finish.

mod support;

use customs_oci::{EntryMeta, Image, Interest, Platform};
use support::{gzip, oci_layout};

struct All;
impl Interest for All {
    fn wants(&self, _: &EntryMeta) -> Option<u64> {
        Some(1 << 16)
    }
}

/// A tar (GNU long names) of nested directories `depth` deep with one file at the bottom, plus a symlink
/// half-way that the bottom file is also reached through.
fn deep_layer(depth: usize) -> (Vec<u8>, String) {
    let mut b = tar::Builder::new(Vec::new());
    let mut path = String::new();
    for i in 0..depth {
        if i > 0 {
            path.push('/');
        }
        path.push('d');
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_size(0);
        b.append_data(&mut h, &path, std::io::empty()).unwrap();
    }
    let file = format!("{path}/leak.env");
    let data = b"AWS_ACCESS_KEY_ID=AKIAQ7Z3X9W2V5T8R4M6\n";
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_size(data.len() as u64);
    b.append_data(&mut h, &file, &data[..]).unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    b.append_link(&mut h, "short", &path[..path.len() / 2]).unwrap();
    (b.into_inner().unwrap(), file)
}

#[test]
fn a_four_thousand_deep_tree_builds_with_every_entry() {
    let depth = 4_000;
    let (raw, file) = deep_layer(depth);
    let dir = tempfile::tempdir().unwrap();
    oci_layout(dir.path(), &[(gzip(&raw), raw)]);
    let img = Image::open(dir.path().to_str().unwrap(), &Platform::default()).unwrap();
    let view = img.filesystem(&All).unwrap();
    assert_eq!(view.files().count(), depth + 2, "every directory, the file and the link");
    assert_eq!(view.read(&file), Some(&b"AWS_ACCESS_KEY_ID=AKIAQ7Z3X9W2V5T8R4M6\n"[..]));
    // Through the symlink to the middle of the tree, then down the rest.
    // The link names the first half of the directory path's text (`d/…/d`, 5,000 deep).
    let target_len = (2 * depth - 1) / 2;
    let rest = &file[target_len..];
    let via_link = format!("short{rest}");
    assert_eq!(view.read(&via_link).map(<[u8]>::len), Some(39), "{}", &via_link[..40]);
}
