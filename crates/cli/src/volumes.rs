//! `berth volume create|ls|inspect|rm|prune`: flags and rendering only; the store is
//! `berth_engine::volumes`. Output, messages and exit codes follow Docker's CLI.
use berth_engine::error::EngineError;
use berth_engine::volumes::{CreateVolume, Volumes};
use clap::{Args, Subcommand};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

#[derive(Subcommand, Debug)]
pub enum VolumeCommand {
    /// Manage volumes
    #[command(subcommand)]
    Volume(VolumeVerb),
}

#[derive(Subcommand, Debug)]
pub enum VolumeVerb {
    /// Create a volume
    Create(CreateArgs),
    /// List volumes
    #[command(alias = "list")]
    Ls(LsArgs),
    /// Display detailed information on one or more volumes
    Inspect {
        /// Format output using a custom template
        #[arg(short = 'f', long)]
        format: Option<String>,
        #[arg(required = true)]
        volumes: Vec<String>,
    },
    /// Remove one or more volumes
    #[command(alias = "remove")]
    Rm {
        /// Force the removal of one or more volumes
        #[arg(short = 'f', long)]
        force: bool,
        #[arg(required = true)]
        volumes: Vec<String>,
    },
    /// Remove unused local volumes
    Prune {
        /// Remove all unused volumes, not just anonymous ones
        #[arg(short = 'a', long)]
        all: bool,
        /// Provide filter values (e.g. "label=<label>")
        #[arg(long)]
        filter: Vec<String>,
        /// Do not prompt for confirmation
        #[arg(short = 'f', long)]
        force: bool,
    },
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    /// Specify volume driver name
    #[arg(short = 'd', long, default_value = "local")]
    driver: String,
    /// Set metadata for a volume
    #[arg(long)]
    label: Vec<String>,
    /// Set driver specific options
    #[arg(short = 'o', long = "opt")]
    opt: Vec<String>,
    /// Volume name
    name: Option<String>,
}

#[derive(Args, Debug)]
pub struct LsArgs {
    /// Only display volume names
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Provide filter values (e.g. "dangling=true")
    #[arg(short = 'f', long)]
    filter: Vec<String>,
    /// Format output using a custom template ('table', 'table TEMPLATE', 'json', 'TEMPLATE')
    #[arg(long)]
    format: Option<String>,
}

/// Splits `k=v` filters; Docker's message for a malformed one.
pub fn parse_filters(filters: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    filters
        .iter()
        .map(|f| {
            f.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| anyhow::anyhow!("bad format of filter (expected name=value)"))
        })
        .collect()
}

fn fail(e: EngineError) -> i32 {
    eprintln!("Error response from daemon: {e}");
    1
}

pub fn run(root: &Path, command: VolumeCommand) -> anyhow::Result<i32> {
    let VolumeCommand::Volume(verb) = command;
    let vols = Volumes::new(root);
    match verb {
        VolumeVerb::Create(a) => {
            let mut options = BTreeMap::new();
            for o in &a.opt {
                let (k, v) = o.split_once('=').unwrap_or((o.as_str(), ""));
                options.insert(k.to_string(), v.to_string());
            }
            let labels = a
                .label
                .iter()
                .map(|l| berth_engine::options::parse_label(l))
                .collect();
            let req = CreateVolume {
                name: a.name.unwrap_or_default(),
                driver: a.driver,
                labels,
                options,
            };
            match vols.create(&req) {
                Ok(v) => {
                    println!("{}", v.name);
                    Ok(0)
                }
                Err(e) => Ok(fail(e)),
            }
        }
        VolumeVerb::Ls(a) => {
            let filters = parse_filters(&a.filter)?;
            let list = match vols.list_filtered(&filters) {
                Ok(l) => l,
                Err(e) => return Ok(fail(e)),
            };
            let mut out = std::io::stdout().lock();
            if a.quiet {
                for v in &list {
                    writeln!(out, "{}", v.name)?;
                }
                return Ok(0);
            }
            let rows: Vec<serde_json::Value> = list.iter().map(|v| v.ls_row()).collect();
            crate::render::print_rows(
                &mut out,
                &rows,
                a.format.as_deref(),
                &crate::render::Table {
                    go_type: "*formatter.volumeContext",
                    legacy_wording: false,
                    columns: &[("DRIVER", "Driver"), ("VOLUME NAME", "Name")],
                    headers: &[],
                },
            )?;
            Ok(0)
        }
        VolumeVerb::Inspect { format, volumes } => {
            let mut docs = Vec::new();
            let mut code = 0;
            for name in &volumes {
                match vols.get(name) {
                    Ok(v) => docs.push(v.inspect()),
                    Err(e) => code = fail(e),
                }
            }
            crate::render::print_inspect(&docs, format.as_deref())?;
            Ok(code)
        }
        VolumeVerb::Rm { force, volumes } => {
            let mut code = 0;
            for name in &volumes {
                match vols.remove(name, force) {
                    Ok(()) => println!("{name}"),
                    Err(e) => code = fail(e),
                }
            }
            Ok(code)
        }
        VolumeVerb::Prune { all, filter, force } => {
            let filters = parse_filters(&filter)?;
            let warning = if all {
                "WARNING! This will remove all local volumes not used by at least one container."
            } else {
                "WARNING! This will remove anonymous local volumes not used by at least one container."
            };
            if !force && !confirm(warning)? {
                return Ok(0);
            }
            let report = match vols.prune(all, &filters) {
                Ok(r) => r,
                Err(e) => return Ok(fail(e)),
            };
            if !report.deleted.is_empty() {
                println!("Deleted Volumes:");
                for name in &report.deleted {
                    println!("{name}");
                }
                println!();
            }
            println!(
                "Total reclaimed space: {}",
                berth_common::units::human_size(report.reclaimed_bytes)
            );
            Ok(0)
        }
    }
}

/// Docker's `[y/N]` prompt, answered on stdin whether or not it is a terminal (as Docker does).
pub fn confirm(warning: &str) -> anyhow::Result<bool> {
    eprint!("{warning}\nAre you sure you want to continue? [y/N] ");
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "Yes"))
}
