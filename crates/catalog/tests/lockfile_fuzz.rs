//! Property tests: lockfile parsers answer hostile or mangled input with packages or an error naming the file,
//! never a panic, and lines they report lie inside the file.

use customs_catalog::lockfile::{Format, parse};
use proptest::prelude::*;

const FORMATS: [Format; 10] = [
    Format::NpmLock,
    Format::YarnLock,
    Format::CargoLock,
    Format::PoetryLock,
    Format::UvLock,
    Format::PipfileLock,
    Format::Requirements,
    Format::GoMod,
    Format::GemfileLock,
    Format::ComposerLock,
];

/// A well-formed sample of each format, for mutation.
fn sample(format: Format) -> &'static str {
    match format {
        Format::NpmLock => {
            "{\"lockfileVersion\": 3, \"packages\": {\"\": {\"dependencies\": {\"a\": \"1\"}}, \"node_modules/a\": {\"version\": \"1.0.0\"}, \"node_modules/a/node_modules/@s/b\": {\"version\": \"2.0.0\", \"dev\": true}}}"
        }
        Format::YarnLock => {
            "\"a@^1\", a@^1.1:\n  version \"1.2.0\"\n\n\"@s/b@npm:^2\":\n  version: 2.0.0\n  resolution: \"@s/b@npm:2.0.0\"\n"
        }
        Format::CargoLock => {
            "version = 4\n\n[[package]]\nname = \"a\"\nversion = \"1.0.0\"\nsource = \"registry+x\"\n\n[[package]]\nname = \"app\"\nversion = \"0.1.0\"\ndependencies = [\"a\"]\n"
        }
        Format::PoetryLock => "[[package]]\nname = \"a\"\nversion = \"1.0\"\ncategory = \"dev\"\n\n[package.dependencies]\nb = \">=1\"\n",
        Format::UvLock => {
            "version = 1\n[[package]]\nname = \"app\"\nversion = \"0.1\"\nsource = { virtual = \".\" }\ndependencies = [{ name = \"a\" }]\n[[package]]\nname = \"a\"\nversion = \"1.0\"\nsource = { registry = \"x\" }\n"
        }
        Format::PipfileLock => "{\"default\": {\"a\": {\"version\": \"==1.0\"}}, \"develop\": {\"b\": {\"version\": \"==2.0\"}}}",
        Format::Requirements => "a==1.0\nb[x]==2.0 ; python_version > \"3\" \\\n  --hash=sha256:00\nc>=1\n",
        Format::GoMod => "module m\n\nrequire (\n\tgithub.com/a/b v1.0.0 // indirect\n)\nreplace github.com/a/b => github.com/c/d v1.1.0\n",
        Format::GemfileLock => {
            "GEM\n  remote: https://rubygems.org/\n  specs:\n    a (1.0)\n      b (>= 1)\n    b (2.0)\n\nDEPENDENCIES\n  a\n"
        }
        Format::ComposerLock => {
            "{\"packages\": [{\"name\": \"v/a\", \"version\": \"1.0\"}], \"packages-dev\": [{\"name\": \"v/b\", \"version\": \"v2.0\"}]}"
        }
    }
}

fn check(format: Format, bytes: &[u8]) {
    match parse(format, bytes, "proj/lock") {
        Ok(parsed) => {
            let lines = bytes.split(|&b| b == b'\n').count() as u32;
            for p in &parsed.packages {
                let line = p.line.expect("a lockfile package has a line");
                assert!((1..=lines.max(1)).contains(&line), "{format:?}: line {line} of {lines}: {p:?}");
            }
        }
        Err(e) => assert!(e.starts_with("proj/lock: "), "{format:?}: {e}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512), which in 0..FORMATS.len()) {
        check(FORMATS[which], &bytes);
    }

    #[test]
    fn mutated_samples_never_panic(which in 0..FORMATS.len(), edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0..3u8), 1..8)) {
        let format = FORMATS[which];
        let mut bytes = sample(format).as_bytes().to_vec();
        for (at, byte, kind) in edits {
            if bytes.is_empty() {
                break;
            }
            let i = at.index(bytes.len());
            match kind {
                0 => bytes[i] = byte,
                1 => { bytes.remove(i); }
                _ => bytes.insert(i, byte),
            }
        }
        check(format, &bytes);
    }
}

#[test]
fn samples_parse() {
    for format in FORMATS {
        let parsed = parse(format, sample(format).as_bytes(), "proj/lock").unwrap();
        assert!(!parsed.packages.is_empty(), "{format:?}");
    }
}

#[test]
fn huge_counts_stay_linear() {
    // 50,000 packages in one package-lock: the key index makes line lookups one pass, not one search each.
    let mut text = String::from("{\"lockfileVersion\": 3, \"packages\": {\"\": {}");
    for i in 0..50_000 {
        text.push_str(&format!(",\n\"node_modules/p{i}\": {{\"version\": \"1.0.{i}\"}}"));
    }
    text.push_str("}}");
    let started = std::time::Instant::now();
    let parsed = parse(Format::NpmLock, text.as_bytes(), "big").unwrap();
    assert_eq!(parsed.packages.len(), 50_000);
    assert_eq!(parsed.packages[0].line, Some(2));
    println!("50,000-package lockfile parsed in {:?}", started.elapsed());
}
