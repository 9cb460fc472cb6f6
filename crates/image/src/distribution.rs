//! Docker's `distribution/` metadata, read and extended for pull and push:
//! `diffid-by-digest/sha256/<blob>` (compressed blob → DiffID) and
//! `v2metadata-by-diffid/sha256/<diff>` (DiffID → every blob digest and source repository it
//! is known by, so a push can skip or cross-mount blobs), plus `pulling/<blob>/`: layers a pull
//! extracted and verified but has not committed yet, so a pull killed halfway resumes without
//! downloading them again. The pull that keeps a layer holds a lock on its record for as long
//! as it lives; only a record whose owner is gone (the lock released by the kernel) can be
//! claimed, by renaming it, so two pulls never commit the same staged directory.
use crate::apply::{remove_tree, AppliedLayer};
use crate::digest::{hex_part, random_hex_id, with_algo};
use crate::error::{ImageError, Result};
use crate::layers::StagedLayer;
use crate::layers::STAGE_KIND;
use crate::layout::{read_text_opt, write_atomic, write_plain};
use crate::store::Store;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// One `v2metadata-by-diffid` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct V2Metadata {
    #[serde(rename = "Digest")]
    pub digest: String,
    #[serde(rename = "SourceRepository")]
    pub source_repository: String,
    #[serde(rename = "HMAC", default)]
    pub hmac: String,
}

/// Proof that this process owns a kept layer's record: while it lives, no other pull claims it.
#[derive(Debug)]
pub struct KeptLayer {
    _lock: Option<std::fs::File>,
}

#[derive(Serialize, Deserialize)]
struct KeptRecord {
    cache_id: String,
    diff_id: String,
    size: u64,
}

impl Store {
    fn dist_dir(&self, sub: &str) -> PathBuf {
        self.layout.distribution().join(sub)
    }

    /// The DiffID a compressed blob is known to decompress to.
    pub fn diff_id_for_blob(&self, blob: &str) -> Result<Option<String>> {
        read_text_opt(
            &self
                .dist_dir("diffid-by-digest/sha256")
                .join(hex_part(blob)),
        )
    }

    /// Every blob digest (with its source repository) known for a DiffID, newest last.
    pub fn blobs_for_diff_id(&self, diff_id: &str) -> Result<Vec<V2Metadata>> {
        let path = self
            .dist_dir("v2metadata-by-diffid/sha256")
            .join(hex_part(diff_id));
        match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| ImageError::BadMetadata {
                path,
                reason: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(ImageError::io("reading", &path)(e)),
        }
    }

    /// Records that `blob` decompresses to `diff_id` and lives in `repository` (a full name such
    /// as `docker.io/library/busybox`), keeping the entries already known for other repositories.
    pub fn add_blob_metadata(&self, blob: &str, diff_id: &str, repository: &str) -> Result<()> {
        let by_digest = self.dist_dir("diffid-by-digest/sha256");
        let by_diff = self.dist_dir("v2metadata-by-diffid/sha256");
        for d in [&by_digest, &by_diff] {
            std::fs::create_dir_all(d).map_err(ImageError::io("creating", d))?;
        }
        write_atomic(
            &by_digest.join(hex_part(blob)),
            with_algo(diff_id).as_bytes(),
        )?;
        let _lock = self.lock()?;
        let mut entries = self.blobs_for_diff_id(diff_id).unwrap_or_default();
        let entry = V2Metadata {
            digest: with_algo(blob),
            source_repository: repository.to_string(),
            hmac: String::new(),
        };
        entries.retain(|e| !(e.digest == entry.digest && e.source_repository == repository));
        entries.push(entry);
        let bytes = serde_json::to_vec(&entries).map_err(|e| ImageError::BadMetadata {
            path: by_diff.clone(),
            reason: e.to_string(),
        })?;
        write_atomic(&by_diff.join(hex_part(diff_id)), &bytes)
    }

