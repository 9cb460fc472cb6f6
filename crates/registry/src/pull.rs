//! `pull`: manifest (choosing a platform from an index), config, then every missing layer
//! streamed from the registry through digest check, decompression and the store's layer applier
//! in one pass, up to [`MAX_CONCURRENT_DOWNLOADS`] at a time on scoped threads, largest first,
//! while a flusher thread writes finished layers to disk so the commit's flush finds little
//! left to do. Layers whose
//! ChainID the store already has are skipped ("Already exists"). Nothing becomes visible until
//! every layer is verified: layers are committed bottom-up, then the image, its tag and its
//! `RepoDigest`. A failed pull throws its staged layers away; a pull killed halfway leaves its
//! verified layers kept (see `berth_image::distribution`) for the next pull to commit.
use crate::blob::{fetch_small, BlobReader};
use crate::client::{header, RegistryClient, RequestBody};
use crate::error::{RegistryError, Result};
use crate::manifest::{self, Descriptor, ImageManifest, Manifest, Platform, ACCEPT_MANIFESTS};
use crate::session::{Endpoint, Session};
use berth_image::distribution::KeptLayer;
use berth_image::{ImageConfig, Reference, StagedLayer, Store};
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::sync::Mutex;
use ureq::http::Method;

/// Layers downloaded at once: containers/image's default (Docker's is 3). More streams than
/// cores keep every core busy to the end of a pull whose layers differ in size and cost.
pub const MAX_CONCURRENT_DOWNLOADS: usize = 6;

/// What happens to one layer during a pull.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerEvent {
    /// The store already has it.
    AlreadyExists,
    /// Download starts; the blob has this many bytes.
    Downloading { total: u64 },
    /// This many more bytes arrived.
    Progress { bytes: u64 },
    /// Verified and extracted (waiting for the layers below to be committed).
    Extracted,
    /// Kept from an earlier, interrupted pull: not downloaded again.
    Resumed,
    /// Committed to the store.
    Complete,
}

/// Receives a pull's messages; implementations draw bars or print lines.
pub trait PullProgress: Sync {
    /// A status line (`latest: Pulling from library/busybox`).
    fn status(&self, _line: &str) {}
    /// An event for the layer `short_id` (12 hex digits of its blob digest).
    fn layer(&self, _short_id: &str, _event: LayerEvent) {}
}

/// Reports nothing.
pub struct Silent;
impl PullProgress for Silent {}

/// Options of `pull`.
#[derive(Debug, Clone, Default)]
pub struct PullOptions {
    /// `--platform`; the host's when None.
    pub platform: Option<Platform>,
    /// `--all-tags`.
    pub all_tags: bool,
}

/// One image a pull produced.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// The normalised reference pulled (with its tag or digest).
    pub reference: Reference,
    pub image_id: String,
    /// Digest of the manifest (or index) the reference pointed at: the RepoDigest.
    pub manifest_digest: String,
    /// False when the image and its reference were already there ("Image is up to date").
    pub downloaded: bool,
}

fn short(digest: &str) -> String {
    let h = digest.strip_prefix("sha256:").unwrap_or(digest);
    h.chars().take(12).collect()
}

