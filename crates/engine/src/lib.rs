//! berth-engine (placeholder; see crate docs when implemented).
