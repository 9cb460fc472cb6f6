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
        .bounded_output();
    let _ = Command::new("runc")
        .arg("--root")
        .arg(root.path())
        .args(["delete", "-f", &id])
        .bounded_output();
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

/// Runs under berth-runtime and asserts that a failure left no state dir, cgroup or mount.
fn berth_run_clean(w: &World, b: &Bundle) -> Outcome {
    // Other tests (and other engineers) mount in parallel: count only mounts of this bundle.
    let before = mounts_under(
        &std::fs::read_to_string("/proc/self/mountinfo").unwrap(),
        b.path(),
    )
    .len();
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
        let after = mounts_under(
            &std::fs::read_to_string("/proc/self/mountinfo").unwrap(),
            b.path(),
        );
        assert_eq!(
            after.len(),
            before,
            "failed run left mounts {after:?}: {}",
            out.2
        );
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

/// Mount points (in the namespace of `mountinfo`) that lie under `dir`.
fn mounts_under(mountinfo: &str, dir: &std::path::Path) -> Vec<String> {
    let dir = dir.to_str().unwrap();
    mountinfo
        .lines()
        .filter(|l| l.split(' ').nth(4).is_some_and(|mp| mp.starts_with(dir)))
        .map(str::to_owned)
        .collect()
}

/// Runs `berth-runtime run` inside a fresh mount namespace whose mounts are all shared, as on a
/// systemd host, and returns (stdout, stderr, the mounts under the bundle left in that namespace).
fn run_in_shared_host(w: &World, b: &Bundle) -> (String, String, Vec<String>) {
    let id = unique_id("prop");
    let _g = w.guard(&id);
    let script = format!(
        "{} --root {} run --bundle {} {id}; echo rc=$?; cat /proc/self/mountinfo > {}/after",
        bin(),
        w.root().display(),
        b.path().display(),
        w.root().display(),
    );
    let o = Command::new("unshare")
        .args(["-m", "--propagation", "shared", "sh", "-c", &script])
        .stdin(Stdio::null())
        .bounded_output();
    let after = std::fs::read_to_string(w.root().join("after")).unwrap_or_default();
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
        mounts_under(&after, b.path()),
    )
}

/// rootfsPropagation on a host whose mounts are shared: runc makes the rootfs's parent mount
/// private before pivot_root; so do we, and nothing leaks into the host's namespace. The spec
/// says the value is the propagation of the container's root mount: berth-runtime applies it
/// to "/" after pivot_root (runc 1.2 does too; runc 1.1.5 leaves "/" private, and fails
/// `unbindable` with EINVAL binding the rootfs — a runc bug the spec does not share).
#[test]
fn rootfs_propagation_on_a_shared_host() {
    if !berth_testkit::have("unshare") {
        eprintln!("note: unshare missing, skipping");
        return;
    }
    let w = World::new();
    let script = "awk '$5 == \"/\" {print}' /proc/self/mountinfo";
    for (value, tag) in [
        ("shared", Some("shared:")),
        ("rshared", Some("shared:")),
        ("slave", None),
        ("rslave", None),
        ("private", None),
        ("unbindable", Some("unbindable")),
        ("runbindable", Some("unbindable")),
    ] {
        let b = bundle(script, |s| s["linux"]["rootfsPropagation"] = value.into());
        let (out, err, leaked) = run_in_shared_host(&w, &b);
        assert!(out.ends_with("rc=0\n"), "{value}: {out}\n{err}");
        assert!(leaked.is_empty(), "{value}: leaked {leaked:?}");
        let root_line = out.lines().next().unwrap_or("");
        match tag {
            Some(tag) => assert!(root_line.contains(tag), "{value}: {root_line}"),
            None => assert!(!root_line.contains("shared:"), "{value}: {root_line}"),
        }
        if !value.contains("unbindable") {
            if let Some(runc) = runc_run(&b) {
                assert_eq!(runc.0, 0, "{value}: {}", runc.2);
            }
        }
    }
    // A create that fails after the rootfs is bound (a bind from a missing source) leaves
    // nothing behind in the shared host namespace either.
    let b = bundle("true", |s| {
        s["linux"]["rootfsPropagation"] = "rshared".into();
        s["mounts"].as_array_mut().unwrap().push(
            json!({"destination": "/missing", "type": "bind", "source": "/nonexistent/source", "options": ["rbind"]}),
        );
    });
    let (out, err, leaked) = run_in_shared_host(&w, &b);
    assert!(!out.contains("rc=0"), "{out}");
    assert!(err.contains("/nonexistent/source"), "{err}");
    assert!(leaked.is_empty(), "leaked {leaked:?}");
}

