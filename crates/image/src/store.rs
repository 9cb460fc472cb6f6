//! The `Store` handle: one root, its layout and lock, and name resolution (`name[:tag]`,
//! `name@digest`, full or short image IDs) to an [`Image`].
use crate::config::ImageConfig;
use crate::digest::{hex_part, is_full_hex, with_algo};
use crate::error::{ImageError, Result};
use crate::layout::{lock, Layout, StoreLock};
use crate::reference::{looks_like_id_prefix, Reference};
use std::path::Path;

/// The image and layer store under one Berth root.
#[derive(Debug, Clone)]
pub struct Store {
    pub(crate) layout: Layout,
}

/// A resolved image.
#[derive(Debug, Clone)]
pub struct Image {
    /// `sha256:<hex>` of `raw_config`.
    pub id: String,
    pub config: ImageConfig,
    /// The config bytes exactly as stored.
    pub raw_config: Vec<u8>,
    /// Familiar `name:tag` references pointing at this image.
    pub repo_tags: Vec<String>,
    /// Familiar `name@sha256:…` references pointing at this image.
    pub repo_digests: Vec<String>,
}

impl Image {
    /// ChainIDs of its layers, bottom first.
    pub fn chain_ids(&self) -> Vec<String> {
        crate::digest::chain_ids(&self.config.rootfs.diff_ids)
    }
    /// ChainID of the top layer (None for an image without layers).
    pub fn top_layer(&self) -> Option<String> {
        self.chain_ids().pop()
    }
}

impl Store {
    /// Opens (creating when needed) the store under `root`.
    pub fn open(root: &Path) -> Result<Store> {
        Layout::new(root).ensure()?;
        let root = std::fs::canonicalize(root).map_err(ImageError::io("resolving", root))?;
        let layout = Layout::new(&root);
        Ok(Store { layout })
    }

    /// The Berth root this store lives under.
    pub fn root(&self) -> &Path {
        &self.layout.root
    }

    /// `<root>/overlay2`.
    pub fn overlay_dir(&self) -> &Path {
        &self.layout.overlay
    }

    /// Takes the store's metadata lock until the guard drops. Not re-entrant: while holding it,
    /// call no `Store` method that changes metadata (they lock too, and a second flock from the
    /// same process on a fresh descriptor would wait forever).
    pub fn lock(&self) -> Result<StoreLock> {
        lock(&self.layout)
    }

    /// Resolves a reference, full ID or unique ID prefix to an image ID (`sha256:…`).
    pub fn resolve_id(&self, reference: &str) -> Result<String> {
        let bare = hex_part(reference);
        if is_full_hex(bare) && self.layout.image_content(bare).is_file() {
            return Ok(with_algo(bare));
        }
        if reference.starts_with("sha256:") && !looks_like_id_prefix(reference) {
            return Err(ImageError::NoSuchImage(reference.to_string()));
        }
        let parsed = Reference::parse_tagged(reference);
        if let Ok(r) = &parsed {
            if let Some(id) = self.lookup_reference(r)? {
                return Ok(id);
            }
        }
        if looks_like_id_prefix(reference) {
            let prefix = hex_part(reference);
            let matches: Vec<String> = self
                .image_ids()?
                .into_iter()
                .filter(|id| hex_part(id).starts_with(prefix))
                .collect();
            match matches.len() {
                1 => return Ok(matches[0].clone()),
                0 => {}
                n => {
                    return Err(ImageError::AmbiguousId {
                        prefix: prefix.to_string(),
                        count: n,
                    })
                }
            }
        }
        match parsed {
            Ok(r) => Err(ImageError::NoSuchImage(r.familiar_string())),
            Err(e) => Err(e),
        }
    }

    /// Resolves `reference` (name[:tag], name@digest, full or short ID) to an image.
    pub fn resolve(&self, reference: &str) -> Result<Image> {
        let id = self.resolve_id(reference)?;
        self.image(&id)
    }

    /// The image with exactly this ID.
    pub fn image(&self, id: &str) -> Result<Image> {
        let id = with_algo(id);
        let raw_config = self.image_raw_config(&id)?;
        let config: ImageConfig =
            serde_json::from_slice(&raw_config).map_err(|source| ImageError::BadConfig {
                id: id.clone(),
                source,
            })?;
        let (repo_tags, repo_digests) = self.references_of(&id)?;
        Ok(Image {
            id,
            config,
            raw_config,
            repo_tags,
            repo_digests,
        })
    }
}
