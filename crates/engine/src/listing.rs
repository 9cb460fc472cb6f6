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

/// The filter keys `ps` accepts (Docker's `acceptedPsFilterTags`).
const KEYS: &[&str] = &[
    "ancestor", "before", "expose", "exited", "health", "id", "is-task", "label", "name",
    "network", "publish", "since", "status", "volume",
];

const STATUSES: &[&str] = &[
    "created",
    "restarting",
    "running",
    "removing",
    "paused",
    "exited",
    "dead",
];

const HEALTH: &[&str] = &["starting", "healthy", "unhealthy", "none"];

/// A checked set of `ps` filters: values of one key are alternatives, different keys must all
/// match (Docker's `filters.Args`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    args: BTreeMap<String, Vec<String>>,
}

impl Filter {
    /// From `--filter key=value` words.
    pub fn from_flags(words: &[String]) -> Result<Filter> {
        let mut args: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for word in words {
            let (k, v) = word
                .split_once('=')
                .ok_or_else(|| EngineError::FilterSyntax(word.clone()))?;
            args.entry(k.trim().to_ascii_lowercase())
                .or_default()
                .push(v.to_string());
        }
        Filter::from_map(args)
    }

    /// From Docker's filter map (the API's `filters` query, already decoded).
    pub fn from_map(args: BTreeMap<String, Vec<String>>) -> Result<Filter> {
        for (key, values) in &args {
            if !KEYS.contains(&key.as_str()) {
                return Err(EngineError::InvalidFilter(key.clone()));
            }
            for v in values {
                let bad = match key.as_str() {
                    "status" => !STATUSES.contains(&v.as_str()),
                    "health" => !HEALTH.contains(&v.as_str()),
                    "exited" => v.parse::<i32>().is_err(),
                    "is-task" => v != "true" && v != "false",
                    _ => false,
                };
                if bad {
                    return Err(EngineError::InvalidFilter(format!("{key}={v}")));
                }
            }
        }
        Ok(Filter { args })
    }

    fn values(&self, key: &str) -> &[String] {
        self.args.get(key).map(Vec::as_slice).unwrap_or(&[])
    }

    fn has(&self, key: &str) -> bool {
        !self.values(key).is_empty()
    }

    /// Docker's `filters.Match`: an exact value, or a value that as a regular expression
    /// matches somewhere in `text` (an invalid expression matches nothing). No values: true.
    fn matches(&self, key: &str, texts: &[&str]) -> bool {
        let values = self.values(key);
        values.is_empty()
            || values.iter().any(|v| {
                texts.contains(&v.as_str())
                    || regex::Regex::new(v).is_ok_and(|re| texts.iter().any(|t| re.is_match(t)))
            })
    }

    /// Docker's `filters.MatchKVList`: every `k` / `k=v` value holds.
    fn labels_match(&self, labels: &BTreeMap<String, String>) -> bool {
        self.values("label")
            .iter()
            .all(|want| berth_image::filter::label_matches(labels, want))
    }
}

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

/// Whether `record` passes every filter.
fn selects(
    filter: &Filter,
    resolved: &Resolved,
    record: &ContainerRecord,
    state: Status,
    endpoints: &[berth_net::model::EndpointRecord],
    ports: &[PortBinding],
) -> bool {
    let short = record.short_name();
    let slashed = format!("/{short}");
    if !filter.matches("id", &[&record.id])
        || !filter.matches("name", &[short, &slashed])
        || !filter.labels_match(&record.config.labels)
    {
        return false;
    }
    if filter.has("status") && !filter.values("status").iter().any(|s| s == state.as_str()) {
        return false;
    }
    if filter.has("exited") {
        let exited = state == Status::Exited
            && !record.state.started_at.is_empty()
            && filter
                .values("exited")
                .iter()
                .any(|c| c.parse::<i32>().ok() == Some(record.state.exit_code));
        if !exited {
            return false;
        }
    }
    if filter.has("health") {
        let health = record
            .state
            .health
            .as_ref()
            .map(|h| h.status.to_string())
            .unwrap_or_else(|| "none".into());
        if !filter.values("health").contains(&health) {
            return false;
        }
    }
    // Berth runs no swarm tasks.
    if filter.values("is-task").iter().any(|v| v == "true") {
        return false;
    }
    if let Some(ids) = &resolved.ancestors {
        if !ids.contains(&record.image) {
            return false;
        }
    }
    let created = berth_common::time::parse_rfc3339(&record.created);
    let bound = |b: &Option<String>| b.as_deref().and_then(berth_common::time::parse_rfc3339);
    if let Some(before) = bound(&resolved.before) {
        if created.is_none_or(|c| c >= before) {
            return false;
        }
    }
    if let Some(since) = bound(&resolved.since) {
        if created.is_none_or(|c| c <= since) {
            return false;
        }
    }
    if filter.has("network")
        && !filter.values("network").iter().any(|n| {
            endpoints
                .iter()
                .any(|e| e.network_name == *n || (!n.is_empty() && e.network_id.starts_with(n)))
        })
    {
        return false;
    }
    if filter.has("volume")
        && !filter.values("volume").iter().any(|v| {
            record.mount_points.values().any(|m| {
                m.destination == *v
                    || if m.name.is_empty() {
                        m.source == *v
                    } else {
                        m.name == *v
                    }
            })
        })
    {
        return false;
    }
    if filter.has("publish")
        && !filter.values("publish").iter().any(|p| {
            ports
                .iter()
                .any(|b| port_matches(p, b.container_port, b.protocol.as_str()))
        })
    {
        return false;
    }
    if filter.has("expose") {
        let exposed: Vec<&String> = record
            .config
            .exposed_ports
            .as_ref()
            .map(|m| m.keys().collect())
            .unwrap_or_default();
        let hit = filter.values("expose").iter().any(|p| {
            exposed.iter().any(|key| {
                let (port, proto) = key.split_once('/').unwrap_or((key, "tcp"));
                port.parse::<u16>()
                    .is_ok_and(|port| port_matches(p, port, proto))
            })
        });
        if !hit {
            return false;
        }
    }
    true
}