/// `rro`, `rnosuid`, `rnoexec`, `rnoatime` reach every mount below a recursive bind.
#[test]
fn recursive_mount_attributes() {
    let w = World::new();
    let b = bundle(
        "awk '$5 == \"/hostdev/shm\" {print $6}' /proc/self/mountinfo; touch /hostdev/shm/berth-rro-probe 2>/dev/null || echo refused",
        |s| {
            s["mounts"].as_array_mut().unwrap().push(json!({
                "destination": "/hostdev", "type": "bind", "source": "/dev",
                "options": ["rbind", "rro", "rnosuid", "rnoexec", "rnoatime"]
            }));
        },
    );
    let ours = berth_run_clean(&w, &b);
    assert_eq!(ours.0, 0, "{ours:?}");
    let opts = ours.1.lines().next().unwrap_or("").to_owned();
    for want in ["ro", "nosuid", "noexec", "noatime"] {
        assert!(opts.split(',').any(|o| o == want), "{want} missing: {opts}");
    }
    assert!(ours.1.contains("refused"), "{}", ours.1);
    assert!(!std::path::Path::new("/dev/shm/berth-rro-probe").exists());
    if let Some(runc) = runc_run(&b) {
        assert_eq!(runc, ours);
    }
}

#[test]
fn proc_or_sys_on_a_symlink_is_refused() {
    let w = World::new();
    for dir in ["proc", "sys"] {
        let outside = tempfile::tempdir().unwrap();
        let b = bundle("true", |_| {});
        let target = b.rootfs().join(dir);
        std::fs::remove_dir(&target).unwrap();
        std::os::unix::fs::symlink(outside.path(), &target).unwrap();
        let ours = berth_run_clean(&w, &b);
        assert_ne!(ours.0, 0, "{dir}: {ours:?}");
        assert!(
            ours.2.contains("must be mounted on ordinary directory"),
            "{dir}: {}",
            ours.2
        );
        if let Some(runc) = runc_run(&b) {
            assert_ne!(runc.0, 0);
            assert!(runc.2.contains("must be mounted on ordinary directory"));
        }
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
    }
}

/// With `--no-pivot` the host's full /proc must not stay in the container's mount namespace: a
/// container could otherwise mount a fresh, unmasked procfs from a user namespace of its own
/// (the kernel allows that only while a fully visible procfs exists in the mount namespace).
#[test]
fn no_pivot_leaves_no_full_proc_to_mount_from() {
    let w = World::new();
    let b = bundle(
        "unshare -U -r -m -p -f sh -c 'mount -t proc proc /tmp 2>/dev/null && echo mounted || echo refused'",
        |s| {
            for set in ["bounding", "effective", "permitted"] {
                let caps = s["process"]["capabilities"][set].as_array_mut().unwrap();
                // What `unshare -U -r` needs to map root (CAP_SETFCAP since Linux 5.12).
                for cap in ["CAP_SYS_ADMIN", "CAP_SETUID", "CAP_SETGID", "CAP_SETFCAP"] {
                    caps.push(cap.into());
                }
            }
        },
    );
    let id = unique_id("nopivot");
    let _g = w.guard(&id);
    let o = w.out(&[
        "run",
        "--no-pivot",
        "--bundle",
        b.path().to_str().unwrap(),
        &id,
    ]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(out.trim(), "refused");
    if berth_testkit::have("runc") {
        let root = tempfile::tempdir().unwrap();
        let o = Command::new("runc")
            .arg("--root")
            .arg(root.path())
            .args([
                "run",
                "--no-pivot",
                "--bundle",
                b.path().to_str().unwrap(),
                &unique_id("r"),
            ])
            .stdin(Stdio::null())
            .bounded_output();
        assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "refused");
    }
}

