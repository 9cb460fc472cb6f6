//! The container process's own attributes, applied by the init (or an exec'd process) just
//! before execve: rlimits, user and groups, capabilities, no_new_privs, umask, cwd (checked to be
//! inside the container root, CVE-2024-21626), environment, the PATH lookup with runc's error
//! text, and execve itself.

use crate::capabilities::{self, CapSets};
use oci_spec::runtime::{PosixRlimitType, Process};
use rustix::fd::AsFd;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::init_error::InitError;

type Res<T> = std::result::Result<T, InitError>;

use berth_common::process::DEFAULT_PATH;

fn rlimit_resource(t: PosixRlimitType) -> (libc::__rlimit_resource_t, &'static str) {
    use PosixRlimitType::*;
    match t {
        RlimitCpu => (libc::RLIMIT_CPU, "RLIMIT_CPU"),
        RlimitFsize => (libc::RLIMIT_FSIZE, "RLIMIT_FSIZE"),
        RlimitData => (libc::RLIMIT_DATA, "RLIMIT_DATA"),
        RlimitStack => (libc::RLIMIT_STACK, "RLIMIT_STACK"),
        RlimitCore => (libc::RLIMIT_CORE, "RLIMIT_CORE"),
        RlimitRss => (libc::RLIMIT_RSS, "RLIMIT_RSS"),
        RlimitNproc => (libc::RLIMIT_NPROC, "RLIMIT_NPROC"),
        RlimitNofile => (libc::RLIMIT_NOFILE, "RLIMIT_NOFILE"),
        RlimitMemlock => (libc::RLIMIT_MEMLOCK, "RLIMIT_MEMLOCK"),
        RlimitAs => (libc::RLIMIT_AS, "RLIMIT_AS"),
        RlimitLocks => (libc::RLIMIT_LOCKS, "RLIMIT_LOCKS"),
        RlimitSigpending => (libc::RLIMIT_SIGPENDING, "RLIMIT_SIGPENDING"),
        RlimitMsgqueue => (libc::RLIMIT_MSGQUEUE, "RLIMIT_MSGQUEUE"),
        RlimitNice => (libc::RLIMIT_NICE, "RLIMIT_NICE"),
        RlimitRtprio => (libc::RLIMIT_RTPRIO, "RLIMIT_RTPRIO"),
        RlimitRttime => (libc::RLIMIT_RTTIME, "RLIMIT_RTTIME"),
    }
}

/// Applies the spec's rlimits. Raising a hard limit without CAP_SYS_RESOURCE fails with a
/// message naming the limit.
pub fn apply_rlimits(process: &Process) -> Res<()> {
    for r in process.rlimits().as_deref().unwrap_or(&[]) {
        let (resource, name) = rlimit_resource(r.typ());
        let lim = libc::rlimit {
            rlim_cur: r.soft(),
            rlim_max: r.hard(),
        };
        // SAFETY: setrlimit reads a valid rlimit struct.
        if unsafe { libc::setrlimit(resource, &lim) } != 0 {
            let e = std::io::Error::last_os_error();
            let mut current = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            // SAFETY: getrlimit writes into a valid rlimit struct.
            unsafe { libc::getrlimit(resource, &mut current) };
            let hint = if e.raw_os_error() == Some(libc::EPERM) {
                format!(
                    ": the hard limit cannot be raised above the host's {} without CAP_SYS_RESOURCE",
                    current.rlim_max
                )
            } else {
                String::new()
            };
            return Err(InitError::sys(
                format!(
                    "setting rlimit {name} (soft {}, hard {}){hint}",
                    r.soft(),
                    r.hard()
                ),
                e,
            ));
        }
    }
    Ok(())
}

