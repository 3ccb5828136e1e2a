//! Reading import inputs: files, folders, zips and tar.gz archives, plain or gzipped, each classified by its
//! content and parsed into one [`Batch`] that the database writes in one transaction.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::db::DbError;
use crate::debian::Statement;
use crate::exploit::{Epss, Kev};
use crate::model::Advisory;
use crate::osv::Skipped;
use crate::severity::Scored;
use crate::{alpine, debian, exploit, osv, severity};

/// Largest single record file we read whole (OSV records are a few KiB; the Debian tracker ~100 MB). NVD
/// feeds and tar archives are streamed and not bound by it.
pub(crate) const MAX_FILE_BYTES: u64 = 1 << 30;
/// How much of a file is read to tell its format.
const HEAD_BYTES: usize = 64 << 10;

/// Everything one import read, before it is written.
#[derive(Default)]
pub(crate) struct Batch {
    /// Advisories by source name (`osv:PyPI`, …).
    pub advisories: BTreeMap<String, Vec<Advisory>>,
    /// Alpine secdb advisories by id: one CVE gathers every release's fixes.
    pub alpine: BTreeMap<String, Advisory>,
    /// Debian statements, merged per CVE when written.
    pub debian: Vec<Statement>,
    /// CVSS scores by (CVE, feed), the newest record's kept.
    pub scores: BTreeMap<(String, String), Scored>,
    /// The KEV catalog, when one was read (it replaces the stored one).
    pub kev: Option<Vec<Kev>>,
    /// EPSS scores, when a file of them was read (they replace the stored ones).
    pub epss: Option<Vec<Epss>>,
    /// The EPSS file's score date (`#model_version:…,score_date:2026-08-16T…`).
    pub epss_date: Option<String>,
    /// The KEV catalog's release date.
    pub kev_date: Option<String>,
    /// Paths each source came from.
    pub origins: BTreeMap<String, Vec<String>>,
    /// Records' newest date per source.
    pub newest: BTreeMap<String, String>,
    /// What was skipped on purpose.
    pub skipped: Skipped,
    /// Files read.
    pub files: usize,
}

impl Batch {
    /// A figure that grows with everything read, to tell whether a path added anything.
    fn size(&self) -> usize {
        self.advisories.values().map(Vec::len).sum::<usize>()
            + self.alpine.len()
            + self.debian.len()
            + self.scores.len()
            + self.kev.as_ref().map_or(0, |k| k.len() + 1)
            + self.epss.as_ref().map_or(0, |e| e.len() + 1)
    }

    fn newer(&mut self, source: &str, date: Option<&str>) {
        // Go's vulndb writes zero dates (`0001-01-01T00:00:00Z`): no date at all.
        let Some(date) = date.filter(|d| !d.is_empty() && !d.starts_with("0001-") && !d.starts_with("0000-")) else {
            return;
        };
        let slot = self.newest.entry(source.to_string()).or_default();
        if date > slot.as_str() {
            *slot = date.to_string();
        }
    }

    fn add_score(&mut self, scored: Scored, feed: &str) {
        // A record without a score (a CVE 5 record with SSVC only, an NVD entry awaiting analysis) rates nothing.
        if scored.scores.is_empty() {
            return;
        }
        self.newer(&format!("{feed}-severity"), Some(&scored.modified));
        let key = (scored.cve.clone(), feed.to_string());
        match self.scores.get(&key) {
            Some(old) if old.modified > scored.modified => {}
            _ => {
                self.scores.insert(key, scored);
            }
        }
    }

    fn add_advisory(&mut self, adv: Advisory) {
        let source = osv_source(&adv);
        self.newer(&source, adv.modified.as_deref());
        self.advisories.entry(source).or_default().push(adv);
    }

    /// Every source name this batch holds something for.
    pub(crate) fn sources(&self) -> BTreeMap<String, usize> {
        let mut out: BTreeMap<String, usize> = self.advisories.iter().map(|(k, v)| (k.clone(), v.len())).collect();
        if !self.alpine.is_empty() {
            out.insert("alpine-secdb".into(), self.alpine.len());
        }
        for s in &self.debian {
            *out.entry(s.origin.source().into()).or_default() += 1;
        }
        for (_, feed) in self.scores.keys() {
            *out.entry(format!("{feed}-severity")).or_default() += 1;
        }
        if let Some(k) = &self.kev {
            out.insert("cisa-kev".into(), k.len());
        }
        if let Some(e) = &self.epss {
            out.insert("first-epss".into(), e.len());
        }
        out
    }
}

