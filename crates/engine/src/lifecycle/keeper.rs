//! The keeper: a tiny process that is the parent of a container's monitor and a child
//! subreaper, so that when the monitor is killed the container's init (the monitor's child) is
//! adopted by the keeper instead of the host's init, and its exit status is not lost.
//!
//! ```text
//! caller ─fork─► keeper (setsid, PR_SET_CHILD_SUBREAPER) ─fork─► monitor ─► runtime ─► init
//! ```
//!
//! While the monitor lives the keeper only waits for it (one blocked `waitpid`, no timers, no
//! file descriptors of its own). The monitor names it as the heir of its `monitor-<id>` intent,
//! so no recovery pass elsewhere judges the container while the keeper can still learn how it
//! ended. When the monitor exits having finished (its intent dropped), the keeper exits too.
//! When the monitor dies with its intent still there (killed), the keeper takes over: it owns
//! the intent, stands in the record as the container's monitor (so `wait`, `logs -f` and the
//! status read it as the witness), reaps the init when it exits, writes the exit-code file and
//! then does what the monitor would have through `recovery::finish_after_monitor`: records the
//! exit, cleans up, removes a `--rm` container, or starts a `--restart` one again (with a new
//! keeper and monitor). The container's output has no reader once its monitor is gone: it is
//! not logged (Docker's containers lose their shim's pipes the same way).
//!
//! Killing the keeper as well leaves the container to the next command's recovery pass, which
//! records it `Dead` with the reason once its init is gone.
//!
//! Written by hand: no crate offers a subreaper that hands a container over between processes.
use super::Engine;
use crate::error::{EngineError, Result};
use crate::monitor::MonitorContext;
use berth_image::intent::{self, Intent, Owner};
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

/// Starts the monitor for container `id`. `client` is an already-connected attach client (the
/// foreground `run`), `ready` a pipe on which the monitor reports "0" once the container runs,
/// or "<exit code> <message>" when it could not start.
pub(crate) fn spawn(
    ctx: &MonitorContext,
    id: &str,
    client: Option<OwnedFd>,
    ready: Option<OwnedFd>,
) -> Result<()> {
    if crate::sys::is_single_threaded() {
        fork_monitor(ctx, id, client, ready)
    } else {
        crate::reexec::spawn_monitor(ctx.store.root(), id, client, ready)
    }
}

/// Forks the monitor, under its keeper (see this module: the subreaper that reaps and records
/// the container's end should the monitor be killed). Call only from a single-threaded process.
pub(crate) fn fork_monitor(
    ctx: &MonitorContext,
    id: &str,
    client: Option<OwnedFd>,
    ready: Option<OwnedFd>,
) -> Result<()> {
    fork_keeper(ctx, id, client, ready)
}

/// Forks the keeper, which forks the monitor of container `id` (see `monitor::become_monitor`)
/// and keeps it. Returns once the keeper is forked; the monitor reports on `ready`/`client`
/// as before. Call only from a single-threaded process.
pub(crate) fn fork_keeper(
    ctx: &MonitorContext,
    id: &str,
    client: Option<OwnedFd>,
    ready: Option<OwnedFd>,
) -> Result<()> {
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    // SAFETY: the caller checked that this process is single-threaded, so the child may run
    // ordinary Rust code.
    match unsafe { libc::fork() } {
        -1 => Err(EngineError::last_os(format!(
            "fork of the keeper of container {id}"
        ))),
        0 => {
            let code = keeper_main(ctx, id, client, ready);
            // SAFETY: leaving the forked child without running the parent's atexit handlers.
            unsafe { libc::_exit(code) }
        }
        _ => Ok(()),
    }
}

/// The keeper's life; returns its exit code.
fn keeper_main(
    ctx: &MonitorContext,
    id: &str,
    client: Option<OwnedFd>,
    ready: Option<OwnedFd>,
) -> i32 {
    // The monitor first: it is on the way to the container's start, the keeper's own setup is
    // not (the subreaper flag only matters once the monitor dies, long after its first steps).
    let me = std::process::id() as i32;
    // SAFETY: this process is single-threaded (a fresh fork of a single-threaded caller).
    let monitor = match unsafe { libc::fork() } {
        -1 => {
            let e = EngineError::last_os(format!("fork of the monitor of container {id}"));
            crate::monitor::report_setup_failure(&e, client, ready);
            return 1;
        }
        0 => {
            let keeper = intent::start_time(me).map(|start_time| Owner {
                pid: me,
                start_time,
            });
            let code = crate::monitor::become_monitor(ctx, id, client, ready, keeper);
            // SAFETY: leaving the forked child without running the parent's atexit handlers.
            unsafe { libc::_exit(code) }
        }
        pid => pid,
    };
    // SAFETY: plain syscalls on our own process.
    unsafe {
        libc::setsid();
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    }
    // Nothing of the caller's stdio stays open here (a caller's reader waits for EOF).
    if let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        for fd in 0..=2 {
            let _ = crate::sys::dup_onto(null.as_raw_fd(), fd);
        }
    }
    // The monitor's copies are the ones that count: ours would keep the caller from seeing
    // the ready pipe's end.
    drop(client);
    drop(ready);
    let root = ctx.store.root().to_path_buf();
    if !wait_for_child(monitor) {
        return 0;
    }
    // A monitor that finished dropped its intent (or a newer monitor owns it now).
    if intent::owner(&root, crate::intents::MONITOR, id).is_none_or(|o| o.pid != monitor) {
        return 0;
    }
    let engine = Engine::with_runtime(&root, ctx.runtime.clone());
    match take_over(&engine, id, monitor) {
        Ok(()) => 0,
        Err(e) => {
            say(&engine, id, &format!("{e}"));
            1
        }
    }
}

