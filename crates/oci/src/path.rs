//! Path handling for layer entries: everything is relative to the image root and can't leave it.

/// Normalizes a tar entry name to a relative path with no `.`, `..`, empty or leading `/` parts.
///
/// Absolute names are taken relative to the image root, as container runtimes do.
/// A `..` that would climb above the root is refused, because an extractor
/// honouring it would write outside the image.
pub fn normalize_entry(name: &str) -> Result<String, &'static str> {
    if name.contains('\0') {
        return Err("path contains a NUL byte");
    }
    // Almost every entry is already normal (`usr/bin/ls`, `./etc/`): trim it whole, in a few passes over the
    // bytes, instead of splitting a path thousands of components deep into pieces and joining them again.
    let trimmed = name.trim_start_matches("./").trim_matches('/');
    let plain = |p: &str| {
        !(p.contains("//")
            || p.contains("/./")
            || p.contains("/../")
            || p.starts_with("./")
            || p.starts_with("../")
            || p.ends_with("/.")
            || p.ends_with("/..")
            || p == "."
            || p == "..")
    };
    if plain(trimmed) {
        return Ok(trimmed.to_string());
    }
    normalize_components(name)
}

/// Component by component: `.` and empty ones dropped, `..` taking the previous one back (an error at the root).
fn normalize_components(name: &str) -> Result<String, &'static str> {
    let mut parts: Vec<&str> = Vec::new();
    for part in name.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err("path climbs above the image root with `..`");
                }
            }
            p => parts.push(p),
        }
    }
    Ok(parts.join("/"))
}

/// Resolves `target` (a symlink's text) as seen from directory `dir`, inside the image root.
///
/// Works like a chroot: an absolute target starts at the image root and `..`
/// at the root stays at the root, so the result never points outside the image.
pub fn join_in_scope(dir: &str, target: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    if !target.starts_with('/') {
        parts.extend(dir.split('/').filter(|p| !p.is_empty()));
    }
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}

/// The parent directory of a normalized path (`""` for the root's children).
pub fn parent(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(dir, _)| dir)
}

/// The last component of a normalized path.
pub fn file_name(path: &str) -> &str {
    path.rsplit_once('/').map_or(path, |(_, name)| name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn normalizes_entries() {
        assert_eq!(normalize_entry("./etc/passwd").unwrap(), "etc/passwd");
        assert_eq!(normalize_entry("/etc//passwd").unwrap(), "etc/passwd");
        assert_eq!(normalize_entry("usr/lib/../bin/").unwrap(), "usr/bin");
        assert_eq!(normalize_entry("./").unwrap(), "");
        assert!(normalize_entry("../etc/passwd").is_err());
        assert!(normalize_entry("a/../../etc/passwd").is_err());
        assert!(normalize_entry("a\0b").is_err());
    }

    proptest::proptest! {
        #[test]
        fn the_fast_path_normalizes_as_splitting_does(name in "[a./]{0,24}") {
            // The NUL check aside, the fast path must agree with the component walk.
            proptest::prop_assert_eq!(normalize_entry(&name), normalize_components(&name));
        }
    }

    #[test]
    fn symlinks_resolve_inside_the_root() {
        assert_eq!(join_in_scope("etc", "../usr/lib/os-release"), "usr/lib/os-release");
        assert_eq!(join_in_scope("etc", "/"), "");
        assert_eq!(join_in_scope("a/b", "../../../../etc/shadow"), "etc/shadow");
        assert_eq!(join_in_scope("", "usr/bin"), "usr/bin");
    }

    proptest! {
        #[test]
        fn normalized_paths_never_escape(name in "[a-z./]{0,40}") {
            if let Ok(p) = normalize_entry(&name) {
                prop_assert!(!p.starts_with('/'));
                prop_assert!(!p.split('/').any(|c| c == ".." || c == "."));
            }
        }

        #[test]
        fn scoped_joins_never_escape(dir in "[a-z/]{0,20}", target in "[a-z./]{0,40}") {
            let p = join_in_scope(&dir, &target);
            prop_assert!(!p.starts_with('/'));
            prop_assert!(!p.split('/').any(|c| c == ".." || c == "." || c.is_empty()) || p.is_empty());
        }
    }
}
