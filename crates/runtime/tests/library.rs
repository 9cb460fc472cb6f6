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
    // The ready line comes after the trap: PID 1 ignores a SIGTERM it has no handler for.
    let b = sh_bundle("trap 'exit 0' TERM; echo from-init; while :; do sleep 0.05; done");
    let id = unique_id("lib");
    let _g = w.guard(&id);
    let o = output_within(
        std::process::Command::new(&example)
            .arg(w.root())
            .arg(b.path())
            .arg(&id)
            .stdin(std::process::Stdio::null()),
        COMMAND_DEADLINE,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["init_output"], "from-init\n");
    assert_eq!(v["exec_output"], "from-exec\n");
    assert_eq!(v["exec_status"], 3);
    assert_eq!(v["init_status"], 0);
    assert_eq!(v["gone"], true);
}

/// Path of an example binary built beside the test (None when examples were not built).
fn example(name: &str) -> Option<std::path::PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let path = exe.parent()?.parent()?.join("examples").join(name);
    if path.exists() {
        Some(path)
    } else {
        eprintln!("note: {} not built, skipping", path.display());
        None
    }
}

/// Several monitor processes at once, each `create` → (state "created", process not run) →
/// `start` → reap, on different ids in one root: no init may run before its own `start`.
#[test]
fn concurrent_library_create_then_start_waits_for_start() {
    let Some(example) = example("library_create_start") else {
        return;
    };
    let w = World::new();
    const PARALLEL: usize = 8;
    const ROUNDS: usize = 4;
    let out = tempfile::tempdir().unwrap();
    let mut bundles = Vec::new();
    for _ in 0..PARALLEL {
        let mut b = sh_bundle("touch /out/ran");
        b.spec["mounts"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({
                "destination": "/out", "type": "bind", "source": "", "options": ["rbind", "rw"]
            }));
        bundles.push(b);
    }
    let mut failures = Vec::new();
    for round in 0..ROUNDS {
        let mut children = Vec::new();
        for (i, b) in bundles.iter_mut().enumerate() {
            let dir = out.path().join(format!("{round}-{i}"));
            std::fs::create_dir(&dir).unwrap();
            let mounts = b.spec["mounts"].as_array_mut().unwrap();
            let last = mounts.len() - 1;
            mounts[last]["source"] = serde_json::json!(dir);
            b.write_config().unwrap();
            let id = unique_id("lib-cs");
            let guard = w.guard(&id);
            let child = Running::spawn(
                std::process::Command::new(&example)
                    .arg(w.root())
                    .arg(b.path())
                    .arg(&id)
                    .arg(dir.join("ran"))
                    .stdin(std::process::Stdio::null()),
            );
            children.push((guard, child));
        }
        for (guard, child) in children {
            let o = match child.finish(COMMAND_DEADLINE) {
                Ok(o) => o,
                Err(hung) => {
                    failures.push(format!("{}: {hung}", guard.id));
                    continue;
                }
            };
            if !o.status.success() {
                failures.push(format!(
                    "{}: {} {}",
                    guard.id,
                    String::from_utf8_lossy(&o.stdout).trim(),
                    String::from_utf8_lossy(&o.stderr).trim()
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// `create_and_start` of `true`, 50 times: the returned pid is always the init's (never 0,
/// even when `true` has already exited) and waitpid on it yields exit status 0.
#[test]
fn library_create_and_start_returns_the_init_pid_of_a_fast_process() {
    let Some(example) = example("library_run_many") else {
        return;
    };
    let w = World::new();
    let b = berth_testkit::Bundle::new(&["true"]).unwrap();
    let prefix = unique_id("lib-true");
    let o = output_within(
        std::process::Command::new(&example)
            .arg(w.root())
            .arg(b.path())
            .arg(&prefix)
            .arg("50")
            .stdin(std::process::Stdio::null()),
        COMMAND_DEADLINE,
    );
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let runs = v["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 50);
    for run in runs {
        assert!(run["pid"].as_i64().unwrap() > 0, "{run}");
        assert_eq!(run["exit"], 0, "{run}");
    }
}
