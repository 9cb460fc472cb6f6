//! The container verbs' flags, as clap parses them (Docker's names and defaults).

use super::*;

/// Flags shared by `run` and `create` (Docker's names).
#[derive(Args, Debug, Clone)]
pub struct CreateFlags {
    /// Print usage.
    #[arg(long, action = ArgAction::Help)]
    pub(super) help: Option<bool>,
    /// Attach to STDIN, STDOUT or STDERR.
    #[arg(short = 'a', long = "attach")]
    pub(super) attach: Vec<String>,
    /// Run container in background and print container ID.
    #[arg(short = 'd', long)]
    pub(super) detach: bool,
    /// Keep STDIN open even if not attached.
    #[arg(short = 'i', long)]
    pub(super) interactive: bool,
    /// Allocate a pseudo-TTY.
    #[arg(short = 't', long)]
    pub(super) tty: bool,
    /// Automatically remove the container and its resources when it exits.
    #[arg(long)]
    pub(super) rm: bool,
    /// Assign a name to the container.
    #[arg(long)]
    pub(super) name: Option<String>,
    /// Set environment variables.
    #[arg(short = 'e', long = "env")]
    pub(super) env: Vec<String>,
    /// Read in a file of environment variables.
    #[arg(long = "env-file")]
    pub(super) env_file: Vec<PathBuf>,
    /// Working directory inside the container.
    #[arg(short = 'w', long = "workdir")]
    pub(super) workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>]).
    #[arg(short = 'u', long)]
    pub(super) user: Option<String>,
    /// Container host name.
    #[arg(short = 'h', long)]
    pub(super) hostname: Option<String>,
    /// Overwrite the default ENTRYPOINT of the image.
    #[arg(long)]
    pub(super) entrypoint: Option<String>,
    /// Bind mount a volume.
    #[arg(short = 'v', long = "volume")]
    pub(super) volume: Vec<String>,
    /// Mount volumes from the specified container(s).
    #[arg(long = "volumes-from")]
    pub(super) volumes_from: Vec<String>,
    /// Attach a filesystem mount to the container.
    #[arg(long)]
    pub(super) mount: Vec<String>,
    /// Mount a tmpfs directory.
    #[arg(long)]
    pub(super) tmpfs: Vec<String>,
    /// Mount the container's root filesystem as read only.
    #[arg(long = "read-only")]
    pub(super) read_only: bool,
    /// Set meta data on a container.
    #[arg(short = 'l', long = "label")]
    pub(super) label: Vec<String>,
    /// Give extended privileges to this container.
    #[arg(long)]
    pub(super) privileged: bool,
    /// Add Linux capabilities.
    #[arg(long = "cap-add")]
    pub(super) cap_add: Vec<String>,
    /// Drop Linux capabilities.
    #[arg(long = "cap-drop")]
    pub(super) cap_drop: Vec<String>,
    /// Security Options.
    #[arg(long = "security-opt")]
    pub(super) security_opt: Vec<String>,
    /// Ulimit options.
    #[arg(long)]
    pub(super) ulimit: Vec<String>,
    /// Size of /dev/shm.
    #[arg(long = "shm-size")]
    pub(super) shm_size: Option<String>,
    /// Signal to stop the container.
    #[arg(long = "stop-signal")]
    pub(super) stop_signal: Option<String>,
    /// Timeout (in seconds) to stop a container.
    #[arg(long = "stop-timeout")]
    pub(super) stop_timeout: Option<i64>,
    /// Restart policy to apply when a container exits.
    #[arg(long, default_value = "no")]
    pub(super) restart: String,
    /// Memory limit.
    #[arg(short = 'm', long)]
    pub(super) memory: Option<String>,
    /// Memory soft limit.
    #[arg(long = "memory-reservation")]
    pub(super) memory_reservation: Option<String>,
    /// Swap limit equal to memory plus swap: '-1' to enable unlimited swap.
    #[arg(long = "memory-swap", allow_hyphen_values = true)]
    pub(super) memory_swap: Option<String>,
    /// Number of CPUs.
    #[arg(long)]
    pub(super) cpus: Option<String>,
    /// CPU shares (relative weight).
    #[arg(short = 'c', long = "cpu-shares")]
    pub(super) cpu_shares: Option<i64>,
    /// Limit CPU CFS (Completely Fair Scheduler) quota.
    #[arg(long = "cpu-quota")]
    pub(super) cpu_quota: Option<i64>,
    /// Limit CPU CFS (Completely Fair Scheduler) period.
    #[arg(long = "cpu-period")]
    pub(super) cpu_period: Option<i64>,
    /// CPUs in which to allow execution (0-3, 0,1).
    #[arg(long = "cpuset-cpus")]
    pub(super) cpuset_cpus: Option<String>,
    /// Tune container pids limit (set -1 for unlimited).
    #[arg(long = "pids-limit", allow_hyphen_values = true)]
    pub(super) pids_limit: Option<i64>,
    /// Disable OOM Killer.
    #[arg(long = "oom-kill-disable")]
    pub(super) oom_kill_disable: bool,
    /// Connect a container to a network: bridge (default), a user network, none, host or
    /// container:<name|id>; repeat for more networks. BERTH_DEFAULT_NETWORK changes the default.
    #[arg(long = "network", alias = "net")]
    pub(super) network: Vec<String>,
    /// Add network-scoped alias for the container.
    #[arg(long = "network-alias", alias = "net-alias")]
    pub(super) network_alias: Vec<String>,
    /// IPv4 address (e.g., 172.30.100.104).
    #[arg(long = "ip")]
    pub(super) ip: Option<String>,
    /// IPv6 address (e.g., 2001:db8::33), on a user network with IPv6.
    #[arg(long = "ip6")]
    pub(super) ip6: Option<String>,
    /// Container MAC address (e.g., 92:d0:c6:0a:29:33).
    #[arg(long = "mac-address")]
    pub(super) mac_address: Option<String>,
    /// Set custom DNS servers.
    #[arg(long = "dns")]
    pub(super) dns: Vec<String>,
    /// Set custom DNS search domains.
    #[arg(long = "dns-search")]
    pub(super) dns_search: Vec<String>,
    /// Set DNS options.
    #[arg(long = "dns-option", alias = "dns-opt")]
    pub(super) dns_option: Vec<String>,
    /// Add a custom host-to-IP mapping (host:ip).
    #[arg(long = "add-host")]
    pub(super) add_host: Vec<String>,
    /// Publish a container's port(s) to the host.
    #[arg(short = 'p', long = "publish")]
    pub(super) publish: Vec<String>,
    /// Publish all exposed ports to random ports.
    #[arg(short = 'P', long = "publish-all")]
    pub(super) publish_all: bool,
    /// PID namespace to use.
    #[arg(long)]
    pub(super) pid: Option<String>,
    /// IPC mode to use.
    #[arg(long)]
    pub(super) ipc: Option<String>,
    /// UTS namespace to use.
    #[arg(long)]
    pub(super) uts: Option<String>,
    /// User namespace to use.
    #[arg(long)]
    pub(super) userns: Option<String>,
    /// Proxy received signals to the process.
    #[arg(long = "sig-proxy", action = ArgAction::Set, num_args = 0..=1, default_value = "true", default_missing_value = "true")]
    pub(super) sig_proxy: bool,
    /// Override the key sequence for detaching a container.
    #[arg(long = "detach-keys")]
    pub(super) detach_keys: Option<String>,
    /// Logging driver for the container (json-file, none).
    #[arg(long = "log-driver")]
    pub(super) log_driver: Option<String>,
    /// Log driver options (max-size=…, max-file=…, compress=…).
    #[arg(long = "log-opt")]
    pub(super) log_opt: Vec<String>,
    /// Command to run to check health.
    #[arg(long = "health-cmd")]
    pub(super) health_cmd: Option<String>,
    /// Time between running the check (ms|s|m|h) (default 0s).
    #[arg(long = "health-interval")]
    pub(super) health_interval: Option<String>,
    /// Maximum time to allow one check to run (ms|s|m|h) (default 0s).
    #[arg(long = "health-timeout")]
    pub(super) health_timeout: Option<String>,
    /// Consecutive failures needed to report unhealthy.
    #[arg(long = "health-retries", allow_hyphen_values = true)]
    pub(super) health_retries: Option<i64>,
    /// Start period for the container to initialize before starting health-retries countdown
    /// (ms|s|m|h) (default 0s).
    #[arg(long = "health-start-period")]
    pub(super) health_start_period: Option<String>,
    /// Time between running the check during the start period (ms|s|m|h) (default 0s).
    #[arg(long = "health-start-interval")]
    pub(super) health_start_interval: Option<String>,
    /// Disable any container-specified HEALTHCHECK.
    #[arg(long = "no-healthcheck")]
    pub(super) no_healthcheck: bool,
    /// Run an init inside the container that forwards signals and reaps processes.
    #[arg(long)]
    pub(super) init: bool,
    /// Run on this root filesystem directory instead of an image (Podman's flag).
    #[arg(long)]
    pub(super) rootfs: bool,
    /// Pull image before running ("always", "missing", "never").
    #[arg(long, default_value = "missing")]
    pub(super) pull: String,
    /// Set platform if server is multi-platform capable.
    #[arg(long)]
    pub(super) platform: Option<String>,
    /// Image (or, with --rootfs, a directory).
    pub(super) image: String,
    /// Command and arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub(super) command: Vec<String>,
}

