//! Container layers (Docker's "RW layers"): `layerdb/mounts/<cid>/{mount-id,init-id,parent}`, an
//! init layer `overlay2/<mount-id>-init` with Docker's placeholders, and the writable
//! `overlay2/<mount-id>/{diff,work,merged}`; mounted as ONE overlay whose lowerdir uses the short
//! links under `overlay2/l/`. Also commits a container's upper directory as a new image layer.
use crate::apply::remove_tree;
use crate::config::ImageConfig;
use crate::digest::{random_hex_id, with_algo};
use crate::error::{ImageError, Result};
use crate::layers::LayerInfo;
use crate::layout::{read_text, read_text_opt, write_atomic, write_plain};
use crate::store::Store;
use std::path::{Path, PathBuf};

/// A container's writable layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerLayer {
    pub mount_id: String,
    /// Mount point of the overlay (`overlay2/<mount-id>/merged`).
    pub merged: PathBuf,
    /// Upper directory (`overlay2/<mount-id>/diff`).
    pub upper: PathBuf,
    /// Overlay work directory.
    pub work: PathBuf,
    /// Lower directories, top first: the init layer, then the image's layers.
    pub lower_dirs: Vec<PathBuf>,
}

/// What Docker's init layer holds: (path, is_dir). `/etc/mtab` is a symlink to `/proc/mounts`.
const INIT_ENTRIES: &[(&str, bool)] = &[
    ("dev", true),
    ("dev/pts", true),
    ("dev/shm", true),
    ("proc", true),
    ("sys", true),
    ("etc", true),
    (".dockerenv", false),
    ("etc/resolv.conf", false),
    ("etc/hosts", false),
    ("etc/hostname", false),
    ("dev/console", false),
];

fn mkdir(p: &Path) -> Result<()> {
    std::fs::create_dir_all(p).map_err(ImageError::io("creating", p))
}

impl Store {
    fn lower_dirs_of(&self, dir: &Path) -> Result<Vec<PathBuf>> {
        let mut out = Vec::new();
        if let Some(lower) = read_text_opt(&dir.join("lower"))? {
            for l in lower.split(':').filter(|s| !s.is_empty()) {
                let link = self.layout.overlay.join(l);
                let target = std::fs::read_link(&link)
                    .map_err(ImageError::io("reading short link", &link))?;
                // Links read "../<cache-id>/diff": name the directory without resolving paths.
                let cache_dir = target.strip_prefix("..").unwrap_or(&target);
                out.push(self.layout.overlay.join(cache_dir));
            }
        }
        Ok(out)
    }

    /// The container layer of `container_id`, as created.
    pub fn container_layer(&self, container_id: &str) -> Result<ContainerLayer> {
        let meta = self.layout.mount_meta(container_id);
        let mount_id = read_text_opt(&meta.join("mount-id"))?
            .ok_or_else(|| ImageError::NoSuchContainerLayer(container_id.to_string()))?;
        let dir = self.layout.layer_dir(&mount_id);
        let lower_dirs = self.lower_dirs_of(&dir)?;
        Ok(ContainerLayer {
            merged: dir.join("merged"),
            upper: dir.join("diff"),
            work: dir.join("work"),
            lower_dirs,
            mount_id,
        })
    }

