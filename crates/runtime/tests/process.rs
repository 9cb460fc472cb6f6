//! The container process: rlimits (within and above the host's hard limit), capabilities, user
//! and groups, cwd, environment, umask, no_new_privs, oomScoreAdj.

mod common;

use common::*;

fn run_script(
    w: &World,
    script: &str,
    edit: impl FnOnce(&mut serde_json::Value),
) -> (i32, String, String) {
    let mut b = sh_bundle(script);
    edit(&mut b.spec);
    b.write_config().unwrap();
    w.run(&unique_id("proc"), &b)
}

fn host_hard_nofile() -> u64 {
    let mut l = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into a valid struct.
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) };
    l.rlim_max
}

#[test]
fn rlimit_within_host_hard_limit_applies() {
    let w = World::new();
    let (code, out, err) = run_script(&w, "ulimit -n; ulimit -Hn", |s| {
        s["process"]["rlimits"] =
            serde_json::json!([{"type": "RLIMIT_NOFILE", "soft": 512, "hard": 768}]);
    });
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "512\n768\n");
}

#[test]
fn rlimit_above_host_hard_limit_fails_clearly() {
    let w = World::new();
    let above = host_hard_nofile() + 1;
    let mut b = sh_bundle("true");
    b.spec["process"]["rlimits"] =
        serde_json::json!([{"type": "RLIMIT_NOFILE", "soft": above, "hard": above}]);
    b.write_config().unwrap();
    let id = unique_id("rlim");
    let _g = w.guard(&id);
    let o = w.out(&["create", "--bundle", b.path().to_str().unwrap(), &id]);
    let err = String::from_utf8_lossy(&o.stderr);
    // Only meaningful on hosts without CAP_SYS_RESOURCE (like the CI machine).
    if o.status.success() {
        eprintln!("note: host allows raising RLIMIT_NOFILE; skipping the failure check");
        return;
    }
    assert!(err.contains("RLIMIT_NOFILE"), "{err}");
    assert!(err.contains("CAP_SYS_RESOURCE"), "{err}");
    assert!(!w.root().join(&id).exists());
    assert!(!cgroup_dir("memory", &id).exists());
}

#[test]
fn capabilities_follow_the_spec() {
    let w = World::new();
    let (code, out, err) = run_script(
        &w,
        "grep -E '^Cap(Eff|Prm|Bnd|Amb|Inh)' /proc/self/status",
        |_| {},
    );
    assert_eq!(code, 0, "{err}");
    // runc's default: AUDIT_WRITE(29), KILL(5), NET_BIND_SERVICE(10).
    let want = format!("{:016x}", (1u64 << 29) | (1 << 5) | (1 << 10));
    for set in ["CapPrm", "CapEff", "CapBnd"] {
        let line = out.lines().find(|l| l.starts_with(set)).unwrap();
        assert!(line.ends_with(&want), "{line} (want {want})");
    }
    let (code, out, _) = run_script(&w, "grep CapEff /proc/self/status", |s| {
        s["process"]["capabilities"] = serde_json::json!({"bounding": ["CAP_SYS_ADMIN"], "effective": ["CAP_SYS_ADMIN"], "permitted": ["CAP_SYS_ADMIN"]});
    });
    assert_eq!(code, 0);
    assert!(
        out.trim().ends_with(&format!("{:016x}", 1u64 << 21)),
        "{out}"
    );
}

#[test]
fn user_groups_cwd_env_umask() {
    let w = World::new();
    let (code, out, err) = run_script(
        &w,
        "id -u; id -g; id -G; pwd; echo $HOME; echo $FOO; umask",
        |s| {
            s["process"]["user"] =
                serde_json::json!({"uid": 1000, "gid": 1000, "additionalGids": [50], "umask": 63});
            s["process"]["cwd"] = "/tmp".into();
            s["process"]["env"] = serde_json::json!(["PATH=/bin", "FOO=bar"]);
        },
    );
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "1000");
    assert_eq!(lines[1], "1000");
    assert!(lines[2].split(' ').any(|g| g == "50"), "{out}");
    assert_eq!(lines[3], "/tmp");
    assert_eq!(
        lines[4], "/home/tester",
        "HOME from the container's /etc/passwd"
    );
    assert_eq!(lines[5], "bar");
    assert_eq!(lines[6], "0077");
}

