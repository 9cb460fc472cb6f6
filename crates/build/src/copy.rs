//! Performs `COPY`/`ADD` into a mounted container root with the classic builder's rules: a
//! directory source copies its contents; a file goes to `dest/<name>` when `dest` ends in `/`
//! or is an existing directory, else to `dest`; missing parents are created root-owned `0755`;
//! copied entries are owned by `0:0` unless `--chown`, keep their modes unless `--chmod`, and
//! keep file mtimes; `ADD` unpacks local tar and tar.gz archives. Every destination path is
//! resolved inside the root, never through a symlink out of it.
use crate::context::Source;
use crate::dockerignore::IgnoreMatcher;
use crate::error::{BuildError, Result};
use crate::fsutil::secure_join;
use std::io::Read;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

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

/// Copies `source` to the absolute `dest` (as written, trailing `/` significant) inside `root`.
pub fn copy_source(
    root: &Path,
    source: &Source,
    dest: &str,
    options: &CopyOptions,
    ignore: IgnoreScope<'_>,
) -> Result<()> {
    let dest_path = secure_join(root, dest, true)?;
    if source.is_dir {
        make_dirs(root, &dest_path, options, true)?;
        return copy_dir_contents(&source.path, &dest_path, options, ignore, &source.rel);
    }
    if options.decompress && is_archive(&source.path) {
        make_dirs(root, &dest_path, options, true)?;
        return unpack_archive(root, &source.path, &dest_path, options);
    }
    let into_dir = dest.ends_with('/') || dest_path.is_dir();
    let target = if into_dir {
        make_dirs(root, &dest_path, options, true)?;
        let name = Path::new(&source.rel)
            .file_name()
            .map(|n| n.to_owned())
            .unwrap_or_default();
        secure_join(
            root,
            &format!("{}/{}", dest.trim_end_matches('/'), name.to_string_lossy()),
            false,
        )?
    } else {
        if let Some(parent) = dest_path.parent() {
            make_dirs(root, parent, options, false)?;
        }
        dest_path
    };
    copy_entry(&source.path, &target, options)
}

/// Writes `content` as a new file `dest` inside `root` (a heredoc source), mode 0644 or `--chmod`.
pub fn write_file(
    root: &Path,
    dest: &str,
    name: &str,
    content: &[u8],
    options: &CopyOptions,
) -> Result<()> {
    let dest_path = secure_join(root, dest, true)?;
    let target = if dest.ends_with('/') || dest_path.is_dir() {
        make_dirs(root, &dest_path, options, true)?;
        dest_path.join(name)
    } else {
        if let Some(parent) = dest_path.parent() {
            make_dirs(root, parent, options, false)?;
        }
        dest_path
    };
    remove_existing(&target)?;
    std::fs::write(&target, content).map_err(|e| BuildError::io("writing", &target, e))?;
    std::fs::set_permissions(
        &target,
        std::fs::Permissions::from_mode(options.chmod.unwrap_or(0o644)),
    )
    .map_err(|e| BuildError::io("chmod", &target, e))?;
    lchown(&target, options.owner)
}

/// Creates `dir` and missing parents (root-owned 0755; the last one gets the copy's owner when
/// `owned` and it is new, as Docker chowns a destination directory it creates).
fn make_dirs(root: &Path, dir: &Path, options: &CopyOptions, owned: bool) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut missing = Vec::new();
    let mut cur = dir.to_path_buf();
    while !cur.exists() && cur.starts_with(root) && cur != root {
        missing.push(cur.clone());
        if !cur.pop() {
            break;
        }
    }
    for (i, d) in missing.iter().rev().enumerate() {
        std::fs::create_dir(d).map_err(|e| BuildError::io("creating directory", d, e))?;
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| BuildError::io("chmod", d, e))?;
        let last = i + 1 == missing.len();
        lchown(d, if last && owned { options.owner } else { (0, 0) })?;
    }
    if !dir.is_dir() {
        return Err(BuildError::Context(format!(
            "destination {} is not a directory",
            dir.display()
        )));
    }
    Ok(())
}

