//! Performs `COPY`/`ADD` into a mounted container root with the classic builder's rules: a
//! directory source copies its contents; a file goes to `dest/<name>` when `dest` ends in `/`
//! or is an existing directory, else to `dest`; missing parents are created root-owned `0755`;
//! copied entries are owned by `0:0` unless `--chown`, keep their modes unless `--chmod`, and
//! keep file mtimes; `ADD` unpacks local tar and tar.gz archives.
//!
//! Nothing is written by path into the root: destinations are resolved inside it by the kernel
//! (`berth-inroot`, `openat2(RESOLVE_IN_ROOT)` on an fd of the root) and held open, and entries
//! travel as a tar stream into the image store's hardened applier rooted at that directory fd,
//! the same one `import` and `cp` use. So an archive member `../x`, an absolute name, a hard link
//! to a host file, or a symlink in the stage's filesystem cannot put anything outside the root;
//! a relative hard link in an `ADD`ed tar resolves inside the archive's destination.
use crate::context::Source;
use crate::dockerignore::IgnoreMatcher;
use crate::error::{BuildError, Result};
use berth_image::apply::{unpack_into, unpack_produced, UnpackOptions};
use berth_inroot::Root;
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{AtFlags, Mode};
use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// How entries are written.
#[derive(Debug, Clone, Copy, Default)]
pub struct CopyOptions {
    /// Owner of copied entries (`--chown`), default 0:0.
    pub owner: (u32, u32),
    /// `--chmod` mode for copied entries.
    pub chmod: Option<u32>,
    /// `ADD`: unpack local archives.
    pub decompress: bool,
}

/// Where to skip ignored entries when copying a context directory: the matcher and the
/// source's context-relative path.
pub type IgnoreScope<'a> = Option<(&'a IgnoreMatcher, &'a str)>;

fn open_root(root: &Path) -> Result<Root> {
    Root::open(root).map_err(|e| BuildError::io("opening", root, e))
}

fn dest_err(dest: &str) -> impl FnOnce(std::io::Error) -> BuildError + '_ {
    move |e| match e.raw_os_error() {
        Some(libc::ENOTDIR) | Some(libc::EEXIST) => {
            BuildError::Context(format!("destination {dest} is not a directory"))
        }
        _ => BuildError::io("writing", dest, e),
    }
}

/// Copies `source` to the absolute `dest` (as written, trailing `/` significant) inside `root`.
pub fn copy_source(
    root: &Path,
    source: &Source,
    dest: &str,
    options: &CopyOptions,
    ignore: IgnoreScope<'_>,
) -> Result<()> {
    let root = open_root(root)?;
    if source.is_dir {
        let dir = make_dirs(&root, dest, options, true)?;
        let rel = source.rel.clone();
        return write_tar_into(dir.as_fd(), dest, |w| {
            let mut b = tar::Builder::new(w);
            append_dir_contents(&mut b, &source.path, Path::new(""), options, ignore, &rel)?;
            b.finish()
        });
    }
    if options.decompress && is_archive(&source.path) {
        let dir = make_dirs(&root, dest, options, true)?;
        return unpack_archive(&source.path, dir.as_fd(), dest, options);
    }
    let name = Path::new(&source.rel)
        .file_name()
        .map(OsStr::to_os_string)
        .unwrap_or_default();
    let (dir, name) = file_target(&root, dest, name, options)?;
    write_tar_into(dir.as_fd(), dest, |w| {
        let mut b = tar::Builder::new(w);
        let meta = std::fs::symlink_metadata(&source.path)?;
        append_host_entry(&mut b, &source.path, Path::new(&name), &meta, options)?;
        b.finish()
    })
}

/// Writes `content` as a new file `dest` inside `root` (a heredoc source), mode 0644 or `--chmod`.
pub fn write_file(
    root: &Path,
    dest: &str,
    name: &str,
    content: &[u8],
    options: &CopyOptions,
) -> Result<()> {
    let root = open_root(root)?;
    let (dir, name) = file_target(&root, dest, OsString::from(name), options)?;
    write_tar_into(dir.as_fd(), dest, |w| {
        let mut b = tar::Builder::new(w);
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_size(content.len() as u64);
        h.set_mode(options.chmod.unwrap_or(0o644));
        h.set_uid(u64::from(options.owner.0));
        h.set_gid(u64::from(options.owner.1));
        h.set_mtime(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
        );
        b.append_data(&mut h, Path::new(&name), content)?;
        b.finish()
    })
}

