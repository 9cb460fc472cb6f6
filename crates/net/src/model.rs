//! What Berth keeps about networks and endpoints on disk, and Docker's `network inspect` shape.
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{Ipv4Net, Ipv6Net};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::ports::PortBinding;

/// The default network's name and bridge, as Docker's `bridge` / `docker0`.
pub const DEFAULT_NETWORK: &str = "bridge";
pub const DEFAULT_BRIDGE: &str = "berth0";
/// Docker's `com.docker.network.driver.mtu` option.
pub const MTU_OPTION: &str = "com.docker.network.driver.mtu";

/// One bridge network (`<root>/network/networks/<id>.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NetworkRecord {
    pub id: String,
    pub name: String,
    pub created: String,
    pub subnet: Ipv4Net,
    pub gateway: Ipv4Addr,
    #[serde(default)]
    pub ip_range: Option<Ipv4Net>,
    #[serde(default)]
    pub internal: bool,
    #[serde(default)]
    pub mtu: Option<u32>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    /// Interface name of the bridge on the host.
    pub bridge: String,
    /// The IPv6 subnet and gateway of a network made with `--ipv6` (dual stack: the IPv4
    /// subnet is always there too, as in Docker).
    #[serde(default)]
    pub subnet6: Option<Ipv6Net>,
    #[serde(default)]
    pub gateway6: Option<Ipv6Addr>,
}

impl NetworkRecord {
    pub fn is_default(&self) -> bool {
        self.name == DEFAULT_NETWORK
    }

    pub fn enable_ipv6(&self) -> bool {
        self.subnet6.is_some()
    }

    /// Whether containers on it resolve each other by name (Docker: user-defined networks only).
    pub fn has_dns(&self) -> bool {
        !self.is_default()
    }
}

/// One container's attachment to one network (`<root>/network/endpoints/<net-id>/<ctr-id>.json`).
/// The set of these files is the address allocation: an address is taken while its file exists.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EndpointRecord {
    pub container_id: String,
    pub container_name: String,
    pub network_id: String,
    pub network_name: String,
    pub endpoint_id: String,
    pub ip: Ipv4Addr,
    pub prefix_len: u8,
    /// None on internal networks (no route out).
    pub gateway: Option<Ipv4Addr>,
    pub mac: String,
    pub host_veth: String,
    pub ifname: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub ports: Vec<PortBinding>,
    /// True once the interfaces exist; a false record left by a crash is rolled back.
    #[serde(default)]
    pub complete: bool,
    /// The IPv6 address on a network with IPv6 (same prefix length as the network's subnet).
    #[serde(default)]
    pub ip6: Option<Ipv6Addr>,
    #[serde(default)]
    pub prefix_len6: u8,
    /// None on internal networks and networks without IPv6.
    #[serde(default)]
    pub gateway6: Option<Ipv6Addr>,
}

/// Docker's `network inspect` object for one network and its endpoints.
pub fn inspect_json(record: &NetworkRecord, endpoints: &[EndpointRecord]) -> Value {
    let mut config = json!({
        "Subnet": record.subnet.to_string(),
        "Gateway": record.gateway.to_string(),
    });
    if let Some(range) = record.ip_range {
        config["IPRange"] = json!(range.to_string());
    }
    let mut configs = vec![config];
    if let (Some(subnet6), Some(gateway6)) = (record.subnet6, record.gateway6) {
        configs.push(json!({
            "Subnet": subnet6.to_string(),
            "Gateway": gateway6.to_string(),
        }));
    }
    let containers: BTreeMap<String, Value> = endpoints
        .iter()
        .filter(|e| e.complete)
        .map(|e| {
            (
                e.container_id.clone(),
                json!({
                    "Name": e.container_name,
                    "EndpointID": e.endpoint_id,
                    "MacAddress": e.mac,
                    "IPv4Address": format!("{}/{}", e.ip, e.prefix_len),
                    "IPv6Address": e.ip6.map(|ip| format!("{ip}/{}", e.prefix_len6)).unwrap_or_default(),
                }),
            )
        })
        .collect();
    json!({
        "Name": record.name,
        "Id": record.id,
        "Created": record.created,
        "Scope": "local",
        "Driver": "bridge",
        "EnableIPv4": true,
        "EnableIPv6": record.enable_ipv6(),
        "IPAM": {
            "Driver": "default",
            "Options": if record.is_default() { Value::Null } else { json!({}) },
            "Config": configs,
        },
        "Internal": record.internal,
        "Attachable": false,
        "Ingress": false,
        "ConfigFrom": { "Network": "" },
        "ConfigOnly": false,
        "Containers": containers,
        "Options": record.options,
        "Labels": record.labels,
    })
}

/// Docker's MAC for an address: 02:42 followed by the four address bytes.
pub fn mac_for(ip: Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x02, 0x42, o[0], o[1], o[2], o[3]]
}

pub fn format_mac(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

pub fn parse_mac(text: &str) -> Option<[u8; 6]> {
    let parts: Vec<&str> = text.split(':').collect();
    if parts.len() != 6 {
        return None;
    }
    let mut mac = [0u8; 6];
    for (slot, part) in mac.iter_mut().zip(parts) {
        if part.len() != 2 {
            return None;
        }
        *slot = u8::from_str_radix(part, 16).ok()?;
    }
    // A multicast address cannot be a unicast interface's address.
    (mac[0] & 1 == 0).then_some(mac)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_mac_from_address() {
        assert_eq!(
            format_mac(mac_for(Ipv4Addr::new(172, 17, 0, 2))),
            "02:42:ac:11:00:02"
        );
        assert_eq!(
            parse_mac("02:42:ac:11:00:02"),
            Some(mac_for(Ipv4Addr::new(172, 17, 0, 2)))
        );
        assert_eq!(parse_mac("01:00:00:00:00:00"), None);
        assert_eq!(parse_mac("zz:00:00:00:00:00"), None);
    }
}
