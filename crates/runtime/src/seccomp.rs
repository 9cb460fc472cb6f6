//! Seccomp: compiles an OCI `linux.seccomp` profile to a classic BPF program before fork (with
//! libseccomp, which allocates), and loads the prebuilt program in the container's init right
//! before exec with one async-signal-safe seccomp(2) call.
//!
//! Also owns Docker's seccomp profile format (`archMap`, `includes`/`excludes` by capability,
//! architecture and kernel version) and Docker's default profile, and turns them into an OCI
//! profile for a given capability set the way Docker does for `docker run`.
//!
//! Must not: set `no_new_privs` (the caller's business), log from [`Program::load`], or allocate
//! after fork.

use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};
use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompArgBuilder,
    LinuxSeccompFilterFlag, LinuxSeccompOperator, LinuxSyscall,
};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::str::FromStr;

/// Errors compiling or loading a seccomp profile.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    /// libseccomp rejected part of the profile.
    #[error("seccomp {what}: {source}")]
    Libseccomp {
        what: String,
        source: libseccomp::error::SeccompError,
    },
    /// The profile asks for something this runtime cannot do.
    #[error("seccomp profile: {0}")]
    Unsupported(String),
    /// Exporting the BPF program from libseccomp failed.
    #[error("export seccomp BPF: {0}")]
    Export(std::io::Error),
    /// The kernel refused the filter.
    #[error("load seccomp filter: {0}")]
    Load(std::io::Error),
    /// A Docker-format profile could not be parsed.
    #[error("parse seccomp profile JSON: {0}")]
    Json(serde_json::Error),
}

fn scmp(what: impl Into<String>) -> impl FnOnce(libseccomp::error::SeccompError) -> SeccompError {
    let what = what.into();
    move |source| SeccompError::Libseccomp { what, source }
}

// Kernel ABI constants (linux/seccomp.h); libc does not export all of them on every target.
const SECCOMP_SET_MODE_FILTER: libc::c_ulong = 1;
const SECCOMP_FILTER_FLAG_TSYNC: libc::c_ulong = 1 << 0;
const SECCOMP_FILTER_FLAG_LOG: libc::c_ulong = 1 << 1;
const SECCOMP_FILTER_FLAG_SPEC_ALLOW: libc::c_ulong = 1 << 2;
const SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV: libc::c_ulong = 1 << 5;
const SECCOMP_FILTER_FLAG_NEW_LISTENER: libc::c_ulong = 1 << 3;
/// BPF_MAXINSNS: the kernel refuses longer classic BPF programs.
const BPF_MAX_INSNS: usize = 4096;

/// A compiled seccomp filter, ready to load with a single syscall.
#[derive(Debug, Clone)]
pub struct Program {
    filter: Vec<libc::sock_filter>,
    flags: libc::c_ulong,
    skipped: Vec<String>,
}

impl Program {
    /// Install the filter on the calling thread. Async-signal-safe: one seccomp(2) syscall on
    /// the prebuilt program, no allocation, no locks. The caller sets `no_new_privs` (or holds
    /// CAP_SYS_ADMIN) beforehand.
    pub fn load(&self) -> Result<(), SeccompError> {
        if let Some(fd) = self.load_with_listener()? {
            // Nobody to hand the listener to (exec): notified syscalls then fail with ENOSYS.
            // SAFETY: closing the fd the kernel just gave us.
            unsafe { libc::close(fd) };
        }
        Ok(())
    }

    /// Whether the filter has SCMP_ACT_NOTIFY rules (loading it yields a listener fd).
    pub fn notifies(&self) -> bool {
        self.flags & SECCOMP_FILTER_FLAG_NEW_LISTENER != 0
    }

