//! `POST /build`: the classic builder over HTTP. The body is the context tar; the answer streams
//! Docker's JSON lines (`{"stream":…}`, `{"aux":{"ID":…}}`, `{"errorDetail":…}`). The build
//! itself is berth-build's, on the same engine runner and cache as `berth build`.
use super::query_bool;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::streams::{blocking_body, body_reader, error_line, ChannelWriter};
use axum::extract::{Query, Request, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use berth_build::{BuildCache, BuildContext, BuildOptions, EngineRunner};
use serde_json::json;
use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;

/// Turns the builder's text output into `{"stream": …}` lines, one per line of text.
struct StreamLines<'a> {
    out: &'a mut ChannelWriter,
    pending: Vec<u8>,
}

impl Write for StreamLines<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.pending.extend_from_slice(buf);
        while let Some(i) = self.pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=i).collect();
            self.out
                .json_line(&json!({"stream": String::from_utf8_lossy(&line)}))?;
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        if !self.pending.is_empty() {
            let line = std::mem::take(&mut self.pending);
            self.out
                .json_line(&json!({"stream": String::from_utf8_lossy(&line)}))?;
        }
        Ok(())
    }
}

fn json_map(raw: Option<&String>, what: &str) -> ApiResult<BTreeMap<String, Option<String>>> {
    match raw.filter(|r| !r.is_empty()) {
        None => Ok(BTreeMap::new()),
        Some(r) => serde_json::from_str(r)
            .map_err(|e| ApiError::bad_request(format!("invalid {what} {r:?}: {e}"))),
    }
}

pub async fn build(
    State(state): State<Arc<AppState>>,
    Query(q): Query<Vec<(String, String)>>,
    req: Request,
) -> ApiResult<Response> {
    let get = |k: &str| q.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
    let tags: Vec<String> = q
        .iter()
        .filter(|(k, _)| k == "t")
        .map(|(_, v)| v.clone())
        .collect();
    for tag in &tags {
        berth_image::Reference::parse_tagged(tag)?;
    }
    let build_args = json_map(get("buildargs").as_ref(), "buildargs")?;
    let labels = json_map(get("labels").as_ref(), "labels")?
        .into_iter()
        .map(|(k, v)| (k, v.unwrap_or_default()))
        .collect();
    let dockerfile_name = get("dockerfile")
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| "Dockerfile".into());
    let no_cache = query_bool(get("nocache").as_ref());
    let quiet = query_bool(get("q").as_ref());
    let target = get("target").filter(|t| !t.is_empty());
    let network = get("networkmode").unwrap_or_default();
    let root = state.root.clone();
    let input = body_reader(req.into_body());
    let body = blocking_body(move |mut w| {
        let result = (|| -> Result<String, String> {
            let got = BuildContext::from_stdin(input).map_err(|e| e.to_string())?;
            let context = got.context;
            let path = context.root().join(&dockerfile_name);
            let text = std::fs::read_to_string(&path).map_err(|e| {
                format!("Cannot locate specified Dockerfile: {dockerfile_name}: {e}")
            })?;
            let options = BuildOptions {
                dockerfile_name: dockerfile_name.clone(),
                dockerfile_text: text,
                tags,
                build_args,
                target,
                no_cache,
                labels,
            };
            let mut runner = EngineRunner::open(&root).map_err(|e| e.to_string())?;
            // RUN output goes into this stream, as Docker's classic builder sends it (the
            // service's own stdio is no one's terminal); pulls report nothing on the side.
            runner.show_output = false;
            runner.run_output_to_writer = !quiet;
            if network == "host" {
                runner.network_mode = "host".into();
            }
            let mut cache = BuildCache::open(&root).map_err(|e| e.to_string())?;
            let mut sink = std::io::sink();
            let mut lines = StreamLines {
                out: &mut w,
                pending: Vec::new(),
            };
            let out: &mut dyn Write = if quiet { &mut sink } else { &mut lines };
            let outcome = berth_build::build(&mut runner, &mut cache, &context, &options, out);
            let _ = lines.flush();
            outcome.map(|o| o.image_id).map_err(|e| e.to_string())
        })();
        match result {
            Ok(id) => {
                let _ = w.json_line(&json!({"aux": {"ID": id}}));
                if quiet {
                    let _ = w.json_line(&json!({"stream": format!("{id}\n")}));
                }
            }
            Err(message) => {
                let _ = w.json_line(&error_line(&message));
            }
        }
    });
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}
