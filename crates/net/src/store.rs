//! The network state under the Berth root (`<root>/network/`): network records, endpoint records
//! (which are also the address allocation) and pinned namespaces. Metadata changes happen under
//! one flock on `network/lock` and every file is written whole and renamed into place, so two
//! concurrent `run`s never get one address and a crash leaves either no record or a record still
//! marked incomplete, which the next [`NetStore::collect_garbage`] rolls back.
//!
//! An endpoint record is written once: while its interfaces are being made, an empty
//! `<container>.setup` marker beside it says it is incomplete, and removing the marker completes
//! it. (Rewriting the record instead, rename over the old file, makes ext4 start writing the new
//! data back at once, and the unlink at `rm` then waits for that disk write: about 1 ms of `run
//! --rm`.)
use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use ipnet::{Ipv4Net, Ipv6Net};
use rand::Rng;
use sha2::{Digest, Sha256};

use crate::error::{NetError, Result};
use crate::firewall;
use crate::model::{
    format_mac, mac_for, EndpointRecord, NetworkRecord, DEFAULT_BRIDGE, DEFAULT_NETWORK, MTU_OPTION,
};
use crate::netlink::{self, Rtnl};
use crate::netns;
use crate::ports::{self, PortBinding};

mod endpoints;
mod networks;

/// What `network create` asks for.
#[derive(Debug, Clone, Default)]
pub struct CreateNetwork {
    pub name: String,
    pub subnet: Option<String>,
    pub gateway: Option<String>,
    pub ip_range: Option<String>,
    pub internal: bool,
    pub options: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    /// `--ipv6`: dual stack, with `subnet6` (or a random ULA /64) and `gateway6`.
    pub ipv6: bool,
    pub subnet6: Option<String>,
    pub gateway6: Option<String>,
}

/// What attaching one container to one network asks for.
#[derive(Debug, Clone, Default)]
pub struct AttachRequest {
    pub container_id: String,
    pub container_name: String,
    pub network: String,
    pub ip: Option<Ipv4Addr>,
    /// `--ip6`: a fixed IPv6 address, on a user-defined network with IPv6.
    pub ip6: Option<Ipv6Addr>,
    pub mac: Option<[u8; 6]>,
    pub aliases: Vec<String>,
    pub ports: Vec<PortBinding>,
}

/// Docker's default address pools, in the order Docker tries them.
fn candidate_subnets() -> impl Iterator<Item = Ipv4Net> {
    let wide = (17u8..=31).filter_map(|b| Ipv4Net::new(Ipv4Addr::new(172, b, 0, 0), 16).ok());
    let narrow =
        (0u8..16).filter_map(|i| Ipv4Net::new(Ipv4Addr::new(192, 168, i * 16, 0), 20).ok());
    wide.chain(narrow)
}

