//! `exclusions.json`: the project's accepted risks.
//!
//! The seed format is accepted unchanged: `[{"library_name": "libtinfo5", "date": "2024-03-07"}]`.
//! Extended fields: `id`, `version`, `path`, `expires`, `reason`, `approved_by`.

use serde::{Deserialize, Serialize};
use time::Date;
use time::macros::format_description;

/// A path glob of an exception: `*` and `?` stay within a path segment, `**` spans segments; a leading `/` is
/// ignored on both sides (`/var/lib/dpkg/status` and `var/lib/dpkg/status` are the same file). A location inside
/// an archive (`app/app.jar!BOOT-INF/lib/log4j-core-2.14.1.jar!META-INF/…/pom.properties`) also matches through
/// each archive that holds it: `app/app.jar` and `app/app.jar!BOOT-INF/lib/*.jar` both cover that package.
#[derive(Clone, Debug)]
pub struct PathGlob {
    text: String,
    matcher: globset::GlobMatcher,
}

impl PathGlob {
    /// Compiles `pattern`; the error says what is wrong with it.
    pub fn new(pattern: &str) -> Result<PathGlob, String> {
        let glob = globset::GlobBuilder::new(pattern.trim_start_matches('/'))
            .literal_separator(true)
            .backslash_escape(true)
            .build()
            .map_err(|e| format!("{pattern:?} is not a valid glob: {}", e.kind()))?;
        Ok(PathGlob {
            text: pattern.to_string(),
            matcher: glob.compile_matcher(),
        })
    }

