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
    /// Display system-wide information
    Info {
        /// Format output using a custom template ('json' or a Go template)
        #[arg(short = 'f', long)]
        format: Option<String>,
    },
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
        DailyCommand::Info { format } => info(root, format.as_deref()),
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
    let template = match format {
        Some("json") | Some("{{json .}}") | None => None,
        Some(t) => Some(crate::render::parse_template(t)?),
    };
    let mut failure = None;
    let stdout = std::io::stdout();
    let emit = |e: &events::Event| {
        let line = match (&template, format) {
            (None, Some(_)) => serde_json::to_string(e).unwrap_or_default(),
            (Some(t), _) => {
                // Docker formats its `events.Message` struct, whose legacy fields are there
                // (empty) even where the JSON omits them.
                let mut value = serde_json::to_value(e).unwrap_or_default();
                if let Some(m) = value.as_object_mut() {
                    for key in ["status", "id", "from"] {
                        m.entry(key).or_insert_with(|| serde_json::Value::from(""));
                    }
                }
                match crate::render::render_document(t, &value) {
                    Ok(l) => l,
                    Err(err) => {
                        failure = Some(err);
                        return false;
                    }
                }
            }
            (None, _) => e.line(),
        };
        use std::io::Write;
        writeln!(stdout.lock(), "{line}").is_ok()
    };
    events::follow(root, since, until, &filter, emit)?;
    match failure {
        Some(e) => Err(e.into()),
        None => Ok(0),
    }
}

/// `berth container prune`.
pub fn container_prune(root: &Path, filters: &[String], force: bool) -> anyhow::Result<i32> {
    let pairs = crate::volumes::parse_filters(filters)?;
    if !force && !crate::volumes::confirm("WARNING! This will remove all stopped containers.")? {
        return Ok(0);
    }
    let engine = Engine::open(root);
    let pruned = match berth_engine::housekeeping::prune_containers(&engine, &pairs) {
        Ok(p) => p,
        Err(e) => return Ok(fail(e)),
    };
    crate::containers::warn_unreadable(&pruned.unreadable);
    if !pruned.deleted.is_empty() {
        println!("Deleted Containers:");
        for id in &pruned.deleted {
            println!("{id}");
        }
        println!();
    }
    println!(
        "Total reclaimed space: {}",
        berth_common::units::human_size(pruned.reclaimed_bytes)
    );
    Ok(0)
}

/// `berth system df [-v] [--format]`.
pub fn system_df(root: &Path, verbose: bool, format: Option<&str>) -> anyhow::Result<i32> {
    use berth_common::units::human_size;
    let engine = Engine::open(root);
    let rows = match berth_engine::housekeeping::disk_usage(&engine) {
        Ok(usage) => {
            crate::containers::warn_unreadable(&usage.unreadable);
            usage.rows
        }
        Err(e) => return Ok(fail(e)),
    };
    let json_rows: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            let pct = (r.reclaimable * 100)
                .checked_div(r.size)
                .map(|p| format!(" ({p}%)"))
                .unwrap_or_default();
            serde_json::json!({
                "Type": r.kind,
                "TotalCount": r.total.to_string(),
                "Active": r.active.to_string(),
                "Size": human_size(r.size),
                "Reclaimable": format!("{}{pct}", human_size(r.reclaimable)),
            })
        })
        .collect();
    let mut out = std::io::stdout().lock();
    crate::render::print_rows(
        &mut out,
        &json_rows,
        format,
        &crate::render::Table {
            go_type: "*formatter.diskUsageImagesContext",
            legacy_wording: true,
            columns: &[
                ("TYPE", "Type"),
                ("TOTAL", "TotalCount"),
                ("ACTIVE", "Active"),
                ("SIZE", "Size"),
                ("RECLAIMABLE", "Reclaimable"),
            ],
            headers: &[],
        },
    )?;
    if verbose {
        use std::io::Write;
        let vols = berth_engine::volumes::Volumes::new(root);
        writeln!(out, "\nLocal Volumes space usage:\n")?;
        let mut rows: Vec<serde_json::Value> = Vec::new();
        for v in vols.list() {
            let links = match vols.users(&v.name) {
                Ok(users) => users.len(),
                Err(e) => return Ok(fail(e)),
            };
            rows.push(serde_json::json!({"Name": v.name, "Links": links.to_string(), "Size": human_size(vols.size(&v))}));
        }
        crate::render::print_rows(
            &mut out,
            &rows,
            None,
            &crate::render::Table {
                go_type: "*formatter.volumeContext",
                legacy_wording: false,
                columns: &[
                    ("VOLUME NAME", "Name"),
                    ("LINKS", "Links"),
                    ("SIZE", "Size"),
                ],
                headers: &[],
            },
        )?;
    }
    Ok(0)
}

