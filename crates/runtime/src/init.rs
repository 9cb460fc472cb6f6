//! The container init: the code the cloned child runs, from the namespaces it was born in to the
//! execve of the user's process. It waits for the runtime's go-ahead (id maps written, cgroup
//! joined), joins and unshares the remaining namespaces, builds the rootfs, applies the process
//! attributes, reports ready, blocks on the exec fifo until `start`, and execs.
//!
//! Protection of the runtime binary (CVE-2019-5736): the init marks itself non-dumpable first
//! thing, so no process in the container can open `/proc/<init>/exe` (our binary) or ptrace it
//! while it still is berth-runtime; the flag is reset by the kernel at execve of the container's
//! program, which replaces `/proc/<pid>/exe`. The runtime never re-executes itself inside a
//! container (no `/proc/self/exe init` stage): the init is a plain fork that execs the user
//! program directly, and `exec` into a running container does the same (see `exec.rs`).
//! Fd leaks (CVE-2024-21626): everything the runtime opens is close-on-exec, every fd above the
//! preserved ones is marked close-on-exec before exec, and the cwd is checked to lie under the
//! container root after chdir.

use crate::init_error::InitError;
use crate::namespaces::Plan;
use crate::rootfs::{self, CgroupBind, RootfsPlan};
use crate::state::ContainerState;
use crate::sync::{tag, SyncSocket};
use crate::{capabilities, console, hooks, process, sys};
use oci_spec::runtime::{LinuxNamespaceType, Spec};
use rustix::fd::{OwnedFd, RawFd};
use std::path::Path;

/// Everything the init needs, prepared by the runtime before the clone.
pub struct InitContext<'a> {
    pub id: &'a str,
    pub spec: &'a Spec,
    pub bundle: &'a Path,
    pub rootfs: &'a Path,
    pub sync: SyncSocket,
    /// The runtime's end of the sync pair, closed first thing in the child.
    pub runtime_sync_fd: RawFd,
    /// O_PATH handle on the state dir `<root>/<id>` holding `exec.fifo`; None runs without
    /// waiting for `start`.
    pub fifo_dir: Option<OwnedFd>,
    pub console_socket: Option<OwnedFd>,
    pub stdio: Option<[RawFd; 3]>,
    pub preserve_fds: u32,
    pub namespaces: &'a Plan,
    pub cgroup_binds: Vec<CgroupBind>,
    pub cgroup_v2: bool,
    pub seccomp: Option<&'a crate::seccomp::Program>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub has_runtime_hooks: bool,
    /// State given to createContainer/startContainer hooks (pid filled in by the init).
    pub hook_state: ContainerState,
    /// LISTEN_FDS passthrough: count of socket-activation fds (they are among the preserved).
    pub listen_fds: Option<u32>,
    /// Bind sources cloned by the runtime for a new user namespace (see `rootfs::mount_sources`).
    pub mount_sources: Vec<Option<OwnedFd>>,
}

/// Runs the init. Never returns: execs, or exits non-zero after reporting the error.
pub fn run(ctx: InitContext<'_>) -> ! {
    // SAFETY: closing our copy of the runtime's end so EOF reaches the runtime when we die.
    unsafe { libc::close(ctx.runtime_sync_fd) };
    // SAFETY: prctl(PR_SET_DUMPABLE, 0) only changes this process's dumpable flag.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    let failed = match setup_and_exec(&ctx) {
        Ok(never) => match never {},
        Err(f) => f,
    };
    let err = &failed.error;
    // The errno travels with the message: the runtime (and the engine's 126/127) read it.
    let tag = if err.is_command_failure() {
        tag::EXEC_FAILED
    } else {
        tag::ERROR
    };
    let _ = ctx.sync.send(tag, &err.encode());
    if failed.after_start {
        let line = format!("berth-runtime: {err}\n");
        // SAFETY: writing a buffer to stderr.
        unsafe { libc::write(2, line.as_ptr().cast(), line.len()) };
    }
    // SAFETY: _exit skips atexit handlers and destructors that belong to the parent's image.
    unsafe { libc::_exit(err.exit_code()) }
}

enum Never {}

/// The init's failure, and whether it came after `start` (when the runtime that created the
/// container is gone and only the container's stderr can tell).
struct Failed {
    error: InitError,
    after_start: bool,
}

