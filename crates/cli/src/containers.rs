//! `berth` verbs for containers: flag parsing and rendering only; the work is in berth-engine.
//! Exit codes follow Docker: `run`/`create`/`exec` return the container's (or command's) status,
//! 125 for engine errors, 126/127 when the command cannot be run / is not found; the other verbs
//! exit 1 when they fail.
use anyhow::Context;
use berth_engine::error::EngineError;
use berth_engine::options::{self, RunOptions};
use berth_engine::{AttachOptions, Engine};
use clap::{ArgAction, Args, Subcommand};
use std::io::Write;
use std::path::{Path, PathBuf};

#[path = "hello/mod.rs"]
mod hello;

/// Flags shared by `run` and `create` (Docker's names).
#[derive(Args, Debug, Clone)]
pub struct CreateFlags {
    /// Print usage.
    #[arg(long, action = ArgAction::Help)]
    help: Option<bool>,
    /// Attach to STDIN, STDOUT or STDERR.
    #[arg(short = 'a', long = "attach")]
    attach: Vec<String>,
    /// Run container in background and print container ID.
    #[arg(short = 'd', long)]
    detach: bool,
    /// Keep STDIN open even if not attached.
    #[arg(short = 'i', long)]
    interactive: bool,
    /// Allocate a pseudo-TTY.
    #[arg(short = 't', long)]
    tty: bool,
    /// Automatically remove the container and its resources when it exits.
    #[arg(long)]
    rm: bool,
    /// Assign a name to the container.
    #[arg(long)]
    name: Option<String>,
    /// Set environment variables.
    #[arg(short = 'e', long = "env")]
    env: Vec<String>,
    /// Read in a file of environment variables.
    #[arg(long = "env-file")]
    env_file: Vec<PathBuf>,
    /// Working directory inside the container.
    #[arg(short = 'w', long = "workdir")]
    workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>]).
    #[arg(short = 'u', long)]
    user: Option<String>,
    /// Container host name.
    #[arg(short = 'h', long)]
    hostname: Option<String>,
    /// Overwrite the default ENTRYPOINT of the image.
    #[arg(long)]
    entrypoint: Option<String>,
    /// Bind mount a volume.
    #[arg(short = 'v', long = "volume")]
    volume: Vec<String>,
    /// Mount volumes from the specified container(s).
    #[arg(long = "volumes-from")]
    volumes_from: Vec<String>,
    /// Attach a filesystem mount to the container.
    #[arg(long)]
    mount: Vec<String>,
    /// Mount a tmpfs directory.
    #[arg(long)]
    tmpfs: Vec<String>,
    /// Mount the container's root filesystem as read only.
    #[arg(long = "read-only")]
    read_only: bool,
    /// Set meta data on a container.
    #[arg(short = 'l', long = "label")]
    label: Vec<String>,
    /// Give extended privileges to this container.
    #[arg(long)]
    privileged: bool,
    /// Add Linux capabilities.
    #[arg(long = "cap-add")]
    cap_add: Vec<String>,
    /// Drop Linux capabilities.
    #[arg(long = "cap-drop")]
    cap_drop: Vec<String>,
    /// Security Options.
    #[arg(long = "security-opt")]
    security_opt: Vec<String>,
    /// Ulimit options.
    #[arg(long)]
    ulimit: Vec<String>,
    /// Size of /dev/shm.
    #[arg(long = "shm-size")]
    shm_size: Option<String>,
    /// Signal to stop the container.
    #[arg(long = "stop-signal")]
    stop_signal: Option<String>,
    /// Timeout (in seconds) to stop a container.
    #[arg(long = "stop-timeout")]
    stop_timeout: Option<i64>,
    /// Restart policy to apply when a container exits.
    #[arg(long, default_value = "no")]
    restart: String,
    /// Memory limit.
    #[arg(short = 'm', long)]
    memory: Option<String>,
    /// Memory soft limit.
    #[arg(long = "memory-reservation")]
    memory_reservation: Option<String>,
    /// Swap limit equal to memory plus swap: '-1' to enable unlimited swap.
    #[arg(long = "memory-swap", allow_hyphen_values = true)]
    memory_swap: Option<String>,
    /// Number of CPUs.
    #[arg(long)]
    cpus: Option<String>,
    /// CPU shares (relative weight).
    #[arg(short = 'c', long = "cpu-shares")]
    cpu_shares: Option<i64>,
    /// Limit CPU CFS (Completely Fair Scheduler) quota.
    #[arg(long = "cpu-quota")]
    cpu_quota: Option<i64>,
    /// Limit CPU CFS (Completely Fair Scheduler) period.
    #[arg(long = "cpu-period")]
    cpu_period: Option<i64>,
    /// CPUs in which to allow execution (0-3, 0,1).
    #[arg(long = "cpuset-cpus")]
    cpuset_cpus: Option<String>,
    /// Tune container pids limit (set -1 for unlimited).
    #[arg(long = "pids-limit", allow_hyphen_values = true)]
    pids_limit: Option<i64>,
    /// Disable OOM Killer.
    #[arg(long = "oom-kill-disable")]
    oom_kill_disable: bool,
    /// Connect a container to a network: bridge (default), a user network, none, host or
    /// container:<name|id>; repeat for more networks. BERTH_DEFAULT_NETWORK changes the default.
    #[arg(long = "network", alias = "net")]
    network: Vec<String>,
    /// Add network-scoped alias for the container.
    #[arg(long = "network-alias", alias = "net-alias")]
    network_alias: Vec<String>,
    /// IPv4 address (e.g., 172.30.100.104).
    #[arg(long = "ip")]
    ip: Option<String>,
    /// IPv6 address (e.g., 2001:db8::33), on a user network with IPv6.
    #[arg(long = "ip6")]
    ip6: Option<String>,
    /// Container MAC address (e.g., 92:d0:c6:0a:29:33).
    #[arg(long = "mac-address")]
    mac_address: Option<String>,
    /// Set custom DNS servers.
    #[arg(long = "dns")]
    dns: Vec<String>,
    /// Set custom DNS search domains.
    #[arg(long = "dns-search")]
    dns_search: Vec<String>,
    /// Set DNS options.
    #[arg(long = "dns-option", alias = "dns-opt")]
    dns_option: Vec<String>,
    /// Add a custom host-to-IP mapping (host:ip).
    #[arg(long = "add-host")]
    add_host: Vec<String>,
    /// Publish a container's port(s) to the host.
    #[arg(short = 'p', long = "publish")]
    publish: Vec<String>,
    /// Publish all exposed ports to random ports.
    #[arg(short = 'P', long = "publish-all")]
    publish_all: bool,
    /// PID namespace to use.
    #[arg(long)]
    pid: Option<String>,
    /// IPC mode to use.
    #[arg(long)]
    ipc: Option<String>,
    /// UTS namespace to use.
    #[arg(long)]
    uts: Option<String>,
    /// User namespace to use.
    #[arg(long)]
    userns: Option<String>,
    /// Proxy received signals to the process.
    #[arg(long = "sig-proxy", action = ArgAction::Set, num_args = 0..=1, default_value = "true", default_missing_value = "true")]
    sig_proxy: bool,
    /// Override the key sequence for detaching a container.
    #[arg(long = "detach-keys")]
    detach_keys: Option<String>,
    /// Logging driver for the container (json-file, none).
    #[arg(long = "log-driver")]
    log_driver: Option<String>,
    /// Log driver options (max-size=…, max-file=…, compress=…).
    #[arg(long = "log-opt")]
    log_opt: Vec<String>,
    /// Command to run to check health.
    #[arg(long = "health-cmd")]
    health_cmd: Option<String>,
    /// Time between running the check (ms|s|m|h) (default 0s).
    #[arg(long = "health-interval")]
    health_interval: Option<String>,
    /// Maximum time to allow one check to run (ms|s|m|h) (default 0s).
    #[arg(long = "health-timeout")]
    health_timeout: Option<String>,
    /// Consecutive failures needed to report unhealthy.
    #[arg(long = "health-retries", allow_hyphen_values = true)]
    health_retries: Option<i64>,
    /// Start period for the container to initialize before starting health-retries countdown
    /// (ms|s|m|h) (default 0s).
    #[arg(long = "health-start-period")]
    health_start_period: Option<String>,
    /// Time between running the check during the start period (ms|s|m|h) (default 0s).
    #[arg(long = "health-start-interval")]
    health_start_interval: Option<String>,
    /// Disable any container-specified HEALTHCHECK.
    #[arg(long = "no-healthcheck")]
    no_healthcheck: bool,
    /// Run an init inside the container that forwards signals and reaps processes.
    #[arg(long)]
    init: bool,
    /// Run on this root filesystem directory instead of an image (Podman's flag).
    #[arg(long)]
    rootfs: bool,
    /// Pull image before running ("always", "missing", "never").
    #[arg(long, default_value = "missing")]
    pull: String,
    /// Set platform if server is multi-platform capable.
    #[arg(long)]
    platform: Option<String>,
    /// Image (or, with --rootfs, a directory).
    image: String,
    /// Command and arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

