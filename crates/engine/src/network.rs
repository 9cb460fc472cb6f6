//! The engine's door to `berth-net`: turns a container's `--network` mode and flags into a pinned
//! network namespace with its endpoints before the container starts, writes `/etc/hosts` and
//! `/etc/resolv.conf` as Docker does, frees everything on removal (also when the monitor was
//! killed), rolls back what crashed commands left, and gives inspect/ps/port their views.
//!
//! Modes: `bridge` (the default network), a user network's name or id, `none` (a fresh namespace
//! with only `lo`), `host` (the host's namespace), `container:<ref>` (another container's).
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use berth_net::files::DnsSettings;
use berth_net::{AttachRequest, EndpointRecord, NetStore, PortBinding};

use crate::error::{EngineError, Result};
use crate::options::{ContainerConfig, HostConfig, NetworkingOptions};

mod objects;
mod ports;
mod views;
use objects::network_event;
pub use objects::{create, prune, remove};
pub use ports::{port_bindings, publish_to_port_bindings};
pub use views::{endpoints, netns_path, published, record_root};

impl From<berth_net::NetError> for EngineError {
    fn from(e: berth_net::NetError) -> EngineError {
        use berth_net::NetError as N;
        match e {
            N::NetworkNotFound(n) => EngineError::Command {
                message: format!("network {n} not found"),
                exit_code: 125,
            },
            N::Invalid { .. } | N::Port { .. } | N::Predefined { .. } => EngineError::Command {
                message: e.to_string(),
                exit_code: 125,
            },
            other => EngineError::Network(other),
        }
    }
}

/// The network store of an engine root.
pub fn store(root: &Path) -> NetStore {
    NetStore::new(root)
}

/// The mode a container gets when it asks for none: the default `bridge` network, unless the
/// environment's `BERTH_DEFAULT_NETWORK` names another (the test suites set `none` there, so no
/// test touches the machine's own network by accident).
pub fn default_mode() -> String {
    std::env::var("BERTH_DEFAULT_NETWORK")
        .ok()
        .filter(|m| !m.is_empty() && m != "default")
        .unwrap_or_else(|| berth_net::DEFAULT_NETWORK.into())
}

/// What kind of networking a `NetworkMode` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    Host,
    None,
    Container(String),
    /// The default `bridge` network or a user-defined one (by name or id).
    Network(String),
}

pub fn mode(network_mode: &str) -> Mode {
    match network_mode {
        "host" => Mode::Host,
        "none" => Mode::None,
        "" | "default" | "bridge" => Mode::Network(berth_net::DEFAULT_NETWORK.into()),
        other => match other.strip_prefix("container:") {
            Some(c) => Mode::Container(c.to_string()),
            None => Mode::Network(other.to_string()),
        },
    }
}

/// What [`prepare`] made: the namespace to join and the files to bind into the container.
pub struct Prepared {
    pub netns: Option<PathBuf>,
    pub hosts: String,
    pub resolv_conf: String,
}

fn parse_extra_hosts(
    host: &HostConfig,
    gateway: Option<Ipv4Addr>,
) -> Result<Vec<(String, String)>> {
    host.extra_hosts
        .iter()
        .map(|h| {
            let (name, ip) = h
                .split_once(':')
                .or_else(|| h.split_once('='))
                .ok_or_else(|| EngineError::InvalidFlag {
                    flag: "--add-host".into(),
                    value: h.clone(),
                    reason: "expected host:ip".into(),
                })?;
            let ip = if ip == "host-gateway" {
                gateway
                    .map(|g| g.to_string())
                    .ok_or_else(|| EngineError::InvalidFlag {
                        flag: "--add-host".into(),
                        value: h.clone(),
                        reason: "host-gateway needs a bridge network".into(),
                    })?
            } else {
                ip.trim_matches(|c| c == '[' || c == ']')
                    .parse::<std::net::IpAddr>()
                    .map_err(|_| EngineError::InvalidFlag {
                        flag: "--add-host".into(),
                        value: h.clone(),
                        reason: "invalid IP address".into(),
                    })?
                    .to_string()
            };
            Ok((name.to_string(), ip))
        })
        .collect()
}

