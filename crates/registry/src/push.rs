//! `push`: every layer of an image is made available in the target repository by the cheapest
//! way that works, then the config, then a Docker schema2 manifest under the tag:
//! 1. a blob already known for the layer's DiffID (`distribution/v2metadata-by-diffid`) that the
//!    repository has (`HEAD`) — "Layer already exists";
//! 2. such a blob in another repository of the same registry, cross-mounted
//!    (`POST …/blobs/uploads/?mount=&from=`) — "Mounted from …";
//! 3. else the layer is rebuilt from the store (tar-split), gzip-compressed and uploaded in
//!    chunks (`PATCH` with `Content-Range`, then `PUT ?digest=`) while its digest is computed:
//!    no temporary file. Small blobs (the config) go up in one monolithic `PUT`.
//!
//! Up to [`MAX_CONCURRENT_UPLOADS`] layers go up at once, on scoped threads.
use crate::client::{failure_of, header, RegistryClient, RequestBody};
use crate::error::{RegistryError, Result};
use crate::manifest::{Descriptor, ImageManifest, DOCKER_CONFIG, DOCKER_LAYER, DOCKER_MANIFEST};
use crate::session::Session;
use berth_image::{Reference, Store};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::sync::Mutex;
use ureq::http::Method;

/// Docker's default `max-concurrent-uploads`.
pub const MAX_CONCURRENT_UPLOADS: usize = 5;
/// Size of one `PATCH` of a chunked upload.
const CHUNK: usize = 16 << 20;

/// What happened to one layer during a push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushEvent {
    /// The repository has it already.
    AlreadyExists,
    /// Mounted from another repository of the registry (its path).
    Mounted(String),
    /// Upload starts.
    Uploading,
    /// This many more (compressed) bytes went up.
    Progress(u64),
    /// Uploaded.
    Pushed,
    /// A foreign (non-distributable) layer: named in the manifest with its `urls`, not uploaded.
    SkippedForeign,
}

/// Receives a push's messages.
pub trait PushProgress: Sync {
    fn status(&self, _line: &str) {}
    /// `short_id` is 12 hex digits of the layer's DiffID, as Docker shows it.
    fn layer(&self, _short_id: &str, _event: PushEvent) {}
}

/// One pushed tag.
#[derive(Debug, Clone)]
pub struct Pushed {
    pub reference: Reference,
    pub manifest_digest: String,
    pub manifest_size: usize,
}

