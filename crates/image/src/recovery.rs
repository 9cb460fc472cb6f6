//! The store's recovery pass: what a command killed part-way left in the image and layer store,
//! rolled back under the store lock so that only complete layers, images and container layers
//! remain. Every metadata change of the store happens under the lock (a layer's `layerdb` entry
//! appears by one rename, a container layer's `mounts/<id>` entry by one rename, a removal
//! renames the entry into `layerdb/tmp` before deleting the directories), so whoever holds the
//! lock sees either the old state or the new one plus garbage:
//!
//! - `layerdb/tmp/*`: half-written entries and graves of half-done removals; only a lock holder
//!   writes there, so under the lock every one of them is a leftover;
//! - `overlay2/<cache-id>` that no `layerdb` entry, no container layer (`mounts/*`), no kept
//!   pull layer and no live staging intent names: a killed extraction, a killed commit, the
//!   directories of a killed removal (a still-mounted `merged` is detached first);
//! - short links `overlay2/l/*` whose layer is gone, and intents whose owner is dead;
//! - partial downloads (`distribution/partial/*`) no pull holds: by every pass once they are
//!   [`crate::partial::PARTIAL_MAX_AGE`] old, by [`Store::sweep`] at any age.
//!
//! [`Store::recover`] is cheap when there is nothing to do (two directory listings), so every
//! command may call it; it sweeps only when a dead intent or a `layerdb/tmp` entry shows that
//! something was cut short. [`Store::sweep`] always sweeps (`image prune`, `system prune`).
//! Container layers whose container is gone are the engine's to judge (it knows containers);
//! [`Store::container_layer_ids`] and [`Store::remove_container_layer`] serve it.
use crate::apply::remove_tree;
use crate::error::Result;
use crate::intent;
use crate::layers::STAGE_KIND;
use crate::layout::read_text_opt;
use crate::partial::PARTIAL_MAX_AGE;
use crate::store::Store;
use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

/// What a recovery pass removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Recovered {
    /// Paths removed (layer directories, leftovers, stale links).
    pub removed: Vec<PathBuf>,
    /// Bytes those paths held.
    pub bytes: u64,
}

impl Store {
    /// Sweeps only when a killed command left something behind (dead intents, `layerdb/tmp`
    /// entries). Cheap otherwise.
    pub fn recover(&self) -> Result<Recovered> {
        let mut stale = Recovered::default();
        if self.has_partials() {
            (stale.removed, stale.bytes) = self.drop_stale_partials(PARTIAL_MAX_AGE);
        }
        let tmp_busy = std::fs::read_dir(self.layout.layerdb_tmp())
            .map(|mut rd| rd.next().is_some())
            .unwrap_or(false);
        let intents = intent::list(&self.layout.root);
        let stage_dead = intents.iter().any(|f| f.kind == STAGE_KIND && !f.live());
        if !tmp_busy && !stage_dead {
            return Ok(stale);
        }
        let mut out = self.sweep_with(false)?;
        out.removed.extend(stale.removed);
        out.bytes += stale.bytes;
        Ok(out)
    }

    /// Sweeps now (a caller found a dead intent of its own, say a killed `create`, whose
    /// layer directories may be left), keeping layers a failed pull kept for the next one.
    pub fn recover_now(&self) -> Result<Recovered> {
        self.sweep_with(false)
    }

    /// Always sweeps: every leftover of a killed command goes, and (unlike [`Store::recover`])
    /// layers kept by a failed pull for the next one are given up too.
    pub fn sweep(&self) -> Result<Recovered> {
        self.sweep_with(true)
    }

