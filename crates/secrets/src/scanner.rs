//! The scanner: one keyword pass picks the rules whose regexes run, chunk by chunk.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};
use globset::{Glob, GlobSet, GlobSetBuilder};
use regex::bytes::{Regex, RegexBuilder};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::config::{AllowRule, ExcludeBlock, SecretConfig};
use crate::rules::{BUILTIN, BUILTIN_ALLOWED_PATHS, BUILTIN_ALLOWED_VALUES, PLACEHOLDERS, RuleSpec, Severity, names_rule};

/// Bytes scanned per window; windows overlap so a secret on a border is whole in one of them.
const CHUNK: usize = 1 << 20;
/// Longer than any single secret we look for (private keys included).
const OVERLAP: usize = 16 << 10;
/// Characters of a secret kept visible when masking.
const VISIBLE: usize = 4;

/// One secret found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Finding {
    /// Rule id.
    pub rule_id: String,
    /// Vendor or family.
    pub category: String,
    /// What was found.
    pub title: String,
    /// How bad.
    pub severity: Severity,
    /// Where (a path inside the image or tree).
    pub path: String,
    /// 1-based line of the secret's first character.
    pub line: usize,
    /// The secret with all but its first characters replaced by `*`.
    pub masked: String,
    /// The line, trimmed to 120 characters, with the secret masked.
    pub context: String,
    /// Stable id of (rule, path, secret), usable in exclusions.
    pub fingerprint: String,
}

struct Rule {
    id: String,
    category: String,
    title: String,
    severity: Severity,
    keywords: Vec<String>,
    regex: Regex,
    /// Capture groups holding the secret; the first that took part in a match is the secret.
    secret: Vec<usize>,
    path: Option<Regex>,
    allow: Vec<Allow>,
    exclude: Vec<Regex>,
    entropy: Option<f64>,
    /// For built-in rules with a bounded match length: the regex runs only within this many bytes of a keyword
    /// hit (every match holds one of its keywords). `None`: anywhere in a window holding a keyword, as Trivy
    /// runs custom rules.
    reach: Option<usize>,
}

/// A compiled allow rule: a match is dropped when its text or its file's path matches.
struct Allow {
    regex: Option<Regex>,
    path: Option<Regex>,
}

impl Allow {
    fn compile(a: &AllowRule) -> Result<Allow, String> {
        let name = a.id.as_deref().or(a.description.as_deref()).unwrap_or("").to_string();
        let re = |p: &Option<String>| {
            p.as_deref()
                .map(Regex::new)
                .transpose()
                .map_err(|e| format!("allow rule {name:?}: {e}"))
        };
        Ok(Allow {
            regex: re(&a.regex)?,
            path: re(&a.path)?,
        })
    }

    fn allows(&self, path: &str, text: &[u8]) -> bool {
        self.path.as_ref().is_some_and(|p| p.is_match(path.as_bytes())) || self.regex.as_ref().is_some_and(|r| r.is_match(text))
    }
}

fn compile_blocks(b: &Option<ExcludeBlock>) -> Result<Vec<Regex>, String> {
    b.iter()
        .flat_map(|b| b.regexes.iter())
        .map(|r| Regex::new(r).map_err(|e| format!("exclude-block {r:?}: {e}")))
        .collect()
}

/// A compiled rule set with its keyword prefilter.
pub struct Scanner {
    rules: Vec<Rule>,
    keywords: AhoCorasick,
    keyword_rules: Vec<Vec<usize>>,
    always: Vec<usize>,
    allowed_paths: GlobSet,
    allow: Vec<Allow>,
    exclude: Vec<Regex>,
    max_file_bytes: u64,
}

/// What a scanner was asked to skip.
#[derive(Clone, Debug, Default)]
pub struct ScanOptions {
    /// Extra path globs where findings are not reported.
    pub skip: Vec<String>,
    /// Rule ids not to run.
    pub disable: Vec<String>,
    /// Files larger than this are not read (default [`crate::MAX_FILE_BYTES`]).
    pub max_file_bytes: Option<u64>,
}

impl Scanner {
    /// The built-in rules.
    pub fn builtin() -> Scanner {
        Scanner::new(BUILTIN, &ScanOptions::default()).expect("built-in rules compile")
    }

    /// Rule and allow-rule ids that `config` and `options` name but no rule has (a typo disables nothing, and
    /// must be said): not a built-in rule of `specs`, a former id, or a rule of the file itself.
    pub fn unknown_ids(specs: &[RuleSpec], config: &SecretConfig, options: &ScanOptions) -> Vec<String> {
        let known = |name: &str| specs.iter().any(|s| names_rule(name, s.id)) || config.rules.iter().any(|r| r.id == name);
        let mut unknown: Vec<String> = options
            .disable
            .iter()
            .chain(&config.disable_rules)
            .chain(config.enable_builtin_rules.iter().flatten())
            .filter(|n| !known(n))
            .cloned()
            .collect();
        unknown.extend(
            config
                .disable_allow_rules
                .iter()
                .filter(|n| !BUILTIN_ALLOWED_PATHS.iter().any(|(name, _)| name == n))
                .cloned(),
        );
        unknown.sort();
        unknown.dedup();
        unknown
    }

