//! Network objects: `network create`, `rm` and `prune`, each with its event.
use super::*;

/// Records a network event as Docker's daemon logs it: the network's id as the actor, its name
/// and driver type, and the container for `connect`/`disconnect`.
pub(super) fn network_event(
    root: &Path,
    action: &str,
    id: &str,
    name: &str,
    container: Option<&str>,
) {
    let mut attrs = vec![("name", name.to_string()), ("type", "bridge".to_string())];
    if let Some(container) = container {
        attrs.push(("container", container.to_string()));
    }
    crate::events::other(root, "network", action, id, &attrs);
}

/// `network create`: makes the network and records its `create` event.
pub fn create(root: &Path, req: &berth_net::CreateNetwork) -> Result<berth_net::NetworkRecord> {
    let net = store(root).create(req)?;
    network_event(root, "create", &net.id, &net.name, None);
    Ok(net)
}

/// `network rm`: removes one unused network and records its `destroy` event (Docker's action
/// for a removed local network).
pub fn remove(root: &Path, key: &str) -> Result<berth_net::NetworkRecord> {
    let net = store(root).remove(key)?;
    network_event(root, "destroy", &net.id, &net.name, None);
    Ok(net)
}

/// `network prune`: removes every unused user network (names returned), each with its
/// `destroy` event.
pub fn prune(root: &Path) -> Result<Vec<String>> {
    let net_store = store(root);
    let before = net_store.networks()?;
    let removed = net_store.prune()?;
    for net in before.iter().filter(|n| removed.contains(&n.name)) {
        network_event(root, "destroy", &net.id, &net.name, None);
    }
    Ok(removed)
}
