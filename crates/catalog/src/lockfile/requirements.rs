//! `requirements*.txt`: a line `name==version` (or `===`), with extras, environment markers, `--hash` options and
//! `\` continuations, pins a package. Anything else that names a package (`flask>=2`, `flask`) is not pinned:
//! it is a warning naming the line, since what pip would install depends on the day. Options (`-r`, `-e`,
//! `--index-url`), URLs and paths are not packages.

use super::{Parsed, Pin};
use crate::package::PackageKind;
use crate::python::normalize;

pub(super) fn parse(text: &str, location: &str) -> Result<Parsed, String> {
    let mut out = Parsed::default();
    let mut logical = String::new();
    let mut first_line = 0;
    for (i, raw) in text.lines().enumerate() {
        if logical.is_empty() {
            first_line = i as u32 + 1;
        }
        // A comment starts at `#` (no version holds one; a URL's `#egg=` fragment stays, and URLs are skipped).
        let line = match raw.find('#').filter(|_| !raw.contains("://")) {
            Some(at) => &raw[..at],
            None => raw,
        };
        if let Some(continued) = line.trim_end().strip_suffix('\\') {
            logical.push_str(continued);
            logical.push(' ');
            continue;
        }
        logical.push_str(line);
        let requirement = std::mem::take(&mut logical);
        read_line(requirement.trim(), first_line, location, &mut out);
    }
    read_line(logical.trim(), first_line, location, &mut out);
    Ok(out)
}

fn read_line(line: &str, number: u32, location: &str, out: &mut Parsed) {
    if line.is_empty() || line.starts_with('-') || line.contains("://") || line.starts_with('.') || line.starts_with('/') {
        return;
    }
    // Options after the requirement (`--hash=…`), then environment markers.
    let spec = line.split(" --").next().unwrap_or(line);
    let spec = spec.split(';').next().unwrap_or(spec).trim();
    let name_end = spec
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        .unwrap_or(spec.len());
    let name = &spec[..name_end];
    if name.is_empty() {
        return;
    }
    let mut rest = spec[name_end..].trim_start();
    if rest.starts_with('[') {
        rest = rest.split_once(']').map_or("", |(_, r)| r.trim_start());
    }
    let version = rest
        .strip_prefix("===")
        .or_else(|| rest.strip_prefix("=="))
        .map(str::trim)
        .filter(|v| !v.is_empty() && !v.contains([',', '*', '<', '>', '!', '~', ' ']));
    let Some(version) = version else {
        out.warnings.push(format!(
            "{location}:{number}: `{line}` is not pinned with ==, so it was not checked (pin it, e.g. with pip-compile)"
        ));
        return;
    };
    let normalized = normalize(name);
    let pin = Pin {
        kind: PackageKind::Python,
        namespace: None,
        short: &normalized,
        name,
        version,
        line: number,
        direct: None,
        dev: false,
    };
    out.packages.push(pin.package(location));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_unpinned_options_and_continuations() {
        let text = "# tools\n\
                    requests[socks]==2.31.0 ; python_version >= \"3.8\"\n\
                    -r base.txt\n\
                    Django==4.2.1 \\\n    --hash=sha256:abc \\\n    --hash=sha256:def\n\
                    flask>=2.0\n\
                    numpy==1.26.*\n\
                    -e git+https://example.com/x.git#egg=x\n\
                    PyYAML===6.0  # exact\n\
                    Jinja2==3.0.0#comment\n";
        let parsed = parse(text, "requirements.txt").unwrap();
        let got: Vec<_> = parsed
            .packages
            .iter()
            .map(|p| (p.name.as_str(), p.version.as_str(), p.line.unwrap()))
            .collect();
        assert_eq!(
            got,
            [
                ("requests", "2.31.0", 2),
                ("Django", "4.2.1", 4),
                ("PyYAML", "6.0", 10),
                ("Jinja2", "3.0.0", 11)
            ]
        );
        assert_eq!(parsed.packages[1].purl, "pkg:pypi/django@4.2.1");
        assert_eq!(parsed.warnings.len(), 2, "{:?}", parsed.warnings);
        assert!(
            parsed.warnings[0].starts_with("requirements.txt:7: `flask>=2.0` is not pinned"),
            "{:?}",
            parsed.warnings
        );
        assert!(parsed.warnings[1].contains(":8:"), "{:?}", parsed.warnings);
    }
}