/// Validates a `NetworkMode` before anything is made (unknown networks are refused here).
pub fn check_mode(root: &Path, network_mode: &str, extra: &[String]) -> Result<()> {
    if let Mode::Network(name) = mode(network_mode) {
        if name != berth_net::DEFAULT_NETWORK {
            store(root).find(&name)?;
        }
    }
    for n in extra {
        match mode(n) {
            Mode::Network(name) if name != berth_net::DEFAULT_NETWORK => {
                store(root).find(&name)?;
            }
            Mode::Network(_) => {}
            _ => {
                return Err(EngineError::InvalidFlag {
                    flag: "--network".into(),
                    value: n.clone(),
                    reason: "host, none and container: cannot be combined with other networks"
                        .into(),
                })
            }
        }
    }
    Ok(())
}

/// One network a container asked to be on (`containers/<id>/networks.json` keeps the list, so a
/// stopped container gets the same networks back when it starts again).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct RequestedNetwork {
    pub network: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip6: Option<String>,
    #[serde(default)]
    pub mac: Option<String>,
}

fn requested_path(root: &Path, id: &str) -> PathBuf {
    root.join("containers").join(id).join("networks.json")
}

fn load_requested(root: &Path, id: &str) -> Vec<RequestedNetwork> {
    std::fs::read(requested_path(root, id))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

fn save_requested(root: &Path, id: &str, list: &[RequestedNetwork]) -> Result<()> {
    let bytes = serde_json::to_vec(list)
        .map_err(|e| EngineError::encode(format!("the networks of container {id}"), e))?;
    crate::record::write_atomic(&requested_path(root, id), &bytes)
}

/// Makes the container's network before it starts (at create): records which networks it asked
/// for, then brings them up. `container:` and `host` modes make nothing.
pub fn prepare(
    root: &Path,
    id: &str,
    name: &str,
    hostname: &str,
    host: &HostConfig,
    config: &ContainerConfig,
    net_opts: &NetworkingOptions,
) -> Result<Prepared> {
    let requested: Vec<RequestedNetwork> = match mode(&host.network_mode) {
        Mode::Network(first) => std::iter::once(RequestedNetwork {
            network: first,
            aliases: net_opts.aliases.clone(),
            ip: net_opts.ip.clone(),
            ip6: net_opts.ip6.clone(),
            mac: net_opts.mac_address.clone(),
        })
        .chain(net_opts.extra_networks.iter().map(|n| RequestedNetwork {
            network: n.clone(),
            ..Default::default()
        }))
        .collect(),
        _ => Vec::new(),
    };
    save_requested(root, id, &requested)?;
    bring_up(root, id, name, hostname, host, config, &requested)
}

/// Before a start: a container whose network was freed when it stopped gets it back (same
/// networks, aliases and published ports; addresses may differ, as in Docker), and its
/// `/etc/hosts` and `/etc/resolv.conf` are rewritten to match.
/// Whether the container's networks are in place (or it needs none of its own).
pub fn is_ready(root: &Path, id: &str) -> bool {
    let dir = root.join("containers").join(id);
    let host: HostConfig = std::fs::read(dir.join("hostconfig.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    matches!(mode(&host.network_mode), Mode::Host | Mode::Container(_))
        || store(root).netns_path(id).exists()
}

pub fn ensure_ready(root: &Path, id: &str) -> Result<()> {
    let dir = root.join("containers").join(id);
    let host: HostConfig = std::fs::read(dir.join("hostconfig.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    if matches!(mode(&host.network_mode), Mode::Host | Mode::Container(_))
        || store(root).netns_path(id).exists()
    {
        return Ok(());
    }
    let record: crate::record::ContainerRecord = std::fs::read(dir.join("config.v2.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| EngineError::NoSuchContainer(id.to_string()))?;
    let requested = load_requested(root, id);
    let prepared = bring_up(
        root,
        id,
        record.short_name(),
        &record.config.hostname,
        &host,
        &record.config,
        &requested,
    )?;
    for (file, text) in [
        ("hosts", &prepared.hosts),
        ("resolv.conf", &prepared.resolv_conf),
    ] {
        let p = dir.join(file);
        std::fs::write(&p, text).map_err(|e| EngineError::io(&p, e))?;
    }
    Ok(())
}

fn bring_up(
    root: &Path,
    id: &str,
    name: &str,
    hostname: &str,
    host: &HostConfig,
    config: &ContainerConfig,
    requested: &[RequestedNetwork],
) -> Result<Prepared> {
    let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let dns = DnsSettings {
        servers: host.dns.clone(),
        search: host.dns_search.clone(),
        options: host.dns_options.clone(),
    };
    match mode(&host.network_mode) {
        Mode::Host => {
            let extra = parse_extra_hosts(host, None)?;
            let mut hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
            for (n, ip) in extra {
                hosts.push_str(&format!("{ip}\t{n}\n"));
            }
            let resolv =
                if dns.servers.is_empty() && dns.search.is_empty() && dns.options.is_empty() {
                    host_resolv
                } else {
                    berth_net::files::resolv_conf(&host_resolv, None, &dns)
                };
            return Ok(Prepared {
                netns: None,
                hosts,
                resolv_conf: resolv,
            });
        }
        Mode::Container(_) => {
            // The namespace is the other container's; the files are written as for none.
            let extra = parse_extra_hosts(host, None)?;
            return Ok(Prepared {
                netns: None,
                hosts: berth_net::files::hosts(hostname, &[], &extra),
                resolv_conf: berth_net::files::resolv_conf(&host_resolv, None, &dns),
            });
        }
        Mode::None | Mode::Network(_) => {}
    }
    let net_store = store(root);
    let ports = port_bindings(host, config)?;
    collect_garbage(root);
    mark_owner(root, id)?;
    let netns = net_store.create_sandbox(id)?;
    let mut endpoints: Vec<EndpointRecord> = Vec::new();
    let attached = (|| -> Result<()> {
        if requested.is_empty() {
            // `--network none`: only loopback, up. (Docker accepts -p here and publishes nothing.)
            let _inside = berth_net::netns::enter(&netns)?;
            let mut rtnl = berth_net::netlink::Rtnl::open()?;
            rtnl.set_up(berth_net::netlink::LOOPBACK_INDEX, None)?;
            return Ok(());
        }
        for (i, req) in requested.iter().enumerate() {
            if req.network == berth_net::DEFAULT_NETWORK {
                net_store.ensure_default()?;
            }
            let ip = match &req.ip {
                Some(ip) => Some(
                    ip.parse::<Ipv4Addr>()
                        .map_err(|_| EngineError::InvalidFlag {
                            flag: "--ip".into(),
                            value: ip.clone(),
                            reason: "not an IPv4 address".into(),
                        })?,
                ),
                None => None,
            };
            let ip6 = req.ip6.as_deref().map(parse_ip6).transpose()?;
            let mac = match &req.mac {
                Some(m) => Some(berth_net::model::parse_mac(m).ok_or_else(|| {
                    EngineError::InvalidFlag {
                        flag: "--mac-address".into(),
                        value: m.clone(),
                        reason: "not a unicast MAC address".into(),
                    }
                })?),
                None => None,
            };
            let ep = net_store.attach(
                &netns,
                &AttachRequest {
                    container_id: id.into(),
                    container_name: name.into(),
                    network: req.network.clone(),
                    ip,
                    ip6,
                    mac,
                    aliases: req.aliases.clone(),
                    ports: if i == 0 { ports.clone() } else { Vec::new() },
                },
            )?;
            endpoints.push(ep);
        }
        Ok(())
    })();
    if let Err(e) = attached {
        let _ = net_store.release_container(id);
        return Err(e);
    }
    for ep in &endpoints {
        network_event(root, "connect", &ep.network_id, &ep.network_name, Some(id));
    }
    let own_ips: Vec<std::net::IpAddr> = endpoints
        .first()
        .map(|e| {
            std::iter::once(std::net::IpAddr::V4(e.ip))
                .chain(e.ip6.map(std::net::IpAddr::V6))
                .collect()
        })
        .unwrap_or_default();
    let gateway = endpoints.iter().find_map(|e| e.gateway);
    let extra = parse_extra_hosts(host, gateway)?;
    let embedded = endpoints.iter().find_map(|e| {
        net_store
            .find(&e.network_id)
            .ok()
            .filter(|n| n.has_dns())
            .map(|n| n.gateway)
    });
    let mut dns = dns;
    if embedded.is_some() && dns.options.is_empty() {
        dns.options = vec!["ndots:0".into()];
    }
    Ok(Prepared {
        netns: Some(netns),
        hosts: berth_net::files::hosts(hostname, &own_ips, &extra),
        resolv_conf: berth_net::files::resolv_conf(&host_resolv, embedded, &dns),
    })
}

/// `containers/<id>/.net-owner`: the pid of the command setting this container's network up, so
/// a concurrent garbage collection leaves a container that has no record *yet* alone.
fn owner_path(root: &Path, id: &str) -> PathBuf {
    root.join("containers").join(id).join(".net-owner")
}

fn mark_owner(root: &Path, id: &str) -> Result<()> {
    let p = owner_path(root, id);
    std::fs::write(&p, std::process::id().to_string()).map_err(|e| EngineError::io(&p, e))
}

/// Whether container `id` still exists (or is being made by a live command).
fn container_exists(root: &Path, id: &str) -> bool {
    let dir = root.join("containers").join(id);
    if dir.join("config.v2.json").exists() {
        return true;
    }
    std::fs::read_to_string(owner_path(root, id))
        .ok()
        .and_then(|p| p.trim().parse::<u32>().ok())
        .is_some_and(|pid| Path::new(&format!("/proc/{pid}")).exists())
}

/// Frees the network of containers that are gone (a crashed `run`, a killed monitor).
pub fn collect_garbage(root: &Path) {
    if !root.join("network").exists() {
        return;
    }
    let _ = store(root).collect_garbage(&|id| container_exists(root, id));
}

/// Frees everything container `id` holds on its networks.
pub fn release(root: &Path, id: &str) -> Result<()> {
    if !root.join("network").exists() {
        return Ok(());
    }
    for ep in store(root).release_container(id)? {
        network_event(
            root,
            "disconnect",
            &ep.network_id,
            &ep.network_name,
            Some(id),
        );
    }
    Ok(())
}

/// `network disconnect`: the container leaves one network (now and on later starts).
pub fn disconnect(root: &Path, id: &str, network: &str) -> Result<()> {
    let net = store(root).find(network)?;
    let mut requested = load_requested(root, id);
    let before = requested.len();
    requested.retain(|r| r.network != net.name && r.network != net.id);
    save_requested(root, id, &requested)?;
    match store(root).detach(id, &net.id) {
        Err(berth_net::NetError::NotConnected { .. }) if requested.len() < before => Ok(()),
        Err(e) => Err(e.into()),
        Ok(()) => {
            network_event(root, "disconnect", &net.id, &net.name, Some(id));
            Ok(())
        }
    }
}

fn parse_ip6(ip6: &str) -> Result<std::net::Ipv6Addr> {
    ip6.parse().map_err(|_| EngineError::InvalidFlag {
        flag: "--ip6".into(),
        value: ip6.into(),
        reason: "not an IPv6 address".into(),
    })
}

/// `network connect`: attaches a running or created container to one more network.
pub fn connect(
    root: &Path,
    id: &str,
    name: &str,
    network: &str,
    aliases: &[String],
    ip: Option<&str>,
    ip6: Option<&str>,
) -> Result<Option<EndpointRecord>> {
    let host: HostConfig = std::fs::read(root.join("containers").join(id).join("hostconfig.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    if !matches!(mode(&host.network_mode), Mode::Network(_)) {
        return Err(EngineError::state(
            id,
            format!("container sharing network namespace with another container or host cannot be connected to any other network (network mode {})", host.network_mode),
        ));
    }
    let ip = match ip {
        Some(ip) => Some(
            ip.parse::<Ipv4Addr>()
                .map_err(|_| EngineError::InvalidFlag {
                    flag: "--ip".into(),
                    value: ip.into(),
                    reason: "not an IPv4 address".into(),
                })?,
        ),
        None => None,
    };
    let ip6 = ip6.map(parse_ip6).transpose()?;
    if network == berth_net::DEFAULT_NETWORK {
        store(root).ensure_default()?;
    }
    let net = store(root).find(network)?;
    let mut requested = load_requested(root, id);
    if requested
        .iter()
        .any(|r| r.network == net.name || r.network == net.id)
    {
        return Err(berth_net::NetError::AlreadyConnected {
            container: name.to_string(),
            network: net.name,
        }
        .into());
    }
    // A stopped container only records the wish; its next start attaches it.
    let attached = match netns_path(root, id) {
        Some(netns) => Some(store(root).attach(
            &netns,
            &AttachRequest {
                container_id: id.into(),
                container_name: name.into(),
                network: net.id.clone(),
                ip,
                ip6,
                mac: None,
                aliases: aliases.to_vec(),
                ports: Vec::new(),
            },
        )?),
        None => None,
    };
    requested.push(RequestedNetwork {
        network: net.name.clone(),
        aliases: aliases.to_vec(),
        ip: ip.map(|i| i.to_string()),
        ip6: ip6.map(|i| i.to_string()),
        mac: None,
    });
    save_requested(root, id, &requested)?;
    if attached.is_some() {
        network_event(root, "connect", &net.id, &net.name, Some(id));
    }
    Ok(attached)
}

#[cfg(test)]
mod tests;