/// Reads every path into one batch; a path that holds nothing importable is an error naming it.
pub(crate) fn read_all(paths: &[PathBuf]) -> Result<Batch, DbError> {
    let mut batch = Batch::default();
    for path in paths {
        let shown = path.display().to_string();
        let before = (batch.size(), batch.sources());
        let meta = std::fs::metadata(path).map_err(|source| DbError::Io {
            path: shown.clone(),
            source,
        })?;
        let mut files = Vec::new();
        if meta.is_dir() {
            collect_files(path, &mut files).map_err(|source| DbError::Io {
                path: shown.clone(),
                source,
            })?;
        } else {
            files.push(path.clone());
        }
        for file in files {
            read_file(&file, &mut batch)?;
        }
        // Given a file, folder or archive that holds no advisory, the user meant something else: say so.
        if batch.size() == before.0 {
            return Err(DbError::Invalid {
                path: shown,
                message: "holds nothing to import (OSV JSON or YAML, Debian tracker JSON or DSA/DLA list, Alpine secdb, NVD feed, CVE 5 record, KEV catalog, EPSS CSV); nothing was imported".into(),
            });
        }
        for (source, n) in batch.sources() {
            if before.1.get(&source) != Some(&n) {
                batch.origins.entry(source).or_default().push(shown.clone());
            }
        }
    }
    Ok(batch)
}

/// Whether a folder walk takes this file: record files, archives of them, EPSS CSVs, DSA/DLA lists.
fn wanted(name: &str) -> bool {
    let plain = name.strip_suffix(".gz").unwrap_or(name);
    let lower = plain.to_ascii_lowercase();
    [".json", ".yaml", ".yml", ".zip", ".csv", ".tar", ".tgz"]
        .iter()
        .any(|x| plain.ends_with(x))
        || lower == "list"
        || ((lower.starts_with("dsa") || lower.starts_with("dla")) && lower.contains("list"))
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let ft = e.file_type()?;
        let p = e.path();
        if ft.is_dir() {
            collect_files(&p, out)?;
        } else if ft.is_file() && wanted(&e.file_name().to_string_lossy()) {
            out.push(p);
        }
    }
    Ok(())
}

fn io(path: &str) -> impl Fn(std::io::Error) -> DbError + '_ {
    move |source| DbError::Io {
        path: path.to_string(),
        source,
    }
}

fn read_file(file: &Path, batch: &mut Batch) -> Result<(), DbError> {
    let shown = file.display().to_string();
    if shown.ends_with(".zip") {
        return read_zip(file, batch);
    }
    let f = std::fs::File::open(file).map_err(io(&shown))?;
    let gzipped = shown.ends_with(".gz") || shown.ends_with(".tgz");
    let mut reader: Box<dyn Read> = if gzipped {
        Box::new(flate2::read::MultiGzDecoder::new(std::io::BufReader::new(f)))
    } else {
        Box::new(f)
    };
    let name = shown.strip_suffix(".gz").unwrap_or(&shown).to_string();
    if name.ends_with(".tar") || name.ends_with(".tgz") {
        return read_tar(reader, &shown, batch);
    }
    let mut head = Vec::with_capacity(HEAD_BYTES);
    (&mut reader)
        .take(HEAD_BYTES as u64)
        .read_to_end(&mut head)
        .map_err(|e| invalid(&shown, format!("not readable{}: {e}", if gzipped { " gzip" } else { "" })))?;
    batch.files += 1;
    let head_text = String::from_utf8_lossy(&head);
    if severity::looks_like_nvd(&head_text) {
        return read_nvd_into(std::io::Cursor::new(head).chain(reader), &shown, batch);
    }
    let mut bytes = head;
    reader
        .take(MAX_FILE_BYTES + 1 - bytes.len() as u64)
        .read_to_end(&mut bytes)
        .map_err(|e| invalid(&shown, format!("not readable: {e}")))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(invalid(&shown, format!("over the {MAX_FILE_BYTES}-byte limit for one record file")));
    }
    classify(&shown, &name, &bytes, batch)
}

/// An NVD feed, streamed: each CVE's scores go into the batch as it is read (a year's feed is hundreds of
/// megabytes).
fn read_nvd_into(reader: impl Read, shown: &str, batch: &mut Batch) -> Result<(), DbError> {
    severity::read_nvd(reader, &mut |s| batch.add_score(s, "nvd"))
        .map(drop)
        .map_err(|m| invalid(shown, m))
}

fn invalid(path: &str, message: String) -> DbError {
    DbError::Invalid {
        path: path.to_string(),
        message,
    }
}

