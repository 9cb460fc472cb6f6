//! Files inside a root directory (a container's rootfs, a layer, a copy destination), reached
//! only through file descriptors: every path is resolved by the kernel with
//! `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)` on an fd of the root, so `..`, absolute
//! symlinks and symlinks swapped in by a racing container are clamped to the root instead of
//! leading out of it. Nothing here joins strings onto a host path.
//!
//! This is the one place Berth does that: the runtime (mount targets), the image store (layer
//! extraction), the engine (`cp`, `export`, `commit`) and the builder (`COPY`/`ADD`) all go
//! through [`Root`], [`open_in_root`] and [`walk`]. Written by hand because no maintained crate
//! offers `RESOLVE_IN_ROOT`-based access on top of `rustix` (`pathrs` needs a C toolchain and
//! its own ABI; `cap-std` resolves in userspace and has no `IN_ROOT` clamping of absolute links).
//!
//! What it must not do: decide where roots live, or interpret archive formats.

pub mod walk;

use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{AtFlags, Mode, OFlags, ResolveFlags};
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

/// Symlink hops allowed while creating through dangling links, as the kernel's own limit.
const MAX_LINK_HOPS: u32 = 40;

/// What to create when a path is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File,
}

fn resolve_flags() -> ResolveFlags {
    ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS
}

/// `path` without its leading `/` and `.` components: how the kernel sees it relative to the root.
fn relative(path: &Path) -> PathBuf {
    path.components()
        .filter(|c| !matches!(c, Component::RootDir | Component::CurDir))
        .collect()
}

/// Opens `path` (absolute or relative, interpreted inside `root`) with `flags`; `O_CLOEXEC` is
/// always added. Symlinks and `..` never leave `root`.
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
            // EAGAIN: a concurrent rename raced the lookup; the kernel asks us to retry.
            Err(rustix::io::Errno::AGAIN) | Err(rustix::io::Errno::INTR) => continue,
            other => return other.map_err(io::Error::from),
        }
    }
}

