//! `exec_create` / `exec_start` / `exec_die` and `rename` events in Docker's shape (a detached
//! exec's `exec_die` too, recorded by the waiter that outlives the CLI), and
//! `image prune --filter until= / label= / label!=`.
mod container_common;
use container_common::*;
use std::time::{Duration, Instant};

fn now() -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock");
    format!("{}.{:09}", t.as_secs(), t.subsec_nanos())
}

#[test]
fn exec_and_rename_are_events() {
    let env = Env::new("exec-events");
    let t0 = now();
    env.ok(&["run", "-d", "--name", "box", "busybox", "sleep", "300"]);
    env.ok(&["exec", "box", "true"]);
    assert_eq!(
        env.berth(&["exec", "box", "sh", "-c", "exit 3"])
            .status
            .code(),
        Some(3)
    );
    env.ok(&["rename", "box", "crate"]);
    let format = "{{.Action}}|{{index .Actor.Attributes \"name\"}}|{{index .Actor.Attributes \"exitCode\"}}|{{index .Actor.Attributes \"oldName\"}}";
    let want = [
        "exec_create: true|box||",
        "exec_start: true|box||",
        "exec_die|box|0|",
        "exec_create: sh -c exit 3|box||",
        "exec_start: sh -c exit 3|box||",
        "exec_die|box|3|",
        "rename|crate||/box",
    ];
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let until = now();
        let got = env.ok(&[
            "events",
            "--since",
            &t0,
            "--until",
            &until,
            "--format",
            format,
            "-f",
            "event=exec_create",
            "-f",
            "event=exec_start",
            "-f",
            "event=exec_die",
            "-f",
            "event=rename",
        ]);
        // A missing attribute: Go's `index` on map[string]string gives "", Berth's template
        // says "<no value>"; the events are what is compared here.
        let got = got.replace("<no value>", "");
        let got: Vec<&str> = got.lines().collect();
        if got == want {
            break;
        }
        assert!(Instant::now() < deadline, "events: {got:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Every exec event of one exec carries its one execID.
    let ids = env.ok(&[
        "events",
        "--since",
        &t0,
        "--until",
        &now(),
        "--format",
        "{{index .Actor.Attributes \"execID\"}}",
        "-f",
        "event=exec_create",
        "-f",
        "event=exec_die",
    ]);
    let ids: Vec<&str> = ids.lines().collect();
    assert_eq!(ids.len(), 4);
    assert_eq!(ids[0], ids[1]);
    assert_ne!(ids[0], ids[2]);
    assert_eq!(ids[0].len(), 64);
    env.ok(&["rm", "-f", "crate"]);
}

/// Polls `events` (since `t0`, exec events of `container`) until the `want` lines are there,
/// in any order.
fn wait_exec_events(env: &Env, t0: &str, container: &str, want: &[&str]) {
    let format = "{{.Action}}|{{index .Actor.Attributes \"exitCode\"}}";
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = env.ok(&[
            "events",
            "--since",
            t0,
            "--until",
            &now(),
            "--format",
            format,
            "-f",
            &format!("container={container}"),
            "-f",
            "event=exec_create",
            "-f",
            "event=exec_start",
            "-f",
            "event=exec_die",
        ]);
        let got = got.replace("<no value>", "");
        // The two execs run side by side: their events interleave in any order.
        let mut got: Vec<&str> = got.lines().collect();
        got.sort_unstable();
        let mut want = want.to_vec();
        want.sort_unstable();
        if got == want {
            return;
        }
        assert!(Instant::now() < deadline, "events: {got:?}, want {want:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_detached_exec_records_its_exit() {
    let env = Env::new("exec-detached-events");
    let t0 = now();
    env.ok(&["run", "-d", "--name", "box", "busybox", "sleep", "300"]);
    // The CLI returns at once; the process ends later, when /go appears.
    let out = env.berth(&[
        "exec",
        "-d",
        "box",
        "sh",
        "-c",
        "while [ ! -e /go ]; do sleep 0.02; done; exit 4",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).is_empty());
    let cmd = "sh -c while [ ! -e /go ]; do sleep 0.02; done; exit 4";
    let create = format!("exec_create: {cmd}|");
    let start = format!("exec_start: {cmd}|");
    wait_exec_events(&env, &t0, "box", &[&create, &start]);
    env.ok(&["exec", "box", "touch", "/go"]);
    wait_exec_events(
        &env,
        &t0,
        "box",
        &[
            &create,
            &start,
            "exec_create: touch /go|",
            "exec_start: touch /go|",
            "exec_die|0",
            "exec_die|4",
        ],
    );
    // A detached exec with a TTY, and one whose command is missing (Docker's 127, no waiter).
    env.ok(&["exec", "-d", "-t", "box", "sh", "-c", "echo hi; exit 6"]);
    let missing = env.berth(&["exec", "-d", "box", "nosuch"]);
    assert_eq!(missing.status.code(), Some(127), "{}", stderr(&missing));
    let deadline = Instant::now() + Duration::from_secs(30);
    while !env
        .ok(&[
            "events",
            "--since",
            &t0,
            "--until",
            &now(),
            "--format",
            "{{index .Actor.Attributes \"exitCode\"}}",
            "-f",
            "event=exec_die",
        ])
        .lines()
        .any(|l| l == "6")
    {
        assert!(Instant::now() < deadline, "no exec_die with exit code 6");
        std::thread::sleep(Duration::from_millis(20));
    }
    env.ok(&["rm", "-f", "box"]);
}

#[test]
fn image_verbs_record_docker_shaped_events() {
    let env = Env::new("image-events");
    let t0 = now();
    let tar = env.path().join("busybox.tar");
    let tar = tar.to_str().expect("path");
    let id = env.ok(&["import", "-c", "LABEL team=blue", tar, "labelled:one"]);
    env.ok(&["tag", "labelled:one", "labelled:two"]);
    let saved = env.path().join("saved.tar");
    env.ok(&["save", "-o", saved.to_str().expect("path"), "labelled:one"]);
    env.ok(&["rmi", "labelled:two"]);
    env.ok(&["rmi", "labelled:one"]);
    env.ok(&["load", "-i", saved.to_str().expect("path")]);
    let got = env.ok(&[
        "events",
        "--since",
        &t0,
        "--until",
        &now(),
        "--filter",
        "type=image",
        "--format",
        "{{.Action}} {{.Actor.ID}} {{index .Actor.Attributes \"name\"}} {{index .Actor.Attributes \"team\"}}",
    ]);
    let got = got.replace("<no value>", "");
    let want = [
        format!("import {id} {id} blue"),
        format!("tag {id} labelled:two blue"),
        format!("save {id} {id} blue"),
        format!("untag {id} {id} blue"),
        format!("untag {id} {id} blue"),
        format!("delete {id} {id} "),
        format!("load {id} {id} blue"),
    ];
    assert_eq!(
        got.lines().map(str::trim_end).collect::<Vec<_>>(),
        want.iter().map(|w| w.trim_end()).collect::<Vec<_>>()
    );
}

#[test]
fn volumes_are_mounted_and_unmounted_with_their_container() {
    let env = Env::new("volume-events");
    let t0 = now();
    env.ok(&["volume", "create", "data"]);
    env.ok(&[
        "run",
        "--name",
        "user",
        "-v",
        "data:/data",
        "-v",
        "data:/ro:ro",
        "busybox",
        "true",
    ]);
    let id = env.inspect("user", "{{.Id}}");
    let format = "{{.Type}} {{.Action}} {{.Actor.ID}} {{index .Actor.Attributes \"container\"}} \
                  {{index .Actor.Attributes \"destination\"}} \
                  {{index .Actor.Attributes \"read/write\"}}";
    let want_mounts = [
        format!("volume mount data {id} /data true"),
        format!("volume mount data {id} /ro false"),
    ];
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = env.ok(&[
            "events",
            "--since",
            &t0,
            "--until",
            &now(),
            "--format",
            format,
        ]);
        let got = got.replace("<no value>", "");
        let lines: Vec<&str> = got.lines().map(str::trim_end).collect();
        let at = |prefix: &str| lines.iter().position(|l| l.starts_with(prefix));
        if let (Some(start), Some(die), Some(unmount)) = (
            at("container start"),
            at("container die"),
            at("volume unmount data"),
        ) {
            let mut mounts: Vec<&str> = lines[..start]
                .iter()
                .copied()
                .filter(|l| l.starts_with("volume mount"))
                .collect();
            mounts.sort_unstable();
            assert_eq!(mounts, want_mounts, "{got}");
            assert!(die < unmount, "{got}");
            assert!(lines[0].starts_with("volume create data"), "{got}");
            break;
        }
        assert!(Instant::now() < deadline, "events: {got}");
        std::thread::sleep(Duration::from_millis(20));
    }
    env.ok(&["rm", "user"]);
}

#[test]
fn prunes_record_what_they_reclaimed() {
    let env = Env::new("prune-events");
    let t0 = now();
    env.ok(&["run", "--name", "gone", "-v", "/anon", "busybox", "true"]);
    env.ok(&["container", "prune", "-f"]);
    env.ok(&["volume", "prune", "-f"]);
    let tar = env.path().join("busybox.tar");
    let id = env.ok(&["import", tar.to_str().expect("path")]);
    env.ok(&["image", "prune", "-f"]);
    let got = env.ok(&[
        "events",
        "--since",
        &t0,
        "--until",
        &now(),
        "--filter",
        "event=prune",
        "--filter",
        "event=delete",
        "--format",
        "{{.Type}} {{.Action}} {{.Actor.ID}} {{index .Actor.Attributes \"reclaimed\"}}",
    ]);
    let got = got.replace("<no value>", "");
    let lines: Vec<&str> = got.lines().map(str::trim_end).collect();
    assert_eq!(lines.len(), 4, "{got}");
    assert!(lines[0].starts_with("container prune  "), "{got}");
    assert!(lines[1].starts_with("volume prune  "), "{got}");
    assert_eq!(lines[2], format!("image delete {id}"), "{got}");
    assert!(lines[3].starts_with("image prune  "), "{got}");
    for line in [lines[0], lines[1], lines[3]] {
        let bytes = line.rsplit(' ').next().unwrap_or_default();
        assert!(bytes.parse::<u64>().is_ok(), "{line}");
    }
}

#[test]
fn image_prune_honours_until_and_label_filters() {
    let env = Env::new("prune-filters");
    let tar = env.path().join("busybox.tar");
    let tar = tar.to_str().expect("path");
    let import = |label: &str| env.ok(&["import", "-c", &format!("LABEL {label}"), tar]);
    let keep = import("keep=yes");
    let drop = import("keep=no");
    let ids = || env.ok(&["images", "-aq", "--no-trunc"]);
    // Created just now: nothing is older than an hour.
    let out = env.ok(&["image", "prune", "-f", "--filter", "until=1h"]);
    assert!(!out.contains("deleted:"), "{out}");
    assert!(ids().contains(&keep) && ids().contains(&drop));
    let out = env.ok(&["image", "prune", "-f", "--filter", "label!=keep=yes"]);
    assert!(out.contains(&format!("deleted: {drop}")), "{out}");
    assert!(ids().contains(&keep) && !ids().contains(&drop));
    let out = env.ok(&["image", "prune", "-f", "--filter", "label=keep=yes"]);
    assert!(out.contains(&format!("deleted: {keep}")), "{out}");
    let bad = env.berth(&["image", "prune", "-f", "--filter", "colour=red"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(stderr(&bad).contains("colour"), "{}", stderr(&bad));
}