    /// Compiles `specs`, minus disabled ones, with the built-in allowed paths plus `options.skip`.
    pub fn new(specs: &[RuleSpec], options: &ScanOptions) -> Result<Scanner, String> {
        Scanner::from_config(specs, &SecretConfig::default(), options)
    }

    /// Compiles the built-in `specs` and a rules file (Trivy's `trivy-secret.yaml` format).
    pub fn from_config(specs: &[RuleSpec], config: &SecretConfig, options: &ScanOptions) -> Result<Scanner, String> {
        let disabled = |id: &str| options.disable.iter().chain(&config.disable_rules).any(|d| names_rule(d, id));
        let enabled = |id: &str| {
            config
                .enable_builtin_rules
                .as_ref()
                .is_none_or(|only| only.iter().any(|o| names_rule(o, id)))
        };
        let mut rules = Vec::new();
        for spec in specs.iter().filter(|s| enabled(s.id) && !disabled(s.id)) {
            // Secrets are ASCII: byte-wise classes (`[^\n]`, `\s`, `(?i)`) compile to small automata, fast to
            // build at every start and to run.
            let regex = RegexBuilder::new(spec.regex)
                .unicode(false)
                .build()
                .map_err(|e| format!("rule {}: {e}", spec.id))?;
            // A built-in rule with two alternatives names the second one's group `secret_…`.
            let secret = group_indices(&regex, |n| n == "secret" || n.starts_with("secret_"));
            rules.push(Rule {
                id: spec.id.into(),
                category: spec.category.into(),
                title: spec.title.into(),
                severity: spec.severity,
                keywords: spec.keywords.iter().map(|k| k.to_string()).collect(),
                regex,
                secret,
                path: spec
                    .path
                    .map(|p| RegexBuilder::new(p).unicode(false).build())
                    .transpose()
                    .map_err(|e| format!("rule {}: path: {e}", spec.id))?,
                allow: Vec::new(),
                exclude: Vec::new(),
                entropy: spec.entropy,
                reach: if spec.keywords.is_empty() {
                    None
                } else {
                    max_match_len(spec.regex)
                },
            });
        }
        for c in config.rules.iter().filter(|r| !disabled(&r.id)) {
            let regex = Regex::new(&c.regex).map_err(|e| format!("rule {}: {e}", c.id))?;
            let group = c.secret_group_name.as_deref().unwrap_or("secret");
            let secret = group_indices(&regex, |n| n == group);
            rules.push(Rule {
                id: c.id.clone(),
                category: c.category.clone(),
                title: if c.title.is_empty() { c.id.clone() } else { c.title.clone() },
                severity: c.severity()?,
                keywords: c.keywords.clone(),
                regex,
                secret,
                path: c
                    .path
                    .as_deref()
                    .map(Regex::new)
                    .transpose()
                    .map_err(|e| format!("rule {}: path: {e}", c.id))?,
                allow: c.allow_rules.iter().map(Allow::compile).collect::<Result<_, _>>()?,
                exclude: compile_blocks(&c.exclude_block)?,
                entropy: c.entropy,
                reach: None,
            });
        }
        let mut words: Vec<String> = Vec::new();
        let mut keyword_rules: Vec<Vec<usize>> = Vec::new();
        let mut always = Vec::new();
        for (i, r) in rules.iter().enumerate() {
            if r.keywords.is_empty() {
                always.push(i);
            }
            for k in &r.keywords {
                let k = k.to_ascii_lowercase();
                match words.iter().position(|w| *w == k) {
                    Some(p) => keyword_rules[p].push(i),
                    None => {
                        words.push(k);
                        keyword_rules.push(vec![i]);
                    }
                }
            }
        }
        // A full DFA: a few hundred short keywords make a small one, and it is the fastest overlapping search.
        let keywords = AhoCorasickBuilder::new()
            .kind(Some(AhoCorasickKind::DFA))
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .build(&words)
            .map_err(|e| e.to_string())?;
        let mut globs = GlobSetBuilder::new();
        let builtin = BUILTIN_ALLOWED_PATHS
            .iter()
            .filter(|(name, _)| !config.disable_allow_rules.iter().any(|d| d == name))
            .flat_map(|(_, globs)| globs.iter().map(|g| g.to_string()));
        for g in builtin.chain(options.skip.iter().cloned()) {
            globs.add(Glob::new(&g).map_err(|e| format!("path glob {g:?}: {e}"))?);
        }
        let allowed_paths = globs.build().map_err(|e| e.to_string())?;
        let allow = config.allow_rules.iter().map(Allow::compile).collect::<Result<_, _>>()?;
        Ok(Scanner {
            rules,
            keywords,
            keyword_rules,
            always,
            allowed_paths,
            allow,
            exclude: compile_blocks(&config.exclude_block)?,
            max_file_bytes: options.max_file_bytes.unwrap_or(crate::MAX_FILE_BYTES),
        })
    }

    /// The same rules searched over whole windows, never only near keyword hits: the reference that the
    /// region search must agree with (tests use it; it is slower and finds the same).
    #[doc(hidden)]
    pub fn searching_whole_windows(mut self) -> Scanner {
        for r in &mut self.rules {
            r.reach = None;
        }
        self
    }

    /// Number of rules.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// True without rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The largest file this scanner reads.
    pub fn max_file_bytes(&self) -> u64 {
        self.max_file_bytes
    }

