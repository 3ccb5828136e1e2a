//! The lint rules: the Secure Image Policy's own (`CPxxx`) and hadolint's `DL3xxx`/`DL4xxx` set under
//! hadolint's ids, so existing pragmas and `.hadolint.yaml` files keep working.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use crate::shell::{Script, ShellCommand};
use crate::syntax::{CommandForm, Dockerfile, Flag, Kind, unquote};

mod policy;

/// How serious a lint finding is (hadolint's levels, most serious first).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Breaks the policy or the build.
    Error,
    /// Likely a problem.
    Warning,
    /// Worth knowing.
    Info,
    /// Style only.
    Style,
}

impl Level {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warning => "warning",
            Level::Info => "info",
            Level::Style => "style",
        }
    }

    /// Parses `error`, `warning`, `info` or `style` (any case).
    pub fn parse(text: &str) -> Option<Level> {
        match text.to_ascii_lowercase().as_str() {
            "error" => Some(Level::Error),
            "warning" => Some(Level::Warning),
            "info" => Some(Level::Info),
            "style" => Some(Level::Style),
            _ => None,
        }
    }
}

/// What a rule is, for docs, SARIF rule metadata and `customs lint --list-rules`.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct RuleInfo {
    /// Primary id (`CP001`, `DL3008`).
    pub id: &'static str,
    /// Default level.
    pub level: Level,
    /// One line saying what is wrong.
    pub title: &'static str,
    /// How to fix it.
    pub fix: &'static str,
}

macro_rules! rules {
    ($($id:literal $level:ident $title:literal $fix:literal;)*) => {
        /// Every rule, policy rules first.
        pub const RULES: &[RuleInfo] = &[$(RuleInfo { id: $id, level: Level::$level, title: $title, fix: $fix }),*];
    };
}