    fn sweep_with(&self, drop_kept: bool) -> Result<Recovered> {
        let _lock = self.lock()?;
        let mut out = Recovered::default();
        // Leftovers of lock holders that died.
        if let Ok(rd) = std::fs::read_dir(self.layout.layerdb_tmp()) {
            for e in rd.flatten() {
                let p = e.path();
                out.bytes += tree_size(&p);
                let _ = remove_tree(&p);
                out.removed.push(p);
            }
        }
        if drop_kept {
            self.drop_unclaimed_kept_layers();
            let (removed, bytes) = self.drop_stale_partials(Duration::ZERO);
            out.removed.extend(removed);
            out.bytes += bytes;
        }
        // Objects first, intents second (see `intent`).
        let dirs: Vec<String> = std::fs::read_dir(&self.layout.overlay)
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        let intents = intent::list(&self.layout.root);
        let mut wanted = self.wanted_layer_dirs();
        for f in intents.iter().filter(|f| f.kind == STAGE_KIND && f.live()) {
            wanted.insert(f.object.clone());
        }
        for name in dirs {
            if name == "l" || wanted.contains(&name) {
                continue;
            }
            let p = self.layout.layer_dir(&name);
            let size = tree_size(&p);
            self.remove_layer_dir(&name);
            if !p.exists() {
                out.bytes += size;
                out.removed.push(p);
            }
        }
        for f in intents.iter().filter(|f| f.kind == STAGE_KIND && !f.live()) {
            f.clear();
        }
        // Short links whose layer is gone.
        if let Ok(rd) = std::fs::read_dir(self.layout.links()) {
            for e in rd.flatten() {
                let p = e.path();
                if std::fs::metadata(&p).is_err() {
                    let _ = std::fs::remove_file(&p);
                    out.removed.push(p);
                }
            }
        }
        Ok(out)
    }

    /// Cache ids some metadata names: committed layers, container layers (and their init
    /// layers), and staged layers kept by a failed pull.
    fn wanted_layer_dirs(&self) -> HashSet<String> {
        let mut wanted = HashSet::new();
        if let Ok(rd) = std::fs::read_dir(self.layout.layerdb()) {
            for e in rd.flatten() {
                if let Ok(Some(c)) = read_text_opt(&e.path().join("cache-id")) {
                    wanted.insert(c);
                }
            }
        }
        if let Ok(rd) = std::fs::read_dir(self.layout.mounts()) {
            for e in rd.flatten() {
                if let Ok(Some(m)) = read_text_opt(&e.path().join("mount-id")) {
                    wanted.insert(format!("{m}-init"));
                    wanted.insert(m);
                }
                if let Ok(Some(i)) = read_text_opt(&e.path().join("init-id")) {
                    wanted.insert(i);
                }
            }
        }
        wanted.extend(self.kept_cache_ids());
        wanted
    }

    /// IDs of every container layer (`layerdb/mounts/<id>`).
    pub fn container_layer_ids(&self) -> Vec<String> {
        std::fs::read_dir(self.layout.mounts())
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Checks the store's invariants and returns every violation found (empty when
    /// consistent): each image's layers exist; each layer's parent exists and its directory has
    /// a `diff`; each container layer's directories exist; no directory, link or temporary is
    /// left that nothing names. Meant for tests and `system prune`'s own checks; takes the lock.
    pub fn check(&self) -> Result<Vec<String>> {
        let _lock = self.lock()?;
        let mut problems = Vec::new();
        for id in self.image_ids()? {
            match self.image_config(&id) {
                Ok(cfg) => {
                    for c in crate::digest::chain_ids(&cfg.rootfs.diff_ids) {
                        if !self.has_layer(&c) {
                            problems.push(format!("image {id}: layer {c} is missing"));
                        }
                    }
                }
                Err(e) => problems.push(format!("image {id}: {e}")),
            }
        }
        for refs in self.repositories()?.repositories.values() {
            for (name, id) in refs {
                if !self.has_image(id) {
                    problems.push(format!("reference {name} names missing image {id}"));
                }
            }
        }
        if let Ok(rd) = std::fs::read_dir(self.layout.layerdb()) {
            for e in rd.flatten() {
                let chain = e.file_name().to_string_lossy().into_owned();
                match self.layer(&chain) {
                    Ok(l) => {
                        if !self.layout.layer_dir(&l.cache_id).join("diff").is_dir() {
                            problems
                                .push(format!("layer {chain}: directory {} missing", l.cache_id));
                        }
                        if let Some(p) = l.parent.filter(|p| !self.has_layer(p)) {
                            problems.push(format!("layer {chain}: parent {p} missing"));
                        }
                    }
                    Err(e) => problems.push(format!("layer {chain}: {e}")),
                }
            }
        }
        for cid in self.container_layer_ids() {
            match self.container_layer(&cid) {
                Ok(l) => {
                    if !l.upper.is_dir() {
                        problems.push(format!(
                            "container layer {cid}: {} missing",
                            l.upper.display()
                        ));
                    }
                }
                Err(e) => problems.push(format!("container layer {cid}: {e}")),
            }
        }
        let wanted = self.wanted_layer_dirs();
        let live_stage = intent::live_objects(&self.layout.root, STAGE_KIND);
        if let Ok(rd) = std::fs::read_dir(&self.layout.overlay) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name != "l" && !wanted.contains(&name) && !live_stage.contains(&name) {
                    problems.push(format!("orphan layer directory overlay2/{name}"));
                }
            }
        }
        if let Ok(rd) = std::fs::read_dir(self.layout.links()) {
            for e in rd.flatten() {
                if std::fs::metadata(e.path()).is_err() {
                    problems.push(format!("dangling short link {}", e.path().display()));
                }
            }
        }
        if let Ok(rd) = std::fs::read_dir(self.layout.layerdb_tmp()) {
            for e in rd.flatten() {
                problems.push(format!("leftover {}", e.path().display()));
            }
        }
        Ok(problems)
    }
}

