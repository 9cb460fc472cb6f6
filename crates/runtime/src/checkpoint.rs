//! `checkpoint` and `restore` through CRIU's command line (`criu dump` / `pre-dump` /
//! `restore`), with runc's flags and runc's image-directory conventions: `descriptors.json`
//! records the init's stdio, bind mounts are external mounts keyed by their destination, masked
//! files are keyed to `/dev/null`, and the restored init is a child of the caller
//! (`--restore-sibling`). runc drives CRIU over its RPC socket; CRIU has no RPC client crate, and
//! the command line gives the same dump and restore, except the RPC-only hand-off of an orphaned
//! pty master: a container with a terminal is refused with a clear message.
//!
//! This module owns only the CRIU invocation and the container state around it; it never
//! touches the images themselves.

use crate::cgroup;
use crate::create::{self, v1_binds};
use crate::error::{Result, RuntimeError};
use crate::spec;
use crate::state::{self, ContainerState, Status, StoredState};
use crate::Runtime;
use berth_cgroups::{CgroupVersion, Hierarchy};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// runc's name for the file that records the init's fds 0, 1, 2 in the image directory.
pub const DESCRIPTORS_FILE: &str = "descriptors.json";

/// Options of [`Runtime::checkpoint`] (runc's `checkpoint` flags).
#[derive(Debug, Clone)]
pub struct CheckpointOptions {
    /// The criu binary: a path, or a name looked up in $PATH (runc's global `--criu`).
    pub criu: PathBuf,
    pub image_path: PathBuf,
    /// Where CRIU writes its log (default: the image path).
    pub work_path: Option<PathBuf>,
    /// A previous (pre-)dump, relative to the image path as CRIU wants it.
    pub parent_path: Option<PathBuf>,
    pub leave_running: bool,
    pub tcp_established: bool,
    pub ext_unix_sk: bool,
    pub shell_job: bool,
    pub file_locks: bool,
    /// Dump memory only, leaving the container running (an iterative migration's first step).
    pub pre_dump: bool,
    /// soft, full, strict or ignore (CRIU's default: soft).
    pub manage_cgroups_mode: Option<String>,
}

impl Default for CheckpointOptions {
    fn default() -> Self {
        CheckpointOptions {
            criu: PathBuf::from("criu"),
            image_path: PathBuf::from("checkpoint"),
            work_path: None,
            parent_path: None,
            leave_running: false,
            tcp_established: false,
            ext_unix_sk: false,
            shell_job: false,
            file_locks: false,
            pre_dump: false,
            manage_cgroups_mode: None,
        }
    }
}

/// Options of [`Runtime::restore`] (runc's `restore` flags).
#[derive(Debug, Clone)]
pub struct RestoreOptions {
    pub criu: PathBuf,
    pub image_path: PathBuf,
    pub work_path: Option<PathBuf>,
    pub tcp_established: bool,
    pub ext_unix_sk: bool,
    pub shell_job: bool,
    pub file_locks: bool,
    pub manage_cgroups_mode: Option<String>,
    pub pid_file: Option<PathBuf>,
    /// Accepted like runc's; a terminal container cannot be restored (see the module docs).
    pub console_socket: Option<PathBuf>,
}

impl Default for RestoreOptions {
    fn default() -> Self {
        RestoreOptions {
            criu: PathBuf::from("criu"),
            image_path: PathBuf::from("checkpoint"),
            work_path: None,
            tcp_established: false,
            ext_unix_sk: false,
            shell_job: false,
            file_locks: false,
            manage_cgroups_mode: None,
            pid_file: None,
            console_socket: None,
        }
    }
}

fn criu_error(action: &str, reason: impl Into<String>) -> RuntimeError {
    RuntimeError::Criu {
        action: action.to_owned(),
        reason: reason.into(),
    }
}

/// The criu binary to run: `name` itself when it holds a '/', else the first match in $PATH.
pub fn find_criu(name: &Path, action: &str) -> Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    let found = if name.as_os_str().to_string_lossy().contains('/') {
        executable(name).then(|| name.to_path_buf())
    } else {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join(name))
                .find(|p| executable(p))
        })
    };
    found.ok_or_else(|| {
        criu_error(
            action,
            format!(
                "criu binary {:?} not found: install the criu package, or give its path with --criu",
                name.display().to_string()
            ),
        )
    })
}

