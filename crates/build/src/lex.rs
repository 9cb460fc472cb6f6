//! Docker's word processing for Dockerfile arguments (BuildKit's `shell.Lex`): quote removal
//! (`'…'` literal, `"…"` with expansion), the escape character, and variable substitution
//! `$V`, `${V}`, `${V:-w}`, `${V-w}`, `${V:+w}`, `${V+w}`, `${V:?msg}`, `${V?msg}`. Pure: the
//! caller passes the variables in effect.
use std::collections::HashMap;

/// Variables visible to expansion, by name.
pub type Vars = HashMap<String, String>;

/// Why a word could not be processed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LexError {
    #[error("missing '{0}' in {1:?}")]
    Unterminated(char, String),
    #[error("{name}: {message}")]
    Required { name: String, message: String },
    #[error("bad substitution in {0:?}")]
    BadSubstitution(String),
    /// Expansion would exceed [`MAX_EXPANDED`] bytes (an `ARG A=$A$A` chain, say).
    #[error("expanding {word:?} gives more than {limit} bytes: the expanded value is too large")]
    TooLarge { word: String, limit: usize },
}

/// Largest result one word may expand to (1 MiB): far above any real ARG, ENV or path, and it
/// keeps doubling chains (`ARG A=$A$A` × 25) failing at once instead of eating gigabytes.
pub const MAX_EXPANDED: usize = 1 << 20;

fn bounded(word: &str, len: usize) -> Result<(), LexError> {
    if len > MAX_EXPANDED {
        let mut shown: String = word.chars().take(60).collect();
        if shown.len() < word.len() {
            shown.push('…');
        }
        return Err(LexError::TooLarge {
            word: shown,
            limit: MAX_EXPANDED,
        });
    }
    Ok(())
}

/// Processes `word` as one word: quotes removed, escapes applied, variables substituted.
pub fn process_word(word: &str, vars: &Vars, escape: char) -> Result<String, LexError> {
    let mut lexer = Lexer::new(word, vars, escape);
    let pieces = lexer.run(None)?;
    bounded(word, pieces.iter().map(|p| p.text.len()).sum())?;
    Ok(pieces.into_iter().map(|p| p.text).collect())
}