/// The spec's I/O priority (ioprio_set on this process).
pub fn apply_io_priority(process: &Process) -> Res<()> {
    use oci_spec::runtime::IOPriorityClass;
    let Some(io) = process.io_priority() else {
        return Ok(());
    };
    let class: i64 = match io.class() {
        IOPriorityClass::IoprioClassRt => 1,
        IOPriorityClass::IoprioClassBe => 2,
        IOPriorityClass::IoprioClassIdle => 3,
    };
    let value = (class << 13) | (io.priority() & 0x1fff);
    const IOPRIO_WHO_PROCESS: libc::c_int = 1;
    // SAFETY: ioprio_set(WHO_PROCESS, 0 = self, value) only changes our I/O priority.
    if unsafe { libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, value) } != 0 {
        return Err(InitError::last_os("setting ioPriority"));
    }
    Ok(())
}

/// The kernel's `struct sched_attr` (first version, 48 bytes).
#[repr(C)]
#[derive(Default)]
struct SchedAttr {
    size: u32,
    policy: u32,
    flags: u64,
    nice: i32,
    priority: u32,
    runtime: u64,
    deadline: u64,
    period: u64,
}

/// The spec's scheduler (sched_setattr on this process).
pub fn apply_scheduler(process: &Process) -> Res<()> {
    use oci_spec::runtime::{LinuxSchedulerFlag, LinuxSchedulerPolicy};
    let Some(sched) = process.scheduler() else {
        return Ok(());
    };
    let policy = match sched.policy() {
        LinuxSchedulerPolicy::SchedOther => 0,
        LinuxSchedulerPolicy::SchedFifo => 1,
        LinuxSchedulerPolicy::SchedRr => 2,
        LinuxSchedulerPolicy::SchedBatch => 3,
        LinuxSchedulerPolicy::SchedIso => 4,
        LinuxSchedulerPolicy::SchedIdle => 5,
        LinuxSchedulerPolicy::SchedDeadline => 6,
    };
    let mut flags = 0u64;
    for f in sched.flags().iter().flatten() {
        flags |= match f {
            LinuxSchedulerFlag::SchedResetOnFork => 0x01,
            LinuxSchedulerFlag::SchedFlagReclaim => 0x02,
            LinuxSchedulerFlag::SchedFlagDLOverrun => 0x04,
            LinuxSchedulerFlag::SchedFlagKeepPolicy => 0x08,
            LinuxSchedulerFlag::SchedFlagKeepParams => 0x10,
            LinuxSchedulerFlag::SchedFlagUtilClampMin => 0x20,
            LinuxSchedulerFlag::SchedFlagUtilClampMax => 0x40,
        };
    }
    let attr = SchedAttr {
        size: std::mem::size_of::<SchedAttr>() as u32,
        policy,
        flags,
        nice: sched.nice().unwrap_or(0),
        priority: sched.priority().unwrap_or(0).max(0) as u32,
        runtime: sched.runtime().unwrap_or(0),
        deadline: sched.deadline().unwrap_or(0),
        period: sched.period().unwrap_or(0),
    };
    // SAFETY: sched_setattr(0 = self, attr, 0) reads a valid, correctly sized sched_attr.
    if unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0) } != 0 {
        return Err(InitError::last_os(format!(
            "setting scheduler {:?}",
            sched.policy()
        )));
    }
    Ok(())
}

/// Parses a cpu list ("0-3,6") into a CPU set.
pub fn parse_cpu_list(list: &str) -> Res<libc::cpu_set_t> {
    // SAFETY: cpu_set_t is plain data; all-zero is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let bad = || InitError::Refused(format!("invalid cpu list {list:?}"));
        let (a, b): (usize, usize) = (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
        if a > b || b >= libc::CPU_SETSIZE as usize {
            return Err(bad());
        }
        for cpu in a..=b {
            // SAFETY: `cpu` < CPU_SETSIZE was checked above.
            unsafe { libc::CPU_SET(cpu, &mut set) };
        }
    }
    Ok(set)
}

