//! Turning layers back into tar streams. A stored layer is rebuilt byte for byte from its
//! tar-split record and its `diff/` files, so the stream's sha256 is the DiffID again. A container's
//! upper directory (which has no record) is written as a fresh tar with overlay whiteouts turned
//! back into `.wh.` entries and opaque directories into `.wh..wh..opq`.
use crate::apply::{safe_components, OPAQUE_XATTR};
use crate::digest::HashingWriter;
use crate::error::{ImageError, Result};
use crate::store::Store;
use crate::tarsplit::{read_entries, Crc64, TarSplitEntry};
use rustix::fs::{Mode, OFlags, ResolveFlags};
use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
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

fn lgetxattr_opt(path: &Path, name: &str) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 256];
    match rustix::fs::lgetxattr(path, name, &mut buf[..]) {
        Ok(n) => {
            buf.truncate(n);
            Some(buf)
        }
        Err(_) => None,
    }
}

fn xattrs_of(path: &Path) -> Vec<(String, Vec<u8>)> {
    let mut names = vec![0u8; 4096];
    let Ok(n) = rustix::fs::llistxattr(path, &mut names[..]) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for name in names[..n].split(|&b| b == 0).filter(|s| !s.is_empty()) {
        let name = String::from_utf8_lossy(name).into_owned();
        if name.starts_with("trusted.overlay.") || name.starts_with("user.overlay.") {
            continue;
        }
        let mut value = vec![0u8; 65536];
        if let Ok(len) = rustix::fs::lgetxattr(path, name.as_str(), &mut value[..]) {
            value.truncate(len);
            out.push((name, value));
        }
    }
    out
}

fn header_for(md: &std::fs::Metadata) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_mode(md.mode() & 0o7777);
    h.set_uid(u64::from(md.uid()));
    h.set_gid(u64::from(md.gid()));
    h.set_mtime(md.mtime().max(0) as u64);
    h.set_size(0);
    h
}

/// Writes the directory `dir` (a container's upper layer) as a layer tar to `out`, sorted by
/// name, with overlay whiteouts converted to `.wh.` entries.
pub fn write_dir_tar(dir: &Path, out: &mut dyn Write) -> Result<()> {
    let mut b = tar::Builder::new(out);
    let mut seen_inodes: std::collections::HashMap<(u64, u64), std::path::PathBuf> =
        Default::default();
    let walker = walkdir::WalkDir::new(dir)
        .min_depth(1)
        .sort_by_file_name()
        .follow_links(false);
    let io = |e: std::io::Error| ImageError::io("writing layer tar from", dir)(e);
    for entry in walker {
        let entry = entry.map_err(|e| ImageError::io("walking", dir)(e.into()))?;
        let path = entry.path();
        let rel = path.strip_prefix(dir).unwrap_or(path).to_path_buf();
        let md = std::fs::symlink_metadata(path).map_err(ImageError::io("reading", path))?;
        let ft = md.file_type();
        let mut h = header_for(&md);
        let pax: Vec<(String, Vec<u8>)> = xattrs_of(path);
        let with_pax = |b: &mut tar::Builder<&mut dyn Write>| -> std::io::Result<()> {
            if !pax.is_empty() {
                let keys: Vec<(String, &[u8])> = pax
                    .iter()
                    .map(|(k, v)| (format!("SCHILY.xattr.{k}"), v.as_slice()))
                    .collect();
                b.append_pax_extensions(keys.iter().map(|(k, v)| (k.as_str(), *v)))?;
            }
            Ok(())
        };
        if ft.is_char_device() && md.rdev() == 0 {
            let name = rel
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let wh = rel.with_file_name(format!(".wh.{name}"));
            h.set_entry_type(tar::EntryType::Regular);
            b.append_data(&mut h, &wh, std::io::empty()).map_err(io)?;
        } else if ft.is_dir() {
            h.set_entry_type(tar::EntryType::Directory);
            with_pax(&mut b).map_err(io)?;
            let mut name = rel.as_os_str().to_os_string();
            name.push("/");
            b.append_data(&mut h, &name, std::io::empty()).map_err(io)?;
            if lgetxattr_opt(path, OPAQUE_XATTR).as_deref() == Some(b"y") {
                let mut oh = header_for(&md);
                oh.set_mode(0o644);
                oh.set_entry_type(tar::EntryType::Regular);
                b.append_data(&mut oh, rel.join(".wh..wh..opq"), std::io::empty())
                    .map_err(io)?;
            }
        } else if ft.is_symlink() {
            let target = std::fs::read_link(path).map_err(ImageError::io("reading link", path))?;
            h.set_entry_type(tar::EntryType::Symlink);
            with_pax(&mut b).map_err(io)?;
            b.append_link(&mut h, &rel, &target).map_err(io)?;
        } else if ft.is_file() {
            if md.nlink() > 1 {
                if let Some(first) = seen_inodes.get(&(md.dev(), md.ino())) {
                    h.set_entry_type(tar::EntryType::Link);
                    b.append_link(&mut h, &rel, first).map_err(io)?;
                    continue;
                }
                seen_inodes.insert((md.dev(), md.ino()), rel.clone());
            }
            h.set_entry_type(tar::EntryType::Regular);
            h.set_size(md.len());
            with_pax(&mut b).map_err(io)?;
            let f = std::fs::File::open(path).map_err(ImageError::io("reading", path))?;
            b.append_data(&mut h, &rel, f.take(md.len())).map_err(io)?;
        } else if ft.is_char_device() || ft.is_block_device() || ft.is_fifo() {
            h.set_entry_type(if ft.is_char_device() {
                tar::EntryType::Char
            } else if ft.is_block_device() {
                tar::EntryType::Block
            } else {
                tar::EntryType::Fifo
            });
            let rdev = md.rdev();
            h.set_device_major(rustix::fs::major(rdev)).map_err(io)?;
            h.set_device_minor(rustix::fs::minor(rdev)).map_err(io)?;
            b.append_data(&mut h, &rel, std::io::empty()).map_err(io)?;
        }
        // Sockets are not archived, as Docker.
    }
    b.finish().map_err(io)?;
    Ok(())
}
