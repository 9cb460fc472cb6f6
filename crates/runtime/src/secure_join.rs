//! Resolving paths inside the container's root without ever leaving it: `openat2` with
//! `RESOLVE_IN_ROOT` (symlinks and `..` are clamped to the root) and creation of missing mount
//! points component by component, each resolved the same way. Mounts then target the resolved
//! file through `/proc/self/fd/N`, so a symlink swapped in later cannot redirect them.
//!
//! The code lives in `berth-inroot`, shared with the image store, the engine and the builder.
pub use berth_inroot::{ensure_in_root, open_in_root, proc_fd_path, Kind};
