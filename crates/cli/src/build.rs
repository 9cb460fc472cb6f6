//! `berth` verbs for build: flag parsing and rendering only; the work is in the library crates.
use clap::Subcommand;
use std::path::Path;

#[derive(Subcommand, Debug)]
pub enum BuildCommand {
    /// Placeholder until the build verbs land.
    #[command(hide = true, name = "__build_placeholder")]
    Placeholder,
}

/// Runs one verb; returns the process exit code (Docker's: 125 for engine errors).
pub fn run(_root: &Path, command: BuildCommand) -> anyhow::Result<i32> {
    match command {
        BuildCommand::Placeholder => Ok(0),
    }
}
