//! Folding a container's init layer into the image's top layer, for images exactly at the
//! overlay stack limit: a 500-layer image plus Docker's separate init layer would need 501
//! lower directories, one more than the kernel stacks. For those images only, the init layer
//! becomes a copy of the top layer made of hard links (no file data is copied; lower layers are
//! never written through, so sharing inodes is safe) with the init entries placed over it
//! exactly as overlayfs would show an init layer stacked above it; the container then stacks
//! that and the image's other 499 layers.
//!
//! Everything here works on the store's own directories by path, and never follows a symlink
//! taken from the image: every component is checked with `lstat` before it is descended into.
use rustix::fs::{AtFlags, Timestamps};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

fn copy_xattrs(src: &Path, dst: &Path) -> io::Result<()> {
    let mut names = vec![0u8; 4096];
    let n = loop {
        match rustix::fs::llistxattr(src, &mut names) {
            Ok(n) => break n,
            Err(rustix::io::Errno::RANGE) => names.resize(names.len() * 4, 0),
            Err(rustix::io::Errno::NOTSUP) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
    };
    for name in names[..n].split(|&b| b == 0).filter(|n| !n.is_empty()) {
        let name = std::ffi::OsStr::new(std::str::from_utf8(name).map_err(io::Error::other)?);
        let mut value = vec![0u8; 256];
        let len = loop {
            match rustix::fs::lgetxattr(src, name, &mut value) {
                Ok(len) => break len,
                Err(rustix::io::Errno::RANGE) => value.resize(value.len() * 4, 0),
                Err(e) => return Err(e.into()),
            }
        };
        rustix::fs::lsetxattr(dst, name, &value[..len], rustix::fs::XattrFlags::empty())?;
    }
    Ok(())
}

fn copy_dir_attributes(meta: &std::fs::Metadata, src: &Path, dst: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::os::unix::fs::lchown(dst, Some(meta.uid()), Some(meta.gid()))?;
    std::fs::set_permissions(dst, std::fs::Permissions::from_mode(meta.mode() & 0o7777))?;
    copy_xattrs(src, dst)
}

fn set_mtime(meta: &std::fs::Metadata, dst: &Path) -> io::Result<()> {
    let t = rustix::fs::Timespec {
        tv_sec: meta.mtime(),
        tv_nsec: meta.mtime_nsec() as _,
    };
    rustix::fs::utimensat(
        rustix::fs::CWD,
        dst,
        &Timestamps {
            last_access: t,
            last_modification: t,
        },
        AtFlags::SYMLINK_NOFOLLOW,
    )?;
    Ok(())
}

/// Recreates the tree `src` at `dst` (which must not exist): directories anew with their owner,
/// mode, xattrs (overlay's opaque marker included) and mtime; everything else as a hard link.
pub fn clone_by_links(src: &Path, dst: &Path) -> io::Result<()> {
    let meta = std::fs::symlink_metadata(src)?;
    std::fs::create_dir(dst)?;
    copy_dir_attributes(&meta, src, dst)?;
    for entry in std::fs::read_dir(src)? {
        let entry = entry?;
        let from = entry.path();
        let to = dst.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            clone_by_links(&from, &to)?;
        } else {
            // linkat without AT_SYMLINK_FOLLOW: a symlink is linked, not its target.
            std::fs::hard_link(&from, &to)?;
        }
    }
    set_mtime(&meta, dst)
}

/// Makes `diff/<rel>` a real directory as a directory of an init layer above `diff` would
/// appear: an existing directory stays (merged with what is below, as before); anything else
/// there (file, symlink, whiteout) is replaced by an opaque directory, since overlayfs stops
/// merging below a non-directory.
fn ensure_dir(diff: &Path, rel: &Path) -> io::Result<()> {
    let mut path = diff.to_path_buf();
    for component in rel.components() {
        path.push(component);
        match std::fs::symlink_metadata(&path) {
            Ok(m) if m.is_dir() => continue,
            Ok(_) => {
                std::fs::remove_file(&path)?;
                create_init_dir(&path)?;
                rustix::fs::lsetxattr(
                    &path,
                    crate::apply::OPAQUE_XATTR,
                    b"y",
                    rustix::fs::XattrFlags::empty(),
                )?;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => create_init_dir(&path)?,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// A directory the init layer adds: root's, 0755 whatever the umask (as Docker's init layer).
pub fn create_init_dir(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
}

/// Clears `diff/<rel>` (any type, a directory with its contents) after making its parent a
/// real directory; returns the path, ready for the init entry to be created there.
pub fn make_room(diff: &Path, rel: &str, is_dir: bool) -> io::Result<std::path::PathBuf> {
    let rel = Path::new(rel);
    if is_dir {
        ensure_dir(diff, rel)?;
        return Ok(diff.join(rel));
    }
    if let Some(parent) = rel.parent() {
        ensure_dir(diff, parent)?;
    }
    let path = diff.join(rel);
    match std::fs::symlink_metadata(&path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(&path)?,
        Ok(_) => std::fs::remove_file(&path)?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clone_links_files_and_keeps_directory_markers() {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("src");
        std::fs::create_dir_all(src.join("d/e")).unwrap();
        std::fs::write(src.join("d/e/f"), "f").unwrap();
        std::os::unix::fs::symlink("/etc/shadow", src.join("link")).unwrap();
        rustix::fs::lsetxattr(
            src.join("d"),
            crate::apply::OPAQUE_XATTR,
            b"y",
            rustix::fs::XattrFlags::empty(),
        )
        .unwrap();
        let dst = t.path().join("dst");
        clone_by_links(&src, &dst).unwrap();
        let a = std::fs::metadata(src.join("d/e/f")).unwrap();
        let b = std::fs::metadata(dst.join("d/e/f")).unwrap();
        assert_eq!(a.ino(), b.ino(), "hard link, not a copy");
        assert_eq!(
            std::fs::read_link(dst.join("link")).unwrap(),
            Path::new("/etc/shadow")
        );
        let mut v = [0u8; 4];
        let n = rustix::fs::lgetxattr(dst.join("d"), crate::apply::OPAQUE_XATTR, &mut v).unwrap();
        assert_eq!(&v[..n], b"y");
    }

    #[test]
    fn init_entries_replace_what_an_upper_layer_would_hide() {
        let t = tempfile::tempdir().unwrap();
        let diff = t.path();
        // The image's top layer: /etc is a symlink out (must not be followed), /dev a file.
        std::os::unix::fs::symlink("/tmp", diff.join("etc")).unwrap();
        std::fs::write(diff.join("dev"), "x").unwrap();
        std::fs::create_dir(diff.join("proc")).unwrap();
        std::fs::write(diff.join("proc/keep"), "k").unwrap();
        let hosts = make_room(diff, "etc/hosts", false).unwrap();
        std::fs::write(&hosts, "").unwrap();
        make_room(diff, "dev/pts", true).unwrap();
        make_room(diff, "proc", true).unwrap();
        assert!(std::fs::symlink_metadata(diff.join("etc"))
            .unwrap()
            .is_dir());
        assert!(diff.join("dev/pts").is_dir());
        assert!(diff.join("proc/keep").is_file(), "a directory merges");
        let mut v = [0u8; 4];
        let n =
            rustix::fs::lgetxattr(diff.join("etc"), crate::apply::OPAQUE_XATTR, &mut v).unwrap();
        assert_eq!(&v[..n], b"y");
        assert!(
            rustix::fs::lgetxattr(diff.join("proc"), crate::apply::OPAQUE_XATTR, &mut v).is_err()
        );
    }
}
