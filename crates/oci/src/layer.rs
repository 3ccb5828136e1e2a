//! Reading one layer: decompression by magic bytes, tar entries into tree changes.

use std::io::{BufRead, Read};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::fs::{Change, EntryKind, EntryMeta, FileEntry, classify};
use crate::path::normalize_entry;
use crate::tar_entries::{MemberType, TarEntries};

/// Decides which files' bytes a scan keeps, so one pass over each layer feeds every consumer.
pub trait Interest: Sync {
    /// Whether to read this regular file, and the most bytes worth reading.
    ///
    /// A file larger than the limit is skipped with a warning rather than read.
    fn wants(&self, entry: &EntryMeta) -> Option<u64>;

    /// Reduces the bytes of a wanted file to what the view keeps (all of them by default).
    ///
    /// Lets a consumer read a large file (say a binary) but keep only what it
    /// extracted (its build info), so memory stays small.
    /// The bytes are borrowed from a buffer the reader reuses for the next file, so nothing is copied unless kept.
    fn keep(&self, entry: &EntryMeta, bytes: &[u8]) -> Option<Vec<u8>> {
        let _ = entry;
        Some(bytes.to_vec())
    }
}

/// Two interests served by one pass over the layers.
///
/// Each file is read once if either side wants it (up to the larger limit) and handed to each side that wants
/// it within its own limit; the kept bytes of both travel together. Split the view afterwards with
/// [`FsView::map_content`] and [`Both::first`] / [`Both::second`].
pub struct Both<A, B>(pub A, pub B);

impl<A, B> Both<A, B> {
    /// What the first interest kept, from a combined content.
    pub fn first(content: &[u8]) -> Option<Vec<u8>> {
        Self::split(content).0.map(<[u8]>::to_vec)
    }

    /// What the second interest kept, from a combined content.
    pub fn second(content: &[u8]) -> Option<Vec<u8>> {
        Self::split(content).1.map(<[u8]>::to_vec)
    }

    // Layout: one flag byte (bit 0: first present, bit 1: second present), the first's length as u64 LE,
    // the first's bytes, the second's bytes.
    fn split(content: &[u8]) -> (Option<&[u8]>, Option<&[u8]>) {
        let Some((&flags, rest)) = content.split_first() else {
            return (None, None);
        };
        let Some((len, rest)) = rest.split_first_chunk::<8>() else {
            return (None, None);
        };
        let len = (u64::from_le_bytes(*len) as usize).min(rest.len());
        let (a, b) = rest.split_at(len);
        ((flags & 1 != 0).then_some(a), (flags & 2 != 0).then_some(b))
    }
}

impl<A: Interest, B: Interest> Interest for Both<A, B> {
    fn wants(&self, entry: &EntryMeta) -> Option<u64> {
        match (self.0.wants(entry), self.1.wants(entry)) {
            (None, None) => None,
            (a, b) => Some(a.unwrap_or(0).max(b.unwrap_or(0))),
        }
    }

    fn keep(&self, entry: &EntryMeta, bytes: &[u8]) -> Option<Vec<u8>> {
        let within = |limit: Option<u64>| limit.is_some_and(|l| bytes.len() as u64 <= l);
        let a = within(self.0.wants(entry)).then(|| self.0.keep(entry, bytes)).flatten();
        let b = within(self.1.wants(entry)).then(|| self.1.keep(entry, bytes)).flatten();
        if a.is_none() && b.is_none() {
            return None;
        }
        let a_len = a.as_ref().map_or(0, Vec::len);
        let mut out = Vec::with_capacity(9 + a_len + b.as_ref().map_or(0, Vec::len));
        out.push(a.is_some() as u8 | (b.is_some() as u8) << 1);
        out.extend_from_slice(&(a_len as u64).to_le_bytes());
        out.extend(a.unwrap_or_default());
        out.extend(b.unwrap_or_default());
        Some(out)
    }
}

/// An interest in no file's content: builds the tree only.
pub struct NoContent;

impl Interest for NoContent {
    fn wants(&self, _: &EntryMeta) -> Option<u64> {
        None
    }
}

/// The compression a layer stream uses, told by its first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// A plain tar.
    None,
    /// gzip (`1f 8b`).
    Gzip,
    /// zstd (`28 b5 2f fd`).
    Zstd,
}

impl Compression {
    /// Detects the compression from the stream's first bytes.
    pub fn sniff(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }
}

/// Wraps `raw` in the decompressor its first bytes call for.
pub fn decompress<'a, R: BufRead + 'a>(mut raw: R, input: &str) -> Result<Box<dyn Read + 'a>> {
    let head = raw.fill_buf().map_err(|e| Error::io(input, e))?;
    Ok(match Compression::sniff(head) {
        Compression::None => Box::new(raw),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(raw)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(raw).map_err(|e| Error::io(input, e))?),
    })
}

/// Where entries come from: the input's name, the layer index and what to keep.
#[derive(Clone, Copy)]
pub(crate) struct Origin<'a> {
    pub input: &'a str,
    pub layer: usize,
    pub interest: &'a dyn Interest,
}

/// What reading one layer produced, ready to apply to an [`crate::FsBuilder`].
#[derive(Default)]
pub struct LayerChanges {
    pub(crate) changes: Vec<Change>,
    /// Non-fatal problems, each naming the file.
    pub warnings: Vec<String>,
    /// Files not read for being over their kind's size limit: path, size, limit. Reported once per image.
    pub oversized: Vec<(String, u64, u64)>,
}

