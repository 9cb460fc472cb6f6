//! Small syscall helpers the monitor and the attach client share: pipes, signalfd, raw reads
//! and writes, terminal size and raw mode. Each `unsafe` is a single syscall on descriptors the
//! caller owns.
use crate::error::{EngineError, Result};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// `dup2(fd, target)`.
pub fn dup_onto(fd: RawFd, target: RawFd) -> std::io::Result<()> {
    // SAFETY: dup2 on descriptors the caller owns.
    if unsafe { libc::dup2(fd, target) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// A close-on-exec pipe: (read end, write end).
pub fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two descriptors into `fds`.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(EngineError::last_os("pipe"));
    }
    // SAFETY: both descriptors are fresh and ours.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// A close-on-exec stream socketpair.
pub fn socketpair() -> Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: socketpair writes two descriptors into `fds`.
    if unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    } < 0
    {
        return Err(EngineError::last_os("socketpair"));
    }
    // SAFETY: both descriptors are fresh and ours.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Blocks `signals` for this thread and returns a signalfd that reports them.
pub fn signalfd_for(signals: &[i32]) -> Result<OwnedFd> {
    // SAFETY: sigset manipulation on a local set, then sigprocmask/signalfd on our own process.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in signals {
            libc::sigaddset(&mut set, *s);
        }
        libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        let fd = libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK);
        if fd < 0 {
            return Err(EngineError::last_os("signalfd"));
        }
        Ok(OwnedFd::from_raw_fd(fd))
    }
}

/// Unblocks `signals` again (before exiting with a default disposition, say).
pub fn unblock(signals: &[i32]) {
    // SAFETY: as in `signalfd_for`.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in signals {
            libc::sigaddset(&mut set, *s);
        }
        libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
    }
}

/// Signals waiting on a non-blocking signalfd.
pub fn read_signals(fd: &OwnedFd) -> Vec<i32> {
    use std::os::fd::AsRawFd;
    let mut out = Vec::new();
    loop {
        // SAFETY: signalfd_siginfo is plain data; read fills at most its size.
        let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
        let size = std::mem::size_of::<libc::signalfd_siginfo>();
        // SAFETY: reading into a correctly sized local buffer.
        let n = unsafe {
            libc::read(
                fd.as_raw_fd(),
                &mut info as *mut _ as *mut libc::c_void,
                size,
            )
        };
        if n as usize != size {
            return out;
        }
        out.push(info.ssi_signo as i32);
    }
}

/// `read(2)`, retrying on EINTR.
pub fn read_fd(fd: RawFd, buf: &mut [u8]) -> std::io::Result<usize> {
    loop {
        // SAFETY: reading into a valid buffer of the given length.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr() as *mut libc::c_void, buf.len()) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Writes all of `data` to a (possibly non-blocking) descriptor.
pub fn write_all_fd(fd: RawFd, mut data: &[u8]) -> std::io::Result<()> {
    while !data.is_empty() {
        // SAFETY: writing from a valid buffer.
        let n = unsafe { libc::write(fd, data.as_ptr() as *const libc::c_void, data.len()) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            match e.kind() {
                std::io::ErrorKind::Interrupted => continue,
                std::io::ErrorKind::WouldBlock => {
                    let mut p = libc::pollfd {
                        fd,
                        events: libc::POLLOUT,
                        revents: 0,
                    };
                    // SAFETY: one valid pollfd.
                    unsafe { libc::poll(&mut p, 1, 1000) };
                    continue;
                }
                _ => return Err(e),
            }
        }
        data = &data[n as usize..];
    }
    Ok(())
}

pub fn set_nonblocking(fd: RawFd) {
    // SAFETY: fcntl flag changes on a descriptor the caller owns.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK);
    }
}

/// Sets a terminal's window size.
pub fn set_window_size(fd: RawFd, rows: u16, cols: u16) {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize struct.
    unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &ws) };
}

/// A terminal's window size, when `fd` is a terminal.
pub fn window_size(fd: RawFd) -> Option<(u16, u16)> {
    // SAFETY: TIOCGWINSZ fills a winsize struct.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    if unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) } < 0 {
        return None;
    }
    Some((ws.ws_row, ws.ws_col))
}

pub fn is_terminal(fd: RawFd) -> bool {
    // SAFETY: isatty only inspects the descriptor.
    unsafe { libc::isatty(fd) == 1 }
}

