//! What a user asks of a new container: Docker's `Config` and `HostConfig` (same field names as
//! `config.v2.json` / `hostconfig.json`), and the pure parsers that turn `docker run` flag
//! values (`32m`, `1.5`, `on-failure:3`, `nofile=1024:2048`, `-v a:b:ro`, `--mount k=v,…`) into them.
//! Owns no I/O except reading `--env-file`.
use crate::error::EngineError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Docker's container `Config` (the part of `config.v2.json` the user and the image decide).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerConfig {
    pub hostname: String,
    pub domainname: String,
    pub user: String,
    pub attach_stdin: bool,
    pub attach_stdout: bool,
    pub attach_stderr: bool,
    pub exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
    pub tty: bool,
    pub open_stdin: bool,
    pub stdin_once: bool,
    pub env: Vec<String>,
    pub cmd: Option<Vec<String>>,
    /// The health check (image `HEALTHCHECK` merged with `--health-*`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<berth_image::HealthConfig>,
    pub image: String,
    pub volumes: Option<BTreeMap<String, serde_json::Value>>,
    pub working_dir: String,
    pub entrypoint: Option<Vec<String>>,
    pub labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_timeout: Option<i64>,
    /// The image's `SHELL` (health checks in shell form run through it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shell: Option<Vec<String>>,
}

/// Docker's `RestartPolicy`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct RestartPolicy {
    pub name: String,
    pub maximum_retry_count: i64,
}

/// One `--ulimit`, Docker's shape.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct Ulimit {
    pub name: String,
    pub soft: i64,
    pub hard: i64,
}

/// One `--mount` / `-v`, Docker's `mount.Mount` shape.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct MountConfig {
    /// `bind`, `volume` or `tmpfs`.
    pub r#type: String,
    pub source: String,
    pub target: String,
    pub read_only: bool,
}

/// Docker's `LogConfig`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct LogConfig {
    pub r#type: String,
    pub config: BTreeMap<String, String>,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            r#type: "json-file".into(),
            config: BTreeMap::new(),
        }
    }
}

/// Docker's `HostConfig` (`hostconfig.json`), the subset Berth honours.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct HostConfig {
    pub binds: Vec<String>,
    pub log_config: LogConfig,
    pub network_mode: String,
    pub port_bindings: BTreeMap<String, serde_json::Value>,
    pub restart_policy: RestartPolicy,
    pub auto_remove: bool,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub ipc_mode: String,
    pub pid_mode: String,
    #[serde(rename = "UTSMode")]
    pub uts_mode: String,
    pub userns_mode: String,
    pub privileged: bool,
    pub readonly_rootfs: bool,
    pub security_opt: Vec<String>,
    pub tmpfs: BTreeMap<String, String>,
    pub shm_size: i64,
    pub memory: i64,
    pub memory_reservation: i64,
    pub memory_swap: i64,
    pub nano_cpus: i64,
    pub cpu_shares: i64,
    pub cpu_period: i64,
    pub cpu_quota: i64,
    pub cpuset_cpus: String,
    pub cpuset_mems: String,
    pub blkio_weight: u16,
    pub pids_limit: Option<i64>,
    pub oom_kill_disable: Option<bool>,
    pub ulimits: Vec<Ulimit>,
    pub mounts: Vec<MountConfig>,
    /// `--volumes-from CONTAINER[:ro|rw]`.
    pub volumes_from: Vec<String>,
    pub init: Option<bool>,
    /// `--dns`, `--dns-search`, `--dns-option`, `--add-host` (`name:ip`), `-P`.
    pub dns: Vec<String>,
    pub dns_search: Vec<String>,
    pub dns_options: Vec<String>,
    pub extra_hosts: Vec<String>,
    pub publish_all_ports: bool,
}

/// Per-container network settings beyond `NetworkMode` (Docker's `NetworkingConfig`): the
/// further `--network`s, and `--network-alias`, `--ip`, `--ip6`, `--mac-address` for the first
/// one.
#[derive(Debug, Clone, Default)]
pub struct NetworkingOptions {
    pub extra_networks: Vec<String>,
    pub aliases: Vec<String>,
    pub ip: Option<String>,
    pub ip6: Option<String>,
    pub mac_address: Option<String>,
}

/// Everything `berth create`/`run` was asked, before the image is consulted.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// `--name`, or a random Docker-style name when absent.
    pub name: Option<String>,
    /// The image reference as typed.
    pub image: String,
    /// Positional command after the image (replaces the image's Cmd when non-empty).
    pub command: Vec<String>,
    /// `--entrypoint` (empty string clears the image's entrypoint).
    pub entrypoint: Option<String>,
    /// `-e` and `--env-file` entries, already in `K=V` form.
    pub env: Vec<String>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub hostname: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub tty: bool,
    pub interactive: bool,
    pub stop_signal: Option<String>,
    pub stop_timeout: Option<i64>,
    pub host: HostConfig,
    /// `--rootfs DIR` (Podman's flag): run on this directory instead of an image layer.
    pub rootfs: Option<std::path::PathBuf>,
    pub networking: NetworkingOptions,
    /// `--health-*` / `--no-healthcheck` (merged with the image's `HEALTHCHECK`).
    pub healthcheck: Option<berth_image::HealthConfig>,
}

