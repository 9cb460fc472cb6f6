//! A container's life: `create` (record, layer, per-container files, OCI bundle), `start`
//! (detached, or attached through the monitor's socket), `stop`, `kill`, `restart`, `pause`,
//! `wait`, `rm`. Cleans up whatever it half-made when a step fails.
use crate::attach;
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

/// The engine bound to one Berth root. Cheap to clone; every method may be called from any
/// thread (containers are started through a monitor process either way, see `monitor`).
#[derive(Debug, Clone)]
pub struct Engine {
    pub store: Store,
    pub(crate) runtime: Arc<dyn OciRuntime>,
    pub(crate) layers: Layers,
    root: PathBuf,
}

/// What an attached client wants (`-a`, `-i`, `-t`, `--sig-proxy`).
#[derive(Debug, Clone, Copy)]
pub struct AttachOptions {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
    pub sig_proxy: bool,
    /// `--detach-keys` (default ctrl-p,ctrl-q), honoured on an interactive terminal.
    pub detach_keys: crate::detach_keys::DetachKeys,
}

/// Where, under the engine's root, a client may install a static init for `--init`.
pub const BUILTIN_INIT: &str = "bin/docker-init";

/// Where else the static init for `--init` comes from (the host's packages).
const INIT_CANDIDATES: &[&str] = &[
    "/usr/bin/tini-static",
    "/usr/bin/docker-init",
    "/usr/libexec/docker/docker-init",
];

/// Undoes a half-made container unless `done` is set.
struct CreateGuard<'a> {
    engine: &'a Engine,
    id: String,
    name: Option<String>,
    layer: bool,
    network: bool,
    done: bool,
    /// The `create` intent: dropped once the record is saved or the half-made parts are gone.
    intent: Option<berth_image::intent::Intent>,
}

