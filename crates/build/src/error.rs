//! The crate's one error type. Every variant names what it is about (the Dockerfile and line, the
//! source path, the stage, the command) and carries the cause, so `berth build` can print
//! `Dockerfile:7: unknown instruction: FOOBAR` like Docker.
use std::path::PathBuf;

/// Everything that can make a build fail.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A syntax or semantic error at a Dockerfile line.
    #[error("{file}:{line}: {message}")]
    Syntax {
        file: String,
        line: usize,
        message: String,
    },
    /// A step failed while it ran (missing source, failing command, unknown stage…).
    #[error("{file}:{line}: {instruction}: {message}")]
    Step {
        file: String,
        line: usize,
        instruction: String,
        message: String,
    },
    /// `RUN` exited non-zero (Docker's exact wording, plus where it came from).
    #[error("{file}:{line}: The command '{command}' returned a non-zero code: {code}")]
    CommandFailed {
        file: String,
        line: usize,
        command: String,
        code: i32,
    },
    /// A file or directory could not be read or written.
    #[error("{context} {path}: {source}")]
    Io {
        context: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The build context (directory or tar on stdin) is unusable.
    #[error("build context: {0}")]
    Context(String),
    /// Bad flags or options (`--build-arg`, `--target`, …).
    #[error("{0}")]
    Options(String),
    /// The container engine or image store refused a step.
    #[error("{0}")]
    Backend(String),
    /// The build cache index could not be read or written.
    #[error("build cache {path}: {reason}")]
    Cache { path: PathBuf, reason: String },
}

/// The crate's result type.
pub type Result<T, E = BuildError> = std::result::Result<T, E>;

impl BuildError {
    /// An I/O error about `path`.
    pub fn io(context: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        BuildError::Io {
            context,
            path: path.into(),
            source,
        }
    }
}
