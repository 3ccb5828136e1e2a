//! Built-in rules: well-known credential formats, each with keywords for the prefilter.
//!
//! Patterns are written from the token formats the vendors document. A rule's
//! `secret` group (when present) is the part that is masked and fingerprinted.

use serde::Serialize;

/// How bad a leak of this kind is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Severity {
    /// Low.
    Low,
    /// Medium.
    Medium,
    /// High.
    High,
    /// Critical.
    Critical,
}

impl Severity {
    /// Upper-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "LOW",
            Severity::Medium => "MEDIUM",
            Severity::High => "HIGH",
            Severity::Critical => "CRITICAL",
        }
    }
}

/// One detection rule.
#[derive(Clone, Debug)]
pub struct RuleSpec {
    /// Stable id (`aws-access-key-id`).
    pub id: &'static str,
    /// Vendor or family (`AWS`, `GitHub`).
    pub category: &'static str,
    /// What it finds.
    pub title: &'static str,
    /// Severity of a leak.
    pub severity: Severity,
    /// Case-insensitive words, one of which every match contains (the scanner then searches only near their
    /// hits when the pattern's length is bounded); empty: always run.
    pub keywords: &'static [&'static str],
    /// The pattern; a group named `secret` marks the secret itself.
    pub regex: &'static str,
    /// Least Shannon entropy (bits per byte) the secret must have, for rules whose pattern alone also matches
    /// placeholders and ordinary words (`None`: any match counts).
    pub entropy: Option<f64>,
    /// A pattern the file's path must match (`settings.xml` for Maven's passwords); `None`: any file.
    pub path: Option<&'static str>,
}

// Shared fragments: a token must not be glued to more token characters.
macro_rules! b {
    ($s:literal) => {
        concat!(r"(?:^|[^0-9A-Za-z_\-])", $s, r"(?:$|[^0-9A-Za-z_\-])")
    };
}

// A vendor's name (`discord`), up to 25 more name characters, an assignment, then the quoted value: the shape
// of Trivy's vendor rules, for secrets without a distinctive prefix. The value lands in group `secret` (or the
// given name, for a rule with two alternatives; see `Scanner`).
macro_rules! assigned {
    ($name:literal, $value:literal) => {
        assigned!($name, $value, "secret")
    };
    ($name:literal, $value:literal, $group:literal) => {
        concat!(
            "(?i)",
            $name,
            r"[a-z0-9_ .\-,]{0,25}(?:=|>|:=|\|\|:|<=|=>|:)[^\n]{0,5}[\x22'](?P<",
            $group,
            ">",
            $value,
            r")[\x22']"
        )
    };
}

// `rule!(id, category, title, Severity, [keywords], regex)`, with `, entropy = BITS` for rules whose pattern
// alone also matches placeholders and words.
macro_rules! rule {
    ($id:literal, $category:literal, $title:literal, $severity:ident, [$($keyword:literal),* $(,)?], $regex:expr $(, entropy = $entropy:literal)? $(, path = $path:literal)? $(,)?) => {
        RuleSpec {
            id: $id,
            category: $category,
            title: $title,
            severity: Severity::$severity,
            keywords: &[$($keyword),*],
            regex: $regex,
            entropy: rule!(@opt $($entropy)?),
            path: rule!(@opt $($path)?),
        }
    };
    (@opt) => {
        None
    };
    (@opt $value:literal) => {
        Some($value)
    };
}

