//! Applies one layer tar to a layer's `diff/` directory, safely and in one pass: the stream is
//! hashed (DiffID) and recorded (tar-split) while entries are written. Every path is resolved
//! inside the layer directory with `openat2(RESOLVE_IN_ROOT)`, so neither `..`, absolute names nor
//! symlinks planted by the archive can reach outside it; `..` and absolute entry names are refused
//! outright. Whiteouts become overlay's own form (`.wh.x` → char device 0:0 named `x`,
//! `.wh..wh..opq` → `trusted.overlay.opaque=y`). Ownership, modes, mtimes, xattrs, device nodes
//! and fifos are kept. This module never decides where a layer lives; the layer store does.
use crate::error::{ImageError, Result};
use crate::side::{ChunkSource, ReadChunks, SharedStream, SideWorker};
use crate::tarstream::{EntryHeader, EntryKind, TarError, TarReader};
use rustix::fs::{AtFlags, Mode, OFlags, ResolveFlags, Timespec, Timestamps};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::OwnedFd;
use std::path::Path;

mod remove;
mod unpack;
pub use remove::{remove_tree, remove_tree_at};
pub use unpack::{unpack_into, unpack_produced, UnpackOptions};

/// What applying a layer produced.
#[derive(Debug, Clone)]
pub struct AppliedLayer {
    /// `sha256:` of the uncompressed tar stream.
    pub diff_id: String,
    /// Sum of the entries' sizes, as Docker's layer `size`.
    pub size: u64,
    /// The gzip'd tar-split document, written while extracting (streamed to disk, never
    /// held in memory).
    pub tar_split: std::path::PathBuf,
}

/// The overlay xattr that marks a directory opaque.
pub const OPAQUE_XATTR: &str = "trusted.overlay.opaque";
const WHITEOUT_PREFIX: &[u8] = b".wh.";
const OPAQUE_MARKER: &[u8] = b".wh..wh..opq";

/// Splits an archive name into safe components; refuses absolute names and `..`.
pub fn safe_components(name: &[u8]) -> std::result::Result<Vec<&[u8]>, String> {
    if name.first() == Some(&b'/') {
        return Err("absolute path".into());
    }
    let mut parts = Vec::new();
    for c in name.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => return Err("path contains '..'".into()),
            other => parts.push(other),
        }
    }
    Ok(parts)
}

fn join(parts: &[&[u8]]) -> Vec<u8> {
    parts.join(&b'/')
}

fn os(bytes: &[u8]) -> &std::ffi::OsStr {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::OsStr::from_bytes(bytes)
}

fn to_io(e: rustix::io::Errno) -> std::io::Error {
    std::io::Error::from(e)
}

struct Extractor {
    root: OwnedFd,
    label: String,
    cached_parent: Option<(Vec<u8>, OwnedFd)>,
    dir_times: Vec<(Vec<u8>, i64, u32)>,
    privileged: bool,
    /// The process umask, euid and egid: a file created with the entry's own mode and owned by
    /// us already needs no fchmod/fchown (two syscalls saved per file).
    umask: u32,
    euid: u32,
    egid: u32,
    /// Whether the cached parent directory is setgid (new files inherit its group then).
    parent_setgid: bool,
    /// Turn `.wh.` entries into overlay whiteouts (layers) or keep them as files (`cp`, `ADD`).
    whiteouts: bool,
}

/// The process umask from /proc (reading it with umask(2) would change it); 0o777 when unknown,
/// which disables the fast path.
fn current_umask() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Umask:"))
                .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
        })
        .unwrap_or(0o777)
}

const RESOLVE: ResolveFlags = ResolveFlags::IN_ROOT.union(ResolveFlags::NO_MAGICLINKS);

