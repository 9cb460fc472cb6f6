//! The container's process: Docker's merge of the image config with the flags, and the command line.

use super::*;

/// Docker's merge of the image's config with the user's flags into the container's `Config`.
pub fn merge_config(image: &ContainerConfig, opts: &RunOptions, id: &str) -> ContainerConfig {
    let mut env = image.env.clone();
    for entry in &opts.env {
        let key = entry.split('=').next().unwrap_or(entry);
        env.retain(|e| e.split('=').next() != Some(key));
        env.push(entry.clone());
    }
    let entrypoint = match &opts.entrypoint {
        Some(e) if e.is_empty() => None,
        Some(e) => Some(vec![e.clone()]),
        None => image.entrypoint.clone(),
    };
    let cmd = if !opts.command.is_empty() {
        Some(opts.command.clone())
    } else if opts.entrypoint.is_some() {
        None
    } else {
        image.cmd.clone()
    };
    let mut labels = image.labels.clone();
    labels.extend(opts.labels.clone());
    ContainerConfig {
        hostname: opts
            .hostname
            .clone()
            .unwrap_or_else(|| id.chars().take(12).collect()),
        domainname: String::new(),
        user: opts.user.clone().unwrap_or_else(|| image.user.clone()),
        attach_stdin: opts.interactive,
        attach_stdout: true,
        attach_stderr: true,
        exposed_ports: image.exposed_ports.clone(),
        tty: opts.tty,
        open_stdin: opts.interactive,
        stdin_once: opts.interactive,
        env,
        cmd,
        image: opts.image.clone(),
        volumes: image.volumes.clone(),
        working_dir: opts
            .workdir
            .clone()
            .unwrap_or_else(|| image.working_dir.clone()),
        entrypoint,
        labels,
        stop_signal: opts
            .stop_signal
            .clone()
            .or_else(|| image.stop_signal.clone()),
        stop_timeout: opts.stop_timeout,
        healthcheck: crate::health::merge(image.healthcheck.as_ref(), opts.healthcheck.as_ref()),
        shell: image.shell.clone(),
    }
}

/// The container's command line: Entrypoint followed by Cmd.
pub fn command_line(config: &ContainerConfig) -> Vec<String> {
    let mut args = config.entrypoint.clone().unwrap_or_default();
    args.extend(config.cmd.clone().unwrap_or_default());
    args
}

/// One name read with oci-spec's own serde names ("CAP_CHOWN", "RLIMIT_NOFILE").
fn named<T: serde::de::DeserializeOwned>(name: &str) -> Result<T> {
    serde_json::from_value(Value::String(name.to_string()))
        .map_err(|e| EngineError::encode("the OCI spec", e))
}

/// The spec's `process`: who runs what, where, with which capabilities and rlimits.
pub(super) fn process(
    config: &ContainerConfig,
    host: &HostConfig,
    ctx: &SpecContext,
    args: Vec<String>,
    env: Vec<String>,
) -> Result<oci_spec::runtime::Process> {
    use oci_spec::runtime::{
        Capability, LinuxCapabilitiesBuilder, PosixRlimit, PosixRlimitBuilder, ProcessBuilder,
        UserBuilder,
    };
    let caps = capabilities(host, ctx.host_cap_mask)
        .iter()
        .map(|c| named::<Capability>(c))
        .collect::<Result<std::collections::HashSet<_>>>()?;
    let mut rlimits: Vec<PosixRlimit> = Vec::new();
    if !host.ulimits.iter().any(|u| u.name == "nofile") {
        rlimits.push(
            PosixRlimitBuilder::default()
                .typ(oci_spec::runtime::PosixRlimitType::RlimitNofile)
                .soft(ctx.host_nofile.1)
                .hard(ctx.host_nofile.1)
                .build()?,
        );
    }
    for u in &host.ulimits {
        let v = |x: i64| if x < 0 { u64::MAX } else { x as u64 };
        rlimits.push(
            PosixRlimitBuilder::default()
                .typ(named::<oci_spec::runtime::PosixRlimitType>(&rlimit_name(
                    &u.name,
                ))?)
                .soft(v(u.soft))
                .hard(v(u.hard))
                .build()?,
        );
    }
    let mut capabilities = LinuxCapabilitiesBuilder::default()
        .bounding(caps.clone())
        .effective(caps.clone())
        .permitted(caps)
        .build()?;
    // The builder starts from runc's defaults: Docker sets no inheritable or ambient set.
    capabilities.set_inheritable(None);
    capabilities.set_ambient(None);
    let user = UserBuilder::default()
        .uid(ctx.user.uid)
        .gid(ctx.user.gid)
        .additional_gids(ctx.user.additional_gids.clone())
        .build()?;
    let cwd = if config.working_dir.is_empty() {
        "/".to_string()
    } else {
        config.working_dir.clone()
    };
    let mut process = ProcessBuilder::default()
        .terminal(config.tty)
        .user(user)
        .args(args)
        .env(env)
        .cwd(cwd)
        .capabilities(capabilities)
        .rlimits(rlimits)
        .no_new_privileges(crate::security_opts::no_new_privileges(&host.security_opt))
        .build()?;
    // Left unset, as the JSON document left them out (the builder would keep runc's defaults).
    process.set_console_size(None);
    process.set_apparmor_profile(None);
    process.set_selinux_label(None);
    Ok(process)
}
