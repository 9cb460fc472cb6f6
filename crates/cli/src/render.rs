//! Rendering, once for every command: `--format` for listings (`json`, a Go template per row,
//! or `table [TEMPLATE]` with Docker's column headers) through [`print_rows`], and `inspect`
//! output (a JSON array with Docker's 4-space indent, or a template per document) through
//! [`print_inspect`]. Every template is Go's `text/template`, evaluated by `berth-template`
//! (one evaluator); a document (`info`, an event) goes through [`render_document`].
//! Tables are laid out as Docker's `tabwriter.NewWriter(out, 10, 1, 3, ' ', 0)`.
use berth_template::{Shape, Template};
use serde_json::Value;
use std::io::Write;

/// A `--format` that failed, worded and exited as Docker's CLI does: a listing's template
/// that does not parse (`failed to parse template: …`) or fails on a row (`failed to execute
/// template: …`) exits 1; an inspect template that does not parse exits 64, one that fails
/// on a document exits 1 (both `template parsing error: …`).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct FormatError {
    pub code: i32,
    pub message: String,
}

fn parse_error(e: berth_template::Error, code: i32) -> FormatError {
    FormatError {
        code,
        message: format!("template parsing error: {e}"),
    }
}

/// Renders one document (`info`, `version`, an event) with `template`.
pub fn render_document(template: &Template, doc: &Value) -> Result<String, FormatError> {
    template
        .render(doc, Shape::Document)
        .map_err(|e| parse_error(e, 1))
}

/// Renders a document Docker formats as one typed struct (`info`: `system.dockerInfo`): a
/// field it lacks is Go's `can't evaluate field` error, worded without a prefix.
pub fn render_struct(
    template: &Template,
    doc: &Value,
    go_type: &str,
) -> Result<String, FormatError> {
    template
        .render(doc, Shape::Row { go_type })
        .map_err(|e| FormatError {
            code: 1,
            message: e.to_string(),
        })
}

/// Parses a document's `--format` template (Docker's `template parsing error: …`, exit 1).
pub fn parse_template(format: &str) -> Result<Template, FormatError> {
    Template::parse(format).map_err(|e| parse_error(e, 1))
}

/// A listing's template that does not parse.
fn row_parse_error(e: berth_template::Error) -> FormatError {
    FormatError {
        code: 1,
        message: format!("failed to parse template: {e}"),
    }
}

/// If `err` is a `--format` failure: prints it as Docker does and gives its exit code.
pub fn report_format_error(err: &anyhow::Error) -> Option<i32> {
    let format = err.downcast_ref::<FormatError>()?;
    eprintln!("{format}");
    Some(format.code)
}

/// A listing's table: the columns its default table shows, and Docker's header for every
/// field a `table` template may name (a field not named here is upper-cased).
pub struct Table<'a> {
    /// The Go type Docker renders a row of this listing from, as its errors name it
    /// (`*formatter.ContainerContext`).
    pub go_type: &'a str,
    /// Docker words a failing template of this listing the older way (`images`, `history`,
    /// `network ls`): `template parsing error: …` both when it does not parse and when it
    /// fails on a row; the others say `failed to parse template: …` / `failed to execute
    /// template: …`.
    pub legacy_wording: bool,
    /// `(HEADER, Field)` of the default table, in order.
    pub columns: &'a [(&'a str, &'a str)],
    /// `(Field, HEADER)` for fields whose header is not the upper-cased name.
    pub headers: &'a [(&'a str, &'a str)],
}

impl Table<'_> {
    fn header_of(&self, field: &str) -> String {
        let named = self
            .headers
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, h)| h);
        let shown = self
            .columns
            .iter()
            .find(|(_, f)| *f == field)
            .map(|(h, _)| h);
        named
            .or(shown)
            .map(|h| h.to_string())
            .unwrap_or_else(|| field.to_ascii_uppercase())
    }
}

/// Docker's table writer: columns at least 10 wide, 3 spaces of padding counted inside (the
/// `tabwriter` crate adds padding after its minimum width, so 7 + 3).
pub fn table_writer<W: Write>(out: W) -> tabwriter::TabWriter<W> {
    tabwriter::TabWriter::new(out).minwidth(7).padding(3)
}

