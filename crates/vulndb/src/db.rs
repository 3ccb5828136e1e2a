//! The local database: one SQLite file with a versioned schema.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use crate::model::{Advisory, Affected};
use crate::osv::Skipped;
use crate::{alpine, debian, osv};

/// The schema this build reads and writes. Bump on any incompatible change.
pub const SCHEMA_VERSION: i64 = 1;
/// Largest single record file we read (OSV records are a few KiB; the Debian tracker ~100 MB).
const MAX_FILE_BYTES: u64 = 1 << 30;

/// Errors of the database and its importers; each names the file or database involved.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// SQLite failed.
    #[error("{path}: {source}")]
    Sqlite {
        /// The database file.
        path: String,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
    /// A file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// An input is not in a format we import, or is malformed.
    #[error("{path}: {message}")]
    Invalid {
        /// The file (or `zip!entry`).
        path: String,
        /// What is wrong.
        message: String,
    },
}

type Result<T, E = DbError> = std::result::Result<T, E>;

/// An open vulnerability database.
pub struct Database {
    conn: Connection,
    path: PathBuf,
}

/// One source's bookkeeping.
#[derive(Clone, Debug, Serialize)]
pub struct SourceStatus {
    /// `osv:PyPI`, `debian-tracker`, `alpine-secdb`, …
    pub name: String,
    /// When it was last imported (RFC 3339).
    pub updated: String,
    /// Where it came from.
    pub origin: String,
    /// Advisories it holds.
    pub advisories: i64,
}

/// What `customs db status` shows.
#[derive(Clone, Debug, Serialize)]
pub struct Status {
    /// The database file.
    pub path: String,
    /// Its schema version.
    pub schema_version: i64,
    /// When the database file was first built.
    pub built: Option<String>,
    /// When anything was last imported.
    pub updated: Option<String>,
    /// Advisories in all.
    pub advisories: i64,
    /// Affected-package entries in all.
    pub affected: i64,
    /// Per source.
    pub sources: Vec<SourceStatus>,
}

/// What an import did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ImportReport {
    /// Advisories written, per source.
    pub by_source: BTreeMap<String, usize>,
    /// Files read.
    pub files: usize,
    /// GIT ranges skipped (commit ranges can't be matched to installed versions).
    pub git_ranges_skipped: usize,
}

