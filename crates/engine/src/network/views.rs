//! What inspect, ps and port show of a container's networking.
use super::*;
use crate::inspect::{EndpointSettings, NetworkSettings, PortBindingView};

/// The endpoints of container `id` (eth0 first).
pub fn endpoints(root: &Path, id: &str) -> Vec<EndpointRecord> {
    if !root.join("network").exists() {
        return Vec::new();
    }
    store(root).container_endpoints(id).unwrap_or_default()
}

/// The pinned namespace of container `id`, if it has one.
pub fn netns_path(root: &Path, id: &str) -> Option<PathBuf> {
    let p = store(root).netns_path(id);
    p.exists().then_some(p)
}

/// Docker's `NetworkSettings` for inspect, typed.
pub fn settings(root: &Path, id: &str, network_mode: &str, exposed: &[String]) -> NetworkSettings {
    let eps = endpoints(root, id);
    let net_store = store(root);
    let bindings: Vec<PortBinding> = eps.iter().flat_map(|e| e.ports.clone()).collect();
    let mut networks = BTreeMap::new();
    for ep in &eps {
        let rec = net_store.find(&ep.network_id).ok();
        networks.insert(ep.network_name.clone(), endpoint_settings(ep, rec.as_ref()));
    }
    if eps.is_empty() {
        let name = match mode(network_mode) {
            Mode::Host => "host",
            Mode::None => "none",
            _ => "",
        };
        if !name.is_empty() {
            networks.insert(name.into(), EndpointSettings::default());
        }
    }
    let first = eps.first();
    NetworkSettings {
        sandbox_key: netns_path(root, id)
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default(),
        ports: port_views(&bindings, exposed),
        endpoint_id: first.map(|e| e.endpoint_id.clone()).unwrap_or_default(),
        gateway: first
            .and_then(|e| e.gateway)
            .map(|g| g.to_string())
            .unwrap_or_default(),
        global_ipv6_address: first
            .and_then(|e| e.ip6)
            .map(|ip| ip.to_string())
            .unwrap_or_default(),
        global_ipv6_prefix_len: first
            .filter(|e| e.ip6.is_some())
            .map(|e| u32::from(e.prefix_len6))
            .unwrap_or(0),
        ip_address: first.map(|e| e.ip.to_string()).unwrap_or_default(),
        ip_prefix_len: first.map(|e| u32::from(e.prefix_len)).unwrap_or(0),
        ipv6_gateway: first
            .and_then(|e| e.gateway6)
            .map(|g| g.to_string())
            .unwrap_or_default(),
        mac_address: first.map(|e| e.mac.clone()).unwrap_or_default(),
        networks,
        ..Default::default()
    }
}

/// Docker's `EndpointSettings` of one endpoint; on a network with name resolution, its DNS
/// names (container name, aliases, short ID) and the short ID among the aliases, as Docker shows.
fn endpoint_settings(
    ep: &EndpointRecord,
    record: Option<&berth_net::NetworkRecord>,
) -> EndpointSettings {
    let short: String = ep.container_id.chars().take(12).collect();
    let dns = record.is_some_and(|r| r.has_dns());
    let mut aliases = ep.aliases.clone();
    if dns && !aliases.contains(&short) {
        aliases.push(short.clone());
    }
    EndpointSettings {
        aliases: (!aliases.is_empty()).then_some(aliases),
        mac_address: ep.mac.clone(),
        network_id: ep.network_id.clone(),
        endpoint_id: ep.endpoint_id.clone(),
        gateway: ep.gateway.map(|g| g.to_string()).unwrap_or_default(),
        ip_address: ep.ip.to_string(),
        ip_prefix_len: u32::from(ep.prefix_len),
        ipv6_gateway: ep.gateway6.map(|g| g.to_string()).unwrap_or_default(),
        global_ipv6_address: ep.ip6.map(|ip| ip.to_string()).unwrap_or_default(),
        global_ipv6_prefix_len: if ep.ip6.is_some() {
            u32::from(ep.prefix_len6)
        } else {
            0
        },
        dns_names: dns.then(|| {
            let mut names = vec![ep.container_name.clone()];
            names.extend(ep.aliases.iter().cloned());
            names.push(short);
            names
        }),
        ..Default::default()
    }
}

/// Docker's `NetworkSettings.Ports`: every exposed port (null when not published) and the host
/// bindings of the published ones.
pub(crate) fn port_views(
    bindings: &[PortBinding],
    exposed: &[String],
) -> BTreeMap<String, Option<Vec<PortBindingView>>> {
    let mut map: BTreeMap<String, Option<Vec<PortBindingView>>> =
        exposed.iter().map(|key| (key.clone(), None)).collect();
    for b in bindings {
        let key = format!("{}/{}", b.container_port, b.protocol.as_str());
        map.entry(key)
            .or_insert(None)
            .get_or_insert_with(Vec::new)
            .push(PortBindingView {
                host_ip: b.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED).to_string(),
                host_port: b.host_port.to_string(),
            });
    }
    map
}

/// The Berth root a record lives under (`<root>/containers/<id>/hosts`).
pub fn record_root(record: &crate::record::ContainerRecord) -> Option<PathBuf> {
    Path::new(&record.hosts_path)
        .parent()?
        .parent()?
        .parent()
        .map(Path::to_path_buf)
}

/// The published ports of container `id` (for `ps` and `port`).
pub fn published(root: &Path, id: &str) -> Vec<PortBinding> {
    endpoints(root, id)
        .into_iter()
        .flat_map(|e| e.ports)
        .collect()
}
