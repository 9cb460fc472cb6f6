//! Drives the host's real cgroup hierarchy (v1 hybrid here; v2 hosts take the v2 path): creates
//! /berth-test-<random>, applies limits, moves a spawned `sleep` in, freezes, reads stats and
//! destroys it. Skips with a note when not root or when cgroupfs is not writable. Always cleans
//! up (a guard kills the child by PID and removes the cgroup even when an assertion fails).

use berth_cgroups::{Cgroup, CgroupVersion, Hierarchy};
use oci_spec::runtime::*;
use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Guard {
    cg: Cgroup,
    child: Option<Child>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = self.cg.thaw();
            // SAFETY: kill(2) on the PID of a child we spawned and have not reaped yet.
            unsafe { libc::kill(c.id() as i32, libc::SIGKILL) };
            let _ = c.wait();
        }
        let _ = self.cg.destroy();
    }
}

/// Reaps `child` within 30 s, failing the test (after killing it) otherwise: a wait on a
/// process the test does not fully control is always bounded.
fn wait_bounded(child: &mut Child, what: &str) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not exit within 30 s (killed it)");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn usable_host() -> Option<Hierarchy> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipping: needs root to create cgroups");
        return None;
    }
    match Hierarchy::detect() {
        Ok(h) => Some(h),
        Err(e) => {
            eprintln!("skipping: {e}");
            None
        }
    }
}

fn unique_name(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("/berth-test-{tag}-{}-{nanos:08x}", std::process::id())
}

fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file))
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.join(file).display()))
        .trim()
        .to_string()
}

