//! Docker's `ps` filters: which keys and values are accepted, and whether a record passes them.

use super::*;

/// The filter keys `ps` accepts (Docker's `acceptedPsFilterTags`).
pub(super) const KEYS: &[&str] = &[
    "ancestor", "before", "expose", "exited", "health", "id", "is-task", "label", "name",
    "network", "publish", "since", "status", "volume",
];

pub(super) const STATUSES: &[&str] = &[
    "created",
    "restarting",
    "running",
    "removing",
    "paused",
    "exited",
    "dead",
];

pub(super) const HEALTH: &[&str] = &["starting", "healthy", "unhealthy", "none"];

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

    pub(super) fn values(&self, key: &str) -> &[String] {
        self.args.get(key).map(Vec::as_slice).unwrap_or(&[])
    }

    pub(super) fn has(&self, key: &str) -> bool {
        !self.values(key).is_empty()
    }

    /// Docker's `filters.Match`: an exact value, or a value that as a regular expression
    /// matches somewhere in `text` (an invalid expression matches nothing). No values: true.
    pub(super) fn matches(&self, key: &str, texts: &[&str]) -> bool {
        let values = self.values(key);
        values.is_empty()
            || values.iter().any(|v| {
                texts.contains(&v.as_str())
                    || regex::Regex::new(v).is_ok_and(|re| texts.iter().any(|t| re.is_match(t)))
            })
    }

    /// Docker's `filters.MatchKVList`: every `k` / `k=v` value holds.
    pub(super) fn labels_match(&self, labels: &BTreeMap<String, String>) -> bool {
        self.values("label")
            .iter()
            .all(|want| berth_image::filter::label_matches(labels, want))
    }
}

/// Whether `record` passes every filter.
pub(super) fn selects(
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
pub(super) fn port_matches(want: &str, port: u16, proto: &str) -> bool {
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
