//! Lifecycle through the CLI: the runc-spec acceptance bundle, create/start/state/kill/delete,
//! run exit statuses, setup errors leaving nothing behind.

mod common;

use berth_testkit::{ns_inode, Bundle, RUNC_SPEC_JSON};
use common::*;

/// The bundle `runc spec` writes, with only its args (and terminal, tests have no tty) changed,
/// behaves as under runc.
#[test]
fn runc_spec_bundle_acceptance() {
    let w = World::new();
    let mut b = Bundle::new(&["true"]).unwrap();
    b.spec = serde_json::from_str(RUNC_SPEC_JSON).unwrap();
    b.spec["process"]["terminal"] = false.into();
    b.spec["process"]["args"] = serde_json::json!([
        "sh",
        "-c",
        "echo mypid=$$; echo host=$(hostname); for n in pid uts ipc mnt net; do echo $n=$(readlink /proc/self/ns/$n); done; grep -c ' /proc proc ' /proc/mounts; exit 7"
    ]);
    b.write_config().unwrap();
    let id = unique_id("accept");
    let (code, out, err) = w.run(&id, &b);
    assert_eq!(code, 7, "stdout: {out}\nstderr: {err}");
    assert!(out.contains("mypid=1\n"), "{out:?} {err:?}");
    assert!(out.contains("host=runc\n"), "{out}\nstderr: {err}");
    for kind in ["pid", "uts", "ipc", "mnt", "net"] {
        let host = ns_inode("self", kind).unwrap();
        let line = out
            .lines()
            .find(|l| l.starts_with(&format!("{kind}=")))
            .unwrap();
        assert!(line.contains('['), "{line}");
        assert!(
            !line.contains(&format!("[{host}]")),
            "{kind} namespace is the host's: {line}"
        );
    }
    assert!(out.lines().any(|l| l == "1"), "/proc not mounted: {out}");
    assert!(w.state(&id).is_none(), "run without --keep must delete");
}

#[test]
fn create_start_kill_delete() {
    let w = World::new();
    let b = Bundle::new(&["sleep", "1000"]).unwrap();
    let id = unique_id("life");
    let pid_file = w.root().join("init.pid");
    let _g = w.guard(&id);
    w.ok(&[
        "create",
        &id,
        "--bundle",
        b.path().to_str().unwrap(),
        "--pid-file",
        pid_file.to_str().unwrap(),
    ]);
    let st = w.state(&id).unwrap();
    assert_eq!(st["status"], "created");
    assert_eq!(st["ociVersion"], "1.0.2-dev");
    assert_eq!(st["id"], id.as_str());
    assert_eq!(st["owner"], "");
    assert_eq!(
        st["bundle"],
        b.path().canonicalize().unwrap().to_str().unwrap()
    );
    assert!(st["created"].as_str().unwrap().ends_with('Z'));
    let pid = st["pid"].as_i64().unwrap();
    assert!(pid > 0);
    assert_eq!(
        std::fs::read_to_string(&pid_file).unwrap().trim(),
        pid.to_string()
    );
    assert!(cgroup_dir("memory", &id).is_dir());
    w.ok(&["start", &id]);
    assert_eq!(w.status(&id), "running");
    // Starting twice fails like runc.
    assert!(!w.out(&["start", &id]).status.success());
    // Deleting a running container needs --force.
    let o = w.out(&["delete", &id]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("not stopped"));
    w.ok(&["kill", &id, "KILL"]);
    assert!(w.wait_status(&id, "stopped"));
    assert_eq!(w.state(&id).unwrap()["pid"], 0);
    w.ok(&["delete", &id]);
    assert!(w.state(&id).is_none());
    assert!(!cgroup_dir("memory", &id).exists());
    assert!(!w.root().join(&id).exists());
    // kill on a gone container fails.
    assert!(!w.out(&["kill", &id, "KILL"]).status.success());
}

#[test]
fn kill_accepts_runc_signal_spellings_and_flags_after_id() {
    let w = World::new();
    let b = Bundle::new(&["sleep", "1000"]).unwrap();
    for sig in ["SIGKILL", "9", "KILL"] {
        let id = unique_id("sig");
        let _g = w.guard(&id);
        w.ok(&["run", &id, "-d", "--bundle", b.path().to_str().unwrap()]);
        assert_eq!(w.status(&id), "running");
        w.ok(&["kill", &id, sig]);
        assert!(w.wait_status(&id, "stopped"), "{sig}");
        w.ok(&["delete", &id]);
    }
}

#[test]
fn delete_of_created_container_and_force_delete_running() {
    let w = World::new();
    let b = Bundle::new(&["sleep", "1000"]).unwrap();
    let id = unique_id("delc");
    let _g = w.create(&id, &b);
    w.ok(&["delete", &id]);
    assert!(w.state(&id).is_none());
    assert!(!cgroup_dir("pids", &id).exists());

    let id = unique_id("delf");
    let _g = w.guard(&id);
    w.ok(&["run", "-d", "--bundle", b.path().to_str().unwrap(), &id]);
    w.ok(&["delete", "-f", &id]);
    assert!(w.state(&id).is_none());
    // delete -f of something that does not exist succeeds, like runc.
    w.ok(&["delete", "-f", &id]);
    assert!(!w.out(&["delete", &id]).status.success());
}