    /// Points the digest reference `name@sha256:…` at `image_id`, moving it when it pointed at
    /// another image (a multi-platform index digest names whichever platform was pulled last,
    /// as Docker's puller records it).
    pub fn set_repo_digest(&self, image_id: &str, digest_reference: &str) -> Result<()> {
        let r = crate::reference::Reference::parse(digest_reference)?;
        if r.digest.is_none() || r.tag.is_some() {
            return Err(ImageError::InvalidReference {
                reference: digest_reference.to_string(),
                reason: "expected name@digest".into(),
            });
        }
        if self.lookup_reference(&r)?.as_deref() == Some(with_algo(image_id).as_str()) {
            return Ok(());
        }
        {
            let _lock = self.lock()?;
            self.untag_locked(&r)?;
        }
        self.tag(image_id, digest_reference).map(|_| ())
    }

    /// Records the descriptor of the blob committed layer `chain_id` came from, as Docker's
    /// `layerdb/sha256/<chain>/descriptor.json`: kept for foreign (non-distributable) layers,
    /// whose manifest entry (media type, `urls`) a push must repeat instead of uploading them.
    pub fn set_layer_descriptor(&self, chain_id: &str, descriptor: &[u8]) -> Result<()> {
        let dir = self.layout.layer_meta(chain_id);
        if !dir.is_dir() {
            return Err(ImageError::BadMetadata {
                path: dir,
                reason: "no such layer".into(),
            });
        }
        write_atomic(&dir.join("descriptor.json"), descriptor)
    }

