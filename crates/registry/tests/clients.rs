//! Real clients against the registry over TLS with the generated CA: skopeo and podman (token auth with basic
//! credentials, as CI pipelines use them) and the Rust `oci-client`. Each round trip must return byte-identical
//! manifests and blobs. skopeo and podman tests skip with a message when the tool is not installed.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::{Cred, start};

const GRANTS: &str = r#"
[[grant]]
to = "ci"
repositories = ["project1/**"]
actions = ["pull", "push"]
[[grant]]
to = "other"
repositories = ["project2/**"]
actions = ["pull", "push"]
"#;

fn demo_image() -> PathBuf {
    std::fs::canonicalize(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/demo-image")).unwrap()
}

fn have(tool: &str) -> bool {
    customs_testkit::tool(tool, &format!("apt-get install {tool}")).is_some()
}

fn run(cmd: &mut Command) -> std::process::Output {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The manifest digest and layer digests of an OCI layout's only image.
fn layout_digests(dir: &Path) -> (String, Vec<String>) {
    let index: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    let digest = index["manifests"][0]["digest"].as_str().unwrap().to_string();
    let blob = dir.join("blobs/sha256").join(digest.trim_start_matches("sha256:"));
    let manifest: serde_json::Value = serde_json::from_slice(&std::fs::read(blob).unwrap()).unwrap();
    let layers = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect();
    (digest, layers)
}

#[test]
fn skopeo_push_and_pull_round_trip() {
    if !have("skopeo") {
        return;
    }
    let reg = start(GRANTS, &["ci", "other"]);
    let creds = format!("ci:{}", reg.secrets["ci"]);
    let cert_dir = reg.ca_dir();
    let target = format!("docker://{}/project1/demo:1.0", reg.host);
    run(Command::new("skopeo")
        .args(["copy", "--quiet", "--dest-cert-dir"])
        .arg(&cert_dir)
        .args(["--dest-creds", &creds, "--preserve-digests"])
        .arg(format!("oci:{}:demo", demo_image().display()))
        .arg(&target));

    let out_dir = tempfile::tempdir().unwrap();
    let out = out_dir.path().join("pulled");
    run(Command::new("skopeo")
        .args(["copy", "--quiet", "--src-cert-dir"])
        .arg(&cert_dir)
        .args(["--src-creds", &creds])
        .arg(&target)
        .arg(format!("oci:{}:demo", out.display())));
    assert_eq!(
        layout_digests(&out),
        layout_digests(&demo_image()),
        "the pulled image must be byte-identical"
    );

    // A docker-archive with Docker media types goes through too.
    let archive = out_dir.path().join("demo.tar");
    run(Command::new("skopeo")
        .args(["copy", "--quiet"])
        .arg(format!("oci:{}:demo", demo_image().display()))
        .arg(format!("docker-archive:{}", archive.display())));
    let docker_target = format!("docker://{}/project1/demo:docker", reg.host);
    run(Command::new("skopeo")
        .args(["copy", "--quiet", "--dest-cert-dir"])
        .arg(&cert_dir)
        .args(["--dest-creds", &creds])
        .arg(format!("docker-archive:{}", archive.display()))
        .arg(&docker_target));
    let inspect = run(Command::new("skopeo")
        .args(["inspect", "--raw", "--cert-dir"])
        .arg(&cert_dir)
        .args(["--creds", &creds])
        .arg(&docker_target));
    let manifest: serde_json::Value = serde_json::from_slice(&inspect.stdout).unwrap();
    assert_eq!(manifest["mediaType"], "application/vnd.docker.distribution.manifest.v2+json");

    // Another project's principal is refused, and the refusal is audited.
    let other = format!("other:{}", reg.secrets["other"]);
    let refused = Command::new("skopeo")
        .args(["inspect", "--raw", "--cert-dir"])
        .arg(&cert_dir)
        .args(["--creds", &other])
        .arg(&target)
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let denied = reg
        .audit_records()
        .into_iter()
        .filter(|r| r.event.principal == "other" && r.event.repository == "project1/demo" && r.event.result == "denied")
        .count();
    assert!(denied >= 1);

    // Without the CA, TLS verification fails: the registry never falls back to plain HTTP.
    let untrusted = Command::new("skopeo")
        .args(["inspect", "--raw", "--creds", &creds])
        .arg(&target)
        .output()
        .unwrap();
    assert!(!untrusted.status.success());
    assert!(
        String::from_utf8_lossy(&untrusted.stderr).contains("certificate"),
        "{}",
        String::from_utf8_lossy(&untrusted.stderr)
    );
}

#[test]
fn podman_push_and_pull() {
    if !have("podman") {
        return;
    }
    let reg = start(GRANTS, &["ci"]);
    let root = tempfile::tempdir().unwrap();
    let podman = |args: &[&str]| {
        let mut cmd = Command::new("podman");
        cmd.arg("--root")
            .arg(root.path().join("root"))
            .arg("--runroot")
            .arg(root.path().join("run"));
        cmd.arg("--storage-driver").arg("vfs").args(args);
        cmd
    };
    let cert_dir = reg.ca_dir();
    let cert_dir = cert_dir.to_str().unwrap();
    let creds = format!("ci:{}", reg.secrets["ci"]);
    let image = format!("{}/project1/podman:1.0", reg.host);
    run(&mut podman(&["pull", "-q", &format!("oci:{}:demo", demo_image().display())]));
    let images = run(&mut podman(&["images", "-q", "--no-trunc"]));
    let id = String::from_utf8_lossy(&images.stdout).lines().next().unwrap().to_string();
    run(&mut podman(&["tag", &id, &image]));
    run(&mut podman(&["push", "-q", "--cert-dir", cert_dir, "--creds", &creds, &image]));
    run(&mut podman(&["rmi", "-a", "-f"]));
    run(&mut podman(&["pull", "-q", "--cert-dir", cert_dir, "--creds", &creds, &image]));
    let inspect = run(&mut podman(&["image", "inspect", "--format", "{{.Id}}", &image]));
    assert_eq!(
        String::from_utf8_lossy(&inspect.stdout).trim(),
        id.trim_start_matches("sha256:"),
        "the pulled image has the pushed config"
    );
}

#[test]
fn oci_client_push_pull_and_referrers() {
    use oci_client::client::{ClientConfig, ClientProtocol, Config, ImageLayer};
    use oci_client::secrets::RegistryAuth;
    use oci_client::{Client, Reference};

    let reg = start(GRANTS, &["ci"]);
    let pem = std::fs::read(reg.ca_dir().join("ca.crt")).unwrap();
    let client = Client::new(ClientConfig {
        protocol: ClientProtocol::Https,
        extra_root_certificates: vec![oci_client::client::Certificate {
            encoding: oci_client::client::CertificateEncoding::Pem,
            data: pem,
        }],
        ..Default::default()
    });
    let auth = RegistryAuth::Basic("ci".into(), reg.secrets["ci"].clone());
    let reference: Reference = format!("{}/project1/rust:v1", reg.host).parse().unwrap();
    let layer_bytes: Vec<u8> = (0..5_000_000u32).map(|i| (i % 253) as u8).collect();
    let layers = vec![ImageLayer::new(
        layer_bytes.clone(),
        "application/vnd.oci.image.layer.v1.tar".into(),
        None,
    )];
    let config = Config::new(
        br#"{"architecture":"amd64","os":"linux"}"#.to_vec(),
        "application/vnd.oci.image.config.v1+json".into(),
        None,
    );

    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let pushed = client.push(&reference, &layers, config, &auth, None).await.unwrap();
            assert!(pushed.manifest_url.contains("/v2/project1/rust/manifests/"));
            let image = client
                .pull(&reference, &auth, vec!["application/vnd.oci.image.layer.v1.tar"])
                .await
                .unwrap();
            assert_eq!(image.layers.len(), 1);
            assert_eq!(image.layers[0].data.as_ref(), layer_bytes.as_slice());
            let (_, digest) = client.pull_manifest(&reference, &auth).await.unwrap();
            let referrers = client.pull_referrers(&reference.clone_with_digest(digest), None).await.unwrap();
            assert!(referrers.manifests.is_empty());
            let tags = client.list_tags(&reference, &auth, None, None).await.unwrap();
            assert_eq!(tags.tags, ["v1"]);
        });
    let reply = reg.request("GET", "/v2/project1/rust/tags/list", &Cred::None, &[], None);
    assert_eq!(reply.status, 401, "anonymous callers get nothing");
}
