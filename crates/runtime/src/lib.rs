//! berth-runtime library.
pub mod seccomp;