/// execCPUAffinity: the exec'd process's CPUs. `initial` applies while it is set up, `final`
/// right before exec (which is when it takes effect for the program).
pub fn apply_exec_cpu_affinity(process: &Process, stage_final: bool) -> Res<()> {
    let Some(aff) = process.exec_cpu_affinity() else {
        return Ok(());
    };
    let list = if stage_final {
        aff.cpu_affinity_final()
    } else {
        aff.initial()
    };
    let Some(list) = list.as_deref().filter(|l| !l.is_empty()) else {
        return Ok(());
    };
    let set = parse_cpu_list(list)?;
    // SAFETY: sched_setaffinity(0 = self) reads a valid cpu_set_t of the size passed.
    if unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) } != 0 {
        return Err(InitError::last_os(format!(
            "setting execCPUAffinity {list:?}"
        )));
    }
    Ok(())
}

/// The spec's personality domain (LINUX or LINUX32).
pub fn apply_personality(spec: &oci_spec::runtime::Spec) -> Res<()> {
    use oci_spec::runtime::LinuxPersonalityDomain;
    let Some(p) = spec.linux().as_ref().and_then(|l| l.personality().as_ref()) else {
        return Ok(());
    };
    let persona: libc::c_ulong = match p.domain() {
        LinuxPersonalityDomain::PerLinux => 0x0000,
        LinuxPersonalityDomain::PerLinux32 => 0x0008,
    };
    // SAFETY: personality(2) only changes this process's execution domain.
    if unsafe { libc::personality(persona) } < 0 {
        return Err(InitError::last_os("personality"));
    }
    Ok(())
}

/// Sets no_new_privs.
pub fn set_no_new_privs() -> Res<()> {
    rustix::thread::set_no_new_privs(true).map_err(|e| InitError::sys("setting no_new_privs", e))
}

/// Switches to the process user keeping the spec's capabilities (runc's order).
pub fn switch_user_and_caps(process: &Process, sets: &CapSets, setgroups_allowed: bool) -> Res<()> {
    capabilities::apply_bounding(sets)?;
    rustix::thread::set_keep_capabilities(true)
        .map_err(|e| InitError::sys("PR_SET_KEEPCAPS", e))?;
    let user = process.user();
    if setgroups_allowed {
        let gids: Vec<libc::gid_t> = user.additional_gids().clone().unwrap_or_default();
        // SAFETY: setgroups reads `len` gids from a valid slice.
        if unsafe { libc::setgroups(gids.len(), gids.as_ptr()) } != 0 {
            return Err(InitError::last_os("setgroups"));
        }
    }
    // SAFETY: plain credential syscalls on this (single-threaded) process; the raw syscalls
    // avoid glibc's all-threads broadcast, which is pointless here.
    unsafe {
        if libc::syscall(libc::SYS_setresgid, user.gid(), user.gid(), user.gid()) != 0 {
            return Err(InitError::last_os(format!("setresgid {}", user.gid())));
        }
        if libc::syscall(libc::SYS_setresuid, user.uid(), user.uid(), user.uid()) != 0 {
            return Err(InitError::last_os(format!("setresuid {}", user.uid())));
        }
    }
    rustix::thread::set_keep_capabilities(false)
        .map_err(|e| InitError::sys("PR_SET_KEEPCAPS", e))?;
    capabilities::apply_sets(sets)
}

/// chdir to the spec's cwd and make sure it really is inside the root: a cwd reached through a
/// leaked host fd (CVE-2024-21626) has no path under the root and getcwd reports it.
pub fn enter_cwd(cwd: &Path) -> Res<()> {
    let cwd = if cwd.as_os_str().is_empty() {
        Path::new("/")
    } else {
        cwd
    };
    rustix::process::chdir(cwd).map_err(|e| {
        InitError::sys(
            format!("chdir to cwd ({cwd:?}) set in config.json failed"),
            e,
        )
    })?;
    match rustix::process::getcwd(Vec::new()) {
        Ok(p) if p.as_bytes().starts_with(b"/") => Ok(()),
        _ => Err(InitError::Refused(format!(
            "cwd {cwd:?} is outside the container root (possible fd leak), refusing"
        ))),
    }
}

