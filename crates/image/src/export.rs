//! Turning layers back into tar streams. A stored layer is rebuilt byte for byte from its
//! tar-split record and its `diff/` files, so the stream's sha256 is the DiffID again. A container's
//! upper directory (which has no record) is written as a fresh tar with overlay whiteouts turned
//! back into `.wh.` entries and opaque directories into `.wh..wh..opq`.
use crate::apply::{safe_components, OPAQUE_XATTR};
use crate::digest::HashingWriter;
use crate::error::{ImageError, Result};
use crate::store::Store;
use crate::tarsplit::{read_entries, Crc64, TarSplitEntry};
use berth_inroot::walk::{Item, Node};
use rustix::fd::{AsFd, BorrowedFd};
use rustix::fs::{FileType, Stat};
use rustix::fs::{Mode, OFlags, ResolveFlags};
use std::io::{Read, Write};
use std::path::Path;

fn export_err(chain_id: &str, reason: impl Into<String>) -> ImageError {
    ImageError::Export {
        chain_id: chain_id.to_string(),
        reason: reason.into(),
    }
}

impl Store {
    /// Size in bytes of the layer's rebuilt tar stream (from its tar-split, without reading files).
    pub fn layer_tar_size(&self, chain_id: &str) -> Result<u64> {
        let split = self.layout.layer_meta(chain_id).join("tar-split.json.gz");
        let f = std::fs::File::open(&split).map_err(ImageError::io("opening", &split))?;
        let mut total = 0u64;
        read_entries(std::io::BufReader::new(f), |e| {
            total += match e {
                TarSplitEntry::Segment(s) => s.len() as u64,
                TarSplitEntry::File { size, .. } => size,
            };
            Ok(())
        })
        .map_err(ImageError::io("reading", &split))?;
        Ok(total)
    }

    /// Writes the layer's original tar to `out`; checks the result against its DiffID and returns
    /// the number of bytes written.
    pub fn export_layer(&self, chain_id: &str, out: &mut dyn Write) -> Result<u64> {
        let info = self.layer(chain_id)?;
        let diff = self.layout.layer_dir(&info.cache_id).join("diff");
        let split = self.layout.layer_meta(chain_id).join("tar-split.json.gz");
        let root = rustix::fs::open(
            &diff,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| ImageError::io("opening", &diff)(e.into()))?;
        let f = std::fs::File::open(&split).map_err(ImageError::io("opening", &split))?;
        let mut w = HashingWriter::new(out);
        let mut buf = vec![0u8; 1 << 20];
        let mut failure: Option<ImageError> = None;
        let res = read_entries(std::io::BufReader::new(f), |e| {
            match e {
                TarSplitEntry::Segment(s) => w.write_all(&s)?,
                TarSplitEntry::File { name, size, crc } => {
                    if size == 0 {
                        return Ok(());
                    }
                    let parts = match safe_components(&name) {
                        Ok(p) => p,
                        Err(r) => {
                            failure =
                                Some(export_err(chain_id, format!("bad name in tar-split: {r}")));
                            return Err(std::io::Error::other("bad name"));
                        }
                    };
                    let rel = parts.join(&b'/');
                    let fd = rustix::fs::openat2(
                        &root,
                        std::ffi::OsStr::from_bytes_compat(&rel),
                        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
                        Mode::empty(),
                        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
                    )
                    .map_err(std::io::Error::from)?;
                    let mut file = std::fs::File::from(fd);
                    let mut left = size;
                    let mut sum = Crc64::new();
                    while left > 0 {
                        let want = left.min(buf.len() as u64) as usize;
                        let n = file.read(&mut buf[..want])?;
                        if n == 0 {
                            failure = Some(export_err(
                                chain_id,
                                format!(
                                    "{} is shorter than recorded",
                                    String::from_utf8_lossy(&name)
                                ),
                            ));
                            return Err(std::io::Error::other("short file"));
                        }
                        if crc.is_some() {
                            sum.update(&buf[..n]);
                        }
                        w.write_all(&buf[..n])?;
                        left -= n as u64;
                    }
                    if let Some(c) = crc {
                        if c != sum.value() {
                            failure = Some(export_err(
                                chain_id,
                                format!(
                                    "{} changed since it was stored (crc64)",
                                    String::from_utf8_lossy(&name)
                                ),
                            ));
                            return Err(std::io::Error::other("crc mismatch"));
                        }
                    }
                }
            }
            Ok(())
        });
        if let Some(f) = failure {
            return Err(f);
        }
        res.map_err(|e| export_err(chain_id, e.to_string()))?;
        let (_, digest, count) = w.finish();
        if digest != info.diff_id {
            return Err(ImageError::DigestMismatch {
                what: format!("exported layer {chain_id}"),
                expected: info.diff_id,
                actual: digest,
            });
        }
        Ok(count)
    }
}

