//! The layer-aware filesystem view: the image's final tree, with for every file
//! the layer that last wrote it, plus the files that later layers hid.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;

use serde::Serialize;

use crate::digest::Digest;
use crate::path::{file_name, join_in_scope, parent};

/// What kind of filesystem object an entry is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "type", content = "target")]
pub enum EntryKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link and its target as written (may be absolute).
    Symlink(String),
    /// A hard link to another path of the image (normalized).
    Hardlink(String),
    /// Devices, FIFOs and anything else with no content.
    Other,
}

/// What a [`crate::Interest`] sees of an entry before deciding whether to read it.
#[derive(Clone, Copy, Debug)]
pub struct EntryMeta<'a> {
    /// Normalized path relative to the image root.
    pub path: &'a str,
    /// Size in bytes as the layer declares it.
    pub size: u64,
    /// Unix permission bits.
    pub mode: u32,
    /// Index of the layer holding the entry.
    pub layer: usize,
}

/// One file as one layer wrote it.
#[derive(Clone, Debug)]
pub struct FileEntry {
    /// Normalized path relative to the image root.
    pub path: String,
    /// File, directory, link, …
    pub kind: EntryKind,
    /// Size in bytes (of the link target for hard links).
    pub size: u64,
    /// Unix permission bits.
    pub mode: u32,
    /// Index into [`FsView::layers`] of the layer that wrote this version.
    pub layer: usize,
    /// What the interest kept of the content, when it asked for it.
    pub content: Option<Arc<[u8]>>,
}

/// Why a file version is no longer visible in the final image.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HiddenBy {
    /// A whiteout (`.wh.name`) or an opaque directory marker removed it.
    Whiteout,
    /// A later layer wrote the same path again.
    Overwrite,
}

/// A file version that a later layer hid; its bytes are still inside the image.
#[derive(Clone, Debug)]
pub struct HiddenEntry {
    /// The version that was hidden.
    pub entry: FileEntry,
    /// The layer that hid it.
    pub hidden_in: usize,
    /// How it was hidden.
    pub by: HiddenBy,
}

/// Facts about one layer of the image.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct LayerInfo {
    /// Position in the image, 0 for the base.
    pub index: usize,
    /// Digest of the blob as stored (compressed), when the source has one.
    pub digest: Option<Digest>,
    /// Digest of the uncompressed tar (`rootfs.diff_ids`), when known.
    pub diff_id: Option<Digest>,
    /// The build step that made the layer, from the image history.
    pub created_by: Option<String>,
}

/// The merged filesystem of an image.
#[derive(Debug, Default)]
pub struct FsView {
    /// The layers, base first.
    pub layers: Vec<LayerInfo>,
    files: BTreeMap<String, FileEntry>,
    /// The lengths of the paths in `files` that are symlinks, with how many symlinks have each: resolution
    /// only looks up the prefixes of a path that end at a `/` at one of these lengths (a handful in real images),
    /// never each component of it (walking 10,000 components of a 10,000-deep path per entry made such a tree
    /// quadratic to build, and before that cubic).
    symlink_lengths: BTreeMap<usize, u32>,
    hidden: Vec<HiddenEntry>,
    /// Things worth telling the user that did not stop the scan (files over a size limit, …).
    pub warnings: Vec<String>,
}

/// Symlink hops allowed while resolving one path, as in Linux's `MAXSYMLINKS`.
const MAX_SYMLINK_HOPS: usize = 40;

impl FsView {
    /// A copy whose kept contents are passed through `f` (entries where it returns `None` keep no content):
    /// how one pass with [`crate::Both`] is split into a view per consumer.
    pub fn map_content(&self, f: impl Fn(&[u8]) -> Option<Vec<u8>>) -> FsView {
        let map = |e: &FileEntry| FileEntry {
            content: e.content.as_deref().and_then(&f).map(Arc::from),
            ..e.clone()
        };
        FsView {
            layers: self.layers.clone(),
            files: self.files.iter().map(|(k, e)| (k.clone(), map(e))).collect(),
            symlink_lengths: self.symlink_lengths.clone(),
            hidden: self
                .hidden
                .iter()
                .map(|h| HiddenEntry {
                    entry: map(&h.entry),
                    ..h.clone()
                })
                .collect(),
            warnings: self.warnings.clone(),
        }
    }