/// The process environment: the spec's, plus HOME from the container's /etc/passwd (or "/")
/// when missing, as runc does.
pub fn environment(process: &Process) -> Vec<String> {
    let mut env: Vec<String> = process.env().clone().unwrap_or_default();
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        let home = home_of(process.user().uid()).unwrap_or_else(|| "/".to_owned());
        env.push(format!("HOME={home}"));
    }
    env
}

fn home_of(uid: u32) -> Option<String> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 6 && f[2].parse() == Ok(uid)).then(|| f[5].to_owned())
    })
}

/// Why a command cannot be run: runc's message and the errno `execve` would give (ENOENT when
/// nothing is there, EACCES when it is a directory or not executable), from which the engine
/// picks Docker's 127 or 126.
#[derive(Debug, thiserror::Error)]
#[error("exec: {command:?}: {reason}")]
pub struct LookupError {
    pub command: String,
    pub errno: i32,
    reason: String,
}

/// Finds `file` like Go's exec.LookPath with the PATH in `env`, inside this process's root
/// (the container's, once the init has pivoted or an exec'd process has joined its mounts).
pub fn look_path(file: &str, env: &[String]) -> Result<PathBuf, LookupError> {
    let root = rustix::fs::open(
        "/",
        rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .map_err(|e| LookupError {
        command: file.to_owned(),
        errno: e.raw_os_error(),
        reason: format!("opening /: {e}"),
    })?;
    let path = env
        .iter()
        .rev()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH);
    find_executable(root.as_fd(), file, path)
}

/// The one executable lookup of Berth: `file` (or each `path_env` directory joined with it)
/// resolved inside the directory `root` with openat2(RESOLVE_IN_ROOT), so absolute symlinks in
/// an image (`/bin/sh -> /bin/busybox`) lead where they lead in the container, never onto the
/// host. Returns the path as seen inside `root`.
pub fn find_executable(
    root: rustix::fd::BorrowedFd<'_>,
    file: &str,
    path_env: &str,
) -> Result<PathBuf, LookupError> {
    let fail = |errno: i32, reason: String| LookupError {
        command: file.to_owned(),
        errno,
        reason,
    };
    if file.contains('/') {
        return match check_executable_in(root, Path::new(file)) {
            Ok(()) => Ok(PathBuf::from(file)),
            Err(e) => Err(fail(
                e.raw_os_error().unwrap_or(libc::ENOENT),
                format!("stat {file}: {}", os_text(&e)),
            )),
        };
    }
    let mut denied = None;
    for dir in path_env.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let candidate = Path::new(dir).join(file);
        match check_executable_in(root, &candidate) {
            Ok(()) => return Ok(candidate),
            Err(e) if e.raw_os_error() == Some(libc::EACCES) => {
                denied.get_or_insert(candidate);
            }
            Err(_) => {}
        }
    }
    match denied {
        // Go's LookPath (and so Docker) reports a candidate that exists but cannot run.
        Some(c) => Err(fail(
            libc::EACCES,
            format!("stat {}: permission denied", c.display()),
        )),
        None => Err(fail(
            libc::ENOENT,
            "executable file not found in $PATH".to_owned(),
        )),
    }
}

/// Go's wording of an errno ("no such file or directory"), without Rust's "(os error N)".
fn os_text(e: &std::io::Error) -> String {
    let text = e.to_string();
    let text = text.split(" (os error").next().unwrap_or(&text);
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => text.to_owned(),
    }
}

