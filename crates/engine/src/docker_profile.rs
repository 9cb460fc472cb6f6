//! Docker's seccomp profile format (`archMap`, `includes`/`excludes` by capability, architecture
//! and kernel version), Docker's default profile and capability set, and their OCI form for a
//! given capability set as `docker run` computes it.

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompArgBuilder,
    LinuxSeccompFilterFlag, LinuxSeccompOperator, LinuxSyscall,
};
use serde::Deserialize;
use std::collections::BTreeMap;

/// Docker's capability set for containers without `--cap-add`/`--cap-drop`.
pub const DOCKER_DEFAULT_CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// A seccomp profile in Docker's format (`--security-opt seccomp=profile.json`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DockerProfile {
    pub default_action: LinuxSeccompAction,
    #[serde(default)]
    pub default_errno_ret: Option<u32>,
    /// Plain architecture list (older profiles); `arch_map` wins when both are present.
    #[serde(default)]
    pub architectures: Vec<Arch>,
    #[serde(default)]
    pub arch_map: Vec<DockerArchMap>,
    #[serde(default)]
    pub flags: Vec<LinuxSeccompFilterFlag>,
    #[serde(default)]
    pub syscalls: Vec<DockerSyscall>,
}

/// An architecture and the sub-architectures whose syscalls a process of it may make.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DockerArchMap {
    pub architecture: Arch,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub sub_architectures: Vec<Arch>,
}

/// One rule of a Docker profile: an OCI rule plus conditions on whether it applies.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DockerSyscall {
    /// Deprecated single-name form.
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub names: Vec<String>,
    pub action: LinuxSeccompAction,
    #[serde(default)]
    pub errno_ret: Option<u32>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub args: Vec<LinuxSeccompArg>,
    #[serde(default)]
    pub includes: DockerFilter,
    #[serde(default)]
    pub excludes: DockerFilter,
    #[serde(default)]
    pub comment: Option<String>,
}

/// Conditions: capabilities, Go architecture names ("amd64", "arm64", …), minimum kernel.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DockerFilter {
    #[serde(default, deserialize_with = "null_as_empty")]
    pub caps: Vec<String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub arches: Vec<String>,
    #[serde(default)]
    pub min_kernel: Option<String>,
}

pub(crate) fn null_as_empty<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

/// What a Docker profile is translated for: the container's bounding capabilities, the Go name
/// of the architecture, and the running kernel's (major, minor).
#[derive(Debug, Clone)]
pub struct DockerTarget {
    pub capabilities: Vec<String>,
    pub go_arch: String,
    pub kernel: (u32, u32),
}

impl DockerTarget {
    /// This host's architecture and kernel, with the given capabilities.
    pub fn host(capabilities: &[String]) -> DockerTarget {
        let release = rustix::system::uname()
            .release()
            .to_string_lossy()
            .into_owned();
        DockerTarget {
            capabilities: capabilities.to_vec(),
            go_arch: go_arch(std::env::consts::ARCH).to_string(),
            kernel: parse_kernel_version(&release).unwrap_or((0, 0)),
        }
    }
}

/// Rust target arch -> Go GOARCH name, which Docker profiles use in includes/excludes.
pub(crate) fn go_arch(rust_arch: &str) -> &str {
    match rust_arch {
        "x86_64" => "amd64",
        "x86" => "x86",
        "aarch64" => "arm64",
        "arm" => "arm",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        "loongarch64" => "loong64",
        "mips64" => "mips64",
        other => other,
    }
}

/// The seccomp architecture of a Go arch name, for picking the profile's archMap entry.
pub(crate) fn native_arch(go_arch: &str) -> Option<Arch> {
    Some(match go_arch {
        "amd64" => Arch::ScmpArchX86_64,
        "x86" | "386" => Arch::ScmpArchX86,
        "arm64" => Arch::ScmpArchAarch64,
        "arm" => Arch::ScmpArchArm,
        "ppc64le" => Arch::ScmpArchPpc64le,
        "s390x" => Arch::ScmpArchS390x,
        "riscv64" => Arch::ScmpArchRiscv64,
        "loong64" => Arch::ScmpArchLoongarch64,
        "mips64" => Arch::ScmpArchMips64,
        _ => return None,
    })
}

