//! Turns an image's config plus `run` flags into the container's final Docker `Config` and its
//! OCI runtime spec. Pure: everything it needs from the world (rootfs path, resolved user,
//! host rlimits, namespace paths of other containers, seccomp profile) comes in [`SpecContext`].
use crate::error::{EngineError, Result};
use crate::options::{ContainerConfig, HostConfig, RunOptions};
use crate::users::ResolvedUser;
use oci_spec::runtime::Spec;
use serde_json::{json, Value};
use std::path::PathBuf;

/// Docker's default PATH.
pub use berth_common::process::DEFAULT_PATH;

/// Docker's default capability set (one list, kept with the default seccomp profile that
/// depends on it).
pub const DEFAULT_CAPS: &[&str] = berth_runtime::seccomp::DOCKER_DEFAULT_CAPABILITIES;

/// Every capability the kernel knows (for `--privileged` and `--cap-add ALL`).
pub const ALL_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// Docker's masked paths.
pub const MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Docker's read-only paths.
pub const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// What the spec needs from outside the flags.
#[derive(Debug, Clone, Default)]
pub struct SpecContext {
    pub id: String,
    /// The container's merged overlay directory.
    pub rootfs: PathBuf,
    /// `containers/<id>/` (hostname, hosts, resolv.conf live here).
    pub container_dir: PathBuf,
    /// `<root>/volumes` for named volumes.
    pub volumes_dir: PathBuf,
    pub user: ResolvedUser,
    /// `linux.cgroupsPath`.
    pub cgroups_path: String,
    /// Docker's default seccomp profile in OCI form, when available.
    pub seccomp: Option<Value>,
    /// The host's RLIMIT_NOFILE (soft, hard): the default for the container since this host
    /// cannot raise limits.
    pub host_nofile: (u64, u64),
    /// `/proc/<pid>/ns/<kind>` paths of other containers for `--pid/--ipc container:X`.
    pub join_pid_ns: Option<String>,
    pub join_ipc_ns: Option<String>,
    pub join_net_ns: Option<String>,
    /// A static init binary to bind-mount at `/sbin/docker-init` for `--init`.
    pub init_binary: Option<PathBuf>,
    /// The caller's bounding capability set (bit n = capability n).
    pub host_cap_mask: u64,
    /// The host's device nodes in OCI `linux.devices` form, given to `--privileged` containers
    /// (see [`host_devices`]).
    pub host_devices: Vec<Value>,
}

/// The host's character and block devices under `dev` (Docker's `--privileged` gives them all),
/// in OCI `linux.devices` form; `/dev/pts`, `/dev/shm` and `/dev/mqueue` belong to the container
/// itself and are skipped, as are the container's own default devices' stand-ins (ptmx, console).
pub fn host_devices(dev: &std::path::Path) -> Vec<Value> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let mut found = Vec::new();
    let mut dirs = vec![dev.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            let name = entry.file_name();
            let kind = meta.file_type();
            if kind.is_dir() {
                if !matches!(name.to_str(), Some("pts" | "shm" | "mqueue")) {
                    dirs.push(path);
                }
                continue;
            }
            let typ = if kind.is_char_device() {
                "c"
            } else if kind.is_block_device() {
                "b"
            } else {
                continue;
            };
            if path == dev.join("ptmx") || path == dev.join("console") {
                continue;
            }
            let rdev = meta.rdev();
            found.push(json!({
                "path": path.to_string_lossy(),
                "type": typ,
                "major": libc::major(rdev),
                "minor": libc::minor(rdev),
                "fileMode": meta.mode() & 0o7777,
                "uid": meta.uid(),
                "gid": meta.gid(),
            }));
        }
    }
    found.sort_by(|a, b| a["path"].as_str().cmp(&b["path"].as_str()));
    found
}

