//! The real [`StepRunner`]: images, layers and tags through `berth-image`; a `RUN` command
//! through `berth-engine`, as a container whose root is the step's own mounted layer (the engine's
//! `--rootfs` mode), so the command's changes land in that layer and are committed from it.
//! Step containers and layers are removed whether the step worked or not.
use crate::error::{BuildError, Result};
use crate::runner::{BaseImage, ProcessSpec, StepContainer, StepRunner};
use berth_engine::{AttachOptions, Engine, RunOptions};
use berth_image::{ImageConfig, Store};
use std::io::Write;
use std::path::Path;

/// Runs build steps against the store under one Berth root.
pub struct EngineRunner {
    store: Store,
    engine: Engine,
    /// Forward RUN output (false for `--quiet`).
    pub show_output: bool,
    /// RUN output goes into the build's output writer (an API build stream) instead of this
    /// process's stdout/stderr (a terminal, for `berth build`).
    pub run_output_to_writer: bool,
    /// `--network` for RUN: `host` shares the host's network; anything else (`default`,
    /// `none`) gives the step a network namespace of its own with no interfaces but loopback.
    pub network_mode: String,
    /// When base images are pulled: missing ones (the default), or always with `--pull`.
    pub pull_policy: berth_engine::pull::PullPolicy,
    /// `--platform` for pulled base images.
    pub platform: Option<String>,
    /// References pulled during this build (`--pull` pulls each once).
    pulled: std::collections::HashSet<String>,
    /// The `step` intents of this build's step layers, by container id: a killed build's
    /// layers (mounted, pinning their images) are removed by the next command.
    step_intents: std::collections::HashMap<String, berth_image::intent::Intent>,
}

/// Pull progress as lines on stderr while a build pulls its base image.
struct PullLines;

impl berth_engine::pull::PullProgress for PullLines {
    fn status(&self, line: &str) {
        eprintln!("{line}");
    }
    fn layer(&self, id: &str, event: berth_engine::pull::LayerEvent) {
        if event == berth_engine::pull::LayerEvent::Complete {
            eprintln!("{id}: Pull complete");
        }
    }
}

fn backend<E: std::fmt::Display>(e: E) -> BuildError {
    BuildError::Backend(e.to_string())
}

impl EngineRunner {
    pub fn open(root: &Path) -> Result<EngineRunner> {
        Ok(EngineRunner {
            store: Store::open(root).map_err(backend)?,
            engine: Engine::open(root),
            show_output: true,
            run_output_to_writer: false,
            network_mode: String::new(),
            pull_policy: berth_engine::pull::PullPolicy::Missing,
            platform: None,
            pulled: Default::default(),
            step_intents: Default::default(),
        })
    }

    pub fn store(&self) -> &Store {
        &self.store
    }
}

impl StepRunner for EngineRunner {
    fn resolve_image(&mut self, reference: &str) -> Result<BaseImage> {
        // FROM of an image the store lacks pulls it, as Docker's builder does.
        if !self.pulled.contains(reference) {
            let quiet = berth_engine::pull::Silent;
            let lines = PullLines;
            let progress: &dyn berth_engine::pull::PullProgress =
                if self.show_output { &lines } else { &quiet };
            self.engine
                .ensure_image(
                    reference,
                    self.pull_policy,
                    self.platform.as_deref(),
                    progress,
                    &mut || {},
                )
                .map_err(backend)?;
            self.pulled.insert(reference.to_string());
        }
        let image = self.store.resolve(reference).map_err(backend)?;
        Ok(BaseImage {
            id: image.id,
            config: image.config,
        })
    }

    fn image_exists(&mut self, id: &str) -> bool {
        self.store.has_image(id)
    }

