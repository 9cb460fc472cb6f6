//! The marks a multi-step container change leaves for crash recovery: the kinds of intent
//! (`berth_image::intent`) the engine writes around them, and the exit file a monitor writes
//! for whoever finds it dead. Writers (`lifecycle`, `monitor`, the builder's steps) and the
//! reader (`recovery`) share these names; what each mark means is `recovery`'s to say.

/// `create-<id>`: from before a container's directory, name and layer exist until its record
/// is saved.
pub const CREATE: &str = "create";
/// `remove-<id>`: from the start of an `rm` until the container is gone.
pub const REMOVE: &str = "remove";
/// `step-<id>`: a build step's container layer.
pub const STEP: &str = "step";
/// `monitor-<id>`: held by a container's monitor for its whole life.
pub const MONITOR: &str = "monitor";

/// The file a monitor writes its container's exit code to as soon as it reaps the init (before
/// the record is updated), for whoever finds the monitor dead.
pub const EXIT_FILE: &str = "berth-exit-code";