fn now() -> String {
    time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

impl Database {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: &Path) -> Result<Database> {
        let shown = path.display().to_string();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| DbError::Io {
                path: dir.display().to_string(),
                source,
            })?;
        }
        let conn = Connection::open(path).map_err(|source| DbError::Sqlite {
            path: shown.clone(),
            source,
        })?;
        let db = Database {
            conn,
            path: path.to_path_buf(),
        };
        db.migrate()?;
        Ok(db)
    }

    /// Opens an existing database read-only; an error tells how to build one when it is missing.
    pub fn open_existing(path: &Path) -> Result<Database> {
        if !path.is_file() {
            return Err(DbError::Invalid {
                path: path.display().to_string(),
                message: "no vulnerability database here; build one with `customs db import PATH…` (or point --db / CUSTOMS_DB at one)"
                    .into(),
            });
        }
        Database::open(path)
    }

    fn sql(&self, e: rusqlite::Error) -> DbError {
        DbError::Sqlite {
            path: self.path.display().to_string(),
            source: e,
        }
    }

    fn migrate(&self) -> Result<()> {
        self.conn
            .execute_batch(
                "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
                 CREATE TABLE IF NOT EXISTS sources(name TEXT PRIMARY KEY, updated TEXT NOT NULL, origin TEXT NOT NULL, advisories INTEGER NOT NULL);
                 CREATE TABLE IF NOT EXISTS advisories(id TEXT PRIMARY KEY, source TEXT NOT NULL, body TEXT NOT NULL);
                 CREATE TABLE IF NOT EXISTS affected(advisory TEXT NOT NULL, ecosystem TEXT NOT NULL, package TEXT NOT NULL, body TEXT NOT NULL);
                 CREATE INDEX IF NOT EXISTS affected_by_package ON affected(ecosystem, package);
                 CREATE INDEX IF NOT EXISTS affected_by_advisory ON affected(advisory, ecosystem);
                 CREATE TABLE IF NOT EXISTS kev(cve TEXT PRIMARY KEY, body TEXT NOT NULL);
                 CREATE TABLE IF NOT EXISTS epss(cve TEXT PRIMARY KEY, score REAL NOT NULL, percentile REAL NOT NULL);",
            )
            .map_err(|e| self.sql(e))?;
        let version: Option<String> = self
            .conn
            .query_row("SELECT value FROM meta WHERE key='schema_version'", [], |r| r.get(0))
            .optional()
            .map_err(|e| self.sql(e))?;
        match version.as_deref().map(str::parse::<i64>) {
            None => {
                self.conn
                    .execute(
                        "INSERT INTO meta(key, value) VALUES ('schema_version', ?1), ('built', ?2)",
                        params![SCHEMA_VERSION.to_string(), now()],
                    )
                    .map_err(|e| self.sql(e))?;
                Ok(())
            }
            Some(Ok(SCHEMA_VERSION)) => Ok(()),
            Some(other) => Err(DbError::Invalid {
                path: self.path.display().to_string(),
                message: format!(
                    "database schema {other:?} is not the one this customs reads ({SCHEMA_VERSION}); delete the file and import again"
                ),
            }),
        }
    }

    /// Imports every file, folder and zip in `paths` in one transaction: all or nothing.
    pub fn import(&mut self, paths: &[PathBuf]) -> Result<ImportReport> {
        let mut report = ImportReport::default();
        let mut skipped = Skipped::default();
        let mut batches: BTreeMap<String, Vec<Advisory>> = BTreeMap::new();
        let mut alpine_ids: BTreeMap<String, Advisory> = BTreeMap::new();
        let mut origins: BTreeMap<String, Vec<String>> = BTreeMap::new();
        // Exploitation data: whole catalogs, each replacing the one imported before.
        let mut kev: Vec<crate::exploit::Kev> = Vec::new();
        let mut epss: Vec<crate::exploit::Epss> = Vec::new();
        for path in paths {
            let exploit_before = (kev.len(), epss.len());
            let before: BTreeMap<String, usize> = batches.iter().map(|(k, v)| (k.clone(), v.len())).collect();
            let alpine_before = alpine_ids.len();
            let shown = path.display().to_string();
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
                let fshown = file.display().to_string();
                if fshown.ends_with(".zip") {
                    read_zip(&file, &mut batches, &mut alpine_ids, &mut skipped, &mut report)?;
                    continue;
                }
                let mut bytes = read_limited(&file)?;
                let mut name = fshown.clone();
                if let Some(plain) = fshown.strip_suffix(".gz") {
                    bytes = gunzip_limited(&bytes, &fshown)?;
                    name = plain.to_string();
                }
                report.files += 1;
                let head = String::from_utf8_lossy(&bytes[..bytes.len().min(4096)]).into_owned();
                let invalid = |message: String| DbError::Invalid {
                    path: fshown.clone(),
                    message,
                };
                if crate::exploit::looks_like_kev(&head) {
                    let text = std::str::from_utf8(&bytes).map_err(|e| invalid(format!("not UTF-8 text: {e}")))?;
                    kev = crate::exploit::parse_kev(text).map_err(invalid)?;
                    origins.insert("cisa-kev".into(), vec![fshown.clone()]);
                    continue;
                }
                if crate::exploit::looks_like_epss(&head) {
                    let text = std::str::from_utf8(&bytes).map_err(|e| invalid(format!("not UTF-8 text: {e}")))?;
                    epss = crate::exploit::parse_epss(text).map_err(invalid)?;
                    origins.insert("first-epss".into(), vec![fshown.clone()]);
                    continue;
                }
                classify_and_parse(&name, &bytes, &mut batches, &mut alpine_ids, &mut skipped)?;
            }
            let mut added = exploit_before != (kev.len(), epss.len()) && !(kev.is_empty() && epss.is_empty());
            for (source, list) in &batches {
                if before.get(source).copied().unwrap_or(0) != list.len() {
                    origins.entry(source.clone()).or_default().push(shown.clone());
                    added = true;
                }
            }
            if alpine_ids.len() != alpine_before {
                origins.entry("alpine-secdb".into()).or_default().push(shown.clone());
                added = true;
            }
            // Given a file, folder or archive that holds no advisory, the user meant something else: say so.
            if !added {
                return Err(DbError::Invalid {
                    path: shown,
                    message: "holds no advisory (OSV JSON or YAML, Debian security tracker JSON, Alpine secdb); nothing was imported"
                        .into(),
                });
            }
        }
        if !alpine_ids.is_empty() {
            batches.entry("alpine-secdb".into()).or_default().extend(alpine_ids.into_values());
        }
        report.git_ranges_skipped = skipped.git_ranges;
        let path = self.path.display().to_string();
        let sql = |source| DbError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(sql)?;
        {
            let mut put_advisory = tx
                .prepare("INSERT OR REPLACE INTO advisories(id, source, body) VALUES (?1, ?2, ?3)")
                .map_err(sql)?;
            let mut drop_affected = tx
                .prepare("DELETE FROM affected WHERE advisory = ?1 AND ecosystem = ?2")
                .map_err(sql)?;
            let mut put_affected = tx
                .prepare("INSERT INTO affected(advisory, ecosystem, package, body) VALUES (?1, ?2, ?3, ?4)")
                .map_err(sql)?;
            for (source, advisories) in &batches {
                for adv in advisories {
                    let mut head = adv.clone();
                    let affected = std::mem::take(&mut head.affected);
                    put_advisory
                        .execute(params![adv.id, source, serde_json::to_string(&head).expect("advisories serialize")])
                        .map_err(sql)?;
                    let mut cleared: Vec<&str> = Vec::new();
                    for a in &affected {
                        // Replace this advisory's entries per ecosystem, keeping other releases imported earlier.
                        if !cleared.contains(&a.ecosystem.as_str()) {
                            drop_affected.execute(params![adv.id, a.ecosystem]).map_err(sql)?;
                            cleared.push(&a.ecosystem);
                        }
                        put_affected
                            .execute(params![
                                adv.id,
                                a.ecosystem,
                                a.package,
                                serde_json::to_string(a).expect("affected serializes")
                            ])
                            .map_err(sql)?;
                    }
                }
                let count: i64 = tx
                    .query_row("SELECT COUNT(*) FROM advisories WHERE source = ?1", [source], |r| r.get(0))
                    .map_err(sql)?;
                tx.execute(
                    "INSERT OR REPLACE INTO sources(name, updated, origin, advisories) VALUES (?1, ?2, ?3, ?4)",
                    params![source, now(), origins.get(source).map(|o| o.join(", ")).unwrap_or_default(), count],
                )
                .map_err(sql)?;
                report.by_source.insert(source.clone(), advisories.len());
            }
            let put_source = |name: &str, count: usize| {
                tx.execute(
                    "INSERT OR REPLACE INTO sources(name, updated, origin, advisories) VALUES (?1, ?2, ?3, ?4)",
                    params![
                        name,
                        now(),
                        origins.get(name).map(|o| o.join(", ")).unwrap_or_default(),
                        count as i64
                    ],
                )
                .map(|_| ())
            };
            if !kev.is_empty() {
                tx.execute("DELETE FROM kev", []).map_err(sql)?;
                let mut put = tx.prepare("INSERT INTO kev(cve, body) VALUES (?1, ?2)").map_err(sql)?;
                for k in &kev {
                    put.execute(params![k.cve, serde_json::to_string(k).expect("KEV entries serialize")])
                        .map_err(sql)?;
                }
                put_source("cisa-kev", kev.len()).map_err(sql)?;
                report.by_source.insert("cisa-kev".into(), kev.len());
            }
            if !epss.is_empty() {
                tx.execute("DELETE FROM epss", []).map_err(sql)?;
                let mut put = tx
                    .prepare("INSERT INTO epss(cve, score, percentile) VALUES (?1, ?2, ?3) ON CONFLICT(cve) DO UPDATE SET score = excluded.score, percentile = excluded.percentile")
                    .map_err(sql)?;
                for e in &epss {
                    put.execute(params![e.cve, e.score, e.percentile]).map_err(sql)?;
                }
                put_source("first-epss", epss.len()).map_err(sql)?;
                report.by_source.insert("first-epss".into(), epss.len());
            }
            tx.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('updated', ?1)", [now()])
                .map_err(sql)?;
        }
        tx.commit().map_err(sql)?;
        Ok(report)
    }

    /// What the KEV catalog and EPSS say of `cve`.
    pub fn exploitation(&self, cve: &str) -> Result<(Option<crate::exploit::Kev>, Option<crate::exploit::Epss>)> {
        let corrupt = |e: serde_json::Error| DbError::Invalid {
            path: self.path.display().to_string(),
            message: format!("corrupt KEV record: {e}"),
        };
        let kev: Option<String> = self
            .conn
            .prepare_cached("SELECT body FROM kev WHERE cve = ?1")
            .and_then(|mut s| s.query_row([cve], |r| r.get(0)).optional())
            .map_err(|e| self.sql(e))?;
        let kev = kev.map(|b| serde_json::from_str(&b)).transpose().map_err(corrupt)?;
        let epss = self
            .conn
            .prepare_cached("SELECT score, percentile FROM epss WHERE cve = ?1")
            .and_then(|mut s| {
                s.query_row([cve], |r| {
                    Ok(crate::exploit::Epss {
                        cve: cve.to_string(),
                        score: r.get(0)?,
                        percentile: r.get(1)?,
                    })
                })
                .optional()
            })
            .map_err(|e| self.sql(e))?;
        Ok((kev, epss))
    }

    /// The advisories affecting `package` in `ecosystem` (names already normalized), paired with each entry.
    pub fn lookup(&self, ecosystem: &str, package: &str) -> Result<Vec<(Advisory, Affected)>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT a.body, f.body FROM affected f JOIN advisories a ON a.id = f.advisory WHERE f.ecosystem = ?1 AND f.package = ?2",
            )
            .map_err(|e| self.sql(e))?;
        let rows = stmt
            .query_map(params![ecosystem, package], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })
            .map_err(|e| self.sql(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (adv, aff) = row.map_err(|e| self.sql(e))?;
            let corrupt = |e: serde_json::Error| DbError::Invalid {
                path: self.path.display().to_string(),
                message: format!("corrupt record: {e}"),
            };
            out.push((
                serde_json::from_str(&adv).map_err(corrupt)?,
                serde_json::from_str(&aff).map_err(corrupt)?,
            ));
        }
        Ok(out)
    }

    /// How many affected entries the database holds for `ecosystem` (its name as [`query_for`] gives it).
    ///
    /// [`query_for`]: crate::query_for
    pub fn entries_in(&self, ecosystem: &str) -> Result<u64> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT COUNT(*) FROM affected WHERE ecosystem = ?1")
            .map_err(|e| self.sql(e))?;
        stmt.query_row(params![ecosystem], |r| r.get::<_, i64>(0))
            .map(|n| n.max(0) as u64)
            .map_err(|e| self.sql(e))
    }

    /// The stored advisory with this id, with all its affected entries.
    pub fn advisory(&self, id: &str) -> Result<Option<Advisory>> {
        let corrupt = |e: serde_json::Error| DbError::Invalid {
            path: self.path.display().to_string(),
            message: format!("corrupt record {id}: {e}"),
        };
        let Some(body) = self
            .conn
            .query_row("SELECT body FROM advisories WHERE id = ?1", [id], |r| r.get::<_, String>(0))
            .optional()
            .map_err(|e| self.sql(e))?
        else {
            return Ok(None);
        };
        let mut adv: Advisory = serde_json::from_str(&body).map_err(corrupt)?;
        let mut stmt = self
            .conn
            .prepare_cached("SELECT body FROM affected WHERE advisory = ?1")
            .map_err(|e| self.sql(e))?;
        let rows = stmt.query_map([id], |r| r.get::<_, String>(0)).map_err(|e| self.sql(e))?;
        for row in rows {
            adv.affected
                .push(serde_json::from_str(&row.map_err(|e| self.sql(e))?).map_err(corrupt)?);
        }
        Ok(Some(adv))
    }

    /// Metadata and counts.
    pub fn status(&self) -> Result<Status> {
        let meta = |k: &str| {
            self.conn
                .query_row("SELECT value FROM meta WHERE key = ?1", [k], |r| r.get::<_, String>(0))
                .optional()
                .map_err(|e| self.sql(e))
        };
        let count = |t: &str| {
            self.conn
                .query_row(&format!("SELECT COUNT(*) FROM {t}"), [], |r| r.get::<_, i64>(0))
                .map_err(|e| self.sql(e))
        };
        let mut stmt = self
            .conn
            .prepare("SELECT name, updated, origin, advisories FROM sources ORDER BY name")
            .map_err(|e| self.sql(e))?;
        let sources = stmt
            .query_map([], |r| {
                Ok(SourceStatus {
                    name: r.get(0)?,
                    updated: r.get(1)?,
                    origin: r.get(2)?,
                    advisories: r.get(3)?,
                })
            })
            .map_err(|e| self.sql(e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.sql(e))?;
        Ok(Status {
            path: self.path.display().to_string(),
            schema_version: SCHEMA_VERSION,
            built: meta("built")?,
            updated: meta("updated")?,
            advisories: count("advisories")?,
            affected: count("affected")?,
            sources,
        })
    }

    /// Seconds since the last import, `None` when nothing was ever imported.
    pub fn age_seconds(&self) -> Result<Option<i64>> {
        let Some(updated) = self.status()?.updated else { return Ok(None) };
        let t = time::OffsetDateTime::parse(&updated, &time::format_description::well_known::Rfc3339).map_err(|e| DbError::Invalid {
            path: self.path.display().to_string(),
            message: format!("bad update time {updated:?}: {e}"),
        })?;
        Ok(Some((time::OffsetDateTime::now_utc() - t).whole_seconds()))
    }
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let ft = e.file_type()?;
        let p = e.path();
        if ft.is_dir() {
            collect_files(&p, out)?;
        } else if ft.is_file() {
            // Record files, archives of them, and the CSV of EPSS scores, plain or gzipped.
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let name = name.strip_suffix(".gz").unwrap_or(&name);
            if [".json", ".yaml", ".yml", ".zip", ".csv"].iter().any(|x| name.ends_with(x)) {
                out.push(p);
            }
        }
    }
    Ok(())
}

