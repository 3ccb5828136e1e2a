//! Lockfiles and manifests: the packages a project pins, for source mode (`customs scan --source DIR`).
//!
//! Each format is a module with one `parse(text, location)`; every package carries the file and line that
//! named it, whether it is a direct dependency where the format says, and whether only development needs it.
//! A file that is not the format its name says is an error naming the file; a line a format cannot pin (an
//! unpinned requirement) is a warning, never a guess.

mod cargo;
mod composer;
mod gemfile;
mod go_mod;
mod json_keys;
mod npm;
mod pipfile;
mod python_lock;
mod requirements;
mod yarn;

use crate::package::{Package, PackageKind, purl};

/// The lockfile and manifest formats source mode reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// npm `package-lock.json` (lockfile v1, v2, v3) and `npm-shrinkwrap.json`.
    NpmLock,
    /// `yarn.lock`, classic (v1) and berry.
    YarnLock,
    /// Rust `Cargo.lock`.
    CargoLock,
    /// `poetry.lock`.
    PoetryLock,
    /// `uv.lock`.
    UvLock,
    /// `Pipfile.lock`.
    PipfileLock,
    /// `requirements*.txt`: only `==` pins.
    Requirements,
    /// Go `go.mod`.
    GoMod,
    /// Ruby `Gemfile.lock`.
    GemfileLock,
    /// PHP `composer.lock`.
    ComposerLock,
}

impl Format {
    /// The format a file's name says, if any.
    pub fn of(path: &str) -> Option<Format> {
        let name = path.rsplit('/').next().unwrap_or(path);
        Some(match name {
            "package-lock.json" | "npm-shrinkwrap.json" => Format::NpmLock,
            "yarn.lock" => Format::YarnLock,
            "Cargo.lock" => Format::CargoLock,
            "poetry.lock" => Format::PoetryLock,
            "uv.lock" => Format::UvLock,
            "Pipfile.lock" => Format::PipfileLock,
            "go.mod" => Format::GoMod,
            "Gemfile.lock" | "gems.locked" => Format::GemfileLock,
            "composer.lock" => Format::ComposerLock,
            _ if name.starts_with("requirements") && name.ends_with(".txt") => Format::Requirements,
            _ => return None,
        })
    }

    /// How reports name the format.
    pub fn name(self) -> &'static str {
        match self {
            Format::NpmLock => "package-lock.json",
            Format::YarnLock => "yarn.lock",
            Format::CargoLock => "Cargo.lock",
            Format::PoetryLock => "poetry.lock",
            Format::UvLock => "uv.lock",
            Format::PipfileLock => "Pipfile.lock",
            Format::Requirements => "requirements.txt",
            Format::GoMod => "go.mod",
            Format::GemfileLock => "Gemfile.lock",
            Format::ComposerLock => "composer.lock",
        }
    }
}

/// What one lockfile holds.
#[derive(Debug, Default)]
pub struct Parsed {
    /// Its packages, in file order.
    pub packages: Vec<Package>,
    /// Lines it could not pin (`requirements.txt: 3: flask>=2 is not pinned`).
    pub warnings: Vec<String>,
}

/// Parses `bytes` as `format`; `location` names the file in packages and errors.
pub fn parse(format: Format, bytes: &[u8], location: &str) -> Result<Parsed, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| format!("{location}: not UTF-8 ({e})"))?;
    let found = match format {
        Format::NpmLock => npm::parse(text, location),
        Format::YarnLock => yarn::parse(text, location),
        Format::CargoLock => cargo::parse(text, location),
        Format::PoetryLock => python_lock::parse(text, location, python_lock::Flavor::Poetry),
        Format::UvLock => python_lock::parse(text, location, python_lock::Flavor::Uv),
        Format::PipfileLock => pipfile::parse(text, location),
        Format::Requirements => requirements::parse(text, location),
        Format::GoMod => go_mod::parse(text, location),
        Format::GemfileLock => gemfile::parse(text, location),
        Format::ComposerLock => composer::parse(text, location),
    };
    found.map_err(|e| format!("{location}: not a valid {}: {e}", format.name()))
}

/// A package a lockfile names.
pub(crate) struct Pin<'a> {
    pub kind: PackageKind,
    /// For PURLs: npm scope, Go module path before the last `/`.
    pub namespace: Option<&'a str>,
    /// For PURLs: the rest of the name.
    pub short: &'a str,
    /// The name as the ecosystem spells it.
    pub name: &'a str,
    pub version: &'a str,
    pub line: u32,
    pub direct: Option<bool>,
    pub dev: bool,
}

impl Pin<'_> {
    pub(crate) fn package(&self, location: &str) -> Package {
        Package {
            name: self.name.to_string(),
            version: self.version.to_string(),
            kind: self.kind,
            source_name: None,
            source_version: None,
            arch: None,
            licenses: Vec::new(),
            purl: purl(self.kind, self.namespace, self.short, self.version, &[]),
            location: location.to_string(),
            layer: None,
            line: Some(self.line),
            direct: self.direct,
            dev: self.dev,
        }
    }
}

/// Line numbers of byte offsets in one text.
pub(crate) struct Lines {
    starts: Vec<usize>,
}

impl Lines {
    pub(crate) fn new(text: &str) -> Lines {
        let mut starts = vec![0];
        starts.extend(memchr::memchr_iter(b'\n', text.as_bytes()).map(|i| i + 1));
        Lines { starts }
    }

    /// The 1-based line holding byte `offset`.
    pub(crate) fn of(&self, offset: usize) -> u32 {
        (self.starts.partition_point(|&s| s <= offset)) as u32
    }
}

/// 1-based lines of the lines that are exactly `header` (TOML `[[package]]`), in order.
pub(crate) fn header_lines(text: &str, header: &str) -> Vec<u32> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| l.trim_end() == header)
        .map(|(i, _)| i as u32 + 1)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_come_from_file_names() {
        assert_eq!(Format::of("app/package-lock.json"), Some(Format::NpmLock));
        assert_eq!(Format::of("requirements-dev.txt"), Some(Format::Requirements));
        assert_eq!(Format::of("src/go.mod"), Some(Format::GoMod));
        assert_eq!(Format::of("package.json"), None);
        assert_eq!(Format::of("go.sum"), None);
    }

    #[test]
    fn lines_of_offsets() {
        let lines = Lines::new("a\nbc\n\nd");
        assert_eq!([0, 1, 2, 4, 5, 6].map(|o| lines.of(o)), [1, 1, 2, 2, 3, 4]);
    }

    #[test]
    fn a_file_that_is_not_its_format_is_named() {
        for format in [Format::NpmLock, Format::CargoLock, Format::PoetryLock, Format::PipfileLock] {
            let err = parse(format, b"{ not [ this", "proj/x").unwrap_err();
            assert!(err.starts_with("proj/x: not a valid"), "{err}");
        }
        assert!(parse(Format::YarnLock, &[0xff, 0xfe], "y").unwrap_err().contains("not UTF-8"));
    }
}
