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

#[cfg(test)]
mod tests {
    use super::*;

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