rules! {
    "CP001" Error "The final stage has no USER instruction, so the container runs as root" "Add `USER <non-root uid>` to the final stage, after the packages are installed.";
    "CP002" Info "Base image is not pinned by digest" "Pin with `FROM image:tag@sha256:<digest>` so rebuilds use the image that was scanned.";
    "CP003" Warning "ADD downloads a remote URL without a checksum" "Use `ADD --checksum=sha256:<hex> <url>` or download with curl and verify with sha256sum.";
    "CP004" Error "A secret is set in ENV or ARG and ends up in the image metadata" "Pass secrets with `RUN --mount=type=secret` and read them at run time, never ENV/ARG.";
    "CP005" Warning "A remote script is piped into a shell without verifying it" "Download to a file, check its sha256 (or signature), then run it.";
    "CP006" Warning "No .dockerignore next to the build context" "Add a .dockerignore that excludes .git, .env, keys and build output.";
    "CP007" Error "A sensitive file (key, .env, credentials, .git) is copied into the image" "Remove it from the COPY and exclude it in .dockerignore; use build secrets for credentials.";
    "CP008" Warning "Build tools end up in the final image" "Use a multi-stage build: compile in a builder stage and COPY --from only the artifacts.";
    "CP009" Warning "A file copied in an earlier layer is deleted later: it still ships in that layer" "Do not COPY secrets or temporary files; use `RUN --mount=type=bind` or a builder stage.";
    "CP010" Warning "Blank line inside a continued instruction: BuildKit joins the next line into it" "Remove the blank line or the trailing escape character before it.";
    "CP011" Info "The final stage has no HEALTHCHECK" "Add `HEALTHCHECK CMD <probe>` (or `HEALTHCHECK NONE` when the orchestrator probes the container itself).";
    "CP012" Warning "Port 22 is exposed: SSH does not belong in a container" "Remove `EXPOSE 22`; use `docker exec` or `kubectl exec` to get a shell.";
    "CP013" Warning "A package index update alone in its RUN: later installs may use a stale cached index" "Update and install in the same RUN: `apt-get update && apt-get install -y …`.";
    "CP014" Warning "dist-upgrade replaces the base image's release" "Move to a newer base image instead of upgrading the distribution inside it.";
    "CP015" Warning "`microdnf clean all` missing after microdnf install" "End the RUN with `microdnf clean all`.";
    "CP016" Warning "WORKDIR is a system folder" "Use an application folder such as `/app`.";
    "DL3000" Error "Use absolute WORKDIR" "Write `WORKDIR /path`.";
    "DL3001" Info "This command makes no sense in a container (ssh, vim, shutdown, service, ps, free, top, kill, mount, ifconfig)" "Remove it from RUN.";
    "DL3002" Warning "Last USER should not be root" "Switch to a non-root user at the end of the stage.";
    "DL3003" Warning "Use WORKDIR to switch to a directory" "Replace `cd dir && ...` with `WORKDIR dir`.";
    "DL3004" Error "Do not use sudo as it leads to unpredictable behavior" "Run as root in RUN, or use gosu; drop sudo.";
    "DL3006" Warning "Always tag the version of an image explicitly" "Write `FROM image:tag` (or a digest).";
    "DL3007" Warning "Using latest is prone to errors if the image will ever update" "Pin a release tag instead of `latest`.";
    "DL3008" Warning "Pin versions in apt-get install" "Use `apt-get install <package>=<version>`.";
    "DL3009" Info "Delete the apt-get lists after installing something" "End the RUN with `rm -rf /var/lib/apt/lists/*`.";
    "DL3010" Info "Use ADD for extracting archives into an image" "`ADD archive.tar.gz /dest/` extracts it in one layer.";
    "DL3011" Error "Valid UNIX ports range from 0 to 65535" "Fix the EXPOSE port.";
    "DL3012" Error "Multiple HEALTHCHECK instructions" "Keep one HEALTHCHECK per stage.";
    "DL3013" Warning "Pin versions in pip" "Use `pip install <package>==<version>` or `pip install -r requirements.txt`.";
    "DL3014" Warning "Use the -y switch to avoid manual input" "Write `apt-get install -y <package>`.";
    "DL3015" Info "Avoid additional packages by specifying --no-install-recommends" "Write `apt-get install --no-install-recommends <package>`.";
    "DL3016" Warning "Pin versions in npm" "Use `npm install <package>@<version>`.";
    "DL3018" Warning "Pin versions in apk add" "Use `apk add <package>=<version>`.";
    "DL3019" Info "Use the --no-cache switch with apk add" "Write `apk add --no-cache <package>`.";
    "DL3020" Error "Use COPY instead of ADD for files and folders" "Replace ADD with COPY for local files.";
    "DL3021" Error "COPY with more than 2 arguments requires the last argument to end with /" "Add a trailing `/` to the destination.";
    "DL3022" Warning "COPY --from should reference a previously defined FROM alias" "Name the stage with `FROM ... AS name` before copying from it.";
    "DL3023" Error "COPY --from cannot reference its own FROM alias" "Copy from another stage.";
    "DL3024" Error "FROM aliases (stage names) must be unique" "Rename one of the stages.";
    "DL3025" Warning "Use arguments JSON notation for CMD and ENTRYPOINT arguments" "Write `CMD [\"executable\", \"arg\"]` so signals reach the process.";
    "DL3026" Error "Use only an allowed registry in the FROM image" "Use an image from a trusted registry (trustedRegistries in the lint config).";
    "DL3027" Warning "Do not use apt as it is meant to be an end-user tool, use apt-get or apt-cache instead" "Replace apt with apt-get.";
    "DL3028" Warning "Pin versions in gem install" "Use `gem install <gem>:<version>`.";
    "DL3029" Warning "Do not use --platform flag with FROM" "Let the builder pick the platform, or use $BUILDPLATFORM/$TARGETPLATFORM.";
    "DL3030" Warning "Use the -y switch to avoid manual input with yum install" "Write `yum install -y <package>`.";
    "DL3032" Warning "`yum clean all` missing after yum command" "End the RUN with `yum clean all`.";
    "DL3033" Warning "Specify version with `yum install -y <package>-<version>`" "Pin the package version.";
    "DL3034" Warning "Non-interactive switch missing from zypper command" "Write `zypper install -y <package>`.";
    "DL3035" Warning "Do not use `zypper dist-upgrade`" "Pin packages instead of upgrading the distribution.";
    "DL3036" Warning "`zypper clean` missing after zypper use" "End the RUN with `zypper clean`.";
    "DL3037" Warning "Specify version with `zypper install -y <package>=<version>`" "Pin the package version.";
    "DL3038" Warning "Use the -y switch to avoid manual input with dnf install" "Write `dnf install -y <package>`.";
    "DL3040" Warning "`dnf clean all` missing after dnf command" "End the RUN with `dnf clean all`.";
    "DL3041" Warning "Specify version with `dnf install -y <package>-<version>`" "Pin the package version.";
    "DL3042" Warning "Avoid use of cache directory with pip" "Write `pip install --no-cache-dir <package>`.";
    "DL3043" Error "ONBUILD, FROM or MAINTAINER triggered from within ONBUILD instruction" "Remove the nested instruction.";
    "DL3044" Error "Do not refer to an environment variable within the same ENV statement where it is defined" "Split the ENV into two instructions.";
    "DL3045" Warning "COPY to a relative destination without WORKDIR set" "Set WORKDIR first or use an absolute destination.";
    "DL3046" Warning "useradd without flag -l and high UID will result in excessively large image" "Add `-l` (`--no-log-init`).";
    "DL3047" Info "Avoid use of wget without progress bar" "Use `wget --progress=dot:giga <url>`, `-q` or `-nv`.";
    "DL3048" Style "Invalid label key" "Use lower-case reverse-DNS keys such as `org.opencontainers.image.source`.";
    "DL3049" Info "Label is missing" "Add the label required by the label schema.";
    "DL3050" Info "Superfluous label(s) present" "Remove labels that are not in the label schema.";
    "DL3051" Warning "Label is empty" "Give the label a value.";
    "DL3052" Warning "Label is not a valid URL" "Use a full URL.";
    "DL3053" Warning "Label is not a valid time format, must conform to RFC3339" "Use e.g. `2024-03-07T12:00:00Z`.";
    "DL3054" Warning "Label is not a valid SPDX identifier" "Use an SPDX id such as `Apache-2.0`.";
    "DL3055" Warning "Label is not a valid git hash" "Use the full 40-character (or short 7-character) hash.";
    "DL3056" Warning "Label does not conform to semantic versioning" "Use `MAJOR.MINOR.PATCH`.";
    "DL3058" Warning "Label is not a valid email format" "Use `name@example.org`.";
    "DL3059" Info "Multiple consecutive RUN instructions" "Consider consolidating them with `&&`.";
    "DL3060" Info "`yarn cache clean` missing after `yarn install`" "End the RUN with `yarn cache clean`.";
    "DL3066" Info "Non-numeric user-id may not be resolvable by host system" "Use a numeric UID (and GID) in USER.";
    "DL4000" Error "MAINTAINER is deprecated" "Use `LABEL org.opencontainers.image.authors=...`.";
    "DL4001" Warning "Either use wget or curl but not both" "Pick one download tool.";
    "DL4003" Warning "Multiple CMD instructions found" "Only the last CMD takes effect; keep one.";
    "DL4004" Error "Multiple ENTRYPOINT instructions found" "Only the last ENTRYPOINT takes effect; keep one.";
    "DL4005" Warning "Use SHELL to change the default shell" "Write `SHELL [\"/bin/bash\", \"-c\"]` instead of linking /bin/sh.";
    "DL4006" Warning "Set the SHELL option -o pipefail before RUN with a pipe in it" "Add `SHELL [\"/bin/bash\", \"-o\", \"pipefail\", \"-c\"]` before the RUN.";
}

