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

    fn host_routes() -> Result<Vec<Ipv4Net>> {
        Rtnl::open()?.ipv4_routes()
    }

    fn choose_subnet(&self, taken: &[Ipv4Net]) -> Result<Ipv4Net> {
        let routes = Self::host_routes()?;
        candidate_subnets()
            .find(|c| !routes.iter().chain(taken).any(|r| overlaps(c, r)))
            .ok_or(NetError::NoFreeSubnet)
    }

    /// `network create`: validates, picks a free subnet if none was given, writes the record
    /// and brings the bridge up.
    pub fn create(&self, req: &CreateNetwork) -> Result<NetworkRecord> {
        if !valid_name(&req.name) {
            return Err(NetError::invalid(
                "network name",
                &req.name,
                "only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed",
            ));
        }
        if ["host", "none", DEFAULT_NETWORK].contains(&req.name.as_str()) {
            return Err(NetError::Predefined {
                network: req.name.clone(),
                action: "created".into(),
            });
        }
        let record = {
            let _lock = self.lock()?;
            let existing = self.networks()?;
            if existing.iter().any(|n| n.name == req.name) {
                return Err(NetError::NetworkExists(req.name.clone()));
            }
            let record = self.new_record(req, &existing)?;
            write_atomic(
                &self.network_path(&record.id),
                &serde_json::to_vec_pretty(&record).unwrap_or_default(),
            )?;
            record
        };
        if let Err(e) = Rtnl::open().and_then(|mut rtnl| self.bring_up(&mut rtnl, &record, true)) {
            let _ = self.remove(&record.id);
            return Err(e);
        }
        Ok(record)
    }

    fn new_record(&self, req: &CreateNetwork, existing: &[NetworkRecord]) -> Result<NetworkRecord> {
        let taken: Vec<Ipv4Net> = existing.iter().map(|n| n.subnet).collect();
        let subnet = match &req.subnet {
            Some(s) => {
                let net: Ipv4Net = s
                    .parse()
                    .map_err(|_| NetError::invalid("subnet", s, "not an IPv4 CIDR"))?;
                if net.prefix_len() > 30 {
                    return Err(NetError::invalid("subnet", s, "too small for containers"));
                }
                if let Some(other) = existing.iter().find(|n| overlaps(&n.subnet, &net)) {
                    return Err(NetError::invalid(
                        "subnet",
                        s,
                        format!(
                            "Pool overlaps with other one on this address space ({})",
                            other.name
                        ),
                    ));
                }
                net.trunc()
            }
            None => self.choose_subnet(&taken)?,
        };
        let ip_range = match &req.ip_range {
            Some(r) => {
                let range: Ipv4Net = r
                    .parse()
                    .map_err(|_| NetError::invalid("ip-range", r, "not an IPv4 CIDR"))?;
                if !subnet.contains(&range.network()) || range.prefix_len() < subnet.prefix_len() {
                    return Err(NetError::invalid(
                        "ip-range",
                        r,
                        format!("not inside subnet {subnet}"),
                    ));
                }
                Some(range.trunc())
            }
            None => None,
        };
        let gateway = match &req.gateway {
            Some(g) => {
                let gw: Ipv4Addr = g
                    .parse()
                    .map_err(|_| NetError::invalid("gateway", g, "not an IPv4 address"))?;
                if !subnet.contains(&gw) || gw == subnet.network() || gw == subnet.broadcast() {
                    return Err(NetError::invalid(
                        "gateway",
                        g,
                        format!("not a host address of {subnet}"),
                    ));
                }
                gw
            }
            None => subnet
                .hosts()
                .next()
                .ok_or_else(|| NetError::invalid("subnet", subnet.to_string(), "has no hosts"))?,
        };
        let (subnet6, gateway6) = Self::new_ipv6(req, existing)?;
        let mtu = match req.options.get(MTU_OPTION) {
            Some(m) => Some(
                m.parse::<u32>()
                    .ok()
                    .filter(|m| (68..=65535).contains(m))
                    .ok_or_else(|| {
                        NetError::invalid("mtu", m, "must be a number from 68 to 65535")
                    })?,
            ),
            None => None,
        };
        let id = random_id();
        let bridge = if req.name == DEFAULT_NETWORK {
            DEFAULT_BRIDGE.to_string()
        } else {
            format!("br-{}", &id[..12])
        };
        Ok(NetworkRecord {
            id,
            name: req.name.clone(),
            created: berth_common::time::now_rfc3339(),
            subnet,
            gateway,
            ip_range,
            internal: req.internal,
            mtu,
            labels: req.labels.clone(),
            options: req.options.clone(),
            bridge,
            subnet6,
            gateway6,
        })
    }

    /// The IPv6 half of `network create --ipv6 [--subnet V6 [--gateway V6]]`.
    fn new_ipv6(
        req: &CreateNetwork,
        existing: &[NetworkRecord],
    ) -> Result<(Option<Ipv6Net>, Option<Ipv6Addr>)> {
        if !req.ipv6 {
            if let Some(s) = req.subnet6.as_ref().or(req.gateway6.as_ref()) {
                return Err(NetError::invalid(
                    "subnet",
                    s,
                    "an IPv6 subnet or gateway needs --ipv6",
                ));
            }
            return Ok((None, None));
        }
        let subnet = match &req.subnet6 {
            Some(s) => {
                let net: Ipv6Net = s
                    .parse()
                    .map_err(|_| NetError::invalid("subnet", s, "not an IPv6 CIDR"))?;
                if net.prefix_len() > 126 {
                    return Err(NetError::invalid("subnet", s, "too small for containers"));
                }
                net.trunc()
            }
            None => random_ula(),
        };
        if let Some(other) = existing
            .iter()
            .find(|n| n.subnet6.is_some_and(|o| overlaps6(&o, &subnet)))
        {
            return Err(NetError::invalid(
                "subnet",
                subnet.to_string(),
                format!(
                    "Pool overlaps with other one on this address space ({})",
                    other.name
                ),
            ));
        }
        let gateway = match &req.gateway6 {
            Some(g) => {
                let gw: Ipv6Addr = g
                    .parse()
                    .map_err(|_| NetError::invalid("gateway", g, "not an IPv6 address"))?;
                if !subnet.contains(&gw) || gw == subnet.network() {
                    return Err(NetError::invalid(
                        "gateway",
                        g,
                        format!("not a host address of {subnet}"),
                    ));
                }
                gw
            }
            None => first_host6(&subnet),
        };
        Ok((Some(subnet), Some(gateway)))
    }

    /// The default `bridge` network, made on first use.
    pub fn ensure_default(&self) -> Result<NetworkRecord> {
        if let Ok(found) = self.find(DEFAULT_NETWORK) {
            return Ok(found);
        }
        let record = {
            let _lock = self.lock()?;
            let existing = self.networks()?;
            if let Some(found) = existing.iter().find(|n| n.is_default()) {
                return Ok(found.clone());
            }
            let mut options = BTreeMap::new();
            for (k, v) in [
                ("com.docker.network.bridge.default_bridge", "true"),
                ("com.docker.network.bridge.enable_icc", "true"),
                ("com.docker.network.bridge.enable_ip_masquerade", "true"),
                ("com.docker.network.bridge.host_binding_ipv4", "0.0.0.0"),
                ("com.docker.network.bridge.name", DEFAULT_BRIDGE),
                (MTU_OPTION, "1500"),
            ] {
                options.insert(k.to_string(), v.to_string());
            }
            let req = CreateNetwork {
                name: DEFAULT_NETWORK.into(),
                options,
                ..Default::default()
            };
            let record = self.new_record(&req, &existing)?;
            write_atomic(
                &self.network_path(&record.id),
                &serde_json::to_vec_pretty(&record).unwrap_or_default(),
            )?;
            record
        };
        Ok(record)
    }

    /// Makes sure the bridge exists, has its gateway address and is up; `sync_rules` also
    /// rewrites the firewall table (always done when the bridge had to be made). Returns the
    /// bridge's index. An existing bridge costs one lookup: nothing is re-read or re-written.
    fn bring_up(&self, rtnl: &mut Rtnl, net: &NetworkRecord, sync_rules: bool) -> Result<u32> {
        let (index, made) = match rtnl.link_index(&net.bridge)? {
            Some(index) => (index, false),
            None => {
                match rtnl.create_bridge(&net.bridge, net.mtu) {
                    Err(NetError::Netlink { source, .. })
                        if source.raw_os_error() == Some(libc::EEXIST) => {}
                    other => other?,
                }
                let index = rtnl.require_link_index(&net.bridge)?;
                rtnl.add_address(index, IpAddr::V4(net.gateway), net.subnet.prefix_len())?;
                if let (Some(subnet6), Some(gateway6)) = (net.subnet6, net.gateway6) {
                    rtnl.add_address(index, IpAddr::V6(gateway6), subnet6.prefix_len())?;
                }
                rtnl.set_up(index, None)?;
                firewall::enable_forwarding(&net.bridge, net.enable_ipv6())?;
                (index, true)
            }
        };
        if made || sync_rules {
            self.sync_firewall()?;
        }
        Ok(index)
    }

    /// Rewrites `inet berth` from the records.
    pub fn sync_firewall(&self) -> Result<()> {
        let nets = self.networks()?;
        let mut eps = Vec::new();
        for n in &nets {
            eps.extend(self.endpoints(&n.id)?);
        }
        firewall::sync(&nets, &eps)
    }

    /// `network rm`: refused while containers use it (naming them); removes bridge and rules.
    pub fn remove(&self, key: &str) -> Result<NetworkRecord> {
        let net = self.find(key)?;
        {
            let _lock = self.lock()?;
            let users = self.endpoints(&net.id)?;
            if !users.is_empty() {
                return Err(NetError::InUse {
                    network: net.name.clone(),
                    id: net.id.clone(),
                    containers: users
                        .iter()
                        .map(|e| e.container_name.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
            let path = self.network_path(&net.id);
            std::fs::remove_file(&path).map_err(|e| NetError::io(&path, e))?;
            let _ = std::fs::remove_dir(self.endpoint_dir(&net.id));
        }
        crate::dns::stop(&self.dir, &net.id);
        Rtnl::open()?.delete_link(&net.bridge)?;
        self.sync_firewall()?;
        Ok(net)
    }

    /// `network prune`: removes every user-defined network no container uses.
    pub fn prune(&self) -> Result<Vec<String>> {
        let mut removed = Vec::new();
        for net in self.networks()? {
            if net.is_default() || !self.endpoints(&net.id)?.is_empty() {
                continue;
            }
            match self.remove(&net.id) {
                Ok(n) => removed.push(n.name),
                Err(NetError::InUse { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(removed)
    }

    /// Creates container `id`'s network namespace, pinned under the root, before it starts.
    pub fn create_sandbox(&self, container_id: &str) -> Result<PathBuf> {
        let path = self.netns_path(container_id);
        netns::create(&path)?;
        Ok(path)
    }

    /// Connects the container whose namespace is pinned at `netns_path` to a network: reserves an
    /// address, makes the veth pair (container end created directly inside the namespace),
    /// configures address, MTU, `lo`, default route, and the published ports.
    pub fn attach(&self, netns_path: &Path, req: &AttachRequest) -> Result<EndpointRecord> {
        let net = self.find(&req.network)?;
        let record = self.reserve(&net, req)?;
        let marker = self.setup_marker(&net.id, &req.container_id);
        if let Err(e) = self.plumb(&net, netns_path, &record) {
            let _ = Rtnl::open().and_then(|mut r| r.delete_link(&record.host_veth));
            let path = self.endpoint_path(&net.id, &req.container_id);
            let _ = std::fs::remove_file(path);
            let _ = std::fs::remove_file(&marker);
            return Err(e);
        }
        std::fs::remove_file(&marker).map_err(|e| NetError::io(&marker, e))?;
        let mut record = record;
        record.complete = true;
        if !record.ports.is_empty() {
            self.sync_firewall()?;
        }
        if net.has_dns() {
            crate::dns::ensure_running(&self.dir, &net)?;
        }
        Ok(record)
    }

    /// Takes an address (and host ports) under the lock and writes the record with its setup
    /// marker (incomplete until [`NetStore::attach`] removes the marker).
    fn reserve(&self, net: &NetworkRecord, req: &AttachRequest) -> Result<EndpointRecord> {
        for alias in &req.aliases {
            if !valid_name(alias) {
                return Err(NetError::invalid(
                    "network alias",
                    alias,
                    "only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed",
                ));
            }
        }
        let _lock = self.lock()?;
        let path = self.endpoint_path(&net.id, &req.container_id);
        if path.exists() {
            return Err(NetError::AlreadyConnected {
                container: req.container_name.clone(),
                network: net.name.clone(),
            });
        }
        let all = self.all_endpoints()?;
        let used: BTreeSet<Ipv4Addr> = all
            .iter()
            .filter(|e| e.network_id == net.id)
            .map(|e| e.ip)
            .collect();
        let ip = match req.ip {
            Some(ip) => {
                if net.is_default() {
                    return Err(NetError::invalid(
                        "ip",
                        ip.to_string(),
                        "user specified IP address is supported on user defined networks only",
                    ));
                }
                if !net.subnet.contains(&ip)
                    || ip == net.subnet.network()
                    || ip == net.subnet.broadcast()
                {
                    return Err(NetError::invalid(
                        "ip",
                        ip.to_string(),
                        format!("not a host address of {}", net.subnet),
                    ));
                }
                if ip == net.gateway || used.contains(&ip) {
                    return Err(NetError::AddressInUse {
                        ip: ip.to_string(),
                        network: net.name.clone(),
                    });
                }
                ip
            }
            None => net
                .ip_range
                .unwrap_or(net.subnet)
                .hosts()
                .find(|h| {
                    *h != net.gateway
                        && *h != net.subnet.network()
                        && *h != net.subnet.broadcast()
                        && !used.contains(h)
                })
                .ok_or_else(|| NetError::PoolExhausted(net.name.clone()))?,
        };
        let ip6 = match (net.subnet6, net.gateway6) {
            (Some(subnet6), Some(gateway6)) => {
                let used6: BTreeSet<Ipv6Addr> = all
                    .iter()
                    .filter(|e| e.network_id == net.id)
                    .filter_map(|e| e.ip6)
                    .collect();
                Some(match req.ip6 {
                    Some(ip6) => {
                        if net.is_default() {
                            return Err(NetError::invalid(
                                "ip6",
                                ip6.to_string(),
                                "user specified IP address is supported on user defined networks only",
                            ));
                        }
                        // The subnet's first address is the subnet-router anycast address.
                        if !subnet6.contains(&ip6) || ip6 == subnet6.network() {
                            return Err(NetError::invalid(
                                "ip6",
                                ip6.to_string(),
                                format!("not a host address of {subnet6}"),
                            ));
                        }
                        if ip6 == gateway6 || used6.contains(&ip6) {
                            return Err(NetError::AddressInUse {
                                ip: ip6.to_string(),
                                network: net.name.clone(),
                            });
                        }
                        ip6
                    }
                    None => hosts6(&subnet6)
                        .find(|h| *h != gateway6 && !used6.contains(h))
                        .ok_or_else(|| NetError::PoolExhausted(net.name.clone()))?,
                })
            }
            _ => {
                if let Some(ip6) = req.ip6 {
                    return Err(NetError::invalid(
                        "ip6",
                        ip6.to_string(),
                        format!(
                            "network {} has no IPv6 subnet (create it with --ipv6)",
                            net.name
                        ),
                    ));
                }
                None
            }
        };
        let ports = Self::allocate_ports(&all, &req.ports)?;
        let taken_ifs = all
            .iter()
            .filter(|e| e.container_id == req.container_id)
            .count();
        let record = EndpointRecord {
            container_id: req.container_id.clone(),
            container_name: req.container_name.clone(),
            network_id: net.id.clone(),
            network_name: net.name.clone(),
            endpoint_id: random_id(),
            ip,
            prefix_len: net.subnet.prefix_len(),
            gateway: (!net.internal).then_some(net.gateway),
            mac: format_mac(req.mac.unwrap_or_else(|| mac_for(ip))),
            host_veth: host_veth_name(&req.container_id, &net.id),
            ifname: format!("eth{taken_ifs}"),
            aliases: req.aliases.clone(),
            ports,
            complete: true,
            ip6,
            prefix_len6: net.subnet6.map_or(0, |s| s.prefix_len()),
            gateway6: net.gateway6.filter(|_| !net.internal && ip6.is_some()),
        };
        let marker = self.setup_marker(&net.id, &req.container_id);
        let dir = self.endpoint_dir(&net.id);
        std::fs::create_dir_all(&dir).map_err(|e| NetError::io(&dir, e))?;
        File::create(&marker).map_err(|e| NetError::io(&marker, e))?;
        write_atomic(
            &path,
            &serde_json::to_vec_pretty(&record).unwrap_or_default(),
        )?;
        Ok(EndpointRecord {
            complete: false,
            ..record
        })
    }

    fn allocate_ports(all: &[EndpointRecord], wanted: &[PortBinding]) -> Result<Vec<PortBinding>> {
        let mut taken: BTreeSet<(u16, ports::Protocol)> = all
            .iter()
            .flat_map(|e| e.ports.iter().map(|b| (b.host_port, b.protocol)))
            .collect();
        let mut out = Vec::new();
        for b in wanted {
            let mut b = b.clone();
            if b.host_port == 0 {
                let (lo, hi) = ports::ephemeral_range();
                let mut rng = rand::rng();
                let start = rng.random_range(lo..=hi);
                let span = u32::from(hi - lo) + 1;
                let found = (0..span)
                    .map(|i| lo + ((u32::from(start - lo) + i) % span) as u16)
                    .find(|p| {
                        !taken.contains(&(*p, b.protocol))
                            && ports::host_port_free(b.host_ip, *p, b.protocol)
                    });
                b.host_port = found.ok_or_else(|| NetError::Port {
                    port: b.container_port.to_string(),
                    reason: "no free host port in the ephemeral range".into(),
                })?;
            } else if taken.contains(&(b.host_port, b.protocol)) {
                return Err(NetError::Port {
                    port: b.host_port.to_string(),
                    reason: format!(
                        "Bind for {}:{} failed: port is already allocated",
                        b.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED),
                        b.host_port
                    ),
                });
            }
            taken.insert((b.host_port, b.protocol));
            out.push(b);
        }
        Ok(out)
    }

    /// Two rtnetlink round trips on the host (bridge lookup; veth pair with its host end up and
    /// on the bridge, its peer made inside the namespace) and two inside (loopback up with the
    /// lookup of the new interface; address, link up and default route). (A peer created up
    /// fails with ENOTCONN here, so the container end is set up inside.)
    fn plumb(&self, net: &NetworkRecord, netns_path: &Path, ep: &EndpointRecord) -> Result<()> {
        let mut host = Rtnl::open()?;
        let bridge = self.bring_up(&mut host, net, false)?;
        let ns = File::open(netns_path).map_err(|e| NetError::Netns {
            path: netns_path.to_path_buf(),
            source: e,
        })?;
        let mac = crate::model::parse_mac(&ep.mac);
        // The same endpoint's previous veth (this container's, named after it) may still be
        // on its way out: the kernel deletes a veth whose namespace died asynchronously, so a
        // quick restart can find its name taken. It is ours: delete it and create again.
        let mut tries = 0;
        loop {
            match host.create_veth(
                &ep.host_veth,
                &ep.ifname,
                ns.as_raw_fd(),
                net.mtu,
                mac,
                Some(bridge),
            ) {
                Err(NetError::Netlink { source, .. })
                    if source.raw_os_error() == Some(libc::EEXIST) && tries < 5 =>
                {
                    tries += 1;
                    host.delete_link(&ep.host_veth)?;
                    std::thread::sleep(std::time::Duration::from_millis(5 * tries));
                }
                other => break other?,
            }
        }

        let _inside = netns::enter(netns_path)?;
        let mut ctr = Rtnl::open()?;
        let mut first = ctr.pipeline(vec![
            netlink::set_up_request(netlink::LOOPBACK_INDEX, None),
            netlink::get_link_request(&ep.ifname),
        ]);
        let eth = first.pop().unwrap_or_else(|| Ok(Vec::new()))?;
        first.pop().unwrap_or_else(|| Ok(Vec::new()))?;
        let eth = netlink::link_index_of(&eth).ok_or_else(|| NetError::Netlink {
            op: "find",
            object: ep.ifname.clone(),
            source: std::io::Error::from_raw_os_error(libc::ENODEV),
        })?;
        let mut requests = vec![
            netlink::address_request(eth, IpAddr::V4(ep.ip), ep.prefix_len),
            netlink::set_up_request(eth, None),
        ];
        if let Some(ip6) = ep.ip6 {
            requests.push(netlink::address_request(
                eth,
                IpAddr::V6(ip6),
                ep.prefix_len6,
            ));
        }
        if let Some(gw) = ep.gateway {
            requests.push(netlink::default_route_request(IpAddr::V4(gw)));
        }
        if let Some(gw6) = ep.gateway6 {
            requests.push(netlink::default_route_request(IpAddr::V6(gw6)));
        }
        for result in ctr.pipeline(requests) {
            netlink::tolerate_exists(result)?;
        }
        Ok(())
    }

    /// `network disconnect`: removes one endpoint (its veth and rules with it).
    pub fn detach(&self, container_id: &str, network: &str) -> Result<()> {
        let net = self.find(network)?;
        let path = self.endpoint_path(&net.id, container_id);
        let record: EndpointRecord = match read_json(&path) {
            Ok(r) => r,
            Err(NetError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                return Err(NetError::NotConnected {
                    container: container_id.to_string(),
                    network: net.name,
                })
            }
            Err(e) => return Err(e),
        };
        self.drop_endpoint(&record, true, true).map(|_| ())
    }

    /// Forgets one endpoint: its veth (when `delete_link`), its lease, and (when `sync_rules`
    /// and it published ports) its rules. Returns whether this call removed the lease (a
    /// concurrent release may have been first) and whether the endpoint had published ports.
    fn drop_endpoint(
        &self,
        record: &EndpointRecord,
        delete_link: bool,
        sync_rules: bool,
    ) -> Result<(bool, bool)> {
        if delete_link {
            Rtnl::open()?.delete_link(&record.host_veth)?;
        }
        let path = self.endpoint_path(&record.network_id, &record.container_id);
        let removed = {
            let _lock = self.lock()?;
            let marker = self.setup_marker(&record.network_id, &record.container_id);
            let mut removed = false;
            for p in [&path, &marker] {
                match std::fs::remove_file(p) {
                    Ok(()) => removed |= p == &path,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(NetError::io(p, e)),
                }
            }
            removed
        };
        let had_ports = !record.ports.is_empty();
        if had_ports && sync_rules {
            self.sync_firewall()?;
        }
        Ok((removed, had_ports))
    }

    /// Frees everything container `id` holds, once its processes are gone: endpoints
    /// (addresses, veths, rules) and its pinned namespace. Safe to call twice and after a crash
    /// at any point.
    ///
    /// The veths are not deleted one by one: unpinning a namespace nothing else holds makes the
    /// kernel destroy it with every interface inside, veth peers included, in its own cleanup
    /// work. An explicit `RTM_DELLINK` waits for an RCU grace period in the caller (about 25 ms
    /// measured on `run --rm`'s path), so it is kept for namespaces that are not pinned here.
    ///
    /// Returns the endpoints this call released (not those a concurrent release took first), so
    /// each disconnection is reported once.
    pub fn release_container(&self, container_id: &str) -> Result<Vec<EndpointRecord>> {
        let netns_path = self.netns_path(container_id);
        let pinned = netns_path.exists();
        let mut first_err = None;
        let mut had_ports = false;
        let mut released = Vec::new();
        for ep in self.container_endpoints(container_id)? {
            match self.drop_endpoint(&ep, !pinned, false) {
                Ok((removed, ports)) => {
                    had_ports |= ports;
                    if removed {
                        released.push(ep);
                    }
                }
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        if let Err(e) = netns::remove(&netns_path) {
            first_err.get_or_insert(e);
        }
        if had_ports {
            if let Err(e) = self.sync_firewall() {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(released), Err)
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
