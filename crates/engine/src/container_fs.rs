//! A container's files as the host reads and writes them for `cp` and `export`. Every
//! container path is resolved inside the container's root by the kernel (`berth-inroot`:
//! `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)` on an fd of the root), trees are read
//! through directory fds with `O_NOFOLLOW` (`berth_inroot::walk`), and files are written by the
//! image store's hardened tar applier rooted at an fd of the destination directory. So a
//! container that swaps a directory for a symlink to a host path while a copy runs redirects
//! nothing outside its root. Copies travel as a tar stream, as Docker's do, which is also what
//! `cp CTR:SRC -` prints and `cp - CTR:DST` reads.
//!
//! This module never mounts anything: callers hand it the path of a mounted root.
use crate::error::{EngineError, Result};
use berth_image::apply::{unpack_into, UnpackOptions};
use berth_image::export::{write_entry_tar, write_tree_tar, TreeTarOptions};
use berth_inroot::{Located, Root};
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// `cp` flags.
#[derive(Debug, Clone, Copy, Default)]
pub struct CopyOptions {
    /// `-a`: keep uid/gid of the copied entries.
    pub archive: bool,
    /// `-L`: follow a symlink given as the source.
    pub follow_link: bool,
}

fn io(what: impl AsRef<Path>) -> impl FnOnce(std::io::Error) -> EngineError {
    move |e| EngineError::io(what, e)
}

/// What a copy reads: the entry `name` of `dir` (`None`: `dir` itself), and whether only its
/// contents are copied (`SRC/.`).
struct Source {
    dir: OwnedFd,
    name: Option<OsString>,
    contents_only: bool,
    is_dir: bool,
}

impl Source {
    /// The name the copied root gets when the destination does not say (the source's own).
    fn base_name(&self, path: &str) -> Vec<u8> {
        match &self.name {
            Some(n) => n.as_bytes().to_vec(),
            None => Path::new(path.trim_end_matches("/."))
                .file_name()
                .map(|n| n.as_bytes().to_vec())
                // The container's `/` itself: its contents.
                .unwrap_or_default(),
        }
    }

    /// Writes the source as a tar whose root entry is `as_name` (empty: contents only).
    fn write_tar(&self, as_name: &[u8], out: &mut dyn Write) -> std::io::Result<()> {
        let opts = TreeTarOptions { whiteouts: false };
        match &self.name {
            Some(n) => write_entry_tar(self.dir.as_fd(), n, as_name, out, opts),
            None if as_name.is_empty() => write_tree_tar(self.dir.as_fd(), out, opts),
            // A directory reached through `/` or `..`: the walk names "." of it `as_name`.
            None => write_entry_tar(self.dir.as_fd(), OsStr::new("."), as_name, out, opts),
        }
    }
}

fn wants_contents(path: &str) -> bool {
    path.ends_with("/.") || path == "."
}

fn stat_of(loc: &Located) -> std::io::Result<rustix::fs::Stat> {
    Ok(match &loc.name {
        Some(n) => rustix::fs::statat(&loc.dir, n.as_os_str(), AtFlags::SYMLINK_NOFOLLOW)?,
        None => rustix::fs::fstat(&loc.dir)?,
    })
}

fn is_dir(st: &rustix::fs::Stat) -> bool {
    FileType::from_raw_mode(st.st_mode) == FileType::Directory
}

/// Resolves a source path inside a container root.
fn container_source(root: &Root, path: &str, follow: bool, container: &str) -> Result<Source> {
    let not_found = || {
        copy_refused(format!(
            "Could not find the file {path} in container {container}"
        ))
    };
    let contents_only = wants_contents(path);
    let trimmed = if contents_only {
        path.trim_end_matches('.')
    } else {
        path
    };
    let loc = if follow || contents_only || trimmed.ends_with('/') {
        root.locate_following(Path::new(trimmed))
    } else {
        root.locate(Path::new(trimmed))
    };
    let loc = loc.map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => not_found(),
        _ => EngineError::io(path, e),
    })?;
    let st = stat_of(&loc).map_err(|_| not_found())?;
    let is_dir = is_dir(&st);
    if (trimmed.ends_with('/') || contents_only) && !is_dir {
        return Err(copy_refused(format!("{path}: not a directory")));
    }
    Ok(Source {
        dir: loc.dir,
        name: loc.name,
        contents_only,
        is_dir,
    })
}

