//! Depth-first walk of a tree through directory fds: every child is opened relative to its
//! parent's fd with `O_NOFOLLOW`, and what is read is judged by `fstat` of the opened fd, not by
//! an earlier `stat` of a name. A container swapping a directory for a symlink mid-walk therefore
//! makes the walk see a symlink (recorded as one) and never read through it. Children are visited
//! in byte order of their names (reproducible archives).
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{AtFlags, FileType, Mode, OFlags, Stat};
use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;

/// What a visited entry is, with the handle to read it through.
pub enum Node<'a> {
    /// A directory, opened; its children are visited after it.
    Dir(&'a OwnedFd),
    /// A regular file opened for reading; `stat.st_size` is its size at open time.
    File(&'a mut std::fs::File),
    /// A symlink and its target (never followed).
    Symlink(&'a [u8]),
    /// A device node, fifo or socket: described by `stat` alone, never opened.
    Special,
}

/// One visited entry.
pub struct Item<'a> {
    /// Path relative to the walk's base, `/`-separated, without leading `/`.
    pub rel: &'a [u8],
    pub stat: &'a Stat,
    pub node: Node<'a>,
}

/// The callback: `Ok(false)` on a directory skips its children.
pub type Visit<'v> = dyn FnMut(Item<'_>) -> io::Result<bool> + 'v;

/// How often one entry is re-examined when it changes type between `stat` and `open`.
const RACE_RETRIES: usize = 8;

fn file_type(st: &Stat) -> FileType {
    FileType::from_raw_mode(st.st_mode)
}

/// Visits `name` in the directory `parent` (as `rel`) and, when it is a directory, everything
/// below it.
pub fn walk_node(
    parent: BorrowedFd<'_>,
    name: &OsStr,
    rel: &[u8],
    visit: &mut Visit<'_>,
) -> io::Result<()> {
    for _ in 0..RACE_RETRIES {
        let st = match rustix::fs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            // Removed while we walked: as if it had never been there.
            Err(rustix::io::Errno::NOENT) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        match file_type(&st) {
            FileType::Symlink => match rustix::fs::readlinkat(parent, name, Vec::new()) {
                Ok(target) => {
                    visit(Item {
                        rel,
                        stat: &st,
                        node: Node::Symlink(target.as_bytes()),
                    })?;
                    return Ok(());
                }
                Err(rustix::io::Errno::INVAL) => continue, // no longer a link
                Err(rustix::io::Errno::NOENT) => return Ok(()),
                Err(e) => return Err(e.into()),
            },
            FileType::RegularFile | FileType::Directory => {
                let fd = match rustix::fs::openat(
                    parent,
                    name,
                    OFlags::RDONLY
                        | OFlags::NOFOLLOW
                        | OFlags::NONBLOCK
                        | OFlags::NOCTTY
                        | OFlags::CLOEXEC,
                    Mode::empty(),
                ) {
                    Ok(fd) => fd,
                    // A symlink was swapped in (ELOOP) or the entry went away: look again.
                    Err(rustix::io::Errno::LOOP) => continue,
                    Err(rustix::io::Errno::NOENT) => return Ok(()),
                    Err(e) => return Err(e.into()),
                };
                let st = rustix::fs::fstat(&fd)?;
                match file_type(&st) {
                    FileType::Directory => {
                        if visit(Item {
                            rel,
                            stat: &st,
                            node: Node::Dir(&fd),
                        })? {
                            walk_children(fd.as_fd(), rel, visit)?;
                        }
                    }
                    FileType::RegularFile => {
                        let mut file = std::fs::File::from(fd);
                        visit(Item {
                            rel,
                            stat: &st,
                            node: Node::File(&mut file),
                        })?;
                    }
                    // Swapped for a device or fifo after the stat: never read it; look again.
                    _ => continue,
                }
                return Ok(());
            }
            _ => {
                visit(Item {
                    rel,
                    stat: &st,
                    node: Node::Special,
                })?;
                return Ok(());
            }
        }
    }
    Err(io::Error::other(format!(
        "{} kept changing while it was read",
        String::from_utf8_lossy(rel)
    )))
}

/// Visits every entry below the directory `dir`, naming them `prefix/child…` (just `child…` when
/// `prefix` is empty).
pub fn walk_children(dir: BorrowedFd<'_>, prefix: &[u8], visit: &mut Visit<'_>) -> io::Result<()> {
    let mut names: Vec<Vec<u8>> = Vec::new();
    {
        let mut d = rustix::fs::Dir::read_from(dir)?;
        while let Some(entry) = d.read() {
            let entry = entry?;
            let n = entry.file_name().to_bytes();
            if n != b"." && n != b".." {
                names.push(n.to_vec());
            }
        }
    }
    names.sort_unstable();
    let mut rel = Vec::with_capacity(prefix.len() + 64);
    for name in names {
        rel.clear();
        rel.extend_from_slice(prefix);
        if !rel.is_empty() {
            rel.push(b'/');
        }
        rel.extend_from_slice(&name);
        walk_node(dir, OsStr::from_bytes(&name), &rel, visit)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn walks_sorted_without_following_links() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("b/c")).unwrap();
        std::fs::write(root.join("b/c/f"), b"data").unwrap();
        std::fs::write(root.join("a"), b"x").unwrap();
        std::fs::write(dir.path().join("secret"), b"host").unwrap();
        symlink(dir.path(), root.join("b/out")).unwrap();
        let fd =
            rustix::fs::open(&root, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()).unwrap();
        let mut seen = Vec::new();
        walk_children(fd.as_fd(), b"", &mut |item: Item<'_>| {
            let kind = match item.node {
                Node::Dir(_) => "d",
                Node::File(f) => {
                    let mut s = String::new();
                    std::io::Read::read_to_string(f, &mut s)?;
                    assert_ne!(s, "host");
                    "f"
                }
                Node::Symlink(_) => "l",
                Node::Special => "s",
            };
            seen.push(format!("{kind} {}", String::from_utf8_lossy(item.rel)));
            Ok(true)
        })
        .unwrap();
        assert_eq!(seen, ["f a", "d b", "d b/c", "f b/c/f", "l b/out"]);
    }
}
