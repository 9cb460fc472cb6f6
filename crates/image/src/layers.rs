//! The layer store: read-only image layers keyed by ChainID (`layerdb/sha256/<chain>`) whose
//! contents live in `overlay2/<cache-id>/diff`. A layer is extracted under a fresh random cache id
//! (invisible to everyone), then committed: short link, `lower`, `work`, and finally the layerdb
//! directory appears by one rename. Layers are shared by ChainID and removed only when no image or
//! container layer references them.
use crate::apply::{apply_chunks, remove_tree, AppliedLayer};
use crate::digest::{chain_id, hex_part, random_hex_id, random_link_id, with_algo};
use crate::error::{ImageError, Result};
use crate::intent::Intent;
use crate::layout::{read_text, read_text_opt, write_plain};
use crate::side::{ChunkSource, ReadChunks};
use crate::store::Store;
use std::io::Read;
use std::path::PathBuf;

/// Where a staged layer's tar-split document is written, beside its `diff/`, until the
/// commit moves it into the layerdb entry.
pub(crate) const TAR_SPLIT_STAGED: &str = "tar-split.json.gz";

/// Renames `from` to `to`, copying when they are on different filesystems.
pub(crate) fn move_file(from: &std::path::Path, to: &std::path::Path) -> Result<()> {
    match std::fs::rename(from, to) {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {
            std::fs::copy(from, to).map_err(ImageError::io("copying", from))?;
            let _ = std::fs::remove_file(from);
            Ok(())
        }
        Err(e) => Err(ImageError::io("moving", from)(e)),
    }
}

/// A committed layer's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerInfo {
    pub chain_id: String,
    pub diff_id: String,
    pub cache_id: String,
    pub size: u64,
    pub parent: Option<String>,
}

/// A layer extracted but not yet committed (its directory is garbage until committed). While
/// its stager lives, an intent (`stage-<cache-id>`) keeps the recovery sweep off it.
#[derive(Debug)]
pub struct StagedLayer {
    pub cache_id: String,
    pub applied: AppliedLayer,
    pub(crate) intent: Option<Intent>,
}

impl StagedLayer {
    fn finished(mut self) {
        if let Some(i) = self.intent.take() {
            i.done();
        }
    }
}

/// Intent kind of a layer being extracted (object: its cache id).
pub const STAGE_KIND: &str = "stage";

impl Store {
    /// Metadata of the committed layer `chain_id`.
    pub fn layer(&self, chain_id: &str) -> Result<LayerInfo> {
        let dir = self.layout.layer_meta(chain_id);
        if !dir.is_dir() {
            return Err(ImageError::NoSuchLayer {
                chain_id: with_algo(chain_id),
            });
        }
        let size = read_text(&dir.join("size"))?;
        Ok(LayerInfo {
            chain_id: with_algo(chain_id),
            diff_id: read_text(&dir.join("diff"))?,
            cache_id: read_text(&dir.join("cache-id"))?,
            size: size.parse().map_err(|_| ImageError::BadMetadata {
                path: dir.join("size"),
                reason: format!("not a number: {size:?}"),
            })?,
            parent: read_text_opt(&dir.join("parent"))?,
        })
    }

    /// True when the layer `chain_id` is committed.
    pub fn has_layer(&self, chain_id: &str) -> bool {
        self.layout.layer_meta(chain_id).join("cache-id").is_file()
    }

    /// The layer and its ancestors, top first.
    pub fn layer_chain(&self, top: &str) -> Result<Vec<LayerInfo>> {
        let mut out = Vec::new();
        let mut next = Some(top.to_string());
        while let Some(c) = next {
            let l = self.layer(&c)?;
            next = l.parent.clone();
            out.push(l);
        }
        Ok(out)
    }

    /// `overlay2/<cache-id>/diff` of a committed layer.
    pub fn layer_diff_dir(&self, chain_id: &str) -> Result<PathBuf> {
        Ok(self
            .layout
            .layer_dir(&self.layer(chain_id)?.cache_id)
            .join("diff"))
    }

