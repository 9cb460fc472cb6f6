//! berth-engine: containers. Creates them from an image and `run` flags (record, layer, OCI
//! spec, bundle), starts them under a per-container monitor process that keeps their stdio, log
//! and exit status, and implements the container verbs (`ps`, `logs`, `stop`, `exec`, `inspect`,
//! `ns`, `commit`, …) on top of `berth-runtime`, `berth-image` and `berth-cgroups`.
//!
//! # Using it as a library (CLI, API service, any program)
//!
//! - [`Engine::open`]`(root)` binds the engine to a Berth root (runtime from `BERTH_RUNTIME`,
//!   the built-in library when unset); [`Engine::with_runtime`] takes any
//!   [`runtime_door::OciRuntime`]. `Engine` is `Clone + Send + Sync`: call it from any thread.
//! - Containers: [`Engine::create`]`(&`[`RunOptions`]`)` → [`ContainerRecord`];
//!   [`Engine::start_detached`], [`Engine::start_attached`] (this process's terminal),
//!   [`Engine::start_with_client`] (a server's own attach socket, frames as in `attach`);
//!   [`Engine::wait`], [`Engine::stop`], [`Engine::kill`], [`Engine::remove`],
//!   [`Engine::pause`]/[`Engine::unpause`], [`Engine::restart`]; [`Engine::lookup`] resolves a
//!   name, ID or prefix. [`Engine::exec_process`] builds an exec's OCI process;
//!   [`Engine::exec`] runs it.
//!   Logs: `logs::print_container_logs` into any `Write`.
//! - Errors: one [`EngineError`] with typed sources; [`EngineError::exit_code`] and
//!   [`EngineError::command_failure_code`] give Docker's 125/126/127.
//! - **Threads.** Starting a container needs a monitor process. A single-threaded caller (the
//!   CLI) forks it; a multithreaded caller never forks into Rust code: the engine re-executes a
//!   program at a hidden entry point instead (see `hidden_entry`). Call
//!   [`hidden_entry::run_if_requested`] first thing in `main` (berth does), or set
//!   `BERTH_BINARY` to a `berth` binary. `examples/threaded_run.rs` starts containers from 8
//!   threads this way.
//!
//! # Module map
//!
//! Modules form a graph without cycles (`tests/module_graph.rs` checks it), roughly from the
//! bottom: `error`; `options` (Docker's Config/HostConfig and flag parsers), `sys` (syscall
//! helpers, thread count, wait-status decoding), `procinfo` (/proc readers), `names`,
//! `detach_keys`, `parsed_cache`, `security_opts`, `users` (passwd/group lookup in the image),
//! `container_fs` (paths inside a container's root); `health` (Docker's health rules and state),
//! `intents` (the marks multi-step changes leave for recovery), `record` (the `containers/<id>/`
//! record store, names, lock), `events` (the event log), `local_log` (the local log driver's
//! records), `logs` (json-file and local drivers), `layer` (`Layers`, the door to berth-image),
//! `network` (door to berth-net), `volumes` (the volume store and a container's mounts), `spec`
//! (pure image config + flags → OCI spec, by concern), `run_checks` (Docker's checks of run flags),
//! `runtime_door` (the `OciRuntime` trait: the in-process library, a runc-style binary, and a fake
//! for unit tests), `attach` (monitor ↔ client protocol and what a client asks for), `terminal_session` (the
//! attached terminal side), `exec` (an exec's process and its run), `detached_exec` (the waiter
//! that records a detached exec's end), `reexec` (re-executing a program at a hidden entry point),
//! `cgroup_prime` (a head start for the cgroup move of a container's init), `deferred_free` (block
//! freeing after the client is answered); `monitor` (the per-container conmon and its health
//! checker, on a narrow `MonitorContext`: store, runtime, layers); `lifecycle` (`Engine`:
//! create/start/stop/kill/rm/wait/pause/restart/rename/exec, `keeper`, the monitor's parent, a
//! subreaper that records the container's end if the monitor is killed, and `recovery`, which rolls
//! what a killed command or monitor left forward or back); above the engine: `hidden_entry` (the
//! entry points a threaded caller re-executes), `inspect` (the inspect document, status texts),
//! `listing` (`Engine::list`: Docker's `ps` filters and typed `PsRow`s, unreadable records
//! reported), `stats`, `ns_view` (`berth ns`), `commit_export_cp`, `diff` (changes in
//! the upper layer), `update` (live limits), `pull` (`--pull missing|always|never` through
//! berth-registry), `housekeeping` (container prune, system df, info counts). Modules only the
//! engine uses are `pub(crate)`.
//!
//! # Process model
//!
//! `run` creates the record, layer and bundle in the caller, then starts the monitor (forked,
//! or re-executed from a threaded caller; setsid, child subreaper) under its keeper (forked
//! just before it; a subreaper too, so a killed monitor's container is adopted by it). The monitor creates and
//! starts the container through the runtime door (the init is its child), pumps stdio into the
//! json-file log and to attached clients over `containers/<id>/attach.sock` (or the socket the
//! caller handed over), reaps the init, records the exit, applies the restart policy and
//! `--rm`, and exits. It uses one scoped helper thread while a `--rm` container is removed
//! (joined before it reports; it never forks again).
pub mod attach;
pub mod cgroup_prime;
pub mod commit_export_cp;
pub(crate) mod container_fs;
pub(crate) mod deferred_free;
pub mod detach_keys;
pub mod detached_exec;
pub mod diff;
pub mod docker_profile;
pub mod error;
pub mod events;
pub mod exec;
pub mod health;
pub mod hidden_entry;
pub mod housekeeping;
pub mod image_verbs;
pub mod inspect;
pub(crate) mod intents;
pub(crate) mod layer;
pub mod lifecycle;
pub mod listing;
pub mod local_log;
pub mod logs;
pub(crate) mod monitor;
pub mod names;
pub mod network;
pub mod ns_view;
pub mod options;
pub(crate) mod parsed_cache;
pub mod procinfo;
pub mod pull;
pub mod record;
pub(crate) mod reexec;
pub mod run_checks;
pub mod runtime_door;
pub(crate) mod security_opts;
pub mod spec;
pub mod stats;
pub mod sys;
pub(crate) mod terminal_session;
pub mod update;
pub(crate) mod users;
pub mod volumes;

pub use attach::AttachOptions;
pub use berth_net as net;
pub use error::{EngineError, Result};
pub use lifecycle::{recovery, Engine};
pub use listing::{Filter, ListOptions, Listing, PsRow};
pub use options::{ContainerConfig, HostConfig, RunOptions};
pub use record::{ContainerRecord, Records, Status, Store, UnreadableRecord};
