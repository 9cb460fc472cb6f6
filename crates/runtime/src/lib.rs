//! berth-runtime library.