    /// [`Program::load`], returning the user-notification listener fd when the filter has
    /// SCMP_ACT_NOTIFY rules. Async-signal-safe as `load`.
    pub fn load_with_listener(&self) -> Result<Option<libc::c_int>, SeccompError> {
        let prog = libc::sock_fprog {
            // compile() guarantees len <= BPF_MAX_INSNS, which fits u16.
            len: self.filter.len() as libc::c_ushort,
            filter: self.filter.as_ptr().cast_mut(),
        };
        // SAFETY: `prog` points at `self.filter`, which outlives the call; the kernel copies the
        // program and does not keep the pointer.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                SECCOMP_SET_MODE_FILTER,
                self.flags,
                &prog as *const libc::sock_fprog,
            )
        };
        if rc < 0 {
            // An Os error is a plain errno value: building it does not allocate.
            return Err(SeccompError::Load(std::io::Error::last_os_error()));
        }
        Ok(self.notifies().then_some(rc as libc::c_int))
    }

    /// Number of BPF instructions.
    pub fn len(&self) -> usize {
        self.filter.len()
    }

    /// Whether the program is empty (never true for a compiled profile).
    pub fn is_empty(&self) -> bool {
        self.filter.is_empty()
    }

    /// seccomp(2) flags the program is loaded with (SECCOMP_FILTER_FLAG_*).
    pub fn flags(&self) -> libc::c_ulong {
        self.flags
    }

    /// Syscall names in the profile this libseccomp does not know; they were left out (runc
    /// logs these at debug level and carries on, and so should the caller).
    pub fn skipped_syscalls(&self) -> &[String] {
        &self.skipped
    }
}

fn action_of(
    action: LinuxSeccompAction,
    errno_ret: Option<u32>,
) -> Result<ScmpAction, SeccompError> {
    let errno = || errno_ret.map_or(libc::EPERM, |e| e as i32);
    Ok(match action {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            ScmpAction::KillThread
        }
        LinuxSeccompAction::ScmpActKillProcess => ScmpAction::KillProcess,
        LinuxSeccompAction::ScmpActTrap => ScmpAction::Trap,
        LinuxSeccompAction::ScmpActErrno => ScmpAction::Errno(errno()),
        LinuxSeccompAction::ScmpActTrace => ScmpAction::Trace(
            u16::try_from(errno()).map_err(|_| SeccompError::Unsupported("trace value".into()))?,
        ),
        LinuxSeccompAction::ScmpActLog => ScmpAction::Log,
        LinuxSeccompAction::ScmpActAllow => ScmpAction::Allow,
        LinuxSeccompAction::ScmpActNotify => ScmpAction::Notify,
    })
}

fn compare_of(arg: &LinuxSeccompArg) -> Result<ScmpArgCompare, SeccompError> {
    let index = u32::try_from(arg.index())
        .ok()
        .filter(|i| *i < 6)
        .ok_or_else(|| SeccompError::Unsupported(format!("argument index {}", arg.index())))?;
    let (op, datum) = match arg.op() {
        LinuxSeccompOperator::ScmpCmpNe => (ScmpCompareOp::NotEqual, arg.value()),
        LinuxSeccompOperator::ScmpCmpLt => (ScmpCompareOp::Less, arg.value()),
        LinuxSeccompOperator::ScmpCmpLe => (ScmpCompareOp::LessOrEqual, arg.value()),
        LinuxSeccompOperator::ScmpCmpEq => (ScmpCompareOp::Equal, arg.value()),
        LinuxSeccompOperator::ScmpCmpGe => (ScmpCompareOp::GreaterEqual, arg.value()),
        LinuxSeccompOperator::ScmpCmpGt => (ScmpCompareOp::Greater, arg.value()),
        // OCI: `value` is the mask, `valueTwo` the value the masked argument must equal.
        LinuxSeccompOperator::ScmpCmpMaskedEq => (
            ScmpCompareOp::MaskedEqual(arg.value()),
            arg.value_two().unwrap_or(0),
        ),
    };
    Ok(ScmpArgCompare::new(index, op, datum))
}

fn flag_bits(flags: &[LinuxSeccompFilterFlag]) -> libc::c_ulong {
    flags.iter().fold(0, |acc, f| {
        acc | match f {
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => SECCOMP_FILTER_FLAG_LOG,
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => SECCOMP_FILTER_FLAG_TSYNC,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => SECCOMP_FILTER_FLAG_SPEC_ALLOW,
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => {
                SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
            }
        }
    })
}

