//! `customs sbom` against a real registry: Debian's `docker-registry` (CNCF distribution)
//! with TLS from a private CA and htpasswd logins, filled by `skopeo copy`.
//! Skipped (a failure under CUSTOMS_REQUIRE_ALL=1) when those tools are absent (.ci/run installs them).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::cargo::cargo_bin_cmd;
use serde_json::Value;

struct Registry {
    child: Child,
    addr: String,
    dir: tempfile::TempDir,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
}

fn start() -> Option<Registry> {
    customs_testkit::tools(
        &["docker-registry", "skopeo", "openssl", "htpasswd"],
        "apt-get install docker-registry skopeo openssl apache2-utils",
    )?;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ossl = |args: &str| {
        run(Command::new("sh")
            .current_dir(d)
            .arg("-c")
            .arg(format!("openssl {args} 2>/dev/null")))
    };
    ossl("req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem -days 1 -subj /CN=customs-test-ca");
    ossl("req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout key.pem -out srv.csr -subj /CN=127.0.0.1");
    std::fs::write(
        d.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    ossl("x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out cert.pem -days 1 -extfile ext.cnf");
    run(Command::new("sh")
        .current_dir(d)
        .arg("-c")
        .arg("htpasswd -Bbn ci-user ci-pass > htpasswd"));
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr = format!("127.0.0.1:{port}");
    let p = |f: &str| d.join(f).display().to_string();
    let config = format!(
        "version: 0.1\nlog: {{level: error}}\nstorage: {{filesystem: {{rootdirectory: {}}}}}\nhttp:\n  addr: {addr}\n  tls: {{certificate: {}, key: {}}}\nauth:\n  htpasswd: {{realm: customs-test, path: {}}}\n",
        p("data"),
        p("cert.pem"),
        p("key.pem"),
        p("htpasswd")
    );
    std::fs::write(d.join("config.yml"), config).unwrap();
    let child = Command::new("docker-registry")
        .arg("serve")
        .arg(d.join("config.yml"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let reg = Registry { child, addr, dir };
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(&reg.addr).is_err() {
        assert!(Instant::now() < deadline, "docker-registry did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    Some(reg)
}

fn push(reg: &Registry, source: &str, repo: &str) {
    run(Command::new("skopeo")
        // skopeo only fills the registry; customs is the one that must verify TLS.
        .args(["copy", "-q", "--dest-creds", "ci-user:ci-pass", "--dest-tls-verify=false"])
        .arg(source)
        .arg(format!("docker://{}/{repo}", reg.addr)));
}

fn sbom(reg: &Registry, reference: &str, password: &str) -> std::process::Output {
    cargo_bin_cmd!("customs")
        .args(["sbom", &format!("{}/{reference}", reg.addr), "-f", "json", "--ca-file"])
        .arg(reg.dir.path().join("ca.pem"))
        .env("CUSTOMS_REGISTRY_USERNAME", "ci-user")
        .env("CUSTOMS_REGISTRY_PASSWORD", password)
        .env("DOCKER_CONFIG", reg.dir.path())
        .output()
        .unwrap()
}

fn names(doc: &Value) -> Vec<(String, String, Value)> {
    let mut v: Vec<_> = doc["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_string(),
                p["version"].as_str().unwrap().to_string(),
                p["layer"].clone(),
            )
        })
        .collect();
    v.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    v
}

fn local(image: &Path) -> Value {
    let out = cargo_bin_cmd!("customs")
        .args(["sbom", image.to_str().unwrap(), "-f", "json"])
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn pulls_over_tls_with_basic_auth_and_matches_the_local_copy() {
    let Some(reg) = start() else { return };
    let demo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/demo-image");
    push(&reg, &format!("oci:{}:demo", demo.display()), "team/demo:1.0");
    let out = sbom(&reg, "team/demo:1.0", "ci-pass");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let remote: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(names(&remote), names(&local(&demo)));
    assert!(remote["subject"]["manifest_digest"].as_str().unwrap().starts_with("sha256:"));

    // The password from standard input (docker login's --password-stdin); a wrong one fails.
    let with_stdin = |password: &str| {
        cargo_bin_cmd!("customs")
            .args([
                "sbom",
                &format!("{}/team/demo:1.0", reg.addr),
                "-f",
                "json",
                "--username",
                "ci-user",
                "--password-stdin",
            ])
            .arg("--ca-file")
            .arg(reg.dir.path().join("ca.pem"))
            .env_remove("CUSTOMS_REGISTRY_PASSWORD")
            .env("DOCKER_CONFIG", reg.dir.path())
            .write_stdin(format!("{password}\n"))
            .output()
            .unwrap()
    };
    let out = with_stdin("ci-pass");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(names(&serde_json::from_slice(&out.stdout).unwrap()), names(&local(&demo)));
    assert!(!with_stdin("wrong").status.success());

    // A real Debian image too.
    let Some(app) = customs_testkit::test_image("bookworm-app.oci") else {
        return;
    };
    push(&reg, &format!("oci:{}:test", app.display()), "team/app:test");
    let out = sbom(&reg, "team/app:test", "ci-pass");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(names(&serde_json::from_slice(&out.stdout).unwrap()), names(&local(&app)));
}

/// With no CUSTOMS_REGISTRY_* variables, credentials come from the docker config's `auths` (base64 `user:pass`).
#[test]
fn docker_config_auths_supply_the_credentials() {
    let Some(reg) = start() else { return };
    let demo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/demo-image");
    push(&reg, &format!("oci:{}:demo", demo.display()), "team/demo:1.0");
    let pull = |config_dir: &Path| {
        cargo_bin_cmd!("customs")
            .args(["sbom", &format!("{}/team/demo:1.0", reg.addr), "-f", "json", "--ca-file"])
            .arg(reg.dir.path().join("ca.pem"))
            .env_remove("CUSTOMS_REGISTRY_USERNAME")
            .env_remove("CUSTOMS_REGISTRY_PASSWORD")
            .env("DOCKER_CONFIG", config_dir)
            .output()
            .unwrap()
    };
    let write_config = |dir: &Path, user_pass: &str| {
        use base64::Engine;
        let auth = base64::engine::general_purpose::STANDARD.encode(user_pass);
        std::fs::create_dir_all(dir).unwrap();
        let doc = serde_json::json!({"auths": {reg.addr.clone(): {"auth": auth}}});
        std::fs::write(dir.join("config.json"), doc.to_string()).unwrap();
    };
    let good = reg.dir.path().join("good-config");
    write_config(&good, "ci-user:ci-pass");
    let out = pull(&good);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let remote: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(names(&remote), names(&local(&demo)));

    // The credentials really come from that file: a wrong password there is refused.
    let bad = reg.dir.path().join("bad-config");
    write_config(&bad, "ci-user:wrong");
    let out = pull(&bad);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("401"));
}

#[test]
fn wrong_password_and_untrusted_ca_fail_clearly() {
    let Some(reg) = start() else { return };
    let demo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/demo-image");
    push(&reg, &format!("oci:{}:demo", demo.display()), "team/demo:1.0");
    let out = sbom(&reg, "team/demo:1.0", "wrong");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("401") && err.contains("check the credentials"), "{err}");

    let out = cargo_bin_cmd!("customs")
        .args(["sbom", &format!("{}/team/demo:1.0", reg.addr)])
        .env("DOCKER_CONFIG", reg.dir.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "an untrusted CA is an input error: {err}");
    assert!(err.contains("UnknownIssuer") && err.contains("--ca-file"), "{err}");
}
