//! The per-container monitor (Berth's conmon): a single-threaded, session-leading child
//! subreaper that creates and starts the container through the runtime, keeps its stdio (pipes
//! or a PTY master), writes the json-file or local log, serves attach clients on
//! `containers/<id>/attach.sock`, reaps the init, records exit status / OOMKilled / FinishedAt,
//! applies the restart policy and `--rm` cleanup, and then exits. It never outlives the
//! container's last restart, and it never holds the metadata lock while waiting.
//!
//! How it starts (`spawn`): a single-threaded caller (the CLI) forks it — the fast path. Any
//! other caller (a server, a library user with threads) must not fork into Rust code, so it
//! re-executes a program that serves the hidden entry point (`hidden_entry`) with the attach
//! client and the ready pipe as the new process's stdin and stdout; that process forks the
//! monitor (it is single-threaded) and exits at once, so the caller reaps it right away and the
//! monitor is never the caller's zombie. Either way the fork goes through the keeper (`keeper`):
//! the monitor's parent, a subreaper too, which records the container's end should the monitor
//! be killed. The monitor names it as the heir of its intent.
//!
//! It sees the engine only through `MonitorContext`: the record store, the runtime door and
//! the layers.
use crate::attach::{self, FrameBuffer};
use crate::error::{EngineError, Result};
use crate::layer::Layers;
use crate::logs::LogWriter;
use crate::options::HostConfig;
use crate::record::{ContainerRecord, Store};
use crate::runtime_door::OciRuntime;
use berth_common::time::now_rfc3339;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod finish;
mod health_check;
mod io;
mod start;

/// What the monitor needs of the engine, and nothing more.
#[derive(Debug, Clone)]
pub(crate) struct MonitorContext {
    pub store: Store,
    pub runtime: Arc<dyn OciRuntime>,
    pub layers: Layers,
}

/// Runs the monitor in this (new, single-threaded) process; returns its exit code. `keeper`
/// is the process that takes the container over should this one die (named as the heir of the
/// monitor intent).
pub(crate) fn become_monitor(
    ctx: &MonitorContext,
    id: &str,
    client: Option<OwnedFd>,
    ready: Option<OwnedFd>,
    keeper: Option<berth_image::intent::Owner>,
) -> i32 {
    // SAFETY: plain syscalls on our own process.
    unsafe {
        libc::setsid();
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
        // Everything we hold stays ours; nothing leaks into the runtime or the container.
        libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        );
    }
    let dir = ctx.store.container_dir(id);
    if let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        let _ = crate::sys::dup_onto(null.as_raw_fd(), 0);
        let _ = crate::sys::dup_onto(null.as_raw_fd(), 1);
    }
    if let Ok(log) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("monitor.log"))
    {
        let _ = crate::sys::dup_onto(log.as_raw_fd(), 2);
    }
    // One monitor per container: a concurrent start finds the other one and is a no-op.
    let op = match sole_monitor(ctx, id) {
        Ok(Some(op)) => op,
        Ok(None) => {
            if let Some(ready) = ready {
                let _ = std::fs::File::from(ready).write_all(b"0\n");
            }
            return 0;
        }
        Err(e) => {
            eprintln!("monitor {id}: {e}");
            report_setup_failure(&e, client, ready);
            return 1;
        }
    };
    let mut monitor = match Monitor::new(ctx.clone(), id, client, ready) {
        Ok(m) => m,
        Err((e, client, ready)) => {
            eprintln!("monitor {id}: {e}");
            report_setup_failure(&e, client, ready);
            return 1;
        }
    };
    // While this process lives the container has a witness; once it is gone (killed), the
    // next command reconstructs the container's end from what is left (see `recovery`).
    let (root, kind) = (ctx.store.root(), crate::intents::MONITOR);
    let intent = match keeper {
        Some(heir) => berth_image::intent::Intent::begin_with_heir(root, kind, id, heir),
        None => berth_image::intent::Intent::begin(root, kind, id),
    }
    .ok();
    drop(op);
    monitor.run();
    if let Some(i) = intent {
        i.done();
    }
    0
}