impl Extractor {
    /// An extractor writing below `root`.
    fn new(root: OwnedFd, label: &str, whiteouts: bool) -> Extractor {
        let euid = rustix::process::geteuid();
        Extractor {
            root,
            label: label.to_string(),
            cached_parent: None,
            dir_times: Vec::new(),
            privileged: euid.is_root(),
            umask: current_umask(),
            euid: euid.as_raw(),
            egid: rustix::process::getegid().as_raw(),
            parent_setgid: true,
            whiteouts,
        }
    }

    fn unsafe_entry(&self, name: &[u8], reason: impl Into<String>) -> ImageError {
        ImageError::UnsafeEntry {
            layer: self.label.clone(),
            name: String::from_utf8_lossy(name).into_owned(),
            reason: reason.into(),
        }
    }

    fn entry_err(&self, name: &[u8], source: std::io::Error) -> ImageError {
        ImageError::Entry {
            layer: self.label.clone(),
            name: String::from_utf8_lossy(name).into_owned(),
            source,
        }
    }

    fn open_dir(&self, rel: &[u8]) -> rustix::io::Result<OwnedFd> {
        let path = if rel.is_empty() { &b"."[..] } else { rel };
        rustix::fs::openat2(
            &self.root,
            os(path),
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
            RESOLVE,
        )
    }

    /// The directory `parts` inside the layer, created (0755) where missing.
    fn parent_dir(&mut self, parts: &[&[u8]]) -> std::io::Result<&OwnedFd> {
        let key = join(parts);
        let hit = matches!(&self.cached_parent, Some((k, _)) if *k == key);
        if !hit {
            let fd = match self.open_dir(&key) {
                Ok(fd) => fd,
                Err(rustix::io::Errno::NOENT) => self.make_dirs(parts)?,
                Err(e) => return Err(to_io(e)),
            };
            self.parent_setgid = rustix::fs::fstat(&fd)
                .map(|st| st.st_mode & 0o2000 != 0)
                .unwrap_or(true);
            self.cached_parent = Some((key, fd));
        }
        match &self.cached_parent {
            Some((_, fd)) => Ok(fd),
            None => Err(std::io::Error::other("parent cache empty")),
        }
    }

    fn make_dirs(&self, parts: &[&[u8]]) -> std::io::Result<OwnedFd> {
        let mut fd = self.open_dir(b"").map_err(to_io)?;
        for (i, part) in parts.iter().enumerate() {
            match rustix::fs::mkdirat(&fd, os(part), Mode::from_raw_mode(0o755)) {
                Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                Err(e) => return Err(to_io(e)),
            }
            fd = self.open_dir(&join(&parts[..=i])).map_err(to_io)?;
        }
        Ok(fd)
    }

    /// Removes whatever is at `name` in `dir` (a whole tree for a directory).
    fn remove_existing(dir: &OwnedFd, name: &[u8]) -> std::io::Result<()> {
        match rustix::fs::unlinkat(dir, os(name), AtFlags::empty()) {
            Ok(()) | Err(rustix::io::Errno::NOENT) => Ok(()),
            Err(rustix::io::Errno::ISDIR) | Err(rustix::io::Errno::PERM) => {
                remove_tree_at(dir, name)
            }
            Err(e) => Err(to_io(e)),
        }
    }

