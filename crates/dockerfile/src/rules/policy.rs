//! The Secure Image Policy's own rules (`CP…`): what hadolint does not check and the policy asks for, and the
//! checks of Trivy's Dockerfile scanner (`DS-…`) that hadolint lacks.

use super::*;

impl Cx<'_> {
    /// The Secure Image Policy's own rules.
    pub(super) fn policy_rules(&mut self) {
        let file = self.file;
        let stages = file.stage_count();
        if stages == 0 {
            return;
        }
        let last = stages - 1;
        let final_from = file
            .instructions
            .iter()
            .filter(|i| matches!(i.kind, Kind::From { .. }))
            .nth(last)
            .map(|i| i.line);
        // CP001: a final stage without USER runs as root (an explicit root USER is DL3002). A stage built on an
        // earlier stage inherits its USER; `scratch` has none, so its processes run as uid 0.
        let chain = self.stage_chain(last);
        let any_user = chain.iter().any(|&s| file.stage(s).any(|i| matches!(i.kind, Kind::User(_))));
        if !any_user && let Some(line) = final_from {
            self.hit("CP001", line);
        }
        // CP011 (Trivy DS-0026): no HEALTHCHECK in the final stage or the stages it builds on.
        let any_healthcheck = chain
            .iter()
            .any(|&s| file.stage(s).any(|i| matches!(i.kind, Kind::Healthcheck { .. })));
        if !any_healthcheck && let Some(line) = final_from {
            self.hit("CP011", line);
        }
        let aliases: Vec<String> = stage_names(file).map(str::to_string).collect();
        let mut copied: Vec<(String, usize, usize)> = Vec::new();
        for (idx, inst) in file.instructions.iter().enumerate() {
            let line = inst.line;
            match &inst.kind {
                Kind::From { resolved, .. } => {
                    let image = resolved;
                    let (name, _, digest) = split_image(image);
                    let is_alias = aliases.iter().any(|a| a.eq_ignore_ascii_case(image));
                    if digest.is_none() && name != "scratch" && !is_alias && !image.is_empty() {
                        self.hit("CP002", line);
                    }
                }
                Kind::Add { flags, sources, .. } => {
                    if sources.iter().any(|s| is_url(s) && !s.starts_with("git@")) && flag(flags, "checksum").is_none() {
                        self.hit("CP003", line);
                    }
                    self.sensitive_sources(sources, line);
                    copied.extend(sources.iter().map(|s| (s.clone(), inst.stage, line)));
                }
                Kind::Copy { flags, sources, dest, .. } if flag(flags, "from").is_none() => {
                    self.sensitive_sources(sources, line);
                    copied.extend(sources.iter().map(|s| (join_dest(s, dest), inst.stage, line)));
                }
                Kind::Env(pairs) => self.secret_pairs(pairs.iter().map(|(k, v)| (k.as_str(), Some(v.as_str()))), "ENV", line),
                Kind::Arg(pairs) => self.secret_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_deref())), "ARG", line),
                // CP012 (DS-0004): SSH has no place in a container.
                Kind::Expose(ports) if ports.iter().any(|p| p.split('/').next() == Some("22")) => self.hit("CP012", line),
                // CP016 (DS-0030): a working directory on a system folder.
                Kind::Workdir(dir) if SYSTEM_DIRS.iter().any(|d| under(dir, d)) => self.hit_with("CP016", line, format!("`{dir}`")),
                _ => {}
            }
            let Some(script) = &self.scripts[idx] else { continue };
            // CP005: curl/wget piped into a shell.
            let piped = script.commands.iter().any(|c| {
                ["sh", "bash", "zsh", "ash", "dash", "python", "python3", "perl"].contains(&c.basename())
                    && c.position > 0
                    && script
                        .commands
                        .iter()
                        .any(|d| d.pipeline == c.pipeline && d.position < c.position && (d.name == "curl" || d.name == "wget"))
            });
            if piped {
                self.hit("CP005", line);
            }
            self.package_manager_rules(script, line);
            // CP008: build tools in the final stage of a single-stage build.
            if inst.stage == last && stages == 1 {
                let installs_tools = script.commands.iter().any(|c| {
                    let installing = c.has_args("apt-get", &["install"])
                        || c.has_args("apk", &["add"])
                        || c.has_args("yum", &["install"])
                        || c.has_args("dnf", &["install"]);
                    installing
                        && c.args
                            .iter()
                            .any(|a| BUILD_TOOLS.contains(&a.split(['=', ':']).next().unwrap_or_default()))
                });
                let compiles = script.commands.iter().any(|c| {
                    (c.name == "go" && c.args.first().is_some_and(|a| a == "build"))
                        || (c.name == "cargo" && c.args.first().is_some_and(|a| a == "build"))
                        || (c.name == "mvn" && c.args.iter().any(|a| a == "package" || a == "install"))
                        || (c.name == "gradle" || c.name == "./gradlew") && c.args.iter().any(|a| a == "build")
                });
                if installs_tools || compiles {
                    self.hit("CP008", line);
                }
            }
            // CP009: rm of a file that an earlier COPY/ADD put in a layer of this stage.
            for c in script.commands.iter().filter(|c| c.name == "rm") {
                for target in c.args_no_flags() {
                    if let Some((src, _, copy_line)) = copied
                        .iter()
                        .find(|(p, stage, _)| *stage == inst.stage && sensitive_name(p) && same_file(p, target))
                    {
                        self.hit_with("CP009", line, format!("`{src}` was added at line {copy_line}"));
                    }
                }
            }
        }
        for &line in &file.empty_continuations {
            self.hit("CP010", line);
        }
        if self.input.has_dockerignore == Some(false) {
            self.hit("CP006", 1);
        }
    }

    /// The final stage and the earlier stages it builds on (`FROM build AS final`), nearest first.
    fn stage_chain(&self, stage: usize) -> Vec<usize> {
        let file = self.file;
        let froms: Vec<(usize, &str, Option<&str>)> = file
            .instructions
            .iter()
            .filter_map(|i| match &i.kind {
                Kind::From { image, alias, .. } => Some((i.stage, image.as_str(), alias.as_deref())),
                _ => None,
            })
            .collect();
        let mut chain = vec![stage];
        let mut current = stage;
        // Each step goes to an earlier stage, so this ends; the bound guards a malformed file all the same.
        while chain.len() <= froms.len() {
            let Some(&(_, image, _)) = froms.iter().find(|(s, _, _)| *s == current) else {
                break;
            };
            let parent = froms
                .iter()
                .find(|(s, _, alias)| *s < current && alias.is_some_and(|a| a.eq_ignore_ascii_case(image)));
            match parent {
                Some(&(s, _, _)) => {
                    chain.push(s);
                    current = s;
                }
                None => break,
            }
        }
        chain
    }

    /// Package-manager checks Trivy has and hadolint lacks, on one RUN.
    fn package_manager_rules(&mut self, script: &Script, line: usize) {
        let cmds = &script.commands;
        let is = |c: &ShellCommand, names: &[&str], sub: &str| names.contains(&c.basename()) && c.args.iter().any(|a| a == sub);
        // CP013 (DS-0017): an index update alone in its RUN: the cached layer keeps a stale index for later installs.
        let updates = cmds
            .iter()
            .any(|c| is(c, &["apt-get", "apt"], "update") || is(c, &["apk"], "update"));
        let installs = cmds.iter().any(|c| {
            is(c, &["apt-get", "apt"], "install")
                || is(c, &["apt-get", "apt"], "upgrade")
                || is(c, &["apt-get", "apt"], "dist-upgrade")
                || is(c, &["apk"], "add")
                || is(c, &["apk"], "upgrade")
        });
        if updates && !installs {
            self.hit("CP013", line);
        }
        // CP014 (DS-0024): dist-upgrade swaps the base image's release under it.
        if cmds
            .iter()
            .any(|c| is(c, &["apt-get", "apt"], "dist-upgrade") || is(c, &["apt-get", "apt"], "full-upgrade"))
        {
            self.hit("CP014", line);
        }
        // CP015 (DS-0027): microdnf installs without `microdnf clean all` keep the package cache in the layer.
        let microdnf_installs = cmds.iter().any(|c| is(c, &["microdnf"], "install"));
        let microdnf_cleans = cmds
            .iter()
            .any(|c| c.basename() == "microdnf" && c.args.iter().any(|a| a == "clean") && c.args.iter().any(|a| a == "all"));
        if microdnf_installs && !microdnf_cleans {
            self.hit("CP015", line);
        }
    }

    fn sensitive_sources(&mut self, sources: &[String], line: usize) {
        for s in sources {
            if !is_url(s) && sensitive_name(s) {
                self.hit_with("CP007", line, format!("`{s}`"));
            }
        }
    }

    fn secret_pairs<'b>(&mut self, pairs: impl Iterator<Item = (&'b str, Option<&'b str>)>, keyword: &str, line: usize) {
        for (key, value) in pairs {
            // `ARG GITHUB_TOKEN` takes its value from `--build-arg`, and every later RUN records it in the image
            // history; `ENV API_KEY=${API_KEY}` copies it into the image config for good.
            let takes_build_value = match value {
                None => keyword == "ARG",
                Some(v) => keyword == "ENV" && v.starts_with('$'),
            };
            if takes_build_value && secret_name(key) {
                let why = if keyword == "ARG" {
                    "its --build-arg value is recorded in the image history"
                } else {
                    "the build's value is stored in the image config"
                };
                self.hit_with("CP004", line, format!("{keyword} {key}: {why}"));
                continue;
            }
            let Some(value) = value else { continue };
            if value.is_empty() || value.starts_with('$') {
                continue;
            }
            let by_name = secret_name(key) && !value.contains("${") && !looks_like_placeholder(value);
            let by_value = self
                .input
                .secrets
                .is_some_and(|s| !s.scan_text(keyword, &format!("{key}={value}")).is_empty());
            if by_name || by_value {
                self.hit_with("CP004", line, format!("{keyword} {key}"));
            }
        }
    }
}