/// A gzip file's content, within the same limit as any record file.
fn gunzip_limited(bytes: &[u8], shown: &str) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(bytes)
        .take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut out)
        .map_err(|e| DbError::Invalid {
            path: shown.to_string(),
            message: format!("not a readable gzip file: {e}"),
        })?;
    if out.len() as u64 > MAX_FILE_BYTES {
        return Err(DbError::Invalid {
            path: shown.to_string(),
            message: format!("decompresses to over the {MAX_FILE_BYTES}-byte limit for one record file"),
        });
    }
    Ok(out)
}

fn read_limited(file: &Path) -> Result<Vec<u8>> {
    let shown = file.display().to_string();
    let mut bytes = Vec::new();
    std::fs::File::open(file)
        .and_then(|f| f.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes))
        .map_err(|source| DbError::Io {
            path: shown.clone(),
            source,
        })?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(DbError::Invalid {
            path: shown,
            message: format!("over the {MAX_FILE_BYTES}-byte limit for one record file"),
        });
    }
    Ok(bytes)
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

fn classify_and_parse(
    shown: &str,
    bytes: &[u8],
    batches: &mut BTreeMap<String, Vec<Advisory>>,
    alpine_ids: &mut BTreeMap<String, Advisory>,
    skipped: &mut Skipped,
) -> Result<()> {
    let invalid = |message: String| DbError::Invalid {
        path: shown.to_string(),
        message,
    };
    let text = std::str::from_utf8(bytes).map_err(|e| invalid(format!("not UTF-8 text: {e}")))?;
    let is_json = shown.ends_with(".json");
    if alpine::looks_like(&text[..text.len().min(4096)]) {
        return alpine::merge(text, is_json, alpine_ids).map_err(invalid);
    }
    if is_json {
        let head = text.trim_start();
        // An OSV record is an object with "id"; the tracker is an object of packages.
        let value: serde_json::Value = serde_json::from_str(head).map_err(|e| invalid(format!("malformed JSON: {e}")))?;
        if value.get("id").is_some_and(|v| v.is_string()) {
            let adv = osv::from_json(bytes, skipped).map_err(invalid)?;
            batches.entry(osv_source(&adv)).or_default().push(adv);
        } else if value.as_object().is_some_and(|o| {
            o.values().all(|v| {
                v.as_object()
                    .is_some_and(|issues| issues.keys().all(|k| k.starts_with("CVE-") || k.starts_with("TEMP-")))
            })
        }) {
            batches
                .entry("debian-tracker".into())
                .or_default()
                .extend(debian::from_json(bytes).map_err(invalid)?);
        } else {
            return Err(invalid(
                "neither an OSV record, an Alpine secdb nor a Debian security tracker document".into(),
            ));
        }
        return Ok(());
    }
    let adv = osv::from_yaml(text, skipped).map_err(invalid)?;
    batches.entry(osv_source(&adv)).or_default().push(adv);
    Ok(())
}

