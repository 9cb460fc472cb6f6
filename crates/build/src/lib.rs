//! berth-build (placeholder; see crate docs when implemented).
