//! Log drivers end to end: json-file rotation by the monitor (`--log-opt max-size max-file`),
//! `logs` across the rotated files and following through rotations, the `local` driver (its
//! framed protobuf files, rotated and gzipped, read by `logs` and the API; a file written by
//! Docker's own local driver read by Berth), and the `none` driver.
mod container_common;
use container_common::*;
use std::io::Read;
use std::time::{Duration, Instant};

fn wait_exited(env: &Env, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while env.inspect(name, "{{.State.Status}}") != "exited"
        || env.inspect(name, "{{.State.Pid}}") != "0"
    {
        assert!(Instant::now() < deadline, "waited 60s for {name} to exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn fifty_megabytes_leave_three_files_of_at_most_one_megabyte() {
    let env = Env::new("logrotate");
    // 50,000 lines of 999 characters, then five numbered ones.
    env.ok(&[
        "run",
        "--name",
        "noisy",
        "--log-opt",
        "max-size=1m",
        "--log-opt",
        "max-file=3",
        "busybox",
        "sh",
        "-c",
        "head -c 50000000 /dev/zero | tr '\\0' x | fold -w 999; echo; for i in 1 2 3 4 5; do echo end $i; done",
    ]);
    wait_exited(&env, "noisy");
    let id = env.inspect("noisy", "{{.Id}}");
    let dir = env.path().join("containers").join(&id);
    let logs: Vec<(String, u64)> = std::fs::read_dir(&dir)
        .expect("container dir")
        .map(|e| e.expect("entry"))
        .filter(|e| e.file_name().to_string_lossy().contains("-json.log"))
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                e.metadata().expect("metadata").len(),
            )
        })
        .collect();
    assert_eq!(logs.len(), 3, "{logs:?}");
    for (name, len) in &logs {
        assert!(*len <= 1_000_000, "{name} holds {len} bytes");
    }
    assert_eq!(
        env.ok(&["logs", "--tail", "5", "noisy"]),
        "end 1\nend 2\nend 3\nend 4\nend 5"
    );
    // Without --tail, every line the three files hold, oldest first.
    let all = env.berth(&["logs", "noisy"]);
    let text = stdout(&all);
    assert!(text.ends_with("end 5\n"));
    let lines = text.lines().count();
    assert!(lines > 2000 && lines < 3100, "{lines} lines");
    assert_eq!(
        env.inspect("noisy", "{{json .HostConfig.LogConfig}}"),
        r#"{"Config":{"max-file":"3","max-size":"1m"},"Type":"json-file"}"#
    );
}

#[test]
fn follow_reads_through_rotations_until_the_container_stops() {
    let env = Env::new("logfollow");
    env.ok(&[
        "run",
        "-d",
        "--name",
        "chatty",
        "--log-opt",
        "max-size=2k",
        "--log-opt",
        "max-file=1000",
        "busybox",
        "sh",
        "-c",
        "while [ ! -f /go ]; do sleep 0.02; done; i=0; while [ $i -lt 400 ]; do echo \"line $i of a follow test\"; i=$((i+1)); done",
    ]);
    let mut follower = env
        .cmd(&["logs", "-f", "chatty"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("logs -f");
    let mut out = follower.stdout.take().expect("stdout");
    env.ok(&["exec", "chatty", "touch", "/go"]);
    // logs -f ends by itself once the container stops; bound the wait all the same.
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = out.read_to_string(&mut text);
        text
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = follower.try_wait().expect("try_wait") {
            assert!(status.success());
            break;
        }
        if Instant::now() > deadline {
            let _ = follower.kill();
            panic!("logs -f did not end within 60s of the container's end");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let text = reader.join().expect("reader");
    let want: Vec<String> = (0..400)
        .map(|i| format!("line {i} of a follow test"))
        .collect();
    assert_eq!(text.lines().collect::<Vec<_>>(), want);
    let rotated = std::fs::read_dir(
        env.path()
            .join("containers")
            .join(env.inspect("chatty", "{{.Id}}")),
    )
    .expect("dir")
    .filter(|e| {
        e.as_ref()
            .is_ok_and(|e| e.file_name().to_string_lossy().contains("-json.log."))
    })
    .count();
    assert!(rotated >= 5, "{rotated} rotated files");
}

#[test]
fn the_none_driver_keeps_nothing_and_bad_options_fail_as_docker() {
    let env = Env::new("lognone");
    env.ok(&[
        "run",
        "--name",
        "quiet",
        "--log-driver",
        "none",
        "busybox",
        "echo",
        "hi",
    ]);
    let out = env.berth(&["logs", "quiet"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out).trim(),
        "Error response from daemon: configured logging driver does not support reading"
    );
    assert_eq!(env.inspect("quiet", "{{.LogPath}}"), "");
    let id = env.inspect("quiet", "{{.Id}}");
    assert!(!env
        .path()
        .join("containers")
        .join(&id)
        .join(format!("{id}-json.log"))
        .exists());
    for (args, message) in [
        (
            vec!["--log-driver", "none", "--log-opt", "max-size=1m"],
            "invalid logging opts for driver none",
        ),
        (
            vec!["--log-opt", "colour=red"],
            "unknown log opt 'colour' for json-file log driver",
        ),
        (
            vec!["--log-opt", "max-size=0"],
            "max-size must be a positive number",
        ),
        (vec!["--log-driver", "foo"], "plugin \"foo\" not found"),
    ] {
        let mut full = vec!["run"];
        full.extend(args);
        full.extend(["busybox", "true"]);
        let out = env.berth(&full);
        assert_eq!(out.status.code(), Some(125), "{full:?}");
        assert!(stderr(&out).contains(message), "{full:?}: {}", stderr(&out));
    }
    // Nothing half-made: only the one container exists.
    assert_eq!(env.record_ids().len(), 1);
}

/// The files of the `local` driver's directory of container `name`, with their sizes.
fn local_files(env: &Env, name: &str) -> Vec<(String, u64)> {
    let id = env.inspect(name, "{{.Id}}");
    let dir = env.path().join("containers").join(&id).join("local-logs");
    let mut files: Vec<(String, u64)> = std::fs::read_dir(&dir)
        .expect("local-logs dir")
        .map(|e| e.expect("entry"))
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                e.metadata().expect("metadata").len(),
            )
        })
        .collect();
    files.sort();
    files
}

