//! OCI hooks: every kind runs at its point with the state on stdin; a failing or timed-out
//! createRuntime hook fails create and leaves nothing behind.

mod common;

use common::*;
use serde_json::json;

fn hook(out: &std::path::Path) -> serde_json::Value {
    json!({"path": "/bin/sh", "args": ["sh", "-c", format!("cat > {}", out.display())]})
}

#[test]
fn all_hooks_run_with_state() {
    let w = World::new();
    let dir = tempfile::tempdir().unwrap();
    let mut b = sh_bundle("sleep 1000");
    b.spec["root"]["readonly"] = false.into();
    b.spec["hooks"] = json!({
        "prestart": [hook(&dir.path().join("prestart"))],
        "createRuntime": [hook(&dir.path().join("createRuntime"))],
        "createContainer": [hook(&dir.path().join("createContainer"))],
        // Runs inside the container, after pivot_root: its path and output are container paths.
        "startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "cat > /tmp/startContainer"]}],
        "poststart": [hook(&dir.path().join("poststart"))],
        "poststop": [hook(&dir.path().join("poststop"))]
    });
    b.write_config().unwrap();
    let id = unique_id("hooks");
    let _g = w.create(&id, &b);
    let pid = w.state(&id).unwrap()["pid"].as_i64().unwrap();
    for name in ["prestart", "createRuntime", "createContainer"] {
        let st: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join(name)).unwrap()).unwrap();
        assert_eq!(st["id"], id.as_str(), "{name}");
        assert_eq!(st["pid"], pid, "{name}");
    }
    assert!(!dir.path().join("poststart").exists());
    w.ok(&["start", &id]);
    assert!(dir.path().join("poststart").exists());
    assert!(berth_testkit::wait_until(
        std::time::Duration::from_secs(5),
        || { b.rootfs().join("tmp/startContainer").exists() }
    ));
    w.ok(&["delete", "-f", &id]);
    let st: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("poststop")).unwrap())
            .unwrap();
    assert_eq!(st["status"], "stopped");
}

#[test]
fn failing_or_slow_create_runtime_hook_fails_create_cleanly() {
    let w = World::new();
    for (hook, want) in [
        (json!({"path": "/bin/false"}), "exited"),
        (
            json!({"path": "/bin/sleep", "args": ["sleep", "10"], "timeout": 1}),
            "timed out",
        ),
    ] {
        let mut b = sh_bundle("true");
        b.spec["hooks"] = json!({"createRuntime": [hook]});
        b.write_config().unwrap();
        let id = unique_id("badhook");
        let _g = w.guard(&id);
        let o = w.out(&["create", "--bundle", b.path().to_str().unwrap(), &id]);
        assert!(!o.status.success());
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(want), "{err}");
        assert!(!w.root().join(&id).exists());
        assert!(!cgroup_dir("memory", &id).exists());
    }
}

#[test]
fn run_runs_poststart_and_poststop() {
    let w = World::new();
    let dir = tempfile::tempdir().unwrap();
    let mut b = sh_bundle("exit 0");
    b.spec["hooks"] = json!({
        "poststart": [hook(&dir.path().join("poststart"))],
        "poststop": [hook(&dir.path().join("poststop"))]
    });
    b.write_config().unwrap();
    let (code, _, err) = w.run(&unique_id("runhooks"), &b);
    assert_eq!(code, 0, "{err}");
    assert!(dir.path().join("poststart").exists());
    assert!(dir.path().join("poststop").exists());
}

/// createContainer hooks run in the container's rootfs; startContainer hooks without an `env`
/// of their own see the container process's environment (as runc's, via Go's exec).
#[test]
fn hook_cwd_and_environment() {
    let w = World::new();
    let dir = tempfile::tempdir().unwrap();
    let mut b = sh_bundle("true");
    b.spec["root"]["readonly"] = false.into();
    b.spec["process"]["env"]
        .as_array_mut()
        .unwrap()
        .push("FROM_SPEC=yes".into());
    b.spec["hooks"] = json!({
        "createContainer": [{"path": "/bin/sh", "args": ["sh", "-c", format!("pwd > {}", dir.path().join("cwd").display())]}],
        "startContainer": [
            {"path": "/bin/sh", "args": ["sh", "-c", "echo \"$FROM_SPEC\" > /tmp/inherited"]},
            {"path": "/bin/sh", "args": ["sh", "-c", "echo \"${FROM_SPEC:-unset}\" > /tmp/own"], "env": ["X=1"]}
        ]
    });
    b.write_config().unwrap();
    let (code, _, err) = w.run(&unique_id("hookenv"), &b);
    assert_eq!(code, 0, "{err}");
    let cwd = std::fs::read_to_string(dir.path().join("cwd")).unwrap();
    assert_eq!(
        std::fs::canonicalize(cwd.trim()).unwrap(),
        std::fs::canonicalize(b.rootfs()).unwrap()
    );
    let read = |f: &str| std::fs::read_to_string(b.rootfs().join("tmp").join(f)).unwrap();
    assert_eq!(read("inherited"), "yes\n");
    assert_eq!(read("own"), "unset\n");
}

/// With noNewPrivileges the seccomp filter is in place before the startContainer hooks run
/// (they run in the container, under its policy), as under runc.
#[test]
fn start_container_hooks_run_under_seccomp_with_no_new_privileges() {
    let w = World::new();
    let mut b = sh_bundle("true");
    b.spec["root"]["readonly"] = false.into();
    b.spec["process"]["noNewPrivileges"] = true.into();
    b.spec["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
    });
    b.spec["hooks"] = json!({
        "startContainer": [{"path": "/bin/sh", "args": ["sh", "-c",
            "mkdir /tmp/made-by-hook 2>/dev/null && echo allowed > /tmp/hookres || echo blocked > /tmp/hookres"]}]
    });
    b.write_config().unwrap();
    let (code, _, err) = w.run(&unique_id("nnphook"), &b);
    assert_eq!(code, 0, "{err}");
    let res = std::fs::read_to_string(b.rootfs().join("tmp/hookres")).unwrap();
    assert_eq!(res, "blocked\n");
    if berth_testkit::have("runc") {
        std::fs::remove_file(b.rootfs().join("tmp/hookres")).unwrap();
        let root = tempfile::tempdir().unwrap();
        let o = std::process::Command::new("runc")
            .arg("--root")
            .arg(root.path())
            .args([
                "run",
                "--bundle",
                b.path().to_str().unwrap(),
                &unique_id("r"),
            ])
            .stdin(std::process::Stdio::null())
            .bounded_output();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let res = std::fs::read_to_string(b.rootfs().join("tmp/hookres")).unwrap();
        assert_eq!(res, "blocked\n", "runc");
    }
}
