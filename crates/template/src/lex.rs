//! The lexer: template text into tokens, as Go's `text/template/parse` lexer cuts it. Trim
//! markers (`{{- ` and ` -}}`) are applied here, to the neighbouring text, and comments
//! (`{{/* … */}}`) vanish here, so the parser never sees either.
use crate::Error;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    Text(String),
    /// `{{` (trim markers already applied).
    Left,
    /// `}}`.
    Right,
    Space,
    /// A bare word: a function name or a keyword (`if`, `range`, `end`, …).
    Ident(String),
    /// `.Name`, one link of a field chain.
    Field(String),
    /// `$` or `$name`.
    Var(String),
    /// `.` alone.
    Dot,
    /// A string constant: `(source text, value)`.
    Str(String, String),
    /// A number or character constant, as written.
    Num(String),
    Bool(bool),
    Nil,
    Pipe,
    LParen,
    RParen,
    Declare,
    Assign,
    Comma,
}

/// One token and the byte offset where it starts (Go reports positions as byte offsets).
#[derive(Debug, Clone)]
pub(crate) struct Item {
    pub tok: Tok,
    pub pos: usize,
}

const TRIM: &[char] = &[' ', '\t', '\r', '\n'];

fn line_of(text: &str, pos: usize) -> usize {
    1 + text[..pos.min(text.len())].matches('\n').count()
}

fn parse_err(text: &str, pos: usize, message: impl Into<String>) -> Error {
    Error::Parse {
        line: line_of(text, pos),
        message: message.into(),
    }
}

/// Cuts `text` into tokens.
pub(crate) fn lex(text: &str) -> Result<Vec<Item>, Error> {
    let mut items = Vec::new();
    let mut pos = 0;
    // Whether the previous action ended with ` -}}`: the next text loses its leading space.
    let mut trim_next = false;
    while pos < text.len() {
        let next = text[pos..].find("{{").map(|i| pos + i);
        let end = next.unwrap_or(text.len());
        let mut chunk = &text[pos..end];
        if trim_next {
            chunk = chunk.trim_start_matches(TRIM);
        }
        let Some(open) = next else {
            if !chunk.is_empty() {
                items.push(Item {
                    tok: Tok::Text(chunk.to_string()),
                    pos,
                });
            }
            break;
        };
        let left_trim = text[open + 2..].starts_with("- ")
            || text[open + 2..].starts_with("-\t")
            || text[open + 2..].starts_with("-\n")
            || text[open + 2..].starts_with("-\r");
        if left_trim {
            chunk = chunk.trim_end_matches(TRIM);
        }
        if !chunk.is_empty() {
            items.push(Item {
                tok: Tok::Text(chunk.to_string()),
                pos,
            });
        }
        let inner = open + 2 + if left_trim { 2 } else { 0 };
        let (after, right_trim) = lex_action(text, inner, &mut items, open)?;
        trim_next = right_trim;
        pos = after;
    }
    Ok(items)
}

/// Where the closing delimiter starting at `at` ends, and whether it trims: ` -}}` or `}}`.
fn right_delim(text: &str, at: usize) -> Option<(usize, bool)> {
    let rest = &text[at..];
    if rest.starts_with("}}") {
        return Some((at + 2, false));
    }
    let mut chars = rest.chars();
    if chars.next().is_some_and(|c| TRIM.contains(&c)) && chars.as_str().starts_with("-}}") {
        return Some((at + 1 + 3, true));
    }
    None
}

