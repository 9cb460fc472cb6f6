//! berth-engine: containers. Creates them from an image and `run` flags (record, layer, OCI
//! spec, bundle), starts them under a per-container monitor process that keeps their stdio, log
//! and exit status, and implements the container verbs (`ps`, `logs`, `stop`, `exec`, `inspect`,
//! `ns`, `commit`, …) on top of `berth-runtime`, `berth-image` and `berth-cgroups`.
//!
//! Never forks a container from a threaded process: everything here runs single-threaded,
//! except one scoped helper thread while a `--rm` container's monitor removes it (joined before
//! the monitor reports and exits; it never forks again).
//!
//! Module map: `options` (Docker's Config/HostConfig and flag parsers), `spec` (pure image
//! config + flags → OCI spec), `users` (passwd/group lookup in the image), `record` (the
//! `containers/<id>/` record store, names, lock), `layer` (door to berth-image), `runtime_door`
//! (door to berth-runtime), `lifecycle` (create/start/stop/kill/rm/wait/pause/restart),
//! `monitor` (the per-container keeper), `attach` + `client` (monitor ↔ CLI protocol and the
//! attached terminal side), `logs` (json-file), `exec`, `inspect` (inspect/ps views),
//! `template` (`--format`), `stats`, `namespaces` (`berth ns`), `fsops` (commit/export/cp),
//! `procinfo` (/proc readers), `sys` (syscall helpers), `cgroup_prime` (a head start for the
//! cgroup move of a container's init), `deferred_free` (block freeing after the client is
//! answered), `names`, `error`, `volumes` (the volume store and a container's mounts),
//! `diff` (changes in the upper layer), `update` (live limits), `pull` (`--pull
//! missing|always|never`: images fetched through berth-registry before create), `events` (the event log),
//! `housekeeping` (container prune, system df, info counts).
//!
//! Process model: `run` creates the record, layer and bundle in the CLI, then forks the monitor
//! (setsid, child subreaper). The monitor creates and starts the container through the runtime
//! library (the init is its child), pumps stdio into the json-file log and to attached clients
//! over `containers/<id>/attach.sock` (or the socketpair the foreground CLI kept), reaps the
//! init, records the exit, applies the restart policy and `--rm`, and exits.
pub mod attach;
pub mod cgroup_prime;
pub mod client;
pub mod container_fs;
pub mod deferred_free;
pub mod detach_keys;
pub mod diff;
pub mod error;
pub mod events;
pub mod exec;
pub mod fsops;
pub mod hidden_entry;
pub mod housekeeping;
pub mod inspect;
pub mod layer;
pub mod lifecycle;
pub mod logs;
pub mod monitor;
pub mod names;
pub mod namespaces;
pub mod network;
pub mod options;
pub mod procinfo;
pub mod pull;
pub mod record;
pub mod run_checks;
pub mod runtime_door;
pub mod security_opts;
pub mod spec;
pub mod stats;
pub mod sys;
pub mod template;
pub mod update;
pub mod users;
pub mod volumes;

pub use berth_net as net;
pub use error::{EngineError, Result};
pub use lifecycle::{AttachOptions, Engine};
pub use options::{ContainerConfig, HostConfig, RunOptions};
pub use record::{ContainerRecord, Status, Store};