/// Bytes under `path` (not following symlinks, not crossing into mounts); 0 when unreadable.
pub fn tree_size(path: &std::path::Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.blocks() * 512;
    }
    if crate::mounts::is_mountpoint(path) {
        return 0;
    }
    let mut total = meta.blocks() * 512;
    if let Ok(rd) = std::fs::read_dir(path) {
        for e in rd.flatten() {
            total += tree_size(&e.path());
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_of(name: &str, data: &[u8]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, data).unwrap();
        b.into_inner().unwrap()
    }

    /// An intent of a process that is gone (a reaped child's PID and start time).
    fn dead_intent(root: &std::path::Path, kind: &str, object: &str) {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id() as i32;
        let st = intent::start_time(pid).unwrap_or(1);
        child.wait().unwrap();
        let dir = intent::intents_dir(root);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join(format!("{kind}-{object}")),
            format!("{pid} {st}\n"),
        )
        .unwrap();
    }

    #[test]
    fn a_killed_extraction_is_swept_and_live_work_is_not() {
        let root = tempfile::tempdir().unwrap();
        let store = Store::open(root.path()).unwrap();
        // Committed layer: stays.
        let staged = store.stage_layer(&tar_of("a", b"a")[..], "a").unwrap();
        let chain = store.commit_staged(staged, None).unwrap();
        assert!(store.recover().unwrap().removed.is_empty());
        // A layer this (live) process is still staging: stays.
        let live = store.stage_layer(&tar_of("b", b"b")[..], "b").unwrap();
        // A killed stager's directory, with its dead intent: goes.
        let dead = crate::digest::random_hex_id();
        std::fs::create_dir_all(store.layout.layer_dir(&dead).join("diff/x")).unwrap();
        std::fs::write(
            store.layout.layer_dir(&dead).join("diff/x/big"),
            vec![7u8; 1 << 16],
        )
        .unwrap();
        dead_intent(root.path(), STAGE_KIND, &dead);
        // A killed committer's half-written entry in layerdb/tmp: goes.
        std::fs::create_dir_all(store.layout.layerdb_tmp().join("write-0123")).unwrap();
        let got = store.recover().unwrap();
        assert!(got.bytes >= 1 << 16, "{got:?}");
        assert!(!store.layout.layer_dir(&dead).exists());
        assert!(store.layout.layer_dir(&live.cache_id).exists());
        assert!(store.has_layer(&chain));
        assert!(intent::list(root.path()).iter().all(|f| f.live()));
        // With nothing cut short, recovery does nothing, and the store checks clean.
        assert_eq!(store.recover().unwrap(), Recovered::default());
        assert_eq!(store.check().unwrap(), Vec::<String>::new());
        store.discard_staged(live);
        assert!(intent::list(root.path()).is_empty());
    }

    #[test]
    fn a_directory_nothing_names_is_an_orphan_for_check_and_sweep() {
        let root = tempfile::tempdir().unwrap();
        let store = Store::open(root.path()).unwrap();
        let orphan = crate::digest::random_hex_id();
        std::fs::create_dir_all(store.layout.layer_dir(&orphan).join("diff")).unwrap();
        std::os::unix::fs::symlink("../gone/diff", store.layout.links().join("ABC")).unwrap();
        let problems = store.check().unwrap();
        assert_eq!(problems.len(), 2, "{problems:?}");
        store.sweep().unwrap();
        assert_eq!(store.check().unwrap(), Vec::<String>::new());
    }
}
