//! Benchmark: a fully cached `berth build` of a 300-step Dockerfile against a 10-step one (the
//! same kind of step, one layer each), alternated, medians printed with the time per step.
//! Goal: a cached step at depth 300 costs what it costs at depth 10 — the marginal per-step
//! time of the deep build, (T300 - T10) / 290, is no more than T10 / 10.
//! Build first: `cargo build --release -p berth-cli`. The binary is `$BERTH` or
//! `target/release/berth`. Usage: `build_deep [ROUNDS]` (default 9). Run as root.
use berth_bench::{berth_binary, numeric_arg, require_built, run_ok};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn context(dir: &Path, steps: usize) -> anyhow::Result<PathBuf> {
    let ctx = dir.join(format!("ctx{steps}"));
    std::fs::create_dir_all(&ctx)?;
    let mut text = String::from("FROM bb\n");
    for i in 1..=steps {
        text.push_str(&format!("RUN echo {i} > /f{i}\n"));
    }
    std::fs::write(ctx.join("Dockerfile"), text)?;
    Ok(ctx)
}

fn main() -> anyhow::Result<()> {
    let rounds: usize = numeric_arg(1, "ROUNDS", 9)?;
    let berth = berth_binary();
    require_built(&berth, "berth-cli")?;
    let root = berth_testkit::TempRoot::new("bench-build-deep-")?;
    let work = tempfile::tempdir()?;
    let tar = work.path().join("bb.tar");
    berth_testkit::busybox_rootfs_tar(&tar)?;
    let berth_cmd = || {
        let mut c = Command::new(&berth);
        c.arg("--root").arg(root.path());
        c.stdout(Stdio::null());
        c
    };
    run_ok(berth_cmd().arg("import").arg(&tar).arg("bb"))?;
    let shallow = context(work.path(), 10)?;
    let deep = context(work.path(), 300)?;
    println!("first builds (filling the cache)...");
    for ctx in [&shallow, &deep] {
        run_ok(berth_cmd().args(["build", "-q"]).arg(ctx))?;
    }
    let loadavg = || std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average before: {}", loadavg().trim());
    let (t_deep, t_shallow) = berth_bench::compare(
        "cached build, 300 steps vs 10 steps",
        rounds,
        || berth_bench::time_once(berth_cmd().args(["build", "-q"]).arg(&deep)),
        || berth_bench::time_once(berth_cmd().args(["build", "-q"]).arg(&shallow)),
    )?;
    println!("load average after: {}", loadavg().trim());
    let per_step_shallow = t_shallow.as_secs_f64() / 10.0;
    let marginal_deep = (t_deep.as_secs_f64() - t_shallow.as_secs_f64()) / 290.0;
    println!(
        "per cached step: 10-step build {:.3} ms (fixed costs included), marginal step of the \
         300-step build {:.3} ms; ratio {:.3} (goal <= 1)",
        per_step_shallow * 1e3,
        marginal_deep * 1e3,
        marginal_deep / per_step_shallow
    );
    Ok(())
}
