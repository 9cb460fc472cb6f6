//! A `StepRunner` for unit tests: images are JSON configs in memory plus a directory snapshot
//! of their files; containers are copies of their image's snapshot in a temporary directory;
//! `RUN` understands just `false` / `exit N` (fails) and `touch PATH` (creates a file).
use crate::error::{BuildError, Result};
use crate::runner::{BaseImage, ProcessSpec, StepContainer, StepRunner};
use berth_image::ImageConfig;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Default)]
pub struct FakeRunner {
    pub images: HashMap<String, ImageConfig>,
    pub snapshots: HashMap<String, tempfile::TempDir>,
    pub tags: BTreeMap<String, String>,
    pub runs: Vec<ProcessSpec>,
    pub live: HashMap<String, (tempfile::TempDir, Option<String>)>,
    pub created: usize,
}

fn copy_tree(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let src = entry.path();
        let dst = to.join(entry.file_name());
        let meta = std::fs::symlink_metadata(&src).unwrap();
        if meta.file_type().is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&src).unwrap(), &dst).unwrap();
        } else if meta.is_dir() {
            std::fs::create_dir(&dst).unwrap();
            copy_tree(&src, &dst);
        } else {
            std::fs::copy(&src, &dst).unwrap();
        }
    }
}

fn tree_digest(dir: &Path) -> String {
    let mut h = Sha256::new();
    let mut entries: Vec<PathBuf> = Vec::new();
    fn walk(d: &Path, out: &mut Vec<PathBuf>) {
        let mut v: Vec<_> = std::fs::read_dir(d)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect();
        v.sort();
        for p in v {
            out.push(p.clone());
            if p.is_dir() && !p.is_symlink() {
                walk(&p, out);
            }
        }
    }
    walk(dir, &mut entries);
    for p in entries {
        h.update(p.strip_prefix(dir).unwrap().to_string_lossy().as_bytes());
        if p.is_file() {
            h.update(std::fs::read(&p).unwrap());
        }
    }
    format!("sha256:{}", hex::encode(h.finalize()))
}

impl FakeRunner {
    /// Adds a base image named `name` whose files are `files` (path → content).
    pub fn add_base(&mut self, name: &str, files: &[(&str, &str)]) -> String {
        let snap = tempfile::tempdir().unwrap();
        for (p, c) in files {
            let path = snap.path().join(p);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, c).unwrap();
        }
        let config = ImageConfig {
            architecture: "amd64".into(),
            os: "linux".into(),
            rootfs: berth_image::RootFs {
                kind: "layers".into(),
                diff_ids: vec![tree_digest(snap.path())],
            },
            history: vec![berth_image::History {
                comment: Some("Imported from -".into()),
                ..Default::default()
            }],
            ..Default::default()
        };
        let id = self.store(config, snap);
        self.tags.insert(name.to_string(), id.clone());
        id
    }

    fn store(&mut self, config: ImageConfig, snap: tempfile::TempDir) -> String {
        let bytes = serde_json::to_vec(&config).unwrap();
        let id = format!("sha256:{}", hex::encode(Sha256::digest(&bytes)));
        self.images.insert(id.clone(), config);
        self.snapshots.insert(id.clone(), snap);
        id
    }

    fn snapshot_of(&self, image: Option<&str>) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        if let Some(snap) = image.and_then(|i| self.snapshots.get(i)) {
            copy_tree(snap.path(), dir.path());
        }
        dir
    }

    /// Files of image `id` (for assertions).
    pub fn read(&self, id: &str, path: &str) -> Option<String> {
        std::fs::read_to_string(self.snapshots.get(id)?.path().join(path)).ok()
    }
}

impl StepRunner for FakeRunner {
    fn resolve_image(&mut self, reference: &str) -> Result<BaseImage> {
        let id = self
            .tags
            .get(reference)
            .cloned()
            .unwrap_or_else(|| reference.to_string());
        match self.images.get(&id) {
            Some(c) => Ok(BaseImage {
                id,
                config: c.clone(),
            }),
            None => Err(BuildError::Backend(format!("No such image: {reference}"))),
        }
    }

    fn image_exists(&mut self, id: &str) -> bool {
        self.images.contains_key(id)
    }

    fn create_container(&mut self, image_id: Option<&str>) -> Result<StepContainer> {
        self.created += 1;
        let dir = self.snapshot_of(image_id);
        let id = format!("{:064x}", self.created);
        let c = StepContainer {
            id: id.clone(),
            rootfs: dir.path().to_path_buf(),
        };
        self.live.insert(id, (dir, image_id.map(str::to_string)));
        Ok(c)
    }

    fn run(
        &mut self,
        container: &StepContainer,
        process: &ProcessSpec,
        output: &mut dyn Write,
    ) -> Result<i32> {
        self.runs.push(process.clone());
        for volume in &process.volumes {
            let path = crate::fsutil::secure_join(&container.rootfs, volume, true)?;
            std::fs::create_dir_all(&path).map_err(|e| BuildError::io("mkdir", &path, e))?;
        }
        let script = process.args.join(" ");
        writeln!(output, "ran: {script}").ok();
        if script.contains("false") || script.contains("exit 1") {
            return Ok(1);
        }
        let words: Vec<&str> = script.split_whitespace().collect();
        for pair in words.windows(2) {
            if pair[0] == "touch" {
                let path = crate::fsutil::secure_join(&container.rootfs, pair[1], true)?;
                std::fs::write(path, "").map_err(|e| BuildError::io("touch", pair[1], e))?;
            }
        }
        Ok(0)
    }

    fn has_changes(&mut self, container: &StepContainer) -> Result<bool> {
        let (dir, parent) = &self.live[&container.id];
        let before = self.snapshot_of(parent.as_deref());
        Ok(tree_digest(before.path()) != tree_digest(dir.path()))
    }

    fn commit_layer(
        &mut self,
        container: &StepContainer,
        config: &ImageConfig,
        _parent: Option<&str>,
    ) -> Result<String> {
        let snap = tempfile::tempdir().unwrap();
        copy_tree(&container.rootfs, snap.path());
        let mut config = config.clone();
        config.rootfs.diff_ids.push(tree_digest(snap.path()));
        Ok(self.store(config, snap))
    }

    fn add_image(&mut self, config: &ImageConfig, parent: Option<&str>) -> Result<String> {
        let snap = self.snapshot_of(parent);
        Ok(self.store(config.clone(), snap))
    }

    fn remove_container(&mut self, container: &StepContainer) -> Result<()> {
        self.live.remove(&container.id);
        Ok(())
    }

    fn tag(&mut self, image_id: &str, reference: &str) -> Result<()> {
        self.tags
            .insert(reference.to_string(), image_id.to_string());
        Ok(())
    }
}