/// Lexes one action starting at `start` (just inside `{{`); returns where it ends and
/// whether it ended with a trim marker.
fn lex_action(
    text: &str,
    start: usize,
    items: &mut Vec<Item>,
    open: usize,
) -> Result<(usize, bool), Error> {
    let bytes = text.as_bytes();
    // A comment is a whole action: `{{/* … */}}`, with optional trim markers.
    if text[start..].starts_with("/*") {
        let Some(close) = text[start + 2..].find("*/") else {
            return Err(parse_err(text, open, "unclosed comment"));
        };
        let after = start + 2 + close + 2;
        return match right_delim(text, after) {
            Some(r) => Ok(r),
            None => Err(parse_err(
                text,
                open,
                "comment ends before closing delimiter",
            )),
        };
    }
    items.push(Item {
        tok: Tok::Left,
        pos: open,
    });
    let mut pos = start;
    let mut parens = 0usize;
    loop {
        if let Some((after, trim)) = right_delim(text, pos) {
            if parens > 0 {
                return Err(parse_err(text, pos, "unclosed left paren"));
            }
            items.push(Item {
                tok: Tok::Right,
                pos,
            });
            return Ok((after, trim));
        }
        let Some(c) = text[pos..].chars().next() else {
            return Err(parse_err(text, open, "unclosed action"));
        };
        let push = |items: &mut Vec<Item>, tok| items.push(Item { tok, pos });
        match c {
            ' ' | '\t' | '\r' | '\n' => {
                let len = text[pos..]
                    .find(|c: char| !TRIM.contains(&c))
                    .unwrap_or(text.len() - pos);
                // ` -}}` is a delimiter, not space then a number.
                let spaces_end = pos + len;
                if text[spaces_end..].starts_with("-}}") && len > 0 {
                    // Let the delimiter check above see the last space.
                    if len > 1 {
                        push(items, Tok::Space);
                    }
                    pos = spaces_end - 1;
                    continue;
                }
                push(items, Tok::Space);
                pos = spaces_end;
            }
            '|' => {
                push(items, Tok::Pipe);
                pos += 1;
            }
            '(' => {
                parens += 1;
                push(items, Tok::LParen);
                pos += 1;
            }
            ')' => {
                if parens == 0 {
                    return Err(parse_err(text, pos, "unexpected right paren"));
                }
                parens -= 1;
                push(items, Tok::RParen);
                pos += 1;
            }
            ',' => {
                push(items, Tok::Comma);
                pos += 1;
            }
            ':' => {
                if bytes.get(pos + 1) != Some(&b'=') {
                    return Err(parse_err(text, pos, "expected :="));
                }
                push(items, Tok::Declare);
                pos += 2;
            }
            '=' => {
                push(items, Tok::Assign);
                pos += 1;
            }
            '"' => {
                let (value, len) = unquote(&text[pos..])
                    .ok_or_else(|| parse_err(text, pos, "unterminated quoted string"))?;
                push(items, Tok::Str(text[pos..pos + len].to_string(), value));
                pos += len;
            }
            '`' => {
                let Some(close) = text[pos + 1..].find('`') else {
                    return Err(parse_err(text, pos, "unterminated raw quoted string"));
                };
                let value = text[pos + 1..pos + 1 + close].to_string();
                push(
                    items,
                    Tok::Str(text[pos..pos + close + 2].to_string(), value),
                );
                pos += close + 2;
            }
            '\'' => {
                let Some(close) = text[pos + 1..].find('\'') else {
                    return Err(parse_err(text, pos, "unterminated character constant"));
                };
                push(items, Tok::Num(text[pos..pos + close + 2].to_string()));
                pos += close + 2;
            }
            '$' => {
                let len = 1 + word_len(&text[pos + 1..]);
                push(items, Tok::Var(text[pos..pos + len].to_string()));
                pos += len;
            }
            '.' => {
                let next = text[pos + 1..].chars().next();
                if next.is_some_and(|c| c.is_ascii_digit()) {
                    let len = number_len(&text[pos..]);
                    push(items, Tok::Num(text[pos..pos + len].to_string()));
                    pos += len;
                } else if next.is_some_and(is_word_char) {
                    let len = 1 + word_len(&text[pos + 1..]);
                    push(items, Tok::Field(text[pos + 1..pos + len].to_string()));
                    pos += len;
                } else {
                    push(items, Tok::Dot);
                    pos += 1;
                }
            }
            '0'..='9' | '-' | '+' => {
                let len = number_len(&text[pos..]);
                if len == 0 {
                    return Err(parse_err(
                        text,
                        pos,
                        format!("bad number syntax: {:?}", &text[pos..pos + 1]),
                    ));
                }
                push(items, Tok::Num(text[pos..pos + len].to_string()));
                pos += len;
            }
            c if is_word_char(c) => {
                let len = word_len(&text[pos..]);
                let word = &text[pos..pos + len];
                let tok = match word {
                    "true" => Tok::Bool(true),
                    "false" => Tok::Bool(false),
                    "nil" => Tok::Nil,
                    w => Tok::Ident(w.to_string()),
                };
                push(items, tok);
                pos += len;
            }
            other => {
                return Err(parse_err(
                    text,
                    pos,
                    format!("unrecognized character in action: {other:?}"),
                ))
            }
        }
    }
}

