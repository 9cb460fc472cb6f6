//! The image verbs as both front doors (the CLI and the API service) run them: the image store's
//! work, then Docker's image event for it, so the two can never disagree on what `events` shows.
//! Docker's shapes (`LogImageEvent`): the actor is the image's ID and carries the image's labels
//! and a `name` — the new tag for `tag`, the familiar name for `pull`, and the ID itself for
//! `untag`, `delete`, `load`, `import` and `save`; `pull`'s actor is the familiar reference.
//!
//! This module must not render anything: callers print what the store returns.
use berth_image::error::Result;
use berth_image::reference::Reference;
use berth_image::{ImportOptions, LoadedImage, Progress, RemoveEvent, Store};
use std::collections::BTreeMap;
use std::io::{Read, Write};

/// The image's labels (none when it is gone, as for Docker's `delete`).
fn labels(store: &Store, id: &str) -> BTreeMap<String, String> {
    store
        .image_config(id)
        .ok()
        .and_then(|c| c.config)
        .and_then(|c| c.labels)
        .unwrap_or_default()
}

/// Records image event `action` about `id`, named `name`.
fn record(store: &Store, action: &str, id: &str, name: &str, labels: BTreeMap<String, String>) {
    let mut attributes = labels;
    attributes.insert("name".into(), name.to_string());
    let event = crate::events::Event::new("image", action, id, attributes);
    crate::events::record(store.root(), &event);
}

/// `tag SOURCE TARGET`; records `tag` named by the new tag's familiar form.
pub fn tag(store: &Store, source: &str, target: &str) -> Result<Option<String>> {
    let replaced = store.tag(source, target)?;
    if let Ok(id) = store.resolve_id(target) {
        let name = Reference::parse_tagged(target)
            .map(|r| r.familiar_string())
            .unwrap_or_else(|_| target.to_string());
        record(store, "tag", &id, &name, labels(store, &id));
    }
    Ok(replaced)
}

/// `rmi REFERENCE`; records `untag` for every tag removed and `delete` for every image deleted.
pub fn remove(
    store: &Store,
    reference: &str,
    force: bool,
    prune_parents: bool,
) -> Result<Vec<RemoveEvent>> {
    let id = store.resolve_id(reference)?;
    let before = labels(store, &id);
    let events = store.remove_image(reference, force, prune_parents)?;
    for e in &events {
        match e {
            RemoveEvent::Untagged(_) => record(store, "untag", &id, &id, before.clone()),
            RemoveEvent::Deleted(gone) => record(store, "delete", gone, gone, BTreeMap::new()),
        }
    }
    Ok(events)
}

/// `image prune`; records what it removed (`untag` and `delete`, each untag under the image
/// deleted after it, as the store lists them) and then Docker's `prune` with the bytes
/// reclaimed.
pub fn prune(
    store: &Store,
    all: bool,
    filter: &berth_image::filter::PruneFilter,
) -> Result<(Vec<RemoveEvent>, u64)> {
    let (events, reclaimed) = store.prune_images_filtered(all, filter)?;
    let mut untagged = 0;
    for e in &events {
        match e {
            RemoveEvent::Untagged(_) => untagged += 1,
            RemoveEvent::Deleted(id) => {
                for _ in 0..std::mem::take(&mut untagged) {
                    record(store, "untag", id, id, BTreeMap::new());
                }
                record(store, "delete", id, id, BTreeMap::new());
            }
        }
    }
    let mut attributes = BTreeMap::new();
    attributes.insert("reclaimed".to_string(), reclaimed.to_string());
    let event = crate::events::Event::new("image", "prune", "", attributes);
    crate::events::record(store.root(), &event);
    Ok((events, reclaimed))
}

/// `load`; records `load` for every image the archive held.
pub fn load(store: &Store, input: impl Read, progress: &dyn Progress) -> Result<Vec<LoadedImage>> {
    let loaded = store.load(input, progress)?;
    for img in &loaded {
        record(store, "load", &img.id, &img.id, labels(store, &img.id));
    }
    Ok(loaded)
}

/// `import`; records `import` of the new image.
pub fn import(store: &Store, input: impl Read, options: &ImportOptions) -> Result<String> {
    let id = store.import(input, options)?;
    record(store, "import", &id, &id, labels(store, &id));
    Ok(id)
}

/// `save REFERENCE…` into `out`; records `save` of every image once the archive is written.
pub fn save(store: &Store, references: &[String], out: &mut dyn Write) -> Result<()> {
    store.save(references, out)?;
    let mut seen = std::collections::BTreeSet::new();
    for r in references {
        if let Ok(id) = store.resolve_id(r) {
            if seen.insert(id.clone()) {
                record(store, "save", &id, &id, labels(store, &id));
            }
        }
    }
    Ok(())
}

/// Records `pull` of `reference` (familiar form), which the registry client just pulled.
pub fn pulled(store: &Store, reference: &Reference) {
    let familiar = reference.familiar_string();
    let name = reference.familiar_name();
    let found = store
        .resolve_id(&familiar)
        .map(|id| labels(store, &id))
        .unwrap_or_default();
    record(store, "pull", &familiar, &name, found);
}
