//! One container's cgroup across all controllers: naming it from an OCI cgroupsPath, creating and
//! removing its directories, moving processes in, listing them, and dispatching configuration,
//! freezing and statistics to the v1 or v2 backend.

use crate::hierarchy::Mount;
use crate::{fs, v1, v2, CgroupError, CgroupVersion, Hierarchy, Stats};
use berth_common::poll::{self, Backoff};
use oci_spec::runtime::LinuxResources;
use std::collections::{BTreeMap, BTreeSet};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// v2 controllers Berth enables in the ancestors' `cgroup.subtree_control`.
const V2_CONTROLLERS: &[&str] = &[
    "cpuset", "cpu", "io", "memory", "hugetlb", "pids", "rdma", "misc",
];

/// A container's cgroup. Opening does not touch the filesystem; [`Cgroup::create`] does.
///
/// Serializable so that a runtime can keep it in its state file: relative cgroupsPaths resolve
/// against the *calling* process's cgroup, so later commands (`delete`, `pause`) must reuse the
/// stored directories rather than reopen the path from another cgroup.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Cgroup {
    pub(crate) version: CgroupVersion,
    /// The OCI cgroupsPath it was opened with.
    pub(crate) cgroups_path: String,
    /// Controller ("unified" on v2) -> this cgroup's directory.
    pub(crate) dirs: BTreeMap<String, PathBuf>,
    /// Controller ("unified" on v2) -> the hierarchy's mountpoint (its root directory).
    pub(crate) roots: BTreeMap<String, PathBuf>,
}

/// The key of the cgroup2 tree in a v1 (hybrid) cgroup's directories. Joining it is best
/// effort: it carries no controllers, and some hosts do not let us write there.
const HYBRID_UNIFIED: &str = "unified";

/// [`Cgroup::kill_and_destroy`] of the cgroup at `cgroups_path` on this host's hierarchy, for
/// callers that hold only the path a container recorded (its runtime state lost). An empty path
/// names no cgroup: nothing to do.
pub fn kill_and_destroy_path(
    cgroups_path: &str,
    timeout: std::time::Duration,
) -> Result<(), CgroupError> {
    if cgroups_path.is_empty() {
        return Ok(());
    }
    let h = Hierarchy::detect()?;
    Cgroup::open(&h, cgroups_path)?.kill_and_destroy(timeout)
}

impl Cgroup {
    /// Name the cgroup for an OCI cgroupsPath: absolute ("/berth/abc") from the hierarchy root;
    /// relative ("berth/abc") under the calling process's own cgroup (per controller on v1).
    pub fn open(h: &Hierarchy, cgroups_path: &str) -> Result<Cgroup, CgroupError> {
        let trimmed = cgroups_path.trim_matches('/');
        if trimmed.is_empty() || trimmed.split('/').any(|seg| seg == "." || seg == "..") {
            return Err(CgroupError::InvalidPath(cgroups_path.to_string()));
        }
        let absolute = cgroups_path.starts_with('/');
        let locate = |m: &Mount| {
            let cg = if absolute {
                format!("/{trimmed}")
            } else {
                format!("{}/{trimmed}", m.own_path.trim_end_matches('/'))
            };
            m.dir_of(&cg)
        };
        let mut dirs = BTreeMap::new();
        let mut roots = BTreeMap::new();
        match h.version {
            CgroupVersion::V1 => {
                for (name, m) in &h.v1 {
                    dirs.insert(name.clone(), locate(m));
                    roots.insert(name.clone(), m.mountpoint.clone());
                }
                // Hybrid hosts: the controller-less cgroup2 tree gets the same path, as runc
                // does, so tools that read a process's v2 cgroup find the container there.
                if let Some(m) = &h.unified {
                    dirs.insert(HYBRID_UNIFIED.to_string(), locate(m));
                    roots.insert(HYBRID_UNIFIED.to_string(), m.mountpoint.clone());
                }
            }
            CgroupVersion::V2 => {
                let m = h
                    .unified
                    .as_ref()
                    .ok_or_else(|| CgroupError::NoHierarchy("no cgroup2 mount".into()))?;
                dirs.insert("unified".to_string(), locate(m));
                roots.insert("unified".to_string(), m.mountpoint.clone());
            }
        }
        Ok(Cgroup {
            version: h.version,
            cgroups_path: cgroups_path.to_string(),
            dirs,
            roots,
        })
    }

    /// The cgroup version of the hierarchy this cgroup lives in.
    pub fn version(&self) -> CgroupVersion {
        self.version
    }

