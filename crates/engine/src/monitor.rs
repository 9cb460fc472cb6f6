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
//! monitor is never the caller's zombie.
//!
//! It sees the engine only through `MonitorContext`: the record store, the runtime door and
//! the layers.
use crate::attach::{self, FrameBuffer};
use crate::error::{EngineError, Result};
use crate::layer::Layers;
use crate::lifecycle::Engine;
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

/// What the monitor needs of the engine, and nothing more.
#[derive(Debug, Clone)]
pub(crate) struct MonitorContext {
    pub store: Store,
    pub runtime: Arc<dyn OciRuntime>,
    pub layers: Layers,
}

impl MonitorContext {
    pub fn of(engine: &Engine) -> MonitorContext {
        MonitorContext {
            store: engine.store.clone(),
            runtime: engine.runtime.clone(),
            layers: engine.layers.clone(),
        }
    }
}

/// Starts the monitor for container `id`. `client` is an already-connected attach client (the
/// foreground `run`), `ready` a pipe on which the monitor reports "0" once the container runs,
/// or "<exit code> <message>" when it could not start.
pub(crate) fn spawn(
    engine: &Engine,
    id: &str,
    client: Option<OwnedFd>,
    ready: Option<OwnedFd>,
) -> Result<()> {
    if crate::sys::is_single_threaded() {
        fork_monitor(&MonitorContext::of(engine), id, client, ready)
    } else {
        crate::hidden_entry::spawn_monitor(engine.root(), id, client, ready)
    }
}

/// Forks the monitor. Call only from a single-threaded process.
pub(crate) fn fork_monitor(
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
        -1 => Err(EngineError::last_os(format!("fork of the monitor of {id}"))),
        0 => {
            let code = become_monitor(ctx, id, client, ready);
            // SAFETY: leaving the forked child without running the parent's atexit handlers.
            unsafe { libc::_exit(code) }
        }
        _ => Ok(()),
    }
}