    /// Whether `path`, or an archive on the way to it (the part before a `!`), matches.
    pub fn is_match(&self, path: &str) -> bool {
        let path = path.trim_start_matches('/');
        self.matcher.is_match(path) || path.match_indices('!').any(|(i, _)| self.matcher.is_match(&path[..i]))
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl PartialEq for PathGlob {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for PathGlob {}

impl Serialize for PathGlob {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

/// One accepted risk.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Exception {
    /// Vulnerability id (CVE, GHSA, advisory id) it covers; matches aliases too.
    pub id: Option<String>,
    /// Package it covers: its binary name or its source package name.
    pub library_name: Option<String>,
    /// Exact installed version it covers.
    pub version: Option<String>,
    /// Glob (`*`, `?`, `**`) over the file that proved the package, the secret's file or the Dockerfile.
    pub path: Option<PathGlob>,
    /// When the exception was granted.
    pub date: Option<Date>,
    /// Last day it is valid.
    pub expires: Option<Date>,
    /// Why the risk is accepted.
    pub reason: Option<String>,
    /// Who accepted it.
    pub approved_by: Option<String>,
    /// The file it comes from (exclusions.json, a `.trivyignore`), as given.
    pub file: String,
    /// 1-based line of the entry in its file, for messages.
    pub line: usize,
}

impl Exception {
    /// `FILE:LINE`, how messages name the entry (two files may both have a line 3).
    pub fn place(&self) -> String {
        format!("{}:{}", self.file, self.line)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    id: Option<String>,
    library_name: Option<String>,
    version: Option<String>,
    path: Option<String>,
    date: Option<String>,
    expires: Option<String>,
    reason: Option<String>,
    approved_by: Option<String>,
}

/// A problem in an exclusions file, with where it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct ExclusionError {
    /// The file.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// What is wrong, naming the field.
    pub message: String,
}

fn parse_date(s: &str) -> Option<Date> {
    Date::parse(s.trim(), format_description!("[year]-[month]-[day]")).ok()
}

/// Parses an exclusions file (`file` names it in errors).
///
/// Strict on purpose: an unknown field or a bad date is an error, since a typo
/// would otherwise silently widen or narrow what is accepted.
pub fn parse(text: &str, file: &str, require_reason: bool) -> Result<Vec<Exception>, ExclusionError> {
    let err = |line: usize, message: String| ExclusionError {
        file: file.to_string(),
        line,
        message,
    };
    let values: Vec<serde_json::Value> =
        serde_json::from_str(text).map_err(|e| err(e.line(), format!("not a JSON list of exceptions: {e}")))?;
    // serde_json keeps no positions for values; find each entry's opening brace instead.
    let starts = entry_lines(text);
    let mut out = Vec::with_capacity(values.len());
    for (i, v) in values.into_iter().enumerate() {
        let line = starts.get(i).copied().unwrap_or(1);
        let raw: Raw = serde_json::from_value(v).map_err(|e| err(line, format!("entry {}: {e}", i + 1)))?;
        let date_field = |name: &str, v: &Option<String>| -> Result<Option<Date>, ExclusionError> {
            match v {
                None => Ok(None),
                Some(s) => parse_date(s)
                    .map(Some)
                    .ok_or_else(|| err(line, format!("entry {}: field `{name}`: {s:?} is not a date (YYYY-MM-DD)", i + 1))),
            }
        };
        let nonempty = |v: Option<String>| v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
        let ex = Exception {
            date: date_field("date", &raw.date)?,
            expires: date_field("expires", &raw.expires)?,
            id: nonempty(raw.id),
            library_name: nonempty(raw.library_name),
            version: nonempty(raw.version),
            path: nonempty(raw.path)
                .map(|p| PathGlob::new(&p))
                .transpose()
                .map_err(|e| err(line, format!("entry {}: field `path`: {e}", i + 1)))?,
            reason: nonempty(raw.reason),
            approved_by: nonempty(raw.approved_by),
            file: file.to_string(),
            line,
        };
        if ex.id.is_none() && ex.library_name.is_none() {
            return Err(err(
                line,
                format!(
                    "entry {}: needs `id` or `library_name`; an exception for everything is not an exception",
                    i + 1
                ),
            ));
        }
        if require_reason && ex.reason.is_none() {
            return Err(err(
                line,
                format!(
                    "entry {}: field `reason` is required by the policy (document why the risk is accepted)",
                    i + 1
                ),
            ));
        }
        out.push(ex);
    }
    Ok(out)
}

/// Reads `.trivyignore` (one vulnerability id per line, `#` comments, optional `exp:YYYY-MM-DD`) for migration.
pub fn parse_trivyignore(text: &str, file: &str) -> Result<Vec<Exception>, ExclusionError> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line_no = n + 1;
        let content = line.split('#').next().unwrap_or_default().trim();
        if content.is_empty() {
            continue;
        }
        let mut parts = content.split_whitespace();
        let id = parts.next().unwrap_or_default().to_string();
        let mut expires = None;
        for p in parts {
            match p.strip_prefix("exp:").and_then(parse_date) {
                Some(d) => expires = Some(d),
                None => {
                    return Err(ExclusionError {
                        file: file.to_string(),
                        line: line_no,
                        message: format!("unexpected {p:?}: expected `exp:YYYY-MM-DD`"),
                    });
                }
            }
        }
        out.push(Exception {
            id: Some(id),
            library_name: None,
            version: None,
            path: None,
            date: None,
            expires,
            reason: None,
            approved_by: None,
            file: file.to_string(),
            line: line_no,
        });
    }
    Ok(out)
}

/// Line numbers of the `{` that opens each top-level entry of a JSON list.
fn entry_lines(text: &str) -> Vec<usize> {
    let (mut depth, mut line, mut in_str, mut escaped) = (0usize, 1usize, false, false);
    let mut out = Vec::new();
    for c in text.chars() {
        if c == '\n' {
            line += 1;
        }
        if in_str {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_str = true,
            '[' | '{' => {
                if c == '{' && depth == 1 {
                    out.push(line);
                }
                depth += 1;
            }
            ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_format_is_accepted_unchanged() {
        let ex = parse(
            r#"[ { "library_name": "libtinfo5", "date": "2024-03-07" } ]"#,
            "exclusions.json",
            false,
        )
        .unwrap();
        assert_eq!(ex[0].library_name.as_deref(), Some("libtinfo5"));
        assert_eq!(ex[0].date, Some(time::macros::date!(2024 - 03 - 07)));
    }

    #[test]
    fn errors_name_line_and_field() {
        let text = "[\n  {\"id\": \"CVE-1\"},\n  {\"library_name\": \"x\",\n   \"expiry\": \"2024-01-01\"}\n]";
        let e = parse(text, "exclusions.json", false).unwrap_err();
        assert_eq!(e.line, 3);
        assert!(e.to_string().contains("unknown field `expiry`"), "{e}");
        let e = parse("[{\"id\": \"CVE-1\", \"expires\": \"31/12/2024\"}]", "x.json", false).unwrap_err();
        assert!(e.to_string().contains("field `expires`"), "{e}");
        let e = parse("[{\"date\": \"2024-01-01\"}]", "x.json", false).unwrap_err();
        assert!(e.to_string().contains("needs `id` or `library_name`"), "{e}");
        let e = parse("[{\"id\": \"CVE-1\"}]", "x.json", true).unwrap_err();
        assert!(e.to_string().contains("`reason` is required"), "{e}");
        let e = parse("[{\"id\": \"CVE-1\",}]", "x.json", false).unwrap_err();
        assert!(e.to_string().starts_with("x.json:1: not a JSON list"), "{e}");
    }

    #[test]
    fn trivyignore_migrates() {
        let ex = parse_trivyignore("# accepted\nCVE-2023-1234\nCVE-2023-5678 exp:2025-01-31\n", ".trivyignore").unwrap();
        assert_eq!(ex.len(), 2);
        assert_eq!(ex[1].expires, Some(time::macros::date!(2025 - 01 - 31)));
        assert_eq!(ex[1].line, 3);
    }

    #[test]
    fn globs() {
        let m = |p: &str, path: &str| PathGlob::new(p).unwrap().is_match(path);
        assert!(m("usr/lib/**/METADATA", "usr/lib/python3/dist-packages/x.dist-info/METADATA"));
        assert!(m("app/*.jar", "app/app.jar"));
        assert!(!m("app/*.jar", "app/lib/x.jar"));
        assert!(m("/var/lib/dpkg/status", "var/lib/dpkg/status"));
        assert!(m("app/?.env", "app/a.env") && !m("app/?.env", "app/ab.env"));
        // Through the archives that hold a location, never past its end.
        let nested = "app/app.jar!BOOT-INF/lib/x-1.jar!META-INF/maven/g/x/pom.properties";
        assert!(m("app/app.jar", nested) && m("app/app.jar!BOOT-INF/lib/*.jar", nested) && m("**/x-*.jar", nested));
        assert!(!m("app/app.jar!BOOT-INF/lib/y-*.jar", nested) && !m("app/*.war", nested));
        assert!(!m("app/app.jar", "app/app.jar.bak") && !m("app/app", "app/app.jar!x"));
        let e = parse(r#"[{"id": "CVE-1", "path": "app/[z-a]"}]"#, "x.json", false).unwrap_err();
        assert!(
            e.to_string().contains("field `path`") && e.to_string().contains("not a valid glob"),
            "{e}"
        );
    }

    proptest::proptest! {
        #[test]
        fn hostile_files_never_panic(text in "\\PC{0,300}") {
            let _ = parse(&text, "f", true);
            let _ = parse_trivyignore(&text, "f");
        }
    }
}