/// Ok when `path` (inside `root`) is a regular file with an execute bit; EACCES when it is a
/// directory or has none; the lookup's errno otherwise.
fn check_executable_in(root: rustix::fd::BorrowedFd<'_>, path: &Path) -> std::io::Result<()> {
    let relative = path.strip_prefix("/").unwrap_or(path);
    let relative = if relative.as_os_str().is_empty() {
        Path::new(".")
    } else {
        relative
    };
    let fd = loop {
        match rustix::fs::openat2(
            root,
            relative,
            rustix::fs::OFlags::PATH | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
            rustix::fs::ResolveFlags::IN_ROOT | rustix::fs::ResolveFlags::NO_MAGICLINKS,
        ) {
            Err(rustix::io::Errno::AGAIN) | Err(rustix::io::Errno::INTR) => continue,
            other => break other?,
        }
    };
    let stat = rustix::fs::fstat(&fd)?;
    let is_dir =
        rustix::fs::FileType::from_raw_mode(stat.st_mode) == rustix::fs::FileType::Directory;
    if !is_dir && stat.st_mode & 0o111 != 0 {
        Ok(())
    } else {
        Err(std::io::Error::from_raw_os_error(libc::EACCES))
    }
}

/// execve; returns only on failure.
pub fn exec(path: &Path, args: &[String], env: &[String]) -> ExecFailure {
    let nul = |what: &str| ExecFailure {
        message: format!(
            "exec {:?}: {what} contains a NUL byte",
            path.display().to_string()
        ),
        errno: libc::EINVAL,
    };
    let Ok(cpath) = CString::new(path.as_os_str().as_bytes()) else {
        return nul("the path");
    };
    let Ok(argv) = args
        .iter()
        .map(|a| CString::new(a.as_bytes()))
        .collect::<Result<Vec<CString>, _>>()
    else {
        return nul("an argument");
    };
    let Ok(envp) = env
        .iter()
        .map(|e| CString::new(e.as_bytes()))
        .collect::<Result<Vec<CString>, _>>()
    else {
        return nul("an environment variable");
    };
    let mut argv_ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_ptrs.push(std::ptr::null());
    let mut envp_ptrs: Vec<*const libc::c_char> = envp.iter().map(|e| e.as_ptr()).collect();
    envp_ptrs.push(std::ptr::null());
    // SAFETY: NUL-terminated strings and null-terminated pointer arrays that outlive the call.
    unsafe { libc::execve(cpath.as_ptr(), argv_ptrs.as_ptr(), envp_ptrs.as_ptr()) };
    let error = std::io::Error::last_os_error();
    ExecFailure {
        message: format!("exec {:?}: {error}", path.display().to_string()),
        errno: error.raw_os_error().unwrap_or(libc::ENOEXEC),
    }
}

/// Why `execve` failed.
#[derive(Debug)]
pub struct ExecFailure {
    pub message: String,
    pub errno: i32,
}

impl ExecFailure {
    /// Docker's exit code for it: 127 when the file is not there, else 126.
    pub fn exit_code(&self) -> i32 {
        if self.errno == libc::ENOENT || self.errno == libc::ENOTDIR {
            127
        } else {
            126
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_bytes_are_refused_before_execve() {
        // The old code turned "a\0b" into "" and ran execve anyway; the path does not exist,
        // so neither version can replace the test process.
        let missing = Path::new("/nonexistent-berth-test");
        for (args, env) in [
            (vec!["x".to_owned(), "a\0b".to_owned()], vec![]),
            (vec!["x".to_owned()], vec!["K=a\0b".to_owned()]),
        ] {
            let failure = exec(missing, &args, &env);
            assert_eq!(failure.errno, libc::EINVAL, "{}", failure.message);
            assert!(failure.message.contains("NUL"), "{}", failure.message);
        }
        let failure = exec(Path::new("/nonexistent\0x"), &["x".to_owned()], &[]);
        assert_eq!(failure.errno, libc::EINVAL);
    }

    #[test]
    fn look_path_messages() {
        let env = vec!["PATH=/nonexistent".to_owned()];
        let err = look_path("x", &env).unwrap_err();
        assert_eq!(
            err.to_string(),
            "exec: \"x\": executable file not found in $PATH"
        );
        assert_eq!(err.errno, libc::ENOENT);
        assert_eq!(
            look_path("sh", &["PATH=/bin".into()]).unwrap(),
            PathBuf::from("/bin/sh")
        );
    }
}
