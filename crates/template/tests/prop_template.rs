//! Any text, however broken, parses to a template or a Go-worded error, and any template
//! renders to text or an error: never a panic (byte offsets inside multi-byte characters,
//! unbalanced delimiters, trim markers at the edges, stray `else`/`end`).
use berth_template::{Error, Shape, Template};
use proptest::prelude::*;
use serde_json::json;

fn piece() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "{{",
        "}}",
        "{{- ",
        " -}}",
        "{{/*",
        "*/}}",
        ".",
        ".Name",
        ".State",
        ".Labels",
        "$",
        "$x",
        ":=",
        "=",
        ",",
        "|",
        "(",
        ")",
        "\"",
        "`",
        "'a'",
        " ",
        "\n",
        "\t",
        "-",
        "3",
        "1.5",
        "if",
        "else",
        "end",
        "range",
        "with",
        "break",
        "continue",
        "and",
        "or",
        "not",
        "len",
        "index",
        "printf",
        "\"%5.2s|%d|%v\"",
        "json",
        "join",
        "split",
        "upper",
        "title",
        "pad",
        "truncate",
        "nil",
        "true",
        "é",
        "日本",
        "x",
    ])
    .prop_map(str::to_string)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]
    #[test]
    fn never_panics(pieces in prop::collection::vec(piece(), 0..24)) {
        let text: String = pieces.concat();
        let doc = json!({"Name": "/é", "State": {"Pid": 3, "Health": null}, "Labels": {"a": "b"}, "List": [1, "x", null]});
        match Template::parse(&text) {
            Ok(t) => {
                for shape in [Shape::Document, Shape::Row { go_type: "*T" }] {
                    match t.render(&doc, shape) {
                        Ok(_) | Err(Error::Exec { .. }) => {}
                        Err(e) => prop_assert!(false, "{text:?}: {e}"),
                    }
                }
                let _ = t.render_header(&|f| f.to_uppercase());
            }
            Err(e) => prop_assert!(e.to_string().starts_with("template: :"), "{e}"),
        }
    }
}
