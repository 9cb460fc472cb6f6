//! berth-image (placeholder; see crate docs when implemented).