/// Looks up a rule by id (case-insensitive).
pub fn rule(id: &str) -> Option<&'static RuleInfo> {
    RULES.iter().find(|r| r.id.eq_ignore_ascii_case(id))
}

/// A rule that fired, before pragmas and config are applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hit {
    /// Rule id.
    pub rule: &'static str,
    /// 1-based line.
    pub line: usize,
    /// Detail beyond the rule title, if any (never contains a secret in clear).
    pub detail: Option<String>,
}

/// What the rules need besides the file.
#[derive(Clone, Default)]
pub struct RuleInput<'a> {
    /// Registries FROM may use (DL3026); empty disables the rule.
    pub trusted_registries: &'a [String],
    /// Label schema (DL3049–DL3058): label name to type (`text`, `url`, `rfc3339`, `spdx`, `hash`, `semver`, `email`).
    pub label_schema: &'a [(String, String)],
    /// Report labels outside the schema (DL3050).
    pub strict_labels: bool,
    /// Whether a .dockerignore exists next to the build context; `None` when unknown (CP006 skipped).
    pub has_dockerignore: Option<bool>,
    /// Secret scanner for ENV/ARG values (CP004).
    pub secrets: Option<&'a customs_secrets::Scanner>,
}

/// Runs every rule over a parsed file.
pub fn check(file: &Dockerfile, input: &RuleInput<'_>) -> Vec<Hit> {
    let scripts: Vec<Option<Script>> = file
        .instructions
        .iter()
        .map(|i| match &i.kind {
            Kind::Run { command, heredocs, .. } => Some(run_script(command, heredocs)),
            Kind::Onbuild(inner) => match inner.as_ref() {
                Kind::Run { command, heredocs, .. } => Some(run_script(command, heredocs)),
                _ => None,
            },
            _ => None,
        })
        .collect();
    let mut cx = Cx {
        file,
        scripts: &scripts,
        input,
        hits: Vec::new(),
    };
    cx.instruction_rules();
    cx.stage_rules();
    cx.policy_rules();
    cx.hits.sort_by(|a, b| (a.line, a.rule).cmp(&(b.line, b.rule)));
    cx.hits.dedup();
    cx.hits
}

/// The script a RUN executes: heredoc bodies when the command is only heredoc markers.
fn run_script(command: &CommandForm, heredocs: &[String]) -> Script {
    match command {
        CommandForm::Exec(args) => Script::parse(&args.join(" ")),
        CommandForm::Shell(text) => {
            let only_markers = !heredocs.is_empty() && text.split_whitespace().all(|w| w.starts_with("<<"));
            if only_markers {
                Script::parse(&heredocs.join("\n"))
            } else {
                Script::parse(text)
            }
        }
    }
}

struct Cx<'a> {
    file: &'a Dockerfile,
    scripts: &'a [Option<Script>],
    input: &'a RuleInput<'a>,
    hits: Vec<Hit>,
}

const TRUTHY: &[&str] = &["1", "true", "True", "TRUE", "on", "On", "ON", "yes", "Yes", "YES"];