#[test]
fn the_local_driver_rotates_compresses_and_reads_back_across_files() {
    let env = Env::new("loglocal");
    // 20,000 lines of 99 characters (2 MB) into 500 kB files, three kept, gzipped.
    env.ok(&[
        "run",
        "--name",
        "compact",
        "--log-driver",
        "local",
        "--log-opt",
        "max-size=500k",
        "--log-opt",
        "max-file=3",
        "busybox",
        "sh",
        "-c",
        "head -c 2000000 /dev/zero | tr '\\0' y | fold -w 99; echo; \
         for i in 1 2 3 4 5; do echo end $i; done; echo oops >&2",
    ]);
    wait_exited(&env, "compact");
    let files = local_files(&env, "compact");
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["container.log", "container.log.1.gz", "container.log.2.gz"],
        "{files:?}"
    );
    assert!(files[0].1 <= 500_000, "{files:?}");
    // Docker's local driver names no log file in inspect.
    assert_eq!(env.inspect("compact", "{{.LogPath}}"), "");
    assert_eq!(
        env.inspect("compact", "{{json .HostConfig.LogConfig}}"),
        r#"{"Config":{"max-file":"3","max-size":"500k"},"Type":"local"}"#
    );
    let tail = env.berth(&["logs", "--tail", "6", "compact"]);
    assert_eq!(stdout(&tail), "end 1\nend 2\nend 3\nend 4\nend 5\n");
    assert_eq!(stderr(&tail), "oops\n");
    // --tail reaches into the gzipped files: every line the three files hold but the first.
    let all = stdout(&env.berth(&["logs", "compact"]));
    let count = all.lines().count();
    assert!(count > 7_000 && count < 12_000, "{count} lines");
    let most = stdout(&env.berth(&["logs", "--tail", &(count - 1).to_string(), "compact"]));
    assert_eq!(
        most.lines().count(),
        count - 2,
        "the stderr line is one of the tail"
    );
    assert!(all.ends_with(&most));
    // -t: each line with its RFC 3339 time.
    let stamped = env.berth(&["logs", "-t", "--tail", "1", "compact"]);
    let stamped = stdout(&stamped) + &stderr(&stamped);
    let (time, rest) = stamped.split_once(' ').expect("a timestamp");
    assert!(time.ends_with('Z') && time.len() == 30, "{time}");
    assert!(rest == "end 5\n" || rest == "oops\n", "{rest:?}");
    // Docker's defaults when no option is given.
    env.ok(&[
        "run",
        "--name",
        "plain",
        "--log-driver",
        "local",
        "busybox",
        "echo",
        "hi",
    ]);
    wait_exited(&env, "plain");
    assert_eq!(env.ok(&["logs", "plain"]), "hi");
    let out = env.berth(&[
        "run",
        "--log-driver",
        "local",
        "--log-opt",
        "max-file=1",
        "busybox",
        "true",
    ]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        stderr(&out).contains("compression cannot be enabled when max file count is 1"),
        "{}",
        stderr(&out)
    );
    assert_eq!(env.record_ids().len(), 2);
}

