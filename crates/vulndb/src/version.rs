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
    /// RubyGems' `Gem::Version`.
    RubyGems,
    /// PHP's `version_compare`, which composer applies to Packagist versions.
    Php,
    /// NuGet.Versioning: up to four numbers, case-insensitive pre-release labels.
    NuGet,
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
            "npm" | "crates.io" | "Hex" | "Pub" => Scheme::Semver,
            "RubyGems" => Scheme::RubyGems,
            "Packagist" => Scheme::Php,
            "NuGet" => Scheme::NuGet,
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
            Scheme::RubyGems => Some(rubygems(a, b)),
            Scheme::Php => Some(php(a, b)),
            Scheme::NuGet => nuget(a, b),
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

/// Maven's `ComparableVersion` (maven-artifact 3.8): a tree of items. `.` separates items of one list, `-`
/// and every digit/letter boundary open a nested list; numbers compare as numbers, qualifiers as
/// `alpha < beta < milestone < rc < snapshot < "" (release) < sp`, unknown ones after them in text order
/// (`a1`, `b1`, `m1` are alpha, beta, milestone; `ga`, `final`, `release` are the release; `cr` is `rc`);
/// trailing null items (0, "", empty lists) are dropped from every list.
fn maven(a: &str, b: &str) -> Ordering {
    maven_item::parse(a).compare(Some(&maven_item::parse(b)))
}

mod maven_item {
    use std::cmp::Ordering;

    #[derive(Debug, Clone, PartialEq, Eq)]
    pub(super) enum Item {
        /// A number without leading zeros, as its digits (any length).
        Int(String),
        /// A qualifier after aliasing.
        Str(String),
        List(Vec<Item>),
    }

    const QUALIFIERS: [&str; 7] = ["alpha", "beta", "milestone", "rc", "snapshot", "", "sp"];

    /// The qualifier's sort key: its index among the known ones, else after all of them in text order.
    fn rank(q: &str) -> (usize, &str) {
        match QUALIFIERS.iter().position(|k| *k == q) {
            Some(i) => (i, ""),
            None => (QUALIFIERS.len(), q),
        }
    }
    const RELEASE: (usize, &str) = (5, "");

    fn string_item(value: &str, followed_by_digit: bool) -> Item {
        let value = match (followed_by_digit, value) {
            (true, "a") => "alpha",
            (true, "b") => "beta",
            (true, "m") => "milestone",
            (_, "ga" | "final" | "release") => "",
            (_, "cr") => "rc",
            (_, v) => v,
        };
        Item::Str(value.to_string())
    }

    fn int_item(digits: &str) -> Item {
        let trimmed = digits.trim_start_matches('0');
        Item::Int(if trimmed.is_empty() { "0".into() } else { trimmed.into() })
    }

    fn parse_item(is_digit: bool, buf: &str) -> Item {
        if is_digit { int_item(buf) } else { string_item(buf, false) }
    }

    impl Item {
        fn is_null(&self) -> bool {
            match self {
                Item::Int(d) => d == "0",
                Item::Str(s) => s.is_empty(),
                Item::List(l) => l.is_empty(),
            }
        }

        /// `self` against `other` (`None`: the absent item a shorter list ends with).
        pub(super) fn compare(&self, other: Option<&Item>) -> Ordering {
            match (self, other) {
                (Item::Int(d), None) => {
                    if d == "0" {
                        Ordering::Equal
                    } else {
                        Ordering::Greater
                    }
                }
                (Item::Int(x), Some(Item::Int(y))) => x.len().cmp(&y.len()).then_with(|| x.cmp(y)),
                (Item::Int(_), Some(_)) => Ordering::Greater,
                (Item::Str(s), None) => rank(s).cmp(&RELEASE),
                (Item::Str(_), Some(Item::Int(_) | Item::List(_))) => Ordering::Less,
                (Item::Str(s), Some(Item::Str(t))) => rank(s).cmp(&rank(t)),
                (Item::List(l), None) => l.iter().map(|i| i.compare(None)).find(|o| o.is_ne()).unwrap_or(Ordering::Equal),
                (Item::List(_), Some(Item::Int(_))) => Ordering::Less,
                (Item::List(_), Some(Item::Str(_))) => Ordering::Greater,
                (Item::List(l), Some(Item::List(r))) => {
                    for i in 0..l.len().max(r.len()) {
                        let o = match (l.get(i), r.get(i)) {
                            (Some(x), y) => x.compare(y),
                            (None, Some(y)) => y.compare(None).reverse(),
                            (None, None) => Ordering::Equal,
                        };
                        if o.is_ne() {
                            return o;
                        }
                    }
                    Ordering::Equal
                }
            }
        }
    }

