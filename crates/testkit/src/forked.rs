//! Running a probe in a forked child under a seccomp filter, for the tests of the filter
//! compiler (berth-runtime) and of Docker's default profile (the engine).

/// Forks; in the child (async-signal-safe calls only) sets no_new_privs, runs `load` (which
/// installs the filter: one syscall, no allocation; exit 102 if it fails), then `probe`, and
/// `_exit`s with what the probe returns. Returns the child's exit code.
pub fn in_filtered_child(load: impl Fn() -> bool, probe: impl Fn() -> i32) -> i32 {
    // SAFETY: the child only calls prctl, `load` (one syscall), the probe's raw syscalls and
    // _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        // SAFETY: plain syscalls in the forked child; _exit never returns.
        unsafe {
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                libc::_exit(101);
            }
            if !load() {
                libc::_exit(102);
            }
            libc::_exit(probe());
        }
    }
    let mut status = 0;
    // SAFETY: waiting for the child we just forked.
    let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(rc, pid);
    assert!(libc::WIFEXITED(status), "child died: status {status:#x}");
    libc::WEXITSTATUS(status)
}

/// This thread's errno (what the probe's last raw syscall left).
pub fn errno() -> i32 {
    // SAFETY: reading this thread's errno.
    unsafe { *libc::__errno_location() }
}
