//! The container record store: `containers/<id>/config.v2.json` and `hostconfig.json` with
//! Docker's field names, the name registry (`containers/.names/<name>` holding the ID, created
//! with O_EXCL so two `create`s can never take one name), lookups by name / ID / unique ID prefix,
//! and the per-root flock held around read-modify-write of a record (never around long work).
pub use crate::error::UnreadableRecord;
use crate::error::{EngineError, Result};
use crate::options::{ContainerConfig, HostConfig};
use crate::parsed_cache::{self, ParsedCache};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// Docker's `State` as stored in `config.v2.json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerState {
    pub running: bool,
    pub paused: bool,
    pub restarting: bool,
    #[serde(rename = "OOMKilled")]
    pub oom_killed: bool,
    pub removal_in_progress: bool,
    pub dead: bool,
    pub pid: i32,
    pub exit_code: i32,
    pub error: String,
    pub started_at: String,
    pub finished_at: String,
    /// Docker's `Health`: present once a container with a health check has started.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health: Option<crate::health::Health>,
}

/// Where the container's overlay layer lives (from the image store).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct LayerPaths {
    pub mount_id: String,
    pub merged_dir: String,
    pub upper_dir: String,
    pub work_dir: String,
    pub lower_dir: String,
}

/// One mount point of a container, Docker's `MountPoints` entry (simplified).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct MountPoint {
    pub r#type: String,
    pub name: String,
    pub source: String,
    pub destination: String,
    #[serde(rename = "RW")]
    pub rw: bool,
}

/// `config.v2.json`: Docker's container record plus Berth's monitor bookkeeping.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerRecord {
    #[serde(rename = "ID")]
    pub id: String,
    pub created: String,
    pub path: String,
    pub args: Vec<String>,
    pub config: ContainerConfig,
    pub image: String,
    pub state: ContainerState,
    pub name: String,
    pub restart_count: i64,
    pub driver: String,
    #[serde(rename = "OS")]
    pub os: String,
    pub has_been_started_before: bool,
    pub has_been_manually_stopped: bool,
    pub mount_points: BTreeMap<String, MountPoint>,
    pub log_path: String,
    pub hostname_path: String,
    pub hosts_path: String,
    pub resolv_conf_path: String,
    /// PID of the monitor that owns the running container (0 when none).
    pub berth_monitor_pid: i32,
    /// Start time (clock ticks since boot, /proc/<pid>/stat field 22) of `State.Pid`, so a
    /// recycled PID is never mistaken for the container.
    pub berth_pid_start_time: u64,
    /// The container's overlay directories.
    pub berth_layer: LayerPaths,
    /// The cgroups path the runtime was given (`linux.cgroupsPath`).
    pub berth_cgroups_path: String,
}

/// Docker's status words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Created,
    Running,
    Paused,
    Restarting,
    Removing,
    Exited,
    Dead,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Restarting => "restarting",
            Status::Removing => "removing",
            Status::Exited => "exited",
            Status::Dead => "dead",
        }
    }
}

impl ContainerRecord {
    /// The name without Docker's leading `/`.
    pub fn short_name(&self) -> &str {
        self.name.strip_prefix('/').unwrap_or(&self.name)
    }

    /// Whether the recorded init is still the live process it was (PID and start time match).
    pub fn init_alive(&self) -> bool {
        self.state.pid > 0
            && crate::procinfo::start_time(self.state.pid) == Some(self.berth_pid_start_time)
    }

    /// SIGKILLs whatever is left in the container's cgroup and removes the cgroup (through
    /// `berth-cgroups`): for when the runtime state that would have done it is lost.
    pub(crate) fn kill_cgroup(&self) -> Result<()> {
        let path = &self.berth_cgroups_path;
        berth_cgroups::kill_and_destroy_path(path, std::time::Duration::from_secs(2))
            .map_err(|e| EngineError::cgroup(path, e))
    }

    /// The truthful status: a record that says running but whose init is gone reads as exited.
    pub fn status(&self) -> Status {
        let s = &self.state;
        if s.removal_in_progress {
            Status::Removing
        } else if s.dead {
            Status::Dead
        } else if s.running && self.init_alive() {
            if s.paused {
                Status::Paused
            } else if s.restarting {
                Status::Restarting
            } else {
                Status::Running
            }
        } else if s.restarting && crate::procinfo::alive(self.berth_monitor_pid) {
            Status::Restarting
        } else if s.started_at.is_empty()
            || (!self.has_been_started_before && s.finished_at.is_empty())
        {
            Status::Created
        } else {
            Status::Exited
        }
    }

    /// Whether the container is running right now (checked against /proc).
    pub fn is_running(&self) -> bool {
        matches!(self.status(), Status::Running | Status::Paused)
    }

