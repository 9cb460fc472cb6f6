//! Go's rules, pinned with the strings Go's `text/template` (and Docker, where it adds its
//! functions) prints for the same template and data.
use super::*;
use serde_json::json;

fn doc() -> Value {
    json!({
        "Id": "abc123",
        "Name": "/web",
        "State": {"Status": "running", "Running": true, "Pid": 42, "ExitCode": 0, "Health": null},
        "Config": {
            "Env": ["PATH=/bin", "A=1"],
            "Labels": {"com.example": "yes", "b": "2"},
            "Cmd": ["sh", "-c", "true"]
        },
        "HostConfig": {"LogConfig": {"Type": "json-file", "Config": {}}, "NanoCpus": 1500000000.0},
        "NetworkSettings": {"Networks": {"bridge": {"IPAddress": "172.17.0.2"}, "alpha": {"IPAddress": ""}},
                            "Ports": {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}], "443/tcp": null}},
        "Mounts": [{"Source": "/a", "Destination": "/x"}, {"Source": "/b", "Destination": "/y"}],
        "Size": 0,
        "Ratio": 0.25
    })
}

fn r(text: &str) -> String {
    match render(text, &doc()) {
        Ok(s) => s,
        Err(e) => panic!("{text}: {e}"),
    }
}

fn e(text: &str) -> String {
    match render(text, &doc()) {
        Ok(s) => panic!("{text} rendered {s:?}"),
        Err(e) => e.to_string(),
    }
}

fn row(text: &str) -> Result<String, Error> {
    let data = json!({"ID": "abc", "Names": "web", "Labels": "a=1,com.x=y", "RunningFor": "2 hours ago", "Size": "0B"});
    Template::parse(text)?.render(
        &data,
        Shape::Row {
            go_type: "*formatter.ContainerContext",
        },
    )
}

#[test]
fn fields_maps_nil_and_missing() {
    assert_eq!(
        r("{{.State.Pid}} {{.Name}} {{.State.Running}}"),
        "42 /web true"
    );
    assert_eq!(r("{{.ID}} {{.Id}}"), "abc123 abc123");
    assert_eq!(r("{{.State.Health}}"), "<nil>");
    // Left out of the JSON as Docker's `omitempty` fields are: their zero value, and a nil
    // pointer's field fails naming the key, as Docker's retry on the raw JSON does.
    assert_eq!(
        r("{{.Config.Healthcheck}}|{{.Config.StopSignal}}|{{.Config.Shell}}"),
        "<nil>||[]"
    );
    assert_eq!(
        e("{{.Config.Healthcheck.Test}}"),
        "template: :1:9: executing \"\" at <.Config.Healthcheck....>: map has no entry for key \"Healthcheck\""
    );
    assert_eq!(r("{{.Config.Labels.nope}}"), "<no value>");
    assert_eq!(r("{{.Config.Labels.nope.deeper}}"), "<no value>");
    assert_eq!(r("{{.HostConfig.LogConfig.Config.max}}"), "<no value>");
    assert_eq!(r("{{.Config.Labels}}"), "map[b:2 com.example:yes]");
    assert_eq!(r("{{.Config.Env}}"), "[PATH=/bin A=1]");
    assert_eq!(r("{{.HostConfig.NanoCpus}}"), "1.5e+09");
    assert_eq!(r("{{.Ratio}}"), "0.25");
    assert_eq!(
        e("{{.Nope}}"),
        "template: :1:2: executing \"\" at <.Nope>: map has no entry for key \"Nope\""
    );
    assert_eq!(
        e("{{ .Container.Spec.Image}}"),
        "template: :1:13: executing \"\" at <.Container.Spec.Imag...>: map has no entry for key \"Container\""
    );
    assert_eq!(
        e("{{.State.Health.Status}}"),
        "template: :1:8: executing \"\" at <.State.Health.Status>: nil pointer evaluating interface {}.Status"
    );
    assert_eq!(
        e("{{range .NetworkSettings.Networkz}}{{end}}"),
        "template: :1:24: executing \"\" at <.NetworkSettings.Net...>: map has no entry for key \"Networkz\""
    );
    assert_eq!(
        e("{{.Name.First}}"),
        "template: :1:7: executing \"\" at <.Name.First>: can't evaluate field First in type string"
    );
}

#[test]
fn rows_are_structs() {
    assert_eq!(row("{{.ID}}\t{{.Names}}").unwrap(), "abc\tweb");
    assert_eq!(
        row("{{.Foo}}").unwrap_err().to_string(),
        "template: :1:2: executing \"\" at <.Foo>: can't evaluate field Foo in type *formatter.ContainerContext"
    );
    // Rows name their fields exactly, as Go's struct fields.
    assert!(row("{{.Id}}").is_err());
    assert_eq!(row("{{.Label \"com.x\"}}|{{.Label \"no\"}}").unwrap(), "y|");
    assert_eq!(
        row("{{json .}}").unwrap(),
        r#"{"ID":"abc","Labels":"a=1,com.x=y","Names":"web","RunningFor":"2 hours ago","Size":"0B"}"#
    );
}

