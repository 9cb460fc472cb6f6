//! Signal names as runc accepts them ("KILL", "SIGKILL", "9"), and forwarding of the CLI's
//! signals to a foreground container process.

use std::sync::atomic::{AtomicI32, Ordering};

const NAMES: &[(&str, i32)] = &[
    ("HUP", libc::SIGHUP),
    ("INT", libc::SIGINT),
    ("QUIT", libc::SIGQUIT),
    ("ILL", libc::SIGILL),
    ("TRAP", libc::SIGTRAP),
    ("ABRT", libc::SIGABRT),
    ("IOT", libc::SIGIOT),
    ("BUS", libc::SIGBUS),
    ("FPE", libc::SIGFPE),
    ("KILL", libc::SIGKILL),
    ("USR1", libc::SIGUSR1),
    ("SEGV", libc::SIGSEGV),
    ("USR2", libc::SIGUSR2),
    ("PIPE", libc::SIGPIPE),
    ("ALRM", libc::SIGALRM),
    ("TERM", libc::SIGTERM),
    ("STKFLT", libc::SIGSTKFLT),
    ("CHLD", libc::SIGCHLD),
    ("CONT", libc::SIGCONT),
    ("STOP", libc::SIGSTOP),
    ("TSTP", libc::SIGTSTP),
    ("TTIN", libc::SIGTTIN),
    ("TTOU", libc::SIGTTOU),
    ("URG", libc::SIGURG),
    ("XCPU", libc::SIGXCPU),
    ("XFSZ", libc::SIGXFSZ),
    ("VTALRM", libc::SIGVTALRM),
    ("PROF", libc::SIGPROF),
    ("WINCH", libc::SIGWINCH),
    ("IO", libc::SIGIO),
    ("POLL", libc::SIGPOLL),
    ("PWR", libc::SIGPWR),
    ("SYS", libc::SIGSYS),
];

/// Parses "KILL", "SIGKILL", "kill", "9", "RTMIN+3", and "0" (only checks that the init
/// exists, as kill(2) and runc do).
pub fn parse(s: &str) -> Option<i32> {
    if let Ok(n) = s.parse::<i32>() {
        return (0..=64).contains(&n).then_some(n);
    }
    let upper = s.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some(off) = name.strip_prefix("RTMIN+") {
        return off.parse::<i32>().ok().map(|o| libc::SIGRTMIN() + o);
    }
    if name == "RTMIN" {
        return Some(libc::SIGRTMIN());
    }
    NAMES.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
}

static TARGET: AtomicI32 = AtomicI32::new(0);

extern "C" fn forward(sig: libc::c_int) {
    let pid = TARGET.load(Ordering::Relaxed);
    if pid > 0 {
        // SAFETY: kill is async-signal-safe.
        unsafe { libc::kill(pid, sig) };
    }
}

/// The terminal/job-control signals a foreground `run` passes on to the container.
const FORWARDED: [libc::c_int; 7] = [
    libc::SIGINT,
    libc::SIGTERM,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGWINCH,
];

fn forwarded_set() -> libc::sigset_t {
    // SAFETY: sigemptyset/sigaddset fill a sigset_t we own.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for sig in FORWARDED {
            libc::sigaddset(&mut set, sig);
        }
        set
    }
}

/// Holds the forwarded signals pending from before the container starts until `forward_to`,
/// so a signal sent once the container runs is never lost or taken by this process's default
/// action (runc, too, listens before it starts the container). The init and hooks start with
/// an empty mask (the init resets it; std's spawn does for hooks).
pub fn hold_forwarded() {
    let set = forwarded_set();
    // SAFETY: changing this single-threaded process's signal mask.
    unsafe { libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
}

/// Forwards the usual terminal/job-control signals to `pid` until the process exits, starting
/// with any that `hold_forwarded` kept pending.
pub fn forward_to(pid: i32) {
    TARGET.store(pid, Ordering::Relaxed);
    for sig in FORWARDED {
        // SAFETY: installing an async-signal-safe handler (one atomic load and kill).
        unsafe { libc::signal(sig, forward as *const () as libc::sighandler_t) };
    }
    let set = forwarded_set();
    // SAFETY: unblocking delivers the held signals to the handler just installed.
    unsafe { libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut()) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(parse("KILL"), Some(9));
        assert_eq!(parse("SIGKILL"), Some(9));
        assert_eq!(parse("9"), Some(9));
        assert_eq!(parse("term"), Some(15));
        assert_eq!(parse("NOPE"), None);
        assert_eq!(parse("0"), Some(0));
        assert_eq!(parse("65"), None);
    }
}
