//! The host's device nodes, as `--privileged` hands them to a container.

use super::*;

/// The host's character and block devices under `dev` (Docker's `--privileged` gives them all),
/// in OCI `linux.devices` form; `/dev/pts`, `/dev/shm` and `/dev/mqueue` belong to the container
/// itself and are skipped, as are the container's own default devices' stand-ins (ptmx, console).
pub fn host_devices(dev: &std::path::Path) -> Vec<Value> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let mut found = Vec::new();
    let mut dirs = vec![dev.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            let name = entry.file_name();
            let kind = meta.file_type();
            if kind.is_dir() {
                if !matches!(name.to_str(), Some("pts" | "shm" | "mqueue")) {
                    dirs.push(path);
                }
                continue;
            }
            let typ = if kind.is_char_device() {
                "c"
            } else if kind.is_block_device() {
                "b"
            } else {
                continue;
            };
            if path == dev.join("ptmx") || path == dev.join("console") {
                continue;
            }
            let rdev = meta.rdev();
            found.push(json!({
                "path": path.to_string_lossy(),
                "type": typ,
                "major": libc::major(rdev),
                "minor": libc::minor(rdev),
                "fileMode": meta.mode() & 0o7777,
                "uid": meta.uid(),
                "gid": meta.gid(),
            }));
        }
    }
    found.sort_by(|a, b| a["path"].as_str().cmp(&b["path"].as_str()));
    found
}
