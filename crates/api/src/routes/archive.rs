//! `GET|HEAD|PUT /containers/{id}/archive`: `docker cp` both ways. The tar streams in and out are
//! berth-engine's (`commit_export_cp::archive_from` / `extract_to`, which resolve every path inside the
//! container's root); this module adds Docker's `X-Docker-Container-Path-Stat` header, read from
//! the first tar header of the same stream.
use super::{blocking, query_bool};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::streams::{blocking_body, body_reader};
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use berth_engine::commit_export_cp::{self, CopyOptions};
use berth_engine::{ContainerRecord, EngineError};
use std::collections::HashMap;
use std::sync::Arc;

type Params = Query<HashMap<String, String>>;

const STAT_HEADER: &str = "X-Docker-Container-Path-Stat";

/// Keeps the first 512 bytes (one tar header) and then refuses more, ending the archive early.
#[derive(Default)]
struct FirstHeader(Vec<u8>);

impl std::io::Write for FirstHeader {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let want = 512 - self.0.len();
        if want == 0 {
            return Err(std::io::Error::other("stat: first header read"));
        }
        let n = want.min(buf.len());
        self.0.extend_from_slice(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn not_found_or(err: EngineError, path: &str) -> ApiError {
    let text = err.to_string();
    if text.contains("No such file")
        || text.contains("Could not find")
        || text.contains("not found")
    {
        ApiError::not_found(format!(
            "Could not find the file {path} in container: {text}"
        ))
    } else {
        err.into()
    }
}

/// Docker's stat of `path` in the container, from the first header of its archive. Go's
/// `os.FileMode` bits: directories 1<<31, symlinks 1<<27.
fn stat(state: &AppState, record: &ContainerRecord, path: &str) -> ApiResult<HeaderValue> {
    let mut first = FirstHeader::default();
    let result = commit_export_cp::archive_from(
        &state.engine,
        record,
        path,
        CopyOptions::default(),
        &mut first,
    );
    if first.0.len() < 512 {
        return Err(match result {
            Err(e) => not_found_or(e, path),
            Ok(()) => ApiError::not_found(format!("Could not find the file {path} in container")),
        });
    }
    let h = tar::Header::from_byte_slice(&first.0);
    let mut mode = h.mode().unwrap_or(0) & 0o777;
    let kind = h.entry_type();
    if kind.is_dir() {
        mode |= 1 << 31;
    } else if kind.is_symlink() {
        mode |= 1 << 27;
    }
    let name = {
        let trimmed = path.trim_end_matches('/');
        match trimmed.rsplit_once('/') {
            Some((_, b)) if !b.is_empty() => b.to_string(),
            _ if trimmed.is_empty() => "/".to_string(),
            _ => trimmed.to_string(),
        }
    };
    let mtime = berth_common::time::rfc3339_secs(
        chrono::DateTime::from_timestamp(h.mtime().unwrap_or(0) as i64, 0).unwrap_or_default(),
    );
    let link = h
        .link_name()
        .ok()
        .flatten()
        .map(|l| l.to_string_lossy().into_owned())
        .unwrap_or_default();
    let json = serde_json::json!({
        "name": name,
        "size": h.size().unwrap_or(0),
        "mode": mode,
        "mtime": mtime,
        "linkTarget": link,
    });
    let encoded = base64::engine::general_purpose::STANDARD.encode(json.to_string());
    HeaderValue::from_str(&encoded).map_err(|e| ApiError::internal(e.to_string()))
}

fn required_path(q: &HashMap<String, String>) -> ApiResult<String> {
    q.get("path")
        .cloned()
        .filter(|p| !p.is_empty())
        .ok_or_else(|| ApiError::bad_request("path is required"))
}

pub async fn head(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    Query(q): Params,
) -> ApiResult<Response> {
    let path = required_path(&q)?;
    blocking(move || {
        let record = state.engine.lookup(&id)?;
        let value = stat(&state, &record, &path)?;
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
    let (record, value) = {
        let state = state.clone();
        let path = path.clone();
        blocking(move || {
            let record = state.engine.lookup(&id)?;
            let value = stat(&state, &record, &path)?;
            Ok((record, value))
        })
        .await?
    };
    let body = blocking_body(move |mut w| {
        if let Err(e) = commit_export_cp::archive_from(
            &state.engine,
            &record,
            &path,
            CopyOptions::default(),
            &mut w,
        ) {
            w.fail(e);
        }
    });
    let mut r = ([(header::CONTENT_TYPE, "application/x-tar")], body).into_response();
    r.headers_mut().insert(STAT_HEADER, value);
    Ok(r)
}

pub async fn put(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    Query(q): Params,
    req: Request,
) -> ApiResult<StatusCode> {
    let path = required_path(&q)?;
    let opts = CopyOptions {
        archive: query_bool(q.get("copyUIDGID")),
        follow_link: false,
    };
    let mut input = body_reader(req.into_body());
    blocking(move || {
        let record = state.engine.lookup(&id)?;
        commit_export_cp::extract_to(&state.engine, &record, &mut input, &path, opts)
            .map_err(|e| not_found_or(e, &path))?;
        Ok(StatusCode::OK)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn first_header_stops_after_one_block() {
        let mut h = FirstHeader::default();
        assert_eq!(h.write(&[1u8; 300]).unwrap(), 300);
        assert_eq!(h.write(&[2u8; 300]).unwrap(), 212);
        assert!(h.write(&[3u8; 1]).is_err());
        assert_eq!(h.0.len(), 512);
    }
}