    /// The descriptor recorded with [`Store::set_layer_descriptor`], if any.
    pub fn layer_descriptor(&self, chain_id: &str) -> Result<Option<Vec<u8>>> {
        let path = self.layout.layer_meta(chain_id).join("descriptor.json");
        match std::fs::read(&path) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(ImageError::io("reading", &path)(e)),
        }
    }

    /// Keeps a verified, staged layer of blob `blob` for a later pull to commit, should this
    /// one die before committing it. Hold the returned guard until the layer is committed.
    pub fn keep_staged(&self, blob: &str, staged: &StagedLayer) -> Result<KeptLayer> {
        let dir = self.dist_dir("pulling");
        std::fs::create_dir_all(&dir).map_err(ImageError::io("creating", &dir))?;
        let tmp = dir.join(format!(".new-{}", &random_hex_id()[..16]));
        std::fs::create_dir_all(&tmp).map_err(ImageError::io("creating", &tmp))?;
        let record = KeptRecord {
            cache_id: staged.cache_id.clone(),
            diff_id: staged.applied.diff_id.clone(),
            size: staged.applied.size,
        };
        let json = serde_json::to_vec(&record).map_err(|e| ImageError::BadMetadata {
            path: tmp.clone(),
            reason: e.to_string(),
        })?;
        let kept_split = tmp.join("tar-split.json.gz");
        std::fs::hard_link(&staged.applied.tar_split, &kept_split)
            .or_else(|_| std::fs::copy(&staged.applied.tar_split, &kept_split).map(|_| ()))
            .map_err(ImageError::io("keeping", &staged.applied.tar_split))?;
        write_plain(&tmp.join("layer.json"), &json)?;
        let record = tmp.join("layer.json");
        let lock = std::fs::File::open(&record).map_err(ImageError::io("opening", &record))?;
        lock.lock().map_err(ImageError::io("locking", &record))?;
        let dest = dir.join(hex_part(blob));
        if std::fs::rename(&tmp, &dest).is_err() {
            // Another pull kept the same blob first; ours stays the caller's to use.
            let _ = remove_tree(&tmp);
            return Ok(KeptLayer { _lock: None });
        }
        Ok(KeptLayer { _lock: Some(lock) })
    }

    /// Claims the staged layer kept for `blob`, if any whose directory still exists.
    pub fn take_kept_staged(&self, blob: &str) -> Option<StagedLayer> {
        let dir = self.dist_dir("pulling");
        let src = dir.join(hex_part(blob));
        // A live owner holds the lock: its layer is not ours to take.
        let lock = std::fs::File::open(src.join("layer.json")).ok()?;
        lock.try_lock().ok()?;
        let claimed = dir.join(format!(".claimed-{}", &random_hex_id()[..16]));
        std::fs::rename(&src, &claimed).ok()?;
        let result = (|| {
            let record: KeptRecord =
                serde_json::from_slice(&std::fs::read(claimed.join("layer.json")).ok()?).ok()?;
            if record.cache_id.contains('/')
                || !self
                    .layout
                    .layer_dir(&record.cache_id)
                    .join("diff")
                    .is_dir()
            {
                return None;
            }
            let tar_split = self
                .layout
                .layer_dir(&record.cache_id)
                .join(crate::layers::TAR_SPLIT_STAGED);
            if !tar_split.is_file() {
                crate::layers::move_file(&claimed.join("tar-split.json.gz"), &tar_split).ok()?;
            }
            // Ours now: protect it from the recovery sweep before its kept record goes.
            let intent =
                crate::intent::Intent::begin(&self.layout.root, STAGE_KIND, &record.cache_id)
                    .ok()?;
            Some(StagedLayer {
                intent: Some(intent),
                cache_id: record.cache_id,
                applied: AppliedLayer {
                    diff_id: record.diff_id,
                    size: record.size,
                    tar_split,
                },
            })
        })();
        let _ = remove_tree(&claimed);
        result
    }

    /// Cache ids of the staged layers kept for later pulls.
    pub(crate) fn kept_cache_ids(&self) -> Vec<String> {
        let Ok(rd) = std::fs::read_dir(self.dist_dir("pulling")) else {
            return Vec::new();
        };
        rd.flatten()
            .filter_map(|e| std::fs::read(e.path().join("layer.json")).ok())
            .filter_map(|b| serde_json::from_slice::<KeptRecord>(&b).ok())
            .map(|r| r.cache_id)
            .collect()
    }

    /// Forgets every kept layer no live pull holds (their directories become orphans for the
    /// sweep), and the temporaries of pulls killed while keeping or claiming one.
    pub(crate) fn drop_unclaimed_kept_layers(&self) {
        let Ok(rd) = std::fs::read_dir(self.dist_dir("pulling")) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            let held = std::fs::File::open(p.join("layer.json"))
                .ok()
                .is_some_and(|f| f.try_lock().is_err());
            if !held {
                let _ = remove_tree(&p);
            }
        }
    }

    /// Forgets the kept layer of `blob` (after it was committed or thrown away).
    pub fn forget_kept_staged(&self, blob: &str) {
        let _ = remove_tree(&self.dist_dir("pulling").join(hex_part(blob)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_of(name: &str, data: &[u8]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, data).unwrap();
        b.into_inner().unwrap()
    }

    #[test]
    fn metadata_accumulates_per_repository() {
        let root = tempfile::tempdir().unwrap();
        let store = Store::open(root.path()).unwrap();
        let blob = format!("sha256:{}", "b".repeat(64));
        let diff = format!("sha256:{}", "d".repeat(64));
        assert_eq!(store.diff_id_for_blob(&blob).unwrap(), None);
        store
            .add_blob_metadata(&blob, &diff, "docker.io/library/a")
            .unwrap();
        store
            .add_blob_metadata(&blob, &diff, "docker.io/library/b")
            .unwrap();
        store
            .add_blob_metadata(&blob, &diff, "docker.io/library/a")
            .unwrap();
        assert_eq!(store.diff_id_for_blob(&blob).unwrap(), Some(diff.clone()));
        let repos: Vec<String> = store
            .blobs_for_diff_id(&diff)
            .unwrap()
            .into_iter()
            .map(|m| m.source_repository)
            .collect();
        assert_eq!(repos, vec!["docker.io/library/b", "docker.io/library/a"]);
    }

    #[test]
    fn kept_layer_is_claimed_once() {
        let root = tempfile::tempdir().unwrap();
        let store = Store::open(root.path()).unwrap();
        let staged = store
            .stage_layer(&tar_of("f", b"hello")[..], "test")
            .unwrap();
        let blob = format!("sha256:{}", "c".repeat(64));
        let guard = store.keep_staged(&blob, &staged).unwrap();
        // Its owner is alive: nobody else may take it.
        assert!(store.take_kept_staged(&blob).is_none());
        drop(guard);
        let again = store.take_kept_staged(&blob).unwrap();
        assert_eq!(again.cache_id, staged.cache_id);
        assert_eq!(again.applied.diff_id, staged.applied.diff_id);
        assert!(store.take_kept_staged(&blob).is_none());
        let chain = store.commit_staged(again, None).unwrap();
        assert!(store.has_layer(&chain));
    }
}
