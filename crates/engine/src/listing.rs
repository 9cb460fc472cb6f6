//! Listing containers: Docker's `ps` filters (`id`, `name`, `label`, `status`, `exited`,
//! `ancestor`, `before`, `since`, `network`, `volume`, `health`, `is-task`, `publish`, `expose`)
//! over the record store, and the typed row each listed container becomes. `berth ps` and the
//! API's `GET /containers/json` both call [`Engine::list`]: one set of rules, so they never
//! disagree. Unreadable records are returned beside the rows, never dropped.
use crate::error::{EngineError, Result};
use crate::lifecycle::Engine;
use crate::record::{ContainerRecord, MountPoint, Status, UnreadableRecord};
use berth_net::ports::PortBinding;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

mod filter;
use filter::selects;
pub use filter::Filter;

/// What to list.
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    /// Stopped containers too (implied by `limit` and by a `status` filter, as in Docker).
    pub all: bool,
    /// The newest `n` containers, in every state.
    pub limit: Option<usize>,
    /// Compute each container's size (its own layer, and with its image).
    pub size: bool,
    pub filter: Filter,
}

/// A container's size: bytes in its own layer, and those plus its image's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ContainerSize {
    pub rw: u64,
    pub root_fs: u64,
}

/// One listed container, typed (the CLI's columns come from [`PsRow::columns`], the API's
/// `ContainerSummary` from the fields).
#[derive(Debug, Clone)]
pub struct PsRow {
    pub id: String,
    /// Without Docker's leading `/`.
    pub name: String,
    /// The image as the user named it.
    pub image: String,
    /// `sha256:…`.
    pub image_id: String,
    /// Path and arguments, unquoted.
    pub command: String,
    /// RFC 3339.
    pub created: String,
    pub state: Status,
    /// Docker's STATUS text ("Up 3 seconds").
    pub status: String,
    pub ports: Vec<PortBinding>,
    pub labels: BTreeMap<String, String>,
    pub mounts: Vec<MountPoint>,
    /// Names of the networks it is attached to.
    pub networks: Vec<String>,
    /// `HostConfig.NetworkMode` (`none` when unset).
    pub network_mode: String,
    pub size: Option<ContainerSize>,
}

/// The `ps --format` fields, with Docker's names (in the order Docker's JSON prints them).
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct PsColumns {
    pub command: String,
    pub created_at: String,
    #[serde(rename = "ID")]
    pub id: String,
    pub image: String,
    pub labels: String,
    pub local_volumes: String,
    pub mounts: String,
    pub names: String,
    pub networks: String,
    /// Docker's `Platform` (null for an image without one recorded, as Docker shows it).
    pub platform: Option<serde_json::Value>,
    pub ports: String,
    pub running_for: String,
    pub size: String,
    pub state: String,
    pub status: String,
}

/// What [`Engine::list`] found.
#[derive(Debug, Default)]
pub struct Listing {
    /// Newest first.
    pub rows: Vec<PsRow>,
    /// Records that exist but could not be read: the caller reports them.
    pub unreadable: Vec<UnreadableRecord>,
}

impl PsRow {
    /// Seconds since the epoch of `created` (0 when unparsable).
    pub fn created_unix(&self) -> i64 {
        berth_common::time::parse_rfc3339(&self.created)
            .map(|t| t.timestamp())
            .unwrap_or(0)
    }

