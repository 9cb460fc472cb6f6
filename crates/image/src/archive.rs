//! `load` and `save`: image archives. Loading reads the outer tar strictly in order (the manifest
//! may come after the layers), extracting every layer blob into a staging directory as it is met,
//! and commits layers only once the manifest is known and every digest checks out. Accepts
//! `docker save` archives (manifest.json, `<id>.json`, `<dir>/layer.tar`, symlinked duplicates)
//! and OCI image layouts (oci-layout, index.json, blobs/sha256), with gzip, zstd or plain layers.
//! Saving writes the `docker save` layout, layers rebuilt byte for byte from tar-split.
use crate::compression::{decompress, detect, Compression};
use crate::digest::{chain_id, hex_part, is_full_hex, sha256_digest, with_algo, HashingReader};
use crate::error::{ImageError, Result};
use crate::layers::StagedLayer;
use crate::reference::Reference;
use crate::side::{Chunk, ChunkPool, ChunkSource, SharedChunk, CHUNK};
use crate::store::Store;
use crate::tarstream::{EntryKind, TarError, TarReader};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};

mod parallel;
mod save;
use parallel::*;

/// Progress callbacks for per-layer bars.
pub trait Progress: Sync {
    fn start(&self, _name: &str, _total: u64) {}
    fn advance(&self, _name: &str, _bytes: u64) {}
    fn finish(&self, _name: &str) {}
}

/// Reports nothing.
pub struct NoProgress;
impl Progress for NoProgress {}

/// One image that `load` registered.
#[derive(Debug, Clone)]
pub struct LoadedImage {
    pub id: String,
    /// Familiar `name:tag`s it was tagged with.
    pub tags: Vec<String>,
    /// (tag, previous image id) for tags that moved away from another image.
    pub renamed: Vec<(String, String)>,
}

#[derive(Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
struct ManifestEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Descriptor {
    #[serde(default)]
    media_type: String,
    digest: String,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    #[serde(default)]
    platform: Option<Platform>,
}

#[derive(Deserialize)]
struct Platform {
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    os: String,
}

#[derive(Deserialize)]
struct OciIndex {
    #[serde(default)]
    manifests: Vec<Descriptor>,
}

#[derive(Deserialize)]
struct OciManifest {
    config: Descriptor,
    #[serde(default)]
    layers: Vec<Descriptor>,
}

struct Staged {
    layer: Option<StagedLayer>,
    /// sha256 of the member's bytes as stored (compressed or not).
    raw_digest: String,
    committed_as: Option<String>,
}

/// An image to register once the archive has been read.
struct Plan {
    config_path: String,
    expected_id: Option<String>,
    layer_paths: Vec<String>,
    tags: Vec<String>,
}

fn normalize(name: &[u8]) -> String {
    let s = String::from_utf8_lossy(name);
    s.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect::<Vec<_>>()
        .join("/")
}

fn resolve_link(from: &str, target: &str) -> String {
    let mut parts: Vec<&str> = if target.starts_with('/') {
        Vec::new()
    } else {
        from.split('/').collect::<Vec<_>>()
    };
    if !target.starts_with('/') {
        parts.pop();
    }
    for c in target.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    parts.join("/")
}

const MAX_METADATA: u64 = 64 << 20;

fn bad_archive(e: TarError) -> ImageError {
    match e {
        TarError::Io(io) => ImageError::io("reading", "archive")(io),
        TarError::Malformed(m) => ImageError::BadArchive(m),
    }
}