impl Cx<'_> {
    fn hit(&mut self, rule: &'static str, line: usize) {
        self.hits.push(Hit { rule, line, detail: None });
    }

    fn hit_with(&mut self, rule: &'static str, line: usize, detail: String) {
        self.hits.push(Hit {
            rule,
            line,
            detail: Some(detail),
        });
    }

    /// Rules that look at one instruction at a time.
    fn instruction_rules(&mut self) {
        for (idx, inst) in self.file.instructions.iter().enumerate() {
            let line = inst.line;
            match &inst.kind {
                Kind::Workdir(dir) if !is_absolute_or_variable(dir) => self.hit("DL3000", line),
                Kind::Maintainer(_) => self.hit("DL4000", line),
                Kind::Cmd(CommandForm::Shell(_)) | Kind::Entrypoint(CommandForm::Shell(_)) => self.hit("DL3025", line),
                Kind::Expose(ports) if ports.iter().any(|p| !valid_port(p)) => {
                    self.hit("DL3011", line);
                }
                Kind::User(user) => {
                    let uid = user.split(':').next().unwrap_or_default();
                    if !uid.contains('$') && !uid.chars().all(|c| c.is_ascii_digit()) {
                        self.hit("DL3066", line);
                    }
                }
                Kind::Onbuild(inner) => {
                    if matches!(inner.as_ref(), Kind::Onbuild(_) | Kind::From { .. } | Kind::Maintainer(_)) {
                        self.hit("DL3043", line);
                    }
                }
                Kind::Env(pairs) => {
                    let mut defined: HashSet<&str> = HashSet::new();
                    for (key, value) in pairs {
                        if defined.iter().any(|d| refers_to(value, d)) {
                            self.hit("DL3044", line);
                            break;
                        }
                        defined.insert(key);
                    }
                }
                Kind::Label(pairs) => {
                    if pairs.iter().any(|(k, _)| !valid_label_key(k)) {
                        self.hit("DL3048", line);
                    }
                    self.label_schema(pairs, line);
                }
                Kind::Add {
                    sources, dest, heredoc, ..
                } => {
                    if !heredoc && sources.iter().any(|s| !is_url(s) && !is_archive(s)) {
                        self.hit("DL3020", line);
                    }
                    self.copy_dest(sources.len(), dest, line);
                }
                Kind::Copy { sources, dest, .. } => self.copy_dest(sources.len(), dest, line),
                Kind::From { flags, .. } => {
                    if let Some(p) = flag(flags, "platform")
                        && !p.contains("BUILDPLATFORM")
                        && !p.contains("TARGETPLATFORM")
                    {
                        self.hit("DL3029", line);
                    }
                }
                _ => {}
            }
            if let Some(script) = &self.scripts[idx] {
                self.script_rules(script, line);
            }
        }
    }

    fn copy_dest(&mut self, sources: usize, dest: &str, line: usize) {
        if sources > 1 && !dest.ends_with('/') && !dest.starts_with('$') {
            self.hit("DL3021", line);
        }
    }

    fn label_schema(&mut self, pairs: &[(String, String)], line: usize) {
        let schema = self.input.label_schema;
        for (key, value) in pairs {
            let Some((_, kind)) = schema.iter().find(|(k, _)| k == key) else {
                if self.input.strict_labels && !schema.is_empty() {
                    self.hit_with("DL3050", line, format!("label `{key}` is not in the schema"));
                }
                continue;
            };
            if value.is_empty() {
                self.hit_with("DL3051", line, format!("label `{key}` is empty"));
                continue;
            }
            let (ok, rule) = match kind.as_str() {
                "url" => (is_url(value), "DL3052"),
                "rfc3339" => (is_rfc3339(value), "DL3053"),
                "spdx" => (is_spdx(value), "DL3054"),
                "hash" => (is_git_hash(value), "DL3055"),
                "semver" => (is_semver(value), "DL3056"),
                "email" => (is_email(value), "DL3058"),
                _ => (true, ""),
            };
            if !ok {
                self.hit_with(rule, line, format!("label `{key}` = `{value}`"));
            }
        }
    }

    /// Rules over the commands of one RUN.
    fn script_rules(&mut self, script: &Script, line: usize) {
        let cmds = &script.commands;
        if cmds.iter().any(|c| {
            [
                "ssh", "vim", "shutdown", "service", "ps", "free", "top", "kill", "mount", "ifconfig",
            ]
            .contains(&c.name.as_str())
        }) {
            self.hit("DL3001", line);
        }
        if cmds.iter().any(|c| c.name == "cd") {
            self.hit("DL3003", line);
        }
        if cmds.iter().any(|c| c.name == "sudo") {
            self.hit("DL3004", line);
        }
        if cmds.iter().any(|c| c.name == "apt") {
            self.hit("DL3027", line);
        }
        let apt_installs: Vec<&ShellCommand> = cmds.iter().filter(|c| c.has_args("apt-get", &["install"])).collect();
        if apt_installs.iter().any(|c| {
            c.args_no_flags_dropping(&["t", "target-release"])
                .into_iter()
                .filter(|a| *a != "install")
                .any(|p| !(p.contains('=') || p.contains('/') || p.ends_with(".deb")))
        }) {
            self.hit("DL3008", line);
        }
        if apt_installs.iter().any(|c| {
            !(c.has_any_flag(&["y", "yes", "assume-yes"])
                || c.args.iter().any(|a| {
                    a == "-qq"
                        || a == "-q=2"
                        || a == "--quiet=2"
                        || (a.starts_with('-') && !a.starts_with("--") && a.matches('q').count() >= 2)
                }))
        }) {
            self.hit("DL3014", line);
        }
        if apt_installs.iter().any(|c| {
            !(c.has_any_flag(&["no-install-recommends"])
                || c.args
                    .iter()
                    .any(|a| a.contains("APT::Install-Recommends=false") || a.contains("APT::Install-Recommends=\"false\"")))
        }) {
            self.hit("DL3015", line);
        }
        // pip
        if cmds.iter().any(pip_unpinned) {
            self.hit("DL3013", line);
        }
        // npm
        if cmds.iter().any(npm_unpinned) {
            self.hit("DL3016", line);
        }
        // apk
        let apk_adds: Vec<&ShellCommand> = cmds.iter().filter(|c| c.has_args("apk", &["add"])).collect();
        if apk_adds.iter().any(|c| {
            c.args_no_flags_dropping(&["t", "virtual", "repository", "X", "repositories-file"])
                .into_iter()
                .filter(|a| *a != "add")
                .any(|p| !p.contains('=') && !p.ends_with(".apk"))
        }) {
            self.hit("DL3018", line);
        }
        if apk_adds.iter().any(|c| !c.has_any_flag(&["no-cache"])) {
            self.hit("DL3019", line);
        }
        // gem
        if cmds.iter().filter(|c| c.has_args("gem", &["install", "i"])).any(|c| {
            !c.args.iter().any(|a| a == "-v" || a == "--version" || a.starts_with("--version="))
                && c.args_no_flags()
                    .into_iter()
                    .filter(|a| *a != "install" && *a != "i")
                    .any(|g| !g.contains(':'))
        }) {
            self.hit("DL3028", line);
        }
        // yum
        let yum_installs: Vec<&ShellCommand> = cmds
            .iter()
            .filter(|c| c.has_args("yum", &["install", "groupinstall", "localinstall"]))
            .collect();
        if yum_installs.iter().any(|c| !c.has_any_flag(&["y", "assumeyes"])) {
            self.hit("DL3030", line);
        }
        if !yum_installs.is_empty()
            && !cmds
                .iter()
                .any(|c| c.name == "yum" && c.args.contains(&"clean".into()) && c.args.contains(&"all".into()))
        {
            self.hit("DL3032", line);
        }
        if cmds.iter().filter(|c| c.has_args("yum", &["install"])).any(|c| {
            let module = c.args.iter().any(|a| a == "module");
            c.args_no_flags()
                .into_iter()
                .filter(|a| *a != "install" && *a != "module")
                .any(|p| if module { !p.contains(':') } else { !rpm_version_fixed(p) })
        }) {
            self.hit("DL3033", line);
        }
        // zypper
        let zypper: Vec<&ShellCommand> = cmds.iter().filter(|c| c.name == "zypper").collect();
        let zypper_install: Vec<&&ShellCommand> = zypper
            .iter()
            .filter(|c| {
                c.args
                    .iter()
                    .any(|a| ["install", "in", "remove", "rm", "source-install", "si", "patch"].contains(&a.as_str()))
            })
            .collect();
        if zypper_install
            .iter()
            .any(|c| !c.has_any_flag(&["n", "non-interactive", "y", "no-confirm"]))
        {
            self.hit("DL3034", line);
        }
        if zypper.iter().any(|c| c.args.iter().any(|a| a == "dist-upgrade" || a == "dup")) {
            self.hit("DL3035", line);
        }
        let installs = zypper.iter().any(|c| c.args.iter().any(|a| a == "install" || a == "in"));
        if installs && !zypper.iter().any(|c| c.args.iter().any(|a| a == "clean" || a == "cc")) {
            self.hit("DL3036", line);
        }
        if zypper
            .iter()
            .filter(|c| c.args.iter().any(|a| a == "install" || a == "in"))
            .any(|c| {
                c.args_no_flags()
                    .into_iter()
                    .filter(|a| *a != "install" && *a != "in")
                    .any(|p| !(p.contains('=') || p.contains('>') || p.contains('<') || p.ends_with(".rpm")))
            })
        {
            self.hit("DL3037", line);
        }
        // dnf / microdnf
        let dnf = |c: &&ShellCommand| c.name == "dnf" || c.name == "microdnf";
        let dnf_installs: Vec<&ShellCommand> = cmds
            .iter()
            .filter(dnf)
            .filter(|c| c.args.iter().any(|a| a == "install" || a == "groupinstall" || a == "localinstall"))
            .collect();
        if dnf_installs.iter().any(|c| !c.has_any_flag(&["y", "assumeyes"])) {
            self.hit("DL3038", line);
        }
        if !dnf_installs.is_empty()
            && !cmds
                .iter()
                .filter(dnf)
                .any(|c| c.args.iter().any(|a| a == "clean") && c.args.iter().any(|a| a == "all"))
        {
            self.hit("DL3040", line);
        }
        if dnf_installs.iter().any(|c| {
            let module = c.args.iter().any(|a| a == "module");
            c.args_no_flags()
                .into_iter()
                .filter(|a| !["install", "groupinstall", "localinstall", "module"].contains(a))
                .any(|p| if module { !p.contains(':') } else { !rpm_version_fixed(p) })
        }) {
            self.hit("DL3041", line);
        }
        // useradd
        if cmds.iter().filter(|c| c.name == "useradd").any(|c| {
            !c.has_any_flag(&["l", "no-log-init"])
                && c.args.iter().enumerate().any(|(i, a)| {
                    let uid = if a == "-u" || a == "--uid" {
                        c.args.get(i + 1).map(String::as_str)
                    } else {
                        a.strip_prefix("--uid=")
                    };
                    uid.is_some_and(|u| u.len() > 5 && u.chars().all(|c| c.is_ascii_digit()))
                })
        }) {
            self.hit("DL3046", line);
        }
        if cmds.iter().any(|c| {
            c.name == "wget"
                && !c.has_any_flag(&["progress", "q", "quiet", "o", "output-file", "a", "append-output", "no-verbose"])
                && !c.args.iter().any(|a| a == "-nv")
        }) {
            self.hit("DL3047", line);
        }
        if cmds.iter().any(|c| c.has_args("yarn", &["install"]))
            && !cmds
                .iter()
                .any(|c| c.name == "yarn" && c.args.starts_with(&["cache".into(), "clean".into()]))
        {
            self.hit("DL3060", line);
        }
        if cmds.iter().any(|c| c.name == "ln" && c.args.iter().any(|a| a == "/bin/sh")) {
            self.hit("DL4005", line);
        }
    }

    /// Rules that need the order of instructions within a stage or across the file.
    fn stage_rules(&mut self) {
        let file = self.file;
        let mut aliases: Vec<String> = Vec::new();
        let mut stage_alias: Option<String> = None;
        let mut last_run: Option<(Vec<Flag>, usize)> = None;
        let mut pipefail = false;
        let mut curl_wget: HashSet<&str> = HashSet::new();
        let mut last_user: HashMap<usize, (usize, bool)> = HashMap::new();
        let mut healthchecks = 0;
        let mut cmds = 0;
        let mut entrypoints = 0;
        // DL3045/DL3042 remember per stage name whether WORKDIR / PIP_NO_CACHE_DIR was set, inherited by FROM <stage>.
        let mut workdir_set: HashMap<String, bool> = HashMap::new();
        let mut no_cache_set: HashMap<String, bool> = HashMap::new();
        let mut current = String::new();
        // DL3009: RUN lines that forgot cleanup, with the stage they are in.
        let mut apt_forgot: Vec<(usize, usize)> = Vec::new();
        let mut from_images: Vec<String> = Vec::new();
        for (idx, inst) in file.instructions.iter().enumerate() {
            let line = inst.line;
            let is_run = matches!(inst.kind, Kind::Run { .. });
            if !is_run {
                last_run = None;
            }
            match &inst.kind {
                Kind::From {
                    image, resolved, alias, ..
                } => {
                    // `FROM ${BASE}` with `ARG BASE=rust` is `rust`, untagged: the tag rules read the image with the
                    // ARG defaults expanded when that leaves no variable (hadolint cannot check it at all).
                    let expanded = image.contains('$') && !resolved.contains('$') && !resolved.is_empty();
                    let bare = if expanded { resolved.as_str() } else { image.as_str() };
                    let is_alias = aliases.iter().any(|a| a.eq_ignore_ascii_case(bare));
                    let (name, tag, digest) = split_image(bare);
                    let via_arg = || format!("`{image}` is `{resolved}` with the ARG defaults");
                    if name != "scratch" && digest.is_none() && tag.is_none() && !is_alias && !bare.starts_with('$') {
                        if expanded {
                            self.hit_with("DL3006", line, via_arg());
                        } else {
                            self.hit("DL3006", line);
                        }
                    }
                    if tag == Some("latest") && digest.is_none() && !is_alias {
                        if expanded {
                            self.hit_with("DL3007", line, via_arg());
                        } else {
                            self.hit("DL3007", line);
                        }
                    }
                    // Our own checks read the image with ARG defaults expanded; hadolint's read it as written.
                    let (resolved_name, _, _) = split_image(resolved);
                    if !self.input.trusted_registries.is_empty() && resolved_name != "scratch" && !is_alias && !resolved.is_empty() {
                        let registry = registry_of(resolved_name);
                        if !self.input.trusted_registries.iter().any(|t| registry_matches(t, &registry)) {
                            self.hit_with("DL3026", line, format!("registry `{registry}` is not trusted"));
                        }
                    }
                    if let Some(a) = alias {
                        if aliases.iter().any(|x| x.eq_ignore_ascii_case(a)) {
                            self.hit("DL3024", line);
                        }
                        aliases.push(a.clone());
                    }
                    from_images.push(bare.to_string());
                    stage_alias = alias.clone();
                    pipefail = false;
                    curl_wget.clear();
                    healthchecks = 0;
                    cmds = 0;
                    entrypoints = 0;
                    let parent_key = bare.to_string();
                    current = alias.clone().unwrap_or_else(|| name.to_string());
                    let wd = workdir_set.get(&parent_key).copied().unwrap_or(false);
                    workdir_set.insert(current.clone(), wd);
                    let nc = no_cache_set.get(&parent_key).copied().unwrap_or(false);
                    no_cache_set.insert(current.clone(), nc);
                }
                Kind::Workdir(_) => {
                    workdir_set.insert(current.clone(), true);
                }
                Kind::Env(pairs) if pairs.iter().any(|(k, v)| k == "PIP_NO_CACHE_DIR" && TRUTHY.contains(&v.as_str())) => {
                    no_cache_set.insert(current.clone(), true);
                }
                Kind::Copy { flags, dest, .. } => {
                    if let Some(from) = flag(flags, "from") {
                        if stage_alias.as_deref().is_some_and(|a| a.eq_ignore_ascii_case(&from)) {
                            self.hit("DL3023", line);
                        } else if !from.chars().all(|c| c.is_ascii_digit())
                            && !from.contains(':')
                            && !from.contains('/')
                            && !from.starts_with('$')
                            && !aliases.iter().any(|a| a.eq_ignore_ascii_case(&from))
                        {
                            self.hit("DL3022", line);
                        }
                    }
                    let workdir = workdir_set.get(&current).copied().unwrap_or(false);
                    if !(workdir || is_absolute_or_variable(dest)) {
                        self.hit("DL3045", line);
                    }
                }
                Kind::Shell(args) => {
                    let joined = args.join(" ");
                    let non_posix = ["pwsh", "powershell", "cmd", "cmd.exe"].iter().any(|s| joined.starts_with(s));
                    let script = Script::parse(&joined);
                    pipefail = non_posix
                        || script.commands.iter().any(|c| {
                            ["bash", "zsh", "ash"].contains(&c.basename())
                                && c.has_any_flag(&["o"])
                                && c.args.iter().any(|a| a == "pipefail")
                        });
                }
                Kind::User(user) => {
                    let root = user == "root" || user == "0" || user.starts_with("root:") || user.starts_with("0:");
                    last_user.insert(inst.stage, (line, root));
                }
                Kind::Healthcheck { .. } => {
                    healthchecks += 1;
                    if healthchecks > 1 {
                        self.hit("DL3012", line);
                    }
                }
                Kind::Cmd(_) => {
                    cmds += 1;
                    if cmds > 1 {
                        self.hit("DL4003", line);
                    }
                }
                Kind::Entrypoint(_) => {
                    entrypoints += 1;
                    if entrypoints > 1 {
                        self.hit("DL4004", line);
                    }
                }
                _ => {}
            }
            let Some(script) = &self.scripts[idx] else { continue };
            if !is_run {
                continue;
            }
            let Kind::Run { flags, .. } = &inst.kind else { continue };
            // DL3059 (commands as written: `sudo apt-get …` is one)
            let count = script.commands.iter().filter(|c| !c.wrapped).count();
            if let Some((prev_flags, prev_count)) = &last_run
                && prev_flags == flags
                && count <= 1
                && *prev_count <= 1
            {
                self.hit("DL3059", line);
            }
            last_run = Some((flags.clone(), count));
            // DL4006
            if !pipefail && script.has_pipes {
                self.hit("DL4006", line);
            }
            // DL4001
            let tools: HashSet<&str> = script
                .commands
                .iter()
                .map(|c| c.name.as_str())
                .filter(|n| *n == "curl" || *n == "wget")
                .collect();
            curl_wget.extend(tools.iter().copied());
            if !tools.is_empty() && curl_wget.len() >= 2 {
                self.hit("DL4001", line);
            }
            // DL3042
            let pip_cache = script
                .commands
                .iter()
                .any(|c| is_pip_install(c) && !c.args.iter().any(|a| a == "--no-cache-dir") && !is_pip_wrapper(c));
            if pip_cache && !no_cache_set.get(&current).copied().unwrap_or(false) && !pip_no_cache_env(script) {
                self.hit("DL3042", line);
            }
            // DL3009
            let update = script
                .commands
                .iter()
                .any(|c| c.has_args("apt-get", &["update"]) || c.has_args("apt", &["update"]));
            let cleanup = script.commands.iter().any(|c| c.has_args("rm", &["-rf", "/var/lib/apt/lists/*"]));
            let cached = flags.iter().any(|f| {
                f.name == "mount"
                    && f.value
                        .as_deref()
                        .is_some_and(|v| v.contains("type=cache") && v.contains("/var/lib/apt/lists"))
            });
            if update && !cleanup && !cached {
                apt_forgot.push((line, inst.stage));
            }
        }
        // DL3049: every schema label must be set in every stage.
        if !self.input.label_schema.is_empty() {
            for stage in 0..file.stage_count() {
                let labels: HashSet<&str> = file
                    .stage(stage)
                    .filter_map(|i| if let Kind::Label(p) = &i.kind { Some(p) } else { None })
                    .flatten()
                    .map(|(k, _)| k.as_str())
                    .collect();
                let from_line = file.stage(stage).next().map_or(1, |i| i.line);
                for (label, _) in self.input.label_schema {
                    if !labels.contains(label.as_str()) {
                        self.hit_with("DL3049", from_line, format!("label `{label}` is missing"));
                    }
                }
            }
        }
        // DL3010: an archive COPYed and then unpacked with tar in a later RUN of the same stage.
        let mut archives: Vec<(String, usize)> = Vec::new();
        for (idx, inst) in file.instructions.iter().enumerate() {
            match &inst.kind {
                Kind::Copy { sources, flags, .. } if flag(flags, "from").is_none() => {
                    for src in sources.iter().filter(|s| is_archive(s) && !is_url(s)) {
                        archives.push((src.rsplit('/').next().unwrap_or(src).to_string(), inst.stage));
                    }
                }
                Kind::Run { .. } => {
                    if let Some(script) = &self.scripts[idx] {
                        let unpacks = script.commands.iter().filter(|c| {
                            // tar's old style `tar xzf` has its letters in the first word, without a dash.
                            let old_style = c.args.first().is_some_and(|a| !a.starts_with('-') && a.contains('x'));
                            c.name == "tar" && (old_style || c.flags().iter().any(|(_, f)| f == "x" || f == "extract"))
                        });
                        let hit = unpacks.into_iter().any(|c| {
                            c.args.iter().any(|a| {
                                archives
                                    .iter()
                                    .any(|(name, stage)| *stage == inst.stage && a.rsplit('/').next() == Some(name.as_str()))
                            })
                        });
                        if hit {
                            let copy_line = file.instructions[..idx]
                                .iter()
                                .rev()
                                .find(|i| matches!(&i.kind, Kind::Copy { sources, .. } if sources.iter().any(|s| is_archive(s))))
                                .map_or(inst.line, |i| i.line);
                            self.hit("DL3010", copy_line);
                        }
                    }
                }
                _ => {}
            }
        }
        // DL3002: per stage, the last USER is root.
        let mut users: Vec<_> = last_user.into_values().filter(|(_, root)| *root).map(|(line, _)| line).collect();
        users.sort_unstable();
        for line in users {
            self.hit("DL3002", line);
        }
        // DL3009 only counts in the final stage or in stages that a later FROM builds on.
        let last_stage = file.stage_count().saturating_sub(1);
        for (line, stage) in apt_forgot {
            let alias = file.instructions.iter().filter(|i| i.stage == stage).find_map(|i| {
                if let Kind::From { alias, .. } = &i.kind {
                    alias.clone()
                } else {
                    None
                }
            });
            let reused = alias.is_some_and(|a| from_images.iter().any(|f| f.eq_ignore_ascii_case(&a)));
            if stage == last_stage || reused {
                self.hit("DL3009", line);
            }
        }
    }
}

