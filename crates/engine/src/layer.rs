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

fn store(root: &Path) -> Result<berth_image::Store> {
    berth_image::Store::open(root).map_err(|e| EngineError::Image(e.to_string()))
}

fn image_err(e: berth_image::ImageError) -> EngineError {
    EngineError::Image(e.to_string())
}

/// Resolves `reference` in the store under `root`.
pub fn resolve_image(root: &Path, reference: &str) -> Result<ResolvedImage> {
    let image = store(root)?.resolve(reference).map_err(|e| match e {
        berth_image::ImageError::NoSuchImage(_) => EngineError::ImageNotFound {
            reference: reference.to_string(),
            cause: e.to_string(),
        },
        other => EngineError::ImageNotFound {
            reference: reference.to_string(),
            cause: other.to_string(),
        },
    })?;
    Ok(ResolvedImage {
        config: container_config_from_image_json(&image.raw_config)?,
        id: image.id,
    })
}

fn paths_of(layer: &berth_image::ContainerLayer) -> LayerPaths {
    let join = |v: &[PathBuf]| {
        v.iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(":")
    };
    LayerPaths {
        mount_id: layer.mount_id.clone(),
        merged_dir: layer.merged.to_string_lossy().into_owned(),
        upper_dir: layer.upper.to_string_lossy().into_owned(),
        work_dir: layer.work.to_string_lossy().into_owned(),
        lower_dir: join(&layer.lower_dirs),
    }
}

/// Creates the container's layer on top of `image_id`.
pub fn create_layer(root: &Path, container_id: &str, image_id: &str) -> Result<LayerPaths> {
    let image = if image_id.is_empty() {
        None
    } else {
        Some(image_id)
    };
    let layer = store(root)?
        .create_container_layer(container_id, image)
        .map_err(image_err)?;
    Ok(paths_of(&layer))
}

/// Mounts the container's layer; returns the merged directory.
pub fn mount_layer(root: &Path, container_id: &str) -> Result<PathBuf> {
    store(root)?
        .mount_container_layer(container_id)
        .map_err(image_err)
}

/// Mounts the just-created layer of a `--rm` container with overlayfs' `volatile` option, as
/// Podman does for `--rm`: the upper directory is never synced, so unmounting it after the
/// container exits does not flush the whole host filesystem (`ovl_sync_fs` →
/// `sync_filesystem`: milliseconds of disk waits on the path a foreground `run --rm` waits
/// for). The layer is deleted right after the container exits, so nothing worth syncing is
/// lost; after a host crash the layer cannot be mounted again, only removed, which is all a
/// `--rm` container's layer is for. `berth-image` falls back to its ordinary mount when the
/// kernel refuses `volatile`.
pub fn mount_layer_volatile(root: &Path, container_id: &str) -> Result<PathBuf> {
    store(root)?
        .mount_container_layer_with(container_id, true)
        .map_err(image_err)
}

pub fn unmount_layer(root: &Path, container_id: &str) -> Result<()> {
    store(root)?
        .unmount_container_layer(container_id)
        .map_err(image_err)
}

pub fn remove_layer(root: &Path, container_id: &str) -> Result<()> {
    store(root)?
        .remove_container_layer(container_id)
        .map_err(image_err)
}

/// Whether `path` is a mount point right now: its device differs from its parent's (an overlay
/// mount always has its own), which costs two stats instead of reading /proc/self/mountinfo.
pub fn is_mount_point(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let (Ok(here), Some(parent)) = (std::fs::metadata(path), path.parent()) else {
        return false;
    };
    match std::fs::metadata(parent) {
        Ok(up) => here.dev() != up.dev() || here.ino() == up.ino(),
        Err(_) => false,
    }
}
