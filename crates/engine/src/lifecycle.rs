//! A container's life: `create` (record, layer, per-container files, OCI bundle), `start`
//! (detached, or attached through the monitor's socket), `stop`, `kill`, `restart`, `pause`,
//! `wait`, `rm`. Cleans up whatever it half-made when a step fails.
use crate::attach::{self, AttachOptions};
use crate::error::{EngineError, Result};
use crate::layer::{self, Layers};
use crate::names;
use crate::options::RunOptions;
use crate::record::{ContainerRecord, LayerPaths, MountPoint, Status, Store};
use crate::runtime_door::{self, OciRuntime};
use crate::spec::{self, SpecContext};
use berth_common::poll::{self, Backoff};
use berth_common::time::now_rfc3339;
use std::io::Read;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod create;
pub(crate) mod keeper;
pub mod recovery;
mod start;
mod stop;

/// The engine bound to one Berth root. Cheap to clone; every method may be called from any
/// thread (containers are started through a monitor process either way, see `monitor`).
#[derive(Debug, Clone)]
pub struct Engine {
    pub store: Store,
    pub(crate) runtime: Arc<dyn OciRuntime>,
    pub(crate) layers: Layers,
    root: PathBuf,
}

/// Where, under the engine's root, a client may install a static init for `--init`.
pub const BUILTIN_INIT: &str = "bin/docker-init";

impl Engine {
    /// The engine for the Berth root `root`, with the runtime `BERTH_RUNTIME` names (the
    /// built-in library when unset).
    pub fn open(root: &Path) -> Engine {
        Engine::with_runtime(root, runtime_door::from_env(root))
    }

    /// The engine for `root` driving `runtime`.
    pub fn with_runtime(root: &Path, runtime: Arc<dyn OciRuntime>) -> Engine {
        Engine {
            store: Store::new(root),
            runtime,
            layers: Layers::new(root),
            root: root.to_path_buf(),
        }
    }

    /// The OCI runtime this engine drives.
    pub fn runtime(&self) -> &dyn OciRuntime {
        self.runtime.as_ref()
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `berth rename`: gives container `id` the name `new_name` and records Docker's `rename`
    /// event.
    pub fn rename(&self, id: &str, new_name: &str) -> Result<()> {
        let old_name = self.store.rename(id, new_name)?;
        let record = self.store.load(id)?;
        crate::events::container(&self.root, &record, "rename", &[("oldName", old_name)]);
        Ok(())
    }

    /// `berth exec`: runs `req` in the running container `record`; returns the command's exit
    /// code (0 at once with `detach`). Records Docker's `exec_create: CMD`, `exec_start: CMD`
    /// and (when it is waited for) `exec_die` events.
    pub fn exec(&self, record: &ContainerRecord, req: &crate::exec::ExecRequest) -> Result<i32> {
        crate::exec::run(&self.store, self.runtime.as_ref(), record, req)
    }

    /// The OCI process `req` would run in the running container `record`, after Docker's
    /// checks (running, not paused, the command found: 127, executable: 126), for callers that
    /// run it themselves, like the API service (through the runtime binary, never forking).
    pub fn exec_process(
        &self,
        record: &ContainerRecord,
        req: &crate::exec::ExecRequest,
    ) -> Result<oci_spec::runtime::Process> {
        crate::exec::process_for(&self.store, record, req)
    }

    /// What a container's monitor gets of the engine: the record store, the runtime door and
    /// the layers.
    pub(crate) fn monitor_context(&self) -> crate::monitor::MonitorContext {
        crate::monitor::MonitorContext {
            store: self.store.clone(),
            runtime: self.runtime.clone(),
            layers: self.layers.clone(),
        }
    }

    /// Resolves a name / ID / prefix and loads the record.
    pub fn lookup(&self, reference: &str) -> Result<ContainerRecord> {
        let id = self.store.resolve(reference)?;
        self.store.load(&id)
    }

    /// Mounts the container's layer again if it is not mounted (after a stop).
    pub fn ensure_mounted(&self, record: &ContainerRecord) -> Result<()> {
        self.layers.ensure_mounted(record)
    }

    pub fn unmount(&self, record: &ContainerRecord) -> Result<()> {
        self.layers.unmount_record(record)
    }

    /// Removes everything a stopped container owns: runtime state, layer, record, name.
    pub fn remove_resources(&self, record: &ContainerRecord) -> Result<()> {
        if self.runtime.delete(&record.id, true).is_err() {
            // The runtime could not clean up (state lost or unreadable): make sure no process
            // of the container survives its record, and drop its cgroup ourselves.
            record.kill_cgroup()?;
        }
        self.remove_layer_and_record(record)
    }

    /// Removes a container's layer, record and name (its runtime state already gone). Parts
    /// already gone (a removal killed half-way) are no error.
    pub fn remove_layer_and_record(&self, record: &ContainerRecord) -> Result<()> {
        crate::network::release(&self.root, &record.id)?;
        if !record.driver.is_empty() {
            let _ = self.layers.unmount(&record.id);
            match self.layers.remove(&record.id) {
                Ok(())
                | Err(EngineError::Image(berth_image::ImageError::NoSuchContainerLayer(_))) => {}
                Err(e) => return Err(e),
            }
        }
        self.store.remove(record)
    }
}
