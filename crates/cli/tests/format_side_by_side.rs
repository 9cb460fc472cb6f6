//! `--format` side by side with a private dockerd: the same Go templates over the same
//! container on the same busybox image print the same text, and fail with the same message
//! and exit code — Go's rules for maps (`<no value>`), nil (`<nil>`), missing struct fields,
//! `if`/`else if`/`with`/`range`, variables, trim markers and Docker's functions. Skips (with
//! a note) without dockerd.
mod container_common;
use container_common::*;
use std::process::{Command, Output};

fn out(cmd: &mut Command) -> Output {
    cmd.stdin(std::process::Stdio::null())
        .output()
        .expect("running")
}

/// What a comparison looks at: exit code, stdout, and stderr when the command failed.
fn seen(o: &Output) -> (Option<i32>, String, String) {
    let err = if o.status.success() {
        String::new()
    } else {
        stderr(o).trim().to_string()
    };
    (o.status.code(), stdout(o), err)
}

const INSPECT: &[&str] = &[
    "{{.State.Status}} {{.State.ExitCode}} {{.State.Running}} {{.State.Pid}}",
    "{{.Name}} {{.RestartCount}} {{.HostConfig.Memory}} {{.HostConfig.LogConfig.Type}}",
    "{{.Config.Labels}}",
    "{{index .Config.Labels \"tier\"}}|{{index .Config.Labels \"nope\"}}|",
    "{{.Config.Labels.nope}}",
    "{{json .Config.Labels}} {{json .Mounts}}",
    "{{range $k, $v := .Config.Labels}}{{$k}}={{$v}};{{end}}",
    "{{range $i, $a := .Config.Cmd}}{{if $i}},{{end}}{{$a}}{{end}}",
    "{{range .Config.Cmd}}{{if eq . \"-c\"}}{{continue}}{{end}}[{{.}}]{{end}}",
    "{{if .State.Running}}up{{else if eq .State.ExitCode 3}}three{{else}}other{{end}}",
    "{{with .State}}{{.Status}}{{end}} {{with .State.Health}}h{{else}}no health{{end}}",
    "{{.State.Health}}",
    "{{len .Config.Cmd}} {{join .Config.Cmd \",\"}} {{split .Name \"/\"}}",
    "{{upper .State.Status}} {{title .State.Status}} {{lower \"ABC\"}}",
    "{{printf \"%-8s|%3d|%q|%v\" .State.Status .State.ExitCode .Name .State.Running}}",
    "{{truncate .Name 3}}|{{pad .State.Status 1 2}}|",
    "{{$s := .State}}{{$s.Status}} {{$.Name}}",
    "{{.State.Status | upper | printf \"<%s>\"}} {{(index .Config.Cmd 0)}}",
    "{{and .State.Running .Nope}} {{or .State.Running \"fallback\"}} {{not .State.Running}}",
    "{{if and (ne .State.Status \"running\") (gt .State.ExitCode 2) (lt 1 2)}}yes{{end}}",
    "  {{- .Name -}}  \n  {{- /* a comment */ -}} !",
    "{{.Name}}\\t{{.State.Status}}",
    // Errors: a missing field, a field of nil, a bad call, a template that does not parse.
    "{{.Nope}}",
    "{{.State.Nope}}",
    "{{.State.Health.Status}}",
    "{{index .Config.Cmd 9}}",
    "{{upper .State.ExitCode}}",
    "{{.Name",
    "{{nosuch .Name}}",
    "{{if .Name}}",
];

const PS: &[&str] = &[
    "{{.Names}} {{.State}}",
    "{{.Label \"tier\"}}|{{.Label \"nope\"}}|",
    "{{if eq .State \"exited\"}}stopped {{.Names | upper}}{{end}}",
    "{{.Names}}\\t{{printf \"%.3s\" .Image}}",
    "{{.Nope}}",
    "{{.Names",
];

#[test]
fn format_strings_render_as_docker_does() {
    let env = Env::new("format-side-by-side");
    let Some(docker) = dockerd_with_busybox(&env) else {
        return;
    };
    let run = [
        "run",
        "--name",
        "fmt",
        "--network",
        "none",
        "--label",
        "tier=front",
        "--label",
        "com.example.x=1",
        "busybox",
        "sh",
        "-c",
        "exit 3",
    ];
    assert_eq!(env.berth(&run).status.code(), Some(3));
    assert_eq!(out(docker.docker().args(run)).status.code(), Some(3));

    let mut differ = Vec::new();
    let mut compare = |args: &[&str]| {
        let b = seen(&env.berth(args));
        let d = seen(&out(docker.docker().args(args)));
        if b != d {
            differ.push(format!("{args:?}\n  berth:  {b:?}\n  docker: {d:?}"));
        }
    };
    for format in INSPECT {
        compare(&["inspect", "-f", format, "fmt"]);
    }
    for format in PS {
        compare(&["ps", "-a", "--filter", "name=fmt", "--format", format]);
    }
    compare(&[
        "version",
        "--format",
        "{{.Client.Os}}/{{.Client.Arch}} {{.Server.Os}} {{if .Server.Version}}v{{end}}",
    ]);
    compare(&["network", "ls", "--format", "{{.Nope}}"]);
    compare(&["images", "--format", "{{.Nope}}"]);
    compare(&["volume", "ls", "--format", "{{.Nope}}"]);
    compare(&["history", "--format", "{{.Nope}}", "busybox"]);
    compare(&["ps", "-a", "--format", "{{.Names"]);
    compare(&["images", "--format", "{{.Repository"]);
    compare(&["system", "df", "--format", "{{.Type}}"]);
    compare(&["system", "df", "--format", "{{.Nope}}"]);
    compare(&[
        "info",
        "--format",
        "{{.OSType}} {{.CgroupDriver}} {{len .Runtimes | printf \"%T\"}}",
    ]);
    compare(&["info", "--format", "{{.Nope}}"]);
    // network ls: Berth's rows (host and none, and bridge once made) read as Docker's.
    let args = [
        "network",
        "ls",
        "--format",
        "{{.Name}} {{.Driver}} {{.Scope}} {{.IPv6}}",
    ];
    let (b, d) = (env.berth(&args), out(docker.docker().args(args)));
    for line in stdout(&b).lines() {
        if !stdout(&d).lines().any(|l| l == line) {
            differ.push(format!(
                "network ls: {line:?} not in docker's {:?}",
                stdout(&d)
            ));
        }
    }
    // A table's header line comes from the same template (its words: the column widths
    // follow the rows' "… seconds ago").
    let header = |o: &Output| {
        let text = stdout(o);
        let first = text.lines().next().unwrap_or_default();
        first.split_whitespace().collect::<Vec<_>>().join(" ")
    };
    let args = [
        "ps",
        "-a",
        "--format",
        "table {{.Names}}\\t{{.RunningFor}}\\t{{.Status | upper}}\\t{{.Label \"tier\"}}",
    ];
    let (b, d) = (
        header(&env.berth(&args)),
        header(&out(docker.docker().args(args))),
    );
    if b != d {
        differ.push(format!("table header\n  berth:  {b:?}\n  docker: {d:?}"));
    }
    assert!(differ.is_empty(), "differences:\n{}", differ.join("\n"));
}
