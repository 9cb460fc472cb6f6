//! Exec instances: `POST /containers/{id}/exec`, `POST /exec/{id}/start` (hijacked, with a TTY or
//! stdcopy-framed without), `GET /exec/{id}/json`, `POST /exec/{id}/resize`. The process is the
//! engine's (`Engine::exec_process`: Docker's checks, env, user, command lookup); the service
//! runs it the way dockerd has runc run it — through the OCI runtime binary
//! (`berth-runtime exec`),
//! spawned, never forked from this threaded process. A detached start goes through the
//! engine's `detached_exec` (a waiter that outlives the request). Every exec records Docker's
//! `exec_create`, `exec_start` and `exec_die` events through the engine's `ExecEvents`, as the
//! CLI's `exec` does.
use super::blocking;
use crate::error::{ApiError, ApiResult};
use crate::hijack::stdcopy_header;
use crate::state::AppState;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::response::Response;
use axum::Json;
use berth_engine::exec::{ExecEvents, ExecRequest};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One exec instance, from create to exit.
pub struct ExecInstance {
    pub container_id: String,
    pub request: ExecRequest,
    pub attach_stdin: bool,
    pub attach_stdout: bool,
    pub attach_stderr: bool,
    pub running: bool,
    pub started: bool,
    pub exit_code: Option<i32>,
    pub pid: i32,
    /// The PTY master while a TTY exec runs (for resize).
    pub console: Option<Arc<OwnedFd>>,
    /// Its events (`exec_create` is recorded when the instance is made).
    pub events: ExecEvents,
}

pub type ExecTable = Mutex<HashMap<String, ExecInstance>>;

fn flag(body: &Value, k: &str) -> bool {
    body.get(k).and_then(Value::as_bool).unwrap_or(false)
}

fn strings(body: &Value, k: &str) -> Vec<String> {
    body.get(k)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

pub async fn create(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let body: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?;
    let text = |k: &str| {
        body.get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let command = strings(&body, "Cmd");
    if command.is_empty() {
        return Err(ApiError::bad_request("No exec command specified"));
    }
    let request = ExecRequest {
        command,
        env: strings(&body, "Env"),
        user: text("User"),
        workdir: text("WorkingDir"),
        tty: flag(&body, "Tty"),
        interactive: flag(&body, "AttachStdin"),
        detach: false,
        privileged: flag(&body, "Privileged"),
        ..Default::default()
    };
    let record = {
        let state = state.clone();
        blocking(move || Ok(state.engine.lookup(&id)?)).await?
    };
    if !record.is_running() {
        return Err(ApiError::conflict(format!(
            "container {} is not running",
            record.id
        )));
    }
    if record.state.paused {
        return Err(ApiError::conflict(format!(
            "container {} is paused, unpause the container before exec",
            record.id
        )));
    }
    let exec_id = berth_engine::names::new_id();
    let events = ExecEvents::created(state.engine.root(), &record, &exec_id, &request.command);
    state
        .execs
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(
            exec_id.clone(),
            ExecInstance {
                container_id: record.id,
                request,
                attach_stdin: flag(&body, "AttachStdin"),
                attach_stdout: flag(&body, "AttachStdout"),
                attach_stderr: flag(&body, "AttachStderr"),
                running: false,
                started: false,
                exit_code: None,
                pid: 0,
                console: None,
                events,
            },
        );
    Ok((StatusCode::CREATED, Json(json!({"Id": exec_id}))))
}

fn no_such_exec(id: &str) -> ApiError {
    ApiError::not_found(format!("No such exec instance: {id}"))
}

pub async fn inspect(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let execs = state.execs.lock().unwrap_or_else(|e| e.into_inner());
    let e = execs.get(&id).ok_or_else(|| no_such_exec(&id))?;
    let (entrypoint, arguments) = e
        .request
        .command
        .split_first()
        .map(|(a, b)| (a.clone(), b.to_vec()))
        .unwrap_or_default();
    Ok(Json(json!({
        "ID": id,
        "Running": e.running,
        "ExitCode": e.exit_code,
        "ProcessConfig": {
            "tty": e.request.tty,
            "entrypoint": entrypoint,
            "arguments": arguments,
            "privileged": e.request.privileged,
            "user": e.request.user.clone().unwrap_or_default(),
        },
        "OpenStdin": e.attach_stdin,
        "OpenStderr": e.attach_stderr,
        "OpenStdout": e.attach_stdout,
        "CanRemove": false,
        "ContainerID": e.container_id,
        "DetachKeys": "",
        "Pid": e.pid,
    })))
}

pub async fn resize(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<StatusCode> {
    let dim = |k: &str| -> ApiResult<u16> {
        q.get(k)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| ApiError::bad_request(format!("invalid or missing {k}")))
    };
    let (rows, cols) = (dim("h")?, dim("w")?);
    let execs = state.execs.lock().unwrap_or_else(|e| e.into_inner());
    let e = execs.get(&id).ok_or_else(|| no_such_exec(&id))?;
    if let Some(console) = &e.console {
        berth_engine::sys::set_window_size(console.as_raw_fd(), rows, cols);
    }
    Ok(StatusCode::OK)
}

/// The OCI runtime binary beside this program (the service is `berth`, the runtime
/// `berth-runtime`), or `$BERTH_RUNTIME_BINARY`.
fn runtime_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("BERTH_RUNTIME_BINARY").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|d| d.join("berth-runtime")))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("berth-runtime"))
}