/// Prints listing rows (each a JSON object with Docker's `--format` field names) as `format`
/// asks: `json` (one object per line), a template (one line per row), `table TEMPLATE`
/// (headers from `table`), or the default table. As Docker's formatter, `\t` and `\n` in a
/// listing's template are a tab and a newline.
pub fn print_rows(
    out: &mut dyn Write,
    rows: &[Value],
    format: Option<&str>,
    table: &Table,
) -> anyhow::Result<()> {
    let shape = Shape::Row {
        go_type: table.go_type,
    };
    let escapes = |t: &str| t.replace("\\t", "\t").replace("\\n", "\n");
    let execute = |template: &Template, row: &Value| {
        template
            .render(row, shape)
            .map_err(|e| match table.legacy_wording {
                true => parse_error(e, 1),
                false => FormatError {
                    code: 1,
                    message: format!("failed to execute template: {e}"),
                },
            })
    };
    let row_parse_error = |e| match table.legacy_wording {
        true => parse_error(e, 1),
        false => row_parse_error(e),
    };
    match format {
        Some("json") | Some("{{json .}}") => {
            for row in rows {
                writeln!(out, "{row}")?;
            }
        }
        Some(t) if !t.starts_with("table") => {
            let template = Template::parse(&escapes(t)).map_err(row_parse_error)?;
            for row in rows {
                writeln!(out, "{}", execute(&template, row)?)?;
            }
        }
        other => {
            let mut tw = table_writer(Vec::new());
            let custom = other
                .and_then(|t| t.strip_prefix("table"))
                .map(|t| escapes(t.trim_matches(' ')))
                .filter(|t| !t.is_empty());
            match custom {
                Some(t) => {
                    let template = Template::parse(&t).map_err(row_parse_error)?;
                    let header = template
                        .render_header(&|field| table.header_of(field))
                        .map_err(row_parse_error)?;
                    writeln!(tw, "{header}")?;
                    for row in rows {
                        writeln!(tw, "{}", execute(&template, row)?)?;
                    }
                }
                None => {
                    let header: Vec<&str> = table.columns.iter().map(|(h, _)| *h).collect();
                    writeln!(tw, "{}", header.join("\t"))?;
                    for row in rows {
                        let cells: Vec<String> = table
                            .columns
                            .iter()
                            .map(|(_, f)| match &row[*f] {
                                Value::String(s) => s.clone(),
                                Value::Null => String::new(),
                                v => v.to_string(),
                            })
                            .collect();
                        writeln!(tw, "{}", cells.join("\t"))?;
                    }
                }
            }
            tw.flush()?;
            out.write_all(&tw.into_inner()?)?;
        }
    }
    Ok(())
}

/// `berth version --format`: Docker's version document — `.Client` (this CLI) and `.Server`
/// (the engine, which for daemonless Berth is this same program).
pub fn print_version(format: &str) -> anyhow::Result<i32> {
    let server = berth_api::routes::system::version_document();
    let client = serde_json::json!({
        "Platform": {"Name": "Berth"},
        "Version": server["Version"],
        "ApiVersion": server["ApiVersion"],
        "DefaultAPIVersion": server["ApiVersion"],
        "GitCommit": server["GitCommit"],
        "GoVersion": server["GoVersion"],
        "Os": server["Os"],
        "Arch": server["Arch"],
        "BuildTime": "",
        "Context": "default",
    });
    let doc = serde_json::json!({"Client": client, "Server": server});
    let line = match format {
        "json" | "{{json .}}" => doc.to_string(),
        t => render_document(&parse_template(t)?, &doc)?,
    };
    println!("{line}");
    Ok(0)
}

/// Prints `inspect` documents as Docker does: a JSON array indented by 4 spaces (fields in
/// the order the documents serialise them), `json` on one line, or one template line each.
/// A template that does not parse exits 64; one that fails on a document prints the others
/// and then its error (exit 1), as Docker's inspect.
pub fn print_inspect<T: serde::Serialize>(docs: &[T], format: Option<&str>) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match write_inspect(&mut out, docs, format) {
        Err(e) if e.downcast_ref::<FormatError>().is_some() => Err(e),
        // A closed pipe (`| head`) is not worth an error.
        _ => Ok(()),
    }
}

