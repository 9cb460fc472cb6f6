//! Benchmark: `berth run --rm --network none IMG true` vs `docker run --rm --network none IMG
//! true` on the same busybox rootfs tar (imported into a temporary berth root and, when dockerd
//! is installed, into a private dockerd), alternated, medians and ratio printed. Then the memory
//! cost of a detached container's supervision: the VmRSS and PSS of berth's monitor and of its
//! keeper (the subreaper above it) vs containerd-shim's VmRSS.
//! Build first: `cargo build --release -p berth-cli`. The binary is `$BERTH` or
//! `target/release/berth`. Usage: `engine_run [ROUNDS] [--berth-only]` (default 30;
//! `--berth-only` skips Docker). With `$BERTH_BASELINE` set to another build of `berth` (say,
//! the previous commit's), its `run --rm` is timed too, alternating with the current one, as a
//! before/after in one run. Run as root.
use berth_bench::{berth, berth_binary, median, ms, numeric_arg, output, require_built};
use berth_testkit::dockerd::Dockerd;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

const IMAGE: &str = "bench-busybox:latest";

fn rss_kib(pid: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Proportional set size (`/proc/<pid>/smaps_rollup`): shared pages count for a share each.
fn pss_kib(pid: &str) -> Option<u64> {
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    rollup
        .lines()
        .find(|l| l.starts_with("Pss:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn parent_of(pid: &str) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 2..];
    after.split(' ').nth(1).map(str::to_string)
}

fn comm(pid: &str) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

fn main() -> anyhow::Result<()> {
    let rounds: usize = numeric_arg(1, "ROUNDS", 30)?;
    let berth_only = std::env::args().any(|a| a == "--berth-only");
    let baseline = std::env::var_os("BERTH_BASELINE").map(PathBuf::from);
    require_built(&berth_binary(), "berth-cli")?;
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average at start: {}", load.trim());
    let root = tempfile::Builder::new()
        .prefix("berth-bench-engine-")
        .tempdir()?;
    let tar = root.path().join("busybox.tar");
    berth_testkit::busybox_rootfs_tar(&tar)?;
    output(berth(root.path()).arg("import").arg(&tar).arg(IMAGE))?;
    let berth_run = || {
        berth_bench::time_once(
            berth(root.path())
                .args(["run", "--rm", "--network", "none", IMAGE, "true"])
                .stdout(Stdio::null()),
        )
    };
    if let Some(before) = &baseline {
        let before_run = || {
            let mut cmd = Command::new(before);
            cmd.arg("--root").arg(root.path()).stdin(Stdio::null());
            berth_bench::time_once(
                cmd.args(["run", "--rm", "--network", "none", IMAGE, "true"])
                    .stdout(Stdio::null()),
            )
        };
        let (after, before) = berth_bench::compare(
            "run --rm IMG true (this berth vs BERTH_BASELINE)",
            rounds,
            berth_run,
            before_run,
        )?;
        println!(
            "before/after: {:.2} ms -> {:.2} ms ({:+.2} ms)",
            ms(before),
            ms(after),
            ms(after) - ms(before)
        );
    }
    let dockerd = if berth_only { None } else { Dockerd::start()? };
    match &dockerd {
        Some(d) => {
            output(d.docker().arg("import").arg(&tar).arg(IMAGE))?;
            let docker_run = || {
                berth_bench::time_once(
                    d.docker()
                        .args(["run", "--rm", "--network", "none", IMAGE, "true"])
                        .stdout(Stdio::null()),
                )
            };
            let (ours, theirs) = berth_bench::compare(
                "run --rm IMG true (berth vs docker)",
                rounds,
                berth_run,
                docker_run,
            )?;
            println!(
                "goal: berth <= 0.1 x docker ({:.2} ms); {}",
                theirs.as_secs_f64() * 100.0,
                if ours.as_secs_f64() <= theirs.as_secs_f64() * 0.1 {
                    "met"
                } else {
                    "NOT met"
                }
            );
        }
        None => {
            berth_run()?;
            let mut samples: Vec<Duration> = (0..rounds)
                .map(|_| berth_run())
                .collect::<anyhow::Result<_>>()?;
            let m = median(&mut samples);
            println!(
                "run --rm IMG true: berth median {:.2} ms (docker not installed: no ratio)",
                m.as_secs_f64() * 1e3
            );
        }
    }

    // Memory kept per detached container.
    let id = output(berth(root.path()).args([
        "run",
        "-d",
        "--network",
        "none",
        IMAGE,
        "sleep",
        "1000",
    ]))?;
    let record: serde_json::Value = serde_json::from_slice(&std::fs::read(
        root.path().join(format!("containers/{id}/config.v2.json")),
    )?)?;
    let monitor = record["BerthMonitorPid"].as_i64().unwrap_or(0).to_string();
    let berth_rss = rss_kib(&monitor);
    let keeper = parent_of(&monitor).unwrap_or_default();
    for (what, pid) in [("monitor", &monitor), ("keeper", &keeper)] {
        match (rss_kib(pid), pss_kib(pid)) {
            (Some(rss), Some(pss)) => println!(
                "detached container: berth {what} (pid {pid}, {}) VmRSS {rss} KiB, PSS {pss} KiB",
                comm(pid)
            ),
            _ => println!("detached container: berth {what} not found"),
        }
    }
    let _ = berth(root.path()).args(["rm", "-f", &id]).output();
    if let Some(d) = &dockerd {
        let cid =
            output(
                d.docker()
                    .args(["run", "-d", "--network", "none", IMAGE, "sleep", "1000"]),
            )?;
        let pid = output(d.docker().args(["inspect", "-f", "{{.State.Pid}}", &cid]))?;
        let shim = parent_of(&pid).unwrap_or_default();
        let shim_rss = rss_kib(&shim);
        let _ = d.docker().args(["rm", "-f", &cid]).output();
        match (shim_rss, berth_rss) {
            (Some(s), Some(b)) => println!(
                "detached container keeper: {} (pid {shim}) VmRSS {s} KiB; berth/docker ratio {:.3}",
                comm(&shim),
                b as f64 / s as f64
            ),
            (Some(s), None) => println!("detached container keeper: {} VmRSS {s} KiB", comm(&shim)),
            _ => println!("detached container keeper: containerd-shim not found"),
        }
    }
    Ok(())
}
