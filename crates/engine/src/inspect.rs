//! `berth inspect` and `berth ps` views of containers: Docker's inspect JSON (Id, State, Config,
//! HostConfig, GraphDriver, Mounts, …) plus Berth's `Namespaces` (kind → `pid:[inode]`) and
//! `Cgroups` (controller → path) read live from /proc, and the `ps` row with Docker's column
//! texts ("Up 3 seconds", "Exited (0) 2 seconds ago"). Read-only.
use crate::lifecycle::Engine;
use crate::record::{ContainerRecord, Status, ZERO_TIME};
use serde_json::{json, Value};

/// Docker's `units.HumanDuration`.
pub fn human_duration(d: chrono::Duration) -> String {
    let secs = d.num_seconds();
    let mins = d.num_minutes();
    let hours = d.num_hours();
    if secs < 1 {
        "Less than a second".into()
    } else if secs == 1 {
        "1 second".into()
    } else if secs < 60 {
        format!("{secs} seconds")
    } else if mins == 1 {
        "About a minute".into()
    } else if mins < 60 {
        format!("{mins} minutes")
    } else if (hours as f64) < 1.5 && hours <= 1 {
        "About an hour".into()
    } else if hours < 48 {
        format!("{hours} hours")
    } else if hours < 24 * 7 * 2 {
        format!("{} days", hours / 24)
    } else if hours < 24 * 30 * 2 {
        format!("{} weeks", hours / 24 / 7)
    } else if hours < 24 * 365 * 2 {
        format!("{} months", hours / 24 / 30)
    } else {
        format!("{} years", hours / 24 / 365)
    }
}

fn parse_time(text: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
}

fn since(text: &str) -> String {
    match parse_time(text) {
        Some(t) => human_duration(chrono::Utc::now() - t),
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
pub fn command_text(record: &ContainerRecord, no_trunc: bool) -> String {
    let mut cmd = record.path.clone();
    for a in &record.args {
        cmd.push(' ');
        cmd.push_str(a);
    }
    if !no_trunc && cmd.chars().count() > 20 {
        cmd = format!("{}…", cmd.chars().take(19).collect::<String>());
    }
    format!("\"{cmd}\"")
}

/// One `ps` row, with Docker's `--format` field names.
pub fn ps_row(record: &ContainerRecord, no_trunc: bool) -> Value {
    let id = if no_trunc {
        record.id.clone()
    } else {
        record.id.chars().take(12).collect()
    };
    let status = record.status();
    json!({
        "ID": id,
        "Image": record.config.image,
        "Command": command_text(record, no_trunc),
        "CreatedAt": record.created,
        "RunningFor": format!("{} ago", since(&record.created)),
        "Status": status_text(record),
        "State": status.as_str(),
        "Ports": crate::network::record_root(record)
            .map(|root| berth_net::ports::ports_column(&crate::network::published(&root, &record.id)))
            .unwrap_or_default(),
        "Names": record.short_name(),
        "Labels": record.config.labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(","),
        "Mounts": record.mount_points.values().map(|m| if m.name.is_empty() { m.source.clone() } else { m.name.clone() }).collect::<Vec<_>>().join(","),
        "Networks": record_network(record),
        "LocalVolumes": record.mount_points.values().filter(|m| m.r#type == "volume").count().to_string(),
        "Size": "0B",
    })
}

fn record_network(record: &ContainerRecord) -> String {
    let eps = crate::network::record_root(record)
        .map(|root| crate::network::endpoints(&root, &record.id))
        .unwrap_or_default();
    if eps.is_empty() {
        return "none".into();
    }
    eps.iter()
        .map(|e| e.network_name.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// The full inspect document for one container.
pub fn inspect(engine: &Engine, record: &ContainerRecord) -> Value {
    let host = engine
        .store
        .load_host_config(&record.id)
        .unwrap_or_default();
    let status = record.status();
    let running = matches!(status, Status::Running | Status::Paused);
    let pid = if running { record.state.pid } else { 0 };
    let namespaces = if running {
        crate::procinfo::namespaces(pid)
    } else {
        Default::default()
    };
    let cgroups = if running {
        crate::procinfo::cgroups(pid)
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
    let mounts: Vec<Value> = record
        .mount_points
        .values()
        .map(|m| {
            json!({
                "Type": m.r#type,
                "Name": if m.name.is_empty() { Value::Null } else { json!(m.name) },
                "Source": m.source,
                "Destination": m.destination,
                "Driver": if m.r#type == "volume" { "local" } else { "" },
                "Mode": "",
                "RW": m.rw,
                "Propagation": if m.r#type == "bind" { "rprivate" } else { "" },
            })
        })
        .collect();
    let network_mode = if host.network_mode.is_empty() {
        "none".to_string()
    } else {
        host.network_mode.clone()
    };
    let mut host_json = serde_json::to_value(&host).unwrap_or(Value::Null);
    if let Some(obj) = host_json.as_object_mut() {
        obj.insert("NetworkMode".into(), json!(network_mode));
    }
    let mut state = json!({
            "Status": status.as_str(),
            "Running": running,
            "Paused": status == Status::Paused,
            "Restarting": status == Status::Restarting,
            "OOMKilled": record.state.oom_killed,
            "Dead": status == Status::Dead,
            "Pid": pid,
            "ExitCode": record.state.exit_code,
            "Error": record.state.error,
            "StartedAt": time_or_zero(&record.state.started_at),
            "FinishedAt": time_or_zero(&record.state.finished_at),
    });
    if let Some(health) = &record.state.health {
        state["Health"] = json!(health);
    }
    json!({
        "Id": record.id,
        "Created": record.created,
        "Path": record.path,
        "Args": record.args,
        "State": state,
        "Image": record.image,
        "ResolvConfPath": record.resolv_conf_path,
        "HostnamePath": record.hostname_path,
        "HostsPath": record.hosts_path,
        "LogPath": record.log_path,
        "Name": record.name,
        "RestartCount": record.restart_count,
        "Driver": record.driver,
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "HostConfig": host_json,
        "GraphDriver": {
            "Data": {
                "LowerDir": record.berth_layer.lower_dir,
                "MergedDir": record.berth_layer.merged_dir,
                "UpperDir": record.berth_layer.upper_dir,
                "WorkDir": record.berth_layer.work_dir,
            },
            "Name": record.driver,
        },
        "Mounts": mounts,
        "Config": record.config,
        "NetworkSettings": crate::network::settings_json(
            engine.root(),
            &record.id,
            &network_mode,
            &record.config.exposed_ports.as_ref().map(|m| m.keys().cloned().collect::<Vec<_>>()).unwrap_or_default(),
        ),
        "Namespaces": namespaces,
        "Cgroups": cgroups,
        "CgroupsPath": record.berth_cgroups_path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_durations_and_commands() {
        assert_eq!(human_duration(chrono::Duration::seconds(3)), "3 seconds");
        assert_eq!(
            human_duration(chrono::Duration::seconds(70)),
            "About a minute"
        );
        assert_eq!(human_duration(chrono::Duration::minutes(5)), "5 minutes");
        assert_eq!(human_duration(chrono::Duration::hours(3)), "3 hours");
        let r = ContainerRecord {
            path: "sh".into(),
            args: vec!["-c".into(), "sleep 1000000000000".into()],
            ..Default::default()
        };
        assert_eq!(command_text(&r, false), "\"sh -c sleep 1000000…\"");
        assert_eq!(status_text(&r), "Created");
    }
}
