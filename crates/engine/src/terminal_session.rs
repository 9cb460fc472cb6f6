//! The attached side of a container session (foreground `run`, `start -a`, `attach`): forwards
//! this terminal's stdin and window size to the monitor, writes the container's output to this
//! process's stdout/stderr, proxies signals (`--sig-proxy`), and returns the exit code.
use crate::attach::AttachOptions;
use crate::attach::{self, FrameBuffer};
use crate::error::{EngineError, Result};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;

/// Signals a foreground client forwards to the container.
const PROXIED: &[i32] = &[
    libc::SIGINT,
    libc::SIGTERM,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
];

/// The first frames of a session: window size (for `-t`) and which streams we want.
pub fn send_greeting(stream: &mut UnixStream, opts: &AttachOptions) -> Result<()> {
    if opts.tty {
        if let Some((rows, cols)) =
            crate::sys::window_size(0).or_else(|| crate::sys::window_size(1))
        {
            let mut p = rows.to_be_bytes().to_vec();
            p.extend_from_slice(&cols.to_be_bytes());
            attach::write_frame(stream, attach::RESIZE, &p)
                .map_err(|e| EngineError::os("attach", e))?;
        }
    }
    let mut wants = 0;
    if opts.stdout {
        wants |= attach::WANT_STDOUT;
    }
    if opts.stderr {
        wants |= attach::WANT_STDERR;
    }
    if opts.stdin {
        wants |= attach::WANT_STDIN;
    }
    attach::write_frame(stream, attach::HELLO, &[wants]).map_err(|e| EngineError::os("attach", e))
}

/// Runs the session until the container exits; returns its exit code.
pub fn session(mut stream: UnixStream, opts: &AttachOptions) -> Result<i32> {
    let mut signals = vec![libc::SIGWINCH];
    if opts.sig_proxy {
        signals.extend_from_slice(PROXIED);
    }
    let sigfd = crate::sys::signalfd_for(&signals)?;
    let mut stdin_open = opts.stdin;
    let mut typed = Vec::new();
    let raw = if opts.tty && opts.stdin && crate::sys::is_terminal(0) {
        let (before, eof) = crate::sys::take_canonical_input(0);
        typed = before;
        stdin_open = !eof;
        crate::sys::RawMode::enter(0)
    } else {
        None
    };
    if !typed.is_empty() {
        let _ = attach::write_frame(&mut stream, attach::STDIN, &typed);
    }
    if opts.stdin && !stdin_open {
        let _ = attach::write_frame(&mut stream, attach::STDIN_EOF, &[]);
    }
    // Docker honours the detach keys on a terminal only.
    let detach = (opts.tty && raw.is_some()).then_some(opts.detach_keys);
    let mut matcher = crate::detach_keys::DetachMatcher::default();
    let mut frames = FrameBuffer::default();
    let mut buf = vec![0u8; 64 * 1024];
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    loop {
        let Some(fds) = wait_readable(stream.as_raw_fd(), sigfd.as_raw_fd(), stdin_open) else {
            continue;
        };
        if fds[0].revents != 0 {
            let got = match stream.read(&mut buf) {
                Ok(0) => {
                    return Err(EngineError::os(
                        "attach",
                        std::io::Error::new(
                            std::io::ErrorKind::UnexpectedEof,
                            "the container's monitor went away",
                        ),
                    ))
                }
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => 0,
                Err(e) => return Err(EngineError::os("attach", e)),
            };
            frames.push(&buf[..got]);
            while let Some((kind, payload)) = frames.next_frame() {
                match kind {
                    attach::STDOUT => {
                        let mut out = stdout.lock();
                        let _ = out.write_all(&payload);
                        let _ = out.flush();
                    }
                    attach::STDERR => {
                        let mut err = stderr.lock();
                        let _ = err.write_all(&payload);
                        let _ = err.flush();
                    }
                    attach::EXIT => return Ok(attach::payload_i32(&payload)),
                    attach::ERROR => {
                        let code = attach::payload_i32(&payload);
                        let message = String::from_utf8_lossy(payload.get(4..).unwrap_or_default())
                            .into_owned();
                        return Err(EngineError::Command {
                            message,
                            exit_code: code,
                        });
                    }
                    _ => {}
                }
            }
        }
        if fds[1].revents != 0 {
            for sig in crate::sys::read_signals(&sigfd) {
                if sig == libc::SIGWINCH {
                    if let Some((rows, cols)) = crate::sys::window_size(0) {
                        let mut p = rows.to_be_bytes().to_vec();
                        p.extend_from_slice(&cols.to_be_bytes());
                        let _ = attach::write_frame(&mut stream, attach::RESIZE, &p);
                    }
                } else {
                    let _ =
                        attach::write_frame(&mut stream, attach::SIGNAL, &attach::i32_payload(sig));
                }
            }
        }
        if stdin_open && fds.len() > 2 && fds[2].revents != 0 {
            match crate::sys::read_fd(0, &mut buf) {
                Ok(0) | Err(_) => {
                    stdin_open = false;
                    let _ = attach::write_frame(&mut stream, attach::STDIN_EOF, &[]);
                }
                Ok(n) => {
                    let (forward, detached) = match &detach {
                        Some(keys) => matcher.feed(keys, &buf[..n]),
                        None => (buf[..n].to_vec(), false),
                    };
                    if !forward.is_empty() {
                        let _ = attach::write_frame(&mut stream, attach::STDIN, &forward);
                    }
                    if detached {
                        // The container keeps running; this client just leaves (Docker
                        // prints the same line and exits 0).
                        drop(raw);
                        eprintln!("read escape sequence");
                        return Ok(0);
                    }
                }
            }
        }
    }
}

