//! Log drivers end to end: json-file rotation by the monitor (`--log-opt max-size max-file`),
//! `logs` across the rotated files and following through rotations, and the `none` driver.
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