/// A zip of advisories: osv.dev's `all.zip` per ecosystem (one OSV JSON record per entry), or YAML records.
fn read_zip(
    file: &Path,
    batches: &mut BTreeMap<String, Vec<Advisory>>,
    alpine_ids: &mut BTreeMap<String, Advisory>,
    skipped: &mut Skipped,
    report: &mut ImportReport,
) -> Result<()> {
    let shown = file.display().to_string();
    let f = std::fs::File::open(file).map_err(|source| DbError::Io {
        path: shown.clone(),
        source,
    })?;
    let mut zip = zip::ZipArchive::new(f).map_err(|e| DbError::Invalid {
        path: shown.clone(),
        message: format!("not a readable zip: {e}"),
    })?;
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).map_err(|e| DbError::Invalid {
            path: shown.clone(),
            message: format!("entry {i}: {e}"),
        })?;
        let name = entry.name().map(|n| n.to_string()).unwrap_or_default();
        let readable = [".json", ".yaml", ".yml"].iter().any(|ext| name.ends_with(ext));
        if !readable || entry.is_dir() {
            continue;
        }
        let inner = format!("{shown}!{name}");
        let mut bytes = Vec::new();
        (&mut entry)
            .take(MAX_FILE_BYTES)
            .read_to_end(&mut bytes)
            .map_err(|source| DbError::Io {
                path: inner.clone(),
                source,
            })?;
        report.files += 1;
        if name.ends_with(".json") {
            // osv.dev's all.zip: OSV JSON records, read straight (no classification pass over 100k records).
            let adv = osv::from_json(&bytes, skipped).map_err(|message| DbError::Invalid { path: inner, message })?;
            batches.entry(osv_source(&adv)).or_default().push(adv);
        } else {
            // YAML: OSV records (pypa's advisory-database) or an Alpine secdb, as for loose files.
            classify_and_parse(&inner, &bytes, batches, alpine_ids, skipped)?;
        }
    }
    Ok(())
}
