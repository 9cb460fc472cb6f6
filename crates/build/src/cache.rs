//! The build cache: step key → image ID, kept in `<root>/build/cache.json` so it survives across
//! `berth build` runs. A key is the SHA-256 of the parent image ID and the step's resulting
//! container config (whose `Cmd` holds the instruction text, COPY/ADD source hashes and the
//! build args of a RUN), plus anything else the step depends on (e.g. `--chmod`) — the same
//! things Docker's classic builder compares. Entries whose image is gone are ignored.
use crate::error::{BuildError, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Default, Serialize, Deserialize)]
struct CacheFile {
    #[serde(default)]
    entries: BTreeMap<String, String>,
}

/// The persistent cache index.
#[derive(Debug)]
pub struct BuildCache {
    path: Option<PathBuf>,
    entries: BTreeMap<String, String>,
}

/// A step's cache key.
pub fn step_key(parent: &str, material: &[&[u8]]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(parent.as_bytes());
    for part in material {
        hasher.update([0]);
        hasher.update(part);
    }
    hex::encode(hasher.finalize())
}

impl BuildCache {
    /// Opens `<root>/build/cache.json` (empty when absent or unreadable JSON).
    pub fn open(root: &Path) -> Result<BuildCache> {
        let path = root.join("build").join("cache.json");
        let entries = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice::<CacheFile>(&bytes)
                .map(|f| f.entries)
                .unwrap_or_default(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(BuildError::io("reading", &path, e)),
        };
        Ok(BuildCache {
            path: Some(path),
            entries,
        })
    }

    /// A cache that remembers nothing on disk (tests).
    pub fn in_memory() -> BuildCache {
        BuildCache {
            path: None,
            entries: BTreeMap::new(),
        }
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries.get(key).map(String::as_str)
    }

    /// Records `key → image_id` and saves the index (merged with entries other builds wrote
    /// meanwhile, under a lock, written atomically).
    pub fn put(&mut self, key: &str, image_id: &str) -> Result<()> {
        self.put_all(&[(key.to_string(), image_id.to_string())])
    }

    /// Records several `key → value` entries with one write of the index.
    pub fn put_all(&mut self, entries: &[(String, String)]) -> Result<()> {
        for (k, v) in entries {
            self.entries.insert(k.clone(), v.clone());
        }
        let Some(path) = &self.path else {
            return Ok(());
        };
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| BuildError::io("creating", dir, e))?;
        let lock_path = dir.join("cache.lock");
        let lock = std::fs::File::create(&lock_path)
            .map_err(|e| BuildError::io("creating", &lock_path, e))?;
        lock.lock()
            .map_err(|e| BuildError::io("locking", &lock_path, e))?;
        let mut on_disk = match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice::<CacheFile>(&bytes).unwrap_or_default(),
            Err(_) => CacheFile::default(),
        };
        for (k, v) in entries {
            on_disk.entries.insert(k.clone(), v.clone());
        }
        let bytes = serde_json::to_vec(&on_disk).map_err(|e| BuildError::Cache {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        let tmp = dir.join(format!(".cache.json.{}", std::process::id()));
        std::fs::write(&tmp, &bytes).map_err(|e| BuildError::io("writing", &tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| BuildError::io("writing", path, e))?;
        self.entries = on_disk.entries;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn survives_reopen_and_merges() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = BuildCache::open(dir.path()).unwrap();
        let mut b = BuildCache::open(dir.path()).unwrap();
        a.put("k1", "sha256:1").unwrap();
        b.put("k2", "sha256:2").unwrap();
        let c = BuildCache::open(dir.path()).unwrap();
        assert_eq!(c.get("k1"), Some("sha256:1"));
        assert_eq!(c.get("k2"), Some("sha256:2"));
    }

    #[test]
    fn keys_depend_on_parent_and_material() {
        assert_ne!(step_key("p1", &[b"x"]), step_key("p2", &[b"x"]));
        assert_ne!(step_key("p", &[b"ab", b"c"]), step_key("p", &[b"a", b"bc"]));
        assert_eq!(step_key("p", &[b"x"]), step_key("p", &[b"x"]));
    }
}