/// How a terminal session with an exec'd process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TerminalEnd {
    /// The process side hung up (it exited).
    HungUp,
    /// The user typed the detach keys: the process goes on without us.
    Detached,
}

/// Proxies this process's terminal to a container PTY `master` (for `exec -t`) until the
/// container side hangs up or, on a terminal, the user types `detach_keys`. On detach the
/// master is handed to a small keeper process that drains it until the process exits, so the
/// process keeps its terminal (Docker's shim keeps it likewise). Fork only happens when this
/// process is single-threaded (the CLI).
pub fn proxy_terminal(
    master: std::os::fd::OwnedFd,
    forward_stdin: bool,
    detach_keys: crate::detach_keys::DetachKeys,
) -> TerminalEnd {
    let m = master.as_raw_fd();
    if let Some((rows, cols)) = crate::sys::window_size(0).or_else(|| crate::sys::window_size(1)) {
        crate::sys::set_window_size(m, rows, cols);
    }
    let Ok(sigfd) = crate::sys::signalfd_for(&[libc::SIGWINCH]) else {
        return TerminalEnd::HungUp;
    };
    let mut stdin_open = forward_stdin;
    let raw = if forward_stdin && crate::sys::is_terminal(0) {
        let (typed, eof) = crate::sys::take_canonical_input(0);
        let _ = crate::sys::write_all_fd(m, &typed);
        stdin_open = !eof;
        crate::sys::RawMode::enter(0)
    } else {
        None
    };
    // Docker honours the detach keys on a terminal only.
    let detach = raw.is_some().then_some(detach_keys);
    let mut matcher = crate::detach_keys::DetachMatcher::default();
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let Some(fds) = wait_readable(m, sigfd.as_raw_fd(), stdin_open) else {
            continue;
        };
        if fds[0].revents != 0 {
            match crate::sys::read_fd(m, &mut buf) {
                Ok(0) | Err(_) => return TerminalEnd::HungUp,
                Ok(n) => {
                    let _ = crate::sys::write_all_fd(1, &buf[..n]);
                }
            }
        }
        if fds[1].revents != 0 {
            for _ in crate::sys::read_signals(&sigfd) {
                if let Some((rows, cols)) = crate::sys::window_size(0) {
                    crate::sys::set_window_size(m, rows, cols);
                }
            }
        }
        if stdin_open && fds[2].revents != 0 {
            match crate::sys::read_fd(0, &mut buf) {
                Ok(0) | Err(_) => stdin_open = false,
                Ok(n) => {
                    let (forward, detached) = match &detach {
                        Some(keys) => matcher.feed(keys, &buf[..n]),
                        None => (buf[..n].to_vec(), false),
                    };
                    let _ = crate::sys::write_all_fd(m, &forward);
                    if detached {
                        drop(raw);
                        keep_terminal(master);
                        return TerminalEnd::Detached;
                    }
                }
            }
        }
    }
}

/// Hands a detached exec's PTY master to a keeper process that drains its output until every
/// slave closes (the process and its children exited), then exits. Without a reader the
/// process would block on a full terminal, and without the master it would get SIGHUP.
fn keep_terminal(master: std::os::fd::OwnedFd) {
    if !crate::sys::is_single_threaded() {
        // No fork from threads: the process gets SIGHUP, as on a closed terminal.
        return;
    }
    // The keeper reports once it has left our session: until then the hang-up of our terminal
    // (when this process exits) would reach it too.
    let Ok((ready_read, ready_write)) = crate::sys::pipe() else {
        return;
    };
    // SAFETY: this process is single-threaded (checked above), so the child may run Rust code.
    match unsafe { libc::fork() } {
        0 => {
            drop(ready_read);
            // SAFETY: plain syscalls on our own process; the child never returns.
            unsafe {
                libc::setsid();
                let _ = crate::sys::write_all_fd(ready_write.as_raw_fd(), b"1");
                drop(ready_write);
                // The keeper leaves the caller's terminal alone.
                if let Ok(null) = std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open("/dev/null")
                {
                    for fd in 0..3 {
                        let _ = crate::sys::dup_onto(null.as_raw_fd(), fd);
                    }
                }
            }
            let mut buf = vec![0u8; 16 * 1024];
            while let Ok(n) = crate::sys::read_fd(master.as_raw_fd(), &mut buf) {
                if n == 0 {
                    break;
                }
            }
            // SAFETY: leaving the forked child without the parent's atexit handlers.
            unsafe { libc::_exit(0) }
        }
        -1 => {}
        _ => {
            drop(ready_write);
            drop(master);
            // One byte, or end-of-file should the keeper die first: never an endless wait.
            let mut byte = [0u8; 1];
            let _ = crate::sys::read_fd(ready_read.as_raw_fd(), &mut byte);
        }
    }
}

/// Waits until `primary`, the signal fd or (while it is open) stdin is readable. Returns the
/// polled set — index 0 `primary`, 1 the signal fd, 2 stdin when included — or None when the
/// wait was interrupted.
fn wait_readable(primary: RawFd, signals: RawFd, stdin_open: bool) -> Option<Vec<libc::pollfd>> {
    let pollin = |fd| libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let mut fds = vec![pollin(primary), pollin(signals)];
    if stdin_open {
        fds.push(pollin(0));
    }
    // SAFETY: `fds` is a valid pollfd array for the call's duration.
    let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) };
    (n >= 0).then_some(fds)
}