impl Store {
    /// Loads a `docker save` archive or OCI layout archive from `input` (optionally compressed).
    ///
    /// The outer archive is read once, in order, by this thread; each layer member is handed,
    /// in chunks through a bounded queue, to a worker thread of its own that decompresses,
    /// hashes, records tar-split and writes its files. Several layers are extracted at once
    /// (up to one per core), so a slow layer does not hold up the next one's reading. No file is
    /// fsynced on its own: committing the first layer flushes every extracted file with one
    /// `syncfs` before that layer is registered (see [`Store::commit_staged`]).
    pub fn load(&self, input: impl Read, progress: &dyn Progress) -> Result<Vec<LoadedImage>> {
        let outer = decompress(input)?;
        // `decompress` buffers already; member payloads are read from it in whole chunks, which
        // bypass its buffer (straight from the file into the chunk) once it is drained.
        let mut tar = TarReader::new(outer);
        let mut files: HashMap<String, Vec<u8>> = HashMap::new();
        let mut links: HashMap<String, String> = HashMap::new();
        let mut staged: HashMap<String, Staged> = HashMap::new();
        let result = (|| -> Result<Vec<LoadedImage>> {
            let extracted = std::thread::scope(|scope| {
                let mut layers = ParallelLayers::new(scope, self, progress);
                let read = Self::read_outer(&mut tar, &mut files, &mut links, &mut layers);
                let (done, failed) = layers.finish();
                for (name, layer) in done {
                    if let Some(old) = staged.insert(name, layer) {
                        if let Some(l) = old.layer {
                            self.discard_staged(l);
                        }
                    }
                }
                read.and(failed.map_or(Ok(()), Err))
            });
            extracted?;
            let plans = self.plan_images(&files)?;
            let mut loaded = Vec::new();
            for plan in plans {
                loaded.push(self.register_plan(&plan, &files, &links, &mut staged)?);
            }
            Ok(loaded)
        })();
        let mut committed = Vec::new();
        for (_, s) in staged.drain() {
            if let Some(l) = s.layer {
                self.discard_staged(l);
            }
            committed.extend(s.committed_as);
        }
        if result.is_err() && !committed.is_empty() {
            // Layers this load committed for an image it then failed to register go again
            // (only those no image or container references).
            if let Ok(_lock) = self.lock() {
                for chain in committed {
                    let _ = self.release_layers(&chain);
                }
            }
        }
        result
    }

