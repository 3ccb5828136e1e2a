//! Where object-valued keys sit in a JSON text, for line numbers: serde_json parses without positions, so one
//! pass over the text tokenizes its strings and records each `"key": {` by key.

use std::collections::HashMap;

/// Byte offsets of every `"key": {`, by key, in text order, each with its depth (how many objects and arrays
/// enclose it: a top-level key is at depth 1).
pub(crate) struct KeyIndex<'a> {
    offsets: HashMap<&'a str, Vec<(usize, u32)>>,
}

impl<'a> KeyIndex<'a> {
    /// Indexes `text` in one pass. Escaped keys are indexed as written (lockfile keys have no escapes).
    pub(crate) fn new(text: &'a str) -> KeyIndex<'a> {
        let bytes = text.as_bytes();
        let mut offsets: HashMap<&str, Vec<(usize, u32)>> = HashMap::new();
        let mut at = 0;
        let mut depth: i64 = 0;
        while let Some(open) = memchr::memchr(b'"', &bytes[at..]).map(|i| at + i) {
            for &b in &bytes[at..open] {
                match b {
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => depth -= 1,
                    _ => {}
                }
            }
            // The closing quote: the next one not escaped by an odd run of backslashes.
            let mut end = open + 1;
            loop {
                match memchr::memchr2(b'"', b'\\', &bytes[end..]) {
                    None => return KeyIndex { offsets },
                    Some(i) if bytes[end + i] == b'\\' => end += i + 2,
                    Some(i) => {
                        end += i;
                        break;
                    }
                }
                if end >= bytes.len() {
                    return KeyIndex { offsets };
                }
            }
            let mut next = end + 1;
            let skip_ws = |mut i: usize| {
                while i < bytes.len() && bytes[i].is_ascii_whitespace() {
                    i += 1;
                }
                i
            };
            next = skip_ws(next);
            if bytes.get(next) == Some(&b':') {
                let value = skip_ws(next + 1);
                if bytes.get(value) == Some(&b'{') {
                    offsets.entry(&text[open + 1..end]).or_default().push((open, depth.max(0) as u32));
                }
            }
            at = end + 1;
        }
        KeyIndex { offsets }
    }

    /// The first `"key": {` at or after `from`, at `depth`.
    pub(crate) fn first_after(&self, key: &str, from: usize, depth: u32) -> Option<usize> {
        let found = self.offsets.get(key)?;
        found[found.partition_point(|&(o, _)| o < from)..]
            .iter()
            .find(|&&(_, d)| d == depth)
            .map(|&(o, _)| o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_keys_only_in_order() {
        let text = r#"{"a": {"b": "x", "c" : { }, "a": {}}, "s": "\"a\": {", "a":{}}"#;
        let index = KeyIndex::new(text);
        assert_eq!(index.first_after("a", 0, 1), Some(1));
        assert_eq!(
            index.first_after("a", 0, 2),
            Some(text.find("\"a\": {}").unwrap()),
            "the nested one"
        );
        assert_eq!(index.first_after("a", 2, 1), Some(text.rfind("\"a\":{").unwrap()));
        assert_eq!(index.first_after("b", 0, 2), None, "a string value is no object");
        assert_eq!(index.first_after("c", 0, 2), Some(text.find("\"c\"").unwrap()));
    }

    #[test]
    fn unterminated_strings_end_the_scan() {
        for text in [r#"{"a": {"#, r#"{"a"#, "\"\\", "\""] {
            let _ = KeyIndex::new(text);
        }
        assert_eq!(KeyIndex::new(r#"{"a": {"#).first_after("a", 0, 1), Some(1));
    }
}
