//! Containers: list, create, inspect, start, stop, restart, kill, wait, remove, logs, top,
//! stats, pause, unpause, rename, export, changes, archive, prune. Each handler is one engine
//! call plus the translation between Docker's HTTP shapes and the engine's types.
use super::{blocking, query_bool};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use axum::extract::{Query, State};
use axum::Json;
use berth_engine::ContainerRecord;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;

type Params = Query<HashMap<String, String>>;

fn created_unix(record: &ContainerRecord) -> i64 {
    chrono::DateTime::parse_from_rfc3339(&record.created)
        .map(|t| t.timestamp())
        .unwrap_or(0)
}

/// One `GET /containers/json` entry (Docker's `ContainerSummary`).
pub fn summary_json(state: &AppState, record: &ContainerRecord) -> Value {
    let host = state
        .engine
        .store
        .load_host_config(&record.id)
        .unwrap_or_default();
    let network_mode = if host.network_mode.is_empty() {
        "none".to_string()
    } else {
        host.network_mode.clone()
    };
    let command = {
        let mut c = record.path.clone();
        for a in &record.args {
            c.push(' ');
            c.push_str(a);
        }
        c
    };
    let mounts: Vec<Value> = record
        .mount_points
        .values()
        .map(|m| {
            json!({"Type": m.r#type, "Name": m.name, "Source": m.source, "Destination": m.destination, "Driver": if m.r#type == "volume" { "local" } else { "" }, "Mode": "", "RW": m.rw, "Propagation": ""})
        })
        .collect();
    json!({
        "Id": record.id,
        "Names": [format!("/{}", record.short_name())],
        "Image": record.config.image,
        "ImageID": record.image,
        "Command": command,
        "Created": created_unix(record),
        "Ports": [],
        "Labels": record.config.labels,
        "State": record.status().as_str(),
        "Status": berth_engine::inspect::status_text(record),
        "HostConfig": {"NetworkMode": network_mode},
        "NetworkSettings": {"Networks": {}},
        "Mounts": mounts,
    })
}

/// Every container's summary, newest first (running only unless `all`).
pub fn summaries(state: &AppState, all: bool) -> ApiResult<Vec<Value>> {
    let store = &state.engine.store;
    let mut records: Vec<ContainerRecord> = store
        .list_ids()
        .iter()
        .filter_map(|id| store.load(id).ok())
        .filter(|r| all || r.is_running())
        .collect();
    records.sort_by(|a, b| b.created.cmp(&a.created));
    Ok(records.iter().map(|r| summary_json(state, r)).collect())
}

pub async fn list(State(state): State<Arc<AppState>>, Query(q): Params) -> ApiResult<Json<Value>> {
    let all = query_bool(q.get("all"));
    let limit: Option<usize> = match q.get("limit").filter(|l| !l.is_empty()) {
        Some(l) => match l.parse::<i64>() {
            Ok(n) if n > 0 => Some(n as usize),
            Ok(_) => None,
            Err(_) => return Err(ApiError::bad_request(format!("invalid limit {l:?}"))),
        },
        None => None,
    };
    blocking(move || {
        let mut out = summaries(&state, all || limit.is_some())?;
        if let Some(n) = limit {
            out.truncate(n);
        }
        Ok(Json(Value::Array(out)))
    })
    .await
}