    /// True when findings under `path` are not reported (tests, docs, skipped globs).
    pub fn path_allowed(&self, path: &str) -> bool {
        self.allowed_paths.is_match(path.trim_start_matches('/'))
    }

    /// Whether the file at `path` is worth reading: not under an allowed path, not of a kind whose bytes are
    /// compressed or media (`.gz`, `.png`, `.woff2`…), where no printable secret survives, and not a shared
    /// library (see [`Scanner::scan_content`]). Decided before reading, so a directory scan does not even open
    /// those files.
    pub fn reads(&self, path: &str) -> bool {
        !self.path_allowed(path) && !has_opaque_extension(path) && !is_shared_library(path)
    }

    /// Scans `bytes` (the content of `path`), window by window.
    pub fn scan(&self, path: &str, bytes: &[u8]) -> Vec<Finding> {
        if self.path_allowed(path) {
            return Vec::new();
        }
        // First every hit, then the findings: a context line must mask every secret on it.
        let mut hits: Vec<(usize, usize, usize, usize)> = Vec::new();
        let here = path.as_bytes();
        let runs_here = |rule: &Rule| {
            rule.path.as_ref().is_none_or(|p| p.is_match(here))
                && !rule.allow.iter().any(|a| a.path.as_ref().is_some_and(|p| p.is_match(here)))
        };
        let mut start = 0;
        let mut line_at_start = 1;
        loop {
            let end = (start + CHUNK + OVERLAP).min(bytes.len());
            let window = &bytes[start..end];
            // Per rule: search the whole window, or (rules with a reach) only the regions around its keywords' hits.
            let mut whole_window = vec![false; self.rules.len()];
            let mut regions: Vec<Vec<(usize, usize)>> = vec![Vec::new(); self.rules.len()];
            for &i in &self.always {
                whole_window[i] = true;
            }
            for m in self.keywords.find_overlapping_iter(window) {
                for &i in &self.keyword_rules[m.pattern().as_usize()] {
                    match self.rules[i].reach {
                        None => whole_window[i] = true,
                        Some(reach) => add_region(
                            &mut regions[i],
                            m.start().saturating_sub(reach),
                            (m.end() + reach).min(window.len()),
                        ),
                    }
                }
            }
            // `base`: where `haystack` starts in `window`.
            let mut search = |i: usize, base: usize, haystack: &[u8]| {
                let rule = &self.rules[i];
                for caps in rule.regex.captures_iter(haystack) {
                    let whole = caps.get(0).expect("group 0 always matches");
                    let secret = rule.secret.iter().find_map(|&g| caps.get(g)).unwrap_or(whole);
                    let (s, e) = (start + base + secret.start(), start + base + secret.end());
                    let (ws, we) = (start + base + whole.start(), start + base + whole.end());
                    if hits.iter().any(|h| h.0 == i && h.1 == s) || !self.reportable(rule, path, bytes, (ws, we), (s, e)) {
                        continue;
                    }
                    hits.push((i, s, e, line_at_start + memchr_count(&window[..base + secret.start()])));
                }
            };
            for (i, rule) in self.rules.iter().enumerate() {
                if (!whole_window[i] && regions[i].is_empty()) || !runs_here(rule) {
                    continue;
                }
                if whole_window[i] {
                    search(i, 0, window);
                } else {
                    for &(a, b) in &regions[i] {
                        search(i, a, &window[a..b]);
                    }
                }
            }
            if end == bytes.len() {
                break;
            }
            line_at_start += memchr_count(&bytes[start..start + CHUNK]);
            start += CHUNK;
        }
        // Generic rules only report what no specific rule found: `token: ghp_…` is a GitHub token, once.
        // Two specific rules on the very same text (an `npm_` token in an `.npmrc`) report it once, under the
        // rule listed first.
        hits.sort_by_key(|h| (h.1, h.2, h.0));
        hits.dedup_by_key(|h| (h.1, h.2));
        let generic = |i: usize| self.rules[i].id.starts_with(GENERIC_PREFIX);
        let specific: Vec<(usize, usize)> = hits.iter().filter(|h| !generic(h.0)).map(|h| (h.1, h.2)).collect();
        hits.retain(|h| !generic(h.0) || !specific.iter().any(|&(s, e)| h.1 < e && s < h.2));
        let ranges: Vec<(usize, usize)> = hits.iter().map(|h| (h.1, h.2)).collect();
        let mut out: Vec<Finding> = hits
            .iter()
            .map(|&(i, s, e, line)| finding(&self.rules[i], path, bytes, s, e, line, &ranges))
            .collect();
        out.sort_by(|a, b| (a.line, &a.rule_id).cmp(&(b.line, &b.rule_id)));
        out
    }

