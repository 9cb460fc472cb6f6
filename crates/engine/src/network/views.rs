//! What inspect, ps and port show of a container's networking.
use super::*;

/// The endpoints of container `id` (eth0 first).
pub fn endpoints(root: &Path, id: &str) -> Vec<EndpointRecord> {
    if !root.join("network").exists() {
        return Vec::new();
    }
    store(root).container_endpoints(id).unwrap_or_default()
}

/// The pinned namespace of container `id`, if it has one.
pub fn netns_path(root: &Path, id: &str) -> Option<PathBuf> {
    let p = store(root).netns_path(id);
    p.exists().then_some(p)
}

/// The Berth root a record lives under (`<root>/containers/<id>/hosts`).
pub fn record_root(record: &crate::record::ContainerRecord) -> Option<PathBuf> {
    Path::new(&record.hosts_path)
        .parent()?
        .parent()?
        .parent()
        .map(Path::to_path_buf)
}

/// The published ports of container `id` (for `ps` and `port`).
pub fn published(root: &Path, id: &str) -> Vec<PortBinding> {
    endpoints(root, id)
        .into_iter()
        .flat_map(|e| e.ports)
        .collect()
}