fn check_mode(mode: &Option<String>, action: &str) -> Result<()> {
    match mode.as_deref() {
        None | Some("soft" | "full" | "strict" | "ignore") => Ok(()),
        Some(other) => Err(criu_error(
            action,
            format!("invalid --manage-cgroups-mode {other:?} (soft, full, strict or ignore)"),
        )),
    }
}

fn make_dir(path: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(|e| RuntimeError::io(path, e))
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// Whether a spec mount is a bind mount (runc's `Device == "bind"`).
fn is_bind(m: &oci_spec::runtime::Mount) -> bool {
    m.typ().as_deref() == Some("bind")
        || m.options()
            .iter()
            .flatten()
            .any(|o| o == "bind" || o == "rbind")
}

/// The CRIU flags both directions share.
struct CommonFlags<'a> {
    tcp_established: bool,
    ext_unix_sk: bool,
    shell_job: bool,
    file_locks: bool,
    manage_cgroups_mode: &'a Option<String>,
}

impl CommonFlags<'_> {
    fn push(&self, args: &mut Vec<String>) {
        args.push(match self.manage_cgroups_mode {
            Some(mode) => format!("--manage-cgroups={mode}"),
            None => "--manage-cgroups".into(),
        });
        for (on, flag) in [
            (self.tcp_established, "--tcp-established"),
            (self.ext_unix_sk, "--ext-unix-sk"),
            (self.shell_job, "--shell-job"),
            (self.file_locks, "--file-locks"),
        ] {
            if on {
                args.push(flag.into());
            }
        }
    }
}

/// Whether this kernel lets CRIU track dirty memory (soft-dirty bits), which a pre-dump needs:
/// `criu check --feature mem_dirty_track`, as runc asks CRIU before a pre-dump.
fn check_memory_tracking(criu: &Path, action: &str) -> Result<()> {
    let out = Command::new(criu)
        .args(["check", "--feature", "mem_dirty_track"])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| criu_error(action, format!("running {}: {e}", criu.display())))?;
    if out.status.success() {
        return Ok(());
    }
    let said = String::from_utf8_lossy(&out.stderr);
    let said = said.trim();
    Err(criu_error(
        action,
        format!(
            "CRIU cannot track memory changes on this kernel, which a pre-dump needs{}",
            if said.is_empty() {
                String::new()
            } else {
                format!(" (criu check: {said})")
            }
        ),
    ))
}

/// Runs criu; on failure the error carries its exit status and the end of its log.
fn run_criu(
    criu: &Path,
    args: &[String],
    log: &Path,
    action: &str,
    inherit_stdio: bool,
) -> Result<()> {
    let mut cmd = Command::new(criu);
    cmd.args(args).stdin(Stdio::null());
    if !inherit_stdio {
        cmd.stdout(Stdio::null()).stderr(Stdio::piped());
    }
    let out = cmd
        .output()
        .map_err(|e| criu_error(action, format!("running {}: {e}", criu.display())))?;
    if out.status.success() {
        return Ok(());
    }
    let log_text = std::fs::read_to_string(log).unwrap_or_default();
    let mut errors: Vec<&str> = log_text
        .lines()
        .filter(|l| l.contains("Error") || l.contains("error"))
        .collect();
    if errors.is_empty() {
        errors = log_text.lines().collect();
    }
    let tail = errors[errors.len().saturating_sub(4)..].join("; ");
    let stderr = String::from_utf8_lossy(&out.stderr);
    Err(criu_error(
        action,
        format!(
            "criu {} failed ({}): {}{} (log: {})",
            args.first().map(String::as_str).unwrap_or(""),
            out.status,
            tail.trim(),
            if stderr.trim().is_empty() {
                String::new()
            } else {
                format!("; {}", stderr.trim())
            },
            log.display()
        ),
    ))
}

/// External mounts as CRIU keys them: (key at dump, key at restore, source at restore).
struct External {
    dump_key: String,
    restore_key: String,
    source: PathBuf,
}

