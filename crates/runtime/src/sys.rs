//! Small syscall edges the wrappers lack: clone3 (with a clone fallback), pidfds, close_range,
//! keyctl, and waiting for a process with a timeout. Every `unsafe` lives here or next to the
//! syscall it wraps.

use rustix::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::io;
use std::time::Duration;

/// The kernel's `struct clone_args` (first version, 64 bytes).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
}

/// Forks with `flags` (CLONE_NEW* and friends). Returns 0 in the child and the child's pid in
/// the parent. Uses clone3, falling back to clone(2) where clone3 is missing. The caller must be
/// single-threaded.
pub fn clone_process(flags: u64) -> io::Result<i32> {
    let mut args = CloneArgs {
        flags,
        exit_signal: libc::SIGCHLD as u64,
        ..Default::default()
    };
    // SAFETY: clone3 with no stack behaves like fork: the child continues on a copy of this
    // address space. `args` is a valid clone_args of the size passed. The process is
    // single-threaded (berth-runtime or a monitor), so the child may run ordinary code.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    if ret >= 0 {
        return Ok(ret as i32);
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() != Some(libc::ENOSYS) {
        return Err(err);
    }
    // CLONE_NEWTIME does not fit in clone(2)'s flags; callers unshare it beforehand.
    let legacy = (flags & !(libc::CLONE_NEWTIME as u64)) | libc::SIGCHLD as u64;
    // SAFETY: raw clone(2) with a null stack is fork with namespace flags; see above.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone,
            legacy as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret as i32)
    }
}

/// A pidfd for `pid` (any process, not only children).
pub fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let ret = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this fd to us; nobody else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(ret as i32) })
}

/// Sends `signal` through a pidfd (immune to pid reuse).
pub fn pidfd_send_signal(fd: &OwnedFd, signal: i32) -> io::Result<()> {
    // SAFETY: a valid pidfd, a signal number, no siginfo, no flags.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            fd.as_raw_fd(),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Waits until the process behind `pidfd` exits, up to `timeout` (None = forever). Returns
/// whether it exited.
pub fn wait_pidfd(fd: &OwnedFd, timeout: Option<Duration>) -> io::Result<bool> {
    let deadline = timeout.map(|t| std::time::Instant::now() + t);
    loop {
        let mut fds = [rustix::event::PollFd::new(fd, rustix::event::PollFlags::IN)];
        let left = deadline.map(|d| d.saturating_duration_since(std::time::Instant::now()));
        let ts = left.map(|d| rustix::event::Timespec {
            tv_sec: d.as_secs() as i64,
            tv_nsec: d.subsec_nanos() as i64,
        });
        match rustix::event::poll(&mut fds, ts.as_ref()) {
            Ok(0) => return Ok(false),
            Ok(_) => return Ok(true),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Marks every fd from `first` up close-on-exec.
pub fn cloexec_from(first: u32) -> io::Result<()> {
    // SAFETY: close_range only changes fd flags; CLOSE_RANGE_CLOEXEC = 4.
    let ret = unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, 4u32) };
    if ret == 0 {
        return Ok(());
    }
    // Old kernels: walk /proc/self/fd.
    let fds: Vec<i32> = std::fs::read_dir("/proc/self/fd")?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|fd| *fd >= first as i32)
        .collect();
    for fd in fds {
        // SAFETY: setting FD_CLOEXEC on an fd number; harmless if it was just closed.
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    Ok(())
}

/// Joins a fresh session keyring named `name` (runc does this unless --no-new-keyring).
pub fn join_session_keyring(name: &str) -> io::Result<()> {
    let cname = std::ffi::CString::new(name).map_err(|_| io::ErrorKind::InvalidInput)?;
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_int = 1;
    // SAFETY: keyctl(JOIN_SESSION_KEYRING, name) reads a NUL-terminated string.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            KEYCTL_JOIN_SESSION_KEYRING,
            cname.as_ptr(),
        )
    };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Waits for a child and returns its shell-style status (code, or 128+signal).
pub fn wait_child(pid: i32) -> io::Result<i32> {
    loop {
        let mut status = 0;
        // SAFETY: waitpid on our own child with a valid out pointer for the status.
        if unsafe { libc::waitpid(pid, &mut status, 0) } < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err);
        }
        if let Some(code) = berth_common::process::decode_wait_status(status) {
            return Ok(code);
        }
    }
}

/// Waits up to `timeout` for a child to exit and reaps it: `Some(status)` (code, or
/// 128+signal) when it exited, `None` when it was still running at the deadline (it is then
/// left unreaped, for the caller to kill and reap).
pub fn wait_child_timeout(pid: i32, timeout: Duration) -> io::Result<Option<i32>> {
    let fd = pidfd_open(pid)?;
    if !wait_pidfd(&fd, Some(timeout))? {
        return Ok(None);
    }
    wait_child(pid).map(Some)
}

/// Reads `source` (a pipe, socket or terminal master whose writer this process does not
/// control) until `done` holds for what was read so far or the writer closes it (end of file,
/// or EIO: a terminal master whose other side closed), failing with `TimedOut` when `timeout`
/// passes first. Returns everything read.
pub fn read_until(
    source: &impl AsFd,
    timeout: Duration,
    mut done: impl FnMut(&[u8]) -> bool,
) -> io::Result<Vec<u8>> {
    let deadline = std::time::Instant::now() + timeout;
    let mut text = Vec::new();
    let mut buf = [0u8; 4096];
    while !done(&text) {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "no end of output after {timeout:?}; read so far: {:?}",
                    String::from_utf8_lossy(&text)
                ),
            ));
        }
        let mut fds = [rustix::event::PollFd::new(
            source,
            rustix::event::PollFlags::IN,
        )];
        let ts = rustix::event::Timespec {
            tv_sec: left.as_secs() as i64,
            tv_nsec: left.subsec_nanos() as i64,
        };
        match rustix::event::poll(&mut fds, Some(&ts)) {
            Ok(0) | Err(rustix::io::Errno::INTR) => continue,
            Ok(_) => {}
            Err(e) => return Err(e.into()),
        }
        match rustix::io::read(source, &mut buf) {
            Ok(0) | Err(rustix::io::Errno::IO) => break,
            Ok(n) => text.extend_from_slice(&buf[..n]),
            Err(rustix::io::Errno::INTR | rustix::io::Errno::AGAIN) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(text)
}

