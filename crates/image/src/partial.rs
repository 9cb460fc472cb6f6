//! Partly downloaded blobs, so a pull killed mid-blob continues where it stopped:
//! `image/overlay2/distribution/partial/<blob hex>/` holds `data` (the blob's bytes received so
//! far: always a prefix of what the registry sent, appended as they arrive) and `staging` (the
//! cache id of the layer directory being extracted from them, which is garbage if its pull
//! dies). The live pull holds an exclusive lock on `data`; another pull of the same blob sees
//! the lock and downloads without keeping anything, so a partial blob has one writer. The next
//! pull to lock a dead pull's partial blob removes that pull's half-extracted directory, reads
//! the prefix back (hashing and extracting it again: extraction cannot resume mid-tar) and asks
//! the registry for the rest only. Nothing here is trusted: the caller checks the whole blob's
//! digest, and throws the prefix away (`restart`) when that check fails.
//!
//! A pull that is never retried would leave its partial blob for ever: the recovery pass every
//! command runs reclaims those no pull holds once they are [`PARTIAL_MAX_AGE`] old, and `image
//! prune` / `system prune` reclaim every one no pull holds ([`Store::drop_stale_partials`]).
use crate::digest::hex_part;
use crate::error::{ImageError, Result};
use crate::layout::write_plain;
use crate::store::Store;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long the partial download of a pull nobody retried waits for a retry: after that the
/// recovery pass of any command reclaims it (a day: a retry usually comes within minutes).
pub const PARTIAL_MAX_AGE: Duration = Duration::from_secs(24 * 60 * 60);

/// The locked partial download of one blob.
#[derive(Debug)]
pub struct PartialBlob {
    dir: PathBuf,
    /// `data`, opened for reading and appending; locked while this value lives.
    file: File,
    /// Bytes it held when it was opened.
    len: u64,
}

impl Store {
    /// Opens (creating it if needed) and locks the partial download of `blob`, after removing
    /// the half-extracted layer directory a dead pull left for it. `Ok(None)` when another
    /// live pull is downloading the same blob.
    pub fn partial_blob(&self, blob: &str) -> Result<Option<PartialBlob>> {
        let hex = hex_part(blob);
        if hex.is_empty() || hex.contains('/') || hex.starts_with('.') {
            return Err(ImageError::BadMetadata {
                path: self.layout.distribution().join("partial"),
                reason: format!("invalid blob digest {blob:?}"),
            });
        }
        let dir = self.layout.distribution().join("partial").join(hex);
        let path = dir.join("data");
        // The lock-file dance: whoever finished the blob may have removed the file between our
        // open and our lock, so the locked inode must still be the one at `path`.
        for _ in 0..5 {
            std::fs::create_dir_all(&dir).map_err(ImageError::io("creating", &dir))?;
            let file = match std::fs::OpenOptions::new()
                .read(true)
                .append(true)
                .create(true)
                .open(&path)
            {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(ImageError::io("opening", &path)(e)),
            };
            match file.try_lock() {
                Ok(()) => {}
                Err(std::fs::TryLockError::WouldBlock) => return Ok(None),
                Err(std::fs::TryLockError::Error(e)) => {
                    return Err(ImageError::io("locking", &path)(e))
                }
            }
            let held = file.metadata().map_err(ImageError::io("reading", &path))?;
            match std::fs::metadata(&path) {
                Ok(now) if now.ino() == held.ino() && now.dev() == held.dev() => {}
                _ => continue,
            }
            let partial = PartialBlob {
                dir,
                len: held.len(),
                file,
            };
            partial.remove_dead_staging(self);
            return Ok(Some(partial));
        }
        Ok(None)
    }

    fn partials_dir(&self) -> PathBuf {
        self.layout.distribution().join("partial")
    }

    /// True when there may be partial downloads to look at (one `stat`; the recovery pass of
    /// every command asks).
    pub(crate) fn has_partials(&self) -> bool {
        std::fs::read_dir(self.partials_dir())
            .map(|mut rd| rd.next().is_some())
            .unwrap_or(false)
    }