/// "6.18.44-fc-v669" -> (6, 18).
pub(crate) fn parse_kernel_version(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

pub(crate) fn has_cap(caps: &[String], cap: &str) -> bool {
    caps.iter().any(|c| c.eq_ignore_ascii_case(cap))
}

impl DockerProfile {
    /// Parse a profile in Docker's JSON format.
    pub fn from_json(json: &str) -> Result<DockerProfile, serde_json::Error> {
        serde_json::from_str(json)
    }

    /// Translate to an OCI profile for `target`, as Docker does: keep the archMap entry of the
    /// native architecture (with its sub-architectures) and the rules whose includes all hold
    /// and whose excludes do not.
    pub fn to_oci(&self, target: &DockerTarget) -> LinuxSeccomp {
        let native = native_arch(&target.go_arch);
        let mut architectures: Vec<Arch> = if self.arch_map.is_empty() {
            self.architectures.clone()
        } else {
            self.arch_map
                .iter()
                .filter(|m| Some(m.architecture) == native)
                .flat_map(|m| std::iter::once(m.architecture).chain(m.sub_architectures.clone()))
                .collect()
        };
        architectures.dedup();
        let kernel_at_least = |v: &Option<String>| {
            v.as_deref()
                .and_then(parse_kernel_version)
                .is_none_or(|min| target.kernel >= min)
        };
        let mut syscalls = Vec::new();
        for rule in &self.syscalls {
            let ex = &rule.excludes;
            if ex.arches.contains(&target.go_arch)
                || ex.caps.iter().any(|c| has_cap(&target.capabilities, c))
                || (ex.min_kernel.is_some() && kernel_at_least(&ex.min_kernel))
            {
                continue;
            }
            let inc = &rule.includes;
            if (!inc.arches.is_empty() && !inc.arches.contains(&target.go_arch))
                || !inc.caps.iter().all(|c| has_cap(&target.capabilities, c))
                || !kernel_at_least(&inc.min_kernel)
            {
                continue;
            }
            let mut names = rule.names.clone();
            if let Some(n) = &rule.name {
                names.push(n.clone());
            }
            let mut s = LinuxSyscall::default();
            s.set_names(names);
            s.set_action(rule.action);
            s.set_errno_ret(rule.errno_ret);
            s.set_args((!rule.args.is_empty()).then(|| rule.args.clone()));
            syscalls.push(s);
        }
        let mut out = LinuxSeccomp::default();
        out.set_default_action(self.default_action);
        out.set_default_errno_ret(self.default_errno_ret);
        out.set_architectures((!architectures.is_empty()).then_some(architectures));
        out.set_flags((!self.flags.is_empty()).then(|| self.flags.clone()));
        out.set_syscalls(Some(syscalls));
        out
    }
}

/// Docker's default seccomp profile, translated for Docker's default capability set.
pub fn docker_default_profile() -> LinuxSeccomp {
    let caps: Vec<String> = DOCKER_DEFAULT_CAPABILITIES
        .iter()
        .map(|c| c.to_string())
        .collect();
    docker_profile_for_capabilities(&caps)
}

/// Docker's default seccomp profile translated for a container whose bounding set is
/// `capabilities` ("CAP_SYS_ADMIN", …), as Docker does for `--cap-add`.
pub fn docker_profile_for_capabilities(capabilities: &[String]) -> LinuxSeccomp {
    docker_default().to_oci(&DockerTarget::host(capabilities))
}

/// Syscalls Docker's default profile allows unconditionally.
#[rustfmt::skip]
pub(crate) const DOCKER_ALLOWED: &[&str] = &[
    "accept", "accept4", "access", "adjtimex", "alarm", "bind", "brk", "capget", "capset", "chdir",
    "chmod", "chown", "chown32", "clock_adjtime", "clock_adjtime64", "clock_getres",
    "clock_getres_time64", "clock_gettime", "clock_gettime64", "clock_nanosleep",
    "clock_nanosleep_time64", "close", "close_range", "connect", "copy_file_range", "creat", "dup",
    "dup2", "dup3", "epoll_create", "epoll_create1", "epoll_ctl", "epoll_ctl_old", "epoll_pwait",
    "epoll_pwait2", "epoll_wait", "epoll_wait_old", "eventfd", "eventfd2", "execve", "execveat",
    "exit", "exit_group", "faccessat", "faccessat2", "fadvise64", "fadvise64_64", "fallocate",
    "fanotify_mark", "fchdir", "fchmod", "fchmodat", "fchown", "fchown32", "fchownat", "fcntl",
    "fcntl64", "fdatasync", "fgetxattr", "flistxattr", "flock", "fork", "fremovexattr",
    "fsetxattr", "fstat", "fstat64", "fstatat64", "fstatfs", "fstatfs64", "fsync", "ftruncate",
    "ftruncate64", "futex", "futex_time64", "futex_waitv", "futimesat", "getcpu", "getcwd",
    "getdents", "getdents64", "getegid", "getegid32", "geteuid", "geteuid32", "getgid", "getgid32",
    "getgroups", "getgroups32", "getitimer", "getpeername", "getpgid", "getpgrp", "getpid",
    "getppid", "getpriority", "getrandom", "getresgid", "getresgid32", "getresuid", "getresuid32",
    "getrlimit", "get_robust_list", "getrusage", "getsid", "getsockname", "getsockopt",
    "get_thread_area", "gettid", "gettimeofday", "getuid", "getuid32", "getxattr",
    "inotify_add_watch", "inotify_init", "inotify_init1", "inotify_rm_watch", "io_cancel", "ioctl",
    "io_destroy", "io_getevents", "io_pgetevents", "io_pgetevents_time64", "ioprio_get",
    "ioprio_set", "io_setup", "io_submit", "io_uring_enter", "io_uring_register", "io_uring_setup",
    "ipc", "kill", "landlock_add_rule", "landlock_create_ruleset", "landlock_restrict_self",
    "lchown", "lchown32", "lgetxattr", "link", "linkat", "listen", "listxattr", "llistxattr",
    "_llseek", "lremovexattr", "lseek", "lsetxattr", "lstat", "lstat64", "madvise", "membarrier",
    "memfd_create", "memfd_secret", "mincore", "mkdir", "mkdirat", "mknod", "mknodat", "mlock",
    "mlock2", "mlockall", "mmap", "mmap2", "mprotect", "mq_getsetattr", "mq_notify", "mq_open",
    "mq_timedreceive", "mq_timedreceive_time64", "mq_timedsend", "mq_timedsend_time64",
    "mq_unlink", "mremap", "msgctl", "msgget", "msgrcv", "msgsnd", "msync", "munlock",
    "munlockall", "munmap", "name_to_handle_at", "nanosleep", "newfstatat", "_newselect", "open",
    "openat", "openat2", "pause", "pidfd_open", "pidfd_send_signal", "pipe", "pipe2", "pkey_alloc",
    "pkey_free", "pkey_mprotect", "poll", "ppoll", "ppoll_time64", "prctl", "pread64", "preadv",
    "preadv2", "prlimit64", "process_mrelease", "pselect6", "pselect6_time64", "pwrite64",
    "pwritev", "pwritev2", "read", "readahead", "readlink", "readlinkat", "readv", "recv",
    "recvfrom", "recvmmsg", "recvmmsg_time64", "recvmsg", "remap_file_pages", "removexattr",
    "rename", "renameat", "renameat2", "restart_syscall", "rmdir", "rseq", "rt_sigaction",
    "rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo", "rt_sigreturn", "rt_sigsuspend",
    "rt_sigtimedwait", "rt_sigtimedwait_time64", "rt_tgsigqueueinfo", "sched_getaffinity",
    "sched_getattr", "sched_getparam", "sched_get_priority_max", "sched_get_priority_min",
    "sched_getscheduler", "sched_rr_get_interval", "sched_rr_get_interval_time64",
    "sched_setaffinity", "sched_setattr", "sched_setparam", "sched_setscheduler", "sched_yield",
    "seccomp", "select", "semctl", "semget", "semop", "semtimedop", "semtimedop_time64", "send",
    "sendfile", "sendfile64", "sendmmsg", "sendmsg", "sendto", "setfsgid", "setfsgid32",
    "setfsuid", "setfsuid32", "setgid", "setgid32", "setgroups", "setgroups32", "setitimer",
    "setpgid", "setpriority", "setregid", "setregid32", "setresgid", "setresgid32", "setresuid",
    "setresuid32", "setreuid", "setreuid32", "setrlimit", "set_robust_list", "setsid",
    "setsockopt", "set_thread_area", "set_tid_address", "setuid", "setuid32", "setxattr", "shmat",
    "shmctl", "shmdt", "shmget", "shutdown", "sigaltstack", "signalfd", "signalfd4", "sigprocmask",
    "sigreturn", "socketcall", "socketpair", "splice", "stat", "stat64", "statfs", "statfs64",
    "statx", "symlink", "symlinkat", "sync", "sync_file_range", "syncfs", "sysinfo", "tee",
    "tgkill", "time", "timer_create", "timer_delete", "timer_getoverrun", "timer_gettime",
    "timer_gettime64", "timer_settime", "timer_settime64", "timerfd_create", "timerfd_gettime",
    "timerfd_gettime64", "timerfd_settime", "timerfd_settime64", "times", "tkill", "truncate",
    "truncate64", "ugetrlimit", "umask", "uname", "unlink", "unlinkat", "utime", "utimensat",
    "utimensat_time64", "utimes", "vfork", "vmsplice", "wait4", "waitid", "waitpid", "write",
    "writev",
];

/// The CLONE_NEW* namespace flags: unprivileged clone() may not use any of them.
pub(crate) const CLONE_NAMESPACE_FLAGS: u64 = 0x7E02_0000;

/// Docker's default profile in Docker's format (errno EPERM by default, an allow list, and
/// rules that depend on capabilities, architecture and kernel version).
pub fn docker_default() -> DockerProfile {
    use Arch::*;
    let allow = LinuxSeccompAction::ScmpActAllow;
    let names = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let filter = |caps: &[&str], arches: &[&str], min_kernel: Option<&str>| DockerFilter {
        caps: names(caps),
        arches: names(arches),
        min_kernel: min_kernel.map(str::to_string),
    };
    let rule = |n: &[&str], includes: DockerFilter| DockerSyscall {
        names: names(n),
        action: allow,
        includes,
        ..Default::default()
    };
    let arg = |index: usize, value: u64, op: LinuxSeccompOperator| {
        LinuxSeccompArgBuilder::default()
            .index(index)
            .value(value)
            .op(op)
            .build()
            .unwrap_or_default()
    };
    let for_cap = |n: &[&str], cap: &str| rule(n, filter(&[cap], &[], None));
    let for_arches = |n: &[&str], arches: &[&str]| rule(n, filter(&[], arches, None));

    let mut syscalls = vec![
        rule(DOCKER_ALLOWED, DockerFilter::default()),
        rule(
            &["process_vm_readv", "process_vm_writev", "ptrace"],
            filter(&[], &[], Some("4.8")),
        ),
        DockerSyscall {
            args: vec![arg(
                0,
                libc::AF_VSOCK as u64,
                LinuxSeccompOperator::ScmpCmpNe,
            )],
            ..rule(&["socket"], DockerFilter::default())
        },
    ];
    // personality(2) only with the harmless personas: PER_LINUX, PER_LINUX32, UNAME26 variants
    // and the query value 0xffffffff.
    for persona in [0u64, 0x8, 0x20000, 0x20008, 0xffff_ffff] {
        syscalls.push(DockerSyscall {
            args: vec![arg(0, persona, LinuxSeccompOperator::ScmpCmpEq)],
            ..rule(&["personality"], DockerFilter::default())
        });
    }
    syscalls.extend([
        for_arches(&["sync_file_range2", "swapcontext"], &["ppc64le"]),
        for_arches(
            &[
                "arm_fadvise64_64",
                "arm_sync_file_range",
                "sync_file_range2",
                "breakpoint",
                "cacheflush",
                "set_tls",
            ],
            &["arm", "arm64"],
        ),
        for_arches(&["arch_prctl"], &["amd64", "x32"]),
        for_arches(&["modify_ldt"], &["amd64", "x32", "x86"]),
        for_arches(
            &[
                "s390_pci_mmio_read",
                "s390_pci_mmio_write",
                "s390_runtime_instr",
            ],
            &["s390", "s390x"],
        ),
        for_arches(&["riscv_flush_icache"], &["riscv64"]),
        for_cap(&["open_by_handle_at"], "CAP_DAC_READ_SEARCH"),
        for_cap(
            &[
                "bpf",
                "clone",
                "clone3",
                "fanotify_init",
                "fsconfig",
                "fsmount",
                "fsopen",
                "fspick",
                "lookup_dcookie",
                "mount",
                "mount_setattr",
                "move_mount",
                "open_tree",
                "perf_event_open",
                "quotactl",
                "quotactl_fd",
                "setdomainname",
                "sethostname",
                "setns",
                "syslog",
                "umount",
                "umount2",
                "unshare",
            ],
            "CAP_SYS_ADMIN",
        ),
        // Without CAP_SYS_ADMIN: clone() without namespace flags (s390 swaps the first two
        // arguments), and clone3 fails with ENOSYS so that libcs fall back to clone().
        DockerSyscall {
            args: vec![arg(
                0,
                CLONE_NAMESPACE_FLAGS,
                LinuxSeccompOperator::ScmpCmpMaskedEq,
            )],
            excludes: filter(&["CAP_SYS_ADMIN"], &["s390", "s390x"], None),
            ..rule(&["clone"], DockerFilter::default())
        },
        DockerSyscall {
            args: vec![arg(
                1,
                CLONE_NAMESPACE_FLAGS,
                LinuxSeccompOperator::ScmpCmpMaskedEq,
            )],
            excludes: filter(&["CAP_SYS_ADMIN"], &[], None),
            ..rule(&["clone"], filter(&[], &["s390", "s390x"], None))
        },
        DockerSyscall {
            action: LinuxSeccompAction::ScmpActErrno,
            errno_ret: Some(libc::ENOSYS as u32),
            excludes: filter(&["CAP_SYS_ADMIN"], &[], None),
            ..rule(&["clone3"], DockerFilter::default())
        },
        for_cap(&["reboot"], "CAP_SYS_BOOT"),
        for_cap(&["chroot"], "CAP_SYS_CHROOT"),
        for_cap(
            &["delete_module", "init_module", "finit_module"],
            "CAP_SYS_MODULE",
        ),
        for_cap(&["acct"], "CAP_SYS_PACCT"),
        for_cap(
            &[
                "kcmp",
                "pidfd_getfd",
                "process_madvise",
                "process_vm_readv",
                "process_vm_writev",
                "ptrace",
            ],
            "CAP_SYS_PTRACE",
        ),
        for_cap(&["iopl", "ioperm"], "CAP_SYS_RAWIO"),
        for_cap(
            &["settimeofday", "stime", "clock_settime", "clock_settime64"],
            "CAP_SYS_TIME",
        ),
        for_cap(&["vhangup"], "CAP_SYS_TTY_CONFIG"),
        for_cap(
            &[
                "get_mempolicy",
                "mbind",
                "set_mempolicy",
                "set_mempolicy_home_node",
            ],
            "CAP_SYS_NICE",
        ),
        for_cap(&["syslog"], "CAP_SYSLOG"),
        for_cap(&["bpf"], "CAP_BPF"),
        for_cap(&["perf_event_open"], "CAP_PERFMON"),
    ]);
    let map = |a: Arch, subs: &[Arch]| DockerArchMap {
        architecture: a,
        sub_architectures: subs.to_vec(),
    };
    DockerProfile {
        default_action: LinuxSeccompAction::ScmpActErrno,
        default_errno_ret: Some(libc::EPERM as u32),
        architectures: Vec::new(),
        arch_map: vec![
            map(ScmpArchX86_64, &[ScmpArchX86, ScmpArchX32]),
            map(ScmpArchAarch64, &[ScmpArchArm]),
            map(ScmpArchMips64, &[ScmpArchMips, ScmpArchMips64n32]),
            map(ScmpArchMips64n32, &[ScmpArchMips, ScmpArchMips64]),
            map(ScmpArchMipsel64, &[ScmpArchMipsel, ScmpArchMipsel64n32]),
            map(ScmpArchMipsel64n32, &[ScmpArchMipsel, ScmpArchMipsel64]),
            map(ScmpArchS390x, &[ScmpArchS390]),
            map(ScmpArchRiscv64, &[]),
        ],
        flags: Vec::new(),
        syscalls,
    }
}

/// Names of every syscall an OCI profile allows outright (for tests and `inspect`).
pub fn allowed_syscalls(profile: &LinuxSeccomp) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for s in profile.syscalls().iter().flatten() {
        if s.action() == LinuxSeccompAction::ScmpActAllow {
            for n in s.names() {
                *out.entry(n.clone()).or_insert(0) += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
