//! Crash recovery for containers: what a `berth` process (or a container's monitor) killed at
//! any instant left behind, rolled back or forward by the next command.
//!
//! Every multi-step container change is bracketed by an intent (`berth_image::intent`):
//! - `create-<id>`: written before the container's directory, name and layer exist, dropped once
//!   `config.v2.json` is saved. Dead owner: with a saved record the create finished (the intent
//!   is dropped); without one it is rolled back (layer, mount, network, name, directory).
//! - `remove-<id>`: written before `rm` starts taking the container apart. Dead owner: the
//!   removal is finished.
//! - `step-<id>`: a build step's container layer. Dead owner: the layer is unmounted and removed.
//! - `monitor-<id>`: held by a container's monitor for its whole life, naming its keeper
//!   (`keeper`) as heir: while either lives, nothing here touches the container (a keeper
//!   whose monitor died reaps the init, writes the exit file and calls
//!   [`finish_after_monitor`]). Both dead while the container's init is gone: the exit is
//!   reconstructed (the exit file whoever reaped wrote, else `Dead` with the reason), the
//!   container is cleaned up as its monitor would have, `--rm` containers are removed, and
//!   `--restart always|unless-stopped|on-failure` containers are started again. While the init
//!   still runs, the intent stays and nothing changes: `ps` says running, which is the truth.
//!
//! [`recover`] is what every command runs first: two directory listings when nothing was cut
//! short. [`sweep`] (`system prune`, `container prune`, and `rm -f` of a leftover) also looks
//! for leftovers no intent names: container directories without a record, names whose
//! container is gone, container layers of no container, and the image store's orphans.
use super::Engine;
use crate::error::{EngineError, Result};
use berth_common::time::now_rfc3339;
use berth_image::intent::{self, Found};
use std::collections::HashSet;

/// The intent kinds and the exit file this module acts on (written by `lifecycle`, `monitor`
/// and the builder).
pub use crate::intents::{CREATE, EXIT_FILE, MONITOR, REMOVE, STEP};

/// What a recovery pass did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Report {
    /// Containers rolled back (half-made) or whose removal was finished.
    pub removed: Vec<String>,
    /// Containers whose exit was reconstructed after their monitor died.
    pub reconciled: Vec<String>,
    /// Containers started again by their restart policy.
    pub restarted: Vec<String>,
    /// Bytes freed in the image store.
    pub reclaimed_bytes: u64,
}

/// The cheap pass every command runs: acts only on intents whose owner died, and on the image
/// store's own leftovers.
pub fn recover(engine: &Engine) -> Result<Report> {
    let found = intent::list(engine.root());
    let mut report = Report::default();
    let dead: Vec<&Found> = found.iter().filter(|f| !f.live()).collect();
    if !dead.is_empty() {
        act_on_dead(engine, &dead, &mut report)?;
    }
    let store = berth_image::Store::open(engine.root())?;
    // A killed create, removal or build step may have left layer directories no metadata
    // names any more (or yet).
    let swept = if dead.iter().any(|f| f.kind != MONITOR) {
        store.recover_now()?
    } else {
        store.recover()?
    };
    report.reclaimed_bytes += swept.bytes;
    Ok(report)
}

/// The thorough pass: [`recover`], then leftovers no intent names.
pub fn sweep(engine: &Engine) -> Result<Report> {
    let mut report = recover(engine)?;
    let root = engine.root();
    let store = berth_image::Store::open(root)?;
    // Objects first, intents second: an object seen here had its intent written before it.
    let dirs: Vec<String> = std::fs::read_dir(engine.store.containers_dir())
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default();
    let layers = store.container_layer_ids();
    let names = engine.store.names();
    let found = intent::list(root);
    let busy: HashSet<String> = found
        .iter()
        .filter(|f| f.live() && [CREATE, REMOVE, STEP].contains(&f.kind.as_str()))
        .map(|f| f.object.clone())
        .collect();
    let has_record = |id: &str| {
        engine
            .store
            .container_dir(id)
            .join("config.v2.json")
            .is_file()
    };
    for id in dirs.iter().chain(layers.iter()) {
        if busy.contains(id) || has_record(id) {
            continue;
        }
        roll_back_create(engine, id)?;
        if !report.removed.contains(id) {
            report.removed.push(id.clone());
        }
    }
    for (name, id) in names {
        if !busy.contains(&id) && !has_record(&id) {
            engine.store.release_name(&name, &id);
        }
    }
    engine.store.remove_stale_name_temps();
    engine.store.remove_graves();
    report.reclaimed_bytes += store.recover_now()?.bytes;
    Ok(report)
}

