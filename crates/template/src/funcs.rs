//! The functions a template may call: Go's builtins (`and or not len index slice print
//! printf println eq ne lt le gt ge html urlquery`) and Docker's (`json split join title
//! lower upper pad truncate`), with Go's argument checks and error texts.
use crate::exec::{fault, Exec, Res};
use crate::parse::{Arg, Cmd};
use crate::value::{print, print_json, Kind, Val};
use serde_json::Value;

/// Docker's functions, which a `table` header passes through (Docker's `HeaderFunctions`).
const DOCKER: &[&str] = &[
    "json", "split", "join", "title", "lower", "upper", "pad", "truncate",
];

/// An evaluated argument and the node it came from (`None`: the pipeline's value).
struct Given<'c> {
    val: Val,
    node: Option<&'c Arg>,
}

pub(crate) fn call(
    exec: &mut Exec,
    name: &str,
    cmd: &Cmd,
    dot: &Val,
    last: Option<Val>,
) -> Res<Val> {
    let rest = &cmd.args[1..];
    // `and` and `or` stop at the first argument that decides them (Go 1.18).
    if name == "and" || name == "or" {
        let count = rest.len() + usize::from(last.is_some());
        if count == 0 {
            return Err(fault(
                cmd.pos,
                cmd,
                format!("wrong number of args for {name}: want at least 1 got 0"),
            ));
        }
        let mut value = Val::Missing;
        for a in rest {
            value = exec.arg(a, dot)?;
            if value.truth() == (name == "or") {
                return Ok(value);
            }
        }
        return Ok(last.unwrap_or(value));
    }
    let mut given = Vec::with_capacity(rest.len() + 1);
    for a in rest {
        given.push(Given {
            val: exec.arg(a, dot)?,
            node: Some(a),
        });
    }
    if let Some(v) = last {
        given.push(Given { val: v, node: None });
    }
    if exec.header.is_some() && DOCKER.contains(&name) {
        return Ok(given
            .first()
            .map(|g| Val::str(print(&g.val)))
            .unwrap_or(Val::str("")));
    }
    let err = |message: String| fault(cmd.pos, cmd, format!("error calling {name}: {message}"));
    let arity = |want: usize| -> Res<()> {
        if given.len() == want {
            Ok(())
        } else {
            Err(fault(
                cmd.pos,
                cmd,
                format!(
                    "wrong number of args for {name}: want {want} got {}",
                    given.len()
                ),
            ))
        }
    };
    let document = matches!(exec.shape, crate::Shape::Document);
    let string = |i: usize| -> Res<String> { want_string(&given[i], cmd, document) };
    let int = |i: usize| -> Res<i64> { want_int(&given[i], cmd, document) };
    match name {
        "not" => {
            arity(1)?;
            Ok(Val::bool(!given[0].val.truth()))
        }
        "len" => {
            arity(1)?;
            match &given[0].val {
                Val::Json(Value::String(s), _) => Ok(Val::int(s.len() as i64)),
                Val::Json(Value::Array(a), _) => Ok(Val::int(a.len() as i64)),
                Val::Json(Value::Object(m), Kind::Map) => Ok(Val::int(m.len() as i64)),
                Val::Missing | Val::Json(Value::Null, _) => Err(err("len of nil pointer".into())),
                other => Err(err(format!("len of type {}", other.go_type(false)))),
            }
        }
        "index" => {
            if given.is_empty() {
                return Err(fault(
                    cmd.pos,
                    cmd,
                    "wrong number of args for index: want at least 1 got 0",
                ));
            }
            let mut cur = given[0].val.clone();
            for g in &given[1..] {
                cur = index(&cur, &g.val).map_err(err)?;
            }
            Ok(cur)
        }
        "slice" => {
            if given.is_empty() {
                return Err(fault(
                    cmd.pos,
                    cmd,
                    "wrong number of args for slice: want at least 1 got 0",
                ));
            }
            let mut bounds = Vec::new();
            for i in 1..given.len() {
                bounds.push(int(i)?);
            }
            slice(&given[0].val, &bounds).map_err(err)
        }
        "print" | "println" => {
            let vals: Vec<Value> = given.iter().map(|g| nil_for_missing(&g.val)).collect();
            let mut out = String::new();
            for (i, v) in vals.iter().enumerate() {
                let is_str = |v: &Value| v.is_string();
                if i > 0 && (name == "println" || !(is_str(v) || is_str(&vals[i - 1]))) {
                    out.push(' ');
                }
                out.push_str(&print_json(v, Kind::Struct));
            }
            if name == "println" {
                out.push('\n');
            }
            Ok(Val::str(out))
        }
        "printf" => {
            if given.is_empty() {
                return Err(fault(
                    cmd.pos,
                    cmd,
                    "wrong number of args for printf: want at least 1 got 0",
                ));
            }
            let format = string(0)?;
            let vals: Vec<Value> = given[1..].iter().map(|g| nil_for_missing(&g.val)).collect();
            Ok(Val::str(crate::printf::sprintf(&format, &vals)))
        }
        "eq" => {
            if given.len() < 2 {
                return Err(fault(
                    cmd.pos,
                    cmd,
                    format!(
                        "wrong number of args for eq: want at least 2 got {}",
                        given.len()
                    ),
                ));
            }
            for g in &given[1..] {
                if equal(&given[0].val, &g.val).map_err(err)? {
                    return Ok(Val::bool(true));
                }
            }
            Ok(Val::bool(false))
        }
        "ne" => {
            arity(2)?;
            Ok(Val::bool(
                !equal(&given[0].val, &given[1].val).map_err(err)?,
            ))
        }
        "lt" | "le" | "gt" | "ge" => {
            arity(2)?;
            let ord = compare(&given[0].val, &given[1].val).map_err(err)?;
            use std::cmp::Ordering::*;
            Ok(Val::bool(match name {
                "lt" => ord == Less,
                "le" => ord != Greater,
                "gt" => ord == Greater,
                _ => ord != Less,
            }))
        }
        "html" => {
            let s = sprint(&given);
            let mut out = String::new();
            for c in s.chars() {
                match c {
                    '<' => out.push_str("&lt;"),
                    '>' => out.push_str("&gt;"),
                    '&' => out.push_str("&amp;"),
                    '\'' => out.push_str("&#39;"),
                    '"' => out.push_str("&#34;"),
                    '\0' => out.push('\u{FFFD}'),
                    c => out.push(c),
                }
            }
            Ok(Val::str(out))
        }
        "urlquery" => {
            let s = sprint(&given);
            let mut out = String::new();
            for b in s.bytes() {
                match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                        out.push(b as char)
                    }
                    b' ' => out.push('+'),
                    b => out.push_str(&format!("%{b:02X}")),
                }
            }
            Ok(Val::str(out))
        }
        "json" => {
            arity(1)?;
            let v = nil_for_missing(&given[0].val);
            Ok(Val::str(
                serde_json::to_string(&v).map_err(|e| err(e.to_string()))?,
            ))
        }
        "split" => {
            arity(2)?;
            let (s, sep) = (string(0)?, string(1)?);
            let parts: Vec<Value> = if sep.is_empty() {
                s.chars().map(|c| Value::String(c.to_string())).collect()
            } else {
                s.split(sep.as_str())
                    .map(|p| Value::String(p.into()))
                    .collect()
            };
            Ok(Val::Json(Value::Array(parts), Kind::Struct))
        }
        "join" => {
            arity(2)?;
            let sep = string(1)?;
            let items = match &given[0].val {
                Val::Json(Value::Array(a), _) if a.iter().all(Value::is_string) => a
                    .iter()
                    .map(|v| v.as_str().unwrap_or_default().to_string())
                    .collect::<Vec<_>>(),
                Val::Json(Value::Null, _) => Vec::new(),
                other => {
                    return Err(wrong_type(&given[0], cmd, "[]string", other, document));
                }
            };
            Ok(Val::str(items.join(&sep)))
        }
        "title" => {
            arity(1)?;
            Ok(Val::str(title(&string(0)?)))
        }
        "lower" => {
            arity(1)?;
            Ok(Val::str(string(0)?.to_lowercase()))
        }
        "upper" => {
            arity(1)?;
            Ok(Val::str(string(0)?.to_uppercase()))
        }
        "pad" => {
            arity(3)?;
            let s = string(0)?;
            let (before, after) = (int(1)?, int(2)?);
            if s.is_empty() {
                return Ok(Val::str(s));
            }
            let spaces = |n: i64| " ".repeat(n.max(0) as usize);
            Ok(Val::str(format!("{}{s}{}", spaces(before), spaces(after))))
        }
        "truncate" => {
            arity(2)?;
            let s = string(0)?;
            let n = int(1)?.max(0) as usize;
            if s.len() < n {
                return Ok(Val::str(s));
            }
            // Docker cuts bytes; a cut inside a character keeps the whole characters before it.
            let cut = (0..=n).rev().find(|i| s.is_char_boundary(*i)).unwrap_or(0);
            Ok(Val::str(&s[..cut]))
        }
        other => Err(fault(
            cmd.pos,
            cmd,
            format!("\"{other}\" is not a defined function"),
        )),
    }
}

