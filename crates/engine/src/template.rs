//! A small evaluator for Docker's `--format` Go templates over JSON: `{{.A.B}}`, `{{json .A}}`,
//! `{{.A | json}}`, `{{upper .A}}`, `{{lower .A}}`, `{{index .A "key"}}`, `{{range .A}}…{{end}}`
//! (over arrays and maps, with `.` the element) and literal text with `\t` `\n` escapes. Enough
//! for the formats scripts use (`{{.State.Pid}}`, `{{json .Mounts}}`, `{{.ID}}\t{{.Names}}`).
//!
//! Go's rules for absent values: a `null` prints `<nil>`; a missing key prints `<no value>`
//! in a document ([`render`], as Docker's inspect falls back to a map), and is an error in a
//! listing row ([`render_row`], Docker's rows are structs with fixed fields).
use crate::error::{EngineError, Result};
use serde_json::Value;

enum Node {
    Text(String),
    Action(String),
    Range(String, Vec<Node>),
}

fn parse(template: &str) -> Result<Vec<Node>> {
    let mut tokens = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        if start > 0 {
            tokens.push((false, rest[..start].to_string()));
        }
        let end = rest[start..]
            .find("}}")
            .ok_or_else(|| EngineError::Template {
                template: template.into(),
                reason: "unclosed {{".into(),
            })?;
        let inner = rest[start + 2..start + end]
            .trim()
            .trim_start_matches('-')
            .trim_end_matches('-')
            .trim();
        tokens.push((true, inner.to_string()));
        rest = &rest[start + end + 2..];
    }
    if !rest.is_empty() {
        tokens.push((false, rest.to_string()));
    }
    let mut iter = tokens.into_iter();
    let nodes = build(&mut iter)?;
    Ok(nodes)
}

fn build(iter: &mut impl Iterator<Item = (bool, String)>) -> Result<Vec<Node>> {
    let mut nodes = Vec::new();
    while let Some((is_action, text)) = iter.next() {
        if !is_action {
            nodes.push(Node::Text(text.replace("\\t", "\t").replace("\\n", "\n")));
        } else if let Some(expr) = text.strip_prefix("range ") {
            let body = build(iter)?;
            nodes.push(Node::Range(expr.trim().to_string(), body));
        } else if text == "end" {
            return Ok(nodes);
        } else {
            nodes.push(Node::Action(text));
        }
    }
    Ok(nodes)
}

fn lookup<'a>(root: &'a Value, path: &str) -> Option<&'a Value> {
    if path == "." {
        return Some(root);
    }
    let mut cur = root;
    for part in path
        .trim_start_matches('.')
        .split('.')
        .filter(|p| !p.is_empty())
    {
        cur = match cur {
            Value::Object(map) => map.get(part).or_else(|| {
                map.iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(part))
                    .map(|(_, v)| v)
            })?,
            _ => return None,
        };
    }
    Some(cur)
}

/// Go's default rendering of a value (`None`: a missing key).
fn plain_opt(value: Option<&Value>) -> String {
    value.map(plain).unwrap_or_else(|| "<no value>".into())
}

