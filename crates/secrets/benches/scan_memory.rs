//! The scanner alone, on files already in memory (no file system cost): MB/s on one core for text and for
//! binaries. `cargo bench -p customs-secrets -- [DIR]` (default `/usr/share`, then `/usr/bin`), at most 200 MB
//! of each kind.

use std::path::{Path, PathBuf};
use std::time::Instant;

use customs_secrets::{Scanner, is_binary};

fn collect(dir: &Path, out: &mut Vec<(String, Vec<u8>)>, budget: &mut usize) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    paths.sort();
    for p in paths {
        if *budget == 0 {
            return;
        }
        let Ok(meta) = std::fs::symlink_metadata(&p) else { continue };
        if meta.is_dir() {
            collect(&p, out, budget);
        } else if meta.is_file()
            && let Ok(bytes) = std::fs::read(&p)
        {
            *budget = budget.saturating_sub(bytes.len());
            // Not under `usr/share/doc` and the like: the built-in allowed paths would skip those files unread.
            out.push((format!("bench{}", p.to_string_lossy()), bytes));
        }
    }
}

fn main() {
    let dirs: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let dirs = if dirs.is_empty() {
        vec!["/usr/share".to_string(), "/usr/bin".to_string()]
    } else {
        dirs
    };
    let scanner = Scanner::builtin();
    println!("{} rules", scanner.len());
    for dir in dirs {
        let mut files = Vec::new();
        let mut budget = 200 << 20;
        collect(Path::new(&dir), &mut files, &mut budget);
        for (kind, binary) in [("text", false), ("binary", true)] {
            let set: Vec<&(String, Vec<u8>)> = files.iter().filter(|(_, b)| is_binary(b) == binary).collect();
            let bytes: usize = set.iter().map(|(_, b)| b.len()).sum();
            if bytes == 0 {
                continue;
            }
            let start = Instant::now();
            let found: usize = set.iter().map(|(p, b)| scanner.scan_content(p, b).len()).sum();
            let secs = start.elapsed().as_secs_f64();
            println!(
                "{dir} {kind:6}: {:7.1} MB in {:6.3} s = {:7.1} MB/s on one core ({found} findings)",
                bytes as f64 / 1e6,
                secs,
                bytes as f64 / 1e6 / secs
            );
        }
    }
}
