//! berth-template: Go's `text/template` for Docker's `--format` strings, evaluated over the
//! JSON Berth already makes of its objects, with the functions Docker registers (`json`,
//! `split`, `join`, `title`, `lower`, `upper`, `pad`, `truncate`).
//!
//! Written here rather than taken from the `gtmpl` crate: gtmpl (0.7, passively maintained,
//! on thiserror 1 and lazy_static) has no `else if`/`break`/`continue`, evaluates `and`/`or`
//! eagerly, and its errors carry neither Go's `line:col` nor the `executing "" at <.Foo>`
//! context that scripts and Docker's own messages show; and its values know no difference
//! between a Docker struct and a Docker map, which is what decides Go's missing-key rules.
//!
//! Go's rules kept: a missing key of a *map* is Go's invalid value and prints `<no value>`; a
//! JSON `null` is nil and prints `<nil>`; a missing field of a *struct* is an error — in a
//! listing row (`ps`, `images`, …: [`Shape::Row`]) `can't evaluate field Foo in type
//! *formatter.ContainerContext`, in an inspect document ([`Shape::Document`]) `map has no
//! entry for key "Foo"` (Docker retries a failed typed template on the raw JSON map with
//! `missingkey=error`). Which objects are maps is told by the key they sit under, as
//! Docker's API types name them (`Labels`, `Options`, `Networks`, …).
//!
//! Not done: `define`/`template`/`block` (Docker never defines templates), the `js` and
//! `call` builtins, complex numbers.
mod exec;
mod funcs;
mod lex;
mod parse;
mod printf;
mod value;

use serde_json::Value;
use value::{Kind, Val};

/// A template error, worded as Go's.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum Error {
    /// The template does not parse: `template: :1: unclosed action`.
    #[error("template: :{line}: {message}")]
    Parse { line: usize, message: String },
    /// Evaluating it failed: `template: :1:2: executing "" at <.Foo>: …`.
    #[error("template: :{line}:{col}: executing \"\" at <{context}>: {message}")]
    Exec {
        line: usize,
        col: usize,
        context: String,
        message: String,
    },
}

/// What the data stands for, which decides what naming a field it lacks does.
#[derive(Clone, Copy, Debug)]
pub enum Shape<'a> {
    /// An inspect-like document (`inspect`, `info`, `version`, an event): objects are structs
    /// or maps by the key they sit under.
    Document,
    /// One listing row: a Go struct of the named type (`*formatter.ContainerContext`), whose
    /// fields are exactly the row's keys; `{{.Label "k"}}` reads its `Labels` string.
    Row { go_type: &'a str },
}

/// A parsed template.
#[derive(Debug)]
pub struct Template {
    text: String,
    nodes: Vec<parse::Node>,
}

impl Template {
    /// Parses `text` (Go's syntax: actions, pipelines, `if`/`with`/`range`/`else`, variables,
    /// trim markers, comments).
    pub fn parse(text: &str) -> Result<Template, Error> {
        Ok(Template {
            text: text.to_string(),
            nodes: parse::parse(text)?,
        })
    }

    /// The template's source.
    pub fn source(&self) -> &str {
        &self.text
    }

    /// Evaluates the template over `data`.
    pub fn render(&self, data: &Value, shape: Shape) -> Result<String, Error> {
        let kind = match shape {
            Shape::Row { .. } => Kind::Row,
            Shape::Document => Kind::Struct,
        };
        self.run(Val::Json(data.clone(), kind), shape, None)
    }

    /// The header line of a `table` template: each field is replaced by its column's header
    /// (`header_of("RunningFor")` → `CREATED`) and Docker's functions pass their first
    /// argument through, as Docker renders a table's header.
    pub fn render_header(&self, header_of: &dyn Fn(&str) -> String) -> Result<String, Error> {
        let shape = Shape::Row { go_type: "header" };
        self.run(
            Val::Json(Value::Object(Default::default()), Kind::Row),
            shape,
            Some(header_of),
        )
    }

    fn run(
        &self,
        root: Val,
        shape: Shape,
        header: Option<&dyn Fn(&str) -> String>,
    ) -> Result<String, Error> {
        let mut exec = exec::Exec {
            shape,
            header,
            vars: vec![("$".to_string(), root.clone())],
            out: String::new(),
        };
        exec.run(&self.nodes, &root)
            .map_err(|f| f.place(&self.text))?;
        Ok(exec.out)
    }
}

/// Parses and evaluates `text` over an inspect-like document.
pub fn render(text: &str, data: &Value) -> Result<String, Error> {
    Template::parse(text)?.render(data, Shape::Document)
}

#[cfg(test)]
mod tests;
