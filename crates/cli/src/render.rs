//! Rendering, once for every command: `--format` for listings (`json`, a Go template per row,
//! or `table [TEMPLATE]` with Docker's column headers) through [`print_rows`], and `inspect`
//! output (a JSON array with Docker's 4-space indent, or a template per document) through
//! [`print_inspect`]. Templates are evaluated by `berth_engine::template` (one evaluator).
//! Tables are laid out as Docker's `tabwriter.NewWriter(out, 10, 1, 3, ' ', 0)`.
use serde_json::Value;
use std::io::Write;

/// A listing's table: the columns its default table shows, and Docker's header for every
/// field a `table` template may name (a field not named here is upper-cased).
pub struct Table<'a> {
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
/// (headers from `table`), or the default table.
pub fn print_rows(
    out: &mut dyn Write,
    rows: &[Value],
    format: Option<&str>,
    table: &Table,
) -> anyhow::Result<()> {
    match format.map(str::trim) {
        Some("json") | Some("{{json .}}") => {
            for row in rows {
                writeln!(out, "{row}")?;
            }
        }
        Some(t) if !t.starts_with("table") => {
            for row in rows {
                writeln!(out, "{}", berth_engine::template::render_row(t, row)?)?;
            }
        }
        other => {
            let mut tw = table_writer(Vec::new());
            let custom = other
                .and_then(|t| t.strip_prefix("table"))
                .map(str::trim)
                .filter(|t| !t.is_empty());
            match custom {
                Some(t) => {
                    writeln!(tw, "{}", header_line(t, table))?;
                    for row in rows {
                        writeln!(tw, "{}", berth_engine::template::render_row(t, row)?)?;
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

/// The header line of a `table` template: each `{{.Field}}` becomes its column's header.
fn header_line(template: &str, table: &Table) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let Some(len) = rest[start..].find("}}") else {
            rest = &rest[start..];
            break;
        };
        let expr = rest[start + 2..start + len].trim();
        let field = expr
            .split_whitespace()
            .last()
            .unwrap_or_default()
            .trim_start_matches('.');
        out.push_str(&table.header_of(field));
        rest = &rest[start + len + 2..];
    }
    out.push_str(rest);
    out.replace("\\t", "\t").replace("\\n", "\n")
}

/// Prints `inspect` documents as Docker does: a JSON array indented by 4 spaces (fields in
/// the order the documents serialise them), `json` on one line, or one template line each.
pub fn print_inspect<T: serde::Serialize>(docs: &[T], format: Option<&str>) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    // A closed pipe (`| head`) is not worth an error.
    let _ = write_inspect(&mut out, docs, format);
    Ok(())
}

fn write_inspect<T: serde::Serialize>(
    out: &mut dyn Write,
    docs: &[T],
    format: Option<&str>,
) -> anyhow::Result<()> {
    match format {
        Some("json") => writeln!(out, "{}", serde_json::to_string(docs)?)?,
        Some(t) => {
            for d in docs {
                let doc = serde_json::to_value(d)?;
                writeln!(out, "{}", berth_engine::template::render(t, &doc)?)?;
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
        assert!(print_rows(&mut Vec::new(), &rows, Some("{{.Nope}}"), &PS).is_err());
    }

    #[test]
    fn short_columns_are_ten_wide() {
        let rows = vec![json!({"ID": "a", "Names": "b"})];
        let table = Table {
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
            &[json!({"Id": "x", "Health": null})],
            Some("{{.Id}} {{.Health}} {{.Nope}}"),
        )
        .unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "x <nil> <no value>\n");
    }
}
