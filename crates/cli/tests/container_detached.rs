//! Detached containers: they outlive the CLI, `ps` lists them, `exec` lands in their
//! namespaces (same inodes as /proc/<State.Pid>/ns/*), `exec -it` gets a terminal, `logs`
//! shows their output, their root is an overlay mount while they run, and `stop`/`rm` remove
//! record and mount. `wait`, `kill`, restart policies and `commit` too.
mod container_common;
use berth_testkit::{have, ns_inode, wait_until};
use container_common::*;
use std::time::Duration;

#[test]
fn detached_container_lives_execs_logs_and_is_removed() {
    let env = Env::new("detached");
    let id = env.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "busybox",
        "sh",
        "-c",
        "echo started; echo warn >&2; exec sleep 1000",
    ]);
    assert_eq!(id.len(), 64);
    // The CLI has exited; the container runs on.
    assert_eq!(env.inspect("web", "{{.State.Status}}"), "running");
    let ps = env.ok(&["ps"]);
    assert!(
        ps.contains("web") && ps.contains(&id[..12]) && ps.contains("Up "),
        "{ps}"
    );
    assert_eq!(env.ok(&["ps", "-q"]), &id[..12]);
    let pid = env.inspect("web", "{{.State.Pid}}");
    for kind in ["pid", "mnt", "uts", "ipc", "net"] {
        let inside = env.ok(&["exec", "web", "readlink", &format!("/proc/self/ns/{kind}")]);
        let expected = ns_inode(&pid, kind).expect("ns inode");
        assert_eq!(
            inside,
            format!("{kind}:[{expected}]"),
            "exec is not in the container's {kind} namespace"
        );
    }
    assert_eq!(env.ok(&["exec", "web", "hostname"]), &id[..12]);
    // exec joins the container's cgroup too.
    let host_view = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert_eq!(
        env.ok(&["exec", "web", "cat", "/proc/self/cgroup"]),
        host_view.trim()
    );
    let namespaces = env.inspect("web", "{{json .Namespaces}}");
    assert!(
        namespaces.contains(&format!("pid:[{}]", ns_inode(&pid, "pid").unwrap())),
        "{namespaces}"
    );
    assert_eq!(
        env.berth(&["exec", "web", "sh", "-c", "exit 7"])
            .status
            .code(),
        Some(7)
    );
    assert_eq!(
        env.berth(&["exec", "web", "no-such-command"]).status.code(),
        Some(127)
    );
    assert!(wait_until(Duration::from_secs(5), || env
        .ok(&["logs", "web"])
        .contains("started")));
    let logs = env.berth(&["logs", "web"]);
    assert_eq!(stdout(&logs), "started\n");
    assert_eq!(stderr(&logs), "warn\n");
    let json_log =
        std::fs::read_to_string(env.path().join(format!("containers/{id}/{id}-json.log"))).unwrap();
    assert!(
        json_log.contains(r#""log":"started\n","stream":"stdout","time":""#),
        "{json_log}"
    );
    let merged = env.inspect("web", "{{.GraphDriver.Data.MergedDir}}");
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        mountinfo
            .lines()
            .any(|l| l.split(' ').nth(4) == Some(merged.as_str()) && l.contains(" - overlay ")),
        "{merged} is not an overlay mount"
    );
    if have("script") {
        let cmd = format!(
            "{} --root {} exec -it web tty",
            berth_bin(),
            env.path().display()
        );
        let out = std::process::Command::new("script")
            .args(["-qc", &cmd, "/dev/null"])
            .output()
            .unwrap();
        assert!(
            stdout(&out).contains("/dev/pts/"),
            "exec -it got no tty: {}",
            stdout(&out)
        );
    } else {
        eprintln!("note: script(1) missing, skipping exec -it");
    }
    env.ok(&["stop", "-t", "1", "web"]);
    assert_eq!(env.inspect("web", "{{.State.Status}}"), "exited");
    assert!(!mountinfo_has(&merged), "stopped container still mounted");
    assert!(env.ok(&["ps", "-a"]).contains("Exited (137)"));
    env.ok(&["rm", "web"]);
    assert!(env.record_ids().is_empty());
    assert!(env.berth(&["container", "inspect", "web"]).status.code() == Some(1));
}

fn mountinfo_has(path: &str) -> bool {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(path))
}

#[test]
fn wait_prints_the_exit_status_and_kill_signals() {
    let env = Env::new("wait");
    env.ok(&[
        "run",
        "-d",
        "--name",
        "job",
        "busybox",
        "sh",
        "-c",
        "sleep 0.3; exit 5",
    ]);
    assert_eq!(env.ok(&["wait", "job"]), "5");
    assert!(env
        .ok(&["ps", "-a", "--filter", "status=exited"])
        .contains("Exited (5)"));
    env.ok(&["run", "-d", "--name", "sleeper", "busybox", "sleep", "1000"]);
    env.ok(&["kill", "sleeper"]);
    assert_eq!(env.ok(&["wait", "sleeper"]), "137");
    env.ok(&["start", "sleeper"]);
    assert_eq!(env.inspect("sleeper", "{{.State.Running}}"), "true");
    env.ok(&["rm", "-f", "sleeper", "job"]);
    assert!(env.record_ids().is_empty());
    assert!(env.mounts_below().is_empty());
}

