//! Berth's nftables table `inet berth`, and only it. The whole table is a function of the network
//! and endpoint records: every change rebuilds it in one atomic batch (`add table; delete table;
//! add table; …`) sent straight to the kernel over nf_tables netlink through libnftnl
//! ([`crate::nf_tables`]), so rules can never drift from the records, a crash leaves nothing that
//! the next sync does not put right, and no `nft` program is needed. The host's other tables are
//! never read or written.
//!
//! A sync runs when a network is created or removed and when a container with published ports
//! comes or goes; a plain `run` on an existing network needs none.
use std::net::Ipv4Addr;

use crate::error::{NetError, Result};
use crate::model::{EndpointRecord, NetworkRecord};
use crate::nf_tables::{Chain, Expr, Field, Hook, HookPoint, MetaKey, Rule, Table};
use crate::ports::Protocol;

const TABLE: &str = "berth";

fn base_chain(name: &str, nat: bool, point: HookPoint, priority: i32) -> Chain {
    Chain {
        name: name.into(),
        hook: Some(Hook {
            nat,
            point,
            priority,
        }),
    }
}

/// Concatenates match fragments into one rule's expressions.
fn rule(chain: &str, parts: Vec<Vec<Expr>>) -> Rule {
    Rule {
        chain: chain.into(),
        exprs: parts.into_iter().flatten().collect(),
    }
}

fn iif(name: &str) -> Vec<Expr> {
    Expr::ifname(MetaKey::IifName, false, name).to_vec()
}
fn oif(name: &str) -> Vec<Expr> {
    Expr::ifname(MetaKey::OifName, false, name).to_vec()
}
fn not_iif(name: &str) -> Vec<Expr> {
    Expr::ifname(MetaKey::IifName, true, name).to_vec()
}
fn not_oif(name: &str) -> Vec<Expr> {
    Expr::ifname(MetaKey::OifName, true, name).to_vec()
}
fn ipv4() -> Vec<Expr> {
    Expr::nfproto(libc::NFPROTO_IPV4).to_vec()
}
fn v4_saddr_in(net: &ipnet::Ipv4Net) -> Vec<Expr> {
    Expr::addr_in(Field::Ip4Saddr, &net.network().octets(), net.prefix_len())
}
fn ipv6() -> Vec<Expr> {
    Expr::nfproto(libc::NFPROTO_IPV6).to_vec()
}
fn v6_saddr_in(net: &ipnet::Ipv6Net) -> Vec<Expr> {
    Expr::addr_in(Field::Ip6Saddr, &net.network().octets(), net.prefix_len())
}
fn one(e: Expr) -> Vec<Expr> {
    vec![e]
}

