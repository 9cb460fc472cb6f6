//! berth-cgroups (placeholder; see crate docs when implemented).