/// Add one OCI syscall rule for one syscall. Conditions on distinct arguments are ANDed in one
/// rule; when an argument index repeats, each condition becomes its own rule (OR), as runc does.
fn add_rule(
    ctx: &mut ScmpFilterContext,
    name: &str,
    syscall: ScmpSyscall,
    action: ScmpAction,
    args: &[LinuxSeccompArg],
) -> Result<(), SeccompError> {
    if args.is_empty() {
        return ctx
            .add_rule(action, syscall)
            .map(drop)
            .map_err(scmp(format!("rule for {name}")));
    }
    let conds = args.iter().map(compare_of).collect::<Result<Vec<_>, _>>()?;
    let mut seen = [false; 6];
    let repeated = args
        .iter()
        .any(|a| std::mem::replace(&mut seen[a.index().min(5)], true));
    if repeated {
        for c in conds {
            ctx.add_rule_conditional(action, syscall, &[c])
                .map_err(scmp(format!("rule for {name}")))?;
        }
    } else {
        ctx.add_rule_conditional(action, syscall, &conds)
            .map_err(scmp(format!("rule for {name}")))?;
    }
    Ok(())
}

/// Compile an OCI seccomp profile to BPF. Call before fork: libseccomp allocates.
pub fn compile(profile: &LinuxSeccomp) -> Result<Program, SeccompError> {
    if profile.default_action() == LinuxSeccompAction::ScmpActNotify {
        return Err(SeccompError::Unsupported(
            "SCMP_ACT_NOTIFY cannot be the default action".into(),
        ));
    }
    let notifies = profile
        .syscalls()
        .iter()
        .flatten()
        .any(|r| r.action() == LinuxSeccompAction::ScmpActNotify);
    if notifies && profile.listener_path().is_none() {
        return Err(SeccompError::Unsupported(
            "SCMP_ACT_NOTIFY needs linux.seccomp.listenerPath (the agent that answers)".into(),
        ));
    }
    let default = action_of(profile.default_action(), profile.default_errno_ret())?;
    let mut ctx = ScmpFilterContext::new(default).map_err(scmp("new filter"))?;
    // The caller decides about no_new_privs; the exported program does not depend on it.
    ctx.set_ctl_nnp(false)
        .map_err(scmp("disable NNP control"))?;
    for arch in profile.architectures().iter().flatten() {
        if *arch == Arch::ScmpArchNative {
            continue;
        }
        let name = arch.to_string();
        let a = ScmpArch::from_str(&name).map_err(scmp(format!("architecture {name}")))?;
        if !ctx
            .is_arch_present(a)
            .map_err(scmp(format!("architecture {name}")))?
        {
            ctx.add_arch(a)
                .map_err(scmp(format!("add architecture {name}")))?;
        }
    }
    let mut skipped = Vec::new();
    for rule in profile.syscalls().iter().flatten() {
        let action = action_of(rule.action(), rule.errno_ret())?;
        if action == default {
            // libseccomp refuses rules that repeat the default action; they are no-ops anyway.
            continue;
        }
        let args = rule.args().as_deref().unwrap_or(&[]);
        for name in rule.names() {
            let Ok(syscall) = ScmpSyscall::from_name(name) else {
                if !skipped.contains(name) {
                    skipped.push(name.clone());
                }
                continue;
            };
            add_rule(&mut ctx, name, syscall, action, args)?;
        }
    }
    let mut filter = export(&ctx)?;
    if profile.default_action() == LinuxSeccompAction::ScmpActErrno {
        filter = with_enosys_stub(filter, profile);
    }
    if filter.is_empty() || filter.len() > BPF_MAX_INSNS {
        return Err(SeccompError::Unsupported(format!(
            "compiled filter has {} instructions (kernel limit {BPF_MAX_INSNS})",
            filter.len()
        )));
    }
    let mut flags = flag_bits(profile.flags().as_deref().unwrap_or(&[]));
    if notifies {
        flags |= SECCOMP_FILTER_FLAG_NEW_LISTENER;
    }
    Ok(Program {
        filter,
        flags,
        skipped,
    })
}

/// What a cache file records next to the BPF: everything the program depends on, compared
/// exactly on lookup so that a stale or colliding file is never used.
#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct CacheHeader {
    profile: LinuxSeccomp,
    libseccomp: String,
    arch: String,
    flags: libc::c_ulong,
    skipped: Vec<String>,
}

