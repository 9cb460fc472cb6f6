//! `exec`: a new process inside a running container. The runtime joins the container's pid
//! namespace "for children" (setns on itself, restored after), clones, and the child joins the
//! remaining namespaces (user first, mount last), chroots to the init's root, joins the cgroup
//! (written by the runtime), applies the process attributes and execs. The child is a direct
//! child of the caller, which waits for it.
//!
//! CVE-2019-5736: the child is non-dumpable from its first instruction until execve, so
//! container processes cannot open its `/proc/<pid>/exe` (this binary) while it is ours, and
//! it never execs `/proc/self/exe`: it execs the requested program directly.

use crate::cgroup;
use crate::error::{Result, RuntimeError};
use crate::init_error::InitError;
use crate::state::{self, Status};
use crate::sync::{self, tag, SyncSocket};
use crate::{capabilities, console, process, sys, ExecOptions, Runtime};
use oci_spec::runtime::Process;
use rustix::fd::{AsRawFd, OwnedFd, RawFd};
use rustix::fs::{Mode, OFlags};

/// Namespace kinds in join order with their flags.
const KINDS: [(&str, libc::c_int); 8] = [
    ("user", libc::CLONE_NEWUSER),
    ("ipc", libc::CLONE_NEWIPC),
    ("uts", libc::CLONE_NEWUTS),
    ("net", libc::CLONE_NEWNET),
    ("pid", libc::CLONE_NEWPID),
    ("cgroup", libc::CLONE_NEWCGROUP),
    ("time", libc::CLONE_NEWTIME),
    ("mnt", libc::CLONE_NEWNS),
];

struct ExecContext<'a> {
    process: &'a Process,
    sync: SyncSocket,
    runtime_sync_fd: RawFd,
    joins: &'a [(libc::c_int, OwnedFd, String)],
    root: &'a OwnedFd,
    console_socket: Option<OwnedFd>,
    stdio: Option<[RawFd; 3]>,
    preserve_fds: u32,
    seccomp: Option<&'a crate::seccomp::Program>,
}