trait FromBytesCompat {
    fn from_bytes_compat(b: &[u8]) -> &std::ffi::OsStr;
}
impl FromBytesCompat for std::ffi::OsStr {
    fn from_bytes_compat(b: &[u8]) -> &std::ffi::OsStr {
        use std::os::unix::ffi::OsStrExt;
        std::ffi::OsStr::from_bytes(b)
    }
}

/// Extended attributes of an open file, minus overlay's own (`trusted.overlay.*`).
fn xattrs_of(fd: BorrowedFd<'_>) -> Vec<(String, Vec<u8>)> {
    let mut names = vec![0u8; 4096];
    let Ok(n) = rustix::fs::flistxattr(fd, &mut names[..]) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for name in names[..n].split(|&b| b == 0).filter(|s| !s.is_empty()) {
        let name = String::from_utf8_lossy(name).into_owned();
        if name.starts_with("trusted.overlay.") || name.starts_with("user.overlay.") {
            continue;
        }
        let mut value = vec![0u8; 65536];
        if let Ok(len) = rustix::fs::fgetxattr(fd, name.as_str(), &mut value[..]) {
            value.truncate(len);
            out.push((name, value));
        }
    }
    out
}

fn is_opaque(fd: BorrowedFd<'_>) -> bool {
    let mut buf = [0u8; 8];
    matches!(rustix::fs::fgetxattr(fd, OPAQUE_XATTR, &mut buf[..]), Ok(1) if buf[0] == b'y')
}

fn header_for(st: &Stat) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_mode(st.st_mode & 0o7777);
    h.set_uid(u64::from(st.st_uid));
    h.set_gid(u64::from(st.st_gid));
    h.set_mtime(st.st_mtime.max(0) as u64);
    h.set_size(0);
    h
}

/// How a tree becomes a tar stream.
#[derive(Debug, Clone, Copy, Default)]
pub struct TreeTarOptions {
    /// The tree is an overlay upper directory: char devices 0:0 become `.wh.` entries and opaque
    /// directories get a `.wh..wh..opq` entry. Off for a merged view (`export`, `cp`), where a
    /// 0:0 device is just a device.
    pub whiteouts: bool,
}

/// A file's payload of exactly `len` bytes: a file that shrinks while it is read is padded
/// with zeros, so the archive stays well-formed.
struct Exactly<'a> {
    file: &'a mut std::fs::File,
    left: u64,
    exhausted: bool,
}

impl Read for Exactly<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let want = self.left.min(buf.len() as u64) as usize;
        let n = if self.exhausted {
            0
        } else {
            self.file.read(&mut buf[..want])?
        };
        let n = if n == 0 {
            self.exhausted = true;
            buf[..want].fill(0);
            want
        } else {
            n
        };
        self.left -= n as u64;
        Ok(n)
    }
}

/// Writes the entries the fd walk hands it.
struct TreeTar<'w> {
    builder: tar::Builder<&'w mut dyn Write>,
    seen_inodes: std::collections::HashMap<(u64, u64), Vec<u8>>,
    options: TreeTarOptions,
}

fn os(bytes: &[u8]) -> &Path {
    use std::os::unix::ffi::OsStrExt;
    Path::new(std::ffi::OsStr::from_bytes(bytes))
}

impl<'w> TreeTar<'w> {
    fn new(out: &'w mut dyn Write, options: TreeTarOptions) -> Self {
        TreeTar {
            builder: tar::Builder::new(out),
            seen_inodes: Default::default(),
            options,
        }
    }

    fn pax(&mut self, xattrs: &[(String, Vec<u8>)]) -> std::io::Result<()> {
        if xattrs.is_empty() {
            return Ok(());
        }
        let keys: Vec<(String, &[u8])> = xattrs
            .iter()
            .map(|(k, v)| (format!("SCHILY.xattr.{k}"), v.as_slice()))
            .collect();
        self.builder
            .append_pax_extensions(keys.iter().map(|(k, v)| (k.as_str(), *v)))
    }