fn sha256_of(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn short(digest: &str) -> String {
    digest
        .strip_prefix("sha256:")
        .unwrap_or(digest)
        .chars()
        .take(12)
        .collect()
}

/// Pushes `reference` (`name[:tag]`, `latest` by default), or with `all_tags` every local tag
/// of the repository `name`.
pub fn push(
    store: &Store,
    session: &Session,
    reference: &str,
    all_tags: bool,
    progress: &dyn PushProgress,
) -> Result<Vec<Pushed>> {
    let r = Reference::parse(reference)?;
    if r.digest.is_some() {
        return Err(RegistryError::Invalid(format!(
            "cannot push a digest reference: {reference}"
        )));
    }
    let targets: Vec<Reference> = if all_tags {
        if r.tag.is_some() {
            return Err(RegistryError::Invalid(
                "tag can't be used with --all-tags/-a".into(),
            ));
        }
        let repos = store.repositories()?;
        let mut tags: Vec<Reference> = repos
            .repositories
            .get(&r.familiar_name())
            .map(|m| {
                m.keys()
                    .filter(|k| !k.contains('@'))
                    .filter_map(|k| Reference::parse(k).ok())
                    .collect()
            })
            .unwrap_or_default();
        tags.sort_by(|a, b| a.tag.cmp(&b.tag));
        if tags.is_empty() {
            return Err(RegistryError::Image(berth_image::ImageError::NoSuchImage(
                r.familiar_name(),
            )));
        }
        tags
    } else {
        let mut t = r.clone();
        if t.tag.is_none() {
            progress.status("Using default tag: latest");
            t.tag = Some("latest".into());
        }
        vec![t]
    };
    // Resolve every image first: an unknown tag fails before anything is uploaded.
    let mut images = Vec::new();
    for t in &targets {
        images.push(store.resolve(&t.familiar_string())?);
    }
    progress.status(&format!(
        "The push refers to repository [{}]",
        r.full_name()
    ));
    let client = session.client(&r.domain, true)?;
    let mut out = Vec::new();
    for (t, img) in targets.into_iter().zip(images) {
        out.push(push_image(store, &client, &t, &img, progress)?);
    }
    Ok(out)
}

fn push_image(
    store: &Store,
    client: &RegistryClient,
    r: &Reference,
    img: &berth_image::Image,
    progress: &dyn PushProgress,
) -> Result<Pushed> {
    let diff_ids = img.config.rootfs.diff_ids.clone();
    let chains = berth_image::digest::chain_ids(&diff_ids);
    let results: Vec<Mutex<Option<Result<Descriptor>>>> =
        diff_ids.iter().map(|_| Mutex::new(None)).collect();
    let next = Mutex::new(0usize);
    std::thread::scope(|s| {
        for _ in 0..MAX_CONCURRENT_UPLOADS.min(diff_ids.len()) {
            s.spawn(|| loop {
                let i = {
                    let Ok(mut n) = next.lock() else { return };
                    let i = *n;
                    *n += 1;
                    i
                };
                if i >= diff_ids.len() {
                    return;
                }
                let res = push_layer(store, client, r, &diff_ids[i], &chains[i], progress);
                if let Ok(mut slot) = results[i].lock() {
                    *slot = Some(res);
                }
            });
        }
    });
    let mut layers = Vec::new();
    for slot in results {
        let res = slot.into_inner().ok().flatten().unwrap_or_else(|| {
            Err(RegistryError::Invalid(
                "a layer upload did not finish".into(),
            ))
        });
        layers.push(res?);
    }
    let config_digest = sha256_of(&img.raw_config);
    if blob_size(client, &r.path, &config_digest)?.is_none() {
        upload_monolithic(client, &r.path, &config_digest, &img.raw_config)?;
    }
    let manifest = ImageManifest {
        schema_version: 2,
        media_type: DOCKER_MANIFEST.into(),
        config: Descriptor {
            media_type: DOCKER_CONFIG.into(),
            digest: config_digest,
            size: img.raw_config.len() as u64,
            urls: vec![],
            annotations: Default::default(),
            platform: None,
        },
        layers,
    };
    let bytes = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| RegistryError::Invalid(format!("serialising the manifest: {e}")))?;
    let tag = r.tag.clone().unwrap_or_else(|| "latest".into());
    let url = client.url(&format!("/v2/{}/manifests/{tag}", r.path));
    let mut resp = client.send(
        Method::PUT,
        &url,
        &r.path,
        true,
        &[("Content-Type", DOCKER_MANIFEST.to_string())],
        RequestBody::Bytes(&bytes),
    )?;
    if resp.status().as_u16() != 201 {
        return Err(client.error_for(&r.path, &format!("manifest {tag}"), &mut resp));
    }
    let digest = sha256_of(&bytes);
    if let Some(d) = header(&resp, "docker-content-digest") {
        if d != digest {
            return Err(RegistryError::DigestMismatch {
                registry: client.domain().to_string(),
                repository: r.path.clone(),
                what: "manifest",
                digest,
                actual: d,
            });
        }
    }
    store.set_repo_digest(&img.id, &format!("{}@{digest}", r.familiar_name()))?;
    progress.status(&format!("{tag}: digest: {digest} size: {}", bytes.len()));
    Ok(Pushed {
        reference: r.clone(),
        manifest_digest: digest,
        manifest_size: bytes.len(),
    })
}

/// `HEAD` of a blob: its size when the repository has it.
fn blob_size(client: &RegistryClient, repository: &str, digest: &str) -> Result<Option<u64>> {
    let url = client.url(&format!("/v2/{repository}/blobs/{digest}"));
    let mut resp = client.send(
        Method::HEAD,
        &url,
        repository,
        true,
        &[],
        RequestBody::Empty,
    )?;
    match resp.status().as_u16() {
        200 => Ok(header(&resp, "content-length").and_then(|l| l.parse().ok())),
        404 => Ok(None),
        _ => Err(client.error_for(repository, &format!("blob {digest}"), &mut resp)),
    }
}