    /// Drops trailing null items, looking past nested lists (Maven's `ListItem.normalize`).
    fn normalize(list: &mut Vec<Item>) {
        let mut i = list.len();
        while i > 0 {
            i -= 1;
            if list[i].is_null() {
                list.remove(i);
            } else if !matches!(list[i], Item::List(_)) {
                break;
            }
        }
    }

    /// Nested lists deeper than this are flattened into the innermost one.
    const MAX_DEPTH: usize = 32;

    /// Parses like `ComparableVersion.parseVersion`. Nesting is kept as a path of indices into the tree, built
    /// without recursion and at most `MAX_DEPTH` deep.
    pub(super) fn parse(version: &str) -> Item {
        let version = version.to_lowercase();
        let mut root: Vec<Item> = Vec::new();
        // The path from the root to the current list: each entry is the index of a nested list in its parent.
        let mut path: Vec<usize> = Vec::new();
        fn current<'a>(root: &'a mut Vec<Item>, path: &[usize]) -> &'a mut Vec<Item> {
            let mut list = root;
            for &i in path {
                list = match &mut list[i] {
                    Item::List(l) => l,
                    _ => unreachable!("paths only lead through lists"),
                };
            }
            list
        }
        fn open(root: &mut Vec<Item>, path: &mut Vec<usize>) {
            // Past this depth items stay in the innermost list: real versions nest a few levels, and a hostile
            // `1-1-1-…` must not make comparing (or dropping) the tree recurse without bound.
            if path.len() >= MAX_DEPTH {
                return;
            }
            let list = current(root, path);
            list.push(Item::List(Vec::new()));
            let i = list.len() - 1;
            path.push(i);
        }
        let bytes: Vec<char> = version.chars().collect();
        let (mut is_digit, mut start) = (false, 0usize);
        let text = |from: usize, to: usize| bytes[from..to].iter().collect::<String>();
        for (i, &c) in bytes.iter().enumerate() {
            if c == '.' || c == '-' {
                let item = if i == start {
                    Item::Int("0".into())
                } else {
                    parse_item(is_digit, &text(start, i))
                };
                current(&mut root, &path).push(item);
                start = i + 1;
                if c == '-' {
                    open(&mut root, &mut path);
                }
            } else if c.is_ascii_digit() {
                if !is_digit && i > start {
                    // `1.0.0.X1 < 1.0.0-X2`: a qualifier before a number is its own list.
                    if !current(&mut root, &path).is_empty() {
                        open(&mut root, &mut path);
                    }
                    current(&mut root, &path).push(string_item(&text(start, i), true));
                    start = i;
                    open(&mut root, &mut path);
                }
                is_digit = true;
            } else {
                if is_digit && i > start {
                    current(&mut root, &path).push(parse_item(true, &text(start, i)));
                    start = i;
                    open(&mut root, &mut path);
                }
                is_digit = false;
            }
        }
        if bytes.len() > start {
            if !is_digit && !current(&mut root, &path).is_empty() {
                open(&mut root, &mut path);
            }
            current(&mut root, &path).push(parse_item(is_digit, &text(start, bytes.len())));
        }
        // Normalize every list on the path, innermost first (the lists Maven keeps on its stack).
        while path.pop().is_some() {
            normalize(
                current(&mut root, &path)
                    .last_mut()
                    .and_then(|i| match i {
                        Item::List(l) => Some(l),
                        _ => None,
                    })
                    .expect("the path's last step is a list"),
            );
        }
        normalize(&mut root);
        Item::List(root)
    }
}

