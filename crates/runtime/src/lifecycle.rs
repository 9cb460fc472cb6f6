//! Operations on an existing container, driven from its state dir: start (release the init
//! through the exec fifo), state, kill, delete, pause/resume, update, list, processes, stats.

use crate::cgroup;
use crate::error::{Result, RuntimeError};
use crate::state::{self, ContainerState, Status, StoredState, EXEC_FIFO};
use crate::sys;
use crate::Runtime;
use rustix::event::{PollFd, PollFlags};
use rustix::fd::OwnedFd;
use rustix::fs::{Mode, OFlags};
use std::time::Duration;

fn invalid(id: &str, reason: impl Into<String>) -> RuntimeError {
    RuntimeError::InvalidState {
        id: id.to_owned(),
        reason: reason.into(),
    }
}

/// A pidfd on the init, checked to be our init (not a recycled pid).
fn init_pidfd(st: &StoredState) -> Option<OwnedFd> {
    let fd = sys::pidfd_open(st.init_pid).ok()?;
    st.init_alive().then_some(fd)
}

pub fn start(rt: &Runtime, id: &str) -> Result<()> {
    let dir = rt.dir(id);
    let st = state::load(&dir, id)?;
    match st.status(&dir) {
        Status::Created => {}
        Status::Stopped => return Err(invalid(id, "cannot start a container that has stopped")),
        _ => return Err(invalid(id, "cannot start an already running container")),
    }
    // Hold the init by a pidfd BEFORE opening the fifo: the open for reading is what releases
    // the init (its blocking open for writing returns), so a short-lived process can have run
    // and exited by the time we would look at it afterwards. Checking it after the open made
    // a racing `start` report "stopped" for a container it had just started.
    let pidfd =
        init_pidfd(&st).ok_or_else(|| invalid(id, "cannot start a container that has stopped"))?;
    let fifo_path = dir.join(EXEC_FIFO);
    let fifo = rustix::fs::open(
        &fifo_path,
        OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| RuntimeError::io(&fifo_path, e.into()))?;
    loop {
        let mut fds = [
            PollFd::new(&fifo, PollFlags::IN),
            PollFd::new(&pidfd, PollFlags::IN),
        ];
        match rustix::event::poll(&mut fds, None) {
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(RuntimeError::sys("waiting for container init", e)),
            Ok(_) => {}
        }
        let init_exited = fds[1].revents().contains(PollFlags::IN);
        // The init writes its byte before it execs, so once it has exited the byte (if it was
        // written) is already in the fifo: read before judging the exit.
        let mut buf = [0u8; 1];
        match rustix::io::read(&fifo, &mut buf) {
            Ok(1) => break,
            Ok(_) | Err(rustix::io::Errno::AGAIN) => {}
            Err(e) => return Err(RuntimeError::io(&fifo_path, e.into())),
        }
        if init_exited {
            return Err(invalid(id, "container init exited before start"));
        }
    }
    let _ = std::fs::remove_file(&fifo_path);
    poststart(&dir, &st);
    Ok(())
}

fn poststart(dir: &std::path::Path, st: &StoredState) {
    if let Some(h) = st.hooks.as_ref().and_then(|h| h.poststart().clone()) {
        let mut view = st.view(dir);
        view.status = Status::Running;
        if let Err(e) = crate::hooks::run_all(&h, &serde_json::to_vec(&view).unwrap_or_default()) {
            eprintln!("berth-runtime: poststart {e}");
        }
    }
}

/// Poststart hooks for a container started without the fifo (`run`).
pub fn run_poststart(rt: &Runtime, id: &str) {
    let dir = rt.dir(id);
    if let Ok(st) = state::load(&dir, id) {
        poststart(&dir, &st);
    }
}

pub fn state(rt: &Runtime, id: &str) -> Result<ContainerState> {
    let dir = rt.dir(id);
    Ok(state::load(&dir, id)?.view(&dir))
}

pub fn kill(rt: &Runtime, id: &str, signal: i32, all: bool) -> Result<()> {
    let dir = rt.dir(id);
    let st = state::load(&dir, id)?;
    let status = st.status(&dir);
    if all {
        let cg = cgroup::open(&st.cgroups_path)?;
        let pids = cg
            .pids()
            .map_err(|e| cgroup::cgroup_error(&st.cgroups_path, e))?;
        if pids.is_empty() && status == Status::Stopped {
            return Err(invalid(id, "container not running"));
        }
        for pid in pids {
            // SAFETY: kill(2) on a pid from the container's cgroup.
            unsafe { libc::kill(pid, signal) };
        }
        if status == Status::Paused && signal == libc::SIGKILL {
            let _ = cg.thaw();
        }
        return Ok(());
    }
    if status == Status::Stopped {
        return Err(invalid(id, "container not running"));
    }
    let pidfd = init_pidfd(&st).ok_or_else(|| invalid(id, "container not running"))?;
    sys::pidfd_send_signal(&pidfd, signal)
        .map_err(|e| RuntimeError::sys(format!("signal {signal} to init of {id}"), e))
}

