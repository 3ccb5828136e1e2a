//! Our version order against vectors the native tools produced (see tests/vectors/generate.py):
//! dpkg via python-apt, PEP 440 via `packaging`, RPM via rpm's `labelCompare`,
//! RubyGems via Ruby's `Gem::Version`, Packagist via PHP's `version_compare`, Maven via Maven's own
//! `ComparableVersion`; apk from apk-tools' own test data (`test/version.data`).

use std::cmp::Ordering;

use customs_vulndb::Scheme;

fn check(scheme: Scheme, file: &str) {
    let text = std::fs::read_to_string(format!("{}/tests/vectors/{file}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let mut wrong = Vec::new();
    let mut total = 0;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let mut f = line.split(' ');
        let (a, b, o) = (f.next().unwrap(), f.next().unwrap(), f.next().unwrap());
        let want = match o {
            "<" => Ordering::Less,
            ">" => Ordering::Greater,
            _ => Ordering::Equal,
        };
        total += 1;
        let got = scheme.compare(a, b);
        if got != Some(want) {
            wrong.push(format!("{a} vs {b}: native {o}, ours {got:?}"));
        }
    }
    assert!(total > 400, "{file}: only {total} vectors");
    assert!(
        wrong.is_empty(),
        "{scheme:?}: {} of {total} differ from the native order:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

#[test]
fn dpkg_matches_python_apt() {
    check(Scheme::Dpkg, "dpkg.txt");
}

#[test]
fn pep440_matches_packaging() {
    check(Scheme::Pep440, "pep440.txt");
}

#[test]
fn rpm_matches_rpm_label_compare() {
    check(Scheme::Rpm, "rpm.txt");
}

#[test]
fn rubygems_matches_gem_version() {
    check(Scheme::RubyGems, "rubygems.txt");
}

#[test]
fn php_matches_version_compare() {
    check(Scheme::Php, "php.txt");
}

#[test]
fn maven_matches_comparable_version() {
    check(Scheme::Maven, "maven.txt");
}

#[test]
fn apk_matches_apk_tools_test_data() {
    check(Scheme::Apk, "apk.txt");
}
