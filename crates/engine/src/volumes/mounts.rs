//! Volumes at use: the `local` driver's mounts (`type`/`device`/`o`) on `_data`, sizes, and a
//! new container's mount points from `-v`, `--mount`, `--volumes-from` and the image's `VOLUME`s,
//! with the copy-up of image content into an empty volume.

use super::*;

impl Volumes {
    /// Mounts a volume with `type`/`device`/`o` options on its `_data` unless it already is.
    pub fn ensure_mounted(&self, volume: &Volume) -> Result<()> {
        let Some(options) = volume.options.as_ref().filter(|o| o.contains_key("type")) else {
            return Ok(());
        };
        if mounted_at(&volume.mountpoint) {
            return Ok(());
        }
        let kind = options.get("type").map(String::as_str).unwrap_or("");
        let device = options.get("device").map(String::as_str).unwrap_or("");
        let (flags, data) = mount_flags(options.get("o").map(String::as_str).unwrap_or(""));
        let bind = flags.contains(nix::mount::MsFlags::MS_BIND);
        let source = if device.is_empty() { kind } else { device };
        let fstype = if bind || kind == "none" {
            None
        } else {
            Some(kind)
        };
        let data = (!data.is_empty()).then_some(data.as_str());
        nix::mount::mount(Some(source), &volume.mountpoint, fstype, flags, data).map_err(|e| {
            EngineError::InvalidVolume {
                name: volume.name.clone(),
                reason: format!(
                    "error while mounting volume '{}': failed to mount local volume: mount {source}:{}, flags: {:#x}, data: {}: {e}",
                    volume.mountpoint.display(),
                    volume.mountpoint.display(),
                    flags.bits(),
                    data.unwrap_or("")
                ),
            }
        })?;
        if bind && flags.contains(nix::mount::MsFlags::MS_RDONLY) {
            // A bind mount takes `ro` only on a remount.
            let _ = nix::mount::mount(
                None::<&str>,
                &volume.mountpoint,
                None::<&str>,
                flags | nix::mount::MsFlags::MS_REMOUNT,
                None::<&str>,
            );
        }
        Ok(())
    }

    /// Bytes used by a volume's data.
    pub fn size(&self, volume: &Volume) -> u64 {
        dir_size(&volume.mountpoint)
    }

    /// Removes the anonymous volumes `record` used that no other container uses (`rm -v`,
    /// `run --rm`). Best effort: a volume that cannot go is left for `volume prune`.
    pub fn remove_anonymous_of(&self, record: &ContainerRecord) {
        for mp in record.mount_points.values() {
            if mp.r#type != "volume" {
                continue;
            }
            let Ok(volume) = self.get(&mp.name) else {
                continue;
            };
            if !volume.is_anonymous() {
                continue;
            }
            let Ok(_lock) = self.containers.lock() else {
                return;
            };
            // A volume some unreadable record may use is kept.
            if self
                .users(&volume.name)
                .is_ok_and(|users| users.iter().all(|id| *id == record.id))
            {
                let _ = self.destroy(&volume);
            }
        }
    }

    /// Resolves a new container's mounts: `--volumes-from` first, then the image's `VOLUME`s
    /// not otherwise covered (anonymous volumes), then `-v`/`--mount` (which win over both).
    /// Creates missing volumes, mounts volumes with options, and copies the image's content at
    /// the target into a volume that is still empty. Returns the mount points (Docker's
    /// `MountPoints`) and the mounts for the OCI spec, volume sources as volume names.
    pub fn prepare_container(
        &self,
        host: &HostConfig,
        image_volumes: &[String],
        rootfs: &Path,
    ) -> Result<PreparedMounts> {
        let mut by_target: BTreeMap<String, MountConfig> = BTreeMap::new();
        for from in &host.volumes_from {
            let (reference, mode) = match from.rsplit_once(':') {
                Some((r, m)) if m == "ro" || m == "rw" => (r, Some(m)),
                _ => (from.as_str(), None),
            };
            let id = self.containers.resolve(reference)?;
            let other = self.containers.load(&id)?;
            for mp in other.mount_points.values() {
                by_target.insert(
                    mp.destination.clone(),
                    MountConfig {
                        r#type: mp.r#type.clone(),
                        source: if mp.r#type == "volume" {
                            mp.name.clone()
                        } else {
                            mp.source.clone()
                        },
                        target: mp.destination.clone(),
                        read_only: match mode {
                            Some(m) => m == "ro",
                            None => !mp.rw,
                        },
                    },
                );
            }
        }
        let covered =
            |t: &str| host.tmpfs.contains_key(t) || host.mounts.iter().any(|m| m.target == t);
        for target in image_volumes {
            if !covered(target) && !by_target.contains_key(target) {
                by_target.insert(
                    target.clone(),
                    MountConfig {
                        r#type: "volume".into(),
                        target: target.clone(),
                        ..Default::default()
                    },
                );
            }
        }
        for m in &host.mounts {
            by_target.insert(m.target.clone(), m.clone());
        }
        let mut prepared = PreparedMounts::default();
        for (target, mut m) in by_target {
            match m.r#type.as_str() {
                "volume" => {
                    let anonymous = m.source.is_empty();
                    let volume = if anonymous {
                        self.create_implicit(&crate::names::new_id(), true)?
                    } else {
                        self.create_implicit(&m.source, false)?
                    };
                    self.ensure_mounted(&volume)?;
                    copy_up_if_empty(rootfs, &target, &volume.mountpoint)?;
                    m.source = volume.name.clone();
                    prepared.mount_points.insert(
                        target.clone(),
                        MountPoint {
                            r#type: "volume".into(),
                            name: volume.name.clone(),
                            source: volume.mountpoint.to_string_lossy().into_owned(),
                            destination: target,
                            rw: !m.read_only,
                        },
                    );
                }
                "bind" => {
                    let src = Path::new(&m.source);
                    if !src.exists() {
                        std::fs::create_dir_all(src).map_err(|e| EngineError::io(src, e))?;
                    }
                    prepared.mount_points.insert(
                        target.clone(),
                        MountPoint {
                            r#type: "bind".into(),
                            name: String::new(),
                            source: m.source.clone(),
                            destination: target,
                            rw: !m.read_only,
                        },
                    );
                }
                _ => {}
            }
            prepared.spec_mounts.push(m);
        }
        Ok(prepared)
    }
}