#[test]
fn lifecycle_on_the_real_hierarchy() {
    let Some(h) = usable_host() else { return };
    let cg = Cgroup::open(&h, &unique_name("life")).unwrap();
    let mut guard = Guard {
        cg: cg.clone(),
        child: None,
    };
    assert!(!cg.exists());
    cg.create().unwrap();
    assert!(cg.exists());

    let has_memsw = cg
        .paths()
        .get("memory")
        .is_some_and(|d| d.join("memory.memsw.limit_in_bytes").exists());
    let mut memory = LinuxMemoryBuilder::default().limit(64i64 << 20);
    if has_memsw || h.version() == CgroupVersion::V2 {
        memory = memory.swap(128i64 << 20);
    }
    let resources = LinuxResourcesBuilder::default()
        .memory(memory.build().unwrap())
        .pids(LinuxPidsBuilder::default().limit(16i64).build().unwrap())
        .cpu(
            LinuxCpuBuilder::default()
                .shares(512u64)
                .quota(50000i64)
                .period(100000u64)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    cg.apply(&resources).unwrap();

    let paths = cg.paths();
    match h.version() {
        CgroupVersion::V1 => {
            assert_eq!(read(&paths["memory"], "memory.limit_in_bytes"), "67108864");
            if has_memsw {
                assert_eq!(
                    read(&paths["memory"], "memory.memsw.limit_in_bytes"),
                    "134217728"
                );
            }
            assert_eq!(read(&paths["pids"], "pids.max"), "16");
            assert_eq!(read(&paths["cpu"], "cpu.shares"), "512");
            assert_eq!(read(&paths["cpu"], "cpu.cfs_quota_us"), "50000");
            assert_eq!(read(&paths["cpu"], "cpu.cfs_period_us"), "100000");
        }
        CgroupVersion::V2 => {
            let d = &paths["unified"];
            assert_eq!(read(d, "memory.max"), "67108864");
            assert_eq!(read(d, "pids.max"), "16");
            assert_eq!(read(d, "cpu.max"), "50000 100000");
        }
    }

    // The child waits for a line so that its work (forks, memory, CPU) happens inside the
    // cgroup: memory allocated before joining is not charged to it.
    let mut child = Command::new("sh")
        .arg("-c")
        .arg("read _; head -c 8000000 /dev/zero | tail -c 1 >/dev/null; exec sleep 60")
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let mut stdin = child.stdin.take().unwrap();
    guard.child = Some(child);
    cg.add_pid(pid).unwrap();
    assert_eq!(cg.pids().unwrap(), vec![pid]);
    let own = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert!(own.contains(cg.cgroups_path()), "{own}");
    stdin.write_all(b"go\n").unwrap();
    drop(stdin);
    // Done when only the exec'd sleep is left.
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        != "sleep"
        || cg.pids().unwrap().len() != 1
    {
        assert!(Instant::now() < deadline, "child never settled");
        std::thread::sleep(Duration::from_millis(5));
    }

    cg.freeze().unwrap();
    assert!(cg.is_frozen().unwrap());
    cg.thaw().unwrap();
    assert!(!cg.is_frozen().unwrap());

    let stats = cg.stats().unwrap();
    assert_eq!(stats.pids.current, 1);
    assert_eq!(stats.pids.limit, Some(16));
    assert_eq!(stats.memory.limit, Some(64 << 20));
    assert!(stats.memory.max_usage > 0, "{stats:?}");
    assert!(stats.cpu.usage_total_ns > 0, "{stats:?}");
    assert_eq!(cg.oom_kill_count().unwrap(), 0);

    // Kill by PID, reap, then destroy: nothing may be left in any controller.
    if let Some(mut c) = guard.child.take() {
        // SAFETY: kill(2) on our own unreaped child.
        unsafe { libc::kill(c.id() as i32, libc::SIGKILL) };
        wait_bounded(&mut c, "the killed child");
    }
    cg.destroy().unwrap();
    assert!(!cg.exists());
    for dir in paths.values() {
        assert!(!dir.exists(), "{} left behind", dir.display());
    }
}

#[test]
fn device_rules_on_the_real_v1_hierarchy() {
    let Some(h) = usable_host() else { return };
    if h.version() != CgroupVersion::V1 {
        eprintln!("skipping: devices.list exists only on cgroup v1");
        return;
    }
    let cg = Cgroup::open(&h, &unique_name("dev")).unwrap();
    let _guard = Guard {
        cg: cg.clone(),
        child: None,
    };
    cg.create().unwrap();
    let resources = LinuxResourcesBuilder::default()
        .devices(vec![
            LinuxDeviceCgroupBuilder::default()
                .allow(false)
                .access("rwm")
                .build()
                .unwrap(),
            LinuxDeviceCgroupBuilder::default()
                .allow(true)
                .typ(LinuxDeviceType::C)
                .major(10)
                .minor(229)
                .access("rwm")
                .build()
                .unwrap(),
        ])
        .build()
        .unwrap();
    cg.apply(&resources).unwrap();
    let list = read(&cg.paths()["devices"], "devices.list");
    let lines: Vec<&str> = list.lines().collect();
    for want in [
        "c 10:229 rwm",
        "c 1:3 rwm",
        "c 136:* rwm",
        "c *:* m",
        "b *:* m",
    ] {
        assert!(lines.contains(&want), "{want} missing from {list}");
    }
    assert!(!lines.contains(&"a *:* rwm"), "{list}");
    cg.destroy().unwrap();
    assert!(!cg.exists());
}

#[test]
fn destroy_of_a_missing_cgroup_is_ok_and_busy_cgroup_errors() {
    let Some(h) = usable_host() else { return };
    let cg = Cgroup::open(&h, &unique_name("busy")).unwrap();
    cg.destroy().unwrap();
    cg.create().unwrap();
    let mut guard = Guard {
        cg: cg.clone(),
        child: None,
    };
    let child = Command::new("sleep").arg("60").spawn().unwrap();
    let pid = child.id() as i32;
    guard.child = Some(child);
    cg.add_pid(pid).unwrap();
    let started = std::time::Instant::now();
    assert!(
        cg.destroy().is_err(),
        "a populated cgroup cannot be removed"
    );
    assert!(started.elapsed() < std::time::Duration::from_millis(500));
    drop(guard);
    assert!(!cg.exists());
}

#[test]
fn kill_all_reaches_forked_descendants() {
    let Some(h) = usable_host() else { return };
    let cg = Cgroup::open(&h, &unique_name("kill")).unwrap();
    cg.create().unwrap();
    let mut guard = Guard {
        cg: cg.clone(),
        child: None,
    };
    let mut child = Command::new("sh")
        .arg("-c")
        .arg("read _; sleep 60 & sleep 60 & wait")
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    cg.add_pid(child.id() as i32).unwrap();
    guard.child = Some(child);
    stdin.write_all(b"go\n").unwrap();
    drop(stdin);
    let deadline = Instant::now() + Duration::from_secs(10);
    while cg.all_pids().unwrap().len() < 3 {
        assert!(Instant::now() < deadline, "children never started");
        std::thread::sleep(Duration::from_millis(2));
    }
    cg.kill_all(libc::SIGKILL).unwrap();
    if let Some(mut c) = guard.child.take() {
        let status = wait_bounded(&mut c, "the shell after kill_all");
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(9)
        );
    }
    while !cg.all_pids().unwrap().is_empty() {
        assert!(Instant::now() < deadline, "processes survived kill_all");
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(!cg.is_frozen().unwrap());
    cg.destroy().unwrap();
    assert!(!cg.exists());
}
