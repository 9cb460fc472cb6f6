//! What reaches a registry: `/auth` (credentials checked, not kept: the client keeps them),
//! `GET /images/search`, `POST /images/{name}/push`, and the `X-Registry-Auth` header that
//! carries a client's credentials on pull and push. The registry work is berth-registry's.
use super::blocking;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::streams::{blocking_body, error_line, ChannelWriter};
use axum::body::Bytes;
use axum::extract::Query;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine as _;
use berth_registry::{login, Credentials, PushEvent, PushProgress, RegistryError, Session};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Docker's `AuthConfig` (the `/auth` body and the decoded `X-Registry-Auth`).
#[derive(Debug, Default, serde::Deserialize)]
struct AuthConfig {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    auth: String,
    #[serde(default)]
    serveraddress: String,
    #[serde(default)]
    identitytoken: String,
}

impl AuthConfig {
    /// The credentials it carries, if any (`auth` is `base64(user:password)`).
    fn credentials(&self) -> Option<Credentials> {
        if !self.identitytoken.is_empty() {
            return Some(Credentials {
                username: self.username.clone(),
                secret: self.identitytoken.clone(),
                identity_token: true,
            });
        }
        if !self.username.is_empty() {
            return Some(Credentials {
                username: self.username.clone(),
                secret: self.password.clone(),
                identity_token: false,
            });
        }
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(self.auth.trim())
            .ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (user, password) = text.split_once(':')?;
        Some(Credentials {
            username: user.to_string(),
            secret: password.to_string(),
            identity_token: false,
        })
    }
}

/// `X-Registry-Auth`: base64url JSON (padded or not; some clients send standard base64).
fn header_auth(headers: &HeaderMap) -> Option<AuthConfig> {
    let raw = headers.get("X-Registry-Auth")?.to_str().ok()?.trim();
    if raw.is_empty() {
        return None;
    }
    let bytes = [
        &base64::engine::general_purpose::URL_SAFE,
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        &base64::engine::general_purpose::STANDARD,
    ]
    .iter()
    .find_map(|e| e.decode(raw).ok())?;
    serde_json::from_slice(&bytes).ok()
}

/// A session for one request: the service's settings and `config.json`, with the client's own
/// credentials for `domain` when it sent some.
pub fn session_for(headers: &HeaderMap, domain: &str) -> Result<Session, RegistryError> {
    let session = Session::from_environment()?;
    if let Some(creds) = header_auth(headers).and_then(|a| a.credentials()) {
        session.use_credentials(domain, creds)?;
    }
    Ok(session)
}

fn registry_status(err: &RegistryError) -> StatusCode {
    match err {
        RegistryError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
        RegistryError::Denied { .. } => StatusCode::FORBIDDEN,
        RegistryError::Invalid(_) => StatusCode::BAD_REQUEST,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<RegistryError> for ApiError {
    fn from(err: RegistryError) -> ApiError {
        ApiError::new(registry_status(&err), err.to_string())
    }
}

/// `POST /auth`: proves the credentials against the registry; Docker's answer on success.
pub async fn auth(body: Bytes) -> ApiResult<Json<Value>> {
    let config: AuthConfig = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("invalid auth configuration: {e}")))?;
    let creds = config
        .credentials()
        .ok_or_else(|| ApiError::bad_request("auth: a username or identity token is required"))?;
    let domain =
        login::server_domain(Some(config.serveraddress.as_str()).filter(|s| !s.is_empty()));
    blocking(move || {
        let session = Session::from_environment()?;
        login::check(&session, &domain, creds)?;
        Ok(Json(
            json!({"Status": "Login Succeeded", "IdentityToken": ""}),
        ))
    })
    .await
}

/// `GET /images/search?term=…&limit=…`.
pub async fn search(
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    let term = q
        .get("term")
        .filter(|t| !t.is_empty())
        .cloned()
        .ok_or_else(|| ApiError::bad_request("search: a term is required"))?;
    let limit = match q.get("limit").filter(|l| !l.is_empty()) {
        Some(l) => l
            .parse::<usize>()
            .map_err(|_| ApiError::bad_request(format!("invalid limit {l:?}")))?,
        None => 25,
    };
    let filters = super::parse_filters(q.get("filters"))?;
    blocking(move || {
        let domain = match term.split_once('/') {
            Some((first, _)) if first.contains('.') || first.contains(':') => first.to_string(),
            _ => login::server_domain(None),
        };
        let session = session_for(&headers, &domain)?;
        let results = login::search(&session, &term, limit)?;
        let out: Vec<Value> = results
            .iter()
            .filter(|r| {
                filters.iter().all(|(k, values)| {
                    values.iter().all(|v| match k.as_str() {
                        "is-official" => (v == "true") == r.is_official,
                        "stars" => v.parse::<u64>().is_ok_and(|n| r.star_count >= n),
                        _ => true,
                    })
                })
            })
            .map(|r| {
                json!({
                    "name": r.name,
                    "description": r.description,
                    "star_count": r.star_count,
                    "is_official": r.is_official,
                    "is_automated": false,
                })
            })
            .collect();
        Ok(Json(Value::Array(out)))
    })
    .await
}

/// A push's progress as Docker's JSON-message lines.
struct PushLines<'a> {
    out: Mutex<&'a mut ChannelWriter>,
}

impl PushProgress for PushLines<'_> {
    fn status(&self, line: &str) {
        if let Ok(mut w) = self.out.lock() {
            let _ = w.json_line(&json!({"status": line}));
        }
    }
    fn layer(&self, id: &str, event: PushEvent) {
        let status = match event {
            PushEvent::AlreadyExists => "Layer already exists".to_string(),
            PushEvent::Mounted(from) => format!("Mounted from {from}"),
            PushEvent::Uploading => "Pushing".to_string(),
            PushEvent::Progress(_) => return,
            PushEvent::Pushed => "Pushed".to_string(),
            PushEvent::SkippedForeign => "Skipped foreign layer".to_string(),
        };
        if let Ok(mut w) = self.out.lock() {
            let _ = w.json_line(&json!({"status": status, "progressDetail": {}, "id": id}));
        }
    }
}

/// `POST /images/{name}/push?tag=…`: streams the push; errors end the stream as Docker's
/// error line, which the CLI prints and exits non-zero on.
pub async fn push(
    state: Arc<AppState>,
    headers: HeaderMap,
    name: String,
    q: &HashMap<String, String>,
) -> ApiResult<Response> {
    let reference = match q.get("tag").filter(|t| !t.is_empty()) {
        Some(tag) => format!("{name}:{tag}"),
        None => name,
    };
    // Without a tag Docker's daemon pushes every tag of the repository.
    let all_tags = q.get("tag").is_none_or(|t| t.is_empty());
    let parsed = berth_image::Reference::parse(&reference)?;
    let store = state.images()?;
    let body = blocking_body(move |mut w| {
        let result = (|| {
            let session = session_for(&headers, &parsed.domain)?;
            let progress = PushLines {
                out: Mutex::new(&mut w),
            };
            berth_registry::push(&store, &session, &reference, all_tags, &progress)
        })();
        match result {
            Ok(pushed) => {
                for p in pushed {
                    let tag = p.reference.tag.clone().unwrap_or_default();
                    let _ = w.json_line(&json!({
                        "progressDetail": {},
                        "aux": {"Tag": tag, "Digest": p.manifest_digest, "Size": p.manifest_size},
                    }));
                }
            }
            Err(e) => {
                let _ = w.json_line(&error_line(&e.to_string()));
            }
        }
    });
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}
