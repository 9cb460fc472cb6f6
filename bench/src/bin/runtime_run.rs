//! Benchmark: `berth-runtime run` vs `runc run` of `true` on the same busybox bundle, alternated,
//! medians and ratio printed. Build first: `cargo build --release -p berth-runtime`.
//! The binary is taken from `$BERTH_RUNTIME` or `target/release/berth-runtime`.
//! Usage: `runtime_run [ROUNDS]` (default 50). Run as root.

use berth_bench::{numeric_arg, require_built, runtime_binary};
use berth_testkit::Bundle;
use std::path::PathBuf;
use std::process::{Command, Stdio};

fn main() -> anyhow::Result<()> {
    let rounds: usize = numeric_arg(1, "ROUNDS", 50)?;
    let ours = runtime_binary();
    require_built(&ours, "berth-runtime")?;
    if !berth_testkit::have("runc") {
        println!("runc not installed: skipping the comparison");
        return Ok(());
    }
    let bundle = Bundle::new(&["true"])?;
    let ours_root = tempfile::Builder::new().prefix("bench-berth-").tempdir()?;
    let runc_root = tempfile::Builder::new().prefix("bench-runc-").tempdir()?;
    let mut n = 0u64;
    let mut run = |bin: &std::path::Path, root: &std::path::Path| {
        n += 1;
        let mut cmd = Command::new(bin);
        cmd.arg("--root")
            .arg(root)
            .arg("run")
            .arg("--bundle")
            .arg(bundle.path())
            .arg(format!("bench-{}-{n}", std::process::id()))
            .stdin(Stdio::null());
        berth_bench::time_once(&mut cmd)
    };
    let runc = PathBuf::from("runc");
    let (a, b) = {
        let cell = std::cell::RefCell::new(&mut run);
        berth_bench::compare(
            "runtime run true",
            rounds,
            || (cell.borrow_mut())(&ours, ours_root.path()),
            || (cell.borrow_mut())(&runc, runc_root.path()),
        )?
    };
    let ratio = a.as_secs_f64() / b.as_secs_f64();
    println!(
        "goal: ratio <= 0.5 — {}",
        if ratio <= 0.5 { "met" } else { "NOT met" }
    );
    Ok(())
}
