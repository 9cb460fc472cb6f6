//! Images: list, inspect, history, tag, remove, prune, load, save (`get`), import
//! (`POST /images/create?fromSrc`). Every answer comes from berth-image's catalogue calls; this
//! module only translates queries and shapes JSON.
use super::{blocking, query_bool};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::streams::{blocking_body, body_reader, error_line};
use crate::version::ApiVersion;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use berth_image::{ImageSummary, RemoveEvent};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;

type Params = Query<HashMap<String, String>>;

/// One `GET /images/json` entry.
pub fn summary_json(i: &ImageSummary, containers: i64) -> Value {
    json!({
        "Id": i.id,
        "ParentId": i.parent.clone().unwrap_or_default(),
        "RepoTags": i.repo_tags,
        "RepoDigests": i.repo_digests,
        "Created": i.created.map(|c| c.timestamp()).unwrap_or(0),
        "Size": i.size,
        "SharedSize": -1,
        "VirtualSize": i.size,
        "Labels": i.labels,
        "Containers": containers,
    })
}

pub async fn list(State(state): State<Arc<AppState>>, Query(q): Params) -> ApiResult<Json<Value>> {
    let all = query_bool(q.get("all"));
    let filters = super::parse_filters(q.get("filters"))?;
    blocking(move || {
        let filter = berth_image::filter::ImageFilter::from_map(filters)?;
        let out: Vec<Value> = state
            .images()?
            .list_filtered(all, &filter)?
            .iter()
            .map(|i| summary_json(i, -1))
            .collect();
        Ok(Json(Value::Array(out)))
    })
    .await
}

/// `/images/{name…}/json|history|tag|get|push` and `DELETE /images/{name…}`: image names carry
/// slashes, so one wildcard route dispatches on the last segment, as Docker's `{name:.*}` does.
pub async fn by_name_get(
    State(state): State<Arc<AppState>>,
    Path(rest): Path<String>,
    Query(q): Query<Vec<(String, String)>>,
) -> ApiResult<Response> {
    if let Some(name) = rest.strip_suffix("/json") {
        let name = name.to_string();
        return blocking(move || {
            let doc = state.images()?.inspect_image(&name)?;
            Ok(Json(doc).into_response())
        })
        .await;
    }
    if let Some(name) = rest.strip_suffix("/history") {
        let name = name.to_string();
        return blocking(move || {
            let rows = state.images()?.history(&name)?;
            let out: Vec<Value> = rows
                .iter()
                .map(|r| {
                    json!({
                        "Id": r.id,
                        "Created": r.created.map(|c| c.timestamp()).unwrap_or(0),
                        "CreatedBy": r.created_by,
                        "Tags": if r.tags.is_empty() { Value::Null } else { json!(r.tags) },
                        "Size": r.size,
                        "Comment": r.comment,
                    })
                })
                .collect();
            Ok(Json(Value::Array(out)).into_response())
        })
        .await;
    }
    if let Some(name) = rest.strip_suffix("/get") {
        return save(state, vec![name.to_string()]).await;
    }
    let _ = q;
    Err(ApiError::not_found(format!(
        "page not found: /images/{rest}"
    )))
}

pub async fn by_name_post(
    State(state): State<Arc<AppState>>,
    headers: axum::http::HeaderMap,
    Path(rest): Path<String>,
    Query(q): Params,
) -> ApiResult<Response> {
    if let Some(name) = rest.strip_suffix("/tag") {
        let name = name.to_string();
        let repo = q.get("repo").cloned().unwrap_or_default();
        if repo.is_empty() {
            return Err(ApiError::bad_request(
                "repository name must have at least one component",
            ));
        }
        let target = match q.get("tag").filter(|t| !t.is_empty()) {
            Some(tag) => format!("{repo}:{tag}"),
            None => repo,
        };
        return blocking(move || {
            berth_engine::image_verbs::tag(&state.images()?, &name, &target)?;
            Ok(StatusCode::CREATED.into_response())
        })
        .await;
    }
    if let Some(name) = rest.strip_suffix("/push") {
        return super::registry::push(state, headers, name.to_string(), &q).await;
    }
    Err(ApiError::not_found(format!(
        "page not found: /images/{rest}"
    )))
}

pub async fn remove(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    Query(q): Params,
) -> ApiResult<Json<Value>> {
    let force = query_bool(q.get("force"));
    let noprune = query_bool(q.get("noprune"));
    blocking(move || {
        let events = berth_engine::image_verbs::remove(&state.images()?, &name, force, !noprune)?;
        Ok(Json(events_json(&events)))
    })
    .await
}

