//! `berth network …`: Docker's network verbs over the engine's network door.
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use berth_engine::net::{CreateNetwork, NetError};
use berth_engine::{network, Engine};
use clap::{Args, Subcommand};

#[derive(Subcommand, Debug)]
pub enum NetworkCommand {
    /// Manage networks.
    #[command(subcommand)]
    Network(NetworkVerb),
}

#[derive(Subcommand, Debug)]
pub enum NetworkVerb {
    /// Create a network.
    Create(CreateArgs),
    /// List networks.
    #[command(alias = "list")]
    Ls {
        /// Only display network IDs.
        #[arg(short, long)]
        quiet: bool,
        /// Do not truncate the output.
        #[arg(long = "no-trunc")]
        no_trunc: bool,
        /// Format output using a custom template: 'table', 'table TEMPLATE', 'json', or a Go
        /// template.
        #[arg(long)]
        format: Option<String>,
    },
    /// Display detailed information on one or more networks.
    Inspect {
        /// Format the output using the given Go template.
        #[arg(short, long)]
        format: Option<String>,
        #[arg(required = true)]
        networks: Vec<String>,
    },
    /// Remove one or more networks.
    #[command(alias = "remove")]
    Rm {
        #[arg(required = true)]
        networks: Vec<String>,
    },
    /// Remove all unused networks.
    Prune {
        /// Do not prompt for confirmation.
        #[arg(short, long)]
        force: bool,
    },
    /// Connect a container to a network.
    Connect {
        /// Add network-scoped alias for the container.
        #[arg(long)]
        alias: Vec<String>,
        /// IPv4 address.
        #[arg(long)]
        ip: Option<String>,
        /// IPv6 address.
        #[arg(long)]
        ip6: Option<String>,
        network: String,
        container: String,
    },
    /// Disconnect a container from a network.
    Disconnect {
        /// Force the container to disconnect from a network.
        #[arg(short, long)]
        force: bool,
        network: String,
        container: String,
    },
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    /// Driver to manage the Network (only bridge).
    #[arg(short, long, default_value = "bridge")]
    driver: String,
    /// Subnet in CIDR format that represents a network segment (one IPv4, one IPv6).
    #[arg(long)]
    subnet: Vec<String>,
    /// IPv4 or IPv6 Gateway for the master subnet.
    #[arg(long)]
    gateway: Vec<String>,
    /// Enable or disable IPv6 networking.
    #[arg(long)]
    ipv6: bool,
    /// Allocate container ip from a sub-range.
    #[arg(long = "ip-range")]
    ip_range: Option<String>,
    /// Restrict external access to the network.
    #[arg(long)]
    internal: bool,
    /// Set driver specific options (com.docker.network.driver.mtu=N).
    #[arg(short = 'o', long = "opt")]
    opt: Vec<String>,
    /// Set metadata on a network.
    #[arg(long)]
    label: Vec<String>,
    name: String,
}

fn key_values(list: &[String]) -> BTreeMap<String, String> {
    list.iter()
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (kv.clone(), String::new()),
        })
        .collect()
}

fn daemon_error(e: impl std::fmt::Display) -> i32 {
    eprintln!("Error response from daemon: {e}");
    1
}

