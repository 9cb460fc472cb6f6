//! The event log behind `berth events`: every engine action (container create/start/die/kill/
//! stop/destroy/…, exec, image pull/tag/delete/…, volume create/destroy, health status) is
//! appended by the process that did it, as one line of Docker's event JSON, to
//! `<root>/events/events.log`. Without a daemon there is no one to broadcast to: readers follow
//! the file (inotify) instead. The log is rotated by size to `events.log.1` (one old file kept,
//! as Docker keeps a bounded ring of events), under a lock so two writers never both rotate.
//!
//! Appends are single `write(2)` calls on an `O_APPEND` descriptor, so concurrent writers never
//! interleave within a line. Recording an event never fails the action it describes: errors are
//! logged and dropped.
use crate::error::{EngineError, Result};
use crate::record::ContainerRecord;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};

/// Size at which the log is rotated.
pub const ROTATE_BYTES: u64 = 4 << 20;

/// Docker's `events.Actor`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Actor {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Attributes")]
    pub attributes: BTreeMap<String, String>,
}

/// Docker's `events.Message` (the legacy `status`/`id`/`from` fields only for containers and
/// images, as Docker sends them).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Event {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub from: Option<String>,
    #[serde(rename = "Type")]
    pub kind: String,
    #[serde(rename = "Action")]
    pub action: String,
    #[serde(rename = "Actor")]
    pub actor: Actor,
    pub scope: String,
    pub time: i64,
    #[serde(rename = "timeNano")]
    pub time_nano: i64,
}

impl Event {
    /// A new event of `kind` (`container`, `image`, `volume`, `network`) happening now.
    pub fn new(kind: &str, action: &str, id: &str, attributes: BTreeMap<String, String>) -> Event {
        let now = chrono::Utc::now();
        let nanos = now.timestamp_nanos_opt().unwrap_or_default();
        let legacy = kind == "container" || kind == "image";
        Event {
            status: legacy.then(|| action.to_string()),
            id: legacy.then(|| id.to_string()),
            from: if kind == "container" {
                attributes.get("image").cloned()
            } else {
                None
            },
            kind: kind.into(),
            action: action.into(),
            actor: Actor {
                id: id.into(),
                attributes,
            },
            scope: "local".into(),
            time: nanos / 1_000_000_000,
            time_nano: nanos,
        }
    }

    /// Docker's default line: `TIME TYPE ACTION ID (k=v, …)`, the time with nine fixed digits.
    pub fn line(&self) -> String {
        let when = chrono::DateTime::from_timestamp_nanos(self.time_nano)
            .with_timezone(&chrono::Local)
            .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        let attrs: Vec<String> = self
            .actor
            .attributes
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let mut out = format!("{when} {} {} {}", self.kind, self.action, self.actor.id);
        if !attrs.is_empty() {
            out.push_str(&format!(" ({})", attrs.join(", ")));
        }
        out
    }
}

/// Attributes Docker gives container events: the image, the name, and the labels.
pub fn container_attributes(record: &crate::record::ContainerRecord) -> BTreeMap<String, String> {
    let mut attrs = record.config.labels.clone();
    attrs.insert("image".into(), record.config.image.clone());
    attrs.insert("name".into(), record.short_name().to_string());
    attrs
}

fn log_dir(root: &Path) -> PathBuf {
    root.join("events")
}

fn log_path(root: &Path) -> PathBuf {
    log_dir(root).join("events.log")
}

/// Appends `event` to the log under `root`; never fails the caller.
pub fn record(root: &Path, event: &Event) {
    if let Err(e) = append(root, event) {
        tracing::debug!("events: {e}");
    }
}

/// Records a container event with the container's attributes plus `extra`.
pub fn container(
    root: &Path,
    record_: &crate::record::ContainerRecord,
    action: &str,
    extra: &[(&str, String)],
) {
    let mut attrs = container_attributes(record_);
    for (k, v) in extra {
        attrs.insert((*k).to_string(), v.clone());
    }
    record(root, &Event::new("container", action, &record_.id, attrs));
}

/// Records an event of another kind (image, volume, network).
pub fn other(root: &Path, kind: &str, action: &str, id: &str, attrs: &[(&str, String)]) {
    let attrs = attrs
        .iter()
        .map(|(k, v)| ((*k).to_string(), v.clone()))
        .collect();
    record(root, &Event::new(kind, action, id, attrs));
}