pub fn exec(rt: &Runtime, id: &str, process: &Process, opts: &ExecOptions) -> Result<i32> {
    let dir = rt.dir(id);
    let st = state::load(&dir, id)?;
    let status = st.status(&dir);
    let paused = status == Status::Paused;
    match status {
        Status::Running | Status::Created => {}
        Status::Paused if opts.ignore_paused => {}
        Status::Paused => {
            return Err(RuntimeError::InvalidState {
                id: id.to_owned(),
                reason: "cannot exec in a paused container".into(),
            })
        }
        _ => {
            return Err(RuntimeError::InvalidState {
                id: id.to_owned(),
                reason: "cannot exec in a stopped container".into(),
            })
        }
    }
    crate::validate::check_user_ids(process)?;
    if process.args().as_ref().is_none_or(|a| a.is_empty()) {
        return Err(RuntimeError::InvalidArgument(
            "exec: process args must not be empty".into(),
        ));
    }
    if process.terminal().unwrap_or(false) && opts.console_socket.is_none() && opts.stdio.is_none()
    {
        return Err(RuntimeError::InvalidArgument(
            "cannot allocate tty if runc will detach without setting console socket".into(),
        ));
    }
    let pid = st.init_pid;
    let mut joins = Vec::new();
    let mut for_children = Vec::new();
    for (kind, flag) in KINDS {
        let theirs = format!("/proc/{pid}/ns/{kind}");
        let ours = format!("/proc/self/ns/{kind}");
        if sys::same_namespace(&theirs, &ours) || !std::path::Path::new(&theirs).exists() {
            continue;
        }
        let fd = rustix::fs::open(
            theirs.as_str(),
            OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| RuntimeError::io(&theirs, e.into()))?;
        if flag == libc::CLONE_NEWPID || flag == libc::CLONE_NEWTIME {
            let own_kind = if flag == libc::CLONE_NEWPID {
                "pid"
            } else {
                "time"
            };
            let own_path = format!("/proc/self/ns/{own_kind}");
            let own = rustix::fs::open(
                own_path.as_str(),
                OFlags::RDONLY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| RuntimeError::io(&own_path, e.into()))?;
            for_children.push((flag, fd, own, theirs));
        } else {
            joins.push((flag, fd, theirs));
        }
    }
    let root_path = format!("/proc/{pid}/root");
    let root = rustix::fs::open(
        root_path.as_str(),
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| RuntimeError::io(&root_path, e.into()))?;
    if !st.init_alive() {
        return Err(RuntimeError::InvalidState {
            id: id.to_owned(),
            reason: "cannot exec in a stopped container".into(),
        });
    }
    let bundle_spec = crate::spec::load_bundle(&st.bundle).ok().map(|b| b.spec);
    let seccomp = match bundle_spec
        .as_ref()
        .and_then(|s| s.linux().as_ref().and_then(|l| l.seccomp().clone()))
    {
        Some(profile) => Some(
            crate::seccomp::compile_cached(&profile, &crate::create::seccomp_cache_dir(&dir))
                .map_err(|e| RuntimeError::Seccomp(e.to_string()))?,
        ),
        None => None,
    };
    let console_socket = match &opts.console_socket {
        Some(path) => Some(OwnedFd::from(
            std::os::unix::net::UnixStream::connect(path).map_err(|e| RuntimeError::io(path, e))?,
        )),
        None => None,
    };
    let cg = cgroup::open(&st.cgroups_path)?;
    let (runtime_end, init_end) = sync::pair().map_err(|e| RuntimeError::sys("socketpair", e))?;

    let mut entered = Vec::new();
    let result = (|| -> Result<i32> {
        for (flag, theirs, own, what) in &for_children {
            sys::setns(theirs, *flag, what)?;
            entered.push((own, *flag));
        }
        let child =
            sys::clone_process(0).map_err(|e| RuntimeError::sys("clone exec process", e))?;
        if child == 0 {
            run_child(ExecContext {
                process,
                sync: SyncSocket(init_end.0.try_clone().unwrap_or_else(|_| {
                    // SAFETY: in the child; a failed dup of a valid fd leaves nothing to do.
                    unsafe { libc::_exit(1) }
                })),
                runtime_sync_fd: runtime_end.0.as_raw_fd(),
                joins: &joins,
                root: &root,
                console_socket: console_socket.as_ref().and_then(|f| f.try_clone().ok()),
                stdio: opts.stdio,
                preserve_fds: opts.preserve_fds,
                seccomp: seccomp.as_ref(),
            });
        }
        Ok(child)
    })();
    for (own, flag) in entered.iter().rev() {
        let _ = sys::setns(*own, *flag, "own namespace (restore)");
    }
    let child = result?;
    drop(init_end);
    drop(console_socket);
    let fail = |e: RuntimeError| {
        // SAFETY: killing and reaping our own child.
        unsafe { libc::kill(child, libc::SIGKILL) };
        let _ = sys::wait_child(child);
        e
    };
    if let Err(e) = cg.add_pid(child) {
        return Err(fail(cgroup::cgroup_error(&st.cgroups_path, e)));
    }
    if let Err(e) = join_sub_cgroups(&cg, &opts.sub_cgroups, child) {
        return Err(fail(e));
    }
    runtime_end
        .send(tag::GO, &child.to_le_bytes())
        .map_err(|e| fail(RuntimeError::sys("sync with exec process", e)))?;
    if paused {
        // --ignore-paused: the child froze when it joined the cgroup and sets itself up only
        // after `resume`; waiting for its exec here would block until then (or forever).
        // Its setup errors go to its own stderr and exit status.
        if let Some(pid_file) = &opts.pid_file {
            crate::create::write_pid_file(pid_file, child)?;
        }
        return Ok(child);
    }
    // Until EOF (the exec succeeded): errors, and the seccomp notify listener for the agent.
    loop {
        match runtime_end.recv_with_fd() {
            Ok(None) => break,
            Ok(Some((tag::SECCOMP_FD, _, Some(fd)))) => {
                let Some(spec) = &bundle_spec else {
                    return Err(fail(RuntimeError::Seccomp(
                        "notify listener without a readable bundle".into(),
                    )));
                };
                crate::create::send_to_seccomp_agent(spec, &st.view(&dir), child, fd)
                    .map_err(fail)?;
            }
            Ok(Some((tag::ERROR, msg, _))) => return Err(fail(crate::sync::init_failed(&msg))),
            Ok(Some((tag::EXEC_FAILED, msg, _))) => {
                return Err(fail(crate::sync::exec_failed(&msg)))
            }
            Ok(Some((t, _, _))) => {
                return Err(fail(RuntimeError::ContainerInit(format!(
                    "unexpected sync message {t}"
                ))))
            }
            Err(e) => return Err(fail(RuntimeError::sys("sync with exec process", e))),
        }
    }
    if let Some(pid_file) = &opts.pid_file {
        crate::create::write_pid_file(pid_file, child)?;
    }
    Ok(child)
}