    /// Docker's `ps` columns; `no_trunc` keeps full IDs and commands.
    pub fn columns(&self, no_trunc: bool) -> PsColumns {
        let created = berth_common::time::parse_rfc3339(&self.created);
        PsColumns {
            command: crate::inspect::quoted_command(&self.command, no_trunc),
            created_at: created
                .map(berth_common::time::docker_cli_time)
                .unwrap_or_default(),
            id: if no_trunc {
                self.id.clone()
            } else {
                self.id.chars().take(12).collect()
            },
            image: self.image.clone(),
            labels: self
                .labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(","),
            local_volumes: self
                .mounts
                .iter()
                .filter(|m| m.r#type == "volume")
                .count()
                .to_string(),
            mounts: self
                .mounts
                .iter()
                .map(|m| {
                    if m.name.is_empty() {
                        m.source.as_str()
                    } else {
                        m.name.as_str()
                    }
                })
                .collect::<Vec<_>>()
                .join(","),
            names: self.name.clone(),
            networks: self.networks.join(","),
            platform: None,
            ports: berth_net::ports::ports_column(&self.ports),
            running_for: format!("{} ago", crate::inspect::since(&self.created)),
            size: match self.size {
                Some(s) => format!(
                    "{} (virtual {})",
                    berth_common::units::human_size(s.rw),
                    berth_common::units::human_size(s.root_fs)
                ),
                None => "0B".into(),
            },
            state: self.state.as_str().into(),
            status: self.status.clone(),
        }
    }
}

/// Filters resolved against the stores once per listing.
struct Resolved {
    /// Image IDs an `ancestor` filter accepts (the named images and their descendants).
    ancestors: Option<BTreeSet<String>>,
    before: Option<String>,
    since: Option<String>,
}

impl Engine {
    /// `ps` / `GET /containers/json`: the containers `opts` selects, newest first, plus every
    /// record that could not be read. Fails on a filter naming a container that does not exist
    /// (`before`/`since`), or when sizes were asked for and the image store cannot be read.
    pub fn list(&self, opts: &ListOptions) -> Result<Listing> {
        let filter = &opts.filter;
        let all_records = self.store.load_all();
        let resolved = Resolved {
            ancestors: if filter.has("ancestor") {
                Some(self.ancestor_ids(filter.values("ancestor"))?)
            } else {
                None
            },
            before: self.bound(filter.values("before"))?,
            since: self.bound(filter.values("since"))?,
        };
        let all = opts.all || opts.limit.is_some() || filter.has("status");
        let image_sizes: BTreeMap<String, u64> = if opts.size {
            self.layers
                .store()?
                .list_images(true)?
                .into_iter()
                .map(|i| (i.id, i.size))
                .collect()
        } else {
            BTreeMap::new()
        };
        let mut listing = Listing {
            rows: Vec::new(),
            unreadable: all_records.unreadable,
        };
        for record in all_records.records {
            if opts.limit.is_some_and(|n| listing.rows.len() >= n) {
                break;
            }
            let state = record.status();
            let running = matches!(state, Status::Running | Status::Paused | Status::Restarting);
            if !all && !running {
                continue;
            }
            let host = match self.store.load_host_config(&record.id) {
                Ok(h) => h,
                Err(error) => {
                    listing.unreadable.push(UnreadableRecord {
                        id: record.id.clone(),
                        error,
                    });
                    continue;
                }
            };
            let endpoints = crate::network::endpoints(self.root(), &record.id);
            let network_mode = if host.network_mode.is_empty() {
                "none".to_string()
            } else {
                host.network_mode.clone()
            };
            let networks: Vec<String> = if endpoints.is_empty() {
                vec![match crate::network::mode(&network_mode) {
                    crate::network::Mode::Host => "host".to_string(),
                    _ => "none".to_string(),
                }]
            } else {
                endpoints.iter().map(|e| e.network_name.clone()).collect()
            };
            let ports: Vec<PortBinding> = endpoints.iter().flat_map(|e| e.ports.clone()).collect();
            if !selects(filter, &resolved, &record, state, &endpoints, &ports) {
                continue;
            }
            let size = opts.size.then(|| {
                let rw = crate::housekeeping::container_size(&record);
                ContainerSize {
                    rw,
                    root_fs: rw + image_sizes.get(&record.image).copied().unwrap_or(0),
                }
            });
            listing.rows.push(PsRow {
                command: command_line(&record),
                status: crate::inspect::status_text(&record),
                name: record.short_name().to_string(),
                image: record.config.image.clone(),
                image_id: record.image.clone(),
                created: record.created.clone(),
                state,
                ports,
                labels: record.config.labels.clone(),
                mounts: record.mount_points.values().cloned().collect(),
                networks,
                network_mode,
                size,
                id: record.id,
            });
        }
        Ok(listing)
    }

    /// The creation time of the container a `before`/`since` filter names.
    fn bound(&self, values: &[String]) -> Result<Option<String>> {
        match values.first() {
            Some(reference) => Ok(Some(self.lookup(reference)?.created)),
            None => Ok(None),
        }
    }

    /// The images an `ancestor` filter names, and every image built on one of them. A name
    /// that resolves to no image adds nothing (Docker lists nothing for it).
    fn ancestor_ids(&self, references: &[String]) -> Result<BTreeSet<String>> {
        let store = self.layers.store()?;
        let mut wanted = BTreeSet::new();
        for reference in references {
            match store.resolve_id(reference) {
                Ok(id) => {
                    wanted.insert(id);
                }
                Err(berth_image::ImageError::NoSuchImage(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        if wanted.is_empty() {
            return Ok(wanted);
        }
        let parents: BTreeMap<String, Option<String>> = store
            .list_images(true)?
            .into_iter()
            .map(|i| (i.id, i.parent))
            .collect();
        let mut out = wanted.clone();
        for id in parents.keys() {
            // Walk up the parent chain (bounded by the number of images: no cycles).
            let mut cur = Some(id.clone());
            for _ in 0..=parents.len() {
                let Some(c) = cur else { break };
                if wanted.contains(&c) {
                    out.insert(id.clone());
                    break;
                }
                cur = parents.get(&c).cloned().flatten();
            }
        }
        Ok(out)
    }
}

fn command_line(record: &ContainerRecord) -> String {
    let mut c = record.path.clone();
    for a in &record.args {
        c.push(' ');
        c.push_str(a);
    }
    c
}

#[cfg(test)]
mod tests;