    /// Every visible entry, sorted by path.
    pub fn files(&self) -> impl Iterator<Item = &FileEntry> {
        self.files.values()
    }

    /// Number of visible entries.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// True when the image has no visible entry.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// File versions hidden by later layers (deleted or overwritten), oldest first.
    pub fn hidden(&self) -> &[HiddenEntry] {
        &self.hidden
    }

    /// The visible entry at exactly `path`, without following symlinks.
    pub fn get(&self, path: &str) -> Option<&FileEntry> {
        self.files.get(path.trim_start_matches('/'))
    }

    /// The visible entry `path` leads to, following symlinks (in any component) inside the image root.
    pub fn resolve(&self, path: &str) -> Option<&FileEntry> {
        let resolved = self.resolve_path(path.trim_start_matches('/'), true)?;
        self.files.get(&resolved)
    }

    /// The content kept for the file `path` leads to.
    pub fn read(&self, path: &str) -> Option<&[u8]> {
        self.resolve(path)?.content.as_deref()
    }

    /// Visible entries whose path lies under directory `dir` (any depth).
    pub fn under<'a>(&'a self, dir: &str) -> impl Iterator<Item = &'a FileEntry> + 'a {
        let prefix = format!("{}/", dir.trim_matches('/'));
        self.files
            .range::<str, _>((Bound::Included(prefix.as_str()), Bound::Unbounded))
            .take_while(move |(p, _)| p.starts_with(&prefix))
            .map(|(_, e)| e)
    }

    /// Every version of `path` the image holds, oldest first: hidden ones, then the visible one.
    pub fn versions<'a>(&'a self, path: &'a str) -> impl Iterator<Item = &'a FileEntry> + 'a {
        self.hidden
            .iter()
            .filter(move |h| h.entry.path == path)
            .map(|h| &h.entry)
            .chain(self.files.get(path))
    }

    /// Inserts an entry, keeping the symlink index.
    fn insert_file(&mut self, entry: FileEntry) {
        if let Some(old) = self.files.get(&entry.path)
            && matches!(old.kind, EntryKind::Symlink(_))
        {
            self.unindex_symlink(&entry.path);
        }
        if matches!(entry.kind, EntryKind::Symlink(_)) {
            *self.symlink_lengths.entry(entry.path.len()).or_default() += 1;
        }
        self.files.insert(entry.path.clone(), entry);
    }

    /// Removes an entry, keeping the symlink index.
    fn remove_file(&mut self, path: &str) -> Option<FileEntry> {
        let entry = self.files.remove(path)?;
        if matches!(entry.kind, EntryKind::Symlink(_)) {
            self.unindex_symlink(path);
        }
        Some(entry)
    }

    fn unindex_symlink(&mut self, path: &str) {
        if let Some(n) = self.symlink_lengths.get_mut(&path.len()) {
            *n -= 1;
            if *n == 0 {
                self.symlink_lengths.remove(&path.len());
            }
        }
    }

    /// Follows symlinks in any component, chroot-style. `None` on a loop.
    ///
    /// The shortest prefix that is a symlink is replaced by its target and the walk starts over, as the kernel
    /// does component by component; only prefixes as long as some symlink's path are looked up.
    fn resolve_path(&self, path: &str, follow_last: bool) -> Option<String> {
        let mut todo = collapse_slashes(path.trim_matches('/'));
        let mut hops = 0;
        'walk: loop {
            for &len in self.symlink_lengths.keys() {
                if len > todo.len() {
                    break;
                }
                let is_last = len == todo.len();
                if (is_last && !follow_last) || (!is_last && todo.as_bytes()[len] != b'/') {
                    continue;
                }
                let prefix = &todo[..len];
                if let Some(EntryKind::Symlink(target)) = self.files.get(prefix).map(|e| &e.kind) {
                    hops += 1;
                    if hops > MAX_SYMLINK_HOPS {
                        return None;
                    }
                    let mut next = join_in_scope(parent(prefix), target);
                    next.push_str(&todo[len..]);
                    todo = collapse_slashes(next.trim_matches('/'));
                    continue 'walk;
                }
            }
            return Some(todo);
        }
    }
}

