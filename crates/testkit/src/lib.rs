//! What the test suites share about their surroundings: where the shared data, the built test images and the
//! outside tools are, and one way to skip when they are missing that CI turns into a failure.
//!
//! Every skip goes through [`skip`]: it prints the reason straight to the terminal (libtest would hide an
//! `eprintln!` of a passing test), lists all skips again when the test binary exits, and panics instead when
//! `CUSTOMS_REQUIRE_ALL=1`, which `.ci/run` sets.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, Once};

/// The environment variable that turns every skip into a failure.
pub const REQUIRE_ALL: &str = "CUSTOMS_REQUIRE_ALL";

static SKIPS: Mutex<Vec<String>> = Mutex::new(Vec::new());
static SUMMARY: Once = Once::new();

/// The PostgreSQL server tests may create databases on, from `CUSTOMS_TEST_POSTGRES`
/// (`postgres://user@127.0.0.1:5432/postgres`, a role with CREATEDB); a [`skip`] when it is not set.
pub fn postgres() -> Option<String> {
    match std::env::var("CUSTOMS_TEST_POSTGRES") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            skip("CUSTOMS_TEST_POSTGRES is not set (a PostgreSQL server; .ci/run starts one)");
            None
        }
    }
}

/// True when skips are failures (`CUSTOMS_REQUIRE_ALL=1`).
pub fn required() -> bool {
    std::env::var(REQUIRE_ALL).is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"))
}

/// Records that the calling test did not check something because `reason` is missing, and returns so the test
/// can return. Panics (the test fails) when [`required`].
pub fn skip(reason: impl std::fmt::Display) {
    let test = std::thread::current().name().unwrap_or("?").to_string();
    if required() {
        panic!("{REQUIRE_ALL}=1 and this test needs what is missing: {reason}");
    }
    let line = format!("skipped {test}: {reason}");
    // Straight to the terminal: libtest captures print! and eprint! of passing tests.
    let _ = writeln!(std::io::stderr().lock(), "{line}");
    SKIPS.lock().unwrap_or_else(|e| e.into_inner()).push(line);
    SUMMARY.call_once(|| {
        // SAFETY: registers a plain extern "C" function with no arguments, as atexit requires.
        unsafe { libc::atexit(print_summary) };
    });
}

extern "C" fn print_summary() {
    let skips = SKIPS.lock().unwrap_or_else(|e| e.into_inner());
    let mut err = std::io::stderr().lock();
    let binary = std::env::args().next().unwrap_or_default();
    let binary = Path::new(&binary)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let _ = writeln!(
        err,
        "\n{} skipped in {binary} (set {REQUIRE_ALL}=1 to make them failures):",
        skips.len()
    );
    for s in skips.iter() {
        let _ = writeln!(err, "  {s}");
    }
}

/// The repository's root folder.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The shared data folder: `CUSTOMS_SHARED_DATA`, else `../shared/data` beside the repository.
pub fn shared_data_root() -> PathBuf {
    std::env::var_os("CUSTOMS_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("../shared/data"))
}

/// `sub` inside the shared data folder, or a skip naming it when it is absent.
pub fn shared_data(sub: &str) -> Option<PathBuf> {
    let path = shared_data_root().join(sub);
    if path.exists() {
        Some(path)
    } else {
        skip(format_args!(
            "{} is absent (set CUSTOMS_SHARED_DATA to the shared data folder)",
            path.display()
        ));
        None
    }
}

/// The folder of images built by `../shared/tools/build-test-images.sh`: `CUSTOMS_TEST_IMAGES`, else
/// `target/test-images`.
pub fn test_images_dir() -> PathBuf {
    std::env::var_os("CUSTOMS_TEST_IMAGES")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target/test-images"))
}

/// The test-images folder when it holds the bookworm app image (all images are built together), else a skip.
pub fn test_images() -> Option<PathBuf> {
    test_image("bookworm-app.docker.tar").map(|p| p.parent().unwrap().to_path_buf())
}

/// One built test image by file name, or a skip naming it.
pub fn test_image(name: &str) -> Option<PathBuf> {
    let path = test_images_dir().join(name);
    if path.exists() {
        Some(path)
    } else {
        skip(format_args!(
            "test image {} is absent (run ../shared/tools/build-test-images.sh {}, or set CUSTOMS_TEST_IMAGES)",
            path.display(),
            test_images_dir().display()
        ));
        None
    }
}

/// The full path of `tool` on the PATH, or a skip that says how to install it (`hint`).
pub fn tool(tool: &str, hint: &str) -> Option<PathBuf> {
    match which(tool) {
        Some(p) => Some(p),
        None => {
            skip(format_args!("{tool} is not installed ({hint})"));
            None
        }
    }
}

/// Every one of `tools`, or one skip naming all that are missing.
pub fn tools(tools: &[&str], hint: &str) -> Option<Vec<PathBuf>> {
    let found: Vec<Option<PathBuf>> = tools.iter().map(|t| which(t)).collect();
    let missing: Vec<&str> = tools.iter().zip(&found).filter(|(_, f)| f.is_none()).map(|(t, _)| *t).collect();
    if missing.is_empty() {
        Some(found.into_iter().flatten().collect())
    } else {
        skip(format_args!("{} not installed ({hint})", missing.join(", ")));
        None
    }
}

/// Looks `tool` up on the PATH without running it.
pub fn which(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(tool)).find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Runs `python3 tests/validate_report.py KIND PATH` from the customs crate: `Some((valid, output))`, or a skip
/// when python or the validator library is missing (exit 3).
pub fn validate_report(kind: &str, path: &Path) -> Option<(bool, String)> {
    let python = tool("python3", "apt-get install python3")?;
    let script = repo_root().join("crates/customs/tests/validate_report.py");
    let out = Command::new(python).arg(script).arg(kind).arg(path).output().expect("runs python3");
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    if out.status.code() == Some(3) {
        skip(format_args!(
            "the {kind} validator is not installed ({}); .ci/run installs it",
            text.trim()
        ));
        return None;
    }
    Some((out.status.success(), text))
}
