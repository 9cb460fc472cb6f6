//! What inspect, ps and port show of a container's networking.
use super::*;

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

/// Docker's `NetworkSettings` for inspect.
pub fn settings_json(
    root: &Path,
    id: &str,
    network_mode: &str,
    exposed: &[String],
) -> serde_json::Value {
    let eps = endpoints(root, id);
    let net_store = store(root);
    let bindings: Vec<PortBinding> = eps.iter().flat_map(|e| e.ports.clone()).collect();
    let mut networks = serde_json::Map::new();
    for ep in &eps {
        let rec = net_store.find(&ep.network_id).ok();
        networks.insert(ep.network_name.clone(), ep.settings_json(rec.as_ref()));
    }
    if eps.is_empty() {
        let name = match mode(network_mode) {
            Mode::Host => "host",
            Mode::None => "none",
            _ => "",
        };
        if !name.is_empty() {
            networks.insert(
                name.into(),
                serde_json::json!({"IPAMConfig": null, "Links": null, "Aliases": null, "MacAddress": "",
                    "NetworkID": "", "EndpointID": "", "Gateway": "", "IPAddress": "", "IPPrefixLen": 0,
                    "IPv6Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "DNSNames": null}),
            );
        }
    }
    let first = eps.first();
    serde_json::json!({
        "Bridge": "",
        "SandboxID": "",
        "SandboxKey": netns_path(root, id).map(|p| p.to_string_lossy().into_owned()).unwrap_or_default(),
        "HairpinMode": false,
        "LinkLocalIPv6Address": "",
        "LinkLocalIPv6PrefixLen": 0,
        "Ports": berth_net::ports::ports_json(&bindings, exposed),
        "SecondaryIPAddresses": null,
        "SecondaryIPv6Addresses": null,
        "EndpointID": first.map(|e| e.endpoint_id.clone()).unwrap_or_default(),
        "Gateway": first.and_then(|e| e.gateway).map(|g| g.to_string()).unwrap_or_default(),
        "GlobalIPv6Address": first.and_then(|e| e.ip6).map(|ip| ip.to_string()).unwrap_or_default(),
        "GlobalIPv6PrefixLen": first.filter(|e| e.ip6.is_some()).map(|e| e.prefix_len6).unwrap_or(0),
        "IPAddress": first.map(|e| e.ip.to_string()).unwrap_or_default(),
        "IPPrefixLen": first.map(|e| e.prefix_len).unwrap_or(0),
        "IPv6Gateway": first.and_then(|e| e.gateway6).map(|g| g.to_string()).unwrap_or_default(),
        "MacAddress": first.map(|e| e.mac.clone()).unwrap_or_default(),
        "Networks": networks,
    })
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
