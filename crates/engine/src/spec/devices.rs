//! Devices: the device cgroup rules every container gets, and the host's device nodes, as
//! `--privileged` hands them to a container.

use super::*;
use oci_spec::runtime::{
    LinuxDevice, LinuxDeviceBuilder, LinuxDeviceCgroup, LinuxDeviceCgroupBuilder, LinuxDeviceType,
};

/// The device cgroup rules: Docker's allow list (null, zero, full, random, urandom, tty,
/// console, ptmx, pts, tun, and mknod of any node) after a deny-all, or allow-all when
/// `privileged`.
pub(super) fn device_rules(privileged: bool) -> Result<Vec<LinuxDeviceCgroup>> {
    let rule =
        |typ: Option<LinuxDeviceType>, major: Option<i64>, minor: Option<i64>, access: &str| {
            let mut b = LinuxDeviceCgroupBuilder::default()
                .allow(true)
                .access(access);
            if let Some(t) = typ {
                b = b.typ(t);
            }
            if let Some(m) = major {
                b = b.major(m);
            }
            if let Some(m) = minor {
                b = b.minor(m);
            }
            b.build()
        };
    if privileged {
        return Ok(vec![rule(None, None, None, "rwm")?]);
    }
    let mut deny_all = rule(None, None, None, "rwm")?;
    deny_all.set_allow(false);
    let c = Some(LinuxDeviceType::C);
    let mut rules = vec![deny_all];
    for (major, minor) in [
        (1, Some(3)),
        (1, Some(5)),
        (1, Some(7)),
        (1, Some(8)),
        (1, Some(9)),
        (5, Some(0)),
        (5, Some(1)),
        (5, Some(2)),
        (136, None),
        (10, Some(200)),
    ] {
        rules.push(rule(c, Some(major), minor, "rwm")?);
    }
    rules.push(rule(c, None, None, "m")?);
    rules.push(rule(Some(LinuxDeviceType::B), None, None, "m")?);
    Ok(rules)
}

/// The host's character and block devices under `dev` (Docker's `--privileged` gives them all),
/// in OCI `linux.devices` form; `/dev/pts`, `/dev/shm` and `/dev/mqueue` belong to the container
/// itself and are skipped, as are the container's own default devices' stand-ins (ptmx, console).
pub fn host_devices(dev: &std::path::Path) -> Vec<LinuxDevice> {
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
                LinuxDeviceType::C
            } else if kind.is_block_device() {
                LinuxDeviceType::B
            } else {
                continue;
            };
            if path == dev.join("ptmx") || path == dev.join("console") {
                continue;
            }
            let rdev = meta.rdev();
            let device = LinuxDeviceBuilder::default()
                .path(path)
                .typ(typ)
                .major(i64::from(libc::major(rdev)))
                .minor(i64::from(libc::minor(rdev)))
                .file_mode(meta.mode() & 0o7777)
                .uid(meta.uid())
                .gid(meta.gid())
                .build();
            // Every field is set, so the builder cannot refuse it.
            if let Ok(device) = device {
                found.push(device);
            }
        }
    }
    found.sort_by(|a, b| a.path().cmp(b.path()));
    found
}
