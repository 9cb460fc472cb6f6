//! The cgroup v2 eBPF device filter on the host's real cgroup2 tree (the `unified` mount on this
//! hybrid host, /sys/fs/cgroup on v2 hosts): a process in the cgroup may open the default
//! devices but not /dev/kmsg; after an update to allow-all it may. Skips when not root, when
//! there is no cgroup2 mount, or when /dev/kmsg cannot be opened here at all.

use berth_cgroups::{Cgroup, Hierarchy};
use oci_spec::runtime::{LinuxDeviceCgroupBuilder, LinuxResources, LinuxResourcesBuilder};
use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn devices(allow_all: bool) -> LinuxResources {
    LinuxResourcesBuilder::default()
        .devices(vec![LinuxDeviceCgroupBuilder::default()
            .allow(allow_all)
            .access("rwm")
            .build()
            .unwrap()])
        .build()
        .unwrap()
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

/// Run the probe script inside the cgroup; returns its exit code (0: zero ok and kmsg denied,
/// 5: kmsg allowed, 4: zero denied).
fn probe(cg: &Cgroup) -> i32 {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg("read _; head -c 1 /dev/zero >/dev/null || exit 4; head -c 0 /dev/kmsg 2>/dev/null && exit 5; exit 0")
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let joined = cg.add_pid(child.id() as i32);
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(b"go\n");
    }
    let status = wait_bounded(&mut child, "the device probe");
    joined.unwrap();
    status.code().unwrap_or(-1)
}

#[test]
fn ebpf_device_filter_enforces_and_is_replaced_on_update() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipping: needs root");
        return;
    }
    let Some(root) = Hierarchy::detect()
        .ok()
        .and_then(|h| h.unified_mountpoint().map(|p| p.to_path_buf()))
    else {
        eprintln!("skipping: no cgroup2 mount");
        return;
    };
    if std::fs::File::open("/dev/kmsg").is_err() {
        eprintln!("skipping: /dev/kmsg is not readable here even without a filter");
        return;
    }
    let name = format!("/berth-test-bpf-{}", std::process::id());
    let h = Hierarchy::v2_at(&root).unwrap();
    let cg = Cgroup::open(&h, &name).unwrap();
    // Plain mkdir: Cgroup::create would also enable controllers in the host's root cgroup.
    std::fs::create_dir(&cg.paths()["unified"]).unwrap();
    let result = std::panic::catch_unwind(|| {
        cg.apply(&devices(false)).unwrap();
        assert_eq!(probe(&cg), 0, "default devices allowed, /dev/kmsg denied");
        cg.apply(&devices(true)).unwrap();
        assert_eq!(probe(&cg), 5, "after update to allow-all /dev/kmsg opens");
    });
    cg.destroy().unwrap();
    assert!(!cg.exists());
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}
