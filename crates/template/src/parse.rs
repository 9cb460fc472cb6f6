//! The parser: tokens into the tree Go's `text/template/parse` builds — text, actions,
//! `if`/`with`/`range` (each with `else`, and `else if`/`else with` chains), `break`,
//! `continue`, pipelines of commands with variable declarations. Functions are checked
//! here, as Go does (`function "x" not defined` is a parse error).
use crate::lex::{Item, Tok};
use crate::Error;

#[derive(Debug)]
pub(crate) enum Node {
    Text(String),
    Action(Pipe),
    If(Branch),
    With(Branch),
    Range(Branch),
    Break,
    Continue,
}

/// `if`/`with`/`range`: the pipeline, the body, and what `else` holds.
#[derive(Debug)]
pub(crate) struct Branch {
    pub pipe: Pipe,
    pub body: Vec<Node>,
    pub otherwise: Vec<Node>,
}

#[derive(Debug)]
pub(crate) struct Pipe {
    pub pos: usize,
    /// Declared (`:=`) or assigned (`=`) variables.
    pub vars: Vec<String>,
    pub assign: bool,
    pub cmds: Vec<Cmd>,
}

#[derive(Debug)]
pub(crate) struct Cmd {
    pub pos: usize,
    pub args: Vec<Arg>,
}

#[derive(Debug)]
pub(crate) enum Term {
    /// `.A.B` (the names).
    Field(Vec<String>),
    /// `$x.A.B`.
    Var(String, Vec<String>),
    Dot,
    /// A function name.
    Func(String),
    Str(String, String),
    Num(String),
    Bool(bool),
    Nil,
    /// `(pipeline).A.B`.
    Sub(Box<Pipe>, Vec<String>),
}

#[derive(Debug)]
pub(crate) struct Arg {
    pub pos: usize,
    pub term: Term,
}

/// Names the evaluator knows; anything else called as a function fails to parse.
pub(crate) const FUNCTIONS: &[&str] = &[
    "and", "or", "not", "len", "index", "slice", "print", "printf", "println", "eq", "ne", "lt",
    "le", "gt", "ge", "html", "urlquery", "json", "split", "join", "title", "lower", "upper",
    "pad", "truncate",
];

struct Parser<'a> {
    text: &'a str,
    items: Vec<Item>,
    at: usize,
    /// Declared variables, as a stack of scopes (`$` is always there).
    vars: Vec<String>,
    /// How many `range`s enclose the current node (for `break`/`continue`).
    ranges: usize,
    /// How deep branches and parentheses nest here (bounded, so no input overflows the stack).
    depth: usize,
}

/// The deepest nesting of `if`/`with`/`range` and parentheses a template may have (Go bounds
/// it too, at 10000; ours is lower so parsing and evaluating stay well inside the 2 MiB stack
/// of a spawned thread even in a debug build).
const MAX_DEPTH: usize = 100;

/// Parses a template.
pub(crate) fn parse(text: &str) -> Result<Vec<Node>, Error> {
    let items = crate::lex::lex(text)?;
    let mut p = Parser {
        text,
        items,
        at: 0,
        vars: vec!["$".into()],
        ranges: 0,
        depth: 0,
    };
    let (nodes, end) = p.list()?;
    match end {
        End::Eof => Ok(nodes),
        End::End(pos) => Err(p.err(pos, "unexpected {{end}}")),
        End::Else(pos, _) => Err(p.err(pos, "unexpected {{else}}")),
    }
}

/// What closed a list of nodes.
#[allow(clippy::enum_variant_names)] // `End::End` is Go's `{{end}}`.
enum End {
    Eof,
    End(usize),
    /// `{{else}}` (`None`) or `{{else if …}}`/`{{else with …}}` (the keyword).
    Else(usize, Option<String>),
}

