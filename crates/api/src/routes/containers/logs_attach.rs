//! `logs` and `attach`: the container's output framed as Docker's stdcopy stream (or raw for a
//! TTY), past output from the log and live output from the monitor.

use super::*;

/// A writer that frames everything as one stdcopy stream (1 stdout, 2 stderr), or passes it
/// through for a TTY container, into a shared response body.
pub(super) struct StreamFramer {
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
pub(super) fn still_logging(record: &ContainerRecord) -> bool {
    record.log_may_grow()
}

/// A container's logged output so far, framed for an attach client (stdcopy unless a TTY),
/// only the streams it asked for.
pub(super) fn past_output(
    state: &AppState,
    record: &ContainerRecord,
    wants: hijack::Wants,
) -> Vec<u8> {
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
pub(super) struct VecFramer {
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
    let kind = crate::routes::stream_content_type(tty);
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
    crate::routes::upgrade_response(tty)
}
