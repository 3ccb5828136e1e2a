//! Where reports go: `-o FILE` and `--report FORMAT=PATH` write through to devices and pipes (`/dev/null`,
//! `/dev/stdout`, a FIFO), to standard output for `-`, follow symlinks, and replace regular files atomically.
//! The device checks run on a private device node first (so a regression breaks that node, not the machine's
//! `/dev/null`), then on `/dev/null` itself, as root and, through `setpriv`, as an unprivileged user.

use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod support;
use support::demo_image;

fn customs() -> Command {
    Command::new(assert_cmd::cargo::cargo_bin!("customs"))
}

fn is_root() -> bool {
    unsafe { libc::geteuid() == 0 }
}

/// The same command as an unprivileged user (uid/gid 65534), when this test runs as root.
fn as_nobody(args: &[&str]) -> Option<Output> {
    if !is_root() {
        return None;
    }
    let setpriv = customs_testkit::tool("setpriv", "apt-get install util-linux")?;
    Some(
        Command::new(setpriv)
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(assert_cmd::cargo::cargo_bin!("customs"))
            .args(args)
            .current_dir("/")
            .output()
            .unwrap(),
    )
}

fn ok(out: &Output) -> &Output {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    out
}

fn char_device(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_char_device())
}

/// Every command that writes a report, aimed at `target`.
fn each_writer(target: &str) -> Vec<Vec<String>> {
    let demo = demo_image();
    let dockerfile = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/ci/Dockerfile");
    vec![
        vec!["sbom".into(), demo.clone(), "-f".into(), "json".into(), "-o".into(), target.into()],
        vec![
            "secrets".into(),
            demo.clone(),
            "-f".into(),
            "json".into(),
            "-o".into(),
            target.into(),
        ],
        vec![
            "lint".into(),
            dockerfile.display().to_string(),
            "--format".into(),
            "json".into(),
            "-o".into(),
            target.into(),
        ],
    ]
}

#[test]
fn devices_are_written_through_never_replaced() {
    let tmp = tempfile::tempdir().unwrap();
    if is_root() {
        // A private null device: a regression replaces this node, not the machine's.
        let node = tmp.path().join("null");
        let c = std::ffi::CString::new(node.to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR | 0o666, libc::makedev(1, 3)) }, 0);
        for args in each_writer(node.to_str().unwrap()) {
            ok(&customs().args(&args).output().unwrap());
            assert!(char_device(&node), "{args:?} replaced the device node");
        }
    }
    for args in each_writer("/dev/null") {
        ok(&customs().args(&args).output().unwrap());
        assert!(char_device(Path::new("/dev/null")), "{args:?} replaced /dev/null");
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        if let Some(out) = as_nobody(&refs) {
            ok(&out);
            assert!(char_device(Path::new("/dev/null")));
        }
    }
}

#[test]
fn stdout_by_device_by_dash_and_for_gate_reports() {
    let demo = demo_image();
    let via_stdout = ok(&customs().args(["sbom", &demo, "-f", "json"]).output().unwrap()).stdout.clone();
    let expected: serde_json::Value = serde_json::from_slice(&via_stdout).unwrap();
    for target in ["/dev/stdout", "-"] {
        let args = ["sbom", &demo, "-f", "json", "-o", target];
        let out = customs().args(args).output().unwrap();
        let got: serde_json::Value = serde_json::from_slice(&ok(&out).stdout).unwrap();
        assert_eq!(got["packages"], expected["packages"], "-o {target}");
        if let Some(out) = as_nobody(&args) {
            let got: serde_json::Value = serde_json::from_slice(&ok(&out).stdout).unwrap();
            assert_eq!(got["packages"], expected["packages"], "-o {target} as nobody");
        }
    }
    // `--report json=-`: standard output holds the JSON alone (the table goes to stderr).
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("v.db");
    let osv = tmp.path().join("osv");
    std::fs::create_dir_all(&osv).unwrap();
    std::fs::write(
        osv.join("a.json"),
        r#"{"id":"TEST-OUT","database_specific":{"severity":"HIGH"},"affected":[{"package":{"ecosystem":"PyPI","name":"requests"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"2.31.0"}]}]}]}"#,
    )
    .unwrap();
    support::write_coverage_fillers(&osv);
    ok(&customs().args(["db", "import", "--db"]).arg(&db).arg(&osv).output().unwrap());
    let args = ["gate", &demo, "--no-secrets", "--db", db.to_str().unwrap(), "--report", "json=-"];
    let out = customs().args(args).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is the JSON report alone");
    assert_eq!(doc["findings"][0]["id"], "TEST-OUT");
    assert!(String::from_utf8_lossy(&out.stderr).contains("TEST-OUT"), "the table on stderr");
    let as_dev = [
        "gate",
        &demo,
        "--no-secrets",
        "--db",
        db.to_str().unwrap(),
        "--report",
        "json=/dev/stdout",
    ];
    let out = customs().args(as_dev).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"TEST-OUT\""));
    if let Some(out) = as_nobody(&args) {
        // The database is root's temporary file: nobody may not read it, and says so (exit 2), or reads it.
        assert!(
            matches!(out.status.code(), Some(1) | Some(2)),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn symlinks_are_followed_and_fifos_get_the_report() {
    let tmp = tempfile::tempdir().unwrap();
    let demo = demo_image();
    let real = tmp.path().join("real.json");
    std::fs::write(&real, "old").unwrap();
    let link = tmp.path().join("link.json");
    std::os::unix::fs::symlink("real.json", &link).unwrap();
    ok(&customs().args(["sbom", &demo, "-f", "json", "-o"]).arg(&link).output().unwrap());
    assert!(
        std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink(),
        "the link stays a link"
    );
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&real).unwrap()).unwrap();
    assert!(doc["packages"].as_array().is_some_and(|p| !p.is_empty()));

    let fifo = tmp.path().join("fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read(&fifo).unwrap())
    };
    ok(&customs().args(["sbom", &demo, "-f", "json", "-o"]).arg(&fifo).output().unwrap());
    let got = reader.join().unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&got).expect("the reader got the whole report");
    assert!(doc["packages"].as_array().is_some_and(|p| !p.is_empty()));
    assert!(std::fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo(), "still a FIFO");
    // A folder is refused with its name.
    let out = customs().args(["sbom", &demo, "-o"]).arg(tmp.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is a folder"));
}
