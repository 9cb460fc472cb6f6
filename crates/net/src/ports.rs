//! Published ports: Docker's `-p` syntax parsed into bindings, random host ports chosen from the
//! kernel's ephemeral range, and the `NetworkSettings.Ports` / `berth port` views of them.
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use crate::error::{NetError, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

/// One host port forwarded to one container port. `host_ip` None means every host address;
/// `host_port` 0 means "pick a free one" until the binding is allocated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortBinding {
    pub host_ip: Option<Ipv4Addr>,
    pub host_port: u16,
    pub container_port: u16,
    pub protocol: Protocol,
}

fn port_err(spec: &str, reason: impl Into<String>) -> NetError {
    NetError::Port {
        port: spec.to_string(),
        reason: reason.into(),
    }
}

fn parse_range(spec: &str, text: &str) -> Result<(u16, u16)> {
    let (lo, hi) = match text.split_once('-') {
        Some((a, b)) => (a, b),
        None => (text, text),
    };
    let parse = |s: &str| -> Result<u16> {
        match s.parse::<u16>() {
            Ok(0) | Err(_) => Err(port_err(spec, format!("invalid port {s:?}"))),
            Ok(p) => Ok(p),
        }
    };
    let (lo, hi) = (parse(lo)?, parse(hi)?);
    if hi < lo {
        return Err(port_err(spec, format!("invalid range {text:?}")));
    }
    Ok((lo, hi))
}

/// Parses one `-p` value: `ctr`, `host:ctr`, `ip:host:ctr`, `ip::ctr`, each port possibly a range
/// `a-b` and followed by `/tcp` or `/udp`.
pub fn parse_publish(spec: &str) -> Result<Vec<PortBinding>> {
    let (body, protocol) = match spec.rsplit_once('/') {
        Some((body, "tcp")) => (body, Protocol::Tcp),
        Some((body, "udp")) => (body, Protocol::Udp),
        Some((_, other)) => {
            return Err(port_err(spec, format!("unsupported protocol {other:?}")));
        }
        None => (spec, Protocol::Tcp),
    };
    let parts: Vec<&str> = body.rsplitn(3, ':').collect();
    let (ip, host, ctr) = match parts.as_slice() {
        [ctr] => (None, "", *ctr),
        [ctr, host] => (None, *host, *ctr),
        [ctr, host, ip] => (Some(*ip), *host, *ctr),
        _ => return Err(port_err(spec, "empty port")),
    };
    let host_ip = match ip {
        None | Some("") | Some("0.0.0.0") => None,
        Some(ip) => Some(
            ip.trim_matches(|c| c == '[' || c == ']')
                .parse::<Ipv4Addr>()
                .map_err(|_| port_err(spec, format!("invalid IPv4 address {ip:?}")))?,
        ),
    };
    let (c_lo, c_hi) = parse_range(spec, ctr)?;
    let count = c_hi - c_lo + 1;
    let host_ports: Vec<u16> = if host.is_empty() {
        vec![0; count as usize]
    } else {
        let (h_lo, h_hi) = parse_range(spec, host)?;
        if h_hi - h_lo + 1 != count {
            if h_lo != h_hi && count == 1 {
                // Docker: `-p 8000-8010:80` picks one free host port of the range; take the first.
                vec![h_lo]
            } else {
                return Err(port_err(
                    spec,
                    "host and container port ranges differ in size",
                ));
            }
        } else {
            (h_lo..=h_hi).collect()
        }
    };
    Ok((c_lo..=c_hi)
        .zip(host_ports)
        .map(|(container_port, host_port)| PortBinding {
            host_ip,
            host_port,
            container_port,
            protocol,
        })
        .collect())
}

/// Parses an image's `ExposedPorts` key (`80/tcp`) for `-P`.
pub fn parse_exposed(key: &str) -> Result<Vec<PortBinding>> {
    parse_publish(key)
}

/// The kernel's ephemeral port range (Docker takes random host ports from it too).
pub fn ephemeral_range() -> (u16, u16) {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| {
            let mut it = s.split_whitespace().map(|p| p.parse::<u16>().ok());
            Some((it.next()??, it.next()??))
        })
        .unwrap_or((32768, 60999))
}

/// Whether nothing on the host listens on `port` (checked by binding it for a moment).
pub fn host_port_free(ip: Option<Ipv4Addr>, port: u16, protocol: Protocol) -> bool {
    let addr = (ip.unwrap_or(Ipv4Addr::UNSPECIFIED), port);
    match protocol {
        Protocol::Tcp => std::net::TcpListener::bind(addr).is_ok(),
        Protocol::Udp => std::net::UdpSocket::bind(addr).is_ok(),
    }
}

/// The `ps` PORTS column: `0.0.0.0:8080->80/tcp, 127.0.0.1:5353->53/udp`.
pub fn ports_column(bindings: &[PortBinding]) -> String {
    bindings
        .iter()
        .map(|b| {
            format!(
                "{}:{}->{}/{}",
                b.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED),
                b.host_port,
                b.container_port,
                b.protocol.as_str()
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(spec: &str) -> PortBinding {
        let mut v = parse_publish(spec).unwrap();
        assert_eq!(v.len(), 1, "{spec}");
        v.remove(0)
    }

    #[test]
    fn docker_publish_forms() {
        let b = one("80");
        assert_eq!((b.host_ip, b.host_port, b.container_port), (None, 0, 80));
        let b = one("8080:80");
        assert_eq!(
            (b.host_port, b.container_port, b.protocol),
            (8080, 80, Protocol::Tcp)
        );
        let b = one("127.0.0.1:18080:80");
        assert_eq!(b.host_ip, Some(Ipv4Addr::LOCALHOST));
        assert_eq!(b.host_port, 18080);
        let b = one("127.0.0.1::53/udp");
        assert_eq!((b.host_port, b.protocol), (0, Protocol::Udp));
        let range = parse_publish("8000-8002:80-82").unwrap();
        assert_eq!(
            range
                .iter()
                .map(|b| (b.host_port, b.container_port))
                .collect::<Vec<_>>(),
            vec![(8000, 80), (8001, 81), (8002, 82)]
        );
        assert_eq!(parse_publish("7000-7001").unwrap().len(), 2);
    }

    #[test]
    fn bad_publish_forms_are_refused() {
        for bad in [
            "", "0", "abc", "80/sctp2", "1-2:1-3", "x:1:80", "70000", "9-8",
        ] {
            assert!(parse_publish(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ports_views_match_docker() {
        let b = parse_publish("127.0.0.1:18080:80").unwrap();
        assert_eq!(ports_column(&b), "127.0.0.1:18080->80/tcp");
    }
}