/// Docker's merge of the image's config with the user's flags into the container's `Config`.
pub fn merge_config(image: &ContainerConfig, opts: &RunOptions, id: &str) -> ContainerConfig {
    let mut env = image.env.clone();
    for entry in &opts.env {
        let key = entry.split('=').next().unwrap_or(entry);
        env.retain(|e| e.split('=').next() != Some(key));
        env.push(entry.clone());
    }
    let entrypoint = match &opts.entrypoint {
        Some(e) if e.is_empty() => None,
        Some(e) => Some(vec![e.clone()]),
        None => image.entrypoint.clone(),
    };
    let cmd = if !opts.command.is_empty() {
        Some(opts.command.clone())
    } else if opts.entrypoint.is_some() {
        None
    } else {
        image.cmd.clone()
    };
    let mut labels = image.labels.clone();
    labels.extend(opts.labels.clone());
    ContainerConfig {
        hostname: opts
            .hostname
            .clone()
            .unwrap_or_else(|| id.chars().take(12).collect()),
        domainname: String::new(),
        user: opts.user.clone().unwrap_or_else(|| image.user.clone()),
        attach_stdin: opts.interactive,
        attach_stdout: true,
        attach_stderr: true,
        exposed_ports: image.exposed_ports.clone(),
        tty: opts.tty,
        open_stdin: opts.interactive,
        stdin_once: opts.interactive,
        env,
        cmd,
        image: opts.image.clone(),
        volumes: image.volumes.clone(),
        working_dir: opts
            .workdir
            .clone()
            .unwrap_or_else(|| image.working_dir.clone()),
        entrypoint,
        labels,
        stop_signal: opts
            .stop_signal
            .clone()
            .or_else(|| image.stop_signal.clone()),
        stop_timeout: opts.stop_timeout,
        healthcheck: crate::health::merge(image.healthcheck.as_ref(), opts.healthcheck.as_ref()),
        shell: image.shell.clone(),
    }
}

/// The container's command line: Entrypoint followed by Cmd.
pub fn command_line(config: &ContainerConfig) -> Vec<String> {
    let mut args = config.entrypoint.clone().unwrap_or_default();
    args.extend(config.cmd.clone().unwrap_or_default());
    args
}

/// The capabilities (of [`ALL_CAPS`], numbered in that order) whose bits are set in `mask`.
pub fn caps_in_mask(mask: u64) -> Vec<String> {
    ALL_CAPS
        .iter()
        .enumerate()
        .filter(|(i, _)| mask & (1u64 << i) != 0)
        .map(|(_, c)| c.to_string())
        .collect()
}

/// The capability list after `--cap-add`/`--cap-drop`/`--privileged`. "All" means all that
/// `host_mask` (the caller's bounding set) holds: a host without CAP_SYS_RESOURCE cannot give it.
pub fn capabilities(host: &HostConfig, host_mask: u64) -> Vec<String> {
    let norm = |c: &str| {
        let up = c.to_ascii_uppercase();
        if up.starts_with("CAP_") || up == "ALL" {
            up
        } else {
            format!("CAP_{up}")
        }
    };
    if host.privileged {
        return caps_in_mask(host_mask);
    }
    let drops: Vec<String> = host.cap_drop.iter().map(|c| norm(c)).collect();
    let adds: Vec<String> = host.cap_add.iter().map(|c| norm(c)).collect();
    let mut caps: Vec<String> = if drops.iter().any(|d| d == "ALL") {
        Vec::new()
    } else {
        DEFAULT_CAPS
            .iter()
            .map(|s| s.to_string())
            .filter(|c| !drops.contains(c))
            .collect()
    };
    for add in adds {
        if add == "ALL" {
            for c in caps_in_mask(host_mask) {
                if !caps.contains(&c) {
                    caps.push(c);
                }
            }
        } else if !caps.contains(&add) {
            caps.push(add);
        }
    }
    caps
}

fn rlimit_name(name: &str) -> String {
    format!("RLIMIT_{}", name.to_ascii_uppercase())
}

fn mode_is(mode: &str, what: &str) -> bool {
    mode == what
}

