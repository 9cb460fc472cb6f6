//! The image verbs' flags, as clap parses them (Docker's names and defaults).

use super::*;

#[derive(Subcommand, Debug)]
pub enum ImageCommand {
    /// List images
    Images(ListArgs),
    /// Manage images
    #[command(subcommand)]
    Image(ImageSub),
    /// Import the contents from a tarball to create a filesystem image
    Import(ImportArgs),
    /// Load an image from a tar archive or STDIN
    Load(LoadArgs),
    /// Save one or more images to a tar archive (streamed to STDOUT by default)
    Save(SaveArgs),
    /// Show the history of an image
    History(HistoryArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(TagArgs),
    /// Remove one or more images
    Rmi(RmiArgs),
    /// Return low-level information on Docker objects
    Inspect(InspectArgs),
}

#[derive(Subcommand, Debug)]
pub enum ImageSub {
    /// List images
    #[command(alias = "list")]
    Ls(ListArgs),
    /// Display detailed information on one or more images
    Inspect(InspectArgs),
    /// Remove one or more images
    #[command(alias = "remove")]
    Rm(RmiArgs),
    /// Show the history of an image
    History(HistoryArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(TagArgs),
    /// Save one or more images to a tar archive
    Save(SaveArgs),
    /// Load an image from a tar archive or STDIN
    Load(LoadArgs),
    /// Import the contents from a tarball to create a filesystem image
    Import(ImportArgs),
    /// Remove unused images
    Prune(PruneArgs),
}

#[derive(Args, Debug)]
pub struct ListArgs {
    /// Show all images (default hides intermediate images)
    #[arg(short, long)]
    pub(super) all: bool,
    /// Only show image IDs
    #[arg(short, long)]
    pub(super) quiet: bool,
    /// Show digests
    #[arg(long)]
    pub(super) digests: bool,
    /// Don't truncate output
    #[arg(long)]
    pub(super) no_trunc: bool,
    /// Format output using a custom template ('table', 'json', or a Go-style template)
    #[arg(long)]
    pub(super) format: Option<String>,
    /// Filter output based on conditions provided (dangling=true|false, reference=PATTERN)
    #[arg(short, long)]
    pub(super) filter: Vec<String>,
    /// REPOSITORY[:TAG]
    pub(super) repository: Option<String>,
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// Format output using a custom template
    #[arg(short, long)]
    pub(super) format: Option<String>,
    /// Return JSON for specified type
    #[arg(long = "type")]
    pub(super) kind: Option<String>,
    /// Display total file sizes (accepted for compatibility)
    #[arg(short, long)]
    pub(super) size: bool,
    #[arg(required = true)]
    pub(super) names: Vec<String>,
}

#[derive(Args, Debug)]
pub struct RmiArgs {
    /// Force removal of the image
    #[arg(short, long)]
    pub(super) force: bool,
    /// Do not delete untagged parents
    #[arg(long)]
    pub(super) no_prune: bool,
    #[arg(required = true)]
    pub(super) images: Vec<String>,
}

#[derive(Args, Debug)]
pub struct HistoryArgs {
    /// Print sizes and dates in human readable format
    #[arg(short = 'H', long = "human", default_value_t = true, action = ArgAction::Set,
          num_args = 0..=1, default_missing_value = "true")]
    pub(super) human: bool,
    /// Don't truncate output
    #[arg(long)]
    pub(super) no_trunc: bool,
    /// Only show image IDs
    #[arg(short, long)]
    pub(super) quiet: bool,
    /// Format output using a custom template
    #[arg(long)]
    pub(super) format: Option<String>,
    pub(super) image: String,
}

#[derive(Args, Debug)]
pub struct TagArgs {
    pub(super) source: String,
    pub(super) target: String,
}

#[derive(Args, Debug)]
pub struct SaveArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short, long)]
    pub(super) output: Option<PathBuf>,
    #[arg(required = true)]
    pub(super) images: Vec<String>,
}

#[derive(Args, Debug)]
pub struct LoadArgs {
    /// Read from tar archive file, instead of STDIN
    #[arg(short, long)]
    pub(super) input: Option<PathBuf>,
    /// Suppress the load output
    #[arg(short, long)]
    pub(super) quiet: bool,
}

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// Apply Dockerfile instruction to the created image
    #[arg(short, long)]
    pub(super) change: Vec<String>,
    /// Set commit message for imported image
    #[arg(short, long)]
    pub(super) message: Option<String>,
    /// Set platform if server is multi-platform capable (only the host's is supported)
    #[arg(long)]
    pub(super) platform: Option<String>,
    /// file|URL|- (stdin)
    pub(super) source: String,
    /// REPOSITORY[:TAG]
    pub(super) reference: Option<String>,
}

#[derive(Args, Debug)]
pub struct PruneArgs {
    /// Remove all unused images, not just dangling ones
    #[arg(short, long)]
    pub(super) all: bool,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    pub(super) force: bool,
    /// Provide filter values (e.g. "until=<timestamp>", "label=k=v", "label!=k")
    #[arg(long)]
    pub(super) filter: Vec<String>,
}
