//! Benchmark: Berth's Docker Engine API service (`berth system service`) against a private
//! dockerd, driven by the same docker CLI: `docker run --rm --network none IMG true`, alternated,
//! medians and ratio (goal ≤ 0.2 × dockerd); then `GET /containers/json?all=1` with 200 created
//! containers on each side, timed as raw HTTP requests on the Unix socket (goal ≤ 0.5 × dockerd).
//! Build first: `cargo build --release -p berth-cli`. The binary is `$BERTH` or
//! `target/release/berth`. Usage: `api_service [ROUNDS] [CONTAINERS]` (defaults 20 and 200).
//! Run as root.
use anyhow::Context;
use berth_bench::{berth_binary, output, require_built};
use berth_testkit::dockerd::Dockerd;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const IMAGE: &str = "bench-busybox:latest";

/// The docker CLI pointed at `socket`, with a private config directory.
fn docker(socket: &Path, config: &Path) -> Command {
    let mut c = Command::new("docker");
    c.env("DOCKER_HOST", format!("unix://{}", socket.display()))
        .env("DOCKER_CONFIG", config)
        .stdin(Stdio::null());
    c
}

/// One `GET path` over the Unix socket (HTTP/1.0, read to the end); returns the wall time.
fn get(socket: &Path, path: &str) -> anyhow::Result<Duration> {
    let start = Instant::now();
    let mut s = std::os::unix::net::UnixStream::connect(socket)?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: docker\r\n\r\n")?;
    let mut body = Vec::new();
    s.read_to_end(&mut body)?;
    let took = start.elapsed();
    anyhow::ensure!(body.starts_with(b"HTTP/1.0 200") || body.starts_with(b"HTTP/1.1 200"));
    Ok(took)
}

struct Service(Child);

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn main() -> anyhow::Result<()> {
    let mut argv = std::env::args().skip(1);
    let rounds: usize = argv.next().map(|a| a.parse()).transpose()?.unwrap_or(20);
    let containers: usize = argv.next().map(|a| a.parse()).transpose()?.unwrap_or(200);
    require_built(&berth_binary(), "berth-cli")?;
    let work = tempfile::Builder::new()
        .prefix("berth-bench-api-")
        .tempdir()?;
    let config = work.path().join("docker-config");
    std::fs::create_dir_all(&config)?;
    let tar = work.path().join("busybox.tar");
    berth_testkit::busybox_rootfs_tar(&tar)?;
    let socket = work.path().join("berth.sock");
    let service = Service(
        Command::new(berth_binary())
            .arg("--root")
            .arg(work.path().join("root"))
            .args(["system", "service", "--time", "0"])
            .arg(format!("unix://{}", socket.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting berth system service")?,
    );
    anyhow::ensure!(
        berth_testkit::wait_until(Duration::from_secs(20), || get(&socket, "/_ping").is_ok()),
        "the service did not answer"
    );
    output(docker(&socket, &config).arg("import").arg(&tar).arg(IMAGE))?;
    let Some(dockerd) = Dockerd::start()? else {
        println!("dockerd not installed: no reference, no ratio");
        return Ok(());
    };
    let docker_socket = PathBuf::from(
        dockerd
            .host()
            .strip_prefix("unix://")
            .unwrap_or(&dockerd.host()),
    );
    output(
        docker(&docker_socket, &config)
            .arg("import")
            .arg(&tar)
            .arg(IMAGE),
    )?;
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average before: {}", load.trim());

    let run = |sock: &Path| {
        berth_bench::time_once(
            docker(sock, &config)
                .args(["run", "--rm", "--network", "none", IMAGE, "true"])
                .stdout(Stdio::null()),
        )
    };
    let (ours, theirs) = berth_bench::compare(
        "docker run --rm IMG true (berth service vs dockerd)",
        rounds,
        || run(&socket),
        || run(&docker_socket),
    )?;
    let verdict = |ok: bool| if ok { "met" } else { "NOT met" };
    println!(
        "goal: berth <= 0.2 x dockerd: {}",
        verdict(ours.as_secs_f64() <= 0.2 * theirs.as_secs_f64())
    );

    for sock in [&socket, &docker_socket] {
        for _ in 0..containers {
            output(
                docker(sock, &config)
                    .args(["create", "--network", "none", IMAGE, "true"])
                    .stdout(Stdio::null()),
            )?;
        }
    }
    let (ours, theirs) = berth_bench::compare(
        &format!("GET /containers/json?all=1 with {containers} containers"),
        rounds,
        || get(&socket, "/containers/json?all=1"),
        || get(&docker_socket, "/containers/json?all=1"),
    )?;
    println!(
        "goal: berth <= 0.5 x dockerd: {}",
        verdict(ours.as_secs_f64() <= 0.5 * theirs.as_secs_f64())
    );
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average after: {}", load.trim());
    for sock in [&socket, &docker_socket] {
        let _ = docker(sock, &config)
            .args(["container", "prune", "-f"])
            .output();
    }
    drop(service);
    berth_testkit::unmount_below(work.path());
    Ok(())
}