fn layer_descriptor(digest: &str, size: u64) -> Descriptor {
    Descriptor {
        media_type: DOCKER_LAYER.into(),
        digest: digest.to_string(),
        size,
        urls: vec![],
        annotations: Default::default(),
        platform: None,
    }
}

fn push_layer(
    store: &Store,
    client: &RegistryClient,
    r: &Reference,
    diff_id: &str,
    chain_id: &str,
    progress: &dyn PushProgress,
) -> Result<Descriptor> {
    let id = short(diff_id);
    if let Some(bytes) = store.layer_descriptor(chain_id)? {
        if let Ok(d) = serde_json::from_slice::<Descriptor>(&bytes) {
            if d.is_foreign() {
                progress.layer(&id, PushEvent::SkippedForeign);
                return Ok(d);
            }
        }
    }
    let full_name = r.full_name();
    let known = store.blobs_for_diff_id(diff_id)?;
    // Same repository first, then other repositories of this registry (mount candidates).
    for m in known
        .iter()
        .rev()
        .filter(|m| m.source_repository == full_name)
    {
        if let Some(size) = blob_size(client, &r.path, &m.digest)? {
            progress.layer(&id, PushEvent::AlreadyExists);
            return Ok(layer_descriptor(&m.digest, size));
        }
    }
    let prefix = format!("{}/", r.domain);
    for m in known.iter().rev() {
        let Some(from) = m.source_repository.strip_prefix(&prefix) else {
            continue;
        };
        if from == r.path {
            continue;
        }
        if let Some(size) = try_mount(client, &r.path, from, &m.digest)? {
            store.add_blob_metadata(&m.digest, diff_id, &full_name)?;
            progress.layer(&id, PushEvent::Mounted(from.to_string()));
            return Ok(layer_descriptor(&m.digest, size));
        }
    }
    // A blob known under any name may already be in this repository (pushed by someone else).
    for m in known.iter().rev() {
        if let Some(size) = blob_size(client, &r.path, &m.digest)? {
            store.add_blob_metadata(&m.digest, diff_id, &full_name)?;
            progress.layer(&id, PushEvent::AlreadyExists);
            return Ok(layer_descriptor(&m.digest, size));
        }
    }
    progress.layer(&id, PushEvent::Uploading);
    let location = start_upload(client, &r.path)?;
    let tick = |n: u64| progress.layer(&id, PushEvent::Progress(n));
    let mut uploader = ChunkUploader {
        client,
        repository: &r.path,
        location,
        buf: Vec::with_capacity(CHUNK),
        offset: 0,
        failure: None,
        tick: &tick,
    };
    let hashing = HashingWriter {
        inner: &mut uploader,
        hasher: Sha256::new(),
        count: 0,
    };
    let mut gz = flate2::write::GzEncoder::new(hashing, flate2::Compression::fast());
    let exported = store.export_layer(chain_id, &mut gz);
    let finished = gz.finish();
    let (digest, size) = match (exported, finished) {
        (Ok(_), Ok(h)) => (
            format!("sha256:{}", hex::encode(h.hasher.finalize())),
            h.count,
        ),
        (Err(e), _) => return Err(uploader.failure.take().unwrap_or(e.into())),
        (_, Err(e)) => {
            return Err(uploader.failure.take().unwrap_or_else(|| {
                RegistryError::io("compressing layer", chain_id.to_string())(e)
            }))
        }
    };
    uploader.finish(&digest)?;
    store.add_blob_metadata(&digest, diff_id, &full_name)?;
    progress.layer(&id, PushEvent::Pushed);
    Ok(layer_descriptor(&digest, size))
}

