//! runc's command-line surface that engines and scripts rely on, each next to runc's own
//! behaviour when runc is installed: --version/-v and --help/-h shapes, errors on stderr that
//! say `error`, --debug, --log created up front, exec's 255 and its --ignore-paused and
//! --cgroup flags, kill 0, update with -1, events in runc's field order (stats and OOM),
//! and `features`.

mod common;

use berth_testkit::Bundle;
use common::*;
use serde_json::json;
use std::process::{Command, Stdio};

fn runc(args: &[&str]) -> Option<std::process::Output> {
    if !berth_testkit::have("runc") {
        return None;
    }
    Some(
        Command::new("runc")
            .args(args)
            .stdin(Stdio::null())
            .bounded_output(),
    )
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn version_and_help_in_runcs_shape() {
    let w = World::new();
    for flag in ["--version", "-v"] {
        let out = w.ok(&[flag]);
        let mut lines = out.lines();
        assert!(
            lines
                .next()
                .is_some_and(|l| l.starts_with("berth-runtime version ")),
            "{out}"
        );
        assert!(out.lines().any(|l| l.starts_with("spec: 1.")), "{out}");
        if let Some(o) = runc(&[flag]) {
            let theirs = text(&o.stdout);
            assert!(theirs.starts_with("runc version "), "{theirs}");
            assert!(theirs.lines().any(|l| l.starts_with("spec: ")));
        }
    }
    for flag in ["--help", "-h"] {
        let out = w.ok(&[flag]);
        let sections = [
            "NAME:",
            "USAGE:",
            "VERSION:",
            "COMMANDS:",
            "GLOBAL OPTIONS:",
        ];
        for s in sections {
            assert!(out.lines().any(|l| l == s), "{s} missing:\n{out}");
        }
        if let Some(o) = runc(&[flag]) {
            let theirs = text(&o.stdout);
            for s in sections {
                assert!(theirs.lines().any(|l| l == s), "runc: {s}");
            }
        }
    }
}

#[test]
fn errors_say_error_debug_and_log_file() {
    let w = World::new();
    let o = w.out(&["state", "nosuch"]);
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(
        err.contains("level=error") && err.contains("does not exist"),
        "{err}"
    );
    if let Some(o) = runc(&["--root", w.root().to_str().unwrap(), "state", "nosuch"]) {
        assert_eq!(o.status.code(), Some(1));
        assert!(text(&o.stderr).contains("level=error"));
    }

    let o = w.out(&["--debug", "list"]);
    assert!(o.status.success());
    assert!(
        text(&o.stderr).contains("level=debug"),
        "{}",
        text(&o.stderr)
    );

    // The log file exists even when nothing went wrong.
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log.json");
    w.ok(&[
        "--log",
        log.to_str().unwrap(),
        "--log-format",
        "json",
        "list",
    ]);
    assert!(log.exists(), "--log must create the file");
    let o = w.out(&[
        "--log",
        log.to_str().unwrap(),
        "--log-format",
        "json",
        "state",
        "nosuch",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let line: serde_json::Value = serde_json::from_str(
        std::fs::read_to_string(&log)
            .unwrap()
            .lines()
            .last()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(line["level"], "error");
    assert!(line["msg"].as_str().unwrap().contains("does not exist"));
    assert!(line["time"].is_string());
}

#[test]
fn exec_on_a_missing_container_exits_255() {
    let w = World::new();
    let o = w.out(&["exec", "nosuch", "true"]);
    assert_eq!(o.status.code(), Some(255));
    assert!(
        text(&o.stderr).contains("exec failed"),
        "{}",
        text(&o.stderr)
    );
    if let Some(o) = runc(&[
        "--root",
        w.root().to_str().unwrap(),
        "exec",
        "nosuch",
        "true",
    ]) {
        assert_eq!(o.status.code(), Some(255));
    }
}

/// A detached container; the guard deletes it.
fn running(w: &World, edit: impl FnOnce(&mut serde_json::Value)) -> (Guard, Bundle) {
    let mut b = sh_bundle("sleep 1000");
    edit(&mut b.spec);
    b.write_config().unwrap();
    let id = unique_id("cli");
    let g = w.guard(&id);
    w.ok(&["run", "-d", "--bundle", b.path().to_str().unwrap(), &id]);
    (g, b)
}

#[test]
fn kill_with_signal_0_checks_the_init() {
    let w = World::new();
    let (g, _b) = running(&w, |_| {});
    w.ok(&["kill", &g.id, "0"]);
    assert_eq!(w.status(&g.id), "running", "signal 0 must not hurt");
    w.ok(&["kill", &g.id, "KILL"]);
    assert!(w.wait_status(&g.id, "stopped"));
    let o = w.out(&["kill", &g.id, "0"]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "a stopped container is not running"
    );
}

#[test]
fn exec_ignore_paused_runs_after_resume() {
    let w = World::new();
    let (g, _b) = running(&w, |_| {});
    w.ok(&["pause", &g.id]);
    let o = w.out(&["exec", &g.id, "true"]);
    assert_eq!(
        o.status.code(),
        Some(255),
        "exec in a paused container fails"
    );
    w.ok(&[
        "exec",
        "--ignore-paused",
        "-d",
        &g.id,
        "sh",
        "-c",
        "echo done > /dev/shm/marker",
    ]);
    w.ok(&["resume", &g.id]);
    let ok = berth_testkit::wait_until(std::time::Duration::from_secs(10), || {
        w.out(&["exec", &g.id, "test", "-f", "/dev/shm/marker"])
            .status
            .success()
    });
    assert!(ok, "the exec'd process ran after resume");
}

#[test]
fn exec_into_a_sub_cgroup() {
    let w = World::new();
    let (g, _b) = running(&w, |_| {});
    let pids_dir = cgroup_dir("pids", &g.id);
    if !pids_dir.exists() {
        eprintln!("note: not a cgroup v1 host with pids; skipping");
        return;
    }
    let sub = pids_dir.join("sub");
    std::fs::create_dir(&sub).unwrap();
    let out = w.ok(&[
        "exec",
        "--cgroup",
        "pids:sub",
        &g.id,
        "cat",
        "/proc/self/cgroup",
    ]);
    let line = out.lines().find(|l| l.contains(":pids:")).unwrap_or("");
    assert!(line.ends_with("/sub"), "{out}");
    let o = w.out(&["exec", "--cgroup", "pids:missing", &g.id, "true"]);
    assert_eq!(o.status.code(), Some(255));
    let _ = std::fs::remove_dir(&sub);
}

#[test]
fn update_with_minus_one_means_unlimited() {
    let w = World::new();
    let (g, _b) = running(&w, |s| {
        s["linux"]["resources"]["memory"] = json!({"limit": 33554432});
        s["linux"]["resources"]["pids"] = json!({"limit": 20});
    });
    let mem = cgroup_dir("memory", &g.id).join("memory.limit_in_bytes");
    if !mem.exists() {
        eprintln!("note: not a cgroup v1 host; skipping");
        return;
    }
    assert_eq!(std::fs::read_to_string(&mem).unwrap().trim(), "33554432");
    w.ok(&["update", "--memory", "-1", "--pids-limit", "-1", &g.id]);
    let limit: u64 = std::fs::read_to_string(&mem)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(limit > 1 << 60, "memory unlimited: {limit}");
    let pids = cgroup_dir("pids", &g.id).join("pids.max");
    assert_eq!(std::fs::read_to_string(pids).unwrap().trim(), "max");
}

#[test]
fn events_in_runcs_field_order() {
    let w = World::new();
    let (g, _b) = running(&w, |_| {});
    let out = w.ok(&["events", "--stats", &g.id]);
    let prefix = format!("{{\"type\":\"stats\",\"id\":\"{}\",\"data\":{{", g.id);
    assert!(out.starts_with(&prefix), "{out}");
}

/// An OOM kill in the container shows up as `{"type":"oom","id":…}` in the event stream.
#[test]
fn events_report_oom() {
    let w = World::new();
    let mut b = sh_bundle("sleep 1; head -c 200m /dev/zero | tail > /dev/null; sleep 1");
    b.spec["linux"]["resources"]["memory"] = json!({"limit": 16777216, "swap": 16777216});
    b.write_config().unwrap();
    let id = unique_id("oom");
    let _g = w.guard(&id);
    w.ok(&["run", "-d", "--bundle", b.path().to_str().unwrap(), &id]);
    let out = w
        .cmd(&["events", "--interval", "100ms", &id])
        .stderr(Stdio::null())
        .bounded_output();
    let out = text(&out.stdout);
    let want = format!("{{\"type\":\"oom\",\"id\":\"{id}\"}}");
    assert!(out.lines().any(|l| l == want), "{out}");
}

#[test]
fn features_lists_recursive_mount_options() {
    let w = World::new();
    let f: serde_json::Value = serde_json::from_str(&w.ok(&["features"])).unwrap();
    let opts: Vec<&str> = f["mountOptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for o in ["rro", "rnosuid", "rnoexec", "rnosymfollow", "ratime"] {
        assert!(opts.contains(&o), "{o}");
    }
    assert!(f["ociVersionMin"].is_string() && f["ociVersionMax"].is_string());
}