    /// Removes the partial downloads no live pull holds whose last bytes arrived at least
    /// `min_age` ago, with the half-extracted layer directory each names; returns the paths
    /// removed and the bytes they held. A pull that opens one meanwhile either waits for
    /// nothing (the lock is held here while it goes: that pull downloads without keeping) or
    /// finds it gone and starts a new one (see the lock-file dance in `partial_blob`).
    pub fn drop_stale_partials(&self, min_age: Duration) -> (Vec<PathBuf>, u64) {
        let mut removed = Vec::new();
        let mut bytes = 0;
        let Ok(rd) = std::fs::read_dir(self.partials_dir()) else {
            return (removed, bytes);
        };
        for e in rd.flatten() {
            let dir = e.path();
            let data = dir.join("data");
            // A directory killed before its `data` existed is judged by its own age.
            let lock = match std::fs::OpenOptions::new().read(true).open(&data) {
                Ok(f) => match f.try_lock() {
                    Ok(()) => Some(f),
                    Err(_) => continue, // a live pull's
                },
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(_) => continue,
            };
            let aged = |p: &Path| {
                std::fs::symlink_metadata(p)
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age >= min_age)
            };
            if !aged(if lock.is_some() { &data } else { &dir }) {
                continue;
            }
            let partial = lock.map(|file| PartialBlob {
                dir: dir.clone(),
                len: 0,
                file,
            });
            if let Some(p) = &partial {
                p.remove_dead_staging(self);
            }
            let size = crate::recovery::tree_size(&dir);
            if crate::apply::remove_tree(&dir).is_ok() {
                bytes += size;
                removed.push(dir);
            }
            drop(partial);
        }
        (removed, bytes)
    }
}

