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

/// Removes `null` members (Docker clients send `"Binds": null` and the like) so the engine's
/// `#[serde(default)]` shapes take their defaults.
fn strip_nulls(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(strip_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

fn string_list(v: Option<&Value>) -> Option<Vec<String>> {
    match v? {
        Value::Array(items) => Some(
            items
                .iter()
                .filter_map(|i| i.as_str().map(str::to_string))
                .collect(),
        ),
        Value::String(s) => Some(vec![s.clone()]),
        _ => None,
    }
}

/// Docker's create body (`Config` fields at the top, `HostConfig`, `NetworkingConfig`) as the
/// engine's `RunOptions`. The engine's `--entrypoint` is one word, so a longer `Entrypoint`
/// keeps its first word there and puts the rest before `Cmd`: the same process arguments.
pub fn run_options(name: Option<String>, mut body: Value) -> ApiResult<RunOptions> {
    strip_nulls(&mut body);
    let text = |k: &str| {
        body.get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let image = text("Image").ok_or_else(|| ApiError::bad_request("config: Image is required"))?;
    let mut command = string_list(body.get("Cmd")).unwrap_or_default();
    let entrypoint = match string_list(body.get("Entrypoint")) {
        None => None,
        Some(words) if words.is_empty() => Some(String::new()),
        Some(mut words) => {
            let first = words.remove(0);
            words.extend(command);
            command = words;
            Some(first)
        }
    };
    let mut host: HostConfig = match body.get("HostConfig") {
        Some(h) => serde_json::from_value(h.clone())
            .map_err(|e| ApiError::bad_request(format!("invalid HostConfig: {e}")))?,
        None => HostConfig::default(),
    };
    // `Binds` (the CLI's `-v SRC:DST`) and `Config.Volumes` (`-v DST`, anonymous) become
    // mounts as `berth run -v` makes them; `HostConfig.Mounts` (`--mount`) come after them.
    let mut mounts = Vec::new();
    for bind in &host.binds {
        mounts.push(berth_engine::options::parse_volume(bind)?);
    }
    if let Some(anonymous) = body.get("Volumes").and_then(Value::as_object) {
        for target in anonymous.keys() {
            if !mounts.iter().any(|m| m.target == *target) {
                mounts.push(berth_engine::options::parse_volume(target)?);
            }
        }
    }
    mounts.append(&mut host.mounts);
    host.mounts = mounts;
    // Docker's clients say "default" for the engine's default network.
    if host.network_mode == "default" {
        host.network_mode.clear();
    }
    if host.log_config.r#type.is_empty() {
        host.log_config.r#type = "json-file".into();
    }
    let labels: BTreeMap<String, String> = body
        .get("Labels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default();
    let flag = |k: &str| body.get(k).and_then(Value::as_bool).unwrap_or(false);
    let networking = networking_options(&body, &mut host);
    Ok(RunOptions {
        name: name.filter(|n| !n.is_empty()),
        image,
        command,
        entrypoint,
        env: string_list(body.get("Env")).unwrap_or_default(),
        workdir: text("WorkingDir"),
        user: text("User"),
        hostname: text("Hostname"),
        labels,
        tty: flag("Tty"),
        interactive: flag("OpenStdin"),
        stop_signal: text("StopSignal"),
        stop_timeout: body.get("StopTimeout").and_then(Value::as_i64),
        healthcheck: match body.get("Healthcheck") {
            Some(h) => Some(
                serde_json::from_value(h.clone())
                    .map_err(|e| ApiError::bad_request(format!("invalid Healthcheck: {e}")))?,
            ),
            None => None,
        },
        host,
        networking,
        ..Default::default()
    })
}

/// Docker's `NetworkingConfig.EndpointsConfig`: the entry of `NetworkMode`'s network gives
/// its aliases, address and MAC; the other entries are further networks. Without a
/// `NetworkMode` the first entry becomes it (as the CLI's `--network` does).
fn networking_options(body: &Value, host: &mut HostConfig) -> NetworkingOptions {
    let mut out = NetworkingOptions::default();
    let Some(endpoints) = body
        .get("NetworkingConfig")
        .and_then(|n| n.get("EndpointsConfig"))
        .and_then(Value::as_object)
    else {
        return out;
    };
    if host.network_mode.is_empty() {
        if let Some(first) = endpoints.keys().next() {
            host.network_mode = first.clone();
        }
    }
    for (name, endpoint) in endpoints {
        if *name != host.network_mode {
            out.extra_networks.push(name.clone());
            continue;
        }
        out.aliases = string_list(endpoint.get("Aliases")).unwrap_or_default();
        out.ip = endpoint
            .get("IPAMConfig")
            .and_then(|c| c.get("IPv4Address"))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string);
        out.mac_address = endpoint
            .get("MacAddress")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string);
    }
    out
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
) -> ApiResult<Json<Value>> {
    blocking(move || {
        let record = state.engine.lookup(&id)?;
        Ok(Json(berth_engine::inspect::inspect(&state.engine, &record)))
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

fn set_exit(state: &AppState, id: &str, code: i32) {
    let exits = state.exits.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(tx) = exits.get(id) {
        let _ = tx.send(Some(code));
    }
}

/// `POST /containers/{id}/wait?condition=not-running|next-exit|removed`. The answer's headers go
/// out at once (clients start the container after that), the body when the condition holds.
pub async fn wait(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    Query(q): Params,
) -> ApiResult<Response> {
    let condition = q
        .get("condition")
        .cloned()
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| "not-running".into());
    if !["not-running", "next-exit", "removed"].contains(&condition.as_str()) {
        return Err(ApiError::bad_request(format!(
            "invalid condition: {condition:?}"
        )));
    }
    let record = {
        let state = state.clone();
        blocking(move || Ok(state.engine.lookup(&id)?)).await?
    };
    let id = record.id.clone();
    let (tx, rx) = tokio::sync::oneshot::channel::<Value>();
    tokio::spawn(async move {
        let _busy = state.activity.enter();
        let code = wait_for(&state, &id, &condition, record.is_running()).await;
        let _ = tx.send(json!({"StatusCode": code, "Error": null}));
    });
    let body = futures_util::stream::once(async move {
        let v = rx.await.unwrap_or_else(|_| json!({"StatusCode": -1}));
        Ok::<_, std::io::Error>(Bytes::from(format!("{v}\n")))
    });
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(body),
    )
        .into_response())
}

fn api_exit(state: &AppState, id: &str) -> Option<watch::Receiver<Option<i32>>> {
    let exits = state.exits.lock().unwrap_or_else(|e| e.into_inner());
    exits.get(id).map(|tx| tx.subscribe())
}

async fn wait_for(state: &Arc<AppState>, id: &str, condition: &str, running_now: bool) -> i32 {
    let load = |state: &Arc<AppState>| state.engine.store.load(id).ok();
    if condition == "not-running" {
        // A start of this service's still running: its session reports the exit. Otherwise
        // the engine knows (it waits for a monitor that is still writing the exit down).
        // The engine's wait runs beside it: a session that ended without reporting (its
        // monitor's socket closed first) must not leave the client waiting forever.
        let state2 = state.clone();
        let id2 = id.to_string();
        let engine_wait = blocking(move || Ok(state2.engine.wait(&id2)?));
        let Some(mut rx) = api_exit(state, id) else {
            return engine_wait.await.unwrap_or(-1);
        };
        tokio::pin!(engine_wait);
        let reported = tokio::select! {
            c = rx.wait_for(|c| c.is_some()) => c.ok().and_then(|c| *c),
            code = &mut engine_wait => return code.unwrap_or(-1),
        };
        return match reported {
            Some(code) => code,
            None => engine_wait.await.unwrap_or(-1),
        };
    }
    // An API start already under way (or done) reports on its own channel; otherwise wait for
    // the container to be running (started by anyone) and ask its monitor.
    let mut code = None;
    let waited_since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
    let previous = api_exit(state, id).and_then(|rx| *rx.borrow());
    let finished_before = load(state).map(|r| r.state.finished_at).unwrap_or_default();
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(20));
    loop {
        if let Some(mut rx) = api_exit(state, id) {
            let fresh = rx.borrow().is_none() || !running_now && *rx.borrow() != previous;
            if fresh || running_now {
                // The store is watched beside the session: a session that ended without
                // reporting (or a container removed meanwhile) must not hang the client.
                let store_says_ended = async {
                    let mut tick = tokio::time::interval(std::time::Duration::from_millis(50));
                    loop {
                        tick.tick().await;
                        match load(state) {
                            None => return,
                            Some(r)
                                if !r.is_running()
                                    && !r.state.finished_at.is_empty()
                                    && r.state.finished_at != finished_before =>
                            {
                                return
                            }
                            _ => {}
                        }
                    }
                };
                let reported = tokio::select! {
                    c = rx.wait_for(|c| c.is_some()) => c.ok().and_then(|c| *c),
                    () = store_says_ended => None,
                };
                code = reported;
                break;
            }
        }
        match load(state) {
            Some(r) if r.is_running() => {
                let state2 = state.clone();
                let id2 = id.to_string();
                code = blocking(move || Ok(state2.engine.wait(&id2)?)).await.ok();
                break;
            }
            None if condition == "removed" => break,
            _ => {}
        }
        tick.tick().await;
    }
    if condition == "removed" {
        while load(state).is_some() {
            tick.tick().await;
        }
    }
    if let Some(code) = code.or_else(|| load(state).map(|r| r.state.exit_code)) {
        return code;
    }
    // Removed before anyone reported the exit (a `--rm` monitor removes the container, then
    // logs its `die` event with the code, then reports): the code comes from that event.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let root = state.engine.store.root().to_path_buf();
        let id2 = id.to_string();
        let found =
            tokio::task::spawn_blocking(move || exit_from_die_event(&root, &id2, waited_since))
                .await
                .ok()
                .flatten();
        if let Some(code) = found.or_else(|| api_exit(state, id).and_then(|rx| *rx.borrow())) {
            return code;
        }
        if tokio::time::Instant::now() > deadline {
            return 0;
        }
        tick.tick().await;
    }
}