/// Resolves a source path on the host.
fn host_source(path: &Path, follow: bool) -> Result<Source> {
    let text = path.to_string_lossy();
    let contents_only = wants_contents(&text);
    let resolved = if follow {
        std::fs::canonicalize(path).map_err(io(path))?
    } else {
        path.to_path_buf()
    };
    let meta = std::fs::symlink_metadata(&resolved).map_err(io(path))?;
    let (parent, name) = match (resolved.parent(), resolved.file_name()) {
        (Some(p), Some(n)) if !contents_only => (
            if p.as_os_str().is_empty() {
                Path::new(".")
            } else {
                p
            },
            Some(n.to_os_string()),
        ),
        _ => (resolved.as_path(), None),
    };
    let dir = rustix::fs::open(
        parent,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| EngineError::io(parent, e.into()))?;
    Ok(Source {
        dir,
        name,
        contents_only,
        is_dir: meta.is_dir(),
    })
}

/// Streams `source` (renamed `as_name`) into the directory `dest` through a pipe: one thread
/// writes the tar, this one applies it with the hardened applier.
fn transfer(
    source: &Source,
    as_name: &[u8],
    dest: BorrowedFd<'_>,
    owner: Option<(u32, u32)>,
    label: &str,
) -> Result<()> {
    berth_image::apply::unpack_produced(
        dest,
        label,
        UnpackOptions {
            owner,
            whiteouts: false,
        },
        |w| source.write_tar(as_name, w),
    )
    .map(drop)
    .map_err(|source| EngineError::CopyFailed {
        what: label.to_string(),
        source,
    })
}

/// `berth cp CTR:SRC HOSTDST`: copies from the container mounted at `rootfs` to the host.
pub fn copy_out(
    rootfs: &Path,
    container: &str,
    src: &str,
    dst: &Path,
    opts: CopyOptions,
) -> Result<()> {
    let root = Root::open(rootfs).map_err(io(rootfs))?;
    let source = container_source(&root, src, opts.follow_link, container)?;
    let (dest_dir, as_name) = host_destination(dst, &source, src)?;
    let owner = (!opts.archive).then(|| {
        (
            rustix::process::geteuid().as_raw(),
            rustix::process::getegid().as_raw(),
        )
    });
    transfer(
        &source,
        &as_name,
        dest_dir.as_fd(),
        owner,
        &dst.to_string_lossy(),
    )
}

/// `berth cp CTR:SRC -`: writes the source as a tar to `out`.
pub fn archive_out(
    rootfs: &Path,
    container: &str,
    src: &str,
    follow: bool,
    out: &mut dyn Write,
) -> Result<()> {
    let root = Root::open(rootfs).map_err(io(rootfs))?;
    let source = container_source(&root, src, follow, container)?;
    let name = if source.contents_only {
        Vec::new()
    } else {
        source.base_name(src)
    };
    source.write_tar(&name, out).map_err(io(src))
}

/// Docker's destination rule on the host side: onto an existing directory the source goes
/// inside it (its contents for `SRC/.`); otherwise it is created as `DST`, whose parent must exist.
fn host_destination(dst: &Path, source: &Source, src: &str) -> Result<(OwnedFd, Vec<u8>)> {
    let open = |p: &Path| {
        rustix::fs::open(
            p,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| EngineError::io(p, e.into()))
    };
    match std::fs::metadata(dst) {
        Ok(m) if m.is_dir() => {
            let name = if source.contents_only {
                Vec::new()
            } else {
                source.base_name(src)
            };
            Ok((open(dst)?, name))
        }
        Ok(_) if source.is_dir => Err(copy_refused(format!(
            "cannot copy directory to file: {}",
            dst.display()
        ))),
        _ => {
            if dst.to_string_lossy().ends_with('/') && !source.is_dir {
                return Err(copy_refused(format!(
                    "destination directory {} does not exist",
                    dst.display()
                )));
            }
            let parent = match dst.parent() {
                Some(p) if !p.as_os_str().is_empty() => p,
                _ => Path::new("."),
            };
            let name = dst
                .file_name()
                .map(|n| n.as_bytes().to_vec())
                .ok_or_else(|| copy_refused(format!("invalid destination {}", dst.display())))?;
            Ok((open(parent)?, name))
        }
    }
}