fn copy_dir_contents(
    src: &Path,
    dst: &Path,
    options: &CopyOptions,
    ignore: IgnoreScope<'_>,
    rel: &str,
) -> Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(src)
        .map_err(|e| BuildError::io("reading directory", src, e))?
        .collect::<std::io::Result<_>>()
        .map_err(|e| BuildError::io("reading directory", src, e))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name();
        let child_rel = if rel == "." || rel.is_empty() {
            name.to_string_lossy().into_owned()
        } else {
            format!("{rel}/{}", name.to_string_lossy())
        };
        let path = entry.path();
        let meta =
            std::fs::symlink_metadata(&path).map_err(|e| BuildError::io("stat", &path, e))?;
        let excluded = ignore.is_some_and(|(m, _)| m.is_excluded(&child_rel));
        let target = dst.join(&name);
        if meta.is_dir() {
            if excluded && !ignore.is_some_and(|(m, _)| m.has_exceptions()) {
                continue;
            }
            if !target.is_dir() {
                remove_existing(&target)?;
                std::fs::create_dir(&target)
                    .map_err(|e| BuildError::io("creating directory", &target, e))?;
            }
            copy_dir_contents(&path, &target, options, ignore, &child_rel)?;
            if !excluded {
                apply_metadata(&target, &meta, options)?;
            }
        } else if !excluded {
            copy_entry(&path, &target, options)?;
        }
    }
    Ok(())
}

/// Copies one non-directory entry (file, symlink, fifo/device skipped as Docker keeps them
/// only from archives).
fn copy_entry(src: &Path, target: &Path, options: &CopyOptions) -> Result<()> {
    let meta = std::fs::symlink_metadata(src).map_err(|e| BuildError::io("stat", src, e))?;
    if meta.is_dir() {
        if !target.is_dir() {
            remove_existing(target)?;
            std::fs::create_dir(target)
                .map_err(|e| BuildError::io("creating directory", target, e))?;
        }
        return apply_metadata(target, &meta, options);
    }
    remove_existing(target)?;
    if meta.file_type().is_symlink() {
        let link = std::fs::read_link(src).map_err(|e| BuildError::io("reading link", src, e))?;
        symlink(&link, target).map_err(|e| BuildError::io("creating symlink", target, e))?;
        return lchown(target, options.owner);
    }
    std::fs::copy(src, target).map_err(|e| BuildError::io("copying to", target, e))?;
    if let Ok(file) = std::fs::File::options().write(true).open(target) {
        if let Ok(modified) = meta.modified() {
            let _ = file.set_modified(modified);
        }
    }
    apply_metadata(target, &meta, options)
}

fn apply_metadata(target: &Path, meta: &std::fs::Metadata, options: &CopyOptions) -> Result<()> {
    let mode = options.chmod.unwrap_or(meta.mode() & 0o7777);
    lchown(target, options.owner)?;
    std::fs::set_permissions(target, std::fs::Permissions::from_mode(mode))
        .map_err(|e| BuildError::io("chmod", target, e))
}

fn remove_existing(target: &Path) -> Result<()> {
    match std::fs::symlink_metadata(target) {
        Ok(m) if m.is_dir() => {
            std::fs::remove_dir_all(target).map_err(|e| BuildError::io("replacing", target, e))
        }
        Ok(_) => std::fs::remove_file(target).map_err(|e| BuildError::io("replacing", target, e)),
        Err(_) => Ok(()),
    }
}

fn lchown(path: &Path, (uid, gid): (u32, u32)) -> Result<()> {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid))
        .map_err(|e| BuildError::io("chown", path, e))
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

fn unpack_archive(
    root: &Path,
    archive_path: &Path,
    dest: &Path,
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
    let mut archive = tar::Archive::new(reader);
    archive.set_preserve_permissions(true);
    archive.set_preserve_ownerships(true);
    archive.set_unpack_xattrs(true);
    let bad = |e: std::io::Error| {
        BuildError::Context(format!("unpacking {}: {e}", archive_path.display()))
    };
    let dest_rel = dest
        .strip_prefix(root)
        .map(Path::to_path_buf)
        .unwrap_or_default();
    for entry in archive.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        let name = entry.path().map_err(bad)?.to_string_lossy().into_owned();
        let target: PathBuf =
            secure_join(root, &format!("{}/{}", dest_rel.display(), name), false)?;
        if target == root {
            continue;
        }
        if let Some(parent) = target.parent() {
            if !parent.is_dir() {
                make_dirs(root, parent, &CopyOptions::default(), false)?;
            }
        }
        entry.unpack(&target).map_err(bad)?;
        if options.owner != (0, 0) {
            lchown(&target, options.owner)?;
        }
    }
    Ok(())
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
}