    /// Whether a match (`whole`, with the secret at `secret`, both as offsets in `bytes`) is reported: not an
    /// allowed value, placeholder or low-entropy string, not allowed inline, by an allow rule or an exclude block.
    fn reportable(&self, rule: &Rule, path: &str, bytes: &[u8], whole: (usize, usize), secret: (usize, usize)) -> bool {
        let (ws, we) = whole;
        let (s, e) = secret;
        let value = String::from_utf8_lossy(&bytes[s..e]);
        !(BUILTIN_ALLOWED_VALUES.iter().any(|a| value.contains(a))
            || is_placeholder(&value)
            || rule.entropy.is_some_and(|least| shannon_entropy(&bytes[s..e]) < least)
            || (rule.id.starts_with(GENERIC_PREFIX) && !generic_value_plausible(bytes, ws, s, e))
            || line_allows(bytes, s)
            || self.allow.iter().chain(&rule.allow).any(|a| a.allows(path, &bytes[ws..we]))
            || self
                .exclude
                .iter()
                .chain(&rule.exclude)
                .any(|b| b.find_iter(bytes).any(|m| m.start() <= ws && we <= m.end())))
    }

    /// Scans a file's content: text as is; a binary (a NUL byte near the start) through its printable strings,
    /// so a key compiled into an executable is still found. Findings in a binary have line 0. Shared libraries
    /// (`*.so`, `*.so.N`) are skipped: crypto libraries carry their self-test keys (libgnutls holds ten), and a
    /// project's own secret lives in its executable or its files.
    pub fn scan_content(&self, path: &str, bytes: &[u8]) -> Vec<Finding> {
        if !is_binary(bytes) {
            return self.scan(path, bytes);
        }
        if is_shared_library(path) || is_compressed(bytes) {
            return Vec::new();
        }
        let strings = printable_strings(bytes);
        let mut found = self.scan(path, &strings);
        // Generic `name = value` rules misread the packed string tables of compiled programs (Go's especially);
        // in binaries only specific token formats count.
        found.retain(|f| !f.rule_id.starts_with(GENERIC_PREFIX));
        for f in &mut found {
            f.line = 0;
        }
        found
    }

    /// `text` with every secret the rules find in it masked, for printing build commands and the like.
    pub fn redact(&self, text: &str) -> String {
        let bytes = text.as_bytes();
        let mut spans: Vec<(usize, usize)> = Vec::new();
        for rule in &self.rules {
            for caps in rule.regex.captures_iter(bytes) {
                let m = rule
                    .secret
                    .iter()
                    .find_map(|&g| caps.get(g))
                    .or_else(|| caps.get(0))
                    .expect("group 0 always matches");
                spans.push((m.start(), m.end()));
            }
        }
        spans.sort_unstable();
        let mut out = String::with_capacity(text.len());
        let mut at = 0;
        for (a, b) in spans {
            if a < at {
                continue;
            }
            out.push_str(&text[at..a]);
            out.push_str(&mask(&text[a..b]));
            at = b;
        }
        out.push_str(&text[at..]);
        out
    }

    /// Scans a piece of text that is not a file (an ENV entry, a history command) named `origin`.
    pub fn scan_text(&self, origin: &str, text: &str) -> Vec<Finding> {
        let mut found = self.scan("", text.as_bytes());
        for f in &mut found {
            f.path = origin.to_string();
        }
        found
    }
}

/// Adds `a..b` to `regions` (sorted, disjoint), merging it with the last region when they touch. Keyword hits
/// arrive in order of their end, so a new region never lies wholly before the last one.
fn add_region(regions: &mut Vec<(usize, usize)>, a: usize, b: usize) {
    match regions.last_mut() {
        Some(last) if a <= last.1 => *last = (last.0.min(a), last.1.max(b)),
        _ => regions.push((a, b)),
    }
}

/// The most bytes a match of `pattern` can span, when bounded: a match holding a keyword hit then lies within
/// that distance of it.
fn max_match_len(pattern: &str) -> Option<usize> {
    let hir = regex_syntax::ParserBuilder::new()
        .unicode(false)
        .utf8(false)
        .build()
        .parse(pattern)
        .ok()?;
    hir.properties().maximum_len()
}

/// Values that stand for a credential in docs and templates (`password`, `{password}`, `"CHANGEME"`), and
/// template or shell substitutions (`$DB_PASSWORD`, `{self.password}`, `%(password)s`).
fn is_placeholder(value: &str) -> bool {
    let v = value.trim_matches(|c: char| "\"'".contains(c));
    if v.starts_with('$') || (v.starts_with('{') && v.ends_with('}')) || v.starts_with("%(") {
        return true;
    }
    let bare = value
        .trim_matches(|c: char| c.is_whitespace() || "\"'{}<>[]()$*%".contains(c))
        .to_ascii_lowercase();
    PLACEHOLDERS.contains(&bare.as_str())
}

/// Indices of the capture groups whose names satisfy `wanted`.
fn group_indices(regex: &Regex, wanted: impl Fn(&str) -> bool) -> Vec<usize> {
    regex
        .capture_names()
        .enumerate()
        .filter(|(_, n)| n.is_some_and(&wanted))
        .map(|(i, _)| i)
        .collect()
}

fn memchr_count(b: &[u8]) -> usize {
    b.iter().filter(|&&c| c == b'\n').count()
}

/// Masks all but the first few characters.
pub fn mask(secret: &str) -> String {
    let keep: String = secret.chars().take(VISIBLE.min(secret.chars().count() / 3)).collect();
    let hidden = secret.chars().count() - keep.chars().count();
    format!("{keep}{}", "*".repeat(hidden.min(16)))
}