impl PartialBlob {
    /// Bytes already received.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True when nothing was received yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// A reader of the bytes already received (from the start).
    pub fn prefix(&self) -> Result<impl Read + '_> {
        let path = self.dir.join("data");
        (&self.file)
            .seek(SeekFrom::Start(0))
            .map_err(ImageError::io("reading", &path))?;
        Ok((&self.file).take(self.len))
    }

    /// Appends newly received bytes (the file is opened for appending: they always land at the
    /// end, whatever was read before).
    pub fn append(&self, bytes: &[u8]) -> std::io::Result<()> {
        (&self.file).write_all(bytes)
    }

    /// Throws the received bytes away, to download the blob again from its start.
    pub fn restart(&mut self) -> Result<()> {
        let path = self.dir.join("data");
        self.file
            .set_len(0)
            .map_err(ImageError::io("truncating", &path))?;
        self.len = 0;
        Ok(())
    }

    /// Records the layer directory being extracted from this blob, for the next pull to remove
    /// should this one die before the layer is kept or committed.
    pub fn record_staging(&self, cache_id: &str) -> Result<()> {
        write_plain(&self.dir.join("staging"), cache_id.as_bytes())
    }

    /// Forgets the recorded layer directory: it is kept, committed or already removed.
    pub fn clear_staging(&self) {
        let _ = std::fs::remove_file(self.dir.join("staging"));
    }

    /// The blob is complete (or known bad): removes the partial download.
    pub fn remove(self) {
        let _ = crate::apply::remove_tree(&self.dir);
    }

    fn remove_dead_staging(&self, store: &Store) {
        let record = self.dir.join("staging");
        let Ok(cache_id) = std::fs::read_to_string(&record) else {
            return;
        };
        let cache_id = cache_id.trim();
        let valid = !cache_id.is_empty() && cache_id.bytes().all(|b| b.is_ascii_hexdigit());
        // A committed directory is a layer now (the record outlived its pull by a moment).
        if valid && !store.layout.layer_dir(cache_id).join("committed").exists() {
            store.remove_layer_dir(cache_id);
        }
        let _ = std::fs::remove_file(&record);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn one_writer_and_the_prefix_survives_its_owner() {
        let root = tempfile::tempdir().unwrap();
        let store = Store::open(root.path()).unwrap();
        let blob = format!("sha256:{}", "c".repeat(64));
        let p = store.partial_blob(&blob).unwrap().expect("free");
        assert!(p.is_empty());
        p.append(b"hello ").unwrap();
        assert!(store.partial_blob(&blob).unwrap().is_none(), "locked");
        // A dead pull's half-extracted directory goes when the next pull takes over.
        let cache = crate::digest::random_hex_id();
        let dir = store.layout.layer_dir(&cache);
        std::fs::create_dir_all(dir.join("diff")).unwrap();
        p.record_staging(&cache).unwrap();
        drop(p);

        let mut p = store.partial_blob(&blob).unwrap().expect("owner gone");
        assert!(!dir.exists(), "dead staging directory removed");
        assert_eq!(p.len(), 6);
        let mut got = String::new();
        p.prefix().unwrap().read_to_string(&mut got).unwrap();
        assert_eq!(got, "hello ");
        p.append(b"world").unwrap();
        p.restart().unwrap();
        assert_eq!(p.len(), 0);
        p.append(b"again").unwrap();
        p.remove();
        let p = store.partial_blob(&blob).unwrap().expect("fresh");
        assert!(p.is_empty());
    }

    #[test]
    fn stale_partials_go_and_live_or_young_ones_stay() {
        let root = tempfile::tempdir().unwrap();
        let store = Store::open(root.path()).unwrap();
        let blob = |c: &str| format!("sha256:{}", c.repeat(64));
        let age = |p: &PartialBlob, secs: u64| {
            let t = std::time::SystemTime::now() - Duration::from_secs(secs);
            p.file.set_modified(t).unwrap();
        };
        // Dead and old, with a half-extracted directory: both go.
        let old = store.partial_blob(&blob("a")).unwrap().unwrap();
        old.append(&[1u8; 8192]).unwrap();
        let cache = crate::digest::random_hex_id();
        std::fs::create_dir_all(store.layout.layer_dir(&cache).join("diff")).unwrap();
        old.record_staging(&cache).unwrap();
        age(&old, PARTIAL_MAX_AGE.as_secs() + 60);
        let old_dir = old.dir.clone();
        drop(old);
        // Dead but young: stays for a retry.
        let young = store.partial_blob(&blob("b")).unwrap().unwrap();
        young.append(b"young").unwrap();
        let young_dir = young.dir.clone();
        drop(young);
        // Old but held by a live pull: stays.
        let live = store.partial_blob(&blob("c")).unwrap().unwrap();
        live.append(b"live").unwrap();
        age(&live, PARTIAL_MAX_AGE.as_secs() + 60);

        assert!(store.has_partials());
        let (removed, bytes) = store.drop_stale_partials(PARTIAL_MAX_AGE);
        assert_eq!(removed, vec![old_dir.clone()]);
        assert!(bytes >= 8192, "{bytes}");
        assert!(!old_dir.exists());
        assert!(!store.layout.layer_dir(&cache).exists(), "its staging dir");
        assert!(young_dir.exists());
        assert!(live.dir.exists());

        // The recovery pass of every command does the same; a prune takes any age.
        assert!(store.recover().unwrap().removed.is_empty());
        let swept = store.sweep().unwrap();
        assert!(swept.removed.contains(&young_dir), "{swept:?}");
        assert!(!young_dir.exists());
        assert!(
            live.dir.exists(),
            "a live pull's partial blob is never taken"
        );
        live.remove();
        assert!(!store.has_partials());
    }

    #[test]
    fn refuses_odd_digests() {
        let root = tempfile::tempdir().unwrap();
        let store = Store::open(root.path()).unwrap();
        assert!(store.partial_blob("sha256:../x").is_err());
    }
}