/// Docker's `RAMInBytes` (`berth_common::units::parse_bytes`) for a size flag.
pub fn parse_bytes(text: &str) -> Result<i64, EngineError> {
    berth_common::units::parse_bytes(text).map_err(|_| EngineError::InvalidFlag {
        flag: "size".into(),
        value: text.into(),
        reason: "expected a size like 32m or 1g".into(),
    })
}

/// `--cpus 1.5` → NanoCpus.
pub fn parse_cpus(text: &str) -> Result<i64, EngineError> {
    let value: f64 = text.parse().map_err(|_| EngineError::InvalidFlag {
        flag: "--cpus".into(),
        value: text.into(),
        reason: "expected a decimal number of CPUs".into(),
    })?;
    if value < 0.0 {
        return Err(EngineError::InvalidFlag {
            flag: "--cpus".into(),
            value: text.into(),
            reason: "must be positive".into(),
        });
    }
    Ok((value * 1e9).round() as i64)
}

/// `--restart no|always|unless-stopped|on-failure[:N]`.
pub fn parse_restart(text: &str) -> Result<RestartPolicy, EngineError> {
    let (name, count) = match text.split_once(':') {
        Some((n, c)) => (n, Some(c)),
        None => (text, None),
    };
    let bad = |reason: &str| EngineError::InvalidFlag {
        flag: "--restart".into(),
        value: text.into(),
        reason: reason.into(),
    };
    match name {
        "" | "no" | "always" | "unless-stopped" if count.is_some() => {
            Err(bad("only on-failure takes a retry count"))
        }
        "" | "no" => Ok(RestartPolicy {
            name: "no".into(),
            maximum_retry_count: 0,
        }),
        "always" | "unless-stopped" => Ok(RestartPolicy {
            name: name.into(),
            maximum_retry_count: 0,
        }),
        "on-failure" => {
            let max = match count {
                Some(c) => c.parse().map_err(|_| bad("retry count must be a number"))?,
                None => 0,
            };
            Ok(RestartPolicy {
                name: name.into(),
                maximum_retry_count: max,
            })
        }
        _ => Err(bad("expected no, always, unless-stopped or on-failure[:N]")),
    }
}

/// `--ulimit nofile=1024:2048` (or `nofile=1024`).
pub fn parse_ulimit(text: &str) -> Result<Ulimit, EngineError> {
    let bad = || EngineError::InvalidFlag {
        flag: "--ulimit".into(),
        value: text.into(),
        reason: "expected name=soft[:hard]".into(),
    };
    let (name, values) = text.split_once('=').ok_or_else(bad)?;
    let (soft, hard) = match values.split_once(':') {
        Some((s, h)) => (s, h),
        None => (values, values),
    };
    let parse = |v: &str| -> Result<i64, EngineError> {
        if v == "unlimited" || v == "-1" {
            Ok(-1)
        } else {
            v.parse().map_err(|_| bad())
        }
    };
    Ok(Ulimit {
        name: name.to_string(),
        soft: parse(soft)?,
        hard: parse(hard)?,
    })
}

/// `-v SRC:DST[:ro|rw]` or `-v DST` (anonymous volume). A SRC without `/` is a named volume.
pub fn parse_volume(text: &str) -> Result<MountConfig, EngineError> {
    let bad = |reason: &str| EngineError::InvalidFlag {
        flag: "--volume".into(),
        value: text.into(),
        reason: reason.into(),
    };
    let parts: Vec<&str> = text.split(':').collect();
    let (source, target, mode) = match parts.as_slice() {
        [dst] => ("", *dst, ""),
        [src, dst] => (*src, *dst, ""),
        [src, dst, mode] => (*src, *dst, *mode),
        _ => return Err(bad("expected SRC:DST[:MODE]")),
    };
    if !target.starts_with('/') {
        return Err(bad("the container path must be absolute"));
    }
    let read_only = mode.split(',').any(|m| m == "ro");
    if mode.split(',').any(|m| {
        ![
            "", "ro", "rw", "z", "Z", "rprivate", "private", "shared", "slave", "rslave", "rshared",
        ]
        .contains(&m)
    }) {
        return Err(bad("unknown mode"));
    }
    let kind = if source.starts_with('/') {
        "bind"
    } else {
        "volume"
    };
    Ok(MountConfig {
        r#type: kind.into(),
        source: source.into(),
        target: target.into(),
        read_only,
    })
}

