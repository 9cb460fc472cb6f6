//! Shared helpers for Berth's benchmarks: where the binaries under test are, running and timing
//! commands, generating payloads, and printing medians and their ratio.
use anyhow::Context;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The `berth` binary under test: `$BERTH` or `target/release/berth`.
pub fn berth_binary() -> PathBuf {
    release_binary("BERTH", "berth")
}

/// The `berth-runtime` binary under test: `$BERTH_RUNTIME` or `target/release/berth-runtime`.
pub fn runtime_binary() -> PathBuf {
    release_binary("BERTH_RUNTIME", "berth-runtime")
}

fn release_binary(var: &str, name: &str) -> PathBuf {
    std::env::var_os(var).map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../target/release")
            .join(name)
    })
}

/// Fails with the build command to run when `binary` is missing.
pub fn require_built(binary: &Path, package: &str) -> anyhow::Result<()> {
    anyhow::ensure!(
        binary.exists(),
        "{} missing: cargo build --release -p {package}",
        binary.display()
    );
    Ok(())
}

/// `berth --root ROOT` with stdin closed.
pub fn berth(root: &Path) -> Command {
    let mut cmd = Command::new(berth_binary());
    cmd.arg("--root").arg(root).stdin(Stdio::null());
    cmd
}

/// Runs `cmd` to completion; its stdout, trimmed. Fails (with its stderr) when it exits non-zero.
pub fn output(cmd: &mut Command) -> anyhow::Result<String> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    anyhow::ensure!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Runs `cmd` with inherited output; fails when it exits non-zero.
pub fn run_ok(cmd: &mut Command) -> anyhow::Result<()> {
    let status = cmd.status().with_context(|| format!("running {cmd:?}"))?;
    anyhow::ensure!(status.success(), "{cmd:?} failed: {status}");
    Ok(())
}

/// Runs `cmd` once, returning its wall time; fails when it exits non-zero.
pub fn time_once(cmd: &mut Command) -> anyhow::Result<Duration> {
    let start = Instant::now();
    let status = cmd.status()?;
    let took = start.elapsed();
    anyhow::ensure!(status.success(), "{cmd:?} failed: {status}");
    Ok(took)
}

/// Runs `cmd` once with stdout discarded and stderr kept for the error; its wall time.
pub fn timed(cmd: &mut Command) -> anyhow::Result<Duration> {
    cmd.stdout(Stdio::null()).stderr(Stdio::piped());
    let start = Instant::now();
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    let took = start.elapsed();
    anyhow::ensure!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(took)
}

/// Median of `samples` (which it sorts).
pub fn median(samples: &mut [Duration]) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// Runs `f` once to warm up, then `rounds` times; the median.
pub fn median_of(
    rounds: usize,
    mut f: impl FnMut() -> anyhow::Result<Duration>,
) -> anyhow::Result<Duration> {
    f()?;
    let mut samples: Vec<Duration> = (0..rounds).map(|_| f()).collect::<anyhow::Result<_>>()?;
    Ok(median(&mut samples))
}

/// Milliseconds, for printing.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Alternates `ours` and `theirs` `rounds` times (after one warm-up each), then prints both
/// medians in milliseconds and the ratio ours/theirs. Returns (ours, theirs).
pub fn compare(
    label: &str,
    rounds: usize,
    mut ours: impl FnMut() -> anyhow::Result<Duration>,
    mut theirs: impl FnMut() -> anyhow::Result<Duration>,
) -> anyhow::Result<(Duration, Duration)> {
    ours()?;
    theirs()?;
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        a.push(ours()?);
        b.push(theirs()?);
    }
    let (ma, mb) = (median(&mut a), median(&mut b));
    println!(
        "{label}: berth median {:.2} ms, reference median {:.2} ms, ratio {:.3}",
        ms(ma),
        ms(mb),
        ma.as_secs_f64() / mb.as_secs_f64()
    );
    Ok((ma, mb))
}

/// xorshift64*: fast incompressible bytes without a dependency.
pub struct Noise(pub u64);

impl Noise {
    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            let v = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

/// Hex SHA-256 of a file, by `sha256sum` (what a shell user would compare with).
pub fn sha256_of(path: &Path) -> anyhow::Result<String> {
    let out = output(Command::new("sha256sum").arg(path))?;
    Ok(out
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string())
}

/// Unmounts whatever is mounted below `p`, then removes it (best effort).
pub fn drop_tree(p: &Path) {
    berth_testkit::unmount_below(p);
    let _ = std::fs::remove_dir_all(p);
}

/// The `n`th command-line argument (1-based) as a number, or `default` when it is absent.
pub fn numeric_arg(n: usize, name: &str, default: usize) -> anyhow::Result<usize> {
    std::env::args()
        .nth(n)
        .map(|s| s.parse())
        .transpose()
        .with_context(|| format!("{name} must be a number"))
        .map(|v| v.unwrap_or(default))
}

/// Fills `dir` with `files` files of `size` bytes (random, or compressible text), 100 to a
/// subdirectory, named `d000/f00000`…; the same `seed` gives the same bytes.
pub fn write_payload(
    dir: &Path,
    files: usize,
    size: usize,
    random: bool,
    seed: u64,
) -> anyhow::Result<()> {
    const TEXT: &[u8] = b"berth benchmark payload text ";
    std::fs::create_dir_all(dir)?;
    let mut noise = Noise(seed | 1);
    let mut buf = vec![0u8; size];
    for i in 0..files {
        let sub = dir.join(format!("d{:03}", i / 100));
        std::fs::create_dir_all(&sub)?;
        if random {
            noise.fill(&mut buf);
        } else {
            for (j, b) in buf.iter_mut().enumerate() {
                *b = TEXT[(i + j) % TEXT.len()];
            }
        }
        std::fs::write(sub.join(format!("f{i:05}")), &buf)?;
    }
    Ok(())
}
