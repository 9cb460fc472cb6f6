//! Docker's `images` filters: `dangling`, `label`, `reference`, `before`, `since`, `until`.
//! `berth images` and the API's `GET /images/json` both list through [`Store::list_filtered`],
//! so the two never disagree. Values of one key are alternatives; different keys must all
//! match; `label` values must all hold (Docker's `filters.Args`).
use crate::catalog::ImageSummary;
use crate::error::{ImageError, Result};
use crate::store::Store;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

const KEYS: &[&str] = &["before", "dangling", "label", "reference", "since", "until"];

/// A checked set of `images` filters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImageFilter {
    args: BTreeMap<String, Vec<String>>,
}

impl ImageFilter {
    /// From `--filter key=value` words.
    pub fn from_flags(words: &[String]) -> Result<ImageFilter> {
        let mut args: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for word in words {
            let (k, v) = word
                .split_once('=')
                .ok_or_else(|| ImageError::InvalidFilter(word.clone()))?;
            args.entry(k.trim().to_ascii_lowercase())
                .or_default()
                .push(v.to_string());
        }
        ImageFilter::from_map(args)
    }

    /// From Docker's filter map (the API's `filters` query, already decoded).
    pub fn from_map(args: BTreeMap<String, Vec<String>>) -> Result<ImageFilter> {
        for (key, values) in &args {
            if !KEYS.contains(&key.as_str()) {
                return Err(ImageError::InvalidFilter(key.clone()));
            }
            for v in values {
                let bad = match key.as_str() {
                    "dangling" => !["true", "false", "1", "0"].contains(&v.as_str()),
                    "until" => berth_common::time::parse_timestamp(v, Utc::now()).is_none(),
                    _ => false,
                };
                if bad {
                    return Err(ImageError::InvalidFilter(format!("{key}={v}")));
                }
            }
        }
        Ok(ImageFilter { args })
    }

    /// Adds `reference=pattern` (the `images REPOSITORY[:TAG]` argument).
    pub fn with_reference(mut self, pattern: &str) -> ImageFilter {
        self.args
            .entry("reference".into())
            .or_default()
            .push(pattern.to_string());
        self
    }

    fn values(&self, key: &str) -> &[String] {
        self.args.get(key).map(Vec::as_slice).unwrap_or(&[])
    }
}

/// `label=k` or `label=k=v` against a label map.
pub fn label_matches(labels: &BTreeMap<String, String>, want: &str) -> bool {
    match want.split_once('=') {
        Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
        None => labels.contains_key(want),
    }
}

/// Docker's `reference.FamiliarMatch`: `pattern` (Go's `path.Match`) against the familiar
/// reference (`name:tag`, `name@digest`) or, failing that, its name alone.
pub fn reference_matches(pattern: &str, reference: &str) -> bool {
    let name = match reference.split_once('@') {
        Some((name, _)) => name,
        None => match reference.rsplit_once(':') {
            // A `:` after the last `/` starts the tag; one before it is a registry port.
            Some((name, tag)) if !tag.contains('/') => name,
            _ => reference,
        },
    };
    berth_common::glob::path_match(pattern, reference)
        || berth_common::glob::path_match(pattern, name)
}

/// Docker's `image prune` filters: `until` (created before), `label` / `label!` (labels that
/// must / must not hold), `dangling` (`false` prunes every unused image, like `-a`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PruneFilter {
    until: Vec<DateTime<Utc>>,
    labels: Vec<String>,
    not_labels: Vec<String>,
    /// `dangling=false`: all unused images, not just dangling ones.
    pub all: bool,
}

impl PruneFilter {
    /// From `--filter key=value` words, checked as Docker's daemon checks them.
    pub fn from_flags(words: &[String]) -> Result<PruneFilter> {
        let mut filter = PruneFilter::default();
        let now = Utc::now();
        for word in words {
            let (k, v) = word
                .split_once('=')
                .ok_or_else(|| ImageError::InvalidFilter(word.clone()))?;
            match k.trim().to_ascii_lowercase().as_str() {
                "until" => filter.until.push(
                    berth_common::time::parse_timestamp(v, now)
                        .ok_or_else(|| ImageError::InvalidFilter(format!("until={v}")))?,
                ),
                "label" => filter.labels.push(v.to_string()),
                "label!" => filter.not_labels.push(v.to_string()),
                "dangling" => match v {
                    "true" | "1" => {}
                    "false" | "0" => filter.all = true,
                    _ => return Err(ImageError::InvalidFilter(format!("dangling={v}"))),
                },
                other => return Err(ImageError::InvalidFilter(other.to_string())),
            }
        }
        Ok(filter)
    }

