//! The real docker CLI driving containers through `berth system service`: `run --rm` output and
//! exit codes, `run -d` + `logs` (-f, --tail) + `stop` + `rm`, `attach` with stdin, `run -i`,
//! a container started through the API seen by `berth ps` and a `berth stop` seen by a waiting
//! API client, and containers that outlive a killed service. Skips without the docker CLI.
mod api_common;
use api_common::{have_docker_cli, Service};
use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

#[test]
fn run_rm_output_and_exit_codes() {
    if !have_docker_cli() {
        eprintln!("skipping: no docker CLI");
        return;
    }
    let s = Service::start();
    s.import_busybox("bb");
    assert_eq!(s.docker_ok(&["run", "--rm", "bb", "echo", "hi"]), "hi\n");
    let out = s.docker_out(&[
        "run",
        "--rm",
        "bb",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "out\n");
    assert!(String::from_utf8_lossy(&out.stderr).contains("err"));
    // --rm removed them both.
    assert_eq!(s.docker_ok(&["ps", "-aq"]).trim(), "");
    // Docker's codes for a command that is not there.
    let out = s.docker_out(&["run", "--rm", "bb", "/no/such/command"]);
    assert_eq!(out.status.code(), Some(127), "{out:?}");
    // A missing image is Docker's 404, which the CLI words as a failed pull.
    // (On a loopback registry where nothing listens, so the pull the CLI tries stays on this host.)
    let out = s.docker_out(&["create", "127.0.0.1:9/nosuch:image"]);
    assert!(!out.status.success());
}

#[test]
fn detached_logs_stop_rm_and_the_berth_cli_agree() {
    if !have_docker_cli() {
        eprintln!("skipping: no docker CLI");
        return;
    }
    let s = Service::start();
    s.import_busybox("bb");
    let id = s.docker_ok(&[
        "run",
        "-d",
        "--name",
        "ticker",
        "bb",
        "sh",
        "-c",
        "i=0; while true; do echo line$i; i=$((i+1)); sleep 0.1; done",
    ]);
    let id = id.trim().to_string();
    assert_eq!(id.len(), 64);
    assert!(berth_testkit::wait_until(Duration::from_secs(10), || {
        s.docker_ok(&["logs", "ticker"]).contains("line2")
    }));
    // The berth CLI sees the container the API started.
    let ps = s
        .berth()
        .args(["ps", "--format", "{{.Names}}"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&ps.stdout).trim(), "ticker");
    let inspect = s.docker_ok(&[
        "inspect",
        "--format",
        "{{.State.Status}} {{.Name}}",
        "ticker",
    ]);
    assert_eq!(inspect.trim(), "running /ticker");
    // logs -f follows until the container stops.
    let follow = s
        .docker()
        .args(["logs", "-f", "--tail", "1", "ticker"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    s.docker_ok(&["stop", "-t", "1", "ticker"]);
    let out = follow.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.lines().count() >= 2, "{text}");
    let status = s.docker_ok(&["ps", "-a", "--format", "{{.Status}}"]);
    assert!(status.starts_with("Exited (137)"), "{status}");
    let tail = s.docker_ok(&["logs", "--tail", "1", "ticker"]);
    assert_eq!(tail.lines().count(), 1, "{tail}");
    s.docker_ok(&["rm", "ticker"]);
    assert_eq!(s.docker_ok(&["ps", "-aq"]).trim(), "");

    // `berth stop` of an API container is seen by a waiting API client.
    s.docker_ok(&["run", "-d", "--name", "sleeper", "bb", "sleep", "60"]);
    let waiter = s
        .docker()
        .args(["wait", "sleeper"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = s
        .berth()
        .args(["stop", "-t", "1", "sleeper"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let out = waiter.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "137");
}

#[test]
fn attach_and_interactive_stdin() {
    if !have_docker_cli() {
        eprintln!("skipping: no docker CLI");
        return;
    }
    let s = Service::start();
    s.import_busybox("bb");
    s.docker_ok(&[
        "run",
        "-d",
        "-i",
        "--name",
        "reader",
        "bb",
        "sh",
        "-c",
        "read x; echo got $x; exit 4",
    ]);
    let mut attach = s
        .docker()
        .args(["attach", "reader"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    attach.stdin.take().unwrap().write_all(b"hello\n").unwrap();
    let out = attach.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "got hello\n");
    assert_eq!(out.status.code(), Some(4));

    let mut run = s
        .docker()
        .args(["run", "-i", "--rm", "bb", "tr", "a-z", "A-Z"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    run.stdin.take().unwrap().write_all(b"shout\n").unwrap();
    let out = run.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "SHOUT\n");
    assert!(out.status.success());
}

#[test]
fn containers_outlive_a_killed_service() {
    if !have_docker_cli() {
        eprintln!("skipping: no docker CLI");
        return;
    }
    let mut s = Service::start();
    s.import_busybox("bb");
    s.docker_ok(&["run", "-d", "--name", "survivor", "bb", "sleep", "60"]);
    s.restart_after_kill();
    let status = s.docker_ok(&["ps", "--format", "{{.Names}} {{.State}}"]);
    assert_eq!(status.trim(), "survivor running");
    s.docker_ok(&["restart", "-t", "1", "survivor"]);
    assert_eq!(
        s.docker_ok(&["inspect", "--format", "{{.State.Running}}", "survivor"])
            .trim(),
        "true"
    );
    s.docker_ok(&["pause", "survivor"]);
    assert_eq!(
        s.docker_ok(&["inspect", "--format", "{{.State.Status}}", "survivor"])
            .trim(),
        "paused"
    );
    s.docker_ok(&["unpause", "survivor"]);
    s.docker_ok(&["rename", "survivor", "renamed"]);
    s.docker_ok(&["kill", "renamed"]);
    assert_eq!(s.docker_ok(&["wait", "renamed"]).trim(), "137");
    let out = s.docker_ok(&["container", "prune", "-f"]);
    assert!(out.contains("Deleted Containers"), "{out}");
    assert_eq!(s.docker_ok(&["ps", "-aq"]).trim(), "");
}

#[test]
fn top_and_stats() {
    if !have_docker_cli() {
        eprintln!("skipping: no docker CLI");
        return;
    }
    let s = Service::start();
    s.import_busybox("bb");
    s.docker_ok(&["run", "-d", "--name", "busy", "bb", "sleep", "60"]);
    let top = s.docker_ok(&["top", "busy"]);
    assert!(top.starts_with("UID"), "{top}");
    assert!(top.contains("sleep 60"), "{top}");
    assert_eq!(top.lines().count(), 2, "{top}");
    let stats = s.docker_ok(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}} {{.PIDs}} {{.MemUsage}}",
    ]);
    assert!(stats.starts_with("busy 1 "), "{stats}");
    assert!(!stats.contains(" 0B /"), "{stats}");
    let out = s.docker_out(&["top", "nosuch"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("No such container"));
}

#[test]
fn exec_with_and_without_a_tty() {
    if !have_docker_cli() {
        eprintln!("skipping: no docker CLI");
        return;
    }
    let s = Service::start();
    s.import_busybox("bb");
    s.docker_ok(&["run", "-d", "--name", "host", "bb", "sleep", "60"]);
    let out = s.docker_out(&["exec", "host", "sh", "-c", "echo out; echo err >&2; exit 5"]);
    assert_eq!(out.status.code(), Some(5), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "out\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "err\n");
    // stdin through -i.
    let mut cat = s
        .docker()
        .args(["exec", "-i", "host", "tr", "a-z", "A-Z"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    cat.stdin.take().unwrap().write_all(b"quiet\n").unwrap();
    let out = cat.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "QUIET\n");
    // Docker's codes and words for a command that is not there.
    let out = s.docker_out(&["exec", "host", "nosuch"]);
    assert_eq!(out.status.code(), Some(127));
    assert!(String::from_utf8_lossy(&out.stderr).contains("executable file not found"));
    // Detached exec.
    s.docker_ok(&["exec", "-d", "host", "touch", "/tmp/detached"]);
    assert!(berth_testkit::wait_until(Duration::from_secs(10), || {
        s.docker_out(&["exec", "host", "test", "-e", "/tmp/detached"])
            .status
            .success()
    }));
    // -it under a pseudo-terminal (util-linux `script`), when present.
    if berth_testkit::have("script") {
        let out = std::process::Command::new("script")
            .args([
                "-eqc",
                "docker exec -it host sh -c 'tty; exit 3'",
                "/dev/null",
            ])
            .env("DOCKER_HOST", s.host())
            .env("DOCKER_CONFIG", s.dir.path().join("docker-config"))
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(3), "{out:?}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("/dev/pts/"),
            "{out:?}"
        );
    }
    // A stopped container refuses, as Docker does.
    s.docker_ok(&["stop", "-t", "0", "host"]);
    let out = s.docker_out(&["exec", "host", "true"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not running"));
}

#[test]
fn api_execs_record_their_events_and_local_logs_read_back() {
    if !have_docker_cli() {
        eprintln!("skipping: no docker CLI");
        return;
    }
    let s = Service::start();
    s.import_busybox("bb");
    let t0 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string();
    s.docker_ok(&[
        "run",
        "-d",
        "--name",
        "ex",
        "--log-driver",
        "local",
        "bb",
        "sh",
        "-c",
        "echo one; echo two >&2; exec sleep 60",
    ]);
    let out = s.docker_out(&["exec", "ex", "sh", "-c", "exit 5"]);
    assert_eq!(out.status.code(), Some(5), "{out:?}");
    s.docker_ok(&[
        "exec",
        "-d",
        "ex",
        "sh",
        "-c",
        "while [ ! -e /go ]; do sleep 0.02; done; exit 4",
    ]);
    s.docker_ok(&["exec", "ex", "touch", "/go"]);
    // Through GET /events: one exec_create, exec_start and exec_die per exec, with the codes.
    let format = "{{.Action}}|{{index .Actor.Attributes \"exitCode\"}}";
    let mut got = String::new();
    let ok = berth_testkit::wait_until(Duration::from_secs(30), || {
        let until = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 1;
        got = s.docker_ok(&[
            "events",
            "--since",
            &t0,
            "--until",
            &until.to_string(),
            "--filter",
            "event=exec_die",
            "--format",
            format,
        ]);
        got.lines().count() == 3
    });
    assert!(ok, "exec_die events: {got}");
    let mut codes: Vec<&str> = got.lines().collect();
    codes.sort();
    assert_eq!(codes, ["exec_die|0", "exec_die|4", "exec_die|5"]);
    // The next second: events follows until then (an --until far ahead would wait for it).
    let until = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 1)
    .to_string();
    let actions = s.docker_ok(&[
        "events",
        "--since",
        &t0,
        "--until",
        &until,
        "--filter",
        "event=exec_create",
        "--filter",
        "event=exec_start",
        "--format",
        "{{.Action}}",
    ]);
    for cmd in [
        "sh -c exit 5",
        "sh -c while [ ! -e /go ]; do sleep 0.02; done; exit 4",
        "touch /go",
    ] {
        for kind in ["exec_create", "exec_start"] {
            let want = format!("{kind}: {cmd}");
            assert_eq!(
                actions.lines().filter(|l| *l == want).count(),
                1,
                "{want} in {actions}"
            );
        }
    }
    // The local driver's log through GET /containers/{id}/logs.
    let out = s.docker_out(&["logs", "ex"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "one\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "two\n");
    let out = s.docker_out(&["logs", "--tail", "1", "-t", "ex"]);
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        text.ends_with(" one\n") || text.ends_with(" two\n"),
        "{text}"
    );
    s.docker_ok(&["rm", "-f", "ex"]);
    // Image verbs through the API record their events too (the engine's image_verbs).
    s.docker_ok(&["tag", "bb", "bb:other"]);
    s.docker_ok(&["rmi", "bb:other"]);
    let until = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 1)
    .to_string();
    let images = s.docker_ok(&[
        "events",
        "--since",
        &t0,
        "--until",
        &until,
        "--filter",
        "type=image",
        "--format",
        "{{.Action}} {{index .Actor.Attributes \"name\"}}",
    ]);
    let lines: Vec<&str> = images.lines().collect();
    assert!(lines.contains(&"tag bb:other"), "{images}");
    assert!(
        lines.iter().any(|l| l.starts_with("untag sha256:")),
        "{images}"
    );
}

/// A hijacked attach over the raw socket: sends the request, checks for Docker's 101, and
/// returns the stream (with a read deadline) for the session.
fn raw_attach(s: &Service, container: &str, query: &str) -> std::os::unix::net::UnixStream {
    use std::io::Read;
    let mut c = std::os::unix::net::UnixStream::connect(s.socket()).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        c,
        "POST /v1.47/containers/{container}/attach?{query} HTTP/1.1\r\nHost: berth\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n"
    )
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = c.read(&mut byte).expect("the attach answer within 20 s");
        assert_eq!(n, 1, "the service closed the attach: {head:?}");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    c
}

/// Reads stdcopy frames until `want` shows in their payloads (or EOF / the read deadline).
fn read_until(c: &mut std::os::unix::net::UnixStream, want: &str) -> String {
    use std::io::Read;
    let mut text = String::new();
    let mut header = [0u8; 8];
    while !text.contains(want) {
        if c.read_exact(&mut header).is_err() {
            break;
        }
        let len = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
        let mut payload = vec![0u8; len];
        if c.read_exact(&mut payload).is_err() {
            break;
        }
        text.push_str(&String::from_utf8_lossy(&payload));
    }
    text
}

#[test]
fn attach_with_logs_and_detach_keys() {
    if !have_docker_cli() {
        eprintln!("skipping: no docker CLI");
        return;
    }
    let s = Service::start();
    s.import_busybox("bb");
    s.docker_ok(&[
        "run",
        "-d",
        "-i",
        "--name",
        "talker",
        "bb",
        "sh",
        "-c",
        "echo early; while read x; do echo got $x; done",
    ]);
    assert!(
        berth_testkit::wait_until(Duration::from_secs(20), || {
            s.docker_ok(&["logs", "talker"]).contains("early")
        }),
        "the container never logged its first line"
    );
    // logs=1 without stream: the output so far, then the end of the stream.
    let mut c = raw_attach(&s, "talker", "logs=1&stream=0&stdout=1&stderr=1");
    let past = read_until(&mut c, "\u{0}never");
    assert_eq!(past, "early\n");
    // logs=1 with stream: the past first, then live output.
    let mut c = raw_attach(
        &s,
        "talker",
        "logs=1&stream=1&stdin=1&stdout=1&detachKeys=ctrl-x",
    );
    assert!(read_until(&mut c, "early").contains("early"));
    c.write_all(b"one\n").unwrap();
    assert!(read_until(&mut c, "got one").contains("got one"));
    // The detach keys end the session (the service closes it); the container keeps running.
    c.write_all(b"\x18").unwrap();
    let rest = read_until(&mut c, "\u{0}never");
    assert_eq!(rest, "", "output after detaching");
    let state = s.docker_ok(&["inspect", "-f", "{{.State.Running}}", "talker"]);
    assert_eq!(state.trim(), "true");
    let mut c = raw_attach(&s, "talker", "stream=1&stdin=1&stdout=1");
    c.write_all(b"two\n").unwrap();
    let text = read_until(&mut c, "got two");
    assert!(text.contains("got two"), "{text}");
    assert!(
        !text.contains('\u{18}'),
        "the detach key reached the container: {text:?}"
    );
    // A bad key sequence is Docker's 400.
    let out = s.docker_out(&["attach", "--detach-keys", "ctrl-", "talker"]);
    assert!(!out.status.success());
    s.docker_ok(&["rm", "-f", "talker"]);
}

/// `docker ps` filters and `docker images` filters go through the engine's and the image
/// store's one implementation, so the service and `berth ps`/`berth images` agree.
#[test]
fn list_filters_match_the_berth_cli() {
    if !have_docker_cli() {
        eprintln!("skipping: no docker CLI");
        return;
    }
    let s = Service::start();
    s.import_busybox("bb");
    s.docker_ok(&["tag", "bb", "other/app:1.2"]);
    s.docker_ok(&[
        "create",
        "--name",
        "web-1",
        "--label",
        "tier=front",
        "bb",
        "true",
    ]);
    s.docker_ok(&[
        "create",
        "--name",
        "db-1",
        "--label",
        "tier=back",
        "bb",
        "true",
    ]);
    let names = |args: &[&str]| {
        let mut out: Vec<String> = s.docker_ok(args).lines().map(str::to_string).collect();
        out.sort();
        out
    };
    let ps = |filter: &str| names(&["ps", "-a", "--format", "{{.Names}}", "--filter", filter]);
    assert_eq!(ps("name=^web"), ["web-1"]);
    assert_eq!(ps("label=tier=back"), ["db-1"]);
    assert_eq!(ps("status=created"), ["db-1", "web-1"]);
    assert_eq!(ps("since=web-1"), ["db-1"]);
    assert!(ps("status=running").is_empty());
    let out = s.docker_out(&["ps", "--filter", "colour=red"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("invalid filter 'colour'"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let images = |filter: &str| {
        names(&[
            "images",
            "--format",
            "{{.Repository}}:{{.Tag}}",
            "--filter",
            filter,
        ])
    };
    assert_eq!(images("reference=*/*"), ["other/app:1.2"]);
    assert_eq!(images("reference=bb"), ["bb:latest"]);
    assert!(images("dangling=true").is_empty());
}
