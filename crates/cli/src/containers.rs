//! `berth` verbs for containers: flag parsing and rendering only; the work is in the library crates.
use clap::Subcommand;
use std::path::Path;

#[derive(Subcommand, Debug)]
pub enum ContainerCommand {
    /// Placeholder until the containers verbs land.
    #[command(hide = true, name = "__containers_placeholder")]
    Placeholder,
}

/// Runs one verb; returns the process exit code (Docker's: 125 for engine errors).
pub fn run(_root: &Path, command: ContainerCommand) -> anyhow::Result<i32> {
    match command {
        ContainerCommand::Placeholder => Ok(0),
    }
}