    /// The OCI cgroupsPath this cgroup was opened with.
    pub fn cgroups_path(&self) -> &str {
        &self.cgroups_path
    }

    /// Controller name -> directory ("unified" for v2). Co-mounted v1 controllers share one.
    pub fn paths(&self) -> BTreeMap<String, PathBuf> {
        self.dirs.clone()
    }

    /// Whether the cgroup's directories exist (all of them).
    pub fn exists(&self) -> bool {
        !self.dirs.is_empty()
            && self
                .dirs
                .values()
                .all(|d| d.is_dir() || self.is_hybrid_unified(d))
    }

    /// Whether `dir` is the controller-less cgroup2 directory of a hybrid (v1) host.
    fn is_hybrid_unified(&self, dir: &Path) -> bool {
        self.version == CgroupVersion::V1 && self.dirs.get(HYBRID_UNIFIED).is_some_and(|d| d == dir)
    }

    /// The distinct directories (co-mounted controllers appear once).
    pub(crate) fn unique_dirs(&self) -> BTreeSet<&PathBuf> {
        self.dirs.values().collect()
    }

    /// The directory of one controller ("unified" on v2), if the host has it.
    pub(crate) fn dir(&self, controller: &str) -> Option<&Path> {
        match self.version {
            CgroupVersion::V1 => self.dirs.get(controller).map(PathBuf::as_path),
            CgroupVersion::V2 => self.dirs.get("unified").map(PathBuf::as_path),
        }
    }

    /// Create the cgroup. v1: a directory in every controller (cpuset levels inherit the parent's
    /// cpus/mems when empty); v2: the directory, with the needed controllers enabled in every
    /// ancestor's `cgroup.subtree_control`.
    pub fn create(&self) -> Result<(), CgroupError> {
        match self.version {
            CgroupVersion::V1 => {
                for dir in self.unique_dirs() {
                    if self.is_hybrid_unified(dir) {
                        let _ = mkdir_all(dir);
                        continue;
                    }
                    mkdir_all(dir)?;
                }
                if let (Some(dir), Some(root)) = (self.dirs.get("cpuset"), self.roots.get("cpuset"))
                {
                    v1::init_cpuset_levels(root, dir)?;
                }
                Ok(())
            }
            CgroupVersion::V2 => {
                let dir = &self.dirs["unified"];
                let root = &self.roots["unified"];
                mkdir_all(dir)?;
                enable_v2_controllers(root, dir)
            }
        }
    }

    /// Apply OCI resources (see the crate docs for the conversions). Fields left `None` are not
    /// touched, so this also serves `update`.
    pub fn apply(&self, r: &LinuxResources) -> Result<(), CgroupError> {
        if let Some(devices) = r.devices() {
            crate::devices::validate_rules(devices)?;
        }
        match self.version {
            CgroupVersion::V1 => v1::apply(self, r),
            CgroupVersion::V2 => v2::apply(self, r),
        }
    }

    /// What a runtime's `create` wants: [`Cgroup::create`], then [`Cgroup::apply`] with runc's
    /// create-time device semantics: the device list is always a whitelist (the spec's rules,
    /// then runc's defaults), even when the spec names no devices. Plain `apply` leaves devices
    /// alone when `resources.devices` is absent, which is what `update` needs.
    pub fn create_and_apply(&self, r: Option<&LinuxResources>) -> Result<(), CgroupError> {
        self.create()?;
        let mut resources = r.cloned().unwrap_or_default();
        if resources.devices().is_none() {
            resources.set_devices(Some(Vec::new()));
        }
        self.apply(&resources)
    }

    /// Move a process into the cgroup (`cgroup.procs` in every controller).
    pub fn add_pid(&self, pid: i32) -> Result<(), CgroupError> {
        let value = pid.to_string();
        for dir in self.unique_dirs() {
            let written = fs::write(&dir.join("cgroup.procs"), &value);
            if !self.is_hybrid_unified(dir) {
                written?;
            }
        }
        Ok(())
    }

