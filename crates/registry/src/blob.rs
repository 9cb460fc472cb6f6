//! Reading a blob: a `Read` over `GET /v2/<name>/blobs/<digest>` that hashes what passes, and
//! when the connection drops mid-blob asks for the rest with an HTTP `Range` request instead of
//! starting over. With a [`PartialBlob`] it first reads back what an earlier, killed pull kept
//! of the blob, asks the registry only for the rest, and appends what arrives to it, so a pull
//! killed now can continue too. [`BlobReader::finish`] checks length and digest; nothing read
//! from a blob may be trusted before that.
use crate::client::{RegistryClient, RequestBody};
use crate::error::{RegistryError, Result};
use berth_image::partial::PartialBlob;
use sha2::{Digest, Sha256};
use std::io::Read;
use ureq::http::Method;

/// How many times one blob download may be resumed.
const RESUMES: u32 = 5;

/// A verified-at-the-end stream of one blob.
pub struct BlobReader<'a> {
    client: &'a RegistryClient,
    repository: String,
    digest: String,
    expected: u64,
    body: Option<ureq::BodyReader<'static>>,
    offset: u64,
    hasher: Sha256,
    resumes: u32,
    /// A registry error met while (re)opening the stream, kept to report it precisely.
    failure: Option<RegistryError>,
    progress: &'a (dyn Fn(u64) + Sync),
    /// Where received bytes are kept (and, at first, read back from).
    partial: Option<&'a PartialBlob>,
    /// Kept bytes still to read back before the network is asked.
    prefix: Option<Box<dyn Read + 'a>>,
    /// Where a foreign layer lives outside the registry, tried in order before it.
    urls: Vec<String>,
}

impl<'a> BlobReader<'a> {
    /// A reader of `digest` (of `expected` bytes) in `repository`; opens lazily.
    pub fn new(
        client: &'a RegistryClient,
        repository: &str,
        digest: &str,
        expected: u64,
        progress: &'a (dyn Fn(u64) + Sync),
    ) -> BlobReader<'a> {
        BlobReader {
            client,
            repository: repository.to_string(),
            digest: digest.to_string(),
            expected,
            body: None,
            offset: 0,
            hasher: Sha256::new(),
            resumes: 0,
            failure: None,
            progress,
            partial: None,
            prefix: None,
            urls: Vec::new(),
        }
    }

    /// Fetches the blob from `urls` (a foreign layer's), in order, and from the registry only
    /// when none of them serves it, as Docker does. Only `http`/`https` URLs are used.
    pub fn with_urls(mut self, urls: &[String]) -> BlobReader<'a> {
        self.urls = urls
            .iter()
            .filter(|u| u.starts_with("http://") || u.starts_with("https://"))
            .cloned()
            .collect();
        self
    }

    /// Continues from (and keeps appending to) `partial`: its bytes are read back first and the
    /// registry is asked for the rest with a `Range` request.
    pub fn with_partial(mut self, partial: &'a PartialBlob) -> Result<BlobReader<'a>> {
        if !partial.is_empty() {
            self.prefix = Some(Box::new(partial.prefix()?));
        }
        self.partial = Some(partial);
        Ok(self)
    }

    /// Bytes received so far.
    pub fn received(&self) -> u64 {
        self.offset
    }

    fn open(&mut self) -> Result<()> {
        let url = self
            .client
            .url(&format!("/v2/{}/blobs/{}", self.repository, self.digest));
        let mut headers = Vec::new();
        if self.offset > 0 {
            headers.push(("Range", format!("bytes={}-", self.offset)));
        }
        let mut resp = loop {
            let Some(external) = self.urls.first() else {
                break self.client.send(
                    Method::GET,
                    &url,
                    &self.repository,
                    false,
                    &headers,
                    RequestBody::Empty,
                )?;
            };
            match self.client.get_external(external, &headers) {
                Ok(r) if r.status().as_u16() == 200 || r.status().as_u16() == 206 => break r,
                Ok(r) => tracing::debug!("blob {}: {external}: HTTP {}", self.digest, r.status()),
                Err(e) => tracing::debug!("blob {}: {e}", self.digest),
            }
            self.urls.remove(0);
        };
        let status = resp.status().as_u16();
        let what = format!("blob {}", self.digest);
        match status {
            206 if self.offset > 0 => {}
            200 => {
                let mut reader = resp.into_body().into_reader();
                if self.offset > 0 {
                    // The server ignored the range: skip what was already hashed.
                    let skipped =
                        std::io::copy(&mut (&mut reader).take(self.offset), &mut std::io::sink())
                            .map_err(|e| self.truncated_or(e))?;
                    if skipped < self.offset {
                        return Err(self.truncated());
                    }
                }
                self.body = Some(reader);
                return Ok(());
            }
            404 => {
                let f = crate::client::failure_of(&mut resp);
                return Err(RegistryError::Http {
                    registry: self.client.domain().to_string(),
                    repository: self.repository.clone(),
                    what,
                    status,
                    message: if f.message.is_empty() {
                        "blob unknown to registry".into()
                    } else {
                        f.message
                    },
                });
            }
            _ => return Err(self.client.error_for(&self.repository, &what, &mut resp)),
        }
        self.body = Some(resp.into_body().into_reader());
        Ok(())
    }

    fn truncated(&self) -> RegistryError {
        RegistryError::Truncated {
            registry: self.client.domain().to_string(),
            repository: self.repository.clone(),
            digest: self.digest.clone(),
            got: self.offset,
            expected: self.expected,
        }
    }

    fn truncated_or(&self, e: std::io::Error) -> RegistryError {
        tracing::debug!("blob {}: {e}", self.digest);
        self.truncated()
    }

    /// The registry error that stopped the stream, if one did.
    pub fn take_failure(&mut self) -> Option<RegistryError> {
        self.failure.take()
    }

    /// Reads whatever is left, then checks the length and digest.
    pub fn finish(mut self) -> Result<u64> {
        std::io::copy(&mut self, &mut std::io::sink())
            .map_err(|e| self.failure.take().unwrap_or_else(|| self.truncated_or(e)))?;
        if self.offset != self.expected && self.expected > 0 {
            return Err(self.truncated());
        }
        let actual = format!("sha256:{}", hex::encode(self.hasher.finalize_reset()));
        if actual != self.digest {
            return Err(RegistryError::DigestMismatch {
                registry: self.client.domain().to_string(),
                repository: self.repository.clone(),
                what: "blob",
                digest: self.digest.clone(),
                actual,
            });
        }
        Ok(self.offset)
    }
}

