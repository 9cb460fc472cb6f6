//! `berth` verbs for images: flag parsing and rendering only; the work is in berth-image.
//! Output follows Docker: tables through a tabwriter laid out like Docker's, humanized sizes and
//! ages, `inspect` as a 4-space-indented JSON array, errors as `Error: …` with exit status 1.
use anyhow::Context;
use berth_common::time::time_ago;
use berth_common::units::{ellipsis, human_size};
use berth_image::{ImageError, ImportOptions, Progress, RemoveEvent, Store};
use clap::{ArgAction, Args, Subcommand};
use serde_json::Value;
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

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
    all: bool,
    /// Only show image IDs
    #[arg(short, long)]
    quiet: bool,
    /// Show digests
    #[arg(long)]
    digests: bool,
    /// Don't truncate output
    #[arg(long)]
    no_trunc: bool,
    /// Format output using a custom template ('table', 'json', or a Go-style template)
    #[arg(long)]
    format: Option<String>,
    /// Filter output based on conditions provided (dangling=true|false, reference=PATTERN)
    #[arg(short, long)]
    filter: Vec<String>,
    /// REPOSITORY[:TAG]
    repository: Option<String>,
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// Format output using a custom template
    #[arg(short, long)]
    format: Option<String>,
    /// Return JSON for specified type
    #[arg(long = "type")]
    kind: Option<String>,
    /// Display total file sizes (accepted for compatibility)
    #[arg(short, long)]
    size: bool,
    #[arg(required = true)]
    names: Vec<String>,
}

#[derive(Args, Debug)]
pub struct RmiArgs {
    /// Force removal of the image
    #[arg(short, long)]
    force: bool,
    /// Do not delete untagged parents
    #[arg(long)]
    no_prune: bool,
    #[arg(required = true)]
    images: Vec<String>,
}

#[derive(Args, Debug)]
pub struct HistoryArgs {
    /// Print sizes and dates in human readable format
    #[arg(short = 'H', long = "human", default_value_t = true, action = ArgAction::Set,
          num_args = 0..=1, default_missing_value = "true")]
    human: bool,
    /// Don't truncate output
    #[arg(long)]
    no_trunc: bool,
    /// Only show image IDs
    #[arg(short, long)]
    quiet: bool,
    /// Format output using a custom template
    #[arg(long)]
    format: Option<String>,
    image: String,
}

#[derive(Args, Debug)]
pub struct TagArgs {
    source: String,
    target: String,
}

#[derive(Args, Debug)]
pub struct SaveArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short, long)]
    output: Option<PathBuf>,
    #[arg(required = true)]
    images: Vec<String>,
}

#[derive(Args, Debug)]
pub struct LoadArgs {
    /// Read from tar archive file, instead of STDIN
    #[arg(short, long)]
    input: Option<PathBuf>,
    /// Suppress the load output
    #[arg(short, long)]
    quiet: bool,
}

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// Apply Dockerfile instruction to the created image
    #[arg(short, long)]
    change: Vec<String>,
    /// Set commit message for imported image
    #[arg(short, long)]
    message: Option<String>,
    /// Set platform if server is multi-platform capable (only the host's is supported)
    #[arg(long)]
    platform: Option<String>,
    /// file|URL|- (stdin)
    source: String,
    /// REPOSITORY[:TAG]
    reference: Option<String>,
}

#[derive(Args, Debug)]
pub struct PruneArgs {
    /// Remove all unused images, not just dangling ones
    #[arg(short, long)]
    all: bool,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    force: bool,
    /// Provide filter values (e.g. "until=<timestamp>", "label=k=v", "label!=k")
    #[arg(long)]
    filter: Vec<String>,
}