fn sha256_of(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Pulls `reference` (Docker's forms: `busybox`, `host:5000/x:tag`, `x@sha256:…`).
pub fn pull(
    store: &Store,
    session: &Session,
    reference: &str,
    options: &PullOptions,
    progress: &dyn PullProgress,
) -> Result<Vec<Pulled>> {
    let mut r = Reference::parse(reference)?;
    if options.all_tags {
        if r.tag.is_some() || r.digest.is_some() {
            return Err(RegistryError::Invalid(
                "tag can't be used with --all-tags/-a".into(),
            ));
        }
    } else if r.tag.is_none() && r.digest.is_none() {
        progress.status("Using default tag: latest");
        r.tag = Some("latest".into());
    }
    let endpoints = session.pull_endpoints(&r.domain);
    let progress = &OnceStatus {
        inner: progress,
        shown: Mutex::new(HashSet::new()),
    };
    let targets: Vec<Reference> = if options.all_tags {
        from_endpoints(session, &r.domain, &endpoints, |c| list_tags(c, &r))?
            .into_iter()
            .map(|t| Reference {
                tag: Some(t),
                ..r.clone()
            })
            .collect()
    } else {
        vec![r.clone()]
    };
    let mut out = Vec::new();
    for t in targets {
        out.push(from_endpoints(session, &r.domain, &endpoints, |c| {
            pull_one(store, c, &t, options, progress)
        })?);
    }
    Ok(out)
}

/// Runs `work` against each endpoint in turn (Docker Hub's mirrors, then Hub) until one serves
/// it: as Docker does, a mirror that is down, lacks the image or fails in any way on the
/// registry's side sends the pull to the next endpoint; local failures do not.
fn from_endpoints<T>(
    session: &Session,
    domain: &str,
    endpoints: &[Endpoint],
    mut work: impl FnMut(&RegistryClient) -> Result<T>,
) -> Result<T> {
    let mut last_err = None;
    for (n, endpoint) in endpoints.iter().enumerate() {
        let last = n + 1 == endpoints.len();
        match session.client_for(domain, endpoint).and_then(|c| work(&c)) {
            Ok(v) => return Ok(v),
            Err(e) if !last && registry_side(&e) => {
                tracing::info!("{endpoint}: {e}; attempting next endpoint");
                last_err = Some(e);
            }
            Err(e) => return Err(e),
        }
    }
    Err(last_err.unwrap_or_else(|| RegistryError::Invalid(format!("no endpoint for {domain}"))))
}

/// True for failures of the registry (or the way to it) that another endpoint may not share.
fn registry_side(e: &RegistryError) -> bool {
    !matches!(
        e,
        RegistryError::Image(_)
            | RegistryError::Io { .. }
            | RegistryError::BadConfig { .. }
            | RegistryError::NoPlatform { .. }
            | RegistryError::BadPlatform { .. }
            | RegistryError::CredentialHelper { .. }
            | RegistryError::Invalid(_)
    )
}

/// Passes a pull's messages on, each status line once: a pull that falls back from a mirror to
/// the next endpoint does not announce itself twice.
struct OnceStatus<'a> {
    inner: &'a dyn PullProgress,
    shown: Mutex<HashSet<String>>,
}

impl PullProgress for OnceStatus<'_> {
    fn status(&self, line: &str) {
        let new = self
            .shown
            .lock()
            .map(|mut s| s.insert(line.to_string()))
            .unwrap_or(true);
        if new {
            self.inner.status(line);
        }
    }
    fn layer(&self, short_id: &str, event: LayerEvent) {
        self.inner.layer(short_id, event);
    }
}

/// Tags of a repository (`GET /v2/<name>/tags/list`), following `Link` pagination.
pub fn list_tags(client: &RegistryClient, r: &Reference) -> Result<Vec<String>> {
    #[derive(serde::Deserialize)]
    struct Tags {
        #[serde(default)]
        tags: Option<Vec<String>>,
    }
    let mut url = client.url(&format!("/v2/{}/tags/list", r.path));
    let mut out = Vec::new();
    loop {
        let mut resp = client.send(Method::GET, &url, &r.path, false, &[], RequestBody::Empty)?;
        if resp.status().as_u16() != 200 {
            return Err(client.error_for(&r.path, "listing tags", &mut resp));
        }
        let next = header(&resp, "link").and_then(|l| {
            l.split(';').next().map(|u| {
                u.trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_string()
            })
        });
        let tags: Tags = resp
            .body_mut()
            .with_config()
            .limit(16 << 20)
            .read_to_vec()
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
            .map_err(|e| RegistryError::BadContent {
                registry: client.domain().to_string(),
                repository: r.path.clone(),
                what: "tag list".into(),
                reason: e.to_string(),
            })?;
        out.extend(tags.tags.unwrap_or_default());
        match next {
            Some(n) if !n.is_empty() => url = client.url(&n),
            _ => break,
        }
    }
    Ok(out)
}

