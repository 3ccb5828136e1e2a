//! The Dockerfile model the rules read, built on `parse-dockerfile`, with error recovery: a broken
//! instruction is reported as a [`ParseProblem`] and parsing goes on with the next one.

use std::ops::Range;

use parse_dockerfile as pd;

/// A parsed Dockerfile: every instruction that parsed, and the ones that did not.
#[derive(Clone, Debug, Default)]
pub struct Dockerfile {
    /// Instructions in source order (ONBUILD triggers carry their inner instruction).
    pub instructions: Vec<Instruction>,
    /// Instructions that could not be parsed; the rest of the file was still read.
    pub problems: Vec<ParseProblem>,
    /// The escape character (`\` unless a `# escape=` directive says otherwise).
    pub escape: char,
    /// Blank lines inside a continued instruction: BuildKit skips them and joins the next line in.
    pub empty_continuations: Vec<usize>,
    /// Byte offset of the start of each line, for turning spans into line numbers.
    line_starts: Vec<usize>,
}

/// An instruction that could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseProblem {
    /// 1-based line.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// One instruction with its place in the file.
#[derive(Clone, Debug)]
pub struct Instruction {
    /// What the instruction says.
    pub kind: Kind,
    /// Byte range of the whole instruction (keyword to last argument).
    pub span: Range<usize>,
    /// 1-based line of the keyword.
    pub line: usize,
    /// 0-based build stage (the number of FROMs before it, minus one; 0 for global ARGs).
    pub stage: usize,
}

/// A flag such as `--from=build` or `--mount=type=cache,target=/root/.cache`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Flag {
    /// Name without the leading dashes.
    pub name: String,
    /// Value after `=`, if any.
    pub value: Option<String>,
}

/// CMD, ENTRYPOINT, RUN and HEALTHCHECK arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CommandForm {
    /// JSON array: run directly, no shell.
    Exec(Vec<String>),
    /// A shell command line (escapes kept as written).
    Shell(String),
}

/// What an instruction says, with the arguments the rules need.
#[derive(Clone, Debug)]
#[allow(missing_docs)]
pub enum Kind {
    /// `resolved` is `image` with the global ARG defaults expanded (`FROM ${BASE}:${TAG}`).
    From {
        image: String,
        resolved: String,
        alias: Option<String>,
        flags: Vec<Flag>,
    },
    Run {
        flags: Vec<Flag>,
        command: CommandForm,
        heredocs: Vec<String>,
    },
    Cmd(CommandForm),
    Entrypoint(CommandForm),
    /// COPY; `heredoc` is true when a source is an inline here-document.
    Copy {
        flags: Vec<Flag>,
        sources: Vec<String>,
        dest: String,
        heredoc: bool,
    },
    Add {
        flags: Vec<Flag>,
        sources: Vec<String>,
        dest: String,
        heredoc: bool,
    },
    Env(Vec<(String, String)>),
    Arg(Vec<(String, Option<String>)>),
    Label(Vec<(String, String)>),
    User(String),
    Workdir(String),
    Expose(Vec<String>),
    Volume(Vec<String>),
    Shell(Vec<String>),
    Healthcheck {
        none: bool,
        command: Option<CommandForm>,
    },
    Maintainer(String),
    Stopsignal(String),
    Onbuild(Box<Kind>),
}

impl Kind {
    /// The instruction keyword in upper case.
    pub fn keyword(&self) -> &'static str {
        match self {
            Kind::From { .. } => "FROM",
            Kind::Run { .. } => "RUN",
            Kind::Cmd(_) => "CMD",
            Kind::Entrypoint(_) => "ENTRYPOINT",
            Kind::Copy { .. } => "COPY",
            Kind::Add { .. } => "ADD",
            Kind::Env(_) => "ENV",
            Kind::Arg(_) => "ARG",
            Kind::Label(_) => "LABEL",
            Kind::User(_) => "USER",
            Kind::Workdir(_) => "WORKDIR",
            Kind::Expose(_) => "EXPOSE",
            Kind::Volume(_) => "VOLUME",
            Kind::Shell(_) => "SHELL",
            Kind::Healthcheck { .. } => "HEALTHCHECK",
            Kind::Maintainer(_) => "MAINTAINER",
            Kind::Stopsignal(_) => "STOPSIGNAL",
            Kind::Onbuild(_) => "ONBUILD",
        }
    }
}