/// Runs one verb; returns the process exit code (Docker's: 1 when the request failed).
pub fn run(root: &Path, command: ImageCommand) -> anyhow::Result<i32> {
    let store = Store::open(root)
        .with_context(|| format!("opening image store under {}", root.display()))?;
    let result = match command {
        ImageCommand::Images(a) | ImageCommand::Image(ImageSub::Ls(a)) => list(&store, a),
        ImageCommand::Image(ImageSub::Inspect(a)) => inspect(&store, a, true),
        // Containers first, as Docker does (berth-engine's inspect; see containers.rs).
        ImageCommand::Inspect(a)
            if a.kind.as_deref() == Some("container")
                || (a.kind.is_none()
                    && a.names
                        .iter()
                        .all(|n| crate::containers::is_container(root, n))) =>
        {
            crate::containers::inspect(root, a.format.as_deref(), &a.names)
        }
        ImageCommand::Inspect(a) => inspect(&store, a, false),
        ImageCommand::Rmi(a) | ImageCommand::Image(ImageSub::Rm(a)) => rmi(root, &store, a),
        ImageCommand::History(a) | ImageCommand::Image(ImageSub::History(a)) => history(&store, a),
        ImageCommand::Tag(a) | ImageCommand::Image(ImageSub::Tag(a)) => {
            if a.target.contains('@') {
                Err(anyhow::anyhow!(
                    "refusing to create a tag with a digest reference"
                ))
            } else {
                store
                    .tag(&a.source, &a.target)
                    .map_err(Into::into)
                    .map(|_| {
                        if let Ok(img) = store.resolve(&a.source) {
                            berth_engine::events::image(root, "tag", &img.id, Some(&a.target));
                        }
                        0
                    })
            }
        }
        ImageCommand::Save(a) | ImageCommand::Image(ImageSub::Save(a)) => {
            let names = a.images.clone();
            save(&store, a).inspect(|_| {
                for name in &names {
                    berth_engine::events::image(root, "save", name, Some(name));
                }
            })
        }
        ImageCommand::Load(a) | ImageCommand::Image(ImageSub::Load(a)) => load(root, &store, a),
        ImageCommand::Import(a) | ImageCommand::Image(ImageSub::Import(a)) => {
            import(root, &store, a)
        }
        ImageCommand::Image(ImageSub::Prune(a)) => prune(&store, a),
    };
    match result {
        Ok(code) => Ok(code),
        Err(e) => {
            if let Some(code) = crate::render::report_format_error(&e) {
                return Ok(code);
            }
            eprintln!("Error: {e:#}");
            Ok(1)
        }
    }
}

fn short_id(id: &str) -> String {
    id.trim_start_matches("sha256:").chars().take(12).collect()
}

/// One row of `images`, with Docker's `--format` field names.
struct ImageRow {
    repository: String,
    tag: String,
    digest: String,
    id: String,
    created_since: String,
    created_at: String,
    size: String,
}

impl ImageRow {
    fn json(&self) -> Value {
        serde_json::json!({
            "Containers": "N/A",
            "CreatedAt": self.created_at,
            "CreatedSince": self.created_since,
            "Digest": self.digest,
            "ID": self.id,
            "Repository": self.repository,
            "SharedSize": "N/A",
            "Size": self.size,
            "Tag": self.tag,
            "UniqueSize": "N/A",
            "VirtualSize": self.size,
        })
    }
}

fn list(store: &Store, a: ListArgs) -> anyhow::Result<i32> {
    let mut filter = berth_image::filter::ImageFilter::from_flags(&a.filter)?;
    if let Some(r) = &a.repository {
        filter = filter.with_reference(r);
    }
    let summaries = store.list_filtered(a.all, &filter)?;
    let mut rows = Vec::new();
    let mut ids_seen = Vec::new();
    for s in &summaries {
        let id = if a.no_trunc {
            s.id.clone()
        } else {
            short_id(&s.id)
        };
        let created_since = s.created.map(time_ago).unwrap_or_else(|| "N/A".into());
        let created_at = s
            .created
            .map(|t| t.format("%Y-%m-%d %H:%M:%S %z UTC").to_string())
            .unwrap_or_default();
        let size = human_size(s.size);
        let mut pairs: Vec<(String, String, String)> = Vec::new();
        for t in &s.repo_tags {
            let (repo, tag) = t.rsplit_once(':').unwrap_or((t, ""));
            let digest = s
                .repo_digests
                .iter()
                .find(|d| d.split('@').next() == Some(repo))
                .and_then(|d| d.split('@').nth(1))
                .unwrap_or("<none>");
            pairs.push((repo.to_string(), tag.to_string(), digest.to_string()));
        }
        for d in &s.repo_digests {
            let (repo, digest) = d.split_once('@').unwrap_or((d, ""));
            if !pairs.iter().any(|p| p.0 == repo) {
                pairs.push((repo.to_string(), "<none>".into(), digest.to_string()));
            }
        }
        if pairs.is_empty() {
            pairs.push(("<none>".into(), "<none>".into(), "<none>".into()));
        }
        for (repo, tag, digest) in pairs {
            rows.push(ImageRow {
                repository: repo,
                tag,
                digest,
                id: id.clone(),
                created_since: created_since.clone(),
                created_at: created_at.clone(),
                size: size.clone(),
            });
        }
    }
    let mut out = std::io::stdout().lock();
    if a.quiet {
        for r in &rows {
            if !ids_seen.contains(&r.id) {
                writeln!(out, "{}", r.id)?;
                ids_seen.push(r.id.clone());
            }
        }
        return Ok(0);
    }
    let json_rows: Vec<Value> = rows.iter().map(ImageRow::json).collect();
    let columns: &[(&str, &str)] = if a.digests {
        &[
            ("REPOSITORY", "Repository"),
            ("TAG", "Tag"),
            ("DIGEST", "Digest"),
            ("IMAGE ID", "ID"),
            ("CREATED", "CreatedSince"),
            ("SIZE", "Size"),
        ]
    } else {
        &[
            ("REPOSITORY", "Repository"),
            ("TAG", "Tag"),
            ("IMAGE ID", "ID"),
            ("CREATED", "CreatedSince"),
            ("SIZE", "Size"),
        ]
    };
    let table = crate::render::Table {
        go_type: "*formatter.imageContext",
        columns,
        headers: IMAGE_HEADERS,
    };
    crate::render::print_rows(&mut out, &json_rows, a.format.as_deref(), &table)?;
    Ok(0)
}

