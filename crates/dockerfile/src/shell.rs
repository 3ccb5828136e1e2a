//! RUN scripts as commands: parsed with `brush-parser` (a bash grammar), so rules see each simple
//! command with its arguments, including those inside `&&` lists, pipelines, subshells, `if`/`for`
//! bodies and `$(...)` substitutions. A script bash cannot parse falls back to a tokenizer that
//! splits on `&&`, `||`, `;`, `|` and newlines outside quotes.

use brush_parser::ast;

/// One simple command of a script.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShellCommand {
    /// The command name as written (`apt-get`, `/usr/bin/pip3`).
    pub name: String,
    /// Arguments with quotes removed, in order.
    pub args: Vec<String>,
    /// Which pipeline it belongs to (commands joined by `|` share it).
    pub pipeline: usize,
    /// Position inside its pipeline (0 for the first).
    pub position: usize,
    /// The command a wrapper runs (`apt-get` in `sudo apt-get …`), listed after the wrapper: not written as a
    /// command of its own (rules that count commands skip it).
    pub wrapped: bool,
}

/// A parsed RUN script.
#[derive(Clone, Debug, Default)]
pub struct Script {
    /// Every simple command, in source order.
    pub commands: Vec<ShellCommand>,
    /// True when the script has a `|` pipeline.
    pub has_pipes: bool,
    /// False when bash grammar failed and the fallback tokenizer was used.
    pub parsed: bool,
    /// The script text as the shell sees it (comment lines removed).
    pub text: String,
}

impl ShellCommand {
    /// The basename of the command (`/usr/bin/pip3` -> `pip3`).
    pub fn basename(&self) -> &str {
        self.name.rsplit('/').next().unwrap_or(&self.name)
    }

    /// True if the command is `name` and has any of `args` among its arguments.
    pub fn has_args(&self, name: &str, args: &[&str]) -> bool {
        self.name == name && self.args.iter().any(|a| args.contains(&a.as_str()))
    }

    /// Flags the way hadolint counts them: `-abc` gives `a`, `b`, `c`; `--name=value` gives `name`.
    pub fn flags(&self) -> Vec<(usize, String)> {
        let mut out = Vec::new();
        for (i, arg) in self.args.iter().enumerate() {
            if arg == "-" || arg == "--" {
                continue;
            }
            if let Some(long) = arg.strip_prefix("--") {
                out.push((i, long.split('=').next().unwrap_or_default().to_string()));
            } else if let Some(short) = arg.strip_prefix('-') {
                out.extend(short.chars().map(|c| (i, c.to_string())));
            }
        }
        out
    }

    /// True if any flag is one of `names`.
    pub fn has_any_flag(&self, names: &[&str]) -> bool {
        self.flags().iter().any(|(_, f)| names.contains(&f.as_str()))
    }

    /// Arguments that are not flags (flag values given as separate words are kept, as hadolint does).
    pub fn args_no_flags(&self) -> Vec<&str> {
        let flagged: Vec<usize> = self.flags().into_iter().map(|(i, _)| i).collect();
        self.args
            .iter()
            .enumerate()
            .filter(|(i, _)| !flagged.contains(i))
            .map(|(_, a)| a.as_str())
            .collect()
    }

    /// Like [`ShellCommand::args_no_flags`], also dropping the value word that follows any flag in `with_value`.
    pub fn args_no_flags_dropping(&self, with_value: &[&str]) -> Vec<&str> {
        let flags = self.flags();
        let flagged: Vec<usize> = flags.iter().map(|(i, _)| *i).collect();
        let mut dropped = Vec::new();
        for (i, f) in &flags {
            if with_value.contains(&f.as_str()) && !self.args[*i].contains('=') {
                // The value is the next word (hadolint's rule, kept for agreement).
                dropped.push(i + 1);
            }
        }
        self.args
            .iter()
            .enumerate()
            .filter(|(i, _)| !flagged.contains(i) && !dropped.contains(i))
            .map(|(_, a)| a.as_str())
            .collect()
    }
}

impl Script {
    /// Parses a shell-form RUN script (Dockerfile continuations and comment lines allowed).
    pub fn parse(text: &str) -> Script {
        let text = strip_comment_lines(text);
        let mut script = Script::parse_depth(&text, 0);
        if !script.parsed {
            fallback(&text, &mut script);
        }
        unwrap_sudo(&mut script);
        script.text = text;
        script
    }
}

