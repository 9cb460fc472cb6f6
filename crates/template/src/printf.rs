//! Go's `fmt.Sprintf` for the template function `printf`: flags `-+# 0`, widths and
//! precisions (also `*`), verbs `v s d q t x X o b c e E f F g G %`, and Go's in-band
//! complaints (`%!d(string=x)`, `%!s(MISSING)`, `%!(EXTRA …)`) instead of errors.
use crate::value::{go_float, print_json, type_of, Kind};
use serde_json::Value;

#[derive(Default)]
struct Spec {
    minus: bool,
    plus: bool,
    zero: bool,
    space: bool,
    sharp: bool,
    width: Option<usize>,
    precision: Option<usize>,
}

/// Formats `args` (`None`: Go's nil) by `format`.
pub(crate) fn sprintf(format: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut next = 0usize;
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut spec = Spec::default();
        while let Some(&f) = chars.peek() {
            match f {
                '-' => spec.minus = true,
                '+' => spec.plus = true,
                '0' => spec.zero = true,
                ' ' => spec.space = true,
                '#' => spec.sharp = true,
                _ => break,
            }
            chars.next();
        }
        let number = |chars: &mut std::iter::Peekable<std::str::Chars>, next: &mut usize| {
            if chars.peek() == Some(&'*') {
                chars.next();
                let n = args.get(*next).and_then(Value::as_i64);
                *next += 1;
                return n.map(|n| n.max(0) as usize);
            }
            let mut digits = String::new();
            while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                digits.push(d);
                chars.next();
            }
            digits.parse().ok()
        };
        spec.width = number(&mut chars, &mut next);
        if chars.peek() == Some(&'.') {
            chars.next();
            spec.precision = Some(number(&mut chars, &mut next).unwrap_or(0));
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.get(next) else {
            out.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        };
        next += 1;
        out.push_str(&format_one(&spec, verb, arg));
    }
    if next < args.len() {
        let extra: Vec<String> = args[next..]
            .iter()
            .map(|a| match a {
                Value::Null => "<nil>".into(),
                a => format!(
                    "{}={}",
                    type_of(a, Kind::Struct),
                    print_json(a, Kind::Struct)
                ),
            })
            .collect();
        out.push_str(&format!("%!(EXTRA {})", extra.join(", ")));
    }
    out
}

fn bad(verb: char, arg: &Value) -> String {
    match arg {
        Value::Null => format!("%!{verb}(<nil>)"),
        a => format!(
            "%!{verb}({}={})",
            type_of(a, Kind::Struct),
            print_json(a, Kind::Struct)
        ),
    }
}