impl<E: Into<InitError>> From<E> for Failed {
    fn from(e: E) -> Failed {
        Failed {
            error: e.into(),
            after_start: false,
        }
    }
}

fn setup_and_exec(ctx: &InitContext<'_>) -> Result<Never, Failed> {
    let spec = ctx.spec;
    let linux = spec.linux().as_ref();
    let oci_process = spec
        .process()
        .as_ref()
        .ok_or_else(|| InitError::Refused("process is missing".into()))?;
    let ns = ctx.namespaces;

    let host_pid = match ctx.sync.recv() {
        Ok(Some((tag::GO, payload))) if payload.len() == 4 => {
            i32::from_le_bytes([payload[0], payload[1], payload[2], payload[3]])
        }
        Ok(Some((tag::ERROR, _))) | Ok(None) => {
            return Err(InitError::Sync("runtime went away".into()).into())
        }
        other => {
            return Err(
                InitError::Sync(format!("unexpected message from runtime: {other:?}")).into(),
            )
        }
    };

    // Still in the runtime's namespaces, with its /proc: a container without a mount namespace
    // may have no /proc once chrooted.
    if let Some(adj) = oci_process.oom_score_adj() {
        std::fs::write("/proc/self/oom_score_adj", adj.to_string())
            .map_err(|e| InitError::sys(format!("setting oom_score_adj {adj}"), e))?;
    }
    for (flag, fd, what) in &ns.joins {
        if *flag == libc::CLONE_NEWPID {
            continue; // joined by the runtime for its children
        }
        sys::setns(fd, *flag, what).map_err(InitError::from_runtime)?;
    }
    if ns.has_new(libc::CLONE_NEWUSER) || ns.joins_kind(libc::CLONE_NEWUSER) {
        become_ns_root()?;
    }
    let unshare = ns.unshare_in_init();
    if unshare != 0 {
        // SAFETY: unshare on this single-threaded process.
        if unsafe { libc::unshare(unshare) } != 0 {
            return Err(InitError::last_os("unshare").into());
        }
    }

    // Read before the root changes (see oom_score_adj above).
    let setgroups_allowed = !ns.has_new(libc::CLONE_NEWUSER) || setgroups_allowed();
    let in_mount_ns = ns.has_new(libc::CLONE_NEWNS);
    let in_cgroup = std::cell::Cell::new(false);
    let join_cgroup = || -> Result<(), InitError> {
        if in_cgroup.get() {
            return Ok(());
        }
        match ctx.sync.recv() {
            Ok(Some((tag::CGROUP_JOINED, _))) => {}
            _ => {
                return Err(InitError::Sync(
                    "runtime went away before joining the cgroup".into(),
                ))
            }
        }
        in_cgroup.set(true);
        if ns.has_new(libc::CLONE_NEWCGROUP) {
            // SAFETY: unshare on this single-threaded process.
            if unsafe { libc::unshare(libc::CLONE_NEWCGROUP) } != 0 {
                return Err(InitError::last_os("unshare cgroup namespace"));
            }
        }
        Ok(())
    };
    if ctx.cgroup_v2 && ns.has_new(libc::CLONE_NEWCGROUP) {
        // A cgroup2 mount shows the namespace's root: enter it before mounting.
        join_cgroup()?;
    }
    if in_mount_ns {
        rootfs::prepare(&RootfsPlan {
            spec,
            rootfs: ctx.rootfs,
            bundle: ctx.bundle,
            cgroup_binds: ctx.cgroup_binds.clone(),
            cgroup_v2: ctx.cgroup_v2,
            in_user_ns: ns.has_new(libc::CLONE_NEWUSER) || ns.joins_kind(libc::CLONE_NEWUSER),
            no_pivot: ctx.no_pivot,
            before_cgroup_mount: &join_cgroup,
            mount_sources: &ctx.mount_sources,
        })?;
    }
    join_cgroup()?;
    if ctx.has_runtime_hooks {
        ctx.sync
            .send(tag::HOOKS, &[])
            .map_err(|e| InitError::sys("sync", e))?;
        match ctx.sync.recv() {
            Ok(Some((tag::GO, _))) => {}
            _ => return Err(InitError::Sync("runtime hooks failed".into()).into()),
        }
    }
    let mut hook_state = ctx.hook_state.clone();
    hook_state.pid = host_pid;
    let hook_json = serde_json::to_vec(&hook_state).unwrap_or_default();
    if let Some(h) = spec
        .hooks()
        .as_ref()
        .and_then(|h| h.create_container().as_ref())
    {
        let cwd = if in_mount_ns {
            ctx.rootfs
        } else {
            Path::new("/")
        };
        hooks::run_all_with(
            h,
            &hook_json,
            hooks::HookContext {
                cwd: Some(cwd),
                default_env: None,
            },
        )?;
    }
    if in_mount_ns {
        rootfs::enter_root(ctx.rootfs, ctx.no_pivot)?;
    } else {
        rustix::process::chroot(ctx.rootfs).map_err(|e| InitError::sys("chroot", e))?;
        rustix::process::chdir("/").map_err(|e| InitError::sys("chdir /", e))?;
    }

    if let Some(sock) = &ctx.console_socket {
        console::setup(sock, oci_process)?;
    } else {
        // A session of its own, as runc's init always has (console::setup makes one too):
        // CRIU refuses to dump a tree whose session leader is outside its pid namespace.
        rustix::process::setsid().map_err(|e| InitError::sys("setsid", e))?;
        if let Some(stdio) = ctx.stdio {
            sys::install_stdio(stdio).map_err(|e| InitError::sys("setting up stdio", e))?;
        }
        if in_mount_ns {
            sys::reopen_dev_null().map_err(|e| InitError::sys("reopening /dev/null", e))?;
        }
    }
    if let Some(hostname) = spec.hostname().as_deref().filter(|h| !h.is_empty()) {
        if !ns.has_new(libc::CLONE_NEWUTS) && !ns.joins_kind(libc::CLONE_NEWUTS) {
            return Err(InitError::Refused(
                "unable to set hostname without a private UTS namespace".into(),
            )
            .into());
        }
        rustix::system::sethostname(hostname.as_bytes())
            .map_err(|e| InitError::sys("sethostname", e))?;
    }
    if let Some(domain) = spec.domainname().as_deref().filter(|h| !h.is_empty()) {
        rustix::system::setdomainname(domain.as_bytes())
            .map_err(|e| InitError::sys("setdomainname", e))?;
    }
    if in_mount_ns {
        rootfs::write_sysctls(spec)?;
        if let Some(paths) = linux.and_then(|l| l.readonly_paths().as_deref()) {
            rootfs::readonly_paths(paths)?;
        }
        if let Some(paths) = linux.and_then(|l| l.masked_paths().as_deref()) {
            rootfs::mask_paths(paths)?;
        }
        if spec
            .root()
            .as_ref()
            .and_then(|r| r.readonly())
            .unwrap_or(false)
        {
            rootfs::readonly_root()?;
        }
        rootfs::apply_root_propagation(spec)?;
    }
    if !ctx.no_new_keyring {
        // Errors are ignored like runc does when keyrings are unavailable (ENOSYS, EACCES).
        let _ = sys::join_session_keyring(&format!("_ses.{}", ctx.id));
    }
    // apparmorProfile and selinuxLabel are ignored: neither LSM is enabled on the hosts Berth
    // targets (the CLI reports them with --debug).

    process::apply_rlimits(oci_process)?;
    process::apply_io_priority(oci_process)?;
    process::apply_scheduler(oci_process)?;
    process::apply_personality(spec)?;
    let nnp = oci_process.no_new_privileges().unwrap_or(false);
    if nnp {
        process::set_no_new_privs()?;
    }
    // A filter with SCMP_ACT_NOTIFY goes on now even with no_new_privs: its listener must reach
    // the agent before `create` returns (runc does the same).
    let load_late = nnp && !ctx.seccomp.is_some_and(|p| p.notifies());
    if let (false, Some(program)) = (load_late, ctx.seccomp) {
        if let Some(listener) = program.load_with_listener().map_err(InitError::from)? {
            // SAFETY: the kernel just returned this fd to us; we own it.
            let listener = unsafe { <OwnedFd as rustix::fd::FromRawFd>::from_raw_fd(listener) };
            ctx.sync
                .send_fd(tag::SECCOMP_FD, &listener)
                .map_err(|e| InitError::sys("sending the seccomp listener to the runtime", e))?;
        }
    }
    let cwd = oci_process.cwd();
    let cwd_done = process::enter_cwd(cwd).is_ok();
    let sets = capabilities::from_spec(oci_process.capabilities().as_ref());
    process::switch_user_and_caps(oci_process, &sets, setgroups_allowed)?;
    if !cwd_done {
        process::enter_cwd(cwd)?;
    }
    let umask = oci_process.user().umask().unwrap_or(0o022);
    // SAFETY: umask only changes this process's mask.
    unsafe { libc::umask(umask as libc::mode_t) };
    let mut env = process::environment(oci_process);
    let args = oci_process.args().clone().unwrap_or_default();
    let Some(arg0) = args.first() else {
        return Err(InitError::Refused("process args must not be empty".into()).into());
    };
    let path = process::look_path(arg0, &env)?;
    if let Some(n) = ctx.listen_fds {
        env.retain(|e| !e.starts_with("LISTEN_FDS=") && !e.starts_with("LISTEN_PID="));
        env.push(format!("LISTEN_FDS={n}"));
        // SAFETY: getpid has no preconditions.
        env.push(format!("LISTEN_PID={}", unsafe { libc::getpid() }));
    }
    sys::cloexec_from(3 + ctx.preserve_fds)
        .map_err(|e| InitError::sys("marking fds close-on-exec", e))?;

    ctx.sync
        .send(tag::READY, &[])
        .map_err(|e| InitError::sys("sync", e))?;
    if let Some(dir) = &ctx.fifo_dir {
        wait_for_start(dir)?;
    }
    let after_start = |error: InitError| Failed {
        error,
        after_start: true,
    };
    if load_late {
        // With no_new_privs the filter goes on as late as possible (fewer syscalls for the
        // runtime's own code to need), but before the startContainer hooks, as runc does:
        // they run in the container and get its seccomp policy.
        if let Some(program) = ctx.seccomp {
            program.load().map_err(|e| after_start(e.into()))?;
        }
    }
    if let Some(h) = spec
        .hooks()
        .as_ref()
        .and_then(|h| h.start_container().as_ref())
    {
        let mut st = hook_state.clone();
        st.status = crate::state::Status::Running;
        hooks::run_all_with(
            h,
            &serde_json::to_vec(&st).unwrap_or_default(),
            hooks::HookContext {
                cwd: None,
                default_env: Some(&env),
            },
        )
        .map_err(|e| after_start(e.into()))?;
    }
    reset_signals();
    let failure = process::exec(&path, &args, &env);
    Err(after_start(InitError::Exec {
        message: failure.message,
        source: std::io::Error::from_raw_os_error(failure.errno),
    }))
}

