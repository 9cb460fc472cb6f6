//! Values as the evaluator sees them: JSON, told apart as Go would see the Docker types behind
//! it (a struct, whose missing field is an error, or a map, whose missing key is Go's
//! invalid value `<no value>`), and printed as Go's `fmt` prints them.
use serde_json::{Map, Value};

/// How Go would see a JSON object.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Kind {
    /// A Go struct: fields are fixed, printed `{v1 v2}` (in the JSON's key order, which is
    /// sorted: Go would print them in declaration order).
    Struct,
    /// A Go map: keys come and go, printed `map[k:v]` in key order.
    Map,
    /// A listing row (Docker's formatter context): a struct whose fields are named exactly.
    Row,
    /// A nil pointer field that Docker's JSON leaves out (`omitempty`): nil to print and test,
    /// but naming a field of it fails as Docker's retry on the raw JSON does.
    Omitted(&'static str),
}

/// What an `omitempty` field of Docker's inspect types is when the JSON leaves it out.
enum Zero {
    Nil,
    Str,
    Bool,
    Slice,
    Map,
}

/// The `omitempty` fields of Docker's inspect types (container, image, network, volume):
/// absent from the JSON when empty, yet there for a template, which sees the Go struct.
const OMITTED: &[(&str, Zero)] = &[
    ("Health", Zero::Nil),
    ("Healthcheck", Zero::Nil),
    ("Node", Zero::Nil),
    ("SizeRw", Zero::Nil),
    ("SizeRootFs", Zero::Nil),
    ("StopTimeout", Zero::Nil),
    ("Descriptor", Zero::Nil),
    ("StopSignal", Zero::Str),
    ("MacAddress", Zero::Str),
    ("Shell", Zero::Slice),
    ("Manifests", Zero::Slice),
    ("ArgsEscaped", Zero::Bool),
    ("NetworkDisabled", Zero::Bool),
    ("ExposedPorts", Zero::Map),
];

/// A value during evaluation.
#[derive(Clone, Debug)]
pub(crate) enum Val {
    /// Go's invalid value: what a missing map key yields. Prints `<no value>`.
    Missing,
    Json(Value, Kind),
}

/// The keys under which Docker's API types hold maps rather than structs (`Config.Labels`,
/// `NetworkSettings.Networks`, `Volume.Options`, an event's `Actor.Attributes`, …).
const MAP_KEYS: &[&str] = &[
    "Labels",
    "Options",
    "Networks",
    "Ports",
    "ExposedPorts",
    "Volumes",
    "Data",
    "Sysctls",
    "Annotations",
    "Containers",
    "DriverOpts",
    "Status",
    "Runtimes",
    "Attributes",
    "IndexConfigs",
    "Tmpfs",
    "StorageOpt",
    "Services",
    "ConfigOnly",
];

impl Val {
    pub fn str(s: impl Into<String>) -> Val {
        Val::Json(Value::String(s.into()), Kind::Struct)
    }

    pub fn bool(b: bool) -> Val {
        Val::Json(Value::Bool(b), Kind::Struct)
    }

    pub fn int(n: i64) -> Val {
        Val::Json(Value::from(n), Kind::Struct)
    }

    pub fn json(&self) -> Option<&Value> {
        match self {
            Val::Missing => None,
            Val::Json(v, _) => Some(v),
        }
    }