impl LayerChanges {
    /// Adds one entry, reading its content when the interest wants it.
    pub(crate) fn put<B>(
        &mut self,
        origin: &Origin<'_>,
        path: String,
        kind: EntryKind,
        size: u64,
        mode: u32,
        content: impl FnOnce(u64) -> std::io::Result<B>,
    ) -> Result<()>
    where
        B: AsRef<[u8]>,
    {
        let Origin { input, layer, interest } = *origin;
        let mut kept = None;
        if kind == EntryKind::File
            && let Some(limit) = interest.wants(&EntryMeta {
                path: &path,
                size,
                mode,
                layer,
            })
        {
            if size > limit {
                self.oversized.push((path.clone(), size, limit));
            } else {
                let bytes = content(size).map_err(|e| tar_error(&format!("{input}: {path}"), e))?;
                let meta = EntryMeta {
                    path: &path,
                    size,
                    mode,
                    layer,
                };
                kept = interest.keep(&meta, bytes.as_ref()).map(Arc::<[u8]>::from);
            }
        }
        self.changes.push(Change::Put(FileEntry {
            path,
            kind,
            size,
            mode,
            layer,
            content: kept,
        }));
        Ok(())
    }
}

/// Names truncation for what it is; other errors pass through.
pub(crate) fn tar_error(input: &str, e: std::io::Error) -> Error {
    if e.kind() == std::io::ErrorKind::UnexpectedEof || e.to_string().contains("unexpected EOF") || e.to_string().contains("incomplete") {
        Error::invalid(input, format!("layer ends early; the image is truncated or corrupt ({e})"))
    } else {
        Error::invalid(input, format!("not a readable layer tar ({e})"))
    }
}

/// Reads a (decompressed) layer tar into changes for layer number `layer`.
pub fn read_layer_tar<R: Read>(reader: R, input: &str, layer: usize, interest: &dyn Interest) -> Result<LayerChanges> {
    let mut out = LayerChanges::default();
    // One buffer for every file of the layer: no allocation (and page faults) per file.
    let mut buf = Vec::new();
    let mut members = TarEntries::new(reader);
    while let Some(member) = members.next_member().map_err(|e| tar_error(input, e))? {
        let raw_name = String::from_utf8_lossy(&member.path).into_owned();
        let path = normalize_entry(&raw_name).map_err(|why| Error::UnsafePath {
            input: input.to_string(),
            path: raw_name.clone(),
            why,
        })?;
        if path.is_empty() {
            continue;
        }
        if let Some(change) = classify(&path) {
            out.changes.push(change);
            continue;
        }
        let link_target = || {
            if member.link.is_empty() {
                return Err(Error::invalid(input, format!("link {raw_name:?} has no target")));
            }
            Ok(String::from_utf8_lossy(&member.link).into_owned())
        };
        let kind = match member.kind {
            MemberType::File | MemberType::Sparse => EntryKind::File,
            MemberType::Dir => EntryKind::Dir,
            MemberType::Symlink => EntryKind::Symlink(link_target()?),
            MemberType::Hardlink => {
                let target = link_target()?;
                let normalized = normalize_entry(&target).map_err(|why| Error::UnsafePath {
                    input: input.to_string(),
                    path: target.clone(),
                    why,
                })?;
                EntryKind::Hardlink(normalized)
            }
            MemberType::Special => EntryKind::Other,
            MemberType::Other => continue,
        };
        let buf = &mut buf;
        let members = &mut members;
        out.put(
            &Origin { input, layer, interest },
            path,
            kind,
            member.size,
            member.mode,
            move |size| {
                members.read_content(buf, size)?;
                Ok(&buf[..])
            },
        )?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keeps files under `prefix` up to `limit` bytes, upper-cased.
    struct Prefix(&'static str, u64);

    impl Interest for Prefix {
        fn wants(&self, entry: &EntryMeta) -> Option<u64> {
            entry.path.starts_with(self.0).then_some(self.1)
        }
        fn keep(&self, _: &EntryMeta, bytes: &[u8]) -> Option<Vec<u8>> {
            (!bytes.is_empty()).then(|| bytes.to_ascii_uppercase())
        }
    }

    #[test]
    fn both_hands_each_side_what_it_wants_within_its_limit() {
        let both = Both(Prefix("etc/", 4), Prefix("etc/pass", 100));
        let meta = |path| EntryMeta {
            path,
            size: 6,
            mode: 0o644,
            layer: 0,
        };
        assert_eq!(both.wants(&meta("etc/passwd")), Some(100));
        assert_eq!(both.wants(&meta("usr/bin")), None);

        let kept = both.keep(&meta("etc/passwd"), b"root:x").unwrap();
        assert_eq!(
            Both::<Prefix, Prefix>::first(&kept),
            None,
            "6 bytes is over the first side's 4-byte limit"
        );
        assert_eq!(Both::<Prefix, Prefix>::second(&kept).as_deref(), Some(&b"ROOT:X"[..]));

        let small = EntryMeta {
            path: "etc/pass",
            size: 2,
            mode: 0o644,
            layer: 0,
        };
        let kept = both.keep(&small, b"ab").unwrap();
        assert_eq!(Both::<Prefix, Prefix>::first(&kept).as_deref(), Some(&b"AB"[..]));
        assert_eq!(Both::<Prefix, Prefix>::second(&kept).as_deref(), Some(&b"AB"[..]));

        assert_eq!(both.keep(&small, b""), None, "neither side kept anything");
        assert_eq!(Both::<Prefix, Prefix>::first(b""), None);
        assert_eq!(
            Both::<Prefix, Prefix>::second(&[3, 9]),
            None,
            "truncated content decodes to nothing"
        );
    }
}