/// Fetches a manifest by tag or digest: (bytes, content type, digest of the bytes).
pub fn fetch_manifest(
    client: &RegistryClient,
    r: &Reference,
    target: &str,
) -> Result<(Vec<u8>, String, String)> {
    let url = client.url(&format!("/v2/{}/manifests/{target}", r.path));
    let mut resp = client.send(
        Method::GET,
        &url,
        &r.path,
        false,
        &[("Accept", ACCEPT_MANIFESTS.to_string())],
        RequestBody::Empty,
    )?;
    let status = resp.status().as_u16();
    if status == 404 {
        let f = crate::client::failure_of(&mut resp);
        if f.code == "NAME_UNKNOWN" {
            return Err(RegistryError::Denied {
                registry: client.domain().to_string(),
                repository: r.path.clone(),
                message: f.message,
            });
        }
        let mut shown = r.clone();
        if target.starts_with("sha256:") && shown.tag.is_none() {
            shown.digest = Some(target.to_string());
        }
        return Err(RegistryError::ManifestUnknown {
            reference: format!("{}{}", shown.full_name(), suffix(&shown)),
            message: f.message,
        });
    }
    if status != 200 {
        return Err(client.error_for(&r.path, &format!("manifest {target}"), &mut resp));
    }
    let content_type = header(&resp, "content-type").unwrap_or_default();
    let bytes = resp
        .body_mut()
        .with_config()
        .limit(4 << 20)
        .read_to_vec()
        .map_err(|e| RegistryError::BadContent {
            registry: client.domain().to_string(),
            repository: r.path.clone(),
            what: format!("manifest {target}"),
            reason: e.to_string(),
        })?;
    let digest = sha256_of(&bytes);
    if target.starts_with("sha256:") && digest != target {
        return Err(RegistryError::DigestMismatch {
            registry: client.domain().to_string(),
            repository: r.path.clone(),
            what: "manifest",
            digest: target.to_string(),
            actual: digest,
        });
    }
    Ok((bytes, content_type, digest))
}

fn suffix(r: &Reference) -> String {
    match (&r.tag, &r.digest) {
        (Some(t), _) => format!(":{t}"),
        (None, Some(d)) => format!("@{d}"),
        _ => String::new(),
    }
}

fn bad_content(
    client: &RegistryClient,
    r: &Reference,
    what: &str,
    reason: String,
) -> RegistryError {
    RegistryError::BadContent {
        registry: client.domain().to_string(),
        repository: r.path.clone(),
        what: what.to_string(),
        reason,
    }
}

/// Resolves `r` to an image manifest for the wanted platform: (manifest, RepoDigest).
pub fn resolve_image_manifest(
    client: &RegistryClient,
    r: &Reference,
    platform: Option<&Platform>,
) -> Result<(ImageManifest, String)> {
    let target = r
        .digest
        .clone()
        .or_else(|| r.tag.clone())
        .unwrap_or_else(|| "latest".into());
    let (bytes, ctype, digest) = fetch_manifest(client, r, &target)?;
    match manifest::parse(&ctype, &bytes).map_err(|e| bad_content(client, r, "manifest", e))? {
        Manifest::Image(m) => Ok((*m, digest)),
        Manifest::Index(idx) => {
            let want = platform.cloned().unwrap_or_else(Platform::host);
            let entry = idx.choose(&want).ok_or_else(|| RegistryError::NoPlatform {
                platform: want.display(),
            })?;
            let (bytes, ctype, _) = fetch_manifest(client, r, &entry.digest)?;
            match manifest::parse(&ctype, &bytes)
                .map_err(|e| bad_content(client, r, "manifest", e))?
            {
                Manifest::Image(m) => Ok((*m, digest)),
                Manifest::Index(_) => Err(bad_content(
                    client,
                    r,
                    &format!("manifest {}", entry.digest),
                    "an index inside an index is not supported".into(),
                )),
            }
        }
    }
}

