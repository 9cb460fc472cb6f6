//! The engine's door to the image store: resolve an image reference to its ID and config, and
//! create / mount / unmount / remove a container's read-write layer. Every `berth-image` call
//! the engine makes goes through here. A container made with `--rootfs DIR` (Podman's flag)
//! has no layer: its root is that directory.
use crate::error::{EngineError, Result};
use crate::options::ContainerConfig;
use crate::record::LayerPaths;
use std::path::{Path, PathBuf};

/// An image as the engine needs it.
#[derive(Debug, Clone, Default)]
pub struct ResolvedImage {
    /// `sha256:<hex>`.
    pub id: String,
    /// The image's `config` section (User, Env, Cmd, Entrypoint, WorkingDir, …).
    pub config: ContainerConfig,
}

/// Parses the `config` section out of a Docker/OCI image config JSON.
pub fn container_config_from_image_json(raw: &[u8]) -> Result<ContainerConfig> {
    #[derive(serde::Deserialize, Default)]
    #[serde(default)]
    struct ImageJson {
        config: Option<ContainerConfig>,
    }
    let parsed: ImageJson = serde_json::from_slice(raw)
        .map_err(|e| EngineError::Image(format!("image config: {e}")))?;
    Ok(parsed.config.unwrap_or_default())
}

/// Resolves `reference` in the store under `root`.
pub fn resolve_image(root: &Path, reference: &str) -> Result<ResolvedImage> {
    let _ = root;
    Err(EngineError::ImageNotFound {
        reference: reference.to_string(),
        cause: "the image store is not available in this build".into(),
    })
}

/// Creates the container's layer on top of `image_id`.
pub fn create_layer(root: &Path, container_id: &str, image_id: &str) -> Result<LayerPaths> {
    let _ = (root, container_id);
    Err(EngineError::Image(format!(
        "cannot create a layer on {image_id}: image store unavailable"
    )))
}

/// Mounts the container's layer; returns the merged directory.
pub fn mount_layer(root: &Path, container_id: &str) -> Result<PathBuf> {
    let _ = root;
    Err(EngineError::Image(format!(
        "cannot mount the layer of {container_id}: image store unavailable"
    )))
}

pub fn unmount_layer(root: &Path, container_id: &str) -> Result<()> {
    let _ = (root, container_id);
    Ok(())
}

pub fn remove_layer(root: &Path, container_id: &str) -> Result<()> {
    let _ = (root, container_id);
    Ok(())
}

/// Whether `path` is a mount point right now (from /proc/self/mountinfo).
pub fn is_mount_point(path: &Path) -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let want = path.to_string_lossy();
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .any(|m| m.replace("\\040", " ") == want)
}