    /// Whether the container's log may still grow, so a `logs -f` follower must keep reading:
    /// it runs or is restarting, or its init has just exited and its monitor (the log's writer)
    /// is still draining the pipes before it records the exit. The status reads "exited" as soon
    /// as the init is gone, which is before its last output is in the log.
    pub fn log_may_grow(&self) -> bool {
        matches!(
            self.status(),
            Status::Running | Status::Paused | Status::Restarting
        ) || (self.state.running && crate::procinfo::alive(self.berth_monitor_pid))
    }
}

/// The empty time Docker shows for "never".
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// The records of a root: the readable ones, newest first, and the unreadable ones.
#[derive(Debug, Default)]
pub struct Records {
    pub records: Vec<ContainerRecord>,
    pub unreadable: Vec<UnreadableRecord>,
}

/// Exclusive lock on the root's metadata, released on drop.
pub struct MetadataLock {
    _file: fs::File,
}

/// The container store under one Berth root.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
    /// Parsed records and host configs, reused while their files are unchanged (a service
    /// that lists every container per request parses only what changed since).
    records: ParsedCache<ContainerRecord>,
    host_configs: ParsedCache<HostConfig>,
}

impl Store {
    pub fn new(root: &Path) -> Store {
        Store {
            root: root.to_path_buf(),
            records: ParsedCache::default(),
            host_configs: ParsedCache::default(),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn containers_dir(&self) -> PathBuf {
        self.root.join("containers")
    }

    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.containers_dir().join(id)
    }

    fn names_dir(&self) -> PathBuf {
        self.containers_dir().join(".names")
    }

    /// Takes the root's metadata lock (blocking). Hold it only for short metadata edits.
    pub fn lock(&self) -> Result<MetadataLock> {
        let dir = self.containers_dir();
        fs::create_dir_all(&dir).map_err(|e| EngineError::io(&dir, e))?;
        let path = dir.join(".lock");
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| EngineError::io(&path, e))?;
        file.lock().map_err(|e| EngineError::io(&path, e))?;
        Ok(MetadataLock { _file: file })
    }