/// `sudo [options] apt-get install …` runs `apt-get install …`: the command sudo runs is added after it, at the
/// same place in its pipeline, so the package-manager rules see it (DL3004 still sees `sudo`).
fn unwrap_sudo(script: &mut Script) {
    // sudo's options that take a value (`-u USER`).
    const WITH_VALUE: &[&str] = &["-u", "-g", "-C", "-D", "-h", "-p", "-r", "-t", "-U", "-T", "-R"];
    let mut out = Vec::with_capacity(script.commands.len());
    for c in std::mem::take(&mut script.commands) {
        let inner = (c.basename() == "sudo").then(|| {
            let mut rest = c.args.iter();
            loop {
                match rest.next() {
                    Some(a) if a == "--" => break rest.next(),
                    Some(a) if WITH_VALUE.contains(&a.as_str()) => {
                        rest.next();
                    }
                    Some(a) if a.starts_with('-') => {}
                    other => break other,
                }
            }
            .map(|name| ShellCommand {
                name: name.clone(),
                args: rest.cloned().collect(),
                pipeline: c.pipeline,
                position: c.position,
                wrapped: true,
            })
        });
        out.push(c);
        out.extend(inner.flatten());
    }
    script.commands = out;
}

/// Drops comment lines inside a continued instruction: the Dockerfile frontend removes them
/// before the shell sees the script.
/// Also turns `\` + trailing blanks + newline into a plain continuation, as the frontend does.
fn strip_comment_lines(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, line) in text.split_inclusive('\n').enumerate() {
        if i > 0 && line.trim_start().starts_with('#') {
            continue;
        }
        let body = line.trim_end_matches(['\n', '\r']);
        let trimmed = body.trim_end_matches([' ', '\t']);
        if trimmed.ends_with('\\') && trimmed.len() != body.len() && line.ends_with('\n') {
            out.push_str(trimmed);
            out.push('\n');
        } else {
            out.push_str(line);
        }
    }
    out
}

struct Walk<'a> {
    script: &'a mut Script,
    options: &'a brush_parser::ParserOptions,
    depth: usize,
}

