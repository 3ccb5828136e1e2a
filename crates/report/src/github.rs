//! GitHub's dependency submission format (a "snapshot"), so an image's packages appear in the repository's
//! dependency graph and Dependabot alerts (`customs scan --format github`, Trivy's `--format github`).

use customs_catalog::Inventory;
use serde_json::{Value, json};

use crate::{DocumentStamp, Subject, TOOL_VERSION};

/// Where the snapshot comes from: the commit and ref it describes and the workflow job that made it.
#[derive(Clone, Debug)]
pub struct GithubJob {
    /// The commit (`GITHUB_SHA`), 40 hex digits.
    pub sha: String,
    /// The ref (`GITHUB_REF`), `refs/heads/main`.
    pub git_ref: String,
    /// The job's run id (`GITHUB_RUN_ID`).
    pub run_id: String,
    /// What groups snapshots of the same kind (`GITHUB_WORKFLOW` + `GITHUB_JOB`).
    pub correlator: String,
}

/// The inventory as one snapshot: the image is one manifest; each package a resolved dependency by purl.
pub fn github_snapshot(subject: &Subject, inventory: &Inventory, job: &GithubJob, stamp: &DocumentStamp) -> String {
    let mut resolved = serde_json::Map::new();
    for p in &inventory.packages {
        resolved.insert(
            p.purl.clone(),
            json!({"package_url": p.purl, "relationship": "direct", "scope": "runtime"}),
        );
    }
    let name = subject.tags.first().unwrap_or(&subject.name).clone();
    let doc = json!({
        "version": 0,
        "job": {"correlator": job.correlator, "id": job.run_id},
        "sha": job.sha,
        "ref": job.git_ref,
        "detector": {"name": "customs", "version": TOOL_VERSION, "url": env!("CARGO_PKG_REPOSITORY")},
        "scanned": stamp.created_rfc3339(),
        "manifests": {
            name.clone(): {"name": name, "resolved": Value::Object(resolved)},
        },
    });
    let mut s = serde_json::to_string_pretty(&doc).expect("json values serialize");
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use crate::fixture;

    #[test]
    fn renders_a_snapshot_with_every_package_by_purl() {
        let job = super::GithubJob {
            sha: "0123456789abcdef0123456789abcdef01234567".into(),
            git_ref: "refs/heads/main".into(),
            run_id: "42".into(),
            correlator: "build_scan".into(),
        };
        let inventory = fixture::inventory();
        let text = super::github_snapshot(&fixture::subject(), &inventory, &job, &fixture::stamp());
        let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
        let manifest = doc["manifests"].as_object().unwrap().values().next().unwrap();
        let resolved = manifest["resolved"].as_object().unwrap();
        for p in &inventory.packages {
            assert_eq!(resolved[&p.purl]["package_url"], p.purl.as_str());
        }
        assert_eq!(doc["sha"], job.sha.as_str());
        assert_eq!(doc["job"]["correlator"], "build_scan");
        insta::assert_snapshot!(text);
    }
}