fn libseccomp_version() -> String {
    libseccomp::ScmpVersion::current()
        .map(|v| format!("{}.{}.{}", v.major, v.minor, v.micro))
        .unwrap_or_default()
}

/// [`compile`], with the result kept in `cache_dir` and reused when the same profile is compiled
/// again by the same libseccomp. libseccomp needs ~12 ms for Docker's default profile with its
/// three x86 architectures, half the time a whole `runc run` takes; a cache hit costs one small
/// file read. Cache trouble is never fatal: it falls back to compiling.
pub fn compile_cached(
    profile: &LinuxSeccomp,
    cache_dir: &std::path::Path,
) -> Result<Program, SeccompError> {
    use std::hash::{Hash, Hasher};
    let Ok(profile_json) = serde_json::to_string(profile) else {
        return compile(profile);
    };
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    profile_json.hash(&mut hasher);
    let libseccomp = libseccomp_version();
    libseccomp.hash(&mut hasher);
    // Bumped whenever compile() changes the program it makes for the same profile.
    "program-v2-enosys-stub".hash(&mut hasher);
    let path = cache_dir.join(format!("seccomp-{:016x}.bpf", hasher.finish()));
    if let Some(program) = read_cache(&path, profile, &libseccomp) {
        return Ok(program);
    }
    let program = compile(profile)?;
    write_cache(&path, profile, &libseccomp, &program);
    Ok(program)
}

fn read_cache(path: &std::path::Path, profile: &LinuxSeccomp, libseccomp: &str) -> Option<Program> {
    let bytes = std::fs::read(path).ok()?;
    let newline = bytes.iter().position(|b| *b == b'\n')?;
    let header: CacheHeader = serde_json::from_slice(&bytes[..newline]).ok()?;
    if header.profile != *profile
        || header.libseccomp != libseccomp
        || header.arch != std::env::consts::ARCH
    {
        return None;
    }
    let filter = decode_bpf(&bytes[newline + 1..]).ok()?;
    if filter.is_empty() || filter.len() > BPF_MAX_INSNS {
        return None;
    }
    Some(Program {
        filter,
        flags: header.flags,
        skipped: header.skipped,
    })
}

