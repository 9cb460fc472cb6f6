//! The image database: configs in `imagedb/content/sha256/<id>` (kept verbatim, id = sha256 of
//! the bytes) and per-image metadata (`parent`, `lastUpdated`) in `imagedb/metadata/sha256/<id>`.
use crate::config::ImageConfig;
use crate::digest::{chain_ids, hex_part, is_full_hex, sha256_digest, with_algo};
use crate::error::{ImageError, Result};
use crate::layout::{read_text_opt, write_atomic};
use crate::store::Store;
use berth_common::time::now_rfc3339;

impl Store {
    /// Every image ID in the store (`sha256:…`).
    pub fn image_ids(&self) -> Result<Vec<String>> {
        let dir = self.layout.image_content_dir();
        let mut ids = Vec::new();
        let rd = match std::fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ids),
            Err(e) => return Err(ImageError::io("listing", &dir)(e)),
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if is_full_hex(&name) {
                ids.push(format!("sha256:{name}"));
            }
        }
        ids.sort();
        Ok(ids)
    }

    /// The stored config bytes of image `id`.
    pub fn image_raw_config(&self, id: &str) -> Result<Vec<u8>> {
        let path = self.layout.image_content(id);
        std::fs::read(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                ImageError::NoSuchImage(with_algo(id))
            } else {
                ImageError::io("reading", &path)(e)
            }
        })
    }

    /// Whether image `id` (full ID, with or without `sha256:`) is stored: one `stat`, no parse.
    pub fn has_image(&self, id: &str) -> bool {
        crate::digest::is_full_hex(crate::digest::hex_part(id))
            && self.layout.image_content(id).is_file()
    }

    /// The parsed config of image `id`.
    pub fn image_config(&self, id: &str) -> Result<ImageConfig> {
        let raw = self.image_raw_config(id)?;
        serde_json::from_slice(&raw).map_err(|source| ImageError::BadConfig {
            id: with_algo(id),
            source,
        })
    }

    /// The parent image recorded for `id` (classic builds and commits record one).
    pub fn image_parent(&self, id: &str) -> Result<Option<String>> {
        read_text_opt(&self.layout.image_meta(id).join("parent"))
    }

    /// `lastUpdated` of image `id` (set when it was tagged), if any.
    pub fn image_last_updated(&self, id: &str) -> Result<Option<String>> {
        read_text_opt(&self.layout.image_meta(id).join("lastUpdated"))
    }

    pub(crate) fn set_last_updated(&self, id: &str) -> Result<()> {
        let dir = self.layout.image_meta(id);
        std::fs::create_dir_all(&dir).map_err(ImageError::io("creating", &dir))?;
        write_atomic(&dir.join("lastUpdated"), now_rfc3339().as_bytes())
    }

    /// Images whose recorded parent is `id`.
    pub fn image_children(&self, id: &str) -> Result<Vec<String>> {
        let id = with_algo(id);
        let mut out = Vec::new();
        for other in self.image_ids()? {
            if self.image_parent(&other)?.as_deref() == Some(id.as_str()) {
                out.push(other);
            }
        }
        Ok(out)
    }

    /// Registers an image config (bytes kept verbatim) whose layers are all in the store, with
    /// an optional parent image; returns the image ID. Idempotent.
    pub fn add_image_raw(&self, raw_config: &[u8], parent: Option<&str>) -> Result<String> {
        let config: ImageConfig =
            serde_json::from_slice(raw_config).map_err(|source| ImageError::BadConfig {
                id: sha256_digest(raw_config),
                source,
            })?;
        let id = sha256_digest(raw_config);
        let _lock = self.lock()?;
        for chain in chain_ids(&config.rootfs.diff_ids) {
            if !self.has_layer(&chain) {
                return Err(ImageError::NoSuchLayer { chain_id: chain });
            }
        }
        let content = self.layout.image_content(&id);
        if !content.is_file() {
            write_atomic(&content, raw_config)?;
        }
        if let Some(p) = parent {
            let p = self.resolve_id(p)?;
            let dir = self.layout.image_meta(&id);
            std::fs::create_dir_all(&dir).map_err(ImageError::io("creating", &dir))?;
            write_atomic(&dir.join("parent"), p.as_bytes())?;
        }
        Ok(id)
    }

    /// Serialises `config` and registers it (see [`Store::add_image_raw`]).
    pub fn add_image(&self, config: &ImageConfig, parent: Option<&str>) -> Result<String> {
        let raw = serde_json::to_vec(config).map_err(|source| ImageError::BadConfig {
            id: "<new>".into(),
            source,
        })?;
        self.add_image_raw(&raw, parent)
    }

    /// Removes the image record (config and metadata). Call under lock.
    pub(crate) fn delete_image_record(&self, id: &str) -> Result<()> {
        let content = self.layout.image_content(id);
        match std::fs::remove_file(&content) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(ImageError::io("removing", &content)(e)),
        }
        let _ = crate::apply::remove_tree(&self.layout.image_meta(hex_part(id)));
        Ok(())
    }
}