fn set_exit(state: &AppState, id: &str, code: i32) {
    let mut execs = state.execs.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(e) = execs.get_mut(id) {
        e.running = false;
        e.exit_code = Some(code);
        e.console = None;
    }
}

pub async fn start(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    mut req: Request,
) -> ApiResult<Response> {
    let body = axum::body::to_bytes(std::mem::take(req.body_mut()), 1 << 20)
        .await
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let body: Value = if body.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?
    };
    let detach = flag(&body, "Detach");
    let (container_id, mut request, stdin, stdout, stderr, events) = {
        let mut execs = state.execs.lock().unwrap_or_else(|e| e.into_inner());
        let e = execs.get_mut(&id).ok_or_else(|| no_such_exec(&id))?;
        if e.started {
            return Err(ApiError::conflict(format!(
                "Error: Exec command {id} has already run"
            )));
        }
        e.started = true;
        e.running = true;
        (
            e.container_id.clone(),
            e.request.clone(),
            e.attach_stdin && !detach,
            e.attach_stdout,
            e.attach_stderr,
            e.events.clone(),
        )
    };
    request.detach = detach;
    let tty = request.tty;
    if detach {
        let started = {
            let state = state.clone();
            let events = events.clone();
            blocking(move || {
                let record = state.engine.lookup(&container_id)?;
                let process = state.engine.exec_process(&record, &request)?;
                berth_engine::detached_exec::start(
                    state.engine.root(),
                    &record,
                    &process,
                    &events,
                )?;
                Ok(())
            })
            .await
        };
        set_exit(&state, &id, 0);
        started?;
        return Response::builder()
            .status(StatusCode::OK)
            .body(Body::empty())
            .map_err(|e| ApiError::internal(e.to_string()));
    }
    // The engine's checks and the process, written for the runtime.
    let work = {
        let state = state.clone();
        let container_id = container_id.clone();
        let request = request.clone();
        blocking(move || {
            let record = state.engine.lookup(&container_id)?;
            let process = state.engine.exec_process(&record, &request)?;
            let dir = tempfile_dir()?;
            let path = dir.join("process.json");
            let text = serde_json::to_vec(&process)
                .map_err(|e| ApiError::internal(format!("process.json: {e}")))?;
            std::fs::write(&path, text)
                .map_err(|e| ApiError::internal(format!("{}: {e}", path.display())))?;
            Ok(dir)
        })
        .await
    };
    let work = match work {
        Ok(w) => w,
        Err(e) => return failed_start(&state, &id, &mut req, tty, e),
    };
    // The runtime's state lives under `<root>/runtime` (berth-engine's runtime door).
    let mut cmd = tokio::process::Command::new(runtime_binary());
    cmd.arg("--root")
        .arg(state.root.join("runtime"))
        .arg("exec")
        .arg("--process")
        .arg(work.join("process.json"));
    let console_listener = if tty {
        let sock = work.join("console.sock");
        let l = std::os::unix::net::UnixListener::bind(&sock)
            .map_err(|e| ApiError::internal(format!("console socket: {e}")))?;
        cmd.arg("--tty").arg("--console-socket").arg(&sock);
        Some(l)
    } else {
        None
    };
    cmd.arg(&container_id);
    cmd.stdin(if stdin && !tty {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(if tty { Stdio::null() } else { Stdio::piped() })
    .stderr(Stdio::piped())
    .kill_on_drop(false);
    let mut child = cmd
        .spawn()
        .map_err(|e| ApiError::internal(format!("running {}: {e}", runtime_binary().display())))?;
    let console = match console_listener {
        Some(l) => {
            let got = tokio::task::spawn_blocking(move || {
                berth_engine::runtime_door::receive_console(&l)
            })
            .await?;
            match got {
                Ok(fd) => Some(Arc::new(fd)),
                Err(e) => {
                    let _ = child.kill().await;
                    set_exit(&state, &id, 126);
                    return Err(e.into());
                }
            }
        }
        None => None,
    };
    events.started();
    {
        let mut execs = state.execs.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = execs.get_mut(&id) {
            e.pid = child.id().unwrap_or(0) as i32;
            e.console = console.clone();
        }
    }
    let on_upgrade = hyper::upgrade::on(&mut req);
    let busy = state.activity.enter();
    let session_state = state.clone();
    tokio::spawn(async move {
        let _busy = busy;
        let client = on_upgrade.await.ok().map(hyper_util::rt::TokioIo::new);
        let record_exit = |code: i32| {
            let _ = std::fs::remove_dir_all(&work);
            events.died(code);
            set_exit(&session_state, &id, code);
        };
        run_session(
            child,
            client,
            console,
            tty,
            stdin,
            stdout,
            stderr,
            record_exit,
        )
        .await;
    });
    super::upgrade_response(tty)
}

/// Docker answers a start whose process cannot run on the hijacked stream itself: the message
/// as output, and the exit code (126, or 127 for a missing command) in the exec's inspect.
fn failed_start(
    state: &Arc<AppState>,
    id: &str,
    req: &mut Request,
    tty: bool,
    err: ApiError,
) -> ApiResult<Response> {
    let code = if err.message.contains("not found") || err.message.contains("no such file") {
        127
    } else {
        126
    };
    let message = format!("{}\r\n", err.message);
    let on_upgrade = hyper::upgrade::on(req);
    let state = state.clone();
    let id = id.to_string();
    tokio::spawn(async move {
        if let Ok(io) = on_upgrade.await {
            let mut io = hyper_util::rt::TokioIo::new(io);
            let mut frame = Vec::new();
            if !tty {
                frame.extend_from_slice(&stdcopy_header(2, message.len()));
            }
            frame.extend_from_slice(message.as_bytes());
            let _ = io.write_all(&frame).await;
            set_exit(&state, &id, code);
            let _ = io.shutdown().await;
        } else {
            set_exit(&state, &id, code);
        }
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "tcp")
        .body(Body::empty())
        .map_err(|e| ApiError::internal(e.to_string()))
}

fn tempfile_dir() -> ApiResult<PathBuf> {
    let dir =
        std::env::temp_dir().join(format!("berth-api-exec-{}", berth_engine::names::new_id()));
    std::fs::create_dir_all(&dir)
        .map_err(|e| ApiError::internal(format!("{}: {e}", dir.display())))?;
    Ok(dir)
}

/// Bridges the runtime's pipes (or the PTY master) and the client until the process exits,
/// hands the exit code to `record_exit`, and only then closes the client's stream (clients ask
/// `GET /exec/{id}/json` for the code as soon as the stream ends).
#[allow(clippy::too_many_arguments)]
async fn run_session<C>(
    mut child: tokio::process::Child,
    client: Option<C>,
    console: Option<Arc<OwnedFd>>,
    tty: bool,
    stdin: bool,
    want_stdout: bool,
    want_stderr: bool,
    record_exit: impl FnOnce(i32),
) where
    C: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let (mut cli_r, cli_w) = match client {
        Some(c) => {
            let (r, w) = tokio::io::split(c);
            (Some(r), Some(w))
        }
        None => (None, None),
    };
    let cli_w = Arc::new(tokio::sync::Mutex::new(cli_w));
    let mut tasks = Vec::new();
    // Output: the PTY master (raw), or stdout/stderr pipes (stdcopy frames).
    let mut sources: Vec<(Box<dyn tokio::io::AsyncRead + Send + Unpin>, u8, bool)> = Vec::new();
    let mut input: Option<Box<dyn tokio::io::AsyncWrite + Send + Unpin>> = None;
    if let Some(master) = &console {
        if let (Ok(r), Ok(w)) = (master.try_clone(), master.try_clone()) {
            sources.push((
                Box::new(tokio::fs::File::from_std(std::fs::File::from(r))),
                1,
                true,
            ));
            if stdin {
                input = Some(Box::new(tokio::fs::File::from_std(std::fs::File::from(w))));
            }
        }
        if let Some(err) = child.stderr.take() {
            sources.push((Box::new(err), 2, false));
        }
    } else {
        if let Some(out) = child.stdout.take() {
            sources.push((Box::new(out), 1, want_stdout));
        }
        if let Some(err) = child.stderr.take() {
            sources.push((Box::new(err), 2, want_stderr));
        }
        if let Some(i) = child.stdin.take() {
            input = Some(Box::new(i));
        }
    }
    for (mut src, stream, wanted) in sources {
        let w = cli_w.clone();
        tasks.push(tokio::spawn(async move {
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                let n = match src.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                if !wanted {
                    continue;
                }
                let mut guard = w.lock().await;
                if let Some(w) = guard.as_mut() {
                    let mut frame = Vec::with_capacity(n + 8);
                    if !tty {
                        frame.extend_from_slice(&stdcopy_header(stream, n));
                    }
                    frame.extend_from_slice(&buf[..n]);
                    if w.write_all(&frame).await.is_err() || w.flush().await.is_err() {
                        *guard = None;
                    }
                }
            }
        }));
    }
    let stdin_task = tokio::spawn(async move {
        let Some(r) = cli_r.as_mut() else { return };
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match r.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if let Some(i) = input.as_mut() {
                        if i.write_all(&buf[..n]).await.is_err() {
                            input = None;
                        }
                    }
                }
            }
        }
        // The client closed its side: the process's stdin ends (a TTY keeps its master open).
        if !tty {
            drop(input);
        }
    });
    let status = child.wait().await;
    // A TTY's master only reads EOF/EIO once every holder of the slave is gone.
    for t in tasks {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), t).await;
    }
    stdin_task.abort();
    record_exit(status.map(berth_engine::sys::exit_code_of).unwrap_or(126));
    let writer = cli_w.lock().await.take();
    if let Some(mut w) = writer {
        let _ = w.shutdown().await;
    }
}