/// The directory and name a single (non-directory) entry is written as: inside `dest` when it
/// ends in `/` or is a directory, else as `dest` itself (a symlink there followed inside the
/// root, as Docker's `FollowSymlinkInScope`).
fn file_target(
    root: &Root,
    dest: &str,
    source_name: OsString,
    options: &CopyOptions,
) -> Result<(OwnedFd, OsString)> {
    if dest.ends_with('/') || root.open_dir(Path::new(dest)).is_ok() {
        return Ok((make_dirs(root, dest, options, true)?, source_name));
    }
    let located = match root.locate_following(Path::new(dest)) {
        Ok(loc) => loc,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let parent = Path::new(dest).parent().unwrap_or(Path::new("/"));
            make_dirs(root, &parent.to_string_lossy(), options, false)?;
            root.locate_following(Path::new(dest))
                .map_err(dest_err(dest))?
        }
        Err(e) => return Err(dest_err(dest)(e)),
    };
    Ok((located.dir, located.name.unwrap_or(source_name)))
}

/// Creates `dir` and missing parents inside the root (root-owned 0755; the last one gets the
/// copy's owner when `owned` and it is new, as Docker chowns a destination directory it creates)
/// and returns it open.
fn make_dirs(root: &Root, dir: &str, options: &CopyOptions, owned: bool) -> Result<OwnedFd> {
    root.mkdir_all_then(Path::new(dir), 0o755, &mut |parent, name, last| {
        let (uid, gid) = if last && owned { options.owner } else { (0, 0) };
        rustix::fs::chownat(
            parent,
            name,
            Some(rustix::fs::Uid::from_raw(uid)),
            Some(rustix::fs::Gid::from_raw(gid)),
            AtFlags::SYMLINK_NOFOLLOW,
        )?;
        // The umask may have narrowed the mode mkdirat was given.
        rustix::fs::chmodat(parent, name, Mode::from_raw_mode(0o755), AtFlags::empty())?;
        Ok(())
    })
    .map_err(dest_err(dir))
}

/// Runs `produce` (a tar writer) into the hardened applier rooted at `dir`.
fn write_tar_into<F>(dir: BorrowedFd<'_>, dest: &str, produce: F) -> Result<()>
where
    F: FnOnce(&mut std::io::PipeWriter) -> std::io::Result<()> + Send,
{
    unpack_produced(dir, dest, UnpackOptions::default(), |w| produce(w))
        .map(drop)
        .map_err(|e| BuildError::Context(format!("copying to {dest}: {e}")))
}

fn header_for(meta: &std::fs::Metadata, options: &CopyOptions) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_metadata_in_mode(meta, tar::HeaderMode::Complete);
    h.set_uid(u64::from(options.owner.0));
    h.set_gid(u64::from(options.owner.1));
    h.set_mode(options.chmod.unwrap_or(meta.mode() & 0o7777));
    h
}

/// Appends one host entry as `name`: a file, a symlink (as a link) or a directory (alone);
/// fifos, sockets and devices are skipped as Docker keeps them only from archives.
fn append_host_entry<W: Write>(
    b: &mut tar::Builder<W>,
    path: &Path,
    name: &Path,
    meta: &std::fs::Metadata,
    options: &CopyOptions,
) -> std::io::Result<()> {
    let ft = meta.file_type();
    let mut h = header_for(meta, options);
    if ft.is_symlink() {
        let link = std::fs::read_link(path)?;
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        b.append_link(&mut h, name, link)
    } else if ft.is_dir() {
        h.set_entry_type(tar::EntryType::Directory);
        h.set_size(0);
        b.append_data(&mut h, name, std::io::empty())
    } else if ft.is_file() {
        h.set_entry_type(tar::EntryType::Regular);
        let file = std::fs::File::open(path)?;
        b.append_data(&mut h, name, file.take(meta.len()))
    } else {
        Ok(())
    }
}