fn write_inspect<T: serde::Serialize>(
    out: &mut dyn Write,
    docs: &[T],
    format: Option<&str>,
) -> anyhow::Result<()> {
    match format {
        Some("json") => writeln!(out, "{}", serde_json::to_string(docs)?)?,
        Some(t) => {
            let template = Template::parse(t).map_err(|e| parse_error(e, 64))?;
            let mut failures = Vec::new();
            let mut printed = false;
            for d in docs {
                let doc = serde_json::to_value(d)?;
                match template.render(&doc, Shape::Document) {
                    Ok(line) => {
                        writeln!(out, "{line}")?;
                        printed = true;
                    }
                    Err(e) => failures.push(format!("template parsing error: {e}")),
                }
            }
            // Docker's inspector ends with a newline even when nothing rendered.
            if !printed {
                writeln!(out)?;
            }
            if !failures.is_empty() {
                return Err(FormatError {
                    code: 1,
                    message: failures.join("\n"),
                }
                .into());
            }
        }
        None => {
            let mut buf = Vec::new();
            let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
            let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
            serde::Serialize::serialize(&docs, &mut ser)?;
            out.write_all(&buf)?;
            writeln!(out)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const PS: Table = Table {
        go_type: "*formatter.ContainerContext",
        legacy_wording: false,
        columns: &[("CONTAINER ID", "ID"), ("NAMES", "Names")],
        headers: &[("RunningFor", "CREATED"), ("CreatedAt", "CREATED AT")],
    };

    fn rows_text(format: Option<&str>) -> String {
        let rows = vec![json!({"ID": "abc", "Names": "web", "RunningFor": "2 hours ago"})];
        let mut out = Vec::new();
        print_rows(&mut out, &rows, format, &PS).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn tables_templates_and_json() {
        assert_eq!(
            rows_text(None),
            "CONTAINER ID   NAMES\nabc            web\n"
        );
        assert_eq!(
            rows_text(Some("table {{.ID}}\\t{{.RunningFor}}")),
            "CONTAINER ID   CREATED\nabc            2 hours ago\n"
        );
        assert_eq!(rows_text(Some("{{.Names}}")), "web\n");
        assert!(rows_text(Some("json")).starts_with("{\"ID\":\"abc\""));
        // A row has fixed fields: naming another is an error, as with Docker's typed rows.
        let rows = vec![json!({"ID": "abc"})];
        let err = print_rows(&mut Vec::new(), &rows, Some("{{.Nope}}"), &PS).unwrap_err();
        let err = err.downcast::<FormatError>().unwrap();
        assert_eq!(err.code, 1);
        assert_eq!(
            err.message,
            "failed to execute template: template: :1:2: executing \"\" at <.Nope>: can't evaluate field Nope in type *formatter.ContainerContext"
        );
        let err = print_rows(&mut Vec::new(), &rows, Some("{{.ID"), &PS).unwrap_err();
        assert_eq!(
            err.to_string(),
            "failed to parse template: template: :1: unclosed action"
        );
        // Headers go through the same evaluator: functions pass the header through.
        assert_eq!(
            rows_text(Some("table {{.ID | lower}}\\t{{truncate .RunningFor 3}}")),
            "CONTAINER ID   CREATED\nabc            2 h\n"
        );
        assert_eq!(
            rows_text(Some("{{if eq .Names \"web\"}}{{.ID}}{{end}}")),
            "abc\n"
        );
    }

    #[test]
    fn short_columns_are_ten_wide() {
        let rows = vec![json!({"ID": "a", "Names": "b"})];
        let table = Table {
            go_type: "*formatter.ContainerContext",
            legacy_wording: false,
            columns: &[("A", "ID"), ("B", "Names")],
            headers: &[],
        };
        let mut out = Vec::new();
        print_rows(&mut out, &rows, None, &table).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "A         B\na         b\n"
        );
    }

    #[test]
    fn inspect_is_indented_by_four() {
        let mut out = Vec::new();
        write_inspect(&mut out, &[json!({"Id": "x", "State": {"Pid": 1}})], None).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "[\n    {\n        \"Id\": \"x\",\n        \"State\": {\n            \"Pid\": 1\n        }\n    }\n]\n"
        );
        let mut out = Vec::new();
        write_inspect(
            &mut out,
            &[json!({"Id": "x", "Health": null, "Config": {"Labels": {}}})],
            Some("{{.Id}} {{.Health}} {{.Config.Labels.nope}}"),
        )
        .unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "x <nil> <no value>\n");
        // Docker's inspect: a field no document has is an error naming it (exit 1), a
        // template that does not parse exits 64.
        let err = write_inspect(&mut Vec::new(), &[json!({"Id": "x"})], Some("{{.Nope}}"))
            .unwrap_err()
            .downcast::<FormatError>()
            .unwrap();
        assert_eq!(
            (err.code, err.message.as_str()),
            (1, "template parsing error: template: :1:2: executing \"\" at <.Nope>: map has no entry for key \"Nope\"")
        );
        let err = write_inspect(&mut Vec::new(), &[json!({"Id": "x"})], Some("{{.Id"))
            .unwrap_err()
            .downcast::<FormatError>()
            .unwrap();
        assert_eq!(err.code, 64);
    }
}
