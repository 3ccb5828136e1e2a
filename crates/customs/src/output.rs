//! Writing a report where the user pointed: standard output for `-` and `/dev/stdout`, through to the device or pipe for
//! character devices, FIFOs and sockets (`/dev/null`, `/dev/stdout`, a named pipe a reader waits on), and for
//! regular files (new or existing) through a temporary file and a rename in the same folder, so a reader never
//! sees half a report and a failed run leaves the old one.
//!
//! A symlink is followed, as every Unix tool does: its target is written (replaced atomically), the link stays.
//! New files get the mode the umask allows (0666 & !umask, 0644 typically); a replaced file keeps its mode.
//! No report holds a secret's value (every format masks them), so none needs a narrower mode than that.

use std::io::Write;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// Held while a report is written: `--timeout` waits for it, so a run cut short leaves no half-written report.
pub static WRITING: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Writes `text` to `path`, or to standard output when `path` is `None` or `-`.
pub fn emit(text: &str, path: Option<&Path>) -> Result<()> {
    let _writing = WRITING.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let path = match path {
        Some(p) if p != Path::new("-") => p,
        _ => return to_stdout(text),
    };
    // The process's own streams are written as they are: reopening /proc/self/fd/N fails for a pipe another user
    // created (`sudo -u` in CI), and would start a redirected file over at offset 0.
    match path.to_str() {
        Some("/dev/stdout" | "/dev/fd/1" | "/proc/self/fd/1") => return to_stdout(text),
        Some("/dev/stderr" | "/dev/fd/2" | "/proc/self/fd/2") => {
            let mut err = std::io::stderr().lock();
            return err.write_all(text.as_bytes()).context("writing to standard error");
        }
        _ => {}
    }
    // The kernel follows the links (including /proc's magic ones such as /dev/stdout -> /proc/self/fd/1).
    match std::fs::metadata(path) {
        Ok(m) if is_special(&m.file_type()) => write_through(text, path),
        Ok(m) if m.is_file() => {
            let target = std::fs::canonicalize(path).with_context(|| format!("resolving {}", path.display()))?;
            replace(text, &target, Some(m.permissions().mode()))
        }
        Ok(m) if m.is_dir() => anyhow::bail!("{}: is a folder; give a file name for the report", path.display()),
        Ok(_) => anyhow::bail!("{}: not a file, device or pipe; cannot write a report there", path.display()),
        // A new file, or a dangling link naming one.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => replace(text, &follow(path)?, None),
        Err(e) => Err(e).with_context(|| format!("checking {}", path.display())),
    }
}

/// Standard output; a closed pipe (`| head`) is not an error.
fn to_stdout(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => r.context("writing to standard output"),
    }
}

fn is_special(t: &std::fs::FileType) -> bool {
    t.is_char_device() || t.is_fifo() || t.is_socket() || t.is_block_device()
}

/// The file a dangling symlink names (for a path that does not exist yet: itself).
fn follow(path: &Path) -> Result<PathBuf> {
    let mut current = path.to_path_buf();
    // Bounded like the kernel's own symlink limit.
    for _ in 0..40 {
        match std::fs::symlink_metadata(&current) {
            Ok(m) if m.file_type().is_symlink() => {
                let link = std::fs::read_link(&current).with_context(|| format!("reading the link {}", current.display()))?;
                current = match current.parent() {
                    Some(dir) if link.is_relative() => dir.join(link),
                    _ => link,
                };
            }
            _ => return Ok(current),
        }
    }
    anyhow::bail!("{}: too many levels of symbolic links", path.display())
}

/// Devices and pipes are written in place: replacing `/dev/null` by a file, or a FIFO its reader waits on, would
/// break the system or the pipeline.
fn write_through(text: &str, path: &Path) -> Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    match f.write_all(text.as_bytes()).and_then(|()| f.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => r.with_context(|| format!("writing {}", path.display())),
    }
}

/// A regular file, new or replaced: written beside it, then renamed over it.
fn replace(text: &str, path: &Path, keep_mode: Option<u32>) -> Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let prefix = format!(".{name}.");
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(".tmp");
    // The kernel applies the umask to this mode, as it does for any file a shell redirection creates.
    let mode = keep_mode.map_or(0o666, |m| m & 0o7777);
    builder.permissions(std::fs::Permissions::from_mode(mode));
    let mut tmp = builder
        .tempfile_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    if let Some(m) = keep_mode {
        // The umask narrowed it at creation; a replaced file keeps exactly the mode it had.
        tmp.as_file().set_permissions(std::fs::Permissions::from_mode(m & 0o7777)).ok();
    }
    tmp.write_all(text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    tmp.persist(path).with_context(|| format!("replacing {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlinks_are_followed_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.json");
        std::fs::write(&real, "old").unwrap();
        std::os::unix::fs::symlink("real.json", dir.path().join("link.json")).unwrap();
        emit("new", Some(&dir.path().join("link.json"))).unwrap();
        assert!(
            std::fs::symlink_metadata(dir.path().join("link.json"))
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(std::fs::read_to_string(&real).unwrap(), "new");
        // A dangling link names the file to create.
        std::os::unix::fs::symlink("made.json", dir.path().join("dangling")).unwrap();
        emit("made", Some(&dir.path().join("dangling"))).unwrap();
        assert_eq!(std::fs::read_to_string(dir.path().join("made.json")).unwrap(), "made");
        // A loop is an error, not a hang.
        std::os::unix::fs::symlink("loop-b", dir.path().join("loop-a")).unwrap();
        std::os::unix::fs::symlink("loop-a", dir.path().join("loop-b")).unwrap();
        let e = emit("x", Some(&dir.path().join("loop-a"))).unwrap_err();
        assert!(
            format!("{e:#}").to_lowercase().contains("too many levels of symbolic links"),
            "{e:#}"
        );
    }

    #[test]
    fn replaced_files_keep_their_mode_and_new_ones_follow_the_umask() {
        let dir = tempfile::tempdir().unwrap();
        let kept = dir.path().join("kept.json");
        std::fs::write(&kept, "old").unwrap();
        std::fs::set_permissions(&kept, std::fs::Permissions::from_mode(0o640)).unwrap();
        emit("new", Some(&kept)).unwrap();
        assert_eq!(std::fs::metadata(&kept).unwrap().permissions().mode() & 0o777, 0o640);
        // The umask of this process (read and restored at once).
        let umask = unsafe {
            let u = libc::umask(0o022);
            libc::umask(u);
            u
        } as u32;
        let fresh = dir.path().join("fresh.json");
        emit("x", Some(&fresh)).unwrap();
        assert_eq!(std::fs::metadata(&fresh).unwrap().permissions().mode() & 0o777, 0o666 & !umask);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2, "no temporary file left behind");
    }
}
