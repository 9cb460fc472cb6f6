//! The hidden entry points a threaded caller re-executes instead of forking into Rust code
//! (a forked child of a multithreaded process may only make async-signal-safe calls):
//!
//! - `<program> __berth-monitor --root DIR ID [--client] [--ready]`: forks the container's
//!   monitor and exits at once. With `--client` its stdin is the foreground attach client's
//!   socket; with `--ready` its stdout is the pipe the monitor reports readiness on.
//! - `<program> __berth-prime-cgroup`: the cgroup head start of `cgroup_prime`.
//! - `<program> __berth-exec-wait --root DIR`: forks the waiter of a detached exec (see
//!   `detached_exec`) and exits at once.
//!
//! `<program>` is `$BERTH_BINARY` when set; else this very program when its `main` called
//! [`run_if_requested`] first (the `berth` CLI does, and so can any program that uses the
//! engine from threads, like Docker's `reexec.Init`); else a `berth` next to this program.
//! Spawning a program at these entry points is `reexec`'s.
use crate::reexec::{MONITOR_ENTRY, PRIME_CGROUP_ENTRY};
use std::ffi::OsString;
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::PathBuf;

pub use crate::reexec::entry_program;

/// Call first thing in `main`: when this process was started as one of the engine's hidden
/// entry points, runs it and exits; otherwise returns, and from then on the engine re-executes
/// this program (rather than look for `berth`) when it must start a monitor from threads.
pub fn run_if_requested() {
    let mut args = std::env::args_os();
    let entry = args.nth(1);
    let rest: Vec<OsString> = args.collect();
    match entry.as_deref().and_then(|e| e.to_str()) {
        Some(MONITOR_ENTRY) => std::process::exit(monitor_main(&rest)),
        Some(crate::detached_exec::EXEC_WAIT_ENTRY) => {
            std::process::exit(crate::detached_exec::waiter_main(&rest))
        }
        Some(PRIME_CGROUP_ENTRY) => {
            crate::cgroup_prime::prime_own_cgroup();
            std::process::exit(0)
        }
        _ => crate::reexec::serve_entry_points(),
    }
}

/// `__berth-monitor --root DIR ID [--client] [--ready]`; returns this process's exit code.
fn monitor_main(args: &[OsString]) -> i32 {
    let mut root = None;
    let mut id = None;
    let (mut client, mut ready) = (false, false);
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.to_str() {
            Some("--root") => root = args.next().map(PathBuf::from),
            Some("--client") => client = true,
            Some("--ready") => ready = true,
            Some(other) if id.is_none() && !other.starts_with('-') => id = Some(other.to_string()),
            _ => {
                eprintln!("{MONITOR_ENTRY}: unexpected argument {arg:?}");
                return 2;
            }
        }
    }
    let (Some(root), Some(id)) = (root, id) else {
        eprintln!("{MONITOR_ENTRY}: usage: {MONITOR_ENTRY} --root DIR ID [--client] [--ready]");
        return 2;
    };
    if !crate::sys::is_single_threaded() {
        eprintln!("{MONITOR_ENTRY}: this process has threads before main; refusing to fork");
        return 1;
    }
    // Our stdin and stdout are the client socket and the ready pipe: move them off 0 and 1,
    // which the monitor points at /dev/null.
    let take = |fd: i32| -> Option<OwnedFd> {
        // SAFETY: F_DUPFD_CLOEXEC of a descriptor our parent gave us; the copy is ours.
        let dup = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
        // SAFETY: `dup` is a fresh descriptor nobody else owns.
        (dup >= 0).then(|| unsafe { OwnedFd::from_raw_fd(dup) })
    };
    let client = if client { take(0) } else { None };
    let ready = if ready { take(1) } else { None };
    let ctx = crate::monitor::MonitorContext {
        store: crate::record::Store::new(&root),
        runtime: crate::runtime_door::from_env(&root),
        layers: crate::layer::Layers::new(&root),
    };
    match crate::lifecycle::keeper::fork_monitor(&ctx, &id, client, ready) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("{MONITOR_ENTRY}: {e}");
            1
        }
    }
}