    /// Takes container `id`'s own lock (blocking), held by whoever brings it up (its monitor,
    /// from loading the record until the record says running) and by `rm` while it takes the
    /// container apart: a start and a removal never interleave. Fails with "No such container"
    /// when the container's directory is gone (removed while we waited).
    pub fn lock_container(&self, id: &str) -> Result<MetadataLock> {
        let path = self.container_dir(id).join(".op-lock");
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    EngineError::NoSuchContainer(id.to_string())
                } else {
                    EngineError::io(&path, e)
                }
            })?;
        file.lock().map_err(|e| EngineError::io(&path, e))?;
        Ok(MetadataLock { _file: file })
    }

    /// Claims `name` for `id`; fails with Docker's conflict message when taken. The name file
    /// appears with its ID already in it (written to a temporary file, then hard-linked into
    /// place, which fails when the name exists), so a command killed at any moment never leaves
    /// a name that points at nothing.
    pub fn reserve_name(&self, name: &str, id: &str) -> Result<()> {
        if !crate::names::valid_name(name) {
            return Err(EngineError::InvalidName(name.to_string()));
        }
        let dir = self.names_dir();
        fs::create_dir_all(&dir).map_err(|e| EngineError::io(&dir, e))?;
        let path = dir.join(name);
        // Valid names never start with '.', so a temporary file is never taken for a name.
        let tmp = dir.join(format!(".{name}.{id}.tmp"));
        fs::write(&tmp, id.as_bytes()).map_err(|e| EngineError::io(&tmp, e))?;
        let linked = fs::hard_link(&tmp, &path);
        let _ = fs::remove_file(&tmp);
        match linked {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let owner = fs::read_to_string(&path).unwrap_or_default();
                Err(EngineError::NameInUse {
                    name: name.to_string(),
                    id: owner,
                })
            }
            Err(e) => Err(EngineError::io(&path, e)),
        }
    }

    /// Removes the temporary files of name claims cut short (older than a minute, so a claim
    /// in progress keeps its own).
    pub fn remove_stale_name_temps(&self) {
        let Ok(rd) = fs::read_dir(self.names_dir()) else {
            return;
        };
        let minute_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(60);
        for e in rd.flatten() {
            let stale = e
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t < minute_ago);
            if e.file_name().to_string_lossy().starts_with('.') && stale {
                let _ = fs::remove_file(e.path());
            }
        }
    }

    /// Frees `name` (only if it still belongs to `id`).
    pub fn release_name(&self, name: &str, id: &str) {
        let path = self.names_dir().join(name);
        if fs::read_to_string(&path)
            .map(|owner| owner == id)
            .unwrap_or(false)
        {
            let _ = fs::remove_file(path);
        }
    }

    /// Every reserved name and the ID it names (including names of half-made containers).
    pub fn names(&self) -> Vec<(String, String)> {
        let Ok(rd) = fs::read_dir(self.names_dir()) else {
            return Vec::new();
        };
        rd.flatten()
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                if name.starts_with('.') {
                    return None;
                }
                let id = fs::read_to_string(e.path()).ok()?;
                Some((name, id.trim().to_string()))
            })
            .collect()
    }

    /// All container IDs (directory names), unsorted.
    pub fn list_ids(&self) -> Vec<String> {
        let Ok(entries) = fs::read_dir(self.containers_dir()) else {
            return Vec::new();
        };
        entries
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| n.len() == 64 && n.chars().all(|c| c.is_ascii_hexdigit()))
            .collect()
    }

    /// Resolves a name (with or without `/`), full ID or unique ID prefix to an ID.
    pub fn resolve(&self, reference: &str) -> Result<String> {
        let name = reference.strip_prefix('/').unwrap_or(reference);
        if !name.is_empty() && !name.contains('/') {
            if let Ok(id) = fs::read_to_string(self.names_dir().join(name)) {
                if self.container_dir(&id).join("config.v2.json").exists() {
                    return Ok(id);
                }
            }
        }
        if reference.is_empty() || !reference.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(EngineError::NoSuchContainer(reference.to_string()));
        }
        let reference = reference.to_ascii_lowercase();
        let matches: Vec<String> = self
            .list_ids()
            .into_iter()
            .filter(|id| id.starts_with(&reference))
            .collect();
        match matches.len() {
            0 => Err(EngineError::NoSuchContainer(reference)),
            1 => Ok(matches.into_iter().next().unwrap_or_default()),
            _ => Err(EngineError::AmbiguousContainer(reference)),
        }
    }

    pub fn load(&self, id: &str) -> Result<ContainerRecord> {
        let path = self.container_dir(id).join("config.v2.json");
        self.records
            .get(&path, |bytes| parsed_cache::json(&path, bytes))
            .map_err(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    EngineError::NoSuchContainer(id.to_string())
                } else {
                    EngineError::io(&path, e)
                }
            })?
    }

    /// Every record, newest first, and every record that could not be read (with the cause).
    /// A directory whose `config.v2.json` is missing is a container being created or removed
    /// right now and is skipped; any other failure (unreadable file, corrupt JSON) is reported,
    /// never dropped: a listing that hides a container hides a problem.
    pub fn load_all(&self) -> Records {
        let mut out = Records::default();
        let ids = self.list_ids();
        // Containers that are gone leave the caches.
        let present: std::collections::HashSet<&str> = ids.iter().map(String::as_str).collect();
        let still_here = |p: &Path| {
            p.parent()
                .and_then(Path::file_name)
                .and_then(|n| n.to_str())
                .is_some_and(|id| present.contains(id))
        };
        self.records.retain(still_here);
        self.host_configs.retain(still_here);
        for id in &ids {
            let id = id.clone();
            match self.load(&id) {
                Ok(r) => out.records.push(r),
                Err(EngineError::NoSuchContainer(_)) => {}
                Err(error) => out.unreadable.push(UnreadableRecord { id, error }),
            }
        }
        out.records.sort_by(|a, b| b.created.cmp(&a.created));
        out.unreadable.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }

    pub fn load_host_config(&self, id: &str) -> Result<HostConfig> {
        let path = self.container_dir(id).join("hostconfig.json");
        self.host_configs
            .get(&path, |bytes| parsed_cache::json(&path, bytes))
            .map_err(|e| EngineError::io(&path, e))?
    }

    pub fn save(&self, record: &ContainerRecord) -> Result<()> {
        let json = serde_json::to_vec(record)
            .map_err(|e| EngineError::encode(format!("the record of {}", record.id), e))?;
        write_atomic(
            &self.container_dir(&record.id).join("config.v2.json"),
            &json,
        )
    }

    pub fn save_host_config(&self, id: &str, host: &HostConfig) -> Result<()> {
        let json = serde_json::to_vec(host)
            .map_err(|e| EngineError::encode(format!("the host config of {id}"), e))?;
        write_atomic(&self.container_dir(id).join("hostconfig.json"), &json)
    }

    /// Read-modify-write of a record under the metadata lock.
    pub fn update<T>(&self, id: &str, change: impl FnOnce(&mut ContainerRecord) -> T) -> Result<T> {
        let _lock = self.lock()?;
        let mut record = self.load(id)?;
        let out = change(&mut record);
        self.save(&record)?;
        Ok(out)
    }

    /// Removes the record directory and frees its name.
    pub fn remove(&self, record: &ContainerRecord) -> Result<()> {
        let _lock = self.lock()?;
        self.release_name(record.short_name(), &record.id);
        let dir = self.container_dir(&record.id);
        // Gone in one step: a monitor or a concurrent command that still writes into the
        // directory by its path (a lock file, a socket) now fails instead of leaving a file
        // that makes the directory impossible to delete.
        let grave =
            self.containers_dir()
                .join(format!(".removed-{}-{}", record.id, std::process::id()));
        match fs::rename(&dir, &grave) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(EngineError::io(&dir, e)),
        }
        remove_grave(&grave)
    }

    /// Deletes what removals killed half-way left (`.removed-*`).
    pub fn remove_graves(&self) {
        let Ok(rd) = fs::read_dir(self.containers_dir()) else {
            return;
        };
        for e in rd.flatten() {
            if e.file_name().to_string_lossy().starts_with(".removed-") {
                let _ = remove_grave(&e.path());
            }
        }
    }

    /// Renames a container in the store; returns its old name. `Engine::rename` is Docker's
    /// `rename` (this plus its event).
    pub(crate) fn rename(&self, id: &str, new_name: &str) -> Result<String> {
        let _lock = self.lock()?;
        let mut record = self.load(id)?;
        self.reserve_name(new_name, id)?;
        self.release_name(record.short_name(), id);
        let old_name = std::mem::replace(
            &mut record.name,
            format!("/{}", new_name.trim_start_matches('/')),
        );
        self.save(&record)?;
        Ok(old_name)
    }
}

