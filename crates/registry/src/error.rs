//! The crate's one error type. Every variant names the registry and repository it is about, and
//! the digest or reference when there is one, so a failed pull or push says exactly what failed.
use std::path::PathBuf;

/// Everything that can go wrong talking to a registry.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error(transparent)]
    Image(#[from] berth_image::ImageError),
    #[error("{context} {path}: {source}")]
    Io {
        context: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid configuration file {path}: {reason}")]
    BadConfig { path: PathBuf, reason: String },
    #[error("{registry}: {reason}")]
    Connect { registry: String, reason: String },
    #[error("pull access denied for {repository} on {registry}, repository does not exist or may require 'berth login': {message}")]
    Denied {
        registry: String,
        repository: String,
        message: String,
    },
    #[error("unauthorized: authentication required for {registry}: {message}")]
    Unauthorized { registry: String, message: String },
    #[error("manifest for {reference} not found: manifest unknown: {message}")]
    ManifestUnknown { reference: String, message: String },
    #[error("{registry}/{repository}: {what}: HTTP {status}: {message}")]
    Http {
        registry: String,
        repository: String,
        what: String,
        status: u16,
        message: String,
    },
    #[error("{registry}/{repository}: {what} {digest}: digest mismatch: got {actual}")]
    DigestMismatch {
        registry: String,
        repository: String,
        what: &'static str,
        digest: String,
        actual: String,
    },
    #[error("{registry}/{repository}: blob {digest}: truncated: got {got} of {expected} bytes")]
    Truncated {
        registry: String,
        repository: String,
        digest: String,
        got: u64,
        expected: u64,
    },
    #[error("{registry}/{repository}: {what}: {reason}")]
    BadContent {
        registry: String,
        repository: String,
        what: String,
        reason: String,
    },
    #[error("no matching manifest for {platform} in the manifest list entries")]
    NoPlatform { platform: String },
    #[error("invalid platform {platform:?}: {reason}")]
    BadPlatform { platform: String, reason: String },
    #[error("credential helper docker-credential-{helper}: {reason}")]
    CredentialHelper { helper: String, reason: String },
    #[error("{0}")]
    Invalid(String),
}

impl RegistryError {
    /// Wraps an I/O error with what was being done and to which path.
    pub fn io(
        context: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> RegistryError {
        let path = path.into();
        move |source| RegistryError::Io {
            context,
            path,
            source,
        }
    }
}

/// Shorthand for this crate's results.
pub type Result<T, E = RegistryError> = std::result::Result<T, E>;