    /// The processes in the cgroup (not its descendants).
    pub fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        let dir = ["pids", "freezer", "memory", "cpu", "unified"]
            .iter()
            .find_map(|c| self.dirs.get(*c))
            .or_else(|| self.dirs.values().next())
            .ok_or_else(|| CgroupError::NoHierarchy("cgroup has no controllers".into()))?;
        let path = dir.join("cgroup.procs");
        let text = fs::read(&path)?;
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                l.trim().parse::<i32>().map_err(|e| CgroupError::Parse {
                    path: path.clone(),
                    reason: format!("{l:?}: {e}"),
                })
            })
            .collect()
    }

    /// The processes in the cgroup and all its descendant cgroups (for `ps` and `kill --all`).
    pub fn all_pids(&self) -> Result<Vec<i32>, CgroupError> {
        let Some(dir) = ["pids", "freezer", "memory", "cpu", "unified"]
            .iter()
            .find_map(|c| self.dirs.get(*c))
            .or_else(|| self.dirs.values().next())
        else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        collect_pids(dir, &mut out)?;
        Ok(out)
    }

    /// Send `signal` to every process in the cgroup tree. SIGKILL on v2 uses `cgroup.kill`
    /// (atomic, kernel 5.14+); otherwise the cgroup is frozen while the signals go out, so that
    /// no process can fork an unsignalled child in between (as runc does), then thawed.
    pub fn kill_all(&self, signal: i32) -> Result<(), CgroupError> {
        if self.version == CgroupVersion::V2 && signal == libc::SIGKILL {
            if let Some(dir) = self.dirs.get("unified") {
                let kill = dir.join("cgroup.kill");
                if kill.exists() {
                    return fs::write(&kill, "1");
                }
            }
        }
        let frozen = self.freeze().is_ok();
        let result = self.all_pids().map(|pids| {
            for pid in pids {
                // SAFETY: kill(2) has no memory-safety preconditions; a process that exited
                // meanwhile just yields ESRCH.
                unsafe { libc::kill(pid, signal) };
            }
        });
        if frozen {
            self.thaw()?;
        }
        result
    }

    /// Freeze every process in the cgroup and wait until the kernel reports it frozen.
    pub fn freeze(&self) -> Result<(), CgroupError> {
        match self.version {
            CgroupVersion::V1 => v1::set_frozen(self, true),
            CgroupVersion::V2 => v2::set_frozen(self, true),
        }
    }

    /// Thaw the cgroup's processes.
    pub fn thaw(&self) -> Result<(), CgroupError> {
        match self.version {
            CgroupVersion::V1 => v1::set_frozen(self, false),
            CgroupVersion::V2 => v2::set_frozen(self, false),
        }
    }

    /// Whether the cgroup is frozen (v1 `freezer.state` FROZEN, v2 `cgroup.events` frozen 1).
    pub fn is_frozen(&self) -> Result<bool, CgroupError> {
        match self.version {
            CgroupVersion::V1 => v1::is_frozen(self),
            CgroupVersion::V2 => v2::is_frozen(self),
        }
    }

    /// A snapshot of resource usage.
    pub fn stats(&self) -> Result<Stats, CgroupError> {
        match self.version {
            CgroupVersion::V1 => v1::stats(self),
            CgroupVersion::V2 => v2::stats(self),
        }
    }

    /// How many times the OOM killer has killed a process of this cgroup.
    pub fn oom_kill_count(&self) -> Result<u64, CgroupError> {
        match self.version {
            CgroupVersion::V1 => v1::oom_kill_count(self),
            CgroupVersion::V2 => v2::oom_kill_count(self),
        }
    }

    /// SIGKILL every process of the cgroup tree, wait up to `timeout` for them to leave, and
    /// remove the cgroup: what is left to do when a container's runtime state is lost. A
    /// cgroup that does not exist is fine.
    pub fn kill_and_destroy(&self, timeout: std::time::Duration) -> Result<(), CgroupError> {
        if !self.exists() {
            return Ok(());
        }
        self.kill_all(libc::SIGKILL)?;
        let every = Backoff::fixed(std::time::Duration::from_millis(5));
        poll::try_until(timeout, every, || {
            Ok::<_, CgroupError>(self.all_pids()?.is_empty())
        })?;
        self.destroy()
    }

    /// Remove the cgroup (and any child cgroups) in every controller. EBUSY is retried for a
    /// few milliseconds (processes that just exited leave the cgroup asynchronously); a cgroup
    /// that is already gone is fine.
    pub fn destroy(&self) -> Result<(), CgroupError> {
        for dir in self.unique_dirs() {
            let removed = remove_tree(dir);
            if !self.is_hybrid_unified(dir) {
                removed?;
            }
        }
        Ok(())
    }
}

fn collect_pids(dir: &Path, out: &mut Vec<i32>) -> Result<(), CgroupError> {
    let procs = dir.join("cgroup.procs");
    match fs::read_optional(&procs)? {
        Some(text) => out.extend(text.lines().filter_map(|l| l.trim().parse::<i32>().ok())),
        None => return Ok(()),
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            collect_pids(&entry.path(), out)?;
        }
    }
    Ok(())
}

