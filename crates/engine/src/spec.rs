//! Turns an image's config plus `run` flags into the container's final Docker `Config` and its
//! OCI runtime spec. Pure: everything it needs from the world (rootfs path, resolved user,
//! host rlimits, namespace paths of other containers, seccomp profile) comes in [`SpecContext`].
use crate::error::{EngineError, Result};
use crate::options::{ContainerConfig, HostConfig, RunOptions};
use crate::users::ResolvedUser;
use oci_spec::runtime::Spec;
use serde_json::{json, Value};
use std::path::PathBuf;

mod devices;
mod mounts;
mod namespaces;
mod process;
mod resources;
mod security;
pub use devices::host_devices;
pub use process::{command_line, merge_config};
pub use resources::resource_limits;
use resources::rlimit_name;
pub use security::{
    capabilities, caps_in_mask, ALL_CAPS, DEFAULT_CAPS, MASKED_PATHS, READONLY_PATHS,
};

/// Docker's default PATH.
pub use berth_common::process::DEFAULT_PATH;

/// What the spec needs from outside the flags.
#[derive(Debug, Clone, Default)]
pub struct SpecContext {
    pub id: String,
    /// The container's merged overlay directory.
    pub rootfs: PathBuf,
    /// `containers/<id>/` (hostname, hosts, resolv.conf live here).
    pub container_dir: PathBuf,
    /// `<root>/volumes` for named volumes.
    pub volumes_dir: PathBuf,
    pub user: ResolvedUser,
    /// `linux.cgroupsPath`.
    pub cgroups_path: String,
    /// Docker's default seccomp profile in OCI form, when available.
    pub seccomp: Option<Value>,
    /// The host's RLIMIT_NOFILE (soft, hard): the default for the container since this host
    /// cannot raise limits.
    pub host_nofile: (u64, u64),
    /// `/proc/<pid>/ns/<kind>` paths of other containers for `--pid/--ipc container:X`.
    pub join_pid_ns: Option<String>,
    pub join_ipc_ns: Option<String>,
    pub join_net_ns: Option<String>,
    /// A static init binary to bind-mount at `/sbin/docker-init` for `--init`.
    pub init_binary: Option<PathBuf>,
    /// The caller's bounding capability set (bit n = capability n).
    pub host_cap_mask: u64,
    /// The host's device nodes in OCI `linux.devices` form, given to `--privileged` containers
    /// (see [`host_devices`]).
    pub host_devices: Vec<Value>,
}

fn mode_is(mode: &str, what: &str) -> bool {
    mode == what
}

/// Builds the OCI spec for a container whose final `Config` is `config`.
pub fn build_spec(config: &ContainerConfig, host: &HostConfig, ctx: &SpecContext) -> Result<Spec> {
    let args = command_line(config);
    if args.is_empty() {
        return Err(EngineError::Command {
            message: "No command specified".into(),
            exit_code: 125,
        });
    }
    let mut env = config.env.clone();
    let has = |env: &[String], key: &str| env.iter().any(|e| e.split('=').next() == Some(key));
    if !has(&env, "PATH") {
        env.insert(0, format!("PATH={DEFAULT_PATH}"));
    }
    if !has(&env, "HOSTNAME") && !mode_is(&host.uts_mode, "host") {
        env.push(format!("HOSTNAME={}", config.hostname));
    }
    if config.tty && !has(&env, "TERM") {
        env.push("TERM=xterm".into());
    }
    if !has(&env, "HOME") {
        env.push(format!(
            "HOME={}",
            ctx.user
                .home
                .clone()
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "/".into())
        ));
    }
    let process = process::process(config, host, ctx, args, env)?;
    let mounts = mounts::mounts(host, ctx)?;
    let namespaces = namespaces::namespaces(host, ctx)?;

    let mut resources = json!({
        "devices": [
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 5, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 7, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 8, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 9, "access": "rwm"},
            {"allow": true, "type": "c", "major": 5, "minor": 0, "access": "rwm"},
            {"allow": true, "type": "c", "major": 5, "minor": 1, "access": "rwm"},
            {"allow": true, "type": "c", "major": 5, "minor": 2, "access": "rwm"},
            {"allow": true, "type": "c", "major": 136, "access": "rwm"},
            {"allow": true, "type": "c", "major": 10, "minor": 200, "access": "rwm"},
            {"allow": true, "type": "c", "access": "m"},
            {"allow": true, "type": "b", "access": "m"}
        ]
    });
    let mut devices = Vec::new();
    if host.privileged {
        resources["devices"] = json!([{"allow": true, "access": "rwm"}]);
        devices = ctx.host_devices.clone();
    }
    let limits = serde_json::to_value(resource_limits(host)?)
        .map_err(|e| EngineError::encode("the resource limits", e))?;
    if let (Value::Object(limits), Value::Object(resources)) = (limits, &mut resources) {
        resources.extend(limits);
    }

    let mut linux = json!({
        "namespaces": namespaces,
        "resources": resources,
        "cgroupsPath": ctx.cgroups_path,
    });
    if !devices.is_empty() {
        linux["devices"] = Value::Array(devices);
    }
    if !host.privileged {
        linux["maskedPaths"] = json!(MASKED_PATHS);
        linux["readonlyPaths"] = json!(READONLY_PATHS);
        let unconfined = host
            .security_opt
            .iter()
            .any(|o| o == "seccomp=unconfined" || o == "seccomp:unconfined");
        if let (Some(profile), false) = (&ctx.seccomp, unconfined) {
            linux["seccomp"] = profile.clone();
        }
    }
    let mut spec = json!({
        "ociVersion": "1.0.2",
        "process": process,
        "root": {"path": ctx.rootfs.to_string_lossy(), "readonly": host.readonly_rootfs},
        "mounts": mounts,
        "linux": linux,
    });
    if !mode_is(&host.uts_mode, "host") {
        spec["hostname"] = json!(config.hostname);
    }
    serde_json::from_value(spec).map_err(|e| EngineError::encode("the OCI spec", e))
}

/// The brief's entry point: image config + flags → (final Config, OCI spec).
pub fn from_image_and_flags(
    image: &ContainerConfig,
    opts: &RunOptions,
    ctx: &SpecContext,
) -> Result<(ContainerConfig, Spec)> {
    let config = merge_config(image, opts, &ctx.id);
    let spec = build_spec(&config, &opts.host, ctx)?;
    Ok((config, spec))
}

#[cfg(test)]
mod tests;