/// The exit code of container `id`'s `die` event logged at or after `since` (nanoseconds).
fn exit_from_die_event(root: &std::path::Path, id: &str, since: i64) -> Option<i32> {
    let all = berth_engine::events::EventFilter::new(&[]).ok()?;
    berth_engine::events::history(root, Some(since), None, &all)
        .into_iter()
        .rev()
        .find(|e| e.kind == "container" && e.action == "die" && e.actor.id == id)
        .and_then(|e| e.actor.attributes.get("exitCode")?.parse().ok())
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
        state.engine.store.rename(&record.id, &name)?;
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
        if let Err(e) = berth_engine::fsops::export(&state.engine, &record, &mut w) {
            w.fail(e);
        }
    });
    Ok(([(header::CONTENT_TYPE, "application/x-tar")], body).into_response())
}

/// A writer that frames everything as one stdcopy stream (1 stdout, 2 stderr), or passes it
/// through for a TTY container, into a shared response body.
struct StreamFramer {
    out: Arc<std::sync::Mutex<ChannelWriter>>,
    stream: u8,
    raw: bool,
    enabled: bool,
}

impl std::io::Write for StreamFramer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if !self.enabled || buf.is_empty() {
            return Ok(buf.len());
        }
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        if !self.raw {
            out.write_all(&hijack::stdcopy_header(self.stream, buf.len()))?;
        }
        out.write_all(buf)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Whether a follower must keep reading (see [`ContainerRecord::log_may_grow`]).
