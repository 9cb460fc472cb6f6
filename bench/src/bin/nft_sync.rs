//! The two candidate ways of writing Berth's `inet berth` table, timed on the same table in one
//! run, inside a throwaway network namespace this process makes for itself:
//! 1. libnftnl (Mullvad's `nftnl` crate) over a libmnl socket kept open per namespace — what
//!    `berth_net::nf_tables::replace_table` does, and what Berth uses;
//! 2. the `nftables` crate: the same table as nftables JSON, applied by
//!    `nftables::helper::apply_ruleset_raw` (it spawns `nft -j -f -`).
//!
//! The table is the real one for two networks (one dual-stack) with N containers publishing a
//! port each. After each candidate's first apply, `nft list table inet berth` must read the same,
//! so both wrote the same rules. A `run -p` pays one table write at start and one at removal.
//!
//! Usage: `nft_sync [ROUNDS] [CONTAINERS]` (defaults 30 and 10). Run as root.
use anyhow::{bail, Context};
use berth_bench::{median, ms, numeric_arg, output};
use berth_net::nf_tables::{Expr, Field, MetaKey, Table};
use berth_net::{AttachRequest, CreateNetwork, NetStore};
use serde_json::{json, Value};
use std::process::Command;
use std::time::Instant;

const TABLE: &str = "berth";

fn prefix_len(mask: &[u8]) -> u32 {
    mask.iter().map(|b| b.count_ones()).sum()
}

fn addr_text(bytes: &[u8]) -> String {
    match bytes.len() {
        4 => std::net::Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]).to_string(),
        16 => {
            let mut a = [0u8; 16];
            a.copy_from_slice(bytes);
            std::net::Ipv6Addr::from(a).to_string()
        }
        _ => format!("{bytes:?}"),
    }
}

fn op(negate: bool) -> &'static str {
    if negate {
        "!="
    } else {
        "=="
    }
}

/// One rule's expressions as nftables JSON statements (the subset Berth's table uses).
fn statements(exprs: &[Expr]) -> anyhow::Result<Vec<Value>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < exprs.len() {
        let next = |k: usize| exprs.get(i + k);
        let (stmt, used) = match (&exprs[i], next(1), next(2)) {
            (Expr::Meta(key), Some(Expr::Cmp { negate, data }), _) => {
                let (name, right) = match key {
                    MetaKey::IifName | MetaKey::OifName => {
                        let text: Vec<u8> = data.iter().copied().take_while(|b| *b != 0).collect();
                        let name = if *key == MetaKey::IifName {
                            "iifname"
                        } else {
                            "oifname"
                        };
                        (name, json!(String::from_utf8_lossy(&text)))
                    }
                    MetaKey::NfProto => (
                        "nfproto",
                        json!(if i32::from(data[0]) == nix::libc::NFPROTO_IPV6 {
                            "ipv6"
                        } else {
                            "ipv4"
                        }),
                    ),
                    MetaKey::L4Proto => {
                        ("l4proto", json!(if data[0] == 17 { "udp" } else { "tcp" }))
                    }
                };
                (
                    json!({"match": {"op": op(*negate), "left": {"meta": {"key": name}}, "right": right}}),
                    2,
                )
            }
            (Expr::Payload(field), Some(Expr::Mask(mask)), Some(Expr::Cmp { negate, data })) => {
                let (proto, name) = payload_name(*field);
                (
                    json!({"match": {"op": op(*negate),
                        "left": {"payload": {"protocol": proto, "field": name}},
                        "right": {"prefix": {"addr": addr_text(data), "len": prefix_len(mask)}}}}),
                    3,
                )
            }
            (Expr::Payload(field), Some(Expr::Cmp { negate, data }), _) => {
                let (proto, name) = payload_name(*field);
                let right = if *field == Field::Dport {
                    json!(u16::from_be_bytes([data[0], data[1]]))
                } else {
                    json!(addr_text(data))
                };
                (
                    json!({"match": {"op": op(*negate),
                        "left": {"payload": {"protocol": proto, "field": name}}, "right": right}}),
                    2,
                )
            }
            (Expr::FibDaddrType, Some(Expr::Cmp { .. }), _) => (
                json!({"match": {"op": "==",
                    "left": {"fib": {"result": "type", "flags": ["daddr"]}}, "right": "local"}}),
                2,
            ),
            (Expr::CtStatus, Some(Expr::Mask(_)), Some(Expr::Cmp { .. })) => (
                json!({"match": {"op": "in", "left": {"ct": {"key": "status"}}, "right": "dnat"}}),
                3,
            ),
            (Expr::Jump(chain), _, _) => (json!({"jump": {"target": chain}}), 1),
            (Expr::Drop, _, _) => (json!({"drop": null}), 1),
            (Expr::Masquerade, _, _) => (json!({"masquerade": null}), 1),
            (Expr::Dnat { addr, port }, _, _) => {
                let family = if addr.is_ipv4() { "ip" } else { "ip6" };
                let mut nat = json!({"family": family, "addr": addr.to_string()});
                if let Some(port) = port {
                    nat["port"] = json!(port);
                }
                (json!({ "dnat": nat }), 1)
            }
            (other, _, _) => bail!("no JSON form for {other:?}"),
        };
        out.push(stmt);
        i += used;
    }
    Ok(out)
}

