//! The volume store: Docker's `volumes/<name>/_data` layout, with each volume's metadata (driver,
//! labels, options, creation time) in `volumes/<name>/metadata.json` (Docker keeps the same facts
//! in `metadata.db` and `opts.json`). Owns creating, listing, inspecting, removing and pruning
//! volumes, the `local` driver's options (`type`, `device`, `o`: tmpfs and bind volumes mounted
//! on `_data` at first use), the anonymous-volume label, and turning a new container's `-v`,
//! `--mount`, `--volumes-from` and the image's `VOLUME`s into its mount points, copying the
//! image's content into an empty volume on first use as Docker does.
//!
//! A volume is created in `volumes/.staging/` and renamed into place, so it appears whole or not
//! at all; removal renames it to `volumes/.trash/` first. Both are invisible to listings (a
//! volume name never starts with `.`). It must not know how containers run: it reads container
//! records only to find a volume's users.
use crate::error::{EngineError, Result};
use crate::options::{HostConfig, MountConfig};
use crate::record::{write_atomic, ContainerRecord, MountPoint, Store};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

mod mounts;
use mounts::mounted_at;
pub use mounts::{dir_size, PreparedMounts};

/// The label Docker puts on anonymous volumes (`-v /path`, the image's `VOLUME`, unnamed
/// `volume create`); `volume prune` without `-a` removes only these.
pub const ANONYMOUS_LABEL: &str = "com.docker.volume.anonymous";

/// The one driver Berth has.
pub const LOCAL_DRIVER: &str = "local";

/// `volumes/<name>/metadata.json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct Volume {
    pub name: String,
    pub driver: String,
    pub labels: Option<BTreeMap<String, String>>,
    pub options: Option<BTreeMap<String, String>>,
    pub created_at: String,
    /// `<root>/volumes/<name>/_data` (not stored: derived from where the store is).
    #[serde(skip)]
    pub mountpoint: PathBuf,
}

impl Volume {
    pub fn is_anonymous(&self) -> bool {
        self.labels
            .as_ref()
            .is_some_and(|l| l.contains_key(ANONYMOUS_LABEL))
    }

    /// `docker volume inspect`'s document.
    pub fn inspect(&self) -> Value {
        json!({
            "CreatedAt": self.created_at,
            "Driver": self.driver,
            "Labels": self.labels,
            "Mountpoint": self.mountpoint.to_string_lossy(),
            "Name": self.name,
            "Options": self.options,
            "Scope": "local",
        })
    }

    /// `docker volume ls --format` row (Docker's field names; sizes only with `system df -v`).
    pub fn ls_row(&self) -> Value {
        let labels = self
            .labels
            .iter()
            .flatten()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",");
        json!({
            "Availability": "N/A",
            "Driver": self.driver,
            "Group": "N/A",
            "Labels": labels,
            "Links": "N/A",
            "Mountpoint": self.mountpoint.to_string_lossy(),
            "Name": self.name,
            "Scope": "local",
            "Size": "N/A",
            "Status": "N/A",
        })
    }
}

/// What `volume create` was asked.
#[derive(Debug, Clone, Default)]
pub struct CreateVolume {
    /// Empty: a random 64-hex name, labelled anonymous (as Docker does).
    pub name: String,
    pub driver: String,
    pub labels: BTreeMap<String, String>,
    pub options: BTreeMap<String, String>,
}

/// What a prune removed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PruneReport {
    pub deleted: Vec<String>,
    pub reclaimed_bytes: u64,
}

/// Docker's volume name rule: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && name.len() >= 2
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

/// The volume store under one Berth root.
#[derive(Debug, Clone)]
pub struct Volumes {
    dir: PathBuf,
    containers: Store,
}

impl Volumes {
    pub fn new(root: &Path) -> Volumes {
        Volumes {
            dir: root.join("volumes"),
            containers: Store::new(root),
        }
    }