/// Reaps children (orphans the container leaves are adopted here too) until `pid` exits; false
/// when it is not (or no longer) our child.
fn wait_for_child(pid: i32) -> bool {
    loop {
        let mut status = 0;
        // SAFETY: waitpid on our own children.
        let got = unsafe { libc::waitpid(-1, &mut status, 0) };
        if got == pid {
            return true;
        }
        if got < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return false;
        }
    }
}

/// The monitor died before it finished: keep the container until its init exits, then finish
/// what the monitor would have.
fn take_over(engine: &Engine, id: &str, monitor: i32) -> Result<()> {
    let root = engine.root();
    // From now on the intent is ours (no heir: should we die too, the next command's recovery
    // records what it can). Not being able to write it is no reason to abandon the container.
    let held = Intent::begin(root, crate::intents::MONITOR, id);
    if let Err(e) = &held {
        say(
            engine,
            id,
            &format!("taking over the monitor's intent: {e}"),
        );
    }
    let done = move || {
        if let Ok(intent) = held {
            intent.done();
        }
    };
    say(
        engine,
        id,
        &format!("the monitor (pid {monitor}) died; its keeper keeps the container"),
    );
    let record = match engine.store.load(id) {
        Ok(r) => r,
        Err(_) => {
            // Removed meanwhile: nothing to keep.
            done();
            return Ok(());
        }
    };
    let init = record.state.pid;
    if record.state.running && init > 0 {
        let me = std::process::id() as i32;
        // Failing that (a removal under way), the container is still ours to reap.
        let _ = engine.store.update(id, |r| {
            if r.state.pid == init {
                r.berth_monitor_pid = me;
            }
        });
        if let Some(code) = wait_for_init(&record) {
            crate::record::write_atomic(
                &engine
                    .store
                    .container_dir(id)
                    .join(crate::intents::EXIT_FILE),
                code.to_string().as_bytes(),
            )?;
        }
    }
    // A concurrent `rm` holds the container's lock for its whole removal (it killed the init
    // we just reaped): wait for it, and find nothing left to record.
    match engine.store.lock_container(id) {
        Ok(op) if engine.store.load(id).is_ok() => drop(op),
        _ => {
            done();
            return Ok(());
        }
    }
    super::recovery::finish_after_monitor(engine, id, done)?;
    Ok(())
}

/// Waits for the container's init to exit; its Docker exit code when we reaped it. An init
/// that is not our child (nothing adopted it here) is outlived, and its status is unknown.
fn wait_for_init(record: &crate::record::ContainerRecord) -> Option<i32> {
    let init = record.state.pid;
    loop {
        let mut status = 0;
        // SAFETY: waitpid on one PID; if it is our child it is the container's init (a child's
        // PID cannot be reused before we reap it).
        let got = unsafe { libc::waitpid(init, &mut status, 0) };
        if got == init {
            return crate::sys::decode_wait_status(status);
        }
        if std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            break;
        }
    }
    if record.init_alive() {
        if let Some(pidfd) = rustix::process::Pid::from_raw(init)
            .and_then(|p| rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty()).ok())
        {
            let mut fds = [libc::pollfd {
                fd: pidfd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            }];
            // SAFETY: a valid pollfd array; a pidfd polls readable once the process exits.
            while unsafe { libc::poll(fds.as_mut_ptr(), 1, -1) } < 0 {}
        }
    }
    None
}

/// Leaves a line in the container's `monitor.log` (the keeper's stderr is /dev/null).
fn say(engine: &Engine, id: &str, message: &str) {
    let path: &Path = &engine.store.container_dir(id).join("monitor.log");
    if let Ok(mut log) = std::fs::OpenOptions::new().append(true).open(path) {
        let _ = writeln!(log, "keeper {}: {message}", std::process::id());
    }
}
