//! Resolving paths inside the container's root without ever leaving it: `openat2` with
//! `RESOLVE_IN_ROOT` (symlinks and `..` are clamped to the root) and creation of missing mount
//! points component by component, each resolved the same way. Mounts then target the resolved
//! file through `/proc/self/fd/N`, so a symlink swapped in later cannot redirect them.

use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{Mode, OFlags, ResolveFlags};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

/// What to create when a mount point is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File,
}

fn resolve_flags() -> ResolveFlags {
    ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS
}

/// Opens `path` (absolute or relative, interpreted inside `root`) with `flags`.
pub fn open_in_root(root: BorrowedFd<'_>, path: &Path, flags: OFlags) -> io::Result<OwnedFd> {
    let rel = relative(path);
    let rel = if rel.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        rel
    };
    loop {
        match rustix::fs::openat2(
            root,
            &rel,
            flags | OFlags::CLOEXEC,
            Mode::empty(),
            resolve_flags(),
        ) {
            Err(rustix::io::Errno::AGAIN) | Err(rustix::io::Errno::INTR) => continue,
            other => return other.map_err(io::Error::from),
        }
    }
}

/// An `O_PATH` handle on `path` inside `root`, creating missing directories (and, for
/// [`Kind::File`], an empty file as the last component).
pub fn ensure_in_root(root: BorrowedFd<'_>, path: &Path, kind: Kind) -> io::Result<OwnedFd> {
    ensure_limited(root, path, kind, 40)
}

fn ensure_limited(
    root: BorrowedFd<'_>,
    path: &Path,
    kind: Kind,
    budget: u32,
) -> io::Result<OwnedFd> {
    if budget == 0 {
        return Err(io::Error::from_raw_os_error(libc::ELOOP));
    }
    match open_in_root(root, path, OFlags::PATH) {
        Ok(fd) => return Ok(fd),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let rel = relative(path);
    let comps: Vec<_> = rel
        .components()
        .filter(|c| matches!(c, Component::Normal(_) | Component::ParentDir))
        .collect();
    let mut parent = open_in_root(root, Path::new("."), OFlags::PATH | OFlags::DIRECTORY)?;
    let mut prefix = PathBuf::new();
    for (i, comp) in comps.iter().enumerate() {
        prefix.push(comp.as_os_str());
        let last = i + 1 == comps.len();
        match open_in_root(root, &prefix, OFlags::PATH) {
            Ok(fd) => {
                parent = fd;
                continue;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let Component::Normal(name) = comp else {
            return Err(io::Error::from(io::ErrorKind::NotFound));
        };
        // `parent` is a directory opened with O_PATH; *at calls accept it.
        let made = if last && kind == Kind::File {
            rustix::fs::openat(
                parent.as_fd(),
                *name,
                OFlags::CREATE | OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o644),
            )
            .map(drop)
        } else {
            rustix::fs::mkdirat(parent.as_fd(), *name, Mode::from_raw_mode(0o755))
        };
        match made {
            Ok(()) => {}
            Err(rustix::io::Errno::EXIST) => {
                // A dangling symlink: create its target instead, still inside the root.
                if let Ok(target) = rustix::fs::readlinkat(parent.as_fd(), *name, Vec::new()) {
                    let target = PathBuf::from(std::ffi::OsStr::from_bytes(target.as_bytes()));
                    let mut next = if target.is_absolute() {
                        target
                    } else {
                        prefix.parent().unwrap_or(Path::new("")).join(target)
                    };
                    for rest in &comps[i + 1..] {
                        next.push(rest.as_os_str());
                    }
                    return ensure_limited(root, &next, kind, budget - 1);
                }
            }
            Err(e) => return Err(e.into()),
        }
        parent = open_in_root(root, &prefix, OFlags::PATH)?;
    }
    Ok(parent)
}

/// `/proc/self/fd/N` for a handle, the path mount(2) is given.
pub fn proc_fd_path(fd: &OwnedFd) -> String {
    use std::os::fd::AsRawFd;
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

fn relative(path: &Path) -> PathBuf {
    path.components()
        .filter(|c| !matches!(c, Component::RootDir | Component::CurDir))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn symlink_escape_is_clamped() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        symlink("/", root.join("evil")).unwrap();
        symlink("../../../../tmp", root.join("etc/up")).unwrap();
        let rootfd =
            rustix::fs::open(&root, OFlags::PATH | OFlags::DIRECTORY, Mode::empty()).unwrap();
        let fd = ensure_in_root(rootfd.as_fd(), Path::new("/evil/made/here"), Kind::Dir).unwrap();
        drop(fd);
        assert!(root.join("made/here").is_dir());
        ensure_in_root(rootfd.as_fd(), Path::new("/etc/up/file"), Kind::File).unwrap();
        assert!(root.join("tmp/file").is_file());
    }
}
