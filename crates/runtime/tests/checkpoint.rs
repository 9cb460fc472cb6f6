//! `checkpoint` / `restore` through CRIU, as runc does them. The end-to-end test (a counting
//! container checkpointed, then restored with its count) needs a CRIU that works on this
//! kernel: it runs `criu check` first and skips with criu's own words when it does not. The
//! error paths (criu missing, criu failing, no image, terminal) run everywhere criu is
//! installed, and must leave the container as it was or nothing at all.

mod common;

use common::*;
use std::path::Path;
use std::time::Duration;

/// None when criu is installed and `criu check` passes; otherwise why not.
fn criu_unusable() -> Option<String> {
    if !berth_testkit::have("criu") {
        return Some("criu is not installed".into());
    }
    let o = std::process::Command::new("criu")
        .arg("check")
        .bounded_output();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    // criu 3.17 exits 0 even when kernel feature detection fails: judge by what it says.
    if o.status.success() && !text.contains("Error") {
        None
    } else {
        Some(format!("`criu check` says: {}", text.trim()))
    }
}

/// Whether CRIU can track dirty memory here (a pre-dump needs the kernel's soft-dirty bits).
fn memory_tracking() -> bool {
    std::process::Command::new("criu")
        .args(["check", "--feature", "mem_dirty_track"])
        .bounded_output()
        .status
        .success()
}

/// A container counting in /count (ten a second), running detached. Its stdin is the host's
/// /dev/null (the harness's), which the runtime swaps for the container's own as runc does; its
/// stdout and stderr, files of the harness outside the container, CRIU could not dump (as
/// under runc), so it sends them to the container's /dev/null.
fn counting(w: &World, id: &str) -> (Guard, berth_testkit::Bundle) {
    let mut b = sh_bundle(
        "exec >/dev/null 2>&1; i=0; while :; do i=$((i+1)); echo $i > /count; sleep 0.1; done",
    );
    b.spec["root"]["readonly"] = false.into();
    b.write_config().unwrap();
    let g = w.guard(id);
    w.ok(&["run", "-d", "--bundle", b.path().to_str().unwrap(), id]);
    (g, b)
}

fn count(b: &berth_testkit::Bundle) -> u64 {
    std::fs::read_to_string(b.rootfs().join("count"))
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(0)
}

fn nothing_left(w: &World, id: &str) {
    assert!(!w.root().join(id).exists(), "state dir left behind");
    for controller in ["memory", "pids", "freezer", "unified"] {
        let dir = cgroup_dir(controller, id);
        assert!(!dir.exists(), "{} left behind", dir.display());
    }
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mountinfo.contains(&format!("{}/criu-root", w.root().join(id).display())),
        "restore root left mounted"
    );
}

#[test]
fn checkpoint_and_restore_a_counting_container() {
    if let Some(why) = criu_unusable() {
        eprintln!("note: skipping the CRIU round trip: {why}");
        return;
    }
    let w = World::new();
    let id = unique_id("cpt");
    let (_g, b) = counting(&w, &id);
    assert!(berth_testkit::wait_until(
        Duration::from_secs(20),
        || count(&b) >= 3
    ));
    let images = tempfile::tempdir().unwrap();
    let pre = images.path().join("pre");
    let full = images.path().join("full");
    let pre_dump = [
        "checkpoint",
        "--pre-dump",
        "--image-path",
        pre.to_str().unwrap(),
        &id,
    ];
    let mut dump = vec![
        "checkpoint",
        "--image-path",
        full.to_str().unwrap(),
        "--manage-cgroups-mode",
        "soft",
        &id,
    ];
    if memory_tracking() {
        // An iterative migration: a pre-dump leaves it running, the dump builds on it.
        w.ok(&pre_dump);
        dump.splice(3..3, ["--parent-path", "../pre"]);
    } else {
        // No soft-dirty bits in this kernel: the pre-dump is refused, saying why, and the
        // container runs on.
        let o = w.out(&pre_dump);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert!(err.contains("cannot track memory changes"), "{err}");
    }
    assert_eq!(w.status(&id), "running");
    w.ok(&dump);
    assert!(w.state(&id).is_none(), "a dumped container is deleted");
    let at_dump = count(&b);
    assert!(at_dump >= 3);
    w.ok(&[
        "restore",
        "-d",
        "--image-path",
        full.to_str().unwrap(),
        "--bundle",
        b.path().to_str().unwrap(),
        &id,
    ]);
    assert_eq!(w.status(&id), "running");
    // It goes on from where it was (a fresh start would count from 1 again).
    let first = count(&b);
    assert!(
        first >= at_dump,
        "restarted from {first}, dumped at {at_dump}"
    );
    assert!(
        berth_testkit::wait_until(Duration::from_secs(20), || count(&b) >= at_dump + 3),
        "the restored container does not count on"
    );
    w.ok(&["delete", "-f", &id]);
    nothing_left(&w, &id);
}

#[test]
fn checkpoint_with_leave_running_keeps_the_container() {
    if let Some(why) = criu_unusable() {
        eprintln!("note: skipping --leave-running: {why}");
        return;
    }
    let w = World::new();
    let id = unique_id("cpt-lr");
    let (_g, b) = counting(&w, &id);
    let images = tempfile::tempdir().unwrap();
    w.ok(&[
        "checkpoint",
        "--leave-running",
        "--tcp-established",
        "--file-locks",
        "--image-path",
        images.path().to_str().unwrap(),
        &id,
    ]);
    assert_eq!(w.status(&id), "running");
    let now = count(&b);
    assert!(berth_testkit::wait_until(
        Duration::from_secs(20),
        || count(&b) > now + 2
    ));
    assert!(images.path().join("inventory.img").exists());
}

