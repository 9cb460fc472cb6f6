//! Reading and pruning the catalogue: `images` summaries, `history` rows, `inspect` documents,
//! and removal (`rmi`, `image prune`) with Docker's rules: a tag is only untagged while other
//! references remain; an image used by a container or with child images is refused; layers go
//! when nothing references them; untagged parents go with their last child.
use crate::config::{ContainerConfig, ImageConfig};
use crate::digest::{hex_part, with_algo};
use crate::error::{ImageError, Result};
use crate::reference::Reference;
use crate::store::{Image, Store};
use berth_common::time::parse_rfc3339 as parse_time;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// One image for `images`.
#[derive(Debug, Clone)]
pub struct ImageSummary {
    pub id: String,
    pub repo_tags: Vec<String>,
    pub repo_digests: Vec<String>,
    pub created: Option<chrono::DateTime<chrono::Utc>>,
    pub size: u64,
    pub parent: Option<String>,
    /// Untagged with children: hidden unless `-a`.
    pub intermediate: bool,
    /// The image config's `Labels`.
    pub labels: BTreeMap<String, String>,
}

/// One `history` row, newest first.
#[derive(Debug, Clone)]
pub struct HistoryRow {
    /// Image ID or `<missing>`.
    pub id: String,
    pub created: Option<chrono::DateTime<chrono::Utc>>,
    pub created_by: String,
    pub size: u64,
    pub comment: String,
    pub tags: Vec<String>,
}

/// What `rmi` / `prune` did, in Docker's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoveEvent {
    Untagged(String),
    Deleted(String),
}

fn short(id: &str) -> String {
    hex_part(id).chars().take(12).collect()
}

/// Docker's `container.Config` as `inspect` prints it (every field present).
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ConfigView {
    hostname: String,
    domainname: String,
    user: String,
    attach_stdin: bool,
    attach_stdout: bool,
    attach_stderr: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    exposed_ports: Option<BTreeMap<String, Value>>,
    tty: bool,
    open_stdin: bool,
    stdin_once: bool,
    env: Option<Vec<String>>,
    cmd: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    healthcheck: Option<crate::config::HealthConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    args_escaped: Option<bool>,
    image: String,
    volumes: Option<BTreeMap<String, Value>>,
    working_dir: String,
    entrypoint: Option<Vec<String>>,
    on_build: Option<Vec<String>>,
    labels: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stop_signal: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stop_timeout: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    shell: Option<Vec<String>>,
}