pub fn run(root: &Path, cmd: NetworkCommand) -> anyhow::Result<i32> {
    let NetworkCommand::Network(verb) = cmd;
    let engine = Engine::open(root);
    network::collect_garbage(root);
    let store = network::store(root);
    match verb {
        NetworkVerb::Create(args) => {
            if args.driver != "bridge" {
                return Ok(daemon_error(format!(
                    "plugin \"{}\" not found (only the bridge driver is available)",
                    args.driver
                )));
            }
            let (v6_subnets, v4_subnets): (Vec<String>, Vec<String>) =
                args.subnet.into_iter().partition(|s| s.contains(':'));
            let (v6_gateways, v4_gateways): (Vec<String>, Vec<String>) =
                args.gateway.into_iter().partition(|g| g.contains(':'));
            for (what, list) in [
                ("IPv4 subnet", &v4_subnets),
                ("IPv6 subnet", &v6_subnets),
                ("IPv4 gateway", &v4_gateways),
                ("IPv6 gateway", &v6_gateways),
            ] {
                if list.len() > 1 {
                    return Ok(daemon_error(format!(
                        "only one {what} per network is supported, got {}",
                        list.join(", ")
                    )));
                }
            }
            let req = CreateNetwork {
                name: args.name,
                subnet: v4_subnets.into_iter().next(),
                gateway: v4_gateways.into_iter().next(),
                ipv6: args.ipv6,
                subnet6: v6_subnets.into_iter().next(),
                gateway6: v6_gateways.into_iter().next(),
                ip_range: args.ip_range,
                internal: args.internal,
                options: key_values(&args.opt),
                labels: key_values(&args.label),
            };
            match network::create(root, &req) {
                Ok(net) => {
                    println!("{}", net.id);
                    Ok(0)
                }
                Err(e) => Ok(daemon_error(e)),
            }
        }
        NetworkVerb::Ls {
            quiet,
            no_trunc,
            format,
        } => {
            let nets = store.networks()?;
            let id = |full: &str| -> String {
                if no_trunc {
                    full.to_string()
                } else {
                    full.chars().take(12).collect()
                }
            };
            if quiet {
                for n in &nets {
                    println!("{}", id(&n.id));
                }
                return Ok(0);
            }
            // Docker's `network ls` rows (its networkContext), the host and none networks last.
            let mut rows: Vec<serde_json::Value> = nets
                .iter()
                .map(|n| {
                    let labels: Vec<String> =
                        n.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    serde_json::json!({
                        "ID": id(&n.id),
                        "Name": n.name,
                        "Driver": "bridge",
                        "Scope": "local",
                        "IPv6": n.enable_ipv6().to_string(),
                        "Internal": n.internal.to_string(),
                        "Labels": labels.join(","),
                        "CreatedAt": n.created,
                    })
                })
                .collect();
            for (name, driver) in [("host", "host"), ("none", "null")] {
                rows.push(serde_json::json!({
                    "ID": name, "Name": name, "Driver": driver, "Scope": "local",
                    "IPv6": "false", "Internal": "false", "Labels": "", "CreatedAt": "",
                }));
            }
            let table = crate::render::Table {
                go_type: "*network.networkContext",
                legacy_wording: true,
                columns: &[
                    ("NETWORK ID", "ID"),
                    ("NAME", "Name"),
                    ("DRIVER", "Driver"),
                    ("SCOPE", "Scope"),
                ],
                headers: &[("IPv6", "IPV6"), ("CreatedAt", "CREATED")],
            };
            let mut out = std::io::stdout().lock();
            crate::render::print_rows(&mut out, &rows, format.as_deref(), &table)?;
            out.flush()?;
            Ok(0)
        }
        NetworkVerb::Inspect { format, networks } => {
            let mut out = Vec::new();
            let mut code = 0;
            for n in &networks {
                match store.inspect(n) {
                    Ok(v) => out.push(v),
                    Err(e) => {
                        code = daemon_error(e);
                    }
                }
            }
            if let Err(e) = crate::render::print_inspect(&out, format.as_deref()) {
                if let Some(code) = crate::render::report_format_error(&e) {
                    return Ok(code);
                }
                eprintln!("Error response from daemon: {e}");
                return Ok(1);
            }
            Ok(code)
        }
        NetworkVerb::Rm { networks } => {
            let mut code = 0;
            for n in &networks {
                if n == "host" || n == "none" || n == berth_engine::net::DEFAULT_NETWORK {
                    code = daemon_error(NetError::Predefined {
                        network: n.clone(),
                        action: "removed".into(),
                    });
                    continue;
                }
                match network::remove(root, n) {
                    Ok(_) => println!("{n}"),
                    Err(e) => code = daemon_error(e),
                }
            }
            Ok(code)
        }
        NetworkVerb::Prune { force: _ } => {
            let removed = network::prune(root)?;
            if !removed.is_empty() {
                println!("Deleted Networks:");
                for n in removed {
                    println!("{n}");
                }
            }
            Ok(0)
        }
        NetworkVerb::Connect {
            alias,
            ip,
            ip6,
            network: net,
            container,
        } => {
            let record = match engine.lookup(&container) {
                Ok(r) => r,
                Err(e) => return Ok(daemon_error(e)),
            };
            match network::connect(
                root,
                &record.id,
                record.short_name(),
                &net,
                &alias,
                ip.as_deref(),
                ip6.as_deref(),
            ) {
                Ok(_) => Ok(0),
                Err(e) => Ok(daemon_error(e)),
            }
        }
        NetworkVerb::Disconnect {
            force: _,
            network: net,
            container,
        } => {
            let id = match engine.store.resolve(&container) {
                Ok(id) => id,
                Err(e) => return Ok(daemon_error(e)),
            };
            match network::disconnect(root, &id, &net) {
                Ok(()) => Ok(0),
                Err(e) => Ok(daemon_error(e)),
            }
        }
    }
}
