//! `repositories.json`: Docker's map from familiar repository names to references to image IDs,
//! `{"Repositories":{"busybox":{"busybox:latest":"sha256:…"}}}`. Every change is a
//! read-modify-write under the store lock, written atomically.
use crate::digest::with_algo;
use crate::error::{ImageError, Result};
use crate::layout::write_atomic;
use crate::reference::Reference;
use crate::store::Store;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The file's content.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Repositories {
    #[serde(rename = "Repositories", default)]
    pub repositories: BTreeMap<String, BTreeMap<String, String>>,
}

impl Store {
    /// Reads `repositories.json` (empty when absent).
    pub fn repositories(&self) -> Result<Repositories> {
        let path = self.layout.repositories();
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| ImageError::BadMetadata {
                path: path.clone(),
                reason: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Repositories::default()),
            Err(e) => Err(ImageError::io("reading", &path)(e)),
        }
    }

    fn write_repositories(&self, repos: &Repositories) -> Result<()> {
        let bytes = serde_json::to_vec(repos).map_err(|e| ImageError::BadMetadata {
            path: self.layout.repositories(),
            reason: e.to_string(),
        })?;
        write_atomic(&self.layout.repositories(), &bytes)
    }

    /// The image a normalised reference points at.
    pub fn lookup_reference(&self, r: &Reference) -> Result<Option<String>> {
        let repos = self.repositories()?;
        Ok(repos
            .repositories
            .get(&r.familiar_name())
            .and_then(|m| m.get(&r.familiar_string()))
            .cloned())
    }

    /// (tags, digests) referencing image `id`, familiar form, sorted.
    pub fn references_of(&self, id: &str) -> Result<(Vec<String>, Vec<String>)> {
        let id = with_algo(id);
        let repos = self.repositories()?;
        let (mut tags, mut digests) = (Vec::new(), Vec::new());
        for refs in repos.repositories.values() {
            for (name, target) in refs {
                if *target == id {
                    if name.contains('@') {
                        digests.push(name.clone());
                    } else {
                        tags.push(name.clone());
                    }
                }
            }
        }
        tags.sort();
        digests.sort();
        Ok((tags, digests))
    }

    /// Points `reference` at image `id` (a tag moves; a digest reference cannot). Returns the
    /// image the tag pointed at before, if it was a different one.
    pub fn tag(&self, image_id: &str, reference: &str) -> Result<Option<String>> {
        let id = self.resolve_id(image_id)?;
        let r = Reference::parse_tagged(reference)?;
        let _lock = self.lock()?;
        let mut repos = self.repositories()?;
        let entry = repos.repositories.entry(r.familiar_name()).or_default();
        let key = r.familiar_string();
        let previous = entry.get(&key).cloned();
        if r.tag.is_none() {
            if let Some(p) = &previous {
                if *p != id {
                    return Err(ImageError::Conflict(format!(
                        "Cannot overwrite digest {}",
                        r.digest.clone().unwrap_or_default()
                    )));
                }
            }
        }
        entry.insert(key, id.clone());
        self.write_repositories(&repos)?;
        self.set_last_updated(&id)?;
        Ok(previous.filter(|p| *p != id))
    }

    /// Removes one reference; returns the image it pointed at.
    pub(crate) fn untag_locked(&self, r: &Reference) -> Result<Option<String>> {
        let mut repos = self.repositories()?;
        let name = r.familiar_name();
        let Some(entry) = repos.repositories.get_mut(&name) else {
            return Ok(None);
        };
        let old = entry.remove(&r.familiar_string());
        if entry.is_empty() {
            repos.repositories.remove(&name);
        }
        if old.is_some() {
            self.write_repositories(&repos)?;
        }
        Ok(old)
    }
}
