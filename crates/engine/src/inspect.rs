//! `berth inspect` and `berth ps` views of containers: Docker's inspect JSON (Id, State, Config,
//! HostConfig, GraphDriver, Mounts, …) plus Berth's `Namespaces` (kind → `pid:[inode]`) and
//! `Cgroups` (controller → path) read live from /proc, and the `ps` row with Docker's column
//! texts ("Up 3 seconds", "Exited (0) 2 seconds ago"). Read-only. Listing and filtering is
//! `listing`.
use crate::lifecycle::Engine;
use crate::record::{ContainerRecord, Status, ZERO_TIME};
use serde_json::{json, Value};

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
        // Docker lists the execs running at the moment; Berth keeps no exec records.
        "ExecIDs": Value::Null,
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
}