fn pull_one(
    store: &Store,
    client: &RegistryClient,
    r: &Reference,
    options: &PullOptions,
    progress: &dyn PullProgress,
) -> Result<Pulled> {
    let shown = r
        .tag
        .clone()
        .or_else(|| r.digest.clone())
        .unwrap_or_default();
    progress.status(&format!("{shown}: Pulling from {}", repo_for_status(r)));
    let (m, manifest_digest) = resolve_image_manifest(client, r, options.platform.as_ref())?;
    let config_bytes = fetch_small(client, &r.path, &m.config.digest, m.config.size)?;
    let config: ImageConfig = serde_json::from_slice(&config_bytes).map_err(|e| {
        bad_content(
            client,
            r,
            &format!("config {}", m.config.digest),
            e.to_string(),
        )
    })?;
    let layers: Vec<&Descriptor> = m.layers.iter().collect();
    let diff_ids = &config.rootfs.diff_ids;
    if diff_ids.len() != layers.len() {
        return Err(bad_content(
            client,
            r,
            &format!("manifest {manifest_digest}"),
            format!(
                "{} layers but the config lists {} DiffIDs",
                layers.len(),
                diff_ids.len()
            ),
        ));
    }
    let chains = berth_image::digest::chain_ids(diff_ids);
    let image_id = sha256_of(&config_bytes);
    let already = store.image(&image_id).is_ok();
    // Layers below the first missing ChainID are all there (a chain implies its parents).
    let first_missing = chains
        .iter()
        .position(|c| !store.has_layer(c))
        .unwrap_or(chains.len());
    for l in &layers[..first_missing] {
        progress.layer(&short(&l.digest), LayerEvent::AlreadyExists);
    }
    let staged = download_layers(
        store,
        client,
        r,
        &layers[first_missing..],
        &diff_ids[first_missing..],
        progress,
    )?;
    // Commit bottom-up in one batch (one flush of the extracted files for all of them); on
    // failure the store throws the uncommitted rest away. The kept records' locks are held
    // until then, so no other pull claims these directories meanwhile.
    let parent = first_missing.checked_sub(1).map(|i| chains[i].clone());
    let (staged, _kept): (Vec<_>, Vec<_>) = staged.into_iter().unzip();
    let committed = store.commit_staged_chain(staged, parent.as_deref());
    for l in &layers[first_missing..] {
        store.forget_kept_staged(&l.digest);
    }
    let committed = committed?;
    for (l, chain) in layers[first_missing..].iter().zip(&committed) {
        if l.is_foreign() {
            // A push repeats this entry rather than uploading the layer.
            let d = serde_json::to_vec(l)
                .map_err(|e| RegistryError::Invalid(format!("serialising a descriptor: {e}")))?;
            store.set_layer_descriptor(chain, &d)?;
        }
        progress.layer(&short(&l.digest), LayerEvent::Complete);
    }
    for (l, d) in layers.iter().zip(diff_ids) {
        store.add_blob_metadata(&l.digest, d, &r.full_name())?;
    }
    let id = store.add_image_raw(&config_bytes, None)?;
    let name = r.familiar_name();
    let mut changed = !already;
    if let Some(t) = &r.tag {
        let tag_ref = format!("{name}:{t}");
        let before = store.resolve_id(&tag_ref).ok();
        store.tag(&id, &tag_ref)?;
        changed |= before.as_deref() != Some(id.as_str());
    }
    let digest_ref = format!("{name}@{manifest_digest}");
    store.set_repo_digest(&id, &digest_ref)?;
    progress.status(&format!("Digest: {manifest_digest}"));
    Ok(Pulled {
        reference: r.clone(),
        image_id: id,
        manifest_digest,
        downloaded: changed,
    })
}

fn repo_for_status(r: &Reference) -> String {
    if r.domain == crate::settings::DOCKER_HUB {
        r.path.clone()
    } else {
        r.full_name()
    }
}

/// A staged layer with the guard of its kept record.
type Fetched = (StagedLayer, KeptLayer);

