//! berth-engine: containers. Creates them from an image and `run` flags (record, layer, OCI
//! spec, bundle), starts them under a per-container monitor process that keeps their stdio, log
//! and exit status, and implements the container verbs (`ps`, `logs`, `stop`, `exec`, `inspect`,
//! `ns`, `commit`, …) on top of `berth-runtime`, `berth-image` and `berth-cgroups`.
//!
//! Never forks a container from a threaded process: everything here runs single-threaded.
pub mod attach;
pub mod backend;
pub mod client;
pub mod error;
pub mod exec;
pub mod fsops;
pub mod inspect;
pub mod layer;
pub mod lifecycle;
pub mod logs;
pub mod monitor;
pub mod names;
pub mod namespaces;
pub mod options;
pub mod procinfo;
pub mod record;
pub mod spec;
pub mod stats;
pub mod sys;
pub mod template;
pub mod users;

pub use error::{EngineError, Result};
pub use lifecycle::{AttachOptions, Engine};
pub use options::{ContainerConfig, HostConfig, RunOptions};
pub use record::{ContainerRecord, Status, Store};