    fn create_container(&mut self, image_id: Option<&str>) -> Result<StepContainer> {
        if let Some(image) = image_id {
            // A step on an image at the overlay limit fails here, before anything is mounted.
            self.store.ensure_room_for_layer(image).map_err(backend)?;
        }
        let id = berth_image::digest::random_hex_id();
        let intent = berth_image::intent::Intent::begin(
            self.store.root(),
            berth_engine::recovery::STEP,
            &id,
        )
        .map_err(backend)?;
        if let Err(e) = self.store.create_container_layer(&id, image_id) {
            intent.done();
            return Err(backend(e));
        }
        self.step_intents.insert(id.clone(), intent);
        // volatile: a step's layer is copied into the store by the commit and then deleted,
        // so syncing it on unmount (a whole-filesystem sync per step) buys nothing.
        match self.store.mount_container_layer_with(&id, true) {
            Ok(rootfs) => Ok(StepContainer { id, rootfs }),
            Err(e) => {
                let _ = self.store.remove_container_layer(&id);
                if let Some(i) = self.step_intents.remove(&id) {
                    i.done();
                }
                Err(backend(e))
            }
        }
    }

    fn run(
        &mut self,
        container: &StepContainer,
        process: &ProcessSpec,
        output: &mut dyn Write,
    ) -> Result<i32> {
        let options = RunOptions {
            image: String::new(),
            command: process.args.clone(),
            entrypoint: Some(String::new()),
            env: process.env.clone(),
            workdir: if process.workdir.is_empty() {
                None
            } else {
                Some(process.workdir.clone())
            },
            user: if process.user.is_empty() {
                None
            } else {
                Some(process.user.clone())
            },
            rootfs: Some(container.rootfs.clone()),
            ..Default::default()
        };
        let mut options = options;
        // An empty mode is loopback only; `bridge` (the CLI's default) puts the step on the
        // default network, as Docker's builder does.
        options.host.network_mode = if self.network_mode.is_empty() {
            "none".into()
        } else {
            self.network_mode.clone()
        };
        for volume in &process.volumes {
            options
                .host
                .mounts
                .push(berth_engine::options::MountConfig {
                    r#type: "volume".into(),
                    source: String::new(),
                    target: volume.clone(),
                    read_only: false,
                });
        }
        let _ = output.flush();
        let record = self.engine.create(&options).map_err(backend)?;
        let attach = AttachOptions {
            stdin: false,
            stdout: self.show_output,
            stderr: self.show_output,
            tty: false,
            sig_proxy: true,
            detach_keys: Default::default(),
        };
        let result = if self.run_output_to_writer {
            self.engine.start_collecting(&record.id, output)
        } else {
            self.engine.start_attached(&record.id, &attach)
        };
        let removed = self.engine.remove(&record.id, true, true);
        let code = result.map_err(backend)?;
        removed.map_err(backend)?;
        Ok(code)
    }

    fn has_changes(&mut self, container: &StepContainer) -> Result<bool> {
        let layer = self.store.container_layer(&container.id).map_err(backend)?;
        let mut entries = std::fs::read_dir(&layer.upper)
            .map_err(|e| BuildError::io("reading", &layer.upper, e))?;
        Ok(entries.next().is_some())
    }

    fn commit_layer(
        &mut self,
        container: &StepContainer,
        config: &ImageConfig,
        parent: Option<&str>,
    ) -> Result<String> {
        self.store
            .commit_container_layer(&container.id, config.clone(), parent)
            .map_err(backend)
    }

    fn add_image(&mut self, config: &ImageConfig, parent: Option<&str>) -> Result<String> {
        self.store.add_image(config, parent).map_err(backend)
    }

    fn remove_container(&mut self, container: &StepContainer) -> Result<()> {
        self.store
            .remove_container_layer(&container.id)
            .map_err(backend)?;
        if let Some(i) = self.step_intents.remove(&container.id) {
            i.done();
        }
        Ok(())
    }

    fn tag(&mut self, image_id: &str, reference: &str) -> Result<()> {
        // A cached rebuild usually finds the tag already in place: no write, no fsync.
        if let Ok(parsed) = berth_image::Reference::parse_tagged(reference) {
            if self
                .store
                .lookup_reference(&parsed)
                .ok()
                .flatten()
                .as_deref()
                == Some(image_id)
            {
                return Ok(());
            }
        }
        self.store.tag(image_id, reference).map_err(backend)?;
        Ok(())
    }
}
