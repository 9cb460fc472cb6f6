//! berth-registry: the OCI distribution client. Pulls images into and pushes them out of the
//! image store (`berth-image`), which stays the only owner of what is on disk.
//!
//! - [`settings`]: `daemon.json` mirrors and insecure registries, `certs.d` CAs, Docker Hub names.
//! - [`credentials`]: Docker's `config.json` and `docker-credential-*` helpers.
//! - [`auth`], [`client`]: challenges, tokens, one registry's HTTP API with retries.
//! - [`manifest`]: manifests, indexes, platforms. [`blob`]: resumable, verified blob reads.
//! - [`pull`], [`push`], [`login`]: the verbs.
//!
//! All I/O is blocking (`ureq`); concurrency uses scoped threads that are joined before a verb
//! returns, so a caller that forks a container afterwards is single-threaded again.
pub mod auth;
pub mod blob;
pub mod client;
pub mod credentials;
pub mod error;
pub mod login;
pub mod manifest;
pub mod pull;
pub mod push;
pub mod session;
pub mod settings;

pub use credentials::{CredentialStore, Credentials};
pub use error::RegistryError;
pub use manifest::Platform;
pub use pull::{pull, LayerEvent, PullOptions, PullProgress, Pulled};
pub use push::{push, PushEvent, PushProgress, Pushed};
pub use session::Session;
pub use settings::Settings;
