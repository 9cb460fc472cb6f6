//! Re-executing a program at one of the engine's hidden entry points (see `hidden_entry`, which
//! serves them): which program, the entry names, and starting a container's monitor that way.
//! The spawn uses `posix_spawn` (std's `Command` with no pre-exec hook), never a bare fork, so
//! a multithreaded caller may use it.
use crate::error::{EngineError, Result};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};

/// argv\[1\] of the monitor entry point.
pub const MONITOR_ENTRY: &str = "__berth-monitor";
/// argv\[1\] of the cgroup-priming entry point.
pub const PRIME_CGROUP_ENTRY: &str = "__berth-prime-cgroup";

/// Set once this program's `main` has offered to serve the entry points.
static SERVES_ENTRY_POINTS: AtomicBool = AtomicBool::new(false);

/// Records that this program's `main` serves the entry points (`hidden_entry::run_if_requested`
/// returned): from then on the engine re-executes this very program.
pub(crate) fn serve_entry_points() {
    SERVES_ENTRY_POINTS.store(true, Ordering::SeqCst);
}

/// The program to re-execute for a hidden entry point.
pub fn entry_program() -> Option<PathBuf> {
    if let Some(explicit) = std::env::var_os("BERTH_BINARY").filter(|b| !b.is_empty()) {
        return Some(PathBuf::from(explicit));
    }
    if SERVES_ENTRY_POINTS.load(Ordering::SeqCst) {
        return Some(PathBuf::from("/proc/self/exe"));
    }
    let exe = std::env::current_exe().ok()?;
    exe.parent()
        .map(|dir| dir.join("berth"))
        .filter(|berth| berth.is_file())
}

/// Starts the monitor of container `id` through the hidden entry point; returns once the
/// entry process has forked it.
pub(crate) fn spawn_monitor(
    root: &Path,
    id: &str,
    client: Option<OwnedFd>,
    ready: Option<OwnedFd>,
) -> Result<()> {
    let program = entry_program().ok_or_else(|| EngineError::MonitorLaunch {
        id: id.to_string(),
        reason: "no program serves berth's hidden entry points: call \
                 berth_engine::hidden_entry::run_if_requested() at the start of main, or set \
                 BERTH_BINARY to a berth binary"
            .into(),
    })?;
    let mut cmd = Command::new(&program);
    cmd.arg(MONITOR_ENTRY).arg("--root").arg(root).arg(id);
    match client {
        Some(fd) => {
            cmd.arg("--client").stdin(Stdio::from(fd));
        }
        None => {
            cmd.stdin(Stdio::null());
        }
    }
    match ready {
        Some(fd) => {
            cmd.arg("--ready").stdout(Stdio::from(fd));
        }
        None => {
            cmd.stdout(Stdio::null());
        }
    }
    cmd.stderr(Stdio::inherit());
    let status = cmd.status().map_err(|e| EngineError::MonitorLaunch {
        id: id.to_string(),
        reason: format!("running {}: {e}", program.display()),
    })?;
    if !status.success() {
        return Err(EngineError::MonitorLaunch {
            id: id.to_string(),
            reason: format!("{} {MONITOR_ENTRY} exited with {status}", program.display()),
        });
    }
    Ok(())
}
