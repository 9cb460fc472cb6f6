//! Crash points for tests: when the environment variable `BERTH_FAULT_AT` names a point that a
//! store operation reaches, the process kills itself there with SIGKILL, exactly as a `kill -9`
//! at that instant would. Tests use it to prove that every multi-step write (a layer commit, an
//! import) leaves nothing half-registered wherever it is interrupted. Unset, a point costs one
//! cached comparison.
use std::sync::OnceLock;

/// The variable naming the point to crash at.
pub const FAULT_ENV: &str = "BERTH_FAULT_AT";

/// Dies by SIGKILL when `BERTH_FAULT_AT` equals `name`.
pub fn point(name: &str) {
    static TARGET: OnceLock<Option<String>> = OnceLock::new();
    let target = TARGET.get_or_init(|| std::env::var(FAULT_ENV).ok().filter(|v| !v.is_empty()));
    if target.as_deref() == Some(name) {
        eprintln!("berth: {FAULT_ENV}={name}: killing this process here");
        let _ =
            rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::KILL);
        // SIGKILL cannot be caught; should it somehow return, still stop without unwinding.
        std::process::abort();
    }
}