impl Dockerfile {
    /// Parses `text`. Never fails: what does not parse lands in [`Dockerfile::problems`].
    pub fn parse(text: &str) -> Dockerfile {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let line_starts = std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1)).collect();
        let mut file = Dockerfile {
            escape: '\\',
            line_starts,
            ..Dockerfile::default()
        };
        let mut offset = 0usize;
        let mut prefix = String::new();
        let mut stage: Option<usize> = None;
        loop {
            let rest = &text[offset..];
            let source = format!("{prefix}{rest}");
            let shift = offset as isize - prefix.len() as isize;
            let mut failed_at = None;
            match pd::parse_iter(&source) {
                Err(err) => {
                    // Only parser directives fail here, and they sit at the top.
                    file.problems.push(ParseProblem {
                        line: err.line().max(1),
                        message: format!("{err:#}"),
                    });
                    failed_at = Some(err.line().max(1));
                }
                Ok(iter) => {
                    if offset == 0
                        && let Some(esc) = directive_escape(&source)
                    {
                        file.escape = esc;
                    }
                    let mut skip_fake_from = !prefix.is_empty();
                    for item in iter {
                        match item {
                            Ok(inst) => {
                                if skip_fake_from {
                                    skip_fake_from = false;
                                    continue;
                                }
                                let kind = convert(&inst);
                                let span = instruction_span(&inst);
                                let span = shift_range(span, shift);
                                if matches!(kind, Kind::From { .. }) {
                                    stage = Some(stage.map_or(0, |s| s + 1));
                                }
                                let line = file.line_of(span.start);
                                file.instructions.push(Instruction {
                                    kind,
                                    span,
                                    line,
                                    stage: stage.unwrap_or(0),
                                });
                            }
                            Err(err) => {
                                // Lines are counted in `source`, which starts with `prefix`.
                                let prefix_lines = prefix.matches('\n').count();
                                let line_in_source = err.line().max(1);
                                let line = (line_in_source.saturating_sub(prefix_lines)).max(1) + file.line_of(offset) - 1;
                                file.problems.push(ParseProblem {
                                    line,
                                    message: format!("{err:#}"),
                                });
                                failed_at = Some(line);
                                break;
                            }
                        }
                    }
                }
            }
            let Some(line) = failed_at else { break };
            // Resume after the broken instruction: the end of its logical line.
            let Some(next) = file.end_of_logical_line(text, line) else { break };
            if next <= offset {
                break;
            }
            offset = next;
            prefix.clear();
            if file.escape != '\\' {
                prefix.push_str(&format!("# escape={}\n", file.escape));
            }
            // Instructions other than FROM/ARG need a stage before them to parse.
            prefix.push_str("FROM scratch\n");
        }
        file.instructions.sort_by_key(|i| i.span.start);
        file.empty_continuations = file.find_empty_continuations(text);
        file.resolve_from_args();
        file
    }

    /// Expands `$NAME`, `${NAME}` and `${NAME:-default}` in FROM images with the defaults of the ARGs
    /// declared before the first FROM (the only ones FROM can see).
    fn resolve_from_args(&mut self) {
        let mut args: Vec<(String, String)> = Vec::new();
        let mut seen_from = false;
        for inst in &mut self.instructions {
            match &mut inst.kind {
                Kind::Arg(pairs) if !seen_from => {
                    for (k, v) in pairs.iter() {
                        args.retain(|(a, _)| a != k);
                        args.push((k.clone(), v.clone().unwrap_or_default()));
                    }
                }
                Kind::From { image, resolved, .. } => {
                    seen_from = true;
                    *resolved = expand(image, &args);
                }
                _ => {}
            }
        }
    }

    fn find_empty_continuations(&self, text: &str) -> Vec<usize> {
        let mut out = Vec::new();
        let mut continued = false;
        for (i, line) in text.lines().enumerate() {
            let trimmed = line.trim();
            if trimmed.is_empty() {
                if continued {
                    let at = self.line_start(i + 1);
                    let inside = self
                        .instructions
                        .iter()
                        .any(|inst| inst.span.contains(&at) && !matches!(&inst.kind, Kind::Run { heredocs, .. } if !heredocs.is_empty()));
                    if inside {
                        out.push(i + 1);
                    }
                }
                continue;
            }
            if trimmed.starts_with('#') && continued {
                continue;
            }
            continued = trimmed.ends_with(self.escape) && !trimmed.starts_with('#');
        }
        out
    }

    /// 1-based line number of a byte offset.
    pub fn line_of(&self, offset: usize) -> usize {
        self.line_starts.partition_point(|&start| start <= offset).max(1)
    }

    /// Byte offset where the 1-based `line` starts.
    pub fn line_start(&self, line: usize) -> usize {
        self.line_starts.get(line.saturating_sub(1)).copied().unwrap_or(usize::MAX)
    }

    /// Offset just past the logical line (continuations followed) that contains `line`.
    fn end_of_logical_line(&self, text: &str, line: usize) -> Option<usize> {
        let mut at = self.line_start(line);
        if at >= text.len() {
            return None;
        }
        loop {
            let end = text[at..].find('\n').map_or(text.len(), |i| at + i);
            let content = text[at..end].trim_end();
            let continued = content.ends_with(self.escape) && !content.trim_start().starts_with('#');
            if end >= text.len() {
                return Some(text.len());
            }
            at = end + 1;
            if !continued {
                return Some(at);
            }
        }
    }

    /// Instructions of build stage `stage`.
    pub fn stage(&self, stage: usize) -> impl Iterator<Item = &Instruction> {
        let first_from = self.first_from();
        self.instructions
            .iter()
            .filter(move |i| i.stage == stage && first_from.is_some_and(|f| i.span.start >= f))
    }

    fn first_from(&self) -> Option<usize> {
        self.instructions
            .iter()
            .find(|i| matches!(i.kind, Kind::From { .. }))
            .map(|i| i.span.start)
    }

    /// True for ARGs before the first FROM.
    pub fn is_global(&self, inst: &Instruction) -> bool {
        self.first_from().is_none_or(|f| inst.span.start < f)
    }

    /// Number of build stages (FROM instructions).
    pub fn stage_count(&self) -> usize {
        self.instructions.iter().filter(|i| matches!(i.kind, Kind::From { .. })).count()
    }
}