impl Read for BlobReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if let Some(prefix) = self.prefix.as_mut() {
            match prefix.read(buf)? {
                0 => self.prefix = None,
                n => {
                    self.hasher.update(&buf[..n]);
                    self.offset += n as u64;
                    (self.progress)(n as u64);
                    return Ok(n);
                }
            }
        }
        loop {
            if self.body.is_none() {
                if self.expected > 0 && self.offset >= self.expected {
                    // All of it was kept: nothing to ask the registry for.
                    return Ok(0);
                }
                if let Err(e) = self.open() {
                    let msg = e.to_string();
                    self.failure = Some(e);
                    return Err(std::io::Error::other(msg));
                }
            }
            let Some(body) = self.body.as_mut() else {
                return Ok(0);
            };
            match body.read(buf) {
                Ok(0) if self.offset < self.expected && self.resumes < RESUMES => {
                    self.resumes += 1;
                    self.body = None;
                }
                Ok(0) => return Ok(0),
                Ok(n) => {
                    self.hasher.update(&buf[..n]);
                    self.offset += n as u64;
                    if let Some(p) = self.partial {
                        if let Err(e) = p.append(&buf[..n]) {
                            // Keeping is a convenience: the download goes on without it.
                            tracing::debug!("blob {}: not kept: {e}", self.digest);
                            self.partial = None;
                        }
                    }
                    (self.progress)(n as u64);
                    return Ok(n);
                }
                Err(e) if self.resumes < RESUMES && e.kind() != std::io::ErrorKind::Interrupted => {
                    tracing::debug!(
                        "blob {}: {e} after {} bytes; resuming with a range request",
                        self.digest,
                        self.offset
                    );
                    self.resumes += 1;
                    self.body = None;
                    std::thread::sleep(std::time::Duration::from_millis(100 << self.resumes));
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.failure = Some(self.truncated());
                    return Err(e);
                }
            }
        }
    }
}

/// Fetches a small blob (a config) whole, checking its digest.
pub fn fetch_small(
    client: &RegistryClient,
    repository: &str,
    digest: &str,
    size: u64,
) -> Result<Vec<u8>> {
    const MAX: u64 = 64 << 20;
    if size > MAX {
        return Err(RegistryError::BadContent {
            registry: client.domain().to_string(),
            repository: repository.to_string(),
            what: format!("config {digest}"),
            reason: format!("{size} bytes is too large"),
        });
    }
    let noop = |_| {};
    let mut r = BlobReader::new(client, repository, digest, size, &noop);
    let mut out = Vec::with_capacity(size as usize);
    (&mut r)
        .take(MAX)
        .read_to_end(&mut out)
        .map_err(|e| r.take_failure().unwrap_or_else(|| r.truncated_or(e)))?;
    r.finish()?;
    Ok(out)
}
