//! `GET /containers/{id}/stats` (Docker's stats JSON, streamed every second or one-shot) and
//! `GET /containers/{id}/top` (the daemon-side `ps`, filtered to the container's processes).
use super::{blocking, query_bool};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::streams::blocking_body;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use berth_engine::ContainerRecord;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

type Params = Query<HashMap<String, String>>;

/// Host CPU time in nanoseconds (the `cpu` line of /proc/stat), Docker's `system_cpu_usage`.
fn system_cpu_ns() -> u64 {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: u64 = text
        .lines()
        .find(|l| l.starts_with("cpu "))
        .map(|l| {
            l.split_whitespace()
                .skip(1)
                .take(7)
                .filter_map(|v| v.parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    ticks * (1_000_000_000 / hz)
}

fn host_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map(|k| k * 1024)
        .unwrap_or(0)
}

fn sample(record: &ContainerRecord) -> Option<berth_cgroups::Stats> {
    if !record.is_running() {
        return None;
    }
    let h = berth_cgroups::Hierarchy::detect().ok()?;
    let cg = berth_cgroups::Cgroup::open(&h, &record.berth_cgroups_path).ok()?;
    cg.stats().ok()
}

fn cpu_json(s: Option<&berth_cgroups::Stats>, system: u64, ncpu: usize) -> Value {
    match s {
        Some(s) => json!({
            "cpu_usage": {
                "total_usage": s.cpu.usage_total_ns,
                "percpu_usage": s.cpu.usage_per_cpu_ns,
                "usage_in_kernelmode": s.cpu.usage_system_ns,
                "usage_in_usermode": s.cpu.usage_user_ns,
            },
            "system_cpu_usage": system,
            "online_cpus": ncpu,
            "throttling_data": {
                "periods": s.cpu.throttling.periods,
                "throttled_periods": s.cpu.throttling.throttled_periods,
                "throttled_time": s.cpu.throttling.throttled_time_ns,
            },
        }),
        None => json!({"cpu_usage": {"total_usage": 0}, "throttling_data": {}}),
    }
}

/// One Docker stats document from two samples (`pre` may be absent on the first).
fn stats_json(
    record: &ContainerRecord,
    pre: Option<(&berth_cgroups::Stats, u64, String)>,
    now: Option<&berth_cgroups::Stats>,
    system: u64,
) -> Value {
    let ncpu = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let memory = match now {
        Some(s) => {
            let mut stat: serde_json::Map<String, Value> = s
                .memory
                .stat
                .iter()
                .map(|(k, v)| (k.clone(), json!(v)))
                .collect();
            stat.entry("cache").or_insert(json!(s.memory.cache));
            json!({
                "usage": s.memory.usage,
                "max_usage": s.memory.max_usage,
                "limit": s.memory.limit.unwrap_or_else(host_memory),
                "failcnt": s.memory.failcnt,
                "stats": stat,
            })
        }
        None => json!({}),
    };
    let blkio = match now {
        Some(s) => {
            let entries: Vec<Value> = s
                .blkio
                .entries
                .iter()
                .map(|e| json!({"major": e.major, "minor": e.minor, "op": e.op, "value": e.value}))
                .collect();
            json!({"io_service_bytes_recursive": entries})
        }
        None => json!({"io_service_bytes_recursive": null}),
    };
    let zero_time = "0001-01-01T00:00:00Z".to_string();
    json!({
        "read": berth_common::time::now_rfc3339(),
        "preread": pre.as_ref().map(|p| p.2.clone()).unwrap_or(zero_time),
        "pids_stats": {"current": now.map(|s| s.pids.current).unwrap_or(0), "limit": now.and_then(|s| s.pids.limit)},
        "blkio_stats": blkio,
        "num_procs": 0,
        "cpu_stats": cpu_json(now, system, ncpu),
        "precpu_stats": match &pre { Some((s, sys, _)) => cpu_json(Some(s), *sys, ncpu), None => cpu_json(None, 0, ncpu) },
        "memory_stats": memory,
        "name": format!("/{}", record.short_name()),
        "id": record.id,
    })
}

pub async fn stats(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    Query(q): Params,
) -> ApiResult<Response> {
    // Docker streams unless stream=0; one-shot skips the second sample.
    let stream = q.get("stream").is_none_or(|v| query_bool(Some(v)));
    let one_shot = query_bool(q.get("one-shot"));
    let record = {
        let state = state.clone();
        blocking(move || Ok(state.engine.lookup(&id)?)).await?
    };
    let busy = state.activity.enter();
    let body = blocking_body(move |mut w| {
        let _busy = busy;
        let now_text = berth_common::time::now_rfc3339;
        let mut record = record;
        let mut pre = if one_shot {
            None
        } else {
            sample(&record).map(|s| (s, system_cpu_ns(), now_text()))
        };
        if !one_shot && !stream {
            std::thread::sleep(Duration::from_millis(100));
        }
        loop {
            let now = sample(&record);
            let system = system_cpu_ns();
            let doc = stats_json(
                &record,
                pre.as_ref().map(|(s, sys, t)| (s, *sys, t.clone())),
                now.as_ref(),
                system,
            );
            let mut line = doc.to_string();
            line.push('\n');
            if std::io::Write::write_all(&mut w, line.as_bytes()).is_err() || !stream {
                return;
            }
            pre = now.map(|s| (s, system, now_text()));
            std::thread::sleep(Duration::from_secs(1));
            match state.engine.store.load(&record.id) {
                Ok(r) => record = r,
                Err(_) => return,
            }
        }
    });
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// Splits `ps` output into titles and rows; the last column keeps its spaces (the command).
fn parse_ps(text: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let mut lines = text.lines();
    let titles: Vec<String> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let n = titles.len().max(1);
    let rows = lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let mut fields: Vec<String> = Vec::with_capacity(n);
            let mut rest = l.trim_start();
            while fields.len() + 1 < n {
                let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
                fields.push(rest[..end].to_string());
                rest = rest[end..].trim_start();
            }
            fields.push(rest.to_string());
            fields
        })
        .collect();
    (titles, rows)
}

pub async fn top(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    Query(q): Params,
) -> ApiResult<Json<Value>> {
    let ps_args = q
        .get("ps_args")
        .cloned()
        .filter(|a| !a.is_empty())
        .unwrap_or_else(|| "-ef".into());
    blocking(move || {
        let record = state.engine.lookup(&id)?;
        if !record.is_running() {
            return Err(ApiError::conflict(format!(
                "container {} is not running",
                record.id
            )));
        }
        let pids: Vec<i32> = berth_engine::procinfo::subtree(record.state.pid);
        let out = std::process::Command::new("ps")
            .args(ps_args.split_whitespace())
            .output()
            .map_err(|e| ApiError::internal(format!("running ps: {e}")))?;
        if !out.status.success() {
            return Err(ApiError::internal(format!(
                "ps: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        let (titles, rows) = parse_ps(&String::from_utf8_lossy(&out.stdout));
        let pid_col = titles
            .iter()
            .position(|t| t == "PID")
            .ok_or_else(|| ApiError::internal("Couldn't find PID field in ps output"))?;
        let rows: Vec<Vec<String>> = rows
            .into_iter()
            .filter(|r| {
                r.get(pid_col)
                    .and_then(|p| p.parse::<i32>().ok())
                    .is_some_and(|p| pids.contains(&p))
            })
            .collect();
        Ok(Json(json!({"Titles": titles, "Processes": rows})))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ps_output_keeps_the_command_whole() {
        let (t, rows) = parse_ps("UID PID PPID CMD\nroot 1 0 sleep 60\nroot 22 1 sh -c x y\n");
        assert_eq!(t, ["UID", "PID", "PPID", "CMD"]);
        assert_eq!(rows[1], ["root", "22", "1", "sh -c x y"]);
        assert!(system_cpu_ns() > 0);
    }
}
