//! Container state on disk: `<root>/<id>/state.json` (written atomically), the runc-shaped
//! [`ContainerState`] view, and status derivation from the init's liveness, the exec fifo and
//! the freezer. Owns nothing else: it never signals or forks.

use crate::error::{Result, RuntimeError};
use oci_spec::runtime::Hooks;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Name of the fifo the init blocks on until `start`.
pub const EXEC_FIFO: &str = "exec.fifo";
const STATE_FILE: &str = "state.json";

/// Lifecycle status, as runc reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        })
    }
}

/// The state runc prints for `runc state` (and the OCI state hooks receive on stdin).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ContainerState {
    #[serde(rename = "ociVersion")]
    pub oci_version: String,
    pub id: String,
    pub pid: i32,
    pub status: Status,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    /// RFC 3339 with nanoseconds, UTC.
    pub created: String,
    pub owner: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// What the runtime persists about a container between invocations.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredState {
    pub oci_version: String,
    pub id: String,
    pub init_pid: i32,
    /// Field 22 of `/proc/<pid>/stat`, to tell our init from a recycled pid.
    pub init_start_time: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// The cgroups path given to berth-cgroups (already defaulted).
    pub cgroups_path: String,
    #[serde(default)]
    pub hooks: Option<Hooks>,
    /// Whether the process had a terminal (informational).
    #[serde(default)]
    pub terminal: bool,
}

impl StoredState {
    /// The runc view with `status` derived now.
    pub fn view(&self, dir: &Path) -> ContainerState {
        let status = self.status(dir);
        ContainerState {
            oci_version: self.oci_version.clone(),
            id: self.id.clone(),
            pid: if status == Status::Stopped {
                0
            } else {
                self.init_pid
            },
            status,
            bundle: self.bundle.clone(),
            rootfs: self.rootfs.clone(),
            created: self.created.clone(),
            owner: String::new(),
            annotations: self.annotations.clone(),
        }
    }

    /// Created (init waiting on the fifo), running, paused (frozen) or stopped.
    pub fn status(&self, dir: &Path) -> Status {
        if !self.init_alive() {
            return Status::Stopped;
        }
        if dir.join(EXEC_FIFO).exists() {
            return Status::Created;
        }
        if crate::cgroup::is_frozen(&self.cgroups_path) {
            return Status::Paused;
        }
        Status::Running
    }

    /// True while the init (same pid, same start time) exists and is not a zombie.
    pub fn init_alive(&self) -> bool {
        self.init_pid > 0
            && matches!(process_stat(self.init_pid), Some((state, start)) if state != 'Z' && state != 'X' && start == self.init_start_time)
    }
}

/// State letter and start time (field 22) of `/proc/<pid>/stat`, None when gone.
pub fn process_stat(pid: i32) -> Option<(char, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text)
}

/// Parses a `/proc/<pid>/stat` line; the comm field may hold spaces and parentheses.
pub fn parse_stat(text: &str) -> Option<(char, u64)> {
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    // After the state (field 3) come fields 4..; start time is field 22.
    let start = fields.nth(18)?.parse().ok()?;
    Some((state, start))
}

/// Reads `<dir>/state.json`.
pub fn load(dir: &Path, id: &str) -> Result<StoredState> {
    let path = dir.join(STATE_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(RuntimeError::NotFound { id: id.to_owned() })
        }
        Err(e) => return Err(RuntimeError::io(path, e)),
    };
    serde_json::from_slice(&bytes).map_err(|source| RuntimeError::StateJson { path, source })
}

/// Writes `<dir>/state.json` through a temporary file and a rename.
pub fn save(dir: &Path, state: &StoredState) -> Result<()> {
    let path = dir.join(STATE_FILE);
    let tmp = dir.join(".state.json.tmp");
    let bytes = serde_json::to_vec(state).map_err(|source| RuntimeError::StateJson {
        path: path.clone(),
        source,
    })?;
    let mut file = std::fs::File::create(&tmp).map_err(|e| RuntimeError::io(&tmp, e))?;
    file.write_all(&bytes)
        .map_err(|e| RuntimeError::io(&tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| RuntimeError::io(&path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_spaces_in_comm() {
        let line = "1234 (my (odd) proc) S 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10";
        assert_eq!(parse_stat(line), Some(('S', 987654)));
    }

    #[test]
    fn view_serializes_like_runc() {
        let st = ContainerState {
            oci_version: "1.0.2-dev".into(),
            id: "a".into(),
            pid: 0,
            status: Status::Stopped,
            bundle: "/b".into(),
            rootfs: "/b/rootfs".into(),
            created: "2020-01-01T00:00:00.000000000Z".into(),
            owner: String::new(),
            annotations: BTreeMap::new(),
        };
        let v = serde_json::to_value(&st).unwrap();
        assert_eq!(v["ociVersion"], "1.0.2-dev");
        assert_eq!(v["status"], "stopped");
        assert_eq!(v["owner"], "");
        assert!(v.get("annotations").is_none());
    }
}
