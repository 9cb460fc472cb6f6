#![recursion_limit = "256"]
//! berth-api: the Docker Engine API over a Unix socket (`berth system service`), so the docker
//! CLI, docker-py, Compose and Testcontainers drive Berth's store and containers.
//!
//! Module map: `server` (tokio runtime, accept loops, version prefix, idle timeout), `listen`
//! (Unix socket 0660 root:berth, systemd `LISTEN_FDS`, TCP only with TLS), `tls` (client
//! certificate verification), `version` (API 1.24 … 1.47), `error` (Docker's `{"message"}`
//! with Docker's status codes), `state` (what handlers share), `streams` (async bodies ↔
//! blocking `Read`/`Write`), `routes` (the handlers, one module per object).
//!
//! No business logic lives here: handlers call berth-engine, berth-image and berth-build and
//! translate shapes. The service is multithreaded, so it never forks a container itself: the
//! engine starts monitors by re-executing the `berth` binary for threaded callers.
pub mod error;
pub mod hijack;
pub mod listen;
pub mod routes;
pub mod server;
pub mod state;
pub mod streams;
pub mod tls;
pub mod version;

pub use listen::{ListenAddr, DEFAULT_SOCKET};
pub use server::{serve, ServiceError, ServiceOptions};
pub use tls::TlsFiles;
