//! The crate's one error type: every variant names the object it is about (a path, a reference, an
//! image or layer id) and carries the cause.
use std::path::PathBuf;

/// Everything that can go wrong in the image and layer store.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{context} {path}: {source}")]
    Io {
        context: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// An `images` filter key or value Docker does not accept (`key` or `key=value`).
    #[error("invalid filter '{0}'")]
    InvalidFilter(String),
    #[error("No such image: {0}")]
    NoSuchImage(String),
    #[error("invalid reference format: {reference}: {reason}")]
    InvalidReference { reference: String, reason: String },
    #[error("short image ID {prefix} is ambiguous: matches {count} images")]
    AmbiguousId { prefix: String, count: usize },
    #[error("layer {chain_id} does not exist")]
    NoSuchLayer { chain_id: String },
    #[error("no container layer for container {0}")]
    NoSuchContainerLayer(String),
    #[error("container layer for {0} already exists")]
    ContainerLayerExists(String),
    #[error("unsafe tar entry {name:?} in {layer}: {reason}")]
    UnsafeEntry {
        layer: String,
        name: String,
        reason: String,
    },
    #[error("malformed tar stream in {layer}: {reason}")]
    BadTar { layer: String, reason: String },
    #[error("tar entry {name:?} in {layer}: {source}")]
    Entry {
        layer: String,
        name: String,
        #[source]
        source: std::io::Error,
    },
    #[error("digest mismatch for {what}: expected {expected}, got {actual}")]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },
    #[error("invalid image config {id}: {source}")]
    BadConfig {
        id: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("invalid archive: {0}")]
    BadArchive(String),
    #[error("invalid metadata file {path}: {reason}")]
    BadMetadata { path: PathBuf, reason: String },
    #[error("{0}")]
    Conflict(String),
    #[error("invalid change {change:?}: {reason}")]
    BadChange { change: String, reason: String },
    #[error("mounting overlay for container {container}: {source}")]
    Mount {
        container: String,
        #[source]
        source: std::io::Error,
    },
    /// A stack deeper than overlayfs can mount; raised before anything is mounted or written.
    #[error("{what}: {layers} layers exceed the kernel's overlay limit of {limit} layers")]
    TooManyLayers {
        what: String,
        layers: usize,
        limit: usize,
    },
    #[error("exporting layer {chain_id}: {reason}")]
    Export { chain_id: String, reason: String },
    #[error("fetching {url}: {reason}")]
    Fetch { url: String, reason: String },
}

impl ImageError {
    /// Wraps an I/O error with what was being done and to which path.
    pub fn io(
        context: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> ImageError {
        let path = path.into();
        move |source| ImageError::Io {
            context,
            path,
            source,
        }
    }
}

/// Shorthand for this crate's results.
pub type Result<T, E = ImageError> = std::result::Result<T, E>;
