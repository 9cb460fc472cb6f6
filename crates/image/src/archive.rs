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
use crate::store::Store;
use crate::tarstream::{EntryKind, TarError, TarReader};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};

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

struct PayloadReader<'a, R: Read> {
    tar: &'a mut TarReader<R>,
    name: &'a str,
    progress: &'a dyn Progress,
}

impl<R: Read> Read for PayloadReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.tar.read_payload(buf).map_err(|e| match e {
            TarError::Io(io) => io,
            TarError::Malformed(m) => std::io::Error::new(std::io::ErrorKind::InvalidData, m),
        })?;
        self.progress.advance(self.name, n as u64);
        Ok(n)
    }
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
    pub fn load(&self, input: impl Read, progress: &dyn Progress) -> Result<Vec<LoadedImage>> {
        let outer = decompress(input)?;
        let mut tar = TarReader::new(std::io::BufReader::with_capacity(1 << 20, outer), false);
        let mut files: HashMap<String, Vec<u8>> = HashMap::new();
        let mut links: HashMap<String, String> = HashMap::new();
        let mut staged: HashMap<String, Staged> = HashMap::new();
        let result = (|| -> Result<Vec<LoadedImage>> {
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
                progress.start(&name, h.size);
                progress.advance(&name, head.len() as u64);
                let compression = detect(&head)?;
                let payload = PayloadReader {
                    tar: &mut tar,
                    name: &name,
                    progress,
                };
                let raw = std::io::Cursor::new(head).chain(payload);
                let (layer, raw_digest) = if compression == Compression::None {
                    let l = self.stage_layer(raw, &name)?;
                    let d = l.applied.diff_id.clone();
                    (l, d)
                } else {
                    let mut hashing = HashingReader::new(raw);
                    let l = self.stage_layer(decompress(&mut hashing)?, &name);
                    let l = l?;
                    // Drain whatever the decompressor left (trailing padding) into the hash.
                    std::io::copy(&mut hashing, &mut std::io::sink())
                        .map_err(ImageError::io("reading", &name))?;
                    (l, hashing.finish().0)
                };
                progress.finish(&name);
                if let Some(old) = staged.insert(
                    name.clone(),
                    Staged {
                        layer: Some(layer),
                        raw_digest,
                        committed_as: None,
                    },
                ) {
                    if let Some(l) = old.layer {
                        self.discard_staged(l);
                    }
                }
            }
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
            if self.has_layer(&chain) {
                parent = Some(chain);
                continue;
            }
            if !staged.contains_key(&path) {
                // Tiny layers (under one tar block, e.g. a gzip'd empty layer) were kept in memory.
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
                (None, Some(prev)) => self.restage_layer(prev)?,
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
            let blob_digest = path
                .strip_prefix("blobs/sha256/")
                .map(with_algo)
                .filter(|d| d != diff_id);
            let committed = self.commit_staged(layer, parent.as_deref())?;
            if let Some(blob) = blob_digest {
                // Remember which compressed blob gave this DiffID, as Docker's distribution
                // metadata does (a later push or pull can skip the work).
                self.record_blob_digest(&blob, diff_id, plan.tags.first().map(String::as_str))?;
            }
            st.committed_as = Some(committed.clone());
            parent = Some(committed);
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

    /// Writes a `docker save` archive of `references` to `out`.
    pub fn save(&self, references: &[String], out: &mut dyn Write) -> Result<()> {
        let mut order: Vec<String> = Vec::new();
        let mut tags: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for r in references {
            let id = self.resolve_id(r)?;
            if !order.contains(&id) {
                order.push(id.clone());
            }
            let entry = tags.entry(id.clone()).or_default();
            if let Ok(parsed) = Reference::parse_tagged(r) {
                if self.lookup_reference(&parsed)?.as_deref() == Some(id.as_str())
                    && parsed.tag.is_some()
                {
                    let t = parsed.familiar_string();
                    if !entry.contains(&t) {
                        entry.push(t);
                    }
                }
            }
        }
        let mut w = ArchiveWriter {
            out,
            written: Default::default(),
        };
        let mut manifest = Vec::new();
        let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for id in &order {
            let img = self.image(id)?;
            let mtime = img
                .config
                .created_time()
                .map(|t| t.timestamp().max(0) as u64)
                .unwrap_or(0);
            let mut layer_paths = Vec::new();
            for (chain, diff) in img.chain_ids().iter().zip(&img.config.rootfs.diff_ids) {
                let dir = hex_part(diff).to_string();
                let path = format!("{dir}/layer.tar");
                if w.written.insert(path.clone()) {
                    w.entry(
                        &format!("{dir}/"),
                        tar::EntryType::Directory,
                        0,
                        mtime,
                        &mut |_| Ok(0),
                    )?;
                    w.entry(
                        &format!("{dir}/VERSION"),
                        tar::EntryType::Regular,
                        3,
                        mtime,
                        &mut |o| {
                            o.write_all(b"1.0")
                                .map_err(ImageError::io("writing", "archive"))?;
                            Ok(3)
                        },
                    )?;
                    let size = self.layer_tar_size(chain)?;
                    w.entry(&path, tar::EntryType::Regular, size, mtime, &mut |o| {
                        self.export_layer(chain, o)
                    })?;
                }
                layer_paths.push(path);
            }
            let config_path = format!("{}.json", hex_part(id));
            let raw = img.raw_config.clone();
            w.entry(
                &config_path,
                tar::EntryType::Regular,
                raw.len() as u64,
                mtime,
                &mut |o| {
                    o.write_all(&raw)
                        .map_err(ImageError::io("writing", "archive"))?;
                    Ok(raw.len() as u64)
                },
            )?;
            let image_tags = tags.get(id).cloned().unwrap_or_default();
            if let Some(top) = layer_paths.last() {
                for t in &image_tags {
                    if let Ok(r) = Reference::parse_tagged(t) {
                        repositories.entry(r.familiar_name()).or_default().insert(
                            r.tag.clone().unwrap_or_default(),
                            top.trim_end_matches("/layer.tar").to_string(),
                        );
                    }
                }
            }
            manifest.push(ManifestEntry {
                config: config_path,
                repo_tags: (!image_tags.is_empty()).then_some(image_tags),
                layers: layer_paths,
            });
        }
        let m = serde_json::to_vec(&manifest).map_err(|e| ImageError::BadArchive(e.to_string()))?;
        w.entry(
            "manifest.json",
            tar::EntryType::Regular,
            m.len() as u64,
            0,
            &mut |o| {
                o.write_all(&m)
                    .map_err(ImageError::io("writing", "archive"))?;
                Ok(m.len() as u64)
            },
        )?;
        if !repositories.is_empty() {
            let r = serde_json::to_vec(&repositories)
                .map_err(|e| ImageError::BadArchive(e.to_string()))?;
            w.entry(
                "repositories",
                tar::EntryType::Regular,
                r.len() as u64,
                0,
                &mut |o| {
                    o.write_all(&r)
                        .map_err(ImageError::io("writing", "archive"))?;
                    Ok(r.len() as u64)
                },
            )?;
        }
        w.out
            .write_all(&[0u8; 1024])
            .map_err(ImageError::io("writing", "archive"))?;
        w.out
            .flush()
            .map_err(ImageError::io("writing", "archive"))?;
        Ok(())
    }
}

struct ArchiveWriter<'a> {
    out: &'a mut dyn Write,
    written: std::collections::HashSet<String>,
}

type Body<'b> = dyn FnMut(&mut dyn Write) -> Result<u64> + 'b;

impl ArchiveWriter<'_> {
    fn entry(
        &mut self,
        path: &str,
        kind: tar::EntryType,
        size: u64,
        mtime: u64,
        body: &mut Body<'_>,
    ) -> Result<()> {
        let mut h = tar::Header::new_ustar();
        h.set_path(path)
            .map_err(ImageError::io("archive path", path))?;
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_mode(if kind == tar::EntryType::Directory {
            0o755
        } else {
            0o644
        });
        h.set_mtime(mtime);
        h.set_cksum();
        self.out
            .write_all(h.as_bytes())
            .map_err(ImageError::io("writing", "archive"))?;
        let written = body(self.out)?;
        if written != size {
            return Err(ImageError::Export {
                chain_id: path.to_string(),
                reason: format!("wrote {written} bytes, expected {size}"),
            });
        }
        let pad = (512 - size % 512) % 512;
        self.out
            .write_all(&vec![0u8; pad as usize])
            .map_err(ImageError::io("writing", "archive"))?;
        Ok(())
    }
}