impl CreateFlags {
    fn to_options(&self) -> Result<RunOptions, EngineError> {
        let mut env = Vec::new();
        for f in &self.env_file {
            env.extend(options::read_env_file(f)?);
        }
        for e in &self.env {
            berth_engine::run_checks::env_flag(e)?;
        }
        env.extend(self.env.iter().filter_map(|e| options::resolve_env_flag(e)));
        let mut host = berth_engine::HostConfig {
            auto_remove: self.rm,
            privileged: self.privileged,
            readonly_rootfs: self.read_only,
            cap_add: self.cap_add.clone(),
            cap_drop: self.cap_drop.clone(),
            security_opt: self.security_opt.clone(),
            network_mode: self
                .network
                .first()
                .cloned()
                .unwrap_or_else(berth_engine::network::default_mode),
            dns: self.dns.clone(),
            dns_search: self.dns_search.clone(),
            dns_options: self.dns_option.clone(),
            extra_hosts: self.add_host.clone(),
            publish_all_ports: self.publish_all,
            pid_mode: self.pid.clone().unwrap_or_default(),
            ipc_mode: self.ipc.clone().unwrap_or_else(|| "private".into()),
            uts_mode: self.uts.clone().unwrap_or_default(),
            userns_mode: self.userns.clone().unwrap_or_default(),
            restart_policy: options::parse_restart(&self.restart)?,
            cpu_shares: self.cpu_shares.unwrap_or(0),
            cpu_quota: self.cpu_quota.unwrap_or(0),
            cpu_period: self.cpu_period.unwrap_or(0),
            cpuset_cpus: self.cpuset_cpus.clone().unwrap_or_default(),
            pids_limit: self.pids_limit,
            oom_kill_disable: self.oom_kill_disable.then_some(true),
            init: self.init.then_some(true),
            volumes_from: self.volumes_from.clone(),
            ..Default::default()
        };
        if self.rm && host.restart_policy.name != "no" {
            return Err(EngineError::InvalidFlag {
                flag: "--restart".into(),
                value: self.restart.clone(),
                reason: "conflicting options: --restart and --rm".into(),
            });
        }
        if let Some(driver) = &self.log_driver {
            host.log_config.r#type = driver.clone();
        }
        for opt in &self.log_opt {
            let (k, v) = opt
                .split_once('=')
                .ok_or_else(|| EngineError::InvalidFlag {
                    flag: "--log-opt".into(),
                    value: opt.clone(),
                    reason: "expected key=value".into(),
                })?;
            host.log_config.config.insert(k.to_string(), v.to_string());
        }
        if let Some(m) = &self.memory {
            host.memory = options::parse_bytes(m)?;
        }
        if let Some(m) = &self.memory_reservation {
            host.memory_reservation = options::parse_bytes(m)?;
        }
        if let Some(m) = &self.memory_swap {
            host.memory_swap = if m == "-1" {
                -1
            } else {
                options::parse_bytes(m)?
            };
        }
        if let Some(s) = &self.shm_size {
            host.shm_size = options::parse_bytes(s)?;
        }
        if let Some(c) = &self.cpus {
            host.nano_cpus = options::parse_cpus(c)?;
        }
        for u in &self.ulimit {
            host.ulimits.push(options::parse_ulimit(u)?);
        }
        for v in &self.volume {
            berth_engine::run_checks::volume_flag(v)?;
            host.binds.push(v.clone());
            host.mounts.push(options::parse_volume(v)?);
        }
        for m in &self.mount {
            host.mounts.push(options::parse_mount(m)?);
        }
        for t in &self.tmpfs {
            let (target, opts) = t.split_once(':').unwrap_or((t.as_str(), ""));
            host.tmpfs.insert(target.to_string(), opts.to_string());
        }
        host.port_bindings = berth_engine::network::publish_to_port_bindings(&self.publish)?;
        let labels = self.label.iter().map(|l| options::parse_label(l)).collect();
        let healthcheck = berth_engine::health::HealthFlags {
            cmd: self.health_cmd.clone(),
            interval: self.health_interval.clone(),
            timeout: self.health_timeout.clone(),
            start_period: self.health_start_period.clone(),
            start_interval: self.health_start_interval.clone(),
            retries: self.health_retries,
            no_healthcheck: self.no_healthcheck,
        }
        .to_config()?;
        let (image, rootfs) = if self.rootfs {
            (self.image.clone(), Some(PathBuf::from(&self.image)))
        } else {
            (self.image.clone(), None)
        };
        Ok(RunOptions {
            name: self.name.clone(),
            image,
            command: self.command.clone(),
            entrypoint: self.entrypoint.clone(),
            env,
            workdir: self.workdir.clone(),
            user: self.user.clone(),
            hostname: self.hostname.clone(),
            labels,
            tty: self.tty,
            interactive: self.interactive,
            stop_signal: self.stop_signal.clone(),
            stop_timeout: self.stop_timeout,
            host,
            rootfs,
            networking: berth_engine::options::NetworkingOptions {
                extra_networks: self.network.iter().skip(1).cloned().collect(),
                aliases: self.network_alias.clone(),
                ip: self.ip.clone(),
                ip6: self.ip6.clone(),
                mac_address: self.mac_address.clone(),
            },
            healthcheck,
        })
    }