/// Downloads, verifies and stages `layers` (whose DiffIDs the config lists as `diff_ids`),
/// concurrently; returns them in order, or the first error in layer order after discarding all.
fn download_layers(
    store: &Store,
    client: &RegistryClient,
    r: &Reference,
    layers: &[&Descriptor],
    diff_ids: &[String],
    progress: &dyn PullProgress,
) -> Result<Vec<Fetched>> {
    let results: Vec<Mutex<Option<Result<Fetched>>>> =
        layers.iter().map(|_| Mutex::new(None)).collect();
    // Largest first: the longest transfer starts at once instead of ending the pull alone.
    let mut order: Vec<usize> = (0..layers.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(layers[i].size));
    let next = Mutex::new(0usize);
    let workers = MAX_CONCURRENT_DOWNLOADS.min(layers.len());
    let (staged_tx, staged_rx) = std::sync::mpsc::channel::<()>();
    std::thread::scope(|s| {
        for _ in 0..workers {
            let staged_tx = staged_tx.clone();
            let (order, next, results) = (&order, &next, &results);
            s.spawn(move || loop {
                let i = {
                    let Ok(mut n) = next.lock() else { return };
                    let Some(&i) = order.get(*n) else { return };
                    *n += 1;
                    i
                };
                let res = fetch_layer(store, client, r, layers[i], &diff_ids[i], progress);
                if res.is_ok() {
                    let _ = staged_tx.send(());
                }
                if let Ok(mut slot) = results[i].lock() {
                    *slot = Some(res);
                }
            });
        }
        drop(staged_tx);
        // Writes finished layers to disk while the others download (ends with the workers).
        s.spawn(move || {
            while staged_rx.recv().is_ok() {
                while staged_rx.try_recv().is_ok() {}
                if let Err(e) = store.flush_staged() {
                    tracing::debug!("flushing staged layers: {e}");
                }
            }
        });
    });
    let discard = |i: usize, (s, _kept): Fetched| {
        store.forget_kept_staged(&layers[i].digest);
        store.discard_staged(s);
    };
    let mut staged = Vec::new();
    let mut first_err = None;
    for (i, slot) in results.into_iter().enumerate() {
        let res = slot.into_inner().ok().flatten().unwrap_or_else(|| {
            Err(RegistryError::Invalid(format!(
                "layer {} was not downloaded",
                layers[i].digest
            )))
        });
        match res {
            Ok(s) if first_err.is_none() => staged.push((i, s)),
            Ok(s) => discard(i, s),
            Err(e) => {
                if first_err.is_none() {
                    first_err = Some(e);
                }
            }
        }
    }
    if let Some(e) = first_err {
        for (i, s) in staged {
            discard(i, s);
        }
        return Err(e);
    }
    Ok(staged.into_iter().map(|(_, s)| s).collect())
}

/// One layer: reuse a kept one, else stream blob → hash → decompress → extract (continuing a
/// partial download a killed pull left), then verify the blob digest and the DiffID before
/// keeping it for commit. A continued download that fails verification is retried once from
/// the blob's start: the kept prefix, not the registry, may be what is wrong.
fn fetch_layer(
    store: &Store,
    client: &RegistryClient,
    r: &Reference,
    layer: &Descriptor,
    diff_id: &str,
    progress: &dyn PullProgress,
) -> Result<Fetched> {
    let id = short(&layer.digest);
    if let Some(kept) = store.take_kept_staged(&layer.digest) {
        if kept.applied.diff_id == diff_id {
            // Kept again at once, so that a second interruption still finds it.
            let guard = store.keep_staged(&layer.digest, &kept)?;
            progress.layer(&id, LayerEvent::Resumed);
            return Ok((kept, guard));
        }
        store.discard_staged(kept);
    }
    // Another pull downloading the same blob holds its partial download: go without one.
    let mut partial = store.partial_blob(&layer.digest).unwrap_or_else(|e| {
        tracing::debug!("blob {}: no partial download: {e}", layer.digest);
        None
    });
    if let Some(p) = partial.as_mut() {
        if layer.size > 0 && p.len() > layer.size {
            p.restart()?;
        }
    }
    progress.layer(&id, LayerEvent::Downloading { total: layer.size });
    let mut result = stream_layer(store, client, r, layer, diff_id, partial.as_ref(), progress);
    if let (Err(e), Some(p)) = (&result, partial.as_mut()) {
        if !p.is_empty() && !is_transfer_failure(e) {
            tracing::debug!(
                "blob {}: continuing {} kept bytes failed ({e}); downloading it whole",
                layer.digest,
                p.len()
            );
            p.restart()?;
            result = stream_layer(store, client, r, layer, diff_id, Some(&*p), progress);
        }
    }
    match result {
        Ok(staged) => {
            // Verified: the layer is kept (or committed) from here on, the bytes are not needed.
            if let Some(p) = partial {
                p.remove();
            }
            progress.layer(&id, LayerEvent::Extracted);
            Ok(staged)
        }
        Err(e) => {
            // Bytes cut short by the network are worth keeping for the next pull; bytes that
            // failed verification are not.
            if let Some(p) = partial {
                if !is_transfer_failure(&e) {
                    p.remove();
                }
            }
            Err(e)
        }
    }
}

