//! Dockerfile text → raw instructions, with Docker's (BuildKit parser's) line rules: parser
//! directives at the top (`# syntax=` ignored, `# escape=` honoured), comments, line
//! continuations (comment and empty lines inside a continuation are skipped), leading `--flags`
//! and heredocs for `RUN`, `COPY` and `ADD`. It knows nothing of what an instruction means; see
//! `instruction` for that. Line numbers are 1-based and name the instruction's first line.
use crate::error::{BuildError, Result};

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq)]
pub struct Dockerfile {
    /// How errors name the file (`Dockerfile`, or the `-f` path).
    pub file: String,
    /// The escape character (`\` unless `# escape=` says `` ` ``).
    pub escape: char,
    /// The `# syntax=` directive, when present (accepted and ignored).
    pub syntax: Option<String>,
    pub instructions: Vec<RawInstruction>,
}

/// One instruction as written, before its arguments are interpreted.
#[derive(Debug, Clone, PartialEq)]
pub struct RawInstruction {
    /// Upper-cased keyword (`RUN`).
    pub keyword: String,
    /// Leading `--name=value` flags, as written (`--from=builder`).
    pub flags: Vec<String>,
    /// The arguments after keyword and flags, continuations joined.
    pub args: String,
    /// The whole instruction on one line, as Docker prints it in `Step N/M : …`.
    pub original: String,
    /// First and last source line (1-based).
    pub line: usize,
    pub end_line: usize,
    /// Heredoc bodies introduced on this line (`RUN <<EOF`), in order.
    pub heredocs: Vec<Heredoc>,
}

/// One heredoc: `<<EOF` (expanded) / `<<"EOF"` (literal) / `<<-EOF` (leading tabs removed).
#[derive(Debug, Clone, PartialEq)]
pub struct Heredoc {
    pub name: String,
    /// File descriptor prefix (`2<<EOF`), when given.
    pub fd: Option<u32>,
    /// Body, every line ending in `\n`, terminator excluded.
    pub content: String,
    /// False when the name was quoted: the body is taken literally.
    pub expand: bool,
    pub chomp: bool,
}

/// Parses Dockerfile text; `file` names the file in errors.
pub fn parse(text: &str, file: &str) -> Result<Dockerfile> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines: Vec<&str> = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    // A trailing newline yields one empty last element that is not a line.
    let line_count = if text.ends_with('\n') {
        lines.len() - 1
    } else {
        lines.len()
    };
    let lines = &lines[..line_count];
    let syntax_err = |line: usize, message: String| BuildError::Syntax {
        file: file.to_string(),
        line,
        message,
    };

    let mut escape = '\\';
    let mut syntax = None;
    let mut index = 0;
    let mut seen_escape = false;
    while index < lines.len() {
        match parse_directive(lines[index]) {
            Some((name, value)) if name == "escape" => {
                if seen_escape {
                    return Err(syntax_err(
                        index + 1,
                        "only one escape parser directive can be used".into(),
                    ));
                }
                seen_escape = true;
                escape = match value.as_str() {
                    "\\" => '\\',
                    "`" => '`',
                    other => {
                        return Err(syntax_err(
                            index + 1,
                            format!("invalid escape token '{other}' does not match ` or \\"),
                        ));
                    }
                };
            }
            Some((name, value)) if name == "syntax" => syntax = Some(value),
            Some((name, _)) if name == "check" => {}
            _ => break,
        }
        index += 1;
    }

    let mut instructions = Vec::new();
    while index < lines.len() {
        let raw = lines[index];
        index += 1;
        let start_line = index;
        if is_comment(raw) {
            continue;
        }
        let (first, mut complete) = trim_continuation(raw.trim_start(), escape);
        let mut joined = first.to_string();
        if complete && joined.trim().is_empty() {
            continue;
        }
        while !complete && index < lines.len() {
            let next = lines[index];
            index += 1;
            if is_comment(next) || next.trim().is_empty() {
                continue;
            }
            let (part, done) = trim_continuation(next, escape);
            joined.push_str(part);
            complete = done;
        }
        let joined = joined.trim().to_string();
        if joined.is_empty() {
            continue;
        }
        let (keyword, rest) = split_keyword(&joined);
        let (flags, args) = split_flags(rest);
        let mut instruction = RawInstruction {
            keyword: keyword.to_ascii_uppercase(),
            flags,
            args,
            original: joined.clone(),
            line: start_line,
            end_line: index,
            heredocs: Vec::new(),
        };
        if matches!(instruction.keyword.as_str(), "RUN" | "COPY" | "ADD") {
            for mut heredoc in heredoc_markers(&instruction.args) {
                let mut terminated = false;
                while index < lines.len() {
                    let body_line = lines[index];
                    index += 1;
                    let candidate = if heredoc.chomp {
                        body_line.trim_start_matches('\t')
                    } else {
                        body_line
                    };
                    if candidate == heredoc.name {
                        terminated = true;
                        break;
                    }
                    heredoc.content.push_str(candidate);
                    heredoc.content.push('\n');
                }
                if !terminated {
                    return Err(syntax_err(
                        start_line,
                        format!("unterminated heredoc {}", heredoc.name),
                    ));
                }
                instruction.heredocs.push(heredoc);
            }
            instruction.end_line = index;
        }
        instructions.push(instruction);
    }
    Ok(Dockerfile {
        file: file.to_string(),
        escape,
        syntax,
        instructions,
    })
}

