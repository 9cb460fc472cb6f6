//! Housekeeping across the root: `container prune`, the numbers behind `system df` and `info`,
//! and `system prune` (containers, then networks' absence, then images, then volumes on
//! request), as library calls the CLI and the API service can share. Owns no store of its own:
//! it composes the container store, the image store and the volume store.
use crate::error::{EngineError, Result};
use crate::lifecycle::Engine;
use crate::record::{ContainerRecord, Status, UnreadableRecord};
use crate::volumes::{dir_size, Volumes};

/// What a prune removed, and the records it could not read (and so left alone).
#[derive(Debug, Default)]
pub struct Pruned {
    pub deleted: Vec<String>,
    pub reclaimed_bytes: u64,
    pub unreadable: Vec<UnreadableRecord>,
}

/// Bytes a container wrote to its own layer.
pub fn container_size(record: &ContainerRecord) -> u64 {
    if record.berth_layer.upper_dir.is_empty() {
        0
    } else {
        dir_size(std::path::Path::new(&record.berth_layer.upper_dir))
    }
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
    let swept = crate::lifecycle::recovery::sweep(engine)?;
    let all = engine.store.load_all();
    let mut pruned = Pruned {
        deleted: swept.removed,
        reclaimed_bytes: swept.reclaimed_bytes,
        unreadable: all.unreadable,
    };
    for record in all.records {
        if !matches!(
            record.status(),
            Status::Exited | Status::Created | Status::Dead
        ) {
            continue;
        }
        if let Some(u) = until {
            let created = berth_common::time::parse_rfc3339(&record.created)
                .and_then(|t| t.timestamp_nanos_opt())
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
    let reclaimed = [("reclaimed", pruned.reclaimed_bytes.to_string())];
    crate::events::other(engine.root(), "container", "prune", "", &reclaimed);
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

/// The numbers `system df` prints, and the container records that could not be counted.
#[derive(Debug, Default)]
pub struct DiskUsage {
    pub rows: Vec<DiskUsageRow>,
    pub unreadable: Vec<UnreadableRecord>,
}

/// The numbers `system df` prints.
pub fn disk_usage(engine: &Engine) -> Result<DiskUsage> {
    let crate::record::Records {
        records,
        unreadable,
    } = engine.store.load_all();
    let images = engine.layers.store()?.list_images(true)?;
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
    let used: std::collections::BTreeSet<&str> = records
        .iter()
        .flat_map(|r| r.mount_points.values())
        .filter(|m| m.r#type == "volume")
        .map(|m| m.name.as_str())
        .collect();
    let volume_sizes: Vec<(bool, u64)> = all_volumes
        .iter()
        .map(|v| (used.contains(v.name.as_str()), volumes.size(v)))
        .collect();
    let volume_total: u64 = volume_sizes.iter().map(|(_, s)| s).sum();
    let volume_idle: u64 = volume_sizes
        .iter()
        .filter(|(u, _)| !u)
        .map(|(_, s)| s)
        .sum();
    let active_volumes = volume_sizes.iter().filter(|(u, _)| *u).count();
    let rows = vec![
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
            active: active_volumes,
            size: volume_total,
            reclaimable: volume_idle,
        },
        DiskUsageRow {
            kind: "Build Cache",
            ..Default::default()
        },
    ];
    Ok(DiskUsage { rows, unreadable })
}

/// Counts for `info`; an unreadable record counts as a container (stopped) and is listed.
#[derive(Debug, Default)]
pub struct Counts {
    pub containers: usize,
    pub running: usize,
    pub paused: usize,
    pub stopped: usize,
    pub images: usize,
    pub unreadable: Vec<UnreadableRecord>,
}

pub fn counts(engine: &Engine) -> Result<Counts> {
    let all = engine.store.load_all();
    let mut c = Counts {
        containers: all.records.len() + all.unreadable.len(),
        stopped: all.unreadable.len(),
        images: engine.layers.store()?.list_images(false)?.len(),
        ..Default::default()
    };
    for r in &all.records {
        match r.status() {
            Status::Running | Status::Restarting => c.running += 1,
            Status::Paused => c.paused += 1,
            _ => c.stopped += 1,
        }
    }
    c.unreadable = all.unreadable;
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_root_has_nothing_to_prune_or_count() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(dir.path());
        let pruned = prune_containers(&engine, &[]).unwrap();
        assert!(pruned.deleted.is_empty() && pruned.unreadable.is_empty());
        assert!(prune_containers(&engine, &[("colour".into(), "red".into())]).is_err());
        let df = disk_usage(&engine).unwrap();
        assert_eq!(df.rows.len(), 4);
        assert_eq!(df.rows[0].kind, "Images");
        let c = counts(&engine).unwrap();
        assert_eq!((c.containers, c.running, c.images), (0, 0, 0));
    }

    #[test]
    fn unreadable_records_are_reported_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(dir.path());
        let id = crate::names::new_id();
        let record_dir = engine.store.container_dir(&id);
        std::fs::create_dir_all(&record_dir).unwrap();
        std::fs::write(record_dir.join("config.v2.json"), b"{broken").unwrap();
        let pruned = prune_containers(&engine, &[]).unwrap();
        assert!(pruned.deleted.is_empty());
        assert_eq!(pruned.unreadable.len(), 1);
        assert_eq!(pruned.unreadable[0].id, id);
        assert!(
            record_dir.exists(),
            "a record that cannot be read is never pruned"
        );
        let df = disk_usage(&engine).unwrap();
        assert_eq!(df.unreadable.len(), 1);
        let c = counts(&engine).unwrap();
        assert_eq!((c.containers, c.stopped, c.unreadable.len()), (1, 1, 1));
        let text = c.unreadable[0].to_string();
        assert!(
            text.contains(&id) && text.contains("config.v2.json"),
            "{text}"
        );
    }
}