/// Shell-style variable expansion with the given values (unknown names expand to nothing, as BuildKit does).
fn expand(text: &str, vars: &[(String, String)]) -> String {
    let lookup = |name: &str| vars.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(inner) = after.strip_prefix('{') {
            let Some(end) = inner.find('}') else {
                out.push_str(&rest[at..]);
                return out;
            };
            let body = &inner[..end];
            let (name, default) = match body.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (body, None),
            };
            match (lookup(name).filter(|v| !v.is_empty()), default) {
                (Some(v), _) => out.push_str(v),
                (None, Some(d)) => out.push_str(d),
                (None, None) => {}
            }
            rest = &inner[end + 1..];
        } else {
            let len = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            if len == 0 {
                out.push('$');
            } else {
                out.push_str(lookup(&after[..len]).unwrap_or_default());
            }
            rest = &after[len..];
        }
    }
    out.push_str(rest);
    out
}

fn directive_escape(text: &str) -> Option<char> {
    for line in text.lines() {
        let Some(rest) = line.trim_start().strip_prefix('#') else { break };
        let rest = rest.trim();
        if let Some((key, value)) = rest.split_once('=') {
            if key.trim().eq_ignore_ascii_case("escape") {
                return value.trim().chars().next();
            }
        } else {
            break;
        }
    }
    None
}

fn shift_range(r: Range<usize>, shift: isize) -> Range<usize> {
    let at = |x: usize| (x as isize + shift).max(0) as usize;
    at(r.start)..at(r.end)
}

fn s(u: &pd::UnescapedString<'_>) -> String {
    u.value.to_string()
}

