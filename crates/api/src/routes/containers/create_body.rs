//! The create request's body (Docker's `Config` + `HostConfig` + `NetworkingConfig`) turned
//! into the engine's `RunOptions`.

use super::*;

/// Removes `null` members (Docker clients send `"Binds": null` and the like) so the engine's
/// `#[serde(default)]` shapes take their defaults.
pub(super) fn strip_nulls(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(strip_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

pub(super) fn string_list(v: Option<&Value>) -> Option<Vec<String>> {
    match v? {
        Value::Array(items) => Some(
            items
                .iter()
                .filter_map(|i| i.as_str().map(str::to_string))
                .collect(),
        ),
        Value::String(s) => Some(vec![s.clone()]),
        _ => None,
    }
}

/// Docker's create body (`Config` fields at the top, `HostConfig`, `NetworkingConfig`) as the
/// engine's `RunOptions`. The engine's `--entrypoint` is one word, so a longer `Entrypoint`
/// keeps its first word there and puts the rest before `Cmd`: the same process arguments.
pub fn run_options(name: Option<String>, mut body: Value) -> ApiResult<RunOptions> {
    strip_nulls(&mut body);
    let text = |k: &str| {
        body.get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let image = text("Image").ok_or_else(|| ApiError::bad_request("config: Image is required"))?;
    let mut command = string_list(body.get("Cmd")).unwrap_or_default();
    let entrypoint = match string_list(body.get("Entrypoint")) {
        None => None,
        Some(words) if words.is_empty() => Some(String::new()),
        Some(mut words) => {
            let first = words.remove(0);
            words.extend(command);
            command = words;
            Some(first)
        }
    };
    let mut host: HostConfig = match body.get("HostConfig") {
        Some(h) => serde_json::from_value(h.clone())
            .map_err(|e| ApiError::bad_request(format!("invalid HostConfig: {e}")))?,
        None => HostConfig::default(),
    };
    // `Binds` (the CLI's `-v SRC:DST`) and `Config.Volumes` (`-v DST`, anonymous) become
    // mounts as `berth run -v` makes them; `HostConfig.Mounts` (`--mount`) come after them.
    let mut mounts = Vec::new();
    for bind in &host.binds {
        mounts.push(berth_engine::options::parse_volume(bind)?);
    }
    if let Some(anonymous) = body.get("Volumes").and_then(Value::as_object) {
        for target in anonymous.keys() {
            if !mounts.iter().any(|m| m.target == *target) {
                mounts.push(berth_engine::options::parse_volume(target)?);
            }
        }
    }
    mounts.append(&mut host.mounts);
    host.mounts = mounts;
    // Docker's clients say "default" for the engine's default network.
    if host.network_mode == "default" {
        host.network_mode.clear();
    }
    if host.log_config.r#type.is_empty() {
        host.log_config.r#type = "json-file".into();
    }
    let labels: BTreeMap<String, String> = body
        .get("Labels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default();
    let flag = |k: &str| body.get(k).and_then(Value::as_bool).unwrap_or(false);
    let networking = networking_options(&body, &mut host);
    Ok(RunOptions {
        name: name.filter(|n| !n.is_empty()),
        image,
        command,
        entrypoint,
        env: string_list(body.get("Env")).unwrap_or_default(),
        workdir: text("WorkingDir"),
        user: text("User"),
        hostname: text("Hostname"),
        labels,
        tty: flag("Tty"),
        interactive: flag("OpenStdin"),
        stop_signal: text("StopSignal"),
        stop_timeout: body.get("StopTimeout").and_then(Value::as_i64),
        healthcheck: match body.get("Healthcheck") {
            Some(h) => Some(
                serde_json::from_value(h.clone())
                    .map_err(|e| ApiError::bad_request(format!("invalid Healthcheck: {e}")))?,
            ),
            None => None,
        },
        host,
        networking,
        ..Default::default()
    })
}

/// Docker's `NetworkingConfig.EndpointsConfig`: the entry of `NetworkMode`'s network gives
/// its aliases, address and MAC; the other entries are further networks. Without a
/// `NetworkMode` the first entry becomes it (as the CLI's `--network` does).
pub(super) fn networking_options(body: &Value, host: &mut HostConfig) -> NetworkingOptions {
    let mut out = NetworkingOptions::default();
    let Some(endpoints) = body
        .get("NetworkingConfig")
        .and_then(|n| n.get("EndpointsConfig"))
        .and_then(Value::as_object)
    else {
        return out;
    };
    if host.network_mode.is_empty() {
        if let Some(first) = endpoints.keys().next() {
            host.network_mode = first.clone();
        }
    }
    for (name, endpoint) in endpoints {
        if *name != host.network_mode {
            out.extra_networks.push(name.clone());
            continue;
        }
        out.aliases = string_list(endpoint.get("Aliases")).unwrap_or_default();
        let ipam = |key: &str| {
            endpoint
                .get("IPAMConfig")
                .and_then(|c| c.get(key))
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        out.ip = ipam("IPv4Address");
        out.ip6 = ipam("IPv6Address");
        out.mac_address = endpoint
            .get("MacAddress")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string);
    }
    out
}
