//! `/proc/self/mountinfo` read into entries: which mount holds a path (the rootfs's parent mount
//! that must be private before pivot_root) and which proc/sysfs mounts a `--no-pivot` container
//! must not keep. Hand-written: the format is five fields, optional tags, "-", and three more;
//! the crates that parse it (procfs, libmount) would bring far more than this needs.

use std::io;
use std::path::{Path, PathBuf};

/// One mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Path of the mount's root within its filesystem.
    pub root: PathBuf,
    pub mount_point: PathBuf,
    /// Optional fields (`shared:N`, `master:N`, `unbindable`).
    pub tags: Vec<String>,
    pub fs_type: String,
}

/// Undoes mountinfo's octal escapes (`\040` for a space, `\011`, `\012`, `\134`).
fn unescape(field: &str) -> PathBuf {
    use std::os::unix::ffi::OsStringExt;
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') as u32 * 64
                + (b[i + 2] - b'0') as u32 * 8
                + (b[i + 3] - b'0') as u32;
            out.push(v as u8);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    PathBuf::from(std::ffi::OsString::from_vec(out))
}

/// Parses mountinfo text; malformed lines are skipped.
pub fn parse(text: &str) -> Vec<Entry> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let f: Vec<&str> = left.split(' ').collect();
            if f.len() < 6 {
                return None;
            }
            let fs_type = right.split(' ').next()?.to_owned();
            Some(Entry {
                root: unescape(f[3]),
                mount_point: unescape(f[4]),
                tags: f[6..].iter().map(|s| s.to_string()).collect(),
                fs_type,
            })
        })
        .collect()
}

/// This process's mounts.
pub fn read() -> io::Result<Vec<Entry>> {
    Ok(parse(&std::fs::read_to_string("/proc/self/mountinfo")?))
}

/// The mount point of the mount that holds `path` (the path itself when it is a mount point):
/// the longest mount point that is `path` or one of its ancestors.
pub fn mount_point_of(path: &Path) -> io::Result<PathBuf> {
    Ok(longest_prefix(&read()?, path))
}

fn longest_prefix(mounts: &[Entry], path: &Path) -> PathBuf {
    mounts
        .iter()
        .map(|m| &m.mount_point)
        .filter(|mp| path.starts_with(mp))
        .max_by_key(|mp| mp.components().count())
        .cloned()
        .unwrap_or_else(|| PathBuf::from("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
28 27 0:5 / /proc rw,nosuid - proc proc rw
29 27 0:40 / /tmp/with\\040space rw master:3 - tmpfs tmpfs rw
30 29 254:0 /srv /tmp/with\\040space/b rw - ext4 /dev/vda rw
";

    #[test]
    fn fields_and_escapes() {
        let m = parse(SAMPLE);
        assert_eq!(m.len(), 4);
        assert_eq!(m[0].tags, vec!["shared:1"]);
        assert_eq!(m[1].fs_type, "proc");
        assert_eq!(m[2].mount_point, Path::new("/tmp/with space"));
        assert_eq!(m[3].root, Path::new("/srv"));
        assert!(m[3].tags.is_empty());
    }

    #[test]
    fn the_mount_holding_a_path() {
        let m = parse(SAMPLE);
        assert_eq!(
            longest_prefix(&m, Path::new("/tmp/with space/b/rootfs")),
            Path::new("/tmp/with space/b")
        );
        assert_eq!(
            longest_prefix(&m, Path::new("/tmp/with space")),
            Path::new("/tmp/with space")
        );
        assert_eq!(longest_prefix(&m, Path::new("/procx")), Path::new("/"));
    }
}