/// Write atomically (temporary name, then rename); failures only cost the next run a compile.
fn write_cache(
    path: &std::path::Path,
    profile: &LinuxSeccomp,
    libseccomp: &str,
    program: &Program,
) {
    let header = CacheHeader {
        profile: profile.clone(),
        libseccomp: libseccomp.to_string(),
        arch: std::env::consts::ARCH.to_string(),
        flags: program.flags,
        skipped: program.skipped.clone(),
    };
    let Ok(mut bytes) = serde_json::to_vec(&header) else {
        return;
    };
    bytes.push(b'\n');
    for insn in &program.filter {
        bytes.extend_from_slice(&insn.code.to_ne_bytes());
        bytes.push(insn.jt);
        bytes.push(insn.jf);
        bytes.extend_from_slice(&insn.k.to_ne_bytes());
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let written = std::fs::create_dir_all(path.parent().unwrap_or(path))
        .and_then(|()| std::fs::write(&tmp, &bytes))
        .and_then(|()| std::fs::rename(&tmp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
}

/// The native architecture's AUDIT_ARCH value (linux/audit.h), the one whose syscall numbers
/// `ScmpSyscall::from_name` gives.
#[cfg(target_arch = "x86_64")]
const NATIVE_AUDIT_ARCH: Option<u32> = Some(0xC000_003E);
#[cfg(target_arch = "aarch64")]
const NATIVE_AUDIT_ARCH: Option<u32> = Some(0xC000_00B7);
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const NATIVE_AUDIT_ARCH: Option<u32> = None;

/// x32 syscalls carry this bit on x86_64; they are left to libseccomp's program.
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// The highest native syscall number the profile names (with any action).
fn highest_named_syscall(profile: &LinuxSeccomp) -> Option<u32> {
    profile
        .syscalls()
        .iter()
        .flatten()
        .flat_map(|rule| rule.names())
        .filter_map(|name| ScmpSyscall::from_name(name).ok())
        .filter_map(|sc| u32::try_from(i32::from(sc)).ok())
        .max()
}

/// As runc does for a profile whose default is an errno: syscalls newer than every syscall the
/// profile names answer -ENOSYS instead of the default errno, so that libc falls back to an
/// older call (clone3 → clone, faccessat2 → faccessat) rather than failing with EPERM. A stub
/// in front of libseccomp's program: native arch, non-x32, number above the highest named.
fn with_enosys_stub(
    filter: Vec<libc::sock_filter>,
    profile: &LinuxSeccomp,
) -> Vec<libc::sock_filter> {
    let (Some(arch), Some(max)) = (NATIVE_AUDIT_ARCH, highest_named_syscall(profile)) else {
        return filter;
    };
    let insn = |code: u32, jt: u8, jf: u8, k: u32| libc::sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    };
    let ld_abs = libc::BPF_LD | libc::BPF_W | libc::BPF_ABS;
    let jmp = |op: u32| libc::BPF_JMP | op | libc::BPF_K;
    const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
    let mut out = vec![
        insn(ld_abs, 0, 0, 4),                           // 0: A = seccomp_data.arch
        insn(jmp(libc::BPF_JEQ), 0, 4, arch),            // 1: other arch -> 6
        insn(ld_abs, 0, 0, 0),                           // 2: A = seccomp_data.nr
        insn(jmp(libc::BPF_JGE), 2, 0, X32_SYSCALL_BIT), // 3: x32 -> 6
        insn(jmp(libc::BPF_JGT), 0, 1, max),             // 4: newer than the profile -> 5, else 6
        insn(
            libc::BPF_RET | libc::BPF_K,
            0,
            0,
            SECCOMP_RET_ERRNO | libc::ENOSYS as u32,
        ), // 5
    ];
    out.extend(filter); // 6: libseccomp's program
    out
}

/// Export the filter's BPF through a memfd (libseccomp 2.5 has no export-to-memory call) and
/// decode the `struct sock_filter` records.
fn export(ctx: &ScmpFilterContext) -> Result<Vec<libc::sock_filter>, SeccompError> {
    let fd = rustix::fs::memfd_create("berth-seccomp", rustix::fs::MemfdFlags::CLOEXEC)
        .map_err(|e| SeccompError::Export(e.into()))?;
    let mut file = std::fs::File::from(fd);
    ctx.export_bpf(&file).map_err(scmp("export BPF"))?;
    let mut bytes = Vec::new();
    file.seek(SeekFrom::Start(0))
        .map_err(SeccompError::Export)?;
    file.read_to_end(&mut bytes).map_err(SeccompError::Export)?;
    decode_bpf(&bytes).map_err(SeccompError::Export)
}

/// Decode native-endian `struct sock_filter` records.
fn decode_bpf(bytes: &[u8]) -> std::io::Result<Vec<libc::sock_filter>> {
    const INSN: usize = std::mem::size_of::<libc::sock_filter>();
    let records = bytes.chunks_exact(INSN);
    if !records.remainder().is_empty() {
        return Err(std::io::Error::other(format!(
            "BPF of {} bytes is not a whole number of instructions",
            bytes.len()
        )));
    }
    Ok(records
        .map(|c| libc::sock_filter {
            code: u16::from_ne_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect())
}

// ---------------------------------------------------------------------------------------------
// Docker's profile format and default profile.

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

fn null_as_empty<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
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
fn go_arch(rust_arch: &str) -> &str {
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
fn native_arch(go_arch: &str) -> Option<Arch> {
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
fn parse_kernel_version(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

fn has_cap(caps: &[String], cap: &str) -> bool {
    caps.iter().any(|c| c.eq_ignore_ascii_case(cap))
}

impl DockerProfile {
    /// Parse a profile in Docker's JSON format.
    pub fn from_json(json: &str) -> Result<DockerProfile, SeccompError> {
        serde_json::from_str(json).map_err(SeccompError::Json)
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
const DOCKER_ALLOWED: &[&str] = &[
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
const CLONE_NAMESPACE_FLAGS: u64 = 0x7E02_0000;

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
mod tests {
    use super::*;
    use oci_spec::runtime::{LinuxSeccompBuilder, LinuxSyscallBuilder};
    use std::ffi::CString;

    fn caps(list: &[&str]) -> Vec<String> {
        list.iter().map(|c| c.to_string()).collect()
    }

    fn target(caps: Vec<String>) -> DockerTarget {
        DockerTarget {
            capabilities: caps,
            go_arch: "amd64".into(),
            kernel: (6, 1),
        }
    }

    fn rules_for<'a>(p: &'a LinuxSeccomp, name: &str) -> Vec<&'a LinuxSyscall> {
        p.syscalls()
            .iter()
            .flatten()
            .filter(|s| s.names().iter().any(|n| n == name))
            .collect()
    }

    /// Syscalls newer than the profile's highest named one get ENOSYS; older unlisted ones
    /// keep the default errno. Checked in a forked child that loads the real program.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn unknown_newer_syscalls_get_enosys_under_an_errno_default() {
        let profile: LinuxSeccomp = serde_json::from_value(serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": [{"names": ["exit_group", "exit", "getppid"], "action": "SCMP_ACT_ALLOW"}]
        }))
        .unwrap();
        let program = compile(&profile).unwrap();
        // SAFETY: the child only makes raw syscalls (prctl, seccomp, syscall) and _exits.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            // SAFETY: raw syscalls in the forked child, then _exit.
            unsafe {
                libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
                if program.load().is_err() {
                    libc::_exit(100);
                }
                let errno = || *libc::__errno_location();
                let mut code = 0;
                if libc::syscall(libc::SYS_getppid) > 0 {
                    code |= 1;
                }
                if libc::syscall(libc::SYS_getpid) == -1 && errno() == libc::EPERM {
                    code |= 2;
                }
                if libc::syscall(libc::SYS_memfd_create, c"x".as_ptr(), 0) == -1
                    && errno() == libc::ENOSYS
                {
                    code |= 4;
                }
                libc::_exit(code);
            }
        }
        let mut status = 0;
        // SAFETY: reaping our own child.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        assert!(libc::WIFEXITED(status), "child died: {status:#x}");
        assert_eq!(libc::WEXITSTATUS(status), 7, "bits: allowed, EPERM, ENOSYS");
    }

    #[test]
    fn default_profile_for_default_caps_matches_docker() {
        let default_caps: Vec<String> = DOCKER_DEFAULT_CAPABILITIES
            .iter()
            .map(|c| c.to_string())
            .collect();
        let p = docker_default().to_oci(&target(default_caps));
        assert_eq!(p.default_action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(p.default_errno_ret(), Some(1));
        assert_eq!(
            p.architectures().as_deref(),
            Some(&[Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32][..])
        );
        let allowed = allowed_syscalls(&p);
        for ok in ["read", "mkdir", "chroot", "arch_prctl", "ptrace", "execve"] {
            assert!(allowed.contains_key(ok), "{ok} should be allowed");
        }
        for denied in [
            "mount",
            "unshare",
            "setns",
            "reboot",
            "open_by_handle_at",
            "cacheflush",
        ] {
            assert!(!allowed.contains_key(denied), "{denied} should be denied");
        }
        // clone only without namespace flags; clone3 answers ENOSYS.
        let clone = rules_for(&p, "clone");
        assert_eq!(clone.len(), 1);
        let a = clone[0].args().as_ref().unwrap()[0];
        assert_eq!((a.index(), a.value()), (0, 0x7E02_0000));
        assert_eq!(a.op(), LinuxSeccompOperator::ScmpCmpMaskedEq);
        let clone3 = rules_for(&p, "clone3");
        assert_eq!(clone3.len(), 1);
        assert_eq!(clone3[0].action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(clone3[0].errno_ret(), Some(38));
        assert_eq!(rules_for(&p, "personality").len(), 5);
    }

    #[test]
    fn cap_sys_admin_unlocks_mount_and_plain_clone() {
        let p = docker_default().to_oci(&target(caps(&["CAP_SYS_ADMIN"])));
        let allowed = allowed_syscalls(&p);
        for ok in ["mount", "unshare", "setns", "clone3", "umount2"] {
            assert!(allowed.contains_key(ok), "{ok}");
        }
        assert!(!allowed.contains_key("chroot"), "no CAP_SYS_CHROOT given");
        let clone = rules_for(&p, "clone");
        assert_eq!(clone.len(), 1);
        assert!(clone[0].args().is_none());
        assert!(rules_for(&p, "clone3")
            .iter()
            .all(|r| r.action() == LinuxSeccompAction::ScmpActAllow));
    }

    #[test]
    fn includes_and_excludes_on_arch_and_kernel() {
        let json = r#"{
            "defaultAction": "SCMP_ACT_ERRNO",
            "archMap": [{"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]},
                        {"architecture": "SCMP_ARCH_X86_64", "subArchitectures": null}],
            "syscalls": [
                {"names": ["a"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "6.2"}},
                {"names": ["b"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "5.10"}},
                {"names": ["c"], "action": "SCMP_ACT_ALLOW", "excludes": {"arches": ["amd64"]}},
                {"names": ["d"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["arm64"]}},
                {"name": "e", "action": "SCMP_ACT_ERRNO", "errnoRet": 38, "args": null},
                {"names": ["f"], "action": "SCMP_ACT_ALLOW", "excludes": {"minKernel": "6.0"}}
            ]}"#;
        let p = DockerProfile::from_json(json)
            .unwrap()
            .to_oci(&target(vec![]));
        let names: Vec<&str> = p
            .syscalls()
            .iter()
            .flatten()
            .flat_map(|s| s.names().iter().map(String::as_str))
            .collect();
        assert_eq!(names, vec!["b", "e"]);
        assert_eq!(
            p.architectures().as_deref(),
            Some(&[Arch::ScmpArchX86_64][..])
        );
        assert!(DockerProfile::from_json("{").is_err());
    }

    #[test]
    fn kernel_versions_parse() {
        assert_eq!(parse_kernel_version("6.18.44-fc-v669"), Some((6, 18)));
        assert_eq!(parse_kernel_version("4.8"), Some((4, 8)));
        assert_eq!(parse_kernel_version("x"), None);
    }

    #[test]
    fn default_profile_compiles_for_this_host() {
        let prog = compile(&docker_default_profile()).unwrap();
        assert!(
            prog.len() > 100 && prog.len() <= BPF_MAX_INSNS,
            "{}",
            prog.len()
        );
        assert_eq!(prog.flags(), 0);
        // Only names this libseccomp cannot resolve may be left out.
        for name in prog.skipped_syscalls() {
            assert!(ScmpSyscall::from_name(name).is_err());
        }
    }

    #[test]
    fn default_profile_compiles_for_every_capability() {
        let all: Vec<String> = caps::all().iter().map(|c| c.to_string()).collect();
        assert!(all.iter().any(|c| c == "CAP_SYS_ADMIN"));
        let profile = docker_profile_for_capabilities(&all);
        let allowed = allowed_syscalls(&profile);
        assert!(allowed.contains_key("ptrace") && allowed.contains_key("reboot"));
        compile(&profile).unwrap();
    }

    fn errno_profile(names: &[&str], errno: u32) -> LinuxSeccomp {
        LinuxSeccompBuilder::default()
            .default_action(LinuxSeccompAction::ScmpActAllow)
            .architectures(vec![Arch::ScmpArchX86_64])
            .flags(vec![LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow])
            .syscalls(vec![LinuxSyscallBuilder::default()
                .names(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .action(LinuxSeccompAction::ScmpActErrno)
                .errno_ret(errno)
                .build()
                .unwrap()])
            .build()
            .unwrap()
    }

    #[test]
    fn cached_compile_matches_and_rejects_tampered_files() {
        let dir = tempfile::tempdir().unwrap();
        let profile = docker_default_profile();
        let fresh = compile(&profile).unwrap();
        let first = compile_cached(&profile, dir.path()).unwrap();
        let files: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().collect();
        assert_eq!(files.len(), 1);
        let second = compile_cached(&profile, dir.path()).unwrap();
        let same = |a: &Program, b: &Program| {
            a.len() == b.len()
                && a.flags == b.flags
                && a.filter
                    .iter()
                    .zip(&b.filter)
                    .all(|(x, y)| (x.code, x.jt, x.jf, x.k) == (y.code, y.jt, y.jf, y.k))
        };
        assert!(same(&fresh, &first) && same(&fresh, &second));
        // A truncated file is ignored and rewritten.
        let path = files[0].path();
        let len = std::fs::metadata(&path).unwrap().len();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(len - 3)
            .unwrap();
        assert!(same(&fresh, &compile_cached(&profile, dir.path()).unwrap()));
        assert_eq!(std::fs::metadata(&path).unwrap().len(), len);
        // Another profile gets its own entry.
        compile_cached(&errno_profile(&["mkdir"], 1), dir.path()).unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[test]
    fn unknown_syscalls_are_skipped_and_reported() {
        let prog = compile(&errno_profile(&["mkdir", "no_such_syscall_xyz"], 1)).unwrap();
        assert_eq!(prog.skipped_syscalls(), ["no_such_syscall_xyz".to_string()]);
        assert_eq!(prog.flags(), SECCOMP_FILTER_FLAG_SPEC_ALLOW);
    }

    #[test]
    fn notify_needs_a_listener_and_is_never_the_default() {
        let p = LinuxSeccompBuilder::default()
            .default_action(LinuxSeccompAction::ScmpActNotify)
            .build()
            .unwrap();
        assert!(matches!(compile(&p), Err(SeccompError::Unsupported(_))));
        let mut p: LinuxSeccomp = serde_json::from_value(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]
        }))
        .unwrap();
        assert!(matches!(compile(&p), Err(SeccompError::Unsupported(_))));
        p.set_listener_path(Some("/run/agent.sock".into()));
        assert!(compile(&p).unwrap().notifies());
    }

    /// Fork; in the child (async-signal-safe calls only) set no_new_privs, load `prog`, run
    /// `probe` and _exit with what it returns. Returns the child's exit code.
    fn in_filtered_child(prog: &Program, probe: impl Fn() -> i32) -> i32 {
        // SAFETY: the child only calls prctl, Program::load (one syscall, no allocation), the
        // probe's raw syscalls and _exit.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            // SAFETY: plain syscalls in the forked child; _exit never returns.
            unsafe {
                if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                    libc::_exit(101);
                }
                if prog.load().is_err() {
                    libc::_exit(102);
                }
                libc::_exit(probe());
            }
        }
        let mut status = 0;
        // SAFETY: waiting for the child we just forked.
        let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
        assert_eq!(rc, pid);
        assert!(libc::WIFEXITED(status), "child died: status {status:#x}");
        libc::WEXITSTATUS(status)
    }

    fn errno() -> i32 {
        // SAFETY: reading this thread's errno.
        unsafe { *libc::__errno_location() }
    }

    #[test]
    fn loaded_filter_makes_mkdir_fail_with_the_profile_errno() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("blocked");
        let path = CString::new(target.to_str().unwrap()).unwrap();
        for errno_ret in [libc::EPERM, libc::ENOSYS] {
            let prog = compile(&errno_profile(&["mkdir", "mkdirat"], errno_ret as u32)).unwrap();
            let code = in_filtered_child(&prog, || {
                // SAFETY: mkdir on a NUL-terminated path prepared before fork.
                if unsafe { libc::mkdir(path.as_ptr(), 0o755) } == 0 {
                    0
                } else {
                    errno()
                }
            });
            assert_eq!(code, errno_ret);
            assert!(!target.exists());
        }
    }

    #[test]
    fn docker_default_profile_blocks_namespaces_but_not_files() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("allowed");
        let path = CString::new(target.to_str().unwrap()).unwrap();
        let prog = compile(&docker_default_profile()).unwrap();
        let code = in_filtered_child(&prog, || {
            // SAFETY: raw syscalls with valid (or deliberately null) arguments.
            unsafe {
                if libc::mkdir(path.as_ptr(), 0o755) != 0 {
                    return 10;
                }
                if libc::syscall(libc::SYS_unshare, libc::CLONE_NEWUTS) == 0
                    || errno() != libc::EPERM
                {
                    return 11;
                }
                if libc::syscall(libc::SYS_clone3, std::ptr::null_mut::<libc::c_void>(), 0) == 0
                    || errno() != libc::ENOSYS
                {
                    return 12;
                }
                if libc::getpid() <= 0 {
                    return 13;
                }
            }
            0
        });
        assert_eq!(code, 0);
        assert!(target.is_dir());
    }
}