impl Parser<'_> {
    fn err(&self, pos: usize, message: impl Into<String>) -> Error {
        Error::Parse {
            line: 1 + self.text[..pos.min(self.text.len())].matches('\n').count(),
            message: message.into(),
        }
    }

    fn peek(&self) -> Option<&Item> {
        self.items.get(self.at)
    }

    fn next(&mut self) -> Option<Item> {
        let item = self.items.get(self.at).cloned();
        self.at += 1;
        item
    }

    fn skip_space(&mut self) {
        while matches!(
            self.peek(),
            Some(Item {
                tok: Tok::Space,
                ..
            })
        ) {
            self.at += 1;
        }
    }

    fn eof_pos(&self) -> usize {
        self.text.len()
    }

    fn list(&mut self) -> Result<(Vec<Node>, End), Error> {
        let mut nodes = Vec::new();
        loop {
            let Some(item) = self.next() else {
                return Ok((nodes, End::Eof));
            };
            match item.tok {
                Tok::Text(t) => nodes.push(Node::Text(t)),
                Tok::Left => {
                    self.skip_space();
                    let Some(first) = self.peek().cloned() else {
                        return Err(self.err(item.pos, "unclosed action"));
                    };
                    match &first.tok {
                        Tok::Ident(word) => match word.as_str() {
                            "end" => {
                                self.at += 1;
                                self.close(first.pos, "end")?;
                                return Ok((nodes, End::End(first.pos)));
                            }
                            "else" => {
                                self.at += 1;
                                self.skip_space();
                                let chained = match self.peek() {
                                    Some(Item {
                                        tok: Tok::Ident(w), ..
                                    }) if w == "if" || w == "with" => {
                                        let w = w.clone();
                                        self.at += 1;
                                        Some(w)
                                    }
                                    _ => {
                                        self.close(first.pos, "else")?;
                                        None
                                    }
                                };
                                return Ok((nodes, End::Else(first.pos, chained)));
                            }
                            "if" | "with" | "range" => {
                                self.at += 1;
                                let word = word.clone();
                                nodes.push(self.branch(&word, first.pos)?);
                            }
                            "break" | "continue" => {
                                self.at += 1;
                                if self.ranges == 0 {
                                    return Err(self.err(
                                        first.pos,
                                        format!("{{{{{word}}}}} outside {{{{range}}}}"),
                                    ));
                                }
                                self.close(first.pos, word)?;
                                nodes.push(if word == "break" {
                                    Node::Break
                                } else {
                                    Node::Continue
                                });
                            }
                            "define" | "template" | "block" => {
                                return Err(
                                    self.err(first.pos, format!("{word} is not supported here"))
                                );
                            }
                            _ => nodes.push(Node::Action(self.pipeline("command", false)?)),
                        },
                        _ => nodes.push(Node::Action(self.pipeline("command", false)?)),
                    }
                }
                other => return Err(self.err(item.pos, format!("unexpected {other:?}"))),
            }
        }
    }

    /// Expects the `}}` that closes `{{word …`.
    fn close(&mut self, pos: usize, word: &str) -> Result<(), Error> {
        self.skip_space();
        match self.next() {
            Some(Item {
                tok: Tok::Right, ..
            }) => Ok(()),
            _ => Err(self.err(pos, format!("unexpected input in {{{{{word}}}}}"))),
        }
    }

    /// Parses `if`/`with`/`range` after the keyword, through its `{{end}}`.
    fn branch(&mut self, word: &str, pos: usize) -> Result<Node, Error> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err(pos, "max expression depth exceeded"));
        }
        let node = self.branch_inner(word, pos);
        self.depth -= 1;
        node
    }

    fn branch_inner(&mut self, word: &str, pos: usize) -> Result<Node, Error> {
        let scope = self.vars.len();
        let pipe = self.pipeline(word, word == "range")?;
        if word == "range" {
            self.ranges += 1;
        }
        let (body, end) = self.list()?;
        if word == "range" {
            self.ranges -= 1;
        }
        let otherwise = match end {
            End::Eof => return Err(self.err(pos, "unexpected EOF")),
            End::End(_) => Vec::new(),
            End::Else(_, None) => {
                let (otherwise, end) = self.list()?;
                match end {
                    End::End(_) => otherwise,
                    End::Else(p, _) => return Err(self.err(p, "expected end; found {{else}}")),
                    End::Eof => return Err(self.err(pos, "unexpected EOF")),
                }
            }
            // `{{else if x}}…{{end}}` is `{{else}}{{if x}}…{{end}}{{end}}`: the inner branch
            // consumes the one `{{end}}`.
            End::Else(p, Some(inner)) => vec![self.branch(&inner, p)?],
        };
        self.vars.truncate(scope);
        let branch = Branch {
            pipe,
            body,
            otherwise,
        };
        Ok(match word {
            "if" => Node::If(branch),
            "with" => Node::With(branch),
            _ => Node::Range(branch),
        })
    }

    /// A pipeline up to `}}` (or `)` when `sub`): optional declarations, then commands.
    fn pipeline(&mut self, context: &str, range: bool) -> Result<Pipe, Error> {
        self.pipe_until(context, range, false)
    }

    fn pipe_until(&mut self, context: &str, range: bool, sub: bool) -> Result<Pipe, Error> {
        self.skip_space();
        let pos = self.peek().map(|i| i.pos).unwrap_or(self.eof_pos());
        let mut vars = Vec::new();
        let mut assign = false;
        // Declarations: `$x :=`, `$x =`, or in a range `$i, $e :=`.
        let start = self.at;
        if let Some(Item {
            tok: Tok::Var(name),
            ..
        }) = self.peek().cloned()
        {
            self.at += 1;
            self.skip_space();
            match self.peek().map(|i| &i.tok) {
                Some(Tok::Declare) | Some(Tok::Assign) => {
                    assign = matches!(self.peek().map(|i| &i.tok), Some(Tok::Assign));
                    self.at += 1;
                    vars.push(name);
                }
                Some(Tok::Comma) if range => {
                    self.at += 1;
                    self.skip_space();
                    match self.next() {
                        Some(Item {
                            tok: Tok::Var(second),
                            ..
                        }) => {
                            self.skip_space();
                            match self.next().map(|i| i.tok) {
                                Some(Tok::Declare) => {}
                                Some(Tok::Assign) => assign = true,
                                _ => return Err(self.err(pos, "missing := in range declaration")),
                            }
                            vars.push(name);
                            vars.push(second);
                        }
                        _ => return Err(self.err(pos, "range can only initialize variables")),
                    }
                }
                _ => self.at = start,
            }
        }
        for v in &vars {
            if assign && !self.vars.contains(v) {
                return Err(self.err(pos, format!("undefined variable \"{v}\"")));
            }
        }
        let mut cmds = Vec::new();
        loop {
            self.skip_space();
            match self.peek().map(|i| i.tok.clone()) {
                None => return Err(self.err(pos, "unclosed action")),
                Some(Tok::Right) if !sub => {
                    self.at += 1;
                    break;
                }
                Some(Tok::RParen) if sub => {
                    self.at += 1;
                    break;
                }
                Some(Tok::Right) | Some(Tok::RParen) => {
                    return Err(self.err(pos, "unclosed left paren"))
                }
                _ => {}
            }
            let cmd = self.command(sub)?;
            cmds.push(cmd);
            self.skip_space();
            if matches!(self.peek().map(|i| &i.tok), Some(Tok::Pipe)) {
                self.at += 1;
                self.skip_space();
                if matches!(
                    self.peek().map(|i| &i.tok),
                    Some(Tok::Right) | Some(Tok::RParen) | None
                ) {
                    return Err(self.err(pos, "missing command"));
                }
            }
        }
        if cmds.is_empty() {
            return Err(self.err(pos, format!("missing value for {context}")));
        }
        // Declarations take effect after the pipeline.
        if !assign {
            self.vars.extend(vars.iter().cloned());
        }
        Ok(Pipe {
            pos,
            vars,
            assign,
            cmds,
        })
    }

    /// One command: operands up to `|`, `}}` or `)`.
    fn command(&mut self, sub: bool) -> Result<Cmd, Error> {
        let pos = self.peek().map(|i| i.pos).unwrap_or(self.eof_pos());
        let mut args = Vec::new();
        loop {
            self.skip_space();
            match self.peek().map(|i| &i.tok) {
                None => return Err(self.err(pos, "unclosed action")),
                Some(Tok::Pipe) | Some(Tok::Right) | Some(Tok::RParen) => break,
                _ => {}
            }
            args.push(self.operand(sub)?);
        }
        if args.is_empty() {
            return Err(self.err(pos, "empty command"));
        }
        Ok(Cmd { pos, args })
    }

    /// One operand, with any `.Field` chain directly after it.
    fn operand(&mut self, _sub: bool) -> Result<Arg, Error> {
        let Some(item) = self.next() else {
            return Err(self.err(self.eof_pos(), "unclosed action"));
        };
        let pos = item.pos;
        let mut term = match item.tok {
            Tok::Field(name) => Term::Field(vec![name]),
            Tok::Var(name) => {
                if !self.vars.contains(&name) {
                    return Err(self.err(pos, format!("undefined variable \"{name}\"")));
                }
                Term::Var(name, Vec::new())
            }
            Tok::Dot => Term::Dot,
            Tok::Ident(name) => {
                if !FUNCTIONS.contains(&name.as_str()) {
                    return Err(self.err(pos, format!("function \"{name}\" not defined")));
                }
                Term::Func(name)
            }
            Tok::Str(src, value) => Term::Str(src, value),
            Tok::Num(n) => Term::Num(n),
            Tok::Bool(b) => Term::Bool(b),
            Tok::Nil => Term::Nil,
            Tok::LParen => {
                self.depth += 1;
                if self.depth > MAX_DEPTH {
                    return Err(self.err(pos, "max expression depth exceeded"));
                }
                let pipe = self.pipe_until("parenthesized pipeline", false, true);
                self.depth -= 1;
                Term::Sub(Box::new(pipe?), Vec::new())
            }
            other => return Err(self.err(pos, format!("unexpected {} in operand", show(&other)))),
        };
        // A field chain: `.A.B`, `$x.A`, `(pipe).A`.
        let mut chain_pos = None;
        while let Some(Item {
            tok: Tok::Field(name),
            pos: p,
        }) = self.peek().cloned()
        {
            self.at += 1;
            chain_pos.get_or_insert(p);
            match &mut term {
                Term::Field(names) | Term::Var(_, names) | Term::Sub(_, names) => names.push(name),
                Term::Dot => term = Term::Field(vec![name]),
                _ => return Err(self.err(p, format!("unexpected .{name} after operand"))),
            }
        }
        // Go reports a chained field at the position of its second link.
        let pos = match (&term, chain_pos) {
            (Term::Field(_), Some(p)) => p,
            _ => pos,
        };
        Ok(Arg { pos, term })
    }
}

