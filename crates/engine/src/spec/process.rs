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
