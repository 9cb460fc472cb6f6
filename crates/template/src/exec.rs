//! The evaluator: walks the parsed tree over a JSON value with Go's rules — truth, scopes of
//! variables, `range` over slices, maps (in key order) and integers, `break`/`continue`,
//! pipelines passing their value as the last argument, and errors that read as Go's
//! (`template: :1:2: executing "" at <.Foo>: …`).
use crate::funcs;
use crate::parse::{Arg, Branch, Cmd, Node, Pipe, Term};
use crate::value::{Kind, Val};
use crate::{Error, Shape};
use serde_json::Value;

/// How deep `range`/`with`/`if` may nest while evaluating (a bound, not a Go rule).
const MAX_DEPTH: usize = 10_000;

pub(crate) struct Exec<'a> {
    pub shape: Shape<'a>,
    /// Header mode: a field names its column, Docker's functions pass their first argument.
    pub header: Option<&'a dyn Fn(&str) -> String>,
    pub vars: Vec<(String, Val)>,
    pub out: String,
}

/// What a list of nodes ended with.
pub(crate) enum Flow {
    Normal,
    Break,
    Continue,
}

/// An evaluation error before it is placed: `(node position, node text, message)`.
pub(crate) struct Fault {
    pub pos: usize,
    pub context: String,
    pub message: String,
}

pub(crate) type Res<T> = std::result::Result<T, Fault>;

pub(crate) fn fault(pos: usize, context: impl ToString, message: impl Into<String>) -> Fault {
    Fault {
        pos,
        context: context.to_string(),
        message: message.into(),
    }
}

impl Fault {
    pub fn place(self, text: &str) -> Error {
        let before = &text[..self.pos.min(text.len())];
        let line = 1 + before.matches('\n').count();
        let col = before.len() - before.rfind('\n').map(|i| i + 1).unwrap_or(0);
        let mut context = self.context;
        if context.len() > 20 {
            let cut = (0..=20)
                .rev()
                .find(|i| context.is_char_boundary(*i))
                .unwrap_or(0);
            context = format!("{}...", &context[..cut]);
        }
        Error::Exec {
            line,
            col,
            context,
            message: self.message,
        }
    }
}

impl<'a> Exec<'a> {
    pub fn run(&mut self, nodes: &[Node], dot: &Val) -> Res<()> {
        self.list(nodes, dot, 0).map(|_| ())
    }

    fn list(&mut self, nodes: &[Node], dot: &Val, depth: usize) -> Res<Flow> {
        if depth > MAX_DEPTH {
            return Err(fault(0, "", "exceeded maximum template depth"));
        }
        for node in nodes {
            match node {
                Node::Text(t) => self.out.push_str(t),
                Node::Action(pipe) => {
                    let v = self.pipe(pipe, dot)?;
                    if pipe.vars.is_empty() {
                        self.out.push_str(&crate::value::print(&v));
                    }
                }
                Node::If(b) => {
                    let mark = self.vars.len();
                    let v = self.pipe(&b.pipe, dot)?;
                    let flow = if v.truth() {
                        self.list(&b.body, dot, depth + 1)?
                    } else {
                        self.list(&b.otherwise, dot, depth + 1)?
                    };
                    self.vars.truncate(mark);
                    if !matches!(flow, Flow::Normal) {
                        return Ok(flow);
                    }
                }
                Node::With(b) => {
                    let mark = self.vars.len();
                    let v = self.pipe(&b.pipe, dot)?;
                    let flow = if v.truth() {
                        self.list(&b.body, &v, depth + 1)?
                    } else {
                        self.list(&b.otherwise, dot, depth + 1)?
                    };
                    self.vars.truncate(mark);
                    if !matches!(flow, Flow::Normal) {
                        return Ok(flow);
                    }
                }
                Node::Range(b) => {
                    let mark = self.vars.len();
                    self.range(b, dot, depth)?;
                    self.vars.truncate(mark);
                }
                Node::Break => return Ok(Flow::Break),
                Node::Continue => return Ok(Flow::Continue),
            }
        }
        Ok(Flow::Normal)
    }