/// An `O_PATH` handle on `path` inside `root`, creating missing directories (and, for
/// [`Kind::File`], an empty file as the last component). A dangling symlink on the way has its
/// target created instead, still inside the root (what runc does for mount points).
pub fn ensure_in_root(root: BorrowedFd<'_>, path: &Path, kind: Kind) -> io::Result<OwnedFd> {
    ensure_limited(root, path, kind, MAX_LINK_HOPS)
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
                    let target = PathBuf::from(OsStr::from_bytes(target.as_bytes()));
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

/// A path split into the directory that holds it (resolved inside the root) and its last name,
/// which is *not* resolved: operating on `(dir, name)` with `*at(..., AT_SYMLINK_NOFOLLOW)` or
/// `O_NOFOLLOW` can never be redirected by a symlink.
#[derive(Debug)]
pub struct Located {
    pub dir: OwnedFd,
    /// `None` when the path names the root itself (or ends in `..`/`.`): then `dir` is the
    /// object, already resolved.
    pub name: Option<OsString>,
}

/// A root directory held open; every lookup below it stays inside it.
#[derive(Debug)]
pub struct Root {
    fd: OwnedFd,
}

impl Root {
    /// Opens the directory at the host path `path` as a root.
    pub fn open(path: &Path) -> io::Result<Root> {
        let fd = rustix::fs::open(
            path,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Root { fd })
    }

    /// Uses an already-open directory fd as a root.
    pub fn from_fd(fd: OwnedFd) -> Root {
        Root { fd }
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Opens `path` inside the root (symlinks followed, clamped to the root).
    pub fn open_path(&self, path: &Path, flags: OFlags) -> io::Result<OwnedFd> {
        open_in_root(self.fd(), path, flags)
    }

    /// A readable directory fd for `path` inside the root.
    pub fn open_dir(&self, path: &Path) -> io::Result<OwnedFd> {
        self.open_path(path, OFlags::RDONLY | OFlags::DIRECTORY)
    }

    /// Splits `path` into its parent directory (resolved inside the root) and last name.
    pub fn locate(&self, path: &Path) -> io::Result<Located> {
        let rel = relative(path);
        let last = rel.components().next_back();
        match last {
            Some(Component::Normal(name)) => {
                let parent = rel.parent().unwrap_or(Path::new(""));
                let dir = self.open_dir(parent)?;
                Ok(Located {
                    dir,
                    name: Some(name.to_os_string()),
                })
            }
            _ => Ok(Located {
                dir: self.open_dir(&rel)?,
                name: None,
            }),
        }
    }

    /// Like [`Root::locate`], but a symlink as the last component is followed (inside the root)
    /// until a non-link is reached, as `cp -L` and a destination directory need.
    pub fn locate_following(&self, path: &Path) -> io::Result<Located> {
        let mut current = relative(path);
        for _ in 0..MAX_LINK_HOPS {
            let loc = self.locate(&current)?;
            let Some(name) = &loc.name else {
                return Ok(loc);
            };
            match rustix::fs::readlinkat(&loc.dir, name.as_os_str(), Vec::new()) {
                Ok(target) => {
                    let target = PathBuf::from(OsStr::from_bytes(target.as_bytes()));
                    current = if target.is_absolute() {
                        target
                    } else {
                        current.parent().unwrap_or(Path::new("")).join(target)
                    };
                }
                Err(rustix::io::Errno::INVAL) | Err(rustix::io::Errno::NOENT) => return Ok(loc),
                Err(e) => return Err(e.into()),
            }
        }
        Err(io::Error::from_raw_os_error(libc::ELOOP))
    }

    /// Creates the directory `path` and its missing parents inside the root (mode `mode`, before
    /// the umask) and returns a readable fd on it. Existing symlinks on the way are followed
    /// inside the root; a non-directory in the way is an error (`ENOTDIR`).
    pub fn mkdir_all(&self, path: &Path, mode: u32) -> io::Result<OwnedFd> {
        self.mkdir_all_then(path, mode, &mut |_, _, _| Ok(()))
    }

    /// [`Root::mkdir_all`], calling `made(parent, name, is_last)` for each directory it creates
    /// (to set its owner, say) while `parent` is held open.
    pub fn mkdir_all_then(
        &self,
        path: &Path,
        mode: u32,
        made: &mut dyn FnMut(BorrowedFd<'_>, &OsStr, bool) -> io::Result<()>,
    ) -> io::Result<OwnedFd> {
        let rel = relative(path);
        let count = rel.components().count();
        let mut dir = self.open_dir(Path::new("."))?;
        let mut prefix = PathBuf::new();
        for (i, comp) in rel.components().enumerate() {
            prefix.push(comp.as_os_str());
            match self.open_dir(&prefix) {
                Ok(fd) => {
                    dir = fd;
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
            let Component::Normal(name) = comp else {
                return Err(io::Error::from(io::ErrorKind::NotFound));
            };
            match rustix::fs::mkdirat(&dir, name, Mode::from_raw_mode(mode)) {
                Ok(()) => made(dir.as_fd(), name, i + 1 == count)?,
                Err(rustix::io::Errno::EXIST) => {}
                Err(e) => return Err(e.into()),
            }
            // Reopened through the root: if a dangling link was in the way, this follows it
            // inside the root or fails; it never leaves.
            dir = match self.open_dir(&prefix) {
                Ok(fd) => fd,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    let target = ensure_in_root(self.fd(), &prefix, Kind::Dir)?;
                    drop(target);
                    self.open_dir(&prefix)?
                }
                Err(e) => return Err(e),
            };
        }
        Ok(dir)
    }

    /// `lstat` of `path` inside the root (the last component not followed).
    pub fn lstat(&self, path: &Path) -> io::Result<rustix::fs::Stat> {
        let loc = self.locate(path)?;
        match &loc.name {
            Some(name) => Ok(rustix::fs::statat(
                &loc.dir,
                name.as_os_str(),
                AtFlags::SYMLINK_NOFOLLOW,
            )?),
            None => Ok(rustix::fs::fstat(&loc.dir)?),
        }
    }

    /// Reads the whole regular file `path` inside the root (symlinks followed inside it).
    pub fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        use std::io::Read;
        let fd = self.open_path(path, OFlags::RDONLY | OFlags::NOCTTY)?;
        let mut out = Vec::new();
        std::fs::File::from(fd).read_to_end(&mut out)?;
        Ok(out)
    }
}

/// Whether the fd refers to a directory.
pub fn is_dir(fd: BorrowedFd<'_>) -> bool {
    rustix::fs::fstat(fd)
        .map(|st| {
            rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Directory
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn root_at(p: &Path) -> Root {
        Root::open(p).unwrap()
    }

    #[test]
    fn symlink_escape_is_clamped() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        symlink("/", root.join("evil")).unwrap();
        symlink("../../../../tmp", root.join("etc/up")).unwrap();
        let r = root_at(&root);
        let fd = ensure_in_root(r.fd(), Path::new("/evil/made/here"), Kind::Dir).unwrap();
        drop(fd);
        assert!(root.join("made/here").is_dir());
        ensure_in_root(r.fd(), Path::new("/etc/up/file"), Kind::File).unwrap();
        assert!(root.join("tmp/file").is_file());
    }

    #[test]
    fn locate_keeps_last_name_unresolved() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("a")).unwrap();
        symlink(dir.path(), root.join("a/out")).unwrap();
        let r = root_at(&root);
        let loc = r.locate(Path::new("/a/out")).unwrap();
        assert_eq!(loc.name.as_deref(), Some(OsStr::new("out")));
        let st = r.lstat(Path::new("/a/out")).unwrap();
        assert_eq!(
            rustix::fs::FileType::from_raw_mode(st.st_mode),
            rustix::fs::FileType::Symlink
        );
        // Following it stays inside: the host dir's path is looked up under the root.
        let err = r.locate_following(Path::new("/a/out")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(r.locate(Path::new("/")).unwrap().name.is_none());
        assert!(r.locate(Path::new("/a/..")).unwrap().name.is_none());
    }

    #[test]
    fn mkdir_all_through_links_stays_inside() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(&root).unwrap();
        symlink("/../../", root.join("up")).unwrap();
        symlink("/nowhere/deeper", root.join("dangling")).unwrap();
        let r = root_at(&root);
        r.mkdir_all(Path::new("/up/x/y"), 0o755).unwrap();
        assert!(root.join("x/y").is_dir());
        r.mkdir_all(Path::new("/dangling/z"), 0o755).unwrap();
        assert!(root.join("nowhere/deeper/z").is_dir());
        std::fs::write(root.join("file"), b"x").unwrap();
        assert!(r.mkdir_all(Path::new("/file/sub"), 0o755).is_err());
        assert_eq!(r.read(Path::new("/up/file")).unwrap(), b"x");
    }
}
