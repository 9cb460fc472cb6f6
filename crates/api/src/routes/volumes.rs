//! `/volumes`: list, create, inspect, remove, prune — the engine's volume store, answered in
//! Docker's shapes (`Volume` objects with `Mountpoint`, `Driver: local`, labels, options).
use super::{blocking, parse_filters, query_bool};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::version::ApiVersion;
use axum::body::Bytes;
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use berth_engine::volumes::{CreateVolume, Volumes};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

type Params = Query<HashMap<String, String>>;

/// Docker's `filters` as the engine's `k=v` pairs.
pub fn filter_pairs(q: &HashMap<String, String>) -> ApiResult<Vec<(String, String)>> {
    Ok(parse_filters(q.get("filters"))?
        .into_iter()
        .flat_map(|(k, values)| values.into_iter().map(move |v| (k.clone(), v)))
        .collect())
}

pub async fn list(State(state): State<Arc<AppState>>, Query(q): Params) -> ApiResult<Json<Value>> {
    let filters = filter_pairs(&q)?;
    blocking(move || {
        let volumes = Volumes::new(&state.root).list_filtered(&filters)?;
        let out: Vec<Value> = volumes.iter().map(|v| v.inspect()).collect();
        Ok(Json(json!({"Volumes": out, "Warnings": []})))
    })
    .await
}

fn string_map(body: &Value, key: &str) -> BTreeMap<String, String> {
    body.get(key)
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

pub async fn create(
    State(state): State<Arc<AppState>>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let body: Value = if body.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?
    };
    let text = |k: &str| {
        body.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let req = CreateVolume {
        name: text("Name"),
        driver: text("Driver"),
        labels: string_map(&body, "Labels"),
        options: string_map(&body, "DriverOpts"),
    };
    blocking(move || {
        let volume = Volumes::new(&state.root).create(&req)?;
        Ok((StatusCode::CREATED, Json(volume.inspect())))
    })
    .await
}

pub async fn inspect(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    blocking(move || Ok(Json(Volumes::new(&state.root).get(&name)?.inspect()))).await
}

pub async fn remove(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    Query(q): Params,
) -> ApiResult<StatusCode> {
    let force = query_bool(q.get("force"));
    blocking(move || {
        Volumes::new(&state.root).remove(&name, force)?;
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}

/// `POST /volumes/prune`: since API 1.42 only anonymous volumes unless `all=true` is among the
/// filters; older clients expect every unused volume to go, as their daemons did.
pub async fn prune(
    State(state): State<Arc<AppState>>,
    Extension(version): Extension<ApiVersion>,
    Query(q): Params,
) -> ApiResult<Json<Value>> {
    let filters = filter_pairs(&q)?;
    let all = !version.at_least(42);
    blocking(move || {
        let report = Volumes::new(&state.root).prune(all, &filters)?;
        Ok(Json(json!({
            "VolumesDeleted": report.deleted,
            "SpaceReclaimed": report.reclaimed_bytes,
        })))
    })
    .await
}
