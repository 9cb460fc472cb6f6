//! Benchmark for issue 8 (bridge networking), run inside a throwaway network namespace that this
//! process makes for itself first (so neither Berth's nor Docker's bridge and rules touch the
//! machine's network):
//! 1. `berth run --rm IMG true` on the default bridge vs `--network none` (goal: bridge adds
//!    <= 5 ms), and with one published port (`-p`, which rewrites the nftables table once);
//! 2. the same on Docker's default bridge (a private dockerd started in the namespace), as the
//!    ratio berth-bridge / docker-bridge (goal <= 0.1);
//! 3. TCP throughput into a container through a published port (kernel DNAT from the host's
//!    loopback) vs straight to the container's address (goal >= 0.9x).
//!
//! Build first: `cargo build --release -p berth-cli`. The binary is `$BERTH` or
//! `target/release/berth`. Usage: `net_run [ROUNDS] [--berth-only]` (default 30; `--berth-only`
//! skips Docker and the throughput part). With `$BERTH_BASELINE` set to another build of `berth`
//! (say, the previous commit's), its `run --rm` on the bridge and with `-p` is timed too, alternating
//! with the current one, as a before/after in one run. Run as root.
use anyhow::Context;
use berth_bench::{berth, berth_binary, median, median_of, output, require_built};
use berth_testkit::dockerd::Dockerd;
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const IMAGE: &str = "bench-busybox:latest";

/// `berth --root ROOT` with another build of berth (the before of a before/after).
fn berth_with(binary: &Path, root: &Path) -> Command {
    let mut cmd = Command::new(binary);
    cmd.arg("--root").arg(root).stdin(Stdio::null());
    cmd
}