#[test]
fn restart_policy_on_failure_retries() {
    let env = Env::new("restart");
    env.ok(&[
        "run",
        "-d",
        "--name",
        "flaky",
        "--restart",
        "on-failure:2",
        "busybox",
        "sh",
        "-c",
        "exit 1",
    ]);
    assert!(wait_until(Duration::from_secs(10), || env
        .inspect("flaky", "{{.RestartCount}}")
        == "2"
        && env.inspect("flaky", "{{.State.Status}}") == "exited"));
    assert_eq!(env.ok(&["wait", "flaky"]), "1");
}

#[test]
fn killed_monitor_leaves_a_truthful_record_and_rm_f_cleans_up() {
    let env = Env::new("monitor");
    let id = env.ok(&["run", "-d", "--name", "orphan", "busybox", "sleep", "1000"]);
    let record: serde_json::Value = serde_json::from_slice(
        &std::fs::read(env.path().join(format!("containers/{id}/config.v2.json"))).unwrap(),
    )
    .unwrap();
    let monitor = record["BerthMonitorPid"].as_i64().unwrap() as i32;
    assert!(monitor > 0);
    // SAFETY: the monitor is a process this test started (through berth).
    unsafe { libc::kill(monitor, libc::SIGKILL) };
    assert!(wait_until(
        Duration::from_secs(5),
        || !std::path::Path::new(&format!("/proc/{monitor}/stat")).exists()
            || std::fs::read_to_string(format!("/proc/{monitor}/stat"))
                .map(|s| s.contains(") Z"))
                .unwrap_or(true)
    ));
    // The container itself still runs, and ps says so.
    assert_eq!(env.inspect("orphan", "{{.State.Status}}"), "running");
    env.ok(&["rm", "-f", "orphan"]);
    assert!(env.record_ids().is_empty());
    assert!(env.mounts_below().is_empty());
}

#[test]
fn rm_f_cleans_up_even_when_the_runtime_state_is_lost() {
    let env = Env::new("lost");
    let id = env.ok(&[
        "run",
        "-d",
        "--name",
        "lost",
        "busybox",
        "sh",
        "-c",
        "sleep 1000 & sleep 1000",
    ]);
    let pid: i32 = env.inspect("lost", "{{.State.Pid}}").parse().unwrap();
    std::fs::remove_dir_all(env.path().join("runtime").join(&id)).unwrap();
    env.ok(&["rm", "-f", "lost"]);
    assert!(wait_until(Duration::from_secs(5), || {
        !std::path::Path::new(&format!("/proc/{pid}")).exists()
    }));
    assert!(!cgroup_dir("pids", &id).exists(), "cgroup left behind");
    assert!(env.record_ids().is_empty());
    assert!(env.mounts_below().is_empty());
}

#[test]
fn pause_rename_top_stats_port_and_restart() {
    let env = Env::new("verbs");
    let id = env.ok(&[
        "run", "-d", "--name", "v1", "-p", "8080:80", "busybox", "sleep", "1000",
    ]);
    env.ok(&["pause", "v1"]);
    assert_eq!(
        env.inspect("v1", "{{.State.Status}} {{.State.Paused}}"),
        "paused true"
    );
    let freezer = cgroup_dir("freezer", &id).join("freezer.state");
    assert_eq!(std::fs::read_to_string(&freezer).unwrap().trim(), "FROZEN");
    env.ok(&["unpause", "v1"]);
    assert_eq!(env.inspect("v1", "{{.State.Status}}"), "running");

    env.ok(&["rename", "v1", "v2"]);
    assert_eq!(env.inspect("v2", "{{.Name}}"), "/v2");
    assert!(!env.berth(&["inspect", "v1"]).status.success());

    let top = env.ok(&["top", "v2"]);
    assert!(top.lines().next().unwrap().contains("PID"), "{top}");
    assert!(top.contains("sleep 1000"), "{top}");
    let stats = env.ok(&["stats", "--no-stream", "v2"]);
    assert!(
        stats.contains("MEM USAGE") && stats.contains("v2"),
        "{stats}"
    );

    // The binding is recorded as Docker records it; with no bridge network nothing is published,
    // so `port` lists nothing, as Docker's does for a container on `none`.
    let bindings = env.inspect("v2", "{{json .HostConfig.PortBindings}}");
    assert_eq!(bindings, r#"{"80/tcp":[{"HostIp":"","HostPort":"8080"}]}"#);
    assert_eq!(env.ok(&["port", "v2"]), "");

    let pid_before = env.inspect("v2", "{{.State.Pid}}");
    env.ok(&["restart", "-t", "1", "v2"]);
    assert_eq!(env.inspect("v2", "{{.State.Status}}"), "running");
    assert_ne!(env.inspect("v2", "{{.State.Pid}}"), pid_before);
    env.ok(&["rm", "-f", "v2"]);
}

#[test]
fn attach_and_start_attach_stream_and_pass_the_status() {
    use std::io::Write;
    use std::process::Stdio;
    let env = Env::new("attach");
    env.ok(&[
        "run",
        "-d",
        "-i",
        "--name",
        "a1",
        "busybox",
        "sh",
        "-c",
        "read x; echo got:$x; exit 4",
    ]);
    let mut child = env
        .cmd(&["attach", "a1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"hello\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "got:hello\n");
    assert_eq!(out.status.code(), Some(4));
    // Attaching to a stopped container fails as Docker's does.
    assert!(!env.berth(&["attach", "a1"]).status.success());

    env.ok(&[
        "create",
        "--name",
        "c1",
        "busybox",
        "sh",
        "-c",
        "echo from-create; exit 2",
    ]);
    let out = env.berth(&["start", "-a", "c1"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "from-create\n");
    assert_eq!(out.status.code(), Some(2));
}
