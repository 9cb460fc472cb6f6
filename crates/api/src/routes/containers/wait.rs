//! `POST /containers/{id}/wait` with its conditions (`not-running`, `next-exit`, `removed`), and
//! the exit codes the service remembers for it.

use super::*;

pub(super) fn set_exit(state: &AppState, id: &str, code: i32) {
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

pub(super) fn api_exit(state: &AppState, id: &str) -> Option<watch::Receiver<Option<i32>>> {
    let exits = state.exits.lock().unwrap_or_else(|e| e.into_inner());
    exits.get(id).map(|tx| tx.subscribe())
}

pub(super) async fn wait_for(
    state: &Arc<AppState>,
    id: &str,
    condition: &str,
    running_now: bool,
) -> i32 {
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
pub(super) fn exit_from_die_event(root: &std::path::Path, id: &str, since: i64) -> Option<i32> {
    let all = berth_engine::events::EventFilter::new(&[]).ok()?;
    berth_engine::events::history(root, Some(since), None, &all)
        .into_iter()
        .rev()
        .find(|e| e.kind == "container" && e.action == "die" && e.actor.id == id)
        .and_then(|e| e.actor.attributes.get("exitCode")?.parse().ok())
}