fn format_one(spec: &Spec, verb: char, arg: &Value) -> String {
    let int = arg
        .as_i64()
        .filter(|_| !arg.as_number().is_some_and(|n| n.is_f64()));
    let float = arg
        .as_number()
        .filter(|n| n.is_f64())
        .and_then(|n| n.as_f64());
    let (body, numeric) = match (verb, arg) {
        ('v', Value::Number(_)) | ('d', Value::Number(_)) if int.is_some() || verb == 'v' => {
            match (int, float) {
                (Some(i), _) => (i.to_string(), true),
                (None, Some(f)) => (go_float(f), true),
                _ => (arg.to_string(), true),
            }
        }
        ('v', a) => (print_json(a, Kind::Struct), false),
        ('s', Value::String(s)) => (s.clone(), false),
        ('s', a @ (Value::Array(_) | Value::Object(_))) => (print_json(a, Kind::Struct), false),
        ('q', Value::String(s)) => (quote(s), false),
        ('q', _) if int.is_some() => {
            let c = int
                .and_then(|i| u32::try_from(i).ok())
                .and_then(char::from_u32);
            (format!("'{}'", c.unwrap_or('\u{FFFD}')), false)
        }
        ('t', Value::Bool(b)) => (b.to_string(), false),
        ('T', a) => (type_of(a, Kind::Struct).to_string(), false),
        ('c', _) if int.is_some() => {
            let c = int
                .and_then(|i| u32::try_from(i).ok())
                .and_then(char::from_u32);
            (c.unwrap_or('\u{FFFD}').to_string(), false)
        }
        ('x' | 'X' | 'o' | 'b', _) if int.is_some() => {
            let i = int.unwrap_or_default();
            let (neg, n) = (i < 0, i.unsigned_abs());
            let digits = match verb {
                'x' => format!("{n:x}"),
                'X' => format!("{n:X}"),
                'o' => format!("{n:o}"),
                _ => format!("{n:b}"),
            };
            let prefix = match (spec.sharp, verb) {
                (true, 'x') => "0x",
                (true, 'X') => "0X",
                (true, 'o') => "0",
                _ => "",
            };
            (
                format!("{}{prefix}{digits}", if neg { "-" } else { "" }),
                true,
            )
        }
        ('x' | 'X', Value::String(s)) => {
            let hex: String = s.bytes().map(|b| format!("{b:02x}")).collect();
            let hex = if verb == 'X' { hex.to_uppercase() } else { hex };
            (hex, false)
        }
        ('e' | 'E' | 'f' | 'F' | 'g' | 'G', _) if float.is_some() => {
            let f = float.unwrap_or_default();
            let p = spec.precision;
            let s = match verb {
                'f' | 'F' => format!("{f:.*}", p.unwrap_or(6)),
                'e' | 'E' => {
                    let s = exp_form(&format!("{f:.*e}", p.unwrap_or(6)));
                    if verb == 'E' {
                        s.to_uppercase()
                    } else {
                        s
                    }
                }
                _ => match p {
                    None => go_float(f),
                    Some(p) => {
                        let s = format!("{f:.*e}", p.max(1) - 1);
                        let exp: i32 = s
                            .split_once('e')
                            .and_then(|(_, e)| e.parse().ok())
                            .unwrap_or(0);
                        if exp < -4 || exp >= p.max(1) as i32 {
                            exp_form(&s)
                        } else {
                            format!("{f:.*}", (p.max(1) as i32 - 1 - exp).max(0) as usize)
                        }
                    }
                },
            };
            (s, true)
        }
        _ => return bad(verb, arg),
    };
    let mut body = body;
    if numeric {
        if spec.plus && !body.starts_with('-') {
            body.insert(0, '+');
        } else if spec.space && !body.starts_with('-') {
            body.insert(0, ' ');
        }
    } else if let Some(p) = spec.precision {
        if matches!(verb, 's' | 'v') {
            body = body.chars().take(p).collect();
        }
    }
    pad(spec, body, numeric)
}

/// Rust's `1.5e6` as Go writes it: `1.5e+06`.
fn exp_form(s: &str) -> String {
    match s.split_once('e') {
        Some((m, e)) => {
            let e: i32 = e.parse().unwrap_or(0);
            format!("{m}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs())
        }
        None => s.to_string(),
    }
}

fn pad(spec: &Spec, body: String, numeric: bool) -> String {
    let Some(width) = spec.width else {
        return body;
    };
    let len = body.chars().count();
    if len >= width {
        return body;
    }
    let fill = width - len;
    if spec.minus {
        format!("{body}{}", " ".repeat(fill))
    } else if spec.zero && numeric {
        let (sign, digits) = match body.chars().next() {
            Some(c @ ('-' | '+' | ' ')) => (c.to_string(), &body[1..]),
            _ => (String::new(), &body[..]),
        };
        format!("{sign}{}{digits}", "0".repeat(fill))
    } else {
        format!("{}{body}", " ".repeat(fill))
    }
}

pub(crate) use berth_common::strconv::quote;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn go_verbs_widths_and_complaints() {
        let f = |format: &str, args: Value| sprintf(format, args.as_array().unwrap());
        assert_eq!(
            f("%s|%-6s|%6s|", json!(["a", "b", "c"])),
            "a|b     |     c|"
        );
        assert_eq!(
            f("%d %05d %+d %x", json!([42, -42, 7, 255])),
            "42 -0042 +7 ff"
        );
        assert_eq!(f("%v %v %v", json!([1.5, true, null])), "1.5 true <nil>");
        assert_eq!(
            f("%q %t %.2f %%", json!(["a\"b", false, 1.23456])),
            "\"a\\\"b\" false 1.23 %"
        );
        assert_eq!(f("%d", json!(["x"])), "%!d(string=x)");
        assert_eq!(f("%s", json!([5])), "%!s(int=5)");
        assert_eq!(f("%s %s", json!(["a"])), "a %!s(MISSING)");
        assert_eq!(f("%s", json!(["a", 3])), "a%!(EXTRA int=3)");
        assert_eq!(
            f("%.3s|%e", json!(["abcdef", 1500000.0])),
            "abc|1.500000e+06"
        );
        assert_eq!(f("%v", json!([["a", "b"]])), "[a b]");
        assert_eq!(f("%T %T %T", json!([1, "s", null])), "int string <nil>");
    }
}