fn stage_names(file: &Dockerfile) -> impl Iterator<Item = &str> {
    file.instructions.iter().filter_map(|i| {
        if let Kind::From { alias: Some(a), .. } = &i.kind {
            Some(a.as_str())
        } else {
            None
        }
    })
}

fn flag(flags: &[Flag], name: &str) -> Option<String> {
    flags.iter().find(|f| f.name == name).map(|f| f.value.clone().unwrap_or_default())
}

/// Splits `registry/name:tag@digest` into name, tag and digest.
pub fn split_image(image: &str) -> (&str, Option<&str>, Option<&str>) {
    let (rest, digest) = match image.split_once('@') {
        Some((r, d)) => (r, Some(d)),
        None => (image, None),
    };
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    match rest[last_slash..].rfind(':') {
        Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..]), digest),
        None => (rest, None, digest),
    }
}

/// The registry host of an image name (`docker.io` when none is given).
pub fn registry_of(name: &str) -> String {
    match name.split_once('/') {
        Some((first, _)) if first.contains('.') || first.contains(':') || first == "localhost" => first.to_string(),
        _ => "docker.io".to_string(),
    }
}

fn registry_matches(trusted: &str, registry: &str) -> bool {
    let t = trusted.trim_end_matches('/');
    if let Some(suffix) = t.strip_prefix("*.") {
        return registry.ends_with(&format!(".{suffix}"));
    }
    t == registry || (t == "docker.io" && registry == "index.docker.io") || (t == "hub.docker.com" && registry == "docker.io")
}