/// Docker's headers for image fields a `table` template may name.
const IMAGE_HEADERS: &[(&str, &str)] = &[
    ("ID", "IMAGE ID"),
    ("CreatedSince", "CREATED"),
    ("CreatedAt", "CREATED AT"),
    ("CreatedBy", "CREATED BY"),
    ("Digest", "DIGEST"),
    ("VirtualSize", "SIZE"),
    ("SharedSize", "SHARED SIZE"),
    ("UniqueSize", "UNIQUE SIZE"),
];

/// `inspect` for images; `image_only` picks Docker's "No such image" over "No such object".
pub fn inspect_images(
    store: &Store,
    names: &[String],
    format: Option<&str>,
    image_only: bool,
) -> anyhow::Result<i32> {
    let mut docs = Vec::new();
    let mut code = 0;
    let mut errors = Vec::new();
    for (name, r) in names.iter().zip(store.inspect_images(names)) {
        match r {
            Ok(d) => docs.push(d),
            Err(ImageError::NoSuchImage(_)) | Err(ImageError::InvalidReference { .. }) => {
                code = 1;
                errors.push(if image_only {
                    format!("Error: No such image: {name}")
                } else {
                    format!("Error: No such object: {name}")
                });
            }
            Err(e) => {
                code = 1;
                errors.push(format!("Error: {e}"));
            }
        }
    }
    if !(docs.is_empty() && format.is_some()) {
        crate::render::print_inspect(&docs, format)?;
    }
    for e in errors {
        eprintln!("{e}");
    }
    Ok(code)
}

fn inspect(store: &Store, a: InspectArgs, image_only: bool) -> anyhow::Result<i32> {
    if let Some(k) = &a.kind {
        if k != "image" {
            anyhow::bail!("unsupported --type {k}: this build of berth inspects images only here");
        }
    }
    inspect_images(store, &a.names, a.format.as_deref(), image_only)
}

fn rmi(root: &Path, store: &Store, a: RmiArgs) -> anyhow::Result<i32> {
    let mut code = 0;
    for r in &a.images {
        match store.remove_image(r, a.force, !a.no_prune) {
            Ok(events) => {
                for e in events {
                    match e {
                        RemoveEvent::Untagged(t) => {
                            println!("Untagged: {t}");
                            berth_engine::events::image(root, "untag", r, Some(&t));
                        }
                        RemoveEvent::Deleted(id) => {
                            println!("Deleted: {id}");
                            berth_engine::events::image(root, "delete", &id, None);
                        }
                    }
                }
            }
            Err(e) => {
                eprintln!("Error: {e}");
                code = 1;
            }
        }
    }
    Ok(code)
}