/// Turn a systemd-style cgroupsPath ("slice:prefix:name", as runc takes with `--systemd-cgroup`)
/// into the cgroupfs path systemd would give it: "system.slice:berth:abc" ->
/// "/system.slice/berth-abc.scope", "a-b.slice:p:n" -> "/a.slice/a-b.slice/p-n.scope". Berth
/// does not talk to systemd; this only keeps the same directory layout.
pub fn systemd_cgroups_path(path: &str) -> Result<String, CgroupError> {
    let invalid = || CgroupError::InvalidPath(path.to_string());
    let mut parts = path.split(':');
    let (Some(slice), Some(prefix), Some(name), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid());
    };
    if name.is_empty() || [slice, prefix, name].iter().any(|p| p.contains('/')) {
        return Err(invalid());
    }
    let slice = if slice.is_empty() {
        "system.slice"
    } else {
        slice
    };
    let mut out = expand_slice(slice).ok_or_else(invalid)?;
    if name.ends_with(".slice") {
        // runc: a name that is itself a slice is placed as that slice, not as a scope.
        out = expand_slice(name).ok_or_else(invalid)?;
    } else if prefix.is_empty() {
        out.push_str(&format!("/{name}.scope"));
    } else {
        out.push_str(&format!("/{prefix}-{name}.scope"));
    }
    Ok(out)
}

/// "a-b-c.slice" -> "/a.slice/a-b.slice/a-b-c.slice"; "-.slice" is the root.
fn expand_slice(slice: &str) -> Option<String> {
    let stem = slice.strip_suffix(".slice")?;
    if stem == "-" {
        return Some(String::new());
    }
    if stem.is_empty() || stem.starts_with('-') || stem.ends_with('-') || stem.contains("--") {
        return None;
    }
    let mut out = String::new();
    let mut acc = String::new();
    for part in stem.split('-') {
        if !acc.is_empty() {
            acc.push('-');
        }
        acc.push_str(part);
        out.push_str(&format!("/{acc}.slice"));
    }
    Some(out)
}

fn mkdir_all(dir: &Path) -> Result<(), CgroupError> {
    std::fs::create_dir_all(dir).map_err(|source| CgroupError::Dir {
        op: "create",
        path: dir.to_path_buf(),
        source,
    })
}

/// Remove child cgroups depth-first, then the directory itself.
fn remove_tree(dir: &Path) -> Result<(), CgroupError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(CgroupError::Read {
                path: dir.to_path_buf(),
                source,
            })
        }
    };
    for entry in entries.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            remove_tree(&entry.path())?;
        }
    }
    rmdir_retrying(dir)
}

fn rmdir_retrying(dir: &Path) -> Result<(), CgroupError> {
    let mut delay = Duration::from_millis(1);
    let mut attempt = 0;
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && attempt < 5 => {
                std::thread::sleep(delay);
                delay *= 2;
                attempt += 1;
            }
            Err(source) => {
                return Err(CgroupError::Dir {
                    op: "remove",
                    path: dir.to_path_buf(),
                    source,
                })
            }
        }
    }
}

/// Enable Berth's controllers in `cgroup.subtree_control` of every ancestor of `dir` from `root`
/// down (only those listed in the ancestor's `cgroup.controllers`).
fn enable_v2_controllers(root: &Path, dir: &Path) -> Result<(), CgroupError> {
    let Ok(rel) = dir.strip_prefix(root) else {
        return Ok(());
    };
    let mut ancestor = root.to_path_buf();
    let mut levels = vec![ancestor.clone()];
    let comps: Vec<_> = rel.components().collect();
    for c in comps.iter().take(comps.len().saturating_sub(1)) {
        ancestor.push(c);
        levels.push(ancestor.clone());
    }
    for level in levels {
        let Some(available) = fs::read_optional(&level.join("cgroup.controllers"))? else {
            continue;
        };
        let enabled = fs::read_optional(&level.join("cgroup.subtree_control"))?.unwrap_or_default();
        let wanted: Vec<&str> = available
            .split_whitespace()
            .filter(|c| V2_CONTROLLERS.contains(c))
            .filter(|c| !enabled.split_whitespace().any(|e| e == *c))
            .collect();
        if wanted.is_empty() {
            continue;
        }
        let path = level.join("cgroup.subtree_control");
        let all: Vec<String> = wanted.iter().map(|c| format!("+{c}")).collect();
        if fs::write(&path, &all.join(" ")).is_err() {
            // One controller refusing (e.g. a threaded subtree) must not block the others.
            for c in &all {
                if let Err(e) = fs::write(&path, c) {
                    tracing::debug!(error = %e, "could not enable controller");
                }
            }
        }
    }
    Ok(())
}