    fn set_owner_at(
        privileged: bool,
        dir: &OwnedFd,
        name: &[u8],
        h: &EntryHeader,
    ) -> std::io::Result<()> {
        if !privileged {
            return Ok(());
        }
        let (uid, gid) = ids(h)?;
        rustix::fs::chownat(
            dir,
            os(name),
            Some(uid),
            Some(gid),
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(to_io)
    }

    fn set_times_at(dir: &OwnedFd, name: &[u8], secs: i64, nsec: u32) -> std::io::Result<()> {
        rustix::fs::utimensat(dir, os(name), &times(secs, nsec), AtFlags::SYMLINK_NOFOLLOW)
            .map_err(to_io)
    }

    fn set_fd_meta(&self, fd: &OwnedFd, h: &EntryHeader, set_times: bool) -> std::io::Result<()> {
        self.set_fd_meta_fast(fd, h, set_times, false)
    }

    /// With `created_as_is`, the file was just created with `h.mode` (no special bits, untouched
    /// by the umask) by us, so ownership and mode are already right when the ids are ours.
    fn set_fd_meta_fast(
        &self,
        fd: &OwnedFd,
        h: &EntryHeader,
        set_times: bool,
        created_as_is: bool,
    ) -> std::io::Result<()> {
        let owned_already = created_as_is
            && h.uid == u64::from(self.euid)
            && h.gid == u64::from(self.egid)
            && !self.parent_setgid;
        if self.privileged && !owned_already {
            let (uid, gid) = ids(h)?;
            rustix::fs::fchown(fd, Some(uid), Some(gid)).map_err(to_io)?;
        }
        if !(created_as_is && (owned_already || !self.privileged)) {
            rustix::fs::fchmod(fd, Mode::from_raw_mode(h.mode)).map_err(to_io)?;
        }
        for (k, v) in &h.xattrs {
            if k.starts_with(b"trusted.overlay.") {
                continue;
            }
            match rustix::fs::fsetxattr(fd, os(k), v, rustix::fs::XattrFlags::empty()) {
                Ok(()) => {}
                Err(rustix::io::Errno::PERM) | Err(rustix::io::Errno::NOTSUP)
                    if !self.privileged => {}
                Err(e) => return Err(to_io(e)),
            }
        }
        if set_times {
            rustix::fs::futimens(fd, &times(h.mtime, h.mtime_nsec)).map_err(to_io)?;
        }
        Ok(())
    }

    fn apply_entry<R: BufRead>(&mut self, h: &EntryHeader, tar: &mut TarReader<R>) -> Result<()> {
        let parts = safe_components(&h.name).map_err(|r| self.unsafe_entry(&h.name, r))?;
        let Some((base, parent)) = parts.split_last() else {
            // The layer root itself ("./"): nothing to create.
            return Ok(());
        };
        let base = *base;
        let parent = parent.to_vec();
        if self.whiteouts && base.starts_with(WHITEOUT_PREFIX) {
            return self.apply_whiteout(h, &parent, base);
        }
        let r = self.create(h, &parent, base, tar);
        r.map_err(|e| match e {
            CreateError::Io(io) => self.entry_err(&h.name, io),
            CreateError::Image(e) => e,
        })
    }

    fn apply_whiteout(&mut self, h: &EntryHeader, parent: &[&[u8]], base: &[u8]) -> Result<()> {
        let name = h.name.clone();
        let result = (|| -> std::io::Result<()> {
            let privileged = self.privileged;
            let dir = self.parent_dir(parent)?;
            if base == OPAQUE_MARKER {
                return rustix::fs::fsetxattr(
                    dir,
                    OPAQUE_XATTR,
                    b"y",
                    rustix::fs::XattrFlags::empty(),
                )
                .map_err(to_io);
            }
            if base.starts_with(b".wh..wh.") {
                return Ok(()); // aufs bookkeeping, meaningless to overlay
            }
            let target = &base[WHITEOUT_PREFIX.len()..];
            if target.is_empty() || target == b"." || target == b".." {
                return Err(std::io::Error::other("empty whiteout name"));
            }
            Self::remove_existing(dir, target)?;
            rustix::fs::mknodat(
                dir,
                os(target),
                rustix::fs::FileType::CharacterDevice,
                Mode::empty(),
                rustix::fs::makedev(0, 0),
            )
            .map_err(to_io)?;
            if privileged {
                let (uid, gid) = ids(h)?;
                rustix::fs::chownat(
                    dir,
                    os(target),
                    Some(uid),
                    Some(gid),
                    AtFlags::SYMLINK_NOFOLLOW,
                )
                .map_err(to_io)?;
            }
            Ok(())
        })();
        self.cached_parent = None;
        result.map_err(|e| self.entry_err(&name, e))
    }

    fn create<R: BufRead>(
        &mut self,
        h: &EntryHeader,
        parent: &[&[u8]],
        base: &[u8],
        tar: &mut TarReader<R>,
    ) -> std::result::Result<(), CreateError> {
        match h.kind {
            EntryKind::Regular => {
                let plain_mode = h.mode & 0o7000 == 0 && h.mode & self.umask == 0;
                let create_mode = Mode::from_raw_mode(if plain_mode { h.mode } else { 0o600 });
                let dir = self.parent_dir(parent)?;
                let flags = OFlags::WRONLY
                    | OFlags::CREATE
                    | OFlags::EXCL
                    | OFlags::NOFOLLOW
                    | OFlags::CLOEXEC;
                let fd = match rustix::fs::openat(dir, os(base), flags, create_mode) {
                    Ok(fd) => fd,
                    Err(rustix::io::Errno::EXIST) => {
                        Self::remove_existing(dir, base)?;
                        self.cached_parent = None;
                        let dir = self.parent_dir(parent)?;
                        rustix::fs::openat(dir, os(base), flags, create_mode).map_err(to_io)?
                    }
                    Err(e) => return Err(to_io(e).into()),
                };
                let mut file = std::fs::File::from(fd);
                // Straight from the reader's buffer to the file: no copy in between.
                tar.copy_payload(|chunk| file.write_all(chunk))
                    .map_err(|e| self.tar_err(e))?;
                let fd = OwnedFd::from(file);
                self.set_fd_meta_fast(&fd, h, true, plain_mode)?;
            }
            EntryKind::Directory => {
                let dir = self.parent_dir(parent)?;
                match rustix::fs::mkdirat(dir, os(base), Mode::from_raw_mode(0o700)) {
                    Ok(()) => {}
                    Err(rustix::io::Errno::EXIST) => {
                        let st = rustix::fs::statat(dir, os(base), AtFlags::SYMLINK_NOFOLLOW)
                            .map_err(to_io)?;
                        if rustix::fs::FileType::from_raw_mode(st.st_mode)
                            != rustix::fs::FileType::Directory
                        {
                            Self::remove_existing(dir, base)?;
                            rustix::fs::mkdirat(dir, os(base), Mode::from_raw_mode(0o700))
                                .map_err(to_io)?;
                        }
                    }
                    Err(e) => return Err(to_io(e).into()),
                }
                let fd = rustix::fs::openat(
                    dir,
                    os(base),
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(to_io)?;
                self.set_fd_meta(&fd, h, false)?;
                let mut path = join(parent);
                if !path.is_empty() {
                    path.push(b'/');
                }
                path.extend_from_slice(base);
                self.dir_times.push((path, h.mtime, h.mtime_nsec));
            }
            EntryKind::Symlink => {
                let dir = self.parent_dir(parent)?;
                match rustix::fs::symlinkat(os(&h.link_name), dir, os(base)) {
                    Ok(()) => {}
                    Err(rustix::io::Errno::EXIST) => {
                        Self::remove_existing(dir, base)?;
                        rustix::fs::symlinkat(os(&h.link_name), dir, os(base)).map_err(to_io)?;
                    }
                    Err(e) => return Err(to_io(e).into()),
                }
                let privileged = self.privileged;
                let dir = self.parent_dir(parent)?;
                Self::set_owner_at(privileged, dir, base, h)?;
                Self::set_times_at(dir, base, h.mtime, h.mtime_nsec)?;
            }
            EntryKind::HardLink => {
                let target = safe_components(
                    &h.link_name
                        .clone()
                        .strip_prefix(b"/")
                        .map(<[u8]>::to_vec)
                        .unwrap_or_else(|| h.link_name.clone()),
                )
                .map_err(|r| {
                    CreateError::Image(self.unsafe_entry(&h.name, format!("hard link target: {r}")))
                })?
                .iter()
                .map(|c| c.to_vec())
                .collect::<Vec<_>>();
                let Some((tbase, tparent)) = target.split_last() else {
                    return Err(CreateError::Image(
                        self.unsafe_entry(&h.name, "hard link to the layer root"),
                    ));
                };
                let tparent: Vec<&[u8]> = tparent.iter().map(Vec::as_slice).collect();
                let tdir = match self.open_dir(&join(&tparent)) {
                    Ok(fd) => fd,
                    Err(_) => {
                        return Err(CreateError::Image(self.unsafe_entry(
                            &h.name,
                            format!(
                                "hard link target {:?} is not inside the layer",
                                String::from_utf8_lossy(&h.link_name)
                            ),
                        )))
                    }
                };
                let dir = self.parent_dir(parent)?;
                let link = |d: &OwnedFd| {
                    rustix::fs::linkat(&tdir, os(tbase), d, os(base), AtFlags::empty())
                };
                match link(dir) {
                    Ok(()) => {}
                    Err(rustix::io::Errno::EXIST) => {
                        Self::remove_existing(dir, base)?;
                        link(dir).map_err(to_io)?;
                    }
                    Err(rustix::io::Errno::NOENT) => {
                        return Err(CreateError::Image(self.unsafe_entry(
                            &h.name,
                            format!(
                                "hard link target {:?} is not inside the layer",
                                String::from_utf8_lossy(&h.link_name)
                            ),
                        )))
                    }
                    Err(e) => return Err(to_io(e).into()),
                }
            }
            EntryKind::Char | EntryKind::Block | EntryKind::Fifo => {
                let privileged = self.privileged;
                let dir = self.parent_dir(parent)?;
                let (ft, dev) = match h.kind {
                    EntryKind::Char => (
                        rustix::fs::FileType::CharacterDevice,
                        rustix::fs::makedev(h.dev_major, h.dev_minor),
                    ),
                    EntryKind::Block => (
                        rustix::fs::FileType::BlockDevice,
                        rustix::fs::makedev(h.dev_major, h.dev_minor),
                    ),
                    _ => (rustix::fs::FileType::Fifo, 0),
                };
                let make = |d: &OwnedFd| {
                    rustix::fs::mknodat(d, os(base), ft, Mode::from_raw_mode(h.mode), dev)
                };
                match make(dir) {
                    Ok(()) => {}
                    Err(rustix::io::Errno::EXIST) => {
                        Self::remove_existing(dir, base)?;
                        make(dir).map_err(to_io)?;
                    }
                    Err(rustix::io::Errno::PERM) if !privileged => return Ok(()),
                    Err(e) => return Err(to_io(e).into()),
                }
                let privileged = self.privileged;
                let dir = self.parent_dir(parent)?;
                Self::set_owner_at(privileged, dir, base, h)?;
                Self::set_times_at(dir, base, h.mtime, h.mtime_nsec)?;
            }
            EntryKind::Other(_) => {}
        }
        Ok(())
    }

    fn tar_err(&self, e: TarError) -> CreateError {
        match e {
            TarError::Io(io) => CreateError::Io(io),
            TarError::Malformed(reason) => CreateError::Image(ImageError::BadTar {
                layer: self.label.clone(),
                reason,
            }),
        }
    }

    /// Directory mtimes last, deepest first, so creating children does not disturb them.
    fn finish_dir_times(&mut self) -> Result<()> {
        self.cached_parent = None;
        let mut dirs = std::mem::take(&mut self.dir_times);
        dirs.reverse();
        for (path, secs, nsec) in dirs {
            let parts: Vec<&[u8]> = path.split(|&b| b == b'/').collect();
            let Some((base, parent)) = parts.split_last() else {
                continue;
            };
            if let Ok(dir) = self.open_dir(&join(parent)) {
                // A directory later replaced by another entry type is simply skipped.
                let _ = Self::set_times_at(&dir, base, secs, nsec);
            }
        }
        Ok(())
    }
}

enum CreateError {
    Io(std::io::Error),
    Image(ImageError),
}

impl From<std::io::Error> for CreateError {
    fn from(e: std::io::Error) -> Self {
        CreateError::Io(e)
    }
}

fn ids(h: &EntryHeader) -> std::io::Result<(rustix::fs::Uid, rustix::fs::Gid)> {
    let uid = u32::try_from(h.uid).ok().filter(|&u| u != u32::MAX);
    let gid = u32::try_from(h.gid).ok().filter(|&g| g != u32::MAX);
    match (uid, gid) {
        (Some(u), Some(g)) => Ok((rustix::fs::Uid::from_raw(u), rustix::fs::Gid::from_raw(g))),
        _ => Err(std::io::Error::other(format!(
            "uid/gid {}:{} out of range",
            h.uid, h.gid
        ))),
    }
}

fn times(secs: i64, nsec: u32) -> Timestamps {
    let t = Timespec {
        tv_sec: secs,
        tv_nsec: i64::from(nsec.min(999_999_999)),
    };
    Timestamps {
        last_access: t,
        last_modification: t,
    }
}

/// Extracts the (uncompressed) tar stream `reader` into the existing directory `dest`, hashing
/// it and writing its tar-split document to the new file `tar_split` as it goes; memory stays
/// bounded whatever the number of entries. `label` names the layer in errors.
pub fn apply_tar<R: Read>(
    reader: R,
    dest: &Path,
    label: &str,
    tar_split: &Path,
) -> Result<AppliedLayer> {
    apply_chunks(ReadChunks::new(reader), dest, label, tar_split)
}

/// [`apply_tar`] of a stream that already comes in shared chunks (a `load` hands a layer member
/// over in the buffers it read it into): file contents are written straight from those
/// buffers, and the hashing thread reads the same ones, so no byte is copied on the way.
pub fn apply_chunks<S: ChunkSource>(
    source: S,
    dest: &Path,
    label: &str,
    tar_split: &Path,
) -> Result<AppliedLayer> {
    let root = rustix::fs::open(
        dest,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| ImageError::io("opening layer directory", dest)(to_io(e)))?;
    let split_file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(tar_split)
        .map_err(ImageError::io("creating", tar_split))?;
    let split_out = std::io::BufWriter::with_capacity(1 << 16, split_file);
    let worker = SideWorker::spawn(Some(Box::new(split_out)))
        .map_err(ImageError::io("starting hashing thread", dest))?;
    let stream = SharedStream::new(source, worker.handle());
    let mut tar = TarReader::new(stream).with_side(worker.handle());
    let mut ex = Extractor::new(root, label, true);
    let mut size = 0u64;
    let bad = |reason: TarError| match reason {
        TarError::Io(source) => ImageError::Io {
            context: "reading layer",
            path: label.into(),
            source,
        },
        TarError::Malformed(reason) => ImageError::BadTar {
            layer: label.to_string(),
            reason,
        },
    };
    while let Some(h) = tar.next_entry().map_err(bad)? {
        // Docker's layer size is the size of the extracted tree (`du`-like: file sizes plus
        // symlink target lengths, hard links once, directories and whiteouts zero).
        size += match h.kind {
            EntryKind::Regular => h.size,
            EntryKind::Symlink => h.link_name.len() as u64,
            _ => 0,
        };
        ex.apply_entry(&h, &mut tar)?;
    }
    ex.finish_dir_times()?;
    drop(tar.finish().map_err(bad)?);
    let hashed = worker
        .finish()
        .map_err(ImageError::io("hashing and recording tar-split of", dest))?;
    Ok(AppliedLayer {
        diff_id: hashed.digest,
        size,
        tar_split: tar_split.to_path_buf(),
    })
}

#[cfg(test)]
mod tests;
