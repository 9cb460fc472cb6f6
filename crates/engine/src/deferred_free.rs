//! Keeps the inodes of files about to be deleted alive a little longer, so that freeing their
//! blocks happens after a client was answered, not before.
//!
//! On a filesystem mounted with `discard` (this VM's root is), the last `iput` of an unlinked
//! inode truncates it and issues a synchronous discard per extent (`ext4_free_blocks` →
//! `blkdev_issue_discard` → `submit_bio_wait`, ~0.1 ms each): removing a `--rm` container's
//! ~20 small files (record, runtime state, layer metadata) cost 2–3 ms on the path a
//! foreground `run --rm` now waits for. The monitor opens those files and directories before
//! deleting them: the names disappear at once (nothing of the container is visible to anyone),
//! and the blocks are freed when the monitor exits and its descriptors close. The descriptors
//! are `O_PATH` references (nothing is opened for I/O, no symlink followed), and at most
//! `LIMIT` are held; the rest is freed at once.
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// The most descriptors held (a container that wrote thousands of files gets no head start
/// for the rest, nor exhausts RLIMIT_NOFILE).
const LIMIT: usize = 512;

/// Descriptors of inodes whose freeing is deferred until this is dropped (or the process exits).
#[derive(Debug, Default)]
pub struct Held {
    fds: Vec<OwnedFd>,
}

impl Held {
    /// Takes a reference (an `O_PATH` descriptor: nothing is opened for I/O, no device or
    /// FIFO is touched, no symlink followed) on `path` and, when it is a directory, on
    /// everything below it on the same filesystem (never a still-mounted `merged`
    /// directory), until `LIMIT` descriptors are held.
    pub fn hold_tree(&mut self, path: &Path) {
        if let Ok(meta) = std::fs::symlink_metadata(path) {
            self.hold_on_device(path, meta.dev());
        }
    }

    fn hold_on_device(&mut self, path: &Path, dev: u64) {
        if self.fds.len() >= LIMIT {
            return;
        }
        let Ok(meta) = std::fs::symlink_metadata(path) else {
            return;
        };
        if meta.dev() != dev {
            return;
        }
        let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
            return;
        };
        // SAFETY: `c` is a valid C string; O_PATH|O_NOFOLLOW only pins the inode (a symlink
        // itself, never its target); the descriptor is fresh and ours.
        let fd = unsafe {
            libc::open(
                c.as_ptr(),
                libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return;
        }
        // SAFETY: `fd` was just opened and is owned by nobody else.
        self.fds.push(unsafe { OwnedFd::from_raw_fd(fd) });
        if meta.is_dir() {
            if let Ok(entries) = std::fs::read_dir(path) {
                for entry in entries.flatten() {
                    self.hold_on_device(&entry.path(), dev);
                }
            }
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.fds.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_every_inode_below_without_following_symlinks() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let d = tmp.path().join("tree");
        std::fs::create_dir_all(d.join("sub")).expect("mkdir");
        std::fs::write(d.join("a"), "x").expect("write");
        std::fs::write(d.join("sub/b"), "y").expect("write");
        std::os::unix::fs::symlink("/etc/passwd", d.join("link")).expect("symlink");
        let fifo = std::ffi::CString::new(d.join("fifo").as_os_str().as_bytes()).expect("c");
        // SAFETY: valid C string.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        let mut held = Held::default();
        held.hold_tree(&d);
        // tree, sub, a, sub/b, link (itself), fifo
        assert_eq!(held.len(), 6);
        std::fs::remove_dir_all(&d).expect("rm");
        assert!(!d.exists());
    }
}
