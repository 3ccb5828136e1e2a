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
    /// Case-insensitive words, one of which must appear near a match; empty: always run.
    pub keywords: &'static [&'static str],
    /// The pattern; a group named `secret` marks the secret itself.
    pub regex: &'static str,
    /// Least Shannon entropy (bits per byte) the secret must have, for rules whose pattern alone also matches
    /// placeholders and ordinary words (`None`: any match counts).
    pub entropy: Option<f64>,
}

// Shared fragments: a token must not be glued to more token characters.
macro_rules! b {
    ($s:literal) => {
        concat!(r"(?:^|[^0-9A-Za-z_\-])", $s, r"(?:$|[^0-9A-Za-z_\-])")
    };
}

/// The built-in rule set.
pub const BUILTIN: &[RuleSpec] = &[
    RuleSpec {
        id: "aws-access-key-id",
        category: "AWS",
        title: "AWS Access Key ID",
        severity: Severity::Critical,
        keywords: &["AKIA", "ASIA", "AGPA", "AIDA", "AROA", "AIPA", "ANPA", "ANVA", "A3T"],
        regex: b!(r"(?P<secret>(?:A3T[A-Z0-9]|AKIA|ASIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA)[A-Z0-9]{16})"),
        entropy: None,
    },
    RuleSpec {
        id: "aws-secret-access-key",
        category: "AWS",
        title: "AWS Secret Access Key",
        severity: Severity::Critical,
        keywords: &["aws"],
        regex: r#"(?i)["']?aws_?(?:sec(?:ret)?)?_?(?:access)?_?key["']?\s*(?::|=>|=)?\s*["']?(?P<secret>[A-Za-z0-9/+=]{40})(?:$|[^A-Za-z0-9/+=])"#,
        entropy: None,
    },
    RuleSpec {
        id: "github-pat",
        category: "GitHub",
        title: "GitHub Personal Access Token",
        severity: Severity::Critical,
        keywords: &["ghp_"],
        regex: b!(r"(?P<secret>ghp_[0-9A-Za-z]{36,255})"),
        entropy: None,
    },
    RuleSpec {
        id: "github-fine-grained-pat",
        category: "GitHub",
        title: "GitHub Fine-grained Personal Access Token",
        severity: Severity::Critical,
        keywords: &["github_pat_"],
        regex: b!(r"(?P<secret>github_pat_[0-9A-Za-z_]{82})"),
        entropy: None,
    },
    RuleSpec {
        id: "github-oauth",
        category: "GitHub",
        title: "GitHub OAuth Access Token",
        severity: Severity::Critical,
        keywords: &["gho_"],
        regex: b!(r"(?P<secret>gho_[0-9A-Za-z]{36})"),
        entropy: None,
    },
    RuleSpec {
        id: "github-app-token",
        category: "GitHub",
        title: "GitHub App Token",
        severity: Severity::Critical,
        keywords: &["ghu_", "ghs_"],
        regex: b!(r"(?P<secret>(?:ghu|ghs)_(?:[0-9A-Za-z]{36}|[0-9]+_[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}))"),
        entropy: None,
    },
    RuleSpec {
        id: "github-refresh-token",
        category: "GitHub",
        title: "GitHub Refresh Token",
        severity: Severity::Critical,
        keywords: &["ghr_"],
        regex: b!(r"(?P<secret>ghr_[0-9A-Za-z]{36,76})"),
        entropy: None,
    },
    RuleSpec {
        id: "gitlab-pat",
        category: "GitLab",
        title: "GitLab Personal Access Token",
        severity: Severity::Critical,
        keywords: &["glpat-"],
        regex: b!(r"(?P<secret>glpat-[0-9A-Za-z_\-]{20,})"),
        entropy: None,
    },
    RuleSpec {
        id: "gitlab-runner-token",
        category: "GitLab",
        title: "GitLab Runner Registration Token",
        severity: Severity::High,
        keywords: &["GR1348941", "glrt-"],
        regex: b!(r"(?P<secret>(?:GR1348941|glrt-)[0-9A-Za-z_\-]{20})"),
        entropy: None,
    },
    RuleSpec {
        id: "slack-token",
        category: "Slack",
        title: "Slack token",
        severity: Severity::High,
        keywords: &["xoxb-", "xoxp-", "xoxa-", "xoxr-", "xoxs-", "xoxe"],
        regex: r"(?:^|[^0-9A-Za-z])(?P<secret>xox(?:[abeprs]|e\.xox[bp])-[0-9]{10,13}-[0-9A-Za-z\-]{10,250})",
        entropy: None,
    },
    RuleSpec {
        id: "slack-webhook",
        category: "Slack",
        title: "Slack Webhook URL",
        severity: Severity::Medium,
        keywords: &["hooks.slack.com"],
        regex: r"(?P<secret>https://hooks\.slack\.com/(?:services|workflows)/[A-Za-z0-9+/_\-]{20,})",
        entropy: None,
    },
    RuleSpec {
        id: "stripe-secret-key",
        category: "Stripe",
        title: "Stripe secret key",
        severity: Severity::Critical,
        keywords: &["sk_live_", "rk_live_", "sk_test_"],
        regex: b!(r"(?P<secret>(?:sk|rk)_(?:live|test)_[0-9A-Za-z]{24,99})"),
        entropy: None,
    },
    RuleSpec {
        id: "npm-access-token",
        category: "npm",
        title: "npm access token",
        severity: Severity::Critical,
        keywords: &["npm_"],
        regex: b!(r"(?P<secret>npm_[0-9A-Za-z]{36})"),
        entropy: None,
    },
    RuleSpec {
        id: "pypi-upload-token",
        category: "PyPI",
        title: "PyPI upload token",
        severity: Severity::High,
        keywords: &["pypi-ageichlwas5vcmc"],
        regex: r"(?P<secret>pypi-AgEIcHlwaS5vcmc[0-9A-Za-z_\-]{50,})",
        entropy: None,
    },
    RuleSpec {
        id: "private-key",
        category: "AsymmetricPrivateKey",
        title: "Asymmetric private key",
        severity: Severity::High,
        keywords: &["private key-----"],
        regex: r"(?s)-----BEGIN[ A-Z0-9_-]{0,100}PRIVATE KEY(?: BLOCK)?-----(?P<secret>[\sA-Za-z0-9+/=:.,\\\-]{64,}?)-----END[ A-Z0-9_-]{0,100}PRIVATE KEY(?: BLOCK)?-----",
        entropy: None,
    },
    RuleSpec {
        id: "jwt-token",
        category: "JWT",
        title: "JSON Web Token",
        severity: Severity::Medium,
        keywords: &["eyj"],
        regex: b!(r"(?P<secret>eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,})"),
        entropy: None,
    },
    RuleSpec {
        id: "gcp-service-account",
        category: "Google",
        title: "Google (GCP) service account key",
        severity: Severity::Critical,
        keywords: &["service_account"],
        regex: r#""type"\s*:\s*"(?P<secret>service_account)""#,
        entropy: None,
    },
    RuleSpec {
        id: "gcp-api-key",
        category: "Google",
        title: "Google API key",
        severity: Severity::High,
        keywords: &["aiza"],
        regex: b!(r"(?P<secret>AIza[0-9A-Za-z_\-]{35})"),
        entropy: None,
    },
    RuleSpec {
        id: "azure-storage-account-key",
        category: "Azure",
        title: "Azure Storage Account key",
        severity: Severity::Critical,
        keywords: &["accountkey"],
        regex: r"(?i)AccountKey\s*=\s*(?P<secret>[A-Za-z0-9+/]{86}==)",
        entropy: None,
    },
    RuleSpec {
        id: "azure-sas-token",
        category: "Azure",
        title: "Azure Shared Access Signature",
        severity: Severity::High,
        keywords: &["sig="],
        regex: r"(?:sv|se|sp)=[^&\s]+&[^\s]*sig=(?P<secret>[A-Za-z0-9%+/]{43,}(?:%3D|=){0,2})",
        entropy: None,
    },
    RuleSpec {
        id: "azure-devops-pat",
        category: "Azure",
        title: "Azure DevOps Personal Access Token",
        severity: Severity::Critical,
        keywords: &["azure", "devops", "ado_", "vsts"],
        regex: r#"(?i)(?:azure|devops|ado|vsts)[a-z_\-]{0,20}\s*[:=]\s*["']?(?P<secret>[a-z2-7]{52})(?:$|[^a-z0-9])"#,
        entropy: None,
    },
    RuleSpec {
        id: "azure-entra-client-secret",
        category: "Azure",
        title: "Azure Entra ID client secret",
        severity: Severity::Critical,
        keywords: &["q~"],
        regex: r"(?:^|[^0-9A-Za-z_~.\-])(?P<secret>[0-9A-Za-z_\-.]{3}[0-9]Q~[0-9A-Za-z_~.\-]{31,34})(?:$|[^0-9A-Za-z_~.\-])",
        entropy: None,
    },
    RuleSpec {
        id: "azure-acr-login-password",
        category: "Azure",
        title: "Azure Container Registry login password",
        severity: Severity::Critical,
        keywords: &["azurecr.io"],
        regex: r"(?i)azurecr\.io[^\n]{0,60}?(?:password|passwd|pwd)\s*[:=]\s*[\x22']?(?P<secret>[A-Za-z0-9+/=]{32,})",
        entropy: None,
    },
    RuleSpec {
        id: "azure-api-key",
        category: "Azure",
        title: "Azure API key (AI services, Container Registry tokens)",
        severity: Severity::Critical,
        keywords: &["jqqj99"],
        regex: b!(r"(?P<secret>[A-Za-z0-9]{52}JQQJ99[A-Za-z0-9]{26})"),
        entropy: None,
    },
    RuleSpec {
        id: "azure-app-configuration-connection-string",
        category: "Azure",
        title: "Azure App Configuration connection string",
        severity: Severity::Critical,
        keywords: &["azconfig.io"],
        regex: r"Endpoint=https://[^;\s]+\.azconfig\.io;Id=[^;\s]+;Secret=(?P<secret>[A-Za-z0-9+/=]{30,})",
        entropy: None,
    },
    RuleSpec {
        id: "azure-container-registry-password",
        category: "Azure",
        title: "Azure Container Registry password",
        severity: Severity::Critical,
        keywords: &["+acr"],
        regex: b!(r"(?P<secret>[0-9A-Za-z+/]{42}\+ACR[A-Za-z0-9]{6})"),
        entropy: None,
    },
    RuleSpec {
        id: "huggingface-token",
        category: "HuggingFace",
        title: "Hugging Face access token",
        severity: Severity::Critical,
        keywords: &["hf_"],
        regex: b!(r"(?P<secret>hf_[A-Za-z0-9]{34,40})"),
        entropy: None,
    },
    RuleSpec {
        id: "openai-api-key",
        category: "OpenAI",
        title: "OpenAI API key",
        severity: Severity::Critical,
        keywords: &["t3blbkfj"],
        regex: b!(r"(?P<secret>sk-(?:(?:proj|svcacct|admin)-[A-Za-z0-9_\-]{20,74}|[A-Za-z0-9]{20,74})T3BlbkFJ[A-Za-z0-9_\-]{20,74})"),
        entropy: None,
    },
    RuleSpec {
        id: "openai-realtime-client-secret",
        category: "OpenAI",
        title: "OpenAI Realtime client secret",
        severity: Severity::High,
        keywords: &["ek_"],
        regex: b!(r"(?P<secret>ek_[a-f0-9]{32})"),
        entropy: None,
    },
    RuleSpec {
        id: "anthropic-api-key",
        category: "Anthropic",
        title: "Anthropic API key",
        severity: Severity::Critical,
        keywords: &["sk-ant-"],
        regex: b!(r"(?P<secret>sk-ant-(?:api|admin)\d{2}-[A-Za-z0-9_\-]{80,100})"),
        entropy: None,
    },
    RuleSpec {
        id: "alibaba-access-key-id",
        category: "Alibaba",
        title: "Alibaba AccessKey ID",
        severity: Severity::High,
        keywords: &["ltai"],
        regex: b!(r"(?P<secret>LTAI[A-Za-z0-9]{20})"),
        entropy: None,
    },
    RuleSpec {
        id: "sendgrid-api-key",
        category: "SendGrid",
        title: "SendGrid API key",
        severity: Severity::High,
        keywords: &["sg."],
        regex: b!(r"(?P<secret>SG\.[A-Za-z0-9_\-]{22}\.[A-Za-z0-9_\-]{43})"),
        entropy: None,
    },
    RuleSpec {
        id: "shopify-token",
        category: "Shopify",
        title: "Shopify access token",
        severity: Severity::High,
        keywords: &["shpat_", "shpca_", "shppa_", "shpss_"],
        regex: b!(r"(?P<secret>shp(?:at|ca|pa|ss)_[a-fA-F0-9]{32})"),
        entropy: None,
    },
    RuleSpec {
        id: "dockerhub-pat",
        category: "Docker",
        title: "Docker Hub personal access token",
        severity: Severity::High,
        keywords: &["dckr_pat_"],
        regex: b!(r"(?P<secret>dckr_pat_[A-Za-z0-9_\-]{27})"),
        entropy: None,
    },
    RuleSpec {
        id: "kubernetes-docker-config",
        category: "Docker",
        title: "Registry credentials in a Kubernetes secret (.dockerconfigjson)",
        severity: Severity::High,
        keywords: &[".dockerconfigjson", ".dockercfg"],
        regex: r"\.docker(?:configjson|cfg)\x22?\s*:\s*\x22?(?P<secret>[A-Za-z0-9+/=]{8,})",
        entropy: None,
    },
    RuleSpec {
        id: "docker-config-auth",
        category: "Docker",
        title: "Docker registry credentials (config.json auths)",
        severity: Severity::High,
        keywords: &["\"auth\""],
        regex: r#""auths"\s*:\s*\{[^}]*"auth"\s*:\s*"(?P<secret>[A-Za-z0-9+/=]{8,})""#,
        entropy: None,
    },
    RuleSpec {
        id: "digitalocean-token",
        category: "DigitalOcean",
        title: "DigitalOcean token",
        severity: Severity::High,
        keywords: &["dop_v1_", "doo_v1_", "dor_v1_"],
        regex: b!(r"(?P<secret>do[opr]_v1_[a-f0-9]{64})"),
        entropy: None,
    },
    RuleSpec {
        id: "grafana-token",
        category: "Grafana",
        title: "Grafana API or service account token",
        severity: Severity::High,
        keywords: &["glc_", "glsa_"],
        regex: b!(r"(?P<secret>(?:glc_[A-Za-z0-9+/]{32,400}={0,2}|glsa_[A-Za-z0-9]{32}_[A-Fa-f0-9]{8}))"),
        entropy: None,
    },
    RuleSpec {
        id: "grafana-api-key",
        category: "Grafana",
        title: "Grafana API key (legacy)",
        severity: Severity::High,
        keywords: &["eyjrijoi"],
        regex: b!(r"(?P<secret>eyJrIjoi[A-Za-z0-9]{70,400}={0,2})"),
        entropy: None,
    },
    RuleSpec {
        id: "hashicorp-vault-token",
        category: "HashiCorp",
        title: "Vault service token",
        severity: Severity::High,
        keywords: &["hvs."],
        regex: b!(r"(?P<secret>hvs\.[A-Za-z0-9_\-]{90,120})"),
        entropy: None,
    },
    RuleSpec {
        id: "terraform-cloud-token",
        category: "HashiCorp",
        title: "Terraform Cloud API token",
        severity: Severity::High,
        keywords: &["atlasv1"],
        regex: r"(?P<secret>[A-Za-z0-9]{14}\.atlasv1\.[A-Za-z0-9_=\-]{60,70})",
        entropy: None,
    },
    RuleSpec {
        id: "atlassian-api-token",
        category: "Atlassian",
        title: "Atlassian API token",
        severity: Severity::High,
        keywords: &["atatt3"],
        regex: b!(r"(?P<secret>ATATT3[A-Za-z0-9_\-=]{186})"),
        entropy: None,
    },
    RuleSpec {
        id: "twilio-api-key",
        category: "Twilio",
        title: "Twilio API key",
        severity: Severity::Medium,
        keywords: &["twilio"],
        regex: b!(r"(?P<secret>SK[0-9a-fA-F]{32})"),
        entropy: None,
    },
    RuleSpec {
        id: "mailgun-api-key",
        category: "Mailgun",
        title: "Mailgun API key",
        severity: Severity::Medium,
        keywords: &["key-"],
        regex: b!(r"(?P<secret>key-[0-9a-f]{32})"),
        entropy: None,
    },
    RuleSpec {
        id: "private-packagist-token",
        category: "Packagist",
        title: "Private Packagist token",
        severity: Severity::High,
        keywords: &["packagist_"],
        regex: b!(r"(?P<secret>packagist_[ou][ru]t_[a-f0-9]{68})"),
        entropy: None,
    },
    RuleSpec {
        id: "linear-api-key",
        category: "Linear",
        title: "Linear API key",
        severity: Severity::High,
        keywords: &["lin_api_"],
        regex: b!(r"(?P<secret>lin_api_[A-Za-z0-9]{40})"),
        entropy: None,
    },
    RuleSpec {
        id: "postman-api-key",
        category: "Postman",
        title: "Postman API key",
        severity: Severity::High,
        keywords: &["pmak-"],
        regex: b!(r"(?P<secret>PMAK-[a-f0-9]{24}-[a-f0-9]{34})"),
        entropy: None,
    },
    RuleSpec {
        id: "databricks-token",
        category: "Databricks",
        title: "Databricks API token",
        severity: Severity::High,
        keywords: &["dapi"],
        regex: b!(r"(?P<secret>dapi[a-f0-9]{32}(?:-\d)?)"),
        entropy: None,
    },
    RuleSpec {
        id: "url-credentials",
        category: "Generic",
        title: "Password in a URL",
        severity: Severity::High,
        keywords: &["://"],
        regex: r"[a-z][a-z0-9+.\-]{1,20}://[^\s:/@]{1,64}:(?P<secret>[^\s:/@]{6,128})@[A-Za-z0-9.\-]+",
        entropy: None,
    },
    RuleSpec {
        id: "generic-credential",
        category: "Generic",
        title: "High-entropy value assigned to a credential-like name",
        severity: Severity::High,
        keywords: &[
            "password",
            "passwd",
            "secret",
            "token",
            "apikey",
            "api_key",
            "api-key",
            "access_key",
            "auth_key",
        ],
        // The name before the keyword (`db_password`) is read by the scanner, not the regex: a leading
        // `[a-z0-9_]*` would make every position a candidate start and halve the scan speed.
        regex: r#"(?i)(?:password|passwd|secret|token|api[_-]?key|access[_-]?key|auth[_-]?key)[a-z0-9_.-]{0,20}["']?[ \t]{0,5}(?:=|:|=>|:=)[ \t]{0,5}["']?(?P<secret>[0-9a-z+/_=.~-]{20,100})(?:$|[^0-9a-z+/_=.~-])"#,
        // Random keys reach 4+ bits per byte; words, paths and placeholders stay well under 3.5.
        entropy: Some(3.5),
    },
];

/// Named allowances: paths where matches are expected and not leaks. A rules file
/// can drop one by name with `disable-allow-rules`.
pub const BUILTIN_ALLOWED_PATHS: &[(&str, &[&str])] = &[
    ("tests", &["**/testdata/**", "**/tests/**", "**/test/**"]),
    ("examples", &["**/examples/**"]),
    ("docs", &["usr/share/doc/**", "usr/share/man/**"]),
    ("markdown", &["**/*.md"]),
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