    /// Whether an image created at `created` with `labels` may be pruned.
    pub fn allows(
        &self,
        created: Option<DateTime<Utc>>,
        labels: &BTreeMap<String, String>,
    ) -> bool {
        self.until.iter().all(|u| created.is_some_and(|c| c < *u))
            && self.labels.iter().all(|l| label_matches(labels, l))
            && !self.not_labels.iter().any(|l| label_matches(labels, l))
    }
}

impl Store {
    /// `images` with Docker's filters: every image `filter` selects, newest first. With a
    /// `reference` filter only the matching tags and digests stay on each image, and an image
    /// left with none is not listed (as Docker's daemon does). `before`/`since` name images
    /// that must exist.
    pub fn list_filtered(&self, all: bool, filter: &ImageFilter) -> Result<Vec<ImageSummary>> {
        let created_of = |reference: &String| -> Result<Option<DateTime<Utc>>> {
            Ok(self.resolve(reference)?.config.created_time())
        };
        let before = filter
            .values("before")
            .first()
            .map(created_of)
            .transpose()?;
        let since = filter.values("since").first().map(created_of).transpose()?;
        let now = Utc::now();
        let until: Vec<DateTime<Utc>> = filter
            .values("until")
            .iter()
            .filter_map(|v| berth_common::time::parse_timestamp(v, now))
            .collect();
        let dangling: Vec<bool> = filter
            .values("dangling")
            .iter()
            .map(|v| v == "true" || v == "1")
            .collect();
        let references = filter.values("reference");
        let mut out = Vec::new();
        for mut image in self.list_images(all)? {
            let is_dangling = image.repo_tags.is_empty() && image.repo_digests.is_empty();
            if !dangling.is_empty() && !dangling.contains(&is_dangling) {
                continue;
            }
            let created = image.created;
            if before.is_some_and(|b| b.is_none_or(|b| created.is_none_or(|c| c >= b)))
                || since.is_some_and(|s| s.is_none_or(|s| created.is_none_or(|c| c <= s)))
                || until.iter().any(|u| created.is_none_or(|c| c > *u))
            {
                continue;
            }
            if !filter
                .values("label")
                .iter()
                .all(|l| label_matches(&image.labels, l))
            {
                continue;
            }
            if !references.is_empty() {
                let keep = |r: &String| references.iter().any(|p| reference_matches(p, r));
                image.repo_tags.retain(keep);
                image.repo_digests.retain(keep);
                if image.repo_tags.is_empty() && image.repo_digests.is_empty() {
                    continue;
                }
            }
            out.push(image);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(words: &[&str]) -> Result<ImageFilter> {
        ImageFilter::from_flags(&words.iter().map(|w| w.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn filters_are_checked_as_docker_checks_them() {
        assert!(flags(&["dangling=true", "label=a", "reference=busy*", "until=10m"]).is_ok());
        assert!(matches!(
            flags(&["colour=red"]),
            Err(ImageError::InvalidFilter(k)) if k == "colour"
        ));
        assert!(flags(&["dangling=maybe"]).is_err());
        assert!(flags(&["until=someday"]).is_err());
        assert!(flags(&["dangling"]).is_err());
    }

    #[test]
    fn references_match_as_docker_familiar_match() {
        assert!(reference_matches("busybox", "busybox:latest"));
        assert!(reference_matches("busy*", "busybox:latest"));
        assert!(reference_matches("busybox:lat*", "busybox:latest"));
        assert!(!reference_matches("busybox:1*", "busybox:latest"));
        assert!(!reference_matches("*", "library/app:1"));
        assert!(reference_matches("*/*", "library/app:1"));
        assert!(reference_matches(
            "localhost:5000/app",
            "localhost:5000/app:1"
        ));
        assert!(reference_matches("app", "app@sha256:abcd"));
        assert!(!reference_matches("other", "app:1"));
        assert!(reference_matches("busybox:1.*", "busybox:1.36"));
        assert!(!reference_matches("busybox:2", "busybox:1.36"));
    }

    #[test]
    fn labels() {
        let l: BTreeMap<String, String> = [("a".into(), "1".into())].into();
        assert!(label_matches(&l, "a"));
        assert!(label_matches(&l, "a=1"));
        assert!(!label_matches(&l, "a=2"));
        assert!(!label_matches(&l, "b"));
    }

    #[test]
    fn an_empty_store_lists_nothing_and_checks_names() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert!(store
            .list_filtered(true, &ImageFilter::default())
            .unwrap()
            .is_empty());
        assert!(store
            .list_filtered(false, &flags(&["before=ghost"]).unwrap())
            .is_err());
    }
}
