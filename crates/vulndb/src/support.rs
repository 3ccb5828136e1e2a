//! When a distribution release stops getting security fixes: past that day, "0 vulnerabilities" only means
//! nobody looks any more (Trivy's `--exit-on-eol`).
//!
//! Dates as published, written down on 2026-12-01:
//! - Debian: the end of LTS (security updates for the release, as DLAs, after the security team's own support
//!   ends), from wiki.debian.org/LTS; that is the last day the tracker still fixes the release.
//! - Alpine: the end of support per release, from alpinelinux.org/releases.
//! - Ubuntu LTS: the end of standard support, from ubuntu.com/about/release-cycle (given as a month: the last day
//!   of that month); Expanded Security Maintenance after it needs an Ubuntu Pro subscription.
//!
//! Releases missing here (a newer one than this table, or `edge`/`sid`) are not judged.

use customs_catalog::Distro;
use time::{Date, Month};

const fn day(year: i32, month: Month, day: u8) -> Date {
    match Date::from_calendar_date(year, month, day) {
        Ok(d) => d,
        Err(_) => panic!("a valid date in the table"),
    }
}

/// `(distribution id, release, last day of security support)`.
const TABLE: &[(&str, &str, Date)] = &[
    ("debian", "7", day(2018, Month::May, 31)),
    ("debian", "8", day(2020, Month::June, 30)),
    ("debian", "9", day(2022, Month::June, 30)),
    ("debian", "10", day(2024, Month::June, 30)),
    ("debian", "11", day(2026, Month::August, 31)),
    ("debian", "12", day(2028, Month::June, 30)),
    ("debian", "13", day(2030, Month::June, 30)),
    ("alpine", "3.12", day(2022, Month::May, 1)),
    ("alpine", "3.13", day(2022, Month::November, 1)),
    ("alpine", "3.14", day(2023, Month::May, 1)),
    ("alpine", "3.15", day(2023, Month::November, 1)),
    ("alpine", "3.16", day(2024, Month::May, 23)),
    ("alpine", "3.17", day(2024, Month::November, 22)),
    ("alpine", "3.18", day(2025, Month::May, 9)),
    ("alpine", "3.19", day(2025, Month::November, 1)),
    ("alpine", "3.20", day(2026, Month::April, 1)),
    ("alpine", "3.21", day(2026, Month::November, 1)),
    ("alpine", "3.22", day(2027, Month::May, 1)),
    ("alpine", "3.23", day(2027, Month::November, 1)),
    ("ubuntu", "16.04", day(2021, Month::April, 30)),
    ("ubuntu", "18.04", day(2023, Month::May, 31)),
    ("ubuntu", "20.04", day(2025, Month::May, 31)),
    ("ubuntu", "22.04", day(2027, Month::June, 30)),
    ("ubuntu", "24.04", day(2029, Month::May, 31)),
];

/// A release's security support, as far as the table knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Support {
    /// `debian 11`, `alpine 3.19`.
    pub release: String,
    /// The last day of security support.
    pub ends: Date,
}

impl Support {
    /// Whether `today` is past the last day.
    pub fn ended(&self, today: Date) -> bool {
        today > self.ends
    }

    /// The warning for an ended release.
    pub fn warning(&self) -> String {
        format!(
            "{}: security support ended on {}; its packages get no more fixes, so a clean scan proves little (move to a supported release)",
            self.release, self.ends
        )
    }
}

/// The support window of the release `distro` names: Debian and Ubuntu by `VERSION_ID`, Alpine by its
/// `major.minor`.
pub fn support(distro: &Distro) -> Option<Support> {
    let version = distro.version_id.as_deref()?;
    let release = match distro.id.as_str() {
        "alpine" => version.split('.').take(2).collect::<Vec<_>>().join("."),
        _ => version.to_string(),
    };
    TABLE
        .iter()
        .find(|(id, v, _)| *id == distro.id && *v == release)
        .map(|&(id, v, ends)| Support {
            release: format!("{id} {v}"),
            ends,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn distro(id: &str, version: &str) -> Distro {
        Distro {
            id: id.into(),
            version_id: Some(version.into()),
            ..Distro::default()
        }
    }

    #[test]
    fn releases_are_judged_by_their_table_row() {
        let today = day(2026, Month::December, 1);
        let bullseye = support(&distro("debian", "11")).unwrap();
        assert!(bullseye.ended(today), "Debian 11 LTS ended 2026-08-31");
        assert!(!support(&distro("debian", "12")).unwrap().ended(today));
        let alpine = support(&distro("alpine", "3.19.1")).unwrap();
        assert_eq!(alpine.release, "alpine 3.19");
        assert!(alpine.ended(today));
        assert!(!support(&distro("alpine", "3.22.0")).unwrap().ended(today));
        assert_eq!(support(&distro("alpine", "3.99.0")), None, "not in the table: not judged");
        assert_eq!(support(&distro("fedora", "40")), None);
        assert!(bullseye.warning().contains("debian 11: security support ended on 2026-08-31"));
    }
}