fn still_logging(record: &ContainerRecord) -> bool {
    record.log_may_grow()
}

/// A container's logged output so far, framed for an attach client (stdcopy unless a TTY),
/// only the streams it asked for.
fn past_output(state: &AppState, record: &ContainerRecord, wants: hijack::Wants) -> Vec<u8> {
    let shared = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let framer = |stream: u8, enabled: bool| VecFramer {
        out: shared.clone(),
        stream,
        raw: record.config.tty,
        enabled,
    };
    let mut o = framer(1, wants.stdout);
    let mut e = framer(2, wants.stderr);
    let _ = berth_engine::logs::print_container_logs(
        &state.engine.store,
        record,
        &LogOptions::default(),
        &mut o,
        &mut e,
        || false,
    );
    drop((o, e));
    std::rc::Rc::try_unwrap(shared)
        .map(|c| c.into_inner())
        .unwrap_or_default()
}

/// [`StreamFramer`] into memory.
struct VecFramer {
    out: std::rc::Rc<std::cell::RefCell<Vec<u8>>>,
    stream: u8,
    raw: bool,
    enabled: bool,
}

impl std::io::Write for VecFramer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.enabled && !buf.is_empty() {
            let mut out = self.out.borrow_mut();
            if !self.raw {
                out.extend_from_slice(&hijack::stdcopy_header(self.stream, buf.len()));
            }
            out.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub async fn logs(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    Query(q): Params,
) -> ApiResult<Response> {
    let stdout = query_bool(q.get("stdout"));
    let stderr = query_bool(q.get("stderr"));
    if !stdout && !stderr {
        return Err(ApiError::bad_request(
            "Bad parameters: you must choose at least one stream",
        ));
    }
    let time = |k: &str| -> ApiResult<Option<chrono::DateTime<chrono::Utc>>> {
        match q.get(k).filter(|v| !v.is_empty() && *v != "0") {
            Some(v) => Ok(Some(berth_engine::logs::parse_since(v)?)),
            None => Ok(None),
        }
    };
    let opts = LogOptions {
        follow: query_bool(q.get("follow")),
        tail: q
            .get("tail")
            .filter(|t| *t != "all" && !t.is_empty())
            .and_then(|t| t.parse().ok()),
        since: time("since")?,
        until: time("until")?,
        timestamps: query_bool(q.get("timestamps")),
    };
    let record = {
        let state = state.clone();
        blocking(move || Ok(state.engine.lookup(&id)?)).await?
    };
    let tty = record.config.tty;
    // The driver's check (Docker's error for `none`) before the stream starts.
    berth_engine::logs::container_log(&state.engine.store, &record.id)?;
    let busy = state.activity.enter();
    let body = blocking_body(move |w| {
        let _busy = busy;
        let out = Arc::new(std::sync::Mutex::new(w));
        let mut o = StreamFramer {
            out: out.clone(),
            stream: 1,
            raw: tty,
            enabled: stdout,
        };
        let mut e = StreamFramer {
            out,
            stream: 2,
            raw: tty,
            enabled: stderr,
        };
        let id = record.id.clone();
        let store = &state.engine.store;
        let _ =
            berth_engine::logs::print_container_logs(store, &record, &opts, &mut o, &mut e, || {
                store.load(&id).map(|r| still_logging(&r)).unwrap_or(false)
            });
    });
    let kind = if tty {
        "application/vnd.docker.raw-stream"
    } else {
        "application/vnd.docker.multiplexed-stream"
    };
    Ok(([(header::CONTENT_TYPE, kind)], body).into_response())
}

/// `POST /containers/{id}/attach`: hijacks the connection (HTTP upgrade) and bridges it to the
/// monitor. On a container not yet running, the session waits for the service's `start`, which
/// hands it the first output.
pub async fn attach(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    Query(q): Params,
    mut req: Request,
) -> ApiResult<Response> {
    let wants = hijack::Wants {
        stdin: query_bool(q.get("stdin")),
        stdout: query_bool(q.get("stdout")),
        stderr: query_bool(q.get("stderr")),
    };
    let stream = query_bool(q.get("stream"));
    let logs = query_bool(q.get("logs"));
    if !stream && !logs {
        return Err(ApiError::bad_request("either stream or logs must be set"));
    }
    // Docker's default keys unless the client names others; only a stdin session detaches.
    let detach = match q.get("detachKeys").filter(|k| !k.is_empty()) {
        Some(k) => berth_engine::detach_keys::DetachKeys::parse(k)?,
        None => berth_engine::detach_keys::DetachKeys::default(),
    };
    let detach = wants.stdin.then_some(detach);
    let record = {
        let state = state.clone();
        blocking(move || Ok(state.engine.lookup(&id)?)).await?
    };
    let tty = record.config.tty;
    let upgrade = req
        .headers()
        .get(header::UPGRADE)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"tcp"));
    if !upgrade {
        return Err(ApiError::bad_request(
            "attach needs a connection upgrade (Connection: Upgrade, Upgrade: tcp)",
        ));
    }
    let on_upgrade = hyper::upgrade::on(&mut req);
    // `logs=1`: what the container wrote so far comes first (framed like the live output).
    let past = if logs {
        let state = state.clone();
        let record = record.clone();
        blocking(move || Ok(past_output(&state, &record, wants))).await?
    } else {
        Vec::new()
    };
    if !stream {
        let busy = state.activity.enter();
        tokio::spawn(async move {
            let _busy = busy;
            if let Ok(io) = on_upgrade.await {
                use tokio::io::AsyncWriteExt;
                let mut client = hyper_util::rt::TokioIo::new(io);
                let _ = client.write_all(&past).await;
                let _ = client.shutdown().await;
            }
        });
    } else if record.is_running() {
        let id = record.id.clone();
        let stream = {
            let state = state.clone();
            blocking(move || {
                state.engine.connect(&id).ok_or_else(|| {
                    ApiError::conflict(format!("container {id}: its monitor is gone"))
                })
            })
            .await?
        };
        stream
            .set_nonblocking(true)
            .map_err(|e| ApiError::internal(format!("attach socket: {e}")))?;
        let mut monitor = tokio::net::UnixStream::from_std(stream)
            .map_err(|e| ApiError::internal(format!("attach socket: {e}")))?;
        hijack::write_frame(&mut monitor, attach::HELLO, &[wants.bits()])
            .await
            .map_err(|e| ApiError::internal(format!("attach: {e}")))?;
        let busy = state.activity.enter();
        tokio::spawn(async move {
            let _busy = busy;
            if let Ok(io) = on_upgrade.await {
                use tokio::io::AsyncWriteExt;
                let mut client = hyper_util::rt::TokioIo::new(io);
                if client.write_all(&past).await.is_err() {
                    return;
                }
                hijack::pump(monitor, Some(client), tty, wants.stdin, detach).await;
            }
        });
    } else {
        state.add_pending_attach(
            &record.id,
            PendingAttach {
                io: on_upgrade,
                wants,
                window: None,
                detach,
            },
        );
    }
    let kind = if tty {
        "application/vnd.docker.raw-stream"
    } else {
        "application/vnd.docker.multiplexed-stream"
    };
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "tcp")
        .header(header::CONTENT_TYPE, kind)
        .body(Body::empty())
        .map_err(|e| ApiError::internal(e.to_string()))
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