    fn entry(&mut self, item: Item<'_>) -> std::io::Result<bool> {
        let st = item.stat;
        let rel = item.rel;
        let mut h = header_for(st);
        let ft = FileType::from_raw_mode(st.st_mode);
        match item.node {
            Node::Dir(fd) => {
                h.set_entry_type(tar::EntryType::Directory);
                self.pax(&xattrs_of(fd.as_fd()))?;
                let mut name = rel.to_vec();
                name.push(b'/');
                self.builder
                    .append_data(&mut h, os(&name), std::io::empty())?;
                if self.options.whiteouts && is_opaque(fd.as_fd()) {
                    let mut oh = header_for(st);
                    oh.set_mode(0o644);
                    oh.set_entry_type(tar::EntryType::Regular);
                    let mut wh = rel.to_vec();
                    wh.extend_from_slice(b"/.wh..wh..opq");
                    self.builder
                        .append_data(&mut oh, os(&wh), std::io::empty())?;
                }
            }
            Node::Symlink(target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                self.builder.append_link(&mut h, os(rel), os(target))?;
            }
            Node::File(file) => {
                if st.st_nlink > 1 {
                    let key = (st.st_dev, st.st_ino);
                    if let Some(first) = self.seen_inodes.get(&key) {
                        h.set_entry_type(tar::EntryType::Link);
                        let first = first.clone();
                        self.builder.append_link(&mut h, os(rel), os(&first))?;
                        return Ok(true);
                    }
                    self.seen_inodes.insert(key, rel.to_vec());
                }
                let len = st.st_size.max(0) as u64;
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(len);
                self.pax(&xattrs_of(file.as_fd()))?;
                let payload = Exactly {
                    file,
                    left: len,
                    exhausted: false,
                };
                self.builder.append_data(&mut h, os(rel), payload)?;
            }
            Node::Special => {
                let rdev = st.st_rdev;
                if self.options.whiteouts && ft == FileType::CharacterDevice && rdev == 0 {
                    let (parent, base) = match rel.iter().rposition(|&b| b == b'/') {
                        Some(i) => (&rel[..=i], &rel[i + 1..]),
                        None => (&b""[..], rel),
                    };
                    let mut wh = parent.to_vec();
                    wh.extend_from_slice(b".wh.");
                    wh.extend_from_slice(base);
                    h.set_entry_type(tar::EntryType::Regular);
                    self.builder
                        .append_data(&mut h, os(&wh), std::io::empty())?;
                    return Ok(true);
                }
                let kind = match ft {
                    FileType::CharacterDevice => tar::EntryType::Char,
                    FileType::BlockDevice => tar::EntryType::Block,
                    FileType::Fifo => tar::EntryType::Fifo,
                    // Sockets are not archived, as Docker.
                    _ => return Ok(true),
                };
                h.set_entry_type(kind);
                h.set_device_major(rustix::fs::major(rdev))?;
                h.set_device_minor(rustix::fs::minor(rdev))?;
                self.builder
                    .append_data(&mut h, os(rel), std::io::empty())?;
            }
        }
        Ok(true)
    }

    fn finish(self) -> std::io::Result<()> {
        self.builder.into_inner().map(drop)
    }
}

/// Writes everything below the directory `dir` as a tar to `out`, sorted by name, reading only
/// through fds (see `berth_inroot::walk`): a symlink swapped in mid-walk is archived as a
/// symlink, never followed.
pub fn write_tree_tar(
    dir: BorrowedFd<'_>,
    out: &mut dyn Write,
    options: TreeTarOptions,
) -> std::io::Result<()> {
    let mut t = TreeTar::new(out, options);
    berth_inroot::walk::walk_children(dir, b"", &mut |item| t.entry(item))?;
    t.finish()
}

/// Writes the entry `name` of the directory `parent` (and its subtree) as a tar named `as_name`
/// (`cp`'s rename of the copied root); an empty `as_name` archives a directory's contents only.
pub fn write_entry_tar(
    parent: BorrowedFd<'_>,
    name: &std::ffi::OsStr,
    as_name: &[u8],
    out: &mut dyn Write,
    options: TreeTarOptions,
) -> std::io::Result<()> {
    let mut t = TreeTar::new(out, options);
    if as_name.is_empty() {
        let dir = rustix::fs::openat(
            parent,
            name,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        berth_inroot::walk::walk_children(dir.as_fd(), b"", &mut |item| t.entry(item))?;
    } else {
        berth_inroot::walk::walk_node(parent, name, as_name, &mut |item| t.entry(item))?;
    }
    t.finish()
}

/// Writes the directory `dir` (a container's upper layer) as a layer tar to `out`, sorted by
/// name, with overlay whiteouts converted to `.wh.` entries.
pub fn write_dir_tar(dir: &Path, out: &mut dyn Write) -> Result<()> {
    let fd = rustix::fs::open(
        dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| ImageError::io("opening", dir)(e.into()))?;
    write_tree_tar(fd.as_fd(), out, TreeTarOptions { whiteouts: true })
        .map_err(ImageError::io("writing layer tar from", dir))
}
