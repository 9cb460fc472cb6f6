//! Shared helpers for Berth's benchmarks: timing a command many times, alternating with a
//! reference implementation, and printing medians and their ratio.
use std::process::Command;
use std::time::{Duration, Instant};

/// Runs `cmd` once, returning its wall time; fails when it exits non-zero.
pub fn time_once(cmd: &mut Command) -> anyhow::Result<Duration> {
    let start = Instant::now();
    let status = cmd.status()?;
    let took = start.elapsed();
    anyhow::ensure!(status.success(), "{cmd:?} failed: {status}");
    Ok(took)
}

/// Median of `samples` (which it sorts).
pub fn median(samples: &mut [Duration]) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
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
        ma.as_secs_f64() * 1e3,
        mb.as_secs_f64() * 1e3,
        ma.as_secs_f64() / mb.as_secs_f64()
    );
    Ok((ma, mb))
}
