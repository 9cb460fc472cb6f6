//! Benchmark: `berth run --rm --network none IMG true` vs `docker run --rm --network none IMG
//! true` on the same busybox rootfs tar (imported into a temporary berth root and, when dockerd
//! is installed, into a private dockerd), alternated, medians and ratio printed. Then the memory
//! cost of a detached container's keeper: the VmRSS of berth's monitor vs containerd-shim's.
//! Build first: `cargo build --release -p berth-cli`. The binary is `$BERTH` or
//! `target/release/berth`. Usage: `engine_run [ROUNDS]` (default 30). Run as root.
use berth_bench::{berth, berth_binary, median, numeric_arg, output, require_built};
use berth_testkit::dockerd::Dockerd;
use std::process::Stdio;
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
    require_built(&berth_binary(), "berth-cli")?;
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
    let dockerd = Dockerd::start()?;
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
    let _ = berth(root.path()).args(["rm", "-f", &id]).output();
    match berth_rss {
        Some(kib) => {
            println!("detached container keeper: berth monitor (pid {monitor}) VmRSS {kib} KiB")
        }
        None => println!("detached container keeper: berth monitor not found"),
    }
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
