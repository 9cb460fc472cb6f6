//! The real docker CLI on volumes, events and networks through `berth system service`:
//! `volume create/ls/inspect/rm/prune` with `run -v` and `system df -v`, `events` with
//! `--since`/`--until`/`--filter` and a live stream, and `network create/inspect/connect/
//! disconnect/rm/prune` with `run --network` inside a throwaway network namespace. Skips without
//! the docker CLI.
mod api_common;
use api_common::{have_docker_cli, in_throwaway_host, Service};
use std::io::BufRead;
use std::process::Stdio;
use std::time::Duration;

#[test]
fn volumes_with_run_v_prune_and_system_df() {
    if !have_docker_cli() {
        eprintln!("skipping: no docker CLI");
        return;
    }
    let s = Service::start();
    s.import_busybox("bb");
    assert_eq!(
        s.docker_ok(&["volume", "create", "--label", "tier=db", "data"])
            .trim(),
        "data"
    );
    let listed = s.docker_ok(&["volume", "ls", "-q", "--filter", "label=tier=db"]);
    assert_eq!(listed.trim(), "data");
    let mountpoint = s.docker_ok(&[
        "volume",
        "inspect",
        "-f",
        "{{.Mountpoint}} {{.Driver}}",
        "data",
    ]);
    assert_eq!(
        mountpoint.trim(),
        format!("{} local", s.root().join("volumes/data/_data").display())
    );
    s.docker_ok(&[
        "run",
        "--name",
        "writer",
        "-v",
        "data:/data",
        "bb",
        "sh",
        "-c",
        "echo kept > /data/f",
    ]);
    assert_eq!(
        std::fs::read_to_string(s.root().join("volumes/data/_data/f")).unwrap(),
        "kept\n"
    );
    assert_eq!(
        s.docker_ok(&["run", "--rm", "-v", "data:/d", "bb", "cat", "/d/f"]),
        "kept\n"
    );
    // In use: Docker's conflict, naming the container.
    let out = s.docker_out(&["volume", "rm", "data"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("volume is in use"), "{err}");
    let df = s.docker_ok(&["system", "df", "-v"]);
    assert!(df.contains("data"), "{df}");
    s.docker_ok(&["rm", "writer"]);
    // An anonymous volume goes with a plain prune; a named one only with --all.
    let anon = s.docker_ok(&["volume", "create"]).trim().to_string();
    assert_eq!(anon.len(), 64, "{anon}");
    let pruned = s.docker_ok(&["volume", "prune", "-f"]);
    assert!(pruned.contains(&anon), "{pruned}");
    assert_eq!(s.docker_ok(&["volume", "ls", "-q"]).trim(), "data");
    let pruned = s.docker_ok(&["volume", "prune", "-af"]);
    assert!(pruned.contains("data"), "{pruned}");
    assert_eq!(s.docker_ok(&["volume", "ls", "-q"]).trim(), "");
    let out = s.docker_out(&["volume", "inspect", "data"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no such volume"),
        "{out:?}"
    );
}

#[test]
fn events_since_until_filters_and_a_live_stream() {
    if !have_docker_cli() {
        eprintln!("skipping: no docker CLI");
        return;
    }
    let s = Service::start();
    s.import_busybox("bb");
    let since = chrono::Utc::now().timestamp() - 1;
    s.docker_ok(&["run", "--rm", "--name", "evone", "bb", "true"]);
    s.docker_ok(&["volume", "create", "evvol"]);
    let until = chrono::Utc::now().timestamp() + 1;
    // History only (`--until` bounds it, so the CLI returns).
    let window = [
        "events",
        "--since",
        &since.to_string(),
        "--until",
        &until.to_string(),
    ];
    let mut args = window.to_vec();
    args.extend(["--filter", "container=evone", "--format", "{{.Action}}"]);
    let actions = s.docker_ok(&args);
    let actions: Vec<&str> = actions.lines().collect();
    for wanted in ["create", "start", "die", "destroy"] {
        assert!(actions.contains(&wanted), "{wanted} in {actions:?}");
    }
    let mut args = window.to_vec();
    args.extend([
        "--filter",
        "type=volume",
        "--format",
        "{{.Type}} {{.Action}} {{.Actor.ID}}",
    ]);
    assert_eq!(s.docker_ok(&args).trim(), "volume create evvol");
    // A bad filter is the daemon's 400.
    let mut args = window.to_vec();
    args.extend(["--filter", "colour=red"]);
    assert!(!s.docker_out(&args).status.success());

    // Live: a follower sees a container started after it subscribed.
    let mut follower = s
        .docker()
        .args([
            "events",
            "--filter",
            "event=start",
            "--format",
            "{{.Actor.Attributes.name}}",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = follower.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(|l| l.ok())
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // The follower subscribes asynchronously: keep starting containers until one is seen.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut seen = None;
    let mut n = 0;
    while seen.is_none() && std::time::Instant::now() < deadline {
        n += 1;
        s.docker_ok(&["run", "--rm", "--name", &format!("live{n}"), "bb", "true"]);
        seen = rx.recv_timeout(Duration::from_secs(2)).ok();
    }
    let _ = follower.kill();
    let _ = follower.wait();
    let seen = seen.expect("the live events stream showed no start within 30 s");
    assert!(seen.starts_with("live"), "{seen}");
}

#[test]
fn update_and_diff() {
    if !have_docker_cli() {
        eprintln!("skipping: no docker CLI");
        return;
    }
    let s = Service::start();
    s.import_busybox("bb");
    s.docker_ok(&["run", "-d", "--name", "upd", "bb", "sleep", "60"]);
    s.docker_ok(&[
        "update",
        "--memory",
        "64m",
        "--memory-swap",
        "128m",
        "--restart",
        "on-failure:2",
        "upd",
    ]);
    let host = s.docker_ok(&[
        "inspect",
        "-f",
        "{{.HostConfig.Memory}} {{.HostConfig.RestartPolicy.Name}} {{.HostConfig.RestartPolicy.MaximumRetryCount}}",
        "upd",
    ]);
    assert_eq!(host.trim(), "67108864 on-failure 2");
    // Docker's refusals come back as the daemon's words.
    let out = s.docker_out(&["update", "--memory", "1k", "upd"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Minimum memory limit"),
        "{out:?}"
    );
    let out = s.docker_out(&["update", "--memory", "64m", "nosuch"]);
    assert!(!out.status.success());

    // The service's listing (it keeps parsed records between requests) sees a change another
    // process made at once.
    let names = s.docker_ok(&["ps", "-a", "--format", "{{.Names}}"]);
    assert_eq!(names.trim(), "upd");
    let out = s.berth().args(["rename", "upd", "upd2"]).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let names = s.docker_ok(&["ps", "-a", "--format", "{{.Names}}"]);
    assert_eq!(names.trim(), "upd2");
    let out = s.berth().args(["rename", "upd2", "upd"]).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(s.docker_ok(&["ps", "-aq"]).lines().count(), 1);

    assert_eq!(s.docker_ok(&["diff", "upd"]).trim(), "");
    s.docker_ok(&["exec", "upd", "sh", "-c", "mkdir /made && echo x > /made/f"]);
    let diff = s.docker_ok(&["diff", "upd"]);
    let lines: Vec<&str> = diff.lines().collect();
    assert!(lines.contains(&"A /made"), "{diff}");
    assert!(lines.contains(&"A /made/f"), "{diff}");
}

#[test]
fn networks_create_connect_disconnect_rm_and_prune() {
    if !have_docker_cli() || !berth_testkit::have("ip") {
        eprintln!("skipping: no docker CLI or ip");
        return;
    }
    in_throwaway_host(|| {
        let s = Service::start();
        s.import_busybox("bb");
        let id = s.docker_ok(&[
            "network",
            "create",
            "--subnet",
            "10.77.0.0/24",
            "--label",
            "team=a",
            "front",
        ]);
        let id = id.trim().to_string();
        assert_eq!(id.len(), 64, "{id}");
        let subnet = s.docker_ok(&[
            "network",
            "inspect",
            "-f",
            "{{range .IPAM.Config}}{{.Subnet}}{{end}} {{.Driver}} {{.Labels.team}}",
            "front",
        ]);
        assert_eq!(subnet.trim(), "10.77.0.0/24 bridge a");
        let names = s.docker_ok(&["network", "ls", "--format", "{{.Name}}"]);
        for n in ["front", "host", "none"] {
            assert!(names.lines().any(|l| l == n), "{n} in {names}");
        }
        let custom = s.docker_ok(&["network", "ls", "-q", "--filter", "label=team=a"]);
        assert_eq!(custom.trim(), &id[..12]);
        // A container on the network, and another reaching it by name.
        s.docker_ok(&[
            "run",
            "-d",
            "--name",
            "srv",
            "--network",
            "front",
            "bb",
            "sh",
            "-c",
            "trap 'exit 0' TERM; while true; do sleep 0.1; done",
        ]);
        let ip = s.docker_ok(&[
            "inspect",
            "-f",
            "{{.NetworkSettings.Networks.front.IPAddress}}",
            "srv",
        ]);
        assert!(ip.trim().starts_with("10.77.0."), "{ip}");
        let out = s.docker_ok(&[
            "run",
            "--rm",
            "--network",
            "front",
            "bb",
            "ping",
            "-c",
            "1",
            "-W",
            "5",
            "srv",
        ]);
        assert!(out.contains("1 packets received"), "{out}");
        // The running container joins a second network (with an alias), then leaves it.
        s.docker_ok(&["network", "create", "back"]);
        s.docker_ok(&["network", "connect", "--alias", "db", "back", "srv"]);
        let nets = s.docker_ok(&[
            "inspect",
            "-f",
            "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}",
            "srv",
        ]);
        assert!(nets.contains("back") && nets.contains("front"), "{nets}");
        let members = s.docker_ok(&[
            "network",
            "inspect",
            "-f",
            "{{range .Containers}}{{.Name}}{{end}}",
            "back",
        ]);
        assert_eq!(members.trim(), "srv");
        let out = s.docker_out(&["network", "rm", "back"]);
        assert!(!out.status.success(), "removing a network in use");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("active endpoints"),
            "{out:?}"
        );
        s.docker_ok(&["network", "disconnect", "back", "srv"]);
        let members = s.docker_ok(&["network", "inspect", "-f", "{{len .Containers}}", "back"]);
        assert_eq!(members.trim(), "0");
        s.docker_ok(&["network", "rm", "back"]);
        let out = s.docker_out(&["network", "inspect", "back"]);
        assert!(!out.status.success());
        let out = s.docker_out(&["network", "rm", "host"]);
        assert!(!out.status.success());
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("pre-defined"),
            "{out:?}"
        );
        // Prune keeps what is in use.
        s.docker_ok(&["network", "create", "idle"]);
        let pruned = s.docker_ok(&["network", "prune", "-f"]);
        assert!(
            pruned.contains("idle") && !pruned.contains("front"),
            "{pruned}"
        );
        s.docker_ok(&["rm", "-f", "srv"]);
        let pruned = s.docker_ok(&["network", "prune", "-f"]);
        assert!(pruned.contains("front"), "{pruned}");
        let left = s.docker_ok(&["network", "ls", "-q", "--filter", "type=custom"]);
        assert_eq!(left.trim(), "");
    });
}