    /// `<root>/volumes`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn volume_dir(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// `volume create`: creates the volume, or returns the existing one of that name (Docker's
    /// create is idempotent for the same driver).
    pub fn create(&self, req: &CreateVolume) -> Result<Volume> {
        let driver = if req.driver.is_empty() {
            LOCAL_DRIVER
        } else {
            req.driver.as_str()
        };
        let (name, labels) = if req.name.is_empty() {
            let mut labels = req.labels.clone();
            labels.insert(ANONYMOUS_LABEL.into(), String::new());
            (crate::names::new_id(), labels)
        } else {
            (req.name.clone(), req.labels.clone())
        };
        if !valid_name(&name) {
            return Err(EngineError::InvalidVolume {
                name: name.clone(),
                reason: format!("\"{name}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"),
            });
        }
        if driver != LOCAL_DRIVER {
            return Err(EngineError::InvalidVolume {
                name,
                reason: format!(
                    "error looking up volume plugin {driver}: plugin \"{driver}\" not found"
                ),
            });
        }
        validate_options(&name, &req.options)?;
        if let Ok(existing) = self.get(&name) {
            return Ok(existing);
        }
        let volume = Volume {
            name: name.clone(),
            driver: driver.into(),
            labels: Some(labels),
            options: Some(req.options.clone()),
            created_at: now_seconds(),
            mountpoint: self.volume_dir(&name).join("_data"),
        };
        self.commit_new(&volume)?;
        self.get(&name)
    }

    /// A volume a container names that does not exist yet (`-v name:/x`, `-v /x`): Docker gives
    /// these no options and no labels (anonymous ones get the anonymous label).
    fn create_implicit(&self, name: &str, anonymous: bool) -> Result<Volume> {
        if let Ok(existing) = self.get(name) {
            return Ok(existing);
        }
        if !valid_name(name) {
            return Err(EngineError::InvalidVolume {
                name: name.into(),
                reason: format!("\"{name}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"),
            });
        }
        let volume = Volume {
            name: name.into(),
            driver: LOCAL_DRIVER.into(),
            labels: anonymous
                .then(|| BTreeMap::from([(ANONYMOUS_LABEL.to_string(), String::new())])),
            options: None,
            created_at: now_seconds(),
            mountpoint: self.volume_dir(name).join("_data"),
        };
        self.commit_new(&volume)?;
        self.get(name)
    }

    /// Builds the volume in `.staging/` and renames it into place; losing the race to another
    /// creator of the same name is not an error.
    fn commit_new(&self, volume: &Volume) -> Result<()> {
        let staging_root = self.dir.join(".staging");
        let staging = staging_root.join(format!("{}-{}", volume.name, std::process::id()));
        let data = staging.join("_data");
        std::fs::create_dir_all(&data).map_err(|e| EngineError::io(&data, e))?;
        let meta = serde_json::to_vec_pretty(volume).map_err(|e| EngineError::Json {
            path: staging.join("metadata.json"),
            source: e,
        })?;
        write_atomic(&staging.join("metadata.json"), &meta)?;
        let target = self.volume_dir(&volume.name);
        match std::fs::rename(&staging, &target) {
            Ok(()) => {
                self.event("create", &volume.name);
                Ok(())
            }
            Err(_) if target.join("metadata.json").exists() => {
                let _ = std::fs::remove_dir_all(&staging);
                Ok(())
            }
            Err(e) => {
                let _ = std::fs::remove_dir_all(&staging);
                Err(EngineError::io(&target, e))
            }
        }
    }

    /// One volume by name.
    pub fn get(&self, name: &str) -> Result<Volume> {
        if !valid_name(name) {
            return Err(EngineError::NoSuchVolume(name.into()));
        }
        let dir = self.volume_dir(name);
        let meta = dir.join("metadata.json");
        let mut volume = match std::fs::read(&meta) {
            Ok(bytes) => serde_json::from_slice::<Volume>(&bytes)
                .map_err(|source| EngineError::Json { path: meta, source })?,
            // A bare `_data` (made by an older Berth or by hand) is still a local volume.
            Err(_) if dir.join("_data").is_dir() => Volume {
                name: name.into(),
                driver: LOCAL_DRIVER.into(),
                created_at: std::fs::metadata(&dir)
                    .and_then(|m| m.modified())
                    .map(|t| berth_common::time::rfc3339_secs(t.into()))
                    .unwrap_or_default(),
                ..Default::default()
            },
            Err(_) => return Err(EngineError::NoSuchVolume(name.into())),
        };
        volume.name = name.into();
        volume.mountpoint = dir.join("_data");
        Ok(volume)
    }