    fn attach_options(&self) -> AttachOptions {
        let want = |s: &str| {
            self.attach.is_empty() || self.attach.iter().any(|a| a.eq_ignore_ascii_case(s))
        };
        AttachOptions {
            stdin: self.interactive && (self.attach.is_empty() || want("stdin")),
            stdout: want("stdout"),
            stderr: want("stderr"),
            tty: self.tty,
            sig_proxy: self.sig_proxy && !self.tty,
            detach_keys: parse_detach_keys(self.detach_keys.as_deref()).unwrap_or_default(),
        }
    }
}

#[derive(Args, Debug)]
pub struct ExecFlags {
    /// Detached mode: run command in the background.
    #[arg(short = 'd', long)]
    detach: bool,
    /// Keep STDIN open even if not attached.
    #[arg(short = 'i', long)]
    interactive: bool,
    /// Allocate a pseudo-TTY.
    #[arg(short = 't', long)]
    tty: bool,
    /// Set environment variables.
    #[arg(short = 'e', long = "env")]
    env: Vec<String>,
    /// Read in a file of environment variables.
    #[arg(long = "env-file")]
    env_file: Vec<PathBuf>,
    /// Username or UID (format: <name|uid>[:<group|gid>]).
    #[arg(short = 'u', long)]
    user: Option<String>,
    /// Working directory inside the container.
    #[arg(short = 'w', long = "workdir")]
    workdir: Option<String>,
    /// Give extended privileges to the command.
    #[arg(long)]
    privileged: bool,
    /// Override the key sequence for detaching a container.
    #[arg(long = "detach-keys")]
    detach_keys: Option<String>,
    container: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    command: Vec<String>,
}

