//! `create`: checks, record, layer, network, per-container files and the OCI bundle, undoing
//! whatever was half-made when a step fails.

use super::*;

/// Where else the static init for `--init` comes from (the host's packages).
pub(super) const INIT_CANDIDATES: &[&str] = &[
    "/usr/bin/tini-static",
    "/usr/bin/docker-init",
    "/usr/libexec/docker/docker-init",
];

/// Undoes a half-made container unless `done` is set.
pub(super) struct CreateGuard<'a> {
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
        let intent = berth_image::intent::Intent::begin(&self.root, crate::intents::CREATE, &id)?;
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
}

/// Refuses namespace modes Berth cannot honour yet, rather than silently ignoring them.
pub(super) fn check_modes(host: &crate::options::HostConfig) -> Result<()> {
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

/// This host's RLIMIT_NOFILE (soft, hard).
pub(super) fn nofile_limits() -> (u64, u64) {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    let hard = limit.maximum.unwrap_or(1 << 20);
    (limit.current.unwrap_or(hard), hard)
}
