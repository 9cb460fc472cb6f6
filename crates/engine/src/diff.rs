//! `berth diff`: what a container changed in its root, read from its overlay upper directory
//! against the image's lower layers, in Docker's terms (`A` added, `C` changed, `D` deleted).
//! Whiteouts (character devices 0:0) are deletions; an opaque directory (`trusted.overlay.opaque
//! = y`) hides everything the lower layers had below it, and each hidden entry is reported
//! deleted. Like Docker, a directory is reported changed when something directly in it was
//! added or deleted, and a directory copied up unchanged (same mode, size and mtime) is not.
//! Reads only; never mounts.
use crate::error::{EngineError, Result};
use crate::record::ContainerRecord;
use berth_inroot::walk::{Item, Node};
use berth_inroot::Root;
use rustix::fd::{AsFd, BorrowedFd};
use rustix::fs::{AtFlags, FileType, Mode, OFlags, Stat};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Docker's change kinds (the API's numbers: 0 modified, 1 added, 2 deleted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ChangeKind {
    Modified = 0,
    Added = 1,
    Deleted = 2,
}

impl ChangeKind {
    pub fn letter(self) -> char {
        match self {
            ChangeKind::Modified => 'C',
            ChangeKind::Added => 'A',
            ChangeKind::Deleted => 'D',
        }
    }
}

/// One changed path (absolute, as seen in the container).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub path: String,
    pub kind: ChangeKind,
}

impl Change {
    /// The Docker API's `{"Path", "Kind"}` object.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({"Path": self.path, "Kind": self.kind as u8})
    }
}

/// The changes of a container with an overlay layer, sorted by path.
pub fn container_changes(record: &ContainerRecord) -> Result<Vec<Change>> {
    if record.driver.is_empty() || record.berth_layer.upper_dir.is_empty() {
        return Err(EngineError::state(
            &record.id,
            "a --rootfs container has no layer to compare",
        ));
    }
    let lowers: Vec<PathBuf> = record
        .berth_layer
        .lower_dir
        .split(':')
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
        .collect();
    changes(Path::new(&record.berth_layer.upper_dir), &lowers)
}

/// The changes in `upper` over `lowers` (topmost first).
///
/// Every directory is reached through fds (`berth_inroot`): the upper directory is walked with
/// `O_NOFOLLOW` opens from its own fd, and each lower layer is looked up with `RESOLVE_IN_ROOT`
/// on an fd of that layer, so a symlink a running container swaps into its upper directory is
/// reported as a symlink and never read through onto the host.
pub fn changes(upper: &Path, lowers: &[PathBuf]) -> Result<Vec<Change>> {
    let upper_fd = rustix::fs::open(
        upper,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| EngineError::io(upper, e.into()))?;
    let lowers: Vec<Root> = lowers.iter().filter_map(|l| Root::open(l).ok()).collect();
    let mut found: BTreeMap<String, ChangeKind> = BTreeMap::new();
    let mut visit = |item: Item<'_>| -> std::io::Result<bool> {
        let path = format!("/{}", String::from_utf8_lossy(item.rel));
        let rel = path.rsplit_once('/').map(|(p, _)| p).unwrap_or("");
        let is_dir = matches!(item.node, Node::Dir(_));
        let lower = lower_stat(&lowers, &path);
        let kind = if is_whiteout(item.stat) {
            Some(ChangeKind::Deleted)
        } else if let (Node::Dir(fd), true) = (&item.node, is_dir) {
            if is_opaque(fd.as_fd()) {
                // Everything the lower layers had below it is gone; what the upper has is new.
                for hidden in lower_children(&lowers, &path) {
                    let gone =
                        rustix::fs::statat(fd.as_fd(), hidden.as_str(), AtFlags::SYMLINK_NOFOLLOW)
                            .is_err();
                    if gone {
                        found.insert(format!("{path}/{hidden}"), ChangeKind::Deleted);
                    }
                }
                Some(match lower {
                    Some(_) => ChangeKind::Modified,
                    None => ChangeKind::Added,
                })
            } else {
                match &lower {
                    None => Some(ChangeKind::Added),
                    Some(l) if is_directory(l) && same_dir(item.stat, l) => None,
                    Some(_) => Some(ChangeKind::Modified),
                }
            }
        } else {
            match lower {
                None => Some(ChangeKind::Added),
                Some(_) => Some(ChangeKind::Modified),
            }
        };
        if let Some(kind) = kind {
            if kind != ChangeKind::Modified && !rel.is_empty() {
                found.entry(rel.to_string()).or_insert(ChangeKind::Modified);
            }
            found.insert(path, kind);
        }
        Ok(true)
    };
    berth_inroot::walk::walk_children(upper_fd.as_fd(), b"", &mut visit)
        .map_err(|e| EngineError::io(upper, e))?;
    Ok(found
        .into_iter()
        .map(|(path, kind)| Change { path, kind })
        .collect())
}

fn is_directory(st: &Stat) -> bool {
    FileType::from_raw_mode(st.st_mode) == FileType::Directory
}

fn same_dir(a: &Stat, b: &Stat) -> bool {
    a.st_mode == b.st_mode
        && a.st_size == b.st_size
        && a.st_mtime == b.st_mtime
        && a.st_mtime_nsec == b.st_mtime_nsec
}

fn is_whiteout(st: &Stat) -> bool {
    FileType::from_raw_mode(st.st_mode) == FileType::CharacterDevice && st.st_rdev == 0
}

fn is_opaque(dir: BorrowedFd<'_>) -> bool {
    let mut buf = [0u8; 4];
    matches!(
        rustix::fs::fgetxattr(dir, "trusted.overlay.opaque", &mut buf),
        Ok(1) if buf[0] == b'y'
    )
}

