//! Turns an image's config plus `run` flags into the container's final Docker `Config` and its
//! OCI runtime spec. Pure: everything it needs from the world (rootfs path, resolved user,
//! host rlimits, namespace paths of other containers, seccomp profile) comes in [`SpecContext`].
use crate::error::{EngineError, Result};
use crate::options::{ContainerConfig, HostConfig, RunOptions};
use crate::users::ResolvedUser;
use oci_spec::runtime::{LinuxBuilder, RootBuilder, Spec, SpecBuilder};
use serde_json::Value;
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
    pub seccomp: Option<oci_spec::runtime::LinuxSeccomp>,
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
    pub host_devices: Vec<oci_spec::runtime::LinuxDevice>,
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

    let mut resources = resource_limits(host)?;
    resources.set_devices(Some(devices::device_rules(host.privileged)?));
    let mut linux = LinuxBuilder::default()
        .namespaces(namespaces)
        .resources(resources)
        .cgroups_path(ctx.cgroups_path.clone())
        .build()?;
    // The builder starts from runc's defaults; this spec sets only what Docker sets.
    linux.set_uid_mappings(None);
    linux.set_gid_mappings(None);
    linux.set_sysctl(None);
    linux.set_rootfs_propagation(None);
    linux.set_mount_label(None);
    linux.set_masked_paths(None);
    linux.set_readonly_paths(None);
    linux.set_devices(None);
    if host.privileged && !ctx.host_devices.is_empty() {
        linux.set_devices(Some(ctx.host_devices.clone()));
    }
    if !host.privileged {
        let owned = |paths: &[&str]| paths.iter().map(|p| p.to_string()).collect::<Vec<_>>();
        linux.set_masked_paths(Some(owned(MASKED_PATHS)));
        linux.set_readonly_paths(Some(owned(READONLY_PATHS)));
        let unconfined = host
            .security_opt
            .iter()
            .any(|o| o == "seccomp=unconfined" || o == "seccomp:unconfined");
        if let (Some(profile), false) = (&ctx.seccomp, unconfined) {
            linux.set_seccomp(Some(profile.clone()));
        }
    }
    let root = RootBuilder::default()
        .path(&ctx.rootfs)
        .readonly(host.readonly_rootfs)
        .build()?;
    let mut spec = SpecBuilder::default()
        .version("1.0.2")
        .process(process)
        .root(root)
        .mounts(mounts)
        .linux(linux)
        .build()?;
    spec.set_annotations(None);
    spec.set_hostname((!mode_is(&host.uts_mode, "host")).then(|| config.hostname.clone()));
    Ok(spec)
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
