//! `exec` into running containers: output and exit status, same namespaces and cgroup as the
//! init, process.json, user override, detach with pid file, refusal on stopped containers.

mod common;

use berth_testkit::Bundle;
use common::*;

fn running(w: &World) -> (Guard, Bundle, i64) {
    let b = Bundle::new(&["sleep", "1000"]).unwrap();
    let id = unique_id("exec");
    let g = w.guard(&id);
    w.ok(&["run", "-d", "--bundle", b.path().to_str().unwrap(), &id]);
    let pid = w.state(&id).unwrap()["pid"].as_i64().unwrap();
    (g, b, pid)
}

#[test]
fn exec_output_status_and_namespaces() {
    let w = World::new();
    let (g, _b, pid) = running(&w);
    let out = w.ok(&[
        "exec",
        &g.id,
        "sh",
        "-c",
        "echo hi; for n in pid net mnt uts ipc; do readlink /proc/self/ns/$n; done; hostname",
    ]);
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("hi"));
    for kind in ["pid", "net", "mnt", "uts", "ipc"] {
        let want = std::fs::read_link(format!("/proc/{pid}/ns/{kind}")).unwrap();
        assert_eq!(lines.next(), Some(want.to_str().unwrap()), "{kind}");
    }
    assert_eq!(lines.next(), Some("runc"));
    let o = w.out(&["exec", &g.id, "--", "sh", "-c", "exit 5"]);
    assert_eq!(o.status.code(), Some(5));
    // The exec'd process joins the container's cgroup and sees the container's root.
    let out = w.ok(&[
        "exec",
        &g.id,
        "sh",
        "-c",
        "cat /proc/self/cgroup | grep memory; ls /bin/busybox",
    ]);
    assert!(out.contains(&format!("/berth/{}", g.id)), "{out}");
    assert!(out.contains("/bin/busybox"));
}

#[test]
fn exec_with_process_json_user_env_cwd() {
    let w = World::new();
    let (g, _b, _) = running(&w);
    let p = w.root().join("process.json");
    std::fs::write(
        &p,
        serde_json::json!({
            "terminal": false,
            "user": {"uid": 1000, "gid": 1000},
            "args": ["sh", "-c", "id -u; pwd; echo $GREETING"],
            "env": ["PATH=/bin", "GREETING=hello"],
            "cwd": "/tmp",
            "noNewPrivileges": true
        })
        .to_string(),
    )
    .unwrap();
    let out = w.ok(&["exec", "--process", p.to_str().unwrap(), &g.id]);
    assert_eq!(out, "1000\n/tmp\nhello\n");
    let out = w.ok(&[
        "exec",
        "-u",
        "1000:1000",
        "-e",
        "X=1",
        "--cwd",
        "/home",
        &g.id,
        "sh",
        "-c",
        "id -g; pwd; echo $X",
    ]);
    assert_eq!(out, "1000\n/home\n1\n");
}

#[test]
fn exec_detached_with_pid_file_and_errors() {
    let w = World::new();
    let (g, _b, _) = running(&w);
    let pid_file = w.root().join("exec.pid");
    w.ok(&[
        "exec",
        "-d",
        "--pid-file",
        pid_file.to_str().unwrap(),
        &g.id,
        "sleep",
        "500",
    ]);
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let pids: Vec<i32> = serde_json::from_str(&w.ok(&["ps", "-f", "json", &g.id])).unwrap();
    assert!(pids.contains(&pid), "{pids:?} lacks {pid}");
    let o = w.out(&["exec", &g.id, "no-such-binary"]);
    assert_eq!(o.status.code(), Some(255), "runc exits 255 when exec fails");
    assert!(String::from_utf8_lossy(&o.stderr).contains("executable file not found in $PATH"));
    w.ok(&["kill", &g.id, "KILL"]);
    assert!(w.wait_status(&g.id, "stopped"));
    let o = w.out(&["exec", &g.id, "true"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("stopped"));
}

#[test]
fn exec_into_user_and_cgroup_namespaces() {
    let w = World::new();
    let mut b = Bundle::new(&["sleep", "1000"]).unwrap();
    let nss = b.spec["linux"]["namespaces"].as_array_mut().unwrap();
    nss.push(serde_json::json!({"type": "user"}));
    nss.push(serde_json::json!({"type": "cgroup"}));
    b.spec["linux"]["uidMappings"] =
        serde_json::json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    b.spec["linux"]["gidMappings"] =
        serde_json::json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    b.write_config().unwrap();
    let id = unique_id("usercg");
    let _g = w.guard(&id);
    w.ok(&["run", "-d", "--bundle", b.path().to_str().unwrap(), &id]);
    let pid = w.state(&id).unwrap()["pid"].as_i64().unwrap();
    let out = w.ok(&["exec", &id, "sh", "-c", "id -u; readlink /proc/self/ns/user; readlink /proc/self/ns/cgroup; grep memory /proc/self/cgroup"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "0");
    for (i, kind) in [(1, "user"), (2, "cgroup")] {
        let want = std::fs::read_link(format!("/proc/{pid}/ns/{kind}")).unwrap();
        assert_eq!(lines[i], want.to_str().unwrap());
        assert_ne!(
            berth_testkit::ns_inode("self", kind).unwrap().to_string(),
            lines[i]
                .trim_start_matches(&format!("{kind}:["))
                .trim_end_matches(']')
        );
    }
    // In its own cgroup namespace the container sees its cgroup as the root.
    assert!(lines[3].ends_with(":memory:/"), "{out}");
    // The host sees the process mapped to 100000.
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("Uid:") && l.contains("100000")),
        "{status}"
    );
}

#[test]
fn exec_tty_without_console_socket_proxies() {
    use rustix::pty::OpenptFlags;
    let w = World::new();
    let (g, _b, _) = running(&w);
    let master = rustix::pty::openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).unwrap();
    rustix::pty::grantpt(&master).unwrap();
    rustix::pty::unlockpt(&master).unwrap();
    let name = rustix::pty::ptsname(&master, Vec::new()).unwrap();
    let slave = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(name.to_str().unwrap())
        .unwrap();
    let mut child = w
        .cmd(&["exec", "-t", &g.id, "sh", "-c", "tty; exit 6"])
        .stdin(slave.try_clone().unwrap())
        .stdout(slave.try_clone().unwrap())
        .stderr(slave)
        .spawn()
        .unwrap();
    let status = wait_within(&mut child, COMMAND_DEADLINE, "exec -t");
    assert_eq!(status.code(), Some(6));
    let mut buf = [0u8; 4096];
    let n = rustix::io::read(&master, &mut buf).unwrap_or(0);
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(text.contains("/dev/pts/"), "{text}");
}

#[test]
fn exec_cpu_affinity() {
    let w = World::new();
    let (g, _b, _) = running(&w);
    let p = w.root().join("affinity.json");
    std::fs::write(
        &p,
        serde_json::json!({
            "user": {"uid": 0, "gid": 0},
            "args": ["sh", "-c", "grep Cpus_allowed_list /proc/self/status"],
            "env": ["PATH=/bin"],
            "cwd": "/",
            "execCPUAffinity": {"initial": "0", "final": "0"}
        })
        .to_string(),
    )
    .unwrap();
    let out = w.ok(&["exec", "--process", p.to_str().unwrap(), &g.id]);
    assert!(out.trim().ends_with("\t0"), "{out}");
}
