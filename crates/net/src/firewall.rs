//! Berth's nftables table `inet berth`, and only it. The whole table is a function of the network
//! and endpoint records: every change rebuilds it in one atomic batch (`add table; delete table;
//! add table; …`) handed to `nft -j -f -` through the `nftables` crate, so rules can never drift
//! from the records and a crash leaves nothing that the next sync does not put right. The host's
//! other tables are never read or written.
//!
//! A sync runs when a network is created or removed and when a container with published ports
//! comes or goes; a plain `run` on an existing network needs none.
use std::net::Ipv4Addr;

use serde_json::{json, Value};

use crate::error::{NetError, Result};
use crate::model::{EndpointRecord, NetworkRecord};

const TABLE: &str = "berth";

fn rule(chain: &str, expr: Vec<Value>) -> Value {
    json!({"add": {"rule": {"family": "inet", "table": TABLE, "chain": chain, "expr": expr}}})
}

fn base_chain(name: &str, kind: &str, hook: &str, prio: i32) -> Value {
    json!({"add": {"chain": {"family": "inet", "table": TABLE, "name": name,
        "type": kind, "hook": hook, "prio": prio, "policy": "accept"}}})
}

fn matches(op: &str, left: Value, right: Value) -> Value {
    json!({"match": {"op": op, "left": left, "right": right}})
}

fn meta(key: &str) -> Value {
    json!({"meta": {"key": key}})
}

fn payload(protocol: &str, field: &str) -> Value {
    json!({"payload": {"protocol": protocol, "field": field}})
}

fn prefix(net: &ipnet::Ipv4Net) -> Value {
    json!({"prefix": {"addr": net.network().to_string(), "len": net.prefix_len()}})
}

/// The batch that makes `inet berth` describe exactly these networks and endpoints.
pub fn ruleset(networks: &[NetworkRecord], endpoints: &[EndpointRecord]) -> Value {
    let mut cmds = vec![
        json!({"add": {"table": {"family": "inet", "name": TABLE}}}),
        json!({"delete": {"table": {"family": "inet", "name": TABLE}}}),
    ];
    if networks.is_empty() {
        return json!({ "nftables": cmds });
    }
    cmds.push(json!({"add": {"table": {"family": "inet", "name": TABLE}}}));
    cmds.push(base_chain("prerouting", "nat", "prerouting", -100));
    cmds.push(base_chain("output", "nat", "output", -100));
    cmds.push(base_chain("postrouting", "nat", "postrouting", 100));
    cmds.push(base_chain("forward", "filter", "forward", 0));
    cmds.push(json!({"add": {"chain": {"family": "inet", "table": TABLE, "name": "ports"}}}));
    let local = matches(
        "==",
        json!({"fib": {"result": "type", "flags": ["daddr"]}}),
        json!("local"),
    );
    let jump = json!({"jump": {"target": "ports"}});
    cmds.push(rule("prerouting", vec![local.clone(), jump.clone()]));
    cmds.push(rule("output", vec![local, jump]));

    for net in networks {
        let br = json!(net.bridge);
        if net.internal {
            // No way out and no way in: only traffic that stays on the bridge.
            cmds.push(rule(
                "forward",
                vec![
                    matches("==", meta("iifname"), br.clone()),
                    matches("!=", meta("oifname"), br.clone()),
                    json!({"drop": null}),
                ],
            ));
            cmds.push(rule(
                "forward",
                vec![
                    matches("==", meta("oifname"), br.clone()),
                    matches("!=", meta("iifname"), br.clone()),
                    json!({"drop": null}),
                ],
            ));
        } else {
            cmds.push(rule(
                "postrouting",
                vec![
                    matches("==", payload("ip", "saddr"), prefix(&net.subnet)),
                    matches("!=", meta("oifname"), br.clone()),
                    json!({"masquerade": null}),
                ],
            ));
        }
        // Published ports reached from the host's own loopback (route_localnet) or from a
        // container on the same bridge (hairpin) must answer back through the host.
        cmds.push(rule(
            "postrouting",
            vec![
                matches("==", meta("oifname"), br.clone()),
                matches(
                    "==",
                    payload("ip", "saddr"),
                    json!({"prefix": {"addr": "127.0.0.0", "len": 8}}),
                ),
                json!({"masquerade": null}),
            ],
        ));
        cmds.push(rule(
            "postrouting",
            vec![
                matches("==", meta("oifname"), br.clone()),
                matches("==", payload("ip", "saddr"), prefix(&net.subnet)),
                matches("in", json!({"ct": {"key": "status"}}), json!("dnat")),
                json!({"masquerade": null}),
            ],
        ));
        // Isolation: nothing crosses from one Berth network to another.
        for other in networks.iter().filter(|o| o.id != net.id) {
            cmds.push(rule(
                "forward",
                vec![
                    matches("==", meta("iifname"), br.clone()),
                    matches("==", meta("oifname"), json!(other.bridge)),
                    json!({"drop": null}),
                ],
            ));
        }
    }

    for ep in endpoints.iter().filter(|e| e.complete) {
        for b in &ep.ports {
            let mut expr = Vec::new();
            if let Some(ip) = b.host_ip {
                if ip != Ipv4Addr::UNSPECIFIED {
                    expr.push(matches("==", payload("ip", "daddr"), json!(ip.to_string())));
                }
            }
            expr.push(matches("==", meta("nfproto"), json!("ipv4")));
            expr.push(matches(
                "==",
                payload(b.protocol.as_str(), "dport"),
                json!(b.host_port),
            ));
            expr.push(json!({"dnat": {"family": "ip", "addr": ep.ip.to_string(), "port": b.container_port}}));
            cmds.push(rule("ports", expr));
        }
    }
    json!({ "nftables": cmds })
}

/// Applies [`ruleset`] in one `nft` transaction.
pub fn sync(networks: &[NetworkRecord], endpoints: &[EndpointRecord]) -> Result<()> {
    let batch = ruleset(networks, endpoints);
    let typed: nftables::schema::Nftables = serde_json::from_value(batch)
        .map_err(|e| NetError::Firewall(format!("building the batch: {e}")))?;
    nftables::helper::apply_ruleset(&typed).map_err(|e| NetError::Firewall(e.to_string()))
}

/// Kernel switches a bridge network needs: forwarding on, and `route_localnet` on the bridge so the
/// host's 127.0.0.1 can be DNATed to a container (Docker's hairpin without a userland proxy).
pub fn enable_forwarding(bridge: &str) -> Result<()> {
    for path in [
        "/proc/sys/net/ipv4/ip_forward".to_string(),
        format!("/proc/sys/net/ipv4/conf/{bridge}/route_localnet"),
    ] {
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
    fn empty_state_only_removes_the_table() {
        let v = ruleset(&[], &[]);
        assert_eq!(v["nftables"].as_array().unwrap().len(), 2);
        let _: nftables::schema::Nftables = serde_json::from_value(v).unwrap();
    }
}