/// `Gem::Version#<=>`: `-` means `.pre.`; segments are digit or letter runs;
/// trailing zeros of the release part and of the pre-release part are dropped;
/// a letter segment sorts before a number.
fn rubygems(a: &str, b: &str) -> Ordering {
    #[derive(PartialEq, Eq, Clone)]
    enum Seg {
        Num(u128),
        Str(String),
    }
    fn canonical(v: &str) -> Vec<Seg> {
        let v = v.trim().replace('-', ".pre.");
        let mut segs = Vec::new();
        let mut cur = String::new();
        for c in v.chars().chain(std::iter::once(' ')) {
            let same = cur
                .chars()
                .last()
                .is_some_and(|l| l.is_ascii_digit() == c.is_ascii_digit() && c.is_ascii_alphanumeric());
            if !cur.is_empty() && !same {
                segs.push(if cur.bytes().all(|b| b.is_ascii_digit()) {
                    Seg::Num(cur.parse().unwrap_or(u128::MAX))
                } else {
                    Seg::Str(cur.clone())
                });
                cur.clear();
            }
            if c.is_ascii_alphanumeric() {
                cur.push(c);
            }
        }
        let split = segs.iter().position(|s| matches!(s, Seg::Str(_))).unwrap_or(segs.len());
        let (mut release, mut pre) = (segs[..split].to_vec(), segs[split..].to_vec());
        for part in [&mut release, &mut pre] {
            while part.last() == Some(&Seg::Num(0)) {
                part.pop();
            }
        }
        release.extend(pre);
        release
    }
    let (x, y) = (canonical(a), canonical(b));
    for i in 0..x.len().max(y.len()) {
        let (l, r) = (x.get(i).cloned().unwrap_or(Seg::Num(0)), y.get(i).cloned().unwrap_or(Seg::Num(0)));
        let o = match (&l, &r) {
            (Seg::Num(p), Seg::Num(q)) => p.cmp(q),
            (Seg::Str(p), Seg::Str(q)) => p.cmp(q),
            (Seg::Str(_), Seg::Num(_)) => Ordering::Less,
            (Seg::Num(_), Seg::Str(_)) => Ordering::Greater,
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}

/// PHP's `version_compare`: `-_+` become `.`, a `.` goes between digits and
/// letters; special words order `dev < alpha = a < beta = b < RC = rc < number < pl = p`.
fn php(a: &str, b: &str) -> Ordering {
    fn canon(v: &str) -> Vec<String> {
        let mut out = String::new();
        let mut prev: Option<char> = None;
        for c in v.chars() {
            let c = if matches!(c, '-' | '_' | '+') { '.' } else { c };
            if let Some(p) = prev
                && c != '.'
                && p != '.'
                && (p.is_ascii_digit() != c.is_ascii_digit())
            {
                out.push('.');
            }
            out.push(c);
            prev = Some(c);
        }
        out.split('.').filter(|p| !p.is_empty()).map(String::from).collect()
    }
    fn special(s: &str) -> i32 {
        // Prefix match, as PHP does (`alpha1`, `beta2`, `RC1` after splitting are words).
        const FORMS: [(&str, i32); 9] = [
            ("dev", 0),
            ("alpha", 1),
            ("a", 1),
            ("beta", 2),
            ("b", 2),
            ("RC", 3),
            ("rc", 3),
            ("#", 4),
            ("pl", 5),
        ];
        for (f, rank) in FORMS {
            if s.starts_with(f) {
                return rank;
            }
        }
        if s.starts_with('p') {
            return 5;
        }
        -6
    }
    fn part(x: &str, y: &str) -> Ordering {
        let (dx, dy) = (x.bytes().all(|c| c.is_ascii_digit()), y.bytes().all(|c| c.is_ascii_digit()));
        match (dx, dy) {
            (true, true) => x.parse::<u128>().unwrap_or(u128::MAX).cmp(&y.parse::<u128>().unwrap_or(u128::MAX)),
            (false, false) => special(x).cmp(&special(y)),
            (true, false) => special("#").cmp(&special(y)),
            (false, true) => special(x).cmp(&special("#")),
        }
    }
    let (x, y) = (canon(a), canon(b));
    for i in 0..x.len().min(y.len()) {
        let o = part(&x[i], &y[i]);
        if o != Ordering::Equal {
            return o;
        }
    }
    match x.len().cmp(&y.len()) {
        Ordering::Equal => Ordering::Equal,
        // The longer one's next part decides: a number makes it newer, a word is weighed against "#".
        Ordering::Greater => {
            let p = &x[y.len()];
            if p.bytes().all(|c| c.is_ascii_digit()) {
                Ordering::Greater
            } else {
                special(p).cmp(&special("#"))
            }
        }
        Ordering::Less => {
            let p = &y[x.len()];
            if p.bytes().all(|c| c.is_ascii_digit()) {
                Ordering::Less
            } else {
                special("#").cmp(&special(p))
            }
        }
    }
}

/// NuGet.Versioning: `Major.Minor.Patch[.Revision][-pre][+meta]`; missing
/// numbers are 0; a release beats its pre-releases; labels compare like SemVer
/// 2 but case-insensitively; metadata is ignored.
fn nuget(a: &str, b: &str) -> Option<Ordering> {
    fn parse(v: &str) -> Option<([u64; 4], Vec<String>)> {
        let v = v.trim().trim_start_matches(['v', 'V']);
        let v = v.split('+').next()?;
        let (core, pre) = v.split_once('-').map_or((v, ""), |(c, p)| (c, p));
        let mut nums = [0u64; 4];
        let parts: Vec<&str> = core.split('.').collect();
        if parts.is_empty() || parts.len() > 4 {
            return None;
        }
        for (i, p) in parts.iter().enumerate() {
            nums[i] = p.parse().ok()?;
        }
        let pre = if pre.is_empty() {
            Vec::new()
        } else {
            pre.split('.').map(|s| s.to_ascii_lowercase()).collect()
        };
        Some((nums, pre))
    }
    let ((na, pa), (nb, pb)) = (parse(a)?, parse(b)?);
    let o = na.cmp(&nb);
    if o != Ordering::Equal {
        return Some(o);
    }
    Some(match (pa.is_empty(), pb.is_empty()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        (false, false) => {
            for (x, y) in pa.iter().zip(&pb) {
                let o = match (x.parse::<u64>(), y.parse::<u64>()) {
                    (Ok(i), Ok(j)) => i.cmp(&j),
                    (Ok(_), Err(_)) => Ordering::Less,
                    (Err(_), Ok(_)) => Ordering::Greater,
                    _ => x.cmp(y),
                };
                if o != Ordering::Equal {
                    return Some(o);
                }
            }
            pa.len().cmp(&pb.len())
        }
    })
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
    fn maven_versions_nested_deep_compare_without_overflowing_the_stack() {
        // 100,000 `-` would be 100,000 nested lists in Maven's own tree.
        let deep = "1-".repeat(100_000) + "1";
        let deeper = "1-".repeat(100_000) + "2";
        assert_eq!(Scheme::Maven.compare(&deep, &deeper), Some(Less));
        assert_eq!(Scheme::Maven.compare(&deep, &deep), Some(Equal));
        assert_eq!(Scheme::Maven.compare("1-1-1", "1-1-2"), Some(Less));
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
    fn nuget_follows_nuget_versioning() {
        check(
            Scheme::NuGet,
            &[
                ("1.0", "1.0.0.0", Equal),
                ("1.0.0-beta", "1.0.0", Less),
                ("1.0.0-Beta", "1.0.0-beta", Equal),
                ("1.0.0-alpha.2", "1.0.0-alpha.10", Less),
                ("1.0.0-alpha", "1.0.0-alpha.1", Less),
                ("1.0.0.1", "1.0.0", Greater),
                ("1.0.0+build", "1.0.0", Equal),
                ("13.0.1", "13.0.3", Less),
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