fn prune(store: &Store, a: PruneArgs) -> anyhow::Result<i32> {
    let filter = match berth_image::filter::PruneFilter::from_flags(&a.filter) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("Error response from daemon: {e}");
            return Ok(1);
        }
    };
    if !a.force && std::io::stdin().is_terminal() {
        if a.all {
            eprint!("WARNING! This will remove all images without at least one container associated to them.\nAre you sure you want to continue? [y/N] ");
        } else {
            eprint!("WARNING! This will remove all dangling images.\nAre you sure you want to continue? [y/N] ");
        }
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            return Ok(0);
        }
    }
    let (events, reclaimed) = store.prune_images_filtered(a.all, &filter)?;
    if !events.is_empty() {
        println!("Deleted Images:");
        for e in events {
            match e {
                RemoveEvent::Untagged(t) => println!("untagged: {t}"),
                RemoveEvent::Deleted(id) => println!("deleted: {id}"),
            }
        }
        println!();
    }
    println!("Total reclaimed space: {}", human_size(reclaimed));
    Ok(0)
}

fn history(store: &Store, a: HistoryArgs) -> anyhow::Result<i32> {
    let rows = store.history(&a.image)?;
    let mut out = std::io::stdout().lock();
    if a.quiet {
        for r in &rows {
            let id = if a.no_trunc || r.id == "<missing>" {
                r.id.clone()
            } else {
                short_id(&r.id)
            };
            writeln!(out, "{id}")?;
        }
        return Ok(0);
    }
    let fields = |r: &berth_image::HistoryRow| {
        let id = if a.no_trunc || r.id == "<missing>" {
            r.id.clone()
        } else {
            short_id(&r.id)
        };
        let created = match (a.human, r.created) {
            (true, Some(t)) => time_ago(t),
            (false, Some(t)) => berth_common::time::rfc3339_secs(t),
            (_, None) => "N/A".into(),
        };
        let by = r.created_by.replace('\t', " ");
        let by = if a.no_trunc { by } else { ellipsis(&by, 45) };
        let size = if a.human {
            human_size(r.size)
        } else {
            r.size.to_string()
        };
        (id, created, by, size, r.comment.clone())
    };
    let json_rows: Vec<Value> = rows
        .iter()
        .map(|r| {
            let (id, created, by, size, comment) = fields(r);
            serde_json::json!({"Comment": comment, "CreatedAt": created, "CreatedBy": by, "CreatedSince": created, "ID": id, "Size": size})
        })
        .collect();
    let table = crate::render::Table {
        go_type: "*image.historyContext",
        columns: &[
            ("IMAGE", "ID"),
            ("CREATED", "CreatedSince"),
            ("CREATED BY", "CreatedBy"),
            ("SIZE", "Size"),
            ("COMMENT", "Comment"),
        ],
        headers: &[("CreatedAt", "CREATED AT")],
    };
    crate::render::print_rows(&mut out, &json_rows, a.format.as_deref(), &table)?;
    Ok(0)
}

fn save(store: &Store, a: SaveArgs) -> anyhow::Result<i32> {
    match &a.output {
        Some(path) => {
            let dir = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let tmp = dir.join(format!(".{name}.berth-save-{}", std::process::id()));
            let written = (|| -> anyhow::Result<()> {
                let f = std::fs::File::create(&tmp)
                    .with_context(|| format!("creating {}", tmp.display()))?;
                let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
                store.save(&a.images, &mut w)?;
                w.flush()?;
                std::fs::rename(&tmp, path)
                    .with_context(|| format!("writing {}", path.display()))?;
                Ok(())
            })();
            if written.is_err() {
                let _ = std::fs::remove_file(&tmp);
            }
            written?;
        }
        None => {
            let stdout = std::io::stdout();
            if stdout.is_terminal() {
                anyhow::bail!(
                    "cowardly refusing to save to a terminal. Use the -o flag or redirect"
                );
            }
            let mut w = std::io::BufWriter::with_capacity(1 << 20, stdout.lock());
            store.save(&a.images, &mut w)?;
            w.flush()?;
        }
    }
    Ok(0)
}

/// Per-layer bars on a terminal; silent otherwise (as `docker load` without a TTY).
struct Bars {
    multi: indicatif::MultiProgress,
    bars: std::sync::Mutex<std::collections::HashMap<String, indicatif::ProgressBar>>,
}

impl Progress for Bars {
    fn start(&self, name: &str, total: u64) {
        let bar = self.multi.add(indicatif::ProgressBar::new(total));
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{prefix:.bold} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_prefix(short_id(name.trim_start_matches("blobs/sha256/")));
        if let Ok(mut b) = self.bars.lock() {
            b.insert(name.to_string(), bar);
        }
    }
    fn advance(&self, name: &str, bytes: u64) {
        if let Ok(b) = self.bars.lock() {
            if let Some(bar) = b.get(name) {
                bar.inc(bytes);
            }
        }
    }
    fn finish(&self, name: &str) {
        if let Ok(b) = self.bars.lock() {
            if let Some(bar) = b.get(name) {
                bar.finish();
            }
        }
    }
}