fn events_json(events: &[RemoveEvent]) -> Value {
    Value::Array(
        events
            .iter()
            .map(|e| match e {
                RemoveEvent::Untagged(r) => json!({"Untagged": r}),
                RemoveEvent::Deleted(id) => json!({"Deleted": id}),
            })
            .collect(),
    )
}

pub async fn prune(State(state): State<Arc<AppState>>, Query(q): Params) -> ApiResult<Json<Value>> {
    let filters = super::parse_filters(q.get("filters"))?;
    let all = filters
        .get("dangling")
        .and_then(|v| v.first())
        .is_some_and(|d| d == "false" || d == "0");
    blocking(move || {
        let no_filter = berth_image::filter::PruneFilter::default();
        let (events, reclaimed) =
            berth_engine::image_verbs::prune(&state.images()?, all, &no_filter)?;
        let deleted = events_json(&events);
        Ok(Json(json!({
            "ImagesDeleted": if events.is_empty() { Value::Null } else { deleted },
            "SpaceReclaimed": reclaimed,
        })))
    })
    .await
}

/// `GET /images/get?names=…` (repeated).
pub async fn get_many(
    State(state): State<Arc<AppState>>,
    Query(q): Query<Vec<(String, String)>>,
) -> ApiResult<Response> {
    let names: Vec<String> = q
        .into_iter()
        .filter(|(k, _)| k == "names")
        .map(|(_, v)| v)
        .collect();
    if names.is_empty() {
        return Err(ApiError::bad_request("no image names given"));
    }
    save(state, names).await
}

async fn save(state: Arc<AppState>, names: Vec<String>) -> ApiResult<Response> {
    // Resolve first so a missing image is a clean 404, not a truncated tar.
    let store = {
        let names = names.clone();
        let state = state.clone();
        blocking(move || {
            let store = state.images()?;
            for n in &names {
                store.resolve_id(n)?;
            }
            Ok(store)
        })
        .await?
    };
    let body = blocking_body(move |mut w| {
        if let Err(e) = berth_engine::image_verbs::save(&store, &names, &mut w) {
            w.fail(e);
        }
    });
    Ok(([(header::CONTENT_TYPE, "application/x-tar")], body).into_response())
}

struct LoadProgress<'a> {
    out: std::sync::Mutex<&'a mut crate::streams::ChannelWriter>,
    quiet: bool,
}

impl berth_image::Progress for LoadProgress<'_> {
    fn start(&self, name: &str, total: u64) {
        if self.quiet {
            return;
        }
        let id: String = name.chars().take(12).collect();
        if let Ok(mut w) = self.out.lock() {
            let _ = w.json_line(&json!({"status": "Loading layer", "progressDetail": {"current": 0, "total": total}, "id": id}));
        }
    }
    fn finish(&self, name: &str) {
        if self.quiet {
            return;
        }
        let id: String = name.chars().take(12).collect();
        if let Ok(mut w) = self.out.lock() {
            let _ =
                w.json_line(&json!({"status": "Loading layer", "progressDetail": {}, "id": id}));
        }
    }
}

pub async fn load(
    State(state): State<Arc<AppState>>,
    Query(q): Params,
    req: Request,
) -> ApiResult<Response> {
    let quiet = query_bool(q.get("quiet"));
    let store = state.images()?;
    let input = body_reader(req.into_body());
    let body = blocking_body(move |mut w| {
        let result = {
            let progress = LoadProgress {
                out: std::sync::Mutex::new(&mut w),
                quiet,
            };
            berth_engine::image_verbs::load(&store, input, &progress)
        };
        match result {
            Ok(loaded) => {
                for img in loaded {
                    for (tag, old) in &img.renamed {
                        let _ = w.json_line(&json!({"stream": format!("The image {tag} already exists, renaming the old one with ID {old} to empty string\n")}));
                    }
                    if img.tags.is_empty() {
                        let _ = w.json_line(
                            &json!({"stream": format!("Loaded image ID: {}\n", img.id)}),
                        );
                    }
                    for t in &img.tags {
                        let _ = w.json_line(&json!({"stream": format!("Loaded image: {t}\n")}));
                    }
                }
            }
            Err(e) => {
                let _ = w.json_line(&error_line(&e.to_string()));
            }
        }
    });
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// A pull's progress as Docker's JSON-message lines.
struct PullLines<'a> {
    out: std::sync::Mutex<&'a mut crate::streams::ChannelWriter>,
}

