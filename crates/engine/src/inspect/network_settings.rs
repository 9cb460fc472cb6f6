//! Docker's `NetworkSettings` of a container in `inspect`, typed: the field names and order of
//! Docker's `NetworkSettingsBase`, `DefaultNetworkSettings` and `Networks`, and the
//! `EndpointSettings` of each network.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Docker's `NetworkSettings`. Every field defaults, so a description that leaves one out still
/// reads.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NetworkSettings {
    #[serde(rename = "Bridge")]
    pub bridge: String,
    #[serde(rename = "SandboxID")]
    pub sandbox_id: String,
    #[serde(rename = "HairpinMode")]
    pub hairpin_mode: bool,
    #[serde(rename = "LinkLocalIPv6Address")]
    pub link_local_ipv6_address: String,
    #[serde(rename = "LinkLocalIPv6PrefixLen")]
    pub link_local_ipv6_prefix_len: u32,
    /// `"80/tcp"` → its host bindings, or null when the port is only exposed.
    #[serde(rename = "Ports")]
    pub ports: BTreeMap<String, Option<Vec<PortBindingView>>>,
    #[serde(rename = "SandboxKey")]
    pub sandbox_key: String,
    #[serde(rename = "SecondaryIPAddresses")]
    pub secondary_ip_addresses: Option<Vec<Address>>,
    #[serde(rename = "SecondaryIPv6Addresses")]
    pub secondary_ipv6_addresses: Option<Vec<Address>>,
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    #[serde(rename = "Gateway")]
    pub gateway: String,
    #[serde(rename = "GlobalIPv6Address")]
    pub global_ipv6_address: String,
    #[serde(rename = "GlobalIPv6PrefixLen")]
    pub global_ipv6_prefix_len: u32,
    #[serde(rename = "IPAddress")]
    pub ip_address: String,
    #[serde(rename = "IPPrefixLen")]
    pub ip_prefix_len: u32,
    #[serde(rename = "IPv6Gateway")]
    pub ipv6_gateway: String,
    #[serde(rename = "MacAddress")]
    pub mac_address: String,
    /// Network name → the container's endpoint on it.
    #[serde(rename = "Networks")]
    pub networks: BTreeMap<String, EndpointSettings>,
}

/// One host binding of a published port.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PortBindingView {
    #[serde(rename = "HostIp")]
    pub host_ip: String,
    #[serde(rename = "HostPort")]
    pub host_port: String,
}

/// An address and its prefix length (Docker's `network.Address`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Address {
    #[serde(rename = "Addr")]
    pub addr: String,
    #[serde(rename = "PrefixLen")]
    pub prefix_len: u32,
}

/// Docker's `EndpointSettings`: the container's endpoint on one network.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct EndpointSettings {
    #[serde(rename = "IPAMConfig")]
    pub ipam_config: Option<EndpointIpamConfig>,
    #[serde(rename = "Links")]
    pub links: Option<Vec<String>>,
    #[serde(rename = "Aliases")]
    pub aliases: Option<Vec<String>>,
    #[serde(rename = "MacAddress")]
    pub mac_address: String,
    #[serde(rename = "DriverOpts")]
    pub driver_opts: Option<BTreeMap<String, String>>,
    #[serde(rename = "NetworkID")]
    pub network_id: String,
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    #[serde(rename = "Gateway")]
    pub gateway: String,
    #[serde(rename = "IPAddress")]
    pub ip_address: String,
    #[serde(rename = "IPPrefixLen")]
    pub ip_prefix_len: u32,
    #[serde(rename = "IPv6Gateway")]
    pub ipv6_gateway: String,
    #[serde(rename = "GlobalIPv6Address")]
    pub global_ipv6_address: String,
    #[serde(rename = "GlobalIPv6PrefixLen")]
    pub global_ipv6_prefix_len: u32,
    #[serde(rename = "DNSNames")]
    pub dns_names: Option<Vec<String>>,
}

/// Addresses asked for with `--ip`/`--ip6` (Docker's `EndpointIPAMConfig`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct EndpointIpamConfig {
    #[serde(rename = "IPv4Address", skip_serializing_if = "String::is_empty")]
    pub ipv4_address: String,
    #[serde(rename = "IPv6Address", skip_serializing_if = "String::is_empty")]
    pub ipv6_address: String,
    #[serde(rename = "LinkLocalIPs", skip_serializing_if = "Option::is_none")]
    pub link_local_ips: Option<Vec<String>>,
}

use crate::network::{endpoints, mode, netns_path, store, Mode};
use berth_net::{EndpointRecord, PortBinding};
use std::net::Ipv4Addr;
use std::path::Path;

/// Docker's `NetworkSettings` for inspect, typed.
pub(crate) fn settings(
    root: &Path,
    id: &str,
    network_mode: &str,
    exposed: &[String],
) -> NetworkSettings {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_views_are_dockers() {
        let b = berth_net::ports::parse_publish("127.0.0.1:18080:80").unwrap();
        let views = port_views(&b, &["443/tcp".to_string()]);
        let text = serde_json::to_string(&views).unwrap();
        assert_eq!(
            text,
            r#"{"443/tcp":null,"80/tcp":[{"HostIp":"127.0.0.1","HostPort":"18080"}]}"#
        );
    }

    #[test]
    fn fields_come_out_in_dockers_order_and_read_back() {
        let mut s = NetworkSettings {
            sandbox_key: "/run/netns/x".into(),
            ip_address: "172.17.0.2".into(),
            ip_prefix_len: 16,
            ..Default::default()
        };
        s.ports.insert("80/tcp".into(), None);
        s.ports.insert(
            "53/udp".into(),
            Some(vec![PortBindingView {
                host_ip: "0.0.0.0".into(),
                host_port: "5353".into(),
            }]),
        );
        s.networks.insert(
            "bridge".into(),
            EndpointSettings {
                ip_address: "172.17.0.2".into(),
                ..Default::default()
            },
        );
        let text = serde_json::to_string(&s).unwrap();
        let order = [
            "\"Bridge\"",
            "\"SandboxID\"",
            "\"HairpinMode\"",
            "\"LinkLocalIPv6Address\"",
            "\"LinkLocalIPv6PrefixLen\"",
            "\"Ports\":{\"53/udp\":[{\"HostIp\":\"0.0.0.0\",\"HostPort\":\"5353\"}],\"80/tcp\":null}",
            "\"SandboxKey\"",
            "\"SecondaryIPAddresses\":null",
            "\"SecondaryIPv6Addresses\":null",
            "\"EndpointID\"",
            "\"Gateway\"",
            "\"GlobalIPv6Address\"",
            "\"GlobalIPv6PrefixLen\"",
            "\"IPAddress\":\"172.17.0.2\"",
            "\"IPPrefixLen\":16",
            "\"IPv6Gateway\"",
            "\"MacAddress\"",
            "\"Networks\":{\"bridge\":{\"IPAMConfig\":null,\"Links\":null,\"Aliases\":null,\"MacAddress\":\"\",\"DriverOpts\":null,\"NetworkID\":\"\",\"EndpointID\":\"\",\"Gateway\":\"\",\"IPAddress\":\"172.17.0.2\",\"IPPrefixLen\":0,\"IPv6Gateway\":\"\",\"GlobalIPv6Address\":\"\",\"GlobalIPv6PrefixLen\":0,\"DNSNames\":null}}",
        ];
        crate::inspect::assert_in_order(&text, &order);
        let back: NetworkSettings = serde_json::from_str(&text).unwrap();
        assert_eq!(back, s);
    }
}
