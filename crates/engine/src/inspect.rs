//! `berth inspect` and `berth ps` views of containers: Docker's inspect JSON (Id, State, Config,
//! HostConfig, GraphDriver, Mounts, …) plus Berth's `Namespaces` (kind → `pid:[inode]`) and
//! `Cgroups` (controller → path) read live from /proc, and the `ps` row with Docker's column
//! texts ("Up 3 seconds", "Exited (0) 2 seconds ago"). Read-only. Listing and filtering is
//! `listing`.
use crate::health::Health;
use crate::lifecycle::Engine;
use crate::options::{ContainerConfig, HostConfig};
use crate::record::{ContainerRecord, Status, ZERO_TIME};
use serde::Serialize;
use std::collections::BTreeMap;

mod network_settings;
pub use network_settings::{
    Address, EndpointIpamConfig, EndpointSettings, NetworkSettings, PortBindingView,
};

/// How long ago the RFC 3339 time `text` was, as Docker says it ("3 seconds").
pub(crate) fn since(text: &str) -> String {
    match berth_common::time::parse_rfc3339(text) {
        Some(t) => berth_common::time::human_duration((chrono::Utc::now() - t).num_seconds()),
        None => "Less than a second".into(),
    }
}

/// Docker's STATUS column.
pub fn status_text(record: &ContainerRecord) -> String {
    match record.status() {
        Status::Created => "Created".into(),
        Status::Running => match &record.state.health {
            Some(h) => format!("Up {} ({})", since(&record.state.started_at), h.ps_text()),
            None => format!("Up {}", since(&record.state.started_at)),
        },
        Status::Paused => format!("Up {} (Paused)", since(&record.state.started_at)),
        Status::Restarting => format!(
            "Restarting ({}) {} ago",
            record.state.exit_code,
            since(&record.state.finished_at)
        ),
        Status::Removing => "Removal In Progress".into(),
        Status::Dead => "Dead".into(),
        Status::Exited => {
            if record.state.finished_at.is_empty() {
                format!("Exited ({})", record.state.exit_code)
            } else {
                format!(
                    "Exited ({}) {} ago",
                    record.state.exit_code,
                    since(&record.state.finished_at)
                )
            }
        }
    }
}

/// Docker's COMMAND column: the quoted command line, cut to 20 characters unless `no_trunc`.
pub fn quoted_command(command: &str, no_trunc: bool) -> String {
    let cmd = if no_trunc {
        command.to_string()
    } else {
        berth_common::units::ellipsis(command, 20)
    };
    format!("\"{cmd}\"")
}

/// `inspect` of one container, Docker's `ContainerJSON` field for field and in Docker's order,
/// plus Berth's live `Namespaces`, `Cgroups` and `CgroupsPath`. The CLI and the API service
/// both serialize this one struct.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerInspect {
    pub id: String,
    pub created: String,
    pub path: String,
    pub args: Vec<String>,
    pub state: StateView,
    pub image: String,
    pub resolv_conf_path: String,
    pub hostname_path: String,
    pub hosts_path: String,
    pub log_path: String,
    pub name: String,
    pub restart_count: i64,
    pub driver: String,
    pub platform: String,
    pub mount_label: String,
    pub process_label: String,
    pub app_armor_profile: String,
    /// Docker lists the execs running at the moment; Berth keeps no exec records (null).
    #[serde(rename = "ExecIDs")]
    pub exec_ids: Option<Vec<String>>,
    pub host_config: HostConfig,
    pub graph_driver: GraphDriverView,
    pub mounts: Vec<MountView>,
    pub config: ContainerConfig,
    /// Docker's `NetworkSettings`, as the network door describes the container's endpoints.
    pub network_settings: NetworkSettings,
    /// Namespace kind → `kind:[inode]` of the running init (empty when it is not running).
    pub namespaces: BTreeMap<String, String>,
    /// Controller → cgroup path of the running init (empty when it is not running).
    pub cgroups: BTreeMap<String, String>,
    pub cgroups_path: String,
}

/// Docker's `State` of a container in `inspect`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct StateView {
    pub status: String,
    pub running: bool,
    pub paused: bool,
    pub restarting: bool,
    #[serde(rename = "OOMKilled")]
    pub oom_killed: bool,
    pub dead: bool,
    pub pid: i32,
    pub exit_code: i32,
    pub error: String,
    pub started_at: String,
    pub finished_at: String,
    /// Only for a container with a health check.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health: Option<Health>,
}

/// Docker's `GraphDriver`: the overlay directories of the container's layer.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GraphDriverView {
    pub data: GraphDriverData,
    pub name: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GraphDriverData {
    pub lower_dir: String,
    pub merged_dir: String,
    pub upper_dir: String,
    pub work_dir: String,
}

/// One of Docker's `Mounts` entries.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct MountView {
    #[serde(rename = "Type")]
    pub kind: String,
    /// The volume's name (null for binds and tmpfs).
    pub name: Option<String>,
    pub source: String,
    pub destination: String,
    pub driver: String,
    pub mode: String,
    #[serde(rename = "RW")]
    pub rw: bool,
    pub propagation: String,
}

