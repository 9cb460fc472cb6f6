//! `create`: the runtime side of making a container. Loads the bundle, makes the state dir and
//! exec fifo, creates the cgroup, opens namespace paths, compiles seccomp, then clones the init
//! (see `init.rs`) and drives it over the sync socket: id maps, cgroup membership, the
//! prestart/createRuntime hooks, until the init reports ready. On any failure it kills the init
//! and removes the cgroup and the state dir, so nothing half-made remains.

use crate::cgroup;
use crate::error::{Result, RuntimeError};
use crate::init::{self, InitContext};
use crate::namespaces;
use crate::rootfs::CgroupBind;
use crate::spec::{self, Bundle};
use crate::state::{self, ContainerState, Status, StoredState, EXEC_FIFO};
use crate::sync::{self, tag};
use crate::sys;
use crate::{CreateOptions, Runtime};
use berth_cgroups::{CgroupVersion, Hierarchy};
use rustix::fd::{AsRawFd, OwnedFd};
use rustix::fs::{Mode, OFlags};
use std::collections::BTreeMap;
use std::path::Path;

/// Checks a container id the way runc does (no path separators, no dot names).
pub fn validate_id(id: &str) -> Result<()> {
    let bad = |reason| {
        Err(RuntimeError::InvalidId {
            id: id.to_owned(),
            reason,
        })
    };
    if id.is_empty() {
        return bad("empty");
    }
    if id == "." || id == ".." {
        return bad("reserved name");
    }
    if !id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '-' | '.'))
    {
        return bad("only letters, digits, '_', '+', '-' and '.' are allowed");
    }
    if id.len() > 1024 {
        return bad("too long");
    }
    Ok(())
}

/// What the caller of [`create`] gets: the state, whose `pid` is always the init's (even when
/// it has already exited and the status reads "stopped").
pub struct Created {
    pub state: ContainerState,
}

/// Creates the container. `wait_for_start`: false runs the process right away (used by `run`
/// to skip the fifo round trip).
pub fn create(
    rt: &Runtime,
    id: &str,
    bundle_dir: &Path,
    opts: &CreateOptions,
    wait_for_start: bool,
) -> Result<Created> {
    validate_id(id)?;
    let bundle = spec::load_bundle(bundle_dir)?;
    let process = bundle.spec.process().as_ref();
    if let Some(p) = process {
        crate::validate::check_user_ids(p)?;
    }
    crate::validate::check_sysctls(&bundle.spec)?;
    if process.and_then(|p| p.terminal()).unwrap_or(false)
        && opts.console_socket.is_none()
        && opts.stdio.is_none()
    {
        return Err(RuntimeError::InvalidArgument(
            "cannot allocate tty if runc will detach without setting console socket".into(),
        ));
    }
    let dir = rt.claim_state_dir(id)?;
    let mut cleanup = Cleanup {
        dir: Some(dir.clone()),
        cgroup: None,
        pid: None,
    };
    let created = create_in(id, &dir, &bundle, opts, wait_for_start, &mut cleanup)?;
    cleanup.disarm();
    Ok(created)
}

/// Undoes a half-made container.
struct Cleanup {
    dir: Option<std::path::PathBuf>,
    cgroup: Option<berth_cgroups::Cgroup>,
    pid: Option<i32>,
}