    /// Every volume, sorted by name.
    pub fn list(&self) -> Vec<Volume> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut out: Vec<Volume> = entries
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| valid_name(n))
            .filter_map(|n| self.get(&n).ok())
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// Every container record, failing on the first one that cannot be read: whether a volume
    /// is in use cannot be answered while a record is unreadable.
    fn all_records(&self) -> Result<Vec<ContainerRecord>> {
        let mut all = self.containers.load_all();
        match all.unreadable.pop() {
            Some(bad) => Err(EngineError::UnreadableRecord(Box::new(bad))),
            None => Ok(all.records),
        }
    }

    /// The IDs of the containers whose mounts use volume `name`.
    pub fn users(&self, name: &str) -> Result<Vec<String>> {
        Ok(self
            .all_records()?
            .into_iter()
            .filter(|r| uses_volume(r, name))
            .map(|r| r.id)
            .collect())
    }

    /// Names of the volumes some container uses.
    fn used_names(&self) -> Result<std::collections::BTreeSet<String>> {
        Ok(self
            .all_records()?
            .into_iter()
            .flat_map(|r| {
                r.mount_points
                    .into_values()
                    .filter(|m| m.r#type == "volume")
                    .map(|m| m.name)
            })
            .collect())
    }

    /// `volume ls -f`: `dangling=true|false`, `label=k[=v]`, `name=sub`, `driver=local`.
    pub fn list_filtered(&self, filters: &[(String, String)]) -> Result<Vec<Volume>> {
        for (k, v) in filters {
            if !["dangling", "label", "name", "driver"].contains(&k.as_str()) {
                return Err(EngineError::InvalidFilter(format!("{k}={v}")));
            }
            if k == "dangling" && !["true", "false", "1", "0"].contains(&v.as_str()) {
                return Err(EngineError::InvalidFilter(format!("{k}={v}")));
            }
        }
        let used = if filters.iter().any(|(k, _)| k == "dangling") {
            self.used_names()?
        } else {
            Default::default()
        };
        Ok(self
            .list()
            .into_iter()
            .filter(|v| {
                filters.iter().all(|(k, want)| match k.as_str() {
                    "dangling" => {
                        let dangling = !used.contains(&v.name);
                        dangling == (want == "true" || want == "1")
                    }
                    "label" => label_matches(v.labels.as_ref(), want),
                    "name" => v.name.contains(want.as_str()),
                    "driver" => v.driver == *want,
                    _ => true,
                })
            })
            .collect())
    }

    /// `volume rm [-f]`: refuses a volume in use (naming the containers); `force` only makes a
    /// missing volume not an error, as in Docker.
    pub fn remove(&self, name: &str, force: bool) -> Result<()> {
        let _lock = self.containers.lock()?;
        let volume = match self.get(name) {
            Ok(v) => v,
            Err(EngineError::NoSuchVolume(_)) if force => return Ok(()),
            Err(e) => return Err(e),
        };
        let users = self.users(&volume.name)?;
        if !users.is_empty() {
            return Err(EngineError::VolumeInUse {
                name: volume.name,
                containers: users,
            });
        }
        self.destroy(&volume)
    }

    /// Unmounts (when mounted by its options) and deletes a volume; the caller checked it is
    /// unused.
    fn destroy(&self, volume: &Volume) -> Result<()> {
        if mounted_at(&volume.mountpoint) {
            nix::mount::umount2(&volume.mountpoint, nix::mount::MntFlags::MNT_DETACH)
                .map_err(|e| EngineError::io(&volume.mountpoint, std::io::Error::from(e)))?;
        }
        let trash = self.dir.join(".trash");
        std::fs::create_dir_all(&trash).map_err(|e| EngineError::io(&trash, e))?;
        let doomed = trash.join(format!("{}-{}", volume.name, crate::names::new_id()));
        let dir = self.volume_dir(&volume.name);
        std::fs::rename(&dir, &doomed).map_err(|e| EngineError::io(&dir, e))?;
        self.event("destroy", &volume.name);
        std::fs::remove_dir_all(&doomed).map_err(|e| EngineError::io(&doomed, e))
    }

    fn event(&self, action: &str, name: &str) {
        if let Some(root) = self.dir.parent() {
            crate::events::other(
                root,
                "volume",
                action,
                name,
                &[("driver", LOCAL_DRIVER.into())],
            );
        }
    }

    /// `volume prune [-a] [-f label=…]`: unused anonymous volumes, or every unused one with
    /// `all`.
    pub fn prune(&self, all: bool, filters: &[(String, String)]) -> Result<PruneReport> {
        for (k, v) in filters {
            if !["label", "label!", "all"].contains(&k.as_str()) {
                return Err(EngineError::InvalidFilter(format!("{k}={v}")));
            }
        }
        let all = all
            || filters
                .iter()
                .any(|(k, v)| k == "all" && (v == "true" || v == "1"));
        let _lock = self.containers.lock()?;
        let used = self.used_names()?;
        let mut report = PruneReport::default();
        for volume in self.list() {
            if used.contains(&volume.name) || (!all && !volume.is_anonymous()) {
                continue;
            }
            let keep = filters.iter().any(|(k, v)| match k.as_str() {
                "label" => !label_matches(volume.labels.as_ref(), v),
                "label!" => label_matches(volume.labels.as_ref(), v),
                _ => false,
            });
            if keep {
                continue;
            }
            let size = dir_size(&volume.mountpoint);
            self.destroy(&volume)?;
            report.reclaimed_bytes += size;
            report.deleted.push(volume.name);
        }
        if let Some(root) = self.dir.parent() {
            let reclaimed = [("reclaimed", report.reclaimed_bytes.to_string())];
            crate::events::other(root, "volume", "prune", "", &reclaimed);
        }
        Ok(report)
    }
}