fn is_word_char(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

fn word_len(s: &str) -> usize {
    s.find(|c: char| !is_word_char(c)).unwrap_or(s.len())
}

/// The length of the number at the start of `s` (0: none): sign, digits, `.`, exponent, hex.
fn number_len(s: &str) -> usize {
    let b = s.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        i += 1;
    }
    let digits_start = i;
    if b[i..].starts_with(b"0x") || b[i..].starts_with(b"0X") {
        i += 2;
        while i < b.len() && (b[i].is_ascii_hexdigit() || b[i] == b'_') {
            i += 1;
        }
        return i;
    }
    while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
        i += 1;
    }
    if i < b.len() && b[i] == b'.' {
        i += 1;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
    }
    if i == digits_start || (i == digits_start + 1 && b[digits_start] == b'.') {
        return 0;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        let mut j = i + 1;
        if j < b.len() && (b[j] == b'+' || b[j] == b'-') {
            j += 1;
        }
        if j < b.len() && b[j].is_ascii_digit() {
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            i = j;
        }
    }
    i
}

/// Go's interpreted string literal at the start of `s` (which starts with `"`): its value and
/// its length in the source.
fn unquote(s: &str) -> Option<(String, usize)> {
    let mut out = String::new();
    let mut chars = s.char_indices().skip(1);
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, i + 1)),
            '\n' => return None,
            '\\' => {
                let (_, e) = chars.next()?;
                match e {
                    'n' => out.push('\n'),
                    't' => out.push('\t'),
                    'r' => out.push('\r'),
                    'a' => out.push('\u{7}'),
                    'b' => out.push('\u{8}'),
                    'f' => out.push('\u{c}'),
                    'v' => out.push('\u{b}'),
                    '\\' => out.push('\\'),
                    '"' => out.push('"'),
                    '\'' => out.push('\''),
                    'x' | 'u' | 'U' => {
                        let n = match e {
                            'x' => 2,
                            'u' => 4,
                            _ => 8,
                        };
                        let mut hex = String::new();
                        for _ in 0..n {
                            hex.push(chars.next()?.1);
                        }
                        let code = u32::from_str_radix(&hex, 16).ok()?;
                        out.push(char::from_u32(code)?);
                    }
                    _ => return None,
                }
            }
            c => out.push(c),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(text: &str) -> Vec<Tok> {
        lex(text).unwrap().into_iter().map(|i| i.tok).collect()
    }

    #[test]
    fn fields_strings_numbers_and_trim_markers() {
        assert_eq!(
            toks("a {{- .A.B \"x\\ty\" -3 | f -}} \n b"),
            vec![
                Tok::Text("a".into()),
                Tok::Left,
                Tok::Field("A".into()),
                Tok::Field("B".into()),
                Tok::Space,
                Tok::Str("\"x\\ty\"".into(), "x\ty".into()),
                Tok::Space,
                Tok::Num("-3".into()),
                Tok::Space,
                Tok::Pipe,
                Tok::Space,
                Tok::Ident("f".into()),
                Tok::Right,
                Tok::Text("b".into()),
            ]
        );
        assert_eq!(
            toks("x {{/* c */}} y"),
            vec![Tok::Text("x ".into()), Tok::Text(" y".into())]
        );
        assert_eq!(
            toks("x {{- /* c */ -}} y"),
            vec![Tok::Text("x".into()), Tok::Text("y".into())]
        );
        assert!(matches!(lex("{{.A"), Err(Error::Parse { .. })));
        assert!(matches!(lex("{{\"a}}"), Err(Error::Parse { .. })));
    }
}