/// `berth system prune [-a] [--volumes] [-f]`.
pub fn system_prune(root: &Path, all: bool, volumes: bool, force: bool) -> anyhow::Result<i32> {
    let mut warning = String::from(
        "WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by at least one container\n",
    );
    if volumes {
        warning.push_str("  - all anonymous volumes not used by at least one container\n");
    }
    warning.push_str(if all {
        "  - all images without at least one container associated to them\n"
    } else {
        "  - all dangling images\n"
    });
    if !force && !crate::volumes::confirm(warning.trim_end())? {
        return Ok(0);
    }
    let engine = Engine::open(root);
    let mut reclaimed = 0;
    let containers = match berth_engine::housekeeping::prune_containers(&engine, &[]) {
        Ok(p) => p,
        Err(e) => return Ok(fail(e)),
    };
    crate::containers::warn_unreadable(&containers.unreadable);
    reclaimed += containers.reclaimed_bytes;
    if !containers.deleted.is_empty() {
        println!("Deleted Containers:");
        containers.deleted.iter().for_each(|id| println!("{id}"));
        println!();
    }
    if root.join("network").exists() {
        berth_engine::network::collect_garbage(root);
        let networks = berth_engine::network::prune(root)?;
        if !networks.is_empty() {
            println!("Deleted Networks:");
            networks.iter().for_each(|n| println!("{n}"));
            println!();
        }
    }
    if volumes {
        let report = match berth_engine::volumes::Volumes::new(root).prune(false, &[]) {
            Ok(r) => r,
            Err(e) => return Ok(fail(e)),
        };
        reclaimed += report.reclaimed_bytes;
        if !report.deleted.is_empty() {
            println!("Deleted Volumes:");
            report.deleted.iter().for_each(|v| println!("{v}"));
            println!();
        }
    }
    let store = berth_image::Store::open(root)?;
    let no_filter = berth_image::filter::PruneFilter::default();
    let (events, bytes) = berth_engine::image_verbs::prune(&store, all, &no_filter)?;
    reclaimed += bytes;
    if !events.is_empty() {
        println!("Deleted Images:");
        for e in events {
            match e {
                berth_image::RemoveEvent::Untagged(t) => println!("untagged: {t}"),
                berth_image::RemoveEvent::Deleted(id) => println!("deleted: {id}"),
            }
        }
        println!();
    }
    println!(
        "Total reclaimed space: {}",
        berth_common::units::human_size(reclaimed)
    );
    Ok(0)
}

/// Docker's name for the filesystem under the root (`docker info`'s Backing Filesystem).
fn backing_filesystem(root: &Path) -> &'static str {
    let Ok(st) = rustix::fs::statfs(root) else {
        return "<unknown>";
    };
    match st.f_type as u64 {
        0xEF53 => "extfs",
        0x5846_5342 => "xfs",
        0x0102_1994 => "tmpfs",
        0x9123_683E => "btrfs",
        0x2FC1_2FC1 => "zfs",
        0x794C_7630 => "overlayfs",
        _ => "<unknown>",
    }
}