/// One plain line per layer on stderr when it is not a terminal (logs, CI), so long loads still
/// show progress without escape codes; stdout keeps Docker's `Loaded image…` lines only.
struct PlainLines;

impl Progress for PlainLines {
    fn start(&self, name: &str, total: u64) {
        eprintln!(
            "Loading layer {} ({})",
            short_id(name.trim_start_matches("blobs/sha256/")),
            human_size(total)
        );
    }
    fn finish(&self, name: &str) {
        eprintln!(
            "Loaded layer {}",
            short_id(name.trim_start_matches("blobs/sha256/"))
        );
    }
}

fn load(root: &Path, store: &Store, a: LoadArgs) -> anyhow::Result<i32> {
    let input: Box<dyn Read> = match &a.input {
        Some(p) => {
            Box::new(std::fs::File::open(p).with_context(|| format!("open {}", p.display()))?)
        }
        None => {
            if std::io::stdin().is_terminal() {
                anyhow::bail!("requested load from stdin, but stdin is empty");
            }
            Box::new(std::io::stdin().lock())
        }
    };
    let bars = Bars {
        multi: indicatif::MultiProgress::new(),
        bars: Default::default(),
    };
    let progress: &dyn Progress = if a.quiet {
        &berth_image::NoProgress
    } else if std::io::stderr().is_terminal() {
        &bars
    } else {
        &PlainLines
    };
    let loaded = store.load(input, progress)?;
    for img in loaded {
        for (tag, old) in &img.renamed {
            println!("The image {tag} already exists, renaming the old one with ID {old} to empty string");
        }
        berth_engine::events::image(root, "load", &img.id, img.tags.first().map(String::as_str));
        if img.tags.is_empty() {
            println!("Loaded image ID: {}", img.id);
        }
        for t in &img.tags {
            println!("Loaded image: {t}");
        }
    }
    Ok(0)
}

fn import(root: &Path, store: &Store, a: ImportArgs) -> anyhow::Result<i32> {
    if let Some(p) = &a.platform {
        let want = format!("linux/{}", berth_image::import::host_architecture());
        if p != &want && p != "linux" {
            anyhow::bail!("platform {p} is not supported here (only {want})");
        }
    }
    let options = ImportOptions {
        reference: a.reference.clone(),
        changes: a.change.clone(),
        message: a.message.clone(),
        source: if a.source.starts_with("http://") || a.source.starts_with("https://") {
            a.source.clone()
        } else {
            "-".into()
        },
    };
    let id = if a.source == "-" {
        store.import(std::io::stdin().lock(), &options)?
    } else if a.source.starts_with("http://") || a.source.starts_with("https://") {
        let body = fetch(&a.source)?;
        store.import(body, &options)?
    } else {
        let f = std::fs::File::open(&a.source).with_context(|| format!("open {}", a.source))?;
        store.import(f, &options)?
    };
    berth_engine::events::image(root, "import", &id, a.reference.as_deref());
    println!("{id}");
    Ok(0)
}

/// A minimal blocking HTTP/1.0 GET for `import URL`: plain http only (no TLS here).
fn fetch(url: &str) -> anyhow::Result<Box<dyn Read>> {
    use std::io::BufRead;
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| anyhow::anyhow!("{url}: only http:// URLs are supported for import"))?;
    let (host_port, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let addr = if host_port.contains(':') {
        host_port.to_string()
    } else {
        format!("{host_port}:80")
    };
    let mut stream =
        std::net::TcpStream::connect(&addr).with_context(|| format!("connecting to {addr}"))?;
    // One write: a request split over several segments may be read only in part by a simple
    // server, which then resets the connection.
    let request = format!("GET {path} HTTP/1.0\r\nHost: {host_port}\r\nUser-Agent: berth\r\n\r\n");
    stream.write_all(request.as_bytes())?;
    let mut reader = std::io::BufReader::with_capacity(1 << 20, stream);
    let mut status = String::new();
    reader.read_line(&mut status)?;
    let code = status.split_whitespace().nth(1).unwrap_or("");
    if code != "200" {
        anyhow::bail!("fetching {url}: server answered {}", status.trim());
    }
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" || line == "\n" {
            break;
        }
    }
    Ok(Box::new(reader))
}