/// A WORKDIR or COPY destination that does not depend on the current directory: `/x`, `C:\x`, `C:/x`
/// or a variable (quotes around it ignored).
fn is_absolute_or_variable(path: &str) -> bool {
    let p = path.trim_matches(|c| c == '"' || c == '\'');
    let b = p.as_bytes();
    let windows = b.len() > 2 && b[1] == b':' && (b[2] == b'\\' || b[2] == b'/');
    p.starts_with('/') || p.starts_with('$') || windows
}

fn valid_port(port: &str) -> bool {
    let p = port.split('/').next().unwrap_or_default();
    if p.contains('$') {
        return true;
    }
    let ok = |x: &str| x.parse::<u32>().is_ok_and(|n| n <= 65535);
    match p.split_once('-') {
        Some((a, b)) => ok(a) && ok(b),
        None => ok(p),
    }
}

fn valid_label_key(key: &str) -> bool {
    let first_ok = key.chars().next().is_some_and(|c| c.is_ascii_lowercase());
    let last_ok = key.chars().last().is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let chars_ok = key
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-');
    let reserved = ["com.docker.", "io.docker.", "org.dockerproject."]
        .iter()
        .any(|p| key.starts_with(p));
    first_ok && last_ok && chars_ok && !reserved && !key.contains("..") && !key.contains("--")
}