/// Runs the monitor in this (new, single-threaded) process; returns its exit code.
pub(crate) fn become_monitor(
    ctx: &MonitorContext,
    id: &str,
    client: Option<OwnedFd>,
    ready: Option<OwnedFd>,
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
    let intent =
        berth_image::intent::Intent::begin(ctx.store.root(), crate::recovery::MONITOR, id).ok();
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
        let other = berth_image::intent::owner(root, crate::recovery::MONITOR, id)
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
fn report_setup_failure(e: &EngineError, client: Option<OwnedFd>, ready: Option<OwnedFd>) {
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
    health: Option<crate::health::Checker>,
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
                            .join(crate::recovery::EXIT_FILE),
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

    /// Mounts the rootfs if needed, creates the container with fresh stdio, starts it.
    /// None when the container already runs (a concurrent start won).
    fn start_once(&mut self) -> Result<Option<(i32, ContainerIo)>> {
        // Held until the record says running: an `rm` either finished before (the record is
        // gone, nothing is made) or waits and then finds a running container to kill.
        let _op = self.ctx.store.lock_container(&self.id)?;
        let record = self.ctx.store.load(&self.id)?;
        if record.is_running() {
            return Ok(None);
        }
        if !crate::network::is_ready(self.ctx.store.root(), &self.id) {
            // Its networks were given back after our caller prepared them: a stop or removal
            // ran between. Nothing is made; the caller may start it again.
            return Err(EngineError::state(
                &self.id,
                format!(
                    "container {} was stopped or removed while it was being started",
                    self.id
                ),
            ));
        }
        self.ctx.layers.ensure_mounted(&record)?;
        let bundle = self.ctx.store.container_dir(&self.id);
        // A previous run may have left runtime state behind (killed monitor).
        if record.has_been_started_before {
            let _ = self.ctx.runtime.delete(&self.id, true);
        }
        let mut io = ContainerIo::default();
        let pid = if self.tty {
            let sock_path = bundle.join("console.sock");
            let _ = std::fs::remove_file(&sock_path);
            let short = crate::sys::socket_path(&sock_path)?;
            let listener =
                UnixListener::bind(&short.path).map_err(|e| EngineError::io(&sock_path, e))?;
            let null =
                std::fs::File::open("/dev/null").map_err(|e| EngineError::io("/dev/null", e))?;
            let n = null.as_raw_fd();
            let pid = self
                .ctx
                .runtime
                .create(&self.id, &bundle, [n, n, n], Some(&short.path));
            let _ = std::fs::remove_file(&sock_path);
            let pid = pid?;
            let master = crate::runtime_door::receive_console(&listener)?;
            if let Some((rows, cols)) = self.window {
                crate::sys::set_window_size(master.as_raw_fd(), rows, cols);
            }
            io.pty = Some(master);
            pid
        } else {
            let (stdin_child, stdin_ours) = if self.open_stdin {
                let (r, w) = crate::sys::pipe()?;
                (r, Some(w))
            } else {
                let null = std::fs::File::open("/dev/null")
                    .map_err(|e| EngineError::io("/dev/null", e))?;
                (OwnedFd::from(null), None)
            };
            let (out_r, out_w) = crate::sys::pipe()?;
            let (err_r, err_w) = crate::sys::pipe()?;
            let pid = self.ctx.runtime.create(
                &self.id,
                &bundle,
                [
                    stdin_child.as_raw_fd(),
                    out_w.as_raw_fd(),
                    err_w.as_raw_fd(),
                ],
                None,
            )?;
            io.stdin = stdin_ours;
            io.stdout = Some(out_r);
            io.stderr = Some(err_r);
            pid
        };
        let start_time = crate::procinfo::start_time(pid).unwrap_or(0);
        if let Err(e) = self.ctx.runtime.start(&self.id) {
            // SAFETY: `pid` is our unreaped child (the runtime made it so).
            unsafe { libc::kill(pid, libc::SIGKILL) };
            crate::runtime_door::wait_for(pid);
            let _ = self.ctx.runtime.delete(&self.id, true);
            // Whatever the init said before dying explains the failure best.
            let said = io
                .stderr
                .as_ref()
                .map(|fd| read_available(fd.as_raw_fd()))
                .unwrap_or_default();
            if !said.trim().is_empty() {
                return Err(EngineError::Command {
                    message: format!("{e}: {}", said.trim()),
                    exit_code: e.command_failure_code(),
                });
            }
            return Err(e);
        }
        let me = std::process::id() as i32;
        let schedule = crate::health::Schedule::of(&record.config);
        let has_health = schedule.is_some();
        self.health = schedule.map(crate::health::Checker::new);
        self.ctx.store.update(&self.id, |r| {
            if has_health {
                // Docker keeps the log of earlier runs and starts over otherwise.
                let health = r
                    .state
                    .health
                    .get_or_insert_with(crate::health::Health::starting);
                health.status = crate::health::STARTING.into();
                health.failing_streak = 0;
            }
            r.state.running = true;
            r.state.dead = false;
            r.state.paused = false;
            r.state.restarting = false;
            r.state.pid = pid;
            r.state.exit_code = 0;
            r.state.error.clear();
            r.state.oom_killed = false;
            r.state.started_at = now_rfc3339();
            r.has_been_started_before = true;
            r.berth_monitor_pid = me;
            r.berth_pid_start_time = start_time;
        })?;
        if let Ok(record) = self.ctx.store.load(&self.id) {
            crate::events::container(self.ctx.store.root(), &record, "start", &[]);
        }
        if let Some(ready) = self.ready.take() {
            let _ = std::fs::File::from(ready).write_all(b"0\n");
        }
        self.broadcast(attach::STARTED, &attach::i32_payload(pid), 0);
        Ok(Some((pid, io)))
    }

    /// Pumps stdio and serves clients until the init `pid` exits; returns its exit code.
    fn supervise(&mut self, pid: i32, mut io: ContainerIo) -> i32 {
        let mut exit_code: Option<i32> = None;
        let mut buf = vec![0u8; 64 * 1024];
        // The init's end is seen on its pidfd, which does not depend on which thread SIGCHLD is
        // delivered to; SIGCHLD still reaps orphans the monitor inherits as subreaper.
        let pidfd = rustix::process::Pid::from_raw(pid).and_then(|p| {
            rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty()).ok()
        });
        loop {
            if let Some(code) = exit_code {
                self.drain(&mut io, &mut buf);
                return code;
            }
            let mut fds: Vec<libc::pollfd> = Vec::new();
            let mut kinds: Vec<u8> = Vec::new();
            let mut push = |fd: RawFd, kind: u8| {
                fds.push(libc::pollfd {
                    fd,
                    events: libc::POLLIN,
                    revents: 0,
                });
                kinds.push(kind);
            };
            push(self.signals.as_raw_fd(), b'S');
            if let Some(fd) = &pidfd {
                push(fd.as_raw_fd(), b'P');
            }
            if let Some(l) = &self.listener {
                push(l.as_raw_fd(), b'L');
            }
            if let Some(fd) = &io.stdout {
                push(fd.as_raw_fd(), b'1');
            }
            if let Some(fd) = &io.stderr {
                push(fd.as_raw_fd(), b'2');
            }
            if let Some(fd) = io.pty.as_ref().filter(|_| !io.pty_hangup) {
                push(fd.as_raw_fd(), b'T');
            }
            if let Some(checker) = &self.health {
                for fd in checker.fds() {
                    push(fd, b'H');
                }
            }
            for c in &self.clients {
                push(c.stream.as_raw_fd(), b'C');
            }
            let client_base = fds.len() - self.clients.len();
            let timeout = match &self.health {
                // Rounded up, so a due probe never spins the loop.
                Some(checker) => checker
                    .wait()
                    .as_millis()
                    .saturating_add(1)
                    .min(i32::MAX as u128) as i32,
                None => -1,
            };
            // SAFETY: `fds` is a valid array of pollfd for the duration of the call.
            let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout) };
            if n < 0 {
                continue;
            }
            if let Some(checker) = &mut self.health {
                checker.tick(&self.ctx.store, self.ctx.runtime.as_ref(), &self.id);
            }
            let mut dead_clients = Vec::new();
            for (i, pfd) in fds.iter().enumerate() {
                if pfd.revents == 0 {
                    continue;
                }
                match kinds[i] {
                    b'S' => {
                        for sig in crate::sys::read_signals(&self.signals) {
                            if sig == libc::SIGCHLD {
                                if let Some(code) = self.reap(pid) {
                                    exit_code = Some(code);
                                }
                            }
                        }
                    }
                    b'P' | b'H' => {
                        if let Some(checker) = &mut self.health {
                            checker.read_output();
                        }
                        if let Some(code) = self.reap(pid) {
                            exit_code = Some(code);
                        }
                    }
                    b'L' => self.accept_clients(),
                    b'1' | b'2' | b'T' => {
                        let stream = if kinds[i] == b'2' { 2 } else { 1 };
                        let kind = kinds[i];
                        let fd = match kind {
                            b'1' => io.stdout.as_ref(),
                            b'2' => io.stderr.as_ref(),
                            _ => io.pty.as_ref(),
                        }
                        .map(|f| f.as_raw_fd());
                        let closed = match fd.map(|fd| crate::sys::read_fd(fd, &mut buf)) {
                            Some(Ok(0)) | Some(Err(_)) | None => true,
                            Some(Ok(n)) => {
                                let data = buf[..n].to_vec();
                                self.output(stream, &data);
                                false
                            }
                        };
                        if closed {
                            match kind {
                                b'1' => io.stdout = None,
                                b'2' => io.stderr = None,
                                // Keep the master for stdin and resize; stop polling it.
                                _ => io.pty_hangup = true,
                            }
                        }
                    }
                    b'C' => {
                        let ci = i - client_base;
                        if !self.serve_client(ci, pid, &mut io) {
                            dead_clients.push(ci);
                        }
                    }
                    _ => {}
                }
            }
            for ci in dead_clients.into_iter().rev() {
                self.clients.remove(ci);
            }
        }
    }

    /// Reaps every exited child; returns the init's exit code when it was among them. A health
    /// probe's end is handed to the checker.
    fn reap(&mut self, init: i32) -> Option<i32> {
        let probe = self.health.as_ref().and_then(|c| c.probe_pid());
        let mut result = None;
        for (pid, code) in reap_children() {
            if pid == init {
                result = Some(code);
            } else if Some(pid) == probe {
                if let Some(checker) = &mut self.health {
                    checker.probe_exited(&self.ctx.store, &self.id, code);
                }
            }
        }
        result
    }

    /// Reads what is left in the output pipes after the init exited.
    fn drain(&mut self, io: &mut ContainerIo, buf: &mut [u8]) {
        for (stream, slot) in [(1, &mut io.stdout), (2, &mut io.stderr), (1, &mut io.pty)] {
            if let Some(fd) = slot.take() {
                crate::sys::set_nonblocking(fd.as_raw_fd());
                while let Ok(n) = crate::sys::read_fd(fd.as_raw_fd(), buf) {
                    if n == 0 {
                        break;
                    }
                    let data = buf[..n].to_vec();
                    self.output(stream, &data);
                }
            }
        }
        if let Some(log) = &mut self.log {
            log.flush();
        }
    }

    fn output(&mut self, stream: usize, data: &[u8]) {
        if let Some(log) = &mut self.log {
            log.write(stream, data);
        }
        let (kind, want) = if stream == 2 {
            (attach::STDERR, attach::WANT_STDERR)
        } else {
            (attach::STDOUT, attach::WANT_STDOUT)
        };
        self.broadcast(kind, data, want);
    }

    fn broadcast(&mut self, kind: u8, payload: &[u8], want: u8) {
        self.clients.retain_mut(|c| {
            if want != 0 && c.wants & want == 0 {
                return true;
            }
            let _ = c.stream.set_nonblocking(false);
            let ok = attach::write_frame(&mut c.stream, kind, payload).is_ok();
            let _ = c.stream.set_nonblocking(true);
            ok
        });
    }

    fn accept_clients(&mut self) {
        let Some(listener) = &self.listener else {
            return;
        };
        while let Ok((stream, _)) = listener.accept() {
            let _ = stream.set_nonblocking(true);
            self.clients.push(Client {
                stream,
                frames: FrameBuffer::default(),
                wants: 0,
            });
        }
    }

    /// Handles input from client `ci`; false when it went away.
    fn serve_client(&mut self, ci: usize, pid: i32, io: &mut ContainerIo) -> bool {
        let mut buf = [0u8; 16 * 1024];
        let alive = match self.clients[ci].stream.read(&mut buf) {
            Ok(0) => false,
            Ok(n) => {
                self.clients[ci].frames.push(&buf[..n]);
                true
            }
            Err(e) => {
                e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::Interrupted
            }
        };
        while let Some((kind, payload)) = self.clients[ci].frames.next_frame() {
            match kind {
                attach::HELLO => self.clients[ci].wants = payload.first().copied().unwrap_or(0),
                attach::STDIN => {
                    let target = io.stdin.as_ref().or(io.pty.as_ref());
                    if let Some(fd) = target {
                        let _ = crate::sys::write_all_fd(fd.as_raw_fd(), &payload);
                    }
                }
                attach::STDIN_EOF if !self.tty => io.stdin = None,
                attach::RESIZE if payload.len() >= 4 => {
                    let (rows, cols) = (
                        u16::from_be_bytes([payload[0], payload[1]]),
                        u16::from_be_bytes([payload[2], payload[3]]),
                    );
                    self.window = Some((rows, cols));
                    if let Some(fd) = io.pty.as_ref().or(io.stdin.as_ref().filter(|_| self.tty)) {
                        crate::sys::set_window_size(fd.as_raw_fd(), rows, cols);
                    }
                }
                attach::SIGNAL => {
                    let sig = attach::payload_i32(&payload);
                    // Between runs (restart backoff) there is no init: `pid` is -1 then, and
                    // kill(-1) would signal every process on the host. Only a real PID.
                    if pid > 0 {
                        // SAFETY: `pid` is our unreaped child, so the PID cannot have been
                        // reused.
                        unsafe { libc::kill(pid, sig) };
                    }
                }
                attach::NO_RESTART => self.manually_stopped = true,
                _ => {}
            }
        }
        alive
    }

    /// Sleeps `delay` (restart backoff) while still accepting stop requests.
    fn wait_serving(&mut self, delay: Duration) {
        let deadline = Instant::now() + delay;
        while Instant::now() < deadline && !self.manually_stopped {
            let mut fds: Vec<libc::pollfd> = self
                .clients
                .iter()
                .map(|c| libc::pollfd {
                    fd: c.stream.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                })
                .collect();
            if let Some(l) = &self.listener {
                fds.push(libc::pollfd {
                    fd: l.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                });
            }
            let left = deadline
                .saturating_duration_since(Instant::now())
                .as_millis() as i32;
            // SAFETY: valid pollfd array.
            unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, left.max(1)) };
            self.accept_clients();
            let mut io = ContainerIo::default();
            let mut dead = Vec::new();
            for ci in 0..self.clients.len() {
                if !self.serve_client(ci, -1, &mut io) {
                    dead.push(ci);
                }
            }
            for ci in dead.into_iter().rev() {
                self.clients.remove(ci);
            }
        }
    }

    /// Records the end of one run: exit code, OOM flag, FinishedAt; deletes the runtime state.
    /// Returns the restart count so far. Fails when the record cannot be read or written.
    fn finish_run(&mut self, code: i32, error: Option<&str>) -> Result<i64> {
        let record = self.ctx.store.load(&self.id)?;
        // The OOM killer's signal is SIGKILL: only then is the cgroup worth asking.
        let oom = error.is_none() && code == 128 + libc::SIGKILL && oom_killed(&record)?;
        if oom {
            crate::events::container(self.ctx.store.root(), &record, "oom", &[]);
        }
        if error.is_none() {
            crate::events::container(
                self.ctx.store.root(),
                &record,
                "die",
                &[("exitCode", code.to_string())],
            );
        }
        // Only reached for --rm when removing it failed: final_cleanup retries the whole
        // removal (runtime state first) before anyone is told.
        if !self.host.auto_remove {
            let _ = self.ctx.runtime.delete(&self.id, true);
        }
        self.ctx
            .store
            .update(&self.id, |r| {
                r.state.running = false;
                r.state.paused = false;
                r.state.pid = 0;
                r.state.exit_code = code;
                r.state.oom_killed = oom;
                r.state.finished_at = if error.is_some() && !r.has_been_started_before {
                    String::new()
                } else {
                    now_rfc3339()
                };
                r.state.error = error.unwrap_or("").to_string();
                // Docker: a stopped container is not healthy (no event for it).
                if let Some(health) = &mut r.state.health {
                    health.status = crate::health::UNHEALTHY.into();
                }
                r.berth_monitor_pid = 0;
                r.berth_pid_start_time = 0;
                r.restart_count
            })
            .inspect(|_| {
                let dir = self.ctx.store.container_dir(&self.id);
                let _ = std::fs::remove_file(dir.join(crate::recovery::EXIT_FILE));
            })
    }

    /// After the last run: unmount (with `--rm`, remove everything), then tell everyone.
    fn final_cleanup(&mut self, code: i32, error: Option<String>) {
        if self.host.auto_remove {
            // The fast path in `run` failed part-way: try again, still before reporting.
            self.remove_container();
        } else if let (Ok(_op), Ok(record)) = (
            self.ctx.store.lock_container(&self.id),
            self.ctx.store.load(&self.id),
        ) {
            // Under the container's lock: a concurrent start sees it stopped with its networks
            // given back, never half of it.
            let _ = self.ctx.layers.unmount_record(&record);
            // A stopped container holds no address, port or namespace (Docker frees them too);
            // the next start brings its networks back.
            let _ = crate::network::release(self.ctx.store.root(), &self.id);
        }
        let _ = std::fs::remove_file(self.ctx.store.container_dir(&self.id).join("attach.sock"));
        self.report(code, error);
    }

    /// `--rm`: removes the runtime state and cgroup (killing any straggler), the layer (its
    /// unmount included), and the record and name, in that order. True when all of it is gone.
    /// The deleted files' blocks are freed only when the monitor exits, after the report.
    fn remove_container(&mut self) -> bool {
        let Ok(record) = self.ctx.store.load(&self.id) else {
            return false;
        };
        let layout = self.ctx.layers.layout().clone();
        self.held
            .hold_tree(&self.ctx.store.root().join("runtime").join(&self.id));
        if !record.berth_layer.mount_id.is_empty() {
            let layer = layout.layer_dir(&record.berth_layer.mount_id);
            let init = layout.layer_dir(&format!("{}-init", record.berth_layer.mount_id));
            for dir in [&layer, &init] {
                // The short link `l/<name>` is a symlink long enough to own a block.
                if let Ok(short) = std::fs::read_to_string(dir.join("link")) {
                    let short = short.trim();
                    if !short.is_empty() && !short.contains('/') {
                        self.held.hold_tree(&layout.links().join(short));
                    }
                }
                self.held.hold_tree(dir);
            }
        }
        self.held.hold_tree(&layout.mount_meta(&self.id));
        self.held.hold_tree(&self.ctx.store.container_dir(&self.id));
        self.held.hold_tree(
            &self
                .ctx
                .store
                .containers_dir()
                .join(".names")
                .join(record.short_name()),
        );
        let layers = &self.ctx.layers;
        let remove_layer = || {
            record.driver.is_empty()
                || layers.remove(&record.id).is_ok()
                || !layout.mount_meta(&record.id).exists()
        };
        let remove_runtime_state = || {
            if self.ctx.runtime.delete(&self.id, true).is_err() {
                // The runtime state may be gone already (its root removed under us): the
                // cgroup must not outlive the container anyway.
                if let Err(e) = crate::lifecycle::kill_cgroup(&record.berth_cgroups_path) {
                    eprintln!("monitor {}: {e}", self.id);
                }
            }
        };
        // In its own PID namespace nothing of the container outlives its init (the kernel
        // kills and reaps the rest before the init's exit is reported), so the layer can go
        // while the runtime state and cgroup do. Otherwise stragglers die first. The helper
        // thread ends before this returns; the monitor never forks after a --rm container.
        let layer_gone = if shares_pid_namespace(&self.host) {
            remove_runtime_state();
            remove_layer()
        } else {
            std::thread::scope(|scope| {
                let layer = scope.spawn(remove_layer);
                remove_runtime_state();
                layer.join().unwrap_or(false)
            })
        };
        let root = self.ctx.store.root();
        let network_gone = crate::network::release(root, &record.id).is_ok();
        let removed = layer_gone && network_gone && self.ctx.store.remove(&record).is_ok();
        if removed {
            // Docker's `run --rm` takes the container's anonymous volumes with it.
            crate::volumes::Volumes::new(root).remove_anonymous_of(&record);
        }
        removed
    }

    /// Tells the `ready` pipe and every attached client how the container ended.
    fn report(&mut self, code: i32, error: Option<String>) {
        match error {
            Some(msg) => {
                if let Some(ready) = self.ready.take() {
                    let _ =
                        std::fs::File::from(ready).write_all(format!("{code} {msg}\n").as_bytes());
                }
                let mut payload = attach::i32_payload(code).to_vec();
                payload.extend_from_slice(msg.as_bytes());
                self.broadcast(attach::ERROR, &payload, 0);
            }
            None => {
                if let Some(ready) = self.ready.take() {
                    let _ = std::fs::File::from(ready).write_all(b"0\n");
                }
                self.broadcast(attach::EXIT, &attach::i32_payload(code), 0);
            }
        }
        self.clients.clear();
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
mod tests {
    use super::*;
    use crate::options::{RestartPolicy, RunOptions};
    use crate::runtime_door::fake::FakeRuntime;

    struct Fixture {
        _turn: std::sync::MutexGuard<'static, ()>,
        _root: tempfile::TempDir,
        rootfs: tempfile::TempDir,
        engine: Engine,
        fake: Arc<FakeRuntime>,
    }

    /// The monitor reaps any child of the process (waitpid(-1), as the subreaper of its
    /// container must): two monitors in one test process would reap each other's inits, so
    /// the tests that run one take turns.
    static ONE_MONITOR_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

    fn fixture(fake: FakeRuntime) -> Fixture {
        let root = tempfile::tempdir().expect("root");
        let rootfs = tempfile::tempdir().expect("rootfs");
        let fake = Arc::new(fake);
        let engine = Engine::with_runtime(root.path(), fake.clone());
        Fixture {
            _turn: ONE_MONITOR_AT_A_TIME
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
            _root: root,
            rootfs,
            engine,
            fake,
        }
    }

    impl Drop for Fixture {
        /// The containers are never removed, but their pinned network namespaces must not
        /// outlive the test's root.
        fn drop(&mut self) {
            let root = self.engine.root().to_path_buf();
            if let Ok(dir) = std::fs::read_dir(root.join("containers")) {
                for entry in dir.flatten() {
                    let _ = crate::network::release(&root, &entry.file_name().to_string_lossy());
                }
            }
        }
    }

    impl Fixture {
        /// A `--rootfs` container whose command the fake runtime runs on the host.
        fn container(&self, script: &str, restart: &str, retries: i64) -> String {
            let mut opts = RunOptions {
                command: vec!["/bin/sh".into(), "-c".into(), script.into()],
                rootfs: Some(self.rootfs.path().to_path_buf()),
                ..Default::default()
            };
            opts.host.restart_policy = RestartPolicy {
                name: restart.into(),
                maximum_retry_count: retries,
            };
            self.engine.create(&opts).expect("create").id
        }

        /// Runs the monitor in this process until it is done; returns what it reported on
        /// its ready pipe.
        fn monitor(&self, id: &str) -> String {
            let (read, write) = crate::sys::pipe().expect("pipe");
            let mut monitor = Monitor::new(MonitorContext::of(&self.engine), id, None, Some(write))
                .map_err(|(e, _, _)| e)
                .expect("monitor");
            monitor.run();
            drop(monitor);
            let mut text = String::new();
            std::fs::File::from(read)
                .read_to_string(&mut text)
                .expect("ready");
            text
        }

        fn creates(&self) -> usize {
            self.fake
                .calls()
                .iter()
                .filter(|c| c.starts_with("create "))
                .count()
        }
    }

    #[test]
    fn monitor_logs_output_and_records_the_exit() {
        let f = fixture(FakeRuntime::default());
        let id = f.container("echo out; echo err >&2; exit 3", "no", 0);
        assert_eq!(f.monitor(&id).trim(), "0");
        let record = f.engine.store.load(&id).expect("record");
        assert_eq!(record.state.exit_code, 3);
        assert!(!record.state.running);
        assert_eq!(record.state.pid, 0);
        assert!(!record.state.finished_at.is_empty());
        let log = std::fs::read_to_string(&record.log_path).expect("log");
        assert!(log.contains(r#""log":"out\n","stream":"stdout""#), "{log}");
        assert!(log.contains(r#""log":"err\n","stream":"stderr""#), "{log}");
        assert_eq!(
            f.fake.calls(),
            vec![
                format!("create {id}"),
                format!("start {id}"),
                format!("delete {id}")
            ]
        );
    }

    #[test]
    fn monitor_applies_on_failure_restarts_up_to_the_limit() {
        let f = fixture(FakeRuntime::default());
        let id = f.container("exit 1", "on-failure", 2);
        f.monitor(&id);
        let record = f.engine.store.load(&id).expect("record");
        assert_eq!(f.creates(), 3);
        assert_eq!(record.restart_count, 2);
        assert_eq!(record.state.exit_code, 1);
        assert!(!record.state.restarting);
    }

    #[test]
    fn a_command_that_does_not_exist_is_127_from_its_errno() {
        let f = fixture(FakeRuntime {
            fail_create_errno: Some(libc::ENOENT),
            ..Default::default()
        });
        let id = f.container("true", "no", 0);
        let report = f.monitor(&id);
        assert!(report.starts_with("127 "), "{report}");
        drop(f);
        let f = fixture(FakeRuntime {
            fail_create_errno: Some(libc::EACCES),
            ..Default::default()
        });
        let id = f.container("true", "no", 0);
        let report = f.monitor(&id);
        assert!(report.starts_with("126 "), "{report}");
        let record = f.engine.store.load(&id).expect("record");
        assert_eq!(record.state.exit_code, 126);
        assert!(!record.state.error.is_empty());
        assert!(record.state.finished_at.is_empty());
    }

    #[test]
    fn an_unreadable_record_stops_the_restart_policy() {
        let f = fixture(FakeRuntime::default());
        let id = f.container("", "always", 0);
        // The command breaks its own record: the monitor must not restart it on a default
        // record (forever, with "always"), but stop.
        let record_file = f.engine.store.container_dir(&id).join("config.v2.json");
        // It waits (bounded) until the monitor has recorded the start, so its write is not
        // lost to the monitor's own rename of the record.
        let file = record_file.to_string_lossy();
        let opts_script = format!(
            "i=0; while ! grep -q '\"Running\":true' {file} && [ $i -lt 1000 ]; do sleep 0.01; i=$((i+1)); done; echo broken > {file}"
        );
        let spec_path = f.engine.store.container_dir(&id).join("config.json");
        let mut spec = oci_spec::runtime::Spec::load(&spec_path).expect("spec");
        let mut process = spec.process().clone().expect("process");
        process.set_args(Some(vec!["/bin/sh".into(), "-c".into(), opts_script]));
        spec.set_process(Some(process));
        spec.save(&spec_path).expect("save");
        f.monitor(&id);
        assert_eq!(f.creates(), 1, "{:?}", f.fake.calls());
    }

    #[test]
    fn a_log_that_cannot_be_opened_is_reported() {
        let f = fixture(FakeRuntime::default());
        let id = f.container("true", "no", 0);
        let log = f
            .engine
            .store
            .container_dir(&id)
            .join(format!("{id}-json.log"));
        std::fs::create_dir_all(&log).expect("a directory where the log goes");
        let (read, write) = crate::sys::pipe().expect("pipe");
        let err = match Monitor::new(MonitorContext::of(&f.engine), &id, None, Some(write)) {
            Ok(_) => panic!("the monitor started without its log"),
            Err((e, client, ready)) => {
                report_setup_failure(&e, client, ready);
                e
            }
        };
        assert!(
            err.to_string().contains(&log.display().to_string()),
            "{err}"
        );
        let mut text = String::new();
        std::fs::File::from(read)
            .read_to_string(&mut text)
            .expect("ready");
        assert!(text.starts_with("125 container monitor: "), "{text}");
        assert_eq!(f.creates(), 0);
    }
}