impl Walk<'_> {
    fn list(&mut self, list: &ast::CompoundList) {
        for item in &list.0 {
            let and_or = &item.0;
            self.pipeline(&and_or.first);
            for next in &and_or.additional {
                match next {
                    ast::AndOr::And(p) | ast::AndOr::Or(p) => self.pipeline(p),
                }
            }
        }
    }

    fn pipeline(&mut self, pipeline: &ast::Pipeline) {
        if pipeline.seq.len() > 1 {
            self.script.has_pipes = true;
        }
        let id = self.script.commands.last().map_or(0, |c| c.pipeline + 1);
        for (position, command) in pipeline.seq.iter().enumerate() {
            self.command(command, id, position);
        }
    }

    fn command(&mut self, command: &ast::Command, pipeline: usize, position: usize) {
        match command {
            ast::Command::Simple(simple) => self.simple(simple, pipeline, position),
            ast::Command::Compound(compound, _) => self.compound(compound),
            ast::Command::Function(f) => self.compound(&f.body.0),
            ast::Command::ExtendedTest(..) => {}
        }
    }

    fn compound(&mut self, compound: &ast::CompoundCommand) {
        use ast::CompoundCommand as C;
        match compound {
            C::BraceGroup(b) => self.list(&b.list),
            C::Subshell(s) => self.list(&s.list),
            C::ForClause(f) => self.list(&f.body.list),
            C::ArithmeticForClause(f) => self.list(&f.body.list),
            C::CaseClause(c) => c.cases.iter().filter_map(|i| i.cmd.as_ref()).for_each(|l| self.list(l)),
            C::IfClause(i) => {
                self.list(&i.condition);
                self.list(&i.then);
                for e in i.elses.iter().flatten() {
                    if let Some(c) = &e.condition {
                        self.list(c);
                    }
                    self.list(&e.body);
                }
            }
            C::WhileClause(w) | C::UntilClause(w) => {
                self.list(&w.0);
                self.list(&w.1.list);
            }
            C::Arithmetic(_) | C::Coprocess(_) => {}
        }
    }

    fn simple(&mut self, simple: &ast::SimpleCommand, pipeline: usize, position: usize) {
        let mut words: Vec<&ast::Word> = Vec::new();
        for item in simple.prefix.iter().flat_map(|p| &p.0) {
            if let ast::CommandPrefixOrSuffixItem::AssignmentWord(_, w) = item {
                self.substitutions(w);
            }
        }
        if let Some(name) = &simple.word_or_name {
            words.push(name);
        }
        for item in simple.suffix.iter().flat_map(|s| &s.0) {
            match item {
                ast::CommandPrefixOrSuffixItem::Word(w) => words.push(w),
                ast::CommandPrefixOrSuffixItem::AssignmentWord(_, w) => words.push(w),
                _ => {}
            }
        }
        let Some((name, args)) = words.split_first() else { return };
        // A name that is not literal text (`$PIP`, `${cmd}`) is not a known command (as in ShellCheck).
        if name.value.contains('$') || name.value.contains('`') {
            for w in words {
                self.substitutions(w);
            }
            return;
        }
        self.script.commands.push(ShellCommand {
            name: crate::syntax::unquote(&name.value),
            args: args.iter().map(|w| crate::syntax::unquote(&w.value)).collect(),
            pipeline,
            position,
            wrapped: false,
        });
        for w in words {
            self.substitutions(w);
        }
    }

    /// Commands inside `$(...)` and backquotes count too.
    fn substitutions(&mut self, word: &ast::Word) {
        if self.depth > 4 || !(word.value.contains("$(") || word.value.contains('`')) || nesting_depth(&word.value) > MAX_NESTING {
            return;
        }
        let Ok(pieces) = brush_parser::word::parse(&word.value, self.options) else {
            return;
        };
        let mut inner = Vec::new();
        collect_substitutions(&pieces, &mut inner);
        for text in inner {
            let nested = Script::parse_depth(&text, self.depth + 1);
            let base = self.script.commands.last().map_or(0, |c| c.pipeline + 1);
            self.script.has_pipes |= nested.has_pipes;
            for mut c in nested.commands {
                c.pipeline += base;
                self.script.commands.push(c);
            }
        }
    }
}

/// Nesting past this is not parsed with the bash grammar: its parser, the walk over its tree and dropping the
/// tree all recurse once per level, and a hostile `$($($(…` 10,000 deep overflowed the stack. Real scripts
/// nest a handful of levels; deeper ones get the fallback tokenizer, as scripts bash cannot parse do.
pub(crate) const MAX_NESTING: usize = 64;

/// An upper bound of how deep `text` nests: brackets, braces, substitutions and compound commands (`if`,
/// `for`, `while`, `until`, `case`) counted without regard to quotes, so it never underestimates.
pub(crate) fn nesting_depth(text: &str) -> usize {
    let (mut depth, mut max, mut backquoted) = (0usize, 0usize, false);
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'(' | b'{' | b'[' => depth += 1,
            b')' | b'}' | b']' => depth = depth.saturating_sub(1),
            b'`' => {
                backquoted = !backquoted;
                if backquoted { depth += 1 } else { depth = depth.saturating_sub(1) }
            }
            c if c.is_ascii_alphabetic() && (i == 0 || !bytes[i - 1].is_ascii_alphanumeric()) => {
                let end = bytes[i..]
                    .iter()
                    .position(|b| !b.is_ascii_alphanumeric())
                    .map_or(bytes.len(), |n| i + n);
                match &text[i..end] {
                    "if" | "for" | "while" | "until" | "case" | "select" => depth += 1,
                    "fi" | "done" | "esac" => depth = depth.saturating_sub(1),
                    _ => {}
                }
                i = end;
                max = max.max(depth);
                continue;
            }
            _ => {}
        }
        max = max.max(depth);
        i += 1;
    }
    max
}

impl Script {
    /// The bash grammar only (no fallback); `depth` counts nested `$(...)`.
    fn parse_depth(text: &str, depth: usize) -> Script {
        let mut script = Script::default();
        if nesting_depth(text) > MAX_NESTING {
            return script;
        }
        let options = brush_parser::ParserOptions::default();
        let mut parser = brush_parser::Parser::new(std::io::Cursor::new(text.as_bytes()), &options);
        if let Ok(program) = parser.parse_program() {
            script.parsed = true;
            let mut walk = Walk {
                script: &mut script,
                options: &options,
                depth,
            };
            for list in &program.complete_commands {
                walk.list(list);
            }
        }
        script
    }
}

