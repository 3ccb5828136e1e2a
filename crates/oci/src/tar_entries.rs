//! A streaming reader of a layer's tar entries: headers, GNU long names, PAX records and old-GNU sparse files.
//!
//! The `tar` crate looks a PAX record set up four times per entry (size, uid, gid, then the path), each time
//! splitting all of it byte by byte, and keeps extension headers of any declared size in memory. A layer `d/d/…`
//! 10,000 deep holds 100 MB of PAX paths, so that was most of a scan of one. This reader parses each extension
//! header once, with `memchr`, bounded by [`EXTENSION_LIMIT`], and keeps only what a layer scan needs: path,
//! link target, type, mode, size and the content.

use std::io::{self, Read};

/// A block: headers and content are laid out in 512-byte units.
const BLOCK: usize = 512;

/// The largest GNU long name, long link or PAX record set accepted for one entry. Linux paths are at most
/// 4 KiB; a tree 100,000 levels deep needs 200 KB.
pub const EXTENSION_LIMIT: u64 = 1 << 20;

/// Sparse map entries accepted for one old-GNU sparse file (each costs 24 bytes of header).
const SPARSE_SEGMENT_LIMIT: usize = 1 << 16;

/// What kind of member a header describes, from its type flag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemberType {
    /// `0`, NUL or `7` (contiguous): a regular file.
    File,
    /// `1`: a hard link.
    Hardlink,
    /// `2`: a symbolic link.
    Symlink,
    /// `3`, `4`, `6`: a device or FIFO.
    Special,
    /// `5`: a directory.
    Dir,
    /// `S`: an old-GNU sparse file (content expanded by [`TarEntries::read_content`]).
    Sparse,
    /// Anything else (PAX global headers, vendor types): no meaning for the tree.
    Other,
}

/// One member, with its extension headers applied.
#[derive(Clone, Debug)]
pub struct Member {
    /// The path as written (PAX `path`, else the GNU long name, else the header's prefix and name).
    pub path: Vec<u8>,
    /// The link target as written, for links.
    pub link: Vec<u8>,
    /// The member type.
    pub kind: MemberType,
    /// Unix permission bits.
    pub mode: u32,
    /// Size of the content; for a sparse file the size it expands to.
    pub size: u64,
}

/// Reads members one after another; after [`TarEntries::next_member`] the content of that member can be read
/// with [`TarEntries::read_content`], and whatever is not read is skipped by the next call.
pub struct TarEntries<R> {
    inner: R,
    /// Stored content bytes of the current member not yet consumed, and the padding after them.
    unread: u64,
    padding: u64,
    /// The current member's sparse map (offset, length), when it is sparse.
    sparse: Vec<(u64, u64)>,
    done: bool,
}

fn invalid(message: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.into())
}

fn truncated() -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, "unexpected EOF inside a tar header")
}