#[test]
fn a_local_log_written_by_docker_is_read_by_berth() {
    let env = Env::new("loglocal-docker");
    let Some(docker) = dockerd_with_busybox(&env) else {
        return;
    };
    // A long line (Docker splits it into partial records), stdout and stderr, and a last
    // line without its newline.
    let script = "head -c 40000 /dev/zero | tr '\\0' z; echo; for i in 1 2 3; do echo out $i; \
                  echo err $i >&2; done; printf tail";
    let out = docker
        .docker()
        .args([
            "run",
            "--name",
            "dlocal",
            "--network",
            "none",
            "--log-driver",
            "local",
            "busybox",
            "sh",
            "-c",
            script,
        ])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("docker run");
    assert!(out.status.success(), "{}", stderr(&out));
    let docker_logs = docker
        .docker()
        .args(["logs", "dlocal"])
        .output()
        .expect("docker logs");
    let id = String::from_utf8_lossy(
        &docker
            .docker()
            .args(["inspect", "-f", "{{.Id}}", "dlocal"])
            .output()
            .expect("docker inspect")
            .stdout,
    )
    .trim()
    .to_string();
    let docker_dir = docker
        .data_root()
        .join("containers")
        .join(&id)
        .join("local-logs");
    assert!(docker_dir.join("container.log").is_file(), "{docker_dir:?}");

    // The engine's reader parses Docker's file as Docker's `logs` shows it.
    let log = berth_engine::logs::LogFile {
        path: docker_dir.join("container.log"),
        format: berth_engine::logs::LogFormat::Local,
    };
    let read = |tail: Option<usize>| {
        let opts = berth_engine::logs::LogOptions {
            tail,
            ..Default::default()
        };
        let (mut out, mut err) = (Vec::new(), Vec::new());
        berth_engine::logs::print_log(&log, &opts, &mut out, &mut err, || false)
            .expect("reading Docker's local log");
        (out, err)
    };
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let (out, err) = read(None);
    let differ = |a: &[u8], b: &[u8]| {
        let at = a
            .iter()
            .zip(b)
            .position(|(x, y)| x != y)
            .unwrap_or(a.len().min(b.len()));
        format!(
            "{} vs {} bytes, first difference at {at}: {:?} vs {:?}",
            a.len(),
            b.len(),
            text(&a[at.saturating_sub(20)..(at + 20).min(a.len())]),
            text(&b[at.saturating_sub(20)..(at + 20).min(b.len())])
        )
    };
    // Docker 20.10's reader drops the newline that ends a split line's last piece (its copier
    // marks that piece `last`, its decoder ignores the mark); later Docker's reader, whose rule
    // Berth follows, keeps it. Either way every other byte is the same.
    let mut newer = docker_logs.stdout.clone();
    if newer.get(40_000) != Some(&b'\n') {
        newer.insert(40_000, b'\n');
    }
    assert!(out == newer, "{}", differ(&out, &newer));
    assert_eq!(text(&err), text(&docker_logs.stderr));
    assert!(String::from_utf8_lossy(&out).ends_with("out 3\ntail"));
    assert_eq!(String::from_utf8_lossy(&err), "err 1\nerr 2\nerr 3\n");
    let (out, _) = read(Some(1));
    assert_eq!(out, b"tail");

    // And `berth logs` reads it in place of a Berth container's own local log.
    env.ok(&[
        "create",
        "--name",
        "blocal",
        "--log-driver",
        "local",
        "busybox",
        "true",
    ]);
    let berth_dir = env
        .path()
        .join("containers")
        .join(env.inspect("blocal", "{{.Id}}"))
        .join("local-logs");
    std::fs::create_dir_all(&berth_dir).expect("local-logs");
    std::fs::copy(
        docker_dir.join("container.log"),
        berth_dir.join("container.log"),
    )
    .expect("copying Docker's log");
    let logs = env.berth(&["logs", "blocal"]);
    assert!(logs.stdout == newer, "{}", differ(&logs.stdout, &newer));
    assert_eq!(stderr(&logs), text(&docker_logs.stderr));
    let _ = docker.docker().args(["rm", "-f", "dlocal"]).output();
}
