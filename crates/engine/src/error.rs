//! The engine's one error type. Each variant names the object it is about, and maps to Docker's
//! exit code (125 engine error, 126 cannot invoke, 127 not found) through [`EngineError::exit_code`].
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid argument \"{value}\" for \"{flag}\" flag: {reason}")]
    InvalidFlag {
        flag: String,
        value: String,
        reason: String,
    },
    #[error("No such container: {0}")]
    NoSuchContainer(String),
    #[error("multiple containers match the prefix {0}: use more characters")]
    AmbiguousContainer(String),
    #[error("Conflict. The container name \"/{name}\" is already in use by container \"{id}\". You have to remove (or rename) that container to be able to reuse that name.")]
    NameInUse { name: String, id: String },
    #[error("get {0}: no such volume")]
    NoSuchVolume(String),
    #[error("remove {name}: volume is in use - [{}]", containers.join(", "))]
    VolumeInUse {
        name: String,
        containers: Vec<String>,
    },
    #[error("create {name}: {reason}")]
    InvalidVolume { name: String, reason: String },
    #[error("invalid filter '{0}'")]
    InvalidFilter(String),
    #[error("Cannot update container {id}: {reason}")]
    UpdateRefused { id: String, reason: String },
    #[error("Invalid container name ({0}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")]
    InvalidName(String),
    #[error("Unable to find image '{reference}' locally: {cause}")]
    ImageNotFound { reference: String, cause: String },
    #[error("image store: {0}")]
    Image(String),
    #[error("runtime: {0}")]
    Runtime(String),
    #[error("{message}")]
    Command { message: String, exit_code: i32 },
    #[error("container {id}: {reason}")]
    State { id: String, reason: String },
    #[error("unable to find user {user}: {reason}")]
    User { user: String, reason: String },
    #[error("{path}: invalid JSON: {source}")]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("template {template}: {reason}")]
    Template { template: String, reason: String },
    #[error("{0}")]
    Sys(String),
    #[error(transparent)]
    Registry(#[from] berth_registry::RegistryError),
}

impl EngineError {
    pub fn io(path: impl AsRef<Path>, source: std::io::Error) -> EngineError {
        EngineError::Io {
            path: path.as_ref().to_path_buf(),
            source,
        }
    }

    pub fn state(id: &str, reason: impl Into<String>) -> EngineError {
        EngineError::State {
            id: id.to_string(),
            reason: reason.into(),
        }
    }

    /// Docker's exit code for this error when it ends `berth run` / `exec`.
    pub fn exit_code(&self) -> i32 {
        match self {
            EngineError::Command { exit_code, .. } => *exit_code,
            _ => 125,
        }
    }
}

/// Classifies a failure to start a container's command the way Docker does: 127 when the
/// executable does not exist, 126 when it exists but cannot be run.
pub fn command_failure_code(message: &str) -> i32 {
    let lower = message.to_ascii_lowercase();
    if lower.contains("not found") || lower.contains("no such file") {
        127
    } else if lower.contains("permission denied")
        || lower.contains("is a directory")
        || lower.contains("exec format")
        || lower.contains("not executable")
    {
        126
    } else {
        125
    }
}

pub type Result<T, E = EngineError> = std::result::Result<T, E>;
