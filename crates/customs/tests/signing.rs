//! Issue 18's interop acceptance with the real cosign (Debian trixie's 2.5) and oras: `customs registry serve`
//! over TLS, the demo image and the bookworm app pushed with skopeo; an image signed by `customs sign` passes
//! `cosign verify` (tag mode and OCI 1.1 mode), one signed by `cosign sign` with a `cosign generate-key-pair`
//! key passes `customs verify`; a wrong key, a signature of another digest, changed claims and a signature
//! copied from another repository fail; `oras discover` lists the referrer; no plaintext private key is left on
//! disk. Skipped (a failure under CUSTOMS_REQUIRE_ALL=1) without cosign, oras or skopeo.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;

mod support;

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn customs(dir: &Path) -> Command {
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin!("customs"));
    for (k, _) in std::env::vars() {
        if k.starts_with("CUSTOMS_") || k.starts_with("COSIGN_") {
            cmd.env_remove(k);
        }
    }
    cmd.current_dir(dir)
        .env("DOCKER_CONFIG", dir.join("docker"))
        .env("CUSTOMS_REGISTRY_CA_FILE", dir.join("tls/ca.crt"));
    cmd
}

fn out(cmd: &mut Command) -> Output {
    cmd.output().unwrap()
}

fn ok(output: Output, what: &str) -> String {
    assert!(
        output.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A registry on loopback over TLS with principal `ci` (pull, push on prod/**), its credentials in a Docker
/// config that skopeo, cosign, oras and customs all read.
struct Registry {
    dir: tempfile::TempDir,
    host: String,
    _server: Server,
}

impl Registry {
    fn start() -> Registry {
        Registry::start_with("", |_| {})
    }

    /// With `extra` appended to registry.toml, and `before` run in the folder before the server starts.
    fn start_with(extra: &str, before: impl FnOnce(&Path)) -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let host = format!("127.0.0.1:{port}");
        ok(out(customs(dir.path()).args(["registry", "dev-cert", "--out", "tls"])), "dev-cert");
        std::fs::write(
            dir.path().join("registry.toml"),
            format!(
                "[server]\nlisten = \"{host}\"\n[tls]\ncert = \"tls/server-cert.pem\"\nkey = \"tls/server-key.pem\"\n\
                 [[grant]]\nto = \"ci\"\nrepositories = [\"prod/**\"]\nactions = [\"pull\", \"push\"]\n{extra}"
            ),
        )
        .unwrap();
        before(dir.path());
        let secret = ok(
            out(customs(dir.path()).args(["registry", "principal", "create", "ci"])),
            "principal",
        )
        .trim()
        .to_string();
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("ci:{secret}"));
        std::fs::create_dir_all(dir.path().join("docker")).unwrap();
        std::fs::write(
            dir.path().join("docker/config.json"),
            format!(r#"{{"auths":{{"{host}":{{"auth":"{auth}"}}}}}}"#),
        )
        .unwrap();
        let child = customs(dir.path())
            .args(["registry", "serve"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let server = Server(child);
        let agent = support::tls_agent(&dir.path().join("tls/ca.crt"));
        let deadline = Instant::now() + Duration::from_secs(30);
        while !agent.get(format!("https://{host}/readyz")).call().is_ok_and(|r| r.status() == 200) {
            assert!(Instant::now() < deadline, "the registry did not become ready");
            std::thread::sleep(Duration::from_millis(50));
        }
        Registry {
            dir,
            host,
            _server: server,
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// cosign, oras and skopeo with this registry's CA and credentials.
    fn tool(&self, program: &Path) -> Command {
        let mut cmd = Command::new(program);
        cmd.current_dir(self.path())
            .env("DOCKER_CONFIG", self.path().join("docker"))
            .env("SSL_CERT_FILE", self.path().join("tls/ca.crt"))
            .env("COSIGN_PASSWORD", "cosign-pw")
            .env("COSIGN_EXPERIMENTAL", "1");
        cmd
    }

    fn push(&self, skopeo: &Path, image: &str, to: &str) {
        ok(
            out(self.tool(skopeo).args([
                "copy",
                "--dest-cert-dir",
                "tls",
                "--dest-authfile",
                "docker/config.json",
                image,
                &format!("docker://{}/{to}", self.host),
            ])),
            &format!("skopeo copy to {to}"),
        );
    }

    fn image(&self, repo_tag: &str) -> String {
        format!("{}/{repo_tag}", self.host)
    }

    /// One request with `ci`'s credentials: (status, body, `Docker-Content-Digest`).
    fn call(&self, method: &str, path: &str, body: &[u8], content_type: &str) -> (u16, Vec<u8>, String) {
        let config: serde_json::Value = serde_json::from_slice(&std::fs::read(self.path().join("docker/config.json")).unwrap()).unwrap();
        let auth = format!("Basic {}", config["auths"][&self.host]["auth"].as_str().unwrap());
        let request = ureq::http::Request::builder()
            .method(method)
            .uri(format!("https://{}{path}", self.host))
            .header("Authorization", &auth)
            .header("Accept", "application/vnd.oci.image.manifest.v1+json")
            .header("Content-Type", content_type)
            .body(body.to_vec())
            .unwrap();
        let mut reply = support::tls_agent(&self.path().join("tls/ca.crt")).run(request).unwrap();
        let digest = reply
            .headers()
            .get("docker-content-digest")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        (reply.status().as_u16(), reply.body_mut().read_to_vec().unwrap_or_default(), digest)
    }

    /// The manifest digest of `repo:tag`.
    fn digest(&self, repo: &str, tag: &str) -> String {
        self.call("GET", &format!("/v2/{repo}/manifests/{tag}"), b"", "").2
    }

    /// Copies the `.sig` manifest of `digest` in `from` (and its blobs) to `to`, under the `.sig` tag of
    /// `to_digest`: what someone with push rights could do to move a signature.
    fn copy_signature(&self, (from, digest): (&str, &str), (to, to_digest): (&str, &str)) {
        let tag = |d: &str| format!("{}.sig", d.replace(':', "-"));
        let (_, sig, _) = self.call("GET", &format!("/v2/{from}/manifests/{}", tag(digest)), b"", "");
        let manifest: serde_json::Value = serde_json::from_slice(&sig).unwrap();
        for blob in std::iter::once(&manifest["config"]).chain(manifest["layers"].as_array().unwrap()) {
            let blob = blob["digest"].as_str().unwrap();
            let (_, bytes, _) = self.call("GET", &format!("/v2/{from}/blobs/{blob}"), b"", "");
            let (status, _, _) = self.call(
                "POST",
                &format!("/v2/{to}/blobs/uploads/?digest={blob}"),
                &bytes,
                "application/octet-stream",
            );
            assert_eq!(status, 201);
        }
        let (status, _, _) = self.call(
            "PUT",
            &format!("/v2/{to}/manifests/{}", tag(to_digest)),
            &sig,
            "application/vnd.oci.image.manifest.v1+json",
        );
        assert_eq!(status, 201);
    }
}

fn cosign_verify(reg: &Registry, cosign: &Path, key: &str, image: &str, extra: &[&str]) -> Output {
    out(reg
        .tool(cosign)
        .args(["verify", "--key", key, "--insecure-ignore-tlog"])
        .args(extra)
        .arg(image))
}

fn customs_verify(reg: &Registry, key: &str, image: &str, extra: &[&str]) -> Output {
    out(customs(reg.path())
        .env("CUSTOMS_PASSWORD", "customs-pw")
        .args(["verify", image, "--key", key])
        .args(extra))
}

/// PEM private-key blocks that are not encrypted, anywhere under `dir`.
fn plaintext_keys(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(text) = std::fs::read_to_string(&path)
                && text
                    .lines()
                    .any(|l| l.starts_with("-----BEGIN") && l.contains("PRIVATE KEY") && !l.contains("ENCRYPTED"))
            {
                found.push(path);
            }
        }
    }
    found
}

#[test]
fn customs_and_cosign_verify_each_others_signatures_and_refuse_forgeries() {
    let Some(tools) = customs_testkit::tools(
        &["cosign", "oras", "skopeo"],
        "apt-get install skopeo; cosign and oras from Debian trixie (.ci/run adds the source pinned at priority 50)",
    ) else {
        return;
    };
    let (cosign, oras, skopeo) = (&tools[0], &tools[1], &tools[2]);
    let Some(app) = customs_testkit::test_image("bookworm-app.oci") else {
        return;
    };
    let reg = Registry::start();
    let demo = format!("oci:{}", customs_testkit::repo_root().join("examples/demo-image").display());
    reg.push(skopeo, &demo, "prod/app:1");
    reg.push(skopeo, &format!("oci:{}", app.display()), "prod/other:1");
    reg.push(skopeo, &demo, "prod/copy:1");

    // customs' key, cosign's key.
    ok(
        out(customs(reg.path())
            .env("CUSTOMS_PASSWORD", "customs-pw")
            .args(["trust", "generate-key", "--output-prefix", "customs"])),
        "trust generate-key",
    );
    ok(out(reg.tool(cosign).args(["generate-key-pair"])), "cosign generate-key-pair");

    // customs signs, in tag mode and as an OCI 1.1 referrer; cosign verifies both ways.
    let app1 = reg.image("prod/app:1");
    ok(
        out(customs(reg.path()).env("CUSTOMS_PASSWORD", "customs-pw").args([
            "sign",
            &app1,
            "--key",
            "customs.key",
            "-a",
            "pipeline=release",
        ])),
        "customs sign",
    );
    let verified = cosign_verify(&reg, cosign, "customs.pub", &app1, &["-a", "pipeline=release"]);
    println!("cosign verify (tag mode): {}", String::from_utf8_lossy(&verified.stderr).trim());
    ok(verified, "cosign verify of customs' tag-mode signature");
    let other1 = reg.image("prod/other:1");
    ok(
        out(customs(reg.path())
            .env("CUSTOMS_PASSWORD", "customs-pw")
            .args(["sign", &other1, "--key", "customs.key", "--referrers"])),
        "customs sign --referrers",
    );
    ok(
        cosign_verify(&reg, cosign, "customs.pub", &other1, &["--experimental-oci11"]),
        "cosign verify --experimental-oci11 of customs' referrer signature",
    );
    let discovered = ok(
        out(reg.tool(oras).args([
            "discover",
            "--ca-file",
            "tls/ca.crt",
            "--registry-config",
            "docker/config.json",
            &other1,
        ])),
        "oras discover",
    );
    println!("oras discover {other1}:\n{discovered}");
    assert!(
        discovered.contains("application/vnd.dev.cosign.artifact.sig.v1+json"),
        "{discovered}"
    );

    // cosign signs with its own key (tag mode and OCI 1.1); customs verifies.
    ok(
        out(reg.tool(cosign).args([
            "sign",
            "--key",
            "cosign.key",
            "--tlog-upload=false",
            "-y",
            "-a",
            "by=cosign",
            &other1,
        ])),
        "cosign sign",
    );
    let verified = ok(
        customs_verify(&reg, "cosign.pub", &other1, &["-a", "by=cosign"]),
        "customs verify of cosign's signature",
    );
    assert!(verified.contains("(tag), claims by=cosign"), "{verified}");
    ok(
        out(reg.tool(cosign).args([
            "sign",
            "--key",
            "cosign.key",
            "--tlog-upload=false",
            "-y",
            "--registry-referrers-mode=oci-1-1",
            &app1,
        ])),
        "cosign sign --registry-referrers-mode=oci-1-1",
    );
    let verified = ok(
        customs_verify(&reg, "cosign.pub", &app1, &[]),
        "customs verify of cosign's referrer",
    );
    assert!(verified.contains("(referrer)"), "{verified}");

    // Forgeries fail both ways: a wrong key, changed claims.
    let wrong = customs_verify(&reg, "customs.pub", &reg.image("prod/copy:1"), &[]);
    assert_eq!(wrong.status.code(), Some(1), "an unsigned image");
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("no signature"));
    let other_key = out(customs(reg.path())
        .env("CUSTOMS_PASSWORD", "x")
        .args(["trust", "generate-key", "--output-prefix", "stranger"]));
    ok(other_key, "second key");
    let refused = customs_verify(&reg, "stranger.pub", &app1, &[]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("does not verify"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    assert!(
        !cosign_verify(&reg, cosign, "stranger.pub", &app1, &[]).status.success(),
        "cosign with a wrong key"
    );
    let claims = customs_verify(&reg, "customs.pub", &app1, &["-a", "pipeline=nightly"]);
    assert_eq!(claims.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&claims.stderr).contains("claim pipeline is `release`"));
    assert!(
        !cosign_verify(&reg, cosign, "customs.pub", &app1, &["-a", "pipeline=nightly"])
            .status
            .success()
    );

    // A signature of another digest under this image's tag, and one copied from another repository: refused.
    let (app_digest, other_digest) = (reg.digest("prod/app", "1"), reg.digest("prod/other", "1"));
    reg.copy_signature(("prod/app", &app_digest), ("prod/other", &other_digest));
    let moved = customs_verify(&reg, "customs.pub", &other1, &["-a", "pipeline=release"]);
    let stderr = String::from_utf8_lossy(&moved.stderr);
    assert_eq!(moved.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("not this image"), "{stderr}");
    assert!(
        !cosign_verify(&reg, cosign, "customs.pub", &other1, &["-a", "pipeline=release"])
            .status
            .success()
    );
    // prod/copy holds the same image as prod/app (same digest): prod/app's signature copied there names prod/app.
    let copy_digest = reg.digest("prod/copy", "1");
    assert_eq!(copy_digest, app_digest);
    reg.copy_signature(("prod/app", &app_digest), ("prod/copy", &copy_digest));
    let copied = customs_verify(&reg, "customs.pub", &reg.image("prod/copy:1"), &[]);
    let stderr = String::from_utf8_lossy(&copied.stderr);
    assert_eq!(copied.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("copied between repositories"), "{stderr}");

    // An index signed with --recursive: the index and each platform's image verify, with cosign too.
    reg.push(skopeo, &demo, "prod/multi:a");
    reg.push(skopeo, &format!("oci:{}", app.display()), "prod/multi:b");
    let mut entries = Vec::new();
    for (tag, arch) in [("a", "amd64"), ("b", "arm64")] {
        let (_, body, digest) = reg.call("GET", &format!("/v2/prod/multi/manifests/{tag}"), b"", "");
        entries.push(
            serde_json::json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest,
            "size": body.len(), "platform": {"architecture": arch, "os": "linux"}}),
        );
    }
    let index =
        serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": entries}).to_string();
    let (status, _, _) = reg.call(
        "PUT",
        "/v2/prod/multi/manifests/all",
        index.as_bytes(),
        "application/vnd.oci.image.index.v1+json",
    );
    assert_eq!(status, 201);
    let signed = ok(
        out(customs(reg.path()).env("CUSTOMS_PASSWORD", "customs-pw").args([
            "sign",
            &reg.image("prod/multi:all"),
            "--key",
            "customs.key",
            "--recursive",
        ])),
        "customs sign --recursive",
    );
    assert_eq!(signed.lines().filter(|l| l.starts_with("signed ")).count(), 3, "{signed}");
    ok(
        customs_verify(&reg, "customs.pub", &reg.image("prod/multi:all"), &[]),
        "the index verifies",
    );
    for entry in &entries {
        let child = format!("{}@{}", reg.image("prod/multi"), entry["digest"].as_str().unwrap());
        ok(
            cosign_verify(&reg, cosign, "customs.pub", &child, &[]),
            &format!("cosign verify {child}"),
        );
    }

    // No signing key was written in plaintext: the only plaintext key is the TLS server's (`dev-cert`), which
    // the server must read at start.
    assert_eq!(plaintext_keys(reg.path()), vec![reg.path().join("tls/server-key.pem")]);
    assert!(
        std::fs::read_to_string(reg.path().join("customs.key"))
            .unwrap()
            .contains("ENCRYPTED SIGSTORE PRIVATE KEY")
    );
}

/// `customs … --trust-dir trust` with the trust password, in the registry's folder.
fn trust(reg: &Registry, args: &[&str]) -> Output {
    out(customs(reg.path()).env("CUSTOMS_PASSWORD", "trust-pw").args(args))
}

#[test]
fn signatures_count_only_from_current_delegations_certified_up_to_the_trusted_root() {
    let Some(skopeo) = customs_testkit::tool("skopeo", "apt-get install skopeo") else {
        return;
    };
    let (Some(app_image), Some(base_image)) = (
        customs_testkit::test_image("bookworm-app.oci"),
        customs_testkit::test_image("bookworm-base.docker.tar"),
    ) else {
        return;
    };
    let reg = Registry::start();
    // Three different images (signatures are per digest), and prod/app:1's image again in prod/other.
    let demo = format!("oci:{}", customs_testkit::repo_root().join("examples/demo-image").display());
    reg.push(&skopeo, &demo, "prod/app:1");
    reg.push(&skopeo, &format!("oci:{}", app_image.display()), "prod/app:2");
    reg.push(&skopeo, &format!("docker-archive:{}", base_image.display()), "prod/app:3");
    reg.push(&skopeo, &demo, "prod/other:1");
    let (app, other) = (reg.image("prod/app"), reg.image("prod/other"));
    ok(trust(&reg, &["trust", "init"]), "trust init");
    for repo in [&app, &other] {
        ok(trust(&reg, &["trust", "repo", "add", repo]), "trust repo add");
    }
    for name in ["release", "stranger", "old"] {
        ok(trust(&reg, &["trust", "generate-key", "--output-prefix", name]), "generate-key");
    }
    let next_year = (time::OffsetDateTime::now_utc() + time::Duration::days(365)).date().to_string();
    ok(
        trust(
            &reg,
            &[
                "trust",
                "signer",
                "add",
                &app,
                "release",
                "--key",
                "release.pub",
                "--expires",
                &next_year,
            ],
        ),
        "signer add",
    );
    ok(
        trust(
            &reg,
            &["trust", "signer", "add", &app, "old", "--key", "old.pub", "--expires", "2020-01-31"],
        ),
        "signer add (expired)",
    );
    let sign = |image: &str, key: &str| ok(trust(&reg, &["sign", image, "--key", key]), &format!("sign {image} with {key}"));
    sign(&format!("{app}:1"), "release.key");
    sign(&format!("{app}:2"), "stranger.key");
    sign(&format!("{app}:3"), "old.key");
    let verify = |image: &str| {
        trust(
            &reg,
            &["verify", image, "--trust-root", "trust/root.pub", "--trust-state", "state.json"],
        )
    };
    let verified = ok(verify(&format!("{app}:1")), "verify a delegate's signature");
    assert!(verified.contains("signed by release"), "{verified}");
    let refused = |image: String, why: &str| {
        let o = verify(&image);
        let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
        assert_eq!(o.status.code(), Some(1), "{image} verified: {stderr}");
        assert!(stderr.contains(why), "{image}: expected `{why}` in: {stderr}");
    };
    refused(format!("{app}:2"), "not signed by any delegation of prod/app");
    refused(format!("{app}:3"), "whose delegation expired on 2020-01-31");

    // The deploy pipeline's gate: the same signature check beside the scan (secrets aside; a database that
    // covers the ecosystems with nothing matching).
    support::write_coverage_fillers(&reg.path().join("osv"));
    ok(
        out(customs(reg.path()).args(["db", "import", "--db", "vuln.db", "osv"])),
        "db import",
    );
    let gate = |image: String| {
        out(customs(reg.path()).args([
            "gate",
            &image,
            "--db",
            "vuln.db",
            "--no-secrets",
            "--require-signature",
            "--trust-root",
            "trust/root.pub",
        ]))
    };
    let passed = gate(format!("{app}:1"));
    assert_eq!(
        passed.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&passed.stdout),
        String::from_utf8_lossy(&passed.stderr)
    );
    let failed = gate(format!("{app}:2"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&failed.stdout),
        String::from_utf8_lossy(&failed.stderr)
    );
    assert_eq!(failed.status.code(), Some(1), "{text}");
    assert!(
        text.contains("no valid signature") && text.contains("not signed by any delegation of prod/app"),
        "{text}"
    );

    // The same image in prod/other with prod/app's signature copied over: not prod/other's delegate, nor for it.
    let digest = reg.digest("prod/app", "1");
    reg.copy_signature(("prod/app", &digest), ("prod/other", &digest));
    refused(format!("{other}:1"), "not signed by any delegation of prod/other");

    // trust inspect --pretty: who may sign, who signed which tag.
    let inspected = ok(trust(&reg, &["trust", "inspect", &app, "--pretty"]), "trust inspect");
    println!("customs trust inspect --pretty {app}:{inspected}");
    assert!(
        inspected.lines().any(|l| l.starts_with("1 ") && l.trim_end().ends_with("release")),
        "{inspected}"
    );
    assert!(
        inspected.lines().any(|l| l.starts_with("2 ") && l.contains("(unsigned)")),
        "{inspected}"
    );
    assert!(inspected.contains("Root Key:"));

    // Keep the current trust document, revoke the delegate: its signatures, old and new, stop counting.
    let (_, before, _) = reg.call("GET", "/v2/prod/app/manifests/customs-trust", b"", "");
    ok(trust(&reg, &["trust", "signer", "remove", &app, "release"]), "signer remove");
    refused(format!("{app}:1"), "whose delegation was revoked on");
    sign(&format!("{app}:2"), "release.key");
    refused(format!("{app}:2"), "whose delegation was revoked on");
    // Someone with push puts the older document back: the verifier has seen the newer version and refuses it.
    let (status, _, _) = reg.call(
        "PUT",
        "/v2/prod/app/manifests/customs-trust",
        &before,
        "application/vnd.oci.image.manifest.v1+json",
    );
    assert_eq!(status, 201);
    refused(format!("{app}:1"), "a rollback is refused");
    assert_eq!(plaintext_keys(reg.path()), vec![reg.path().join("tls/server-key.pem")]);
}

#[test]
fn a_protected_repository_serves_only_images_its_delegates_signed_and_admission_agrees() {
    let Some(skopeo) = customs_testkit::tool("skopeo", "apt-get install skopeo") else {
        return;
    };
    let (Some(app_image), Some(base_image)) = (
        customs_testkit::test_image("bookworm-app.oci"),
        customs_testkit::test_image("bookworm-base.docker.tar"),
    ) else {
        return;
    };
    // The root exists before the registry starts: it pins it. The database covers the images' ecosystems with
    // no advisory for them, so the demo image's verdict passes (its planted secret aside: secrets = false).
    let reg = Registry::start_with(
        "[scanning]\nvulnerability_db = \"vuln.db\"\n[trust]\nroot = \"trust/root.pub\"\n\
         [[protect]]\nrepositories = [\"prod/**\"]\nrequire_signature = true\nblock_unscanned = false\nsecrets = false\n\
         [[grant]]\nto = \"deploy\"\nrepositories = [\"prod/**\"]\nactions = [\"pull\"]\n",
        |dir| {
            let o = out(customs(dir).env("CUSTOMS_PASSWORD", "trust-pw").args(["trust", "init"]));
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            support::write_coverage_fillers(&dir.join("osv"));
            let o = out(customs(dir).args(["db", "import", "--db", "vuln.db", "osv"]));
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        },
    );
    let demo = format!("oci:{}", customs_testkit::repo_root().join("examples/demo-image").display());
    reg.push(&skopeo, &demo, "prod/app:1");
    reg.push(&skopeo, &format!("oci:{}", app_image.display()), "prod/app:2");
    reg.push(&skopeo, &format!("docker-archive:{}", base_image.display()), "prod/app:3");
    reg.push(&skopeo, &demo, "prod/other:1");
    let (app, other) = (reg.image("prod/app"), reg.image("prod/other"));
    for repo in [&app, &other] {
        ok(trust(&reg, &["trust", "repo", "add", repo]), "trust repo add");
    }
    for name in ["release", "other-release"] {
        ok(trust(&reg, &["trust", "generate-key", "--output-prefix", name]), "generate-key");
    }
    ok(
        trust(&reg, &["trust", "signer", "add", &app, "release", "--key", "release.pub"]),
        "signer add",
    );
    ok(
        trust(&reg, &["trust", "signer", "add", &other, "release", "--key", "other-release.pub"]),
        "signer add",
    );
    ok(
        trust(&reg, &["sign", &format!("{app}:1"), "--key", "release.key"]),
        "sign by the delegate",
    );
    ok(
        trust(&reg, &["sign", &format!("{app}:2"), "--key", "other-release.key"]),
        "sign by prod/other's delegate",
    );

    // Deploys pull with a pull-only identity (the pipeline, which may push and sign, reads unsigned manifests
    // to sign them).
    let deploy = ok(
        out(customs(reg.path()).args(["registry", "principal", "create", "deploy"])),
        "principal create",
    );
    let deploy = format!("deploy:{}", deploy.trim());
    let pull = |from: &str| -> Output {
        let target = reg.path().join(format!("pulled-{}", from.replace(['/', ':'], "-")));
        out(reg.tool(&skopeo).args([
            "copy",
            "--src-cert-dir",
            "tls",
            "--src-creds",
            &deploy,
            &format!("docker://{}/{from}", reg.host),
            &format!("oci:{}", target.display()),
        ]))
    };
    ok(pull("prod/app:1"), "pull of an image its delegate signed");
    for (from, why) in [
        ("prod/app:2", "not signed by any delegation of prod/app"),
        ("prod/app:3", "is not signed"),
        // The same image as prod/app:1, whose signature lives in prod/app: it vouches for prod/app only.
        ("prod/other:1", "is not signed"),
    ] {
        let o = pull(from);
        let stderr = String::from_utf8_lossy(&o.stderr);
        println!("skopeo copy {from}: {}", stderr.trim());
        assert!(!o.status.success(), "{from} was served");
        assert!(stderr.contains(why), "{from}: expected `{why}` in {stderr}");
    }
    let denied = ok(
        out(customs(reg.path()).args(["registry", "audit", "query", "--result", "denied", "--format", "json"])),
        "audit query",
    );
    for repo in ["prod/app", "prod/other"] {
        assert!(
            denied.lines().any(|l| l.contains(repo) && l.contains("requires a signature")),
            "no refusal of {repo} in the audit log:\n{denied}"
        );
    }

    // The deploy-time check: `customs admission serve` with the deploy identity, real AdmissionReviews.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (user, password) = deploy.split_once(':').unwrap();
    let child = customs(reg.path())
        .env("CUSTOMS_REGISTRY_USERNAME", user)
        .env("CUSTOMS_REGISTRY_PASSWORD", password)
        .args([
            "admission",
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--tls-cert",
            "tls/server-cert.pem",
            "--tls-key",
            "tls/server-key.pem",
            "--trust-root",
            "trust/root.pub",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _admission = Server(child);
    let agent = support::tls_agent(&reg.path().join("tls/ca.crt"));
    let post = |body: &[u8]| -> (u16, serde_json::Value) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match agent
                .post(format!("https://127.0.0.1:{port}/validate"))
                .header("Content-Type", "application/json")
                .send(body)
            {
                Ok(mut reply) => {
                    let status = reply.status().as_u16();
                    let text = reply.body_mut().read_to_string().unwrap_or_default();
                    return (status, serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)));
                }
                Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
                Err(e) => panic!("the admission webhook does not answer: {e}"),
            }
        }
    };
    let review = |kind: &str, object: serde_json::Value| -> Vec<u8> {
        serde_json::json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {"uid": format!("uid-{kind}"), "kind": {"group": "apps", "version": "v1", "kind": kind},
                        "operation": "CREATE", "namespace": "shop", "object": object}})
        .to_string()
        .into_bytes()
    };
    let pod = |image: &str| {
        review(
            "Pod",
            serde_json::json!({"metadata": {"name": "web"}, "spec": {"containers": [{"name": "app", "image": image}]}}),
        )
    };
    // The signed image passes once its scan is stored (scanned on push).
    let signed = reg.image("prod/app:1");
    let deadline = Instant::now() + Duration::from_secs(60);
    let allowed = loop {
        let (status, answer) = post(&pod(&signed));
        assert_eq!(status, 200, "{answer}");
        if answer["response"]["allowed"] == true || Instant::now() > deadline {
            break answer;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(allowed["response"]["allowed"], true, "{allowed:#}");
    assert_eq!(allowed["response"]["uid"], "uid-Pod");
    let (_, refused) = post(&pod(&reg.image("prod/app:3")));
    let message = refused["response"]["status"]["message"].as_str().unwrap_or_default().to_string();
    println!("admission of an unsigned image: {message}");
    assert_eq!(refused["response"]["allowed"], false);
    // The registry itself refuses the unsigned manifest to the deploy identity; admission passes its reason on.
    assert!(message.contains("is not signed"), "{message}");
    let deployment = review(
        "Deployment",
        serde_json::json!({"metadata": {"name": "web"}, "spec": {"template": {"spec": {
            "initContainers": [{"name": "migrate", "image": reg.image("prod/app:2")}],
            "containers": [{"name": "app", "image": signed}]}}}}),
    );
    let (_, refused) = post(&deployment);
    let message = refused["response"]["status"]["message"].as_str().unwrap_or_default().to_string();
    assert_eq!(refused["response"]["allowed"], false, "{refused:#}");
    assert!(
        message.contains("initContainers `migrate`") && message.contains("not signed by any delegation of prod/app"),
        "{message}"
    );
    for bad in [&b"{"[..], br#"{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1"}"#] {
        let (status, body) = post(bad);
        assert_eq!(status, 400, "{body}");
    }
    let (status, _) = post(&pod(&signed));
    assert_eq!(status, 200, "the webhook still answers after malformed input");
}

#[test]
fn a_key_made_inside_softhsm2_signs_through_pkcs11_and_cosign_verifies() {
    let Some(tools) = customs_testkit::tools(
        &["softhsm2-util", "cosign", "skopeo"],
        "apt-get install softhsm2 skopeo; cosign from Debian trixie",
    ) else {
        return;
    };
    let (softhsm, cosign, skopeo) = (&tools[0], &tools[1], &tools[2]);
    let reg = Registry::start();
    let demo = format!("oci:{}", customs_testkit::repo_root().join("examples/demo-image").display());
    reg.push(skopeo, &demo, "prod/app:1");
    // A throwaway token in the test's folder.
    let tokens = reg.path().join("tokens");
    std::fs::create_dir_all(&tokens).unwrap();
    let conf = reg.path().join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!("directories.tokendir = {}\nobjectstore.backend = file\n", tokens.display()),
    )
    .unwrap();
    ok(
        out(Command::new(softhsm).env("SOFTHSM2_CONF", &conf).args([
            "--init-token",
            "--free",
            "--label",
            "customs",
            "--pin",
            "1234",
            "--so-pin",
            "5678",
        ])),
        "softhsm2-util --init-token",
    );
    let uri = "pkcs11:token=customs;object=release";
    let hsm = |args: &[&str]| {
        out(customs(reg.path())
            .env("SOFTHSM2_CONF", &conf)
            .env("CUSTOMS_PKCS11_PIN", "1234")
            .args(args))
    };
    let made = ok(
        hsm(&["trust", "generate-key", "--pkcs11", uri, "--output-prefix", "hsm"]),
        "generate-key --pkcs11",
    );
    println!("{made}");
    assert!(!reg.path().join("hsm.key").exists(), "no private key file: it stays in the token");
    let image = reg.image("prod/app:1");
    ok(
        hsm(&["sign", &image, "--key", uri, "-a", "signed-by=hsm"]),
        "customs sign with the HSM key",
    );
    ok(
        cosign_verify(&reg, cosign, "hsm.pub", &image, &["-a", "signed-by=hsm"]),
        "cosign verify of the HSM signature",
    );
    ok(customs_verify(&reg, "hsm.pub", &image, &[]), "customs verify of the HSM signature");
    // A wrong PIN and an unknown key are refused with the reason.
    let wrong = out(customs(reg.path())
        .env("SOFTHSM2_CONF", &conf)
        .env("CUSTOMS_PKCS11_PIN", "0000")
        .args(["sign", &image, "--key", uri]));
    assert_eq!(wrong.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&wrong.stderr).contains("login"),
        "{}",
        String::from_utf8_lossy(&wrong.stderr)
    );
    let missing = hsm(&["sign", &image, "--key", "pkcs11:token=customs;object=nope"]);
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no private key with that label"));
    let kms = out(customs(reg.path()).args(["sign", &image, "--key", "azurekms://vault.example/release"]));
    assert!(String::from_utf8_lossy(&kms.stderr).contains("no azurekms backend"));
}
