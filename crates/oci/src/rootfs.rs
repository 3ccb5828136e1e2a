//! Reading an unpacked root filesystem directory as a single layer.

use std::fs;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use crate::error::{Error, Result};
use crate::fs::EntryKind;
use crate::layer::{Interest, LayerChanges, Origin};

/// One entry found by the walk, before its content is read.
struct Found {
    path: String,
    kind: EntryKind,
    size: u64,
    mode: u32,
    full: std::path::PathBuf,
}

/// Walks `root` without following symlinks, so a link to `/` can't lead the scan onto the host,
/// then reads the wanted files on all cores (results stay in walk order).
pub(crate) fn read_rootfs(root: &Path, interest: &dyn Interest) -> Result<LayerChanges> {
    let shown = root.display().to_string();
    let mut out = LayerChanges::default();
    let mut found = Vec::new();
    let mut stack = vec![String::new()];
    while let Some(rel) = stack.pop() {
        let dir = if rel.is_empty() { root.to_path_buf() } else { root.join(&rel) };
        let read = match fs::read_dir(&dir) {
            Ok(r) => r,
            Err(e) if rel.is_empty() => return Err(Error::io(&shown, e)),
            Err(e) => {
                out.warnings.push(format!("{shown}: skipped {rel}: {e}"));
                continue;
            }
        };
        let mut names: Vec<_> = read.filter_map(|e| e.ok()).collect();
        names.sort_by_key(|e| e.file_name());
        for dirent in names {
            let name = dirent.file_name().to_string_lossy().into_owned();
            let path = if rel.is_empty() { name } else { format!("{rel}/{name}") };
            let meta = match fs::symlink_metadata(dirent.path()) {
                Ok(m) => m,
                Err(e) => {
                    out.warnings.push(format!("{shown}: skipped {path}: {e}"));
                    continue;
                }
            };
            let ft = meta.file_type();
            let kind = if ft.is_dir() {
                stack.push(path.clone());
                EntryKind::Dir
            } else if ft.is_symlink() {
                let target = fs::read_link(dirent.path()).map_err(|e| Error::io(format!("{shown}: {path}"), e))?;
                EntryKind::Symlink(target.to_string_lossy().into_owned())
            } else if ft.is_file() {
                EntryKind::File
            } else {
                EntryKind::Other
            };
            found.push(Found {
                path,
                kind,
                size: meta.size(),
                mode: meta.permissions().mode() & 0o7777,
                full: dirent.path(),
            });
        }
    }
    // Files differ wildly in size: hand them out one at a time, keep the results in walk order.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 8);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let slots: Vec<std::sync::Mutex<Option<Result<LayerChanges>>>> = found.iter().map(|_| std::sync::Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let origin = Origin {
                    input: &shown,
                    layer: 0,
                    interest,
                };
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(f) = found.get(i) else { break };
                    let mut part = LayerChanges::default();
                    let r = part
                        .put(&origin, f.path.clone(), f.kind.clone(), f.size, f.mode, |size| {
                            let mut buf = Vec::with_capacity(size.min(1 << 20) as usize);
                            fs::File::open(&f.full)?.take(size).read_to_end(&mut buf)?;
                            Ok(buf)
                        })
                        .map(|()| part);
                    *slots[i].lock().expect("no thread panics while holding a slot") = Some(r);
                }
            });
        }
    });
    for slot in slots {
        let part = slot.into_inner().expect("no thread panicked").expect("every entry was read")?;
        out.changes.extend(part.changes);
        out.warnings.extend(part.warnings);
    }
    Ok(out)
}
