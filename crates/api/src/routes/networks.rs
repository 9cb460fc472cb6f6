//! `/networks`: list, inspect, create, remove, prune, connect, disconnect — berth-net's store
//! through the engine's network door (the same calls `berth network` makes), in Docker's
//! shapes. `host` and `none` are Docker's predefined networks without a record: they are
//! listed and inspected as Docker shows them and cannot be created, removed or joined.
use super::{blocking, parse_filters};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use berth_engine::net::{CreateNetwork, NetError, DEFAULT_NETWORK};
use berth_engine::network;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

type Params = Query<HashMap<String, String>>;

const PREDEFINED: [(&str, &str); 2] = [("host", "host"), ("none", "null")];

/// Docker's document for `host` or `none`.
fn predefined_json(name: &str, driver: &str) -> Value {
    json!({
        "Name": name, "Id": name, "Created": "0001-01-01T00:00:00Z", "Scope": "local",
        "Driver": driver, "EnableIPv4": true, "EnableIPv6": false,
        "IPAM": {"Driver": "default", "Options": null, "Config": null},
        "Internal": false, "Attachable": false, "Ingress": false,
        "ConfigFrom": {"Network": ""}, "ConfigOnly": false,
        "Containers": {}, "Options": {}, "Labels": {},
    })
}

