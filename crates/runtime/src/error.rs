//! The runtime's one error type. Each variant names the object it is about (container id, path,
//! hook, rlimit) and carries the cause, so the CLI can print runc-like messages.

use std::path::PathBuf;

/// Everything that can go wrong in `berth-runtime`.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("container {id:?} does not exist")]
    NotFound { id: String },
    #[error("container with id {id:?} already exists")]
    AlreadyExists { id: String },
    #[error("invalid container id {id:?}: {reason}")]
    InvalidId { id: String, reason: &'static str },
    #[error("container {id:?}: {reason}")]
    InvalidState { id: String, reason: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{op}: {source}")]
    Sys {
        op: String,
        #[source]
        source: std::io::Error,
    },
    #[error("bundle config {path}: {reason}")]
    Spec { path: PathBuf, reason: String },
    #[error("cgroup {path:?}: {reason}")]
    Cgroup { path: String, reason: String },
    #[error("seccomp: {0}")]
    Seccomp(String),
    #[error("hook {path}: {reason}")]
    Hook { path: PathBuf, reason: String },
    #[error("unable to start container process: {0}")]
    ContainerInit(String),
    /// The init (or an exec'd process) failed to set itself up; `source` carries the errno it
    /// sent over the sync socket (see `init_error`).
    #[error("unable to start container process: {message}")]
    InitFailed {
        message: String,
        #[source]
        source: std::io::Error,
    },
    /// The container's command cannot be executed; `source` carries the errno (ENOENT when
    /// it does not exist, EACCES/ENOEXEC when it cannot run).
    #[error("unable to start container process: {message}")]
    Exec {
        message: String,
        #[source]
        source: std::io::Error,
    },
    /// CRIU is missing, refused the job, or failed (the reason carries its log's last errors).
    #[error("{action}: {reason}")]
    Criu { action: String, reason: String },
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error("state file {path}: {source}")]
    StateJson {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

impl RuntimeError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> RuntimeError {
        RuntimeError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn sys(op: impl Into<String>, source: impl Into<std::io::Error>) -> RuntimeError {
        RuntimeError::Sys {
            op: op.into(),
            source: source.into(),
        }
    }
}

impl RuntimeError {
    /// The errno of a failure to execute the container's command, if this is one.
    pub fn exec_errno(&self) -> Option<i32> {
        match self {
            RuntimeError::Exec { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }
}

/// Shorthand used across the crate.
pub type Result<T, E = RuntimeError> = std::result::Result<T, E>;