/// `publish`/`expose` values: `80`, `80/udp`, or a range `8000-8080[/tcp]`.
fn port_matches(want: &str, port: u16, proto: &str) -> bool {
    let (range, want_proto) = want.split_once('/').unwrap_or((want, "tcp"));
    if want_proto != proto {
        return false;
    }
    let (lo, hi) = range.split_once('-').unwrap_or((range, range));
    match (lo.parse::<u16>(), hi.parse::<u16>()) {
        (Ok(lo), Ok(hi)) => (lo..=hi).contains(&port),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(words: &[&str]) -> Result<Filter> {
        Filter::from_flags(&words.iter().map(|w| w.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn filters_are_checked_as_docker_checks_them() {
        assert!(flags(&["status=running", "status=exited", "label=a=b"]).is_ok());
        assert!(matches!(
            flags(&["colour=red"]),
            Err(EngineError::InvalidFilter(k)) if k == "colour"
        ));
        assert!(matches!(
            flags(&["status=sleeping"]),
            Err(EngineError::InvalidFilter(k)) if k == "status=sleeping"
        ));
        assert!(flags(&["exited=x"]).is_err());
        assert!(flags(&["health=sick"]).is_err());
        assert!(flags(&["is-task=maybe"]).is_err());
        assert!(matches!(
            flags(&["status"]),
            Err(EngineError::FilterSyntax(_))
        ));
    }

    #[test]
    fn names_and_ids_match_exactly_or_as_regular_expressions() {
        let f = flags(&["name=^web$", "name=db"]).unwrap();
        assert!(f.matches("name", &["web", "/web"]));
        assert!(f.matches("name", &["mydb1"]));
        assert!(!f.matches("name", &["webby"]));
        let f = flags(&["id=abc"]).unwrap();
        assert!(f.matches("id", &["abcdef"]));
        assert!(!f.matches("id", &["fed"]));
        // An invalid expression matches only itself.
        let f = flags(&["name=[x"]).unwrap();
        assert!(f.matches("name", &["[x"]));
        assert!(!f.matches("name", &["x"]));
        assert!(Filter::default().matches("name", &["anything"]));
    }

    #[test]
    fn label_filters_must_all_hold() {
        let f = flags(&["label=a", "label=b=2"]).unwrap();
        let labels: BTreeMap<String, String> =
            [("a".into(), "1".into()), ("b".into(), "2".into())].into();
        assert!(f.labels_match(&labels));
        let f = flags(&["label=a", "label=c"]).unwrap();
        assert!(!f.labels_match(&labels));
    }

    #[test]
    fn port_filters() {
        assert!(port_matches("80", 80, "tcp"));
        assert!(!port_matches("80", 80, "udp"));
        assert!(port_matches("53/udp", 53, "udp"));
        assert!(port_matches("8000-8080", 8042, "tcp"));
        assert!(!port_matches("8000-8080", 9000, "tcp"));
        assert!(!port_matches("x", 1, "tcp"));
    }

    fn save(engine: &Engine, name: &str, created: &str, running: bool) -> ContainerRecord {
        let id = crate::names::new_id();
        std::fs::create_dir_all(engine.store.container_dir(&id)).unwrap();
        engine.store.reserve_name(name, &id).unwrap();
        let mut record = ContainerRecord {
            id: id.clone(),
            name: format!("/{name}"),
            created: created.into(),
            path: "sh".into(),
            ..Default::default()
        };
        record.config.labels.insert("app".into(), name.into());
        if running {
            // This test process stands in for the container's init.
            record.state.running = true;
            record.state.pid = std::process::id() as i32;
            record.state.started_at = created.into();
            record.berth_pid_start_time =
                crate::procinfo::start_time(record.state.pid).unwrap_or_default();
        } else {
            record.state.started_at = created.into();
            record.state.finished_at = created.into();
            record.state.exit_code = 3;
            record.has_been_started_before = true;
        }
        engine.store.save(&record).unwrap();
        engine
            .store
            .save_host_config(&id, &Default::default())
            .unwrap();
        record
    }

    #[test]
    fn list_applies_docker_rules_and_reports_unreadable_records() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(dir.path());
        let old = save(&engine, "old", "2024-01-01T00:00:00.000000000Z", false);
        let mid = save(&engine, "mid", "2024-01-02T00:00:00.000000000Z", true);
        let new = save(&engine, "new", "2024-01-03T00:00:00.000000000Z", false);
        let ids = |opts: ListOptions| -> Vec<String> {
            let listing = engine.list(&opts).unwrap();
            listing.rows.into_iter().map(|r| r.name).collect()
        };
        let with = |all: bool, words: &[&str]| ListOptions {
            all,
            filter: flags(words).unwrap(),
            ..Default::default()
        };
        assert_eq!(ids(with(false, &[])), ["mid"]);
        assert_eq!(ids(with(true, &[])), ["new", "mid", "old"]);
        // A status filter implies --all; exited needs it.
        assert_eq!(ids(with(false, &["status=exited"])), ["new", "old"]);
        assert_eq!(ids(with(true, &["exited=3"])), ["new", "old"]);
        assert!(ids(with(true, &["exited=0"])).is_empty());
        assert_eq!(ids(with(true, &["since=old"])), ["new", "mid"]);
        assert_eq!(ids(with(true, &["before=new", "label=app=old"])), ["old"]);
        assert_eq!(ids(with(true, &["name=^m", "name=new"])), ["new", "mid"]);
        let prefix = format!("id=^{}", &mid.id[..8]);
        assert_eq!(ids(with(true, &[prefix.as_str()])), ["mid"]);
        assert_eq!(
            ids(ListOptions {
                limit: Some(2),
                ..Default::default()
            }),
            ["new", "mid"]
        );
        assert!(matches!(
            engine.list(&with(true, &["before=ghost"])),
            Err(EngineError::NoSuchContainer(_))
        ));
        let listing = engine.list(&with(true, &[])).unwrap();
        assert_eq!(listing.rows.len(), 3);
        let row = &listing.rows[1];
        assert_eq!(row.id, mid.id);
        let cols = row.columns(false);
        assert_eq!(cols.id.len(), 12);
        assert_eq!(cols.command, "\"sh\"");
        assert_eq!(cols.state, "running");
        assert_eq!(cols.labels, "app=mid");
        assert_eq!(cols.created_at, "2024-01-02 00:00:00 +0000 UTC");

        // A corrupt record is reported with its ID and cause, and the rest still list.
        std::fs::write(
            engine.store.container_dir(&old.id).join("config.v2.json"),
            b"{not json",
        )
        .unwrap();
        std::fs::remove_file(engine.store.container_dir(&new.id).join("hostconfig.json")).unwrap();
        let listing = engine.list(&with(true, &[])).unwrap();
        assert_eq!(
            listing
                .rows
                .iter()
                .map(|r| r.name.as_str())
                .collect::<Vec<_>>(),
            ["mid"]
        );
        let mut bad: Vec<&str> = listing.unreadable.iter().map(|u| u.id.as_str()).collect();
        bad.sort();
        let mut want = vec![old.id.as_str(), new.id.as_str()];
        want.sort();
        assert_eq!(bad, want);
        let text = listing
            .unreadable
            .iter()
            .map(|u| u.to_string())
            .collect::<Vec<_>>()
            .join("\n");
        assert!(
            text.contains(&format!("container {}: unreadable record", old.id)),
            "{text}"
        );
        assert!(text.contains("config.v2.json"), "{text}");
    }
}