fn finding(spec: &Rule, path: &str, bytes: &[u8], s: usize, e: usize, line: usize, secrets: &[(usize, usize)]) -> Finding {
    let value = String::from_utf8_lossy(&bytes[s..e]).into_owned();
    let line_start = bytes[..s].iter().rposition(|&c| c == b'\n').map_or(0, |p| p + 1);
    let line_end = bytes[e..].iter().position(|&c| c == b'\n').map_or(bytes.len(), |p| e + p);
    // Mask every secret overlapping this line, not only this finding's.
    let mut context = String::new();
    let mut at = line_start;
    let mut on_line: Vec<(usize, usize)> = secrets.iter().copied().filter(|&(a, b)| a < line_end && b > line_start).collect();
    on_line.sort_unstable();
    for (a, b) in on_line {
        let (a, b) = (a.max(at), b.min(line_end));
        if a >= b {
            continue;
        }
        context.push_str(&String::from_utf8_lossy(&bytes[at..a]));
        context.push_str(&mask(&String::from_utf8_lossy(&bytes[a..b])));
        at = b;
    }
    context.push_str(&String::from_utf8_lossy(&bytes[at..line_end]));
    let context: String = context.trim_start().chars().take(120).collect();
    let digest = Sha256::new()
        .chain_update(&spec.id)
        .chain_update([0])
        .chain_update(path)
        .chain_update([0])
        .chain_update(&value)
        .finalize();
    Finding {
        rule_id: spec.id.clone(),
        category: spec.category.clone(),
        title: spec.title.clone(),
        severity: spec.severity,
        path: path.to_string(),
        line,
        masked: mask(&value),
        context,
        fingerprint: hex::encode(&digest[..8]),
    }
}

/// Rules whose id starts with this report only matches that no other rule reports.
pub const GENERIC_PREFIX: &str = "generic-";

/// Comments that allow a secret on their line: customs', detect-secrets' and gitleaks' spellings, so files
/// already annotated for those tools keep working.
pub const INLINE_ALLOW: [&str; 3] = ["customs:allow", "pragma: allowlist secret", "gitleaks:allow"];

/// Names that hold digests rather than credentials (`hashed_secret`, `password_sha256`, `integrity`).
const NOT_A_CREDENTIAL: [&str; 5] = ["hash", "checksum", "digest", "integrity", "sha"];

/// For generic rules: a credential mixes letters and digits (placeholders like `ThisTokenIsNotSoSecret` do not),
/// its name is not a digest's, and it is a literal rather than code: not called or indexed (`token = f(x)`),
/// and, when unquoted, neither a code reference (`token_uri=oauth2client.GOOGLE_TOKEN_URI`, `x = snake_case_name`)
/// nor a lower-case path
/// (`--token-secret-version=projects/p/secrets/s`).
fn generic_value_plausible(bytes: &[u8], match_start: usize, s: usize, e: usize) -> bool {
    let value = &bytes[s..e];
    // The whole identifier: what the regex matched before the value, plus the name characters before it.
    let ident = |b: &u8| b.is_ascii_alphanumeric() || b"_.-".contains(b);
    let from = match_start
        - bytes[match_start.saturating_sub(40)..match_start]
            .iter()
            .rev()
            .take_while(|b| ident(b))
            .count();
    let name = bytes[from..s].to_ascii_lowercase();
    // `arn:aws:secretsmanager:…:secret:name-123456` names a secret, it does not hold one.
    let in_arn = from > 0 && bytes[from - 1] == b':';
    let quoted = s > 0 && matches!(bytes[s - 1], b'"' | b'\'' | b'`');
    // `a.b.c`, or snake_case / SCREAMING_CASE of short words; `packagist_out_d63BD7…` is neither.
    let one_case = !value.iter().any(u8::is_ascii_lowercase) || !value.iter().any(u8::is_ascii_uppercase);
    let code_reference = !quoted
        && (value[0].is_ascii_alphabetic() || value[0] == b'_')
        && value.iter().all(|b| b.is_ascii_alphanumeric() || b"_.".contains(b))
        && (value.contains(&b'.') || (value.contains(&b'_') && one_case && value.split(|&b| b == b'_').all(|w| w.len() <= 12)));
    let lower_path = !quoted
        && value.iter().filter(|&&b| b == b'/').count() >= 2
        && value
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"/-_.".contains(b));
    value.iter().any(u8::is_ascii_digit)
        && value.iter().any(u8::is_ascii_alphabetic)
        && !NOT_A_CREDENTIAL.iter().any(|w| name.windows(w.len()).any(|x| x == w.as_bytes()))
        && !matches!(bytes.get(e), Some(b'(' | b'['))
        && !code_reference
        && !lower_path
        && !in_arn
        && !camel_case_name(value)
}

/// `V1LocalObjectReference`, `MyServiceAccountName`: three or more capitalised words of 3+ lower-case letters,
/// at most one shorter word, nothing but letters and digits. Random keys have many short "words".
fn camel_case_name(value: &[u8]) -> bool {
    if !value.iter().all(u8::is_ascii_alphanumeric) || !value[0].is_ascii_uppercase() {
        return false;
    }
    let (mut long, mut short) = (0, 0);
    // A word starts at each upper-case letter.
    for word in value.chunk_by(|_, b| !b.is_ascii_uppercase()) {
        match word.iter().filter(|b| b.is_ascii_lowercase()).count() {
            0..=2 => short += 1,
            _ => long += 1,
        }
    }
    long >= 3 && short <= 1
}

