//! Housekeeping across the root: `container prune`, the numbers behind `system df` and `info`,
//! and `system prune` (containers, then networks' absence, then images, then volumes on
//! request), as library calls the CLI and the API service can share. Owns no store of its own:
//! it composes the container store, the image store and the volume store.
use crate::error::{EngineError, Result};
use crate::lifecycle::Engine;
use crate::record::{ContainerRecord, Status};
use crate::volumes::{dir_size, Volumes};

/// What a prune removed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Pruned {
    pub deleted: Vec<String>,
    pub reclaimed_bytes: u64,
}

/// Bytes a container wrote to its own layer.
pub fn container_size(record: &ContainerRecord) -> u64 {
    if record.berth_layer.upper_dir.is_empty() {
        0
    } else {
        dir_size(std::path::Path::new(&record.berth_layer.upper_dir))
    }
}

fn all_records(engine: &Engine) -> Vec<ContainerRecord> {
    let mut out: Vec<ContainerRecord> = engine
        .store
        .list_ids()
        .iter()
        .filter_map(|id| engine.store.load(id).ok())
        .collect();
    out.sort_by(|a, b| b.created.cmp(&a.created));
    out
}

/// `container prune [--filter until=…|label=…]`: removes every stopped container.
pub fn prune_containers(engine: &Engine, filters: &[(String, String)]) -> Result<Pruned> {
    let mut until = None;
    for (k, v) in filters {
        match k.as_str() {
            "until" => until = Some(crate::events::parse_time(v)?),
            "label" | "label!" => {}
            _ => return Err(EngineError::InvalidFilter(format!("{k}={v}"))),
        }
    }
    // Leftovers of killed commands first: half-made containers are never listed, so only the
    // sweep can find them.
    let swept = crate::recovery::sweep(engine)?;
    let mut pruned = Pruned {
        deleted: swept.removed,
        reclaimed_bytes: swept.reclaimed_bytes,
    };
    for record in all_records(engine) {
        if !matches!(
            record.status(),
            Status::Exited | Status::Created | Status::Dead
        ) {
            continue;
        }
        if let Some(u) = until {
            let created = chrono::DateTime::parse_from_rfc3339(&record.created)
                .map(|t| t.timestamp_nanos_opt().unwrap_or(0))
                .unwrap_or(0);
            if created > u {
                continue;
            }
        }
        let labels = Some(&record.config.labels);
        let keep = filters.iter().any(|(k, v)| match k.as_str() {
            "label" => !crate::volumes::label_matches(labels, v),
            "label!" => crate::volumes::label_matches(labels, v),
            _ => false,
        });
        if keep {
            continue;
        }
        let size = container_size(&record);
        if engine.remove(&record.id, false, false).is_ok() {
            pruned.reclaimed_bytes += size;
            pruned.deleted.push(record.id);
        }
    }
    Ok(pruned)
}

/// One `system df` row.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DiskUsageRow {
    /// `Images`, `Containers`, `Local Volumes`, `Build Cache`.
    pub kind: &'static str,
    pub total: usize,
    pub active: usize,
    pub size: u64,
    pub reclaimable: u64,
}

/// The numbers `system df` prints.
pub fn disk_usage(engine: &Engine) -> Result<Vec<DiskUsageRow>> {
    let records = all_records(engine);
    let images = berth_image::Store::open(engine.root())
        .and_then(|s| s.list_images(true))
        .unwrap_or_default();
    let used_images: std::collections::BTreeSet<&str> =
        records.iter().map(|r| r.image.as_str()).collect();
    let image_size: u64 = images.iter().map(|i| i.size).sum();
    let active_images: Vec<_> = images
        .iter()
        .filter(|i| used_images.contains(i.id.as_str()))
        .collect();
    let active_size: u64 = active_images.iter().map(|i| i.size).sum();
    let sizes: Vec<(bool, u64)> = records
        .iter()
        .map(|r| (r.is_running(), container_size(r)))
        .collect();
    let container_total: u64 = sizes.iter().map(|(_, s)| s).sum();
    let container_idle: u64 = sizes.iter().filter(|(r, _)| !r).map(|(_, s)| s).sum();
    let volumes = Volumes::new(engine.root());
    let all_volumes = volumes.list();
    let used = volumes.list_filtered(&[("dangling".into(), "false".into())])?;
    let volume_sizes: Vec<(bool, u64)> = all_volumes
        .iter()
        .map(|v| (used.iter().any(|u| u.name == v.name), volumes.size(v)))
        .collect();
    let volume_total: u64 = volume_sizes.iter().map(|(_, s)| s).sum();
    let volume_idle: u64 = volume_sizes
        .iter()
        .filter(|(u, _)| !u)
        .map(|(_, s)| s)
        .sum();
    Ok(vec![
        DiskUsageRow {
            kind: "Images",
            total: images.len(),
            active: active_images.len(),
            size: image_size,
            reclaimable: image_size - active_size,
        },
        DiskUsageRow {
            kind: "Containers",
            total: records.len(),
            active: sizes.iter().filter(|(r, _)| *r).count(),
            size: container_total,
            reclaimable: container_idle,
        },
        DiskUsageRow {
            kind: "Local Volumes",
            total: all_volumes.len(),
            active: used.len(),
            size: volume_total,
            reclaimable: volume_idle,
        },
        DiskUsageRow {
            kind: "Build Cache",
            ..Default::default()
        },
    ])
}

/// Counts for `info`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Counts {
    pub containers: usize,
    pub running: usize,
    pub paused: usize,
    pub stopped: usize,
    pub images: usize,
}

pub fn counts(engine: &Engine) -> Counts {
    let records = all_records(engine);
    let mut c = Counts {
        containers: records.len(),
        images: berth_image::Store::open(engine.root())
            .and_then(|s| s.list_images(false))
            .map(|l| l.len())
            .unwrap_or(0),
        ..Default::default()
    };
    for r in &records {
        match r.status() {
            Status::Running | Status::Restarting => c.running += 1,
            Status::Paused => c.paused += 1,
            _ => c.stopped += 1,
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_root_has_nothing_to_prune_or_count() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(dir.path());
        assert_eq!(prune_containers(&engine, &[]).unwrap(), Pruned::default());
        assert!(prune_containers(&engine, &[("colour".into(), "red".into())]).is_err());
        let df = disk_usage(&engine).unwrap();
        assert_eq!(df.len(), 4);
        assert_eq!(df[0].kind, "Images");
        assert_eq!(counts(&engine), Counts::default());
    }
}
