//! The builder's door to the outside world: resolving images, making writable container layers,
//! running a `RUN` command, committing a layer or a metadata-only image, and tagging. The
//! builder is written against this trait so its logic is unit-tested with a fake; the real
//! implementation (`engine_runner`) sits on `berth-image` and the container runtime.
use crate::error::Result;
use berth_image::ImageConfig;
use std::io::Write;
use std::path::PathBuf;

/// An image as the builder needs it.
#[derive(Debug, Clone)]
pub struct BaseImage {
    /// `sha256:<hex>`.
    pub id: String,
    pub config: ImageConfig,
}

/// A container made for one step: a writable layer, mounted at `rootfs`.
#[derive(Debug, Clone, PartialEq)]
pub struct StepContainer {
    /// 64-hex container ID.
    pub id: String,
    /// The mounted root filesystem (overlay `merged`).
    pub rootfs: PathBuf,
}

/// The process a `RUN` step starts.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ProcessSpec {
    pub args: Vec<String>,
    /// `K=V`, image `Env` then build args.
    pub env: Vec<String>,
    /// `USER` (name, uid, `name:group`, `uid:gid`), empty for root.
    pub user: String,
    /// Absolute working directory, empty for `/`.
    pub workdir: String,
    /// The image's `VOLUME`s: each gets a fresh anonymous volume for the run, as Docker does,
    /// so the step's writes there are discarded but the mount point lands in the layer.
    pub volumes: Vec<String>,
}

/// What the builder needs from an engine and an image store.
pub trait StepRunner {
    /// Resolves `reference` (name, name:tag, ID or ID prefix) to an image.
    fn resolve_image(&mut self, reference: &str) -> Result<BaseImage>;
    /// Whether image `id` still exists (a cache entry is valid only then).
    fn image_exists(&mut self, id: &str) -> bool;
    /// Creates and mounts a writable layer on `image_id` (None: `FROM scratch`).
    fn create_container(&mut self, image_id: Option<&str>) -> Result<StepContainer>;
    /// Runs `process` in `container`, streaming its stdout and stderr to `output`; returns the
    /// exit code (128+n when killed by signal n).
    fn run(
        &mut self,
        container: &StepContainer,
        process: &ProcessSpec,
        output: &mut dyn Write,
    ) -> Result<i32>;
    /// Whether the container's layer holds any change.
    fn has_changes(&mut self, container: &StepContainer) -> Result<bool>;
    /// Commits the container's changes as a layer and registers `config` (its `rootfs` is
    /// completed by the store) with parent `parent`; returns the new image ID.
    fn commit_layer(
        &mut self,
        container: &StepContainer,
        config: &ImageConfig,
        parent: Option<&str>,
    ) -> Result<String>;
    /// Registers `config` (layers unchanged) with parent `parent`; returns the image ID.
    fn add_image(&mut self, config: &ImageConfig, parent: Option<&str>) -> Result<String>;
    /// Unmounts and removes a step's container and its layer.
    fn remove_container(&mut self, container: &StepContainer) -> Result<()>;
    /// Points `reference` at `image_id`.
    fn tag(&mut self, image_id: &str, reference: &str) -> Result<()>;
}
