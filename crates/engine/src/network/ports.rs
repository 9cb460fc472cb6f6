//! Published ports: `-p`/`-P` flags turned into berth-net's port bindings.
use super::*;

/// The published ports a container asks for: `HostConfig.PortBindings` plus, with `-P`, every
/// exposed port of the image on a random host port.
pub fn port_bindings(host: &HostConfig, config: &ContainerConfig) -> Result<Vec<PortBinding>> {
    let mut out = Vec::new();
    for (key, list) in &host.port_bindings {
        let Some((port, proto)) = key.split_once('/').or(Some((key.as_str(), "tcp"))) else {
            continue;
        };
        let entries = list.as_array().cloned().unwrap_or_default();
        for entry in entries {
            let ip = entry["HostIp"].as_str().unwrap_or("");
            let host_port = entry["HostPort"].as_str().unwrap_or("");
            let spec = match (ip.is_empty(), host_port.is_empty()) {
                (true, true) => format!("{port}/{proto}"),
                (true, false) => format!("{host_port}:{port}/{proto}"),
                (false, _) => format!("{ip}:{host_port}:{port}/{proto}"),
            };
            out.extend(berth_net::ports::parse_publish(&spec)?);
        }
    }
    if host.publish_all_ports {
        for key in config.exposed_ports.iter().flat_map(|m| m.keys()) {
            for b in berth_net::ports::parse_exposed(key)? {
                let already = out
                    .iter()
                    .any(|o| o.container_port == b.container_port && o.protocol == b.protocol);
                if !already {
                    out.push(b);
                }
            }
        }
    }
    Ok(out)
}

/// Docker's PortBindings map (one key per container port) for `-p` values.
pub fn publish_to_port_bindings(specs: &[String]) -> Result<BTreeMap<String, serde_json::Value>> {
    let mut map: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    for spec in specs {
        for b in berth_net::ports::parse_publish(spec)? {
            let key = format!("{}/{}", b.container_port, b.protocol.as_str());
            let entry = serde_json::json!({
                "HostIp": b.host_ip.map(|i| i.to_string()).unwrap_or_default(),
                "HostPort": if b.host_port == 0 { String::new() } else { b.host_port.to_string() },
            });
            match map.entry(key).or_insert_with(|| serde_json::json!([])) {
                serde_json::Value::Array(list) => list.push(entry),
                other => *other = serde_json::json!([entry]),
            }
        }
    }
    Ok(map)
}
