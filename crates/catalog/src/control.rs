//! RFC 822-style `Key: value` paragraphs, as dpkg's status file and Python's METADATA use.

/// One paragraph: fields in file order, continuation lines joined with `\n`.
pub(crate) type Paragraph<'a> = Vec<(&'a str, String)>;

/// Splits `text` into blank-line separated paragraphs of fields.
///
/// Lines that are neither `Key: value` nor a continuation are ignored: a
/// damaged line must not hide the packages around it.
pub(crate) fn paragraphs(text: &str) -> Vec<Paragraph<'_>> {
    let mut out = Vec::new();
    let mut current: Paragraph<'_> = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            if !current.is_empty() {
                out.push(std::mem::take(&mut current));
            }
        } else if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = current.last_mut() {
                value.push('\n');
                value.push_str(line.trim());
            }
        } else if let Some((key, value)) = line.split_once(':') {
            current.push((key.trim(), value.trim().to_string()));
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// The first value of `key` (case-insensitive) in a paragraph.
pub(crate) fn field<'p>(p: &'p Paragraph<'_>, key: &str) -> Option<&'p str> {
    p.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

/// Headers of an email-style document (Python METADATA): the first paragraph only,
/// since the body that follows is free text.
pub(crate) fn headers(text: &str) -> Paragraph<'_> {
    let end = text.find("\n\n").unwrap_or(text.len());
    paragraphs(&text[..end]).into_iter().next().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_paragraphs_and_joins_continuations() {
        let p = paragraphs("Package: a\nDescription: x\n more\n\n\nPackage: b\nVersion: 1\n");
        assert_eq!(p.len(), 2);
        assert_eq!(field(&p[0], "description"), Some("x\nmore"));
        assert_eq!(field(&p[1], "Version"), Some("1"));
    }

    proptest::proptest! {
        #[test]
        fn never_panics(text in "\\PC{0,200}") {
            let _ = paragraphs(&text);
            let _ = headers(&text);
        }
    }
}