fn uses_volume(record: &ContainerRecord, name: &str) -> bool {
    record
        .mount_points
        .values()
        .any(|m| m.r#type == "volume" && m.name == name)
}

/// Docker's `volume mount` events (`mounted`: recorded just before the container's `start`, with
/// the container, destination, propagation and read/write) or `volume unmount` events (after its
/// `die`), one for each volume the container uses.
pub(crate) fn record_mount_events(root: &Path, record: &ContainerRecord, mounted: bool) {
    for m in record
        .mount_points
        .values()
        .filter(|m| m.r#type == "volume")
    {
        let mut attrs = vec![
            ("container", record.id.clone()),
            ("driver", LOCAL_DRIVER.to_string()),
        ];
        if mounted {
            attrs.push(("destination", m.destination.clone()));
            attrs.push(("propagation", String::new()));
            attrs.push(("read/write", m.rw.to_string()));
        }
        let action = if mounted { "mount" } else { "unmount" };
        crate::events::other(root, "volume", action, &m.name, &attrs);
    }
}

/// `label=k` or `label=k=v` against an optional label map (none matches nothing).
pub(crate) fn label_matches(labels: Option<&BTreeMap<String, String>>, want: &str) -> bool {
    labels.is_some_and(|l| berth_image::filter::label_matches(l, want))
}

/// The local driver's options, checked as Docker checks them.
fn validate_options(name: &str, options: &BTreeMap<String, String>) -> Result<()> {
    for key in options.keys() {
        if !["type", "device", "o", "size"].contains(&key.as_str()) {
            return Err(EngineError::InvalidVolume {
                name: name.into(),
                reason: format!("invalid option: \"{key}\""),
            });
        }
    }
    let kind = options.get("type").map(String::as_str).unwrap_or("");
    let o = options.get("o").map(String::as_str).unwrap_or("");
    if !kind.is_empty() || !o.is_empty() {
        let bind = o.split(',').any(|f| f == "bind" || f == "rbind");
        if kind.is_empty() {
            return Err(EngineError::InvalidVolume {
                name: name.into(),
                reason: "missing required option: \"type\"".into(),
            });
        }
        if bind || kind == "none" {
            let device = options.get("device").map(String::as_str).unwrap_or("");
            if !device.starts_with('/') {
                return Err(EngineError::InvalidVolume {
                    name: name.into(),
                    reason: "missing required option: \"device\" (an absolute host path for a bind volume)".into(),
                });
            }
        }
    }
    Ok(())
}

/// Docker's `CreatedAt` (RFC 3339, seconds).
fn now_seconds() -> String {
    berth_common::time::rfc3339_secs(chrono::Utc::now())
}

#[cfg(test)]
mod tests;