fn flags(f: &[pd::Flag<'_>]) -> Vec<Flag> {
    f.iter()
        .map(|f| Flag {
            name: s(&f.name),
            value: f.value.as_ref().map(s),
        })
        .collect()
}

fn command(c: &pd::Command<'_>) -> CommandForm {
    match c {
        pd::Command::Exec(v) => CommandForm::Exec(v.value.iter().map(s).collect()),
        pd::Command::Shell(v) => CommandForm::Shell(v.value.to_string()),
        _ => CommandForm::Shell(String::new()),
    }
}

fn sources(src: &[pd::Source<'_>]) -> (Vec<String>, bool) {
    let mut heredoc = false;
    let list = src
        .iter()
        .filter_map(|x| match x {
            pd::Source::Path(p) => Some(s(p)),
            pd::Source::HereDoc(_) => {
                heredoc = true;
                None
            }
            _ => None,
        })
        .collect();
    (list, heredoc)
}

fn convert(inst: &pd::Instruction<'_>) -> Kind {
    use pd::Instruction as I;
    match inst {
        I::From(f) => Kind::From {
            image: s(&f.image),
            resolved: s(&f.image),
            alias: f.as_.as_ref().map(|(_, a)| s(a)),
            flags: flags(&f.options),
        },
        I::Run(r) => Kind::Run {
            flags: flags(&r.options),
            command: command(&r.arguments),
            heredocs: r.here_docs.iter().map(|h| h.value.to_string()).collect(),
        },
        I::Cmd(c) => Kind::Cmd(command(&c.arguments)),
        I::Entrypoint(c) => Kind::Entrypoint(command(&c.arguments)),
        I::Copy(c) => {
            let (sources, heredoc) = sources(&c.src);
            Kind::Copy {
                flags: flags(&c.options),
                sources,
                dest: s(&c.dest),
                heredoc,
            }
        }
        I::Add(c) => {
            let (sources, heredoc) = sources(&c.src);
            Kind::Add {
                flags: flags(&c.options),
                sources,
                dest: s(&c.dest),
                heredoc,
            }
        }
        I::Env(e) => Kind::Env(
            key_values(&e.arguments.value)
                .into_iter()
                .map(|(k, v)| (k, v.unwrap_or_default()))
                .collect(),
        ),
        I::Arg(a) => Kind::Arg(key_values(&a.arguments.value)),
        I::Label(l) => Kind::Label(
            key_values(&l.arguments.value)
                .into_iter()
                .map(|(k, v)| (k, v.unwrap_or_default()))
                .collect(),
        ),
        I::User(u) => Kind::User(s(&u.arguments)),
        I::Workdir(w) => Kind::Workdir(s(&w.arguments)),
        I::Expose(e) => Kind::Expose(e.arguments.iter().map(s).collect()),
        I::Volume(v) => Kind::Volume(match &v.arguments {
            pd::JsonOrStringArray::Json(a) => a.value.iter().map(s).collect(),
            pd::JsonOrStringArray::String(a) => a.iter().map(s).collect(),
        }),
        I::Shell(sh) => Kind::Shell(sh.arguments.iter().map(s).collect()),
        I::Healthcheck(h) => match &h.arguments {
            pd::HealthcheckArguments::Cmd { arguments, .. } => Kind::Healthcheck {
                none: false,
                command: Some(command(arguments)),
            },
            _ => Kind::Healthcheck { none: true, command: None },
        },
        I::Maintainer(m) => Kind::Maintainer(s(&m.name)),
        I::Stopsignal(x) => Kind::Stopsignal(s(&x.arguments)),
        I::Onbuild(o) => Kind::Onbuild(Box::new(convert(&o.instruction))),
        _ => Kind::Maintainer(String::new()),
    }
}

/// Byte range from the keyword to the end of the last argument.
fn instruction_span(inst: &pd::Instruction<'_>) -> Range<usize> {
    use pd::Instruction as I;
    let cmd_end = |c: &pd::Command<'_>| match c {
        pd::Command::Exec(v) => v.span.end,
        pd::Command::Shell(v) => v.span.end,
        _ => 0,
    };
    let src_end = |src: &[pd::Source<'_>], dest: &pd::UnescapedString<'_>| {
        src.iter()
            .map(|x| match x {
                pd::Source::Path(p) => p.span.end,
                pd::Source::HereDoc(h) => h.span.end,
                _ => 0,
            })
            .chain([dest.span.end])
            .max()
            .unwrap_or(dest.span.end)
    };
    match inst {
        I::From(f) => f.from.span.start..f.as_.as_ref().map_or(f.image.span.end, |(_, a)| a.span.end),
        I::Run(r) => {
            r.run.span.start
                ..r.here_docs
                    .iter()
                    .map(|h| h.span.end)
                    .chain([cmd_end(&r.arguments)])
                    .max()
                    .unwrap_or(0)
        }
        I::Cmd(c) => c.cmd.span.start..cmd_end(&c.arguments),
        I::Entrypoint(c) => c.entrypoint.span.start..cmd_end(&c.arguments),
        I::Copy(c) => c.copy.span.start..src_end(&c.src, &c.dest),
        I::Add(c) => c.add.span.start..src_end(&c.src, &c.dest),
        I::Env(e) => e.env.span.start..e.arguments.span.end,
        I::Arg(a) => a.arg.span.start..a.arguments.span.end,
        I::Label(l) => l.label.span.start..l.arguments.span.end,
        I::User(u) => u.user.span.start..u.arguments.span.end,
        I::Workdir(w) => w.workdir.span.start..w.arguments.span.end,
        I::Expose(e) => e.expose.span.start..e.arguments.last().map_or(e.expose.span.end, |a| a.span.end),
        I::Volume(v) => {
            v.volume.span.start..match &v.arguments {
                pd::JsonOrStringArray::Json(a) => a.span.end,
                pd::JsonOrStringArray::String(a) => a.last().map_or(v.volume.span.end, |x| x.span.end),
            }
        }
        I::Shell(sh) => sh.shell.span.start..sh.arguments.last().map_or(sh.shell.span.end, |a| a.span.end + 1),
        I::Healthcheck(h) => {
            h.healthcheck.span.start..match &h.arguments {
                pd::HealthcheckArguments::Cmd { arguments, .. } => cmd_end(arguments),
                pd::HealthcheckArguments::None { none, .. } => none.span.end,
                _ => h.healthcheck.span.end,
            }
        }
        I::Maintainer(m) => m.maintainer.span.start..m.name.span.end,
        I::Stopsignal(x) => x.stopsignal.span.start..x.arguments.span.end,
        I::Onbuild(o) => o.onbuild.span.start..instruction_span(&o.instruction).end,
        _ => 0..0,
    }
}

/// Splits `KEY=value KEY2="a b"` (or the legacy `KEY value with spaces`) into pairs, unquoting
/// values the way the Dockerfile frontend does.
pub fn key_values(text: &str) -> Vec<(String, Option<String>)> {
    let words = split_words(text);
    if let Some(first) = words.first()
        && !first.contains('=')
        && words.len() > 1
    {
        // Legacy `ENV KEY value ...`: the rest of the line, raw, is the value.
        let key = first.clone();
        let value = text.trim_start()[text.trim_start().find(char::is_whitespace).unwrap_or(0)..]
            .trim()
            .to_string();
        return vec![(key, Some(unquote(&value)))];
    }
    words
        .into_iter()
        .map(|w| match w.split_once('=') {
            Some((k, v)) => (unquote(k), Some(unquote(v))),
            None => (unquote(&w), None),
        })
        .collect()
}

/// Splits on unquoted whitespace, keeping quotes in the words.
fn split_words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, c) if c.is_whitespace() => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            (None, '"' | '\'') => {
                quote = Some(c);
                cur.push(c);
            }
            (Some(q), c) if c == q => {
                quote = None;
                cur.push(c);
            }
            (_, '\\') => {
                cur.push(c);
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            (_, c) => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Removes shell-style quotes and backslash escapes.
pub fn unquote(word: &str) -> String {
    let mut out = String::with_capacity(word.len());
    let mut quote = None;
    let mut chars = word.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (Some('\''), c) => out.push(c),
            (_, '\\') => {
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            }
            (_, c) => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_values_forms() {
        assert_eq!(
            key_values("A=1 B=\"two words\""),
            vec![("A".into(), Some("1".into())), ("B".into(), Some("two words".into()))]
        );
        assert_eq!(
            key_values("PATH /usr/bin:/bin"),
            vec![("PATH".into(), Some("/usr/bin:/bin".into()))]
        );
        assert_eq!(key_values("VERSION"), vec![("VERSION".into(), None)]);
    }

    #[test]
    fn from_sees_global_arg_defaults() {
        let file = Dockerfile::parse("ARG BASE=alpine\nARG TAG\nFROM ${BASE}:${TAG:-3.20} AS a\nARG BASE=ignored\nFROM $BASE\n");
        let resolved: Vec<_> = file
            .instructions
            .iter()
            .filter_map(|i| {
                if let Kind::From { resolved, .. } = &i.kind {
                    Some(resolved.as_str())
                } else {
                    None
                }
            })
            .collect();
        assert_eq!(resolved, vec!["alpine:3.20", "alpine"]);
    }

    #[test]
    fn recovers_after_a_broken_instruction() {
        let file = Dockerfile::parse("FROM alpine:3.20\nFOO bar \\\n  baz\nRUN echo ok\nUSER app\n");
        assert_eq!(file.problems.len(), 1, "{:?}", file.problems);
        assert_eq!(file.problems[0].line, 2);
        let keywords: Vec<_> = file.instructions.iter().map(|i| (i.kind.keyword(), i.line)).collect();
        assert_eq!(keywords, vec![("FROM", 1), ("RUN", 4), ("USER", 5)]);
    }

    #[test]
    fn stages_and_lines() {
        let file = Dockerfile::parse("ARG V=1\nFROM a:1 AS build\nRUN make\n\nFROM b:2\nCOPY --from=build /out /out\n");
        let stages: Vec<_> = file.instructions.iter().map(|i| (i.kind.keyword(), i.line, i.stage)).collect();
        assert_eq!(
            stages,
            vec![("ARG", 1, 0), ("FROM", 2, 0), ("RUN", 3, 0), ("FROM", 5, 1), ("COPY", 6, 1)]
        );
        assert!(file.is_global(&file.instructions[0]));
    }
}