/// Like [`process_word`], then split on unquoted whitespace (including whitespace that came
/// from an unquoted variable's value), as Docker does for `EXPOSE` and `FROM`'s meta args.
pub fn process_words(word: &str, vars: &Vars, escape: char) -> Result<Vec<String>, LexError> {
    let mut lexer = Lexer::new(word, vars, escape);
    let pieces = lexer.run(None)?;
    bounded(word, pieces.iter().map(|p| p.text.len()).sum())?;
    let mut words = Vec::new();
    let mut current = String::new();
    let mut in_word = false;
    for piece in pieces {
        if piece.quoted {
            current.push_str(&piece.text);
            in_word = true;
            continue;
        }
        for c in piece.text.chars() {
            if c.is_whitespace() {
                if in_word {
                    words.push(std::mem::take(&mut current));
                    in_word = false;
                }
            } else {
                current.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(current);
    }
    Ok(words)
}

/// Expands only variables in `text` (a heredoc body): quotes are kept as they are, and the
/// escape character protects a following `$` or escape character only.
pub fn expand_vars_only(text: &str, vars: &Vars, escape: char) -> Result<String, LexError> {
    let mut lexer = Lexer::new(text, vars, escape);
    let mut out = String::new();
    while let Some(c) = lexer.next() {
        if c == escape && matches!(lexer.peek(), Some(n) if n == '$' || n == escape) {
            out.extend(lexer.next());
        } else if c == '$' {
            out.push_str(&lexer.dollar()?);
            bounded(text, out.len())?;
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

/// A run of output text, and whether it came from inside quotes (never split).
struct Piece {
    text: String,
    quoted: bool,
}

struct Lexer<'a> {
    chars: Vec<char>,
    pos: usize,
    vars: &'a Vars,
    escape: char,
    source: &'a str,
}

impl<'a> Lexer<'a> {
    fn new(source: &'a str, vars: &'a Vars, escape: char) -> Self {
        Lexer {
            chars: source.chars().collect(),
            pos: 0,
            vars,
            escape,
            source,
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += 1;
        Some(c)
    }

    fn push(pieces: &mut Vec<Piece>, text: &str, quoted: bool) {
        match pieces.last_mut() {
            Some(last) if last.quoted == quoted => last.text.push_str(text),
            _ => pieces.push(Piece {
                text: text.to_string(),
                quoted,
            }),
        }
    }

    /// Processes until end of input or an unquoted, unescaped `stop`.
    fn run(&mut self, stop: Option<char>) -> Result<Vec<Piece>, LexError> {
        let mut pieces = Vec::new();
        let mut expanded = 0usize;
        while let Some(c) = self.peek() {
            if Some(c) == stop {
                break;
            }
            self.pos += 1;
            if c == self.escape {
                match self.next() {
                    Some(n) => Self::push(&mut pieces, &n.to_string(), true),
                    None => break,
                }
            } else if c == '\'' {
                let text = self.single_quoted()?;
                Self::push(&mut pieces, &text, true);
            } else if c == '"' {
                let text = self.double_quoted()?;
                expanded += text.len();
                bounded(self.source, expanded)?;
                Self::push(&mut pieces, &text, true);
            } else if c == '$' {
                let text = self.dollar()?;
                expanded += text.len();
                bounded(self.source, expanded)?;
                Self::push(&mut pieces, &text, false);
            } else {
                Self::push(&mut pieces, &c.to_string(), false);
            }
        }
        Ok(pieces)
    }

    fn single_quoted(&mut self) -> Result<String, LexError> {
        let mut out = String::new();
        loop {
            match self.next() {
                None => return Err(LexError::Unterminated('\'', self.source.to_string())),
                Some('\'') => return Ok(out),
                Some(c) => out.push(c),
            }
        }
    }

    fn double_quoted(&mut self) -> Result<String, LexError> {
        let mut out = String::new();
        loop {
            match self.next() {
                None => return Err(LexError::Unterminated('"', self.source.to_string())),
                Some('"') => return Ok(out),
                Some('$') => {
                    out.push_str(&self.dollar()?);
                    bounded(self.source, out.len())?;
                }
                Some(c) if c == self.escape => match self.peek() {
                    Some(n) if n == '"' || n == '$' || n == self.escape => {
                        self.pos += 1;
                        out.push(n);
                    }
                    _ => out.push(c),
                },
                Some(c) => out.push(c),
            }
        }
    }

    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || c == '_' {
                name.push(c);
                self.pos += 1;
            } else {
                break;
            }
        }
        name
    }

    fn lookup(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }

    /// After a `$`.
    fn dollar(&mut self) -> Result<String, LexError> {
        match self.peek() {
            Some('{') => {
                self.pos += 1;
                let name = self.name();
                if name.is_empty() {
                    return Err(LexError::BadSubstitution(self.source.to_string()));
                }
                let colon = self.peek() == Some(':');
                if colon {
                    self.pos += 1;
                }
                match self.next() {
                    Some('}') if !colon => Ok(self.lookup(&name).unwrap_or("").to_string()),
                    Some(op @ ('-' | '+' | '?')) => {
                        let word: String =
                            self.run(Some('}'))?.into_iter().map(|p| p.text).collect();
                        if self.next() != Some('}') {
                            return Err(LexError::Unterminated('}', self.source.to_string()));
                        }
                        let value = self.lookup(&name);
                        let set = match value {
                            Some(v) => !(colon && v.is_empty()),
                            None => false,
                        };
                        Ok(match op {
                            '-' if set => value.unwrap_or("").to_string(),
                            '-' => word,
                            '+' if set => word,
                            '+' => String::new(),
                            _ if set => value.unwrap_or("").to_string(),
                            _ => {
                                return Err(LexError::Required {
                                    name,
                                    message: if word.is_empty() {
                                        "is not allowed to be unset".into()
                                    } else {
                                        word
                                    },
                                })
                            }
                        })
                    }
                    None => Err(LexError::Unterminated('}', self.source.to_string())),
                    Some(_) => Err(LexError::BadSubstitution(self.source.to_string())),
                }
            }
            Some(c) if c.is_ascii_alphabetic() || c == '_' => {
                let name = self.name();
                Ok(self.lookup(&name).unwrap_or("").to_string())
            }
            Some(c) if c.is_ascii_digit() => {
                // Positional parameters are always empty in a Dockerfile.
                self.pos += 1;
                Ok(String::new())
            }
            _ => Ok("$".to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn vars() -> Vars {
        [("A", "alpha"), ("EMPTY", ""), ("SP", "x y")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn w(s: &str) -> String {
        process_word(s, &vars(), '\\').unwrap()
    }

    #[test]
    fn simple_and_braced() {
        assert_eq!(w("$A"), "alpha");
        assert_eq!(w("${A}b"), "alphab");
        assert_eq!(w("$Ab"), "");
        assert_eq!(w("pre-$A-post"), "pre-alpha-post");
        assert_eq!(w("$UNSET"), "");
        assert_eq!(w("a$"), "a$");
        assert_eq!(w("$ x"), "$ x");
    }

    #[test]
    fn modifiers() {
        assert_eq!(w("${UNSET:-def}"), "def");
        assert_eq!(w("${EMPTY:-def}"), "def");
        assert_eq!(w("${EMPTY-def}"), "");
        assert_eq!(w("${UNSET-def}"), "def");
        assert_eq!(w("${A:-def}"), "alpha");
        assert_eq!(w("${A:+alt}"), "alt");
        assert_eq!(w("${EMPTY:+alt}"), "");
        assert_eq!(w("${EMPTY+alt}"), "alt");
        assert_eq!(w("${UNSET+alt}"), "");
        assert_eq!(w("${UNSET:-$A}"), "alpha");
        assert_eq!(w("${UNSET:-${A}x}"), "alphax");
        assert!(process_word("${UNSET:?need it}", &vars(), '\\').is_err());
        assert!(process_word("${A", &vars(), '\\').is_err());
    }

    #[test]
    fn quotes_and_escapes() {
        assert_eq!(w("'$A'"), "$A");
        assert_eq!(w("\"$A b\""), "alpha b");
        assert_eq!(w("\\$A"), "$A");
        assert_eq!(w("\"\\$A\""), "$A");
        assert_eq!(w("\"a\\nb\""), "a\\nb");
        assert_eq!(w("a\\ b"), "a b");
        assert_eq!(w("hi there"), "hi there");
        assert_eq!(process_word("`$A", &vars(), '`').unwrap(), "$A");
        assert_eq!(process_word("c:\\dir", &vars(), '`').unwrap(), "c:\\dir");
    }

    #[test]
    fn heredoc_bodies_keep_quotes() {
        assert_eq!(
            expand_vars_only("say \"$A\" 'x' \\$A\n", &vars(), '\\').unwrap(),
            "say \"alpha\" 'x' $A\n"
        );
    }

    #[test]
    fn words_split_after_expansion() {
        let v = vars();
        assert_eq!(
            process_words("80 $SP \"q r\"", &v, '\\').unwrap(),
            vec!["80", "x", "y", "q r"]
        );
        assert_eq!(process_words("\"$SP\"", &v, '\\').unwrap(), vec!["x y"]);
        assert!(process_words("  ", &v, '\\').unwrap().is_empty());
    }

    proptest! {
        #[test]
        fn plain_words_are_unchanged(s in "[a-zA-Z0-9_./:-]{0,40}") {
            prop_assert_eq!(process_word(&s, &Vars::new(), '\\').unwrap(), s);
        }

        #[test]
        fn any_value_round_trips_through_braces(value in "[ -~]{0,30}", suffix in "[a-z]{0,5}") {
            let mut v = Vars::new();
            v.insert("V".into(), value.clone());
            prop_assert_eq!(process_word(&format!("${{V}}{suffix}"), &v, '\\').unwrap(), format!("{value}{suffix}"));
            prop_assert_eq!(process_word(&format!("\"$V\"{suffix}"), &v, '\\').unwrap(), format!("{value}{suffix}"));
        }

        #[test]
        fn never_panics(s in "[ -~]{0,60}") {
            let _ = process_word(&s, &vars(), '\\');
            let _ = process_words(&s, &vars(), '`');
        }
    }
}

#[cfg(test)]
mod bound_tests {
    use super::*;

    #[test]
    fn doubling_chains_fail_fast_with_a_size_error() {
        let mut vars = Vars::new();
        vars.insert("A".into(), "xx".into());
        let start = std::time::Instant::now();
        let mut failed = None;
        for line in 0..25 {
            match process_word("${A}${A}", &vars, '\\') {
                Ok(v) => {
                    vars.insert("A".into(), v);
                }
                Err(e) => {
                    failed = Some((line, e));
                    break;
                }
            }
        }
        let (line, err) = failed.expect("25 doublings were accepted");
        assert!(line < 25);
        assert!(err.to_string().contains("too large"), "{err}");
        assert!(start.elapsed() < std::time::Duration::from_secs(5));
        // Many references in one word are caught while expanding, not after.
        let word = "$A".repeat(1000);
        assert!(matches!(
            process_word(&word, &vars, '\\'),
            Err(LexError::TooLarge { .. })
        ));
        assert!(expand_vars_only(&word, &vars, '\\').is_err());
    }
}
