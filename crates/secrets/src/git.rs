//! Secrets in a git repository's history: every blob any commit on any ref ever added is scanned once, and a
//! finding names the oldest commit that introduced it and whether the secret is still in `HEAD`. A secret
//! removed by a later commit is still in every clone, so it counts.
//!
//! Uses the `git` program (`git log --raw` to learn which commit added which blob, one `git cat-file --batch`
//! process to read the blobs), so packs, alternates and partial clones behave as git itself handles them.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::Serialize;

use crate::image::MAX_FILE_BYTES;
use crate::scanner::{Finding, Scanner};

/// A secret found in history.
#[derive(Clone, Debug, Serialize)]
pub struct GitFinding {
    /// The finding (path and line are those of the blob in the introducing commit).
    #[serde(flatten)]
    pub finding: Finding,
    /// The oldest commit that added the blob.
    pub commit: String,
    /// Its author, `Name <email>`.
    pub author: String,
    /// Its author date (ISO 8601).
    pub date: String,
    /// Whether the same blob is still in `HEAD`'s tree.
    pub in_head: bool,
}

/// What a history scan covered.
#[derive(Clone, Debug, Default, Serialize)]
pub struct HistoryScan {
    /// Commits read (all refs).
    pub commits: usize,
    /// Distinct blobs scanned.
    pub blobs: usize,
    /// Findings, oldest commit first, one per secret (fingerprint).
    pub findings: Vec<GitFinding>,
    /// Blobs skipped (too large), and similar notes.
    pub warnings: Vec<String>,
}

/// A history scan that could not run, naming the repository.
#[derive(Debug, thiserror::Error)]
#[error("git history of {}: {message}", repo.display())]
pub struct GitError {
    /// The repository.
    pub repo: PathBuf,
    /// What went wrong and what to do.
    pub message: String,
}

struct Introduced {
    commit: usize,
    path: String,
}

struct CommitInfo {
    id: String,
    author: String,
    date: String,
}

fn git(repo: &Path) -> Command {
    let mut cmd = Command::new("git");
    cmd.arg("-C").arg(repo).args(["-c", "core.quotePath=false"]);
    cmd
}

/// Scans every blob in the history of the repository at `repo`.
pub fn scan_history(repo: &Path, scanner: &Scanner) -> Result<HistoryScan, GitError> {
    let err = |message: String| GitError {
        repo: repo.to_path_buf(),
        message,
    };
    let run = |args: &[&str]| -> Result<Vec<u8>, GitError> {
        let out = git(repo)
            .args(args)
            .output()
            .map_err(|e| err(format!("cannot run git ({e}); install git")))?;
        if !out.status.success() {
            return Err(err(format!(
                "git {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(out.stdout)
    };
    run(&["rev-parse", "--git-dir"]).map_err(|_| err("not a git repository".into()))?;

    // Oldest first, so the first commit seen adding a blob is the one that introduced it.
    let log = run(&[
        "log",
        "--all",
        "--reverse",
        "--no-renames",
        "--raw",
        "--no-abbrev",
        "--format=%x01%H%x00%an <%ae>%x00%aI",
    ])?;
    let mut commits: Vec<CommitInfo> = Vec::new();
    let mut introduced: HashMap<String, Introduced> = HashMap::new();
    let mut order: Vec<String> = Vec::new();
    for line in log.split(|&b| b == b'\n') {
        let line = String::from_utf8_lossy(line);
        if let Some(header) = line.strip_prefix('\u{1}') {
            let mut parts = header.split('\0');
            commits.push(CommitInfo {
                id: parts.next().unwrap_or_default().to_string(),
                author: parts.next().unwrap_or_default().to_string(),
                date: parts.next().unwrap_or_default().to_string(),
            });
            continue;
        }
        // `:100644 100644 <old> <new> M\tpath`
        let Some((meta, path)) = line.strip_prefix(':').and_then(|l| l.split_once('\t')) else {
            continue;
        };
        let fields: Vec<&str> = meta.split_whitespace().collect();
        let (Some(mode), Some(blob)) = (fields.get(1), fields.get(3)) else {
            continue;
        };
        if mode.starts_with("160") || blob.bytes().all(|b| b == b'0') {
            continue; // submodule or deletion
        }
        if commits.is_empty() || introduced.contains_key(*blob) {
            continue;
        }
        introduced.insert(
            blob.to_string(),
            Introduced {
                commit: commits.len() - 1,
                path: path.to_string(),
            },
        );
        order.push(blob.to_string());
    }

    let head: HashSet<String> = match run(&["ls-tree", "-r", "--full-tree", "HEAD"]) {
        Ok(tree) => String::from_utf8_lossy(&tree)
            .lines()
            .filter_map(|l| {
                l.split_once('\t')
                    .and_then(|(meta, _)| meta.split_whitespace().nth(2))
                    .map(str::to_string)
            })
            .collect(),
        Err(_) => HashSet::new(), // no HEAD (an empty repository)
    };

    let mut scan = HistoryScan {
        commits: commits.len(),
        ..HistoryScan::default()
    };
    let wanted: Vec<&String> = order.iter().filter(|b| scanner.reads(&introduced[*b].path)).collect();
    let mut child = git(repo)
        .args(["cat-file", "--batch"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| err(format!("cannot run git cat-file ({e})")))?;
    let mut stdin = child.stdin.take().expect("piped");
    let ids: Vec<String> = wanted.iter().map(|b| (*b).clone()).collect();
    // Feed ids from a thread so git's output pipe never fills while we are still writing.
    let feeder = std::thread::spawn(move || {
        for id in ids {
            if writeln!(stdin, "{id}").is_err() {
                break;
            }
        }
    });
    let mut out = BufReader::with_capacity(1 << 20, child.stdout.take().expect("piped"));
    let mut seen: HashMap<String, usize> = HashMap::new();
    for blob in &wanted {
        let mut header = String::new();
        out.read_line(&mut header).map_err(|e| err(format!("reading git cat-file: {e}")))?;
        let mut parts = header.split_whitespace();
        let (_, kind, size) = (parts.next(), parts.next(), parts.next().and_then(|s| s.parse::<u64>().ok()));
        let Some(size) = size.filter(|_| kind == Some("blob")) else {
            continue; // `<id> missing` (a partial clone): nothing to read
        };
        let intro = &introduced[*blob];
        let mut bytes = Vec::new();
        (&mut out)
            .take(size + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| err(format!("reading blob {blob}: {e}")))?;
        bytes.truncate(size as usize);
        if size > MAX_FILE_BYTES {
            scan.warnings.push(format!(
                "skipped {} in {}: {size} bytes is over the {MAX_FILE_BYTES}-byte limit",
                intro.path, commits[intro.commit].id
            ));
            continue;
        }
        scan.blobs += 1;
        let in_head = head.contains(*blob);
        for finding in scanner.scan_content(&intro.path, &bytes) {
            if let Some(&i) = seen.get(&finding.fingerprint) {
                // A later blob still holding the same secret: the secret is in HEAD if any such blob is.
                let earlier: &mut GitFinding = &mut scan.findings[i];
                earlier.in_head |= in_head;
                continue;
            }
            seen.insert(finding.fingerprint.clone(), scan.findings.len());
            let commit = &commits[intro.commit];
            scan.findings.push(GitFinding {
                finding,
                commit: commit.id.clone(),
                author: commit.author.clone(),
                date: commit.date.clone(),
                in_head,
            });
        }
    }
    let _ = feeder.join();
    let _ = child.wait();
    Ok(scan)
}
