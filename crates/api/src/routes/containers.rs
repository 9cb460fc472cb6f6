//! Containers: list, create, inspect, start, stop, restart, kill, wait, remove, logs, top,
//! stats, pause, unpause, rename, export, changes, archive, prune. Each handler is one engine
//! call plus the translation between Docker's HTTP shapes and the engine's types.
use super::{blocking, query_bool};
use crate::error::{ApiError, ApiResult};
use crate::hijack;
use crate::state::{AppState, PendingAttach};
use crate::streams::{blocking_body, ChannelWriter};
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use berth_engine::attach;
use berth_engine::logs::LogOptions;
use berth_engine::options::NetworkingOptions;
use berth_engine::{ContainerRecord, Filter, HostConfig, ListOptions, PsRow, RunOptions};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use tokio::sync::watch;

mod create_body;
mod logs_attach;
mod wait;
pub use create_body::run_options;
pub use logs_attach::{attach, logs};
use wait::set_exit;
pub use wait::wait;

type Params = Query<HashMap<String, String>>;

/// One `GET /containers/json` entry (Docker's `ContainerSummary`) from the engine's typed row.
pub fn summary_json(row: &PsRow) -> Value {
    let mounts: Vec<Value> = row
        .mounts
        .iter()
        .map(|m| {
            json!({"Type": m.r#type, "Name": m.name, "Source": m.source, "Destination": m.destination, "Driver": if m.r#type == "volume" { "local" } else { "" }, "Mode": "", "RW": m.rw, "Propagation": ""})
        })
        .collect();
    let ports: Vec<Value> = row
        .ports
        .iter()
        .map(|p| {
            json!({
                "IP": p.host_ip.map(|ip| ip.to_string()).unwrap_or_else(|| "0.0.0.0".into()),
                "PrivatePort": p.container_port,
                "PublicPort": p.host_port,
                "Type": p.protocol.as_str(),
            })
        })
        .collect();
    let networks: serde_json::Map<String, Value> = row
        .networks
        .iter()
        .map(|n| (n.clone(), json!({})))
        .collect();
    let mut summary = json!({
        "Id": row.id,
        "Names": [format!("/{}", row.name)],
        "Image": row.image,
        "ImageID": row.image_id,
        "Command": row.command,
        "Created": row.created_unix(),
        "Ports": ports,
        "Labels": row.labels,
        "State": row.state.as_str(),
        "Status": row.status,
        "HostConfig": {"NetworkMode": row.network_mode},
        "NetworkSettings": {"Networks": networks},
        "Mounts": mounts,
    });
    if let Some(size) = row.size {
        summary["SizeRw"] = json!(size.rw);
        summary["SizeRootFs"] = json!(size.root_fs);
    }
    summary
}

/// The containers `opts` selects, as Docker's summaries. Unreadable records are logged (the
/// API's list has no place for them) and left out.
pub fn summaries(state: &AppState, opts: &ListOptions) -> ApiResult<Vec<Value>> {
    let listing = state.engine.list(opts)?;
    for u in &listing.unreadable {
        tracing::warn!("{u}");
    }
    Ok(listing.rows.iter().map(summary_json).collect())
}

pub async fn list(State(state): State<Arc<AppState>>, Query(q): Params) -> ApiResult<Json<Value>> {
    let limit: Option<usize> = match q.get("limit").filter(|l| !l.is_empty()) {
        Some(l) => match l.parse::<i64>() {
            Ok(n) if n > 0 => Some(n as usize),
            Ok(_) => None,
            Err(_) => return Err(ApiError::bad_request(format!("invalid limit {l:?}"))),
        },
        None => None,
    };
    let opts = ListOptions {
        all: query_bool(q.get("all")),
        limit,
        size: query_bool(q.get("size")),
        filter: Filter::from_map(super::parse_filters(q.get("filters"))?)?,
    };
    blocking(move || Ok(Json(Value::Array(summaries(&state, &opts)?)))).await
}

pub async fn create(
    State(state): State<Arc<AppState>>,
    Query(q): Params,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let body: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?;
    let opts = run_options(q.get("name").cloned(), body)?;
    blocking(move || {
        let record = state.engine.create(&opts)?;
        Ok((
            StatusCode::CREATED,
            Json(json!({"Id": record.id, "Warnings": []})),
        ))
    })
    .await
}

pub async fn inspect(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> ApiResult<Json<berth_engine::inspect::ContainerInspect>> {
    blocking(move || {
        let record = state.engine.lookup(&id)?;
        Ok(Json(berth_engine::inspect::inspect(
            &state.engine,
            &record,
        )?))
    })
    .await
}

/// The service's own record of starts it made: the exit code arrives on the session it keeps.
fn exit_channel(state: &AppState, id: &str) -> watch::Receiver<Option<i32>> {
    let mut exits = state.exits.lock().unwrap_or_else(|e| e.into_inner());
    let (tx, rx) = watch::channel(None);
    exits.insert(id.to_string(), tx);
    rx
}

pub async fn start(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let record = {
        let state = state.clone();
        blocking(move || Ok(state.engine.lookup(&id)?)).await?
    };
    if record.is_running() {
        return Ok(StatusCode::NOT_MODIFIED);
    }
    let id = record.id.clone();
    let pending = state.take_pending_attach(&id);
    let wants = pending.as_ref().map(|p| p.wants).unwrap_or_default();
    let pending_detach = pending.as_ref().and_then(|p| p.detach);
    let (ours, theirs) = std::os::unix::net::UnixStream::pair()
        .map_err(|e| ApiError::internal(format!("socketpair: {e}")))?;
    let mut ours = ours;
    {
        use std::io::Write;
        let mut hello = vec![attach::HELLO, 0, 0, 0, 1, wants.bits()];
        if let Some((rows, cols)) = pending.as_ref().and_then(|p| p.window) {
            let mut resize = vec![attach::RESIZE, 0, 0, 0, 4];
            resize.extend_from_slice(&rows.to_be_bytes());
            resize.extend_from_slice(&cols.to_be_bytes());
            resize.extend_from_slice(&hello);
            hello = resize;
        }
        ours.write_all(&hello)
            .map_err(|e| ApiError::internal(format!("attach greeting: {e}")))?;
    }
    let mut exit_rx = exit_channel(&state, &id);
    let exit_tx_state = state.clone();
    {
        let state = state.clone();
        let id = id.clone();
        blocking(move || Ok(state.engine.start_with_client(&id, theirs.into())?)).await?;
    }
    ours.set_nonblocking(true)
        .map_err(|e| ApiError::internal(format!("attach socket: {e}")))?;
    let mut monitor = tokio::net::UnixStream::from_std(ours)
        .map_err(|e| ApiError::internal(format!("attach socket: {e}")))?;
    // Until the monitor says the container runs (or could not start).
    let mut early_output: Vec<(u8, Vec<u8>)> = Vec::new();
    let started = loop {
        match hijack::read_frame(&mut monitor).await {
            Ok(Some((attach::STARTED, _))) => break Ok(()),
            Ok(Some((attach::ERROR, payload))) => {
                let code = attach::payload_i32(&payload);
                let msg = String::from_utf8_lossy(payload.get(4..).unwrap_or(&[])).into_owned();
                break Err(start_error(code, msg));
            }
            Ok(Some((attach::EXIT, payload))) => {
                // Exited before saying it started: still a start.
                set_exit(&exit_tx_state, &id, attach::payload_i32(&payload));
                break Ok(());
            }
            Ok(Some(frame)) => early_output.push(frame),
            Ok(None) | Err(_) => {
                break Err(ApiError::internal(format!(
                    "container {id}: its monitor went away before starting it"
                )))
            }
        }
    };
    if let Err(e) = started {
        set_exit(&state, &id, 127);
        return Err(e);
    }
    if exit_rx.borrow_and_update().is_some() {
        return Ok(StatusCode::NO_CONTENT);
    }
    let tty = record.config.tty;
    tokio::spawn(async move {
        let _busy = exit_tx_state.activity.enter();
        let client = match pending {
            Some(p) => p.io.await.ok().map(hyper_util::rt::TokioIo::new),
            None => None,
        };
        let client = match (client, early_output.is_empty()) {
            (Some(mut c), false) => {
                use tokio::io::AsyncWriteExt;
                for (kind, payload) in early_output {
                    if tty {
                        let _ = c.write_all(&payload).await;
                    } else {
                        let stream = if kind == attach::STDERR { 2 } else { 1 };
                        let _ = c
                            .write_all(&hijack::stdcopy_header(stream, payload.len()))
                            .await;
                        let _ = c.write_all(&payload).await;
                    }
                }
                Some(c)
            }
            (c, _) => c,
        };
        let detach = pending_detach;
        let ending = hijack::pump(monitor, client, tty, wants.stdin, detach).await;
        let code = match ending {
            hijack::Ending::Exited(code) | hijack::Ending::Failed(code, _) => code,
            // The service's session ended without an exit: ask the engine (it reads the record).
            hijack::Ending::Detached => {
                let state2 = exit_tx_state.clone();
                let id2 = id.clone();
                match blocking(move || Ok(state2.engine.wait(&id2)?)).await {
                    Ok(code) => code,
                    Err(_) => return,
                }
            }
        };
        set_exit(&exit_tx_state, &id, code);
    });
    Ok(StatusCode::NO_CONTENT)
}

fn start_error(code: i32, message: String) -> ApiError {
    // Docker's clients pick exit codes 126/127 from these lower-case words of Go's errors.
    let message = message
        .replace(
            "No such file or directory (os error 2)",
            "no such file or directory",
        )
        .replace("Permission denied (os error 13)", "permission denied");
    // Docker answers 400 for a command that cannot be found or run, 500 otherwise.
    let status = if code == 126 || code == 127 {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::INTERNAL_SERVER_ERROR
    };
    ApiError::new(status, message)
}

pub async fn stop(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    Query(q): Params,
) -> ApiResult<StatusCode> {
    let timeout = parse_timeout(&q)?;
    blocking(move || {
        let record = state.engine.lookup(&id)?;
        if !record.is_running() {
            return Ok(StatusCode::NOT_MODIFIED);
        }
        state.engine.stop(&record.id, timeout)?;
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}

fn parse_timeout(q: &HashMap<String, String>) -> ApiResult<Option<i64>> {
    match q.get("t").filter(|t| !t.is_empty()) {
        Some(t) => t
            .parse::<i64>()
            .map(Some)
            .map_err(|_| ApiError::bad_request(format!("invalid timeout {t:?}"))),
        None => Ok(None),
    }
}

pub async fn restart(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    Query(q): Params,
) -> ApiResult<StatusCode> {
    let timeout = parse_timeout(&q)?;
    let id = {
        let state = state.clone();
        blocking(move || {
            let record = state.engine.lookup(&id)?;
            if record.is_running() {
                state.engine.stop(&record.id, timeout)?;
            }
            Ok(record.id)
        })
        .await?
    };
    // Wait for the old monitor to finish, then start through the service's own path.
    {
        let state = state.clone();
        let id = id.clone();
        blocking(move || Ok(state.engine.settle_for_restart(&id)?)).await?;
    }
    start(State(state), Path(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn kill(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    Query(q): Params,
) -> ApiResult<StatusCode> {
    let signal = match q.get("signal").filter(|s| !s.is_empty()) {
        Some(s) => berth_engine::sys::parse_signal(s)?,
        None => libc::SIGKILL,
    };
    blocking(move || {
        let record = state.engine.lookup(&id)?;
        state.engine.kill(&record.id, signal)?;
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}

pub async fn remove(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    Query(q): Params,
) -> ApiResult<StatusCode> {
    let force = query_bool(q.get("force"));
    let volumes = query_bool(q.get("v"));
    blocking(move || {
        let record = state.engine.lookup(&id)?;
        state.engine.remove(&record.id, force, volumes)?;
        state
            .exits
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&record.id);
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}

pub async fn pause(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    blocking(move || {
        let record = state.engine.lookup(&id)?;
        state.engine.pause(&record.id)?;
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}

pub async fn unpause(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    blocking(move || {
        let record = state.engine.lookup(&id)?;
        state.engine.unpause(&record.id)?;
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}

pub async fn rename(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    Query(q): Params,
) -> ApiResult<StatusCode> {
    let name = q
        .get("name")
        .cloned()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::bad_request("name is required"))?;
    blocking(move || {
        let record = state.engine.lookup(&id)?;
        state.engine.rename(&record.id, &name)?;
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}

/// `POST /containers/{id}/resize?h=&w=`: the new window goes to the monitor.
pub async fn resize(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    Query(q): Params,
) -> ApiResult<StatusCode> {
    let dim = |k: &str| -> ApiResult<u16> {
        q.get(k)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| ApiError::bad_request(format!("invalid or missing {k}")))
    };
    let (rows, cols) = (dim("h")?, dim("w")?);
    blocking(move || {
        let record = state.engine.lookup(&id)?;
        if !record.is_running() {
            return Err(ApiError::conflict(format!(
                "Container {} is not running",
                record.id
            )));
        }
        if let Some(mut s) = state.engine.connect(&record.id) {
            let mut p = rows.to_be_bytes().to_vec();
            p.extend_from_slice(&cols.to_be_bytes());
            let _ = attach::write_frame(&mut s, attach::HELLO, &[0]);
            let _ = attach::write_frame(&mut s, attach::RESIZE, &p);
        }
        Ok(StatusCode::OK)
    })
    .await
}

pub async fn prune(State(state): State<Arc<AppState>>, Query(q): Params) -> ApiResult<Json<Value>> {
    let filters: Vec<(String, String)> = super::parse_filters(q.get("filters"))?
        .into_iter()
        .flat_map(|(k, vs)| vs.into_iter().map(move |v| (k.clone(), v)))
        .collect();
    blocking(move || {
        let pruned = berth_engine::housekeeping::prune_containers(&state.engine, &filters)?;
        for u in &pruned.unreadable {
            tracing::warn!("{u}");
        }
        let deleted = pruned.deleted;
        Ok(Json(json!({
            "ContainersDeleted": if deleted.is_empty() { Value::Null } else { json!(deleted) },
            "SpaceReclaimed": pruned.reclaimed_bytes,
        })))
    })
    .await
}

pub async fn export(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let record = {
        let state = state.clone();
        blocking(move || Ok(state.engine.lookup(&id)?)).await?
    };
    let body = blocking_body(move |mut w| {
        if let Err(e) = berth_engine::commit_export_cp::export(&state.engine, &record, &mut w) {
            w.fail(e);
        }
    });
    Ok(([(header::CONTENT_TYPE, "application/x-tar")], body).into_response())
}

/// `POST /containers/{id}/update`: Docker's `UpdateConfig` (resources and restart policy).
/// Docker's CLI sends every field, zero meaning "leave as is", so zeros and empty strings are
/// not requests.
pub async fn update(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let body: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?;
    let req = update_request(&body)?;
    blocking(move || {
        let record = state.engine.lookup(&id)?;
        if !req.is_empty() {
            berth_engine::update::update(&state.engine, &record.id, &req)?;
        }
        Ok(Json(json!({"Warnings": []})))
    })
    .await
}

fn update_request(body: &Value) -> ApiResult<berth_engine::update::UpdateRequest> {
    let int = |k: &str| body.get(k).and_then(Value::as_i64).filter(|v| *v != 0);
    let text = |k: &str| {
        body.get(k)
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    let restart_policy = match body.get("RestartPolicy").filter(|p| !p.is_null()) {
        Some(p) => {
            let policy: berth_engine::options::RestartPolicy = serde_json::from_value(p.clone())
                .map_err(|e| ApiError::bad_request(format!("invalid RestartPolicy: {e}")))?;
            (!policy.name.is_empty()).then_some(policy)
        }
        None => None,
    };
    let blkio_weight = match int("BlkioWeight") {
        Some(w) => Some(
            u16::try_from(w)
                .map_err(|_| ApiError::bad_request(format!("invalid BlkioWeight {w}")))?,
        ),
        None => None,
    };
    Ok(berth_engine::update::UpdateRequest {
        memory: int("Memory"),
        memory_swap: int("MemorySwap"),
        memory_reservation: int("MemoryReservation"),
        nano_cpus: int("NanoCpus"),
        cpu_shares: int("CpuShares"),
        cpu_quota: int("CpuQuota"),
        cpu_period: int("CpuPeriod"),
        cpuset_cpus: text("CpusetCpus"),
        cpuset_mems: text("CpusetMems"),
        // A pointer in Docker's types: present (even 0 or -1) means asked.
        pids_limit: body.get("PidsLimit").and_then(Value::as_i64),
        blkio_weight,
        restart_policy,
    })
}

/// `GET /containers/{id}/changes`: Docker's `[{"Path", "Kind"}]` (null when nothing changed).
pub async fn changes(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    blocking(move || {
        let record = state.engine.lookup(&id)?;
        let changes = berth_engine::diff::container_changes(&record)?;
        if changes.is_empty() {
            return Ok(Json(Value::Null));
        }
        Ok(Json(Value::Array(
            changes.iter().map(|c| c.to_json()).collect(),
        )))
    })
    .await
}