/// Blocks until `start` opens the fifo for reading, then tells it we are going.
fn wait_for_start(state_dir: &OwnedFd) -> Result<(), InitError> {
    let fd = rustix::fs::openat(
        state_dir,
        crate::state::EXEC_FIFO,
        rustix::fs::OFlags::WRONLY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .map_err(|e| InitError::sys("opening exec fifo", e))?;
    rustix::io::write(&fd, b"0").map_err(|e| InitError::sys("writing exec fifo", e))?;
    Ok(())
}

fn become_ns_root() -> Result<(), InitError> {
    // SAFETY: credential syscalls on this single-threaded process.
    unsafe {
        if libc::syscall(libc::SYS_setresgid, 0, 0, 0) != 0 {
            return Err(InitError::last_os("setresgid 0 in user namespace"));
        }
        if libc::syscall(libc::SYS_setresuid, 0, 0, 0) != 0 {
            return Err(InitError::last_os("setresuid 0 in user namespace"));
        }
    }
    Ok(())
}

fn setgroups_allowed() -> bool {
    std::fs::read_to_string("/proc/self/setgroups")
        .map(|s| s.trim() != "deny")
        .unwrap_or(true)
}

/// Default dispositions and an empty mask for the program we exec (Rust ignores SIGPIPE).
fn reset_signals() {
    // SAFETY: resetting dispositions and the mask of this single-threaded process.
    unsafe {
        for sig in 1..32 {
            if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                libc::signal(sig, libc::SIG_DFL);
            }
        }
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    }
}

/// Whether the spec asks for a namespace of `kind` (new or joined).
pub fn spec_has_namespace(spec: &Spec, kind: LinuxNamespaceType) -> bool {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|v| v.iter().any(|n| n.typ() == kind))
}