/// Whether the line holding byte `at` carries an inline allow comment.
fn line_allows(bytes: &[u8], at: usize) -> bool {
    let start = bytes[..at].iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let end = bytes[at..].iter().position(|&b| b == b'\n').map_or(bytes.len(), |i| at + i);
    let line = &bytes[start..end];
    INLINE_ALLOW
        .iter()
        .any(|marker| line.windows(marker.len()).any(|w| w == marker.as_bytes()))
}

/// Shannon entropy of `bytes` in bits per byte: 0 for `aaaa`, 4 for 16 distinct equally frequent bytes.
pub fn shannon_entropy(bytes: &[u8]) -> f64 {
    if bytes.is_empty() {
        return 0.0;
    }
    let mut counts = [0usize; 256];
    for &b in bytes {
        counts[b as usize] += 1;
    }
    let n = bytes.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| c as f64 / n)
        .map(|p| -p * p.log2())
        .sum()
}

/// Compressed streams (gzip, xz, zstd, bzip2, lz4): their bytes are entropy, so any printable run in them is
/// noise, never a secret someone wrote. `/usr/share` is mostly gzipped manuals and changelogs.
fn is_compressed(bytes: &[u8]) -> bool {
    const MAGIC: [&[u8]; 5] = [b"\x1f\x8b", b"\xfd7zXZ\0", b"\x28\xb5\x2f\xfd", b"BZh", b"\x04\x22\x4d\x18"];
    MAGIC.iter().any(|m| bytes.starts_with(m))
}

/// Extensions of compressed and media formats (the extensions Trivy's secret scanner skips are among them).
/// Archives that may store files uncompressed (`.zip`, `.jar`, `.tar`) are still read.
const OPAQUE_EXTENSIONS: &[&str] = &[
    "gz", "tgz", "xz", "txz", "zst", "bz2", "tbz2", "lz4", "lzma", "br", "7z", "deb", "rpm", "apk", "png", "jpg", "jpeg", "gif", "webp",
    "ico", "bmp", "tif", "tiff", "mp3", "mp4", "ogg", "wav", "flac", "webm", "avi", "mov", "woff", "woff2", "ttf", "otf", "eot", "pdf",
];

fn has_opaque_extension(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    name.rsplit_once('.')
        .is_some_and(|(stem, ext)| !stem.is_empty() && OPAQUE_EXTENSIONS.iter().any(|o| ext.eq_ignore_ascii_case(o)))
}

/// `libx.so`, `libx.so.1.2.3`.
fn is_shared_library(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    name.ends_with(".so")
        || name
            .split_once(".so.")
            .is_some_and(|(_, v)| v.bytes().all(|b| b.is_ascii_digit() || b == b'.'))
}

/// Runs of at least 16 printable ASCII bytes in `bytes`, one per line (what `strings -n 16` prints). Shorter
/// runs cannot hold a credential worth reporting and would only feed the keyword pass noise.
pub fn printable_strings(bytes: &[u8]) -> Vec<u8> {
    const MIN_RUN: usize = 16;
    let printable = |b: u8| (0x20..0x7f).contains(&b) || b == b'\t';
    let mut out = Vec::new();
    // Invariant: `i == 0` or `bytes[i - 1]` is not printable, so a run found from `i` starts where it seems to.
    let mut i = 0;
    while i + MIN_RUN <= bytes.len() {
        // Any run of MIN_RUN bytes starting in `i..` covers `probe`: when `probe` is not printable, skip past it.
        // Machine code and compressed data rarely hold long runs, so most steps skip MIN_RUN bytes at once.
        let probe = i + MIN_RUN - 1;
        if !printable(bytes[probe]) {
            i = probe + 1;
            continue;
        }
        let start = i + bytes[i..probe].iter().rposition(|&b| !printable(b)).map_or(0, |p| p + 1);
        let end = probe + bytes[probe..].iter().position(|&b| !printable(b)).unwrap_or(bytes.len() - probe);
        if end - start >= MIN_RUN {
            out.extend_from_slice(&bytes[start..end]);
            out.push(b'\n');
        }
        i = end + 1;
    }
    out
}

