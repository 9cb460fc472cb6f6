//! Where registry settings come from, as Docker keeps them:
//! - `daemon.json` (`registry-mirrors`, `insecure-registries`) and `certs.d/<host[:port]>/*.crt`
//!   (extra CAs) under Berth's configuration directory: `$BERTH_CONFIG_DIR`, else `/etc/berth`
//!   (with `/etc/docker/certs.d` also consulted, so a host set up for Docker works as is);
//! - the API endpoint of a registry name (`docker.io` is served by `registry-1.docker.io`);
//! - whether plain HTTP may be used: only for insecure registries and loopback, as Docker does;
//! - `$BERTH_DOCKER_HUB_ENDPOINT`: Docker Hub's API somewhere else (air-gapped hosts, tests).
use crate::error::{RegistryError, Result};
use serde::Deserialize;
use std::net::{IpAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};

/// The Docker Hub name in references.
pub const DOCKER_HUB: &str = "docker.io";
/// The host serving Docker Hub's registry API.
pub const DOCKER_HUB_API: &str = "registry-1.docker.io";
/// The key Docker's `config.json` uses for Docker Hub credentials.
pub const DOCKER_HUB_AUTH_KEY: &str = "https://index.docker.io/v1/";

/// The `daemon.json` keys the registry client reads.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct DaemonConfig {
    #[serde(rename = "registry-mirrors", default)]
    pub registry_mirrors: Vec<String>,
    #[serde(rename = "insecure-registries", default)]
    pub insecure_registries: Vec<String>,
}

/// Registry settings: daemon.json plus the certificate directories.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub daemon: DaemonConfig,
    /// `certs.d` directories searched in order.
    pub certs_dirs: Vec<PathBuf>,
    /// Where Docker Hub's registry API is reached instead of `https://registry-1.docker.io`
    /// (`$BERTH_DOCKER_HUB_ENDPOINT`, e.g. `http://127.0.0.1:5000`): for air-gapped hosts with
    /// their own copy of Hub, and for tests of the mirror fallback.
    pub hub_endpoint: Option<String>,
}

/// Berth's configuration directory.
pub fn config_dir() -> PathBuf {
    std::env::var_os("BERTH_CONFIG_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/etc/berth"))
}

impl Settings {
    /// Reads `daemon.json` under [`config_dir`] (absent is fine; malformed is an error).
    pub fn load() -> Result<Settings> {
        Settings::load_from(&config_dir())
    }

    /// Reads `dir/daemon.json` and uses `dir/certs.d` (then `/etc/docker/certs.d`).
    pub fn load_from(dir: &Path) -> Result<Settings> {
        let path = dir.join("daemon.json");
        let daemon = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| RegistryError::BadConfig {
                path: path.clone(),
                reason: e.to_string(),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => DaemonConfig::default(),
            Err(e) => return Err(RegistryError::io("reading", &path)(e)),
        };
        Ok(Settings {
            daemon,
            certs_dirs: vec![dir.join("certs.d"), PathBuf::from("/etc/docker/certs.d")],
            hub_endpoint: std::env::var("BERTH_DOCKER_HUB_ENDPOINT")
                .ok()
                .map(|e| e.trim_end_matches('/').to_string())
                .filter(|e| !e.is_empty()),
        })
    }

    /// True when `host` (`name[:port]`) may be reached over plain HTTP: listed in
    /// `insecure-registries` (by name or CIDR) or a loopback address, as Docker allows.
    pub fn allows_plain_http(&self, host: &str) -> bool {
        let name = host_without_port(host);
        if self
            .daemon
            .insecure_registries
            .iter()
            .any(|i| i == host || i == name || cidr_contains(i, name))
        {
            return true;
        }
        is_loopback(name)
    }

    /// The endpoints of `domain`'s registry API, in the order a client tries them:
    /// `https://host`, then `http://host` where plain HTTP is allowed (Docker Hub: its API host,
    /// or [`Settings::hub_endpoint`]). Mirrors are not among them: see [`Settings::mirrors_for`].
    pub fn official_endpoints(&self, domain: &str) -> Vec<String> {
        if domain == DOCKER_HUB {
            if let Some(e) = &self.hub_endpoint {
                return vec![e.clone()];
            }
        }
        let host = api_host(domain);
        let mut bases = vec![format!("https://{host}")];
        if self.allows_plain_http(host) {
            bases.push(format!("http://{host}"));
        }
        bases
    }