fn body_json(body: &Bytes) -> ApiResult<Value> {
    if body.is_empty() {
        return Ok(json!({}));
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
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

/// Whether one network document passes Docker's network filters (`name` substring, `id`
/// prefix, `label`, `driver`, `type=custom|builtin`).
fn passes(doc: &Value, filters: &BTreeMap<String, Vec<String>>) -> ApiResult<bool> {
    for (key, wanted) in filters {
        let text = |k: &str| doc.get(k).and_then(Value::as_str).unwrap_or_default();
        let ok = match key.as_str() {
            "name" => wanted.iter().any(|w| text("Name").contains(w.as_str())),
            "id" => wanted.iter().any(|w| text("Id").starts_with(w.as_str())),
            "driver" => wanted.iter().any(|w| text("Driver") == w),
            "scope" => wanted.iter().any(|w| w == "local"),
            "type" => {
                let builtin = ["bridge", "host", "none"].contains(&text("Name"));
                wanted.iter().any(|w| match w.as_str() {
                    "builtin" => builtin,
                    "custom" => !builtin,
                    _ => false,
                })
            }
            "label" => {
                let labels: BTreeMap<String, String> = doc
                    .get("Labels")
                    .and_then(|l| serde_json::from_value(l.clone()).ok())
                    .unwrap_or_default();
                wanted
                    .iter()
                    .all(|w| berth_image::filter::label_matches(&labels, w))
            }
            "dangling" => {
                let unused = doc
                    .get("Containers")
                    .and_then(Value::as_object)
                    .is_none_or(|c| c.is_empty());
                wanted.iter().any(|w| (w == "true" || w == "1") == unused)
            }
            other => return Err(ApiError::bad_request(format!("invalid filter '{other}'"))),
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

pub async fn list(State(state): State<Arc<AppState>>, Query(q): Params) -> ApiResult<Json<Value>> {
    let filters = parse_filters(q.get("filters"))?;
    blocking(move || {
        network::collect_garbage(&state.root);
        let store = network::store(&state.root);
        let mut docs = Vec::new();
        for net in store.networks()? {
            docs.push(store.inspect(&net.id)?);
        }
        docs.extend(PREDEFINED.iter().map(|(n, d)| predefined_json(n, d)));
        let mut out = Vec::new();
        for doc in docs {
            if passes(&doc, &filters)? {
                out.push(doc);
            }
        }
        Ok(Json(Value::Array(out)))
    })
    .await
}

pub async fn inspect(
    State(state): State<Arc<AppState>>,
    Path(key): Path<String>,
) -> ApiResult<Json<Value>> {
    blocking(move || {
        if let Some((n, d)) = PREDEFINED.iter().find(|(n, _)| *n == key) {
            return Ok(Json(predefined_json(n, d)));
        }
        network::collect_garbage(&state.root);
        Ok(Json(network::store(&state.root).inspect(&key)?))
    })
    .await
}

pub async fn create(
    State(state): State<Arc<AppState>>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let body = body_json(&body)?;
    let text = |v: &Value, k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let name =
        text(&body, "Name").ok_or_else(|| ApiError::bad_request("network name is required"))?;
    let driver = text(&body, "Driver").unwrap_or_else(|| "bridge".into());
    if driver != "bridge" {
        return Err(ApiError::not_found(format!(
            "plugin \"{driver}\" not found (only the bridge driver is available)"
        )));
    }
    // IPAM.Config holds at most one IPv4 and one IPv6 entry (told apart by their subnet or
    // gateway); EnableIPv6 turns the IPv6 one on.
    let configs: Vec<Value> = body
        .get("IPAM")
        .and_then(|i| i.get("Config"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let is_v6 = |c: &Value| {
        text(c, "Subnet")
            .or_else(|| text(c, "Gateway"))
            .is_some_and(|s| s.contains(':'))
    };
    let ipam = configs
        .iter()
        .find(|c| !is_v6(c))
        .cloned()
        .unwrap_or(Value::Null);
    let ipam6 = configs
        .iter()
        .find(|c| is_v6(c))
        .cloned()
        .unwrap_or(Value::Null);
    let req = CreateNetwork {
        name,
        subnet: text(&ipam, "Subnet"),
        gateway: text(&ipam, "Gateway"),
        ip_range: text(&ipam, "IPRange"),
        internal: body
            .get("Internal")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        options: string_map(&body, "Options"),
        labels: string_map(&body, "Labels"),
        ipv6: body
            .get("EnableIPv6")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        subnet6: text(&ipam6, "Subnet"),
        gateway6: text(&ipam6, "Gateway"),
    };
    blocking(move || {
        let net = network::create(&state.root, &req)?;
        Ok((
            StatusCode::CREATED,
            Json(json!({"Id": net.id, "Warning": ""})),
        ))
    })
    .await
}

fn refuse_predefined(key: &str, action: &str) -> ApiResult<()> {
    if PREDEFINED.iter().any(|(n, _)| *n == key) || key == DEFAULT_NETWORK {
        return Err(NetError::Predefined {
            network: key.to_string(),
            action: action.to_string(),
        }
        .into());
    }
    Ok(())
}

pub async fn remove(
    State(state): State<Arc<AppState>>,
    Path(key): Path<String>,
) -> ApiResult<StatusCode> {
    refuse_predefined(&key, "removed")?;
    blocking(move || {
        network::collect_garbage(&state.root);
        network::remove(&state.root, &key)?;
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}

pub async fn prune(State(state): State<Arc<AppState>>, Query(q): Params) -> ApiResult<Json<Value>> {
    let filters = parse_filters(q.get("filters"))?;
    if let Some(key) = filters.keys().find(|k| k.as_str() != "label") {
        return Err(ApiError::bad_request(format!("invalid filter '{key}'")));
    }
    blocking(move || {
        network::collect_garbage(&state.root);
        let store = network::store(&state.root);
        let removed = if filters.is_empty() {
            network::prune(&state.root)?
        } else {
            // Only the unused networks the label filters select.
            let mut removed = Vec::new();
            for net in store.networks()? {
                let doc = store.inspect(&net.id)?;
                let unused = doc["Containers"].as_object().is_none_or(|c| c.is_empty());
                if net.is_default() || !unused || !passes(&doc, &filters)? {
                    continue;
                }
                match network::remove(&state.root, &net.id) {
                    Ok(n) => removed.push(n.name),
                    Err(berth_engine::EngineError::Network(NetError::InUse { .. })) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            removed
        };
        Ok(Json(json!({"NetworksDeleted": removed})))
    })
    .await
}

pub async fn connect(
    State(state): State<Arc<AppState>>,
    Path(key): Path<String>,
    body: Bytes,
) -> ApiResult<StatusCode> {
    let body = body_json(&body)?;
    let container = body
        .get("Container")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let endpoint = body.get("EndpointConfig").cloned().unwrap_or(Value::Null);
    let aliases: Vec<String> = endpoint
        .get("Aliases")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let ipam = |key: &str| {
        endpoint
            .get("IPAMConfig")
            .and_then(|c| c.get(key))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let (ip, ip6) = (ipam("IPv4Address"), ipam("IPv6Address"));
    if PREDEFINED.iter().any(|(n, _)| *n == key) {
        return Err(ApiError::bad_request(format!(
            "container cannot be disconnected from host network or connected to {key} network"
        )));
    }
    blocking(move || {
        let record = state.engine.lookup(&container)?;
        network::connect(
            &state.root,
            &record.id,
            record.short_name(),
            &key,
            &aliases,
            ip.as_deref(),
            ip6.as_deref(),
        )?;
        Ok(StatusCode::OK)
    })
    .await
}

pub async fn disconnect(
    State(state): State<Arc<AppState>>,
    Path(key): Path<String>,
    body: Bytes,
) -> ApiResult<StatusCode> {
    let body = body_json(&body)?;
    let container = body
        .get("Container")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    blocking(move || {
        let id = state.engine.store.resolve(&container)?;
        network::disconnect(&state.root, &id, &key)?;
        Ok(StatusCode::OK)
    })
    .await
}