/// runc's `exec --cgroup`: moves `pid` on into existing sub-cgroups of the container's cgroup.
fn join_sub_cgroups(
    cg: &berth_cgroups::Cgroup,
    subs: &[(Vec<String>, String)],
    pid: i32,
) -> Result<()> {
    for (controllers, sub) in subs {
        let rel = std::path::Path::new(sub.trim_start_matches('/'));
        if rel
            .components()
            .any(|c| !matches!(c, std::path::Component::Normal(_)))
        {
            return Err(RuntimeError::InvalidArgument(format!(
                "invalid sub-cgroup path {sub:?}"
            )));
        }
        let paths = cg.paths();
        let mut matched = false;
        for (controller, dir) in &paths {
            if !controllers.is_empty() && !controllers.iter().any(|c| c == controller) {
                continue;
            }
            matched = true;
            let procs = dir.join(rel).join("cgroup.procs");
            std::fs::write(&procs, pid.to_string()).map_err(|e| RuntimeError::Cgroup {
                path: procs.display().to_string(),
                reason: format!("joining sub-cgroup {sub:?}: {e}"),
            })?;
        }
        if !matched {
            return Err(RuntimeError::InvalidArgument(format!(
                "--cgroup {}:{sub}: no such controller for this container",
                controllers.join(",")
            )));
        }
    }
    Ok(())
}

fn run_child(ctx: ExecContext<'_>) -> ! {
    // SAFETY: as in init.rs: close the runtime's end, become non-dumpable.
    unsafe {
        libc::close(ctx.runtime_sync_fd);
        libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
    }
    let err = match child_setup(&ctx) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    // The errno travels with the message (see `init_error`).
    let tag = if err.is_command_failure() {
        tag::EXEC_FAILED
    } else {
        tag::ERROR
    };
    let _ = ctx.sync.send(tag, &err.encode());
    // SAFETY: leaving the forked child without running the parent's destructors.
    unsafe { libc::_exit(err.exit_code()) }
}

/// Loads the container's seccomp filter; a notify listener goes to the runtime, which hands it
/// to the agent at listenerPath as it does for the init. When the runtime is gone (exec
/// --ignore-paused returns before the process sets itself up) the listener closes and
/// notified syscalls fail with ENOSYS.
fn load_seccomp(ctx: &ExecContext<'_>) -> std::result::Result<(), InitError> {
    let Some(program) = ctx.seccomp else {
        return Ok(());
    };
    if let Some(listener) = program.load_with_listener()? {
        // SAFETY: the kernel just returned this fd to us; we own it.
        let listener = unsafe { <OwnedFd as rustix::fd::FromRawFd>::from_raw_fd(listener) };
        let _ = ctx.sync.send_fd(tag::SECCOMP_FD, &listener);
    }
    Ok(())
}

enum Never {}

fn child_setup(ctx: &ExecContext<'_>) -> std::result::Result<Never, InitError> {
    process::apply_exec_cpu_affinity(ctx.process, false)?;
    match ctx.sync.recv() {
        Ok(Some((tag::GO, _))) => {}
        _ => return Err(InitError::Sync("runtime went away".into())),
    }
    // In the container's cgroup now (the runtime wrote it before GO).
    process::apply_exec_cpu_affinity(ctx.process, true)?;
    for (flag, fd, what) in ctx.joins {
        sys::setns(fd, *flag, what).map_err(InitError::from_runtime)?;
    }
    rustix::process::fchdir(ctx.root).map_err(|e| InitError::sys("entering container root", e))?;
    rustix::process::chroot(".").map_err(|e| InitError::sys("chroot to container root", e))?;
    let p = ctx.process;
    if let Some(sock) = &ctx.console_socket {
        console::setup(sock, p)?;
    } else {
        // A session of its own, as runc gives every process it starts in a container.
        rustix::process::setsid().map_err(|e| InitError::sys("setsid", e))?;
        if let Some(stdio) = ctx.stdio {
            sys::install_stdio(stdio).map_err(|e| InitError::sys("setting up stdio", e))?;
        }
    }
    process::apply_rlimits(p)?;
    process::apply_io_priority(p)?;
    process::apply_scheduler(p)?;
    let nnp = p.no_new_privileges().unwrap_or(false);
    if nnp {
        process::set_no_new_privs()?;
    } else {
        load_seccomp(ctx)?;
    }
    let cwd_done = process::enter_cwd(p.cwd()).is_ok();
    let sets = capabilities::from_spec(p.capabilities().as_ref());
    process::switch_user_and_caps(p, &sets, true)?;
    if !cwd_done {
        process::enter_cwd(p.cwd())?;
    }
    // SAFETY: umask only changes this process's mask.
    unsafe { libc::umask(p.user().umask().unwrap_or(0o022) as libc::mode_t) };
    let env = process::environment(p);
    let args = p.args().clone().unwrap_or_default();
    let Some(arg0) = args.first() else {
        return Err(InitError::Refused("process args must not be empty".into()));
    };
    let path = process::look_path(arg0, &env)?;
    sys::cloexec_from(3 + ctx.preserve_fds)
        .map_err(|e| InitError::sys("marking fds close-on-exec", e))?;
    if nnp {
        load_seccomp(ctx)?;
    }
    // SAFETY: default dispositions and an empty mask for the exec'd program.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    }
    let failure = process::exec(&path, &args, &env);
    Err(InitError::Exec {
        message: failure.message,
        source: std::io::Error::from_raw_os_error(failure.errno),
    })
}