impl CreateFlags {
    pub(super) fn to_options(&self) -> Result<RunOptions, EngineError> {
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

    pub(super) fn attach_options(&self) -> AttachOptions {
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
    pub(super) detach: bool,
    /// Keep STDIN open even if not attached.
    #[arg(short = 'i', long)]
    pub(super) interactive: bool,
    /// Allocate a pseudo-TTY.
    #[arg(short = 't', long)]
    pub(super) tty: bool,
    /// Set environment variables.
    #[arg(short = 'e', long = "env")]
    pub(super) env: Vec<String>,
    /// Read in a file of environment variables.
    #[arg(long = "env-file")]
    pub(super) env_file: Vec<PathBuf>,
    /// Username or UID (format: <name|uid>[:<group|gid>]).
    #[arg(short = 'u', long)]
    pub(super) user: Option<String>,
    /// Working directory inside the container.
    #[arg(short = 'w', long = "workdir")]
    pub(super) workdir: Option<String>,
    /// Give extended privileges to the command.
    #[arg(long)]
    pub(super) privileged: bool,
    /// Override the key sequence for detaching a container.
    #[arg(long = "detach-keys")]
    pub(super) detach_keys: Option<String>,
    pub(super) container: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    pub(super) command: Vec<String>,
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
    pub(super) all: bool,
    /// Only display container IDs.
    #[arg(short = 'q', long)]
    pub(super) quiet: bool,
    /// Show n last created containers (includes all states).
    #[arg(short = 'n', long = "last")]
    pub(super) last: Option<usize>,
    /// Show the latest created container (includes all states).
    #[arg(short = 'l', long)]
    pub(super) latest: bool,
    /// Don't truncate output.
    #[arg(long = "no-trunc")]
    pub(super) no_trunc: bool,
    /// Filter output based on conditions provided.
    #[arg(short = 'f', long = "filter")]
    pub(super) filter: Vec<String>,
    /// Format output using a custom template ('json' or a Go template).
    #[arg(long)]
    pub(super) format: Option<String>,
    /// Display total file sizes.
    #[arg(short = 's', long)]
    pub(super) size: bool,
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
