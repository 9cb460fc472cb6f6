//! Network namespaces that outlive their processes, the way the seed describes: a namespace is
//! made with `unshare(CLONE_NEWNET)` on the calling thread, pinned by bind-mounting
//! `/proc/thread-self/ns/net` onto a file under the Berth root, and the thread goes straight back
//! to the namespace it came from. Only the calling thread ever changes namespace, so this works in
//! any process and adds no thread. Removal is a lazy unmount plus unlink.
use std::fs::File;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};

use crate::error::{NetError, Result};

fn ns_err(path: &Path, source: impl Into<std::io::Error>) -> NetError {
    NetError::Netns {
        path: path.to_path_buf(),
        source: source.into(),
    }
}

/// The calling thread is in another network namespace until this is dropped.
pub struct Entered {
    original: File,
}

impl Drop for Entered {
    fn drop(&mut self) {
        // Going back cannot reasonably fail (we held the fd open); if it did, the thread would be
        // left in the container's namespace, so abort rather than carry on in the wrong place.
        if setns(self.original.as_fd(), CloneFlags::CLONE_NEWNET).is_err() {
            std::process::abort();
        }
    }
}

fn current_netns() -> Result<File> {
    let path = Path::new("/proc/thread-self/ns/net");
    File::open(path).map_err(|e| ns_err(path, e))
}

/// Moves the calling thread into the namespace pinned at `path` until the guard drops.
pub fn enter(path: &Path) -> Result<Entered> {
    let target = File::open(path).map_err(|e| ns_err(path, e))?;
    let original = current_netns()?;
    setns(target.as_fd(), CloneFlags::CLONE_NEWNET).map_err(|e| ns_err(path, e))?;
    Ok(Entered { original })
}

/// Creates a new network namespace pinned at `path` (a file that must not exist yet).
pub fn create(path: &Path) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| ns_err(parent, e))?;
    }
    File::options()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| ns_err(path, e))?;
    let pinned = (|| {
        let original = current_netns()?;
        let back = Entered { original };
        unshare(CloneFlags::CLONE_NEWNET).map_err(|e| ns_err(path, e))?;
        let bound = mount(
            Some("/proc/thread-self/ns/net"),
            path,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| ns_err(path, e));
        drop(back);
        bound
    })();
    if pinned.is_err() {
        let _ = std::fs::remove_file(path);
    }
    pinned
}

/// Unpins and removes the namespace file at `path`; a missing or unmounted file is fine.
pub fn remove(path: &Path) -> Result<()> {
    match umount2(path, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => {}
        Err(e) => return Err(ns_err(path, e)),
    }
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(ns_err(path, e)),
    }
}

/// The inode of the namespace pinned at `path` (what `/proc/<pid>/ns/net` of its processes shows).
pub fn inode(path: &Path) -> Result<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path)
        .map(|m| m.ino())
        .map_err(|e| ns_err(path, e))
}

/// Where the namespace of container `id` is pinned under the network state directory.
pub fn path_for(state_dir: &Path, container_id: &str) -> PathBuf {
    state_dir.join("netns").join(container_id)
}
