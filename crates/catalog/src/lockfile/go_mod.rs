//! Go `go.mod`: `require` lines (single or in a block), `// indirect` marking what the module does not import
//! itself, and `replace` directives, which swap the module that is built (a replacement by a local path names
//! no release, so it is not a package). Go's minimal version selection makes the listed version the one built.
//! `go.sum` lists hashes of every version considered, not what is built, so it is not read.

use std::collections::HashMap;

use super::{Parsed, Pin};
use crate::package::PackageKind;

/// A module path and version.
type Module = (String, String);

pub(super) fn parse(text: &str, location: &str) -> Result<Parsed, String> {
    let mut required: Vec<(String, String, u32, bool)> = Vec::new();
    // `old [version] => new [version]`, by old path (and version, when given).
    let mut replaced: HashMap<(String, Option<String>), Option<Module>> = HashMap::new();
    let mut block: Option<&str> = None;
    for (i, raw) in text.lines().enumerate() {
        let number = i as u32 + 1;
        let (code, comment) = match raw.split_once("//") {
            Some((code, comment)) => (code.trim(), comment.trim()),
            None => (raw.trim(), ""),
        };
        if code.is_empty() {
            continue;
        }
        let (directive, args) = match block {
            Some(_) if code == ")" => {
                block = None;
                continue;
            }
            Some(directive) => (directive, code),
            None => {
                let (directive, args) = code.split_once(char::is_whitespace).unwrap_or((code, ""));
                let args = args.trim();
                if args == "(" {
                    block = Some(directive);
                    continue;
                }
                (directive, args)
            }
        };
        let words: Vec<&str> = args.split_whitespace().map(|w| w.trim_matches('"')).collect();
        match directive {
            "require" => match words.as_slice() {
                [path, version] => required.push((path.to_string(), version.to_string(), number, comment == "indirect")),
                _ => return Err(format!("line {number}: `{code}` is not `require PATH VERSION`")),
            },
            "replace" => {
                let arrow = words
                    .iter()
                    .position(|w| *w == "=>")
                    .ok_or_else(|| format!("line {number}: `{code}` has no `=>`"))?;
                let (old, new) = words.split_at(arrow);
                let key = (old[0].to_string(), old.get(1).map(|v| v.to_string()));
                let target = match &new[1..] {
                    [path, version] => Some((path.to_string(), version.to_string())),
                    _ => None,
                };
                replaced.insert(key, target);
            }
            "module" | "go" | "toolchain" | "exclude" | "retract" | "godebug" | "tool" | "ignore" => {}
            other => return Err(format!("line {number}: unknown directive `{other}`")),
        }
    }
    if block.is_some() {
        return Err("a `(` block is not closed".into());
    }
    let mut out = Parsed::default();
    for (path, version, line, indirect) in &required {
        let replacement = replaced
            .get(&(path.clone(), Some(version.clone())))
            .or_else(|| replaced.get(&(path.clone(), None)));
        let (path, version) = match replacement {
            Some(Some((p, v))) => (p.as_str(), v.as_str()),
            Some(None) => continue,
            None => (path.as_str(), version.as_str()),
        };
        let (namespace, short) = match path.rsplit_once('/') {
            Some((ns, short)) => (Some(ns), short),
            None => (None, path),
        };
        let pin = Pin {
            kind: PackageKind::Go,
            namespace,
            short,
            name: path,
            version,
            line: *line,
            direct: Some(!indirect),
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
    fn requires_indirect_and_replacements() {
        let text = "module example.com/app\n\ngo 1.22\n\nrequire github.com/pkg/errors v0.9.1\n\n\
                    require (\n\tgolang.org/x/net v0.17.0 // indirect\n\tgithub.com/old/lib v1.0.0\n\texample.com/local v0.0.0\n)\n\n\
                    replace github.com/old/lib => github.com/new/lib v1.2.0\nreplace example.com/local => ../local\n";
        let found = parse(text, "go.mod").unwrap().packages;
        let got: Vec<_> = found
            .iter()
            .map(|p| (p.name.as_str(), p.version.as_str(), p.line.unwrap(), p.direct.unwrap()))
            .collect();
        assert_eq!(
            got,
            [
                ("github.com/pkg/errors", "v0.9.1", 5, true),
                ("golang.org/x/net", "v0.17.0", 8, false),
                ("github.com/new/lib", "v1.2.0", 9, true),
            ]
        );
        assert_eq!(found[0].purl, "pkg:golang/github.com/pkg/errors@v0.9.1");
    }

    #[test]
    fn malformed_lines_are_named() {
        assert!(parse("require (\n a\n)\n", "go.mod").unwrap_err().contains("line 2"));
        assert!(parse("require (\n", "go.mod").unwrap_err().contains("not closed"));
        assert!(parse("frobnicate x\n", "go.mod").unwrap_err().contains("frobnicate"));
    }
}