/// The inspect view of one container, read now (its init's namespaces and cgroups live).
pub fn inspect(
    engine: &Engine,
    record: &ContainerRecord,
) -> crate::error::Result<ContainerInspect> {
    let mut host = engine
        .store
        .load_host_config(&record.id)
        .unwrap_or_default();
    let status = record.status();
    let running = matches!(status, Status::Running | Status::Paused);
    let pid = if running { record.state.pid } else { 0 };
    let (namespaces, cgroups) = if running {
        (
            crate::procinfo::namespaces(pid),
            crate::procinfo::cgroups(pid),
        )
    } else {
        Default::default()
    };
    let time_or_zero = |t: &str| {
        if t.is_empty() {
            ZERO_TIME.to_string()
        } else {
            t.to_string()
        }
    };
    let mounts = record
        .mount_points
        .values()
        .map(|m| MountView {
            kind: m.r#type.clone(),
            name: (!m.name.is_empty()).then(|| m.name.clone()),
            source: m.source.clone(),
            destination: m.destination.clone(),
            driver: if m.r#type == "volume" { "local" } else { "" }.into(),
            mode: String::new(),
            rw: m.rw,
            propagation: if m.r#type == "bind" { "rprivate" } else { "" }.into(),
        })
        .collect();
    if host.network_mode.is_empty() {
        host.network_mode = "none".into();
    }
    let exposed: Vec<String> = record
        .config
        .exposed_ports
        .as_ref()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    let network_settings =
        network_settings::settings(engine.root(), &record.id, &host.network_mode, &exposed);
    Ok(ContainerInspect {
        id: record.id.clone(),
        created: record.created.clone(),
        path: record.path.clone(),
        args: record.args.clone(),
        state: StateView {
            status: status.as_str().into(),
            running,
            paused: status == Status::Paused,
            restarting: status == Status::Restarting,
            oom_killed: record.state.oom_killed,
            dead: status == Status::Dead,
            pid,
            exit_code: record.state.exit_code,
            error: record.state.error.clone(),
            started_at: time_or_zero(&record.state.started_at),
            finished_at: time_or_zero(&record.state.finished_at),
            health: record.state.health.clone(),
        },
        image: record.image.clone(),
        resolv_conf_path: record.resolv_conf_path.clone(),
        hostname_path: record.hostname_path.clone(),
        hosts_path: record.hosts_path.clone(),
        log_path: record.log_path.clone(),
        name: record.name.clone(),
        restart_count: record.restart_count,
        driver: record.driver.clone(),
        platform: "linux".into(),
        mount_label: String::new(),
        process_label: String::new(),
        app_armor_profile: String::new(),
        exec_ids: None,
        host_config: host,
        graph_driver: GraphDriverView {
            data: GraphDriverData {
                lower_dir: record.berth_layer.lower_dir.clone(),
                merged_dir: record.berth_layer.merged_dir.clone(),
                upper_dir: record.berth_layer.upper_dir.clone(),
                work_dir: record.berth_layer.work_dir.clone(),
            },
            name: record.driver.clone(),
        },
        mounts,
        config: record.config.clone(),
        network_settings,
        namespaces,
        cgroups,
        cgroups_path: record.berth_cgroups_path.clone(),
    })
}

/// Asserts that `keys` stand in `text` in this order (a serialized view's field order).
#[cfg(test)]
pub(crate) fn assert_in_order(text: &str, keys: &[&str]) {
    let mut at = 0;
    for key in keys {
        let found = text[at..]
            .find(key)
            .unwrap_or_else(|| panic!("{key} after {at} in {text}"));
        at += found + key.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_commands_and_status() {
        assert_eq!(
            quoted_command("sh -c sleep 1000000000000", false),
            "\"sh -c sleep 1000000…\""
        );
        assert_eq!(quoted_command("sh -c sleep 1", true), "\"sh -c sleep 1\"");
        let r = ContainerRecord {
            path: "sh".into(),
            ..Default::default()
        };
        assert_eq!(status_text(&r), "Created");
    }

    #[test]
    fn inspect_has_dockers_fields_in_dockers_order() {
        let root = tempfile::tempdir().unwrap();
        let engine = Engine::open(root.path());
        let mut r = ContainerRecord {
            id: "abc".into(),
            name: "/web".into(),
            path: "sh".into(),
            ..Default::default()
        };
        r.mount_points.insert(
            "/data".into(),
            crate::record::MountPoint {
                r#type: "bind".into(),
                source: "/srv".into(),
                destination: "/data".into(),
                rw: true,
                ..Default::default()
            },
        );
        let text = serde_json::to_string(&inspect(&engine, &r).unwrap()).unwrap();
        let order = [
            "\"Id\"",
            "\"Created\"",
            "\"Path\"",
            "\"Args\"",
            "\"State\"",
            "\"Status\"",
            "\"OOMKilled\"",
            "\"FinishedAt\"",
            "\"Image\"",
            "\"ResolvConfPath\"",
            "\"Name\"",
            "\"RestartCount\"",
            "\"Driver\"",
            "\"Platform\"",
            "\"ExecIDs\":null",
            "\"HostConfig\"",
            "\"GraphDriver\"",
            "\"LowerDir\"",
            "\"Mounts\"",
            "\"Type\":\"bind\",\"Name\":null",
            "\"RW\":true,\"Propagation\":\"rprivate\"",
            "\"Config\"",
            "\"NetworkSettings\"",
            "\"Namespaces\"",
            "\"Cgroups\"",
            "\"CgroupsPath\"",
        ];
        assert_in_order(&text, &order);
        assert!(
            !text.contains("\"Health\""),
            "no Health without a health check: {text}"
        );
        assert!(text.contains("\"NetworkMode\":\"none\""), "{text}");
    }
}
