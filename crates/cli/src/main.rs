//! `berth`: the Docker-compatible command line. Thin: parse flags, call a library function,
//! render the result. Exit codes follow Docker: the container's own status, 125 for an engine
//! error, 126 when the command cannot be invoked, 127 when it is not found.
use clap::{CommandFactory, Parser, Subcommand};
use std::path::{Path, PathBuf};

mod build;
mod containers;
mod daily;
mod images;
mod network;
mod registry;
mod render;
mod system;
mod volumes;

#[derive(Parser)]
#[command(name = "berth", about = "A daemonless container engine", version)]
struct Cli {
    /// Root of Berth's storage.
    #[arg(
        long,
        global = true,
        env = "BERTH_ROOT",
        default_value = "/var/lib/berth"
    )]
    root: PathBuf,
    /// Enable debug logging on stderr.
    #[arg(short = 'D', long, global = true)]
    debug: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show the Berth version information.
    Version {
        /// Format output using a custom template: 'json', or a Go template over Docker's
        /// version document (`.Client`, `.Server`).
        #[arg(short, long)]
        format: Option<String>,
    },
    /// Generate the autocompletion script for the specified shell
    Completion {
        /// bash, zsh, fish, elvish or powershell
        shell: clap_complete::Shell,
    },
    #[command(flatten)]
    Image(images::ImageCommand),
    #[command(flatten)]
    Container(containers::ContainerCommand),
    #[command(flatten)]
    Build(build::BuildCommand),
    #[command(flatten)]
    Network(network::NetworkCommand),
    #[command(flatten)]
    Volume(volumes::VolumeCommand),
    #[command(flatten)]
    Daily(daily::DailyCommand),
    #[command(flatten)]
    Registry(registry::RegistryCommand),
    #[command(flatten)]
    System(system::SystemCommand),
}

fn main() {
    // A threaded caller of the engine (the API service, a library user) re-executes berth at a
    // hidden entry point to start a container's monitor; serve it before anything else.
    berth_engine::hidden_entry::run_if_requested();
    // The embedded resolver of a user-defined network is this binary at a hidden entry point.
    let mut args = std::env::args_os();
    if args.nth(1).as_deref() == Some(berth_engine::net::dns::RESOLVER_ARG.as_ref()) {
        let (state_dir, network) = (args.next(), args.next());
        let code = match (state_dir, network) {
            (Some(dir), Some(net)) => {
                match berth_engine::net::dns::serve(Path::new(&dir), &net.to_string_lossy()) {
                    Ok(()) => 0,
                    Err(e) => {
                        eprintln!("Error: {e}");
                        125
                    }
                }
            }
            _ => 125,
        };
        std::process::exit(code);
    }
    if let Ok(exe) = std::env::current_exe() {
        berth_engine::net::dns::set_resolver_program(exe);
    }
    // Docker exits 125 when its own flags are wrong; help and version requests exit 0.
    let cli = match Cli::try_parse_from(management_form(std::env::args_os().collect())) {
        Ok(cli) => cli,
        Err(err) => {
            // An unknown command exits 1, as `docker frobnicate` does; bad flags 125.
            let code = match err.kind() {
                clap::error::ErrorKind::InvalidSubcommand => 1,
                _ if err.use_stderr() => 125,
                _ => 0,
            };
            let _ = err.print();
            std::process::exit(code);
        }
    };
    if cli.debug {
        tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_env_filter("debug")
            .init();
    }
    if !matches!(
        cli.command,
        Command::Completion { .. } | Command::Version { .. }
    ) {
        recover(&cli.root);
    }
    let result = match cli.command {
        Command::Completion { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "berth", &mut std::io::stdout());
            Ok(0)
        }
        Command::Version { format: None } => {
            println!("Berth version {}", env!("CARGO_PKG_VERSION"));
            Ok(0)
        }
        Command::Version {
            format: Some(format),
        } => render::print_version(&format),
        Command::Image(c) => images::run(&cli.root, c),
        Command::Container(c) => containers::run(&cli.root, c),
        Command::Build(c) => build::run(&cli.root, c),
        Command::Network(c) => network::run(&cli.root, c),
        Command::Volume(c) => volumes::run(&cli.root, c),
        Command::Daily(c) => daily::run(&cli.root, c),
        Command::Registry(c) => registry::run(&cli.root, c),
        Command::System(c) => system::run(&cli.root, c),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(err) => {
            if let Some(code) = render::report_format_error(&err) {
                std::process::exit(code);
            }
            eprintln!("Error: {err:#}");
            std::process::exit(125);
        }
    }
}

/// Every command first finishes or undoes what a killed command left in the root (see
/// `berth_engine::recovery`): cheap when nothing was cut short. A root that does not exist yet
/// has nothing to recover, and is not created here.
fn recover(root: &Path) {
    if !root.join("containers").is_dir() && !root.join("intents").is_dir() {
        return;
    }
    let engine = berth_engine::Engine::open(root);
    if let Err(e) = berth_engine::recovery::recover(&engine) {
        tracing::debug!("recovery: {e}");
    }
}

/// Docker's management forms (`container stop`, `image pull`, …) are the top-level verbs under
/// another name. The groups define their own forms where the two differ (`container ls`,
/// `image ls`, `volume …`); every other `container X` / `image X` is read as the top-level `X`.
fn management_form(mut args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    const CONTAINER: &[&str] = &[
        "attach", "commit", "cp", "create", "diff", "exec", "export", "kill", "logs", "pause",
        "port", "rename", "restart", "rm", "run", "start", "stats", "stop", "top", "unpause",
        "update", "wait",
    ];
    const IMAGE: &[&str] = &["pull", "push", "build"];
    // Skip the global flags to find the verb.
    let mut i = 1;
    while let Some(arg) = args.get(i).and_then(|a| a.to_str()) {
        match arg {
            "--root" => i += 2,
            a if a.starts_with("--root=") || a == "-D" || a == "--debug" => i += 1,
            _ => break,
        }
    }
    let group = args.get(i).and_then(|a| a.to_str()).unwrap_or("");
    let verb = args.get(i + 1).and_then(|a| a.to_str()).unwrap_or("");
    if (group == "container" && CONTAINER.contains(&verb))
        || (group == "image" && IMAGE.contains(&verb))
    {
        args.remove(i);
    }
    args
}

#[cfg(test)]
mod management_form_tests {
    use super::management_form;

    fn form(args: &[&str]) -> Vec<String> {
        management_form(args.iter().map(Into::into).collect())
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect()
    }

    #[test]
    fn group_forms_name_the_top_level_verbs() {
        assert_eq!(
            form(&["berth", "container", "rm", "x"]),
            ["berth", "rm", "x"]
        );
        assert_eq!(
            form(&["berth", "--root", "/r", "container", "stop", "x"]),
            ["berth", "--root", "/r", "stop", "x"]
        );
        assert_eq!(
            form(&["berth", "container", "ls"]),
            ["berth", "container", "ls"]
        );
        assert_eq!(
            form(&["berth", "image", "pull", "a"]),
            ["berth", "pull", "a"]
        );
        assert_eq!(
            form(&["berth", "run", "container"]),
            ["berth", "run", "container"]
        );
    }
}