impl Cleanup {
    fn disarm(&mut self) {
        self.dir = None;
        self.cgroup = None;
        self.pid = None;
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(pid) = self.pid {
            // SAFETY: killing the init we cloned (it has not been reaped, so the pid is ours).
            unsafe { libc::kill(pid, libc::SIGKILL) };
            if let Some(cg) = &self.cgroup {
                // A frozen task does not die until thawed (cgroup v1).
                let _ = cg.thaw();
            }
            let _ = sys::wait_child(pid);
        }
        if let Some(cg) = &self.cgroup {
            let _ = cg.destroy();
        }
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn create_in(
    id: &str,
    dir: &Path,
    bundle: &Bundle,
    opts: &CreateOptions,
    wait_for_start: bool,
    cleanup: &mut Cleanup,
) -> Result<Created> {
    let spec = &bundle.spec;
    let linux = spec.linux().as_ref();

    // The init opens the fifo relative to the state dir, so it needs no /proc of its own (a
    // container without a mount namespace may have none after chroot).
    let fifo_dir = if wait_for_start {
        let path = dir.join(EXEC_FIFO);
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &path,
            rustix::fs::FileType::Fifo,
            Mode::from_raw_mode(0o622),
            0,
        )
        .map_err(|e| RuntimeError::io(&path, e.into()))?;
        Some(
            rustix::fs::open(
                dir,
                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| RuntimeError::io(dir, e.into()))?,
        )
    } else {
        None
    };

    // Cgroup: named now, created after the clone.
    let cgroups_path = cgroup::effective_path(
        linux
            .and_then(|l| l.cgroups_path().as_ref())
            .and_then(|p| p.to_str()),
        id,
    );
    let hierarchy = Hierarchy::detect().map_err(|e| cgroup::cgroup_error(&cgroups_path, e))?;
    let cg = berth_cgroups::Cgroup::open(&hierarchy, &cgroups_path)
        .map_err(|e| cgroup::cgroup_error(&cgroups_path, e))?;
    check_existing_cgroup(&cg, &cgroups_path)?;
    // Created after the clone, while the init works on its mounts (see below).
    let cgroup_v2 = hierarchy.version() == CgroupVersion::V2;
    let cgroup_binds = if cgroup_v2 {
        Vec::new()
    } else {
        v1_binds(&hierarchy.mountpoints(), &cg.paths())
    };

    let console_socket = match &opts.console_socket {
        Some(path) => Some(connect_console(path)?),
        None => None,
    };
    let ns_plan = namespaces::plan(spec)?;
    // Opened while we are still host root; the init is in the new user namespace from birth.
    let mount_sources = if ns_plan.has_new(libc::CLONE_NEWUSER) {
        crate::rootfs::mount_sources(spec, &bundle.dir)
    } else {
        Vec::new()
    };
    let seccomp = match linux.and_then(|l| l.seccomp().as_ref()) {
        Some(profile) => Some(
            crate::seccomp::compile_cached(profile, &seccomp_cache_dir(dir))
                .map_err(|e| RuntimeError::Seccomp(e.to_string()))?,
        ),
        None => None,
    };
    let hooks = spec.hooks().as_ref();
    #[allow(deprecated)]
    let runtime_hooks: Vec<oci_spec::runtime::Hook> = hooks
        .map(|h| {
            h.prestart()
                .iter()
                .flatten()
                .chain(h.create_runtime().iter().flatten())
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    let listen_fds = std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
        .filter(|n| *n > 0);
    let preserve_fds = opts.preserve_fds.max(listen_fds.unwrap_or(0));

    let annotations: BTreeMap<String, String> = spec
        .annotations()
        .as_ref()
        .map(|a| a.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    let mut view = ContainerState {
        oci_version: spec.version().clone(),
        id: id.to_owned(),
        pid: 0,
        status: Status::Creating,
        bundle: bundle.dir.clone(),
        rootfs: bundle.rootfs.clone(),
        created: berth_common::time::now_rfc3339(),
        owner: String::new(),
        annotations: annotations.clone(),
    };

    let (runtime_end, init_end) = sync::pair().map_err(|e| RuntimeError::sys("socketpair", e))?;

    // Namespaces the runtime must enter for its children: a joined pid namespace, a new time
    // namespace with offsets. Restored right after the clone.
    let mut restore: Vec<(OwnedFd, libc::c_int)> = Vec::new();
    let result = (|| -> Result<i32> {
        if let Some((_, fd, what)) = ns_plan
            .joins
            .iter()
            .find(|(f, _, _)| *f == libc::CLONE_NEWPID)
        {
            restore.push((open_own_ns("pid")?, libc::CLONE_NEWPID));
            sys::setns(fd, libc::CLONE_NEWPID, what)?;
        }
        if ns_plan.has_new(libc::CLONE_NEWTIME) {
            restore.push((open_own_ns("time")?, libc::CLONE_NEWTIME));
            // SAFETY: unshare of the time namespace affects only our future children.
            if unsafe { libc::unshare(libc::CLONE_NEWTIME) } != 0 {
                return Err(RuntimeError::sys(
                    "unshare time namespace",
                    std::io::Error::last_os_error(),
                ));
            }
            if let Some(text) = namespaces::time_offsets_text(spec) {
                std::fs::write("/proc/self/timens_offsets", text)
                    .map_err(|e| RuntimeError::io("/proc/self/timens_offsets", e))?;
            }
        }
        let pid = sys::clone_process(ns_plan.clone_flags() as u64)
            .map_err(|e| RuntimeError::sys("clone container init", e))?;
        if pid == 0 {
            init::run(InitContext {
                id,
                spec,
                bundle: &bundle.dir,
                rootfs: &bundle.rootfs,
                sync: init_end_take(&init_end),
                runtime_sync_fd: runtime_end.0.as_raw_fd(),
                fifo_dir: fifo_dir.as_ref().map(child_dup),
                console_socket: console_socket.as_ref().map(child_dup),
                stdio: opts.stdio,
                preserve_fds,
                namespaces: &ns_plan,
                cgroup_binds: cgroup_binds.clone(),
                cgroup_v2,
                seccomp: seccomp.as_ref(),
                no_pivot: opts.no_pivot,
                no_new_keyring: opts.no_new_keyring,
                has_runtime_hooks: !runtime_hooks.is_empty(),
                hook_state: view.clone(),
                listen_fds,
                mount_sources: mount_sources
                    .iter()
                    .map(|fd| fd.as_ref().map(child_dup))
                    .collect(),
            });
        }
        Ok(pid)
    })();
    for (fd, kind) in restore.iter().rev() {
        let _ = sys::setns(fd, *kind, "own namespace (restore)");
    }
    let pid = result?;
    cleanup.pid = Some(pid);
    // Read now, while the init is certainly alive (it waits for GO): without the fifo it execs
    // right after READY and may have exited (a zombie) by the time state.json is written.
    let start_time = state::process_stat(pid).map(|(_, t)| t).unwrap_or(0);
    drop(init_end);
    drop(console_socket);

    // While we set up around it, the init may already have failed (a mount error needs no
    // cgroup): its own message is the one worth reporting, not our ESRCH or EPIPE that follows.
    let setup = (|| -> Result<()> {
        let uses_new_user = ns_plan.has_new(libc::CLONE_NEWUSER);
        if uses_new_user {
            let uids = linux
                .and_then(|l| l.uid_mappings().clone())
                .unwrap_or_default();
            let gids = linux
                .and_then(|l| l.gid_mappings().clone())
                .unwrap_or_default();
            namespaces::write_id_maps(pid, &uids, &gids)?;
        }
        send_to_init(&runtime_end, tag::GO, &pid.to_le_bytes())?;
        // The cgroup work (directories, limits, and the slow first v1 migration) overlaps the init's
        // mount setup; the init waits for CGROUP_JOINED before its cgroup mount and before exec.
        cleanup.cgroup = Some(cg.clone());
        // Like runc, a spec without device rules still gets the default allow list (deny the rest).
        cg.create_and_apply(linux.and_then(|l| l.resources().as_ref()))
            .map_err(|e| cgroup::cgroup_error(&cgroups_path, e))?;
        cg.add_pid(pid)
            .map_err(|e| cgroup::cgroup_error(&cgroups_path, e))?;
        move_net_devices(spec, &ns_plan, pid)?;
        send_to_init(&runtime_end, tag::CGROUP_JOINED, &[])?;
        Ok(())
    })();
    if let Err(e) = setup {
        return Err(pending_init_error(&runtime_end).unwrap_or(e));
    }
    view.pid = pid;
    loop {
        let (t, msg, fd) = match runtime_end.recv_with_fd() {
            Ok(Some(m)) => m,
            Ok(None) => {
                return Err(RuntimeError::ContainerInit(
                    "container init exited during setup".into(),
                ))
            }
            Err(e) => return Err(RuntimeError::sys("sync with container init", e)),
        };
        match t {
            tag::READY => break,
            tag::SECCOMP_FD => {
                let fd = fd.ok_or_else(|| {
                    RuntimeError::ContainerInit("seccomp listener message without an fd".into())
                })?;
                send_to_seccomp_agent(spec, &view, view.pid, fd)?;
            }
            tag::HOOKS => {
                let json = serde_json::to_vec(&view).unwrap_or_default();
                crate::hooks::run_all(&runtime_hooks, &json).map_err(|e| RuntimeError::Hook {
                    path: "createRuntime".into(),
                    reason: e.to_string(),
                })?;
                send_to_init(&runtime_end, tag::GO, &[])?;
            }
            tag::ERROR => return Err(crate::sync::init_failed(&msg)),
            tag::EXEC_FAILED => return Err(crate::sync::exec_failed(&msg)),
            t => {
                return Err(RuntimeError::ContainerInit(format!(
                    "unexpected sync message {t}"
                )))
            }
        }
    }
    if wait_for_start {
        test_hook_kill_init_after_ready(pid);
    }
    if wait_for_start && sys::child_exited(pid) {
        // The init reported ready and then died (killed, OOM) before `start`: a created
        // container without a process would read as "stopped" with pid 0.
        return Err(RuntimeError::ContainerInit(
            "container init exited after reporting ready".into(),
        ));
    }
    let stored = StoredState {
        oci_version: view.oci_version.clone(),
        id: id.to_owned(),
        init_pid: pid,
        init_start_time: start_time,
        bundle: bundle.dir.clone(),
        rootfs: bundle.rootfs.clone(),
        created: view.created.clone(),
        annotations,
        cgroups_path,
        hooks: spec.hooks().clone(),
        terminal: bundle
            .spec
            .process()
            .as_ref()
            .and_then(|p| p.terminal())
            .unwrap_or(false),
    };
    state::save(dir, &stored)?;
    if let Some(pid_file) = &opts.pid_file {
        write_pid_file(pid_file, pid)?;
    }
    // The derived view says pid 0 once the init has exited, which a fast process (`true`
    // without the fifo) may already have done; the caller is its parent and must reap it, so
    // it always gets the real pid.
    let mut state = stored.view(dir);
    state.pid = pid;
    Ok(Created { state })
}

/// Test-only: with `BERTH_RUNTIME_TEST_HOOK=kill-init-after-ready` in the environment, the init
/// is killed (and seen dead) right after it reported ready, so a test can check
/// deterministically that `create` then fails and leaves nothing behind. Has no effect
/// otherwise.
fn test_hook_kill_init_after_ready(pid: i32) {
    if std::env::var_os("BERTH_RUNTIME_TEST_HOOK").as_deref()
        != Some(std::ffi::OsStr::new("kill-init-after-ready"))
    {
        return;
    }
    // SAFETY: killing the init we cloned and have not reaped.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    if let Ok(fd) = sys::pidfd_open(pid) {
        let _ = sys::wait_pidfd(&fd, Some(std::time::Duration::from_secs(10)));
    }
}

/// Hands the seccomp listener of process `pid` (the init, or a process started by `exec`) to
/// the agent at `linux.seccomp.listenerPath`, with the container process state the
/// runtime-spec defines (`ociVersion`, `fds`, `pid`, `metadata`, `state`).
pub(crate) fn send_to_seccomp_agent(
    spec: &oci_spec::runtime::Spec,
    view: &ContainerState,
    pid: i32,
    fd: OwnedFd,
) -> Result<()> {
    let seccomp = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref());
    let Some(path) = seccomp.and_then(|s| s.listener_path().as_ref()) else {
        return Err(RuntimeError::Seccomp(
            "notify filter without listenerPath".into(),
        ));
    };
    let metadata = seccomp
        .and_then(|s| s.listener_metadata().clone())
        .unwrap_or_default();
    let message = serde_json::json!({
        "ociVersion": view.oci_version,
        "fds": ["seccompFd"],
        "pid": pid,
        "metadata": metadata,
        "state": view,
    });
    let socket = connect_console(path)
        .map_err(|e| RuntimeError::Seccomp(format!("connecting to listenerPath: {e}")))?;
    crate::console::send_fd(&socket, &fd, message.to_string().as_bytes()).map_err(|e| {
        RuntimeError::Seccomp(format!("sending to listenerPath {}: {e}", path.display()))
    })
}

/// A cgroup that already exists must not be frozen (the init would hang in it forever, and so
/// would we); one with processes is used with runc's warning.
fn check_existing_cgroup(cg: &berth_cgroups::Cgroup, cgroups_path: &str) -> Result<()> {
    // Not gated on exists(): on v1 that needs every hierarchy, and the freezer one alone is
    // enough to hang us. A missing freezer file reads as an error, i.e. not frozen.
    if cg.is_frozen().unwrap_or(false) {
        return Err(RuntimeError::Cgroup {
            path: cgroups_path.to_owned(),
            reason: "container's cgroup unexpectedly frozen".into(),
        });
    }
    let pids = cg.all_pids().unwrap_or_default();
    if !pids.is_empty() {
        eprintln!(
            "berth-runtime: warning: container's cgroup is not empty: {} process(es) found",
            pids.len()
        );
    }
    Ok(())
}

/// Sends to the init; when that fails because the init is gone, reports the error the init sent
/// before it exited instead of a bare "Broken pipe".
fn send_to_init(end: &sync::SyncSocket, tag: u8, payload: &[u8]) -> Result<()> {
    end.send(tag, payload).map_err(|e| {
        pending_init_error(end).unwrap_or_else(|| RuntimeError::sys("sync with container init", e))
    })
}

/// The error message the init has already sent, if any (never blocks).
fn pending_init_error(end: &sync::SyncSocket) -> Option<RuntimeError> {
    while let Ok(Some((t, msg))) = end.try_recv() {
        if t == tag::ERROR {
            return Some(crate::sync::init_failed(&msg));
        }
        if t == tag::EXEC_FAILED {
            return Some(crate::sync::exec_failed(&msg));
        }
    }
    None
}

/// Where compiled seccomp programs are cached: beside the containers, under a name no container
/// id can take (':' is not allowed in ids).
pub fn seccomp_cache_dir(container_dir: &Path) -> std::path::PathBuf {
    container_dir
        .parent()
        .unwrap_or(Path::new("/"))
        .join("seccomp:cache")
}

fn init_end_take(end: &sync::SyncSocket) -> sync::SyncSocket {
    // The child owns a copy of every fd; wrapping a duplicate keeps ownership simple.
    sync::SyncSocket(end.0.try_clone().unwrap_or_else(|_| {
        // SAFETY: unreachable in practice (dup of a valid fd); exit the child.
        unsafe { libc::_exit(1) }
    }))
}

/// The child's own copy of a runtime fd. A failed dup must not turn into "no fifo" (the init
/// would run without waiting for `start`) or "no console": the child exits instead, and the
/// runtime reports that the init exited during setup.
fn child_dup(fd: &OwnedFd) -> OwnedFd {
    fd.try_clone().unwrap_or_else(|_| {
        // SAFETY: _exit in the forked child, skipping the parent's destructors.
        unsafe { libc::_exit(1) }
    })
}

fn open_own_ns(kind: &str) -> Result<OwnedFd> {
    let path = format!("/proc/self/ns/{kind}");
    rustix::fs::open(
        path.as_str(),
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| RuntimeError::io(path, e.into()))
}

fn connect_console(path: &Path) -> Result<OwnedFd> {
    let stream =
        std::os::unix::net::UnixStream::connect(path).map_err(|e| RuntimeError::io(path, e))?;
    Ok(OwnedFd::from(stream))
}

/// `linux.netDevices`: into the init's network namespace (new or joined), renamed.
fn move_net_devices(
    spec: &oci_spec::runtime::Spec,
    ns_plan: &namespaces::Plan,
    pid: i32,
) -> Result<()> {
    let Some(devices) = spec.linux().as_ref().and_then(|l| l.net_devices().as_ref()) else {
        return Ok(());
    };
    let mut pairs: Vec<(String, String)> = devices
        .iter()
        .map(|(host, d)| {
            (
                host.clone(),
                d.name().clone().unwrap_or_else(|| host.clone()),
            )
        })
        .collect();
    pairs.sort();
    let joined = ns_plan
        .joins
        .iter()
        .find(|(f, _, _)| *f == libc::CLONE_NEWNET)
        .map(|(_, fd, _)| fd);
    let target = match joined {
        Some(fd) => crate::netdev::Target::NamespaceFd(rustix::fd::AsFd::as_fd(fd)),
        None if ns_plan.has_new(libc::CLONE_NEWNET) => crate::netdev::Target::Pid(pid),
        None => {
            return Err(RuntimeError::InvalidArgument(
                "linux.netDevices needs a network namespace".into(),
            ))
        }
    };
    crate::netdev::move_devices(&pairs, &target)
}

/// Writes the pid file atomically (runc does the same).
pub fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    let tmp = path.with_file_name(format!(
        ".{}.tmp",
        path.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default()
    ));
    std::fs::write(&tmp, pid.to_string()).map_err(|e| RuntimeError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| RuntimeError::io(path, e))
}

/// v1 hierarchies as the container sees them: one directory per mount (named like the host's
/// mountpoint, "cpu,cpuacct"), with aliases for co-mounted controllers.
pub fn v1_binds(
    mountpoints: &BTreeMap<String, std::path::PathBuf>,
    dirs: &BTreeMap<String, std::path::PathBuf>,
) -> Vec<CgroupBind> {
    let mut by_mount: BTreeMap<std::path::PathBuf, CgroupBind> = BTreeMap::new();
    for (controller, mountpoint) in mountpoints {
        let Some(host_dir) = dirs.get(controller) else {
            continue;
        };
        let name = mountpoint
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| controller.clone());
        let entry = by_mount
            .entry(mountpoint.clone())
            .or_insert_with(|| CgroupBind {
                name: name.clone(),
                host_dir: host_dir.clone(),
                aliases: Vec::new(),
            });
        let alias = controller.trim_start_matches("name=").to_owned();
        if alias != name && !entry.aliases.contains(&alias) {
            entry.aliases.push(alias);
        }
    }
    by_mount.into_values().collect()
}