/// What Go hands an `interface{}` parameter for a missing key: nil.
fn nil_for_missing(v: &Val) -> Value {
    v.json().cloned().unwrap_or(Value::Null)
}

/// `fmt.Sprint` of the arguments (what `html` and `urlquery` escape).
fn sprint(given: &[Given]) -> String {
    let vals: Vec<Value> = given.iter().map(|g| nil_for_missing(&g.val)).collect();
    let mut out = String::new();
    for (i, v) in vals.iter().enumerate() {
        if i > 0 && !(v.is_string() || vals[i - 1].is_string()) {
            out.push(' ');
        }
        out.push_str(&print_json(v, Kind::Struct));
    }
    out
}

fn wrong_type(g: &Given, cmd: &Cmd, want: &str, got: &Val, document: bool) -> crate::exec::Fault {
    let (pos, context) = match g.node {
        Some(a) => (a.pos, a.term.to_string()),
        None => (cmd.pos, cmd.to_string()),
    };
    let message = match got {
        Val::Missing => format!("invalid value; expected {want}"),
        got => format!(
            "wrong type for value; expected {want}; got {}",
            got.go_type(document)
        ),
    };
    fault(pos, context, message)
}

fn want_string(g: &Given, cmd: &Cmd, document: bool) -> Res<String> {
    match &g.val {
        Val::Json(Value::String(s), _) => Ok(s.clone()),
        other => Err(wrong_type(g, cmd, "string", other, document)),
    }
}