    fn range(&mut self, b: &Branch, dot: &Val, depth: usize) -> Res<()> {
        // The range's own variables are set per element, not from the pipeline's value.
        let value = self.pipe_value(&b.pipe, dot)?;
        // Lazily: `{{range 1000000}}` must not build a million values first.
        type Items<'v> = Box<dyn Iterator<Item = (Val, Val)> + 'v>;
        let items: Items = match &value {
            Val::Missing => Box::new(std::iter::empty()),
            Val::Json(Value::Null, _) => Box::new(std::iter::empty()),
            Val::Json(Value::Array(a), _) => Box::new(
                a.iter()
                    .enumerate()
                    .map(|(i, v)| (Val::int(i as i64), Val::Json(v.clone(), Kind::Struct))),
            ),
            Val::Json(Value::Object(m), Kind::Map) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                Box::new(keys.into_iter().map(|k| {
                    (
                        Val::str(k.clone()),
                        Val::Json(m[k.as_str()].clone(), Kind::Struct),
                    )
                }))
            }
            Val::Json(Value::Number(n), _) if n.as_i64().is_some() && !n.is_f64() => {
                Box::new((0..n.as_i64().unwrap_or(0)).map(|i| (Val::int(i), Val::int(i))))
            }
            v => {
                return Err(fault(
                    b.pipe.pos,
                    &b.pipe,
                    format!("range can't iterate over {}", crate::value::print(v)),
                ))
            }
        };
        let mut items = items.peekable();
        if items.peek().is_none() {
            self.list(&b.otherwise, dot, depth + 1)?;
            return Ok(());
        }
        for (key, item) in items {
            let mark = self.vars.len();
            match b.pipe.vars.as_slice() {
                [e] => self.set_var(e, item.clone(), b.pipe.assign),
                [k, e] => {
                    self.set_var(k, key, b.pipe.assign);
                    self.set_var(e, item.clone(), b.pipe.assign);
                }
                _ => {}
            }
            let flow = self.list(&b.body, &item, depth + 1)?;
            self.vars.truncate(mark);
            if matches!(flow, Flow::Break) {
                break;
            }
        }
        Ok(())
    }

    fn set_var(&mut self, name: &str, v: Val, assign: bool) {
        if assign {
            if let Some(slot) = self.vars.iter_mut().rev().find(|(n, _)| n == name) {
                slot.1 = v;
                return;
            }
        }
        self.vars.push((name.to_string(), v));
    }

    fn var(&self, name: &str, pos: usize) -> Res<Val> {
        self.vars
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| fault(pos, name, format!("undefined variable: {name}")))
    }

    /// A pipeline's value, declaring or assigning its variables.
    pub fn pipe(&mut self, pipe: &Pipe, dot: &Val) -> Res<Val> {
        let v = self.pipe_value(pipe, dot)?;
        for name in &pipe.vars {
            self.set_var(name, v.clone(), pipe.assign);
        }
        Ok(v)
    }

    fn pipe_value(&mut self, pipe: &Pipe, dot: &Val) -> Res<Val> {
        let mut value: Option<Val> = None;
        for cmd in &pipe.cmds {
            value = Some(self.command(cmd, dot, value)?);
        }
        Ok(value.unwrap_or(Val::Missing))
    }

    fn command(&mut self, cmd: &Cmd, dot: &Val, last: Option<Val>) -> Res<Val> {
        let first = &cmd.args[0];
        let has_args = cmd.args.len() > 1 || last.is_some();
        match &first.term {
            Term::Func(name) => funcs::call(self, name, cmd, dot, last),
            Term::Field(names) if has_args => self.method(first, names, cmd, dot, last),
            _ if has_args => Err(fault(
                first.pos,
                &first.term,
                format!("can't give argument to non-function {}", first.term),
            )),
            Term::Nil => Err(fault(first.pos, "nil", "nil is not a command")),
            _ => self.arg(first, dot),
        }
    }

    /// `{{.Label "key"}}`: the one method Docker's listing rows have with an argument.
    fn method(
        &mut self,
        first: &Arg,
        names: &[String],
        cmd: &Cmd,
        dot: &Val,
        last: Option<Val>,
    ) -> Res<Val> {
        let is_row = matches!(self.shape, Shape::Row { .. });
        let arg = match (cmd.args.get(1), &last) {
            (Some(a), None) if cmd.args.len() == 2 => Some(self.arg(a, dot)?),
            (None, Some(v)) => Some(v.clone()),
            _ => None,
        };
        if let (true, [name], Some(key)) = (is_row, names, &arg) {
            if name == "Label" {
                let key = crate::value::print(key);
                if self.header.is_some() {
                    // Docker heads a label's column with the key's last dotted part.
                    let last = key.rsplit('.').next().unwrap_or_default();
                    return Ok(Val::str(last.replace(['-', '_'], " ")));
                }
                let labels = match dot {
                    Val::Json(Value::Object(m), _) => m.get("Labels").cloned(),
                    _ => None,
                };
                let found = labels.as_ref().and_then(Value::as_str).and_then(|l| {
                    l.split(',')
                        .filter_map(|kv| kv.split_once('='))
                        .find(|(k, _)| *k == key)
                        .map(|(_, v)| v.to_string())
                });
                return Ok(Val::str(found.unwrap_or_default()));
            }
        }
        Err(fault(
            first.pos,
            &first.term,
            format!(
                "{} has arguments but cannot be invoked as function",
                names.last().map(String::as_str).unwrap_or_default()
            ),
        ))
    }

    /// The value of one operand.
    pub fn arg(&mut self, arg: &Arg, dot: &Val) -> Res<Val> {
        match &arg.term {
            Term::Dot => Ok(dot.clone()),
            Term::Field(names) => self.fields(dot.clone(), names, arg),
            Term::Var(name, names) => {
                let v = self.var(name, arg.pos)?;
                self.fields(v, names, arg)
            }
            Term::Func(name) => {
                let cmd = Cmd {
                    pos: arg.pos,
                    args: vec![Arg {
                        pos: arg.pos,
                        term: Term::Func(name.clone()),
                    }],
                };
                funcs::call(self, name, &cmd, dot, None)
            }
            Term::Str(_, s) => Ok(Val::str(s.clone())),
            Term::Num(n) => parse_number(n)
                .ok_or_else(|| fault(arg.pos, n, format!("illegal number syntax: {n:?}"))),
            Term::Bool(b) => Ok(Val::bool(*b)),
            Term::Nil => Ok(Val::Json(Value::Null, Kind::Struct)),
            Term::Sub(pipe, names) => {
                let v = self.pipe(pipe, dot)?;
                self.fields(v, names, arg)
            }
        }
    }

    /// Follows a chain of field names from `start`.
    fn fields(&mut self, start: Val, names: &[String], arg: &Arg) -> Res<Val> {
        if let (Some(header), Some(first)) = (self.header, names.first()) {
            return Ok(Val::str(header(first)));
        }
        let mut cur = start;
        for name in names {
            cur = match &cur {
                // A missing key's fields are missing too (Go's invalid value).
                Val::Missing => Val::Missing,
                Val::Json(Value::Object(obj), kind) => match Val::field(obj, *kind, name) {
                    Some(v) => v,
                    None if *kind == Kind::Map => Val::Missing,
                    None => {
                        let message = match (kind, &self.shape) {
                            (Kind::Row, Shape::Row { go_type }) => {
                                format!("can't evaluate field {name} in type {go_type}")
                            }
                            _ => format!("map has no entry for key \"{name}\""),
                        };
                        return Err(fault(arg.pos, &arg.term, message));
                    }
                },
                Val::Json(Value::Null, Kind::Omitted(omitted)) => {
                    return Err(fault(
                        arg.pos,
                        &arg.term,
                        format!("map has no entry for key \"{omitted}\""),
                    ))
                }
                Val::Json(Value::Null, _) => {
                    return Err(fault(
                        arg.pos,
                        &arg.term,
                        format!("nil pointer evaluating interface {{}}.{name}"),
                    ))
                }
                other => {
                    return Err(fault(
                        arg.pos,
                        &arg.term,
                        format!(
                            "can't evaluate field {name} in type {}",
                            other.go_type(false)
                        ),
                    ))
                }
            };
        }
        Ok(cur)
    }
}

/// A number constant: an integer when it is one, else a float; `'c'` is its code point.
fn parse_number(n: &str) -> Option<Val> {
    if let Some(c) = n.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')) {
        let mut chars = c.chars();
        let ch = chars.next()?;
        return chars.next().is_none().then(|| Val::int(ch as i64));
    }
    let clean = n.replace('_', "");
    let (neg, digits) = match clean.strip_prefix('-') {
        Some(d) => (true, d.to_string()),
        None => (false, clean.trim_start_matches('+').to_string()),
    };
    let int = match digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        Some(hex) => i64::from_str_radix(hex, 16).ok(),
        None => digits.parse::<i64>().ok(),
    };
    if let Some(i) = int {
        return Some(Val::int(if neg { -i } else { i }));
    }
    let f: f64 = digits.parse().ok()?;
    let f = if neg { -f } else { f };
    serde_json::Number::from_f64(f).map(|n| Val::Json(Value::Number(n), Kind::Struct))
}