#[test]
fn cwd_is_created_inside_root_and_missing_cwd_fails() {
    let w = World::new();
    let (code, _, err) = run_script(&w, "pwd", |s| {
        s["process"]["cwd"] = "/does/not/exist".into();
    });
    assert_eq!(code, 1);
    assert!(err.contains("cwd"), "{err}");
}

#[test]
fn no_new_privileges_and_oom_score_adj() {
    let w = World::new();
    let (code, out, err) = run_script(
        &w,
        "grep NoNewPrivs /proc/self/status; cat /proc/self/oom_score_adj",
        |s| {
            s["process"]["noNewPrivileges"] = true.into();
            s["process"]["oomScoreAdj"] = 500.into();
        },
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("NoNewPrivs:\t1"), "{out}");
    assert!(out.contains("500"), "{out}");
    let (_, out, _) = run_script(&w, "grep NoNewPrivs /proc/self/status", |s| {
        s["process"]["noNewPrivileges"] = false.into();
    });
    assert!(out.contains("NoNewPrivs:\t0"), "{out}");
}

#[test]
fn only_preserved_fds_reach_the_container() {
    let w = World::new();
    // PID 1 is the shell; list what its fds point at.
    let b = sh_bundle("ls -l /proc/1/fd/");
    let id = unique_id("fds");
    let _g = w.guard(&id);
    let dir = tempfile::tempdir().unwrap();
    let keep = std::fs::File::create(dir.path().join("keep-marker")).unwrap();
    let leak = std::fs::File::create(dir.path().join("leak-marker")).unwrap();
    use std::os::fd::AsRawFd;
    let (keep_fd, leak_fd) = (keep.as_raw_fd(), leak.as_raw_fd());
    let mut cmd = w.cmd(&[
        "run",
        "--preserve-fds",
        "1",
        "--bundle",
        b.path().to_str().unwrap(),
        &id,
    ]);
    use std::os::unix::process::CommandExt;
    // SAFETY: dup2/fcntl in the forked child before exec. The runtime gets `keep` at fd 3
    // (preserved) and `leak` at fd 4 (must not reach the container).
    unsafe {
        cmd.pre_exec(move || {
            libc::dup2(keep_fd, 3);
            libc::dup2(leak_fd, 4);
            // dup2 onto itself keeps close-on-exec: clear it explicitly.
            libc::fcntl(3, libc::F_SETFD, 0);
            libc::fcntl(4, libc::F_SETFD, 0);
            Ok(())
        });
    }
    let o = cmd.bounded_output();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("keep-marker"), "{out}");
    assert!(!out.contains("leak-marker"), "leaked fd: {out}");
}

#[test]
fn personality_and_io_priority() {
    let w = World::new();
    let (code, out, err) = run_script(&w, "uname -m; cat /proc/self/personality", |s| {
        s["linux"]["personality"] = serde_json::json!({"domain": "LINUX32"});
        s["process"]["ioPriority"] =
            serde_json::json!({"class": "IOPRIO_CLASS_IDLE", "priority": 0});
    });
    assert_eq!(code, 0, "{err}");
    let mut lines = out.lines();
    let machine = lines.next().unwrap();
    assert!(machine == "i686" || machine.starts_with("armv"), "{out}");
    assert_eq!(lines.next(), Some("00000008"));
}

#[test]
fn scheduler_policy_and_nice() {
    let w = World::new();
    let (code, out, err) = run_script(&w, "cut -d' ' -f19,41 /proc/self/stat", |s| {
        s["process"]["scheduler"] = serde_json::json!({"policy": "SCHED_BATCH", "nice": 5});
    });
    assert_eq!(code, 0, "{err}");
    // Field 19 is nice, field 41 the policy (3 = SCHED_BATCH); cut runs as a child and inherits.
    assert_eq!(out.trim(), "5 3");
}