fn show(tok: &Tok) -> String {
    match tok {
        Tok::Comma => "\",\"".into(),
        Tok::Declare => "\":=\"".into(),
        Tok::Assign => "\"=\"".into(),
        Tok::Pipe => "\"|\"".into(),
        other => format!("{other:?}"),
    }
}

impl std::fmt::Display for Term {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let chain = |names: &[String]| names.iter().map(|n| format!(".{n}")).collect::<String>();
        match self {
            Term::Field(names) => write!(f, "{}", chain(names)),
            Term::Var(v, names) => write!(f, "{v}{}", chain(names)),
            Term::Dot => write!(f, "."),
            Term::Func(n) => write!(f, "{n}"),
            Term::Str(src, _) => write!(f, "{src}"),
            Term::Num(n) => write!(f, "{n}"),
            Term::Bool(b) => write!(f, "{b}"),
            Term::Nil => write!(f, "nil"),
            Term::Sub(p, names) => write!(f, "({p}){}", chain(names)),
        }
    }
}

impl std::fmt::Display for Cmd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let args: Vec<String> = self.args.iter().map(|a| a.term.to_string()).collect();
        write!(f, "{}", args.join(" "))
    }
}

impl std::fmt::Display for Pipe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if !self.vars.is_empty() {
            write!(
                f,
                "{} {} ",
                self.vars.join(", "),
                if self.assign { "=" } else { ":=" }
            )?;
        }
        let cmds: Vec<String> = self.cmds.iter().map(|c| c.to_string()).collect();
        write!(f, "{}", cmds.join(" | "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_err(text: &str) -> String {
        match parse(text) {
            Err(e) => e.to_string(),
            Ok(nodes) => panic!("{text} parsed: {nodes:?}"),
        }
    }

    #[test]
    fn go_parse_errors() {
        assert_eq!(parse_err("{{.A"), "template: :1: unclosed action");
        assert_eq!(
            parse_err("{{nope .A}}"),
            "template: :1: function \"nope\" not defined"
        );
        assert_eq!(parse_err("{{end}}"), "template: :1: unexpected {{end}}");
        assert_eq!(parse_err("{{if .A}}x"), "template: :1: unexpected EOF");
        assert_eq!(
            parse_err("{{$x}}"),
            "template: :1: undefined variable \"$x\""
        );
        assert_eq!(
            parse_err("\n{{break}}"),
            "template: :2: {{break}} outside {{range}}"
        );
        assert_eq!(parse_err("{{}}"), "template: :1: missing value for command");
        let deep = format!("{{{{{}.A{}}}}}", "(".repeat(100_000), ")".repeat(100_000));
        assert_eq!(
            parse_err(&deep),
            "template: :1: max expression depth exceeded"
        );
        let deep = "{{if 1}}".repeat(100_000);
        assert_eq!(
            parse_err(&deep),
            "template: :1: max expression depth exceeded"
        );
    }

    #[test]
    fn chains_and_branches() {
        let nodes = parse("{{if .A}}a{{else if .B}}b{{else}}c{{end}}").unwrap();
        assert!(matches!(&nodes[..], [Node::If(b)] if matches!(&b.otherwise[..], [Node::If(_)])));
        let nodes = parse("{{range $i, $e := .L}}{{$i}}{{end}}").unwrap();
        assert!(matches!(&nodes[..], [Node::Range(b)] if b.pipe.vars == ["$i", "$e"]));
        let nodes = parse("{{(index .A 0).B.C | printf \"%s\"}}").unwrap();
        let Node::Action(p) = &nodes[0] else { panic!() };
        assert_eq!(p.to_string(), "(index .A 0).B.C | printf \"%s\"");
    }
}