fn append_dir_contents<W: Write>(
    b: &mut tar::Builder<W>,
    src: &Path,
    prefix: &Path,
    options: &CopyOptions,
    ignore: IgnoreScope<'_>,
    rel: &str,
) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(src)?.collect::<std::io::Result<_>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name();
        let child_rel = if rel == "." || rel.is_empty() {
            name.to_string_lossy().into_owned()
        } else {
            format!("{rel}/{}", name.to_string_lossy())
        };
        let path = entry.path();
        let meta = std::fs::symlink_metadata(&path)?;
        let excluded = ignore.is_some_and(|(m, _)| m.is_excluded(&child_rel));
        let target = prefix.join(&name);
        if meta.is_dir() {
            if excluded && !ignore.is_some_and(|(m, _)| m.has_exceptions()) {
                continue;
            }
            if !excluded {
                append_host_entry(b, &path, &target, &meta, options)?;
            }
            append_dir_contents(b, &path, &target, options, ignore, &child_rel)?;
        } else if !excluded {
            append_host_entry(b, &path, &target, &meta, options)?;
        }
    }
    Ok(())
}

/// Whether `path` is a tar or gzip-compressed tar (what `ADD` unpacks).
pub fn is_archive(path: &Path) -> bool {
    let mut head = [0u8; 262];
    let Ok(mut file) = std::fs::File::open(path) else {
        return false;
    };
    let mut read = 0;
    while read < head.len() {
        match file.read(&mut head[read..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => read += n,
        }
    }
    if read >= 2 && head[0] == 0x1f && head[1] == 0x8b {
        let Ok(file) = std::fs::File::open(path) else {
            return false;
        };
        let mut inner = [0u8; 262];
        let mut gz = flate2::read::GzDecoder::new(file);
        return gz.read_exact(&mut inner).is_ok() && &inner[257..262] == b"ustar";
    }
    read == 262 && &head[257..262] == b"ustar"
}

/// `ADD` of a local archive: extracted by the hardened applier rooted at the destination
/// directory; the archive's owners are kept unless `--chown` says otherwise.
fn unpack_archive(
    archive_path: &Path,
    dest: BorrowedFd<'_>,
    dest_name: &str,
    options: &CopyOptions,
) -> Result<()> {
    let file = std::fs::File::open(archive_path)
        .map_err(|e| BuildError::io("opening", archive_path, e))?;
    let mut head = [0u8; 2];
    let gzip = std::fs::File::open(archive_path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok()
        && head == [0x1f, 0x8b];
    let reader: Box<dyn Read> = if gzip {
        Box::new(flate2::read::GzDecoder::new(file))
    } else {
        Box::new(file)
    };
    let opts = UnpackOptions {
        owner: (options.owner != (0, 0)).then_some(options.owner),
        whiteouts: false,
    };
    unpack_into(reader, dest, &archive_path.to_string_lossy(), opts)
        .map(drop)
        .map_err(|e| {
            BuildError::Context(format!(
                "unpacking {} into {dest_name}: {e}",
                archive_path.display()
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::BuildContext;

    fn setup() -> (tempfile::TempDir, tempfile::TempDir) {
        let ctx = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(ctx.path().join("dir/sub")).unwrap();
        std::fs::write(ctx.path().join("f.txt"), "file").unwrap();
        std::fs::write(ctx.path().join("dir/a"), "a").unwrap();
        std::fs::write(ctx.path().join("dir/skip.log"), "no").unwrap();
        std::fs::write(ctx.path().join("dir/sub/b"), "b").unwrap();
        std::fs::write(ctx.path().join(".dockerignore"), "dir/*.log\n").unwrap();
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("existing")).unwrap();
        (ctx, root)
    }

    fn src(ctx: &BuildContext, s: &str) -> Source {
        ctx.tree().resolve(s).unwrap().remove(0)
    }

    #[test]
    fn destination_rules() {
        let (c, r) = setup();
        let ctx = BuildContext::from_dir(c.path()).unwrap();
        let o = CopyOptions::default();
        let root = r.path();
        copy_source(root, &src(&ctx, "f.txt"), "/new/name", &o, None).unwrap();
        assert_eq!(
            std::fs::read_to_string(root.join("new/name")).unwrap(),
            "file"
        );
        copy_source(root, &src(&ctx, "f.txt"), "/slash/", &o, None).unwrap();
        assert!(root.join("slash/f.txt").is_file());
        copy_source(root, &src(&ctx, "f.txt"), "/existing", &o, None).unwrap();
        assert!(root.join("existing/f.txt").is_file());
        let d = src(&ctx, "dir");
        copy_source(root, &d, "/d", &o, Some((ctx.ignore(), &d.rel))).unwrap();
        assert!(root.join("d/a").is_file() && root.join("d/sub/b").is_file());
        assert!(!root.join("d/skip.log").exists());
        assert!(!root.join("d/dir").exists());
    }

    #[test]
    fn chmod_and_symlink_escape() {
        let (c, r) = setup();
        let ctx = BuildContext::from_dir(c.path()).unwrap();
        let root = r.path();
        std::os::unix::fs::symlink("/../../../tmp", root.join("esc")).unwrap();
        let o = CopyOptions {
            chmod: Some(0o700),
            ..Default::default()
        };
        copy_source(root, &src(&ctx, "f.txt"), "/esc/", &o, None).unwrap();
        let placed = root.join("tmp/f.txt");
        assert!(placed.is_file());
        assert_eq!(std::fs::metadata(&placed).unwrap().mode() & 0o777, 0o700);
    }

    #[test]
    fn add_unpacks_tar_gz() {
        let (c, r) = setup();
        let archive = c.path().join("a.tar.gz");
        {
            let gz = flate2::write::GzEncoder::new(
                std::fs::File::create(&archive).unwrap(),
                flate2::Compression::fast(),
            );
            let mut b = tar::Builder::new(gz);
            let mut h = tar::Header::new_gnu();
            h.set_size(2);
            h.set_mode(0o640);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(0);
            h.set_cksum();
            b.append_data(&mut h, "in/x.txt", &b"hi"[..]).unwrap();
            b.into_inner().unwrap().finish().unwrap();
        }
        assert!(is_archive(&archive));
        assert!(!is_archive(&c.path().join("f.txt")));
        let ctx = BuildContext::from_dir(c.path()).unwrap();
        let o = CopyOptions {
            decompress: true,
            ..Default::default()
        };
        copy_source(r.path(), &src(&ctx, "a.tar.gz"), "/opt", &o, None).unwrap();
        assert_eq!(
            std::fs::read_to_string(r.path().join("opt/in/x.txt")).unwrap(),
            "hi"
        );
    }

    fn raw_tar(entries: &[(&str, tar::EntryType, &str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, kind, link, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(*kind);
            h.set_mode(0o644);
            h.set_size(data.len() as u64);
            if !link.is_empty() {
                h.set_link_name_literal(link).unwrap();
            }
            // Written raw so hostile names survive the builder's own checks.
            let bytes = name.as_bytes();
            h.as_old_mut().name[..bytes.len()].copy_from_slice(bytes);
            h.set_cksum();
            b.append(&h, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn add_of_a_hostile_tar_stays_in_the_destination() {
        let (c, r) = setup();
        let o = CopyOptions {
            decompress: true,
            ..Default::default()
        };
        let outside = r.path().parent().unwrap().join(format!(
            "escaped-{}",
            r.path().file_name().unwrap().to_string_lossy()
        ));
        for (i, entries) in [
            vec![("../../escaped", tar::EntryType::Regular, "", &b"bad"[..])],
            vec![("hl", tar::EntryType::Link, "/etc/passwd", &b""[..])],
            vec![("hl", tar::EntryType::Link, "../../../etc/passwd", &b""[..])],
        ]
        .into_iter()
        .enumerate()
        {
            let archive = c.path().join(format!("bad{i}.tar"));
            let mut t = raw_tar(&entries);
            t.resize(t.len().max(1024), 0);
            std::fs::write(&archive, t).unwrap();
            let ctx = BuildContext::from_dir(c.path()).unwrap();
            let err = copy_source(
                r.path(),
                &src(&ctx, &format!("bad{i}.tar")),
                "/opt/",
                &o,
                None,
            );
            assert!(err.is_err(), "entry set {i} was accepted");
        }
        assert!(!outside.exists());
        assert!(!r.path().join("opt/hl").exists());
        // An ordinary tar with a relative hard link: resolved inside the archive's root, not
        // against the builder's working directory.
        let archive = c.path().join("ok.tar");
        std::fs::write(
            &archive,
            raw_tar(&[
                ("pkg/", tar::EntryType::Directory, "", b""),
                ("pkg/a", tar::EntryType::Regular, "", b"same"),
                ("pkg/b", tar::EntryType::Link, "pkg/a", b""),
            ]),
        )
        .unwrap();
        let ctx = BuildContext::from_dir(c.path()).unwrap();
        copy_source(r.path(), &src(&ctx, "ok.tar"), "/srv", &o, None).unwrap();
        let a = std::fs::metadata(r.path().join("srv/pkg/a")).unwrap();
        let b = std::fs::metadata(r.path().join("srv/pkg/b")).unwrap();
        assert_eq!(a.ino(), b.ino());
    }
}