fn collect_substitutions(pieces: &[brush_parser::word::WordPieceWithSource], out: &mut Vec<String>) {
    use brush_parser::word::WordPiece as P;
    for piece in pieces {
        match &piece.piece {
            P::CommandSubstitution(s) | P::BackquotedCommandSubstitution(s) => out.push(s.clone()),
            P::DoubleQuotedSequence(inner) | P::GettextDoubleQuotedSequence(inner) => collect_substitutions(inner, out),
            _ => {}
        }
    }
}

/// Splits a script bash could not parse on unquoted separators, then into words.
fn fallback(text: &str, script: &mut Script) {
    let joined = text.replace("\\\n", " ");
    let mut pipeline = 0;
    let mut position = 0;
    let mut words: Vec<String> = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut chars = joined.chars().peekable();
    let flush_word = |cur: &mut String, words: &mut Vec<String>| {
        if !cur.is_empty() {
            words.push(crate::syntax::unquote(cur));
            cur.clear();
        }
    };
    let end_command = |words: &mut Vec<String>, pipeline: usize, position: usize, script: &mut Script| {
        let taken = std::mem::take(words);
        let mut it = taken.into_iter().skip_while(|w| w.contains('=') && !w.starts_with('-'));
        if let Some(name) = it.next() {
            script.commands.push(ShellCommand {
                name,
                args: it.collect(),
                pipeline,
                position,
                wrapped: false,
            });
        }
    };
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => {
                quote = None;
                cur.push(c);
            }
            (Some(_), c) => cur.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                cur.push(c);
            }
            (None, '\\') => {
                cur.push(c);
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            (None, '|') if chars.peek() != Some(&'|') => {
                flush_word(&mut cur, &mut words);
                end_command(&mut words, pipeline, position, script);
                script.has_pipes = true;
                position += 1;
            }
            (None, '&' | '|' | ';' | '\n') => {
                if matches!(c, '&' | '|') && chars.peek() == Some(&c) {
                    chars.next();
                }
                flush_word(&mut cur, &mut words);
                end_command(&mut words, pipeline, position, script);
                pipeline += 1;
                position = 0;
            }
            (None, c) if c.is_whitespace() => flush_word(&mut cur, &mut words),
            (None, c) => cur.push(c),
        }
    }
    flush_word(&mut cur, &mut words);
    end_command(&mut words, pipeline, position, script);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(script: &Script) -> Vec<&str> {
        script.commands.iter().map(|c| c.name.as_str()).collect()
    }

    #[test]
    fn commands_in_lists_pipes_and_substitutions() {
        let s = Script::parse(
            "set -eux; \\\n  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y \"curl\" \\\n  # a comment\n  && curl -fsSL https://x | sh && echo $(uname -m)",
        );
        assert!(s.parsed);
        assert_eq!(names(&s), vec!["set", "apt-get", "apt-get", "curl", "sh", "echo", "uname"]);
        assert_eq!(s.commands[2].args, vec!["install", "-y", "curl"]);
        assert!(s.has_pipes);
        assert_eq!(s.commands[3].pipeline, s.commands[4].pipeline);
        assert_eq!(s.commands[4].position, 1);
    }

    #[test]
    fn flags_like_hadolint() {
        let s = Script::parse("apt-get -qy --no-install-recommends install -t buster-backports foo=1");
        let c = &s.commands[0];
        let flags: Vec<String> = c.flags().into_iter().map(|(_, f)| f).collect();
        assert_eq!(flags, vec!["q", "y", "no-install-recommends", "t"]);
        assert_eq!(c.args_no_flags_dropping(&["t"]), vec!["install", "foo=1"]);
    }

    #[test]
    fn fallback_on_unparseable_script() {
        let s = Script::parse("if then fi && apt-get install foo | tee log");
        assert!(!s.parsed);
        assert!(s.commands.iter().any(|c| c.name == "apt-get"));
        assert!(s.has_pipes);
    }
}
