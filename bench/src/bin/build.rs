//! Benchmark: `berth build` vs `docker build` with the classic builder (`DOCKER_BUILDKIT=0`) on
//! the same small multi-step Dockerfile and context, both on the same busybox base: a cached
//! rebuild (every step from the cache) and a full build (`--no-cache`), alternated, medians and
//! ratios printed. Goal: cached rebuild ≤ 0.2 × Docker's.
//! Build first: `cargo build --release -p berth-cli`. The binary is `$BERTH` or
//! `target/release/berth`. Usage: `build [CACHED_ROUNDS] [FULL_ROUNDS]` (defaults 15 and 5). Run as
//! root. Cargo reserves the bin name `build`, so this one is `build_bench`:
//! `cargo run --release -p berth-bench --bin build_bench`.
use anyhow::Context;
use berth_bench::{berth_binary, median, require_built};
use berth_testkit::dockerd::Dockerd;
use std::path::Path;
use std::process::{Command, Stdio};

const DOCKERFILE: &str = r#"FROM bb
ARG VERSION=1
ENV APP=/app MODE=bench
WORKDIR $APP
COPY config.txt .
COPY src/ ./src/
RUN echo "version $VERSION" > version.txt && ls src > manifest.txt
RUN wc -l src/* > counts.txt
USER tester
EXPOSE 8080
CMD ["sh", "-c", "cat /app/version.txt"]
"#;

fn quiet(cmd: &mut Command) -> &mut Command {
    cmd.stdout(Stdio::null()).stderr(Stdio::null())
}

fn main() -> anyhow::Result<()> {
    let mut argv = std::env::args().skip(1);
    let cached_rounds: usize = argv.next().map(|a| a.parse()).transpose()?.unwrap_or(15);
    let full_rounds: usize = argv.next().map(|a| a.parse()).transpose()?.unwrap_or(5);
    let berth = berth_binary();
    require_built(&berth, "berth-cli")?;

    let work = tempfile::Builder::new()
        .prefix("berth-bench-build-")
        .tempdir()?;
    let base = work.path().join("bb.tar");
    berth_testkit::busybox_rootfs_tar(&base)?;
    let ctx = work.path().join("ctx");
    std::fs::create_dir_all(ctx.join("src"))?;
    std::fs::write(ctx.join("Dockerfile"), DOCKERFILE)?;
    std::fs::write(ctx.join("config.txt"), "key=value\n")?;
    for i in 0..20 {
        std::fs::write(
            ctx.join(format!("src/file{i:02}.txt")),
            format!("line {i}\n").repeat(50),
        )?;
    }
    let root = work.path().join("berth-root");
    let berth_cmd = |root: &Path| {
        let mut c = Command::new(&berth);
        c.arg("--root").arg(root);
        c
    };
    let status = quiet(berth_cmd(&root).arg("import").arg(&base).arg("bb")).status()?;
    anyhow::ensure!(status.success(), "berth import failed");

    let time = |cmd: &mut Command| berth_bench::time_once(quiet(cmd));
    let berth_build = |extra: &[&str]| {
        let mut c = berth_cmd(&root);
        c.arg("build").args(extra).args(["-t", "bench"]).arg(&ctx);
        c
    };
    let Some(docker) = Dockerd::start().context("starting dockerd")? else {
        println!("dockerd missing: timing berth alone");
        let mut samples = Vec::new();
        for _ in 0..cached_rounds {
            samples.push(time(&mut berth_build(&[]))?);
        }
        println!(
            "cached rebuild: berth median {:.2} ms",
            median(&mut samples).as_secs_f64() * 1e3
        );
        return Ok(());
    };
    let status = quiet(docker.docker().arg("import").arg(&base).arg("bb")).status()?;
    anyhow::ensure!(status.success(), "docker import failed");
    let docker_build = |extra: &[&str]| {
        let mut c = docker.docker();
        c.arg("build").args(extra).args(["-t", "bench"]).arg(&ctx);
        c
    };
    // Fill both caches.
    time(&mut berth_build(&[]))?;
    time(&mut docker_build(&[]))?;

    let (cached_ours, cached_theirs) = berth_bench::compare(
        "build, cached rebuild (berth vs docker classic)",
        cached_rounds,
        || time(&mut berth_build(&[])),
        || time(&mut docker_build(&[])),
    )?;
    let (full_ours, full_theirs) = berth_bench::compare(
        "build, full --no-cache (berth vs docker classic)",
        full_rounds,
        || time(&mut berth_build(&["--no-cache"])),
        || time(&mut docker_build(&["--no-cache"])),
    )?;
    let cached_ratio = cached_ours.as_secs_f64() / cached_theirs.as_secs_f64();
    let full_ratio = full_ours.as_secs_f64() / full_theirs.as_secs_f64();
    println!(
        "summary: cached ratio {cached_ratio:.3} (goal <= 0.2: {}), full ratio {full_ratio:.3}",
        if cached_ratio <= 0.2 {
            "met"
        } else {
            "NOT met"
        }
    );
    berth_testkit::unmount_below(work.path());
    Ok(())
}