#[test]
fn conditionals_with_and_else() {
    assert_eq!(r("{{if .State.Running}}up{{else}}down{{end}}"), "up");
    assert_eq!(
        r("{{if .State.Health}}h{{else if .State.Pid}}pid{{else}}none{{end}}"),
        "pid"
    );
    assert_eq!(r("{{if .Size}}big{{else}}empty{{end}}"), "empty");
    assert_eq!(r("{{if not .Config.Labels.nope}}unset{{end}}"), "unset");
    assert_eq!(r("{{with .State}}{{.Status}}{{end}}"), "running");
    assert_eq!(
        r("{{with .State.Health}}{{.Status}}{{else}}no health{{end}}"),
        "no health"
    );
    assert_eq!(r("{{with $s := .State.Status}}{{$s}}{{end}}"), "running");
    assert_eq!(
        r("{{if and .State.Running (eq .State.Pid 42)}}yes{{end}}"),
        "yes"
    );
    assert_eq!(r("{{or .Config.Labels.nope \"default\"}}"), "default");
    // `and` stops at the first false: the failing index is never evaluated.
    assert_eq!(r("{{and .Size (index .Mounts 9)}}"), "0");
    assert_eq!(
        r("{{if or (eq .Name \"/x\" \"/web\") false}}in{{end}}"),
        "in"
    );
    assert_eq!(
        r("{{if lt .State.Pid 100}}lt{{end}}{{if ge .Ratio 0.25}} ge{{end}}{{if gt \"b\" \"a\"}} s{{end}}"),
        "lt ge s"
    );
    assert_eq!(r("{{if ne .State.Status \"exited\"}}ne{{end}}"), "ne");
}

#[test]
fn range_variables_break_continue_and_else() {
    assert_eq!(r("{{range .Mounts}}{{.Source}} {{end}}"), "/a /b ");
    assert_eq!(
        r("{{range $i, $m := .Mounts}}{{$i}}={{$m.Destination}},{{end}}"),
        "0=/x,1=/y,"
    );
    assert_eq!(
        r("{{range $k, $v := .NetworkSettings.Networks}}{{$k}}:{{$v.IPAddress}};{{end}}"),
        "alpha:;bridge:172.17.0.2;"
    );
    assert_eq!(
        r("{{range $p, $conf := .NetworkSettings.Ports}}{{$p}}{{if $conf}}->{{(index $conf 0).HostPort}}{{end}} {{end}}"),
        "443/tcp 80/tcp->8080 "
    );
    assert_eq!(
        r("{{range .Config.Cmd}}{{if eq . \"-c\"}}{{continue}}{{end}}{{.}}{{end}}"),
        "shtrue"
    );
    assert_eq!(
        r("{{range .Config.Cmd}}{{if eq . \"-c\"}}{{break}}{{end}}{{.}}{{end}}"),
        "sh"
    );
    assert_eq!(
        r("{{range .HostConfig.LogConfig.Config}}x{{else}}empty{{end}}"),
        "empty"
    );
    assert_eq!(r("{{range 3}}{{.}}{{end}}"), "012");
    // Counted lazily: a huge count that breaks at once costs nothing.
    assert_eq!(r("{{range 1000000000000}}{{.}}{{break}}{{end}}"), "0");
    assert_eq!(
        r("{{$n := 0}}{{range .Mounts}}{{$n = .Source}}{{end}}{{$n}}"),
        "/b"
    );
    assert_eq!(r("{{range .Mounts}}{{$.Name}}{{end}}"), "/web/web");
    assert_eq!(
        e("{{range .Name}}{{end}}"),
        "template: :1:8: executing \"\" at <.Name>: range can't iterate over /web"
    );
}