    /// Creates the init layer and the writable layer for a container on top of `image_id`
    /// (None: an empty root filesystem).
    pub fn create_container_layer(
        &self,
        container_id: &str,
        image_id: Option<&str>,
    ) -> Result<ContainerLayer> {
        let image = image_id.map(|i| self.resolve(i)).transpose()?;
        // Refuse a stack the kernel cannot mount, before anything is created. An image exactly
        // at the limit gets its init layer folded into a hard-link copy of its top layer
        // (`fold`), so its containers stack no more lower directories than it has layers.
        let mut fold_init = false;
        if let Some(image) = &image {
            let layers = image.config.rootfs.diff_ids.len();
            let limit = crate::overlay::max_lower_layers();
            if layers > limit {
                return Err(ImageError::TooManyLayers {
                    what: format!("image {}", image.id),
                    layers,
                    limit,
                });
            }
            fold_init = layers + 1 > limit;
        }
        let parent: Option<String> = image.as_ref().and_then(|i| i.top_layer());
        let _lock = self.lock()?;
        let meta = self.layout.mount_meta(container_id);
        if meta.exists() {
            return Err(ImageError::ContainerLayerExists(container_id.to_string()));
        }
        let parent_info: Option<LayerInfo> = match &parent {
            Some(p) => Some(self.layer(p)?),
            None => None,
        };
        let mount_id = random_hex_id();
        let init_id = format!("{mount_id}-init");
        let result = (|| -> Result<()> {
            // Init layer.
            let init_dir = self.layout.layer_dir(&init_id);
            let init_diff = init_dir.join("diff");
            // With a folded init layer, the lowers below it are the top layer's own.
            let mut below_init = parent_info.clone();
            match (fold_init, &parent_info) {
                (true, Some(top)) => {
                    mkdir(&init_dir)?;
                    let top_diff = self.layout.layer_dir(&top.cache_id).join("diff");
                    crate::fold::clone_by_links(&top_diff, &init_diff)
                        .map_err(ImageError::io("folding the init layer into", &init_diff))?;
                    below_init = top.parent.as_deref().map(|p| self.layer(p)).transpose()?;
                }
                _ => mkdir(&init_diff)?,
            }
            mkdir(&init_dir.join("work"))?;
            let place = |rel: &str, is_dir: bool| -> Result<PathBuf> {
                if fold_init {
                    crate::fold::make_room(&init_diff, rel, is_dir)
                        .map_err(ImageError::io("placing init entry", init_diff.join(rel)))
                } else {
                    Ok(init_diff.join(rel))
                }
            };
            for (rel, is_dir) in INIT_ENTRIES {
                let p = place(rel, *is_dir)?;
                if *is_dir {
                    if !p.is_dir() {
                        crate::fold::create_init_dir(&p).map_err(ImageError::io("creating", &p))?;
                    }
                } else {
                    write_plain(&p, b"")?;
                    use std::os::unix::fs::PermissionsExt;
                    let mode = if *rel == "dev/console" { 0o600 } else { 0o755 };
                    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode))
                        .map_err(ImageError::io("chmod", &p))?;
                }
            }
            let mtab = place("etc/mtab", false)?;
            std::os::unix::fs::symlink("/proc/mounts", &mtab)
                .map_err(ImageError::io("creating", &mtab))?;
            self.finish_layer_dir(&init_id, below_init.as_ref())?;
            if below_init.is_none() {
                // A bottom layer has no work dir from finish_layer_dir; the init layer wants one.
                mkdir(&init_dir.join("work"))?;
            }
            let init_info = LayerInfo {
                chain_id: String::new(),
                diff_id: String::new(),
                cache_id: init_id.clone(),
                size: 0,
                parent: None,
            };
            // Writable layer on top of the init layer.
            let dir = self.layout.layer_dir(&mount_id);
            mkdir(&dir.join("diff"))?;
            mkdir(&dir.join("merged"))?;
            self.finish_layer_dir(&mount_id, Some(&init_info))?;
            // Metadata last: the container layer exists once mounts/<cid> does.
            let tmp = self
                .layout
                .layerdb_tmp()
                .join(format!("mount-{}", &random_hex_id()[..16]));
            mkdir(&tmp)?;
            write_plain(&tmp.join("mount-id"), mount_id.as_bytes())?;
            write_plain(&tmp.join("init-id"), init_id.as_bytes())?;
            if let Some(p) = &parent {
                write_plain(&tmp.join("parent"), with_algo(p).as_bytes())?;
            }
            std::fs::rename(&tmp, &meta).map_err(ImageError::io("creating", &meta))
        })();
        if let Err(e) = result {
            self.remove_layer_dir(&mount_id);
            self.remove_layer_dir(&init_id);
            return Err(e);
        }
        drop(_lock);
        self.container_layer(container_id)
    }

    /// Refuses, before anything is created or mounted, to make a layer on image `image_id`
    /// when the new image would have more layers than the kernel stacks (a build step or a
    /// commit on an image already at the limit).
    pub fn ensure_room_for_layer(&self, image_id: &str) -> Result<()> {
        let id = self.resolve_id(image_id)?;
        let config = self.image_config(&id)?;
        let layers = config.rootfs.diff_ids.len() + 1;
        let limit = crate::overlay::max_lower_layers();
        if layers > limit {
            return Err(ImageError::TooManyLayers {
                what: format!("a new layer on image {id}"),
                layers,
                limit,
            });
        }
        Ok(())
    }

    /// Mounts the container's overlay at its `merged` directory (idempotent); returns that path.
    pub fn mount_container_layer(&self, container_id: &str) -> Result<PathBuf> {
        self.mount_container_layer_with(container_id, false)
    }

    /// As [`Store::mount_container_layer`]; with `volatile`, overlayfs skips syncing the upper
    /// dir, so unmounting does not flush the host filesystem (for throwaway `--rm` containers, as
    /// Podman does). Kernels without the option get the normal mount.
    pub fn mount_container_layer_with(
        &self,
        container_id: &str,
        volatile: bool,
    ) -> Result<PathBuf> {
        let meta = self.layout.mount_meta(container_id);
        let mount_id = read_text_opt(&meta.join("mount-id"))?
            .ok_or_else(|| ImageError::NoSuchContainerLayer(container_id.to_string()))?;
        let dir = self.layout.layer_dir(&mount_id);
        let merged = dir.join("merged");
        // Under the lock, so two processes mounting one container do not stack two overlays.
        let _lock = self.lock()?;
        if is_mountpoint(&merged) {
            return Ok(merged);
        }
        let lower = read_text(&dir.join("lower"))?;
        let lowers: Vec<String> = lower
            .split(':')
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect();
        let limit = crate::overlay::max_lower_layers();
        if lowers.len() > limit {
            return Err(ImageError::TooManyLayers {
                what: format!("container {container_id}"),
                layers: lowers.len(),
                limit,
            });
        }
        let upper = format!("{mount_id}/diff");
        let work = format!("{mount_id}/work");
        let spec = crate::overlay::OverlaySpec {
            base: &self.layout.overlay,
            lowers: &lowers,
            data_dirs: &[],
            upper: &upper,
            work: &work,
            volatile,
        };
        crate::overlay::mount_overlay(&spec, &merged).map_err(|source| ImageError::Mount {
            container: container_id.to_string(),
            source,
        })?;
        Ok(merged)
    }

    /// Unmounts the container's overlay (no error when it is not mounted).
    pub fn unmount_container_layer(&self, container_id: &str) -> Result<()> {
        let layer = self.container_layer(container_id)?;
        if is_mountpoint(&layer.merged) {
            rustix::mount::unmount(&layer.merged, rustix::mount::UnmountFlags::DETACH).map_err(
                |e| ImageError::Mount {
                    container: container_id.to_string(),
                    source: e.into(),
                },
            )?;
        }
        Ok(())
    }

    /// Unmounts and deletes a container's layers and metadata.
    pub fn remove_container_layer(&self, container_id: &str) -> Result<()> {
        let meta = self.layout.mount_meta(container_id);
        let Some(mount_id) = read_text_opt(&meta.join("mount-id"))? else {
            return Err(ImageError::NoSuchContainerLayer(container_id.to_string()));
        };
        self.unmount_container_layer(container_id)?;
        let _lock = self.lock()?;
        let init_id =
            read_text_opt(&meta.join("init-id"))?.unwrap_or_else(|| format!("{mount_id}-init"));
        let grave = self
            .layout
            .layerdb_tmp()
            .join(format!("remove-mount-{container_id}"));
        let _ = remove_tree(&grave);
        std::fs::rename(&meta, &grave).map_err(ImageError::io("removing", &meta))?;
        self.remove_layer_dir(&mount_id);
        self.remove_layer_dir(&init_id);
        remove_tree(&grave)?;
        Ok(())
    }

    /// Container IDs whose layer sits on top of image `image_id`'s top layer.
    pub fn containers_using_image(&self, image_id: &str) -> Result<Vec<String>> {
        let img = self.image(image_id)?;
        let Some(top) = img.top_layer() else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        if let Ok(rd) = std::fs::read_dir(self.layout.mounts()) {
            for e in rd.flatten() {
                if read_text_opt(&e.path().join("parent"))?.as_deref() == Some(top.as_str()) {
                    out.push(e.file_name().to_string_lossy().into_owned());
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// Commits the container's upper directory as a new layer on top of its image's layers and
    /// registers `config` as a new image (its `rootfs.diff_ids` are set here; the caller appends
    /// the history entry). `parent_image` is recorded as the new image's parent. Returns the ID.
    pub fn commit_container_layer(
        &self,
        container_id: &str,
        config: ImageConfig,
        parent_image: Option<&str>,
    ) -> Result<String> {
        let meta = self.layout.mount_meta(container_id);
        let layer = self.container_layer(container_id)?;
        let parent_chain = read_text_opt(&meta.join("parent"))?;
        let mut diff_ids = match &parent_chain {
            Some(parent) => self.diff_ids_of_chain(parent, parent_image)?,
            None => Vec::new(),
        };
        if diff_ids.len() + 1 > crate::overlay::MAX_LOWER_LAYERS {
            return Err(ImageError::TooManyLayers {
                what: format!(
                    "committing container {container_id} onto image {}",
                    parent_image.unwrap_or_default()
                ),
                layers: diff_ids.len() + 1,
                limit: crate::overlay::MAX_LOWER_LAYERS,
            });
        }
        let staged = self.stage_dir_as_layer(&layer.upper, &format!("container {container_id}"))?;
        let diff_id = staged.applied.diff_id.clone();
        self.commit_staged(staged, parent_chain.as_deref())?;
        diff_ids.push(diff_id);
        let mut config = config;
        config.rootfs.kind = "layers".into();
        config.rootfs.diff_ids = diff_ids;
        self.add_image(&config, parent_image)
    }

    /// DiffIDs, bottom first, of the layer `chain` and its ancestors: from the image's config
    /// when `image` is the one whose top layer `chain` is (one file read, however deep the
    /// image), else by walking the layer store.
    fn diff_ids_of_chain(&self, chain: &str, image: Option<&str>) -> Result<Vec<String>> {
        if let Some(config) = image.and_then(|i| self.image_config(i).ok()) {
            let ids = config.rootfs.diff_ids;
            let top = crate::digest::chain_ids(&ids).pop();
            if top.as_deref().map(crate::digest::hex_part) == Some(crate::digest::hex_part(chain)) {
                return Ok(ids);
            }
        }
        let mut ids: Vec<String> = self
            .layer_chain(chain)?
            .into_iter()
            .map(|l| l.diff_id)
            .collect();
        ids.reverse();
        Ok(ids)
    }

    /// Tars `dir` (overlay whiteouts to `.wh.`) and extracts it as a staged layer, streaming.
    pub fn stage_dir_as_layer(
        &self,
        dir: &Path,
        label: &str,
    ) -> Result<crate::layers::StagedLayer> {
        let (reader, mut writer) = std::io::pipe().map_err(ImageError::io("creating pipe", dir))?;
        std::thread::scope(|s| {
            let producer = s.spawn(move || {
                let r = crate::export::write_dir_tar(dir, &mut writer);
                drop(writer);
                r
            });
            let staged = self.stage_layer(reader, label);
            let produced = producer.join().unwrap_or_else(|_| {
                Err(ImageError::Export {
                    chain_id: label.to_string(),
                    reason: "tar writer panicked".into(),
                })
            });
            match (staged, produced) {
                (Ok(s), Ok(())) => Ok(s),
                (Ok(s), Err(e)) => {
                    self.discard_staged(s);
                    Err(e)
                }
                (Err(e), _) => Err(e),
            }
        })
    }

    /// Writes `lastUpdated`-style metadata for a fresh image; used by callers that tag.
    pub fn touch_image(&self, id: &str) -> Result<()> {
        let dir = self.layout.image_meta(id);
        std::fs::create_dir_all(&dir).map_err(ImageError::io("creating", &dir))?;
        write_atomic(
            &dir.join("lastUpdated"),
            berth_common::time::now_rfc3339().as_bytes(),
        )
    }
}

/// True when `path` is a mount point (its device differs from its parent's).
pub fn is_mountpoint(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let (Ok(md), Some(parent)) = (std::fs::metadata(path), path.parent()) else {
        return false;
    };
    match std::fs::metadata(parent) {
        Ok(pmd) => md.dev() != pmd.dev() || md.ino() == pmd.ino(),
        Err(_) => false,
    }
}
