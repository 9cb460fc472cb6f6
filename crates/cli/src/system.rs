//! `berth system service`: the Docker Engine API service (crates/api). Flags only; the service
//! itself is `berth_api::serve`.
use clap::{Args, Subcommand};
use std::path::{Path, PathBuf};

#[derive(Subcommand)]
pub enum SystemCommand {
    /// Manage Berth.
    #[command(subcommand)]
    System(SystemSub),
}

#[derive(Subcommand)]
pub enum SystemSub {
    /// Serve the Docker Engine API (for the docker CLI, docker-py, Compose).
    Service(ServiceArgs),
    /// Show docker disk usage
    Df {
        /// Show detailed information on space usage
        #[arg(short = 'v', long)]
        verbose: bool,
        /// Format output using a custom template
        #[arg(long)]
        format: Option<String>,
    },
    /// Remove unused data
    Prune {
        /// Remove all unused images not just dangling ones
        #[arg(short = 'a', long)]
        all: bool,
        /// Prune anonymous volumes
        #[arg(long)]
        volumes: bool,
        /// Do not prompt for confirmation
        #[arg(short = 'f', long)]
        force: bool,
    },
    /// Display system-wide information
    Info {
        /// Format output using a custom template
        #[arg(short = 'f', long)]
        format: Option<String>,
    },
    /// Get real time events from the server
    Events {
        /// Filter output based on conditions provided
        #[arg(short = 'f', long)]
        filter: Vec<String>,
        /// Format output using a custom template
        #[arg(long)]
        format: Option<String>,
        /// Show all events created since timestamp
        #[arg(long)]
        since: Option<String>,
        /// Stream events until this timestamp
        #[arg(long)]
        until: Option<String>,
    },
}

#[derive(Args)]
pub struct ServiceArgs {
    /// Where to listen: unix:///path, or tcp://host:port (only with --tlsverify). Repeatable.
    /// Ignored under systemd socket activation (LISTEN_FDS).
    #[arg(long = "socket", short = 'H', value_name = "URI")]
    sockets: Vec<String>,
    /// Seconds without connections before the service exits; 0 serves forever.
    #[arg(long, short = 't', default_value_t = 5)]
    time: u64,
    /// Verify TCP clients' certificates against --tlscacert (required for tcp://).
    #[arg(long)]
    tlsverify: bool,
    #[arg(long, value_name = "FILE")]
    tlscacert: Option<PathBuf>,
    #[arg(long, value_name = "FILE")]
    tlscert: Option<PathBuf>,
    #[arg(long, value_name = "FILE")]
    tlskey: Option<PathBuf>,
    /// The socket path as a positional URI, as `podman system service URI` takes it.
    #[arg(value_name = "URI")]
    uri: Option<String>,
}

pub fn run(root: &Path, command: SystemCommand) -> anyhow::Result<i32> {
    let a = match command {
        SystemCommand::System(SystemSub::Service(a)) => a,
        SystemCommand::System(SystemSub::Df { verbose, format }) => {
            return crate::daily::system_df(root, verbose, format.as_deref())
        }
        SystemCommand::System(SystemSub::Prune {
            all,
            volumes,
            force,
        }) => return crate::daily::system_prune(root, all, volumes, force),
        SystemCommand::System(SystemSub::Info { format }) => {
            return crate::daily::run(root, crate::daily::DailyCommand::Info { format })
        }
        SystemCommand::System(SystemSub::Events {
            filter,
            format,
            since,
            until,
        }) => {
            return crate::daily::run(
                root,
                crate::daily::DailyCommand::Events {
                    filter,
                    format,
                    since,
                    until,
                },
            )
        }
    };
    let mut texts = a.sockets.clone();
    texts.extend(a.uri.clone());
    if texts.is_empty() {
        texts.push(berth_api::DEFAULT_SOCKET.to_string());
    }
    let listen = texts
        .iter()
        .map(|t| berth_api::ListenAddr::parse(t))
        .collect::<Result<Vec<_>, _>>()?;
    let tls = match (a.tlsverify, a.tlscacert, a.tlscert, a.tlskey) {
        (true, Some(ca_cert), Some(cert), Some(key)) => {
            Some(berth_api::TlsFiles { ca_cert, cert, key })
        }
        (true, ..) => anyhow::bail!("--tlsverify needs --tlscacert, --tlscert and --tlskey"),
        _ => None,
    };
    berth_api::serve(berth_api::ServiceOptions {
        root: root.to_path_buf(),
        listen,
        idle_timeout: (a.time > 0).then(|| std::time::Duration::from_secs(a.time)),
        tls,
    })?;
    Ok(0)
}
