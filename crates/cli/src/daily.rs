//! `berth diff` and `berth update` (and their `container diff|update` forms): flags and output
//! only; the work is `berth_engine::diff` and `berth_engine::update`.
use berth_engine::error::EngineError;
use berth_engine::options;
use berth_engine::update::UpdateRequest;
use berth_engine::Engine;
use clap::{Args, Subcommand};
use std::path::Path;

#[derive(Subcommand, Debug)]
pub enum DailyCommand {
    /// Inspect changes to files or directories on a container's filesystem
    Diff { container: String },
    /// Update configuration of one or more containers
    Update(Box<UpdateArgs>),
    /// Get real time events from the server
    Events {
        /// Filter output based on conditions provided
        #[arg(short = 'f', long)]
        filter: Vec<String>,
        /// Format output using a custom template ('json' or a Go template)
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

#[derive(Args, Debug)]
pub struct UpdateArgs {
    /// Block IO (relative weight), between 10 and 1000, or 0 to disable
    #[arg(long = "blkio-weight")]
    blkio_weight: Option<u16>,
    /// Limit CPU CFS (Completely Fair Scheduler) period
    #[arg(long = "cpu-period")]
    cpu_period: Option<i64>,
    /// Limit CPU CFS (Completely Fair Scheduler) quota
    #[arg(long = "cpu-quota", allow_hyphen_values = true)]
    cpu_quota: Option<i64>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long = "cpu-shares")]
    cpu_shares: Option<i64>,
    /// Number of CPUs
    #[arg(long)]
    cpus: Option<String>,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-cpus")]
    cpuset_cpus: Option<String>,
    /// MEMs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-mems")]
    cpuset_mems: Option<String>,
    /// Memory limit
    #[arg(short = 'm', long)]
    memory: Option<String>,
    /// Memory soft limit
    #[arg(long = "memory-reservation")]
    memory_reservation: Option<String>,
    /// Swap limit equal to memory plus swap: -1 to enable unlimited swap
    #[arg(long = "memory-swap", allow_hyphen_values = true)]
    memory_swap: Option<String>,
    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long = "pids-limit", allow_hyphen_values = true)]
    pids_limit: Option<i64>,
    /// Restart policy to apply when a container exits
    #[arg(long)]
    restart: Option<String>,
    #[arg(required = true)]
    containers: Vec<String>,
}

impl UpdateArgs {
    fn request(&self) -> Result<UpdateRequest, EngineError> {
        let bytes = |v: &Option<String>| v.as_deref().map(options::parse_bytes).transpose();
        Ok(UpdateRequest {
            memory: bytes(&self.memory)?,
            memory_swap: match self.memory_swap.as_deref() {
                Some("-1") => Some(-1),
                other => other.map(options::parse_bytes).transpose()?,
            },
            memory_reservation: bytes(&self.memory_reservation)?,
            nano_cpus: self.cpus.as_deref().map(options::parse_cpus).transpose()?,
            cpu_shares: self.cpu_shares,
            cpu_quota: self.cpu_quota,
            cpu_period: self.cpu_period,
            cpuset_cpus: self.cpuset_cpus.clone(),
            cpuset_mems: self.cpuset_mems.clone(),
            pids_limit: self.pids_limit,
            blkio_weight: self.blkio_weight,
            restart_policy: self
                .restart
                .as_deref()
                .map(options::parse_restart)
                .transpose()?,
        })
    }
}

fn fail(e: EngineError) -> i32 {
    eprintln!("Error response from daemon: {e}");
    1
}

pub fn run(root: &Path, command: DailyCommand) -> anyhow::Result<i32> {
    let engine = Engine::open(root);
    match command {
        DailyCommand::Diff { container } => {
            let changes = match engine
                .lookup(&container)
                .and_then(|r| berth_engine::diff::container_changes(&r))
            {
                Ok(c) => c,
                Err(e) => return Ok(fail(e)),
            };
            let mut out = String::new();
            for c in &changes {
                out.push(c.kind.letter());
                out.push(' ');
                out.push_str(&c.path);
                out.push('\n');
            }
            print!("{out}");
            Ok(0)
        }
        DailyCommand::Events {
            filter,
            format,
            since,
            until,
        } => events(
            root,
            &filter,
            format.as_deref(),
            since.as_deref(),
            until.as_deref(),
        ),
        DailyCommand::Update(args) => {
            let req = match args.request() {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("{e}\nSee 'berth update --help'.");
                    return Ok(125);
                }
            };
            if req.is_empty() {
                eprintln!("you must provide one or more flags when using this command");
                return Ok(1);
            }
            let mut code = 0;
            for c in &args.containers {
                match engine
                    .store
                    .resolve(c)
                    .and_then(|id| berth_engine::update::update(&engine, &id, &req))
                {
                    Ok(()) => println!("{c}"),
                    Err(e) => code = fail(e),
                }
            }
            Ok(code)
        }
    }
}

/// `berth events`: history from `--since`, then live events until `--until` (forever without).
fn events(
    root: &Path,
    filters: &[String],
    format: Option<&str>,
    since: Option<&str>,
    until: Option<&str>,
) -> anyhow::Result<i32> {
    use berth_engine::events;
    let pairs = crate::volumes::parse_filters(filters)?;
    let filter = match events::EventFilter::new(&pairs) {
        Ok(f) => f,
        Err(e) => return Ok(fail(e)),
    };
    let since = since.map(events::parse_time).transpose()?;
    let until = until.map(events::parse_time).transpose()?;
    // Like Docker: with neither bound, only what happens from now on.
    let since = match (since, until) {
        (None, None) => chrono::Utc::now().timestamp_nanos_opt(),
        (s, _) => s,
    };
    let mut failure = None;
    let stdout = std::io::stdout();
    let emit = |e: &events::Event| {
        let line = match format {
            Some("json") | Some("{{json .}}") => serde_json::to_string(e).unwrap_or_default(),
            Some(t) => {
                let value = serde_json::to_value(e).unwrap_or_default();
                match berth_engine::template::render(t, &value) {
                    Ok(l) => l,
                    Err(err) => {
                        failure = Some(err);
                        return false;
                    }
                }
            }
            None => e.line(),
        };
        use std::io::Write;
        writeln!(stdout.lock(), "{line}").is_ok()
    };
    events::follow(root, since, until, &filter, emit)?;
    match failure {
        Some(e) => Ok(fail(e)),
        None => Ok(0),
    }
}
