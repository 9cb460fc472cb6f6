//! Verbs on a container's filesystem: `commit` (its upper dir becomes a new image layer with a
//! history row, via berth-image), `export` (a tar of the merged root) and `cp` (copies in
//! either direction, container paths resolved inside the root so symlinks cannot lead out).
//! A stopped container's layer is mounted for the operation and unmounted again.
use crate::error::{EngineError, Result};
use crate::lifecycle::Engine;
use crate::record::ContainerRecord;
use std::io::Write;
use std::path::{Component, Path, PathBuf};

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
    let now = crate::record::now_rfc3339();
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
    if let Some(reference) = &opts.reference {
        store.tag(&id, reference).map_err(image_err)?;
    }
    Ok(id)
}

/// `berth export`: writes a tar of the container's root filesystem to `out`.
pub fn export(engine: &Engine, record: &ContainerRecord, out: &mut dyn Write) -> Result<()> {
    with_rootfs(engine, record, |root| {
        berth_image::export::write_dir_tar(root, out).map_err(image_err)
    })
}

/// Resolves `path` inside `root` without letting `..` or symlinks (absolute or relative) escape
/// it, like `openat2(RESOLVE_IN_ROOT)`. The last component is not followed when `follow_last`
/// is false.
pub fn resolve_in_root(root: &Path, path: &str, follow_last: bool) -> Result<PathBuf> {
    let mut resolved = PathBuf::new();
    let mut pending: Vec<String> = Path::new(path)
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .rev()
        .collect();
    let mut hops = 0;
    while let Some(part) = pending.pop() {
        if part == ".." {
            resolved.pop();
            continue;
        }
        let candidate = root.join(&resolved).join(&part);
        let is_last = pending.is_empty();
        match std::fs::symlink_metadata(&candidate) {
            Ok(meta) if meta.file_type().is_symlink() && (follow_last || !is_last) => {
                hops += 1;
                if hops > 40 {
                    return Err(EngineError::io(
                        path,
                        std::io::Error::from_raw_os_error(libc::ELOOP),
                    ));
                }
                let target =
                    std::fs::read_link(&candidate).map_err(|e| EngineError::io(&candidate, e))?;
                if target.is_absolute() {
                    resolved = PathBuf::new();
                }
                let parts: Vec<String> = target
                    .components()
                    .filter_map(|c| match c {
                        Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
                        Component::ParentDir => Some("..".into()),
                        _ => None,
                    })
                    .collect();
                pending.extend(parts.into_iter().rev());
            }
            _ => resolved.push(&part),
        }
    }
    Ok(root.join(resolved))
}

fn copy_tree(src: &Path, dst: &Path) -> Result<()> {
    let meta = std::fs::symlink_metadata(src).map_err(|e| EngineError::io(src, e))?;
    if meta.file_type().is_symlink() {
        let target = std::fs::read_link(src).map_err(|e| EngineError::io(src, e))?;
        let _ = std::fs::remove_file(dst);
        std::os::unix::fs::symlink(target, dst).map_err(|e| EngineError::io(dst, e))?;
    } else if meta.is_dir() {
        std::fs::create_dir_all(dst).map_err(|e| EngineError::io(dst, e))?;
        std::fs::set_permissions(dst, meta.permissions()).map_err(|e| EngineError::io(dst, e))?;
        for entry in std::fs::read_dir(src).map_err(|e| EngineError::io(src, e))? {
            let entry = entry.map_err(|e| EngineError::io(src, e))?;
            copy_tree(&entry.path(), &dst.join(entry.file_name()))?;
        }
    } else {
        std::fs::copy(src, dst).map_err(|e| EngineError::io(dst, e))?;
    }
    Ok(())
}

/// Docker's destination rule: copying onto an existing directory puts the source inside it.
fn destination(dst: &Path, src: &Path) -> PathBuf {
    if dst.is_dir() {
        dst.join(src.file_name().unwrap_or_default())
    } else {
        dst.to_path_buf()
    }
}

/// `berth cp CONTAINER:SRC HOSTDST`.
pub fn copy_from(engine: &Engine, record: &ContainerRecord, src: &str, dst: &Path) -> Result<()> {
    with_rootfs(engine, record, |root| {
        let from = resolve_in_root(root, src, false)?;
        if std::fs::symlink_metadata(&from).is_err() {
            return Err(EngineError::state(
                record.short_name(),
                format!(
                    "Could not find the file {src} in container {}",
                    record.short_name()
                ),
            ));
        }
        copy_tree(&from, &destination(dst, &from))
    })
}

/// `berth cp HOSTSRC CONTAINER:DST`.
pub fn copy_to(engine: &Engine, record: &ContainerRecord, src: &Path, dst: &str) -> Result<()> {
    with_rootfs(engine, record, |root| {
        let to = resolve_in_root(root, dst, true)?;
        copy_tree(src, &destination(&to, src))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_never_escape_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::os::unix::fs::symlink("/etc", root.join("abs")).unwrap();
        std::os::unix::fs::symlink("../../../../etc", root.join("rel")).unwrap();
        assert_eq!(
            resolve_in_root(root, "/abs/passwd", true).unwrap(),
            root.join("etc/passwd")
        );
        assert_eq!(
            resolve_in_root(root, "rel/passwd", true).unwrap(),
            root.join("etc/passwd")
        );
        assert_eq!(
            resolve_in_root(root, "/../../etc/x", true).unwrap(),
            root.join("etc/x")
        );
        assert_eq!(
            resolve_in_root(root, "/abs", false).unwrap(),
            root.join("abs")
        );
    }
}