fn want_int(g: &Given, cmd: &Cmd, document: bool) -> Res<i64> {
    match &g.val {
        Val::Json(Value::Number(n), _) if !n.is_f64() => n
            .as_i64()
            .ok_or_else(|| wrong_type(g, cmd, "int", &g.val, document)),
        other => Err(wrong_type(g, cmd, "int", other, document)),
    }
}

fn index(item: &Val, key: &Val) -> Result<Val, String> {
    match item {
        Val::Missing | Val::Json(Value::Null, _) => Err("index of untyped nil".into()),
        Val::Json(Value::Array(a), _) => {
            let i = match key {
                Val::Json(Value::Number(n), _) if !n.is_f64() => n.as_i64().unwrap_or(-1),
                other => {
                    return Err(format!(
                        "cannot index slice/array with type {}",
                        other.go_type(false)
                    ))
                }
            };
            usize::try_from(i)
                .ok()
                .and_then(|i| a.get(i))
                .map(|v| Val::Json(v.clone(), Kind::Struct))
                .ok_or_else(|| format!("index out of range: {i}"))
        }
        Val::Json(Value::String(s), _) => {
            let i = match key {
                Val::Json(Value::Number(n), _) if !n.is_f64() => n.as_i64().unwrap_or(-1),
                other => {
                    return Err(format!(
                        "cannot index string with type {}",
                        other.go_type(false)
                    ))
                }
            };
            usize::try_from(i)
                .ok()
                .and_then(|i| s.as_bytes().get(i))
                .map(|b| Val::int(i64::from(*b)))
                .ok_or_else(|| format!("index out of range: {i}"))
        }
        Val::Json(Value::Object(m), kind) => {
            let k = match key {
                Val::Json(Value::String(k), _) => k,
                other => {
                    return Err(format!(
                        "value has type {}; should be string",
                        other.go_type(false)
                    ))
                }
            };
            match m.get(k) {
                Some(v) => {
                    Ok(Val::field(m, *kind, k).unwrap_or(Val::Json(v.clone(), Kind::Struct)))
                }
                // The zero value of the map's element type: "" for Docker's string maps
                // (labels, options), nil otherwise.
                None if !m.is_empty() && m.values().all(Value::is_string) => Ok(Val::str("")),
                None if m.is_empty() => Ok(Val::str("")),
                None => Ok(Val::Json(Value::Null, Kind::Struct)),
            }
        }
        other => Err(format!("can't index item of type {}", other.go_type(false))),
    }
}

