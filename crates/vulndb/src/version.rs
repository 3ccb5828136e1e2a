//! Version order per ecosystem, as the native package managers order versions.

use std::cmp::Ordering;
use std::str::FromStr;

/// A version-ordering scheme.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// dpkg (Debian, Ubuntu): epoch, upstream, revision, `~` sorts first.
    Dpkg,
    /// apk (Alpine): numbers, a letter, `_alpha`… suffixes, `-rN`.
    Apk,
    /// RPM: rpmvercmp with epoch, `~` and `^`.
    Rpm,
    /// PEP 440 (PyPI).
    Pep440,
    /// Semantic Versioning (npm, crates.io, NuGet, Packagist, RubyGems approximations).
    Semver,
    /// Go modules: SemVer with a `v` prefix, pseudo-versions; `go1.21.5` toolchains.
    Go,
    /// Maven's ComparableVersion.
    Maven,
    /// Numbers compared as numbers, everything else as text.
    Generic,
}

impl Scheme {
    /// The scheme an OSV ecosystem uses (`Debian:12`, `PyPI`, …).
    pub fn for_ecosystem(ecosystem: &str) -> Scheme {
        match ecosystem.split(':').next().unwrap_or_default() {
            "Debian" | "Ubuntu" => Scheme::Dpkg,
            "Alpine" | "Wolfi" | "Chainguard" => Scheme::Apk,
            "Red Hat" | "Rocky Linux" | "AlmaLinux" | "openSUSE" | "SUSE" | "Mageia" | "Photon OS" => Scheme::Rpm,
            "PyPI" => Scheme::Pep440,
            "npm" | "crates.io" | "NuGet" | "Packagist" | "RubyGems" | "Hex" | "Pub" => Scheme::Semver,
            "Go" => Scheme::Go,
            "Maven" => Scheme::Maven,
            _ => Scheme::Generic,
        }
    }

    /// Compares two versions; `None` when either cannot be read in this scheme.
    pub fn compare(self, a: &str, b: &str) -> Option<Ordering> {
        match self {
            Scheme::Dpkg => {
                let parse = |v: &str| {
                    debversion::Version::from_str(v)
                        .or_else(|_| debversion::Version::parse_lenient(v))
                        .ok()
                };
                Some(parse(a)?.cmp(&parse(b)?))
            }
            Scheme::Rpm => Some(rpm_version::rpm_evr_compare(a, b)),
            Scheme::Pep440 => {
                let parse = |v: &str| pep440_rs::Version::from_str(v.trim()).ok();
                Some(parse(a)?.cmp(&parse(b)?))
            }
            Scheme::Semver => match (lenient_semver(a), lenient_semver(b)) {
                (Some(x), Some(y)) => Some(x.cmp_precedence(&y)),
                _ => Some(generic(a, b)),
            },
            Scheme::Go => {
                let parse = |v: &str| lenient_semver(v.trim_start_matches("go").trim_start_matches('v'));
                Some(parse(a)?.cmp_precedence(&parse(b)?))
            }
            Scheme::Apk => Some(apk(a, b)),
            Scheme::Maven => Some(maven(a, b)),
            Scheme::Generic => Some(generic(a, b)),
        }
    }
}

/// SemVer, accepting a `v` prefix and missing minor/patch (`1.2` is `1.2.0`).
fn lenient_semver(v: &str) -> Option<semver::Version> {
    let v = v.trim().trim_start_matches('v');
    if let Ok(s) = semver::Version::parse(v) {
        return Some(s);
    }
    let split = v.find(['-', '+']).unwrap_or(v.len());
    let (core, rest) = v.split_at(split);
    let parts: Vec<&str> = core.split('.').collect();
    if parts.is_empty() || parts.len() > 3 || parts.iter().any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit())) {
        return None;
    }
    let mut padded = parts.join(".");
    for _ in parts.len()..3 {
        padded.push_str(".0");
    }
    semver::Version::parse(&format!("{padded}{rest}")).ok()
}