/// Builds the OCI spec for a container whose final `Config` is `config`.
pub fn build_spec(config: &ContainerConfig, host: &HostConfig, ctx: &SpecContext) -> Result<Spec> {
    let args = command_line(config);
    if args.is_empty() {
        return Err(EngineError::Command {
            message: "No command specified".into(),
            exit_code: 125,
        });
    }
    let mut env = config.env.clone();
    let has = |env: &[String], key: &str| env.iter().any(|e| e.split('=').next() == Some(key));
    if !has(&env, "PATH") {
        env.insert(0, format!("PATH={DEFAULT_PATH}"));
    }
    if !has(&env, "HOSTNAME") && !mode_is(&host.uts_mode, "host") {
        env.push(format!("HOSTNAME={}", config.hostname));
    }
    if config.tty && !has(&env, "TERM") {
        env.push("TERM=xterm".into());
    }
    if !has(&env, "HOME") {
        env.push(format!(
            "HOME={}",
            ctx.user
                .home
                .clone()
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "/".into())
        ));
    }
    let caps = capabilities(host, ctx.host_cap_mask);
    let no_new_privs = crate::security_opts::no_new_privileges(&host.security_opt);
    let mut rlimits: Vec<Value> = Vec::new();
    if !host.ulimits.iter().any(|u| u.name == "nofile") {
        rlimits.push(
            json!({"type": "RLIMIT_NOFILE", "soft": ctx.host_nofile.1, "hard": ctx.host_nofile.1}),
        );
    }
    for u in &host.ulimits {
        let v = |x: i64| if x < 0 { u64::MAX } else { x as u64 };
        rlimits.push(json!({"type": rlimit_name(&u.name), "soft": v(u.soft), "hard": v(u.hard)}));
    }
    let process = json!({
        "terminal": config.tty,
        "user": {"uid": ctx.user.uid, "gid": ctx.user.gid, "additionalGids": ctx.user.additional_gids},
        "args": args,
        "env": env,
        "cwd": if config.working_dir.is_empty() { "/".to_string() } else { config.working_dir.clone() },
        "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
        "rlimits": rlimits,
        "noNewPrivileges": no_new_privs,
    });

    let dir = |name: &str| ctx.container_dir.join(name).to_string_lossy().into_owned();
    let shm_size = if host.shm_size > 0 {
        host.shm_size
    } else {
        64 << 20
    };
    let sys_ro = if host.privileged { "rw" } else { "ro" };
    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", sys_ro]}),
        json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", sys_ro]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", format!("size={shm_size}")]}),
        json!({"destination": "/etc/resolv.conf", "type": "bind", "source": dir("resolv.conf"), "options": ["rbind", "rprivate"]}),
        json!({"destination": "/etc/hostname", "type": "bind", "source": dir("hostname"), "options": ["rbind", "rprivate"]}),
        json!({"destination": "/etc/hosts", "type": "bind", "source": dir("hosts"), "options": ["rbind", "rprivate"]}),
    ];
    let mut user_mounts: Vec<Value> = Vec::new();
    for m in &host.mounts {
        let rw = if m.read_only { "ro" } else { "rw" };
        match m.r#type.as_str() {
            "bind" => user_mounts.push(json!({"destination": m.target, "type": "bind", "source": m.source, "options": ["rbind", "rprivate", rw]})),
            "volume" => {
                let source = ctx.volumes_dir.join(&m.source).join("_data");
                user_mounts.push(json!({"destination": m.target, "type": "bind", "source": source.to_string_lossy(), "options": ["rbind", "rprivate", rw]}))
            }
            _ => user_mounts.push(json!({"destination": m.target, "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "noexec", rw]})),
        }
    }
    for (target, opts) in &host.tmpfs {
        let mut options = vec![
            "nosuid".to_string(),
            "nodev".to_string(),
            "noexec".to_string(),
        ];
        options.extend(
            opts.split(',')
                .filter(|o| !o.is_empty())
                .map(str::to_string),
        );
        user_mounts.push(
            json!({"destination": target, "type": "tmpfs", "source": "tmpfs", "options": options}),
        );
    }
    if let Some(init) = &ctx.init_binary {
        user_mounts.push(json!({"destination": "/sbin/docker-init", "type": "bind", "source": init.to_string_lossy(), "options": ["bind", "ro"]}));
    }
    user_mounts.sort_by_key(|m| {
        m["destination"]
            .as_str()
            .map(|d| d.matches('/').count())
            .unwrap_or(0)
    });
    // A user mount over a default one (e.g. -v …:/etc/hosts) replaces it.
    mounts.retain(|d| {
        !user_mounts
            .iter()
            .any(|u| u["destination"] == d["destination"])
    });
    mounts.extend(user_mounts);

    let mut namespaces = vec![json!({"type": "mount"})];
    let ns = |kind: &str, mode: &str, path: &Option<String>| -> Option<Value> {
        if let (Some(p), "network") = (path, kind) {
            // A namespace prepared (and pinned) before the container starts.
            Some(json!({"type": kind, "path": p}))
        } else if mode == "host" {
            None
        } else if mode.starts_with("container:") {
            path.as_ref().map(|p| json!({"type": kind, "path": p}))
        } else {
            Some(json!({"type": kind}))
        }
    };
    namespaces.extend(ns("pid", &host.pid_mode, &ctx.join_pid_ns));
    namespaces.extend(ns("ipc", &host.ipc_mode, &ctx.join_ipc_ns));
    namespaces.extend(ns("uts", &host.uts_mode, &None));
    namespaces.extend(ns("network", &host.network_mode, &ctx.join_net_ns));

    let mut resources = json!({
        "devices": [
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 5, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 7, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 8, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 9, "access": "rwm"},
            {"allow": true, "type": "c", "major": 5, "minor": 0, "access": "rwm"},
            {"allow": true, "type": "c", "major": 5, "minor": 1, "access": "rwm"},
            {"allow": true, "type": "c", "major": 5, "minor": 2, "access": "rwm"},
            {"allow": true, "type": "c", "major": 136, "access": "rwm"},
            {"allow": true, "type": "c", "major": 10, "minor": 200, "access": "rwm"},
            {"allow": true, "type": "c", "access": "m"},
            {"allow": true, "type": "b", "access": "m"}
        ]
    });
    let mut devices = Vec::new();
    if host.privileged {
        resources["devices"] = json!([{"allow": true, "access": "rwm"}]);
        devices = ctx.host_devices.clone();
    }
    for (key, limits) in resource_limits(host) {
        resources[key] = limits;
    }

    let mut linux = json!({
        "namespaces": namespaces,
        "resources": resources,
        "cgroupsPath": ctx.cgroups_path,
    });
    if !devices.is_empty() {
        linux["devices"] = Value::Array(devices);
    }
    if !host.privileged {
        linux["maskedPaths"] = json!(MASKED_PATHS);
        linux["readonlyPaths"] = json!(READONLY_PATHS);
        let unconfined = host
            .security_opt
            .iter()
            .any(|o| o == "seccomp=unconfined" || o == "seccomp:unconfined");
        if let (Some(profile), false) = (&ctx.seccomp, unconfined) {
            linux["seccomp"] = profile.clone();
        }
    }
    let mut spec = json!({
        "ociVersion": "1.0.2",
        "process": process,
        "root": {"path": ctx.rootfs.to_string_lossy(), "readonly": host.readonly_rootfs},
        "mounts": mounts,
        "linux": linux,
    });
    if !mode_is(&host.uts_mode, "host") {
        spec["hostname"] = json!(config.hostname);
    }
    serde_json::from_value(spec).map_err(|e| EngineError::encode("the OCI spec", e))
}