fn refers_to(value: &str, var: &str) -> bool {
    value.contains(&format!("${var}")) && {
        // `$VAR` must end at a non-identifier character.
        value.match_indices(&format!("${var}")).any(|(i, m)| {
            value[i + m.len()..]
                .chars()
                .next()
                .is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_'))
        })
    } || value.contains(&format!("${{{var}}}"))
        || value.contains(&format!("${{{var}:"))
}

fn is_url(s: &str) -> bool {
    let s = unquote(s);
    ["http://", "https://", "ftp://", "git@", "git://"].iter().any(|p| s.starts_with(p))
}

fn is_archive(s: &str) -> bool {
    let s = s.to_ascii_lowercase();
    [
        ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz", ".tar.zst", ".tar.lz", ".tb2", ".tbz", ".tz2", ".lz", ".lzma",
        ".tlz", ".xz", ".gz", ".bz2", ".zst", ".z", ".zip",
    ]
    .iter()
    .any(|e| s.ends_with(e))
}

/// `name-1.2` (a dash before a digit) or a local `.rpm` file.
fn rpm_version_fixed(package: &str) -> bool {
    package.ends_with(".rpm") || package.as_bytes().windows(2).any(|w| w[0] == b'-' && w[1].is_ascii_digit())
}

fn is_pip_install(c: &ShellCommand) -> bool {
    (c.name.starts_with("pip") && c.args.iter().any(|a| a == "install"))
        || (c.name.starts_with("python") && c.args.windows(3).any(|w| w[0] == "-m" && w[1] == "pip" && w[2] == "install"))
}