fn config_view(c: &ContainerConfig) -> ConfigView {
    ConfigView {
        hostname: c.hostname.clone().unwrap_or_default(),
        domainname: c.domainname.clone().unwrap_or_default(),
        user: c.user.clone().unwrap_or_default(),
        attach_stdin: c.attach_stdin.unwrap_or(false),
        attach_stdout: c.attach_stdout.unwrap_or(false),
        attach_stderr: c.attach_stderr.unwrap_or(false),
        exposed_ports: c.exposed_ports.clone(),
        tty: c.tty.unwrap_or(false),
        open_stdin: c.open_stdin.unwrap_or(false),
        stdin_once: c.stdin_once.unwrap_or(false),
        env: c.env.clone(),
        cmd: c.cmd.clone(),
        healthcheck: c.healthcheck.clone(),
        args_escaped: c.args_escaped,
        image: c.image.clone().unwrap_or_default(),
        volumes: c.volumes.clone(),
        working_dir: c.working_dir.clone().unwrap_or_default(),
        entrypoint: c.entrypoint.clone(),
        on_build: c.on_build.clone(),
        labels: c.labels.clone(),
        stop_signal: c.stop_signal.clone(),
        stop_timeout: c.stop_timeout,
        shell: c.shell.clone(),
    }
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GraphDriverView {
    data: BTreeMap<String, String>,
    name: String,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RootFsView {
    #[serde(rename = "Type")]
    kind: String,
    layers: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct MetadataView {
    last_tag_time: String,
}

/// `docker image inspect` for one image, fields in Docker's order.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageInspect {
    id: String,
    repo_tags: Vec<String>,
    repo_digests: Vec<String>,
    parent: String,
    comment: String,
    created: String,
    container: String,
    container_config: ConfigView,
    docker_version: String,
    author: String,
    config: ConfigView,
    architecture: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    variant: Option<String>,
    os: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    os_version: Option<String>,
    size: u64,
    virtual_size: u64,
    #[serde(rename = "GraphDriver")]
    graph_driver: GraphDriverView,
    #[serde(rename = "RootFS")]
    root_fs: RootFsView,
    metadata: MetadataView,
}

impl Store {
    /// Sum of the image's layer sizes.
    pub fn image_size(&self, config: &ImageConfig) -> u64 {
        crate::digest::chain_ids(&config.rootfs.diff_ids)
            .iter()
            .filter_map(|c| self.layer(c).ok())
            .map(|l| l.size)
            .sum()
    }

    /// All images, newest first; intermediate images only with `all`.
    pub fn list_images(&self, all: bool) -> Result<Vec<ImageSummary>> {
        let ids = self.image_ids()?;
        let mut parents = std::collections::HashSet::new();
        let mut out = Vec::new();
        for id in &ids {
            if let Some(p) = self.image_parent(id)? {
                parents.insert(p);
            }
        }
        for id in ids {
            let Ok(img) = self.image(&id) else { continue };
            let intermediate =
                img.repo_tags.is_empty() && img.repo_digests.is_empty() && parents.contains(&id);
            if intermediate && !all {
                continue;
            }
            out.push(ImageSummary {
                size: self.image_size(&img.config),
                created: img.config.created_time(),
                parent: self.image_parent(&id)?,
                id,
                repo_tags: img.repo_tags,
                repo_digests: img.repo_digests,
                intermediate,
                labels: img.config.config.and_then(|c| c.labels).unwrap_or_default(),
            });
        }
        out.sort_by(|a, b| b.created.cmp(&a.created).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    /// `history` rows, newest first, with image IDs along the recorded parent chain.
    pub fn history(&self, reference: &str) -> Result<Vec<HistoryRow>> {
        let img = self.resolve(reference)?;
        let mut rows = Vec::new();
        let mut diff_ids: Vec<String> = Vec::new();
        for h in &img.config.history {
            let mut size = 0;
            if !h.empty_layer {
                if let Some(d) = img.config.rootfs.diff_ids.get(diff_ids.len()) {
                    diff_ids.push(d.clone());
                    let chain = crate::digest::chain_ids(&diff_ids)
                        .pop()
                        .unwrap_or_default();
                    size = self.layer(&chain).map(|l| l.size).unwrap_or(0);
                }
            }
            rows.push(HistoryRow {
                id: "<missing>".into(),
                created: h.created.as_deref().and_then(parse_time),
                created_by: h.created_by.clone().unwrap_or_default(),
                size,
                comment: h.comment.clone().unwrap_or_default(),
                tags: Vec::new(),
            });
        }
        rows.reverse();
        let mut id = Some(img.id.clone());
        for row in rows.iter_mut() {
            let Some(cur) = id.take() else { break };
            let Ok(found) = self.image(&cur) else { break };
            row.id = found.id.clone();
            row.tags = found.repo_tags.clone();
            id = self.image_parent(&cur)?;
        }
        Ok(rows)
    }

    /// `GraphDriver.Data` for an image (its top layer's directories).
    fn graph_driver_data(&self, img: &Image) -> BTreeMap<String, String> {
        let mut data = BTreeMap::new();
        let Some(top) = img.top_layer() else {
            return data;
        };
        let Ok(chain) = self.layer_chain(&top) else {
            return data;
        };
        let dirs: Vec<String> = chain
            .iter()
            .map(|l| {
                self.layout
                    .layer_dir(&l.cache_id)
                    .join("diff")
                    .display()
                    .to_string()
            })
            .collect();
        if dirs.len() > 1 {
            data.insert("LowerDir".into(), dirs[1..].join(":"));
        }
        let top_dir = self.layout.layer_dir(&chain[0].cache_id);
        data.insert(
            "MergedDir".into(),
            top_dir.join("merged").display().to_string(),
        );
        data.insert(
            "UpperDir".into(),
            top_dir.join("diff").display().to_string(),
        );
        data.insert("WorkDir".into(), top_dir.join("work").display().to_string());
        data
    }

    /// The `docker image inspect` document of one image.
    pub fn inspect_image(&self, reference: &str) -> Result<ImageInspect> {
        let img = self.resolve(reference)?;
        let c = &img.config;
        let size = self.image_size(c);
        let view = ImageInspect {
            id: img.id.clone(),
            repo_tags: img.repo_tags.clone(),
            repo_digests: img.repo_digests.clone(),
            parent: self.image_parent(&img.id)?.unwrap_or_default(),
            comment: c.comment.clone().unwrap_or_default(),
            created: c
                .created
                .clone()
                .unwrap_or_else(|| "0001-01-01T00:00:00Z".into()),
            container: c.container.clone().unwrap_or_default(),
            container_config: config_view(&c.container_config.clone().unwrap_or_default()),
            docker_version: c.docker_version.clone().unwrap_or_default(),
            author: c.author.clone().unwrap_or_default(),
            config: config_view(&c.runtime_config()),
            architecture: c.architecture.clone(),
            variant: c.variant.clone(),
            os: c.os.clone(),
            os_version: c.os_version.clone(),
            size,
            virtual_size: size,
            graph_driver: GraphDriverView {
                data: self.graph_driver_data(&img),
                name: "overlay2".into(),
            },
            root_fs: RootFsView {
                kind: c.rootfs.kind.clone(),
                layers: c.rootfs.diff_ids.clone(),
            },
            metadata: MetadataView {
                last_tag_time: self
                    .image_last_updated(&img.id)?
                    .unwrap_or_else(|| "0001-01-01T00:00:00Z".into()),
            },
        };
        Ok(view)
    }

    /// Inspects each reference; a missing one yields its error in place.
    pub fn inspect_images(&self, references: &[String]) -> Vec<Result<ImageInspect>> {
        references.iter().map(|r| self.inspect_image(r)).collect()
    }

    /// Deletes an image record and the layers only it used, then (with `prune_parents`) its
    /// untagged, childless parents. Call under lock.
    fn delete_image_locked(
        &self,
        id: &str,
        prune_parents: bool,
        events: &mut Vec<RemoveEvent>,
    ) -> Result<()> {
        let cfg = self.image_config(id)?;
        let parent = self.image_parent(id)?;
        self.delete_image_record(id)?;
        events.push(RemoveEvent::Deleted(with_algo(id)));
        if let Some(top) = crate::digest::chain_ids(&cfg.rootfs.diff_ids).pop() {
            for c in self.release_layers(&top)? {
                events.push(RemoveEvent::Deleted(c));
            }
        }
        if prune_parents {
            if let Some(p) = parent {
                let (tags, digests) = self.references_of(&p)?;
                let exists = self.layout.image_content(&p).is_file();
                if exists
                    && tags.is_empty()
                    && digests.is_empty()
                    && self.image_children(&p)?.is_empty()
                    && self.containers_using_image(&p)?.is_empty()
                {
                    self.delete_image_locked(&p, true, events)?;
                }
            }
        }
        Ok(())
    }

    /// `rmi` of one reference with Docker's rules; returns what happened.
    pub fn remove_image(
        &self,
        reference: &str,
        force: bool,
        prune_parents: bool,
    ) -> Result<Vec<RemoveEvent>> {
        let id = self.resolve_id(reference)?;
        let by_name = Reference::parse_tagged(reference)
            .ok()
            .filter(|r| self.lookup_reference(r).ok().flatten().as_deref() == Some(id.as_str()));
        let _lock = self.lock()?;
        let mut events = Vec::new();
        let containers = self.containers_using_image(&id)?;
        let (tags, digests) = self.references_of(&id)?;
        if let Some(r) = by_name {
            let single_repo = tags.iter().chain(digests.iter()).all(|t| {
                Reference::parse(t)
                    .map(|x| x.familiar_name() == r.familiar_name())
                    .unwrap_or(true)
            });
            let single = single_repo && tags.len() <= 1;
            if single && !containers.is_empty() && !force {
                return Err(ImageError::Conflict(format!(
                    "conflict: unable to remove repository reference \"{reference}\" (must force) - container {} is using its referenced image {}",
                    short(&containers[0]),
                    short(&id)
                )));
            }
            if self.untag_locked(&r)?.is_some() {
                events.push(RemoveEvent::Untagged(r.familiar_string()));
            }
            // A tag went and no other tag of that repository is left: its digest references go
            // too (Docker's rule), so the image does not linger as `name@sha256:…` only.
            let (tags_left, digests_left) = self.references_of(&id)?;
            let name = r.familiar_name();
            let same_repo = |t: &String| {
                Reference::parse(t)
                    .map(|x| x.familiar_name() == name)
                    .unwrap_or(false)
            };
            if r.tag.is_some() && !tags_left.iter().any(same_repo) {
                for d in digests_left.iter().filter(|d| same_repo(d)) {
                    if let Ok(dr) = Reference::parse(d) {
                        if self.untag_locked(&dr)?.is_some() {
                            events.push(RemoveEvent::Untagged(d.clone()));
                        }
                    }
                }
            }
            let (tags_left, digests_left) = self.references_of(&id)?;
            let others = tags_left.len() + digests_left.len();
            if others > 0 || !containers.is_empty() || !self.image_children(&id)?.is_empty() {
                return Ok(events);
            }
            // Docker also drops the digest references of an image whose last tag went.
            self.delete_image_locked(&id, prune_parents, &mut events)?;
            return Ok(events);
        }
        let repos: std::collections::BTreeSet<String> = tags
            .iter()
            .chain(digests.iter())
            .filter_map(|t| Reference::parse(t).ok().map(|r| r.familiar_name()))
            .collect();
        if repos.len() > 1 && !force {
            return Err(ImageError::Conflict(format!(
                "conflict: unable to delete {} (must be forced) - image is referenced in multiple repositories",
                short(&id)
            )));
        }
        if !self.image_children(&id)?.is_empty() {
            return Err(ImageError::Conflict(format!(
                "conflict: unable to delete {} (cannot be forced) - image has dependent child images",
                short(&id)
            )));
        }
        if !containers.is_empty() && !force {
            return Err(ImageError::Conflict(format!(
                "conflict: unable to delete {} (must be forced) - image is being used by stopped container {}",
                short(&id),
                short(&containers[0])
            )));
        }
        for t in tags.iter().chain(digests.iter()) {
            if let Ok(r) = Reference::parse(t) {
                if self.untag_locked(&r)?.is_some() {
                    events.push(RemoveEvent::Untagged(t.clone()));
                }
            }
        }
        self.delete_image_locked(&id, prune_parents, &mut events)?;
        Ok(events)
    }

    /// `image prune`: dangling images (with `all`, every image no container uses). Returns the
    /// events and the bytes reclaimed.
    pub fn prune_images(&self, all: bool) -> Result<(Vec<RemoveEvent>, u64)> {
        self.prune_images_filtered(all, &crate::filter::PruneFilter::default())
    }

    /// `image prune [-a] --filter until=… label=… label!=…`: only the unused images `filter`
    /// allows.
    pub fn prune_images_filtered(
        &self,
        all: bool,
        filter: &crate::filter::PruneFilter,
    ) -> Result<(Vec<RemoveEvent>, u64)> {
        let all = all || filter.all;
        let mut events = Vec::new();
        let mut reclaimed = 0u64;
        loop {
            let mut progressed = false;
            for id in self.image_ids()? {
                let (tags, digests) = self.references_of(&id)?;
                let tagged = !tags.is_empty() || !digests.is_empty();
                let allowed = *filter == crate::filter::PruneFilter::default()
                    || self.image(&id).is_ok_and(|img| {
                        let labels = img
                            .config
                            .config
                            .as_ref()
                            .and_then(|c| c.labels.clone())
                            .unwrap_or_default();
                        filter.allows(img.config.created_time(), &labels)
                    });
                if !allowed
                    || (tagged && !all)
                    || !self.image_children(&id)?.is_empty()
                    || !self.containers_using_image(&id)?.is_empty()
                {
                    continue;
                }
                let _lock = self.lock()?;
                if !self.layout.image_content(&id).is_file() {
                    continue;
                }
                for t in tags.iter().chain(digests.iter()) {
                    if let Ok(r) = Reference::parse(t) {
                        if self.untag_locked(&r)?.is_some() {
                            events.push(RemoveEvent::Untagged(t.clone()));
                        }
                    }
                }
                let sizes: BTreeMap<String, u64> = self
                    .referenced_layers()?
                    .into_iter()
                    .filter_map(|c| self.layer(&c).ok().map(|l| (c, l.size)))
                    .collect();
                let mut ev = Vec::new();
                self.delete_image_locked(&id, false, &mut ev)?;
                for e in &ev {
                    if let RemoveEvent::Deleted(c) = e {
                        reclaimed += sizes.get(c).copied().unwrap_or(0);
                    }
                }
                events.extend(ev);
                progressed = true;
            }
            if !progressed {
                break;
            }
        }
        // Leftovers of interrupted extractions and removals (never visible as layers) go too,
        // and count: `image prune` reports what it really freed.
        reclaimed += self.sweep()?.bytes;
        Ok((events, reclaimed))
    }
}
