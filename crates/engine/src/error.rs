//! The engine's one error type. Each variant names the object it is about and carries its cause
//! as a typed source, and maps to Docker's exit code (125 engine error, 126 cannot invoke, 127
//! not found) through [`EngineError::exit_code`].
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A system call that is about no file (pipe, socketpair, fork, signalfd, …).
    #[error("{op}: {source}")]
    Os {
        op: String,
        #[source]
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
    /// A container record exists but cannot be read (a listing reports these beside its rows;
    /// an operation that must know every container, like a volume's users, fails with it).
    #[error(transparent)]
    UnreadableRecord(Box<UnreadableRecord>),
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
    /// A `--filter` word without `=`.
    #[error("bad format of filter (expected name=value): {0}")]
    FilterSyntax(String),
    #[error("Cannot update container {id}: {reason}")]
    UpdateRefused { id: String, reason: String },
    #[error("Invalid container name ({0}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")]
    InvalidName(String),
    /// The store has no image by that reference (and only that: a broken store is `Image`).
    #[error("Unable to find image '{reference}' locally: {cause}")]
    ImageNotFound { reference: String, cause: String },
    /// The image store failed (I/O, a corrupt record, a mount).
    #[error("image store: {0}")]
    Image(#[from] berth_image::ImageError),
    #[error("image {image}: invalid config: {source}")]
    ImageConfig {
        image: String,
        #[source]
        source: serde_json::Error,
    },
    /// The built-in runtime library failed for container `id`.
    #[error("runtime: {source}")]
    Runtime {
        id: String,
        #[source]
        source: berth_runtime::RuntimeError,
    },
    /// A runc-compatible runtime binary failed; `message` is what it printed.
    #[error("runtime: {message}")]
    RuntimeBinary {
        binary: PathBuf,
        id: String,
        message: String,
    },
    /// A runtime binary could not be run at all.
    #[error("runtime {binary}: {op} {id}: {source}")]
    RuntimeSpawn {
        binary: PathBuf,
        op: &'static str,
        id: String,
        #[source]
        source: std::io::Error,
    },
    /// The container's command could not be started (relayed by its monitor).
    #[error("{message}")]
    Command { message: String, exit_code: i32 },
    #[error("container {id}: {reason}")]
    State { id: String, reason: String },
    /// Talking to container `id`'s monitor failed.
    #[error("container {id}: monitor: {source}")]
    Monitor {
        id: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cgroup {path}: {source}")]
    Cgroup {
        path: String,
        #[source]
        source: berth_cgroups::CgroupError,
    },
    /// `berth cp` refused a source or destination; `message` names both the container and
    /// the path, in Docker's words.
    #[error("{message}")]
    Copy { message: String },
    /// Copying files into or out of a container failed.
    #[error("copying {what}: {source}")]
    CopyFailed {
        what: String,
        #[source]
        source: berth_image::ImageError,
    },
    #[error("network: {0}")]
    Network(#[source] berth_net::NetError),
    /// A `--security-opt`, `--pull` or similar option Docker's daemon would refuse;
    /// `message` names the option and the cause in Docker's words.
    #[error("{message}")]
    InvalidOption { option: String, message: String },
    /// `logs` of a container whose log driver keeps nothing to read (`none`).
    #[error("configured logging driver does not support reading")]
    LogsNotReadable { id: String },
    #[error("Decoding seccomp profile failed: {0}")]
    SeccompProfile(#[source] serde_json::Error),
    #[error("unable to find user {user}: {reason}")]
    User { user: String, reason: String },
    #[error("{path}: invalid JSON: {source}")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("encoding {what}: {source}")]
    Encode {
        what: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("building the OCI spec: {0}")]
    Spec(#[from] oci_spec::OciSpecError),
    #[error("--init: no static init (tini-static / docker-init) found on this host")]
    NoInit,
    #[error("the built-in hello image is unavailable: this berth was built without a static hello program")]
    NoBuiltinHello,
    /// No way to start a monitor from this (multithreaded) process.
    #[error("cannot start the monitor of container {id} from a multithreaded process: {reason}")]
    MonitorLaunch { id: String, reason: String },
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

    /// A failed system call `op` with the current errno.
    pub fn last_os(op: impl Into<String>) -> EngineError {
        EngineError::Os {
            op: op.into(),
            source: std::io::Error::last_os_error(),
        }
    }

    pub fn os(op: impl Into<String>, source: impl Into<std::io::Error>) -> EngineError {
        EngineError::Os {
            op: op.into(),
            source: source.into(),
        }
    }

    /// A failed operation on the cgroup at `path`.
    pub fn cgroup(path: &str, source: berth_cgroups::CgroupError) -> EngineError {
        EngineError::Cgroup {
            path: path.to_string(),
            source,
        }
    }

    pub fn state(id: &str, reason: impl Into<String>) -> EngineError {
        EngineError::State {
            id: id.to_string(),
            reason: reason.into(),
        }
    }

    pub fn encode(what: impl Into<String>, source: serde_json::Error) -> EngineError {
        EngineError::Encode {
            what: what.into(),
            source,
        }
    }

    /// Docker's exit code for this error when it ends `berth run` / `exec`.
    pub fn exit_code(&self) -> i32 {
        match self {
            EngineError::Command { exit_code, .. } => *exit_code,
            _ => 125,
        }
    }

    /// Docker's exit code when this error kept a container's command from starting: 127 when
    /// the executable does not exist, 126 when it exists but cannot be run, else 125.
    pub fn command_failure_code(&self) -> i32 {
        match self {
            EngineError::Runtime { source, .. } => match source.exec_errno() {
                Some(libc::ENOENT) | Some(libc::ENOTDIR) => 127,
                Some(libc::EACCES) | Some(libc::ENOEXEC) | Some(libc::EISDIR)
                | Some(libc::EPERM) => 126,
                _ => 125,
            },
            // A runc-style binary tells us only in words.
            EngineError::RuntimeBinary { message, .. } => binary_message_code(message),
            other => other.exit_code(),
        }
    }
}

/// Classifies the message of a runc-compatible binary that failed to start a container's
/// command (all such a binary gives): 127 when the executable does not exist, 126 when it
/// exists but cannot be run.
fn binary_message_code(message: &str) -> i32 {
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

/// A container record that exists but cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("container {id}: unreadable record: {error}")]
pub struct UnreadableRecord {
    pub id: String,
    #[source]
    pub error: EngineError,
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_runtime::RuntimeError;

    fn runtime(source: RuntimeError) -> EngineError {
        EngineError::Runtime {
            id: "c".into(),
            source,
        }
    }

    /// 126/127 come from the errno the init sent, never from the words of the message.
    #[test]
    fn command_failure_codes_come_from_the_errno() {
        let exec = |errno, message: &str| {
            runtime(RuntimeError::Exec {
                message: message.into(),
                source: std::io::Error::from_raw_os_error(errno),
            })
        };
        assert_eq!(
            exec(libc::ENOENT, "exec: \"x\"").command_failure_code(),
            127
        );
        assert_eq!(
            exec(libc::EACCES, "not found, oddly").command_failure_code(),
            126
        );
        assert_eq!(exec(libc::ENOEXEC, "").command_failure_code(), 126);
        // A setup failure with an errno (or words that sound like one) is the engine's 125.
        let setup = runtime(RuntimeError::InitFailed {
            message: "sysctl x: no such file or directory".into(),
            source: std::io::Error::from_raw_os_error(libc::ENOENT),
        });
        assert_eq!(setup.command_failure_code(), 125);
        let words = runtime(RuntimeError::ContainerInit(
            "executable file not found".into(),
        ));
        assert_eq!(words.command_failure_code(), 125);
    }
}
