//! The local database: one SQLite file with a versioned schema.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use crate::debian::{Origin, Statement};
use crate::model::{Advisory, Affected};
use crate::severity::Score;

/// The schema this build reads and writes. Bump on any incompatible change.
pub const SCHEMA_VERSION: i64 = 2;

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
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct SourceStatus {
    /// `osv:PyPI`, `debian-tracker`, `alpine-secdb`, …
    pub name: String,
    /// When it was last imported (RFC 3339).
    pub updated: String,
    /// Where it came from.
    pub origin: String,
    /// Records it holds (advisories; CVEs for Debian's statements and severity feeds; catalog entries).
    pub advisories: i64,
    /// The newest record's own date (modified, published, advisory or score date), when records carry one.
    pub newest: Option<String>,
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
    /// CVE ids the advisories name.
    pub cves: i64,
    /// Of those, how many have a CVSS score from NVD or CVE 5.
    pub cves_scored: i64,
    /// What the user should know: no severity source loaded, …
    pub warnings: Vec<String>,
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
    /// Debian advisories (`DEBIAN-CVE-…`) rebuilt from the statements read and those stored before.
    pub debian_advisories: usize,
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
        // Check the version before touching anything: an older file is never half-upgraded.
        self.conn
            .execute_batch("CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);")
            .map_err(|e| self.sql(e))?;
        let version: Option<String> = self
            .conn
            .query_row("SELECT value FROM meta WHERE key='schema_version'", [], |r| r.get(0))
            .optional()
            .map_err(|e| self.sql(e))?;
        match version.as_deref().map(str::parse::<i64>) {
            None => {}
            Some(Ok(SCHEMA_VERSION)) => return Ok(()),
            Some(other) => {
                return Err(DbError::Invalid {
                    path: self.path.display().to_string(),
                    message: format!(
                        "database schema {other:?} is not the one this customs reads ({SCHEMA_VERSION}); delete the file and import again"
                    ),
                });
            }
        }
        self.conn
            .execute_batch(
                "CREATE TABLE sources(name TEXT PRIMARY KEY, updated TEXT NOT NULL, origin TEXT NOT NULL, advisories INTEGER NOT NULL, newest TEXT);
                 CREATE TABLE advisories(id TEXT PRIMARY KEY, source TEXT NOT NULL, body TEXT NOT NULL);
                 CREATE TABLE affected(advisory TEXT NOT NULL, ecosystem TEXT NOT NULL, package TEXT NOT NULL, body TEXT NOT NULL);
                 CREATE INDEX affected_by_package ON affected(ecosystem, package);
                 CREATE INDEX affected_by_advisory ON affected(advisory, ecosystem);
                 CREATE TABLE advisory_cves(advisory TEXT NOT NULL, cve TEXT NOT NULL, PRIMARY KEY(advisory, cve));
                 CREATE INDEX advisory_cves_by_cve ON advisory_cves(cve);
                 CREATE TABLE debian_statements(cve TEXT NOT NULL, package TEXT NOT NULL, release TEXT NOT NULL, origin TEXT NOT NULL, advisory TEXT NOT NULL, body TEXT NOT NULL, PRIMARY KEY(cve, package, release, origin, advisory));
                 CREATE TABLE scores(cve TEXT NOT NULL, feed TEXT NOT NULL, modified TEXT NOT NULL, body TEXT NOT NULL, PRIMARY KEY(cve, feed));
                 CREATE TABLE kev(cve TEXT PRIMARY KEY, body TEXT NOT NULL);
                 CREATE TABLE epss(cve TEXT PRIMARY KEY, score REAL NOT NULL, percentile REAL NOT NULL);",
            )
            .map_err(|e| self.sql(e))?;
        self.conn
            .execute(
                "INSERT INTO meta(key, value) VALUES ('schema_version', ?1), ('built', ?2)",
                params![SCHEMA_VERSION.to_string(), now()],
            )
            .map_err(|e| self.sql(e))?;
        Ok(())
    }

    /// Imports every file, folder and archive in `paths` in one transaction: all or nothing.
    pub fn import(&mut self, paths: &[PathBuf]) -> Result<ImportReport> {
        let batch = crate::import::read_all(paths)?;
        let mut report = ImportReport {
            files: batch.files,
            git_ranges_skipped: batch.skipped.git_ranges,
            ..ImportReport::default()
        };
        let path = self.path.display().to_string();
        let sql = |source| DbError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(sql)?;
        let mut touched: Vec<(String, i64)> = Vec::new();
        for (source, advisories) in &batch.advisories {
            for adv in advisories {
                put_advisory(&tx, source, adv, false).map_err(sql)?;
            }
            touched.push((
                source.clone(),
                count(&tx, "SELECT COUNT(*) FROM advisories WHERE source = ?1", source).map_err(sql)?,
            ));
            report.by_source.insert(source.clone(), advisories.len());
        }
        if !batch.alpine.is_empty() {
            for adv in batch.alpine.values() {
                put_advisory(&tx, "alpine-secdb", adv, false).map_err(sql)?;
            }
            let n = count(&tx, "SELECT COUNT(*) FROM advisories WHERE source = ?1", "alpine-secdb").map_err(sql)?;
            touched.push(("alpine-secdb".into(), n));
            report.by_source.insert("alpine-secdb".into(), batch.alpine.len());
        }
        if !batch.debian.is_empty() {
            let written = write_debian(&tx, &batch.debian).map_err(sql)?;
            // Counted once: `sources()` walks every statement read.
            let read = batch.sources();
            for origin in [Origin::Tracker, Origin::Dsa, Origin::Dla, Origin::Unstable] {
                let Some(n) = read.get(origin.source()).copied() else {
                    continue;
                };
                let stored = count(
                    &tx,
                    "SELECT COUNT(DISTINCT cve) FROM debian_statements WHERE origin = ?1",
                    origin.as_str(),
                )
                .map_err(sql)?;
                touched.push((origin.source().into(), stored));
                report.by_source.insert(origin.source().into(), n);
            }
            report.debian_advisories = written;
        }
        if !batch.scores.is_empty() {
            let mut put = tx
                .prepare(
                    "INSERT INTO scores(cve, feed, modified, body) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT(cve, feed) DO UPDATE SET modified = excluded.modified, body = excluded.body
                     WHERE excluded.modified >= scores.modified",
                )
                .map_err(sql)?;
            let mut per_feed: BTreeMap<&str, usize> = BTreeMap::new();
            for ((cve, feed), scored) in &batch.scores {
                put.execute(params![
                    cve,
                    feed,
                    scored.modified,
                    serde_json::to_string(&scored.scores).expect("scores serialize")
                ])
                .map_err(sql)?;
                *per_feed.entry(feed).or_default() += 1;
            }
            for (feed, n) in per_feed {
                let name = format!("{feed}-severity");
                touched.push((
                    name.clone(),
                    count(&tx, "SELECT COUNT(*) FROM scores WHERE feed = ?1", feed).map_err(sql)?,
                ));
                report.by_source.insert(name, n);
            }
        }
        if let Some(kev) = &batch.kev {
            tx.execute("DELETE FROM kev", []).map_err(sql)?;
            let mut put = tx
                .prepare("INSERT INTO kev(cve, body) VALUES (?1, ?2) ON CONFLICT(cve) DO UPDATE SET body = excluded.body")
                .map_err(sql)?;
            for k in kev {
                put.execute(params![k.cve, serde_json::to_string(k).expect("KEV entries serialize")])
                    .map_err(sql)?;
            }
            touched.push(("cisa-kev".into(), kev.len() as i64));
            report.by_source.insert("cisa-kev".into(), kev.len());
        }
        if let Some(epss) = &batch.epss {
            tx.execute("DELETE FROM epss", []).map_err(sql)?;
            let mut put = tx
                .prepare("INSERT INTO epss(cve, score, percentile) VALUES (?1, ?2, ?3) ON CONFLICT(cve) DO UPDATE SET score = excluded.score, percentile = excluded.percentile")
                .map_err(sql)?;
            for e in epss {
                put.execute(params![e.cve, e.score, e.percentile]).map_err(sql)?;
            }
            touched.push(("first-epss".into(), epss.len() as i64));
            report.by_source.insert("first-epss".into(), epss.len());
        }
        let updated = now();
        for (name, stored) in touched {
            let origin = batch.origins.get(&name).map(|o| o.join(", ")).unwrap_or_default();
            tx.execute(
                "INSERT INTO sources(name, updated, origin, advisories, newest) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT(name) DO UPDATE SET updated = excluded.updated, origin = excluded.origin, advisories = excluded.advisories,
                   newest = CASE WHEN sources.newest IS NULL OR excluded.newest > sources.newest THEN excluded.newest ELSE sources.newest END",
                params![name, updated, origin, stored, batch.newest.get(&name)],
            )
            .map_err(sql)?;
        }
        tx.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('updated', ?1)", [updated])
            .map_err(sql)?;
        tx.commit().map_err(sql)?;
        Ok(report)
    }

    /// Every CVSS score stored for `cve` (NVD, CVE 5), NVD's first.
    pub fn scores(&self, cve: &str) -> Result<Vec<Score>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT body FROM scores WHERE cve = ?1 ORDER BY feed DESC")
            .map_err(|e| self.sql(e))?;
        let rows = stmt.query_map([cve], |r| r.get::<_, String>(0)).map_err(|e| self.sql(e))?;
        let mut out = Vec::new();
        for row in rows {
            let body = row.map_err(|e| self.sql(e))?;
            let scores: Vec<Score> = serde_json::from_str(&body).map_err(|e| DbError::Invalid {
                path: self.path.display().to_string(),
                message: format!("corrupt score record of {cve}: {e}"),
            })?;
            out.extend(scores);
        }
        Ok(out)
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

    fn meta_value(&self, key: &str) -> Result<Option<String>> {
        self.conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get::<_, String>(0))
            .optional()
            .map_err(|e| self.sql(e))
    }

    /// When anything was last imported (RFC 3339): the database's version, as scan results record it.
    pub fn updated(&self) -> Result<Option<String>> {
        self.meta_value("updated")
    }

    /// Each source with when it was imported and its newest record's date; cheap, unlike [`Database::status`].
    pub fn sources(&self) -> Result<Vec<SourceStatus>> {
        let mut stmt = self
            .conn
            .prepare("SELECT name, updated, origin, advisories, newest FROM sources ORDER BY name")
            .map_err(|e| self.sql(e))?;
        stmt.query_map([], |r| {
            Ok(SourceStatus {
                name: r.get(0)?,
                updated: r.get(1)?,
                origin: r.get(2)?,
                advisories: r.get(3)?,
                newest: r.get(4)?,
            })
        })
        .map_err(|e| self.sql(e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| self.sql(e))
    }

    /// Metadata and counts.
    pub fn status(&self) -> Result<Status> {
        let meta = |k: &str| self.meta_value(k);
        let count = |t: &str| {
            self.conn
                .query_row(&format!("SELECT COUNT(*) FROM {t}"), [], |r| r.get::<_, i64>(0))
                .map_err(|e| self.sql(e))
        };
        let sources = self.sources()?;
        let cves = count("(SELECT DISTINCT cve FROM advisory_cves)")?;
        let cves_scored = count("(SELECT DISTINCT a.cve FROM advisory_cves a WHERE EXISTS (SELECT 1 FROM scores s WHERE s.cve = a.cve))")?;
        let mut warnings = Vec::new();
        if count("scores")? == 0 {
            warnings.push(
                "no severity source is loaded (NVD feeds, CVE 5 records): findings whose advisory gives no severity are UNKNOWN; import them with `customs db import`".to_string(),
            );
        }
        Ok(Status {
            cves,
            cves_scored,
            warnings,
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
        let Some(updated) = self.updated()? else { return Ok(None) };
        let t = time::OffsetDateTime::parse(&updated, &time::format_description::well_known::Rfc3339).map_err(|e| DbError::Invalid {
            path: self.path.display().to_string(),
            message: format!("bad update time {updated:?}: {e}"),
        })?;
        Ok(Some((time::OffsetDateTime::now_utc() - t).whole_seconds()))
    }
}

fn count(tx: &rusqlite::Transaction, query: &str, arg: &str) -> rusqlite::Result<i64> {
    tx.query_row(query, [arg], |r| r.get(0))
}

/// Writes one advisory: its head, its CVE ids, and its affected entries. `replace_all` drops every entry it
/// had before (a Debian advisory is rebuilt whole); otherwise entries are replaced per ecosystem, keeping other
/// releases imported earlier.
fn put_advisory(tx: &rusqlite::Transaction, source: &str, adv: &Advisory, replace_all: bool) -> rusqlite::Result<()> {
    let mut head = adv.clone();
    let affected = std::mem::take(&mut head.affected);
    tx.prepare_cached("INSERT OR REPLACE INTO advisories(id, source, body) VALUES (?1, ?2, ?3)")?
        .execute(params![adv.id, source, serde_json::to_string(&head).expect("advisories serialize")])?;
    let mut put_cve = tx.prepare_cached("INSERT OR IGNORE INTO advisory_cves(advisory, cve) VALUES (?1, ?2)")?;
    for cve in std::iter::once(&adv.id).chain(&adv.aliases).filter(|a| a.starts_with("CVE-")) {
        put_cve.execute(params![adv.id, cve])?;
    }
    if replace_all {
        tx.prepare_cached("DELETE FROM affected WHERE advisory = ?1")?.execute([&adv.id])?;
    }
    let mut drop = tx.prepare_cached("DELETE FROM affected WHERE advisory = ?1 AND ecosystem = ?2")?;
    let mut put = tx.prepare_cached("INSERT INTO affected(advisory, ecosystem, package, body) VALUES (?1, ?2, ?3, ?4)")?;
    let mut cleared: Vec<&str> = Vec::new();
    for a in &affected {
        if !replace_all && !cleared.contains(&a.ecosystem.as_str()) {
            drop.execute(params![adv.id, a.ecosystem])?;
            cleared.push(&a.ecosystem);
        }
        put.execute(params![
            adv.id,
            a.ecosystem,
            a.package,
            serde_json::to_string(a).expect("affected serializes")
        ])?;
    }
    Ok(())
}

/// Stores Debian statements and rebuilds the advisory of every CVE they speak of from all statements
/// stored for it (earlier imports included). Returns how many advisories were rebuilt.
fn write_debian(tx: &rusqlite::Transaction, statements: &[Statement]) -> rusqlite::Result<usize> {
    let mut put = tx.prepare(
        "INSERT INTO debian_statements(cve, package, release, origin, advisory, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT(cve, package, release, origin, advisory) DO UPDATE SET body = excluded.body",
    )?;
    let mut cves: Vec<&str> = Vec::new();
    for s in statements {
        put.execute(params![
            s.cve,
            s.package,
            s.release,
            s.origin.as_str(),
            s.advisories.first().map(String::as_str).unwrap_or_default(),
            serde_json::to_string(s).expect("statements serialize")
        ])?;
        cves.push(&s.cve);
    }
    cves.sort_unstable();
    cves.dedup();
    let mut load = tx.prepare("SELECT body FROM debian_statements WHERE cve = ?1")?;
    for cve in &cves {
        let stored: Vec<Statement> = load
            .query_map([cve], |r| r.get::<_, String>(0))?
            .map(|b| b.and_then(|b| serde_json::from_str(&b).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))))
            .collect::<rusqlite::Result<_>>()?;
        let id = format!("DEBIAN-{cve}");
        match crate::debian::merge(cve, &stored) {
            Some(adv) => put_advisory(tx, "debian", &adv, true)?,
            None => {
                tx.execute("DELETE FROM affected WHERE advisory = ?1", [&id])?;
                tx.execute("DELETE FROM advisory_cves WHERE advisory = ?1", [&id])?;
                tx.execute("DELETE FROM advisories WHERE id = ?1", [&id])?;
            }
        }
    }
    Ok(cves.len())
}
