//! `GET|HEAD|PUT /containers/{id}/archive`: `docker cp` both ways. Paths inside the container are
//! resolved by berth-engine's `fsops` (inside its root, never by string joining); this module
//! turns its copies into Docker's tar streams and the `X-Docker-Container-Path-Stat` header.
use super::blocking;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::streams::{blocking_body, body_reader};
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use berth_engine::ContainerRecord;
use std::collections::HashMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::sync::Arc;

type Params = Query<HashMap<String, String>>;

const STAT_HEADER: &str = "X-Docker-Container-Path-Stat";

/// Go's `os.FileMode` bits, which Docker's clients read from the stat header.
fn go_file_mode(meta: &std::fs::Metadata) -> u32 {
    let ft = meta.file_type();
    let mut mode = meta.permissions().mode() & 0o777;
    if ft.is_dir() {
        mode |= 1 << 31;
    } else if ft.is_symlink() {
        mode |= 1 << 27;
    }
    mode
}

fn stat_header(name: &str, path: &std::path::Path) -> ApiResult<HeaderValue> {
    let meta = std::fs::symlink_metadata(path)
        .map_err(|e| ApiError::not_found(format!("Could not find the file {name}: {e}")))?;
    let link = std::fs::read_link(path)
        .map(|l| l.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mtime = chrono::DateTime::from_timestamp(meta.mtime(), meta.mtime_nsec() as u32)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    let json = serde_json::json!({
        "name": name,
        "size": meta.size(),
        "mode": go_file_mode(&meta),
        "mtime": mtime,
        "linkTarget": link,
    });
    let encoded = base64::engine::general_purpose::STANDARD.encode(json.to_string());
    HeaderValue::from_str(&encoded).map_err(|e| ApiError::internal(e.to_string()))
}

fn base_name(path: &str) -> String {
    let trimmed = path.trim_end_matches('/');
    match trimmed.rsplit_once('/') {
        Some((_, b)) if !b.is_empty() => b.to_string(),
        _ if trimmed.is_empty() => "/".into(),
        _ => trimmed.to_string(),
    }
}

fn required_path(q: &HashMap<String, String>) -> ApiResult<String> {
    q.get("path")
        .cloned()
        .filter(|p| !p.is_empty())
        .ok_or_else(|| ApiError::bad_request("path is required"))
}

/// Copies `path` out of the container into a fresh temporary directory; returns it and the
/// copy's path inside it.
fn copy_out(
    state: &AppState,
    record: &ContainerRecord,
    path: &str,
) -> ApiResult<(tempfile::TempDir, std::path::PathBuf)> {
    let dir = tempfile::Builder::new()
        .prefix("berth-api-cp-")
        .tempdir()
        .map_err(|e| ApiError::internal(format!("temporary directory: {e}")))?;
    berth_engine::fsops::copy_from(
        &state.engine,
        record,
        path,
        dir.path(),
        berth_engine::fsops::CopyOptions {
            archive: true,
            follow_link: false,
        },
    )
    .map_err(|e| match e {
        berth_engine::EngineError::Sys(m) if m.starts_with("Could not find") => {
            ApiError::not_found(m)
        }
        other => other.into(),
    })?;
    let name = base_name(path);
    let copied = if name == "/" {
        dir.path().to_path_buf()
    } else {
        dir.path().join(&name)
    };
    Ok((dir, copied))
}

pub async fn head(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    Query(q): Params,
) -> ApiResult<Response> {
    let path = required_path(&q)?;
    blocking(move || {
        let record = state.engine.lookup(&id)?;
        // Stat through a copy of the entry itself only (directories copy their tree; clients
        // stat before PUT, where the target is usually a directory of modest size).
        let (_dir, copied) = copy_out(&state, &record, &path)?;
        let value = stat_header(&base_name(&path), &copied)?;
        let mut r = StatusCode::OK.into_response();
        r.headers_mut().insert(STAT_HEADER, value);
        Ok(r)
    })
    .await
}

pub async fn get(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    Query(q): Params,
) -> ApiResult<Response> {
    let path = required_path(&q)?;
    let (dir, copied, stat) = {
        let state = state.clone();
        let path = path.clone();
        blocking(move || {
            let record = state.engine.lookup(&id)?;
            let (dir, copied) = copy_out(&state, &record, &path)?;
            let stat = stat_header(&base_name(&path), &copied)?;
            Ok((dir, copied, stat))
        })
        .await?
    };
    let name = base_name(&path);
    let body = blocking_body(move |mut w| {
        let _keep = dir;
        let mut builder = tar::Builder::new(&mut w);
        builder.follow_symlinks(false);
        let result = if copied.is_dir() {
            let prefix = if name == "/" { "." } else { name.as_str() };
            builder.append_dir_all(prefix, &copied)
        } else {
            builder.append_path_with_name(&copied, &name)
        };
        match result.and_then(|_| builder.finish()) {
            Ok(()) => {}
            Err(e) => {
                drop(builder);
                w.fail(e);
            }
        }
    });
    let mut r = ([(header::CONTENT_TYPE, "application/x-tar")], body).into_response();
    r.headers_mut().insert(STAT_HEADER, stat);
    Ok(r)
}

pub async fn put(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    Query(q): Params,
    req: Request,
) -> ApiResult<StatusCode> {
    let path = required_path(&q)?;
    let input = body_reader(req.into_body());
    blocking(move || {
        let record = state.engine.lookup(&id)?;
        let dir = tempfile::Builder::new()
            .prefix("berth-api-cp-")
            .tempdir()
            .map_err(|e| ApiError::internal(format!("temporary directory: {e}")))?;
        // The tar crate's unpack refuses `..` and absolute escapes; the copy into the container
        // then goes through the engine's in-root resolution.
        let mut archive = tar::Archive::new(input);
        archive.set_preserve_permissions(true);
        archive.set_overwrite(true);
        archive
            .unpack(dir.path())
            .map_err(|e| ApiError::bad_request(format!("invalid tar archive: {e}")))?;
        let entries = std::fs::read_dir(dir.path())
            .map_err(|e| ApiError::internal(format!("reading the upload: {e}")))?;
        for entry in entries {
            let entry = entry.map_err(|e| ApiError::internal(e.to_string()))?;
            berth_engine::fsops::copy_to(
                &state.engine,
                &record,
                &entry.path(),
                &path,
                Default::default(),
            )?;
        }
        Ok(StatusCode::OK)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_names_and_go_modes() {
        assert_eq!(base_name("/etc/hostname"), "hostname");
        assert_eq!(base_name("/etc/"), "etc");
        assert_eq!(base_name("/"), "/");
        assert_eq!(base_name("file"), "file");
        let dir = tempfile::tempdir().unwrap();
        let meta = std::fs::symlink_metadata(dir.path()).unwrap();
        assert_ne!(go_file_mode(&meta) & (1 << 31), 0);
    }
}
