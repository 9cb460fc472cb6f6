//! `berth` verbs that talk to registries: `pull`, `push`, `login`, `logout`, `search`. Flags and
//! rendering only (Docker's output lines); the work is in berth-registry.
use berth_image::Store;
use berth_registry::{LayerEvent, PullOptions, PullProgress, PushEvent, PushProgress, Session};
use clap::{Args, Subcommand};
use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::Path;
use std::sync::Mutex;

#[derive(Subcommand, Debug)]
pub enum RegistryCommand {
    /// Download an image from a registry
    Pull(PullArgs),
    /// Upload an image to a registry
    Push(PushArgs),
}

#[derive(Args, Debug)]
pub struct PushArgs {
    /// Push all tags of an image to the repository
    #[arg(short, long)]
    all_tags: bool,
    /// Suppress verbose output
    #[arg(short, long)]
    quiet: bool,
    /// NAME[:TAG]
    name: String,
}

#[derive(Args, Debug)]
pub struct PullArgs {
    /// Download all tagged images in the repository
    #[arg(short, long)]
    all_tags: bool,
    /// Set platform if server is multi-platform capable
    #[arg(long)]
    platform: Option<String>,
    /// Suppress verbose output
    #[arg(short, long)]
    quiet: bool,
    /// NAME[:TAG|@DIGEST]
    name: String,
}

/// Runs one registry verb.
pub fn run(root: &Path, command: RegistryCommand) -> anyhow::Result<i32> {
    match command {
        RegistryCommand::Pull(a) => pull(root, a),
        RegistryCommand::Push(a) => push(root, a),
    }
}

/// Per-layer bars on a terminal.
struct Bars {
    multi: indicatif::MultiProgress,
    bars: Mutex<HashMap<String, indicatif::ProgressBar>>,
}

impl PullProgress for Bars {
    fn status(&self, line: &str) {
        let _ = self.multi.println(line);
    }
    fn layer(&self, id: &str, event: LayerEvent) {
        let Ok(mut bars) = self.bars.lock() else {
            return;
        };
        let bar = bars.entry(id.to_string()).or_insert_with(|| {
            let b = self.multi.add(indicatif::ProgressBar::new(0));
            b.set_style(
                indicatif::ProgressStyle::with_template(
                    "{prefix}: {msg} [{bar:40}] {bytes}/{total_bytes}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            b.set_prefix(id.to_string());
            b
        });
        match event {
            LayerEvent::AlreadyExists => bar.finish_with_message("Already exists"),
            LayerEvent::Downloading { total } => {
                bar.set_length(total);
                bar.set_message("Downloading");
            }
            LayerEvent::Progress { bytes } => bar.inc(bytes),
            LayerEvent::Extracted => bar.set_message("Download complete"),
            LayerEvent::Resumed => bar.set_message("Download complete (kept from an earlier pull)"),
            LayerEvent::Complete => bar.finish_with_message("Pull complete"),
        }
    }
}

/// One line per layer when stdout is not a terminal.
struct Lines;

impl PullProgress for Lines {
    fn status(&self, line: &str) {
        println!("{line}");
    }
    fn layer(&self, id: &str, event: LayerEvent) {
        match event {
            LayerEvent::AlreadyExists => println!("{id}: Already exists"),
            LayerEvent::Complete => println!("{id}: Pull complete"),
            _ => {}
        }
    }
}

/// Prints nothing but the final reference (`-q`).
struct Quiet;
impl PullProgress for Quiet {}

fn pull(root: &Path, a: PullArgs) -> anyhow::Result<i32> {
    let store = Store::open(root)?;
    let session = Session::from_environment()?;
    let options = PullOptions {
        platform: a
            .platform
            .as_deref()
            .map(berth_registry::Platform::parse)
            .transpose()?,
        all_tags: a.all_tags,
    };
    let bars = Bars {
        multi: indicatif::MultiProgress::new(),
        bars: Mutex::new(HashMap::new()),
    };
    let progress: &dyn PullProgress = if a.quiet {
        &Quiet
    } else if std::io::stdout().is_terminal() {
        &bars
    } else {
        &Lines
    };
    let pulled = berth_registry::pull(&store, &session, &a.name, &options, progress)?;
    drop(bars);
    for p in &pulled {
        let familiar = p.reference.familiar_string();
        if !a.quiet {
            if p.downloaded {
                println!("Status: Downloaded newer image for {familiar}");
            } else {
                println!("Status: Image is up to date for {familiar}");
            }
        }
        if !a.all_tags || a.quiet {
            println!("{}{}", p.reference.full_name(), suffix(&p.reference));
        }
    }
    if a.all_tags && !a.quiet {
        if let Some(p) = pulled.first() {
            println!("{}", p.reference.full_name());
        }
    }
    Ok(0)
}

fn suffix(r: &berth_image::Reference) -> String {
    match (&r.tag, &r.digest) {
        (Some(t), _) => format!(":{t}"),
        (None, Some(d)) => format!("@{d}"),
        _ => String::new(),
    }
}

impl PushProgress for Bars {
    fn status(&self, line: &str) {
        let _ = self.multi.println(line);
    }
    fn layer(&self, id: &str, event: PushEvent) {
        let Ok(mut bars) = self.bars.lock() else {
            return;
        };
        let bar = bars.entry(id.to_string()).or_insert_with(|| {
            let b = self.multi.add(indicatif::ProgressBar::new_spinner());
            b.set_style(
                indicatif::ProgressStyle::with_template("{prefix}: {msg} {bytes}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
            );
            b.set_prefix(id.to_string());
            b
        });
        match event {
            PushEvent::AlreadyExists => bar.finish_with_message("Layer already exists"),
            PushEvent::Mounted(from) => bar.finish_with_message(format!("Mounted from {from}")),
            PushEvent::Uploading => bar.set_message("Pushing"),
            PushEvent::Progress(n) => bar.inc(n),
            PushEvent::Pushed => bar.finish_with_message("Pushed"),
        }
    }
}

impl PushProgress for Lines {
    fn status(&self, line: &str) {
        println!("{line}");
    }
    fn layer(&self, id: &str, event: PushEvent) {
        match event {
            PushEvent::AlreadyExists => println!("{id}: Layer already exists"),
            PushEvent::Mounted(from) => println!("{id}: Mounted from {from}"),
            PushEvent::Pushed => println!("{id}: Pushed"),
            _ => {}
        }
    }
}

impl PushProgress for Quiet {}

fn push(root: &Path, a: PushArgs) -> anyhow::Result<i32> {
    let store = Store::open(root)?;
    let session = Session::from_environment()?;
    let bars = Bars {
        multi: indicatif::MultiProgress::new(),
        bars: Mutex::new(HashMap::new()),
    };
    let progress: &dyn PushProgress = if a.quiet {
        &Quiet
    } else if std::io::stdout().is_terminal() {
        &bars
    } else {
        &Lines
    };
    let pushed = berth_registry::push(&store, &session, &a.name, a.all_tags, progress)?;
    drop(bars);
    if a.quiet {
        for p in &pushed {
            println!("{}{}", p.reference.full_name(), suffix(&p.reference));
        }
    }
    Ok(0)
}
