//! The library API as the engine uses it, through `examples/library_run.rs` (the library forks,
//! so it must be driven from a single-threaded process, not from the test harness).

mod common;

use common::*;

#[test]
fn library_create_exec_delete_with_stdio() {
    let exe = std::env::current_exe().unwrap();
    let example = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|d| d.join("examples/library_run"))
        .unwrap();
    if !example.exists() {
        eprintln!("note: {} not built, skipping", example.display());
        return;
    }
    let w = World::new();
    let b = sh_bundle("echo from-init; trap 'exit 0' TERM; while :; do sleep 0.05; done");
    let id = unique_id("lib");
    let _g = w.guard(&id);
    let o = std::process::Command::new(&example)
        .arg(w.root())
        .arg(b.path())
        .arg(&id)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["init_output"], "from-init\n");
    assert_eq!(v["exec_output"], "from-exec\n");
    assert_eq!(v["exec_status"], 3);
    assert_eq!(v["init_status"], 0);
    assert_eq!(v["gone"], true);
}
