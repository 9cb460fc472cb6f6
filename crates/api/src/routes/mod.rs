//! The route table: Docker Engine API paths (without the version prefix, which `server` strips)
//! to handlers, grouped by object like Docker's own router.
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use axum::routing::{delete, get, post};
use axum::Router;
use std::sync::Arc;

pub mod archive;
pub mod build;
pub mod containers;
pub mod events;
pub mod exec;
pub mod images;
pub mod networks;
pub mod registry;
pub mod stats;
pub mod system;
pub mod volumes;

/// Runs blocking library work (engine and image store calls) off the async workers.
pub async fn blocking<T, F>(f: F) -> ApiResult<T>
where
    F: FnOnce() -> ApiResult<T> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(f).await?
}

/// Docker's query booleans: `1`, `true`, `True` are true; absent, `0`, `false` are not.
/// The content type of an attach, exec or logs stream: the raw bytes with a TTY, else Docker's
/// stdcopy frames.
pub fn stream_content_type(tty: bool) -> &'static str {
    if tty {
        "application/vnd.docker.raw-stream"
    } else {
        "application/vnd.docker.multiplexed-stream"
    }
}

/// The `101 Switching Protocols` answer that hands a connection over to an attach or exec
/// session.
pub fn upgrade_response(tty: bool) -> ApiResult<axum::response::Response> {
    use axum::http::{header, StatusCode};
    axum::response::Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "tcp")
        .header(header::CONTENT_TYPE, stream_content_type(tty))
        .body(axum::body::Body::empty())
        .map_err(|e| ApiError::internal(e.to_string()))
}

pub fn query_bool(value: Option<&String>) -> bool {
    matches!(
        value.map(|v| v.to_ascii_lowercase()).as_deref(),
        Some("1") | Some("true") | Some("yes")
    )
}

/// Docker's `filters` query parameter: `{"key":["v1","v2"]}` (or the old `{"key":{"v":true}}`).
pub fn parse_filters(
    raw: Option<&String>,
) -> ApiResult<std::collections::BTreeMap<String, Vec<String>>> {
    let mut out = std::collections::BTreeMap::new();
    let Some(raw) = raw.filter(|r| !r.is_empty()) else {
        return Ok(out);
    };
    let value: serde_json::Value = serde_json::from_str(raw)
        .map_err(|e| ApiError::bad_request(format!("invalid filter {raw:?}: {e}")))?;
    let Some(obj) = value.as_object() else {
        return Err(ApiError::bad_request(format!("invalid filter {raw:?}")));
    };
    for (key, v) in obj {
        let values: Vec<String> = match v {
            serde_json::Value::Array(items) => items
                .iter()
                .filter_map(|i| i.as_str().map(str::to_string))
                .collect(),
            serde_json::Value::Object(map) => map
                .iter()
                .filter(|(_, on)| on.as_bool().unwrap_or(false))
                .map(|(k, _)| k.clone())
                .collect(),
            serde_json::Value::String(s) => vec![s.clone()],
            _ => return Err(ApiError::bad_request(format!("invalid filter {raw:?}"))),
        };
        out.insert(key.clone(), values);
    }
    Ok(out)
}

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/_ping", get(system::ping).head(system::ping_head))
        .route("/version", get(system::version))
        .route("/info", get(system::info))
        .route("/system/df", get(system::df))
        .route("/events", get(events::events))
        .route("/volumes", get(volumes::list))
        .route("/volumes/create", post(volumes::create))
        .route("/volumes/prune", post(volumes::prune))
        .route(
            "/volumes/{name}",
            get(volumes::inspect).delete(volumes::remove),
        )
        .route("/networks", get(networks::list))
        .route("/networks/create", post(networks::create))
        .route("/networks/prune", post(networks::prune))
        .route(
            "/networks/{id}",
            get(networks::inspect).delete(networks::remove),
        )
        .route("/networks/{id}/connect", post(networks::connect))
        .route("/networks/{id}/disconnect", post(networks::disconnect))
        .route("/images/json", get(images::list))
        .route("/images/get", get(images::get_many))
        .route("/images/load", post(images::load))
        .route("/images/create", post(images::create))
        .route("/images/prune", post(images::prune))
        .route("/images/search", get(registry::search))
        .route("/auth", post(registry::auth))
        .route(
            "/images/{*name}",
            get(images::by_name_get)
                .post(images::by_name_post)
                .delete(images::remove),
        )
        .route("/containers/json", get(containers::list))
        .route("/containers/create", post(containers::create))
        .route("/containers/prune", post(containers::prune))
        .route("/containers/{id}/json", get(containers::inspect))
        .route("/containers/{id}/start", post(containers::start))
        .route("/containers/{id}/stop", post(containers::stop))
        .route("/containers/{id}/restart", post(containers::restart))
        .route("/containers/{id}/kill", post(containers::kill))
        .route("/containers/{id}/wait", post(containers::wait))
        .route("/containers/{id}/pause", post(containers::pause))
        .route("/containers/{id}/unpause", post(containers::unpause))
        .route("/containers/{id}/rename", post(containers::rename))
        .route("/containers/{id}/resize", post(containers::resize))
        .route("/containers/{id}/attach", post(containers::attach))
        .route("/containers/{id}/logs", get(containers::logs))
        .route("/containers/{id}/export", get(containers::export))
        .route("/containers/{id}/update", post(containers::update))
        .route("/containers/{id}/changes", get(containers::changes))
        .route("/containers/{id}", delete(containers::remove))
        .route(
            "/containers/{id}/archive",
            get(archive::get).head(archive::head).put(archive::put),
        )
        .route("/containers/{id}/stats", get(stats::stats))
        .route("/containers/{id}/top", get(stats::top))
        .route("/containers/{id}/exec", post(exec::create))
        .route("/exec/{id}/start", post(exec::start))
        .route("/exec/{id}/json", get(exec::inspect))
        .route("/exec/{id}/resize", post(exec::resize))
        .route("/build", post(build::build))
        .fallback(crate::server::not_found)
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_in_both_docker_shapes() {
        let f = parse_filters(Some(
            &r#"{"label":["a=b"],"status":{"running":true}}"#.into(),
        ))
        .unwrap();
        assert_eq!(f["label"], vec!["a=b"]);
        assert_eq!(f["status"], vec!["running"]);
        assert!(parse_filters(Some(&"[1]".to_string())).is_err());
        assert!(parse_filters(None).unwrap().is_empty());
        assert!(query_bool(Some(&"1".into())));
        assert!(query_bool(Some(&"True".into())));
        assert!(!query_bool(Some(&"0".into())));
        assert!(!query_bool(None));
    }
}