/// A new container's mounts, as `prepare_container` resolved them.
#[derive(Debug, Clone, Default)]
pub struct PreparedMounts {
    /// Docker's `MountPoints`, by destination.
    pub mount_points: BTreeMap<String, MountPoint>,
    /// Everything the OCI spec mounts (volume sources are volume names).
    pub spec_mounts: Vec<MountConfig>,
}

/// Splits mount(8)-style options into flags and the filesystem's data string.
pub(super) fn mount_flags(o: &str) -> (nix::mount::MsFlags, String) {
    use nix::mount::MsFlags;
    let mut flags = MsFlags::empty();
    let mut data = Vec::new();
    for opt in o.split(',').filter(|s| !s.is_empty()) {
        match opt {
            "ro" => flags |= MsFlags::MS_RDONLY,
            "rw" | "defaults" | "suid" | "dev" | "exec" | "async" => {}
            "nosuid" => flags |= MsFlags::MS_NOSUID,
            "nodev" => flags |= MsFlags::MS_NODEV,
            "noexec" => flags |= MsFlags::MS_NOEXEC,
            "sync" => flags |= MsFlags::MS_SYNCHRONOUS,
            "noatime" => flags |= MsFlags::MS_NOATIME,
            "nodiratime" => flags |= MsFlags::MS_NODIRATIME,
            "relatime" => flags |= MsFlags::MS_RELATIME,
            "strictatime" => flags |= MsFlags::MS_STRICTATIME,
            "bind" => flags |= MsFlags::MS_BIND,
            "rbind" => flags |= MsFlags::MS_BIND | MsFlags::MS_REC,
            other => data.push(other),
        }
    }
    (flags, data.join(","))
}

/// Whether something is mounted exactly at `path` (a bind mount from the same filesystem has
/// the same device number, so `/proc/self/mountinfo` is asked).
pub(super) fn mounted_at(path: &Path) -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let want = path.to_string_lossy();
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .any(|p| unescape_mountinfo(p) == want)
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
pub(super) fn unescape_mountinfo(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 4 <= bytes.len() {
            let octal = std::str::from_utf8(&bytes[i + 1..i + 4]).ok();
            if let Some(v) = octal.and_then(|o| u8::from_str_radix(o, 8).ok()) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Bytes in the regular files below `dir` (hard links counted once per name, like `du -b`
/// would not; good enough for `system df`).
pub fn dir_size(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else {
                continue;
            };
            if meta.is_dir() {
                stack.push(entry.path());
            } else if meta.is_file() {
                total += meta.len();
            }
        }
    }
    total
}

/// Docker's copy-up: the first time an empty volume is mounted over a directory the image has,
/// the image's content there (with its owners and modes) is copied into the volume. The target
/// is resolved inside the container's root, so a symlink in the image cannot point the copy at
/// the host.
pub(super) fn copy_up_if_empty(rootfs: &Path, target: &str, data: &Path) -> Result<()> {
    let is_empty = std::fs::read_dir(data)
        .map(|mut d| d.next().is_none())
        .unwrap_or(false);
    if !is_empty || rootfs.as_os_str().is_empty() {
        return Ok(());
    }
    let Some(st) = crate::container_fs::copy_up(rootfs, target, data)? else {
        return Ok(());
    };
    std::os::unix::fs::chown(data, Some(st.st_uid), Some(st.st_gid))
        .map_err(|e| EngineError::io(data, e))?;
    std::fs::set_permissions(
        data,
        std::os::unix::fs::PermissionsExt::from_mode(st.st_mode & 0o7777),
    )
    .map_err(|e| EngineError::io(data, e))
}