/// Reads exactly one block; `Ok(false)` at a clean end of stream before any byte of it.
fn read_block(r: &mut impl Read, block: &mut [u8; BLOCK]) -> io::Result<bool> {
    let mut filled = 0;
    while filled < BLOCK {
        match r.read(&mut block[filled..]) {
            Ok(0) if filled == 0 => return Ok(false),
            Ok(0) => return Err(truncated()),
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// A numeric header field: octal digits (space or NUL padded), or GNU base-256 when the high bit is set.
fn number(field: &[u8], what: &str) -> io::Result<u64> {
    if field.first().is_some_and(|b| b & 0x80 != 0) {
        if field[0] & 0x40 != 0 {
            return Err(invalid(format!("negative {what} in a tar header")));
        }
        let mut value: u64 = (field[0] & 0x3f) as u64;
        for &b in &field[1..] {
            value = value
                .checked_mul(256)
                .and_then(|v| v.checked_add(b as u64))
                .ok_or_else(|| invalid(format!("{what} in a tar header overflows 64 bits")))?;
        }
        return Ok(value);
    }
    let digits: &[u8] = {
        let start = field.iter().position(|&b| b != b' ' && b != 0).unwrap_or(field.len());
        let rest = &field[start..];
        let end = rest.iter().position(|&b| b == b' ' || b == 0).unwrap_or(rest.len());
        &rest[..end]
    };
    let mut value: u64 = 0;
    for &b in digits {
        if !(b'0'..=b'7').contains(&b) {
            return Err(invalid(format!("{what} in a tar header is not an octal number")));
        }
        value = value
            .checked_mul(8)
            .and_then(|v| v.checked_add((b - b'0') as u64))
            .ok_or_else(|| invalid(format!("{what} in a tar header overflows 64 bits")))?;
    }
    Ok(value)
}

/// A NUL-terminated header string.
fn text(field: &[u8]) -> &[u8] {
    let end = memchr::memchr(0, field).unwrap_or(field.len());
    &field[..end]
}

/// The PAX records a layer scan uses.
#[derive(Default)]
struct Pax {
    path: Option<Vec<u8>>,
    linkpath: Option<Vec<u8>>,
    size: Option<u64>,
}

/// Parses `LEN key=value\n` records in one pass: each record's length says where the next starts.
fn parse_pax(data: &[u8]) -> io::Result<Pax> {
    let mut pax = Pax::default();
    let mut rest = data;
    while !rest.is_empty() {
        let space = memchr::memchr(b' ', rest).ok_or_else(|| invalid("malformed PAX record (no length)"))?;
        let len: usize = std::str::from_utf8(&rest[..space])
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| invalid("malformed PAX record (bad length)"))?;
        if len <= space + 1 || len > rest.len() || rest[len - 1] != b'\n' {
            return Err(invalid("malformed PAX record (length does not match)"));
        }
        let record = &rest[space + 1..len - 1];
        let eq = memchr::memchr(b'=', record).ok_or_else(|| invalid("malformed PAX record (no `=`)"))?;
        let (key, value) = (&record[..eq], &record[eq + 1..]);
        match key {
            b"path" => pax.path = Some(value.to_vec()),
            b"linkpath" => pax.linkpath = Some(value.to_vec()),
            b"size" => {
                let size = std::str::from_utf8(value)
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| invalid("malformed PAX size record"))?;
                pax.size = Some(size);
            }
            _ => {}
        }
        rest = &rest[len..];
    }
    Ok(pax)
}

fn member_type(flag: u8) -> MemberType {
    match flag {
        b'0' | 0 | b'7' => MemberType::File,
        b'1' => MemberType::Hardlink,
        b'2' => MemberType::Symlink,
        b'3' | b'4' | b'6' => MemberType::Special,
        b'5' => MemberType::Dir,
        b'S' => MemberType::Sparse,
        _ => MemberType::Other,
    }
}

impl<R: Read> TarEntries<R> {
    /// Reads the tar stream `inner` (already decompressed).
    pub fn new(inner: R) -> Self {
        TarEntries {
            inner,
            unread: 0,
            padding: 0,
            sparse: Vec::new(),
            done: false,
        }
    }

    /// Discards `n` bytes of the stream.
    fn skip(&mut self, n: u64) -> io::Result<()> {
        let copied = io::copy(&mut (&mut self.inner).take(n), &mut io::sink())?;
        if copied < n {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "layer ends inside a file"));
        }
        Ok(())
    }

    /// Reads the content of an extension header (long name or PAX records), bounded.
    fn extension(&mut self, size: u64, what: &str) -> io::Result<Vec<u8>> {
        if size > EXTENSION_LIMIT {
            return Err(invalid(format!(
                "{what} header of {size} bytes (at most {EXTENSION_LIMIT} are accepted)"
            )));
        }
        let mut data = Vec::with_capacity(size as usize);
        (&mut self.inner).take(size).read_to_end(&mut data)?;
        if (data.len() as u64) < size {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "layer ends inside a tar header"));
        }
        self.skip(size.next_multiple_of(BLOCK as u64) - size)?;
        Ok(data)
    }

    /// The next member, or `None` at the end of the archive (end of stream or a zero block).
    pub fn next_member(&mut self) -> io::Result<Option<Member>> {
        if self.done {
            return Ok(None);
        }
        self.skip(self.unread + self.padding)?;
        self.unread = 0;
        self.padding = 0;
        self.sparse.clear();
        let (mut long_name, mut long_link, mut pax): (Option<Vec<u8>>, Option<Vec<u8>>, Option<Pax>) = (None, None, None);
        let mut block = [0u8; BLOCK];
        loop {
            if !read_block(&mut self.inner, &mut block)? || block.iter().all(|&b| b == 0) {
                self.done = true;
                if long_name.is_some() || long_link.is_some() || pax.is_some() {
                    return Err(invalid("the archive ends after an extension header, with no member for it"));
                }
                return Ok(None);
            }
            let stored: u32 = number(&block[148..156], "checksum")? as u32;
            let sum: u32 = block[..148].iter().chain(&block[156..]).map(|&b| b as u32).sum::<u32>() + 8 * 32;
            if sum != stored {
                return Err(invalid("archive header checksum mismatch"));
            }
            let flag = block[156];
            let header_size = number(&block[124..136], "size")?;
            let once = |present: bool, what: &str| {
                if present {
                    Err(invalid(format!("two {what} headers describe one member")))
                } else {
                    Ok(())
                }
            };
            match flag {
                b'L' => {
                    once(long_name.is_some(), "long-name")?;
                    let mut name = self.extension(header_size, "GNU long-name")?;
                    name.truncate(memchr::memchr(0, &name).unwrap_or(name.len()));
                    long_name = Some(name);
                }
                b'K' => {
                    once(long_link.is_some(), "long-link")?;
                    let mut link = self.extension(header_size, "GNU long-link")?;
                    link.truncate(memchr::memchr(0, &link).unwrap_or(link.len()));
                    long_link = Some(link);
                }
                b'x' | b'X' => {
                    once(pax.is_some(), "PAX")?;
                    let data = self.extension(header_size, "PAX")?;
                    pax = Some(parse_pax(&data)?);
                }
                _ => {
                    let pax = pax.unwrap_or_default();
                    let ustar = &block[257..263] == b"ustar\0";
                    let path = match (pax.path, long_name) {
                        (Some(p), _) | (None, Some(p)) => p,
                        (None, None) => {
                            let name = text(&block[..100]);
                            let prefix = if ustar { text(&block[345..500]) } else { &[][..] };
                            if prefix.is_empty() {
                                name.to_vec()
                            } else {
                                [prefix, b"/", name].concat()
                            }
                        }
                    };
                    let link = match (pax.linkpath, long_link) {
                        (Some(l), _) | (None, Some(l)) => l,
                        (None, None) => text(&block[157..257]).to_vec(),
                    };
                    let kind = member_type(flag);
                    let stored_size = pax.size.unwrap_or(header_size);
                    let mut size = stored_size;
                    if kind == MemberType::Sparse {
                        size = self.read_sparse_map(&block, stored_size)?;
                    }
                    self.unread = stored_size;
                    self.padding = stored_size.next_multiple_of(BLOCK as u64) - stored_size;
                    return Ok(Some(Member {
                        path,
                        link,
                        kind,
                        mode: number(&block[100..108], "mode")? as u32 & 0o7777,
                        size,
                    }));
                }
            }
        }
    }

    /// Reads an old-GNU sparse header's map (and its extension blocks); returns the expanded size.
    fn read_sparse_map(&mut self, header: &[u8; BLOCK], stored: u64) -> io::Result<u64> {
        let real_size = number(&header[483..495], "sparse real size")?;
        let push = |entry: &[u8], sparse: &mut Vec<(u64, u64)>| -> io::Result<()> {
            if entry.iter().all(|&b| b == 0) {
                return Ok(());
            }
            if sparse.len() >= SPARSE_SEGMENT_LIMIT {
                return Err(invalid(format!("sparse file with over {SPARSE_SEGMENT_LIMIT} segments")));
            }
            sparse.push((number(&entry[..12], "sparse offset")?, number(&entry[12..24], "sparse length")?));
            Ok(())
        };
        let mut sparse = Vec::new();
        for i in 0..4 {
            push(&header[386 + 24 * i..386 + 24 * (i + 1)], &mut sparse)?;
        }
        let mut extended = header[482] != 0;
        let mut block = [0u8; BLOCK];
        while extended {
            if !read_block(&mut self.inner, &mut block)? {
                return Err(truncated());
            }
            for i in 0..21 {
                push(&block[24 * i..24 * (i + 1)], &mut sparse)?;
            }
            extended = block[504] != 0;
        }
        // Segments in order, inside the file, and holding exactly the stored bytes.
        let mut end = 0u64;
        let mut total = 0u64;
        for &(offset, len) in &sparse {
            let seg_end = offset.checked_add(len).filter(|&e| offset >= end && e <= real_size);
            end = seg_end.ok_or_else(|| invalid("sparse map segments overlap or run past the file's size"))?;
            total += len;
        }
        if total != stored {
            return Err(invalid("sparse map does not account for the stored bytes"));
        }
        self.sparse = sparse;
        Ok(real_size)
    }

    /// Reads the current member's content into `buf` (cleared first), expanding sparse holes with zeros.
    /// The caller has checked the member's size against what it is willing to hold.
    pub fn read_content(&mut self, buf: &mut Vec<u8>, size: u64) -> io::Result<()> {
        buf.clear();
        if self.sparse.is_empty() {
            (&mut self.inner).take(self.unread).read_to_end(buf)?;
            let read = buf.len() as u64;
            self.unread -= read;
            if read < size {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "layer ends inside this file"));
            }
            return Ok(());
        }
        buf.resize(size as usize, 0);
        for &(offset, len) in &std::mem::take(&mut self.sparse) {
            let part = &mut buf[offset as usize..(offset + len) as usize];
            self.inner.read_exact(part)?;
            self.unread -= len;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tar written by the `tar` crate (GNU long names for long paths) and its PAX variant.
    fn archive(entries: &[(&str, tar::EntryType, &[u8], &str)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for &(path, kind, data, link) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(kind);
            h.set_mode(0o640);
            h.set_size(data.len() as u64);
            if !link.is_empty() {
                b.append_link(&mut h, path, link).unwrap();
            } else {
                b.append_data(&mut h, path, data).unwrap();
            }
        }
        b.into_inner().unwrap()
    }

    fn all(bytes: &[u8]) -> io::Result<Vec<(Member, Vec<u8>)>> {
        let mut r = TarEntries::new(bytes);
        let mut out = Vec::new();
        while let Some(m) = r.next_member()? {
            let mut buf = Vec::new();
            // What a layer scan does: read only what fits its limit (a mutated header may claim terabytes).
            if matches!(m.kind, MemberType::File | MemberType::Sparse) && m.size < 1 << 20 {
                r.read_content(&mut buf, m.size)?;
            }
            out.push((m, buf));
        }
        Ok(out)
    }

    /// The same archive as the `tar` crate reads it: path, size and content per member.
    fn with_tar_crate(bytes: &[u8]) -> Vec<(Vec<u8>, u64, Vec<u8>)> {
        let mut archive = tar::Archive::new(bytes);
        let mut out = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let mut data = Vec::new();
            entry.read_to_end(&mut data).unwrap();
            out.push((entry.path_bytes().into_owned(), entry.size(), data));
        }
        out
    }

    fn agrees_with_tar_crate(bytes: &[u8]) {
        let ours: Vec<_> = all(bytes).unwrap().into_iter().map(|(m, data)| (m.path, m.size, data)).collect();
        assert_eq!(ours, with_tar_crate(bytes));
    }

    #[test]
    fn reads_what_the_tar_crate_writes_long_names_links_and_content() {
        let long = format!("{}/file", "dir".repeat(80));
        let bytes = archive(&[
            ("etc/passwd", tar::EntryType::Regular, b"root:x:0:0", ""),
            (&long, tar::EntryType::Regular, b"deep", ""),
            ("bin/sh", tar::EntryType::Symlink, b"", &"x".repeat(200)),
            ("usr/", tar::EntryType::Directory, b"", ""),
        ]);
        let got = all(&bytes).unwrap();
        assert_eq!(got.len(), 4);
        assert_eq!(
            (got[0].0.path.as_slice(), got[0].1.as_slice()),
            (&b"etc/passwd"[..], &b"root:x:0:0"[..])
        );
        assert_eq!((got[0].0.mode, got[0].0.size), (0o640, 10));
        assert_eq!(got[1].0.path, long.as_bytes(), "GNU long name");
        assert_eq!(got[1].1, b"deep");
        assert_eq!((got[2].0.kind, got[2].0.link.len()), (MemberType::Symlink, 200), "GNU long link");
        assert_eq!(got[3].0.kind, MemberType::Dir);
        agrees_with_tar_crate(&bytes);
    }

    #[test]
    fn pax_records_override_the_header_and_ustar_prefix_joins() {
        let mut pax_data = Vec::new();
        for (k, v) in [("mtime", "1.5"), ("path", "from/pax"), ("linkpath", "target")] {
            let body = format!(" {k}={v}\n");
            let mut len = body.len() + 1;
            if (len.to_string().len() + body.len()) != len {
                len += 1;
            }
            pax_data.extend(format!("{len}{body}").bytes());
        }
        let mut b = tar::Builder::new(Vec::new());
        let mut x = tar::Header::new_ustar();
        x.set_entry_type(tar::EntryType::XHeader);
        x.set_size(pax_data.len() as u64);
        b.append_data(&mut x, "PaxHeaders/x", pax_data.as_slice()).unwrap();
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        b.append_link(&mut h, "short", "ignored").unwrap();
        let mut u = tar::Header::new_ustar();
        u.set_entry_type(tar::EntryType::Regular);
        u.set_size(1);
        u.as_ustar_mut().unwrap().prefix[..3].copy_from_slice(b"usr");
        u.as_ustar_mut().unwrap().name[..3].copy_from_slice(b"lib");
        u.set_cksum();
        b.append(&u, &b"z"[..]).unwrap();
        let bytes = b.into_inner().unwrap();
        let got = all(&bytes).unwrap();
        assert_eq!(
            (got[0].0.path.as_slice(), got[0].0.link.as_slice()),
            (&b"from/pax"[..], &b"target"[..])
        );
        assert_eq!(got[1].0.path, b"usr/lib");
        assert_eq!(got[1].1, b"z");
        agrees_with_tar_crate(&bytes);
    }

    #[test]
    fn old_gnu_sparse_files_expand_with_zeros() {
        // 518 stored bytes: 512 at offset 0 and 6 at offset 1024 of a 2048-byte file (GNU tar aligns all but
        // the last segment to blocks and ends the map at the real size; the `tar` crate insists on both).
        let mut h = [0u8; BLOCK];
        h[..6].copy_from_slice(b"sparse");
        h[100..107].copy_from_slice(b"0000644");
        h[124..135].copy_from_slice(format!("{:011o}", 518).as_bytes());
        h[156] = b'S';
        h[257..265].copy_from_slice(b"ustar  \0");
        let octal = |v: u64| format!("{v:011o}").into_bytes();
        for (i, (off, len)) in [(0u64, 512u64), (1024, 6), (2048, 0)].into_iter().enumerate() {
            h[386 + 24 * i..386 + 24 * i + 11].copy_from_slice(&octal(off));
            h[386 + 24 * i + 12..386 + 24 * i + 23].copy_from_slice(&octal(len));
        }
        h[483..494].copy_from_slice(&octal(2048));
        h[148..156].fill(b' ');
        let sum: u32 = h.iter().map(|&b| b as u32).sum();
        h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
        let mut bytes = h.to_vec();
        let mut data = [b'h'; 2 * BLOCK];
        data[BLOCK..BLOCK + 6].copy_from_slice(b"tail!!");
        data[BLOCK + 6..].fill(0);
        bytes.extend(data);
        bytes.extend([0u8; 2 * BLOCK]);
        let got = all(&bytes).unwrap();
        assert_eq!((got[0].0.kind, got[0].0.size), (MemberType::Sparse, 2048));
        assert!(got[0].1[..512].iter().all(|&b| b == b'h'));
        assert!(got[0].1[512..1024].iter().all(|&b| b == 0));
        assert_eq!(&got[0].1[1024..1030], b"tail!!");
        assert_eq!(got[0].1.len(), 2048);
        agrees_with_tar_crate(&bytes);
    }

    #[test]
    fn hostile_headers_are_errors_not_allocations() {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::GNULongName);
        h.set_size(u32::MAX as u64);
        h.set_cksum();
        let err = all(h.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("at most"), "{err}");

        let mut bad = archive(&[("a", tar::EntryType::Regular, b"x", "")]);
        bad[0] ^= 1;
        assert!(all(&bad).unwrap_err().to_string().contains("checksum"));

        let whole = archive(&[("a", tar::EntryType::Regular, &[7; 2000], "")]);
        let err = all(&whole[..1200]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        let err = all(&whole[..300]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]
        /// Any mutation of a valid archive is read or refused, never a panic or an unbounded read.
        #[test]
        fn mutated_archives_never_panic(flips in proptest::collection::vec((0usize..4096, proptest::prelude::any::<u8>()), 1..8)) {
            let mut bytes = archive(&[
                ("etc/os-release", tar::EntryType::Regular, b"ID=debian\n", ""),
                (&"p/".repeat(120), tar::EntryType::Directory, b"", ""),
                ("lib/x", tar::EntryType::Symlink, b"", "../y"),
            ]);
            for (at, value) in flips {
                let at = at % bytes.len();
                bytes[at] = value;
            }
            let _ = all(&bytes);
        }
    }
}
