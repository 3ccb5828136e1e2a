//! `db update` as a library call: download feeds, then import what came in one transaction. The CLI runs it on
//! demand and the registry on a schedule, with the same mirrors, retries and messages.

use std::path::{Path, PathBuf};

use crate::db::{Database, DbError, ImportReport};
use crate::feeds::{DownloadOptions, Feed, Fetched, download};

/// What one update did.
#[derive(Debug, Default)]
pub struct UpdateReport {
    /// Feeds fetched, with where from.
    pub fetched: Vec<(String, Fetched)>,
    /// Feeds that could not be fetched, each with every URL tried and why.
    pub failures: Vec<String>,
    /// What the import wrote, when something was imported.
    pub imported: Option<ImportReport>,
}

impl UpdateReport {
    /// Whether a feed came back changed (and so the database has a new version).
    pub fn changed(&self) -> bool {
        self.fetched.iter().any(|(_, f)| matches!(f, Fetched::New { .. }))
    }
}

/// Why an update failed as a whole.
#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    /// No feed could be downloaded.
    #[error(
        "no feed could be downloaded ({tried} tried):\n{}\nWithout network access, point the mirrors at an internal mirror, \
         or bring the files in another way and import them (`customs db import PATH…`)",
        .failures.join("\n")
    )]
    NothingDownloaded {
        /// How many feeds were tried.
        tried: usize,
        /// Each feed's failure.
        failures: Vec<String>,
    },
    /// The downloaded files could not be imported.
    #[error("importing the downloaded feeds into {path}: {source}")]
    Import {
        /// The database.
        path: String,
        /// Why.
        #[source]
        source: DbError,
    },
}

/// Downloads `feeds` (mirrors first, as `options` say) and imports them into the database at `path`. Feeds the
/// servers report unchanged are imported again only with `import_unchanged` (a database rebuilt from scratch
/// needs them); when every feed is unchanged and that is off, nothing is written and the version stays.
/// Succeeds when at least one feed came; the others are listed in [`UpdateReport::failures`]. `starting` is
/// told each feed before its download (a progress line).
pub fn update(
    path: &Path,
    feeds: &[Feed],
    options: &DownloadOptions,
    import_unchanged: bool,
    starting: &dyn Fn(&Feed),
) -> Result<UpdateReport, UpdateError> {
    let mut report = UpdateReport::default();
    for feed in feeds {
        starting(feed);
        match download(feed, options) {
            Ok(fetched) => report.fetched.push((feed.name.clone(), fetched)),
            Err(e) => report.failures.push(e.to_string()),
        }
    }
    if report.fetched.is_empty() {
        return Err(UpdateError::NothingDownloaded {
            tried: feeds.len(),
            failures: report.failures,
        });
    }
    let files: Vec<PathBuf> = if import_unchanged || report.changed() {
        report.fetched.iter().map(|(_, f)| f.path().to_path_buf()).collect()
    } else {
        Vec::new()
    };
    if !files.is_empty() {
        let import = Database::open(path).and_then(|mut db| db.import(&files));
        report.imported = Some(import.map_err(|source| UpdateError::Import {
            path: path.display().to_string(),
            source,
        })?);
    }
    Ok(report)
}