#[test]
fn functions_go_and_docker() {
    assert_eq!(
        r("{{len .Mounts}} {{len .Name}} {{len .Config.Labels}}"),
        "2 4 2"
    );
    assert_eq!(
        r("{{index .Config.Labels \"com.example\"}}|{{index .Config.Labels \"x\"}}|"),
        "yes||"
    );
    assert_eq!(r("{{index .Config.Cmd 1}}"), "-c");
    assert_eq!(
        r("{{json .State}}"),
        r#"{"ExitCode":0,"Health":null,"Pid":42,"Running":true,"Status":"running"}"#
    );
    assert_eq!(r("{{.Config.Cmd | json}}"), r#"["sh","-c","true"]"#);
    assert_eq!(r("{{json .State.Health}}"), "null");
    assert_eq!(r("{{join .Config.Cmd \" \"}}"), "sh -c true");
    assert_eq!(r("{{split \"a:b:c\" \":\"}}"), "[a b c]");
    assert_eq!(r("{{index (split .Name \"/\") 1}}"), "web");
    assert_eq!(
        r("{{upper .State.Status}} {{lower \"ABC\"}} {{title \"hello wide-world\"}}"),
        "RUNNING abc Hello Wide-World"
    );
    assert_eq!(
        r("{{.State.Status | upper | printf \"%-9s|\"}}"),
        "RUNNING  |"
    );
    assert_eq!(
        r("{{pad .State.Status 2 1}}|{{pad \"\" 2 2}}|"),
        "  running ||"
    );
    assert_eq!(r("{{truncate .Id 3}} {{truncate \"ab\" 5}}"), "abc ab");
    assert_eq!(r("{{printf \"%s:%d %v %q %t\" .Name .State.Pid .Config.Env .State.Status .State.Running}}"), "/web:42 [PATH=/bin A=1] \"running\" true");
    assert_eq!(r("{{printf \"%5.1f%%\" .Ratio}}"), "  0.2%");
    assert_eq!(r("{{print 1 2 \"a\" 3}}"), "1 2a3");
    assert_eq!(r("{{println .Name 1}}"), "/web 1\n");
    assert_eq!(
        r("{{slice .Id 1 3}} {{html \"<a&b>\"}} {{urlquery \"a b&c\"}}"),
        "bc &lt;a&amp;b&gt; a+b%26c"
    );
    assert_eq!(
        e("{{upper .State.Pid}}"),
        "template: :1:14: executing \"\" at <.State.Pid>: wrong type for value; expected string; got json.Number"
    );
    assert_eq!(
        e("{{index .Config.Cmd 5}}"),
        "template: :1:2: executing \"\" at <index .Config.Cmd 5>: error calling index: index out of range: 5"
    );
    assert_eq!(
        e("{{index .State.Health 0}}"),
        "template: :1:2: executing \"\" at <index .State.Health ...>: error calling index: index of untyped nil"
    );
    assert_eq!(
        e("{{.Name 1}}"),
        "template: :1:2: executing \"\" at <.Name>: Name has arguments but cannot be invoked as function"
    );
}

#[test]
fn literals_variables_and_parentheses() {
    assert_eq!(
        r("{{\"a\\tb\"}} {{`raw\\t`}} {{3}} {{-2}} {{1.5}} {{true}} {{0x10}} {{'a'}}"),
        "a\tb raw\\t 3 -2 1.5 true 16 97"
    );
    assert_eq!(r("{{$x := .State}}{{$x.Pid}}"), "42");
    assert_eq!(r("{{$}}"), r("{{.}}"));
    assert_eq!(r("{{(.State).Status}}"), "running");
    assert_eq!(
        r("{{printf \"%s-%s\" (.Name) (index .Config.Env 1)}}"),
        "/web-A=1"
    );
    assert_eq!(r("{{if true}}{{$y := 1}}{{$y}}{{end}}"), "1");
    assert!(matches!(
        Template::parse("{{if true}}{{$y := 1}}{{end}}{{$y}}"),
        Err(Error::Parse { .. })
    ));
}

#[test]
fn trim_markers_and_comments() {
    assert_eq!(r("a  {{- .Name -}}  \n b"), "a/webb");
    assert_eq!(r("{{range .Mounts -}}\n  {{.Source}}\n{{- end}}"), "/a/b");
    assert_eq!(r("x {{/* a comment */}} y"), "x  y");
    assert_eq!(r("x {{- /* trimmed */ -}} y"), "xy");
    // A dash without a space is a number, not a trim marker.
    assert_eq!(r("a {{-3}}"), "a -3");
    // Escapes in text are not Go's business: `\t` stays two characters.
    assert_eq!(r("{{.Name}}\\t"), "/web\\t");
}

#[test]
fn table_headers() {
    let t = Template::parse(
        "{{.ID}}\t{{.RunningFor | upper}}\t{{truncate .Names 3}}\t{{.Label \"x\"}}",
    )
    .unwrap();
    let header = t
        .render_header(&|f| match f {
            "ID" => "CONTAINER ID".into(),
            "RunningFor" => "CREATED".into(),
            f => f.to_uppercase(),
        })
        .unwrap();
    assert_eq!(header, "CONTAINER ID\tCREATED\tNAMES\tx");
}

#[test]
fn parse_errors() {
    let p = |t: &str| Template::parse(t).unwrap_err().to_string();
    assert_eq!(p("{{.Name"), "template: :1: unclosed action");
    assert_eq!(p("{{.Name}}\n{{if}}"), "template: :2: missing value for if");
    assert_eq!(p("{{range .A}}"), "template: :1: unexpected EOF");
    assert_eq!(
        p("{{nosuch .A}}"),
        "template: :1: function \"nosuch\" not defined"
    );
    assert_eq!(p("{{else}}"), "template: :1: unexpected {{else}}");
}