/// Sends `bytes` to `addr` (retrying the connect while the sink restarts); MB/s.
fn push(addr: SocketAddr, bytes: usize) -> anyhow::Result<f64> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut stream = loop {
        match TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
            Ok(s) => break s,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(e).context(format!("connecting to {addr}")),
        }
    };
    let chunk = vec![0x5au8; 1 << 20];
    let start = Instant::now();
    let mut sent = 0;
    while sent < bytes {
        stream.write_all(&chunk)?;
        sent += chunk.len();
    }
    stream.shutdown(std::net::Shutdown::Write)?;
    // Wait for the sink to close: the data has been read by then.
    let mut buf = [0u8; 16];
    let _ = std::io::Read::read(&mut stream, &mut buf);
    Ok(sent as f64 / start.elapsed().as_secs_f64() / 1e6)
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let berth_only = args.iter().any(|a| a == "--berth-only");
    let rounds: usize = args
        .iter()
        .find(|a| !a.starts_with("--"))
        .map(|r| r.parse())
        .transpose()
        .context("ROUNDS must be a number")?
        .unwrap_or(30);
    let baseline = std::env::var_os("BERTH_BASELINE").map(PathBuf::from);
    require_built(&berth_binary(), "berth-cli")?;
    // Single-threaded here: the whole process (and all it spawns) moves to a private namespace.
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).context("unshare -n")?;
    output(Command::new("ip").args(["link", "set", "lo", "up"]))?;
    std::env::remove_var("BERTH_DEFAULT_NETWORK");
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average at start: {}", load.trim());

    let root = tempfile::Builder::new()
        .prefix("berth-bench-net-")
        .tempdir()?;
    let tar = root.path().join("busybox.tar");
    berth_testkit::busybox_rootfs_tar(&tar)?;
    output(berth(root.path()).arg("import").arg(&tar).arg(IMAGE))?;
    let run_with = |binary: &Path, extra: &[&str]| {
        let mut cmd = berth_with(binary, root.path());
        cmd.args(["run", "--rm"])
            .args(extra)
            .args([IMAGE, "true"])
            .stdout(Stdio::null());
        berth_bench::time_once(&mut cmd)
    };
    let current = berth_binary();
    let run = |extra: &[&str]| run_with(&current, extra);
    // Alternate none / bridge / bridge+port so load drifts hit all three alike.
    run(&["--network", "bridge"])?;
    let (mut none, mut bridge, mut port) = (Vec::new(), Vec::new(), Vec::new());
    let (mut old_bridge, mut old_port) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        none.push(run(&["--network", "none"])?);
        bridge.push(run(&["--network", "bridge"])?);
        port.push(run(&["--network", "bridge", "-p", "18080:80"])?);
        if let Some(old) = &baseline {
            old_bridge.push(run_with(old, &["--network", "bridge"])?);
            old_port.push(run_with(old, &["--network", "bridge", "-p", "18080:80"])?);
        }
    }
    let none = median(&mut none);
    let bridge = median(&mut bridge);
    let port = median(&mut port);
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "berth run --rm IMG true: none {:.2} ms, bridge {:.2} ms, bridge -p {:.2} ms",
        ms(none),
        ms(bridge),
        ms(port)
    );
    let added = ms(bridge) - ms(none);
    println!(
        "bridge adds {added:.2} ms over none (goal <= 5 ms: {}); -p adds {:.2} ms more",
        if added <= 5.0 { "met" } else { "NOT met" },
        ms(port) - ms(bridge)
    );
    if let Some(old) = &baseline {
        let old_bridge = median(&mut old_bridge);
        let old_port = median(&mut old_port);
        println!(
            "baseline {}: bridge {:.2} ms, bridge -p {:.2} ms (-p adds {:.2} ms); current -p / baseline -p = {:.3}",
            old.display(),
            ms(old_bridge),
            ms(old_port),
            ms(old_port) - ms(old_bridge),
            port.as_secs_f64() / old_port.as_secs_f64()
        );
    }
    if berth_only {
        return Ok(());
    }

    match Dockerd::start_networked() {
        Ok(Some(d)) => {
            output(d.docker().arg("import").arg(&tar).arg(IMAGE))?;
            let docker = median_of(rounds.min(10), || {
                berth_bench::time_once(
                    d.docker()
                        .args(["run", "--rm", IMAGE, "true"])
                        .stdout(Stdio::null()),
                )
            })?;
            let ratio = bridge.as_secs_f64() / docker.as_secs_f64();
            println!(
                "docker run --rm IMG true on Docker's bridge: {:.2} ms; berth bridge / docker bridge = {ratio:.3} (goal <= 0.1: {})",
                ms(docker),
                if ratio <= 0.1 { "met" } else { "NOT met" }
            );
        }
        Ok(None) => println!("dockerd not installed: no Docker ratio"),
        Err(e) => println!("dockerd with a bridge did not start here ({e:#}): no Docker ratio"),
    }

    // Throughput: a sink in a container, fed directly and through a published port.
    let id = output(berth(root.path()).args([
        "run",
        "-d",
        "--network",
        "bridge",
        "-p",
        "127.0.0.1:18081:5001",
        IMAGE,
        "sh",
        "-c",
        "while true; do nc -l -p 5001 >/dev/null; done",
    ]))?;
    let ip: Ipv4Addr =
        output(berth(root.path()).args(["inspect", "-f", "{{.NetworkSettings.IPAddress}}", &id]))?
            .parse()?;
    let bytes = 256 << 20;
    let (mut direct, mut forwarded) = (Vec::new(), Vec::new());
    push(SocketAddr::from((ip, 5001)), 16 << 20)?;
    for _ in 0..3 {
        direct.push(push(SocketAddr::from((ip, 5001)), bytes)?);
        forwarded.push(push(SocketAddr::from((Ipv4Addr::LOCALHOST, 18081)), bytes)?);
    }
    let best = |v: &[f64]| v.iter().cloned().fold(0.0, f64::max);
    let (d, f) = (best(&direct), best(&forwarded));
    println!(
        "TCP into a container (busybox nc sink, best of 3 x 256 MB): direct {d:.0} MB/s, via -p {f:.0} MB/s, ratio {:.3} (goal >= 0.9: {})",
        f / d,
        if f / d >= 0.9 { "met" } else { "NOT met" }
    );
    output(berth(root.path()).args(["rm", "-f", &id]))?;
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average at end: {}", load.trim());
    Ok(())
}