/// Takes the container's lock once no other live monitor serves it; None when another one
/// does and the container runs (or that monitor is still bringing it up after a while): this
/// start is then a no-op, as Docker's start of a running container is. Another monitor that is
/// finishing (its container stopped) is waited for, briefly, with the lock released.
fn sole_monitor(ctx: &MonitorContext, id: &str) -> Result<Option<crate::record::MetadataLock>> {
    let root = ctx.store.root();
    let me = std::process::id() as i32;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let op = ctx.store.lock_container(id)?;
        let other = berth_image::intent::owner(root, crate::intents::MONITOR, id)
            .filter(|o| o.pid != me && o.alive());
        if other.is_none() {
            return Ok(Some(op));
        }
        let record = ctx.store.load(id)?;
        if record.is_running() || record.state.restarting || Instant::now() > deadline {
            return Ok(None);
        }
        drop(op);
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Tells whoever waits that the monitor could not even set up (before any container start).
pub(crate) fn report_setup_failure(
    e: &EngineError,
    client: Option<OwnedFd>,
    ready: Option<OwnedFd>,
) {
    let message = format!("container monitor: {e}");
    if let Some(ready) = ready {
        let _ = std::fs::File::from(ready).write_all(format!("125 {message}\n").as_bytes());
    }
    if let Some(client) = client {
        let mut stream = UnixStream::from(client);
        let mut payload = attach::i32_payload(125).to_vec();
        payload.extend_from_slice(message.as_bytes());
        let _ = attach::write_frame(&mut stream, attach::ERROR, &payload);
    }
}

struct Client {
    stream: UnixStream,
    frames: FrameBuffer,
    wants: u8,
}

/// The container's end of its stdio, as the monitor holds it.
#[derive(Default)]
struct ContainerIo {
    stdin: Option<OwnedFd>,
    stdout: Option<OwnedFd>,
    stderr: Option<OwnedFd>,
    /// The PTY master for `-t` (stdin and stdout both go through it).
    pty: Option<OwnedFd>,
    /// The PTY reported hang-up (every slave closed): stop polling it.
    pty_hangup: bool,
}

struct Monitor {
    ctx: MonitorContext,
    id: String,
    host: HostConfig,
    tty: bool,
    open_stdin: bool,
    listener: Option<UnixListener>,
    clients: Vec<Client>,
    ready: Option<OwnedFd>,
    signals: OwnedFd,
    log: Option<LogWriter>,
    manually_stopped: bool,
    window: Option<(u16, u16)>,
    /// Files of a removed `--rm` container, freed when the monitor exits (see deferred_free).
    held: crate::deferred_free::Held,
    /// The health checker of the current run, when the container has a health check.
    health: Option<health_check::Checker>,
}

/// A failed setup, with the channels to report it on.
type SetupFailure = (EngineError, Option<OwnedFd>, Option<OwnedFd>);

impl Monitor {
    fn new(
        ctx: MonitorContext,
        id: &str,
        client: Option<OwnedFd>,
        ready: Option<OwnedFd>,
    ) -> std::result::Result<Monitor, SetupFailure> {
        let opened = (|| {
            let record = ctx.store.load(id)?;
            let host = ctx.store.load_host_config(id)?;
            let dir = ctx.store.container_dir(id);
            let sock = dir.join("attach.sock");
            let _ = std::fs::remove_file(&sock);
            let short = crate::sys::socket_path(&sock)?;
            let listener =
                UnixListener::bind(&short.path).map_err(|e| EngineError::io(&sock, e))?;
            listener
                .set_nonblocking(true)
                .map_err(|e| EngineError::io(&sock, e))?;
            let settings = crate::logs::LogSettings::of(&host.log_config)?;
            let log = match settings.format {
                Some(format) => {
                    let file = crate::logs::LogFile::of(&ctx.store, id, format);
                    Some(LogWriter::create(&file, settings.rotation)?)
                }
                None => None,
            };
            let signals = crate::sys::signalfd_for(&[
                libc::SIGCHLD,
                libc::SIGTERM,
                libc::SIGINT,
                libc::SIGHUP,
            ])?;
            Ok((record, host, listener, log, signals))
        })();
        let (record, host, listener, log, signals) = match opened {
            Ok(parts) => parts,
            Err(e) => return Err((e, client, ready)),
        };
        let listener = Some(listener);
        let mut clients = Vec::new();
        let mut window = None;
        if let Some(fd) = client {
            let mut stream = UnixStream::from(fd);
            // The foreground client says at once what it wants; wait for that before starting so
            // not a byte of output is missed.
            let mut wants = attach::WANT_STDOUT | attach::WANT_STDERR;
            let mut frames = FrameBuffer::default();
            while let Ok(Some((kind, payload))) = attach::read_frame(&mut stream) {
                match kind {
                    attach::HELLO => {
                        wants = payload.first().copied().unwrap_or(wants);
                        break;
                    }
                    attach::RESIZE if payload.len() >= 4 => {
                        window = Some((
                            u16::from_be_bytes([payload[0], payload[1]]),
                            u16::from_be_bytes([payload[2], payload[3]]),
                        ));
                    }
                    _ => {}
                }
            }
            let _ = stream.set_nonblocking(true);
            frames.push(&[]);
            clients.push(Client {
                stream,
                frames,
                wants,
            });
        }
        Ok(Monitor {
            ctx,
            id: id.to_string(),
            tty: record.config.tty,
            open_stdin: record.config.open_stdin,
            host,
            listener,
            clients,
            ready,
            signals,
            log,
            manually_stopped: false,
            window,
            held: Default::default(),
            health: None,
        })
    }

    fn run(&mut self) {
        let mut delay = Duration::from_millis(100);
        loop {
            let started = Instant::now();
            let outcome = self.start_once();
            let (code, error) = match outcome {
                Ok(None) => {
                    // Another start won the race: the container runs, ours is a no-op.
                    if let Some(ready) = self.ready.take() {
                        let _ = std::fs::File::from(ready).write_all(b"0\n");
                    }
                    self.clients.clear();
                    return;
                }
                Ok(Some((pid, io))) => {
                    let code = self.supervise(pid, io);
                    // The exit is known only to us until the record says it: leave it where
                    // the next command finds it should we be killed before then.
                    let _ = crate::record::write_atomic(
                        &self
                            .ctx
                            .store
                            .container_dir(&self.id)
                            .join(crate::intents::EXIT_FILE),
                        code.to_string().as_bytes(),
                    );
                    (code, None)
                }
                Err(e) => (e.command_failure_code(), Some(e.to_string())),
            };
            if let Some(mut checker) = self.health.take() {
                checker.stop();
            }
            // `--rm`: the container goes before anyone hears how it ended, so a foreground
            // `run --rm` returns only once its record, name, mount, layer and cgroup are gone
            // (Docker's CLI waits for the "removed" condition). Recording the exit first would
            // only be undone; if removal fails, the exit is recorded below instead.
            let before_removal = if self.host.auto_remove {
                self.ctx.store.load(&self.id).ok()
            } else {
                None
            };
            if self.host.auto_remove && self.remove_container() {
                if let Some(record) = before_removal {
                    let root = self.ctx.store.root();
                    if error.is_none() {
                        let exit = [("exitCode", code.to_string())];
                        crate::events::container(root, &record, "die", &exit);
                        crate::volumes::record_mount_events(root, &record, false);
                    }
                    crate::events::container(root, &record, "destroy", &[]);
                }
                self.report(code, error);
                return;
            }
            let restart_count = match self.finish_run(code, error.as_deref()) {
                Ok(count) => count,
                Err(e) => {
                    // Without its record the container cannot be restarted or judged: stop
                    // here and say why, rather than act on a default record.
                    let message = format!("container {}: recording its exit: {e}", self.id);
                    eprintln!("monitor: {message}");
                    self.final_cleanup(code, Some(error.unwrap_or(message)));
                    return;
                }
            };
            if error.is_none() && self.should_restart(code, restart_count) {
                if started.elapsed() > Duration::from_secs(10) {
                    delay = Duration::from_millis(100);
                }
                let _ = self.ctx.store.update(&self.id, |r| {
                    r.state.restarting = true;
                    r.restart_count += 1;
                });
                self.wait_serving(delay);
                delay = (delay * 2).min(Duration::from_secs(60));
                if self.manually_stopped {
                    let _ = self
                        .ctx
                        .store
                        .update(&self.id, |r| r.state.restarting = false);
                    self.final_cleanup(code, None);
                    return;
                }
                continue;
            }
            self.final_cleanup(code, error);
            return;
        }
    }

    fn should_restart(&self, code: i32, count: i64) -> bool {
        if self.manually_stopped || self.host.auto_remove {
            return false;
        }
        let policy = &self.host.restart_policy;
        match policy.name.as_str() {
            "always" | "unless-stopped" => true,
            "on-failure" => {
                code != 0 && (policy.maximum_retry_count == 0 || count < policy.maximum_retry_count)
            }
            _ => false,
        }
    }
}

/// Whether the container's processes live in a PID namespace not its own (`--pid host` or
/// `--pid container:…`), where they can outlive its init.
fn shares_pid_namespace(host: &HostConfig) -> bool {
    host.pid_mode == "host" || host.pid_mode.starts_with("container:")
}

/// What can be read from `fd` right now, as text.
fn read_available(fd: RawFd) -> String {
    crate::sys::set_nonblocking(fd);
    let mut buf = vec![0u8; 8192];
    let mut out = Vec::new();
    while let Ok(n) = crate::sys::read_fd(fd, &mut buf) {
        if n == 0 || out.len() > 65536 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Reaps every exited child: (PID, Docker's exit code) of each.
fn reap_children() -> Vec<(i32, i32)> {
    let mut reaped = Vec::new();
    loop {
        let mut status = 0;
        // SAFETY: waitpid with WNOHANG on our own children.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid <= 0 {
            return reaped;
        }
        reaped.push((pid, crate::sys::decode_wait_status(status).unwrap_or(255)));
    }
}

/// Whether the OOM killer struck the container's cgroup. A cgroup that is gone already (the
/// runtime removed it) can tell nothing: false.
fn oom_killed(record: &ContainerRecord) -> Result<bool> {
    let cgroup_err = |source| EngineError::Cgroup {
        path: record.berth_cgroups_path.clone(),
        source,
    };
    let h = berth_cgroups::Hierarchy::detect().map_err(cgroup_err)?;
    let cg = berth_cgroups::Cgroup::open(&h, &record.berth_cgroups_path).map_err(cgroup_err)?;
    if !cg.exists() {
        return Ok(false);
    }
    cg.oom_kill_count().map(|n| n > 0).map_err(cgroup_err)
}

#[cfg(test)]
mod tests;
