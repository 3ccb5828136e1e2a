//! Ruby `Gemfile.lock`: the `GEM` section's `specs:` list each installed gem as `    name (version)` (a
//! platform gem adds `-platform` to the version); `DEPENDENCIES` lists what the Gemfile names, so those are
//! direct. `GIT` and `PATH` gems come from a repository or a folder, not a release, so they are not packages.
//! The lockfile does not say which gems are for development (groups are in the Gemfile).

use std::collections::HashSet;

use super::{Parsed, Pin};
use crate::package::PackageKind;

pub(super) fn parse(text: &str, location: &str) -> Result<Parsed, String> {
    let mut section = "";
    let mut in_specs = false;
    let mut specs: Vec<(&str, &str, u32)> = Vec::new();
    let mut direct: HashSet<&str> = HashSet::new();
    for (i, line) in text.lines().enumerate() {
        let number = i as u32 + 1;
        if line.trim().is_empty() {
            continue;
        }
        if !line.starts_with(' ') {
            section = line.trim();
            in_specs = false;
            continue;
        }
        if section == "DEPENDENCIES" {
            if let Some(name) = line
                .strip_prefix("  ")
                .and_then(|l| l.split([' ', '!']).next())
                .filter(|n| !n.is_empty())
            {
                direct.insert(name);
            }
            continue;
        }
        if section != "GEM" {
            continue;
        }
        if line.trim() == "specs:" {
            in_specs = true;
            continue;
        }
        // A gem's own dependencies sit two spaces deeper (six); only four-space lines are installed gems.
        let Some(spec) = line.strip_prefix("    ").filter(|s| in_specs && !s.starts_with(' ')) else {
            continue;
        };
        let (name, version) = spec
            .split_once(" (")
            .and_then(|(name, rest)| Some((name, rest.strip_suffix(')')?)))
            .ok_or_else(|| format!("line {number}: `{}` is not `name (version)`", spec.trim()))?;
        specs.push((name, version, number));
    }
    let mut out = Parsed::default();
    for (name, version, line) in specs {
        let pin = Pin {
            kind: PackageKind::Gem,
            namespace: None,
            short: name,
            name,
            version,
            line,
            direct: Some(direct.contains(name)),
            dev: false,
        };
        out.packages.push(pin.package(location));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gem_specs_with_direct_ones() {
        let text = "GIT\n  remote: https://github.com/x/y.git\n  specs:\n    y (0.1.0)\n\n\
                    GEM\n  remote: https://rubygems.org/\n  specs:\n    actionpack (6.1.4)\n      rack (~> 2.0)\n    \
                    nokogiri (1.13.3-x86_64-linux)\n    rack (2.2.3)\n\n\
                    PLATFORMS\n  x86_64-linux\n\nDEPENDENCIES\n  actionpack (~> 6.1)\n  y!\n\nBUNDLED WITH\n   2.3.7\n";
        let found = parse(text, "Gemfile.lock").unwrap().packages;
        let got: Vec<_> = found
            .iter()
            .map(|p| (p.name.as_str(), p.version.as_str(), p.line.unwrap(), p.direct.unwrap()))
            .collect();
        assert_eq!(
            got,
            [
                ("actionpack", "6.1.4", 9, true),
                ("nokogiri", "1.13.3-x86_64-linux", 11, false),
                ("rack", "2.2.3", 12, false)
            ]
        );
        assert_eq!(found[0].purl, "pkg:gem/actionpack@6.1.4");
        assert!(parse("GEM\n  specs:\n    broken\n", "g").unwrap_err().contains("line 3"));
    }
}