    /// Mirrors to try before `domain` (Docker uses mirrors for Docker Hub only).
    pub fn mirrors_for(&self, domain: &str) -> Vec<String> {
        if domain != DOCKER_HUB {
            return Vec::new();
        }
        self.daemon
            .registry_mirrors
            .iter()
            .map(|m| m.trim_end_matches('/').to_string())
            .collect()
    }

    /// PEM files (`*.crt`) in `certs.d/<host>/` directories: extra CAs for that registry.
    pub fn ca_files(&self, host: &str) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for dir in &self.certs_dirs {
            let Ok(rd) = std::fs::read_dir(dir.join(host)) else {
                continue;
            };
            let mut files: Vec<PathBuf> = rd
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "crt"))
                .collect();
            files.sort();
            out.extend(files);
        }
        out
    }
}

/// The API host of a registry name: Docker Hub's API lives on its own host.
pub fn api_host(domain: &str) -> &str {
    if domain == DOCKER_HUB {
        DOCKER_HUB_API
    } else {
        domain
    }
}

/// The key under which `config.json` keeps credentials for a registry name.
pub fn auth_key(domain: &str) -> String {
    if domain == DOCKER_HUB || domain == "index.docker.io" || domain == DOCKER_HUB_API {
        DOCKER_HUB_AUTH_KEY.to_string()
    } else {
        domain.to_string()
    }
}

/// `host` without `:port` (IPv6 in brackets keeps its address).
pub fn host_without_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

fn is_loopback(name: &str) -> bool {
    if name == "localhost" {
        return true;
    }
    if let Ok(ip) = name.parse::<IpAddr>() {
        return ip.is_loopback();
    }
    // A name that resolves only to loopback addresses counts too (Docker resolves it as well).
    match (name, 0u16).to_socket_addrs() {
        Ok(addrs) => {
            let addrs: Vec<_> = addrs.collect();
            !addrs.is_empty() && addrs.iter().all(|a| a.ip().is_loopback())
        }
        Err(_) => false,
    }
}

fn cidr_contains(cidr: &str, name: &str) -> bool {
    let Some((net, bits)) = cidr.split_once('/') else {
        return false;
    };
    let (Ok(net), Ok(bits), Ok(ip)) = (
        net.parse::<IpAddr>(),
        bits.parse::<u32>(),
        name.parse::<IpAddr>(),
    ) else {
        return false;
    };
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) if bits <= 32 => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            u32::from(n) & mask == u32::from(i) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(i)) if bits <= 128 => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            u128::from(n) & mask == u128::from(i) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_for_insecure_and_loopback() {
        let mut s = Settings::default();
        assert!(s.allows_plain_http("127.0.0.1:5000"));
        assert!(s.allows_plain_http("localhost:5000"));
        assert!(s.allows_plain_http("[::1]:5000"));
        assert!(!s.allows_plain_http("10.1.2.3:5000"));
        assert!(!s.allows_plain_http("registry.example.com"));
        s.daemon.insecure_registries = vec!["10.0.0.0/8".into(), "reg.example:5000".into()];
        assert!(s.allows_plain_http("10.1.2.3:5000"));
        assert!(s.allows_plain_http("reg.example:5000"));
        assert!(!s.allows_plain_http("reg.example"));
    }

    #[test]
    fn docker_hub_names() {
        assert_eq!(api_host("docker.io"), "registry-1.docker.io");
        assert_eq!(api_host("localhost:5000"), "localhost:5000");
        assert_eq!(auth_key("docker.io"), "https://index.docker.io/v1/");
        assert_eq!(auth_key("quay.io"), "quay.io");
        assert_eq!(host_without_port("a.b:5000"), "a.b");
        assert_eq!(host_without_port("[::1]:5000"), "::1");
    }

    #[test]
    fn reads_daemon_json() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("daemon.json"),
            r#"{"registry-mirrors":["https://m.example/"],"insecure-registries":["r:1"],"debug":true}"#,
        )
        .unwrap();
        let s = Settings::load_from(dir.path()).unwrap();
        assert_eq!(s.mirrors_for("docker.io"), vec!["https://m.example"]);
        assert!(s.mirrors_for("quay.io").is_empty());
        assert!(s.allows_plain_http("r:1"));
        std::fs::write(dir.path().join("daemon.json"), "{").unwrap();
        assert!(Settings::load_from(dir.path()).is_err());
    }
}
