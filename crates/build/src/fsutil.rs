//! Filesystem helpers the builder needs inside a container root: resolving a path inside a root
//! without following symlinks out of it (Docker's `FollowSymlinkInScope`), and reading users and
//! groups from the root's own `/etc/passwd` and `/etc/group` for `--chown`.
use crate::error::{BuildError, Result};
use std::path::{Component, Path, PathBuf};

/// Resolves `path` (absolute or relative, `/`-separated) inside `root`: `..` stops at the root and
/// symlinks, absolute or relative, are resolved as if `root` were `/`. The last component is
/// resolved too when it is a symlink and `follow_last` is true.
pub fn secure_join(root: &Path, path: &str, follow_last: bool) -> Result<PathBuf> {
    let mut resolved: Vec<String> = Vec::new();
    let mut pending: Vec<String> = split(path).into_iter().rev().collect();
    let mut links = 0;
    while let Some(part) = pending.pop() {
        match part.as_str() {
            "." => continue,
            ".." => {
                resolved.pop();
                continue;
            }
            _ => {}
        }
        let candidate = root.join(resolved.join("/")).join(&part);
        let is_last = pending.is_empty();
        match std::fs::symlink_metadata(&candidate) {
            Ok(meta) if meta.file_type().is_symlink() && (!is_last || follow_last) => {
                links += 1;
                if links > 255 {
                    return Err(BuildError::Context(format!(
                        "too many symlinks resolving {path}"
                    )));
                }
                let target = std::fs::read_link(&candidate)
                    .map_err(|e| BuildError::io("reading link", &candidate, e))?;
                let target = target.to_string_lossy().into_owned();
                if target.starts_with('/') {
                    resolved.clear();
                }
                for t in split(&target).into_iter().rev() {
                    pending.push(t);
                }
            }
            _ => resolved.push(part),
        }
    }
    Ok(root.join(resolved.join("/")))
}

fn split(path: &str) -> Vec<String> {
    Path::new(path)
        .components()
        .filter_map(|c| match c {
            Component::Normal(p) => Some(p.to_string_lossy().into_owned()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect()
}

/// Resolves a `--chown` value (`user`, `user:group`, numeric or names) against the root's
/// `/etc/passwd` and `/etc/group`. As Docker does, a lone `user` means group `user` too.
pub fn resolve_chown(root: &Path, spec: &str) -> Result<(u32, u32)> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, g),
        None => (spec, spec),
    };
    let uid = match user.parse::<u32>() {
        Ok(n) => n,
        Err(_) => lookup(root, "etc/passwd", user).ok_or_else(|| {
            BuildError::Options(format!("unable to convert uid/gid chown string to host mapping: can't find uid for user {user}: no such user: {user}"))
        })?,
    };
    let gid = match group.parse::<u32>() {
        Ok(n) => n,
        Err(_) => lookup(root, "etc/group", group).ok_or_else(|| {
            BuildError::Options(format!("unable to convert uid/gid chown string to host mapping: can't find gid for group {group}: no such group: {group}"))
        })?,
    };
    Ok((uid, gid))
}

/// The id (third field) of `name` in a passwd/group-format file inside `root`.
fn lookup(root: &Path, file: &str, name: &str) -> Option<u32> {
    let bytes = berth_inroot::Root::open(root)
        .and_then(|r| r.read(Path::new(file)))
        .ok()?;
    let text = String::from_utf8_lossy(&bytes);
    text.lines().find_map(|line| {
        let mut fields = line.split(':');
        if fields.next()? != name {
            return None;
        }
        fields.nth(1)?.parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn symlinks_stay_inside() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("real/sub")).unwrap();
        symlink("/real", root.join("abs")).unwrap();
        symlink("../../..", root.join("real/sub/up")).unwrap();
        assert_eq!(
            secure_join(root, "/abs/sub", true).unwrap(),
            root.join("real/sub")
        );
        assert_eq!(
            secure_join(root, "real/sub/up/etc", true).unwrap(),
            root.join("etc")
        );
        assert_eq!(secure_join(root, "../../x", true).unwrap(), root.join("x"));
        assert_eq!(secure_join(root, "/abs", false).unwrap(), root.join("abs"));
        symlink("loop", root.join("loop")).unwrap();
        assert!(secure_join(root, "/loop/x", true).is_err());
    }

    #[test]
    fn chown_lookup() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("etc")).unwrap();
        std::fs::write(
            dir.path().join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\ntester:x:1000:1000::/home:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("etc/group"),
            "root:x:0:\nstaff:x:50:tester\ntester:x:1000:\n",
        )
        .unwrap();
        assert_eq!(
            resolve_chown(dir.path(), "tester:staff").unwrap(),
            (1000, 50)
        );
        assert_eq!(resolve_chown(dir.path(), "tester").unwrap(), (1000, 1000));
        assert_eq!(resolve_chown(dir.path(), "12:34").unwrap(), (12, 34));
        assert_eq!(resolve_chown(dir.path(), "7").unwrap(), (7, 7));
        assert!(resolve_chown(dir.path(), "nobody")
            .unwrap_err()
            .to_string()
            .contains("nobody"));
    }
}
