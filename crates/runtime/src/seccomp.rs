//! Seccomp: compiles an OCI `linux.seccomp` profile to a classic BPF program before fork (with
//! libseccomp, which allocates), and loads the prebuilt program in the container's init right
//! before exec with one async-signal-safe seccomp(2) call.
//!
//! Knows only OCI profiles: Docker's profile format and default profile belong to the engine
//! (`berth-engine`'s `spec::docker_profile`).
//!
//! Must not: set `no_new_privs` (the caller's business), log from [`Program::load`], or allocate
//! after fork.

use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};
use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompFilterFlag,
    LinuxSeccompOperator,
};
use std::io::{Read, Seek, SeekFrom};
use std::str::FromStr;

mod cache;
pub use cache::compile_cached;

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

#[cfg(test)]
mod tests;