    /// Extracts an uncompressed tar stream into a fresh, not yet visible layer directory.
    pub fn stage_layer(&self, tar: impl Read, label: &str) -> Result<StagedLayer> {
        self.stage_layer_as(random_hex_id(), tar, label)
    }

    /// Like [`Store::stage_layer`] into the directory `cache_id` the caller chose (from
    /// [`random_hex_id`](crate::digest::random_hex_id)), so it can record where an extraction
    /// happens before it starts (see [`crate::partial`]).
    pub fn stage_layer_as(
        &self,
        cache_id: String,
        tar: impl Read,
        label: &str,
    ) -> Result<StagedLayer> {
        self.stage_chunks_as(cache_id, ReadChunks::new(tar), label)
    }

    /// Like [`Store::stage_layer`] from a stream already in shared chunks (no copy on the way).
    pub fn stage_layer_chunks(&self, tar: impl ChunkSource, label: &str) -> Result<StagedLayer> {
        self.stage_chunks_as(random_hex_id(), tar, label)
    }

    fn stage_chunks_as(
        &self,
        cache_id: String,
        tar: impl ChunkSource,
        label: &str,
    ) -> Result<StagedLayer> {
        // The intent first: a directory that exists always has its intent visible.
        let intent = Intent::begin(&self.layout.root, STAGE_KIND, &cache_id)?;
        let dir = self.layout.layer_dir(&cache_id);
        let diff = dir.join("diff");
        if let Err(e) = std::fs::create_dir_all(&diff) {
            intent.done();
            return Err(ImageError::io("creating", &diff)(e));
        }
        match apply_chunks(tar, &diff, label, &dir.join(TAR_SPLIT_STAGED)) {
            Ok(applied) => Ok(StagedLayer {
                cache_id,
                applied,
                intent: Some(intent),
            }),
            Err(e) => {
                let _ = remove_tree(&dir);
                intent.done();
                Err(e)
            }
        }
    }

    /// Writes staged layers' files to disk ahead of their commit (one `syncfs`), so the flush of
    /// [`Store::commit_staged_chain`] finds little left: a puller calls it from a thread of its
    /// own while other layers still download. Harmless at any time.
    pub fn flush_staged(&self) -> Result<()> {
        crate::layout::sync_filesystems(&[&self.layout.overlay])
    }

    /// Throws a staged layer away.
    pub fn discard_staged(&self, staged: StagedLayer) {
        let _ = remove_tree(&self.layout.layer_dir(&staged.cache_id));
        staged.finished();
    }

    /// The `lower` file content a child of `parent` gets: `l/<parent link>` then the parent's lowers.
    fn lower_for_child(&self, parent: &LayerInfo) -> Result<String> {
        let pdir = self.layout.layer_dir(&parent.cache_id);
        let link = read_text(&pdir.join("link"))?;
        let mut lower = format!("l/{link}");
        if let Some(plower) = read_text_opt(&pdir.join("lower"))? {
            if !plower.is_empty() {
                lower.push(':');
                lower.push_str(&plower);
            }
        }
        Ok(lower)
    }

    /// Gives a layer directory its short link, `link`, and (with a parent) `work` and `lower`.
    pub(crate) fn finish_layer_dir(
        &self,
        cache_id: &str,
        parent: Option<&LayerInfo>,
    ) -> Result<String> {
        let dir = self.layout.layer_dir(cache_id);
        let link_id = random_link_id();
        let link_path = self.layout.links().join(&link_id);
        std::os::unix::fs::symlink(format!("../{cache_id}/diff"), &link_path)
            .map_err(ImageError::io("creating short link", &link_path))?;
        write_plain(&dir.join("link"), link_id.as_bytes())?;
        if let Some(p) = parent {
            let work = dir.join("work");
            std::fs::create_dir_all(&work).map_err(ImageError::io("creating", &work))?;
            write_plain(&dir.join("lower"), self.lower_for_child(p)?.as_bytes())?;
        }
        Ok(link_id)
    }