/// Whether the directory `rel` of a lower layer is opaque (resolved inside that layer).
fn lower_dir_opaque(layer: &Root, rel: &Path) -> bool {
    layer.open_dir(rel).is_ok_and(|fd| is_opaque(fd.as_fd()))
}

/// The entry at `rel` in the union of the lower layers (topmost first), honouring their own
/// whiteouts and opaque directories.
fn lower_stat(lowers: &[Root], rel: &str) -> Option<Stat> {
    let rel = Path::new(rel.trim_start_matches('/'));
    for layer in lowers {
        if let Ok(st) = layer.lstat(rel) {
            return (!is_whiteout(&st)).then_some(st);
        }
        // An opaque ancestor in this layer hides the layers below.
        let mut ancestor = rel.parent();
        while let Some(a) = ancestor.filter(|a| !a.as_os_str().is_empty()) {
            if lower_dir_opaque(layer, a) {
                return None;
            }
            ancestor = a.parent();
        }
    }
    None
}

/// Names of the entries the lower layers' union has in directory `rel`.
fn lower_children(lowers: &[Root], rel: &str) -> Vec<String> {
    let mut names = std::collections::BTreeSet::new();
    let trimmed = Path::new(rel.trim_start_matches('/'));
    for layer in lowers {
        let Ok(fd) = layer.open_dir(trimmed) else {
            continue;
        };
        let Ok(mut dir) = rustix::fs::Dir::read_from(&fd) else {
            continue;
        };
        while let Some(Ok(e)) = dir.read() {
            let n = e.file_name().to_string_lossy();
            if n != "." && n != ".." {
                names.insert(n.into_owned());
            }
        }
    }
    names
        .into_iter()
        .filter(|n| lower_stat(lowers, &format!("{rel}/{n}")).is_some())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn whiteout(path: &Path) -> bool {
        nix::sys::stat::mknod(
            path,
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::from_bits_truncate(0o000),
            0,
        )
        .is_ok()
    }

    #[test]
    fn adds_changes_deletes_and_opaque_dirs() {
        let dir = tempfile::tempdir().unwrap();
        let lower = dir.path().join("lower");
        let upper = dir.path().join("upper");
        for d in ["etc", "var/lib/app", "srv"] {
            std::fs::create_dir_all(lower.join(d)).unwrap();
        }
        std::fs::write(lower.join("etc/passwd"), "root").unwrap();
        std::fs::write(lower.join("etc/gone"), "x").unwrap();
        std::fs::write(lower.join("var/lib/app/a"), "x").unwrap();
        std::fs::write(lower.join("var/lib/app/b"), "x").unwrap();
        std::fs::create_dir_all(upper.join("etc")).unwrap();
        std::fs::write(upper.join("etc/passwd"), "root\nme").unwrap();
        std::fs::write(upper.join("etc/new"), "x").unwrap();
        if !whiteout(&upper.join("etc/gone")) {
            eprintln!("skipping: mknod needs CAP_MKNOD");
            return;
        }
        std::fs::create_dir_all(upper.join("var/lib/app")).unwrap();
        std::fs::write(upper.join("var/lib/app/b"), "fresh").unwrap();
        let opaque = rustix::fs::lsetxattr(
            upper.join("var/lib/app"),
            "trusted.overlay.opaque",
            b"y",
            rustix::fs::XattrFlags::empty(),
        );
        // Directory times are coarse (a clock tick): make the lower ones plainly older.
        for d in ["etc", "var", "var/lib", "var/lib/app"] {
            std::fs::File::open(lower.join(d))
                .unwrap()
                .set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1000))
                .unwrap();
        }
        // An unchanged copied-up directory is not a change.
        std::fs::create_dir_all(upper.join("srv")).unwrap();
        let srv = std::fs::metadata(lower.join("srv")).unwrap();
        let mtime = std::time::UNIX_EPOCH
            + std::time::Duration::new(srv.mtime() as u64, srv.mtime_nsec() as u32);
        std::fs::File::open(upper.join("srv"))
            .unwrap()
            .set_modified(mtime)
            .unwrap();
        let got: Vec<String> = changes(&upper, &[lower])
            .unwrap()
            .iter()
            .map(|c| format!("{} {}", c.kind.letter(), c.path))
            .collect();
        let mut want = vec![
            "C /etc",
            "D /etc/gone",
            "A /etc/new",
            "C /etc/passwd",
            "C /var",
            "C /var/lib",
            "C /var/lib/app",
            "C /var/lib/app/b",
        ];
        if opaque.is_ok() {
            want.insert(7, "D /var/lib/app/a");
        }
        assert_eq!(got, want);
    }

    #[test]
    fn lower_layer_symlinks_are_resolved_inside_the_layer_not_on_the_host() {
        let dir = tempfile::tempdir().unwrap();
        let host = dir.path().join("host");
        std::fs::create_dir_all(&host).unwrap();
        std::fs::write(host.join("f"), "host").unwrap();
        let lower = dir.path().join("lower");
        let upper = dir.path().join("upper");
        std::fs::create_dir_all(&lower).unwrap();
        // The image has /x -> <host dir> (absolute): inside the layer that names nothing.
        std::os::unix::fs::symlink(&host, lower.join("x")).unwrap();
        std::fs::create_dir_all(upper.join("x")).unwrap();
        std::fs::write(upper.join("x/f"), "mine").unwrap();
        // And a symlink in the upper dir itself is a change, never a way in.
        std::os::unix::fs::symlink(&host, upper.join("y")).unwrap();
        let got: Vec<String> = changes(&upper, &[lower])
            .unwrap()
            .iter()
            .map(|c| format!("{} {}", c.kind.letter(), c.path))
            .collect();
        assert_eq!(got, vec!["C /x", "A /x/f", "A /y"]);
    }
}
