//! Go's `strconv` as Docker's output shows it.

/// Go's `strconv.Quote`: a double-quoted string with Go's escapes (`\a \b \f \n \r \t \v`, `\xNN`
/// for the other ASCII controls, `\uNNNN` for other control characters).
pub fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn quotes_as_go_does() {
        assert_eq!(
            super::quote("a\"b\\c\n\t\u{1}\u{7f}\u{85}é"),
            r#""a\"b\\c\n\t\x01\x7f\u0085é""#
        );
    }
}