    /// Commits a staged layer on top of `parent` (a ChainID, None for a bottom layer) and returns
    /// its ChainID. When that ChainID already exists the staged copy is discarded. See
    /// [`Store::commit_staged_chain`] for the order of the writes.
    pub fn commit_staged(&self, staged: StagedLayer, parent: Option<&str>) -> Result<String> {
        let mut chains = self.commit_staged_chain(vec![staged], parent)?;
        chains.pop().ok_or_else(|| ImageError::BadMetadata {
            path: self.layout.layerdb(),
            reason: "a committed layer has no ChainID".into(),
        })
    }

    /// Commits staged layers that form a chain (bottom first) on top of `parent`; returns their
    /// ChainIDs in the same order. Layers whose ChainID already exists are discarded.
    ///
    /// The order makes a crash at any instant harmless (each step is a [`crate::fault`] point):
    /// 1. every layer directory gets its short link, `link`, `lower`, `work` and `committed`,
    ///    and every layerdb entry is written in full under `layerdb/tmp/`
    ///    (`layer-commit:written`);
    /// 2. one `syncfs` makes all of it durable — the extracted files, whose writes were never
    ///    fsynced one by one, and the metadata (`layer-commit:synced`);
    /// 3. the entries are renamed to `layerdb/sha256/<chain-id>`, parents first — the only step
    ///    that makes a layer exist — and that directory is fsynced (`layer-commit:registered`).
    ///
    /// Interrupted before 3, the store holds unregistered cache directories and staging
    /// entries, which `remove_orphans` (image prune) deletes; during or after 3, complete layers.
    pub fn commit_staged_chain(
        &self,
        layers: Vec<StagedLayer>,
        parent: Option<&str>,
    ) -> Result<Vec<String>> {
        let _lock = self.lock()?;
        let mut parent_info = match parent {
            Some(p) => Some(self.layer(p)?),
            None => None,
        };
        // (chain id, staging entry, cache id) of each layer to register, bottom first.
        let mut prepared: Vec<(String, PathBuf, String)> = Vec::new();
        let mut registered = 0;
        let mut chains = Vec::new();
        let mut layers = layers.into_iter();
        // Dropped once each layer is registered or removed (see `finished`).
        let mut intents: Vec<Intent> = Vec::new();
        let result = (|| -> Result<()> {
            for mut staged in layers.by_ref() {
                if let Some(i) = staged.intent.take() {
                    intents.push(i);
                }
                let chain = chain_id(
                    parent_info.as_ref().map(|p| p.chain_id.as_str()),
                    &staged.applied.diff_id,
                );
                chains.push(chain.clone());
                if self.has_layer(&chain) {
                    self.discard_staged(staged);
                    parent_info = Some(self.layer(&chain)?);
                    continue;
                }
                let entry = self
                    .layout
                    .layerdb_tmp()
                    .join(format!("write-{}", &random_hex_id()[..16]));
                prepared.push((chain.clone(), entry.clone(), staged.cache_id.clone()));
                self.finish_layer_dir(&staged.cache_id, parent_info.as_ref())?;
                let dir = self.layout.layer_dir(&staged.cache_id);
                write_plain(&dir.join("committed"), b"")?;
                std::fs::create_dir_all(&entry).map_err(ImageError::io("creating", &entry))?;
                write_plain(&entry.join("diff"), staged.applied.diff_id.as_bytes())?;
                write_plain(&entry.join("cache-id"), staged.cache_id.as_bytes())?;
                write_plain(
                    &entry.join("size"),
                    staged.applied.size.to_string().as_bytes(),
                )?;
                if let Some(p) = &parent_info {
                    write_plain(&entry.join("parent"), with_algo(&p.chain_id).as_bytes())?;
                }
                move_file(&staged.applied.tar_split, &entry.join("tar-split.json.gz"))?;
                parent_info = Some(LayerInfo {
                    chain_id: with_algo(&chain),
                    diff_id: staged.applied.diff_id.clone(),
                    cache_id: staged.cache_id.clone(),
                    size: staged.applied.size,
                    parent: parent_info.as_ref().map(|p| with_algo(&p.chain_id)),
                });
            }
            if prepared.is_empty() {
                return Ok(());
            }
            crate::fault::point("layer-commit:written");
            crate::layout::sync_filesystems(&[&self.layout.overlay, &self.layout.layerdb_tmp()])?;
            crate::fault::point("layer-commit:synced");
            for (chain, entry, _) in &prepared {
                let dest = self.layout.layer_meta(chain);
                std::fs::rename(entry, &dest).map_err(ImageError::io("committing layer", &dest))?;
                registered += 1;
            }
            Ok(())
        })();
        if let Err(e) = result {
            // Layers already renamed into place are complete; the rest go.
            for (_, entry, cache_id) in prepared.into_iter().skip(registered) {
                let _ = remove_tree(&entry);
                self.remove_layer_dir(&cache_id);
            }
            for staged in layers {
                self.discard_staged(staged);
            }
            intents.into_iter().for_each(Intent::done);
            return Err(e);
        }
        intents.into_iter().for_each(Intent::done);
        // The layers exist from here on; an error now leaves them complete (and unreferenced).
        crate::layout::sync_dir(&self.layout.layerdb())?;
        crate::fault::point("layer-commit:registered");
        Ok(chains)
    }

