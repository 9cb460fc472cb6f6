//! The runtime's thin use of berth-cgroups: naming a container's cgroup from the spec's
//! cgroupsPath and opening it. All cgroup filesystem work lives in berth-cgroups.

use crate::error::{Result, RuntimeError};
use berth_cgroups::{Cgroup, Hierarchy};

/// The cgroupsPath a container uses: the spec's, with systemd's "slice:prefix:name" turned into a
/// plain path, or `/berth/<id>` when empty.
pub fn effective_path(spec_path: Option<&str>, id: &str) -> String {
    match spec_path.map(str::trim) {
        None | Some("") => format!("/berth/{id}"),
        Some(p) => match p.split(':').collect::<Vec<_>>().as_slice() {
            [slice, prefix, name] if !p.starts_with('/') => {
                let slice = if slice.is_empty() {
                    "system.slice"
                } else {
                    slice
                };
                if prefix.is_empty() {
                    format!("/{slice}/{name}")
                } else {
                    format!("/{slice}/{prefix}-{name}.scope")
                }
            }
            _ => p.to_owned(),
        },
    }
}

/// Opens (without creating) the cgroup at `path`.
pub fn open(path: &str) -> Result<Cgroup> {
    let hierarchy = Hierarchy::detect().map_err(|e| cgroup_error(path, e))?;
    Cgroup::open(&hierarchy, path).map_err(|e| cgroup_error(path, e))
}

/// Maps a berth-cgroups error onto ours, naming the cgroup.
pub fn cgroup_error(path: &str, e: impl std::fmt::Display) -> RuntimeError {
    RuntimeError::Cgroup {
        path: path.to_owned(),
        reason: e.to_string(),
    }
}

/// Whether the container's cgroup is frozen; false when it cannot be read.
pub fn is_frozen(path: &str) -> bool {
    open(path)
        .ok()
        .and_then(|cg| cg.is_frozen().ok())
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(effective_path(None, "abc"), "/berth/abc");
        assert_eq!(effective_path(Some(""), "abc"), "/berth/abc");
        assert_eq!(effective_path(Some("/a/b"), "abc"), "/a/b");
        assert_eq!(effective_path(Some("a/b"), "abc"), "a/b");
        assert_eq!(
            effective_path(Some("system.slice:docker:abc"), "x"),
            "/system.slice/docker-abc.scope"
        );
    }
}