/// `a//b` as `a/b`: components are what lies between single slashes.
fn collapse_slashes(path: &str) -> String {
    if !path.contains("//") {
        return path.to_string();
    }
    let mut out = String::with_capacity(path.len());
    for part in path.split('/').filter(|p| !p.is_empty()) {
        if !out.is_empty() {
            out.push('/');
        }
        out.push_str(part);
    }
    out
}

/// Builds an [`FsView`] one layer at a time, applying OCI whiteout rules.
#[derive(Debug, Default)]
pub struct FsBuilder {
    view: FsView,
    staged: Vec<FileEntry>,
    whiteouts: Vec<String>,
    opaque_dirs: Vec<String>,
}

/// What a layer entry means for the tree.
pub(crate) enum Change {
    /// Add or replace this entry.
    Put(FileEntry),
    /// Remove this path (and its subtree) from lower layers.
    Whiteout(String),
    /// Remove the children of this directory from lower layers.
    Opaque(String),
    /// An overlay bookkeeping entry with no meaning for the image.
    Ignore,
}

/// Classifies a normalized entry path as a whiteout, an opaque marker or a real entry.
pub(crate) fn classify(path: &str) -> Option<Change> {
    let name = file_name(path);
    let rest = name.strip_prefix(".wh.")?;
    let dir = parent(path);
    Some(if rest == ".wh..opq" {
        Change::Opaque(dir.to_string())
    } else if rest.starts_with(".wh.") || rest.is_empty() {
        Change::Ignore
    } else if dir.is_empty() {
        Change::Whiteout(rest.to_string())
    } else {
        Change::Whiteout(format!("{dir}/{rest}"))
    })
}