/// Duplicates `fd` onto `target` (clearing close-on-exec on the result).
pub fn dup_onto(fd: i32, target: i32) -> io::Result<()> {
    if fd == target {
        // SAFETY: clearing FD_CLOEXEC on an fd we were handed.
        let ret = unsafe { libc::fcntl(fd, libc::F_SETFD, 0) };
        return if ret < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        };
    }
    // SAFETY: dup2 onto a fixed number; the old occupant (if any) is closed by the kernel.
    let ret = unsafe { libc::dup2(fd, target) };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Makes `fds` the process's stdin, stdout and stderr, correct even when the given fds are
/// themselves 0..2 in another order (each is first copied above 2).
pub fn install_stdio(fds: [i32; 3]) -> io::Result<()> {
    let mut high = [0; 3];
    for (i, fd) in fds.iter().enumerate() {
        // SAFETY: F_DUPFD_CLOEXEC returns a new fd >= 3 (or -1); the copy is closed at exec.
        let dup = unsafe { libc::fcntl(*fd, libc::F_DUPFD_CLOEXEC, 3) };
        if dup < 0 {
            return Err(io::Error::last_os_error());
        }
        high[i] = dup;
    }
    for (target, fd) in high.iter().enumerate() {
        dup_onto(*fd, target as i32)?;
    }
    Ok(())
}

/// Points stdio that is the host's /dev/null at the container's own /dev/null (runc's
/// `reOpenDevNull`): an fd on a mount outside the container's mount namespace is one CRIU cannot
/// checkpoint. Call after entering the root; without a /dev/null there, stdio stays as it is.
pub fn reopen_dev_null() -> io::Result<()> {
    use rustix::fs::{FileType, Mode, OFlags};
    let null = match rustix::fs::open("/dev/null", OFlags::RDWR | OFlags::CLOEXEC, Mode::empty()) {
        Ok(fd) => fd,
        Err(_) => return Ok(()),
    };
    let null_stat = rustix::fs::fstat(&null)?;
    if FileType::from_raw_mode(null_stat.st_mode) != FileType::CharacterDevice {
        return Ok(());
    }
    for target in 0..3 {
        // SAFETY: fds 0-2 are this process's stdio; borrowing one only to fstat it.
        let fd = unsafe { rustix::fd::BorrowedFd::borrow_raw(target) };
        let Ok(stat) = rustix::fs::fstat(fd) else {
            continue;
        };
        if FileType::from_raw_mode(stat.st_mode) == FileType::CharacterDevice
            && stat.st_rdev == null_stat.st_rdev
            && (stat.st_dev, stat.st_ino) != (null_stat.st_dev, null_stat.st_ino)
        {
            dup_onto(null.as_raw_fd(), target)?;
        }
    }
    Ok(())
}

/// Whether two namespace handles are the same namespace.
pub fn same_namespace(a: &str, b: &str) -> bool {
    match (std::fs::read_link(a), std::fs::read_link(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

/// `setns` on an fd, naming `what` in the error.
pub fn setns(fd: &impl AsFd, nstype: libc::c_int, what: &str) -> crate::Result<()> {
    // SAFETY: setns with a namespace fd we opened; nstype restricts the kind.
    let ret = unsafe { libc::setns(fd.as_fd().as_raw_fd(), nstype) };
    if ret < 0 {
        Err(crate::RuntimeError::sys(
            format!("joining namespace {what}"),
            io::Error::last_os_error(),
        ))
    } else {
        Ok(())
    }
}

/// `struct mount_attr` of mount_setattr(2) (linux/mount.h, size version 0).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// mount_setattr(fd, "", AT_EMPTY_PATH | AT_RECURSIVE): sets and clears `MOUNT_ATTR_*` bits on
/// the mount `fd` refers to and on every mount below it. No crate wraps this call yet.
pub fn mount_setattr_recursive(fd: &impl AsFd, set: u64, clear: u64) -> io::Result<()> {
    let attr = MountAttr {
        attr_set: set,
        attr_clr: clear,
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: the path is a NUL-terminated empty string, `attr` is a valid mount_attr of the
    // size we pass, and the fd is borrowed for the duration of the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_fd().as_raw_fd(),
            c"".as_ptr(),
            (libc::AT_EMPTY_PATH | libc::AT_RECURSIVE) as libc::c_uint,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Whether the child `pid` has exited, without reaping it (waitid WNOWAIT | WNOHANG).
pub fn child_exited(pid: i32) -> bool {
    // SAFETY: siginfo_t is plain data; waitid fills it in and WNOWAIT leaves the child waitable.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: waitid on our own child with a valid siginfo pointer.
    let ret = unsafe {
        libc::waitid(
            libc::P_PID,
            pid as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        )
    };
    // SAFETY: si_pid is valid to read after a successful waitid (0 when nothing changed).
    ret == 0 && unsafe { info.si_pid() } == pid
}
