//! The crate's one error type. Every variant names the cgroup file or directory it is about.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong while finding, creating, configuring or reading a cgroup.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// Reading a cgroup file or listing a directory failed.
    #[error("read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    /// Writing a value into a cgroup control file failed.
    #[error("write {value:?} to {path}: {source}")]
    Write {
        path: PathBuf,
        value: String,
        source: io::Error,
    },
    /// Creating or removing a cgroup directory failed.
    #[error("{op} cgroup directory {path}: {source}")]
    Dir {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    /// A control file had content we could not understand.
    #[error("parse {path}: {reason}")]
    Parse { path: PathBuf, reason: String },
    /// A resource was asked for but the file that controls it does not exist here.
    #[error("cannot set {resource}: control file {path} does not exist (controller or accounting not enabled?)")]
    MissingFile { resource: String, path: PathBuf },
    /// A resource was asked for but its controller is not mounted/enabled for this cgroup.
    #[error("cannot set {resource}: the {controller} controller is not available")]
    MissingController {
        resource: String,
        controller: String,
    },
    /// The host has no usable cgroup hierarchy, or one we do not understand.
    #[error("no usable cgroup hierarchy: {0}")]
    NoHierarchy(String),
    /// A device rule the kernel would misread (access other than a combination of r, w, m).
    #[error("invalid device rule {rule}: {reason}")]
    InvalidDeviceRule { rule: String, reason: String },
    /// The OCI cgroupsPath cannot be used (e.g. contains `..`).
    #[error("invalid cgroups path {0:?}")]
    InvalidPath(String),
    /// A resource cannot be expressed on this cgroup version.
    #[error("{resource} is not supported on cgroup {version}: {reason}")]
    Unsupported {
        resource: String,
        version: crate::CgroupVersion,
        reason: String,
    },
    /// A state change (freeze) did not complete in time.
    #[error("timed out waiting for {path} to become {state}")]
    Timeout { path: PathBuf, state: &'static str },
    /// Building or attaching the cgroup v2 eBPF device filter failed.
    #[error("device filter for {path}: {reason}: {source}")]
    DeviceFilter {
        path: PathBuf,
        reason: &'static str,
        source: io::Error,
    },
}
