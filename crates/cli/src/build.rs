//! `berth build`: flag parsing and rendering only; the work is in `berth-build`.
use anyhow::Context;
use berth_build::{BuildCache, BuildContext, BuildOptions, EngineRunner};
use clap::{Args, Subcommand};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

#[derive(Subcommand, Debug)]
pub enum BuildCommand {
    /// Build an image from a Dockerfile
    Build(BuildArgs),
}

#[derive(Args, Debug)]
pub struct BuildArgs {
    /// Name and optionally a tag in the "name:tag" format
    #[arg(short = 't', long = "tag")]
    tags: Vec<String>,
    /// Name of the Dockerfile (default: "PATH/Dockerfile")
    #[arg(short = 'f', long = "file")]
    file: Option<String>,
    /// Set build-time variables
    #[arg(long = "build-arg")]
    build_args: Vec<String>,
    /// Set the target build stage to build
    #[arg(long)]
    target: Option<String>,
    /// Do not use cache when building the image
    #[arg(long)]
    no_cache: bool,
    /// Set metadata for an image
    #[arg(long = "label")]
    labels: Vec<String>,
    /// Suppress the build output and print image ID on success
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Remove intermediate containers after a successful build (always done)
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    rm: bool,
    /// Always remove intermediate containers (always done)
    #[arg(long)]
    force_rm: bool,
    /// Always attempt to pull a newer version of the image
    #[arg(long)]
    pull: bool,
    /// Set platform if server is multi-platform capable (for pulled base images)
    #[arg(long)]
    platform: Option<String>,
    /// Networking mode for the RUN instructions: "default" (the default bridge network, or
    /// BERTH_DEFAULT_NETWORK), "none", "host" or a network's name
    #[arg(long, default_value = "default")]
    network: String,
    /// Write the image ID to the file
    #[arg(long)]
    iidfile: Option<PathBuf>,
    /// Build context: a directory, or "-" for a tar (or a Dockerfile) on stdin
    context: String,
}

/// Runs one verb; returns the process exit code (1 when the build fails, like docker build).
pub fn run(root: &Path, command: BuildCommand) -> anyhow::Result<i32> {
    match command {
        BuildCommand::Build(args) => build(root, args),
    }
}

fn parse_build_args(values: &[String]) -> BTreeMap<String, Option<String>> {
    values
        .iter()
        .map(|v| match v.split_once('=') {
            Some((k, v)) => (k.to_string(), Some(v.to_string())),
            None => (v.clone(), std::env::var(v).ok()),
        })
        .collect()
}

fn build(root: &Path, args: BuildArgs) -> anyhow::Result<i32> {
    for tag in &args.tags {
        if berth_image::Reference::parse_tagged(tag).is_err() {
            eprintln!("invalid argument {tag:?} for \"-t, --tag\" flag: invalid reference format");
            return Ok(125);
        }
    }
    // Like `docker build`, every failure past flag parsing exits 1.
    match build_image(root, &args) {
        Ok(()) => Ok(0),
        Err(err) => {
            let _ = std::io::stdout().flush();
            eprintln!("{}", error_text(&err));
            Ok(1)
        }
    }
}

fn build_image(root: &Path, args: &BuildArgs) -> anyhow::Result<()> {
    let (context, stdin_dockerfile) = if args.context == "-" {
        let got = BuildContext::from_stdin(std::io::stdin().lock())?;
        (got.context, got.dockerfile)
    } else {
        (BuildContext::from_dir(Path::new(&args.context))?, None)
    };
    let (dockerfile_name, dockerfile_text) = match stdin_dockerfile {
        Some(text) => ("Dockerfile".to_string(), text),
        // `-f -` reads the Dockerfile from stdin while the context stays a directory.
        None if args.file.as_deref() == Some("-") => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("unable to prepare context: unable to read Dockerfile from stdin")?;
            ("Dockerfile".to_string(), text)
        }
        None => {
            let name = args
                .file
                .clone()
                .unwrap_or_else(|| "Dockerfile".to_string());
            // `-f` is relative to the working directory, except inside a stdin context.
            let path = match &args.file {
                Some(f) if args.context != "-" => PathBuf::from(f),
                _ => context.root().join(&name),
            };
            let text = std::fs::read_to_string(&path).with_context(|| {
                format!(
                    "unable to prepare context: unable to read Dockerfile {}",
                    path.display()
                )
            })?;
            (name, text)
        }
    };
    let labels = args
        .labels
        .iter()
        .map(|l| match l.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (l.clone(), String::new()),
        })
        .collect();
    let options = BuildOptions {
        dockerfile_name,
        dockerfile_text,
        tags: args.tags.clone(),
        build_args: parse_build_args(&args.build_args),
        target: args.target.clone(),
        no_cache: args.no_cache,
        labels,
    };
    let mut runner = EngineRunner::open(root)?;
    runner.show_output = !args.quiet;
    if args.pull {
        runner.pull_policy = berth_engine::pull::PullPolicy::Always;
    }
    runner.platform = args.platform.clone();
    runner.network_mode = match args.network.as_str() {
        "default" => match berth_engine::network::default_mode().as_str() {
            "none" => String::new(),
            other => other.to_string(),
        },
        "none" => String::new(),
        other if other.starts_with("container:") => anyhow::bail!(
            "network mode {other:?} not supported by berth build (use default, none, host or a network name)"
        ),
        other => other.to_string(),
    };
    let mut cache = BuildCache::open(root)?;
    let stdout = std::io::stdout();
    let mut sink = std::io::sink();
    let mut lock = stdout.lock();
    let out: &mut dyn Write = if args.quiet { &mut sink } else { &mut lock };
    let result = berth_build::build(&mut runner, &mut cache, &context, &options, out);
    drop(lock);
    let outcome = result?;
    if args.quiet {
        println!("{}", outcome.image_id);
    }
    if let Some(path) = &args.iidfile {
        std::fs::write(path, &outcome.image_id)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// The error and its causes, skipping a cause its parent's message already includes.
fn error_text(err: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in err.chain() {
        let part = cause.to_string();
        if !text.contains(&part) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&part);
        }
    }
    text
}
