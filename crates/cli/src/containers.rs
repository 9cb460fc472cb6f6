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

mod flags;
mod run_verb;
pub use flags::{ContainerCommand, ContainerManagement, CreateFlags, ExecFlags, PsFlags};
use run_verb::{parse_detach_keys, run_or_create, start};

#[path = "hello/mod.rs"]
mod hello;

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
                .and_then(|id| engine.rename(&id, &new_name))
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
            let opts = berth_engine::commit_export_cp::CommitOptions {
                reference: repository,
                author,
                message,
                changes: change,
                pause,
            };
            match berth_engine::commit_export_cp::commit(&engine, &record, &opts) {
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
                    let r = berth_engine::commit_export_cp::export(&engine, &record, &mut file);
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
                    let r = berth_engine::commit_export_cp::export(&engine, &record, &mut out);
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
            let opts = berth_engine::commit_export_cp::CopyOptions {
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
                    let res = berth_engine::commit_export_cp::archive_from(
                        &engine, &r, &path, opts, &mut out,
                    );
                    res.and_then(|()| {
                        out.flush()
                            .map_err(|e| berth_engine::EngineError::io("stdout", e))
                    })
                }),
                (Some((c, path)), None) => engine.lookup(&c).and_then(|r| {
                    berth_engine::commit_export_cp::copy_from(
                        &engine,
                        &r,
                        &path,
                        Path::new(&dst),
                        opts,
                    )
                }),
                (None, Some((c, path))) if src == "-" => engine.lookup(&c).and_then(|r| {
                    let stdin = std::io::stdin();
                    let mut input = stdin.lock();
                    berth_engine::commit_export_cp::extract_to(&engine, &r, &mut input, &path, opts)
                }),
                (None, Some((c, path))) => engine.lookup(&c).and_then(|r| {
                    berth_engine::commit_export_cp::copy_to(
                        &engine,
                        &r,
                        Path::new(&src),
                        &path,
                        opts,
                    )
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
        legacy_wording: false,
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
            Ok(record) => match berth_engine::inspect::inspect(&engine, &record) {
                Ok(doc) => docs.push(doc),
                Err(e) => {
                    eprintln!("Error: {e}");
                    code = 1;
                }
            },
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
    match engine.exec(&record, &req) {
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
        legacy_wording: false,
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
    print!("{}", berth_engine::ns_view::table(&records));
    Ok(0)
}
