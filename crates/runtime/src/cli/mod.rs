//! Command-line definition (clap derive) mirroring runc's verbs and flags, and the dispatch to
//! the per-verb modules. Flags may follow the container id, as runc accepts.

pub mod checkpoint;
pub mod exec;
pub mod lifecycle;
pub mod log;
pub mod ops;
pub mod signals;
pub mod tty;

use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// The runtime-spec version this runtime implements.
pub const SPEC_VERSION: &str = "1.2.0";

/// `--help` in the shape of runc's (urfave/cli) help: NAME, USAGE, VERSION, COMMANDS, GLOBAL
/// OPTIONS.
const HELP_TEMPLATE: &str = concat!(
    "NAME:\n   {name} - {about}\n\n",
    "USAGE:\n   {name} [global options] command [command options] [arguments...]\n\n",
    "VERSION:\n   ",
    env!("CARGO_PKG_VERSION"),
    "\ncommit: none\nspec: 1.2.0\n\n",
    "COMMANDS:\n{subcommands}\n\n",
    "GLOBAL OPTIONS:\n{options}\n",
);

#[derive(Parser, Debug)]
#[command(
    name = "berth-runtime",
    // runc's shape ("runc version X" / "commit: …" / "spec: Y"), which go-runc parses.
    version = concat!("version ", env!("CARGO_PKG_VERSION"), "\ncommit: none\nspec: 1.2.0"),
    about = "Open Container Initiative runtime (runc's command line)",
    help_template = HELP_TEMPLATE,
    disable_version_flag = true,
)]
pub struct Cli {
    /// Print the version
    #[arg(short = 'v', long = "version", action = clap::ArgAction::Version)]
    pub version: Option<bool>,
    /// Root directory for container state
    #[arg(long, global = true, default_value = berth_runtime::DEFAULT_ROOT)]
    pub root: PathBuf,
    /// Log file (default: stderr only)
    #[arg(long, global = true)]
    pub log: Option<PathBuf>,
    /// Log format: text or json
    #[arg(long = "log-format", global = true, default_value = "text")]
    pub log_format: String,
    /// Enable debug logging
    #[arg(long, global = true)]
    pub debug: bool,
    /// Accepted for compatibility; "slice:prefix:name" cgroupsPaths are mapped to plain paths
    #[arg(long = "systemd-cgroup", global = true)]
    pub systemd_cgroup: bool,
    /// true|false|auto; accepted for compatibility, and `spec --rootless` writes a rootless spec
    #[arg(long, global = true, num_args = 0..=1, default_missing_value = "true")]
    pub rootless: Option<String>,
    /// Path to the criu binary used for checkpoint and restore
    #[arg(long, global = true, default_value = "criu")]
    pub criu: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a container
    Create(lifecycle::CreateArgs),
    /// Start a created container
    Start(IdArg),
    /// Create and start a container
    Run(lifecycle::RunArgs),
    /// Output the state of a container
    State(IdArg),
    /// Send a signal to the container's init process
    Kill(lifecycle::KillArgs),
    /// Delete a container
    Delete(lifecycle::DeleteArgs),
    /// Execute a new process inside the container
    Exec(exec::ExecArgs),
    /// List processes running inside a container
    Ps(ops::PsArgs),
    /// Suspend all processes of a container
    Pause(IdArg),
    /// Resume all processes of a paused container
    Resume(IdArg),
    /// Update container resource constraints
    Update(ops::UpdateArgs),
    /// Display container events and statistics
    Events(ops::EventsArgs),
    /// Create a new specification file
    Spec(ops::SpecArgs),
    /// Show the enabled features
    Features,
    /// List containers
    List(ops::ListArgs),
    /// Checkpoint a running container (CRIU)
    Checkpoint(checkpoint::CheckpointArgs),
    /// Restore a container from a checkpoint (CRIU)
    Restore(checkpoint::RestoreArgs),
}

/// An error that exits with a specific status (runc's 255 for a failed exec).
#[derive(Debug)]
pub struct CodedError {
    pub code: i32,
    pub message: String,
}

impl std::fmt::Display for CodedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CodedError {}

#[derive(clap::Args, Debug)]
pub struct IdArg {
    pub id: String,
}

/// Runs the command; returns the process exit status.
pub fn dispatch(cli: &Cli, log: &log::Logger) -> anyhow::Result<i32> {
    let rt = berth_runtime::Runtime::new(&cli.root);
    match &cli.command {
        Command::Create(a) => {
            tty::log_ignored_labels(&a.bundle, log);
            lifecycle::create(&rt, a)
        }
        Command::Start(a) => {
            rt.start(&a.id)?;
            Ok(0)
        }
        Command::Run(a) => {
            tty::log_ignored_labels(&a.create.bundle, log);
            lifecycle::run(&rt, a)
        }
        Command::State(a) => {
            let st = rt.state(&a.id)?;
            println!("{}", serde_json::to_string_pretty(&st)?);
            Ok(0)
        }
        Command::Kill(a) => lifecycle::kill(&rt, a),
        Command::Delete(a) => lifecycle::delete(&rt, a),
        Command::Exec(a) => exec::exec(&rt, a),
        Command::Ps(a) => ops::ps(&rt, a),
        Command::Pause(a) => {
            rt.pause(&a.id)?;
            Ok(0)
        }
        Command::Resume(a) => {
            rt.resume(&a.id)?;
            Ok(0)
        }
        Command::Update(a) => ops::update(&rt, a),
        Command::Events(a) => ops::events(&rt, a),
        Command::Spec(a) => ops::spec(a, cli.rootless.as_deref() == Some("true")),
        Command::Features => {
            println!(
                "{}",
                serde_json::to_string_pretty(&berth_runtime::defaults::features())?
            );
            Ok(0)
        }
        Command::List(a) => ops::list(&rt, a),
        Command::Checkpoint(a) => checkpoint::checkpoint(&rt, a, &cli.criu),
        Command::Restore(a) => checkpoint::restore(&rt, a, &cli.criu),
    }
}