/// Records an image event (`tag`, `untag`, `delete`, `import`, `load`, `save`, `pull`, …);
/// `name` is the reference it concerns, when there is one.
pub fn image(root: &Path, action: &str, id: &str, name: Option<&str>) {
    let attrs: Vec<(&str, String)> = name.map(|n| ("name", n.to_string())).into_iter().collect();
    other(root, "image", action, id, &attrs);
}

fn append(root: &Path, event: &Event) -> Result<()> {
    let dir = log_dir(root);
    std::fs::create_dir_all(&dir).map_err(|e| EngineError::io(&dir, e))?;
    let path = log_path(root);
    let mut line = serde_json::to_vec(event).map_err(|source| EngineError::Json {
        path: path.clone(),
        source,
    })?;
    line.push(b'\n');
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|e| EngineError::io(&path, e))?;
    file.write_all(&line)
        .map_err(|e| EngineError::io(&path, e))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    if size > ROTATE_BYTES {
        rotate(&dir, &path)?;
    }
    Ok(())
}

fn rotate(dir: &Path, path: &Path) -> Result<()> {
    let lock_path = dir.join(".lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| EngineError::io(&lock_path, e))?;
    lock.lock().map_err(|e| EngineError::io(&lock_path, e))?;
    // Someone else may have rotated while this writer waited.
    if std::fs::metadata(path).map(|m| m.len()).unwrap_or(0) > ROTATE_BYTES {
        let old = dir.join("events.log.1");
        std::fs::rename(path, &old).map_err(|e| EngineError::io(path, e))?;
    }
    Ok(())
}

/// `events --filter`: values of one key are alternatives, different keys must all match.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    by_key: BTreeMap<String, Vec<String>>,
}

impl EventFilter {
    /// From `k=v` pairs; refuses keys Docker does not know.
    pub fn new(pairs: &[(String, String)]) -> Result<EventFilter> {
        let mut by_key: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (k, v) in pairs {
            let known = [
                "type",
                "event",
                "container",
                "image",
                "label",
                "volume",
                "network",
                "scope",
                "daemon",
                "plugin",
                "node",
                "service",
                "secret",
                "config",
            ];
            if !known.contains(&k.as_str()) {
                return Err(EngineError::InvalidFilter(format!("{k}={v}")));
            }
            by_key.entry(k.clone()).or_default().push(v.clone());
        }
        Ok(EventFilter { by_key })
    }

    pub fn matches(&self, e: &Event) -> bool {
        self.by_key.iter().all(|(k, values)| {
            values.iter().any(|v| match k.as_str() {
                "type" => e.kind == *v,
                // `health_status: healthy` matches `event=health_status`.
                "event" => e.action == *v || e.action.split(':').next() == Some(v.as_str()),
                "container" => {
                    e.kind == "container"
                        && (e.actor.id.starts_with(v.as_str())
                            || e.actor.attributes.get("name") == Some(v))
                }
                "image" => {
                    let image = e.actor.attributes.get("image");
                    image == Some(v)
                        || image.is_some_and(|i| i.strip_suffix(":latest") == Some(v.as_str()))
                        || (e.kind == "image"
                            && (e.actor.id == *v || e.actor.id.contains(v.as_str())))
                }
                "label" => berth_image::filter::label_matches(&e.actor.attributes, v),
                "volume" => e.kind == "volume" && e.actor.id == *v,
                "network" => {
                    e.kind == "network"
                        && (e.actor.id == *v || e.actor.attributes.get("name") == Some(v))
                }
                "scope" => e.scope == *v,
                _ => false,
            })
        })
    }
}

/// Reads the events of the log (old file first) with `since <= time < until`, in order.
pub fn history(
    root: &Path,
    since: Option<i64>,
    until: Option<i64>,
    filter: &EventFilter,
) -> Vec<Event> {
    let mut out = Vec::new();
    for path in [log_dir(root).join("events.log.1"), log_path(root)] {
        let Ok(file) = std::fs::File::open(&path) else {
            continue;
        };
        for line in std::io::BufReader::new(file).lines().map_while(|l| l.ok()) {
            if let Ok(e) = serde_json::from_str::<Event>(&line) {
                if in_window(&e, since, until) && filter.matches(&e) {
                    out.push(e);
                }
            }
        }
    }
    out
}

fn in_window(e: &Event, since: Option<i64>, until: Option<i64>) -> bool {
    since.is_none_or(|s| e.time_nano >= s) && until.is_none_or(|u| e.time_nano <= u)
}