/// The mounts CRIU cannot dump by itself: bind mounts (keyed by destination), v1 cgroup binds,
/// masked files (a bind of /dev/null, keyed "/dev/null" as runc does).
fn externals(
    spec: &oci_spec::runtime::Spec,
    cgroups_path: &str,
    masked_files: &[String],
) -> Vec<External> {
    let mut out = Vec::new();
    let mounts = spec.mounts().clone().unwrap_or_default();
    for m in &mounts {
        if is_bind(m) {
            let dest = m.destination().display().to_string();
            out.push(External {
                dump_key: dest.clone(),
                restore_key: dest,
                source: m.source().clone().unwrap_or_default(),
            });
        }
    }
    if mounts.iter().any(|m| m.typ().as_deref() == Some("cgroup")) {
        if let Ok(h) = Hierarchy::detect() {
            if h.version() != CgroupVersion::V2 {
                if let Ok(cg) = berth_cgroups::Cgroup::open(&h, cgroups_path) {
                    let dest = mounts
                        .iter()
                        .find(|m| m.typ().as_deref() == Some("cgroup"))
                        .map(|m| m.destination().display().to_string())
                        .unwrap_or_else(|| "/sys/fs/cgroup".into());
                    for bind in v1_binds(&h.mountpoints(), &cg.paths()) {
                        let key = format!("{dest}/{}", bind.name);
                        out.push(External {
                            dump_key: key.clone(),
                            restore_key: key,
                            source: bind.host_dir,
                        });
                    }
                }
            }
        }
    }
    for path in masked_files {
        out.push(External {
            dump_key: path.clone(),
            restore_key: "/dev/null".into(),
            source: PathBuf::from("/dev/null"),
        });
    }
    out
}

/// Masked paths that are files inside the running container (bound over with /dev/null).
fn masked_files(spec: &oci_spec::runtime::Spec, init_pid: i32) -> Vec<String> {
    let paths = spec
        .linux()
        .as_ref()
        .and_then(|l| l.masked_paths().clone())
        .unwrap_or_default();
    paths
        .into_iter()
        .filter(|p| {
            // /proc/<pid>/root resolves inside the container's root; only the type is read.
            std::fs::metadata(format!("/proc/{init_pid}/root{p}")).is_ok_and(|m| !m.is_dir())
        })
        .collect()
}

/// Refuses a terminal container (see the module docs).
fn refuse_terminal(terminal: bool, action: &str) -> Result<()> {
    if terminal {
        return Err(criu_error(
            action,
            "containers with a terminal are not supported (the pty master hand-off needs CRIU's RPC interface)",
        ));
    }
    Ok(())
}

/// Dumps the running (or paused) container to `opts.image_path`. Without `leave_running` or
/// `pre_dump` CRIU ends the container's processes and the container is deleted, as under runc,
/// so it can be restored under the same id.
pub fn checkpoint(rt: &Runtime, id: &str, opts: &CheckpointOptions) -> Result<()> {
    let action = if opts.pre_dump {
        "pre-dump"
    } else {
        "checkpoint"
    };
    let dir = rt.dir(id);
    let st = state::load(&dir, id)?;
    match st.status(&dir) {
        Status::Running | Status::Paused => {}
        s => {
            return Err(RuntimeError::InvalidState {
                id: id.to_owned(),
                reason: format!("cannot checkpoint a container that is {s}"),
            })
        }
    }
    refuse_terminal(st.terminal, action)?;
    check_mode(&opts.manage_cgroups_mode, action)?;
    let criu = find_criu(&opts.criu, action)?;
    if opts.pre_dump {
        check_memory_tracking(&criu, action)?;
    }
    let bundle = spec::load_bundle(&st.bundle)?;
    let image = absolute(&opts.image_path);
    let work = opts
        .work_path
        .as_deref()
        .map(absolute)
        .unwrap_or(image.clone());
    make_dir(&image)?;
    make_dir(&work)?;

    // runc's descriptors.json: what the init's stdio was, for --inherit-fd at restore.
    let descriptors: Vec<String> = (0..3)
        .map(|fd| {
            std::fs::read_link(format!("/proc/{}/fd/{fd}", st.init_pid))
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        })
        .collect();
    let descriptors_path = image.join(DESCRIPTORS_FILE);
    std::fs::write(
        &descriptors_path,
        serde_json::to_vec(&descriptors).unwrap_or_default(),
    )
    .map_err(|e| RuntimeError::io(&descriptors_path, e))?;

    let log_name = if opts.pre_dump {
        "pre-dump.log"
    } else {
        "dump.log"
    };
    let mut args: Vec<String> = vec![
        if opts.pre_dump { "pre-dump" } else { "dump" }.into(),
        "--tree".into(),
        st.init_pid.to_string(),
        "--images-dir".into(),
        image.display().to_string(),
        "--work-dir".into(),
        work.display().to_string(),
        "--log-file".into(),
        log_name.into(),
        "-v4".into(),
    ];
    CommonFlags {
        tcp_established: opts.tcp_established,
        ext_unix_sk: opts.ext_unix_sk,
        shell_job: opts.shell_job,
        file_locks: opts.file_locks,
        manage_cgroups_mode: &opts.manage_cgroups_mode,
    }
    .push(&mut args);
    if let Ok(cg) = cgroup::open(&st.cgroups_path) {
        // CRIU freezes the tree through the freezer (it also dumps a paused container so).
        let paths = cg.paths();
        if let Some(freezer) = paths.get("freezer").or_else(|| paths.get("unified")) {
            args.push("--freeze-cgroup".into());
            args.push(freezer.display().to_string());
        }
    }
    for ext in externals(
        &bundle.spec,
        &st.cgroups_path,
        &masked_files(&bundle.spec, st.init_pid),
    ) {
        args.push("--external".into());
        args.push(format!("mnt[{}]:{}", ext.dump_key, ext.restore_key));
    }
    if opts.pre_dump || opts.parent_path.is_some() {
        args.push("--track-mem".into());
    }
    if let Some(parent) = &opts.parent_path {
        args.push("--prev-images-dir".into());
        args.push(parent.display().to_string());
    }
    if opts.leave_running && !opts.pre_dump {
        args.push("--leave-running".into());
    }
    run_criu(&criu, &args, &work.join(log_name), action, false)?;
    if !opts.leave_running && !opts.pre_dump {
        // CRIU ended the processes; the container goes, as under runc.
        crate::lifecycle::delete(rt, id, true)?;
    }
    Ok(())
}