    /// Reads the outer archive: metadata files and links into the maps, each layer member to a
    /// worker in `layers`.
    fn read_outer<'s: 'scope, 'scope, 'env, R: Read>(
        tar: &mut TarReader<R>,
        files: &mut HashMap<String, Vec<u8>>,
        links: &mut HashMap<String, String>,
        layers: &mut ParallelLayers<'s, 'scope, 'env>,
    ) -> Result<()> {
        while let Some(h) = tar.next_entry().map_err(bad_archive)? {
            let name = normalize(&h.name);
            match h.kind {
                EntryKind::Symlink => {
                    let target = String::from_utf8_lossy(&h.link_name).into_owned();
                    links.insert(name.clone(), resolve_link(&name, &target));
                    continue;
                }
                EntryKind::HardLink => {
                    links.insert(name, normalize(&h.link_name));
                    continue;
                }
                EntryKind::Regular => {}
                _ => continue,
            }
            let mut head = vec![0u8; h.size.min(512) as usize];
            let mut got = 0;
            while got < head.len() {
                let n = tar.read_payload(&mut head[got..]).map_err(bad_archive)?;
                if n == 0 {
                    break;
                }
                got += n;
            }
            let is_metadata = h.size < 512 || matches!(head.first(), Some(b'{') | Some(b'['));
            if is_metadata {
                if h.size > MAX_METADATA {
                    return Err(ImageError::BadArchive(format!(
                        "{name}: metadata file too large"
                    )));
                }
                let mut data = head;
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    let n = tar.read_payload(&mut buf).map_err(bad_archive)?;
                    if n == 0 {
                        break;
                    }
                    data.extend_from_slice(&buf[..n]);
                }
                files.insert(name, data);
                continue;
            }
            layers.progress.start(&name, h.size);
            layers.progress.advance(&name, head.len() as u64);
            let feed = layers.spawn(name.clone(), head)?;
            layers.feed(feed, tar, &name)?;
        }
        Ok(())
    }

    fn plan_images(&self, files: &HashMap<String, Vec<u8>>) -> Result<Vec<Plan>> {
        if let Some(m) = files.get("manifest.json") {
            let entries: Vec<ManifestEntry> = serde_json::from_slice(m)
                .map_err(|e| ImageError::BadArchive(format!("manifest.json: {e}")))?;
            return Ok(entries
                .into_iter()
                .map(|e| {
                    let stem = e
                        .config
                        .rsplit('/')
                        .next()
                        .unwrap_or("")
                        .trim_end_matches(".json")
                        .to_string();
                    Plan {
                        expected_id: is_full_hex(&stem).then(|| with_algo(&stem)),
                        config_path: normalize(e.config.as_bytes()),
                        layer_paths: e.layers.iter().map(|l| normalize(l.as_bytes())).collect(),
                        tags: e.repo_tags.unwrap_or_default(),
                    }
                })
                .collect());
        }
        let Some(index) = files.get("index.json") else {
            return Err(ImageError::BadArchive(
                "neither manifest.json nor index.json found: not a docker save or OCI archive"
                    .into(),
            ));
        };
        let mut plans = Vec::new();
        self.plan_oci_index(index, files, None, &mut plans, 0)?;
        Ok(plans)
    }

    fn plan_oci_index(
        &self,
        index: &[u8],
        files: &HashMap<String, Vec<u8>>,
        inherited_name: Option<String>,
        plans: &mut Vec<Plan>,
        depth: usize,
    ) -> Result<()> {
        if depth > 4 {
            return Err(ImageError::BadArchive("index nesting too deep".into()));
        }
        let idx: OciIndex = serde_json::from_slice(index)
            .map_err(|e| ImageError::BadArchive(format!("index.json: {e}")))?;
        let blob = |digest: &str| -> Result<&Vec<u8>> {
            let path = format!("blobs/sha256/{}", hex_part(digest));
            let data = files.get(&path).ok_or_else(|| {
                ImageError::BadArchive(format!("blob {digest} missing from archive"))
            })?;
            let actual = sha256_digest(data);
            if actual != with_algo(digest) {
                return Err(ImageError::DigestMismatch {
                    what: path,
                    expected: with_algo(digest),
                    actual,
                });
            }
            Ok(data)
        };
        let host_arch = crate::import::host_architecture();
        let mut nested_done = false;
        for d in &idx.manifests {
            let name = d
                .annotations
                .get("io.containerd.image.name")
                .cloned()
                .or_else(|| {
                    d.annotations
                        .get("org.opencontainers.image.ref.name")
                        .filter(|n| n.contains(':') || n.contains('/'))
                        .cloned()
                })
                .or_else(|| inherited_name.clone());
            let is_index =
                d.media_type.contains("image.index") || d.media_type.contains("manifest.list");
            if is_index {
                self.plan_oci_index(blob(&d.digest)?, files, name, plans, depth + 1)?;
                continue;
            }
            if let Some(p) = &d.platform {
                if depth > 0 && (p.os != "linux" || p.architecture != host_arch) {
                    continue;
                }
                if depth > 0 && nested_done {
                    continue;
                }
            }
            let manifest: OciManifest = serde_json::from_slice(blob(&d.digest)?)
                .map_err(|e| ImageError::BadArchive(format!("manifest {}: {e}", d.digest)))?;
            blob(&manifest.config.digest)?;
            plans.push(Plan {
                config_path: format!("blobs/sha256/{}", hex_part(&manifest.config.digest)),
                expected_id: Some(with_algo(&manifest.config.digest)),
                layer_paths: manifest
                    .layers
                    .iter()
                    .map(|l| format!("blobs/sha256/{}", hex_part(&l.digest)))
                    .collect(),
                tags: name.into_iter().collect(),
            });
            nested_done = true;
        }
        Ok(())
    }

    fn register_plan(
        &self,
        plan: &Plan,
        files: &HashMap<String, Vec<u8>>,
        links: &HashMap<String, String>,
        staged: &mut HashMap<String, Staged>,
    ) -> Result<LoadedImage> {
        let raw = files.get(&plan.config_path).ok_or_else(|| {
            ImageError::BadArchive(format!("config {} missing from archive", plan.config_path))
        })?;
        let id = sha256_digest(raw);
        if let Some(expected) = &plan.expected_id {
            if *expected != id {
                return Err(ImageError::DigestMismatch {
                    what: plan.config_path.clone(),
                    expected: expected.clone(),
                    actual: id,
                });
            }
        }
        let config: crate::config::ImageConfig =
            serde_json::from_slice(raw).map_err(|source| ImageError::BadConfig {
                id: id.clone(),
                source,
            })?;
        let diff_ids = &config.rootfs.diff_ids;
        if diff_ids.len() != plan.layer_paths.len() {
            return Err(ImageError::BadArchive(format!(
                "image {id} lists {} layers but its config has {} DiffIDs",
                plan.layer_paths.len(),
                diff_ids.len()
            )));
        }
        // Layers to commit go into one batch (one flush for all of them, see
        // `commit_staged_chain`), committed before a layer has to be re-extracted from an
        // earlier one and at the end.
        let mut batch: Vec<StagedLayer> = Vec::new();
        let mut batch_base: Option<String> = None;
        let mut blobs: Vec<(String, String)> = Vec::new();
        let result = (|| -> Result<()> {
            let mut parent: Option<String> = None;
            for (path, diff_id) in plan.layer_paths.iter().zip(diff_ids) {
                let chain = chain_id(parent.as_deref(), diff_id);
                let mut path = path.clone();
                for _ in 0..8 {
                    match links.get(&path) {
                        Some(t) => path = t.clone(),
                        None => break,
                    }
                }
                if batch.is_empty() && self.has_layer(&chain) {
                    parent = Some(chain);
                    continue;
                }
                if !staged.contains_key(&path) {
                    // Tiny layers (under one tar block, e.g. a gzip'd empty layer) were kept in
                    // memory.
                    if let Some(bytes) = files.get(&path) {
                        let layer = self.stage_layer(decompress(&bytes[..])?, &path)?;
                        let raw_digest = sha256_digest(bytes);
                        staged.insert(
                            path.clone(),
                            Staged {
                                layer: Some(layer),
                                raw_digest,
                                committed_as: None,
                            },
                        );
                    }
                }
                let st = staged.get_mut(&path).ok_or_else(|| {
                    ImageError::BadArchive(format!("layer {path} missing from archive"))
                })?;
                if let Some(expected) = path.strip_prefix("blobs/sha256/") {
                    if with_algo(expected) != st.raw_digest {
                        return Err(ImageError::DigestMismatch {
                            what: format!("blob {path}"),
                            expected: with_algo(expected),
                            actual: st.raw_digest.clone(),
                        });
                    }
                }
                let layer = match (st.layer.take(), &st.committed_as) {
                    (Some(l), _) => l,
                    (None, Some(prev)) => {
                        let prev = prev.clone();
                        self.commit_staged_chain(
                            std::mem::take(&mut batch),
                            batch_base.as_deref(),
                        )?;
                        self.restage_layer(&prev)?
                    }
                    (None, None) => {
                        return Err(ImageError::BadArchive(format!("layer {path} unusable")))
                    }
                };
                if layer.applied.diff_id != *diff_id {
                    let actual = layer.applied.diff_id.clone();
                    self.discard_staged(layer);
                    return Err(ImageError::DigestMismatch {
                        what: format!("layer {path}"),
                        expected: diff_id.clone(),
                        actual,
                    });
                }
                if let Some(blob) = path
                    .strip_prefix("blobs/sha256/")
                    .map(with_algo)
                    .filter(|d| d != diff_id)
                {
                    blobs.push((blob, diff_id.clone()));
                }
                if batch.is_empty() {
                    batch_base = parent.clone();
                }
                batch.push(layer);
                st.committed_as = Some(chain.clone());
                parent = Some(chain);
            }
            self.commit_staged_chain(std::mem::take(&mut batch), batch_base.as_deref())?;
            Ok(())
        })();
        if let Err(e) = result {
            for layer in batch {
                self.discard_staged(layer);
            }
            return Err(e);
        }
        for (blob, diff_id) in &blobs {
            // Remember which compressed blob gave this DiffID, as Docker's distribution
            // metadata does (a later push or pull can skip the work).
            self.record_blob_digest(blob, diff_id, plan.tags.first().map(String::as_str))?;
        }
        let id = self.add_image_raw(raw, None)?;
        let mut tags = Vec::new();
        let mut renamed = Vec::new();
        for t in &plan.tags {
            let r = Reference::parse_tagged(t)?;
            if let Some(old) = self.tag(&id, t)? {
                renamed.push((r.familiar_string(), old));
            }
            tags.push(r.familiar_string());
        }
        Ok(LoadedImage { id, tags, renamed })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn layer_tar(i: usize, files: usize) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for f in 0..files {
            let data = format!("layer {i} file {f}\n").repeat(100 * (f + 1));
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_mtime(1_700_000_000);
            h.set_entry_type(tar::EntryType::Regular);
            b.append_data(&mut h, format!("l{i}/f{f}"), data.as_bytes())
                .unwrap();
        }
        b.into_inner().unwrap()
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    /// A `docker save` archive of `layers` layers (odd ones gzip'd), manifest last; returns
    /// the archive and the image ID.
    fn archive(layers: usize) -> (Vec<u8>, String) {
        let tars: Vec<Vec<u8>> = (0..layers).map(|i| layer_tar(i, 3 + i % 4)).collect();
        let diff_ids: Vec<String> = tars.iter().map(|t| sha256_digest(t)).collect();
        let config = serde_json::to_vec(&serde_json::json!({
            "architecture": "amd64", "os": "linux", "config": {},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }))
        .unwrap();
        let id = sha256_digest(&config);
        let mut b = tar::Builder::new(Vec::new());
        let mut add = |name: &str, data: &[u8]| {
            let mut h = tar::Header::new_ustar();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_entry_type(tar::EntryType::Regular);
            b.append_data(&mut h, name, data).unwrap();
        };
        let mut paths = Vec::new();
        for (i, t) in tars.iter().enumerate() {
            let path = format!("{i}/layer.tar");
            let bytes = if i % 2 == 1 { gzip(t) } else { t.clone() };
            add(&path, &bytes);
            paths.push(path);
        }
        add(&format!("{}.json", hex_part(&id)), &config);
        let manifest = serde_json::to_vec(&serde_json::json!([
            {"Config": format!("{}.json", hex_part(&id)), "RepoTags": ["t:1"], "Layers": paths}
        ]))
        .unwrap();
        add("manifest.json", &manifest);
        (b.into_inner().unwrap(), id)
    }

    fn layer_dirs(store: &Store) -> usize {
        std::fs::read_dir(store.overlay_dir())
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_name() != "l")
            .count()
    }

    #[test]
    fn loads_many_layers_in_parallel_with_dockers_id() {
        let root = tempfile::tempdir().unwrap();
        let store = Store::open(root.path()).unwrap();
        let (bytes, id) = archive(12);
        let loaded = store.load(&bytes[..], &NoProgress).unwrap();
        assert_eq!(loaded.len(), 1);
        assert_eq!(loaded[0].id, id);
        let image = store.image(&id).unwrap();
        let top = store.layer_diff_dir(&image.top_layer().unwrap()).unwrap();
        assert!(top.join("l11/f2").is_file());
        assert_eq!(layer_dirs(&store), 12);
    }

    #[test]
    fn a_plain_member_reaches_the_extractor_in_the_buffers_it_was_read_into() {
        let (tx, rx) = std::sync::mpsc::sync_channel(4);
        let pool = ChunkPool::new();
        let mut buf = pool.buffer();
        buf[..4].copy_from_slice(b"tail");
        let chunk = pool.share(buf, 4);
        tx.send(Piece::Data(chunk.clone())).unwrap();
        tx.send(Piece::End).unwrap();
        let mut r = ChunkReader {
            rx,
            current: Some(Chunk::from_vec(b"head".to_vec())),
            pos: 0,
            ended: false,
        };
        assert_eq!(r.head(), b"head");
        assert_eq!(r.next_chunk().unwrap().unwrap().bytes(), b"head");
        let got = r.next_chunk().unwrap().unwrap();
        assert!(std::sync::Arc::ptr_eq(&got, &chunk));
        assert!(r.next_chunk().unwrap().is_none());
        // Read (for a decompressor) goes across the head and the chunks; a queue that closes
        // without the end marker is a truncated archive.
        let (tx, rx) = std::sync::mpsc::sync_channel(4);
        tx.send(Piece::Data(chunk)).unwrap();
        drop(tx);
        let mut r = ChunkReader {
            rx,
            current: Some(Chunk::from_vec(b"head".to_vec())),
            pos: 0,
            ended: false,
        };
        let mut out = [0u8; 8];
        let mut got = 0;
        while got < 8 {
            got += r.read(&mut out[got..]).unwrap();
        }
        assert_eq!(&out, b"headtail");
        let err = r.read(&mut out).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn a_truncated_archive_fails_and_leaves_no_layer() {
        let root = tempfile::tempdir().unwrap();
        let store = Store::open(root.path()).unwrap();
        let (bytes, _) = archive(6);
        for cut in [bytes.len() / 3, bytes.len() / 2, bytes.len() - 2048] {
            assert!(
                store.load(&bytes[..cut], &NoProgress).is_err(),
                "cut at {cut}"
            );
            assert_eq!(layer_dirs(&store), 0, "cut at {cut}");
        }
    }
}