/// `# name=value` at the top of the file (Docker's directive regex).
fn parse_directive(line: &str) -> Option<(String, String)> {
    let rest = line.strip_prefix('#')?.trim_start();
    let eq = rest.find('=')?;
    let name = rest[..eq].trim_end();
    let mut chars = name.chars();
    if !chars.next()?.is_ascii_alphabetic() || !chars.all(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    let value = rest[eq + 1..].trim();
    if value.is_empty() {
        return None;
    }
    Some((name.to_ascii_lowercase(), value.to_string()))
}

fn is_comment(line: &str) -> bool {
    line.trim_start().starts_with('#')
}

/// Removes a trailing escape character (plus trailing blanks); returns whether the line is complete.
fn trim_continuation(line: &str, escape: char) -> (&str, bool) {
    let trimmed = line.trim_end_matches([' ', '\t']);
    match trimmed.strip_suffix(escape) {
        Some(before) => (before, false),
        None => (line, true),
    }
}

fn split_keyword(line: &str) -> (&str, &str) {
    match line.find(|c: char| c.is_whitespace()) {
        Some(at) => (&line[..at], line[at..].trim_start()),
        None => (line, ""),
    }
}

/// Leading `--flag[=value]` words; a bare `--` ends them.
fn split_flags(mut rest: &str) -> (Vec<String>, String) {
    let mut flags = Vec::new();
    while rest.starts_with("--") {
        let end = flag_end(rest);
        let word = &rest[..end];
        rest = rest[end..].trim_start();
        if word == "--" {
            break;
        }
        flags.push(word.to_string());
    }
    (flags, rest.to_string())
}

/// End of the first whitespace-delimited word, treating quoted spans as part of the word.
fn flag_end(text: &str) -> usize {
    let mut quote = None;
    for (i, c) in text.char_indices() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '"' || c == '\'' => quote = Some(c),
            None if c.is_whitespace() => return i,
            None => {}
        }
    }
    text.len()
}

/// Heredoc markers among the whitespace-separated words of `args` (`<<EOF`, `<<-EOF`,
/// `<<"EOF"`, `2<<EOF`), in order. A word like `<<<` (here-string) is not one.
pub fn heredoc_markers(args: &str) -> Vec<Heredoc> {
    args.split_whitespace()
        .filter_map(parse_heredoc_word)
        .collect()
}