fn slice(item: &Val, bounds: &[i64]) -> Result<Val, String> {
    if bounds.len() > 3 {
        return Err(format!("too many slice indexes: {}", bounds.len()));
    }
    let len = match item {
        Val::Json(Value::String(s), _) => s.len(),
        Val::Json(Value::Array(a), _) => a.len(),
        Val::Missing | Val::Json(Value::Null, _) => return Err("slice of untyped nil".into()),
        other => return Err(format!("can't slice item of type {}", other.go_type(false))),
    };
    let at = |i: usize, default: usize| -> Result<usize, String> {
        match bounds.get(i) {
            None => Ok(default),
            Some(&b) if b < 0 || b as usize > len => Err(format!("index out of range: {b}")),
            Some(&b) => Ok(b as usize),
        }
    };
    let (from, to) = (at(0, 0)?, at(1, len)?);
    if from > to {
        return Err(format!("invalid slice index: {from} > {to}"));
    }
    match item {
        Val::Json(Value::String(s), _) => s
            .get(from..to)
            .map(Val::str)
            .ok_or_else(|| "slice inside a character".into()),
        Val::Json(Value::Array(a), _) => {
            Ok(Val::Json(Value::Array(a[from..to].to_vec()), Kind::Struct))
        }
        _ => Err("can't slice".into()),
    }
}

/// A comparable scalar.
enum Basic<'a> {
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(&'a str),
}

fn basic(v: &Val) -> Result<Basic<'_>, String> {
    match v {
        Val::Missing => Ok(Basic::Nil),
        Val::Json(j, _) => match j {
            Value::Null => Ok(Basic::Nil),
            Value::Bool(b) => Ok(Basic::Bool(*b)),
            Value::Number(n) if !n.is_f64() && n.as_i64().is_some() => {
                Ok(Basic::Int(n.as_i64().unwrap_or_default()))
            }
            Value::Number(n) => Ok(Basic::Float(n.as_f64().unwrap_or_default())),
            Value::String(s) => Ok(Basic::Str(s)),
            _ => Err("non-comparable type".into()),
        },
    }
}

fn equal(a: &Val, b: &Val) -> Result<bool, String> {
    Ok(match (basic(a)?, basic(b)?) {
        (Basic::Nil, Basic::Nil) => true,
        (Basic::Nil, _) | (_, Basic::Nil) => false,
        (Basic::Bool(x), Basic::Bool(y)) => x == y,
        (Basic::Int(x), Basic::Int(y)) => x == y,
        (Basic::Int(x), Basic::Float(y)) | (Basic::Float(y), Basic::Int(x)) => x as f64 == y,
        (Basic::Float(x), Basic::Float(y)) => x == y,
        (Basic::Str(x), Basic::Str(y)) => x == y,
        _ => return Err("incompatible types for comparison".into()),
    })
}

fn compare(a: &Val, b: &Val) -> Result<std::cmp::Ordering, String> {
    let bad = || "incompatible types for comparison".to_string();
    match (basic(a)?, basic(b)?) {
        (Basic::Int(x), Basic::Int(y)) => Ok(x.cmp(&y)),
        (Basic::Int(x), Basic::Float(y)) => (x as f64).partial_cmp(&y).ok_or_else(bad),
        (Basic::Float(x), Basic::Int(y)) => x.partial_cmp(&(y as f64)).ok_or_else(bad),
        (Basic::Float(x), Basic::Float(y)) => x.partial_cmp(&y).ok_or_else(bad),
        (Basic::Str(x), Basic::Str(y)) => Ok(x.cmp(y)),
        (Basic::Nil, _) | (_, Basic::Nil) | (Basic::Bool(_), _) | (_, Basic::Bool(_)) => {
            Err("invalid type for comparison".into())
        }
        _ => Err(bad()),
    }
}

/// Go's `strings.Title`: the first letter of each word upper-cased. A word starts after an
/// ASCII character that is not a letter, digit or `_`, or after Unicode white space.
fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut prev_sep = true;
    for c in s.chars() {
        if prev_sep {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        prev_sep = if c.is_ascii() {
            !(c.is_ascii_alphanumeric() || c == '_')
        } else {
            c.is_whitespace()
        };
    }
    out
}