/// True for content that looks binary (a NUL byte near the start).
pub fn is_binary(bytes: &[u8]) -> bool {
    bytes.iter().take(8000).any(|&b| b == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entropy_generic_rule_and_inline_allows() {
        assert_eq!(shannon_entropy(b""), 0.0);
        assert_eq!(shannon_entropy(b"aaaa"), 0.0);
        assert!((shannon_entropy(b"0123456789abcdef") - 4.0).abs() < 1e-9);
        let s = Scanner::builtin();
        let ids = |text: &str| {
            s.scan("app/settings.py", text.as_bytes())
                .into_iter()
                .map(|f| f.rule_id)
                .collect::<Vec<_>>()
        };
        // Assembled so this file holds no credential-shaped literal.
        let random = format!("{}{}", "q8Zt3LmP0vXw7Rb", "N2cYk5Hs9JdE4uFa");
        assert_eq!(ids(&format!("API_KEY = \"{random}\"\n")), ["generic-credential"]);
        assert!(ids(&format!("API_KEY = \"{random}\"  # customs:allow\n")).is_empty());
        assert!(ids(&format!("api_key: {random} # pragma: allowlist secret\n")).is_empty());
        assert!(ids("password = \"aaaabbbbaaaabbbb11112222\"\n").is_empty(), "low entropy");
        // No digit: not a generic credential; but this one is Symfony's published default secret.
        assert_eq!(ids("secret: ThisTokenIsNotSoSecretChangeIt\n"), ["symfony-default-secret"]);
        assert!(
            ids("secret: ThisValueIsNotSoSecretChangeIt\n").is_empty(),
            "no digit: a placeholder"
        );
        assert!(
            ids(&format!("password_hash = \"{random}\"\n")).is_empty(),
            "a digest, not a credential"
        );
        assert!(ids(&format!("name = \"{random}\"\n")).is_empty(), "not a credential-like name");
        // Code, not literals: calls, attribute chains and identifiers, lower-case resource paths.
        assert!(ids("tokens = antlr3.CommonTokenStream(lexer)\n").is_empty());
        assert!(ids("token_uri=oauth2client.GOOGLE_TOKEN_URI2,\n").is_empty());
        assert!(ids("self.enable_k8s_tokens_via_dns = enable_k8s_tokens_via_dns\n").is_empty());
        assert!(ids("--token-secret-version=projects/p1/secrets/s1/versions/2\n").is_empty());
        assert!(ids("id_token = fetch_id_token2(request)\n").is_empty());
        assert!(ids("arn:aws:secretsmanager:region:account:secret:myappsecret-123456\n").is_empty());
        assert!(ids("'secret_ref': 'V1LocalObjectReference',\n").is_empty(), "a type name");
        assert!(camel_case_name(b"V1LocalObjectReference") && !camel_case_name(random.as_bytes()));
        // The same shapes quoted are literals, and unquoted random values still count.
        assert_eq!(ids(&format!("API_KEY={random}\n")), ["generic-credential"]);
        assert_eq!(ids(&format!("token = \"a_{random}\"\n")), ["generic-credential"]);
        // A specific rule wins over the generic one for the same value.
        let github = format!("token = \"ghp_{}\"\n", "0123456789abcdefghijklmnopqrstuvwxyz");
        assert_eq!(ids(&github), ["github-pat"]);

        // Custom rules take an entropy floor too.
        let config: crate::SecretConfig = serde_saphyr::from_str(
            "rules:\n  - id: build-id\n    regex: 'BUILD-(?P<secret>[A-Za-z0-9]{12})'\n    secret-group-name: secret\n    entropy: 3.0\n",
        )
        .unwrap();
        let custom = Scanner::from_config(&[], &config, &ScanOptions::default()).unwrap();
        assert_eq!(custom.scan("x", b"BUILD-a8K2mQ9zX4pL\n").len(), 1);
        assert!(custom.scan("x", b"BUILD-aaaaaaaaaaaa\n").is_empty());
    }

    /// The straightforward byte loop `printable_strings` must agree with.
    fn printable_strings_reference(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for run in bytes.split(|&b| !((0x20..0x7f).contains(&b) || b == b'\t')) {
            if run.len() >= 16 {
                out.extend_from_slice(run);
                out.push(b'\n');
            }
        }
        out
    }

    proptest::proptest! {
        #[test]
        fn printable_strings_matches_the_byte_loop(
            // Mostly printable bytes with some breaks, so runs of every length around 16 occur.
            bytes in proptest::collection::vec(proptest::prop_oneof![8 => 0x20u8..0x7f, 1 => proptest::num::u8::ANY], 0..400)
        ) {
            proptest::prop_assert_eq!(printable_strings(&bytes), printable_strings_reference(&bytes));
        }
    }

    #[test]
    fn placeholders_and_substitutions_are_not_secrets() {
        let s = Scanner::builtin();
        for line in [
            "machine example.com login bob password \"PASSWORD\"",
            "machine example.com login bob password {self.password}",
            "machine example.com login bob password $NETRC_PASSWORD",
            "DATABASE_URL=postgres://app:$DB_PASSWORD@db:5432/app",
        ] {
            assert!(s.scan("app/config", line.as_bytes()).is_empty(), "{line}");
        }
        let real = format!("machine ci.example.com login bob password {}{}", "k3Qz9", "Lm2Vx");
        assert_eq!(s.scan("app/.netrc", real.as_bytes()).len(), 1);
        // `port` (and `account`) may stand between the host and the password, in any order with `login`.
        let with_port = format!("machine ci.example.com port 8443 login bob password {}{}", "k3Qz9", "Lm2Vx");
        assert_eq!(s.scan("app/.netrc", with_port.as_bytes()).len(), 1, "{with_port}");
        let login_last = format!("machine ci.example.com account ops login bob password {}{}", "k3Qz9", "Lm2Vx");
        assert_eq!(s.scan("app/.netrc", login_last.as_bytes()).len(), 1, "{login_last}");
        // Test fixtures by file name (git ships `contrib/credential/netrc/test.netrc`), as Trivy allows them.
        assert!(
            s.scan("usr/share/git-core/contrib/credential/netrc/test.netrc", real.as_bytes())
                .is_empty()
        );
    }

    #[test]
    fn compressed_and_media_files_are_not_read() {
        let s = Scanner::builtin();
        assert!(s.reads("app/config.json") && s.reads("app/lib.jar") && s.reads("app/.gz"));
        assert!(!s.reads("usr/share/x/changelog.Debian.gz") && !s.reads("app/logo.PNG") && !s.reads("a/f.woff2"));
        assert!(!s.reads("usr/share/doc/x/README"), "allowed paths are not read either");
        // apt's package indexes (50 MB on bookworm, over the size limit): the archive's, never the image author's.
        assert!(!s.reads("var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages"));
        assert!(s.reads("etc/apt/auth.conf.d/private.conf"), "apt's credentials are read");
        assert!(!s.reads("usr/lib/x86_64-linux-gnu/libssl.so.3") && s.reads("usr/bin/openssl"));
    }

    #[test]
    fn compressed_streams_are_not_read_for_strings() {
        let key = format!("aws_key={}{}", "AKIAQ7Z3X9W2", "V5T8R4M6");
        for magic in [&b"\x1f\x8b\x08\0"[..], b"\xfd7zXZ\0", b"\x28\xb5\x2f\xfd\0"] {
            let mut blob = magic.to_vec();
            blob.extend_from_slice(format!("\0{key}\0").as_bytes());
            assert!(Scanner::builtin().scan_content("usr/share/doc/x.gz", &blob).is_empty());
        }
        let mut elf = b"\x7fELF\0".to_vec();
        elf.extend_from_slice(format!("\0{key}\0").as_bytes());
        assert_eq!(Scanner::builtin().scan_content("usr/bin/x", &elf).len(), 1);
    }

    #[test]
    fn binaries_are_scanned_through_their_printable_strings() {
        let mut binary = vec![0x7f, b'E', b'L', b'F', 0, 0, 1, 2];
        binary.extend_from_slice(b"short\0");
        binary.extend_from_slice(format!("aws_key={}{}", "AKIAQ7Z3X9W2", "V5T8R4M6").as_bytes());
        binary.extend_from_slice(&[0, 0xff, 0xfe]);
        assert_eq!(
            printable_strings(&binary),
            format!("aws_key={}{}\n", "AKIAQ7Z3X9W2", "V5T8R4M6").into_bytes()
        );
        let found = Scanner::builtin().scan_content("usr/bin/app", &binary);
        assert_eq!(found.len(), 1);
        assert_eq!((found[0].rule_id.as_str(), found[0].line), ("aws-access-key-id", 0));
        assert!(printable_strings(b"\0abc\0").is_empty());
        assert!(
            Scanner::builtin()
                .scan_content("usr/lib/x86_64-linux-gnu/libgnutls.so.30.34.3", &binary)
                .is_empty()
        );
        assert!(Scanner::builtin().scan_content("usr/lib/libx.so", &binary).is_empty());
        assert_eq!(Scanner::builtin().scan_content("opt/app.so.backup", &binary).len(), 1);
    }

    #[test]
    fn finds_masks_and_fingerprints() {
        let s = Scanner::builtin();
        let text = b"a=1\nAWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE\ntoken: ghp_0123456789abcdefghijklmnopqrstuvwxyz\n";
        let f = s.scan("app/.env", text);
        let ids: Vec<&str> = f.iter().map(|f| f.rule_id.as_str()).collect();
        assert_eq!(ids, vec!["aws-access-key-id", "github-pat"]);
        assert_eq!(f[0].line, 2);
        assert_eq!(f[0].masked, "AKIA****************");
        assert!(!f[0].context.contains("IOSFODNN7"));
        assert_eq!(f[0].fingerprint, s.scan("app/.env", text)[0].fingerprint);
        assert_ne!(f[0].fingerprint, s.scan("other/.env", text)[0].fingerprint);
        assert!(s.scan("src/tests/fixture.env", text).is_empty(), "test paths are allowed");
        assert_eq!(s.redact("RUN echo AKIAIOSFODNN7EXAMPLE > x"), "RUN echo AKIA**************** > x");
        // Two secrets on one line: each context masks both.
        let both = s.scan("x", b"AKIAIOSFODNN7EXAMPLE ghp_0123456789abcdefghijklmnopqrstuvwxyz\n");
        assert_eq!(both.len(), 2);
        assert!(
            both.iter()
                .all(|f| !f.context.contains("IOSFODNN7") && !f.context.contains("456789abcdef")),
            "{both:?}"
        );
    }

    #[test]
    fn secrets_across_window_borders_are_found_once() {
        let s = Scanner::builtin();
        let mut big = vec![b'x'; CHUNK - 10];
        big.push(b'\n');
        big.extend_from_slice(b"AKIAIOSFODNN7EXAMPLE\n");
        big.extend(std::iter::repeat_n(b'y', CHUNK));
        big.extend_from_slice(b"\nghp_0123456789abcdefghijklmnopqrstuvwxyz\n");
        let f = s.scan("big.txt", &big);
        assert_eq!(f.len(), 2, "{f:?}");
        assert_eq!((f[0].line, f[1].line), (2, 4));
    }

    proptest::proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..2000)) {
            let _ = Scanner::builtin().scan("x", &bytes);
        }
    }
}
