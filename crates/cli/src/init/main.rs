//! `docker-init` for `berth run --init`: a minimal PID 1 in the style of tini, built by build.rs
//! as a static binary (std only) and bind-mounted at `/sbin/docker-init`.
//!
//! It starts the command as its child, forwards every catchable signal to it, reaps every zombie
//! re-parented to it, and exits with the child's status (128+n when the child died of signal n).
//! Written by hand because no crate can be linked here: the program must build with nothing but
//! rustc and std, and std has no signal API, so the few libc calls are declared below.
use std::process::{exit, Command};

#[repr(C)]
struct SigSet {
    bits: [u64; 16],
}

extern "C" {
    fn sigfillset(set: *mut SigSet) -> i32;
    fn sigprocmask(how: i32, set: *const SigSet, old: *mut SigSet) -> i32;
    fn sigwaitinfo(set: *const SigSet, info: *mut [u8; 128]) -> i32;
    fn waitpid(pid: i32, status: *mut i32, options: i32) -> i32;
    fn kill(pid: i32, sig: i32) -> i32;
}

const SIG_SETMASK: i32 = 2;
const WNOHANG: i32 = 1;
const SIGCHLD: i32 = 17;

fn main() {
    let mut args = std::env::args().skip(1).peekable();
    if args.peek().map(String::as_str) == Some("--") {
        args.next();
    }
    let argv: Vec<String> = args.collect();
    let Some((program, rest)) = argv.split_first() else {
        eprintln!("docker-init: usage: docker-init [--] PROGRAM [ARGS...]");
        exit(1);
    };
    let mut all = SigSet { bits: [0; 16] };
    // Block everything before the child exists, so no signal can take its default action on us;
    // std's spawn gives the child an empty signal mask and default dispositions.
    // SAFETY: plain libc calls on a properly sized, initialised sigset buffer.
    unsafe {
        sigfillset(&mut all);
        sigprocmask(SIG_SETMASK, &all, std::ptr::null_mut());
    }
    let child = match Command::new(program).args(rest).spawn() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("docker-init: exec {program} failed: {e}");
            exit(if e.kind() == std::io::ErrorKind::NotFound {
                127
            } else {
                126
            });
        }
    };
    let child_pid = child.id() as i32;
    loop {
        let mut info = [0u8; 128];
        // SAFETY: `all` is a filled set and `info` is a buffer as large as siginfo_t.
        let sig = unsafe { sigwaitinfo(&all, &mut info) };
        if sig > 0 && sig != SIGCHLD {
            // SAFETY: forwarding a signal number we just received to our own child.
            unsafe { kill(child_pid, sig) };
            continue;
        }
        loop {
            let mut status = 0;
            // SAFETY: reaping any child without blocking; `status` is a valid out pointer.
            let pid = unsafe { waitpid(-1, &mut status, WNOHANG) };
            if pid <= 0 {
                break;
            }
            if pid == child_pid {
                let code = if status & 0x7f == 0 {
                    (status >> 8) & 0xff
                } else {
                    128 + (status & 0x7f)
                };
                exit(code);
            }
        }
    }
}
