//! A head start for the one slow step of starting a container: moving its init into its cgroup.
//!
//! A cgroup move takes the kernel's `cgroup_threadgroup_rwsem` for writing, and when no move
//! happened lately that first waits for a whole RCU grace period (`rcu_sync_enter` →
//! `synchronize_rcu`): 8–19 ms on the 2-core test VM, over half of `berth run --rm IMG true`.
//! Writers that overlap that wait, or come within a grace period after it, share it. So `run`
//! forks a throwaway child first thing that writes "0" (itself) into the `cgroup.procs` of the
//! cgroup it is already in — a move to where it is, which changes nothing — and exits. Its grace
//! period runs while the CLI builds the layer, record and spec; the runtime's real move of the
//! init then finds the lock already fast. Best effort: if anything fails there is simply no
//! head start. (A host whose cgroup hierarchy is mounted with `favordynmods` never waits.)
//!
//! The head start is a fork when the caller is single-threaded (the CLI; the child makes only
//! raw syscalls), else a spawn of the hidden entry point `__berth-prime-cgroup`
//! (`hidden_entry`), which does the same write and exits.
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// The throwaway child; reaped (if done) when dropped, else left to be reaped later.
#[derive(Debug)]
pub struct Primer {
    child: PrimerChild,
}

#[derive(Debug)]
enum PrimerChild {
    Forked(libc::pid_t),
    Spawned(Option<std::process::Child>),
}

impl Drop for Primer {
    fn drop(&mut self) {
        match &mut self.child {
            PrimerChild::Forked(pid) => {
                let mut status = 0;
                // SAFETY: waitpid with WNOHANG on our own child.
                unsafe { libc::waitpid(*pid, &mut status, libc::WNOHANG) };
            }
            PrimerChild::Spawned(slot) => {
                if let Some(mut child) = slot.take() {
                    if let Ok(None) = child.try_wait() {
                        // A threaded caller lives on: reap the child when it is done rather
                        // than leave a zombie behind.
                        std::thread::spawn(move || child.wait());
                    }
                }
            }
        }
    }
}

/// Starts the priming child: forked when this process is single-threaded, else spawned
/// through the hidden entry point (none when no program serves it).
pub fn start() -> Option<Primer> {
    let procs = own_procs_file(
        &std::fs::read_to_string("/proc/self/cgroup").ok()?,
        Path::new("/sys/fs/cgroup"),
    )?;
    if !crate::sys::is_single_threaded() {
        let child = std::process::Command::new(crate::reexec::entry_program()?)
            .arg(crate::reexec::PRIME_CGROUP_ENTRY)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .ok()?;
        return Some(Primer {
            child: PrimerChild::Spawned(Some(child)),
        });
    }
    let path = CString::new(procs.as_os_str().as_bytes()).ok()?;
    // SAFETY: this process is single-threaded (checked above); the child only makes raw
    // syscalls (open, write, _exit) on memory prepared before the fork, and never returns into
    // Rust code.
    match unsafe { libc::fork() } {
        -1 => None,
        0 => unsafe {
            // SAFETY: `path` is a valid C string; the descriptor is ours; _exit skips the
            // parent's atexit handlers and buffered output.
            let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
            if fd >= 0 {
                libc::write(fd, b"0".as_ptr().cast(), 1);
            }
            libc::_exit(0)
        },
        pid => Some(Primer {
            child: PrimerChild::Forked(pid),
        }),
    }
}

/// The priming write itself, for the hidden entry point's process (best effort).
pub(crate) fn prime_own_cgroup() {
    let Some(procs) = std::fs::read_to_string("/proc/self/cgroup")
        .ok()
        .and_then(|text| own_procs_file(&text, Path::new("/sys/fs/cgroup")))
    else {
        return;
    };
    let _ = std::fs::write(procs, "0");
}

/// The `cgroup.procs` of the cgroup this process is in, given `/proc/self/cgroup`'s text:
/// the v1 `pids` hierarchy when mounted, else the v2 one (`unified` in a hybrid layout).
fn own_procs_file(proc_self_cgroup: &str, mount_root: &Path) -> Option<PathBuf> {
    let mut candidates = Vec::new();
    for line in proc_self_cgroup.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        let rel = path.trim_start_matches('/');
        if controllers.split(',').any(|c| c == "pids") {
            candidates.insert(0, mount_root.join("pids").join(rel));
        } else if controllers.is_empty() {
            candidates.push(mount_root.join("unified").join(rel));
            candidates.push(mount_root.join(rel));
        }
    }
    candidates
        .into_iter()
        .map(|dir| dir.join("cgroup.procs"))
        .find(|p| p.exists())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefers_v1_pids_then_unified_then_plain_v2() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path();
        let text = "9:name=systemd:/\n8:pids:/a/b\n7:blkio:/\n0::/x\n";
        assert_eq!(own_procs_file(text, root), None);
        for dir in ["x", "unified/x", "pids/a/b"] {
            std::fs::create_dir_all(root.join(dir)).expect("mkdir");
            std::fs::write(root.join(dir).join("cgroup.procs"), "").expect("write");
        }
        assert_eq!(
            own_procs_file(text, root),
            Some(root.join("pids/a/b/cgroup.procs"))
        );
        assert_eq!(
            own_procs_file("0::/x\n", root),
            Some(root.join("unified/x/cgroup.procs"))
        );
        std::fs::remove_dir_all(root.join("unified")).expect("rm");
        assert_eq!(
            own_procs_file("0::/x\n", root),
            Some(root.join("x/cgroup.procs"))
        );
    }
}
