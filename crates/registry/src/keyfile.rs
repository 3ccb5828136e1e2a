//! Secret files the registry makes for itself on first start (the token key, webhook secrets): created once,
//! never overwritten, readable by the owner only.

use std::io::Write;
use std::path::Path;

/// Writes `contents` to a new file at `path` (mode 0600), creating its folder; fails if the file exists.
pub fn create_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(contents)
}

/// Writes `contents` to a new file at `path` (mode 0644), creating its folder; fails if the file exists.
pub fn create_public(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}
