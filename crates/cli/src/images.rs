//! `berth` verbs for images: flag parsing and rendering only; the work is in the library crates.
use clap::Subcommand;
use std::path::Path;

#[derive(Subcommand, Debug)]
pub enum ImageCommand {
    /// Placeholder until the images verbs land.
    #[command(hide = true, name = "__images_placeholder")]
    Placeholder,
}

/// Runs one verb; returns the process exit code (Docker's: 125 for engine errors).
pub fn run(_root: &Path, command: ImageCommand) -> anyhow::Result<i32> {
    match command {
        ImageCommand::Placeholder => Ok(0),
    }
}
