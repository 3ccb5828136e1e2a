//! The parser and the rules take any text without panicking, and every finding points at a real line.

use customs_dockerfile::{LintConfig, LintContext, lint};
use proptest::prelude::*;

/// Fragments that exercise the grammar: keywords, flags, heredocs, continuations, quotes.
fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("FROM alpine:3.20 AS b\n".to_string()),
        Just("FROM --platform=$BUILDPLATFORM ${IMG}\n".to_string()),
        Just("RUN apt-get update && apt-get install -y curl | sh \\\n".to_string()),
        Just("RUN <<EOF\nset -e\nEOF\n".to_string()),
        Just("COPY --from=b --chmod=755 a b /c/\n".to_string()),
        Just("ENV A=1 B=\"$A x\"\n".to_string()),
        Just("# escape=`\n".to_string()),
        Just("USER root\n".to_string()),
        Just("\n  \\\n".to_string()),
        Just("CMD [\"a\", \n".to_string()),
        "[ -~\n]{0,40}",
    ]
}

proptest! {
    #[test]
    fn never_panics(parts in proptest::collection::vec(fragment(), 0..12)) {
        let text: String = parts.concat();
        let report = lint(&text, &LintConfig::new(), &LintContext { has_dockerignore: Some(false), secrets: None });
        let lines = text.lines().count().max(1);
        for f in &report.findings {
            prop_assert!(f.line >= 1 && f.line <= lines, "{f:?} outside 1..={lines} in {text:?}");
        }
    }
}