const BUILD_TOOLS: &[&str] = &[
    "gcc",
    "g++",
    "make",
    "build-essential",
    "build-base",
    "clang",
    "golang",
    "golang-go",
    "cargo",
    "rustc",
    "maven",
    "gradle",
    "gcc-c++",
    "musl-dev",
    "libc6-dev",
    "cmake",
];

fn secret_name(key: &str) -> bool {
    let k = key.to_ascii_uppercase();
    let words = [
        "PASSWORD",
        "PASSWD",
        "SECRET",
        "TOKEN",
        "API_KEY",
        "APIKEY",
        "PRIVATE_KEY",
        "ACCESS_KEY",
        "CREDENTIAL",
        "AUTH_KEY",
    ];
    let benign = [
        "_FILE",
        "_PATH",
        "_DIR",
        "_URL",
        "_HOST",
        "_USER",
        "_NAME",
        "_LENGTH",
        "_TYPE",
        "_ENDPOINT",
    ];
    words.iter().any(|w| k.contains(w)) && !benign.iter().any(|b| k.ends_with(b))
}

fn looks_like_placeholder(value: &str) -> bool {
    let v = value.to_ascii_lowercase();
    [
        "changeme",
        "change-me",
        "<",
        "xxx",
        "placeholder",
        "example",
        "dummy",
        "none",
        "null",
        "false",
        "true",
    ]
    .iter()
    .any(|p| v.contains(p))
        || value.len() < 4
}

