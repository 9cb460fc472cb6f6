//! `GET /events`: the engine's event log as Docker's stream of JSON messages, one per line —
//! history from `since`, then new events as they are appended, until `until` passes or the
//! client leaves. Filters are the engine's (`events --filter`), so the CLI and the API agree.
use super::parse_filters;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::streams::blocking_body;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use berth_engine::events::{self, EventFilter};
use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;

/// Docker's `since`/`until`: Unix seconds with an optional fraction (the CLI converts
/// durations and dates to that), or anything `berth events --since` takes.
fn parse_time(q: &HashMap<String, String>, key: &str) -> ApiResult<Option<i64>> {
    match q.get(key).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => events::parse_time(v)
            .map(Some)
            .map_err(|e| ApiError::bad_request(format!("invalid {key} {v:?}: {e}"))),
    }
}

pub async fn events(
    State(state): State<Arc<AppState>>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Response> {
    let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX);
    // Without `since` a client wants what happens from now on, not the log's history.
    let since = parse_time(&q, "since")?.or(Some(now));
    let until = parse_time(&q, "until")?;
    let pairs: Vec<(String, String)> = parse_filters(q.get("filters"))?
        .into_iter()
        .flat_map(|(k, values)| values.into_iter().map(move |v| (k.clone(), v)))
        .collect();
    let filter = EventFilter::new(&pairs)?;
    let root = state.root.clone();
    let body = blocking_body(move |mut w| {
        let alive = w.client_alive();
        let mut emit = |e: &events::Event| match serde_json::to_string(e) {
            Ok(mut line) => {
                line.push('\n');
                w.write_all(line.as_bytes()).is_ok()
            }
            Err(_) => true,
        };
        // An `until` in the past asks for history only: answer it and end the stream.
        if until.is_some_and(|u| u <= now) {
            for e in events::history(&root, since, until, &filter) {
                if !emit(&e) {
                    return;
                }
            }
            return;
        }
        let result = events::follow_while(&root, since, until, &filter, alive, emit);
        if let Err(e) = result {
            tracing::warn!("events: {e}");
        }
    });
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}