/// Parses one record file of any known format into the batch. `name` is the file name without `.gz`.
fn classify(shown: &str, name: &str, bytes: &[u8], batch: &mut Batch) -> Result<(), DbError> {
    let bad = |message: String| invalid(shown, message);
    let text = std::str::from_utf8(bytes).map_err(|e| bad(format!("not UTF-8 text: {e}")))?;
    let head = &text[..floor_char_boundary(text, HEAD_BYTES)];
    if exploit::looks_like_kev(head) {
        let kev = exploit::parse_kev(text).map_err(bad)?;
        batch.kev_date = kev.iter().map(|k| k.date_added.clone()).max();
        batch.newer("cisa-kev", batch.kev_date.clone().as_deref());
        batch.kev = Some(kev);
        return Ok(());
    }
    if exploit::looks_like_epss(head) {
        batch.epss_date = exploit::epss_score_date(head);
        batch.newer("first-epss", batch.epss_date.clone().as_deref());
        batch.epss = Some(exploit::parse_epss(text).map_err(bad)?);
        return Ok(());
    }
    if debian::looks_like_list(head) {
        let statements = debian::from_list(text).map_err(bad)?;
        for s in &statements {
            batch.newer(s.origin.source(), s.date.as_deref());
        }
        batch.debian.extend(statements);
        return Ok(());
    }
    let is_json = name.ends_with(".json") || head.trim_start().starts_with('{');
    if alpine::looks_like(head) {
        return alpine::merge(text, is_json, &mut batch.alpine).map_err(bad);
    }
    if !is_json {
        let adv = osv::from_yaml(text, &mut batch.skipped).map_err(bad)?;
        batch.add_advisory(adv);
        return Ok(());
    }
    if severity::looks_like_cve5(head) {
        if let Some(scored) = severity::from_cve5(bytes).map_err(bad)? {
            batch.add_score(scored, "cve5");
        }
        return Ok(());
    }
    if severity::looks_like_nvd(head) {
        return read_nvd_into(bytes, shown, batch);
    }
    if debian::looks_like_annotated(head) {
        batch.debian.extend(debian::from_annotated(bytes).map_err(bad)?);
        return Ok(());
    }
    // An OSV record is an object with "id"; the tracker is an object of packages.
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| bad(format!("malformed JSON: {e}")))?;
    if value.get("id").is_some_and(|v| v.is_string()) {
        let adv = osv::from_json(bytes, &mut batch.skipped).map_err(bad)?;
        batch.add_advisory(adv);
    } else if debian::is_tracker_json(&value) {
        batch.debian.extend(debian::from_tracker_json(bytes).map_err(bad)?);
    } else {
        return Err(bad(
            "not a format customs imports (OSV, Debian tracker, Alpine secdb, NVD, CVE 5, KEV)".into(),
        ));
    }
    Ok(())
}

fn floor_char_boundary(text: &str, at: usize) -> usize {
    let mut i = at.min(text.len());
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// A tar archive (gzipped or not) of record files, read entry by entry: CVE 5 records as vulnrichment
/// ships them, OSV records, secdb files.
fn read_tar(reader: Box<dyn Read>, shown: &str, batch: &mut Batch) -> Result<(), DbError> {
    let mut archive = tar::Archive::new(reader);
    let entries = archive
        .entries()
        .map_err(|e| invalid(shown, format!("not a readable tar archive: {e}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| invalid(shown, format!("not a readable tar archive: {e}")))?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let name = entry
            .path()
            .map(|p| p.display().to_string())
            .map_err(|e| invalid(shown, format!("an entry with an unreadable name: {e}")))?;
        let base = name.rsplit('/').next().unwrap_or(&name);
        if !wanted(base) || base.ends_with(".gz") || base.ends_with(".zip") || base.ends_with(".tar") {
            continue;
        }
        let inner = format!("{shown}!{name}");
        if entry.size() > MAX_FILE_BYTES {
            return Err(invalid(&inner, format!("over the {MAX_FILE_BYTES}-byte limit for one record file")));
        }
        let mut bytes = Vec::with_capacity(entry.size() as usize);
        entry.read_to_end(&mut bytes).map_err(io(&inner))?;
        batch.files += 1;
        classify(&inner, base, &bytes, batch)?;
    }
    Ok(())
}

/// A zip of advisories: osv.dev's `all.zip` per ecosystem (one OSV JSON record per entry), or YAML records.
fn read_zip(file: &Path, batch: &mut Batch) -> Result<(), DbError> {
    let shown = file.display().to_string();
    let f = std::fs::File::open(file).map_err(io(&shown))?;
    let mut zip = zip::ZipArchive::new(f).map_err(|e| invalid(&shown, format!("not a readable zip: {e}")))?;
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).map_err(|e| invalid(&shown, format!("entry {i}: {e}")))?;
        let name = entry.name().map(|n| n.to_string()).unwrap_or_default();
        let readable = [".json", ".yaml", ".yml"].iter().any(|ext| name.ends_with(ext));
        if !readable || entry.is_dir() {
            continue;
        }
        let inner = format!("{shown}!{name}");
        let mut bytes = Vec::new();
        (&mut entry).take(MAX_FILE_BYTES).read_to_end(&mut bytes).map_err(io(&inner))?;
        batch.files += 1;
        if name.ends_with(".json")
            && bytes.starts_with(b"{")
            && !bytes[..bytes.len().min(4096)].windows(13).any(|w| w == b"\"cveMetadata\"")
        {
            // osv.dev's all.zip: OSV JSON records, read straight (no classification pass over 100k records).
            let adv = osv::from_json(&bytes, &mut batch.skipped).map_err(|m| invalid(&inner, m))?;
            batch.add_advisory(adv);
        } else {
            classify(&inner, &name, &bytes, batch)?;
        }
    }
    Ok(())
}

/// The source name an OSV advisory is filed under: `osv:<ecosystem>`.
fn osv_source(adv: &Advisory) -> String {
    let eco = adv
        .affected
        .first()
        .map(|a| a.ecosystem.split(':').next().unwrap_or_default().to_string())
        .unwrap_or_else(|| "unknown".into());
    format!("osv:{eco}")
}