/// `--mount type=bind,source=/a,target=/b,readonly`.
pub fn parse_mount(text: &str) -> Result<MountConfig, EngineError> {
    let bad = |reason: &str| EngineError::InvalidFlag {
        flag: "--mount".into(),
        value: text.into(),
        reason: reason.into(),
    };
    let mut mount = MountConfig {
        r#type: "volume".into(),
        ..Default::default()
    };
    for field in text.split(',') {
        let (key, value) = field.split_once('=').unwrap_or((field, ""));
        match key {
            "type" => mount.r#type = value.to_string(),
            "source" | "src" => mount.source = value.to_string(),
            "target" | "destination" | "dst" => mount.target = value.to_string(),
            "readonly" | "ro" => {
                mount.read_only = value.is_empty() || value == "true" || value == "1"
            }
            "bind-propagation" | "volume-nocopy" | "tmpfs-size" | "tmpfs-mode" | "consistency" => {}
            _ => return Err(bad(&format!("unknown field {key}"))),
        }
    }
    if !["bind", "volume", "tmpfs"].contains(&mount.r#type.as_str()) {
        return Err(bad("type must be bind, volume or tmpfs"));
    }
    if !mount.target.starts_with('/') {
        return Err(bad("target must be an absolute path"));
    }
    if mount.r#type == "bind" && !mount.source.starts_with('/') {
        return Err(bad("a bind source must be an absolute path"));
    }
    Ok(mount)
}

/// `-e K=V` stays; `-e K` takes K from the caller's environment (dropped when unset, like Docker).
pub fn resolve_env_flag(text: &str) -> Option<String> {
    if text.contains('=') {
        Some(text.to_string())
    } else {
        std::env::var(text).ok().map(|v| format!("{text}={v}"))
    }
}

/// Reads a Docker `--env-file`: `K=V` lines, `#` comments, bare `K` taken from the environment.
pub fn read_env_file(path: &std::path::Path) -> Result<Vec<String>, EngineError> {
    let text = std::fs::read_to_string(path).map_err(|e| EngineError::io(path, e))?;
    Ok(text
        .lines()
        .map(str::trim_start)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(resolve_env_flag)
        .collect())
}

/// `-l k=v` / `-l k`.
pub fn parse_label(text: &str) -> (String, String) {
    match text.split_once('=') {
        Some((k, v)) => (k.to_string(), v.to_string()),
        None => (text.to_string(), String::new()),
    }
}

/// Parses `--since`/`--until`: RFC 3339, a Unix timestamp, or a relative duration like `10m`,
/// `2h`, `30s` (Docker's `GetTimestamp`).
pub fn parse_since(text: &str) -> crate::error::Result<chrono::DateTime<chrono::Utc>> {
    berth_common::time::parse_timestamp(text, chrono::Utc::now()).ok_or_else(|| {
        EngineError::InvalidFlag {
            flag: "--since".into(),
            value: text.into(),
            reason: "expected a timestamp or a duration like 10m".into(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_follow_docker() {
        assert_eq!(parse_bytes("32m").unwrap(), 32 << 20);
        assert_eq!(parse_bytes("32M").unwrap(), 32 << 20);
        assert_eq!(parse_bytes("1g").unwrap(), 1 << 30);
        assert_eq!(parse_bytes("64mb").unwrap(), 64 << 20);
        assert_eq!(parse_bytes("100").unwrap(), 100);
        assert_eq!(parse_bytes("1.5k").unwrap(), 1536);
        assert!(parse_bytes("lots").is_err());
    }

    #[test]
    fn cpus_and_restart() {
        assert_eq!(parse_cpus("1.5").unwrap(), 1_500_000_000);
        assert_eq!(
            parse_restart("on-failure:3").unwrap().maximum_retry_count,
            3
        );
        assert_eq!(parse_restart("always").unwrap().name, "always");
        assert!(parse_restart("always:2").is_err());
        assert!(parse_restart("sometimes").is_err());
    }

    #[test]
    fn ulimits_volumes_mounts() {
        assert_eq!(
            parse_ulimit("nofile=1024:2048").unwrap(),
            Ulimit {
                name: "nofile".into(),
                soft: 1024,
                hard: 2048
            }
        );
        assert_eq!(parse_ulimit("nproc=10").unwrap().hard, 10);
        let v = parse_volume("/host:/ctr:ro").unwrap();
        assert_eq!((v.r#type.as_str(), v.read_only), ("bind", true));
        assert_eq!(parse_volume("data:/data").unwrap().r#type, "volume");
        assert!(parse_volume("/a:rel").is_err());
        let m = parse_mount("type=tmpfs,target=/scratch").unwrap();
        assert_eq!(m.r#type, "tmpfs");
        assert!(parse_mount("type=bind,source=rel,target=/x").is_err());
    }

    #[test]
    fn host_config_uses_docker_names() {
        let json = serde_json::to_value(HostConfig {
            uts_mode: "host".into(),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(json["UTSMode"], "host");
        assert!(json.get("NanoCpus").is_some());
        assert_eq!(json["LogConfig"]["Type"], "json-file");
    }
}