    /// Removes `overlay2/<cache-id>` and its short link. A `merged` directory still mounted (a
    /// container layer whose remover was killed) is detached first, so the removal never walks
    /// into the overlay and through it into the layers below.
    pub(crate) fn remove_layer_dir(&self, cache_id: &str) {
        let dir = self.layout.layer_dir(cache_id);
        let merged = dir.join("merged");
        if crate::mounts::is_mountpoint(&merged)
            && rustix::mount::unmount(&merged, rustix::mount::UnmountFlags::DETACH).is_err()
        {
            return;
        }
        if let Ok(Some(link)) = read_text_opt(&dir.join("link")) {
            if !link.is_empty() && !link.contains('/') {
                let _ = std::fs::remove_file(self.layout.links().join(link));
            }
        }
        let _ = remove_tree(&dir);
    }

    /// Every ChainID referenced by an image or a container layer (with ancestors). Call under lock.
    pub(crate) fn referenced_layers(&self) -> Result<std::collections::HashSet<String>> {
        let mut used = std::collections::HashSet::new();
        for id in self.image_ids()? {
            if let Ok(cfg) = self.image_config(&id) {
                for c in crate::digest::chain_ids(&cfg.rootfs.diff_ids) {
                    used.insert(c);
                }
            }
        }
        let mounts = self.layout.mounts();
        if let Ok(rd) = std::fs::read_dir(&mounts) {
            for e in rd.flatten() {
                if let Ok(Some(p)) = read_text_opt(&e.path().join("parent")) {
                    if let Ok(chain) = self.layer_chain(&p) {
                        used.extend(chain.into_iter().map(|l| l.chain_id));
                    }
                }
            }
        }
        Ok(used)
    }

    /// Deletes `top` and its ancestors while nothing references them; returns the removed
    /// ChainIDs, top first. Call under lock.
    pub(crate) fn release_layers(&self, top: &str) -> Result<Vec<String>> {
        let used = self.referenced_layers()?;
        let mut removed = Vec::new();
        let mut next = Some(with_algo(top));
        while let Some(c) = next {
            if used.contains(&c) {
                break;
            }
            let Ok(info) = self.layer(&c) else { break };
            let meta = self.layout.layer_meta(&c);
            let grave = self
                .layout
                .layerdb_tmp()
                .join(format!("remove-{}", hex_part(&c)));
            let _ = remove_tree(&grave);
            std::fs::rename(&meta, &grave).map_err(ImageError::io("removing layer", &meta))?;
            self.remove_layer_dir(&info.cache_id);
            let _ = remove_tree(&grave);
            removed.push(c);
            next = info.parent;
        }
        Ok(removed)
    }

