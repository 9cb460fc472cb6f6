//! Polling a condition until a deadline: the one loop every "wait until the kernel (or another
//! process) has caught up" uses, with a fixed or exponentially growing pause between checks.
use std::time::{Duration, Instant};

/// How long to pause between checks: from `first`, doubling up to `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub first: Duration,
    pub max: Duration,
}

impl Backoff {
    /// The same pause every time.
    pub const fn fixed(every: Duration) -> Backoff {
        Backoff {
            first: every,
            max: every,
        }
    }

    /// Doubling pauses from `first` up to `max` (quick on the fast path, cheap on the slow).
    pub const fn exponential(first: Duration, max: Duration) -> Backoff {
        Backoff { first, max }
    }
}

/// Calls `check` until it returns `Ok(true)` (→ `Ok(true)`), fails (→ the error), or `timeout`
/// has passed (→ `Ok(false)`). `check` runs at least once, and once more at the deadline.
pub fn try_until<E>(
    timeout: Duration,
    backoff: Backoff,
    mut check: impl FnMut() -> Result<bool, E>,
) -> Result<bool, E> {
    let deadline = Instant::now() + timeout;
    let mut pause = backoff.first;
    loop {
        if check()? {
            return Ok(true);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(false);
        }
        std::thread::sleep(pause.min(left));
        pause = (pause * 2).min(backoff.max);
    }
}

/// [`try_until`] for a check that cannot fail: true when `check` held before `timeout`.
pub fn until(timeout: Duration, backoff: Backoff, mut check: impl FnMut() -> bool) -> bool {
    try_until(timeout, backoff, || {
        Ok::<bool, std::convert::Infallible>(check())
    })
    .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stops_when_the_condition_holds_or_the_time_is_up() {
        let mut n = 0;
        assert!(until(
            Duration::from_secs(5),
            Backoff::fixed(Duration::ZERO),
            || {
                n += 1;
                n == 3
            }
        ));
        assert_eq!(n, 3);
        let start = Instant::now();
        let fast = Backoff::exponential(Duration::from_micros(10), Duration::from_millis(2));
        assert!(!until(Duration::from_millis(20), fast, || false));
        assert!(start.elapsed() >= Duration::from_millis(20));
        assert_eq!(
            try_until(Duration::from_secs(5), fast, || Err::<bool, &str>("broken")),
            Err("broken")
        );
    }
}