/// `events` without `--until` in the past: prints history from `since`, then follows the log
/// (across rotations) until `until` passes or `emit` returns false.
pub fn follow(
    root: &Path,
    since: Option<i64>,
    until: Option<i64>,
    filter: &EventFilter,
    emit: impl FnMut(&Event) -> bool,
) -> Result<()> {
    follow_while(root, since, until, filter, || true, emit)
}

/// [`follow`] for a reader that can leave between events (an API client's connection): `alive`
/// is asked at least once a second while the log is quiet, and the follow ends when it says no.
pub fn follow_while(
    root: &Path,
    since: Option<i64>,
    until: Option<i64>,
    filter: &EventFilter,
    alive: impl Fn() -> bool,
    mut emit: impl FnMut(&Event) -> bool,
) -> Result<()> {
    let dir = log_dir(root);
    std::fs::create_dir_all(&dir).map_err(|e| EngineError::io(&dir, e))?;
    let inotify = rustix::fs::inotify::init(rustix::fs::inotify::CreateFlags::CLOEXEC)
        .map_err(|e| EngineError::io(&dir, e.into()))?;
    rustix::fs::inotify::add_watch(
        &inotify,
        &dir,
        rustix::fs::inotify::WatchFlags::MODIFY
            | rustix::fs::inotify::WatchFlags::CREATE
            | rustix::fs::inotify::WatchFlags::MOVED_TO,
    )
    .map_err(|e| EngineError::io(&dir, e.into()))?;
    // History first (the rotated file, then the live one up to where it ends now).
    if let Ok(file) = std::fs::File::open(dir.join("events.log.1")) {
        for line in std::io::BufReader::new(file).lines().map_while(|l| l.ok()) {
            if let Ok(e) = serde_json::from_str::<Event>(&line) {
                if in_window(&e, since, until) && filter.matches(&e) && !emit(&e) {
                    return Ok(());
                }
            }
        }
    }
    let path = log_path(root);
    let mut current: Option<std::fs::File> = None;
    let mut pending = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        if current.is_none() {
            current = std::fs::File::open(&path).ok();
        }
        if let Some(file) = current.as_mut() {
            loop {
                let n = file.read(&mut buf).map_err(|e| EngineError::io(&path, e))?;
                if n == 0 {
                    break;
                }
                pending.extend_from_slice(&buf[..n]);
            }
            while let Some(end) = pending.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = pending.drain(..=end).collect();
                if let Ok(e) = serde_json::from_slice::<Event>(&line) {
                    if until.is_some_and(|u| e.time_nano > u) {
                        return Ok(());
                    }
                    if in_window(&e, since, until) && filter.matches(&e) && !emit(&e) {
                        return Ok(());
                    }
                }
            }
            // Rotated away: the old inode is fully read; continue with the new file.
            let rotated = match (file.metadata(), std::fs::metadata(&path)) {
                (Ok(ours), Ok(theirs)) => {
                    use std::os::unix::fs::MetadataExt;
                    ours.ino() != theirs.ino()
                }
                (Ok(_), Err(_)) => true,
                _ => false,
            };
            if rotated {
                current = None;
                pending.clear();
                continue;
            }
        }
        if until.is_some_and(|u| chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0) > u) {
            return Ok(());
        }
        if !alive() {
            return Ok(());
        }
        wait_for_change(&inotify, until);
    }
}

/// Blocks until the events directory changes (or `until` comes, or a second passes, so a
/// reader whose pipe closed notices soon).
fn wait_for_change(inotify: &rustix::fd::OwnedFd, until: Option<i64>) {
    use rustix::event::{poll, PollFd, PollFlags};
    let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0);
    let wait_ms = until
        .map(|u| ((u - now) / 1_000_000).clamp(0, 1000))
        .unwrap_or(1000);
    let timeout = rustix::event::Timespec {
        tv_sec: wait_ms / 1000,
        tv_nsec: (wait_ms % 1000) * 1_000_000,
    };
    let mut fds = [PollFd::new(inotify, PollFlags::IN)];
    if matches!(poll(&mut fds, Some(&timeout)), Ok(n) if n > 0) {
        let mut buf = [0u8; 4096];
        let _ = rustix::io::read(inotify, &mut buf);
    }
}

/// `--since`/`--until` values: RFC 3339, Unix seconds (with fraction), or a duration ago
/// (`10m`); as Unix nanoseconds.
pub fn parse_time(text: &str) -> Result<i64> {
    crate::options::parse_since(text).map(|t| t.timestamp_nanos_opt().unwrap_or(i64::MAX))
}