impl Drop for CreateGuard<'_> {
    fn drop(&mut self) {
        if self.done {
            if let Some(i) = self.intent.take() {
                i.done();
            }
            return;
        }
        if self.network {
            let _ = crate::network::release(self.engine.root(), &self.id);
        }
        if self.layer {
            let _ = self.engine.layers.unmount(&self.id);
            let _ = self.engine.layers.remove(&self.id);
        }
        let _ = std::fs::remove_dir_all(self.engine.store.container_dir(&self.id));
        if let Some(name) = &self.name {
            self.engine.store.release_name(name, &self.id);
        }
        if let Some(i) = self.intent.take() {
            i.done();
        }
    }
}

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

    /// Resolves a name / ID / prefix and loads the record.
    pub fn lookup(&self, reference: &str) -> Result<ContainerRecord> {
        let id = self.store.resolve(reference)?;
        self.store.load(&id)
    }

    /// `berth create`: everything but starting. The layer stays mounted (start needs it).
    pub fn create(&self, opts: &RunOptions) -> Result<ContainerRecord> {
        crate::run_checks::run_options(opts)?;
        let log_settings = crate::logs::LogSettings::of(&opts.host.log_config)?;
        check_modes(&opts.host)?;
        let security = crate::security_opts::parse(&opts.host.security_opt)?;
        crate::network::check_mode(
            &self.root,
            &opts.host.network_mode,
            &opts.networking.extra_networks,
        )?;
        let id = names::new_id();
        let image = match &opts.rootfs {
            Some(_) => layer::ResolvedImage::default(),
            None => self.layers.resolve_image(&opts.image)?,
        };
        // Before anything of the container exists: a kill -9 from here on leaves an intent
        // whose dead owner tells the next command to take the half-made container apart.
        let intent = berth_image::intent::Intent::begin(&self.root, crate::recovery::CREATE, &id)?;
        let mut guard = CreateGuard {
            engine: self,
            id: id.clone(),
            name: None,
            layer: false,
            network: false,
            done: false,
            intent: Some(intent),
        };
        let dir = self.store.container_dir(&id);
        std::fs::create_dir_all(&dir).map_err(|e| EngineError::io(&dir, e))?;
        let name = match &opts.name {
            Some(n) => {
                let n = n.trim_start_matches('/').to_string();
                self.store.reserve_name(&n, &id)?;
                n
            }
            None => loop {
                let n = names::random_name();
                match self.store.reserve_name(&n, &id) {
                    Ok(()) => break n,
                    Err(EngineError::NameInUse { .. }) => continue,
                    Err(e) => return Err(e),
                }
            },
        };
        guard.name = Some(name.clone());
        let (layer_paths, rootfs) = match &opts.rootfs {
            Some(r) => {
                let abs = std::fs::canonicalize(r).map_err(|e| EngineError::io(r, e))?;
                (
                    LayerPaths {
                        merged_dir: abs.to_string_lossy().into_owned(),
                        ..Default::default()
                    },
                    abs,
                )
            }
            None => {
                guard.layer = true;
                let paths = self.layers.create(&id, &image.id)?;
                let merged = if opts.host.auto_remove {
                    self.layers.mount_volatile(&id)?
                } else {
                    self.layers.mount(&id)?
                };
                (paths, merged)
            }
        };
        let config = spec::merge_config(&image.config, opts, &id);
        let user = crate::users::resolve_in_rootfs(&config.user, &rootfs)?;
        let mut host = opts.host.clone();
        let image_volumes: Vec<String> = config
            .volumes
            .iter()
            .flatten()
            .map(|(k, _)| k.clone())
            .collect();
        let prepared = crate::volumes::Volumes::new(&self.root).prepare_container(
            &host,
            &image_volumes,
            &rootfs,
        )?;
        let mount_points: std::collections::BTreeMap<String, MountPoint> = prepared.mount_points;
        let spec_host = crate::options::HostConfig {
            mounts: prepared.spec_mounts,
            ..host.clone()
        };
        let hostname = if host.uts_mode == "host" {
            nix::unistd::gethostname()
                .map(|h| h.to_string_lossy().into_owned())
                .unwrap_or_default()
        } else {
            config.hostname.clone()
        };
        let write = |name: &str, text: &str| -> Result<()> {
            let p = dir.join(name);
            std::fs::write(&p, text).map_err(|e| EngineError::io(&p, e))
        };
        write("hostname", &format!("{hostname}\n"))?;
        if host.network_mode.is_empty() || host.network_mode == "default" {
            host.network_mode = crate::network::default_mode();
        }
        guard.network = true;
        let prepared = crate::network::prepare(
            &self.root,
            &id,
            &name,
            &hostname,
            &host,
            &config,
            &opts.networking,
        )?;
        write("hosts", &prepared.hosts)?;
        write("resolv.conf", &prepared.resolv_conf)?;
        let join = |mode: &str, kind: &str| -> Result<Option<String>> {
            match mode.strip_prefix("container:") {
                Some(other) => {
                    let rec = self.lookup(other)?;
                    if !rec.is_running() {
                        return Err(EngineError::state(&rec.id, format!("cannot join the {kind} namespace of a container that is not running")));
                    }
                    if kind == "net" {
                        if let Some(pinned) = crate::network::netns_path(&self.root, &rec.id) {
                            return Ok(Some(pinned.to_string_lossy().into_owned()));
                        }
                    }
                    Ok(Some(format!("/proc/{}/ns/{kind}", rec.state.pid)))
                }
                None => Ok(None),
            }
        };
        let (soft, hard) = nofile_limits();
        let init_binary = if host.init == Some(true) {
            // Berth's own static init (installed by the CLI) first, then the host's.
            std::iter::once(self.root.join(BUILTIN_INIT))
                .chain(INIT_CANDIDATES.iter().map(PathBuf::from))
                .find(|p| p.exists())
        } else {
            None
        };
        if host.init == Some(true) && init_binary.is_none() {
            return Err(EngineError::NoInit);
        }
        let cap_mask = crate::procinfo::bounding_caps();
        let caps = spec::capabilities(&host, cap_mask);
        let seccomp = crate::security_opts::seccomp_for(&security, &caps)?;
        let ctx = SpecContext {
            id: id.clone(),
            rootfs: rootfs.clone(),
            container_dir: dir.clone(),
            volumes_dir: self.root.join("volumes"),
            user,
            cgroups_path: format!("/berth/{id}"),
            seccomp,
            host_nofile: (soft, hard),
            join_pid_ns: join(&host.pid_mode, "pid")?,
            join_ipc_ns: join(&host.ipc_mode, "ipc")?,
            join_net_ns: match &prepared.netns {
                Some(pinned) => Some(pinned.to_string_lossy().into_owned()),
                None => join(&host.network_mode, "net")?,
            },
            init_binary: init_binary.clone(),
            host_cap_mask: cap_mask,
            host_devices: if host.privileged {
                spec::host_devices(Path::new("/dev"))
            } else {
                Vec::new()
            },
        };
        let mut oci = spec::build_spec(&config, &spec_host, &ctx)?;
        if init_binary.is_some() {
            if let Some(process) = oci.process_mut() {
                let mut args = vec!["/sbin/docker-init".to_string(), "--".to_string()];
                args.extend(process.args().clone().unwrap_or_default());
                process.set_args(Some(args));
            }
        }
        let spec_path = dir.join("config.json");
        let spec_json =
            serde_json::to_vec(&oci).map_err(|e| EngineError::encode("the OCI spec", e))?;
        crate::record::write_atomic(&spec_path, &spec_json)?;
        let args = spec::command_line(&config);
        let record = ContainerRecord {
            id: id.clone(),
            created: now_rfc3339(),
            path: args.first().cloned().unwrap_or_default(),
            args: args.iter().skip(1).cloned().collect(),
            config,
            image: image.id.clone(),
            name: format!("/{name}"),
            driver: if opts.rootfs.is_some() {
                String::new()
            } else {
                "overlay2".into()
            },
            os: "linux".into(),
            mount_points,
            // Docker names a log file only for the json-file driver.
            log_path: if log_settings.format == Some(crate::logs::LogFormat::JsonFile) {
                dir.join(format!("{id}-json.log"))
                    .to_string_lossy()
                    .into_owned()
            } else {
                String::new()
            },
            hostname_path: dir.join("hostname").to_string_lossy().into_owned(),
            hosts_path: dir.join("hosts").to_string_lossy().into_owned(),
            resolv_conf_path: dir.join("resolv.conf").to_string_lossy().into_owned(),
            berth_layer: LayerPaths {
                merged_dir: rootfs.to_string_lossy().into_owned(),
                ..layer_paths
            },
            berth_cgroups_path: ctx.cgroups_path.clone(),
            ..Default::default()
        };
        self.store.save_host_config(&id, &host)?;
        self.store.save(&record)?;
        guard.done = true;
        crate::events::container(&self.root, &record, "create", &[]);
        Ok(record)
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
            kill_cgroup(&record.berth_cgroups_path)?;
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

    /// Brings the container's networks up (a stopped container gave them back) under the
    /// container's lock, so two starts, or a start and an `rm`, never set them up or take them
    /// down at once.
    fn ensure_network(&self, id: &str) -> Result<()> {
        let _op = self.store.lock_container(id)?;
        crate::network::ensure_ready(&self.root, id)
    }

    /// Starts a created or stopped container in the background; returns once it runs.
    pub fn start_detached(&self, id: &str) -> Result<()> {
        let record = self.store.load(id)?;
        if record.is_running() {
            return Ok(());
        }
        self.ensure_network(id)?;
        let (read, write) = crate::sys::pipe()?;
        crate::monitor::spawn(self, id, None, Some(write))?;
        let mut text = String::new();
        let _ = std::fs::File::from(read).read_to_string(&mut text);
        let text = text.trim();
        if text == "0" {
            return Ok(());
        }
        let (code, message) = text
            .split_once(' ')
            .unwrap_or((text, "the container's monitor failed before starting it"));
        Err(EngineError::Command {
            message: message.to_string(),
            exit_code: code.parse().unwrap_or(125),
        })
    }

    /// Starts a container with this process attached; returns the container's exit code.
    pub fn start_attached(&self, id: &str, opts: &AttachOptions) -> Result<i32> {
        self.ensure_network(id)?;
        let (ours, theirs) = crate::sys::socketpair()?;
        let mut stream = UnixStream::from(ours);
        // The monitor reads the greeting before it starts the container.
        crate::client::send_greeting(&mut stream, opts)?;
        crate::monitor::spawn(self, id, Some(theirs), None)?;
        crate::client::session(stream, opts)
    }

    /// Starts a container and writes its stdout and stderr, interleaved as they come, to
    /// `out` (a build step's output inside a server's stream, where this process's own stdio
    /// is nobody's terminal); returns the exit code. No stdin, no signals proxied.
    pub fn start_collecting(&self, id: &str, out: &mut dyn std::io::Write) -> Result<i32> {
        crate::network::ensure_ready(&self.root, id)?;
        let (ours, theirs) = crate::sys::socketpair()?;
        let mut stream = UnixStream::from(ours);
        let wants = crate::attach::WANT_STDOUT | crate::attach::WANT_STDERR;
        crate::attach::write_frame(&mut stream, crate::attach::HELLO, &[wants])
            .map_err(|e| EngineError::os("attach", e))?;
        crate::monitor::spawn(self, id, Some(theirs), None)?;
        loop {
            let frame =
                crate::attach::read_frame(&mut stream).map_err(|e| EngineError::os("attach", e))?;
            match frame {
                Some((crate::attach::STDOUT | crate::attach::STDERR, payload)) => {
                    // A reader that left must not stop the container's run: keep draining.
                    let _ = out.write_all(&payload);
                    let _ = out.flush();
                }
                Some((crate::attach::EXIT, payload)) => {
                    return Ok(crate::attach::payload_i32(&payload))
                }
                Some((crate::attach::ERROR, payload)) => {
                    return Err(EngineError::Command {
                        message: String::from_utf8_lossy(payload.get(4..).unwrap_or_default())
                            .into_owned(),
                        exit_code: crate::attach::payload_i32(&payload),
                    })
                }
                Some(_) => {}
                None => {
                    return Err(EngineError::os(
                        "attach",
                        std::io::Error::new(
                            std::io::ErrorKind::UnexpectedEof,
                            "the container's monitor went away",
                        ),
                    ))
                }
            }
        }
    }

    /// Starts a container whose first attach client is `client` (a server's session, which
    /// already sent its greeting): output, STARTED, EXIT and ERROR frames arrive on it. Returns
    /// once the monitor is on its way; the monitor reads the greeting before it starts.
    pub fn start_with_client(&self, id: &str, client: std::os::fd::OwnedFd) -> Result<()> {
        // Like every start: a stopped container gave its networks back.
        self.ensure_network(id)?;
        crate::monitor::spawn(self, id, Some(client), None)
    }

    /// Connects to a running container's monitor.
    pub fn connect(&self, id: &str) -> Option<UnixStream> {
        let sock =
            crate::sys::socket_path(&self.store.container_dir(id).join("attach.sock")).ok()?;
        UnixStream::connect(&sock.path).ok()
    }

    /// `berth attach`.
    pub fn attach(&self, id: &str, opts: &AttachOptions) -> Result<i32> {
        let record = self.store.load(id)?;
        if !record.is_running() {
            return Err(EngineError::state(
                id,
                "You cannot attach to a stopped container, start it first",
            ));
        }
        let mut stream = self
            .connect(id)
            .ok_or_else(|| EngineError::state(id, "its monitor is gone"))?;
        crate::client::send_greeting(&mut stream, opts)?;
        crate::client::session(stream, opts)
    }

    /// `berth wait`: blocks until the container stops; returns its exit code.
    pub fn wait(&self, id: &str) -> Result<i32> {
        if let Some(mut stream) = self.connect(id) {
            let _ = attach::write_frame(&mut stream, attach::HELLO, &[0]);
            while let Ok(Some((kind, payload))) = attach::read_frame(&mut stream) {
                if kind == attach::EXIT || kind == attach::ERROR {
                    return Ok(attach::payload_i32(&payload));
                }
            }
        }
        // No monitor to ask: the record (or its absence, after --rm) is the truth once no
        // monitor is about to write it (the monitor clears its PID with the exit code).
        loop {
            let record = self.store.load(id)?;
            let monitor_busy =
                record.berth_monitor_pid != 0 && crate::procinfo::alive(record.berth_monitor_pid);
            if !monitor_busy && !record.init_alive() {
                // A monitor killed before it recorded the end: reconstruct it first.
                if record.state.running {
                    crate::recovery::recover(self)?;
                    return Ok(self.store.load(id)?.state.exit_code);
                }
                return Ok(record.state.exit_code);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Sends `signal` to the container's init (through its monitor when there is one).
    pub fn kill(&self, id: &str, signal: i32) -> Result<()> {
        let record = self.store.load(id)?;
        if !record.is_running() {
            return Err(EngineError::state(
                id,
                format!("cannot kill container {id}: container {id} is not running"),
            ));
        }
        crate::events::container(
            &self.root,
            &record,
            "kill",
            &[("signal", signal.to_string())],
        );
        if let Some(mut stream) = self.connect(id) {
            if attach::write_frame(&mut stream, attach::SIGNAL, &attach::i32_payload(signal))
                .is_ok()
            {
                return Ok(());
            }
        }
        // SAFETY: the PID was checked against its recorded start time just above.
        if unsafe { libc::kill(record.state.pid, signal) } < 0 {
            return Err(EngineError::last_os(format!(
                "kill {} (the init of container {id})",
                record.state.pid
            )));
        }
        Ok(())
    }

    /// `berth stop -t`: stop signal, then SIGKILL after `timeout` seconds.
    pub fn stop(&self, id: &str, timeout: Option<i64>) -> Result<()> {
        let record = self.store.load(id)?;
        let _ = self
            .store
            .update(id, |r| r.has_been_manually_stopped = true);
        if !record.is_running() {
            if let Some(mut s) = self.connect(id) {
                let _ = attach::write_frame(&mut s, attach::NO_RESTART, &[]);
            }
            return Ok(());
        }
        let signal = record
            .config
            .stop_signal
            .as_deref()
            .map(crate::sys::parse_signal)
            .transpose()?
            .unwrap_or(libc::SIGTERM);
        let timeout =
            Duration::from_secs(timeout.or(record.config.stop_timeout).unwrap_or(10).max(0) as u64);
        crate::events::container(
            &self.root,
            &record,
            "kill",
            &[("signal", signal.to_string())],
        );
        let _stopped = StopEvent {
            root: &self.root,
            record: &record,
        };
        match self.connect(id) {
            Some(mut stream) => {
                let _ = attach::write_frame(&mut stream, attach::HELLO, &[0]);
                let _ = attach::write_frame(&mut stream, attach::NO_RESTART, &[]);
                let _ =
                    attach::write_frame(&mut stream, attach::SIGNAL, &attach::i32_payload(signal));
                if wait_exit_frame(&mut stream, timeout) {
                    return Ok(());
                }
                let _ = attach::write_frame(
                    &mut stream,
                    attach::SIGNAL,
                    &attach::i32_payload(libc::SIGKILL),
                );
                let _ = self.runtime.kill(id, libc::SIGKILL, true);
                wait_exit_frame(&mut stream, Duration::from_secs(30));
                Ok(())
            }
            None => {
                // Monitor gone: signal directly and clean the runtime state ourselves.
                // SAFETY: PID verified alive with its start time by is_running().
                unsafe { libc::kill(record.state.pid, signal) };
                poll::until(timeout, Backoff::fixed(Duration::from_millis(20)), || {
                    !record.init_alive()
                });
                let _ = self.runtime.kill(id, libc::SIGKILL, true);
                let _ = self.runtime.delete(id, true);
                let _ = self.store.update(id, |r| {
                    r.state.running = false;
                    r.state.pid = 0;
                    r.state.exit_code = 137;
                    r.state.finished_at = now_rfc3339();
                });
                let _ = crate::network::release(&self.root, id);
                self.unmount(&record)
            }
        }
    }

    /// `berth rm [-f]`. Takes the container's own lock for the removal, so a concurrent start
    /// either ran first (and the container is killed here) or finds the container gone.
    pub fn remove(&self, id: &str, force: bool, volumes: bool) -> Result<()> {
        for attempt in 0..10 {
            let op = match self.store.lock_container(id) {
                Ok(op) => op,
                // Gone while we killed it (its --rm monitor, a concurrent rm): done.
                Err(EngineError::NoSuchContainer(_)) if attempt > 0 => return Ok(()),
                Err(e) => return Err(e),
            };
            let record = match self.store.load(id) {
                Ok(r) => r,
                Err(EngineError::NoSuchContainer(_)) if attempt > 0 => return Ok(()),
                Err(e) => return Err(e),
            };
            if record.is_running() || record.status() == Status::Restarting {
                if !force {
                    return Err(EngineError::state(id, format!("You cannot remove a {} container {id}. Stop the container before attempting removal or force remove", record.status().as_str())));
                }
                // The monitor records the end (and may take the lock to restart): not held.
                drop(op);
                self.kill_for_removal(&record);
                continue;
            }
            // Killed from here on, the next command finishes the removal.
            let intent =
                berth_image::intent::Intent::begin(&self.root, crate::recovery::REMOVE, id)?;
            self.remove_resources(&record)?;
            intent.done();
            drop(op);
            crate::events::container(&self.root, &record, "destroy", &[]);
            if volumes {
                crate::volumes::Volumes::new(&self.root).remove_anonymous_of(&record);
            }
            return Ok(());
        }
        Err(EngineError::state(
            id,
            format!("container {id} kept being restarted while it was removed"),
        ))
    }

    /// SIGKILLs a running container for `rm -f` and waits (bounded) for its end.
    fn kill_for_removal(&self, record: &ContainerRecord) {
        let id = record.id.as_str();
        if let Some(mut stream) = self.connect(id) {
            let _ = attach::write_frame(&mut stream, attach::HELLO, &[0]);
            let _ = attach::write_frame(&mut stream, attach::NO_RESTART, &[]);
            let _ = attach::write_frame(
                &mut stream,
                attach::SIGNAL,
                &attach::i32_payload(libc::SIGKILL),
            );
            let _ = self.runtime.kill(id, libc::SIGKILL, true);
            wait_exit_frame(&mut stream, Duration::from_secs(30));
        } else if record.init_alive() {
            // SAFETY: PID verified alive with its start time.
            unsafe { libc::kill(record.state.pid, libc::SIGKILL) };
            let _ = self.runtime.kill(id, libc::SIGKILL, true);
            poll::until(
                Duration::from_secs(10),
                Backoff::fixed(Duration::from_millis(10)),
                || !record.init_alive(),
            );
            // No monitor will record the end: do it here, so the next round sees it stopped.
            let _ = self.store.update(id, |r| {
                r.state.running = false;
                r.state.pid = 0;
                r.state.exit_code = 137;
                r.state.finished_at = now_rfc3339();
            });
        }
    }

    pub fn pause(&self, id: &str) -> Result<()> {
        let record = self.store.load(id)?;
        if !record.is_running() {
            return Err(EngineError::state(
                id,
                format!("Container {id} is not running"),
            ));
        }
        self.runtime.pause(id)?;
        crate::events::container(&self.root, &record, "pause", &[]);
        self.store.update(id, |r| r.state.paused = true)
    }

    pub fn unpause(&self, id: &str) -> Result<()> {
        let record = self.store.load(id)?;
        if !record.state.paused {
            return Err(EngineError::state(
                id,
                format!("Container {id} is not paused"),
            ));
        }
        self.runtime.resume(id)?;
        crate::events::container(&self.root, &record, "unpause", &[]);
        self.store.update(id, |r| r.state.paused = false)
    }

    /// Waits (up to 10 s) until container `id` is stopped and its monitor has finished its
    /// cleanup (it does so just after reporting the exit), then clears the manual-stop mark so
    /// the next start applies the restart policy again: the middle of `restart`.
    pub fn settle_for_restart(&self, id: &str) -> Result<()> {
        poll::try_until(
            Duration::from_secs(10),
            Backoff::fixed(Duration::from_millis(10)),
            || {
                let r = self.store.load(id)?;
                Ok::<_, EngineError>(
                    !r.is_running() && !crate::procinfo::alive(r.berth_monitor_pid),
                )
            },
        )?;
        self.store
            .update(id, |r| r.has_been_manually_stopped = false)
    }

    /// `berth restart`: stop (if running), then start detached.
    pub fn restart(&self, id: &str, timeout: Option<i64>) -> Result<()> {
        self.stop(id, timeout)?;
        self.settle_for_restart(id)?;
        self.start_detached(id)?;
        if let Ok(record) = self.store.load(id) {
            crate::events::container(&self.root, &record, "restart", &[]);
        }
        Ok(())
    }
}

/// Records Docker's `stop` event when a running container's stop is over (however it ended).
struct StopEvent<'a> {
    root: &'a Path,
    record: &'a ContainerRecord,
}

impl Drop for StopEvent<'_> {
    fn drop(&mut self) {
        crate::events::container(self.root, self.record, "stop", &[]);
    }
}

/// Waits up to `timeout` for an EXIT (or ERROR) frame; true when it came (or the monitor left).
fn wait_exit_frame(stream: &mut UnixStream, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        let _ = stream.set_read_timeout(Some(left));
        match attach::read_frame(stream) {
            Ok(Some((kind, _))) if kind == attach::EXIT || kind == attach::ERROR => return true,
            Ok(Some(_)) => continue,
            Ok(None) => return true,
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                return false
            }
            Err(_) => return true,
        }
    }
}

