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
    /// Authenticate to a registry
    Login(LoginArgs),
    /// Log out from a registry
    Logout(LogoutArgs),
    /// Search for images (Docker Hub, or a registry's catalog)
    Search(SearchArgs),
}

#[derive(Args, Debug)]
pub struct LoginArgs {
    /// Username
    #[arg(short, long)]
    username: Option<String>,
    /// Password
    #[arg(short, long)]
    password: Option<String>,
    /// Take the password from stdin
    #[arg(long)]
    password_stdin: bool,
    /// SERVER (Docker Hub by default)
    server: Option<String>,
}

#[derive(Args, Debug)]
pub struct LogoutArgs {
    /// SERVER (Docker Hub by default)
    server: Option<String>,
}

#[derive(Args, Debug)]
pub struct SearchArgs {
    /// Max number of search results
    #[arg(long, default_value_t = 25)]
    limit: usize,
    /// Don't truncate output
    #[arg(long)]
    no_trunc: bool,
    /// TERM (`host:port/words` searches that registry's catalog)
    term: String,
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
        RegistryCommand::Login(a) => login(a),
        RegistryCommand::Logout(a) => logout(a),
        RegistryCommand::Search(a) => search(a),
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
        berth_engine::image_verbs::pulled(&store, &p.reference);
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
            PushEvent::SkippedForeign => bar.finish_with_message("Skipped foreign layer"),
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
            PushEvent::SkippedForeign => println!("{id}: Skipped foreign layer"),
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

fn prompt(label: &str, echo: bool) -> anyhow::Result<String> {
    use std::io::{BufRead, Write};
    eprint!("{label}");
    std::io::stderr().flush()?;
    let stdin = std::io::stdin();
    let saved = if echo {
        None
    } else {
        let t = nix::sys::termios::tcgetattr(&stdin)?;
        let mut quiet = t.clone();
        quiet
            .local_flags
            .remove(nix::sys::termios::LocalFlags::ECHO);
        nix::sys::termios::tcsetattr(&stdin, nix::sys::termios::SetArg::TCSANOW, &quiet)?;
        Some(t)
    };
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    if let Some(t) = saved {
        let _ = nix::sys::termios::tcsetattr(&stdin, nix::sys::termios::SetArg::TCSANOW, &t);
        eprintln!();
    }
    read?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

fn login(a: LoginArgs) -> anyhow::Result<i32> {
    use std::io::Read;
    let session = Session::from_environment()?;
    let domain = berth_registry::login::server_domain(a.server.as_deref());
    if a.password.is_some() && a.password_stdin {
        anyhow::bail!("--password and --password-stdin are mutually exclusive");
    }
    let interactive = std::io::stdin().is_terminal();
    let password = if a.password_stdin {
        if a.username.is_none() {
            anyhow::bail!("Must provide --username with --password-stdin");
        }
        let mut p = String::new();
        std::io::stdin().read_to_string(&mut p)?;
        Some(p.trim_end_matches(['\n', '\r']).to_string())
    } else {
        if a.password.is_some() {
            eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
        }
        a.password.clone()
    };
    let username = match a.username {
        Some(u) => u,
        None if interactive => prompt("Username: ", true)?,
        None => anyhow::bail!("Cannot perform an interactive login from a non TTY device"),
    };
    let password = match password {
        Some(p) => p,
        None if interactive => prompt("Password: ", false)?,
        None => anyhow::bail!("Cannot perform an interactive login from a non TTY device"),
    };
    if username.is_empty() || password.is_empty() {
        anyhow::bail!("Username and password are required");
    }
    let creds = berth_registry::Credentials {
        username,
        secret: password,
        identity_token: false,
    };
    berth_registry::login::login(&session, &domain, creds)?;
    println!("Login Succeeded");
    Ok(0)
}

fn logout(a: LogoutArgs) -> anyhow::Result<i32> {
    let session = Session::from_environment()?;
    let domain = berth_registry::login::server_domain(a.server.as_deref());
    let (key, found) = berth_registry::login::logout(&session, &domain)?;
    if found {
        println!("Removing login credentials for {key}");
    } else {
        println!("Not logged in to {key}");
    }
    Ok(0)
}

fn search(a: SearchArgs) -> anyhow::Result<i32> {
    use std::io::Write;
    let session = Session::from_environment()?;
    let results = berth_registry::login::search(&session, &a.term, a.limit)?;
    let mut tw = tabwriter::TabWriter::new(std::io::stdout()).padding(3);
    writeln!(tw, "NAME\tDESCRIPTION\tSTARS\tOFFICIAL")?;
    for r in results {
        let mut desc = r.description.replace('\n', " ");
        if !a.no_trunc && desc.chars().count() > 45 {
            desc = desc.chars().take(44).collect::<String>() + "…";
        }
        let official = if r.is_official { "[OK]" } else { "" };
        writeln!(tw, "{}\t{desc}\t{}\t{official}", r.name, r.star_count)?;
    }
    tw.flush()?;
    Ok(0)
}

/// Pull lines on stderr, as `docker run` shows a pull it needed.
struct StderrLines;

impl PullProgress for StderrLines {
    fn status(&self, line: &str) {
        eprintln!("{line}");
    }
    fn layer(&self, id: &str, event: LayerEvent) {
        match event {
            LayerEvent::AlreadyExists => eprintln!("{id}: Already exists"),
            LayerEvent::Complete => eprintln!("{id}: Pull complete"),
            _ => {}
        }
    }
}

/// `run`/`create --pull`: the engine pulls as the policy says; errors end the command with 125.
pub fn ensure_image(
    engine: &berth_engine::Engine,
    image: &str,
    policy: &str,
    platform: Option<&str>,
) -> Result<(), i32> {
    let policy: berth_engine::pull::PullPolicy = policy.parse().map_err(|e| {
        eprintln!("berth: {e}");
        125
    })?;
    // Docker names the tag it looked for: 'busybox:latest'.
    let wanted = crate::containers::full_reference(image);
    let mut on_missing = || eprintln!("Unable to find image '{wanted}' locally");
    match engine.ensure_image(image, policy, platform, &StderrLines, &mut on_missing) {
        Ok(pulled) => {
            if pulled {
                if let Ok(r) = berth_image::Reference::parse_tagged(image) {
                    eprintln!("Status: Downloaded newer image for {}", r.familiar_string());
                }
            }
            Ok(())
        }
        Err(e) => {
            eprintln!("berth: Error response from daemon: {e}");
            Err(125)
        }
    }
}