fn act_on_dead(engine: &Engine, dead: &[&Found], report: &mut Report) -> Result<()> {
    for f in dead {
        let id = f.object.as_str();
        match f.kind.as_str() {
            CREATE => {
                if engine.store.load(id).is_err() {
                    roll_back_create(engine, id)?;
                    report.removed.push(id.to_string());
                }
                f.clear();
            }
            REMOVE => {
                finish_removal(engine, id)?;
                report.removed.push(id.to_string());
                f.clear();
            }
            STEP => {
                let store = berth_image::Store::open(engine.root())?;
                match store.remove_container_layer(id) {
                    Ok(()) | Err(berth_image::ImageError::NoSuchContainerLayer(_)) => f.clear(),
                    Err(e) => return Err(e.into()),
                }
            }
            MONITOR => {
                reconcile_exit(engine, id, report, || f.clear())?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// Takes apart whatever a create cut short made for container `id` (no record was saved).
fn roll_back_create(engine: &Engine, id: &str) -> Result<()> {
    let _ = crate::network::release(engine.root(), id);
    let store = berth_image::Store::open(engine.root())?;
    match store.remove_container_layer(id) {
        Ok(()) | Err(berth_image::ImageError::NoSuchContainerLayer(_)) => {}
        Err(e) => return Err(e.into()),
    }
    for (name, owner) in engine.store.names() {
        if owner == id {
            engine.store.release_name(&name, id);
        }
    }
    let dir = engine.store.container_dir(id);
    match std::fs::remove_dir_all(&dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(EngineError::io(&dir, e)),
    }
}

/// Finishes an `rm` that was killed: whatever of the container is left goes.
fn finish_removal(engine: &Engine, id: &str) -> Result<()> {
    match engine.store.load(id) {
        Ok(record) => {
            if record.init_alive() {
                engine.kill_for_removal(&record);
            }
            engine.remove_resources(&record)
        }
        Err(_) => roll_back_create(engine, id),
    }
}

/// What a keeper does once the container whose monitor died has ended (it reaped the init and
/// wrote the exit file, or could not): records the exit, does the monitor's cleanup, removes a
/// `--rm` container or starts a `--restart` one again. `clear` drops the keeper's intent, before
/// any restart (whose new monitor writes its own).
pub(crate) fn finish_after_monitor(
    engine: &Engine,
    id: &str,
    clear: impl FnOnce(),
) -> Result<Report> {
    let mut report = Report::default();
    reconcile_exit(engine, id, &mut report, clear)?;
    Ok(report)
}

/// A container whose monitor died: when its init is gone too, records how it ended and does
/// the monitor's cleanup, calling `clear` once the monitor intent can go (before a restart);
/// true when it did.
fn reconcile_exit(
    engine: &Engine,
    id: &str,
    report: &mut Report,
    clear: impl FnOnce(),
) -> Result<bool> {
    let Ok(record) = engine.store.load(id) else {
        clear();
        return Ok(true);
    };
    if record.init_alive() {
        return Ok(false);
    }
    let host = engine.store.load_host_config(id).unwrap_or_default();
    let exit_file = engine.store.container_dir(id).join(EXIT_FILE);
    let saved_code = std::fs::read_to_string(&exit_file)
        .ok()
        .and_then(|t| t.trim().parse::<i32>().ok());
    let was_running = record.state.running || record.state.restarting;
    if was_running {
        let _ = engine.runtime.delete(id, true);
        let _ = record.kill_cgroup();
        let monitor = record.berth_monitor_pid;
        engine.store.update(id, |r| {
            r.state.running = false;
            r.state.paused = false;
            r.state.restarting = false;
            r.state.pid = 0;
            r.berth_monitor_pid = 0;
            r.berth_pid_start_time = 0;
            r.state.finished_at = now_rfc3339();
            match saved_code {
                Some(code) => {
                    r.state.exit_code = code;
                    r.state.dead = false;
                    r.state.error.clear();
                }
                None => {
                    r.state.dead = true;
                    r.state.exit_code = 255;
                    r.state.error = format!(
                        "the container's monitor (pid {monitor}) and its keeper were killed \
                         before they could record how the container ended; its exit status is \
                         lost"
                    );
                }
            }
        })?;
        if let Some(code) = saved_code {
            let exit = [("exitCode", code.to_string())];
            crate::events::container(engine.root(), &record, "die", &exit);
        }
        report.reconciled.push(id.to_string());
    }
    let _ = std::fs::remove_file(&exit_file);
    let _ = std::fs::remove_file(engine.store.container_dir(id).join("attach.sock"));
    if host.auto_remove {
        engine.remove_resources(&engine.store.load(id)?)?;
        report.removed.push(id.to_string());
        clear();
        return Ok(true);
    }
    let record = engine.store.load(id)?;
    let _ = engine.unmount(&record);
    let _ = crate::network::release(engine.root(), id);
    // Before any restart: the new monitor writes its own intent under the same name, which a
    // later clear would delete.
    clear();
    if was_running && wants_restart(&record, &host) {
        // The monitor would have (and counted it); its successor records the start (and
        // clears `Dead`).
        engine.store.update(id, |r| r.restart_count += 1)?;
        engine.start_detached(id)?;
        report.restarted.push(id.to_string());
    }
    Ok(true)
}

/// Whether a monitor, or the keeper that took over from a killed one, still answers for
/// container `id`: it will record how the container ends, so nobody else may.
pub fn supervised(root: &std::path::Path, id: &str) -> bool {
    intent::find(root, MONITOR, id).is_some_and(|f| f.live())
}

/// Whether the restart policy brings this container back after an end its monitor missed.
fn wants_restart(
    record: &crate::record::ContainerRecord,
    host: &crate::options::HostConfig,
) -> bool {
    if record.has_been_manually_stopped || host.auto_remove {
        return false;
    }
    let policy = &host.restart_policy;
    match policy.name.as_str() {
        "always" | "unless-stopped" => true,
        "on-failure" => {
            record.state.exit_code != 0
                && (policy.maximum_retry_count == 0
                    || record.restart_count < policy.maximum_retry_count)
        }
        _ => false,
    }
}

impl Engine {
    /// `rm -f` of something `resolve` cannot find: a container a killed `create` left without
    /// a record (its name reserved, its layer mounted). Removes it unless its creator still
    /// runs; true when there was such a leftover.
    pub fn remove_leftover(&self, reference: &str) -> Result<bool> {
        let name = reference.trim_start_matches('/');
        let mut candidates: Vec<String> = self
            .store
            .names()
            .into_iter()
            .filter(|(n, _)| n == name)
            .map(|(_, id)| id)
            .collect();
        if reference.len() == 64 && reference.chars().all(|c| c.is_ascii_hexdigit()) {
            candidates.push(reference.to_string());
        }
        let busy = intent::live_objects(self.root(), CREATE);
        let mut found = false;
        for id in candidates {
            if busy.contains(&id) || self.store.load(&id).is_ok() {
                continue;
            }
            let named = self.store.names().iter().any(|(_, owner)| owner == &id);
            let made = self.store.container_dir(&id).exists()
                || self.layers.layout().mount_meta(&id).exists();
            if named || made {
                roll_back_create(self, &id)?;
                found = true;
            }
        }
        Ok(found)
    }
}

/// Checks the invariants between containers, names, container layers, intents and the image
/// store (see `berth_image::Store::check`); returns every violation (empty when consistent).
/// With `settled`, no command may be running: any intent is then a leftover.
pub fn check(engine: &Engine, settled: bool) -> Result<Vec<String>> {
    let store = berth_image::Store::open(engine.root())?;
    let mut problems = store.check()?;
    let live: HashSet<String> = intent::list(engine.root())
        .into_iter()
        .filter(|f| {
            let supervising = f.kind == MONITOR
                && (f.live() || engine.store.load(&f.object).is_ok_and(|r| r.init_alive()));
            if !supervising && (settled || !f.live()) {
                problems.push(format!("intent {}-{} left behind", f.kind, f.object));
            }
            f.live() && f.kind != MONITOR
        })
        .map(|f| f.object)
        .collect();
    let ids = engine.store.list_ids();
    for id in &ids {
        if live.contains(id) {
            continue;
        }
        match engine.store.load(id) {
            Ok(r) => {
                if !r.driver.is_empty() && !engine.layers.layout().mount_meta(id).is_dir() {
                    problems.push(format!("container {id}: its layer is missing"));
                }
                let named = engine.store.resolve(r.short_name()).ok();
                if named.as_deref() != Some(id.as_str()) {
                    problems.push(format!(
                        "container {id}: name {} does not resolve to it",
                        r.name
                    ));
                }
            }
            Err(e) => problems.push(format!("container {id}: {e}")),
        }
    }
    for (name, id) in engine.store.names() {
        if !live.contains(&id) && engine.store.load(&id).is_err() {
            problems.push(format!("name {name} is held by missing container {id}"));
        }
    }
    for cid in store.container_layer_ids() {
        if !live.contains(&cid) && !ids.contains(&cid) {
            problems.push(format!("container layer {cid} belongs to no container"));
        }
    }
    Ok(problems)
}