/// Undoes a half-restored container.
struct RestoreCleanup {
    dir: Option<PathBuf>,
    cgroup: Option<berth_cgroups::Cgroup>,
    criu_root: Option<PathBuf>,
    pid: Option<i32>,
}

impl RestoreCleanup {
    fn unmount_root(&mut self) {
        if let Some(root) = self.criu_root.take() {
            let _ = rustix::mount::unmount(&root, rustix::mount::UnmountFlags::DETACH);
            let _ = std::fs::remove_dir(&root);
        }
    }
}

impl Drop for RestoreCleanup {
    fn drop(&mut self) {
        self.unmount_root();
        if let Some(pid) = self.pid {
            // SAFETY: killing the restored init, our child (restore-sibling), not yet reaped.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            let _ = crate::sys::wait_child_timeout(pid, std::time::Duration::from_secs(10));
        }
        if let Some(cg) = &self.cgroup {
            if let Ok(pids) = cg.all_pids() {
                for pid in pids {
                    // SAFETY: processes CRIU restored into the cgroup we made for them.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
            }
            let _ = cg.destroy();
        }
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Restores a container from `opts.image_path` under `id` with the bundle at `bundle_dir`. The
/// restored init is a child of the caller (reap it as after `create_and_start`); the returned
/// state carries its pid. On failure nothing is left: no state dir, cgroup or mount.
pub fn restore(
    rt: &Runtime,
    id: &str,
    bundle_dir: &Path,
    opts: &RestoreOptions,
) -> Result<ContainerState> {
    let action = "restore";
    create::validate_id(id)?;
    let bundle = spec::load_bundle(bundle_dir)?;
    let terminal = bundle
        .spec
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false);
    refuse_terminal(terminal, action)?;
    check_mode(&opts.manage_cgroups_mode, action)?;
    let criu = find_criu(&opts.criu, action)?;
    let image = absolute(&opts.image_path);
    if !image.join("inventory.img").is_file() {
        return Err(criu_error(
            action,
            format!("{} holds no checkpoint (no inventory.img)", image.display()),
        ));
    }
    let work = opts
        .work_path
        .as_deref()
        .map(absolute)
        .unwrap_or(image.clone());
    make_dir(&work)?;
    let dir = rt.claim_state_dir(id)?;
    let mut cleanup = RestoreCleanup {
        dir: Some(dir.clone()),
        cgroup: None,
        criu_root: None,
        pid: None,
    };
    let linux = bundle.spec.linux().as_ref();
    let cgroups_path = cgroup::effective_path(
        linux
            .and_then(|l| l.cgroups_path().as_ref())
            .and_then(|p| p.to_str()),
        id,
    );
    let hierarchy = Hierarchy::detect().map_err(|e| cgroup::cgroup_error(&cgroups_path, e))?;
    let cg = berth_cgroups::Cgroup::open(&hierarchy, &cgroups_path)
        .map_err(|e| cgroup::cgroup_error(&cgroups_path, e))?;
    cleanup.cgroup = Some(cg.clone());
    cg.create_and_apply(linux.and_then(|l| l.resources().as_ref()))
        .map_err(|e| cgroup::cgroup_error(&cgroups_path, e))?;

    // CRIU wants the root as a mount point of its own: a private recursive bind of the rootfs.
    let criu_root = dir.join("criu-root");
    std::fs::create_dir(&criu_root).map_err(|e| RuntimeError::io(&criu_root, e))?;
    rustix::mount::mount_bind_recursive(&bundle.rootfs, &criu_root).map_err(|e| {
        RuntimeError::sys(format!("binding the rootfs at {}", criu_root.display()), e)
    })?;
    cleanup.criu_root = Some(criu_root.clone());
    rustix::mount::mount_change(
        &criu_root,
        rustix::mount::MountPropagationFlags::PRIVATE | rustix::mount::MountPropagationFlags::REC,
    )
    .map_err(|e| RuntimeError::sys("making the restore root private", e))?;

    let pid_path = dir.join("criu.pid");
    let mut args: Vec<String> = vec![
        "restore".into(),
        "--images-dir".into(),
        image.display().to_string(),
        "--work-dir".into(),
        work.display().to_string(),
        "--log-file".into(),
        "restore.log".into(),
        "-v4".into(),
        "--root".into(),
        criu_root.display().to_string(),
        "--restore-detached".into(),
        "--restore-sibling".into(),
        "--pidfile".into(),
        pid_path.display().to_string(),
        "--cgroup-root".into(),
        cgroups_path.clone(),
    ];
    CommonFlags {
        tcp_established: opts.tcp_established,
        ext_unix_sk: opts.ext_unix_sk,
        shell_job: opts.shell_job,
        file_locks: opts.file_locks,
        manage_cgroups_mode: &opts.manage_cgroups_mode,
    }
    .push(&mut args);
    let has_masked_files = linux
        .and_then(|l| l.masked_paths().as_ref())
        .is_some_and(|p| !p.is_empty());
    let mut seen = std::collections::BTreeSet::new();
    for ext in externals(&bundle.spec, &cgroups_path, &[]) {
        if seen.insert(ext.restore_key.clone()) {
            args.push("--external".into());
            args.push(format!("mnt[{}]:{}", ext.restore_key, ext.source.display()));
        }
    }
    if has_masked_files {
        args.push("--external".into());
        args.push("mnt[/dev/null]:/dev/null".into());
    }
    // Pipes the init had as stdio become ours (runc passes its own stdio the same way).
    let descriptors: Vec<String> = std::fs::read(image.join(DESCRIPTORS_FILE))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let mut inherit = false;
    for (fd, what) in descriptors.iter().enumerate().take(3) {
        if what.starts_with("pipe:") {
            inherit = true;
            args.push("--inherit-fd".into());
            args.push(format!("fd[{fd}]:{what}"));
        }
    }
    run_criu(&criu, &args, &work.join("restore.log"), action, inherit)?;
    let pid: i32 = std::fs::read_to_string(&pid_path)
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .ok_or_else(|| {
            criu_error(
                action,
                format!("criu wrote no pid to {}", pid_path.display()),
            )
        })?;
    cleanup.pid = Some(pid);
    cleanup.unmount_root();
    let start_time = state::process_stat(pid).map(|(_, t)| t).unwrap_or(0);
    let stored = StoredState {
        oci_version: bundle.spec.version().clone(),
        id: id.to_owned(),
        init_pid: pid,
        init_start_time: start_time,
        bundle: bundle.dir.clone(),
        rootfs: bundle.rootfs.clone(),
        created: berth_common::time::now_rfc3339(),
        annotations: bundle
            .spec
            .annotations()
            .as_ref()
            .map(|a| a.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default(),
        cgroups_path,
        hooks: bundle.spec.hooks().clone(),
        terminal,
    };
    state::save(&dir, &stored)?;
    if let Some(pid_file) = &opts.pid_file {
        create::write_pid_file(pid_file, pid)?;
    }
    cleanup.dir = None;
    cleanup.cgroup = None;
    cleanup.pid = None;
    let mut view = stored.view(&dir);
    view.pid = pid;
    Ok(view)
}