fn payload_name(field: Field) -> (&'static str, &'static str) {
    match field {
        Field::Ip4Saddr => ("ip", "saddr"),
        Field::Ip4Daddr => ("ip", "daddr"),
        Field::Ip6Saddr => ("ip6", "saddr"),
        Field::Dport => ("th", "dport"),
    }
}

/// The batch `add table; delete table; add table; chains; rules` as nftables JSON.
fn nft_json(table: &Table) -> anyhow::Result<String> {
    let t = json!({"family": "inet", "name": TABLE});
    let mut cmds = vec![
        json!({"add": {"table": t}}),
        json!({"delete": {"table": t}}),
        json!({"add": {"table": t}}),
    ];
    for chain in &table.chains {
        let mut c = json!({"family": "inet", "table": TABLE, "name": chain.name});
        if let Some(hook) = &chain.hook {
            use berth_net::nf_tables::HookPoint::*;
            c["type"] = json!(if hook.nat { "nat" } else { "filter" });
            c["hook"] = json!(match hook.point {
                PreRouting => "prerouting",
                Output => "output",
                PostRouting => "postrouting",
                Forward => "forward",
            });
            c["prio"] = json!(hook.priority);
            c["policy"] = json!("accept");
        }
        cmds.push(json!({"add": {"chain": c}}));
    }
    for rule in &table.rules {
        cmds.push(json!({"add": {"rule": {"family": "inet", "table": TABLE,
            "chain": rule.chain, "expr": statements(&rule.exprs)?}}}));
    }
    Ok(json!({ "nftables": cmds }).to_string())
}

fn listing() -> anyhow::Result<String> {
    output(Command::new("nft").args(["list", "table", "inet", TABLE]))
}

fn apply_json(payload: &str) -> anyhow::Result<()> {
    nftables::helper::apply_ruleset_raw(
        payload,
        nftables::helper::DEFAULT_NFT,
        nftables::helper::DEFAULT_ARGS,
    )
    .context("nft -j -f -")?;
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let rounds = numeric_arg(1, "ROUNDS", 30)?;
    let containers = numeric_arg(2, "CONTAINERS", 10)?;
    // Single-threaded here: the whole process moves to a private namespace.
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).context("unshare -n")?;
    output(Command::new("ip").args(["link", "set", "lo", "up"]))?;
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average at start: {}", load.trim());

    let root = tempfile::Builder::new()
        .prefix("berth-bench-nft-")
        .tempdir()?;
    let store = NetStore::new(root.path());
    store.create(&CreateNetwork {
        name: "one".into(),
        subnet: Some("10.201.0.0/24".into()),
        ..Default::default()
    })?;
    store.create(&CreateNetwork {
        name: "two".into(),
        subnet: Some("10.202.0.0/24".into()),
        ipv6: true,
        subnet6: Some("fd00:202::/64".into()),
        ..Default::default()
    })?;
    let mut ids = Vec::new();
    for i in 0..containers {
        let id = format!("{i:064x}");
        let ns = store.create_sandbox(&id)?;
        store.attach(
            &ns,
            &AttachRequest {
                container_id: id.clone(),
                container_name: format!("c{i}"),
                network: if i % 2 == 0 { "one" } else { "two" }.into(),
                ports: berth_net::ports::parse_publish(&format!("{}:80", 18000 + i))?,
                ..Default::default()
            },
        )?;
        ids.push(id);
    }
    let nets = store.networks()?;
    let mut eps = Vec::new();
    for n in &nets {
        eps.extend(store.endpoints(&n.id)?);
    }
    let table = berth_net::firewall::ruleset(&nets, &eps).context("a table")?;
    let payload = nft_json(&table)?;

    // Same rules either way.
    berth_net::nf_tables::replace_table(TABLE, Some(&table))?;
    let by_nftnl = listing()?;
    apply_json(&payload)?;
    let by_json = listing()?;
    if by_nftnl != by_json {
        bail!("the two candidates wrote different tables:\n{by_nftnl}\n---\n{by_json}");
    }
    println!(
        "table: {} chains, {} rules ({} networks, {} containers with -p); both candidates list the same",
        table.chains.len(),
        table.rules.len(),
        nets.len(),
        containers
    );

    let (mut lib, mut json_path) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let t = Instant::now();
        berth_net::nf_tables::replace_table(TABLE, Some(&table))?;
        lib.push(t.elapsed());
        let t = Instant::now();
        apply_json(&payload)?;
        json_path.push(t.elapsed());
    }
    let (lib, json_path) = (median(&mut lib), median(&mut json_path));
    println!(
        "replace inet berth, median of {rounds}: nftnl (libnftnl + libmnl) {:.3} ms, nftables crate (JSON to nft -j -f -) {:.3} ms; ratio {:.1}x",
        ms(lib),
        ms(json_path),
        json_path.as_secs_f64() / lib.as_secs_f64()
    );
    println!(
        "a `run --rm -p` writes the table twice (start, removal): nftnl {:.2} ms, nftables crate {:.2} ms",
        2.0 * ms(lib),
        2.0 * ms(json_path)
    );

    for id in &ids {
        store.release_container(id)?;
    }
    for n in ["one", "two"] {
        store.remove(n)?;
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average at end: {}", load.trim());
    Ok(())
}