/// `POST …/blobs/uploads/?mount=<digest>&from=<repo>`: the blob's size when mounted.
fn try_mount(
    client: &RegistryClient,
    repository: &str,
    from: &str,
    digest: &str,
) -> Result<Option<u64>> {
    let url = client.url(&format!(
        "/v2/{repository}/blobs/uploads/?mount={digest}&from={from}"
    ));
    let scope = format!(
        "{} {}",
        crate::auth::repository_scope(repository, true),
        crate::auth::repository_scope(from, false)
    );
    let mut resp = client.send_scoped(Method::POST, &url, &scope, &[], RequestBody::Bytes(&[]))?;
    match resp.status().as_u16() {
        201 => blob_size(client, repository, digest),
        202 => {
            // Not mountable: the registry opened an upload instead; cancel it.
            if let Some(loc) = header(&resp, "location") {
                let _ = client.send(
                    Method::DELETE,
                    &client.url(&loc),
                    repository,
                    true,
                    &[],
                    RequestBody::Empty,
                );
            }
            Ok(None)
        }
        _ => {
            let f = failure_of(&mut resp);
            tracing::debug!(
                "mount of {digest} from {from} refused: {} {}",
                f.status,
                f.message
            );
            Ok(None)
        }
    }
}

fn start_upload(client: &RegistryClient, repository: &str) -> Result<String> {
    let url = client.url(&format!("/v2/{repository}/blobs/uploads/"));
    let mut resp = client.send(
        Method::POST,
        &url,
        repository,
        true,
        &[],
        RequestBody::Bytes(&[]),
    )?;
    if resp.status().as_u16() != 202 {
        return Err(client.error_for(repository, "starting an upload", &mut resp));
    }
    header(&resp, "location").ok_or_else(|| RegistryError::BadContent {
        registry: client.domain().to_string(),
        repository: repository.to_string(),
        what: "upload".into(),
        reason: "no Location in the answer".into(),
    })
}

fn with_digest(client: &RegistryClient, location: &str, digest: &str) -> String {
    let url = client.url(location);
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}digest={digest}")
}

/// Uploads a small blob in one `PUT`.
pub fn upload_monolithic(
    client: &RegistryClient,
    repository: &str,
    digest: &str,
    bytes: &[u8],
) -> Result<()> {
    let location = start_upload(client, repository)?;
    let mut resp = client.send(
        Method::PUT,
        &with_digest(client, &location, digest),
        repository,
        true,
        &[("Content-Type", "application/octet-stream".to_string())],
        RequestBody::Bytes(bytes),
    )?;
    if resp.status().as_u16() != 201 {
        return Err(client.error_for(repository, &format!("blob {digest}"), &mut resp));
    }
    Ok(())
}

struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    count: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// A `Write` that sends what it gets as `PATCH` chunks of an upload session.
struct ChunkUploader<'a> {
    client: &'a RegistryClient,
    repository: &'a str,
    location: String,
    buf: Vec<u8>,
    offset: u64,
    failure: Option<RegistryError>,
    tick: &'a (dyn Fn(u64) + Sync),
}

impl ChunkUploader<'_> {
    fn send_chunk(&mut self) -> Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let end = self.offset + self.buf.len() as u64 - 1;
        let url = self.client.url(&self.location);
        let mut resp = self.client.send(
            Method::PATCH,
            &url,
            self.repository,
            true,
            &[
                ("Content-Type", "application/octet-stream".to_string()),
                ("Content-Range", format!("{}-{end}", self.offset)),
            ],
            RequestBody::Bytes(&self.buf),
        )?;
        if resp.status().as_u16() != 202 {
            return Err(self.client.error_for(
                self.repository,
                "uploading a layer chunk",
                &mut resp,
            ));
        }
        if let Some(loc) = header(&resp, "location") {
            self.location = loc;
        }
        (self.tick)(self.buf.len() as u64);
        self.offset = end + 1;
        self.buf.clear();
        Ok(())
    }

    fn finish(&mut self, digest: &str) -> Result<()> {
        self.send_chunk()?;
        let url = with_digest(self.client, &self.location, digest);
        let mut resp = self.client.send(
            Method::PUT,
            &url,
            self.repository,
            true,
            &[],
            RequestBody::Bytes(&[]),
        )?;
        if resp.status().as_u16() != 201 {
            return Err(self.client.error_for(
                self.repository,
                &format!("blob {digest}"),
                &mut resp,
            ));
        }
        Ok(())
    }
}

impl Write for ChunkUploader<'_> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let room = CHUNK - self.buf.len();
        let n = room.min(data.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() >= CHUNK {
            if let Err(e) = self.send_chunk() {
                let msg = e.to_string();
                self.failure = Some(e);
                return Err(std::io::Error::other(msg));
            }
        }
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