/// Refuses namespace modes Berth cannot honour yet, rather than silently ignoring them.
fn check_modes(host: &crate::options::HostConfig) -> Result<()> {
    let bad = |flag: &str, value: &str, reason: &str| EngineError::InvalidFlag {
        flag: flag.into(),
        value: value.into(),
        reason: reason.into(),
    };
    if !(host.userns_mode.is_empty() || host.userns_mode == "host") {
        return Err(bad(
            "--userns",
            &host.userns_mode,
            "only host is supported (no user-namespace remapping in this build)",
        ));
    }
    let pid = host.pid_mode.as_str();
    if !(pid.is_empty() || pid == "host" || pid == "private" || pid.starts_with("container:")) {
        return Err(bad("--pid", pid, "expected host or container:<name|id>"));
    }
    if !(host.uts_mode.is_empty() || host.uts_mode == "host") {
        return Err(bad("--uts", &host.uts_mode, "expected host"));
    }
    let ipc = host.ipc_mode.as_str();
    if !(ipc.is_empty()
        || ["host", "private", "shareable", "none"].contains(&ipc)
        || ipc.starts_with("container:"))
    {
        return Err(bad(
            "--ipc",
            ipc,
            "expected private, shareable, host or container:<name|id>",
        ));
    }
    Ok(())
}

/// SIGKILLs every process in a container's cgroup and removes the cgroup.
pub(crate) fn kill_cgroup(cgroups_path: &str) -> Result<()> {
    if cgroups_path.is_empty() {
        return Ok(());
    }
    let cgroup_err = |source| EngineError::Cgroup {
        path: cgroups_path.to_string(),
        source,
    };
    let h = berth_cgroups::Hierarchy::detect().map_err(cgroup_err)?;
    let cg = berth_cgroups::Cgroup::open(&h, cgroups_path).map_err(cgroup_err)?;
    cg.kill_and_destroy(Duration::from_secs(2))
        .map_err(cgroup_err)
}

/// This host's RLIMIT_NOFILE (soft, hard).
fn nofile_limits() -> (u64, u64) {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    let hard = limit.maximum.unwrap_or(1 << 20);
    (limit.current.unwrap_or(hard), hard)
}
