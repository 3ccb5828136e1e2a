//! Reading an unpacked root filesystem directory as a single layer.

use std::fs;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::sync::Mutex;

use ignore::{WalkBuilder, WalkState};

use crate::error::{Error, Result};
use crate::fs::EntryKind;
use crate::layer::{Interest, LayerChanges, Origin};

/// What one walker thread read: `(path, its changes)` in any order, plus the first fatal error.
#[derive(Default)]
struct Harvest {
    parts: Vec<(String, LayerChanges)>,
    warnings: Vec<String>,
    error: Option<Error>,
}

/// Top-level folders whose contents are never walked: a live system's kernel interfaces (`trivy rootfs /` skips
/// them too). In an unpacked image they are empty mount points.
const KERNEL_FOLDERS: [&str; 3] = ["proc", "sys", "dev"];

/// Unreadable entries named one by one before the rest are only counted.
const NAMED_SKIPS: usize = 10;

/// Walks `root` without following symlinks, so a link to `/` can't lead the scan onto the host. Threads walk
/// and read at once (directory listing, `stat` and reads overlap); entries come out sorted by path. `proc`,
/// `sys` and `dev` at the top are not walked; an entry that cannot be read is a warning, never the end of the
/// scan (a live root filesystem has unreadable ones).
pub(crate) fn read_rootfs(root: &Path, interest: &dyn Interest) -> Result<LayerChanges> {
    let shown = root.display().to_string();
    // The parallel walker reports an unreadable root as an entry error; name it plainly instead.
    fs::read_dir(root).map_err(|e| Error::io(&shown, e))?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 8);
    let harvest = Mutex::new(Harvest::default());
    WalkBuilder::new(root)
        .standard_filters(false)
        .follow_links(false)
        .filter_entry(|e| !(e.depth() == 1 && e.file_name().to_str().is_some_and(|n| KERNEL_FOLDERS.contains(&n))))
        .threads(threads)
        .build_parallel()
        .run(|| {
            let mut mine = ThreadHarvest {
                local: Harvest::default(),
                shared: &harvest,
                buf: Vec::new(),
            };
            let shown = &shown;
            Box::new(move |entry| {
                let entry = match entry {
                    Ok(e) => e,
                    Err(e) => {
                        mine.local.warnings.push(format!("{shown}: skipped {e}"));
                        return WalkState::Continue;
                    }
                };
                if entry.depth() == 0 {
                    return WalkState::Continue;
                }
                match read_entry(root, shown, interest, &entry, &mut mine.buf) {
                    Ok(Some(part)) => mine.local.parts.push(part),
                    Ok(None) => {}
                    Err(e) => {
                        mine.local.error = Some(e);
                        return WalkState::Quit;
                    }
                }
                WalkState::Continue
            })
        });
    let mut harvest = harvest.into_inner().expect("no walker thread panicked");
    if let Some(e) = harvest.error {
        return Err(e);
    }
    harvest.parts.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let mut out = LayerChanges {
        warnings: harvest.warnings,
        ..LayerChanges::default()
    };
    out.warnings.sort();
    for (_, part) in harvest.parts {
        out.changes.extend(part.changes);
        out.warnings.extend(part.warnings);
    }
    // Name the first unreadable entries, count the rest: a live root has thousands.
    let skipped: Vec<usize> = (0..out.warnings.len())
        .filter(|&i| out.warnings[i].contains(": skipped "))
        .collect();
    if skipped.len() > NAMED_SKIPS {
        let extra = skipped.len() - NAMED_SKIPS;
        let drop: std::collections::HashSet<usize> = skipped[NAMED_SKIPS..].iter().copied().collect();
        let mut i = 0;
        out.warnings.retain(|_| {
            i += 1;
            !drop.contains(&(i - 1))
        });
        out.warnings
            .push(format!("{shown}: {extra} more entries skipped (unreadable, or over a size limit)"));
    }
    Ok(out)
}

/// A walker thread's results; handed to the shared harvest when the thread's visitor is dropped.
struct ThreadHarvest<'a> {
    local: Harvest,
    shared: &'a Mutex<Harvest>,
    /// Reused for every file this thread reads.
    buf: Vec<u8>,
}

impl Drop for ThreadHarvest<'_> {
    fn drop(&mut self) {
        let mut shared = self.shared.lock().unwrap_or_else(|p| p.into_inner());
        let local = std::mem::take(&mut self.local);
        shared.parts.extend(local.parts);
        shared.warnings.extend(local.warnings);
        if shared.error.is_none() {
            shared.error = local.error;
        }
    }
}

/// One walked entry as changes (`None` when it cannot be named or stat'ed: a warning says so).
fn read_entry(
    root: &Path,
    shown: &str,
    interest: &dyn Interest,
    entry: &ignore::DirEntry,
    buf: &mut Vec<u8>,
) -> Result<Option<(String, LayerChanges)>> {
    let mut part = LayerChanges::default();
    let Ok(rel) = entry.path().strip_prefix(root) else {
        return Ok(None);
    };
    let path = rel.to_string_lossy().into_owned();
    // `ignore` stats without following links when `follow_links` is off.
    let meta = match entry.metadata() {
        Ok(m) => m,
        Err(e) => {
            part.warnings.push(format!("{shown}: skipped {path}: {e}"));
            return Ok(Some((path, part)));
        }
    };
    let ft = meta.file_type();
    let kind = if ft.is_dir() {
        EntryKind::Dir
    } else if ft.is_symlink() {
        match fs::read_link(entry.path()) {
            Ok(target) => EntryKind::Symlink(target.to_string_lossy().into_owned()),
            Err(e) => {
                part.warnings.push(format!("{shown}: skipped {path}: {e}"));
                return Ok(Some((path, part)));
            }
        }
    } else if ft.is_file() {
        EntryKind::File
    } else {
        EntryKind::Other
    };
    let origin = Origin {
        input: shown,
        layer: 0,
        interest,
    };
    let full = entry.path();
    let put = part.put(
        &origin,
        path.clone(),
        kind,
        meta.size(),
        meta.permissions().mode() & 0o7777,
        move |size| {
            buf.clear();
            fs::File::open(full)?.take(size).read_to_end(buf)?;
            Ok(&buf[..])
        },
    );
    // A file that vanished or may not be read (a live system) is skipped with a warning.
    if let Err(e) = put {
        part.warnings.push(format!("{shown}: skipped {path}: {e}"));
    }
    Ok(Some((path, part)))
}
