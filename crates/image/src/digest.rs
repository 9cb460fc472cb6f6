//! Content addressing as Docker does it: sha256 digests written `sha256:<hex>`, DiffIDs, ChainIDs,
//! random cache ids and overlay short-link names, plus a reader that hashes what passes through it.
use sha2::{Digest, Sha256};
use std::io::Read;

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Strips a leading `sha256:` if present.
pub fn hex_part(digest: &str) -> &str {
    digest.strip_prefix("sha256:").unwrap_or(digest)
}

/// Adds `sha256:` unless already there.
pub fn with_algo(hex_or_digest: &str) -> String {
    if hex_or_digest.starts_with("sha256:") {
        hex_or_digest.to_string()
    } else {
        format!("sha256:{hex_or_digest}")
    }
}

/// True for 64 lowercase hex characters.
pub fn is_full_hex(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// ChainID of a layer whose parent chain is `parent` (None for the bottom layer) and whose
/// DiffID is `diff_id`: ChainID(L0) = DiffID(L0); ChainID(Ln) = sha256("<ChainID(Ln-1)> <DiffID(Ln)>").
pub fn chain_id(parent: Option<&str>, diff_id: &str) -> String {
    match parent {
        None => with_algo(diff_id),
        Some(p) => sha256_digest(format!("{} {}", with_algo(p), with_algo(diff_id)).as_bytes()),
    }
}

/// The ChainIDs of every prefix of `diff_ids`, bottom first.
pub fn chain_ids(diff_ids: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = chain_id(out.last().map(String::as_str), d);
        out.push(next);
    }
    out
}

/// 64 random hex characters: a cache id or mount id, as Docker's `stringid.GenerateRandomID`.
pub fn random_hex_id() -> String {
    let bytes: [u8; 32] = rand::random();
    hex::encode(bytes)
}

/// 26 random characters of [A-Z0-9]: the name of an overlay short link under `overlay2/l/`.
pub fn random_link_id() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    (0..26)
        .map(|_| ALPHABET[rand::random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// A reader that feeds every byte it passes into sha256 and counts them.
pub struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
}

impl<R: Read> HashingReader<R> {
    pub fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }
    /// Bytes read so far.
    pub fn count(&self) -> u64 {
        self.count
    }
    /// The inner reader, for progress reporting.
    pub fn get_ref(&self) -> &R {
        &self.inner
    }
    /// `sha256:<hex>` of everything read, and the byte count.
    pub fn finish(self) -> (String, u64) {
        (
            format!("sha256:{}", hex::encode(self.hasher.finalize())),
            self.count,
        )
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

/// A writer counterpart: hashes and counts what is written through it.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    count: u64,
}

impl<W: std::io::Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }
    pub fn finish(self) -> (W, String, u64) {
        (
            self.inner,
            format!("sha256:{}", hex::encode(self.hasher.finalize())),
            self.count,
        )
    }
}

impl<W: std::io::Write> std::io::Write for HashingWriter<W> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_id_of_bottom_is_diff_id() {
        let d = "sha256:aaaa";
        assert_eq!(chain_id(None, d), d);
    }

    #[test]
    fn chain_id_matches_docker_definition() {
        // echo -n "sha256:a sha256:b" | sha256sum
        let c = chain_id(Some("sha256:a"), "sha256:b");
        assert_eq!(c, sha256_digest(b"sha256:a sha256:b"));
        let all = chain_ids(&["sha256:a".into(), "sha256:b".into(), "sha256:c".into()]);
        assert_eq!(all[0], "sha256:a");
        assert_eq!(
            all[2],
            sha256_digest(format!("{} sha256:c", all[1]).as_bytes())
        );
    }

    #[test]
    fn link_ids_have_docker_shape() {
        let id = random_link_id();
        assert_eq!(id.len(), 26);
        assert!(id
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()));
        assert!(is_full_hex(&random_hex_id()));
    }
}