/// What `inet berth` must hold for these networks and endpoints (None: no table at all).
pub fn ruleset(networks: &[NetworkRecord], endpoints: &[EndpointRecord]) -> Option<Table> {
    if networks.is_empty() {
        return None;
    }
    let mut t = Table {
        chains: vec![
            base_chain("prerouting", true, HookPoint::PreRouting, -100),
            base_chain("output", true, HookPoint::Output, -100),
            base_chain("postrouting", true, HookPoint::PostRouting, 100),
            base_chain("forward", false, HookPoint::Forward, 0),
            Chain {
                name: "ports".into(),
                hook: None,
            },
        ],
        rules: Vec::new(),
    };
    for chain in ["prerouting", "output"] {
        t.rules.push(rule(
            chain,
            vec![
                Expr::daddr_is_local().to_vec(),
                one(Expr::Jump("ports".into())),
            ],
        ));
    }
    let loopback: ipnet::Ipv4Net = ipnet::Ipv4Net::new(Ipv4Addr::new(127, 0, 0, 0), 8)
        .unwrap_or_else(|_| ipnet::Ipv4Net::default());

    for net in networks {
        let br = net.bridge.as_str();
        if net.internal {
            // No way out and no way in: only traffic that stays on the bridge.
            t.rules
                .push(rule("forward", vec![iif(br), not_oif(br), one(Expr::Drop)]));
            t.rules
                .push(rule("forward", vec![oif(br), not_iif(br), one(Expr::Drop)]));
        } else {
            t.rules.push(rule(
                "postrouting",
                vec![
                    ipv4(),
                    v4_saddr_in(&net.subnet),
                    not_oif(br),
                    one(Expr::Masquerade),
                ],
            ));
            if let Some(subnet6) = &net.subnet6 {
                t.rules.push(rule(
                    "postrouting",
                    vec![
                        ipv6(),
                        v6_saddr_in(subnet6),
                        not_oif(br),
                        one(Expr::Masquerade),
                    ],
                ));
            }
        }
        // Published ports reached from the host's own loopback (route_localnet) or from a
        // container on the same bridge (hairpin) must answer back through the host.
        t.rules.push(rule(
            "postrouting",
            vec![
                oif(br),
                ipv4(),
                v4_saddr_in(&loopback),
                one(Expr::Masquerade),
            ],
        ));
        t.rules.push(rule(
            "postrouting",
            vec![
                oif(br),
                ipv4(),
                v4_saddr_in(&net.subnet),
                Expr::ct_dnat().to_vec(),
                one(Expr::Masquerade),
            ],
        ));
        if let Some(subnet6) = &net.subnet6 {
            t.rules.push(rule(
                "postrouting",
                vec![
                    oif(br),
                    ipv6(),
                    v6_saddr_in(subnet6),
                    Expr::ct_dnat().to_vec(),
                    one(Expr::Masquerade),
                ],
            ));
        }
        // Isolation: nothing crosses from one Berth network to another.
        for other in networks.iter().filter(|o| o.id != net.id) {
            t.rules.push(rule(
                "forward",
                vec![iif(br), oif(&other.bridge), one(Expr::Drop)],
            ));
        }
    }

    for ep in endpoints.iter().filter(|e| e.complete) {
        for b in &ep.ports {
            let mut parts = vec![ipv4()];
            if let Some(ip) = b.host_ip.filter(|ip| !ip.is_unspecified()) {
                parts.push(Expr::addr_in(Field::Ip4Daddr, &ip.octets(), 32));
            }
            let proto = match b.protocol {
                Protocol::Tcp => libc::IPPROTO_TCP,
                Protocol::Udp => libc::IPPROTO_UDP,
            };
            parts.push(Expr::l4proto(proto as u8).to_vec());
            parts.push(Expr::dport(b.host_port).to_vec());
            parts.push(one(Expr::Dnat {
                addr: ep.ip.into(),
                port: Some(b.container_port),
            }));
            t.rules.push(rule("ports", parts));
            // A port published on every address is reachable over IPv6 too when the container
            // has an IPv6 address (Docker publishes on `::` as well).
            if let (Some(ip6), None) = (ep.ip6, b.host_ip.filter(|ip| !ip.is_unspecified())) {
                t.rules.push(rule(
                    "ports",
                    vec![
                        ipv6(),
                        Expr::l4proto(proto as u8).to_vec(),
                        Expr::dport(b.host_port).to_vec(),
                        one(Expr::Dnat {
                            addr: ip6.into(),
                            port: Some(b.container_port),
                        }),
                    ],
                ));
            }
        }
    }
    Some(t)
}

/// Applies [`ruleset`] in one nf_tables transaction.
pub fn sync(networks: &[NetworkRecord], endpoints: &[EndpointRecord]) -> Result<()> {
    crate::nf_tables::replace_table(TABLE, ruleset(networks, endpoints).as_ref())
}

/// Kernel switches a bridge network needs: forwarding on (IPv6 forwarding too on a network with
/// IPv6), and `route_localnet` on the bridge so the host's 127.0.0.1 can be DNATed to a container
/// (Docker's hairpin without a userland proxy). A switch already on is not written.
pub fn enable_forwarding(bridge: &str, ipv6: bool) -> Result<()> {
    let mut switches = vec![
        "/proc/sys/net/ipv4/ip_forward".to_string(),
        format!("/proc/sys/net/ipv4/conf/{bridge}/route_localnet"),
    ];
    if ipv6 {
        switches.push("/proc/sys/net/ipv6/conf/all/forwarding".to_string());
    }
    for path in switches {
        let current = std::fs::read_to_string(&path).unwrap_or_default();
        if current.trim() != "1" {
            std::fs::write(&path, "1").map_err(|e| NetError::io(&path, e))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_state_removes_the_table() {
        assert!(ruleset(&[], &[]).is_none());
    }
}