/// Digit runs compare as numbers, other runs as text; a longer version wins a tie.
fn generic(a: &str, b: &str) -> Ordering {
    let split = |s: &str| -> Vec<String> {
        let mut out = Vec::new();
        let mut cur = String::new();
        for c in s.chars() {
            if !c.is_ascii_alphanumeric() {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                continue;
            }
            if let Some(last) = cur.chars().last()
                && last.is_ascii_digit() != c.is_ascii_digit()
            {
                out.push(std::mem::take(&mut cur));
            }
            cur.push(c);
        }
        if !cur.is_empty() {
            out.push(cur);
        }
        out
    };
    let (xs, ys) = (split(a), split(b));
    for (x, y) in xs.iter().zip(&ys) {
        let o = match (x.parse::<u128>(), y.parse::<u128>()) {
            (Ok(i), Ok(j)) => i.cmp(&j),
            (Ok(_), Err(_)) => Ordering::Greater,
            (Err(_), Ok(_)) => Ordering::Less,
            _ => x.cmp(y),
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    xs.len().cmp(&ys.len())
}

/// apk-tools' order: `1.2.3a_rc1_p2-r4`. Numbers after the first compare as
/// text when they start with 0 (so `1.02` < `1.1`); suffixes order
/// `_alpha < _beta < _pre < _rc < (none) < _cvs < _svn < _git < _hg < _p`.
fn apk(a: &str, b: &str) -> Ordering {
    #[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
    enum Token {
        // Declared in sort order for the cases where types differ at the same position.
        SuffixPre(u8, u64),
        End,
        SuffixPost(u8, u64),
        Revision(u64),
        Letter(u8),
        Number(String, bool),
    }
    fn num(s: &str) -> u64 {
        s.parse().unwrap_or(u64::MAX)
    }
    fn tokens(v: &str) -> Vec<Token> {
        let (main, rev) = match v.rsplit_once("-r") {
            Some((m, r)) if !r.is_empty() && r.bytes().all(|c| c.is_ascii_digit()) => (m, Some(num(r))),
            _ => (v, None),
        };
        let mut out = Vec::new();
        let mut rest = main;
        let mut first = true;
        // numbers separated by dots
        loop {
            let end = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
            if end == 0 {
                break;
            }
            out.push(Token::Number(rest[..end].to_string(), first));
            first = false;
            rest = &rest[end..];
            match rest.strip_prefix('.') {
                Some(r) if r.starts_with(|c: char| c.is_ascii_digit()) => rest = r,
                _ => break,
            }
        }
        if let Some(c) = rest.chars().next()
            && c.is_ascii_lowercase()
        {
            out.push(Token::Letter(c as u8));
            rest = &rest[1..];
        }
        const PRE: [&str; 4] = ["alpha", "beta", "pre", "rc"];
        const POST: [&str; 5] = ["cvs", "svn", "git", "hg", "p"];
        while let Some(r) = rest.strip_prefix('_') {
            let name_end = r.find(|c: char| !c.is_ascii_lowercase()).unwrap_or(r.len());
            let (name, after) = r.split_at(name_end);
            let digits_end = after.find(|c: char| !c.is_ascii_digit()).unwrap_or(after.len());
            let n = if digits_end == 0 { 0 } else { num(&after[..digits_end]) };
            if let Some(i) = PRE.iter().position(|p| *p == name) {
                out.push(Token::SuffixPre(i as u8, n));
            } else if let Some(i) = POST.iter().position(|p| *p == name) {
                out.push(Token::SuffixPost(i as u8, n));
            } else {
                break;
            }
            rest = &after[digits_end..];
        }
        if let Some(r) = rev {
            out.push(Token::Revision(r));
        }
        out
    }
    let (ta, tb) = (tokens(a), tokens(b));
    let n = ta.len().max(tb.len());
    for i in 0..n {
        let x = ta.get(i).unwrap_or(&Token::End);
        let y = tb.get(i).unwrap_or(&Token::End);
        let o = match (x, y) {
            (Token::Number(p, first), Token::Number(q, _)) => {
                if !first && (p.starts_with('0') || q.starts_with('0')) {
                    p.cmp(q)
                } else {
                    num(p).cmp(&num(q))
                }
            }
            // A missing number sorts below any number; a number beats a letter or a suffix.
            (Token::Number(..), _) => Ordering::Greater,
            (_, Token::Number(..)) => Ordering::Less,
            (Token::Revision(_), Token::End) => Ordering::Greater,
            (Token::End, Token::Revision(_)) => Ordering::Less,
            (p, q) => p.cmp(q),
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}

/// Maven's ComparableVersion: items split on `.`, `-` and digit/letter
/// boundaries; qualifiers `alpha < beta < milestone < rc < snapshot < "" < sp`,
/// unknown qualifiers after, in text order; trailing zeros and empty qualifiers ignored.
fn maven(a: &str, b: &str) -> Ordering {
    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Item {
        Int(u128),
        Str(String),
    }
    fn qualifier_rank(s: &str) -> (u8, String) {
        let s = match s {
            "a" => "alpha",
            "b" => "beta",
            "m" => "milestone",
            "cr" => "rc",
            "ga" | "final" | "release" => "",
            other => other,
        };
        match ["alpha", "beta", "milestone", "rc", "snapshot", "", "sp"]
            .iter()
            .position(|q| *q == s)
        {
            Some(i) => (i as u8, String::new()),
            None => (7, s.to_string()),
        }
    }
    fn items(v: &str) -> Vec<Item> {
        let v = v.to_ascii_lowercase();
        let mut out = Vec::new();
        let mut cur = String::new();
        let flush = |cur: &mut String, out: &mut Vec<Item>| {
            if cur.is_empty() {
                out.push(Item::Int(0));
            } else if cur.bytes().all(|c| c.is_ascii_digit()) {
                out.push(Item::Int(cur.parse().unwrap_or(u128::MAX)));
            } else {
                out.push(Item::Str(std::mem::take(cur)));
            }
            cur.clear();
        };
        for c in v.chars() {
            if c == '.' || c == '-' {
                flush(&mut cur, &mut out);
                continue;
            }
            if let Some(last) = cur.chars().last()
                && last.is_ascii_digit() != c.is_ascii_digit()
            {
                flush(&mut cur, &mut out);
            }
            cur.push(c);
        }
        if !cur.is_empty() {
            flush(&mut cur, &mut out);
        }
        // Trailing "null" items (0, "", ga, final) carry no weight.
        while let Some(last) = out.last() {
            let null = match last {
                Item::Int(0) => true,
                Item::Str(s) => qualifier_rank(s) == (5, String::new()),
                _ => false,
            };
            if !null {
                break;
            }
            out.pop();
        }
        out
    }
    let cmp_item = |x: Option<&Item>, y: Option<&Item>| -> Ordering {
        match (x, y) {
            (Some(Item::Int(i)), Some(Item::Int(j))) => i.cmp(j),
            (Some(Item::Int(_)), Some(Item::Str(_))) => Ordering::Greater,
            (Some(Item::Str(_)), Some(Item::Int(_))) => Ordering::Less,
            (Some(Item::Str(s)), Some(Item::Str(t))) => qualifier_rank(s).cmp(&qualifier_rank(t)),
            (Some(Item::Int(i)), None) => i.cmp(&0),
            (None, Some(Item::Int(j))) => 0.cmp(j),
            (Some(Item::Str(s)), None) => qualifier_rank(s).cmp(&(5, String::new())),
            (None, Some(Item::Str(t))) => (5, String::new()).cmp(&qualifier_rank(t)),
            (None, None) => Ordering::Equal,
        }
    };
    let (xa, xb) = (items(a), items(b));
    for i in 0..xa.len().max(xb.len()) {
        let o = cmp_item(xa.get(i), xb.get(i));
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::*;
    use Ordering::*;

    fn check(scheme: Scheme, cases: &[(&str, &str, Ordering)]) {
        for (a, b, want) in cases {
            assert_eq!(scheme.compare(a, b), Some(*want), "{scheme:?}: {a} vs {b}");
            assert_eq!(scheme.compare(b, a), Some(want.reverse()), "{scheme:?}: {b} vs {a}");
        }
    }

    #[test]
    fn apk_order_follows_apk_tools_rules() {
        check(
            Scheme::Apk,
            &[
                ("1.2.3-r0", "1.2.3-r1", Less),
                ("1.2.3-r10", "1.2.3-r9", Greater),
                ("1.2.3", "1.2.3-r0", Less),
                ("1.2.3_rc1-r0", "1.2.3-r0", Less),
                ("1.2.3_alpha", "1.2.3_beta", Less),
                ("1.2.3_p1", "1.2.3", Greater),
                ("1.2.3a", "1.2.3", Greater),
                ("1.2.3a", "1.2.4", Less),
                ("1.10", "1.9", Greater),
                ("1.02", "1.1", Less),
                ("2.4-r1", "2.4-r1", Equal),
                ("1.36.1-r7", "1.36.1-r29", Less),
                ("3.1.7-r0", "3.1.8-r0", Less),
            ],
        );
    }

    #[test]
    fn maven_order_follows_comparable_version() {
        check(
            Scheme::Maven,
            &[
                ("1.0", "1.0.0", Equal),
                ("1.0-alpha1", "1.0", Less),
                ("1.0-beta", "1.0-alpha", Greater),
                ("1.0-rc1", "1.0-SNAPSHOT", Less),
                ("1.0-SNAPSHOT", "1.0", Less),
                ("1.0", "1.0-sp1", Less),
                ("1.0-ga", "1.0", Equal),
                ("2.14.1", "2.15.0", Less),
                ("2.17.1", "2.3.1", Greater),
                ("1.0.RELEASE", "1.0", Equal),
            ],
        );
    }

    #[test]
    fn go_and_semver_accept_prefixes_and_pseudo_versions() {
        check(
            Scheme::Go,
            &[
                ("v0.17.0", "0.17.0", Equal),
                ("v0.0.0-20230101000000-abcdef123456", "v0.1.0", Less),
                ("go1.21.5", "1.21.10", Less),
                ("v1.2.3", "v1.10.0", Less),
            ],
        );
        check(
            Scheme::Semver,
            &[("1.2", "1.2.0", Equal), ("1.0.0-rc.1", "1.0.0", Less), ("4.17.20", "4.17.21", Less)],
        );
    }
}
