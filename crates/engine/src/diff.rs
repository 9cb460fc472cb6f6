//! `berth diff`: what a container changed in its root, read from its overlay upper directory
//! against the image's lower layers, in Docker's terms (`A` added, `C` changed, `D` deleted).
//! Whiteouts (character devices 0:0) are deletions; an opaque directory (`trusted.overlay.opaque
//! = y`) hides everything the lower layers had below it, and each hidden entry is reported
//! deleted. Like Docker, a directory is reported changed when something directly in it was
//! added or deleted, and a directory copied up unchanged (same mode, size and mtime) is not.
//! Reads only; never mounts.
use crate::error::{EngineError, Result};
use crate::record::ContainerRecord;
use std::collections::BTreeMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
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
pub fn changes(upper: &Path, lowers: &[PathBuf]) -> Result<Vec<Change>> {
    let mut found: BTreeMap<String, ChangeKind> = BTreeMap::new();
    walk(upper, "", lowers, &mut found)?;
    Ok(found
        .into_iter()
        .map(|(path, kind)| Change { path, kind })
        .collect())
}

fn walk(
    upper: &Path,
    rel: &str,
    lowers: &[PathBuf],
    found: &mut BTreeMap<String, ChangeKind>,
) -> Result<()> {
    let dir = upper.join(rel.trim_start_matches('/'));
    let entries = std::fs::read_dir(&dir).map_err(|e| EngineError::io(&dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| EngineError::io(&dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = format!("{rel}/{name}");
        let full = entry.path();
        let meta = std::fs::symlink_metadata(&full).map_err(|e| EngineError::io(&full, e))?;
        let lower = lower_metadata(lowers, &path);
        let kind = if is_whiteout(&meta) {
            Some(ChangeKind::Deleted)
        } else if meta.is_dir() && is_opaque(&full) {
            // Everything the lower layers had below it is gone; what the upper has is new.
            for hidden in lower_children(lowers, &path) {
                if std::fs::symlink_metadata(full.join(&hidden)).is_err() {
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
                Some(l) if meta.is_dir() && l.is_dir() && same_dir(&meta, l) => None,
                Some(_) => Some(ChangeKind::Modified),
            }
        };
        if let Some(kind) = kind {
            if kind != ChangeKind::Modified && !rel.is_empty() {
                found.entry(rel.to_string()).or_insert(ChangeKind::Modified);
            }
            found.insert(path.clone(), kind);
        }
        if meta.is_dir() {
            walk(upper, &path, lowers, found)?;
        }
    }
    Ok(())
}

fn same_dir(a: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
    a.mode() == b.mode()
        && a.size() == b.size()
        && a.mtime() == b.mtime()
        && a.mtime_nsec() == b.mtime_nsec()
}

fn is_whiteout(meta: &std::fs::Metadata) -> bool {
    meta.file_type().is_char_device() && meta.rdev() == 0
}

fn is_opaque(path: &Path) -> bool {
    let mut buf = [0u8; 4];
    matches!(
        rustix::fs::lgetxattr(path, "trusted.overlay.opaque", &mut buf),
        Ok(1) if buf[0] == b'y'
    )
}

/// The entry at `rel` in the union of the lower layers (topmost first), honouring their own
/// whiteouts and opaque directories.
fn lower_metadata(lowers: &[PathBuf], rel: &str) -> Option<std::fs::Metadata> {
    let rel = rel.trim_start_matches('/');
    for layer in lowers {
        if let Ok(meta) = std::fs::symlink_metadata(layer.join(rel)) {
            return (!is_whiteout(&meta)).then_some(meta);
        }
        // An opaque ancestor in this layer hides the layers below.
        let mut ancestor = Path::new(rel).parent();
        while let Some(a) = ancestor.filter(|a| !a.as_os_str().is_empty()) {
            if is_opaque(&layer.join(a)) {
                return None;
            }
            ancestor = a.parent();
        }
    }
    None
}

/// Names of the entries the lower layers' union has in directory `rel`.
fn lower_children(lowers: &[PathBuf], rel: &str) -> Vec<String> {
    let mut names = std::collections::BTreeSet::new();
    let trimmed = rel.trim_start_matches('/');
    for layer in lowers {
        if let Ok(entries) = std::fs::read_dir(layer.join(trimmed)) {
            for e in entries.flatten() {
                names.insert(e.file_name().to_string_lossy().into_owned());
            }
        }
    }
    names
        .into_iter()
        .filter(|n| lower_metadata(lowers, &format!("{rel}/{n}")).is_some())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