fn sensitive_name(path: &str) -> bool {
    let p = unquote(path);
    let base = p.trim_end_matches('/').rsplit('/').next().unwrap_or_default().to_ascii_lowercase();
    let exact = [
        ".env",
        "id_rsa",
        "id_dsa",
        "id_ecdsa",
        "id_ed25519",
        ".npmrc",
        ".pypirc",
        ".netrc",
        ".git",
        ".aws",
        ".ssh",
        ".docker",
        "credentials",
        "credentials.json",
        ".git-credentials",
        ".htpasswd",
        "secrets.yaml",
        "secrets.yml",
        "secret.yaml",
    ];
    exact.contains(&base.as_str())
        || base.starts_with(".env.") && !base.ends_with(".example") && !base.ends_with(".sample") && !base.ends_with(".template")
        || [".pem", ".key", ".p12", ".pfx", ".jks", ".keystore"]
            .iter()
            .any(|e| base.ends_with(e))
}

fn join_dest(src: &str, dest: &str) -> String {
    let base = src.trim_end_matches('/').rsplit('/').next().unwrap_or(src);
    if dest.ends_with('/') {
        format!("{dest}{base}")
    } else {
        dest.to_string()
    }
}

fn same_file(copied: &str, removed: &str) -> bool {
    let a = copied.trim_end_matches('/');
    let b = removed.trim_end_matches('/');
    a == b || a.rsplit('/').next() == b.rsplit('/').next() && (b.starts_with('/') == a.starts_with('/') || !b.contains('/'))
}

/// Folders a working directory must not be (Trivy's list for DS-0030).
const SYSTEM_DIRS: &[&str] = &["/proc", "/boot", "/dev", "/initrd", "/lost+found", "/sys"];

/// Whether `dir` is `system` or below it.
fn under(dir: &str, system: &str) -> bool {
    let dir = dir.trim_end_matches('/');
    dir == system || dir.strip_prefix(system).is_some_and(|rest| rest.starts_with('/'))
}