/// The built-in rule set: Trivy's built-in rules (under Trivy's ids, so a `trivy-secret.yaml` that disables or
/// enables rules by id means the same here), the common gitleaks rules, cloud and AI vendors' current formats,
/// credentials files (`.npmrc`, `.netrc`, docker config) and the generic rules.
pub const BUILTIN: &[RuleSpec] = &[
    rule!(
        "aws-access-key-id",
        "AWS",
        "AWS Access Key ID",
        Critical,
        ["AKIA", "ASIA", "AGPA", "AIDA", "AROA", "AIPA", "ANPA", "ANVA", "A3T"],
        b!(r"(?P<secret>(?:A3T[A-Z0-9]|AKIA|ASIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA)[A-Z0-9]{16})")
    ),
    rule!(
        "aws-secret-access-key",
        "AWS",
        "AWS Secret Access Key",
        Critical,
        ["aws"],
        r#"(?i)["']?aws_?(?:sec(?:ret)?)?_?(?:access)?_?key["']?\s{0,5}(?::|=>|=)?\s{0,5}["']?(?P<secret>[A-Za-z0-9/+=]{40})(?:$|[^A-Za-z0-9/+=])"#
    ),
    rule!(
        "github-pat",
        "GitHub",
        "GitHub Personal Access Token",
        Critical,
        ["ghp_"],
        b!(r"(?P<secret>ghp_[0-9A-Za-z]{36,255})")
    ),
    rule!(
        "github-fine-grained-pat",
        "GitHub",
        "GitHub Fine-grained Personal Access Token",
        Critical,
        ["github_pat_"],
        // `github_pat_` is distinctive enough to be found glued to a preceding word (`ourgithub_pat_…`).
        r"(?P<secret>github_pat_[0-9A-Za-z_]{82})(?:$|[^0-9A-Za-z_\-])"
    ),
    rule!(
        "github-oauth",
        "GitHub",
        "GitHub OAuth Access Token",
        Critical,
        ["gho_"],
        b!(r"(?P<secret>gho_[0-9A-Za-z]{36})")
    ),
    rule!(
        "github-app-token",
        "GitHub",
        "GitHub App Token",
        Critical,
        ["ghu_", "ghs_"],
        b!(r"(?P<secret>(?:ghu|ghs)_(?:[0-9A-Za-z]{36}|[0-9]+_[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}))")
    ),
    rule!(
        "github-refresh-token",
        "GitHub",
        "GitHub Refresh Token",
        Critical,
        ["ghr_"],
        b!(r"(?P<secret>ghr_[0-9A-Za-z]{36,76})")
    ),
    rule!(
        "gitlab-pat",
        "GitLab",
        "GitLab Personal Access Token",
        Critical,
        ["glpat-"],
        b!(r"(?P<secret>glpat-[0-9A-Za-z_\-]{20,})")
    ),
    rule!(
        "gitlab-runner-token",
        "GitLab",
        "GitLab Runner Registration Token",
        High,
        ["GR1348941", "glrt-"],
        b!(r"(?P<secret>(?:GR1348941|glrt-)[0-9A-Za-z_\-]{20})")
    ),
    rule!(
        "slack-access-token",
        "Slack",
        "Slack token",
        High,
        ["xoxb-", "xoxp-", "xoxa-", "xoxr-", "xoxs-", "xoxe"],
        r"(?:^|[^0-9A-Za-z])(?P<secret>xox(?:[abeprs]|e\.xox[bp])-[0-9]{10,13}-[0-9A-Za-z\-]{10,250})"
    ),
    rule!(
        "slack-web-hook",
        "Slack",
        "Slack Webhook URL",
        Medium,
        ["hooks.slack.com"],
        r"(?P<secret>https://hooks\.slack\.com/(?:services|workflows)/[A-Za-z0-9+/_\-]{20,})"
    ),
    rule!(
        "stripe-secret-token",
        "Stripe",
        "Stripe secret key",
        Critical,
        ["sk_live_", "rk_live_", "sk_test_", "rk_test_"],
        b!(r"(?P<secret>(?:sk|rk)_(?:live|test)_[0-9A-Za-z]{24,99})")
    ),
    rule!(
        "npm-access-token",
        "npm",
        "npm access token",
        Critical,
        ["npm_"],
        b!(r"(?P<secret>npm_[0-9A-Za-z]{36})")
    ),
    rule!(
        "pypi-upload-token",
        "PyPI",
        "PyPI upload token",
        High,
        ["pypi-ageichlwas5vcmc"],
        r"(?P<secret>pypi-AgEIcHlwaS5vcmc[0-9A-Za-z_\-]{50,})"
    ),
    rule!(
        "private-key",
        "AsymmetricPrivateKey",
        "Asymmetric private key",
        High,
        ["private key-----"],
        r"(?s)-----BEGIN[ A-Z0-9_-]{0,100}PRIVATE KEY(?: BLOCK)?-----\s{0,256}(?P<secret>[A-Za-z0-9+/=\\][\sA-Za-z0-9+/=:.,\\\-]{31,}?)-----END[ A-Z0-9_-]{0,100}PRIVATE KEY(?: BLOCK)?-----"
    ),
    rule!(
        "jwt-token",
        "JWT",
        "JSON Web Token",
        Medium,
        ["eyj"],
        b!(r"(?P<secret>eyJ[A-Za-z0-9_-]{8,2048}\.eyJ[A-Za-z0-9_-]{8,8192}\.[A-Za-z0-9_-]{16,1024})")
    ),
    rule!(
        "gcp-service-account",
        "Google",
        "Google (GCP) service account key",
        Critical,
        ["service_account"],
        r#""type"\s*:\s*"(?P<secret>service_account)""#
    ),
    rule!(
        "gcp-api-key",
        "Google",
        "Google API key",
        High,
        ["aiza"],
        b!(r"(?P<secret>AIza[0-9A-Za-z_\-]{35})")
    ),
    rule!(
        "azure-storage-account-key",
        "Azure",
        "Azure Storage Account key",
        Critical,
        ["accountkey"],
        r"(?i)AccountKey\s*=\s*(?P<secret>[A-Za-z0-9+/]{86}==)"
    ),
    rule!(
        "azure-sas-token",
        "Azure",
        "Azure Shared Access Signature",
        High,
        ["sig="],
        r"(?:sv|se|sp)=[^&\s]+&[^\s]*sig=(?P<secret>[A-Za-z0-9%+/]{43,}(?:%3D|=){0,2})"
    ),
    rule!(
        "azure-devops-pat",
        "Azure",
        "Azure DevOps Personal Access Token",
        Critical,
        ["azure", "devops", "ado", "vsts"],
        r#"(?i)(?:azure|devops|ado|vsts)[a-z_\-]{0,20}\s{0,5}[:=]\s{0,5}["']?(?P<secret>[a-z2-7]{52})(?:$|[^a-z0-9])"#
    ),
    rule!(
        "azure-entra-client-secret",
        "Azure",
        "Azure Entra ID client secret",
        Critical,
        ["q~"],
        r"(?:^|[^0-9A-Za-z_~.\-])(?P<secret>[0-9A-Za-z_\-.]{3}[0-9]Q~[0-9A-Za-z_~.\-]{31,34})(?:$|[^0-9A-Za-z_~.\-])"
    ),
    rule!(
        "azure-container-registry-password",
        "Azure",
        "Azure Container Registry login password",
        Critical,
        ["azurecr.io"],
        r"(?i)azurecr\.io[^\n]{0,60}?(?:password|passwd|pwd)\s*[:=]\s*[\x22']?(?P<secret>[A-Za-z0-9+/=]{32,})"
    ),
    // Azure's 84-character keys: `JQQJ99` after 52 characters, then a service signature (`ACOG` AI services,
    // `AZCR` Container Registry) 18 characters on. The specific rules come first: the same text is reported
    // once, under the first rule that finds it.
    rule!(
        "azure-ai-services-key",
        "Azure",
        "Azure AI services key",
        Critical,
        ["jqqj99"],
        b!(r"(?P<secret>[A-Za-z0-9]{52}JQQJ99[A-Za-z0-9]{18}ACOG[A-Za-z0-9]{4})")
    ),
    rule!(
        "azure-container-registry-credential",
        "Azure",
        "Azure Container Registry token credential",
        Critical,
        ["jqqj99"],
        b!(r"(?P<secret>[A-Za-z0-9]{52}JQQJ99[A-Za-z0-9]{18}AZCR[A-Za-z0-9]{4})")
    ),
    rule!(
        "azure-api-key",
        "Azure",
        "Azure API key (other services)",
        Critical,
        ["jqqj99"],
        b!(r"(?P<secret>[A-Za-z0-9]{52}JQQJ99[A-Za-z0-9]{26})")
    ),
    rule!(
        "azure-app-config-connection-string",
        "Azure",
        "Azure App Configuration connection string",
        Critical,
        ["azconfig.io"],
        r"Endpoint=https://[^;\s]+\.azconfig\.io;Id=[^;\s]+;Secret=(?P<secret>[A-Za-z0-9+/=]{30,})"
    ),
    rule!(
        "azure-container-registry-token-password",
        "Azure",
        "Azure Container Registry token password",
        Critical,
        ["+acr"],
        b!(r"(?P<secret>[0-9A-Za-z+/]{42}\+ACR[A-Za-z0-9]{6})")
    ),
    rule!(
        "hugging-face-access-token",
        "HuggingFace",
        "Hugging Face access token",
        Critical,
        ["hf_"],
        b!(r"(?P<secret>hf_[A-Za-z0-9]{34,40})")
    ),
    // OpenAI's keys carry `T3BlbkFJ` (base64 of "OpenAI") in the middle; the prefix tells the kind (Trivy's ids).
    rule!(
        "openai-project-api-key",
        "OpenAI",
        "OpenAI project API key",
        Critical,
        ["sk-proj-"],
        b!(r"(?P<secret>sk-proj-[A-Za-z0-9_\-]{20,200}T3BlbkFJ[A-Za-z0-9_\-]{20,200})")
    ),
    rule!(
        "openai-service-account-key",
        "OpenAI",
        "OpenAI service account key",
        Critical,
        ["sk-svcacct-"],
        b!(r"(?P<secret>sk-svcacct-[A-Za-z0-9_\-]{20,200}T3BlbkFJ[A-Za-z0-9_\-]{20,200})")
    ),
    rule!(
        "openai-service-api-key",
        "OpenAI",
        "OpenAI service API key",
        Critical,
        ["sk-service-"],
        b!(r"(?P<secret>sk-service-[A-Za-z0-9_\-]{20,200}T3BlbkFJ[A-Za-z0-9_\-]{20,200})")
    ),
    rule!(
        "openai-admin-api-key",
        "OpenAI",
        "OpenAI admin API key",
        Critical,
        ["sk-admin-"],
        b!(r"(?P<secret>sk-admin-[A-Za-z0-9_\-]{20,200}T3BlbkFJ[A-Za-z0-9_\-]{20,200})")
    ),
    rule!(
        "openai-legacy-api-key",
        "OpenAI",
        "OpenAI legacy user API key",
        Critical,
        ["t3blbkfj"],
        b!(r"(?P<secret>sk-[A-Za-z0-9]{20,74}T3BlbkFJ[A-Za-z0-9]{20,74})")
    ),
    rule!(
        "openai-realtime-client-secret",
        "OpenAI",
        "OpenAI Realtime client secret",
        High,
        ["ek_"],
        b!(r"(?P<secret>ek_[a-f0-9]{32})")
    ),
    rule!(
        "anthropic-api-key",
        "Anthropic",
        "Anthropic API key",
        Critical,
        ["sk-ant-"],
        b!(r"(?P<secret>sk-ant-(?:api|admin)\d{2}-[A-Za-z0-9_\-]{80,100})")
    ),
    rule!(
        "alibaba-access-key-id",
        "Alibaba",
        "Alibaba AccessKey ID",
        High,
        ["ltai"],
        b!(r"(?P<secret>LTAI[A-Za-z0-9]{20})")
    ),
    rule!(
        "sendgrid-api-token",
        "SendGrid",
        "SendGrid API key",
        High,
        ["sg."],
        b!(r"(?P<secret>SG\.[A-Za-z0-9_\-]{22}\.[A-Za-z0-9_\-]{43})")
    ),
    rule!(
        "shopify-token",
        "Shopify",
        "Shopify access token",
        High,
        ["shpat_", "shpca_", "shppa_", "shpss_"],
        b!(r"(?P<secret>shp(?:at|ca|pa|ss)_[a-fA-F0-9]{32})")
    ),
    rule!(
        "dockerhub-pat",
        "Docker",
        "Docker Hub personal access token",
        High,
        ["dckr_pat_"],
        b!(r"(?P<secret>dckr_pat_[A-Za-z0-9_\-]{27})")
    ),
    rule!(
        "dockerconfig-secret",
        "Docker",
        "Registry credentials in a Kubernetes secret (.dockerconfigjson)",
        High,
        [".dockerconfigjson", ".dockercfg"],
        r"\.docker(?:configjson|cfg)\x22?\s*:\s*\x22?(?P<secret>[A-Za-z0-9+/=]{8,})"
    ),
    rule!(
        "docker-config-auth",
        "Docker",
        "Docker registry credentials (config.json auths)",
        High,
        ["\"auth\""],
        r#""auths"\s*:\s*\{[^}]*"auth"\s*:\s*"(?P<secret>[A-Za-z0-9+/=]{8,})""#
    ),
    rule!(
        "digitalocean-token",
        "DigitalOcean",
        "DigitalOcean token",
        High,
        ["dop_v1_", "doo_v1_", "dor_v1_"],
        b!(r"(?P<secret>do[opr]_v1_[a-f0-9]{64})")
    ),
    rule!(
        "grafana-cloud-api-token",
        "Grafana",
        "Grafana Cloud API token",
        High,
        ["glc_"],
        b!(r"(?P<secret>glc_[A-Za-z0-9+/]{32,400}={0,2})")
    ),
    rule!(
        "grafana-service-account-token",
        "Grafana",
        "Grafana service account token",
        High,
        ["glsa_"],
        b!(r"(?P<secret>glsa_[A-Za-z0-9]{32}_[A-Fa-f0-9]{8})")
    ),
    rule!(
        "grafana-api-token",
        "Grafana",
        "Grafana API key (legacy)",
        High,
        ["eyjrijoi"],
        b!(r"(?P<secret>eyJrIjoi[A-Za-z0-9]{70,400}={0,2})")
    ),
    rule!(
        "hashicorp-vault-token",
        "HashiCorp",
        "Vault service token",
        High,
        ["hvs."],
        b!(r"(?P<secret>hvs\.[A-Za-z0-9_\-]{90,120})")
    ),
    rule!(
        "hashicorp-tf-api-token",
        "HashiCorp",
        "Terraform Cloud API token",
        High,
        ["atlasv1"],
        r"(?P<secret>[A-Za-z0-9]{14}\.atlasv1\.[A-Za-z0-9_=\-]{60,70})"
    ),
    // The ATATT3 format, or (older tokens, as Trivy finds them) 24 characters assigned to an `atlassian…` name.
    rule!(
        "atlassian-api-token",
        "Atlassian",
        "Atlassian API token",
        High,
        ["atatt3", "atlassian"],
        concat!(
            "(?:",
            b!(r"(?P<secret>ATATT3[A-Za-z0-9_\-=]{186})"),
            ")|(?:",
            assigned!("atlassian", r"[a-z0-9]{24}", "secret_assigned"),
            ")"
        )
    ),
    rule!(
        "twilio-api-key",
        "Twilio",
        "Twilio API key",
        Medium,
        ["twilio"],
        concat!(r"(?i)twilio[^\n]{0,40}?", b!(r"(?P<secret>(?-i:SK)[0-9a-f]{32})"))
    ),
    rule!(
        "mailgun-token",
        "Mailgun",
        "Mailgun private or public API key",
        Medium,
        ["key-"],
        b!(r"(?P<secret>(?:pub)?key-[0-9a-f]{32})")
    ),
    rule!(
        "private-packagist-token",
        "Packagist",
        "Private Packagist token",
        High,
        ["packagist_"],
        b!(r"(?P<secret>packagist_[ou][ru]t_[a-fA-F0-9]{68})")
    ),
    rule!(
        "linear-api-token",
        "Linear",
        "Linear API key",
        High,
        ["lin_api_"],
        b!(r"(?P<secret>lin_api_[A-Za-z0-9]{40})")
    ),
    rule!(
        "postman-api-token",
        "Postman",
        "Postman API key",
        High,
        ["pmak-"],
        b!(r"(?P<secret>PMAK-[a-f0-9]{24}-[a-f0-9]{34})")
    ),
    rule!(
        "databricks-api-token",
        "Databricks",
        "Databricks API token",
        High,
        ["dapi"],
        b!(r"(?P<secret>dapi[a-f0-9]{32}(?:-\d)?)")
    ),
    // Placeholders such as `pk_live_xXX1xXXXx1…` stay under 3 bits per byte; real keys are random.
    rule!(
        "stripe-publishable-token",
        "Stripe",
        "Stripe publishable key",
        Low,
        ["pk_test_", "pk_live_"],
        b!(r"(?P<secret>pk_(?:test|live)_[0-9A-Za-z]{10,99})"),
        entropy = 3.2
    ),
    rule!(
        "heroku-api-key",
        "Heroku",
        "Heroku API key",
        High,
        ["heroku"],
        assigned!("heroku", r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
    ),
    rule!(
        "heroku-api-key-v2",
        "Heroku",
        "Heroku API key (HRKU- format)",
        High,
        ["hrku-"],
        b!(r"(?P<secret>HRKU-[A-Za-z0-9_\-]{60})")
    ),
    rule!(
        "age-secret-key",
        "Age",
        "age secret key",
        Medium,
        ["age-secret-key-1"],
        r"(?P<secret>AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58})"
    ),
    rule!(
        "facebook-token",
        "Facebook",
        "Facebook token",
        Low,
        ["facebook"],
        assigned!("facebook", r"[a-f0-9]{32}")
    ),
    rule!(
        "facebook-page-access-token",
        "Facebook",
        "Facebook page access token",
        High,
        ["eaab", "eaac"],
        b!(r"(?P<secret>EAA[BC][A-Za-z0-9]{100,})")
    ),
    rule!(
        "twitter-token",
        "Twitter",
        "Twitter token",
        Low,
        ["twitter"],
        assigned!("twitter", r"[a-f0-9]{35,44}")
    ),
    rule!(
        "adobe-client-id",
        "Adobe",
        "Adobe client ID (OAuth web)",
        Low,
        ["adobe"],
        assigned!("adobe", r"[a-f0-9]{32}")
    ),
    rule!(
        "adobe-client-secret",
        "Adobe",
        "Adobe client secret",
        Low,
        ["p8e-"],
        b!(r"(?P<secret>p8e-[A-Za-z0-9]{32})")
    ),
    rule!(
        "alibaba-secret-key",
        "Alibaba",
        "Alibaba secret key",
        High,
        ["alibaba"],
        assigned!("alibaba", r"[a-z0-9]{30}")
    ),
    rule!(
        "asana-client-id",
        "Asana",
        "Asana client ID",
        Medium,
        ["asana"],
        assigned!("asana", r"[0-9]{16}")
    ),
    rule!(
        "asana-client-secret",
        "Asana",
        "Asana client secret",
        Medium,
        ["asana"],
        assigned!("asana", r"[a-z0-9]{32}")
    ),
    rule!(
        "bitbucket-client-id",
        "Bitbucket",
        "Bitbucket client ID",
        High,
        ["bitbucket"],
        assigned!("bitbucket", r"[a-z0-9]{32}")
    ),
    rule!(
        "bitbucket-client-secret",
        "Bitbucket",
        "Bitbucket client secret",
        High,
        ["bitbucket"],
        assigned!("bitbucket", r"[a-z0-9_\-]{64}")
    ),
    rule!(
        "beamer-api-token",
        "Beamer",
        "Beamer API token",
        Low,
        ["beamer"],
        assigned!("beamer", r"b_[a-z0-9=_\-]{44}")
    ),
    rule!(
        "clojars-api-token",
        "Clojars",
        "Clojars API token",
        Medium,
        ["clojars_"],
        b!(r"(?P<secret>CLOJARS_[A-Za-z0-9]{60})")
    ),
    rule!(
        "contentful-delivery-api-token",
        "Contentful",
        "Contentful delivery API token",
        Low,
        ["contentful"],
        assigned!("contentful", r"[a-z0-9=_\-]{43}")
    ),
    rule!(
        "discord-api-token",
        "Discord",
        "Discord API key",
        Medium,
        ["discord"],
        assigned!("discord", r"[a-h0-9]{64}")
    ),
    rule!(
        "discord-client-id",
        "Discord",
        "Discord client ID",
        Medium,
        ["discord"],
        assigned!("discord", r"[0-9]{18}")
    ),
    rule!(
        "discord-client-secret",
        "Discord",
        "Discord client secret",
        Medium,
        ["discord"],
        assigned!("discord", r"[a-z0-9=_\-]{32}")
    ),
    rule!(
        "doppler-api-token",
        "Doppler",
        "Doppler API token",
        Medium,
        ["dp.pt."],
        b!(r"(?P<secret>dp\.pt\.[A-Za-z0-9]{43})")
    ),
    rule!(
        "dropbox-api-secret",
        "Dropbox",
        "Dropbox API secret",
        High,
        ["dropbox"],
        assigned!("dropbox", r"[a-z0-9]{15}")
    ),
    rule!(
        "dropbox-short-lived-api-token",
        "Dropbox",
        "Dropbox short-lived API token",
        High,
        ["dropbox"],
        assigned!("dropbox", r"sl\.[a-z0-9=_\-]{135}")
    ),
    rule!(
        "dropbox-long-lived-api-token",
        "Dropbox",
        "Dropbox long-lived API token",
        High,
        ["dropbox"],
        assigned!("dropbox", r"[a-z0-9]{11}AAAAAAAAAA[a-z0-9=_\-]{43}")
    ),
    rule!(
        "duffel-api-token",
        "Duffel",
        "Duffel API token",
        Low,
        ["duffel_test_", "duffel_live_"],
        b!(r"(?P<secret>duffel_(?:test|live)_[A-Za-z0-9_=\-]{43})")
    ),
    rule!(
        "dynatrace-api-token",
        "Dynatrace",
        "Dynatrace API token",
        Medium,
        ["dt0c01."],
        b!(r"(?P<secret>dt0c01\.[A-Za-z0-9]{24}\.[A-Za-z0-9]{64})")
    ),
    rule!(
        "easypost-api-token",
        "EasyPost",
        "EasyPost API token",
        Low,
        ["ezak", "ezat"],
        b!(r"(?P<secret>EZ[AT]K[A-Za-z0-9]{54})")
    ),
    rule!(
        "fastly-api-token",
        "Fastly",
        "Fastly API token",
        Medium,
        ["fastly"],
        assigned!("fastly", r"[a-z0-9=_\-]{32}")
    ),
    rule!(
        "finicity-client-secret",
        "Finicity",
        "Finicity client secret",
        Medium,
        ["finicity"],
        assigned!("finicity", r"[a-z0-9]{20}")
    ),
    rule!(
        "finicity-api-token",
        "Finicity",
        "Finicity API token",
        Medium,
        ["finicity"],
        assigned!("finicity", r"[a-f0-9]{32}")
    ),
    rule!(
        "flutterwave-public-key",
        "Flutterwave",
        "Flutterwave public or secret key",
        Medium,
        ["flwseck_test-", "flwpubk_test-"],
        b!(r"(?P<secret>FLW(?:PUB|SEC)K_TEST-[A-Ha-h0-9]{32}-X)")
    ),
    rule!(
        "flutterwave-enc-key",
        "Flutterwave",
        "Flutterwave encryption key",
        Medium,
        ["flwseck_test"],
        b!(r"(?P<secret>FLWSECK_TEST[A-Ha-h0-9]{12})")
    ),
    rule!(
        "frameio-api-token",
        "Frame.io",
        "Frame.io API token",
        Low,
        ["fio-u-"],
        b!(r"(?P<secret>fio-u-[A-Za-z0-9_=\-]{64})")
    ),
    rule!(
        "gocardless-api-token",
        "GoCardless",
        "GoCardless API token",
        Medium,
        ["live_"],
        r#"["'](?P<secret>live_[A-Za-z0-9_=\-]{40})["']"#
    ),
    rule!(
        "hubspot-api-token",
        "HubSpot",
        "HubSpot API token",
        Low,
        ["hubspot"],
        assigned!("hubspot", r"[0-9a-h]{8}-[0-9a-h]{4}-[0-9a-h]{4}-[0-9a-h]{4}-[0-9a-h]{12}")
    ),
    rule!(
        "intercom-api-token",
        "Intercom",
        "Intercom API token",
        Low,
        ["intercom"],
        assigned!("intercom", r"[a-z0-9=_]{60}")
    ),
    rule!(
        "intercom-client-secret",
        "Intercom",
        "Intercom client secret or ID",
        Low,
        ["intercom"],
        assigned!("intercom", r"[0-9a-h]{8}-[0-9a-h]{4}-[0-9a-h]{4}-[0-9a-h]{4}-[0-9a-h]{12}")
    ),
    rule!(
        "ionic-api-token",
        "Ionic",
        "Ionic API token",
        Medium,
        ["ionic"],
        assigned!("ionic", r"ion_[a-z0-9]{42}")
    ),
    rule!(
        "linear-client-secret",
        "Linear",
        "Linear client secret or ID",
        Medium,
        ["linear"],
        assigned!("linear", r"[a-f0-9]{32}")
    ),
    rule!(
        "lob-api-key",
        "Lob",
        "Lob API key",
        Low,
        ["lob"],
        assigned!("lob", r"(?:live|test)_[a-f0-9]{35}")
    ),
    rule!(
        "lob-pub-api-key",
        "Lob",
        "Lob publishable API key",
        Low,
        ["lob"],
        assigned!("lob", r"(?:test|live)_pub_[a-f0-9]{31}")
    ),
    rule!(
        "mailchimp-api-key",
        "Mailchimp",
        "Mailchimp API key",
        Medium,
        ["mailchimp"],
        assigned!("mailchimp", r"[a-f0-9]{32}-us[0-9]{1,2}")
    ),
    rule!(
        "mailgun-signing-key",
        "Mailgun",
        "Mailgun webhook signing key",
        Medium,
        ["mailgun"],
        assigned!("mailgun", r"[a-h0-9]{32}-[a-h0-9]{8}-[a-h0-9]{8}")
    ),
    rule!(
        "mapbox-api-token",
        "Mapbox",
        "Mapbox API token",
        Medium,
        ["pk."],
        b!(r"(?P<secret>pk\.[A-Za-z0-9_\-]{60}\.[A-Za-z0-9_\-]{22})")
    ),
    rule!(
        "messagebird-api-token",
        "MessageBird",
        "MessageBird API token",
        Medium,
        ["messagebird"],
        assigned!("messagebird", r"[a-z0-9]{25}")
    ),
    rule!(
        "messagebird-client-id",
        "MessageBird",
        "MessageBird API client ID",
        Medium,
        ["messagebird"],
        assigned!("messagebird", r"[0-9a-h]{8}-[0-9a-h]{4}-[0-9a-h]{4}-[0-9a-h]{4}-[0-9a-h]{12}")
    ),
    rule!(
        "new-relic-user-api-key",
        "NewRelic",
        "New Relic user API key",
        Medium,
        ["nrak-"],
        b!(r"(?P<secret>NRAK-[A-Z0-9]{27})")
    ),
    rule!(
        "new-relic-user-api-id",
        "NewRelic",
        "New Relic user API ID",
        Medium,
        ["newrelic"],
        assigned!("newrelic", r"[A-Z0-9]{64}")
    ),
    rule!(
        "new-relic-browser-api-token",
        "NewRelic",
        "New Relic ingest browser API token",
        Medium,
        ["nrjs-"],
        b!(r"(?P<secret>NRJS-[a-f0-9]{19})")
    ),
    rule!(
        "new-relic-insert-key",
        "NewRelic",
        "New Relic insert key",
        Medium,
        ["nrii-"],
        b!(r"(?P<secret>NRII-[A-Za-z0-9_\-]{32})")
    ),
    rule!(
        "planetscale-password",
        "PlanetScale",
        "PlanetScale password",
        Medium,
        ["pscale_pw_"],
        b!(r"(?P<secret>pscale_pw_[A-Za-z0-9_.\-]{43})")
    ),
    rule!(
        "planetscale-api-token",
        "PlanetScale",
        "PlanetScale API token",
        Medium,
        ["pscale_tkn_"],
        b!(r"(?P<secret>pscale_tkn_[A-Za-z0-9_.\-]{43})")
    ),
    rule!(
        "pulumi-api-token",
        "Pulumi",
        "Pulumi API token",
        High,
        ["pul-"],
        b!(r"(?P<secret>pul-[a-f0-9]{40})")
    ),
    rule!(
        "rubygems-api-token",
        "RubyGems",
        "RubyGems API token",
        Medium,
        ["rubygems_"],
        b!(r"(?P<secret>rubygems_[a-f0-9]{48})")
    ),
    rule!(
        "sendinblue-api-token",
        "Sendinblue",
        "Sendinblue (Brevo) API token",
        Low,
        ["xkeysib-"],
        b!(r"(?P<secret>xkeysib-[a-f0-9]{64}-[A-Za-z0-9]{16})")
    ),
    rule!(
        "shippo-api-token",
        "Shippo",
        "Shippo API token",
        Low,
        ["shippo_live_", "shippo_test_"],
        b!(r"(?P<secret>shippo_(?:live|test)_[a-f0-9]{40})")
    ),
    rule!(
        "linkedin-client-secret",
        "LinkedIn",
        "LinkedIn client secret",
        Low,
        ["linkedin"],
        assigned!("linkedin", r"[a-z]{16}")
    ),
    rule!(
        "linkedin-client-id",
        "LinkedIn",
        "LinkedIn client ID",
        Low,
        ["linkedin"],
        assigned!("linkedin", r"[a-z0-9]{14}")
    ),
    rule!(
        "twitch-api-token",
        "Twitch",
        "Twitch API token",
        Low,
        ["twitch"],
        assigned!("twitch", r"[a-z0-9]{30}")
    ),
    rule!(
        "typeform-api-token",
        "Typeform",
        "Typeform API token",
        Low,
        ["tfp_"],
        b!(r"(?P<secret>tfp_[A-Za-z0-9_.=\-]{59})")
    ),
    rule!(
        "gitlab-deploy-token",
        "GitLab",
        "GitLab deploy token",
        High,
        ["gldt-"],
        b!(r"(?P<secret>gldt-[0-9A-Za-z_\-]{20})")
    ),
    rule!(
        "gitlab-pipeline-trigger-token",
        "GitLab",
        "GitLab pipeline trigger token",
        High,
        ["glptt-"],
        b!(r"(?P<secret>glptt-[0-9a-f]{40})")
    ),
    rule!(
        "gitlab-feed-token",
        "GitLab",
        "GitLab feed token",
        Medium,
        ["glft-"],
        b!(r"(?P<secret>glft-[0-9A-Za-z_\-]{20})")
    ),
    rule!(
        "gitlab-oauth-app-secret",
        "GitLab",
        "GitLab OAuth application secret",
        High,
        ["gloas-"],
        b!(r"(?P<secret>gloas-[0-9A-Za-z_\-]{64})")
    ),
    rule!(
        "gitlab-cicd-job-token",
        "GitLab",
        "GitLab CI/CD job token",
        High,
        ["glcbt-"],
        b!(r"(?P<secret>glcbt-[0-9A-Za-z]{1,5}_[0-9A-Za-z_\-]{20})")
    ),
    rule!(
        "gitlab-incoming-mail-token",
        "GitLab",
        "GitLab incoming mail token",
        Medium,
        ["glimt-"],
        b!(r"(?P<secret>glimt-[0-9A-Za-z_\-]{25})")
    ),
    rule!(
        "gitlab-kubernetes-agent-token",
        "GitLab",
        "GitLab Kubernetes agent token",
        High,
        ["glagent-"],
        b!(r"(?P<secret>glagent-[0-9A-Za-z_\-]{50})")
    ),
    rule!(
        "gitlab-scim-token",
        "GitLab",
        "GitLab SCIM token",
        High,
        ["glsoat-"],
        b!(r"(?P<secret>glsoat-[0-9A-Za-z_\-]{20})")
    ),
    rule!(
        "slack-app-token",
        "Slack",
        "Slack app-level token",
        High,
        ["xapp-"],
        b!(r"(?P<secret>xapp-[0-9]-[A-Z0-9]{9,12}-[0-9]{10,14}-[a-z0-9]{60,70})")
    ),
    rule!(
        "sentry-user-token",
        "Sentry",
        "Sentry user auth token",
        High,
        ["sntryu_"],
        b!(r"(?P<secret>sntryu_[a-f0-9]{64})")
    ),
    rule!(
        "sentry-org-token",
        "Sentry",
        "Sentry organization auth token",
        High,
        ["sntrys_"],
        b!(r"(?P<secret>sntrys_eyJ[A-Za-z0-9+/=_\-]{60,})")
    ),
    rule!(
        "square-access-token",
        "Square",
        "Square access token",
        High,
        ["sq0atp-", "eaaa"],
        b!(r"(?P<secret>(?:sq0atp-[A-Za-z0-9_\-]{22}|EAAA[A-Za-z0-9_\-]{60}))")
    ),
    rule!(
        "square-secret",
        "Square",
        "Square OAuth secret",
        High,
        ["sq0csp-"],
        b!(r"(?P<secret>sq0csp-[A-Za-z0-9_\-]{43})")
    ),
    rule!(
        "telegram-bot-api-token",
        "Telegram",
        "Telegram bot API token",
        Medium,
        ["telegram"],
        r"(?i)telegram[^\n]{0,40}?(?:^|[^0-9])(?P<secret>[0-9]{5,16}:A[A-Za-z0-9_\-]{34})(?:$|[^A-Za-z0-9_\-])"
    ),
    rule!(
        "sourcegraph-access-token",
        "Sourcegraph",
        "Sourcegraph access token",
        High,
        ["sgp_"],
        b!(r"(?P<secret>sgp_(?:(?:[a-fA-F0-9]{16}|local)_)?[a-fA-F0-9]{40})")
    ),
    rule!(
        "1password-secret-key",
        "1Password",
        "1Password account secret key",
        Critical,
        ["a3-"],
        b!(r"(?P<secret>A3-[A-Z0-9]{6}-(?:[A-Z0-9]{11}|[A-Z0-9]{6}-[A-Z0-9]{5})-[A-Z0-9]{5}-[A-Z0-9]{5}-[A-Z0-9]{5})")
    ),
    rule!(
        "1password-service-account-token",
        "1Password",
        "1Password service account token",
        Critical,
        ["ops_eyj"],
        b!(r"(?P<secret>ops_eyJ[A-Za-z0-9+/]{250,}={0,3})")
    ),
    rule!(
        "hashicorp-vault-batch-token",
        "HashiCorp",
        "Vault batch token",
        High,
        ["hvb."],
        b!(r"(?P<secret>hvb\.[A-Za-z0-9_\-]{138,300})")
    ),
    rule!(
        "infracost-api-token",
        "Infracost",
        "Infracost API token",
        Medium,
        ["ico-"],
        b!(r"(?P<secret>ico-[A-Za-z0-9]{32})")
    ),
    rule!(
        "prefect-api-token",
        "Prefect",
        "Prefect API token",
        Medium,
        ["pnu_"],
        b!(r"(?P<secret>pnu_[A-Za-z0-9]{36})")
    ),
    rule!(
        "readme-api-token",
        "ReadMe",
        "ReadMe API token",
        Medium,
        ["rdme_"],
        b!(r"(?P<secret>rdme_[a-z0-9]{70})")
    ),
    rule!(
        "scalingo-api-token",
        "Scalingo",
        "Scalingo API token",
        Medium,
        ["tk-us-"],
        b!(r"(?P<secret>tk-us-[A-Za-z0-9_\-]{48})")
    ),
    rule!(
        "openshift-user-token",
        "OpenShift",
        "OpenShift user token",
        High,
        ["sha256~"],
        b!(r"(?P<secret>sha256~[A-Za-z0-9_\-]{43})")
    ),
    rule!(
        "okta-access-token",
        "Okta",
        "Okta access token",
        High,
        ["okta"],
        assigned!("okta", r"00[a-z0-9_\-]{40}")
    ),
    rule!(
        "datadog-access-token",
        "Datadog",
        "Datadog access token",
        Medium,
        ["datadog"],
        assigned!("datadog", r"[a-f0-9]{40}")
    ),
    rule!(
        "cloudflare-api-key",
        "Cloudflare",
        "Cloudflare API key",
        High,
        ["cloudflare"],
        assigned!("cloudflare", r"[a-z0-9_\-]{40}")
    ),
    rule!(
        "cloudflare-origin-ca-key",
        "Cloudflare",
        "Cloudflare Origin CA key",
        High,
        ["v1.0-"],
        b!(r"(?P<secret>v1\.0-[a-f0-9]{24}-[a-f0-9]{146})")
    ),
    rule!(
        "snyk-api-token",
        "Snyk",
        "Snyk API token",
        High,
        ["snyk"],
        assigned!("snyk", r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
    ),
    rule!(
        "netlify-access-token",
        "Netlify",
        "Netlify access token",
        Medium,
        ["netlify"],
        assigned!("netlify", r"[a-z0-9=_\-]{40,46}")
    ),
    rule!(
        "npmrc-auth-token",
        "npm",
        "Registry token in an .npmrc (_authToken, _auth, _password)",
        High,
        ["_auth", "_password"],
        r"(?im)^(?://[^\s]{1,256}:)?_(?:authToken|auth|password)[ \t]{0,5}=[ \t]{0,5}[\x22\x27]?(?P<secret>[A-Za-z0-9_\-.+/=]{16,2048})[\x22\x27]?[ \t]*(?:$|[#;])"
    ),
    rule!(
        "netrc-password",
        "Generic",
        "Password in a .netrc entry",
        High,
        ["machine"],
        // `login`, `port`, `account` and `protocol` may come in any order before the password.
        r"machine\s{1,20}[^\s]{1,253}(?:\s{1,20}(?:login|port|account|protocol)\s{1,20}[^\s]{1,253}){0,4}\s{1,20}password\s{1,20}(?P<secret>[^\s]{6,256})"
    ),
    // Maven keeps repository passwords and the GPG passphrase in settings.xml, and the master password that
    // encrypts them in settings-security.xml; `{…}` values are encrypted and `${…}` ones come from elsewhere.
    rule!(
        "maven-settings-password",
        "Maven",
        "Password in Maven settings.xml",
        High,
        ["<password>"],
        r"<password>\s{0,20}(?P<secret>[^<{$\s][^<\n]{0,200}?)\s{0,20}</password>",
        path = r"(?:^|/)settings\.xml$"
    ),
    rule!(
        "maven-settings-passphrase",
        "Maven",
        "Passphrase in Maven settings.xml",
        High,
        ["<passphrase>"],
        r"<passphrase>\s{0,20}(?P<secret>[^<{$\s][^<\n]{0,200}?)\s{0,20}</passphrase>",
        path = r"(?:^|/)settings\.xml$"
    ),
    rule!(
        "maven-settings-security-master",
        "Maven",
        "Master password in Maven settings-security.xml",
        Critical,
        ["<master>"],
        r"<master>\s{0,20}(?P<secret>[^<{$\s][^<\n]{0,200}?)\s{0,20}</master>",
        path = r"(?:^|/)settings-security\.xml$"
    ),
    // Symfony's published default `APP_SECRET`: anyone can forge what the application signs with it.
    rule!(
        "symfony-default-secret",
        "Symfony",
        "Symfony default secret",
        High,
        ["thistokenisnotsosecretchangeit"],
        r"(?P<secret>ThisTokenIsNotSoSecretChangeIt)"
    ),
    rule!(
        "url-credentials",
        "Generic",
        "Password in a URL",
        High,
        ["://"],
        r"[a-z][a-z0-9+.\-]{1,20}://[^\s:/@]{1,64}:(?P<secret>[^\s:/@]{6,128})@[A-Za-z0-9.\-]{1,253}"
    ),
    // The name before the keyword (`db_password`) is read by the scanner, not the regex: a leading
    // `[a-z0-9_]*` would make every position a candidate start and halve the scan speed.
    // The value ends at an ASCII delimiter: a value running into non-ASCII bytes is binary noise or a broken string.
    // Random keys reach 4+ bits per byte; words, paths and placeholders stay well under 3.5.
    rule!(
        "generic-credential",
        "Generic",
        "High-entropy value assigned to a credential-like name",
        High,
        [
            "password",
            "passwd",
            "secret",
            "token",
            "apikey",
            "api_key",
            "api-key",
            "access_key",
            "accesskey",
            "access-key",
            "auth_key",
            "authkey",
            "auth-key"
        ],
        r#"(?i)(?:password|passwd|secret|token|api[_-]?key|access[_-]?key|auth[_-]?key)[a-z0-9_.-]{0,20}["']?[ \t]{0,5}(?:=|:|=>|:=)[ \t]{0,5}["']?(?P<secret>[0-9a-z+/_=.~-]{20,100})(?:$|[\x00-\x7f&&[^0-9a-z+/_=.~-]])"#,
        entropy = 3.5
    ),
];

/// Named allowances: paths where matches are expected and not leaks. A rules file
/// can drop one by name with `disable-allow-rules`.
pub const BUILTIN_ALLOWED_PATHS: &[(&str, &[&str])] = &[
    (
        "tests",
        &[
            "**/testdata/**",
            "**/tests/**",
            "**/test/**",
            "**/*_test.go",
            "**/*_test.py",
            "**/test_*.py",
            "**/*.test.js",
            "**/*.test.ts",
            "**/*.spec.js",
            "**/*.spec.ts",
            "**/test.*",
        ],
    ),
    ("examples", &["**/examples/**"]),
    ("docs", &["usr/share/doc/**", "usr/share/man/**"]),
    ("markdown", &["**/*.md"]),
    // The distribution's package indexes and file lists: tens of MB on every Debian image, written by apt from
    // the archive, never by the image's authors (credentials for apt live in /etc/apt/auth.conf.d, still read).
    (
        "package-indexes",
        &[
            "var/lib/apt/lists/**",
            "var/cache/apt/**",
            "var/lib/dpkg/info/*.list",
            "var/lib/dpkg/info/*.md5sums",
        ],
    ),
];

/// Whole values (case aside, once quotes, braces and `$` are stripped) that stand for a credential in docs and
/// templates: `password "PASSWORD"`, `password={password}`.
pub const PLACEHOLDERS: &[&str] = &[
    "password",
    "passwd",
    "secret",
    "changeme",
    "change_me",
    "changeit",
    "placeholder",
    "redacted",
    "your_password",
    "yourpassword",
    "mypassword",
];

/// Values that are placeholders, never secrets.
pub const BUILTIN_ALLOWED_VALUES: &[&str] = &[
    "xxxxxxxx",
    "XXXXXXXX",
    "<your",
    "${",
    "{{",
    // The access and refresh token examples of RFC 6749 (OAuth 2.0), copied into many libraries' docs.
    "2YotnFZFEjr1zCsicMWpAA",
    "tGzv3JOkF0XG5Qx2TlKWIA",
];

/// Ids built-in rules had before they took Trivy's ids or were split by key kind: a rules file, a
/// `--disable-rule` or an exception naming one of these means the rules listed.
pub const FORMER_IDS: &[(&str, &[&str])] = &[
    (
        "openai-api-key",
        &[
            "openai-project-api-key",
            "openai-service-account-key",
            "openai-service-api-key",
            "openai-admin-api-key",
            "openai-legacy-api-key",
        ],
    ),
    ("azure-api-key", &["azure-ai-services-key", "azure-container-registry-credential"]),
    ("azure-app-configuration-connection-string", &["azure-app-config-connection-string"]),
    ("azure-acr-login-password", &["azure-container-registry-password"]),
];

/// Whether `name` (as a rules file or `--disable-rule` writes it) stands for the rule `id`: the same id, or a
/// former id of it.
pub fn names_rule(name: &str, id: &str) -> bool {
    name == id || FORMER_IDS.iter().any(|(old, new)| *old == name && new.contains(&id))
}

/// The former ids that stand for rule `id` (for exceptions written before a rename).
pub fn former_ids(id: &str) -> Vec<&'static str> {
    FORMER_IDS
        .iter()
        .filter(|(_, new)| new.contains(&id))
        .map(|(old, _)| *old)
        .collect()
}
