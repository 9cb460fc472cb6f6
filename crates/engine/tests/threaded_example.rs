//! Runs `examples/threaded_run`: 8 threads start containers at once through the library (the
//! monitor is started by re-executing the example at the engine's hidden entry point), and
//! each container's log comes back.
use std::path::PathBuf;
use std::process::Command;

fn example_binary() -> PathBuf {
    // target/<profile>/deps/<this test> -> target/<profile>/examples/threaded_run
    let exe = std::env::current_exe().expect("current exe");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target profile dir");
    profile_dir.join("examples").join("threaded_run")
}

#[test]
fn eight_threads_start_containers_through_the_library() {
    berth_testkit::require_busybox().expect("busybox");
    let root = berth_testkit::TempRoot::new("berth-threaded-").expect("root");
    let rootfs = tempfile::tempdir().expect("rootfs");
    berth_testkit::busybox_rootfs(rootfs.path()).expect("busybox rootfs");
    let example = example_binary();
    assert!(
        example.exists(),
        "{} is not built: run the package's tests whole (`cargo test -p berth-engine`), which builds its examples",
        example.display()
    );
    let out = Command::new(&example)
        .arg(root.path())
        .arg(rootfs.path())
        .env_remove("BERTH_BINARY")
        .output()
        .expect("run example");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}\nstdout: {stdout}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    for n in 0..8 {
        assert!(
            stdout.contains(&format!("hello from thread {n}\n")),
            "{stdout}"
        );
    }
    let containers = root.path().join("containers");
    let left: Vec<_> = std::fs::read_dir(&containers)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(
        left.iter().all(|n| n.to_string_lossy().starts_with('.')),
        "containers left behind: {left:?}"
    );
}