#[derive(Subcommand, Debug)]
pub enum ContainerManagement {
    /// Display detailed information on one or more containers.
    Inspect {
        /// Format output using a custom template.
        #[arg(short = 'f', long)]
        format: Option<String>,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// List containers (same as `berth ps`).
    #[command(alias = "list")]
    Ls(PsFlags),
    /// Remove all stopped containers
    Prune {
        /// Provide filter values (e.g. "until=<timestamp>")
        #[arg(long)]
        filter: Vec<String>,
        /// Do not prompt for confirmation
        #[arg(short = 'f', long)]
        force: bool,
    },
}

#[derive(Args, Debug)]
pub struct PsFlags {
    /// Show all containers (default shows just running).
    #[arg(short = 'a', long)]
    all: bool,
    /// Only display container IDs.
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Show n last created containers (includes all states).
    #[arg(short = 'n', long = "last")]
    last: Option<usize>,
    /// Show the latest created container (includes all states).
    #[arg(short = 'l', long)]
    latest: bool,
    /// Don't truncate output.
    #[arg(long = "no-trunc")]
    no_trunc: bool,
    /// Filter output based on conditions provided.
    #[arg(short = 'f', long = "filter")]
    filter: Vec<String>,
    /// Format output using a custom template ('json' or a Go template).
    #[arg(long)]
    format: Option<String>,
    /// Display total file sizes.
    #[arg(short = 's', long)]
    size: bool,
}

#[derive(Subcommand, Debug)]
pub enum ContainerCommand {
    /// Create and run a new container from an image.
    #[command(disable_help_flag = true)]
    Run(Box<CreateFlags>),
    /// Create a new container.
    #[command(disable_help_flag = true)]
    Create(Box<CreateFlags>),
    /// Start one or more stopped containers.
    Start {
        /// Attach STDOUT/STDERR and forward signals.
        #[arg(short = 'a', long)]
        attach: bool,
        /// Attach container's STDIN.
        #[arg(short = 'i', long)]
        interactive: bool,
        /// Override the key sequence for detaching a container.
        #[arg(long = "detach-keys")]
        detach_keys: Option<String>,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// List containers.
    Ps(PsFlags),
    /// Fetch the logs of a container.
    Logs {
        /// Follow log output.
        #[arg(short = 'f', long)]
        follow: bool,
        /// Number of lines to show from the end of the logs ("all" for all).
        #[arg(short = 'n', long, default_value = "all")]
        tail: String,
        /// Show logs since timestamp or relative (e.g. 42m).
        #[arg(long)]
        since: Option<String>,
        /// Show logs before a timestamp or relative (e.g. 42m).
        #[arg(long)]
        until: Option<String>,
        /// Show timestamps.
        #[arg(short = 't', long)]
        timestamps: bool,
        container: String,
    },
    /// Stop one or more running containers.
    Stop {
        /// Seconds to wait before killing the container.
        #[arg(short = 't', long = "time", alias = "timeout")]
        time: Option<i64>,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Kill one or more running containers.
    Kill {
        /// Signal to send to the container.
        #[arg(short = 's', long, default_value = "KILL")]
        signal: String,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Restart one or more containers.
    Restart {
        /// Seconds to wait before killing the container.
        #[arg(short = 't', long = "time", alias = "timeout")]
        time: Option<i64>,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Remove one or more containers.
    Rm {
        /// Force the removal of a running container (uses SIGKILL).
        #[arg(short = 'f', long)]
        force: bool,
        /// Remove anonymous volumes associated with the container.
        #[arg(short = 'v', long)]
        volumes: bool,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Block until one or more containers stop, then print their exit codes.
    Wait {
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Execute a command in a running container.
    Exec(ExecFlags),
    /// Attach local standard input, output, and error streams to a running container.
    Attach {
        /// Do not attach STDIN.
        #[arg(long = "no-stdin")]
        no_stdin: bool,
        /// Proxy all received signals to the process.
        #[arg(long = "sig-proxy", action = ArgAction::Set, num_args = 0..=1, default_value = "true", default_missing_value = "true")]
        sig_proxy: bool,
        /// Override the key sequence for detaching a container.
        #[arg(long = "detach-keys")]
        detach_keys: Option<String>,
        container: String,
    },
    /// Pause all processes within one or more containers.
    Pause {
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Unpause all processes within one or more containers.
    Unpause {
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Rename a container.
    Rename { container: String, new_name: String },
    /// List port mappings for the container.
    Port {
        container: String,
        /// PRIVATE_PORT[/PROTO]
        port: Option<String>,
    },
    /// Display the running processes of a container.
    Top {
        container: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
    /// Display a live stream of container(s) resource usage statistics.
    Stats {
        /// Disable streaming stats and only pull the first result.
        #[arg(long = "no-stream")]
        no_stream: bool,
        /// Show all containers (default shows just running).
        #[arg(short = 'a', long)]
        all: bool,
        /// Format output using a custom template.
        #[arg(long)]
        format: Option<String>,
        containers: Vec<String>,
    },
    /// Create a new image from a container's changes.
    Commit {
        /// Author (e.g., "John Hannibal Smith <hannibal@a-team.com>").
        #[arg(short = 'a', long)]
        author: Option<String>,
        /// Apply Dockerfile instruction to the created image.
        #[arg(short = 'c', long = "change")]
        change: Vec<String>,
        /// Commit message.
        #[arg(short = 'm', long)]
        message: Option<String>,
        /// Pause container during commit.
        #[arg(short = 'p', long, action = ArgAction::Set, num_args = 0..=1, default_value = "true", default_missing_value = "true")]
        pause: bool,
        container: String,
        repository: Option<String>,
    },
    /// Export a container's filesystem as a tar archive.
    Export {
        /// Write to a file, instead of STDOUT.
        #[arg(short = 'o', long)]
        output: Option<PathBuf>,
        container: String,
    },
    /// Copy files/folders between a container and the local filesystem.
    Cp {
        /// Archive mode (copy all uid/gid information).
        #[arg(short = 'a', long)]
        archive: bool,
        /// Always follow symbol link in SRC_PATH.
        #[arg(short = 'L', long = "follow-link")]
        follow_link: bool,
        src: String,
        dst: String,
    },
    /// Show the namespaces of the host and of running containers, with their inodes and sharing.
    Ns { containers: Vec<String> },
    /// Manage containers (`berth container inspect|ls`).
    Container {
        #[command(subcommand)]
        command: ContainerManagement,
    },
}

/// Runs one verb; returns the process exit code (Docker's: 125 for engine errors).
pub fn run(root: &Path, command: ContainerCommand) -> anyhow::Result<i32> {
    let engine = Engine::open(root);
    match command {
        ContainerCommand::Run(flags) => Ok(run_or_create(&engine, &flags, true)),
        ContainerCommand::Create(flags) => Ok(run_or_create(&engine, &flags, false)),
        ContainerCommand::Start {
            attach,
            interactive,
            detach_keys,
            containers,
        } => {
            let keys = match parse_detach_keys(detach_keys.as_deref()) {
                Ok(k) => k,
                Err(e) => return Ok(fail(e)),
            };
            Ok(start(&engine, attach, interactive, keys, &containers))
        }
        ContainerCommand::Ps(flags) => ps(&engine, &flags),
        ContainerCommand::Logs {
            follow,
            tail,
            since,
            until,
            timestamps,
            container,
        } => {
            let record = match engine.lookup(&container) {
                Ok(r) => r,
                Err(e) => return Ok(fail(e)),
            };
            let opts = berth_engine::logs::LogOptions {
                follow,
                tail: if tail == "all" {
                    None
                } else {
                    Some(tail.parse().context("--tail expects a number or \"all\"")?)
                },
                since: since
                    .as_deref()
                    .map(berth_engine::logs::parse_since)
                    .transpose()?,
                until: until
                    .as_deref()
                    .map(berth_engine::logs::parse_since)
                    .transpose()?,
                timestamps,
            };
            let (mut out, mut err) = (std::io::stdout(), std::io::stderr());
            let id = record.id.clone();
            let still_running = || {
                engine
                    .store
                    .load(&id)
                    .map(|r| r.log_may_grow())
                    .unwrap_or(false)
            };
            match berth_engine::logs::print_container_logs(
                &engine.store,
                &record,
                &opts,
                &mut out,
                &mut err,
                still_running,
            ) {
                Ok(()) => Ok(0),
                Err(e) => Ok(fail(e)),
            }
        }
        ContainerCommand::Stop { time, containers } => {
            Ok(each(&engine, &containers, |e, id| e.stop(id, time)))
        }
        ContainerCommand::Kill { signal, containers } => {
            let sig = match berth_engine::sys::parse_signal(&signal) {
                Ok(s) => s,
                Err(e) => return Ok(fail(e)),
            };
            Ok(each(&engine, &containers, |e, id| e.kill(id, sig)))
        }
        ContainerCommand::Restart { time, containers } => {
            Ok(each(&engine, &containers, |e, id| e.restart(id, time)))
        }
        ContainerCommand::Rm {
            force,
            volumes,
            containers,
        } => {
            let mut code = 0;
            for c in &containers {
                let removed = match engine.store.resolve(c) {
                    Ok(id) => engine.remove(&id, force, volumes),
                    // A container a killed `create` left without its record: `rm -f` takes it.
                    Err(EngineError::NoSuchContainer(_)) if force => {
                        match engine.remove_leftover(c) {
                            Ok(true) => Ok(()),
                            Ok(false) => Err(EngineError::NoSuchContainer(c.clone())),
                            Err(e) => Err(e),
                        }
                    }
                    Err(e) => Err(e),
                };
                match removed {
                    Ok(()) => println!("{c}"),
                    Err(e) => code = fail(e),
                }
            }
            Ok(code)
        }
        ContainerCommand::Pause { containers } => {
            Ok(each(&engine, &containers, |e, id| e.pause(id)))
        }
        ContainerCommand::Unpause { containers } => {
            Ok(each(&engine, &containers, |e, id| e.unpause(id)))
        }
        ContainerCommand::Wait { containers } => {
            let mut code = 0;
            for c in &containers {
                match engine.store.resolve(c).and_then(|id| engine.wait(&id)) {
                    Ok(status) => println!("{status}"),
                    Err(e) => code = fail(e),
                }
            }
            Ok(code)
        }
        ContainerCommand::Exec(flags) => Ok(exec(&engine, &flags)),
        ContainerCommand::Attach {
            no_stdin,
            sig_proxy,
            detach_keys,
            container,
        } => {
            let record = match engine.lookup(&container) {
                Ok(r) => r,
                Err(e) => return Ok(fail(e)),
            };
            let detach_keys = match parse_detach_keys(detach_keys.as_deref()) {
                Ok(k) => k,
                Err(e) => return Ok(fail(e)),
            };
            let opts = AttachOptions {
                stdin: !no_stdin && record.config.open_stdin,
                stdout: true,
                stderr: true,
                tty: record.config.tty,
                sig_proxy: sig_proxy && !record.config.tty,
                detach_keys,
            };
            match engine.attach(&record.id, &opts) {
                Ok(code) => Ok(code),
                Err(e) => Ok(fail(e)),
            }
        }
        ContainerCommand::Rename {
            container,
            new_name,
        } => Ok(
            match engine
                .store
                .resolve(&container)
                .and_then(|id| engine.store.rename(&id, &new_name))
            {
                Ok(()) => 0,
                Err(e) => fail(e),
            },
        ),
        // Like `docker port`: the ports actually published, `80/tcp -> 0.0.0.0:8080`.
        ContainerCommand::Port { container, port } => match engine.lookup(&container) {
            Ok(record) => {
                let bindings = berth_engine::network::published(engine.root(), &record.id);
                let wanted = port.map(|p| {
                    if p.contains('/') {
                        p
                    } else {
                        format!("{p}/tcp")
                    }
                });
                let mut shown = 0;
                for b in &bindings {
                    let key = format!("{}/{}", b.container_port, b.protocol.as_str());
                    let addr = format!(
                        "{}:{}",
                        b.host_ip.unwrap_or(std::net::Ipv4Addr::UNSPECIFIED),
                        b.host_port
                    );
                    match &wanted {
                        Some(w) if *w != key => {}
                        Some(_) => {
                            println!("{addr}");
                            shown += 1;
                        }
                        None => {
                            println!("{key} -> {addr}");
                            shown += 1;
                        }
                    }
                }
                match wanted {
                    Some(w) if shown == 0 => {
                        eprintln!("Error: No public port '{w}' published for {container}");
                        Ok(1)
                    }
                    _ => Ok(0),
                }
            }
            Err(e) => Ok(fail(e)),
        },
        ContainerCommand::Top { container, ps_args } => match engine.lookup(&container) {
            Ok(record) => top(&record, &ps_args),
            Err(e) => Ok(fail(e)),
        },
        ContainerCommand::Stats {
            no_stream,
            all,
            format,
            containers,
        } => {
            if no_stream {
                return stats(&engine, all, format.as_deref(), &containers);
            }
            // Streaming: redraw every second until interrupted, like Docker.
            loop {
                print!("\x1b[2J\x1b[H");
                let code = stats(&engine, all, format.as_deref(), &containers)?;
                if code != 0 {
                    return Ok(code);
                }
                std::thread::sleep(std::time::Duration::from_millis(900));
            }
        }
        ContainerCommand::Ns { containers } => ns(&engine, &containers),
        ContainerCommand::Commit {
            author,
            change,
            message,
            pause,
            container,
            repository,
        } => {
            let record = match engine.lookup(&container) {
                Ok(r) => r,
                Err(e) => return Ok(fail(e)),
            };
            let opts = berth_engine::fsops::CommitOptions {
                reference: repository,
                author,
                message,
                changes: change,
                pause,
            };
            match berth_engine::fsops::commit(&engine, &record, &opts) {
                Ok(id) => {
                    println!("{id}");
                    Ok(0)
                }
                Err(e) => Ok(fail(e)),
            }
        }
        ContainerCommand::Export { output, container } => {
            let record = match engine.lookup(&container) {
                Ok(r) => r,
                Err(e) => return Ok(fail(e)),
            };
            let result = match &output {
                Some(path) => {
                    let mut file = std::io::BufWriter::new(
                        std::fs::File::create(path)
                            .with_context(|| format!("creating {}", path.display()))?,
                    );
                    let r = berth_engine::fsops::export(&engine, &record, &mut file);
                    file.flush()?;
                    r
                }
                None => {
                    if berth_engine::sys::is_terminal(1) {
                        eprintln!(
                            "cowardly refusing to save to a terminal. Use the -o flag or redirect"
                        );
                        return Ok(1);
                    }
                    let stdout = std::io::stdout();
                    let mut out = std::io::BufWriter::new(stdout.lock());
                    let r = berth_engine::fsops::export(&engine, &record, &mut out);
                    out.flush()?;
                    r
                }
            };
            Ok(match result {
                Ok(()) => 0,
                Err(e) => fail(e),
            })
        }
        ContainerCommand::Cp {
            archive,
            follow_link,
            src,
            dst,
        } => {
            let opts = berth_engine::fsops::CopyOptions {
                archive,
                follow_link,
            };
            let split = |s: &str| -> Option<(String, String)> {
                let (c, p) = s.split_once(':')?;
                if c.is_empty() || c.contains('/') {
                    return None;
                }
                Some((c.to_string(), p.to_string()))
            };
            let result = match (split(&src), split(&dst)) {
                (Some((c, path)), None) if dst == "-" => engine.lookup(&c).and_then(|r| {
                    let stdout = std::io::stdout();
                    let mut out = std::io::BufWriter::new(stdout.lock());
                    let res = berth_engine::fsops::archive_from(&engine, &r, &path, opts, &mut out);
                    res.and_then(|()| {
                        out.flush()
                            .map_err(|e| berth_engine::EngineError::io("stdout", e))
                    })
                }),
                (Some((c, path)), None) => engine.lookup(&c).and_then(|r| {
                    berth_engine::fsops::copy_from(&engine, &r, &path, Path::new(&dst), opts)
                }),
                (None, Some((c, path))) if src == "-" => engine.lookup(&c).and_then(|r| {
                    let stdin = std::io::stdin();
                    let mut input = stdin.lock();
                    berth_engine::fsops::extract_to(&engine, &r, &mut input, &path, opts)
                }),
                (None, Some((c, path))) => engine.lookup(&c).and_then(|r| {
                    berth_engine::fsops::copy_to(&engine, &r, Path::new(&src), &path, opts)
                }),
                _ => {
                    eprintln!("berth: copying between containers or between host paths is not supported; one side must be CONTAINER:PATH");
                    return Ok(1);
                }
            };
            Ok(match result {
                Ok(()) => 0,
                Err(e) => fail(e),
            })
        }
        ContainerCommand::Container { command } => match command {
            ContainerManagement::Inspect { format, containers } => {
                inspect(root, format.as_deref(), &containers)
            }
            ContainerManagement::Ls(flags) => ps(&engine, &flags),
            ContainerManagement::Prune { filter, force } => {
                crate::daily::container_prune(root, &filter, force)
            }
        },
    }
}

/// Prints an error the way Docker's CLI does for non-run verbs; returns exit code 1.
fn fail(e: EngineError) -> i32 {
    eprintln!("Error response from daemon: {e}");
    1
}

fn each(
    engine: &Engine,
    containers: &[String],
    mut op: impl FnMut(&Engine, &str) -> Result<(), EngineError>,
) -> i32 {
    let mut code = 0;
    for c in containers {
        match engine.store.resolve(c).and_then(|id| op(engine, &id)) {
            Ok(()) => println!("{c}"),
            Err(e) => code = fail(e),
        }
    }
    code
}

pub(crate) fn full_reference(image: &str) -> String {
    let last = image.rsplit('/').next().unwrap_or(image);
    if last.contains(':') || image.contains('@') {
        image.to_string()
    } else {
        format!("{image}:latest")
    }
}

fn run_or_create(engine: &Engine, flags: &CreateFlags, start: bool) -> i32 {
    if !flags.rootfs && !hello::is_hello(&flags.image) {
        if let Err(code) = crate::registry::ensure_image(
            engine,
            &flags.image,
            &flags.pull,
            flags.platform.as_deref(),
        ) {
            return code;
        }
    }
    // `run` only: the cgroup move of the init waits out an RCU grace period unless one just
    // passed; start that wait now so it overlaps creating the container (berth is still
    // single-threaded here).
    let _primer = if start {
        berth_engine::cgroup_prime::start()
    } else {
        None
    };
    if let Err(e) = parse_detach_keys(flags.detach_keys.as_deref()) {
        eprintln!(
            "berth: {e}\nSee 'berth {} --help'.",
            if start { "run" } else { "create" }
        );
        return 125;
    }
    let opts = match flags.to_options() {
        Ok(o) => o,
        Err(e) => {
            eprintln!(
                "berth: {e}\nSee 'berth {} --help'.",
                if start { "run" } else { "create" }
            );
            return 125;
        }
    };
    if opts.host.init == Some(true) {
        if let Err(e) = hello::install_docker_init(engine.root()) {
            eprintln!("berth: --init: {e:#}");
            return 125;
        }
    }
    let record = match hello::create_with_builtin_images(engine, &opts) {
        Ok(r) => r,
        Err(EngineError::ImageNotFound { reference, cause }) => {
            eprintln!(
                "Unable to find image '{}' locally",
                full_reference(&reference)
            );
            eprintln!("berth: Error response from daemon: pull access denied for {reference}, repository does not exist or may require 'berth login' ({cause})");
            return 125;
        }
        Err(e) => {
            eprintln!("berth: Error response from daemon: {e}");
            return e.exit_code();
        }
    };
    if !start {
        // Like Docker, a created container's root is mounted only while it runs.
        let _ = engine.unmount(&record);
        println!("{}", record.id);
        return 0;
    }
    if flags.detach {
        return match engine.start_detached(&record.id) {
            Ok(()) => {
                println!("{}", record.id);
                0
            }
            Err(e) => {
                eprintln!("berth: Error response from daemon: {e}");
                e.exit_code()
            }
        };
    }
    match engine.start_attached(&record.id, &flags.attach_options()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("berth: Error response from daemon: {e}");
            e.exit_code()
        }
    }
}

/// `--detach-keys`, else the `detachKeys` of the client's `config.json` (as Docker's CLI
/// reads it), else Docker's default.
fn parse_detach_keys(
    text: Option<&str>,
) -> Result<berth_engine::detach_keys::DetachKeys, EngineError> {
    let configured = || {
        let path = berth_registry::credentials::default_config_path();
        let text = std::fs::read_to_string(path).ok()?;
        let json: serde_json::Value = serde_json::from_str(&text).ok()?;
        json.get("detachKeys")?.as_str().map(str::to_string)
    };
    match text.map(str::to_string).or_else(configured) {
        Some(keys) => berth_engine::detach_keys::DetachKeys::parse(&keys),
        None => Ok(Default::default()),
    }
}

fn start(
    engine: &Engine,
    attach: bool,
    interactive: bool,
    detach_keys: berth_engine::detach_keys::DetachKeys,
    containers: &[String],
) -> i32 {
    let mut code = 0;
    for c in containers {
        let record = match engine.lookup(c) {
            Ok(r) => r,
            Err(e) => {
                code = fail(e);
                continue;
            }
        };
        if attach {
            let opts = AttachOptions {
                stdin: interactive && record.config.open_stdin,
                stdout: true,
                stderr: true,
                tty: record.config.tty,
                sig_proxy: !record.config.tty,
                detach_keys,
            };
            return match engine.start_attached(&record.id, &opts) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("Error response from daemon: {e}");
                    e.exit_code()
                }
            };
        }
        match engine.start_detached(&record.id) {
            Ok(()) => println!("{c}"),
            Err(e) => code = fail(e),
        }
    }
    code
}

/// Prints a warning for each container record that exists but could not be read, so a
/// listing never hides a broken container silently.
pub(crate) fn warn_unreadable(unreadable: &[berth_engine::UnreadableRecord]) {
    for u in unreadable {
        eprintln!("WARNING: {u}");
    }
}

fn ps(engine: &Engine, flags: &PsFlags) -> anyhow::Result<i32> {
    let filter = match berth_engine::Filter::from_flags(&flags.filter) {
        Ok(f) => f,
        Err(e) => return Ok(fail(e)),
    };
    let opts = berth_engine::ListOptions {
        all: flags.all,
        limit: if flags.latest { Some(1) } else { flags.last },
        size: flags.size,
        filter,
    };
    let listing = match engine.list(&opts) {
        Ok(l) => l,
        Err(e) => return Ok(fail(e)),
    };
    warn_unreadable(&listing.unreadable);
    let columns: Vec<berth_engine::listing::PsColumns> = listing
        .rows
        .iter()
        .map(|r| r.columns(flags.no_trunc))
        .collect();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if flags.quiet {
        for c in &columns {
            writeln!(out, "{}", c.id)?;
        }
        return Ok(0);
    }
    let rows: Vec<serde_json::Value> = columns
        .iter()
        .map(serde_json::to_value)
        .collect::<Result<_, _>>()?;
    const PS_COLUMNS: &[(&str, &str)] = &[
        ("CONTAINER ID", "ID"),
        ("IMAGE", "Image"),
        ("COMMAND", "Command"),
        ("CREATED", "RunningFor"),
        ("STATUS", "Status"),
        ("PORTS", "Ports"),
        ("NAMES", "Names"),
        ("SIZE", "Size"),
    ];
    let shown = if flags.size {
        PS_COLUMNS
    } else {
        &PS_COLUMNS[..PS_COLUMNS.len() - 1]
    };
    let table = crate::render::Table {
        go_type: "*formatter.ContainerContext",
        columns: shown,
        headers: &[
            ("CreatedAt", "CREATED AT"),
            ("LocalVolumes", "LOCAL VOLUMES"),
            ("State", "STATE"),
            ("Size", "SIZE"),
        ],
    };
    if let Err(e) = crate::render::print_rows(&mut out, &rows, flags.format.as_deref(), &table) {
        eprintln!("{e}");
        return Ok(1);
    }
    Ok(0)
}

/// `berth inspect` for containers: a JSON array, or one template line per container.
/// Returns 1 (after printing what it found) when some container does not exist.
pub fn inspect(root: &Path, format: Option<&str>, containers: &[String]) -> anyhow::Result<i32> {
    let engine = Engine::open(root);
    let mut docs = Vec::new();
    let mut code = 0;
    for c in containers {
        match engine.lookup(c) {
            Ok(record) => docs.push(berth_engine::inspect::inspect(&engine, &record)),
            Err(e) => {
                eprintln!("Error: {e}");
                code = 1;
            }
        }
    }
    crate::render::print_inspect(&docs, format)?;
    Ok(code)
}

/// Whether `reference` names a container (for the top-level `inspect` verb).
pub fn is_container(root: &Path, reference: &str) -> bool {
    Engine::open(root).store.resolve(reference).is_ok()
}

fn exec(engine: &Engine, flags: &ExecFlags) -> i32 {
    let record = match engine.lookup(&flags.container) {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    let mut env = Vec::new();
    for f in &flags.env_file {
        match options::read_env_file(f) {
            Ok(v) => env.extend(v),
            Err(e) => return fail(e),
        }
    }
    env.extend(
        flags
            .env
            .iter()
            .filter_map(|e| options::resolve_env_flag(e)),
    );
    let req = berth_engine::exec::ExecRequest {
        command: flags.command.clone(),
        env,
        user: flags.user.clone(),
        workdir: flags.workdir.clone(),
        tty: flags.tty,
        interactive: flags.interactive,
        detach: flags.detach,
        privileged: flags.privileged,
        detach_keys: match parse_detach_keys(flags.detach_keys.as_deref()) {
            Ok(keys) => keys,
            Err(e) => {
                eprintln!("berth: {e}");
                return 125;
            }
        },
    };
    match berth_engine::exec::exec(engine, &record, &req) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("Error response from daemon: {e}");
            match e {
                EngineError::Command { exit_code, .. } => exit_code,
                _ => 126,
            }
        }
    }
}

fn top(record: &berth_engine::ContainerRecord, ps_args: &[String]) -> anyhow::Result<i32> {
    if !record.is_running() {
        eprintln!(
            "Error response from daemon: container {} is not running",
            record.id
        );
        return Ok(1);
    }
    let pids = berth_engine::procinfo::subtree(record.state.pid);
    let list = pids
        .iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let mut cmd = std::process::Command::new("ps");
    if ps_args.is_empty() {
        cmd.arg("-f");
    } else {
        cmd.args(ps_args);
    }
    let status = cmd.arg("-p").arg(list).status().context("running ps")?;
    Ok(status.code().unwrap_or(1))
}

fn stats(
    engine: &Engine,
    all: bool,
    format: Option<&str>,
    containers: &[String],
) -> anyhow::Result<i32> {
    let mut records = Vec::new();
    if containers.is_empty() {
        let listed = engine.store.load_all();
        warn_unreadable(&listed.unreadable);
        records.extend(listed.records.into_iter().filter(|r| all || r.is_running()));
    } else {
        for c in containers {
            match engine.lookup(c) {
                Ok(r) => records.push(r),
                Err(e) => return Ok(fail(e)),
            }
        }
    }
    let rows: Vec<serde_json::Value> = records
        .iter()
        .map(|r| serde_json::to_value(berth_engine::stats::stats_row(r)))
        .collect::<Result<_, _>>()?;
    let table = crate::render::Table {
        go_type: "*container.statsContext",
        columns: &[
            ("CONTAINER ID", "ID"),
            ("NAME", "Name"),
            ("CPU %", "CPUPerc"),
            ("MEM USAGE / LIMIT", "MemUsage"),
            ("MEM %", "MemPerc"),
            ("NET I/O", "NetIO"),
            ("BLOCK I/O", "BlockIO"),
            ("PIDS", "PIDs"),
        ],
        headers: &[("Container", "CONTAINER")],
    };
    crate::render::print_rows(&mut std::io::stdout().lock(), &rows, format, &table)?;
    Ok(0)
}

fn ns(engine: &Engine, containers: &[String]) -> anyhow::Result<i32> {
    let mut records = Vec::new();
    if containers.is_empty() {
        let listed = engine.store.load_all();
        warn_unreadable(&listed.unreadable);
        records.extend(listed.records.into_iter().filter(|r| r.is_running()));
    } else {
        for c in containers {
            match engine.lookup(c) {
                Ok(r) => records.push(r),
                Err(e) => return Ok(fail(e)),
            }
        }
    }
    records.sort_by(|a, b| a.created.cmp(&b.created));
    print!("{}", berth_engine::namespaces::table(&records));
    Ok(0)
}
