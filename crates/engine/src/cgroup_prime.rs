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
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// The throwaway child; reaped (if done) when dropped, else left to be reaped by init.
#[derive(Debug)]
pub struct Primer {
    pid: libc::pid_t,
}

impl Drop for Primer {
    fn drop(&mut self) {
        let mut status = 0;
        // SAFETY: waitpid with WNOHANG on our own child.
        unsafe { libc::waitpid(self.pid, &mut status, libc::WNOHANG) };
    }
}

/// Forks the priming child. Call only from a single-threaded process.
pub fn start() -> Option<Primer> {
    let procs = own_procs_file(
        &std::fs::read_to_string("/proc/self/cgroup").ok()?,
        Path::new("/sys/fs/cgroup"),
    )?;
    let path = CString::new(procs.as_os_str().as_bytes()).ok()?;
    // SAFETY: the caller is single-threaded; the child only makes raw syscalls (open, write,
    // _exit) on memory prepared before the fork, and never returns into Rust code.
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
        pid => Some(Primer { pid }),
    }
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