/// The brief's entry point: image config + flags → (final Config, OCI spec).
pub fn from_image_and_flags(
    image: &ContainerConfig,
    opts: &RunOptions,
    ctx: &SpecContext,
) -> Result<(ContainerConfig, Spec)> {
    let config = merge_config(image, opts, &ctx.id);
    let spec = build_spec(&config, &opts.host, ctx)?;
    Ok((config, spec))
}

/// The OCI `linux.resources` limits the flags set (`memory`, `cpu`, `pids`, `blockIO`), without
/// devices: what `create` puts in the spec and `update` applies live.
pub fn resource_limits(host: &HostConfig) -> serde_json::Map<String, Value> {
    let mut memory = serde_json::Map::new();
    if host.memory > 0 {
        memory.insert("limit".into(), json!(host.memory));
        let swap = match host.memory_swap {
            0 => host.memory * 2,
            s => s,
        };
        memory.insert("swap".into(), json!(swap));
    }
    if host.memory_reservation > 0 {
        memory.insert("reservation".into(), json!(host.memory_reservation));
    }
    if host.oom_kill_disable == Some(true) {
        memory.insert("disableOOMKiller".into(), json!(true));
    }
    let mut cpu = serde_json::Map::new();
    if host.cpu_shares > 0 {
        cpu.insert("shares".into(), json!(host.cpu_shares));
    }
    let period = if host.cpu_period > 0 {
        host.cpu_period
    } else {
        100_000
    };
    if host.nano_cpus > 0 {
        cpu.insert(
            "quota".into(),
            json!(host.nano_cpus * period / 1_000_000_000),
        );
        cpu.insert("period".into(), json!(period));
    } else if host.cpu_quota > 0 {
        cpu.insert("quota".into(), json!(host.cpu_quota));
        cpu.insert("period".into(), json!(period));
    } else if host.cpu_period > 0 {
        cpu.insert("period".into(), json!(period));
    }
    if !host.cpuset_cpus.is_empty() {
        cpu.insert("cpus".into(), json!(host.cpuset_cpus));
    }
    if !host.cpuset_mems.is_empty() {
        cpu.insert("mems".into(), json!(host.cpuset_mems));
    }
    let mut limits = serde_json::Map::new();
    if !memory.is_empty() {
        limits.insert("memory".into(), Value::Object(memory));
    }
    if !cpu.is_empty() {
        limits.insert("cpu".into(), Value::Object(cpu));
    }
    if let Some(limit) = host.pids_limit.filter(|l| *l != 0) {
        limits.insert("pids".into(), json!({"limit": limit}));
    }
    if host.blkio_weight > 0 {
        limits.insert("blockIO".into(), json!({"weight": host.blkio_weight}));
    }
    limits
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::{parse_volume, Ulimit};

    fn image() -> ContainerConfig {
        ContainerConfig {
            env: vec!["PATH=/bin".into(), "A=1".into()],
            cmd: Some(vec!["sh".into()]),
            working_dir: "/srv".into(),
            stop_signal: Some("SIGQUIT".into()),
            ..Default::default()
        }
    }

    fn ctx() -> SpecContext {
        SpecContext {
            id: "0123456789abcdef".into(),
            rootfs: "/r/merged".into(),
            container_dir: "/r/c".into(),
            volumes_dir: "/r/volumes".into(),
            cgroups_path: "/berth/x".into(),
            host_nofile: (1024, 4096),
            host_cap_mask: u64::MAX,
            ..Default::default()
        }
    }

    fn spec_json(opts: &RunOptions) -> Value {
        let (_, spec) = from_image_and_flags(&image(), opts, &ctx()).unwrap();
        serde_json::to_value(spec).unwrap()
    }

    #[test]
    fn image_config_drives_process() {
        let opts = RunOptions {
            env: vec!["A=2".into(), "B=3".into()],
            ..Default::default()
        };
        let v = spec_json(&opts);
        assert_eq!(v["process"]["args"], json!(["sh"]));
        let env: Vec<String> = serde_json::from_value(v["process"]["env"].clone()).unwrap();
        assert!(env.contains(&"PATH=/bin".to_string()));
        assert!(env.contains(&"A=2".to_string()) && !env.contains(&"A=1".to_string()));
        assert!(env.contains(&"HOSTNAME=0123456789ab".to_string()));
        assert_eq!(v["process"]["cwd"], "/srv");
        assert_eq!(v["hostname"], "0123456789ab");
        assert_eq!(v["process"]["rlimits"][0]["hard"], 4096);
        assert_eq!(v["linux"]["cgroupsPath"], "/berth/x");
        assert_eq!(
            v["process"]["capabilities"]["bounding"]
                .as_array()
                .unwrap()
                .len(),
            DEFAULT_CAPS.len()
        );
    }

    #[test]
    fn entrypoint_and_command_follow_docker() {
        let opts = RunOptions {
            entrypoint: Some("/bin/echo".into()),
            ..Default::default()
        };
        let (config, _) = from_image_and_flags(&image(), &opts, &ctx()).unwrap();
        assert_eq!(command_line(&config), vec!["/bin/echo"]);
        let opts = RunOptions {
            command: vec!["true".into()],
            ..Default::default()
        };
        let (config, _) = from_image_and_flags(&image(), &opts, &ctx()).unwrap();
        assert_eq!(command_line(&config), vec!["true"]);
        assert_eq!(config.stop_signal.as_deref(), Some("SIGQUIT"));
        let empty = ContainerConfig::default();
        assert!(from_image_and_flags(&empty, &RunOptions::default(), &ctx()).is_err());
    }

    #[test]
    fn host_flags_land_in_spec() {
        let mut opts = RunOptions::default();
        opts.host.memory = 32 << 20;
        opts.host.nano_cpus = 1_500_000_000;
        opts.host.pids_limit = Some(20);
        opts.host.readonly_rootfs = true;
        opts.host.cap_drop = vec!["net_raw".into()];
        opts.host.cap_add = vec!["SYS_ADMIN".into()];
        opts.host.security_opt = vec!["no-new-privileges".into()];
        opts.host.ulimits = vec![Ulimit {
            name: "nproc".into(),
            soft: 10,
            hard: 20,
        }];
        opts.host.network_mode = "host".into();
        opts.host.mounts = vec![
            parse_volume("/data:/data:ro").unwrap(),
            parse_volume("vol:/v").unwrap(),
        ];
        let v = spec_json(&opts);
        let r = &v["linux"]["resources"];
        assert_eq!(r["memory"]["limit"], 32 << 20);
        assert_eq!(r["memory"]["swap"], 64 << 20);
        assert_eq!(r["cpu"]["quota"], 150_000);
        assert_eq!(r["cpu"]["period"], 100_000);
        assert_eq!(r["pids"]["limit"], 20);
        assert_eq!(v["root"]["readonly"], true);
        assert_eq!(v["process"]["noNewPrivileges"], true);
        let caps: Vec<String> =
            serde_json::from_value(v["process"]["capabilities"]["effective"].clone()).unwrap();
        assert!(caps.contains(&"CAP_SYS_ADMIN".into()) && !caps.contains(&"CAP_NET_RAW".into()));
        let kinds: Vec<&str> = v["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|n| n["type"].as_str())
            .collect();
        assert!(!kinds.contains(&"network") && kinds.contains(&"pid"));
        let mounts = v["mounts"].as_array().unwrap();
        assert!(mounts.iter().any(|m| m["destination"] == "/data"
            && m["options"].as_array().unwrap().contains(&json!("ro"))));
        assert!(mounts.iter().any(|m| m["source"] == "/r/volumes/vol/_data"));
        assert!(v["process"]["rlimits"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["type"] == "RLIMIT_NPROC"));
        assert!(v["linux"]["maskedPaths"]
            .as_array()
            .unwrap()
            .contains(&json!("/proc/kcore")));
    }

    #[test]
    fn privileged_gets_everything() {
        let mut opts = RunOptions::default();
        opts.host.privileged = true;
        let v = spec_json(&opts);
        assert_eq!(
            v["process"]["capabilities"]["bounding"]
                .as_array()
                .unwrap()
                .len(),
            ALL_CAPS.len()
        );
        assert!(v["linux"].get("maskedPaths").is_none());
    }

    #[test]
    fn privileged_gets_the_host_devices_and_others_do_not() {
        let mut ctx = ctx();
        ctx.host_devices = host_devices(std::path::Path::new("/dev"));
        assert!(ctx
            .host_devices
            .iter()
            .any(|d| d["path"] == "/dev/null" && d["major"] == 1 && d["minor"] == 3));
        assert!(!ctx.host_devices.iter().any(|d| d["path"] == "/dev/ptmx"));
        let mut opts = RunOptions::default();
        let plain =
            serde_json::to_value(from_image_and_flags(&image(), &opts, &ctx).unwrap().1).unwrap();
        assert!(plain["linux"].get("devices").is_none());
        opts.host.privileged = true;
        let privileged =
            serde_json::to_value(from_image_and_flags(&image(), &opts, &ctx).unwrap().1).unwrap();
        assert_eq!(
            privileged["linux"]["devices"].as_array().unwrap().len(),
            ctx.host_devices.len()
        );
    }
}