/// Go's default rendering of a value.
pub fn plain(value: &Value) -> String {
    match value {
        Value::Null => "<nil>".into(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Array(a) => format!("[{}]", a.iter().map(plain).collect::<Vec<_>>().join(" ")),
        Value::Object(m) => format!(
            "map[{}]",
            m.iter()
                .map(|(k, v)| format!("{k}:{}", plain(v)))
                .collect::<Vec<_>>()
                .join(" ")
        ),
    }
}

/// How a missing key is treated: `<no value>` (documents) or an error (listing rows).
#[derive(Clone, Copy, PartialEq)]
enum Missing {
    NoValue,
    Error,
}

fn eval(expr: &str, data: &Value, template: &str, missing: Missing) -> Result<Option<Value>> {
    let err = |reason: &str| EngineError::Template {
        template: template.into(),
        reason: reason.into(),
    };
    let get = |path: &str| -> Result<Option<Value>> {
        match lookup(data, path) {
            Some(v) => Ok(Some(v.clone())),
            None if missing == Missing::Error => Err(err(&format!(
                "can't evaluate field {}",
                path.trim_start_matches('.')
            ))),
            None => Ok(None),
        }
    };
    let (expr, piped) = match expr.split_once('|') {
        Some((a, b)) => (a.trim(), Some(b.trim())),
        None => (expr, None),
    };
    let words: Vec<&str> = expr.split_whitespace().collect();
    let json = |v: &Option<Value>| {
        Value::String(serde_json::to_string(v.as_ref().unwrap_or(&Value::Null)).unwrap_or_default())
    };
    let value = match words.as_slice() {
        [path] if path.starts_with('.') => get(path)?,
        ["json", path] => Some(json(&get(path)?)),
        ["upper", path] => Some(Value::String(plain_opt(get(path)?.as_ref()).to_uppercase())),
        ["lower", path] => Some(Value::String(plain_opt(get(path)?.as_ref()).to_lowercase())),
        ["index", path, key] => {
            let key = key.trim_matches('"');
            match get(path)? {
                Some(Value::Object(m)) => m.get(key).cloned(),
                Some(Value::Array(a)) => key.parse::<usize>().ok().and_then(|i| a.get(i).cloned()),
                _ => None,
            }
        }
        _ => return Err(err(&format!("unsupported action {{{{{expr}}}}}"))),
    };
    match piped {
        Some("json") => Ok(Some(json(&value))),
        Some("upper") => Ok(Some(Value::String(
            plain_opt(value.as_ref()).to_uppercase(),
        ))),
        Some("lower") => Ok(Some(Value::String(
            plain_opt(value.as_ref()).to_lowercase(),
        ))),
        Some(other) => Err(err(&format!("unsupported function {other}"))),
        None => Ok(value),
    }
}

fn render_nodes(
    nodes: &[Node],
    data: &Value,
    template: &str,
    missing: Missing,
    out: &mut String,
) -> Result<()> {
    for node in nodes {
        match node {
            Node::Text(t) => out.push_str(t),
            Node::Action(expr) => {
                out.push_str(&plain_opt(eval(expr, data, template, missing)?.as_ref()))
            }
            Node::Range(expr, body) => match eval(expr, data, template, missing)? {
                Some(Value::Array(items)) => {
                    for item in &items {
                        render_nodes(body, item, template, missing, out)?;
                    }
                }
                Some(Value::Object(map)) => {
                    for item in map.values() {
                        render_nodes(body, item, template, missing, out)?;
                    }
                }
                _ => {}
            },
        }
    }
    Ok(())
}

fn render_with(template: &str, data: &Value, missing: Missing) -> Result<String> {
    let nodes = parse(template)?;
    let mut out = String::new();
    render_nodes(&nodes, data, template, missing, &mut out)?;
    Ok(out)
}

/// Renders `template` against a document (`inspect`, `info`, `version`): a missing key
/// prints `<no value>`.
pub fn render(template: &str, data: &Value) -> Result<String> {
    render_with(template, data, Missing::NoValue)
}

/// Renders `template` against one listing row (`ps`, `images`, `stats`, …): naming a field
/// the row does not have is an error, as with Docker's typed rows.
pub fn render_row(template: &str, row: &Value) -> Result<String> {
    render_with(template, row, Missing::Error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn docker_style_formats() {
        let v = json!({"State": {"Pid": 42, "Running": true}, "Name": "/web", "Mounts": [{"Source": "/a"}, {"Source": "/b"}], "Labels": {"k": "v"}});
        assert_eq!(render("{{.State.Pid}}", &v).unwrap(), "42");
        assert_eq!(
            render("{{.Name}} {{.State.Running}}", &v).unwrap(),
            "/web true"
        );
        assert_eq!(
            render("{{json .State}}", &v).unwrap(),
            r#"{"Pid":42,"Running":true}"#
        );
        assert_eq!(
            render("{{.State | json}}", &v).unwrap(),
            r#"{"Pid":42,"Running":true}"#
        );
        assert_eq!(
            render("{{range .Mounts}}{{.Source}} {{end}}", &v).unwrap(),
            "/a /b "
        );
        assert_eq!(render("{{index .Labels \"k\"}}", &v).unwrap(), "v");
        assert_eq!(render("{{.Missing}}", &v).unwrap(), "<no value>");
        assert!(render_row("{{.Missing}}", &v).is_err());
        assert_eq!(render_row("{{.Name}}", &v).unwrap(), "/web");
        let n = json!({"Health": null});
        assert_eq!(render("{{.Health}}", &n).unwrap(), "<nil>");
        assert_eq!(render("{{json .Health}}", &n).unwrap(), "null");
        assert_eq!(render("a\\tb", &v).unwrap(), "a\tb");
        assert!(render("{{.State", &v).is_err());
    }
}