    /// The field `name` of an object, and how Go would see it. `None`: the object has no
    /// such key (found case-insensitively for a struct, as both `{{.ID}}` and `{{.Id}}`
    /// reach a Docker inspect document's `Id`).
    pub fn field(obj: &Map<String, Value>, kind: Kind, name: &str) -> Option<Val> {
        let found = obj.get(name).or_else(|| match kind {
            Kind::Struct if name.starts_with(|c: char| c.is_uppercase()) => obj
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v),
            _ => None,
        });
        let Some(value) = found else {
            if kind != Kind::Struct {
                return None;
            }
            let (name, zero) = OMITTED.iter().find(|(n, _)| *n == name)?;
            return Some(match zero {
                Zero::Nil => Val::Json(Value::Null, Kind::Omitted(name)),
                Zero::Str => Val::str(""),
                Zero::Bool => Val::bool(false),
                Zero::Slice => Val::Json(Value::Array(Vec::new()), Kind::Struct),
                Zero::Map => Val::Json(Value::Object(Map::new()), Kind::Map),
            });
        };
        // `HostConfig.LogConfig` is `{Type, Config}` and its `Config` is a map.
        let log_config = name == "Config" && obj.len() == 2 && obj.contains_key("Type");
        let kind = if kind != Kind::Map && (MAP_KEYS.contains(&name) || log_config) {
            Kind::Map
        } else {
            Kind::Struct
        };
        Some(Val::Json(value.clone(), kind))
    }

    /// Go's truth: false, 0, nil, empty strings, slices and maps are false; structs are true.
    pub fn truth(&self) -> bool {
        match self {
            Val::Missing => false,
            Val::Json(v, kind) => match v {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
                Value::String(s) => !s.is_empty(),
                Value::Array(a) => !a.is_empty(),
                Value::Object(m) => *kind != Kind::Map || !m.is_empty(),
            },
        }
    }

    /// The Go type name an error message shows; in a `document`, a number is what Docker's
    /// retry on the raw JSON sees (`json.Number`).
    pub fn go_type(&self, document: bool) -> &'static str {
        match self {
            Val::Missing => "<invalid>",
            Val::Json(Value::Number(_), _) if document => "json.Number",
            Val::Json(v, kind) => type_of(v, *kind),
        }
    }
}

pub(crate) fn type_of(v: &Value, kind: Kind) -> &'static str {
    match v {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float64",
        Value::Number(_) => "int",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) if kind == Kind::Map => "map[string]interface {}",
        Value::Object(_) => "struct",
    }
}

/// Prints a value as Go's `fmt.Sprint` (and so a template action) does.
pub(crate) fn print(v: &Val) -> String {
    match v {
        Val::Missing => "<no value>".into(),
        Val::Json(v, kind) => print_json(v, *kind),
    }
}

pub(crate) fn print_json(v: &Value, kind: Kind) -> String {
    match v {
        Value::Null => "<nil>".into(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() => go_float(f),
            _ => n.to_string(),
        },
        Value::Array(a) => {
            let items: Vec<String> = a.iter().map(|v| print_json(v, Kind::Struct)).collect();
            format!("[{}]", items.join(" "))
        }
        Value::Object(m) if kind == Kind::Map => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let items: Vec<String> = keys
                .iter()
                .map(|k| format!("{k}:{}", print_json(&m[k.as_str()], Kind::Struct)))
                .collect();
            format!("map[{}]", items.join(" "))
        }
        Value::Object(m) => {
            let items: Vec<String> = m
                .iter()
                .map(|(k, v)| {
                    let kind = if MAP_KEYS.contains(&k.as_str()) {
                        Kind::Map
                    } else {
                        Kind::Struct
                    };
                    print_json(v, kind)
                })
                .collect();
            format!("{{{}}}", items.join(" "))
        }
    }
}

/// Go's `%v` of a float64: the shortest digits that read back, in `%e` form when the
/// exponent is below -4 or at least 6 (the precision Go's shortest `%g` decides with):
/// `1e+06`, `123456`, `1.5`.
pub(crate) fn go_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0" } else { "0" }.into();
    }
    // Rust's `{:e}` is the shortest round-trip form: `1.2345e3`.
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..6).contains(&exp) {
        return go_exp(mantissa, exp);
    }
    format!("{f}")
}

fn go_exp(mantissa: &str, exp: i32) -> String {
    let sign = if exp < 0 { '-' } else { '+' };
    format!("{mantissa}e{sign}{:02}", exp.abs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn go_prints_floats_maps_and_structs() {
        assert_eq!(go_float(1_000_000.0), "1e+06");
        assert_eq!(go_float(123_456.0), "123456");
        assert_eq!(go_float(1_234_567.0), "1.234567e+06");
        assert_eq!(go_float(1.5), "1.5");
        assert_eq!(go_float(0.00001), "1e-05");
        assert_eq!(go_float(0.0001), "0.0001");
        assert_eq!(
            print(&Val::Json(json!({"b": 1, "a": null}), Kind::Map)),
            "map[a:<nil> b:1]"
        );
        assert_eq!(
            print(&Val::Json(
                json!({"Status": "running", "Pid": 7}),
                Kind::Struct
            )),
            "{7 running}"
        );
        assert_eq!(
            print(&Val::Json(json!(["a", 1.5, true]), Kind::Struct)),
            "[a 1.5 true]"
        );
        assert_eq!(print(&Val::Missing), "<no value>");
    }
}
