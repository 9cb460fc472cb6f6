//! Parsed JSON files kept between reads by a long-lived caller (the API service lists every
//! container on each `GET /containers/json`): an entry is reused while its file is the same
//! file — same inode, size and modification time, read through one open descriptor — and
//! parsed again once anything rewrote it. Every store write is a rename of a new file into
//! place, so a change always shows as a new inode; writers in other processes (the CLI,
//! monitors) are seen as surely as this process's own. Owns caching only: what the files mean
//! is the caller's.
use crate::error::{EngineError, Result};
use std::collections::HashMap;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The identity of one version of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: i64,
    mtime_nsec: i64,
}

impl Stamp {
    fn of(meta: &std::fs::Metadata) -> Stamp {
        Stamp {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime: meta.mtime(),
            mtime_nsec: meta.mtime_nsec(),
        }
    }
}

/// A cache of `T`s parsed from files, by path. Clones share one cache.
#[derive(Debug)]
pub struct ParsedCache<T> {
    entries: Arc<Mutex<HashMap<PathBuf, (Stamp, T)>>>,
}

impl<T> Clone for ParsedCache<T> {
    fn clone(&self) -> Self {
        ParsedCache {
            entries: self.entries.clone(),
        }
    }
}

impl<T> Default for ParsedCache<T> {
    fn default() -> Self {
        ParsedCache {
            entries: Arc::new(Mutex::new(HashMap::new())),
        }
    }
}

impl<T: Clone> ParsedCache<T> {
    /// The parsed content of `path`: the cached value while the file is unchanged, otherwise
    /// `parse` of its bytes (then cached). Errors opening or reading are the caller's to
    /// word: they come back as the `std::io::Error`.
    pub fn get(
        &self,
        path: &Path,
        parse: impl FnOnce(&[u8]) -> Result<T>,
    ) -> std::result::Result<Result<T>, std::io::Error> {
        let mut file = std::fs::File::open(path)?;
        let stamp = Stamp::of(&file.metadata()?);
        if let Some((cached, value)) = self.lock().get(path) {
            if *cached == stamp {
                return Ok(Ok(value.clone()));
            }
        }
        let mut bytes = Vec::with_capacity(stamp.size as usize);
        file.read_to_end(&mut bytes)?;
        let parsed = parse(&bytes);
        if let Ok(value) = &parsed {
            self.lock()
                .insert(path.to_path_buf(), (stamp, value.clone()));
        }
        Ok(parsed)
    }

    /// Forgets entries whose path `keep` refuses (objects that are gone).
    pub fn retain(&self, keep: impl Fn(&Path) -> bool) {
        self.lock().retain(|p, _| keep(p));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<PathBuf, (Stamp, T)>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Turns a JSON parse failure of `path` into the engine's error.
pub fn json<T: serde::de::DeserializeOwned>(path: &Path, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|source| EngineError::Json {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuses_until_the_file_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.json");
        std::fs::write(&path, "1").unwrap();
        let cache: ParsedCache<u32> = ParsedCache::default();
        let parses = std::cell::Cell::new(0);
        let read = || {
            cache
                .get(&path, |b| {
                    parses.set(parses.get() + 1);
                    json(&path, b)
                })
                .unwrap()
                .unwrap()
        };
        assert_eq!(read(), 1);
        assert_eq!(read(), 1);
        assert_eq!(parses.get(), 1);
        // A write as the store makes it: a new file renamed into place.
        let tmp = dir.path().join("x.tmp");
        std::fs::write(&tmp, "2").unwrap();
        std::fs::rename(&tmp, &path).unwrap();
        assert_eq!(read(), 2);
        assert_eq!(parses.get(), 2);
        // Bad JSON is an error and not cached.
        std::fs::write(&tmp, "{").unwrap();
        std::fs::rename(&tmp, &path).unwrap();
        assert!(cache
            .get(&path, |b| json::<u32>(&path, b))
            .unwrap()
            .is_err());
        cache.retain(|_| false);
        std::fs::remove_file(&path).unwrap();
        assert!(cache.get(&path, |b| json::<u32>(&path, b)).is_err());
    }
}