/// `berth cp HOSTSRC CTR:DST`: copies from the host into the container mounted at `rootfs`.
pub fn copy_in(
    rootfs: &Path,
    container: &str,
    src: &Path,
    dst: &str,
    opts: CopyOptions,
) -> Result<()> {
    let root = Root::open(rootfs).map_err(io(rootfs))?;
    let source = host_source(src, opts.follow_link)?;
    let src_text = src.to_string_lossy();
    let (dest_dir, as_name) = container_destination(&root, container, dst, &source, &src_text)?;
    let owner = (!opts.archive).then_some((0, 0));
    transfer(&source, &as_name, dest_dir.as_fd(), owner, dst)
}

/// `berth cp - CTR:DST`: extracts a tar read from `input` into the container directory `dst`.
pub fn extract_in(
    rootfs: &Path,
    container: &str,
    input: &mut dyn Read,
    dst: &str,
    archive: bool,
) -> Result<()> {
    let root = Root::open(rootfs).map_err(io(rootfs))?;
    let dir = root
        .open_dir(Path::new(dst))
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ENOTDIR) => copy_refused(format!(
                "destination \"{container}:{dst}\" must be a directory"
            )),
            _ => copy_refused(format!(
                "Could not find the file {dst} in container {container}"
            )),
        })?;
    let owner = (!archive).then_some((0, 0));
    unpack_into(
        input,
        dir.as_fd(),
        dst,
        UnpackOptions {
            owner,
            whiteouts: false,
        },
    )
    .map(drop)
    .map_err(|source| EngineError::CopyFailed {
        what: format!("to {dst}"),
        source,
    })
}

/// Docker's destination rule inside the container; the directory returned was resolved inside
/// the root and is held open, so later swaps of any path component change nothing.
fn container_destination(
    root: &Root,
    container: &str,
    dst: &str,
    source: &Source,
    src: &str,
) -> Result<(OwnedFd, Vec<u8>)> {
    let located = root.locate_following(Path::new(dst));
    let existing = located
        .as_ref()
        .ok()
        .and_then(|l| stat_of(l).ok().map(|st| is_dir(&st)));
    match (located, existing) {
        (Ok(loc), Some(true)) => {
            let dir = match &loc.name {
                Some(n) => rustix::fs::openat(
                    &loc.dir,
                    n.as_os_str(),
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| EngineError::io(dst, e.into()))?,
                None => loc.dir,
            };
            let name = if source.contents_only {
                Vec::new()
            } else {
                source.base_name(src)
            };
            Ok((dir, name))
        }
        (Ok(_), Some(false)) if source.is_dir => Err(copy_refused(format!(
            "cannot copy directory to file: {container}:{dst}"
        ))),
        (Ok(loc), _) => {
            if dst.ends_with('/') {
                return Err(copy_refused(format!(
                    "destination directory {container}:{dst} does not exist"
                )));
            }
            let name = loc
                .name
                .map(|n| n.as_bytes().to_vec())
                .ok_or_else(|| copy_refused(format!("invalid destination {container}:{dst}")))?;
            Ok((loc.dir, name))
        }
        (Err(_), _) => Err(copy_refused(format!(
            "Could not find the file {} in container {container}",
            Path::new(dst)
                .parent()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| dst.to_string())
        ))),
    }
}

