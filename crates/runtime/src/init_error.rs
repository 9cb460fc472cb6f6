//! What can go wrong in the code a container's init (and an exec'd process) runs between the
//! clone and `execve`: typed, each failure keeping its `io::Error` (so its errno) and saying
//! what the process was doing. It crosses to the runtime over the sync socket as
//! `[errno: i32 LE, 0 for none][message]` (see [`InitError::encode`] and
//! [`crate::sync::init_failed`]), so the runtime — and the engine above it, choosing Docker's
//! 126/127 — decides from the errno, never from the words.
use std::fmt::Display;
use std::io;

/// A failure of the init or of an exec'd process before its program runs.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// A system call or file operation failed while doing `op`.
    #[error("{op}: {source}")]
    Sys {
        op: String,
        #[source]
        source: io::Error,
    },
    /// The spec asks for something this process cannot do; no errno behind it.
    #[error("{0}")]
    Refused(String),
    /// The runtime went away, or said what the init did not expect.
    #[error("{0}")]
    Sync(String),
    /// A createContainer or startContainer hook failed.
    #[error(transparent)]
    Hook(#[from] crate::hooks::HookError),
    /// Setting the process's capabilities failed.
    #[error("{op}: {source}")]
    Caps {
        op: String,
        #[source]
        source: caps::errors::CapsError,
    },
    /// The seccomp filter could not be loaded.
    #[error(transparent)]
    Seccomp(#[from] crate::seccomp::SeccompError),
    /// The container's command is not there or cannot be run (found by the lookup).
    #[error(transparent)]
    Lookup(#[from] crate::process::LookupError),
    /// `execve` of the container's command failed.
    #[error("{message}")]
    Exec {
        message: String,
        #[source]
        source: io::Error,
    },
}

impl InitError {
    /// A failed call `op` with its error.
    pub fn sys(op: impl Display, source: impl Into<io::Error>) -> InitError {
        InitError::Sys {
            op: op.to_string(),
            source: source.into(),
        }
    }

    /// A runtime-side helper's failure (`sys::setns`), kept as typed as it was.
    pub fn from_runtime(e: crate::RuntimeError) -> InitError {
        match e {
            crate::RuntimeError::Sys { op, source } => InitError::Sys { op, source },
            crate::RuntimeError::Io { path, source } => InitError::Sys {
                op: path.display().to_string(),
                source,
            },
            other => InitError::Refused(other.to_string()),
        }
    }

    /// A failed capability call `op`.
    pub fn caps(op: impl Display, source: caps::errors::CapsError) -> InitError {
        InitError::Caps {
            op: op.to_string(),
            source,
        }
    }

    /// A failed libc call `op`, with the current errno.
    pub fn last_os(op: impl Display) -> InitError {
        InitError::sys(op, io::Error::last_os_error())
    }

    /// The same failure, said to have happened while doing `what`.
    pub fn context(self, what: impl Display) -> InitError {
        match self {
            InitError::Sys { op, source } => InitError::Sys {
                op: format!("{what}: {op}"),
                source,
            },
            InitError::Refused(m) => InitError::Refused(format!("{what}: {m}")),
            InitError::Sync(m) => InitError::Sync(format!("{what}: {m}")),
            other => other,
        }
    }

    /// The errno behind the failure, if one is.
    pub fn errno(&self) -> Option<i32> {
        match self {
            InitError::Sys { source, .. } | InitError::Exec { source, .. } => source.raw_os_error(),
            InitError::Lookup(e) => Some(e.errno),
            _ => None,
        }
    }

    /// Whether the container's command itself could not be run (Docker's 126/127), as
    /// opposed to the container's setup failing.
    pub fn is_command_failure(&self) -> bool {
        matches!(self, InitError::Lookup(_) | InitError::Exec { .. })
    }

    /// The exit status of the failed process: 127 for a command that is not there, 126 for
    /// one that cannot run, 1 for a failed setup.
    pub fn exit_code(&self) -> i32 {
        match (self.is_command_failure(), self.errno()) {
            (false, _) => 1,
            (true, Some(libc::ENOENT) | Some(libc::ENOTDIR)) => 127,
            (true, _) => 126,
        }
    }

    /// The sync message payload: the errno (0 for none) and the message.
    pub fn encode(&self) -> Vec<u8> {
        let mut payload = self.errno().unwrap_or(0).to_le_bytes().to_vec();
        payload.extend_from_slice(self.to_string().as_bytes());
        payload
    }
}

/// Reads a payload [`InitError::encode`] made: the errno (None for 0) and the message.
pub fn decode(payload: &[u8]) -> (Option<i32>, String) {
    match payload {
        [a, b, c, d, rest @ ..] => {
            let errno = i32::from_le_bytes([*a, *b, *c, *d]);
            (
                (errno != 0).then_some(errno),
                String::from_utf8_lossy(rest).into_owned(),
            )
        }
        _ => (None, String::from_utf8_lossy(payload).into_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_and_context_survive_the_sync_encoding() {
        let e = InitError::sys("mounting /proc", io::Error::from_raw_os_error(libc::EPERM))
            .context("rootfs");
        assert_eq!(e.errno(), Some(libc::EPERM));
        assert_eq!(e.exit_code(), 1);
        let (errno, message) = decode(&e.encode());
        assert_eq!(errno, Some(libc::EPERM));
        assert!(message.starts_with("rootfs: mounting /proc: "), "{message}");
        let refused = InitError::Refused("unable to set hostname".into());
        assert_eq!(
            decode(&refused.encode()),
            (None, "unable to set hostname".into())
        );
        let exec = InitError::Exec {
            message: "exec \"/x\": permission denied".into(),
            source: io::Error::from_raw_os_error(libc::EACCES),
        };
        assert_eq!((exec.is_command_failure(), exec.exit_code()), (true, 126));
        let missing = InitError::Exec {
            message: "exec \"/x\": no such file".into(),
            source: io::Error::from_raw_os_error(libc::ENOENT),
        };
        assert_eq!(missing.exit_code(), 127);
    }
}
