//! The engine's door to the image store: resolve an image reference to its ID and config, and
//! create / mount / unmount / remove a container's read-write layer. Every `berth-image` call
//! the engine makes goes through [`Layers`]. A container made with `--rootfs DIR` (Podman's
//! flag) has no layer: its root is that directory.
//!
//! Only a missing image becomes [`EngineError::ImageNotFound`] ("pull access denied" in the
//! CLI); an I/O error or a corrupt store stays an [`EngineError::Image`] with its cause.
use crate::error::{EngineError, Result};
use crate::options::ContainerConfig;
use crate::record::{ContainerRecord, LayerPaths};
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
pub fn container_config_from_image_json(image: &str, raw: &[u8]) -> Result<ContainerConfig> {
    #[derive(serde::Deserialize, Default)]
    #[serde(default)]
    struct ImageJson {
        config: Option<ContainerConfig>,
    }
    let parsed: ImageJson =
        serde_json::from_slice(raw).map_err(|source| EngineError::ImageConfig {
            image: image.to_string(),
            source,
        })?;
    Ok(parsed.config.unwrap_or_default())
}

/// The image store and container layers under one Berth root.
#[derive(Debug, Clone)]
pub struct Layers {
    layout: berth_image::layout::Layout,
}

impl Layers {
    pub fn new(root: &Path) -> Layers {
        Layers {
            layout: berth_image::layout::Layout::new(root),
        }
    }

    /// Where the store's files are.
    pub fn layout(&self) -> &berth_image::layout::Layout {
        &self.layout
    }

    pub(crate) fn store(&self) -> Result<berth_image::Store> {
        Ok(berth_image::Store::open(&self.layout.root)?)
    }

    /// Resolves `reference` to an image ID and its config.
    pub fn resolve_image(&self, reference: &str) -> Result<ResolvedImage> {
        let image = self.store()?.resolve(reference).map_err(|e| match e {
            berth_image::ImageError::NoSuchImage(_) => EngineError::ImageNotFound {
                reference: reference.to_string(),
                cause: e.to_string(),
            },
            other => EngineError::Image(other),
        })?;
        Ok(ResolvedImage {
            config: container_config_from_image_json(&image.id, &image.raw_config)?,
            id: image.id,
        })
    }

    /// Creates the container's layer on top of `image_id`.
    pub fn create(&self, container_id: &str, image_id: &str) -> Result<LayerPaths> {
        let image = (!image_id.is_empty()).then_some(image_id);
        let layer = self.store()?.create_container_layer(container_id, image)?;
        Ok(paths_of(&layer))
    }

    /// Mounts the container's layer; returns the merged directory.
    pub fn mount(&self, container_id: &str) -> Result<PathBuf> {
        Ok(self.store()?.mount_container_layer(container_id)?)
    }

    /// Mounts the just-created layer of a `--rm` container with overlayfs' `volatile` option,
    /// as Podman does for `--rm`: the upper directory is never synced, so unmounting it after
    /// the container exits does not flush the whole host filesystem (`ovl_sync_fs` →
    /// `sync_filesystem`: milliseconds of disk waits on the path a foreground `run --rm` waits
    /// for). The layer is deleted right after the container exits, so nothing worth syncing is
    /// lost; after a host crash the layer cannot be mounted again, only removed, which is all a
    /// `--rm` container's layer is for. `berth-image` falls back to its ordinary mount when the
    /// kernel refuses `volatile`.
    pub fn mount_volatile(&self, container_id: &str) -> Result<PathBuf> {
        Ok(self
            .store()?
            .mount_container_layer_with(container_id, true)?)
    }

    pub fn unmount(&self, container_id: &str) -> Result<()> {
        Ok(self.store()?.unmount_container_layer(container_id)?)
    }

    pub fn remove(&self, container_id: &str) -> Result<()> {
        Ok(self.store()?.remove_container_layer(container_id)?)
    }

    /// Mounts the container's layer again if it is not mounted (after a stop).
    pub fn ensure_mounted(&self, record: &ContainerRecord) -> Result<()> {
        if record.driver.is_empty() || is_mount_point(Path::new(&record.berth_layer.merged_dir)) {
            return Ok(());
        }
        self.mount(&record.id).map(|_| ())
    }

    /// Unmounts the container's layer (nothing for a `--rootfs` container).
    pub fn unmount_record(&self, record: &ContainerRecord) -> Result<()> {
        if record.driver.is_empty() {
            return Ok(());
        }
        self.unmount(&record.id)
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_missing_image_is_image_not_found() {
        let root = tempfile::tempdir().expect("tempdir");
        let layers = Layers::new(root.path());
        assert!(matches!(
            layers.resolve_image("nope:latest"),
            Err(EngineError::ImageNotFound { .. })
        ));
        // A store whose repositories file is corrupt is a broken store, not a missing image.
        let repos = layers.layout().repositories();
        std::fs::create_dir_all(repos.parent().expect("parent")).expect("mkdir");
        std::fs::write(&repos, b"{not json").expect("write");
        let err = layers
            .resolve_image("nope:latest")
            .expect_err("corrupt store");
        assert!(matches!(err, EngineError::Image(_)), "{err:?}");
    }
}