fn overlaps(a: &Ipv4Net, b: &Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

fn overlaps6(a: &Ipv6Net, b: &Ipv6Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// A random unique local /64 (RFC 4193: fd00::/8 and 40 random bits), as Podman picks one.
fn random_ula() -> Ipv6Net {
    let global: [u8; 5] = rand::rng().random();
    let mut octets = [0u8; 16];
    octets[0] = 0xfd;
    octets[1..6].copy_from_slice(&global);
    Ipv6Net::new(Ipv6Addr::from(octets), 64).unwrap_or_default()
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| NetError::io(dir, e))?;
    berth_common::fs::write_atomic(path, bytes).map_err(|e| NetError::io(path, e))
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let bytes = std::fs::read(path).map_err(|e| NetError::io(path, e))?;
    serde_json::from_slice(&bytes).map_err(|source| NetError::Json {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads every record in `paths`, skipping files removed since they were listed (a concurrent
/// `rm` or `network rm` between readdir and read is normal, not an error).
fn read_all<T: serde::de::DeserializeOwned>(paths: &[PathBuf]) -> Result<Vec<T>> {
    let mut out = Vec::with_capacity(paths.len());
    for p in paths {
        match read_json(p) {
            Ok(v) => out.push(v),
            Err(NetError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

fn json_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(NetError::io(dir, e)),
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|x| x == "json")
                && !p
                    .file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with('.'))
        })
        .collect();
    files.sort();
    Ok(files)
}

fn random_id() -> String {
    let bytes: [u8; 32] = rand::rng().random();
    hex::encode(bytes)
}

/// The host end of a container's veth: stable for (container, network), so cleanup finds it even
/// without a record.
pub fn host_veth_name(container_id: &str, network_id: &str) -> String {
    let digest = Sha256::digest(format!("{container_id}/{network_id}"));
    format!("veth{}", &hex::encode(digest)[..7])
}

/// Host addresses of an IPv6 subnet in order, from `::1` (no broadcast in IPv6; the subnet
/// router anycast address `::` is left out).
fn hosts6(subnet: &Ipv6Net) -> impl Iterator<Item = Ipv6Addr> {
    let base = u128::from(subnet.network());
    let size = if subnet.prefix_len() == 0 {
        u128::MAX
    } else {
        (1u128 << (128 - u32::from(subnet.prefix_len()))) - 1
    };
    (1..=size.min(1 << 20)).map(move |i| Ipv6Addr::from(base + i))
}

fn first_host6(subnet: &Ipv6Net) -> Ipv6Addr {
    Ipv6Addr::from(u128::from(subnet.network()) + 1)
}

/// Validates a network or alias name as Docker does.
fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

pub struct NetStore {
    dir: PathBuf,
}

/// Held while metadata changes; released on drop.
struct Locked(File);

impl Drop for Locked {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

impl NetStore {
    /// The network state of the Berth root `root`.
    pub fn new(root: &Path) -> NetStore {
        NetStore {
            dir: root.join("network"),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn lock(&self) -> Result<Locked> {
        std::fs::create_dir_all(&self.dir).map_err(|e| NetError::io(&self.dir, e))?;
        let path = self.dir.join("lock");
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| NetError::io(&path, e))?;
        file.lock().map_err(|e| NetError::io(&path, e))?;
        Ok(Locked(file))
    }

    fn network_path(&self, id: &str) -> PathBuf {
        self.dir.join("networks").join(format!("{id}.json"))
    }

    fn endpoint_dir(&self, network_id: &str) -> PathBuf {
        self.dir.join("endpoints").join(network_id)
    }

    fn endpoint_path(&self, network_id: &str, container_id: &str) -> PathBuf {
        self.endpoint_dir(network_id)
            .join(format!("{container_id}.json"))
    }

    /// Where container `id`'s namespace is pinned.
    pub fn netns_path(&self, container_id: &str) -> PathBuf {
        netns::path_for(&self.dir, container_id)
    }

    /// Every network, the default one first, then by name.
    pub fn networks(&self) -> Result<Vec<NetworkRecord>> {
        let mut nets: Vec<NetworkRecord> = read_all(&json_files(&self.dir.join("networks"))?)?;
        nets.sort_by(|a, b| (!a.is_default(), &a.name).cmp(&(!b.is_default(), &b.name)));
        Ok(nets)
    }

    /// A network by full name, full id or unique id prefix (Docker's lookup order).
    pub fn find(&self, key: &str) -> Result<NetworkRecord> {
        let nets = self.networks()?;
        if let Some(n) = nets.iter().find(|n| n.name == key || n.id == key) {
            return Ok(n.clone());
        }
        let mut prefixed = nets
            .iter()
            .filter(|n| !key.is_empty() && n.id.starts_with(key));
        match (prefixed.next(), prefixed.next()) {
            (Some(n), None) => Ok(n.clone()),
            _ => Err(NetError::NetworkNotFound(key.to_string())),
        }
    }

    fn setup_marker(&self, network_id: &str, container_id: &str) -> PathBuf {
        self.endpoint_dir(network_id)
            .join(format!("{container_id}.setup"))
    }

    pub fn endpoints(&self, network_id: &str) -> Result<Vec<EndpointRecord>> {
        let mut eps: Vec<EndpointRecord> = read_all(&json_files(&self.endpoint_dir(network_id))?)?;
        for ep in &mut eps {
            if ep.complete && self.setup_marker(network_id, &ep.container_id).exists() {
                ep.complete = false;
            }
        }
        Ok(eps)
    }

    fn all_endpoints(&self) -> Result<Vec<EndpointRecord>> {
        let mut all = Vec::new();
        for net in self.networks()? {
            all.extend(self.endpoints(&net.id)?);
        }
        Ok(all)
    }

    /// The endpoints of one container, in the order they were attached (eth0 first).
    pub fn container_endpoints(&self, container_id: &str) -> Result<Vec<EndpointRecord>> {
        let mut eps: Vec<EndpointRecord> = self
            .all_endpoints()?
            .into_iter()
            .filter(|e| e.container_id == container_id)
            .collect();
        eps.sort_by_key(|e| {
            e.ifname
                .trim_start_matches("eth")
                .parse::<u32>()
                .unwrap_or(0)
        });
        Ok(eps)
    }

    /// Rolls back what crashed commands left: endpoints and namespaces of containers that no
    /// longer exist (`exists` answers for a container id), and incomplete endpoints whose setup
    /// died (their container is not running yet, so `exists` alone cannot tell).
    pub fn collect_garbage(&self, exists: &dyn Fn(&str) -> bool) -> Result<Vec<String>> {
        let mut released = BTreeSet::new();
        for ep in self.all_endpoints()? {
            if !exists(&ep.container_id) {
                released.insert(ep.container_id.clone());
            }
        }
        if let Ok(entries) = std::fs::read_dir(self.dir.join("netns")) {
            for entry in entries.flatten() {
                if let Some(id) = entry.file_name().to_str() {
                    if !exists(id) {
                        released.insert(id.to_string());
                    }
                }
            }
        }
        for id in &released {
            self.release_container(id)?;
        }
        self.remove_unfinished_writes()?;
        Ok(released.into_iter().collect())
    }

    /// Removes what an endpoint write killed under the lock leaves: a `<container>.setup`
    /// marker with no record beside it (killed between the marker and the record's rename) and
    /// the half-written temporary files of atomic writes. Writers hold the lock, so while this
    /// holds it nothing there is in progress.
    fn remove_unfinished_writes(&self) -> Result<()> {
        let _lock = self.lock()?;
        for net in self.networks()? {
            let dir = self.endpoint_dir(&net.id);
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name();
                let Some(name) = name.to_str() else { continue };
                let stale = if let Some(container) = name.strip_suffix(".setup") {
                    !dir.join(format!("{container}.json")).exists()
                } else {
                    name.starts_with('.') && name.contains(".tmp-")
                };
                if stale {
                    match std::fs::remove_file(entry.path()) {
                        Ok(()) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => return Err(NetError::io(entry.path(), e)),
                    }
                }
            }
        }
        Ok(())
    }

    /// `network inspect` JSON of one network.
    pub fn inspect(&self, key: &str) -> Result<serde_json::Value> {
        let net = self.find(key)?;
        let eps = self.endpoints(&net.id)?;
        Ok(crate::model::inspect_json(&net, &eps))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidate_pools_are_dockers() {
        let all: Vec<_> = candidate_subnets().collect();
        assert_eq!(all[0].to_string(), "172.17.0.0/16");
        assert_eq!(all[15].to_string(), "192.168.0.0/20");
        assert!(overlaps(
            &"10.0.0.0/8".parse().unwrap(),
            &"10.1.0.0/16".parse().unwrap()
        ));
        assert!(!overlaps(
            &"10.0.0.0/16".parse().unwrap(),
            &"10.1.0.0/16".parse().unwrap()
        ));
    }

    #[test]
    fn veth_names_fit_ifnamsiz_and_are_stable() {
        let a = host_veth_name("c1", "n1");
        assert_eq!(a, host_veth_name("c1", "n1"));
        assert!(a.len() <= 15);
        assert_ne!(a, host_veth_name("c2", "n1"));
    }

    #[test]
    fn names_follow_docker_rules() {
        assert!(valid_name("web-1.a_b"));
        assert!(!valid_name("-x"));
        assert!(!valid_name(""));
        assert!(!valid_name("a b"));
    }
}