#[test]
fn run_passes_exit_status_and_signals() {
    let w = World::new();
    let (code, _, _) = w.run(&unique_id("ex0"), &sh_bundle("exit 0"));
    assert_eq!(code, 0);
    let (code, _, _) = w.run(&unique_id("ex42"), &sh_bundle("exit 42"));
    assert_eq!(code, 42);
    // Killed from outside (PID 1 ignores its own SIGKILL): 128 + 9.
    let b = Bundle::new(&["sleep", "1000"]).unwrap();
    let id = unique_id("exsig");
    let _g = w.guard(&id);
    let child = Running::spawn(&mut w.cmd(&["run", "--bundle", b.path().to_str().unwrap(), &id]));
    assert!(w.wait_status(&id, "running"));
    w.ok(&["kill", &id, "KILL"]);
    let o = child
        .finish(COMMAND_DEADLINE)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(o.status.code(), Some(137));
    // SIGTERM sent to `run` is forwarded; sh as PID 1 with a trap exits 0. The ready line
    // comes after the trap (PID 1 ignores a SIGTERM it has no handler for).
    let b = sh_bundle("trap 'exit 0' TERM; echo ready; while :; do sleep 0.05; done");
    let id = unique_id("fwd");
    let _g = w.guard(&id);
    let mut child =
        Running::spawn(&mut w.cmd(&["run", "--bundle", b.path().to_str().unwrap(), &id]));
    child.wait_for_line("ready", COMMAND_DEADLINE);
    // SAFETY: signalling the child we spawned (not yet reaped: its pid is still ours).
    unsafe { libc::kill(child.pid(), libc::SIGTERM) };
    let o = child
        .finish(COMMAND_DEADLINE)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn run_keep_leaves_stopped_state() {
    let w = World::new();
    let b = sh_bundle("exit 3");
    let id = unique_id("keep");
    let _g = w.guard(&id);
    let o = w.out(&["run", "--keep", "--bundle", b.path().to_str().unwrap(), &id]);
    assert_eq!(o.status.code(), Some(3));
    assert_eq!(w.status(&id), "stopped");
    w.ok(&["delete", &id]);
}

#[test]
fn missing_binary_fails_create_cleanly() {
    let w = World::new();
    let b = Bundle::new(&["nonexistent-binary"]).unwrap();
    let id = unique_id("nobin");
    let _g = w.guard(&id);
    let o = w.out(&["create", "--bundle", b.path().to_str().unwrap(), &id]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    // logrus quoting, as runc: msg="… exec: \"nonexistent-binary\": executable file not …"
    assert!(
        err.contains(r#"exec: \"nonexistent-binary\": executable file not found in $PATH"#),
        "{err}"
    );
    assert!(!w.root().join(&id).exists(), "state dir left behind");
    assert!(!cgroup_dir("memory", &id).exists(), "cgroup left behind");
    // run reports the same.
    let o = w.out(&["run", "--bundle", b.path().to_str().unwrap(), &id]);
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn duplicate_id_and_bad_ids_are_rejected() {
    let w = World::new();
    let b = Bundle::new(&["sleep", "1000"]).unwrap();
    let id = unique_id("dup");
    let _g = w.create(&id, &b);
    let o = w.out(&["create", "--bundle", b.path().to_str().unwrap(), &id]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("already exists"));
    let o = w.out(&["create", "--bundle", b.path().to_str().unwrap(), "../evil"]);
    assert!(!o.status.success());
    assert!(!w.out(&["state", "nope"]).status.success());
}

#[test]
fn unsupported_oci_version_is_refused() {
    let w = World::new();
    let mut b = Bundle::new(&["true"]).unwrap();
    b.spec["ociVersion"] = "2.0.0".into();
    b.write_config().unwrap();
    let id = unique_id("ver");
    let (code, _, err) = w.run(&id, &b);
    assert_eq!(code, 1);
    assert!(err.contains("ociVersion"), "{err}");
    b.spec["ociVersion"] = "1.2.0".into();
    b.write_config().unwrap();
    assert_eq!(w.run(&unique_id("ver12"), &b).0, 0);
}

#[test]
fn start_releases_only_on_start() {
    let w = World::new();
    let marker = "/tmp/started";
    let mut b = sh_bundle(&format!("echo yes > {marker}; sleep 1000"));
    b.spec["root"]["readonly"] = false.into();
    b.write_config().unwrap();
    let id = unique_id("fifo");
    let _g = w.create(&id, &b);
    std::thread::sleep(std::time::Duration::from_millis(50));
    assert!(!b.rootfs().join("tmp/started").exists(), "ran before start");
    w.ok(&["start", &id]);
    assert!(berth_testkit::wait_until(
        std::time::Duration::from_secs(5),
        || b.rootfs().join("tmp/started").exists()
    ));
}

/// The init dies between reporting ready and `create` returning (a test hook kills it there):
/// create fails with a clear message and leaves no state dir, cgroup or mount; the id is free.
#[test]
fn init_dying_after_ready_fails_create_cleanly() {
    let w = World::new();
    let b = Bundle::new(&["sleep", "1000"]).unwrap();
    let id = unique_id("diesready");
    let _g = w.guard(&id);
    let mounts_of_bundle = || {
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .filter(|l| l.contains(b.path().to_str().unwrap()))
            .count()
    };
    let mounts_before = mounts_of_bundle();
    let o = w
        .cmd(&["create", "--bundle", b.path().to_str().unwrap(), &id])
        .env("BERTH_RUNTIME_TEST_HOOK", "kill-init-after-ready")
        .bounded_output();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("container init exited after reporting ready"),
        "{err}"
    );
    assert!(!w.root().join(&id).exists(), "state dir left behind");
    for controller in ["memory", "pids", "cpu", "freezer", "unified"] {
        let dir = cgroup_dir(controller, &id);
        assert!(!dir.exists(), "{} left behind", dir.display());
    }
    assert_eq!(mounts_of_bundle(), mounts_before, "mounts left behind");
    assert!(w.state(&id).is_none());
    // The id can be used again at once.
    w.ok(&["create", "--bundle", b.path().to_str().unwrap(), &id]);
    assert_eq!(w.status(&id), "created");
}