impl berth_registry::PullProgress for PullLines<'_> {
    fn status(&self, line: &str) {
        if let Ok(mut w) = self.out.lock() {
            // "latest: Pulling from library/busybox" → id + status, as Docker sends it.
            let v = match line.split_once(": ") {
                Some((id, status)) if !id.contains(' ') => json!({"status": status, "id": id}),
                _ => json!({"status": line}),
            };
            let _ = w.json_line(&v);
        }
    }
    fn layer(&self, id: &str, event: berth_registry::LayerEvent) {
        use berth_registry::LayerEvent;
        let v = match event {
            LayerEvent::AlreadyExists => {
                json!({"status": "Already exists", "progressDetail": {}, "id": id})
            }
            LayerEvent::Downloading { total } => {
                json!({"status": "Downloading", "progressDetail": {"current": 0, "total": total}, "id": id})
            }
            LayerEvent::Progress { .. } => return,
            LayerEvent::Extracted | LayerEvent::Resumed => {
                json!({"status": "Download complete", "progressDetail": {}, "id": id})
            }
            LayerEvent::Complete => {
                json!({"status": "Pull complete", "progressDetail": {}, "id": id})
            }
        };
        if let Ok(mut w) = self.out.lock() {
            let _ = w.json_line(&v);
        }
    }
}

/// `POST /images/create`: `fromSrc` imports a tarball (the body, or a URL); `fromImage` pulls.
pub async fn create(
    State(state): State<Arc<AppState>>,
    Extension(_version): Extension<ApiVersion>,
    headers: axum::http::HeaderMap,
    Query(q): Query<Vec<(String, String)>>,
    req: Request,
) -> ApiResult<Response> {
    let get = |k: &str| q.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
    if let Some(src) = get("fromSrc") {
        let repo = get("repo").filter(|r| !r.is_empty());
        let reference = match (repo, get("tag").filter(|t| !t.is_empty())) {
            (Some(r), Some(t)) => Some(format!("{r}:{t}")),
            (r, _) => r,
        };
        let changes: Vec<String> = q
            .iter()
            .filter(|(k, _)| k == "changes")
            .map(|(_, v)| v.clone())
            .collect();
        let options = berth_image::ImportOptions {
            reference,
            changes,
            message: get("message").filter(|m| !m.is_empty()),
            source: src.clone(),
        };
        if src != "-" {
            return Err(ApiError::bad_request(format!(
                "import from {src}: only an uploaded tarball (fromSrc=-) is supported"
            )));
        }
        let store = state.images()?;
        let input = body_reader(req.into_body());
        let body = blocking_body(move |mut w| {
            match berth_engine::image_verbs::import(&store, input, &options) {
                Ok(id) => {
                    let _ = w.json_line(&json!({"status": id}));
                }
                Err(e) => {
                    let _ = w.json_line(&error_line(&e.to_string()));
                }
            }
        });
        return Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response());
    }
    if let Some(image) = get("fromImage") {
        let reference = match get("tag").filter(|t| !t.is_empty()) {
            Some(tag) if tag.starts_with("sha256:") => format!("{image}@{tag}"),
            Some(tag) => format!("{image}:{tag}"),
            None => image,
        };
        let platform = get("platform")
            .filter(|p| !p.is_empty())
            .map(|p| berth_registry::Platform::parse(&p))
            .transpose()
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        let store = state.images()?;
        let body = blocking_body(move |mut w| {
            let result = (|| {
                let domain = berth_image::Reference::parse(&reference)?.domain;
                let session = super::registry::session_for(&headers, &domain)?;
                let options = berth_registry::PullOptions {
                    platform,
                    all_tags: false,
                };
                let progress = PullLines {
                    out: std::sync::Mutex::new(&mut w),
                };
                berth_registry::pull(&store, &session, &reference, &options, &progress)
            })();
            match result {
                Ok(pulled) => {
                    for p in pulled {
                        berth_engine::image_verbs::pulled(&store, &p.reference);
                        let familiar = p.reference.familiar_string();
                        let _ = w.json_line(
                            &json!({"status": format!("Digest: {}", p.manifest_digest)}),
                        );
                        let status = if p.downloaded {
                            format!("Status: Downloaded newer image for {familiar}")
                        } else {
                            format!("Status: Image is up to date for {familiar}")
                        };
                        let _ = w.json_line(&json!({"status": status}));
                    }
                }
                Err(e) => {
                    let _ = w.json_line(&error_line(&e.to_string()));
                }
            }
        });
        return Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response());
    }
    Err(ApiError::bad_request("fromImage or fromSrc is required"))
}