    /// Rebuilds a committed layer's tar and extracts it again as a new staged layer (for a layer
    /// that appears at two positions in one chain, which needs two cache dirs).
    pub fn restage_layer(&self, chain_id: &str) -> Result<StagedLayer> {
        let (reader, mut writer) =
            std::io::pipe().map_err(ImageError::io("creating pipe", "restage"))?;
        std::thread::scope(|s| {
            let producer = s.spawn(move || {
                let r = self.export_layer(chain_id, &mut writer);
                drop(writer);
                r
            });
            let staged = self.stage_layer(reader, chain_id);
            let produced = producer.join().unwrap_or_else(|_| {
                Err(ImageError::Export {
                    chain_id: chain_id.into(),
                    reason: "exporter panicked".into(),
                })
            });
            match (staged, produced) {
                (Ok(s), Ok(_)) => Ok(s),
                (Ok(s), Err(e)) => {
                    self.discard_staged(s);
                    Err(e)
                }
                (Err(e), _) => Err(e),
            }
        })
    }

    /// Records `distribution/diffid-by-digest/sha256/<blob>` and
    /// `distribution/v2metadata-by-diffid/sha256/<diff>` for a compressed blob.
    pub fn record_blob_digest(
        &self,
        blob: &str,
        diff_id: &str,
        source: Option<&str>,
    ) -> Result<()> {
        let dist = self.layout.distribution();
        let by_digest = dist.join("diffid-by-digest/sha256");
        let by_diff = dist.join("v2metadata-by-diffid/sha256");
        for d in [&by_digest, &by_diff] {
            std::fs::create_dir_all(d).map_err(ImageError::io("creating", d))?;
        }
        crate::layout::write_atomic(
            &by_digest.join(hex_part(blob)),
            with_algo(diff_id).as_bytes(),
        )?;
        let repo = source
            .and_then(|s| crate::reference::Reference::parse(s).ok())
            .map(|r| r.full_name())
            .unwrap_or_default();
        let meta =
            serde_json::json!([{"Digest": with_algo(blob), "SourceRepository": repo, "HMAC": ""}]);
        crate::layout::write_atomic(
            &by_diff.join(hex_part(diff_id)),
            meta.to_string().as_bytes(),
        )
    }

    /// Removes layer directories and staging leftovers that no layer or container references
    /// and that are older than `min_age` (younger ones may belong to an extraction in progress).
    pub fn remove_orphans(&self, min_age: std::time::Duration) -> Result<Vec<PathBuf>> {
        let _lock = self.lock()?;
        let mut wanted = std::collections::HashSet::new();
        wanted.insert("l".to_string());
        if let Ok(rd) = std::fs::read_dir(self.layout.layerdb()) {
            for e in rd.flatten() {
                if let Ok(Some(c)) = read_text_opt(&e.path().join("cache-id")) {
                    wanted.insert(c);
                }
            }
        }
        if let Ok(rd) = std::fs::read_dir(self.layout.mounts()) {
            for e in rd.flatten() {
                if let Ok(Some(m)) = read_text_opt(&e.path().join("mount-id")) {
                    wanted.insert(format!("{m}-init"));
                    wanted.insert(m);
                }
                if let Ok(Some(i)) = read_text_opt(&e.path().join("init-id")) {
                    wanted.insert(i);
                }
            }
        }
        let old_enough = |p: &std::path::Path| {
            std::fs::symlink_metadata(p)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age >= min_age)
        };
        let mut removed = Vec::new();
        let dirs = [self.layout.overlay.clone(), self.layout.layerdb_tmp()];
        for (i, dir) in dirs.iter().enumerate() {
            let Ok(rd) = std::fs::read_dir(dir) else {
                continue;
            };
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let p = e.path();
                if (i == 0 && wanted.contains(&name)) || !old_enough(&p) {
                    continue;
                }
                if i == 0 {
                    self.remove_layer_dir(&name);
                } else {
                    let _ = remove_tree(&p);
                }
                removed.push(p);
            }
        }
        // Short links whose layer is gone.
        if let Ok(rd) = std::fs::read_dir(self.layout.links()) {
            for e in rd.flatten() {
                let p = e.path();
                if std::fs::metadata(&p).is_err() && old_enough(&p) {
                    let _ = std::fs::remove_file(&p);
                    removed.push(p);
                }
            }
        }
        Ok(removed)
    }
}
