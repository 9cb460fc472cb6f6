//! Issue 14/15 parity with runc: each case runs the same bundle under runc (when installed) and
//! under berth-runtime and compares what can be observed (exit status, output, the refusal
//! message, and what a failed `create` leaves behind). Where runc is wrong by the spec, the test
//! says so and follows the spec.

mod common;

use berth_testkit::Bundle;
use common::*;
use serde_json::json;
use std::process::{Command, Stdio};

/// (exit code, stdout, stderr) of one foreground `run`.
type Outcome = (i32, String, String);

/// Runs the bundle under runc with its own temp root, or None when runc is not installed.
fn runc_run(b: &Bundle) -> Option<Outcome> {
    if !berth_testkit::have("runc") {
        eprintln!("note: runc not installed, comparing with berth-runtime only");
        return None;
    }
    let root = tempfile::tempdir().unwrap();
    let id = unique_id("runc");
    let o = Command::new("runc")
        .arg("--root")
        .arg(root.path())
        .args(["run", "--bundle", b.path().to_str().unwrap(), &id])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let _ = Command::new("runc")
        .arg("--root")
        .arg(root.path())
        .args(["delete", "-f", &id])
        .stderr(Stdio::null())
        .status();
    Some((
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    ))
}

fn bundle(script: &str, edit: impl FnOnce(&mut serde_json::Value)) -> Bundle {
    let mut b = sh_bundle(script);
    edit(&mut b.spec);
    b.write_config().unwrap();
    b
}

/// Mount points in the host's (the test's) mount namespace.
fn host_mounts() -> usize {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .count()
}

/// Runs under berth-runtime and asserts that a failure left no state dir, cgroup or mount.
fn berth_run_clean(w: &World, b: &Bundle) -> Outcome {
    let before = host_mounts();
    let id = unique_id("par");
    let out = w.run(&id, b);
    if out.0 != 0 {
        assert!(
            !w.root().join(&id).exists(),
            "failed run left its state dir: {}",
            out.2
        );
        for controller in ["memory", "pids", "cpu", "unified"] {
            let dir = cgroup_dir(controller, &id);
            assert!(!dir.exists(), "failed run left {}", dir.display());
        }
        assert_eq!(host_mounts(), before, "failed run left mounts: {}", out.2);
    }
    out
}

#[test]
fn uids_and_gids_beyond_i32_are_refused() {
    let w = World::new();
    for (uid, gid) in [(4294967295u32, 0u32), (0, 4294967295), (2147483648, 0)] {
        let b = bundle("id -u", |s| {
            s["process"]["user"]["uid"] = uid.into();
            s["process"]["user"]["gid"] = gid.into();
        });
        let ours = berth_run_clean(&w, &b);
        assert_eq!(ours.0, 1, "{uid}:{gid} must be refused: {ours:?}");
        assert!(
            ours.2
                .contains("uids and gids must be in range 0-2147483647"),
            "{}",
            ours.2
        );
        assert!(ours.1.is_empty(), "the process must not run: {}", ours.1);
        if let Some(runc) = runc_run(&b) {
            assert_eq!(runc.0, ours.0, "{}", runc.2);
            assert!(runc.2.contains("uids and gids must be in range"));
        }
    }
    let b = bundle("id -u; id -g", |s| {
        s["process"]["user"]["uid"] = 2147483647u32.into();
        s["process"]["user"]["gid"] = 2147483647u32.into();
    });
    let ours = berth_run_clean(&w, &b);
    assert_eq!(ours.0, 0, "{ours:?}");
    assert_eq!(ours.1, "2147483647\n2147483647\n");
}

/// The host's value of a sysctl, restored when dropped.
struct SysctlRestore {
    path: String,
    value: String,
}

impl SysctlRestore {
    fn new(key: &str) -> SysctlRestore {
        let path = format!("/proc/sys/{}", key.replace('.', "/"));
        let value = std::fs::read_to_string(&path).unwrap();
        SysctlRestore { path, value }
    }
    fn current(&self) -> String {
        std::fs::read_to_string(&self.path).unwrap()
    }
}

impl Drop for SysctlRestore {
    fn drop(&mut self) {
        if self.current() != self.value {
            let _ = std::fs::write(&self.path, self.value.trim());
        }
    }
}

#[test]
fn host_sysctls_are_refused_with_runcs_message() {
    let w = World::new();
    let cases = [
        // (key, value, namespaces the bundle drops, message)
        (
            "kernel.panic",
            "17",
            vec![],
            "is not in a separate kernel namespace",
        ),
        (
            "kernel.printk_ratelimit",
            "17",
            vec![],
            "is not in a separate kernel namespace",
        ),
        (
            "net.ipv4.ip_forward",
            "1",
            vec!["network"],
            "not allowed in host network namespace",
        ),
        (
            "kernel.shmmni",
            "17",
            vec!["ipc"],
            "is not allowed in the hosts ipc namespace",
        ),
    ];
    for (key, value, drop_ns, message) in cases {
        let guard = SysctlRestore::new(key);
        let b = bundle(&format!("cat /proc/sys/{}", key.replace('.', "/")), |s| {
            s["linux"]["sysctl"] = json!({key: value});
            s["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .retain(|n| !drop_ns.contains(&n["type"].as_str().unwrap()));
        });
        let ours = berth_run_clean(&w, &b);
        assert_eq!(ours.0, 1, "{key}: {ours:?}");
        assert!(ours.2.contains(message), "{key}: {}", ours.2);
        assert_eq!(guard.current(), guard.value, "{key} changed on the host");
        if let Some(runc) = runc_run(&b) {
            assert_eq!(runc.0, 1, "{key}: {runc:?}");
            assert!(runc.2.contains(message), "{key}: {}", runc.2);
        }
        assert_eq!(guard.current(), guard.value, "{key} changed on the host");
    }
}

#[test]
fn namespaced_sysctls_apply_inside_the_container_only() {
    let w = World::new();
    let guard = SysctlRestore::new("kernel.shmmni");
    let net_guard = SysctlRestore::new("net.ipv4.ip_forward");
    let b = bundle(
        "cat /proc/sys/kernel/shmmni /proc/sys/net/ipv4/ip_forward",
        |s| {
            s["linux"]["sysctl"] = json!({"kernel.shmmni": "1234", "net.ipv4.ip_forward": "1"});
        },
    );
    let ours = berth_run_clean(&w, &b);
    assert_eq!(ours.0, 0, "{ours:?}");
    assert_eq!(ours.1, "1234\n1\n");
    if let Some(runc) = runc_run(&b) {
        assert_eq!((runc.0, runc.1.as_str()), (0, "1234\n1\n"), "{}", runc.2);
    }
    assert_eq!(guard.current(), guard.value);
    assert_eq!(net_guard.current(), net_guard.value);
}