/// `berth info`.
fn info(root: &Path, format: Option<&str>) -> anyhow::Result<i32> {
    let engine = Engine::open(root);
    let c = match berth_engine::housekeeping::counts(&engine) {
        Ok(c) => c,
        Err(e) => return Ok(fail(e)),
    };
    crate::containers::warn_unreadable(&c.unreadable);
    let uts = rustix::system::uname();
    let kernel = uts.release().to_string_lossy().into_owned();
    let arch = uts.machine().to_string_lossy().into_owned();
    let hostname = uts.nodename().to_string_lossy().into_owned();
    let os = std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| {
                l.strip_prefix("PRETTY_NAME=")
                    .map(|v| v.trim_matches('"').to_string())
            })
        })
        .unwrap_or_else(|| "Linux".into());
    let cgroup_version = match berth_cgroups::Hierarchy::detect().map(|h| h.version()) {
        Ok(berth_cgroups::CgroupVersion::V2) => "2",
        _ => "1",
    };
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let mem = rustix::system::sysinfo();
    let total_memory = mem.totalram as u64 * mem.mem_unit as u64;
    let doc = serde_json::json!({
        "ID": "",
        "Containers": c.containers,
        "ContainersRunning": c.running,
        "ContainersPaused": c.paused,
        "ContainersStopped": c.stopped,
        "Images": c.images,
        "Driver": "overlay2",
        "DriverStatus": [["Backing Filesystem", backing_filesystem(root)], ["Supports d_type", "true"], ["Using metacopy", "false"], ["Native Overlay Diff", "true"], ["userxattr", "false"]],
        "LoggingDriver": "json-file",
        "CgroupDriver": "cgroupfs",
        "CgroupVersion": cgroup_version,
        "KernelVersion": kernel,
        "OperatingSystem": os,
        "OSType": "linux",
        "Architecture": arch,
        "NCPU": cpus,
        "MemTotal": total_memory,
        "DockerRootDir": root.to_string_lossy(),
        "Name": hostname,
        "ServerVersion": env!("CARGO_PKG_VERSION"),
        "Runtimes": {"berth-runtime": {"path": "berth-runtime"}, "runc": {"path": "runc"}},
        "DefaultRuntime": "berth-runtime",
    });
    match format {
        Some("json") | Some("{{json .}}") => println!("{doc}"),
        Some(t) => {
            let template = crate::render::parse_template(t)?;
            match crate::render::render_struct(&template, &doc, "system.dockerInfo") {
                Ok(line) => println!("{line}"),
                Err(e) => {
                    // Docker ends its (empty) output before the error.
                    println!();
                    return Err(e.into());
                }
            }
        }
        None => {
            let s = |k: &str| match &doc[k] {
                serde_json::Value::String(s) => s.clone(),
                v => v.to_string(),
            };
            println!(
                "Client:\n Version:    {}\n Context:    default\n Debug Mode: false\n",
                env!("CARGO_PKG_VERSION")
            );
            println!("Server:");
            println!(" Containers: {}", c.containers);
            println!("  Running: {}", c.running);
            println!("  Paused: {}", c.paused);
            println!("  Stopped: {}", c.stopped);
            println!(" Images: {}", c.images);
            println!(" Server Version: {}", s("ServerVersion"));
            println!(" Storage Driver: overlay2");
            println!("  Backing Filesystem: {}", backing_filesystem(root));
            println!("  Supports d_type: true");
            println!("  Using metacopy: false");
            println!("  Native Overlay Diff: true");
            println!("  userxattr: false");
            println!(" Logging Driver: json-file");
            println!(" Cgroup Driver: cgroupfs");
            println!(" Cgroup Version: {cgroup_version}");
            println!(" Runtimes: berth-runtime runc");
            println!(" Default Runtime: berth-runtime");
            println!(" Kernel Version: {}", s("KernelVersion"));
            println!(" Operating System: {}", s("OperatingSystem"));
            println!(" OSType: linux");
            println!(" Architecture: {}", s("Architecture"));
            println!(" CPUs: {cpus}");
            println!(
                " Total Memory: {:.2}GiB",
                total_memory as f64 / (1u64 << 30) as f64
            );
            println!(" Name: {}", s("Name"));
            println!(" Docker Root Dir: {}", root.display());
        }
    }
    Ok(0)
}