/// A read-only tmpfs at /dev still gets its device nodes (made before the remount).
#[test]
fn read_only_dev() {
    let w = World::new();
    let b = bundle(
        "echo x > /dev/null && echo null-ok; ls /dev/zero; touch /dev/new 2>/dev/null || echo dev-ro",
        |s| {
            for m in s["mounts"].as_array_mut().unwrap() {
                if m["destination"] == "/dev" {
                    m["options"].as_array_mut().unwrap().push("ro".into());
                }
            }
        },
    );
    let ours = berth_run_clean(&w, &b);
    assert_eq!(ours.0, 0, "{ours:?}");
    assert_eq!(ours.1, "null-ok\n/dev/zero\ndev-ro\n");
    if let Some(runc) = runc_run(&b) {
        assert_eq!((runc.0, runc.1), (0, ours.1.clone()), "{}", runc.2);
    }
}

/// No mount namespace and no /proc in the rootfs: the init's own setup (exec fifo, fd
/// close-on-exec, oom_score_adj) must not need one. runc 1.1.5 fails here ("error closing exec
/// fds: open /proc/self/fd"), a runc bug: the spec does not require /proc.
#[test]
fn no_mount_namespace_and_no_proc() {
    let w = World::new();
    let b = bundle("echo ok; ls /proc | wc -l", |s| {
        s["process"]["oomScoreAdj"] = 100.into();
        s["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .retain(|n| n["type"] != "mount");
        s["mounts"] = json!([]);
        s["linux"]["maskedPaths"] = json!([]);
        s["linux"]["readonlyPaths"] = json!([]);
    });
    let ours = berth_run_clean(&w, &b);
    assert_eq!((ours.0, ours.1.as_str()), (0, "ok\n0\n"), "{}", ours.2);
    // runc without a mount namespace bind-mounts the rootfs in the caller's namespace and
    // leaves it there when it fails: run it in a throwaway one.
    if berth_testkit::have("runc") && berth_testkit::have("unshare") {
        let root = tempfile::tempdir().unwrap();
        let o = Command::new("unshare")
            .args(["-m", "--propagation", "private", "runc", "--root"])
            .arg(root.path())
            .args([
                "run",
                "--bundle",
                b.path().to_str().unwrap(),
                &unique_id("r"),
            ])
            .stdin(Stdio::null())
            .bounded_output();
        assert!(!o.status.success(), "runc 1.1.5 needs /proc");
    }
    // The same through create + start (the exec fifo).
    let id = unique_id("noproc");
    let _g = w.create(&id, &b);
    assert_eq!(w.status(&id), "created");
    w.ok(&["start", &id]);
    assert!(w.wait_status(&id, "stopped"));
}

/// A created container whose init is killed before `start`: start fails, state says stopped,
/// and nothing waits forever.
#[test]
fn init_killed_before_start() {
    let w = World::new();
    let b = bundle("echo never", |_| {});
    let id = unique_id("killed");
    let _g = w.create(&id, &b);
    let pid = w.state(&id).unwrap()["pid"].as_i64().unwrap();
    assert!(pid > 0);
    // SAFETY: killing the init this test created.
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    assert!(w.wait_status(&id, "stopped"));
    let o = w.out(&["start", &id]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("stopped"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn namespace_path_of_the_wrong_type_is_refused() {
    let w = World::new();
    let b = bundle("true", |s| {
        for ns in s["linux"]["namespaces"].as_array_mut().unwrap() {
            if ns["type"] == "mount" {
                ns["path"] = "/proc/self/ns/net".into();
            }
        }
    });
    let ours = berth_run_clean(&w, &b);
    assert_eq!(ours.0, 1);
    assert!(
        ours.2
            .contains("/proc/self/ns/net is a net namespace, not mnt"),
        "{}",
        ours.2
    );
    // runc refuses too, with a bare EINVAL from setns.
    if let Some(runc) = runc_run(&b) {
        assert_ne!(runc.0, 0);
    }
    let b = bundle("true", |s| {
        s["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "cgroup", "path": "/etc/hostname"}));
    });
    let ours = berth_run_clean(&w, &b);
    assert!(ours.2.contains("is not a namespace"), "{}", ours.2);
}

/// Runs `berth-runtime args` with a deadline; a hang comes back as code -2 (the caller cleans
/// up before asserting), never as a hung test.
fn out_within(w: &World, args: &[&str], secs: u64) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let err = dir.path().join("err");
    let mut child = w
        .cmd(args)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let done = berth_testkit::wait_until(std::time::Duration::from_secs(secs), || {
        child.try_wait().unwrap().is_some()
    });
    if !done {
        let _ = child.kill();
        let _ = child.wait();
        return (
            -2,
            format!("berth-runtime {args:?} did not finish in {secs}s"),
        );
    }
    let code = child.wait().unwrap().code().unwrap_or(-1);
    (code, std::fs::read_to_string(err).unwrap_or_default())
}

/// A cgroup that exists and is frozen is refused (it used to hang `run -d` forever); runc
/// refuses with the same words.
#[test]
fn pre_existing_frozen_cgroup_is_refused() {
    let freezer = std::path::Path::new("/sys/fs/cgroup/freezer");
    if !freezer.join("freezer.state").exists() && !freezer.is_dir() {
        eprintln!("note: no cgroup v1 freezer here (v2 is covered by the fake-tree tests)");
        return;
    }
    let w = World::new();
    let id = unique_id("frozen");
    let cg_name = format!("berth-test-{id}");
    let dir = freezer.join(&cg_name);
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("freezer.state"), "FROZEN").unwrap();
    let b = bundle("true", |s| {
        s["linux"]["cgroupsPath"] = format!("/{cg_name}").into()
    });
    let (code, err) = out_within(
        &w,
        &["run", "-d", "--bundle", b.path().to_str().unwrap(), &id],
        20,
    );
    let runc = runc_run(&b);
    std::fs::write(dir.join("freezer.state"), "THAWED").unwrap();
    if code == -2 {
        // A hung run leaves its init in the cgroup: end it (it is ours) before removing.
        let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
        for pid in procs.lines().filter_map(|p| p.parse::<i32>().ok()) {
            // SAFETY: killing the init this test's run created.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        berth_testkit::wait_until(std::time::Duration::from_secs(5), || {
            std::fs::read_to_string(dir.join("cgroup.procs")).is_ok_and(|p| p.is_empty())
        });
    }
    let _ = std::fs::remove_dir(&dir);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("container's cgroup unexpectedly frozen"),
        "{err}"
    );
    assert!(!w.root().join(&id).exists());
    if let Some(runc) = runc {
        assert_ne!(runc.0, 0);
        assert!(runc.2.contains("unexpectedly frozen"), "{}", runc.2);
    }
}

/// A second container in a cgroup that already holds a process: runc's warning, then it runs.
#[test]
fn non_empty_cgroup_warns() {
    let w = World::new();
    let cg = format!("/berth-test-{}", unique_id("shared-cg"));
    let first = bundle("sleep 100", |s| {
        s["linux"]["cgroupsPath"] = cg.clone().into()
    });
    let id = unique_id("cg-first");
    let _g = w.guard(&id);
    w.ok(&["run", "-d", "--bundle", first.path().to_str().unwrap(), &id]);
    let second = bundle("echo second", |s| {
        s["linux"]["cgroupsPath"] = cg.clone().into()
    });
    let ours = w.run(&unique_id("cg-second"), &second);
    assert_eq!((ours.0, ours.1.as_str()), (0, "second\n"), "{}", ours.2);
    assert!(
        ours.2
            .contains("container's cgroup is not empty: 1 process(es) found"),
        "{}",
        ours.2
    );
    // runc 1.1.5 runs it silently; later 1.1.x releases print this same warning.
    if let Some(runc) = runc_run(&second) {
        assert_eq!(runc.0, 0, "{}", runc.2);
    }
    w.ok(&["delete", "-f", &id]);
}

/// Hybrid hosts: the container also joins the controller-less cgroup2 tree at the same path.
#[test]
fn hybrid_hosts_join_the_unified_tree() {
    let unified = std::path::Path::new("/sys/fs/cgroup/unified");
    if !std::path::Path::new("/sys/fs/cgroup/memory").is_dir() || !unified.is_dir() {
        eprintln!("note: not a hybrid cgroup host");
        return;
    }
    let w = World::new();
    let b = sh_bundle("sleep 1000");
    let id = unique_id("hybrid");
    let _g = w.guard(&id);
    w.ok(&["run", "-d", "--bundle", b.path().to_str().unwrap(), &id]);
    let pid = w.state(&id).unwrap()["pid"].as_i64().unwrap();
    let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let v2 = cgroup.lines().find(|l| l.starts_with("0::")).unwrap_or("");
    assert_eq!(v2, format!("0::/berth/{id}"), "{cgroup}");
    w.ok(&["delete", "-f", &id]);
    assert!(
        !unified.join("berth").join(&id).exists(),
        "unified dir left"
    );
}

#[test]
fn unified_resources_on_v1_are_an_invalid_configuration() {
    if !std::path::Path::new("/sys/fs/cgroup/memory").is_dir() {
        eprintln!("note: not a cgroup v1 host (v2 accepts unified)");
        return;
    }
    let w = World::new();
    let b = bundle("true", |s| {
        s["linux"]["resources"]["unified"] = json!({"memory.high": "1G"});
    });
    let ours = berth_run_clean(&w, &b);
    assert_eq!(ours.0, 1);
    assert!(ours.2.contains("invalid configuration"), "{}", ours.2);
    if let Some(runc) = runc_run(&b) {
        assert_ne!(runc.0, 0);
        assert!(runc.2.contains("invalid configuration"), "{}", runc.2);
    }
}

/// Device rule access strings other than a combination of r, w, m are refused before anything
/// is written (they used to reach `devices.deny` after the cgroup was half set up).
#[test]
fn device_access_strings_are_validated() {
    let w = World::new();
    let b = bundle("true", |s| {
        s["linux"]["resources"]["devices"] =
            json!([{"allow": false, "type": "c", "major": 1, "minor": 3, "access": "rwa"}]);
    });
    let ours = berth_run_clean(&w, &b);
    assert_eq!(ours.0, 1);
    assert!(ours.2.contains("invalid access \\\"rwa\\\""), "{}", ours.2);
    // runc 1.1.5 runs it, silently dropping the unknown 'a' (so the rule means something other
    // than was written); the spec defines access as a combination of r, w and m: refused here.
    if let Some(runc) = runc_run(&b) {
        assert_eq!(runc.0, 0, "{}", runc.2);
    }
}

/// A cgroup v1 mount without `ro` is writable, as under runc (child cgroups can be made).
#[test]
fn cgroup_v1_mount_honours_rw() {
    if !std::path::Path::new("/sys/fs/cgroup/pids").is_dir() {
        eprintln!("note: not a cgroup v1 host");
        return;
    }
    let w = World::new();
    let script = "mkdir /sys/fs/cgroup/pids/child && echo rw-ok; rmdir /sys/fs/cgroup/pids/child";
    let b = bundle(script, |s| {
        for m in s["mounts"].as_array_mut().unwrap() {
            if m["type"] == "cgroup" {
                m["options"] = json!(["nosuid", "noexec", "nodev", "relatime", "rw"]);
            }
        }
    });
    let ours = berth_run_clean(&w, &b);
    assert_eq!((ours.0, ours.1.as_str()), (0, "rw-ok\n"), "{}", ours.2);
    if let Some(runc) = runc_run(&b) {
        assert_eq!(runc.1, ours.1, "{}", runc.2);
    }
}

/// What a seccomp agent at listenerPath received: the state message and the notify fd.
fn seccomp_agent(path: std::path::PathBuf) -> std::thread::JoinHandle<(serde_json::Value, String)> {
    use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
    let _ = std::fs::remove_file(&path);
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    std::thread::spawn(move || {
        let stream = accept_within(&listener, COMMAND_DEADLINE, "the seccomp agent");
        let mut buf = vec![0u8; 65536];
        let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let msg = rustix::net::recvmsg(
            &stream,
            &mut [std::io::IoSliceMut::new(&mut buf)],
            &mut control,
            RecvFlags::empty(),
        )
        .unwrap();
        let json: serde_json::Value = serde_json::from_slice(&buf[..msg.bytes]).unwrap();
        let mut kind = String::new();
        for m in control.drain() {
            if let RecvAncillaryMessage::ScmRights(mut fds) = m {
                let fd = fds.next().unwrap();
                kind = std::fs::read_link(format!(
                    "/proc/self/fd/{}",
                    rustix::fd::AsRawFd::as_raw_fd(&fd)
                ))
                .map(|p| p.display().to_string())
                .unwrap_or_default();
                // Dropping the listener: the notified syscall then fails (ENOSYS).
            }
        }
        (json, kind)
    })
}

/// SCMP_ACT_NOTIFY: the listener fd and the container process state reach the agent at
/// listenerPath, as the runtime-spec describes; with the agent gone the syscall fails.
#[test]
fn seccomp_notify_sends_the_listener_to_the_agent() {
    let w = World::new();
    let sock = w.root().join("agent.sock");
    let b = bundle(
        "mkdir /tmp/notified 2>/dev/null && echo made || echo refused",
        |s| {
            s["root"]["readonly"] = false.into();
            s["linux"]["seccomp"] = json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "architectures": ["SCMP_ARCH_X86_64"],
                "listenerPath": sock,
                "listenerMetadata": "agent-metadata",
                "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
            });
        },
    );
    let agent = seccomp_agent(sock.clone());
    let id = unique_id("notify");
    let ours = w.run(&id, &b);
    let (json, kind) = agent.join().unwrap();
    assert_eq!((ours.0, ours.1.as_str()), (0, "refused\n"), "{}", ours.2);
    assert_eq!(json["fds"], json!(["seccompFd"]));
    assert_eq!(json["metadata"], "agent-metadata");
    assert!(json["pid"].as_i64().unwrap() > 0, "{json}");
    assert_eq!(json["state"]["id"], id.as_str());
    assert!(json["ociVersion"].is_string());
    assert!(kind.contains("seccomp"), "not a seccomp notify fd: {kind}");
    assert!(!b.rootfs().join("tmp/notified").exists());
    if berth_testkit::have("runc") {
        let agent = seccomp_agent(sock);
        let runc = runc_run(&b).unwrap();
        let (json, kind) = agent.join().unwrap();
        assert_eq!(runc.1, "refused\n", "{}", runc.2);
        assert_eq!(json["fds"], json!(["seccompFd"]));
        assert_eq!(json["metadata"], "agent-metadata");
        assert!(kind.contains("seccomp"), "{kind}");
    }
}