/// What a terminal in canonical mode already holds for its reader, read before switching it to
/// raw mode. Needed because an end-of-file (Ctrl-D) the terminal queued in canonical mode is kept
/// in its buffer as a NUL byte, which raw mode would hand over as a typed `^@`. Returns the bytes
/// typed so far, and whether an end-of-file was among them.
pub fn take_canonical_input(fd: RawFd) -> (Vec<u8>, bool) {
    let mut typed = Vec::new();
    // A few lines at most: a reader that keeps typing is read by the caller afterwards.
    for _ in 0..16 {
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, no wait.
        if unsafe { libc::poll(&mut pfd, 1, 0) } <= 0 || pfd.revents & libc::POLLIN == 0 {
            break;
        }
        let mut buf = [0u8; 4096];
        match read_fd(fd, &mut buf) {
            Ok(0) => return (typed, true),
            Ok(n) => typed.extend_from_slice(&buf[..n]),
            Err(_) => break,
        }
    }
    (typed, false)
}

/// Puts terminal `fd` in raw mode; the returned guard restores it.
pub struct RawMode {
    fd: RawFd,
    saved: libc::termios,
}

impl RawMode {
    pub fn enter(fd: RawFd) -> Option<RawMode> {
        // SAFETY: tcgetattr/cfmakeraw/tcsetattr on a terminal descriptor with local structs.
        unsafe {
            let mut saved: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(fd, &mut saved) < 0 {
                return None;
            }
            let mut raw = saved;
            libc::cfmakeraw(&mut raw);
            libc::tcsetattr(fd, libc::TCSANOW, &raw);
            Some(RawMode { fd, saved })
        }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // SAFETY: restoring the attributes saved in `enter`.
        unsafe { libc::tcsetattr(self.fd, libc::TCSANOW, &self.saved) };
    }
}

/// Parses a signal name or number: `SIGTERM`, `TERM`, `term`, `15`.
pub fn parse_signal(text: &str) -> Result<i32> {
    if let Ok(n) = text.parse::<i32>() {
        if (1..=64).contains(&n) {
            return Ok(n);
        }
    }
    let up = text.to_ascii_uppercase();
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    name.parse::<nix::sys::signal::Signal>()
        .map(|s| s as i32)
        .map_err(|_| EngineError::InvalidFlag {
            flag: "--signal".into(),
            value: text.into(),
            reason: "invalid signal".into(),
        })
}

/// A unix socket path short enough for `sun_path` (108 bytes): the path itself when it fits,
/// else `/proc/self/fd/<dir fd>/<name>` through an open handle on its directory (valid in this
/// process while the value lives).
pub struct SocketPath {
    _dir: Option<std::fs::File>,
    pub path: std::path::PathBuf,
}

pub fn socket_path(full: &std::path::Path) -> Result<SocketPath> {
    use std::os::fd::AsRawFd;
    if full.as_os_str().len() < 100 {
        return Ok(SocketPath {
            _dir: None,
            path: full.to_path_buf(),
        });
    }
    let (Some(dir), Some(name)) = (full.parent(), full.file_name()) else {
        return Err(EngineError::io(
            full,
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a socket path"),
        ));
    };
    let handle = std::fs::File::open(dir).map_err(|e| EngineError::io(dir, e))?;
    let path = std::path::PathBuf::from(format!("/proc/self/fd/{}", handle.as_raw_fd())).join(name);
    Ok(SocketPath {
        _dir: Some(handle),
        path,
    })
}

/// How a process ended, as Docker reports it (one rule, in berth-common).
pub use berth_common::process::{decode_wait_status, exit_code_of};

/// Whether this process has exactly one thread (`Threads:` in `/proc/self/status`), so that a
/// forked child may run ordinary Rust code. False when it cannot tell.
pub fn is_single_threaded() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| threads_of(&status))
        == Some(1)
}

fn threads_of(status: &str) -> Option<u32> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    #[test]
    fn thread_count_is_read_from_status() {
        assert_eq!(super::threads_of("Name:\tx\nThreads:\t3\nX: 1\n"), Some(3));
        assert_eq!(super::threads_of("Name:\tx\n"), None);
        let other = std::thread::spawn(|| {
            std::thread::sleep(std::time::Duration::from_millis(1));
        });
        assert!(!super::is_single_threaded());
        let _ = other.join();
    }

    #[test]
    fn wait_statuses_decode_to_docker_codes() {
        assert_eq!(super::decode_wait_status(3 << 8), Some(3));
        assert_eq!(super::decode_wait_status(libc::SIGKILL), Some(137));
        assert_eq!(super::decode_wait_status(0x137f), None);
    }

    #[test]
    fn signals_parse() {
        assert_eq!(super::parse_signal("SIGTERM").unwrap(), 15);
        assert_eq!(super::parse_signal("kill").unwrap(), 9);
        assert_eq!(super::parse_signal("2").unwrap(), 2);
        assert!(super::parse_signal("SIGNOPE").is_err());
    }
}