/// criu missing (a --criu path that does not exist): a clear error, and the container is as
/// it was.
#[test]
fn checkpoint_without_criu_says_so_and_keeps_the_container() {
    let w = World::new();
    let id = unique_id("cpt-nocriu");
    let (_g, _b) = counting(&w, &id);
    let images = tempfile::tempdir().unwrap();
    let o = w.out(&[
        "--criu",
        "/nonexistent/criu",
        "checkpoint",
        "--image-path",
        images.path().to_str().unwrap(),
        &id,
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("criu binary \\\"/nonexistent/criu\\\" not found")
            && err.contains("criu package"),
        "{err}"
    );
    assert_eq!(w.status(&id), "running");
    let o = w.out(&[
        "--criu",
        "/nonexistent/criu",
        "restore",
        "--image-path",
        images.path().to_str().unwrap(),
        &unique_id("never"),
    ]);
    assert_eq!(o.status.code(), Some(1));
}

/// A criu that fails as CRIU does (an Error line in its `--log-file` under `--work-dir`, exit
/// 1), so the failure paths run whether or not the real criu works here.
fn failing_criu(dir: &Path) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("criu");
    std::fs::write(
        &path,
        "#!/bin/sh\nlog=; dir=.\nwhile [ $# -gt 0 ]; do case \"$1\" in\n  \
         --log-file) log=$2; shift;;\n  --work-dir) dir=$2; shift;;\nesac; shift; done\n\
         [ -n \"$log\" ] && echo '(00.000001) Error (fake): cannot work here' > \"$dir/$log\"\n\
         exit 1\n",
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// When CRIU fails (on a kernel it cannot work on, or for any reason), checkpoint reports
/// CRIU's own error and the log path, and the container keeps running.
#[test]
fn failing_criu_is_reported_and_the_container_keeps_running() {
    let w = World::new();
    let id = unique_id("cpt-fail");
    let (_g, b) = counting(&w, &id);
    let bin = tempfile::tempdir().unwrap();
    let criu = failing_criu(bin.path());
    let criu = criu.to_str().unwrap();
    let images = tempfile::tempdir().unwrap();
    let o = w.out(&[
        "--criu",
        criu,
        "checkpoint",
        "--image-path",
        images.path().to_str().unwrap(),
        &id,
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("criu dump failed"), "{err}");
    assert!(err.contains("cannot work here"), "{err}");
    assert!(err.contains("dump.log"), "{err}");
    assert_eq!(w.status(&id), "running");
    let now = count(&b);
    assert!(berth_testkit::wait_until(
        Duration::from_secs(20),
        || count(&b) > now
    ));

    // A restore that CRIU refuses leaves no state dir, cgroup or mount.
    std::fs::write(images.path().join("inventory.img"), b"").unwrap();
    let id2 = unique_id("rst-fail");
    let o = w.out(&[
        "--criu",
        criu,
        "restore",
        "-d",
        "--image-path",
        images.path().to_str().unwrap(),
        "--bundle",
        b.path().to_str().unwrap(),
        &id2,
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("criu restore failed"), "{err}");
    nothing_left(&w, &id2);

    // runc, with the same criu, fails the same way and keeps its container running too.
    if berth_testkit::have("runc") {
        let root = tempfile::tempdir().unwrap();
        let rid = unique_id("runc-cpt");
        let runc = |args: &[&str]| {
            std::process::Command::new("runc")
                .arg("--root")
                .arg(root.path())
                .args(args)
                .bounded_output()
        };
        let o = runc(&["run", "-d", "--bundle", b.path().to_str().unwrap(), &rid]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let runc_images = tempfile::tempdir().unwrap();
        let o = runc(&[
            "--criu",
            criu,
            "checkpoint",
            "--image-path",
            runc_images.path().to_str().unwrap(),
            &rid,
        ]);
        let state = runc(&["state", &rid]);
        let _ = runc(&["delete", "-f", &rid]);
        assert!(
            !o.status.success(),
            "runc checkpoint worked with a failing criu"
        );
        assert!(
            String::from_utf8_lossy(&state.stdout).contains("\"running\""),
            "{}",
            String::from_utf8_lossy(&state.stdout)
        );
    }
}

#[test]
fn restore_without_an_image_and_bad_input_are_refused_cleanly() {
    let w = World::new();
    let b = sh_bundle("true");
    let empty = tempfile::tempdir().unwrap();
    let id = unique_id("rst-none");
    let o = w.out(&[
        "restore",
        "--image-path",
        empty.path().to_str().unwrap(),
        "--bundle",
        b.path().to_str().unwrap(),
        &id,
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    if berth_testkit::have("criu") {
        assert!(err.contains("holds no checkpoint"), "{err}");
    }
    nothing_left(&w, &id);

    // A stopped container cannot be checkpointed.
    let stopped = unique_id("cpt-stopped");
    let _g = w.guard(&stopped);
    w.ok(&[
        "run",
        "--keep",
        "--bundle",
        b.path().to_str().unwrap(),
        &stopped,
    ]);
    let o = w.out(&[
        "checkpoint",
        "--image-path",
        empty.path().to_str().unwrap(),
        &stopped,
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr)
            .contains("cannot checkpoint a container that is stopped"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // A bad cgroups mode names itself.
    let running = unique_id("cpt-mode");
    let (_g2, _b2) = counting(&w, &running);
    let o = w.out(&[
        "checkpoint",
        "--manage-cgroups-mode",
        "sometimes",
        "--image-path",
        empty.path().to_str().unwrap(),
        &running,
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("invalid --manage-cgroups-mode"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(w.status(&running), "running");
    assert!(!Path::new(&empty.path().join("dump.log")).exists());
}