fn remove_grave(grave: &Path) -> Result<()> {
    match fs::remove_dir_all(grave) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(EngineError::io(grave, e)),
    }
}

/// Replaces `path` with `bytes` atomically and durably (`berth_common::fs::write_atomic`).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    berth_common::fs::write_atomic(path, bytes).map_err(|e| EngineError::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, name: &str) -> ContainerRecord {
        ContainerRecord {
            id: id.into(),
            name: format!("/{name}"),
            ..Default::default()
        }
    }

    /// A name file is only ever seen whole: a claim writes the ID beside it and links it into
    /// place, so a command killed mid-claim cannot leave an empty name (a crash test once found
    /// "name d1 is held by missing container " after a kill between create and write).
    #[test]
    fn a_name_appears_with_its_id_and_claims_leave_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        let a = "a".repeat(64);
        let b = "b".repeat(64);
        store.reserve_name("web", &a).unwrap();
        assert!(matches!(
            store.reserve_name("web", &b),
            Err(EngineError::NameInUse { ref id, .. }) if *id == a
        ));
        let entries: Vec<String> = fs::read_dir(store.names_dir())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(entries, vec!["web".to_string()]);
        assert_eq!(
            fs::read_to_string(store.names_dir().join("web")).unwrap(),
            a
        );
        // What a claim killed between its two steps leaves is no name, and is swept once stale.
        let leftover = store.names_dir().join(format!(".db.{b}.tmp"));
        fs::write(&leftover, &b).unwrap();
        assert_eq!(store.names(), vec![("web".to_string(), a.clone())]);
        store.remove_stale_name_temps();
        assert!(leftover.exists(), "a young claim keeps its file");
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(120);
        fs::File::options()
            .write(true)
            .open(&leftover)
            .unwrap()
            .set_modified(old)
            .unwrap();
        store.remove_stale_name_temps();
        assert!(!leftover.exists());
    }

    #[test]
    fn names_ids_and_prefixes_resolve() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        let a = format!("abc{}", "0".repeat(61));
        let b = format!("abd{}", "1".repeat(61));
        for (id, name) in [(&a, "web"), (&b, "db")] {
            fs::create_dir_all(store.container_dir(id)).unwrap();
            store.reserve_name(name, id).unwrap();
            store.save(&record(id, name)).unwrap();
        }
        assert_eq!(store.resolve("web").unwrap(), a);
        assert_eq!(store.resolve("/db").unwrap(), b);
        assert_eq!(store.resolve("abc").unwrap(), a);
        assert!(matches!(
            store.resolve("ab"),
            Err(EngineError::AmbiguousContainer(_))
        ));
        assert!(matches!(
            store.resolve("nope"),
            Err(EngineError::NoSuchContainer(_))
        ));
        assert!(matches!(
            store.reserve_name("web", &b),
            Err(EngineError::NameInUse { .. })
        ));
        store.rename(&a, "front").unwrap();
        assert_eq!(store.resolve("front").unwrap(), a);
        assert!(store.resolve("web").is_err());
        store.remove(&store.load(&a).unwrap()).unwrap();
        assert!(store.resolve("front").is_err());
    }

    #[test]
    fn record_uses_docker_names() {
        let json = serde_json::to_value(record("x", "n")).unwrap();
        assert!(json.get("ID").is_some());
        assert!(json["State"].get("OOMKilled").is_some());
        assert_eq!(record("x", "n").status(), Status::Created);
    }
}
