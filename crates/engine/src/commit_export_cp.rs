//! Verbs on a container's filesystem: `commit` (its upper dir becomes a new image layer with a
//! history row, via berth-image), `export` (a tar of the merged root) and `cp` (copies in
//! either direction); the file access itself is `container_fs`'s, resolved inside the root.
//! A stopped container's layer is mounted for the operation and unmounted again.
use crate::error::{EngineError, Result};
use crate::lifecycle::Engine;
use crate::record::ContainerRecord;
use std::io::Write;
use std::path::{Path, PathBuf};

/// `berth commit` options.
#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    pub reference: Option<String>,
    pub author: Option<String>,
    pub message: Option<String>,
    /// `-c` Dockerfile instructions applied to the new image's config.
    pub changes: Vec<String>,
    /// Freeze the container during the commit (Docker's default when it runs).
    pub pause: bool,
}

fn image_err(e: berth_image::ImageError) -> EngineError {
    EngineError::Image(e)
}

/// Runs `work` with the container's root mounted (mounting it just for `work` if needed).
fn with_rootfs<T>(
    engine: &Engine,
    record: &ContainerRecord,
    work: impl FnOnce(&Path) -> Result<T>,
) -> Result<T> {
    let merged = PathBuf::from(&record.berth_layer.merged_dir);
    let was_mounted = record.driver.is_empty() || crate::layer::is_mount_point(&merged);
    if !was_mounted {
        engine.ensure_mounted(record)?;
    }
    let out = work(&merged);
    if !was_mounted && !record.is_running() {
        let _ = engine.unmount(record);
    }
    out
}

/// `berth commit`: returns the new image's ID.
pub fn commit(engine: &Engine, record: &ContainerRecord, opts: &CommitOptions) -> Result<String> {
    if record.driver.is_empty() {
        return Err(EngineError::state(
            &record.id,
            "a --rootfs container has no layer to commit",
        ));
    }
    let store = berth_image::Store::open(engine.root()).map_err(image_err)?;
    let base = store.image(&record.image).map_err(image_err)?;
    let mut config = base.config.clone();
    let container_config: berth_image::ContainerConfig = serde_json::to_value(&record.config)
        .and_then(serde_json::from_value)
        .map_err(|e| EngineError::encode(format!("the config of container {}", record.id), e))?;
    let mut runtime = container_config.clone();
    berth_image::import::apply_changes(&mut runtime, &opts.changes).map_err(image_err)?;
    let now = berth_common::time::now_rfc3339();
    config.config = Some(runtime);
    config.container_config = Some(container_config);
    config.container = Some(record.id.clone());
    config.created = Some(now.clone());
    config.author = opts.author.clone();
    config.comment = opts.message.clone();
    config.parent = None;
    let mut created_by = record.path.clone();
    for a in &record.args {
        created_by.push(' ');
        created_by.push_str(a);
    }
    config.history.push(berth_image::History {
        created: Some(now),
        author: opts.author.clone(),
        created_by: Some(created_by),
        comment: opts.message.clone(),
        empty_layer: false,
    });
    let paused = opts.pause
        && record.is_running()
        && !record.state.paused
        && engine.runtime.pause(&record.id).is_ok();
    let result = store
        .commit_container_layer(&record.id, config, Some(&record.image))
        .map_err(image_err);
    if paused {
        let _ = engine.runtime.resume(&record.id);
    }
    let id = result?;
    crate::events::container(
        engine.root(),
        record,
        "commit",
        &[
            ("comment", opts.message.clone().unwrap_or_default()),
            ("imageID", id.clone()),
            ("imageRef", opts.reference.clone().unwrap_or_default()),
        ],
    );
    if let Some(reference) = &opts.reference {
        store.tag(&id, reference).map_err(image_err)?;
    }
    Ok(id)
}

/// `berth export`: writes a tar of the container's root filesystem to `out`.
pub fn export(engine: &Engine, record: &ContainerRecord, out: &mut dyn Write) -> Result<()> {
    with_rootfs(engine, record, |root| {
        crate::container_fs::export_root(root, out)
    })
}

pub use crate::container_fs::CopyOptions;

/// `berth cp CONTAINER:SRC HOSTDST`.
pub fn copy_from(
    engine: &Engine,
    record: &ContainerRecord,
    src: &str,
    dst: &Path,
    opts: CopyOptions,
) -> Result<()> {
    with_rootfs(engine, record, |root| {
        crate::container_fs::copy_out(root, record.short_name(), src, dst, opts)
    })
}

/// `berth cp CONTAINER:SRC -`: the source as a tar on `out`.
pub fn archive_from(
    engine: &Engine,
    record: &ContainerRecord,
    src: &str,
    opts: CopyOptions,
    out: &mut dyn Write,
) -> Result<()> {
    with_rootfs(engine, record, |root| {
        crate::container_fs::archive_out(root, record.short_name(), src, opts.follow_link, out)
    })
}

/// `berth cp HOSTSRC CONTAINER:DST`.
pub fn copy_to(
    engine: &Engine,
    record: &ContainerRecord,
    src: &Path,
    dst: &str,
    opts: CopyOptions,
) -> Result<()> {
    with_rootfs(engine, record, |root| {
        crate::container_fs::copy_in(root, record.short_name(), src, dst, opts)
    })
}

/// `berth cp - CONTAINER:DST`: extracts a tar from `input`.
pub fn extract_to(
    engine: &Engine,
    record: &ContainerRecord,
    input: &mut dyn std::io::Read,
    dst: &str,
    opts: CopyOptions,
) -> Result<()> {
    with_rootfs(engine, record, |root| {
        crate::container_fs::extract_in(root, record.short_name(), input, dst, opts.archive)
    })
}