pub fn delete(rt: &Runtime, id: &str, force: bool) -> Result<()> {
    let dir = rt.dir(id);
    let st = state::load(&dir, id)?;
    let status = st.status(&dir);
    match status {
        Status::Stopped => {}
        Status::Created => kill_and_wait(&st)?,
        _ if force => kill_and_wait(&st)?,
        s => {
            return Err(invalid(
                id,
                format!("cannot delete container {id} that is not stopped: {s}"),
            ))
        }
    }
    if let Some(h) = st.hooks.as_ref().and_then(|h| h.poststop().clone()) {
        let mut view = st.view(&dir);
        view.status = Status::Stopped;
        if let Err(e) = crate::hooks::run_all(&h, &serde_json::to_vec(&view).unwrap_or_default()) {
            eprintln!("berth-runtime: poststop {e}");
        }
    }
    if let Ok(cg) = cgroup::open(&st.cgroups_path) {
        // Processes other than the init may linger a moment after SIGKILL.
        for _ in 0..200 {
            match cg.pids() {
                Ok(p) if !p.is_empty() => {
                    for pid in p {
                        // SAFETY: kill(2) on a pid from the container's cgroup.
                        unsafe { libc::kill(pid, libc::SIGKILL) };
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
                _ => break,
            }
        }
        cg.destroy()
            .map_err(|e| cgroup::cgroup_error(&st.cgroups_path, e))?;
    }
    std::fs::remove_dir_all(&dir).map_err(|e| RuntimeError::io(&dir, e))
}

/// SIGKILLs everything in the container and waits for the init to exit.
fn kill_and_wait(st: &StoredState) -> Result<()> {
    let pidfd = init_pidfd(st);
    if let Ok(cg) = cgroup::open(&st.cgroups_path) {
        for pid in cg.pids().unwrap_or_default() {
            // SAFETY: kill(2) on a pid from the container's cgroup.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        if cg.is_frozen().unwrap_or(false) {
            let _ = cg.thaw();
        }
    }
    if let Some(fd) = pidfd {
        let _ = sys::pidfd_send_signal(&fd, libc::SIGKILL);
        sys::wait_pidfd(&fd, Some(Duration::from_secs(10)))
            .map_err(|e| RuntimeError::sys("waiting for container init", e))?;
    }
    Ok(())
}

pub fn pause(rt: &Runtime, id: &str) -> Result<()> {
    let dir = rt.dir(id);
    let st = state::load(&dir, id)?;
    match st.status(&dir) {
        Status::Running | Status::Created => {}
        s => return Err(invalid(id, format!("container not running: {s}"))),
    }
    let cg = cgroup::open(&st.cgroups_path)?;
    cg.freeze()
        .map_err(|e| cgroup::cgroup_error(&st.cgroups_path, e))
}

pub fn resume(rt: &Runtime, id: &str) -> Result<()> {
    let dir = rt.dir(id);
    let st = state::load(&dir, id)?;
    if st.status(&dir) != Status::Paused {
        return Err(invalid(id, "container not paused"));
    }
    let cg = cgroup::open(&st.cgroups_path)?;
    cg.thaw()
        .map_err(|e| cgroup::cgroup_error(&st.cgroups_path, e))
}

pub fn update(rt: &Runtime, id: &str, resources: &oci_spec::runtime::LinuxResources) -> Result<()> {
    let dir = rt.dir(id);
    let st = state::load(&dir, id)?;
    if st.status(&dir) == Status::Stopped {
        return Err(invalid(id, "container not running"));
    }
    let cg = cgroup::open(&st.cgroups_path)?;
    cg.apply(resources)
        .map_err(|e| cgroup::cgroup_error(&st.cgroups_path, e))
}

pub fn list(rt: &Runtime) -> Result<Vec<ContainerState>> {
    let entries = match std::fs::read_dir(&rt.root) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(RuntimeError::io(&rt.root, e)),
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let Some(id) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if let Ok(st) = state::load(&entry.path(), &id) {
            out.push(st.view(&entry.path()));
        }
    }
    out.sort_by(|a, b| a.created.cmp(&b.created).then(a.id.cmp(&b.id)));
    Ok(out)
}

pub fn processes(rt: &Runtime, id: &str) -> Result<Vec<i32>> {
    let st = state::load(&rt.dir(id), id)?;
    let cg = cgroup::open(&st.cgroups_path)?;
    cg.pids()
        .map_err(|e| cgroup::cgroup_error(&st.cgroups_path, e))
}

pub fn stats(rt: &Runtime, id: &str) -> Result<berth_cgroups::Stats> {
    let st = state::load(&rt.dir(id), id)?;
    let cg = cgroup::open(&st.cgroups_path)?;
    cg.stats()
        .map_err(|e| cgroup::cgroup_error(&st.cgroups_path, e))
}

/// OOM kills so far (for `events`).
pub fn oom_kills(rt: &Runtime, id: &str) -> Result<u64> {
    let st = state::load(&rt.dir(id), id)?;
    let cg = cgroup::open(&st.cgroups_path)?;
    cg.oom_kill_count()
        .map_err(|e| cgroup::cgroup_error(&st.cgroups_path, e))
}