fn parse_heredoc_word(word: &str) -> Option<Heredoc> {
    let digits = word.chars().take_while(|c| c.is_ascii_digit()).count();
    let fd = if digits > 0 {
        word[..digits].parse().ok()
    } else {
        None
    };
    let rest = word[digits..].strip_prefix("<<")?;
    let (chomp, rest) = match rest.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, rest),
    };
    let (name, expand) = match rest.chars().next()? {
        q @ ('"' | '\'') => (rest.strip_prefix(q)?.strip_suffix(q)?, false),
        _ => (rest, true),
    };
    let mut chars = name.chars();
    let first = chars.next()?;
    if !(first.is_ascii_alphabetic() || first == '_')
        || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return None;
    }
    Some(Heredoc {
        name: name.to_string(),
        fd,
        content: String::new(),
        expand,
        chomp,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(text: &str) -> Dockerfile {
        parse(text, "Dockerfile").unwrap()
    }

    #[test]
    fn keywords_flags_and_lines() {
        let df = parse_ok(
            "# a comment\nFROM busybox AS b\n\ncopy --from=b --chown=1:2 /a /b\nRUN echo hi\n",
        );
        let k: Vec<_> = df
            .instructions
            .iter()
            .map(|i| (i.keyword.as_str(), i.line))
            .collect();
        assert_eq!(k, vec![("FROM", 2), ("COPY", 4), ("RUN", 5)]);
        assert_eq!(df.instructions[1].flags, vec!["--from=b", "--chown=1:2"]);
        assert_eq!(df.instructions[1].args, "/a /b");
        assert_eq!(df.instructions[0].original, "FROM busybox AS b");
    }

    #[test]
    fn continuations_skip_comments_and_empty_lines() {
        let df = parse_ok("RUN echo a \\\n# inner comment\n\n  && echo b\nCMD x\n");
        assert_eq!(df.instructions[0].args, "echo a   && echo b");
        assert_eq!(df.instructions[0].line, 1);
        assert_eq!(df.instructions[0].end_line, 4);
        assert_eq!(df.instructions[1].line, 5);
    }

    #[test]
    fn escape_directive_changes_continuation() {
        let df = parse_ok("# escape=`\nFROM x\nRUN dir c:\\ `\n  /s\n");
        assert_eq!(df.escape, '`');
        assert_eq!(df.instructions[1].args, "dir c:\\   /s");
    }

    #[test]
    fn directives_only_at_top() {
        let df = parse_ok("# syntax=docker/dockerfile:1\nFROM x\n# escape=`\nRUN a \\\n b\n");
        assert_eq!(df.escape, '\\');
        assert_eq!(df.syntax.as_deref(), Some("docker/dockerfile:1"));
        assert_eq!(df.instructions[1].args, "a  b");
    }

    #[test]
    fn bad_escape_is_an_error_with_line() {
        let err = parse("# escape=x\nFROM a\n", "Dockerfile")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("Dockerfile:1:"), "{err}");
    }

    #[test]
    fn heredocs() {
        let df = parse_ok("FROM x\nRUN <<EOF\necho a\necho b\nEOF\nCOPY <<-\"END\" <<two /dst/\n\thello $X\n\tEND\nsecond\ntwo\nCMD y\n");
        let run = &df.instructions[1];
        assert_eq!(run.heredocs[0].content, "echo a\necho b\n");
        assert_eq!(run.end_line, 5);
        let copy = &df.instructions[2];
        assert_eq!(copy.heredocs.len(), 2);
        assert_eq!(copy.heredocs[0].content, "hello $X\n");
        assert!(!copy.heredocs[0].expand && copy.heredocs[0].chomp);
        assert_eq!(copy.heredocs[1].content, "second\n");
        assert_eq!(df.instructions[3].keyword, "CMD");
        assert_eq!(df.instructions[3].line, 11);
    }

    #[test]
    fn unterminated_heredoc() {
        let err = parse("FROM x\nRUN <<EOF\necho\n", "Dockerfile")
            .unwrap_err()
            .to_string();
        assert_eq!(err, "Dockerfile:2: unterminated heredoc EOF");
    }

    #[test]
    fn here_string_is_not_a_heredoc() {
        assert!(heredoc_markers("cat <<<word").is_empty());
        assert_eq!(
            heredoc_markers("cat 2<<E").first().and_then(|h| h.fd),
            Some(2)
        );
    }

    #[test]
    fn crlf_and_bom() {
        let df = parse_ok("\u{feff}FROM x\r\nRUN a \\\r\n b\r\n");
        assert_eq!(df.instructions[1].args, "a  b");
    }

    proptest::proptest! {
        #[test]
        fn never_panics(text in "[ -~\\n\\t]{0,200}") {
            let _ = parse(&text, "Dockerfile");
        }

        #[test]
        fn continuation_joins_words(words in proptest::collection::vec("[a-z]{1,8}", 1..6)) {
            let text = format!("RUN {}\n", words.join(" \\\n"));
            let df = parse(&text, "Dockerfile").unwrap();
            let got: Vec<&str> = df.instructions[0].args.split_whitespace().collect();
            proptest::prop_assert_eq!(got, words.iter().map(String::as_str).collect::<Vec<_>>());
        }
    }
}
