//! `/_ping`, `/version`, `/info`, `/system/df`.
use super::blocking;
use crate::error::ApiResult;
use crate::state::AppState;
use crate::version::{API_VERSION, MIN_API_VERSION};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use std::sync::Arc;

fn ping_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-store, must-revalidate"),
    );
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    // The classic builder; BuildKit's gRPC session is not served.
    h.insert("Builder-Version", HeaderValue::from_static("1"));
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h
}

pub async fn ping() -> Response {
    (ping_headers(), "OK").into_response()
}

pub async fn ping_head() -> Response {
    let mut h = ping_headers();
    h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    (h, "").into_response()
}

fn kernel_version() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    }
}

pub async fn version() -> Json<Value> {
    Json(version_document())
}

/// Docker's `GET /version` document (also what `berth version --format` renders as `.Server`).
pub fn version_document() -> Value {
    let engine_version = env!("CARGO_PKG_VERSION");
    // bollard-stubs types `Components[].Details` as a map of unit types, so this one document
    // is written out by hand in Docker's shape.
    json!({
        "Platform": {"Name": "Berth"},
        "Components": [{
            "Name": "Engine",
            "Version": engine_version,
            "Details": {
                "ApiVersion": API_VERSION,
                "MinAPIVersion": MIN_API_VERSION,
                "Os": "linux",
                "Arch": go_arch(),
                "KernelVersion": kernel_version(),
                "Experimental": "false",
                "GitCommit": "berth",
                "GoVersion": "rust",
                "BuildTime": "",
            },
        }],
        "Version": engine_version,
        "ApiVersion": API_VERSION,
        "MinAPIVersion": MIN_API_VERSION,
        "GitCommit": "berth",
        "GoVersion": "rust",
        "Os": "linux",
        "Arch": go_arch(),
        "KernelVersion": kernel_version(),
    })
}

fn os_name() -> String {
    std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                .map(|v| v.trim_matches('"').to_string())
        })
        .unwrap_or_else(|| "Linux".into())
}

fn mem_total() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map(|kib| kib * 1024)
        .unwrap_or(0)
}

fn cgroup_version() -> &'static str {
    if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        "2"
    } else {
        "1"
    }
}

pub async fn info(State(state): State<Arc<AppState>>) -> ApiResult<Json<Value>> {
    blocking(move || {
        let counts = berth_engine::housekeeping::counts(&state.engine)?;
        for u in &counts.unreadable {
            tracing::warn!("{u}");
        }
        let (all, running, paused, stopped) = (
            counts.containers,
            counts.running,
            counts.paused,
            counts.stopped,
        );
        let images = state.images()?.list_images(true)?.len();
        let hostname = nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_default();
        let ncpu = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        Ok(Json(json!({
            "ID": "",
            "Containers": all,
            "ContainersRunning": running,
            "ContainersPaused": paused,
            "ContainersStopped": stopped,
            "Images": images,
            "Driver": "overlay2",
            "DriverStatus": [["Backing Filesystem", "extfs"], ["Supports d_type", "true"], ["Using metacopy", "false"], ["Native Overlay Diff", "true"], ["userxattr", "false"]],
            "Plugins": {"Volume": ["local"], "Network": ["bridge", "host", "none"], "Authorization": null, "Log": ["json-file"]},
            "MemoryLimit": true,
            "SwapLimit": true,
            "CpuCfsPeriod": true,
            "CpuCfsQuota": true,
            "CPUShares": true,
            "CPUSet": true,
            "PidsLimit": true,
            "IPv4Forwarding": true,
            "Debug": false,
            "NFd": 0,
            "OomKillDisable": false,
            "NGoroutines": 0,
            "SystemTime": berth_common::time::now_rfc3339(),
            "LoggingDriver": "json-file",
            "CgroupDriver": "cgroupfs",
            "CgroupVersion": cgroup_version(),
            "NEventsListener": 0,
            "KernelVersion": kernel_version(),
            "OperatingSystem": os_name(),
            "OSVersion": "",
            "OSType": "linux",
            "Architecture": std::env::consts::ARCH,
            "IndexServerAddress": "https://index.docker.io/v1/",
            "RegistryConfig": {"IndexConfigs": {}, "InsecureRegistryCIDRs": ["127.0.0.0/8"], "Mirrors": []},
            "NCPU": ncpu,
            "MemTotal": mem_total(),
            "GenericResources": null,
            "DockerRootDir": state.root,
            "HttpProxy": "",
            "HttpsProxy": "",
            "NoProxy": "",
            "Name": hostname,
            "Labels": [],
            "ExperimentalBuild": false,
            "ServerVersion": env!("CARGO_PKG_VERSION"),
            "Runtimes": {"berth-runtime": {"path": "berth-runtime"}},
            "DefaultRuntime": "berth-runtime",
            "Swarm": {"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive", "ControlAvailable": false, "Error": "", "RemoteManagers": null},
            "LiveRestoreEnabled": true,
            "Isolation": "",
            "InitBinary": "docker-init",
            "ContainerdCommit": {"ID": ""},
            "RuncCommit": {"ID": ""},
            "InitCommit": {"ID": ""},
            "SecurityOptions": ["name=seccomp,profile=builtin"],
            "Warnings": [],
        })))
    })
    .await
}

pub async fn df(State(state): State<Arc<AppState>>) -> ApiResult<Json<Value>> {
    blocking(move || {
        let images = state.images()?.list_images(true)?;
        let layers_size: u64 = images.iter().map(|i| i.size).sum();
        let images: Vec<Value> = images
            .iter()
            .map(|i| super::images::summary_json(i, -1))
            .collect();
        let all = berth_engine::ListOptions {
            all: true,
            size: true,
            ..Default::default()
        };
        let containers = super::containers::summaries(&state, &all)?;
        let store = berth_engine::volumes::Volumes::new(&state.root);
        let mut volumes: Vec<Value> = Vec::new();
        for v in store.list() {
            let mut doc = v.inspect();
            doc["UsageData"] = json!({
                "Size": store.size(&v),
                "RefCount": store.users(&v.name)?.len(),
            });
            volumes.push(doc);
        }
        Ok(Json(json!({
            "LayersSize": layers_size,
            "Images": images,
            "Containers": containers,
            "Volumes": volumes,
            "BuildCache": [],
        })))
    })
    .await
}