fn is_pip_wrapper(c: &ShellCommand) -> bool {
    ["pipx", "pipenv"]
        .iter()
        .any(|w| c.name.contains(w) || (c.name.starts_with("python") && c.args.windows(2).any(|x| x[0] == "-m" && x[1] == *w)))
}

fn pip_no_cache_env(script: &Script) -> bool {
    // `PIP_NO_CACHE_DIR=1 pip install ...` sets it for the command only, as an assignment prefix.
    script.text.match_indices("PIP_NO_CACHE_DIR=").any(|(i, m)| {
        let value = &script.text[i + m.len()..];
        TRUTHY.iter().any(|t| value.starts_with(t))
    })
}

fn pip_unpinned(c: &ShellCommand) -> bool {
    if !is_pip_install(c) {
        return false;
    }
    if c.has_any_flag(&["constraint", "c"]) {
        return false;
    }
    if c.args.iter().any(|a| a == "--requirement" || a == "-r" || a == ".") {
        return false;
    }
    let with_value = [
        "abi",
        "b",
        "build",
        "e",
        "editable",
        "extra-index-url",
        "f",
        "find-links",
        "i",
        "index-url",
        "implementation",
        "no-binary",
        "only-binary",
        "platform",
        "prefix",
        "progress-bar",
        "proxy",
        "python-version",
        "root",
        "src",
        "t",
        "target",
        "trusted-host",
        "upgrade-strategy",
    ];
    let args = c.args_no_flags_dropping(&with_value);
    let Some(at) = args.iter().position(|a| *a == "install") else {
        return false;
    };
    let packages = args[at..].iter().skip_while(|a| **a == "install");
    let vcs = ["git+", "git", "hg+", "svn", "bzr+"];
    packages.into_iter().any(|p| {
        let symbol = ["==", ">=", "<=", ">", "<", "!=", "~=", "==="].iter().any(|s| p.contains(s));
        let is_vcs = vcs.iter().any(|v| p.starts_with(v));
        let versioned_vcs = is_vcs && p.contains('@');
        let local = p.ends_with(".whl") || p.ends_with(".tar.gz");
        let path = !is_vcs && p.contains('/');
        !(symbol || versioned_vcs || local || path)
    })
}

fn npm_unpinned(c: &ShellCommand) -> bool {
    if c.name != "npm" || !c.args.first().is_some_and(|a| a == "install" || a == "i" || a == "add") {
        return false;
    }
    let packages: Vec<&str> = c.args_no_flags().into_iter().skip(1).collect();
    packages.iter().any(|p| {
        let git_or_path = p.starts_with("git") || p.contains("://") || p.starts_with('.') || p.starts_with('/') || p.ends_with(".tgz");
        let name_at = if let Some(scoped) = p.strip_prefix('@') {
            scoped.contains('@')
        } else {
            p.contains('@')
        };
        !(git_or_path || name_at)
    })
}

fn is_rfc3339(v: &str) -> bool {
    let b = v.as_bytes();
    b.len() >= 20
        && b[4] == b'-'
        && b[7] == b'-'
        && (b[10] == b'T' || b[10] == b't' || b[10] == b' ')
        && b[13] == b':'
        && b[16] == b':'
        && (v.ends_with('Z') || v.ends_with('z') || v[19..].contains('+') || v[19..].contains('-'))
        && [0..4, 5..7, 8..10, 11..13, 14..16, 17..19]
            .iter()
            .all(|r| v[r.clone()].bytes().all(|c| c.is_ascii_digit()))
}

fn is_spdx(v: &str) -> bool {
    // The common identifiers and expressions; a full list would come from the SPDX license list.
    !v.is_empty()
        && v.split([' ', '(', ')'])
            .filter(|w| !w.is_empty() && !["AND", "OR", "WITH"].contains(w))
            .all(|id| {
                id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '+')
                    && id.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            })
}

fn is_git_hash(v: &str) -> bool {
    (v.len() == 40 || v.len() == 7) && v.chars().all(|c| c.is_ascii_hexdigit())
}

fn is_semver(v: &str) -> bool {
    let core = v.split(['-', '+']).next().unwrap_or_default();
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()) && (p.len() == 1 || !p.starts_with('0')))
}

fn is_email(v: &str) -> bool {
    let Some((user, domain)) = v.split_once('@') else { return false };
    !user.is_empty() && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.') && !v.contains(char::is_whitespace)
}