/// A volume's copy-up: when the directory `target` exists inside the container root, its
/// contents (owners and modes kept) are copied into the host directory `data`, which then takes
/// the directory's owner and mode. Returns the source directory's metadata, `None` when there is
/// nothing to copy (missing, or not a directory).
pub fn copy_up(rootfs: &Path, target: &str, data: &Path) -> Result<Option<rustix::fs::Stat>> {
    let root = Root::open(rootfs).map_err(io(rootfs))?;
    let Ok(dir) = root.open_dir(Path::new(target)) else {
        return Ok(None);
    };
    let st = rustix::fs::fstat(&dir).map_err(|e| EngineError::io(target, e.into()))?;
    let source = Source {
        dir,
        name: None,
        contents_only: true,
        is_dir: true,
    };
    let dest = rustix::fs::open(
        data,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| EngineError::io(data, e.into()))?;
    transfer(&source, b"", dest.as_fd(), None, &data.to_string_lossy())?;
    Ok(Some(st))
}

/// `berth export`: the container's root as a tar, read through fds only.
pub fn export_root(rootfs: &Path, out: &mut dyn Write) -> Result<()> {
    let root = Root::open(rootfs).map_err(io(rootfs))?;
    let dir = root.open_dir(Path::new(".")).map_err(io(rootfs))?;
    write_tree_tar(dir.as_fd(), out, TreeTarOptions { whiteouts: false }).map_err(io(rootfs))
}

/// A `cp` source or destination Docker would refuse, in Docker's words.
fn copy_refused(message: String) -> EngineError {
    EngineError::Copy { message }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn setup() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        let host = t.path().join("host");
        std::fs::create_dir_all(root.join("w/sub")).unwrap();
        std::fs::write(root.join("w/sub/f"), b"inside").unwrap();
        std::fs::create_dir_all(&host).unwrap();
        std::fs::write(host.join("secret"), b"HOSTSECRET").unwrap();
        (t, root, host)
    }

    #[test]
    fn copy_out_and_in_follow_docker_rules() {
        let (t, root, host) = setup();
        let out = t.path().join("out");
        copy_out(&root, "c", "/w", &out, CopyOptions::default()).unwrap();
        assert_eq!(std::fs::read(out.join("sub/f")).unwrap(), b"inside");
        copy_out(&root, "c", "/w/sub/f", &out, CopyOptions::default()).unwrap();
        assert_eq!(std::fs::read(out.join("f")).unwrap(), b"inside");
        copy_in(
            &root,
            "c",
            &host.join("secret"),
            "/w/",
            CopyOptions::default(),
        )
        .unwrap();
        assert_eq!(std::fs::read(root.join("w/secret")).unwrap(), b"HOSTSECRET");
        copy_in(
            &root,
            "c",
            &host.join("secret"),
            "/w/renamed",
            CopyOptions::default(),
        )
        .unwrap();
        assert!(root.join("w/renamed").is_file());
        let e = copy_out(&root, "c", "/nope", &out, CopyOptions::default()).unwrap_err();
        assert!(e
            .to_string()
            .contains("Could not find the file /nope in container c"));
    }

    #[test]
    fn symlinks_to_the_host_stay_inside() {
        let (t, root, host) = setup();
        // The container's /w is a link to the host directory's path.
        std::fs::remove_dir_all(root.join("w")).unwrap();
        symlink(&host, root.join("w")).unwrap();
        let out = t.path().join("out");
        std::fs::create_dir(&out).unwrap();
        assert!(copy_out(&root, "c", "/w/secret", &out, CopyOptions::default()).is_err());
        assert!(!out.join("secret").exists());
        // Copying the link itself copies a link.
        copy_out(&root, "c", "/w", &out, CopyOptions::default()).unwrap();
        assert!(std::fs::symlink_metadata(out.join("w"))
            .unwrap()
            .file_type()
            .is_symlink());
        // Writing "into" it lands inside the root, under the host path's name.
        std::fs::write(t.path().join("new"), b"x").unwrap();
        let _ = copy_in(
            &root,
            "c",
            &t.path().join("new"),
            "/w/new",
            CopyOptions::default(),
        );
        assert!(!host.join("new").exists());
        let mut tar = Vec::new();
        export_root(&root, &mut tar).unwrap();
        assert!(!tar.windows(10).any(|w| w == b"HOSTSECRET"));
    }
}
