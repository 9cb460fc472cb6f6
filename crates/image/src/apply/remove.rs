//! Removing a directory tree below a directory fd, without following any link in it.
use super::*;

/// Removes `name` (any type, a directory recursively) inside `dir` without following symlinks.
pub fn remove_tree_at(dir: &OwnedFd, name: &[u8]) -> std::io::Result<()> {
    let sub = match rustix::fs::openat(
        dir,
        os(name),
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::NOTDIR) | Err(rustix::io::Errno::LOOP) => {
            return rustix::fs::unlinkat(dir, os(name), AtFlags::empty()).map_err(to_io)
        }
        Err(rustix::io::Errno::NOENT) => return Ok(()),
        Err(e) => return Err(to_io(e)),
    };
    let mut children = Vec::new();
    {
        let mut d = rustix::fs::Dir::read_from(&sub).map_err(to_io)?;
        while let Some(entry) = d.read() {
            let entry = entry.map_err(to_io)?;
            let n = entry.file_name().to_bytes();
            if n != b"." && n != b".." {
                children.push(n.to_vec());
            }
        }
    }
    for c in children {
        match rustix::fs::unlinkat(&sub, os(&c), AtFlags::empty()) {
            Ok(()) => {}
            Err(rustix::io::Errno::ISDIR) | Err(rustix::io::Errno::PERM) => {
                remove_tree_at(&sub, &c)?
            }
            Err(rustix::io::Errno::NOENT) => {}
            Err(e) => return Err(to_io(e)),
        }
    }
    match rustix::fs::unlinkat(dir, os(name), AtFlags::REMOVEDIR) {
        Ok(()) | Err(rustix::io::Errno::NOENT) => Ok(()),
        Err(e) => Err(to_io(e)),
    }
}

/// Removes a directory tree by path, tolerating its absence.
pub fn remove_tree(path: &Path) -> Result<()> {
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Ok(());
    };
    let dir = match rustix::fs::open(
        parent,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::NOENT) => return Ok(()),
        Err(e) => return Err(ImageError::io("opening", parent)(to_io(e))),
    };
    use std::os::unix::ffi::OsStrExt;
    remove_tree_at(&dir, name.as_bytes()).map_err(ImageError::io("removing", path))
}