/// User namespaces: a bind source the container's root (host uid 100000) cannot reach — under
/// a 0700 root-owned directory — is opened by the runtime before the init enters its user
/// namespace (runc's mount-source fds), so the bind works.
#[test]
fn user_namespace_bind_source_opened_by_the_runtime() {
    use std::os::unix::fs::PermissionsExt;
    let w = World::new();
    let private = tempfile::tempdir().unwrap();
    std::fs::set_permissions(private.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let data = private.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(data.join("greeting"), "from a private host dir\n").unwrap();
    std::fs::set_permissions(
        data.join("greeting"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let b = bundle("cat /data/greeting", |s| {
        s["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "user"}));
        s["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        s["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        s["mounts"].as_array_mut().unwrap().push(
            json!({"destination": "/data", "type": "bind", "source": data, "options": ["rbind", "ro"]}),
        );
    });
    // The rootfs (owned by host root) must be reachable, and the mount point exist: the mapped
    // root cannot create it there.
    std::fs::create_dir(b.rootfs().join("data")).unwrap();
    for dir in [b.path(), &b.rootfs()] {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let ours = berth_run_clean(&w, &b);
    assert_eq!(
        (ours.0, ours.1.as_str()),
        (0, "from a private host dir\n"),
        "{}",
        ours.2
    );
    if let Some(runc) = runc_run(&b) {
        assert_eq!(runc, ours);
    }
}

/// SCMP_ACT_NOTIFY for a process started by `exec`: it gets a listener of its own, which reaches
/// the agent at listenerPath with the exec'd process's pid and the container's state; with the
/// agent gone its notified syscall fails (ENOSYS), as for the init.
#[test]
fn seccomp_notify_for_exec_sends_its_own_listener() {
    let w = World::new();
    let sock = w.root().join("agent-exec.sock");
    let b = bundle("sleep 1000", |s| {
        s["root"]["readonly"] = false.into();
        s["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64"],
            "listenerPath": sock,
            "listenerMetadata": "exec-metadata",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
        });
    });
    let id = unique_id("notify-exec");
    let _g = w.guard(&id);
    let agent = seccomp_agent(sock.clone());
    w.ok(&["run", "-d", "--bundle", b.path().to_str().unwrap(), &id]);
    let (init_json, _) = agent.join().unwrap();
    let init_pid = w.state(&id).unwrap()["pid"].as_i64().unwrap();
    assert_eq!(init_json["pid"], init_pid);

    let agent = seccomp_agent(sock);
    let pid_file = w.root().join("exec.pid");
    let out = w.ok(&[
        "exec",
        "--pid-file",
        pid_file.to_str().unwrap(),
        &id,
        "sh",
        "-c",
        "mkdir /tmp/exec-notified 2>/dev/null && echo made || echo refused",
    ]);
    let (json, kind) = agent.join().unwrap();
    assert_eq!(out, "refused\n");
    assert!(kind.contains("seccomp"), "not a seccomp notify fd: {kind}");
    assert_eq!(json["fds"], json!(["seccompFd"]));
    assert_eq!(json["metadata"], "exec-metadata");
    let exec_pid: i64 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(json["pid"], exec_pid, "{json}");
    assert_ne!(exec_pid, init_pid);
    assert_eq!(json["state"]["id"], id.as_str());
    assert_eq!(json["state"]["pid"], init_pid);
    assert_eq!(json["state"]["status"], "running");
    assert!(!b.rootfs().join("tmp/exec-notified").exists());

    // runc (1.1+) hands an exec'd process's listener to the agent the same way.
    if berth_testkit::have("runc") {
        let root = tempfile::tempdir().unwrap();
        let rid = unique_id("runc-notify-exec");
        let runc = |args: &[&str]| {
            Command::new("runc")
                .arg("--root")
                .arg(root.path())
                .args(args)
                .bounded_output()
        };
        let agent = seccomp_agent(sock_for_runc(&w));
        let b = bundle("sleep 1000", |s| {
            s["root"]["readonly"] = false.into();
            s["linux"]["seccomp"] = json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "architectures": ["SCMP_ARCH_X86_64"],
                "listenerPath": sock_for_runc(&w),
                "listenerMetadata": "exec-metadata",
                "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
            });
        });
        let o = runc(&["run", "-d", "--bundle", b.path().to_str().unwrap(), &rid]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        agent.join().unwrap();
        let agent = seccomp_agent(sock_for_runc(&w));
        let o = runc(&[
            "exec",
            &rid,
            "sh",
            "-c",
            "mkdir /tmp/exec-notified 2>/dev/null && echo made || echo refused",
        ]);
        let joined = agent.join();
        let _ = runc(&["delete", "-f", &rid]);
        let (json, kind) = joined.unwrap();
        assert_eq!(String::from_utf8_lossy(&o.stdout), "refused\n");
        assert!(kind.contains("seccomp"), "runc: {kind}");
        assert_eq!(json["metadata"], "exec-metadata");
        assert_eq!(json["fds"], json!(["seccompFd"]));
    }
}

fn sock_for_runc(w: &World) -> std::path::PathBuf {
    w.root().join("agent-runc.sock")
}
