//! Settings that hold for the whole run, whichever command: `--quiet`, `--no-progress`, `--strict`,
//! `--timeout` and `--cache-dir`. They are global flags, read once at start.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

/// The global flags.
#[derive(clap::Args, Clone, Debug, Default)]
pub(crate) struct Session {
    /// No progress display and no notes on standard error (warnings and errors still print).
    #[arg(long, short, global = true)]
    pub(crate) quiet: bool,
    /// No progress display (it only ever appears on a terminal, for work that takes over two seconds).
    #[arg(long, global = true)]
    pub(crate) no_progress: bool,
    /// Unknown rule ids in a secret rules file or `--disable-rule` are errors, not warnings.
    #[arg(long, global = true)]
    pub(crate) strict: bool,
    /// Give up after this long (`90s`, `10m`, `1h`) with exit 2 and no report written; the default is no limit.
    #[arg(long, global = true, value_parser = parse_timeout)]
    pub(crate) timeout: Option<Duration>,
    /// Where the vulnerability database (`vulndb.sqlite`) and downloaded feeds (`feeds/`) live
    /// [default: $XDG_CACHE_HOME/customs or ~/.cache/customs]; `--db` still names the database itself.
    #[arg(long, global = true)]
    pub(crate) cache_dir: Option<PathBuf>,
}

static SESSION: OnceLock<Session> = OnceLock::new();

/// Records the flags for the run (once, at start) and arms the timeout.
pub(crate) fn start(session: Session) {
    if let Some(limit) = session.timeout {
        std::thread::spawn(move || {
            std::thread::sleep(limit);
            // A report being written is finished first: never a half-written file.
            let _writing = crate::output::WRITING.lock();
            eprintln!(
                "error: timed out after {} (--timeout); nothing more was written",
                crate::args::human_duration(limit.as_secs() as i64)
            );
            std::process::exit(2);
        });
    }
    let _ = SESSION.set(session);
}

/// The run's settings (the defaults before [`start`]).
pub(crate) fn get() -> &'static Session {
    SESSION.get_or_init(Session::default)
}

/// A note for people (`note: …` on standard error), unless `--quiet`.
pub(crate) fn note(text: &str) {
    if !get().quiet {
        eprintln!("note: {text}");
    }
}

/// `90s`, `10m`, `1h`, `1h30m` or plain seconds; `0` means no limit.
fn parse_timeout(s: &str) -> Result<Duration, String> {
    let bad = || format!("invalid timeout {s:?}: use a duration such as 90s, 10m or 1h30m");
    let mut total = 0u64;
    let mut digits = String::new();
    for c in s.trim().chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let n: u64 = digits.parse().map_err(|_| bad())?;
        total += n * match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            _ => return Err(bad()),
        };
        digits.clear();
    }
    if !digits.is_empty() {
        total += digits.parse::<u64>().map_err(|_| bad())?;
    }
    if s.trim().is_empty() {
        return Err(bad());
    }
    Ok(Duration::from_secs(total))
}

#[cfg(test)]
mod tests {
    #[test]
    fn timeouts_parse_like_go_durations() {
        let t = |s| super::parse_timeout(s).map(|d| d.as_secs());
        assert_eq!(t("90s"), Ok(90));
        assert_eq!(t("10m"), Ok(600));
        assert_eq!(t("1h30m"), Ok(5400));
        assert_eq!(t("45"), Ok(45));
        assert!(t("5 minutes").is_err() && t("").is_err() && t("m").is_err());
    }
}