/// The events of one exec instance in Docker's shape (`exec_create: CMD`, `exec_start: CMD`,
/// `exec_die` with its `exitCode`), each with the exec's ID and the container's attributes. The
/// CLI's `exec`, the API's exec routes and the detached exec's waiter all record through this.
#[derive(Debug, Clone)]
pub struct ExecEvents {
    root: PathBuf,
    record: ContainerRecord,
    exec_id: String,
    command: Vec<String>,
}

impl ExecEvents {
    /// Records `exec_create` of exec `exec_id` running `command` in `record`'s container.
    pub fn created(
        root: &Path,
        record: &ContainerRecord,
        exec_id: &str,
        command: &[String],
    ) -> ExecEvents {
        let events = ExecEvents::of_existing(root, record, exec_id, command);
        events.emit(&format!("exec_create: {}", command.join(" ")), None);
        events
    }

    /// The events of an exec whose `exec_create` is already recorded.
    pub(crate) fn of_existing(
        root: &Path,
        record: &ContainerRecord,
        exec_id: &str,
        command: &[String],
    ) -> ExecEvents {
        ExecEvents {
            root: root.to_path_buf(),
            record: record.clone(),
            exec_id: exec_id.to_string(),
            command: command.to_vec(),
        }
    }

    pub fn exec_id(&self) -> &str {
        &self.exec_id
    }

    pub fn command(&self) -> &[String] {
        &self.command
    }

    /// Records `exec_start` (the process runs).
    pub fn started(&self) {
        self.emit(&format!("exec_start: {}", self.command.join(" ")), None);
    }

    /// Records `exec_die` with the process's exit code.
    pub fn died(&self, code: i32) {
        self.emit("exec_die", Some(code));
    }

    fn emit(&self, action: &str, exit_code: Option<i32>) {
        let mut attrs = vec![("execID", self.exec_id.clone())];
        if let Some(code) = exit_code {
            attrs.push(("exitCode", code.to_string()));
        }
        crate::events::container(&self.root, &self.record, action, &attrs);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_filter_and_rotate() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let attrs = BTreeMap::from([
            ("image".to_string(), "busybox".to_string()),
            ("name".to_string(), "web".to_string()),
            ("tier".to_string(), "front".to_string()),
        ]);
        record(
            root,
            &Event::new("container", "create", "abc123", attrs.clone()),
        );
        record(root, &Event::new("container", "start", "abc123", attrs));
        other(
            root,
            "volume",
            "create",
            "data",
            &[("driver", "local".into())],
        );
        let all = history(root, None, None, &EventFilter::default());
        assert_eq!(all.len(), 3);
        let json = serde_json::to_value(&all[0]).unwrap();
        for key in [
            "status", "id", "from", "Type", "Action", "Actor", "scope", "time", "timeNano",
        ] {
            assert!(json.get(key).is_some(), "{key} in {json}");
        }
        assert!(serde_json::to_value(&all[2])
            .unwrap()
            .get("status")
            .is_none());
        let f = |pairs: &[(&str, &str)]| {
            let pairs: Vec<(String, String)> = pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            history(root, None, None, &EventFilter::new(&pairs).unwrap()).len()
        };
        assert_eq!(f(&[("type", "volume")]), 1);
        assert_eq!(f(&[("event", "start")]), 1);
        assert_eq!(f(&[("container", "web"), ("event", "create")]), 1);
        assert_eq!(f(&[("event", "create"), ("event", "start")]), 3);
        assert_eq!(f(&[("label", "tier=front")]), 2);
        assert_eq!(f(&[("image", "busybox")]), 2);
        assert!(EventFilter::new(&[("colour".into(), "x".into())]).is_err());
        assert!(all[0]
            .line()
            .contains("container create abc123 (image=busybox, name=web, tier=front)"));

        // Rotation keeps one old file and loses nothing recent.
        let big = "x".repeat(64 << 10);
        for _ in 0..70 {
            other(root, "volume", "create", &big, &[]);
        }
        assert!(root.join("events/events.log.1").exists());
        let len = std::fs::metadata(root.join("events/events.log"))
            .unwrap()
            .len();
        assert!(len <= ROTATE_BYTES + (70 << 10));
        // Follow with an until already passed ends after the history.
        let mut seen = 0;
        let now = chrono::Utc::now().timestamp_nanos_opt().unwrap();
        follow(root, None, Some(now), &EventFilter::default(), |_| {
            seen += 1;
            true
        })
        .unwrap();
        assert!(seen >= 70);
    }
}
