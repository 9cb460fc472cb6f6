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

mod archives;
mod args;
use archives::{import, load, save};
pub use args::{
    HistoryArgs, ImageCommand, ImageSub, ImportArgs, InspectArgs, ListArgs, LoadArgs, PruneArgs,
    RmiArgs, SaveArgs,
};

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
        ImageCommand::Rmi(a) | ImageCommand::Image(ImageSub::Rm(a)) => rmi(&store, a),
        ImageCommand::History(a) | ImageCommand::Image(ImageSub::History(a)) => history(&store, a),
        ImageCommand::Tag(a) | ImageCommand::Image(ImageSub::Tag(a)) => {
            if a.target.contains('@') {
                Err(anyhow::anyhow!(
                    "refusing to create a tag with a digest reference"
                ))
            } else {
                berth_engine::image_verbs::tag(&store, &a.source, &a.target)
                    .map_err(Into::into)
                    .map(|_| 0)
            }
        }
        ImageCommand::Save(a) | ImageCommand::Image(ImageSub::Save(a)) => save(&store, a),
        ImageCommand::Load(a) | ImageCommand::Image(ImageSub::Load(a)) => load(&store, a),
        ImageCommand::Import(a) | ImageCommand::Image(ImageSub::Import(a)) => import(&store, a),
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
        legacy_wording: true,
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

fn rmi(store: &Store, a: RmiArgs) -> anyhow::Result<i32> {
    let mut code = 0;
    for r in &a.images {
        match berth_engine::image_verbs::remove(store, r, a.force, !a.no_prune) {
            Ok(events) => {
                for e in events {
                    match e {
                        RemoveEvent::Untagged(t) => {
                            println!("Untagged: {t}");
                        }
                        RemoveEvent::Deleted(id) => {
                            println!("Deleted: {id}");
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
    let (events, reclaimed) = berth_engine::image_verbs::prune(store, a.all, &filter)?;
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
        legacy_wording: true,
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