impl FsBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts the next layer; entries and whiteouts given until [`FsBuilder::finish_layer`] belong to it.
    pub fn begin_layer(&mut self, info: LayerInfo) {
        self.view.layers.push(info);
    }

    /// Index of the layer being built.
    pub fn current_layer(&self) -> usize {
        self.view.layers.len().saturating_sub(1)
    }

    /// Records a warning that will travel with the view.
    pub fn warn(&mut self, message: String) {
        self.view.warnings.push(message);
    }

    pub(crate) fn apply(&mut self, change: Change) {
        match change {
            Change::Put(entry) => self.staged.push(entry),
            Change::Whiteout(path) => self.whiteouts.push(path),
            Change::Opaque(dir) => self.opaque_dirs.push(dir),
            Change::Ignore => {}
        }
    }

    /// Applies the layer's whiteouts to the layers below it, then its own entries on top.
    pub fn finish_layer(&mut self) {
        let layer = self.current_layer();
        // Whiteouts only ever hide lower layers, whatever their order inside the tar.
        for path in std::mem::take(&mut self.whiteouts) {
            let path = self.view.resolve_path(&path, false).unwrap_or(path);
            self.remove(&path, true, layer, HiddenBy::Whiteout);
        }
        for dir in std::mem::take(&mut self.opaque_dirs) {
            let dir = self.view.resolve_path(&dir, true).unwrap_or(dir);
            self.remove(&dir, false, layer, HiddenBy::Whiteout);
        }
        for mut entry in std::mem::take(&mut self.staged) {
            // Writes go through symlinked parent directories, but never out of the root.
            let dir = parent(&entry.path);
            if !dir.is_empty()
                && let Some(real_dir) = self.view.resolve_path(dir, true)
                && real_dir != dir
            {
                entry.path = if real_dir.is_empty() {
                    file_name(&entry.path).to_string()
                } else {
                    format!("{real_dir}/{}", file_name(&entry.path))
                };
            }
            if entry.path.is_empty() {
                continue; // the root itself
            }
            if let EntryKind::Hardlink(target) = &entry.kind
                && let Some(t) = self.view.files.get(target)
            {
                entry.size = t.size;
                if entry.content.is_none() {
                    entry.content = t.content.clone();
                }
            }
            let replaces_dir = entry.kind != EntryKind::Dir;
            if let Some(old) = self.view.files.get(&entry.path) {
                if old.kind == EntryKind::Dir && entry.kind == EntryKind::Dir {
                    self.view.insert_file(entry);
                    continue;
                }
                self.remove(&entry.path.clone(), replaces_dir, layer, HiddenBy::Overwrite);
            }
            self.view.insert_file(entry);
        }
    }

    /// Removes `path` itself (when `itself`) and everything below it.
    fn remove(&mut self, path: &str, itself: bool, layer: usize, by: HiddenBy) {
        let mut gone: Vec<String> = Vec::new();
        if itself && self.view.files.contains_key(path) {
            gone.push(path.to_string());
        }
        let prefix = if path.is_empty() { String::new() } else { format!("{path}/") };
        gone.extend(
            self.view
                .files
                .range::<str, _>((Bound::Included(prefix.as_str()), Bound::Unbounded))
                .take_while(|(p, _)| p.starts_with(&prefix))
                .map(|(p, _)| p.clone()),
        );
        for p in gone {
            if let Some(entry) = self.view.remove_file(&p)
                && entry.kind != EntryKind::Dir
            {
                self.view.hidden.push(HiddenEntry {
                    entry,
                    hidden_in: layer,
                    by,
                });
            }
        }
    }

    /// The finished view.
    pub fn build(self) -> FsView {
        self.view
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, layer: usize, content: &str) -> Change {
        Change::Put(FileEntry {
            path: path.into(),
            kind: EntryKind::File,
            size: content.len() as u64,
            mode: 0o644,
            layer,
            content: Some(content.as_bytes().into()),
        })
    }

    fn dir(path: &str, layer: usize) -> Change {
        Change::Put(FileEntry {
            path: path.into(),
            kind: EntryKind::Dir,
            size: 0,
            mode: 0o755,
            layer,
            content: None,
        })
    }

    fn link(path: &str, layer: usize, target: &str) -> Change {
        Change::Put(FileEntry {
            path: path.into(),
            kind: EntryKind::Symlink(target.into()),
            size: 0,
            mode: 0o777,
            layer,
            content: None,
        })
    }

    /// Component by component, looking every prefix up: the walk `resolve_path` must agree with.
    fn resolve_reference(view: &FsView, path: &str, follow_last: bool) -> Option<String> {
        let mut todo: Vec<String> = path.split('/').filter(|p| !p.is_empty()).map(String::from).collect();
        let mut hops = 0;
        'walk: loop {
            for i in 0..todo.len() {
                let prefix = todo[..=i].join("/");
                let is_last = i + 1 == todo.len();
                if (follow_last || !is_last)
                    && let Some(EntryKind::Symlink(target)) = view.files.get(&prefix).map(|e| &e.kind)
                {
                    hops += 1;
                    if hops > MAX_SYMLINK_HOPS {
                        return None;
                    }
                    let joined = join_in_scope(parent(&prefix), target);
                    let mut next: Vec<String> = joined.split('/').filter(|p| !p.is_empty()).map(String::from).collect();
                    next.extend(todo[i + 1..].iter().cloned());
                    todo = next;
                    continue 'walk;
                }
            }
            return Some(todo.join("/"));
        }
    }

    proptest::proptest! {
        /// Random trees of directories, files and symlinks (relative, absolute, dangling, looping): every path
        /// resolves as the component-by-component walk resolves it.
        #[test]
        fn resolution_agrees_with_the_component_walk(
            entries in proptest::collection::vec(("[abc]{1,2}(/[abc]{1,2}){0,3}", 0u8..3, "(/|\\.\\./|)[abc]{1,2}(/[abc]{1,2}){0,2}"), 0..24),
            lookups in proptest::collection::vec("[abc]{1,2}(/{1,2}[abc]{1,2}){0,4}", 1..12),
        ) {
            let mut b = FsBuilder::new();
            let changes = entries
                .iter()
                .map(|(path, kind, target)| match kind {
                    0 => dir(path, 0),
                    1 => file(path, 0, "x"),
                    _ => link(path, 0, target),
                })
                .collect();
            layer(&mut b, changes);
            let view = b.build();
            for path in &lookups {
                for follow in [true, false] {
                    proptest::prop_assert_eq!(view.resolve_path(path, follow), resolve_reference(&view, path, follow), "{} {}", path, follow);
                }
            }
        }
    }

    fn layer(b: &mut FsBuilder, changes: Vec<Change>) {
        let index = b.view.layers.len();
        b.begin_layer(LayerInfo {
            index,
            digest: None,
            diff_id: None,
            created_by: None,
        });
        for c in changes {
            b.apply(c);
        }
        b.finish_layer();
    }

    #[test]
    fn whiteout_hides_lower_file_and_keeps_it_as_deleted() {
        let mut b = FsBuilder::new();
        layer(
            &mut b,
            vec![dir("app", 0), file("app/secret.env", 0, "KEY=1"), file("app/keep", 0, "x")],
        );
        layer(&mut b, vec![classify("app/.wh.secret.env").unwrap()]);
        let v = b.build();
        assert!(v.get("app/secret.env").is_none());
        assert_eq!(v.get("app/keep").unwrap().layer, 0);
        let h = &v.hidden()[0];
        assert_eq!(
            (h.entry.path.as_str(), h.hidden_in, h.by),
            ("app/secret.env", 1, HiddenBy::Whiteout)
        );
        assert_eq!(&*h.entry.content.clone().unwrap(), b"KEY=1");
    }

    #[test]
    fn opaque_dir_hides_lower_children_but_not_its_own_layer() {
        let mut b = FsBuilder::new();
        layer(&mut b, vec![dir("d", 0), file("d/old", 0, "o")]);
        // The marker comes after the new child inside the same tar: order must not matter.
        layer(
            &mut b,
            vec![dir("d", 1), file("d/new", 1, "n"), classify("d/.wh..wh..opq").unwrap()],
        );
        let v = b.build();
        assert!(v.get("d/old").is_none());
        assert_eq!(v.get("d/new").unwrap().layer, 1);
        assert!(v.get("d").is_some());
    }

    #[test]
    fn whiteout_of_directory_removes_subtree_and_file_replaces_dir() {
        let mut b = FsBuilder::new();
        layer(&mut b, vec![dir("a", 0), file("a/x", 0, "1"), dir("b", 0), file("b/y", 0, "2")]);
        layer(
            &mut b,
            vec![classify("a/.wh.x").unwrap(), classify(".wh.a").unwrap(), file("b", 1, "now a file")],
        );
        let v = b.build();
        assert!(v.get("a").is_none() && v.get("a/x").is_none() && v.get("b/y").is_none());
        assert_eq!(v.get("b").unwrap().kind, EntryKind::File);
        assert_eq!(v.hidden().len(), 2);
    }

    #[test]
    fn overwrite_keeps_history_and_reports_last_writer() {
        let mut b = FsBuilder::new();
        layer(&mut b, vec![file("etc/x", 0, "v1")]);
        layer(&mut b, vec![file("etc/x", 1, "v2")]);
        let v = b.build();
        assert_eq!(v.get("etc/x").unwrap().layer, 1);
        let versions: Vec<_> = v.versions("etc/x").map(|e| e.layer).collect();
        assert_eq!(versions, vec![0, 1]);
    }

    #[test]
    fn hardlinks_share_their_target_content() {
        let mut b = FsBuilder::new();
        let hard = Change::Put(FileEntry {
            path: "usr/bin/b".into(),
            kind: EntryKind::Hardlink("usr/bin/a".into()),
            size: 0,
            mode: 0o755,
            layer: 0,
            content: None,
        });
        layer(&mut b, vec![file("usr/bin/a", 0, "ELF..."), hard]);
        let v = b.build();
        assert_eq!(v.read("usr/bin/b").unwrap(), b"ELF...");
        assert_eq!(v.get("usr/bin/b").unwrap().size, 6);
    }

    #[test]
    fn symlinks_resolve_in_scope_and_writes_follow_parent_links() {
        let mut b = FsBuilder::new();
        layer(
            &mut b,
            vec![
                dir("usr/lib", 0),
                file("usr/lib/os-release", 0, "ID=debian"),
                link("etc/os-release", 0, "../usr/lib/os-release"),
                link("escape", 0, "/"),
                link("up", 0, "../../../.."),
                link("loop", 0, "loop"),
            ],
        );
        layer(&mut b, vec![file("escape/etc/passwd", 1, "root:x:0:0")]);
        let v = b.build();
        assert_eq!(v.read("etc/os-release").unwrap(), b"ID=debian");
        // A symlink to / leads back to the image root, never to the host.
        assert_eq!(v.get("etc/passwd").unwrap().layer, 1);
        assert_eq!(v.read("up/usr/lib/os-release").unwrap(), b"ID=debian");
        assert!(v.resolve("loop").is_none());
    }
}