/// An error of the transfer itself (the registry unreachable, busy, or the stream cut short),
/// after which the bytes received so far are still good.
fn is_transfer_failure(e: &RegistryError) -> bool {
    match e {
        RegistryError::Connect { .. } | RegistryError::Truncated { .. } => true,
        RegistryError::Http { status, .. } => *status >= 500 || *status == 429 || *status == 408,
        _ => false,
    }
}

/// Streams one blob (after what `partial` kept of it) into a new staged layer and verifies it.
fn stream_layer(
    store: &Store,
    client: &RegistryClient,
    r: &Reference,
    layer: &Descriptor,
    diff_id: &str,
    partial: Option<&berth_image::partial::PartialBlob>,
    progress: &dyn PullProgress,
) -> Result<Fetched> {
    let id = short(&layer.digest);
    let tick = |n: u64| progress.layer(&id, LayerEvent::Progress { bytes: n });
    let mut blob = BlobReader::new(client, &r.path, &layer.digest, layer.size, &tick);
    if layer.is_foreign() {
        blob = blob.with_urls(&layer.urls);
    }
    let cache_id = berth_image::digest::random_hex_id();
    if let Some(p) = partial {
        blob = blob.with_partial(p)?;
        p.record_staging(&cache_id)?;
    }
    let label = format!("{}/{} layer {}", client.domain(), r.path, layer.digest);
    let staged = berth_image::compression::decompress(&mut blob)
        .and_then(|tar| store.stage_layer_as(cache_id, tar, &label));
    let staged = match staged {
        Ok(s) => s,
        Err(e) => {
            if let Some(p) = partial {
                p.clear_staging();
            }
            // A registry failure (or a corrupted blob) explains a broken stream best.
            if let Some(f) = blob.take_failure() {
                return Err(f);
            }
            return Err(match blob.finish() {
                Err(mismatch) => mismatch,
                Ok(_) => RegistryError::BadContent {
                    registry: client.domain().to_string(),
                    repository: r.path.clone(),
                    what: format!("layer {}", layer.digest),
                    reason: e.to_string(),
                },
            });
        }
    };
    let verified = blob.finish().and_then(|_| {
        if staged.applied.diff_id != diff_id {
            return Err(RegistryError::DigestMismatch {
                registry: client.domain().to_string(),
                repository: r.path.clone(),
                what: "layer DiffID of blob",
                digest: layer.digest.clone(),
                actual: format!("{}, config says {diff_id}", staged.applied.diff_id),
            });
        }
        Ok(())
    });
    if let Err(e) = verified {
        store.discard_staged(staged);
        if let Some(p) = partial {
            p.clear_staging();
        }
        return Err(e);
    }
    // From here the directory is the kept layer's (or garbage only `prune` collects, should
    // this process die in between): never the next pull's to remove.
    if let Some(p) = partial {
        p.clear_staging();
    }
    match store.keep_staged(&layer.digest, &staged) {
        Ok(g) => Ok((staged, g)),
        Err(e) => {
            store.discard_staged(staged);
            Err(e.into())
        }
    }
}
