//! cgroup v2 device access control. v2 has no devices.allow file: the kernel asks an eBPF
//! program of type BPF_PROG_TYPE_CGROUP_DEVICE attached to the cgroup. This module turns the
//! device rules (the spec's, then runc's defaults) into such a program, loads it with raw
//! bpf(2) calls and attaches it, replacing the programs attached before (for `update`).
//!
//! Semantics match cgroup v1's ordered rule list: the last rule matching a request decides;
//! a request no rule matches is denied.

use crate::devices::{effective_rules, DeviceRule};
use crate::CgroupError;
use oci_spec::runtime::LinuxDeviceCgroup;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

// bpf(2) commands, program/attach types and flags (linux/bpf.h).
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_DETACH: libc::c_long = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
const BPF_PROG_QUERY: libc::c_long = 16;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

// struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }; access_type is
// (access << 16) | type.
const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;
const ACC_MKNOD: i32 = 1;
const ACC_READ: i32 = 2;
const ACC_WRITE: i32 = 4;

/// One eBPF instruction as the kernel lays it out.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Insn {
    code: u8,
    regs: u8, // dst in the low nibble, src in the high nibble
    off: i16,
    imm: i32,
}

const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (src << 4) | dst,
        off,
        imm,
    }
}

// Opcodes used (class | op | source).
const LDX_MEM_W: u8 = 0x61; // dst = *(u32 *)(src + off)
const ALU64_AND_K: u8 = 0x57;
const ALU64_RSH_K: u8 = 0x77;
const ALU64_MOV_K: u8 = 0xb7;
const ALU64_MOV_X: u8 = 0xbf;
const JMP_JNE_K: u8 = 0x55;
const JMP_JNE_X: u8 = 0x5d;
const JMP_JEQ_K: u8 = 0x15;
const JMP_EXIT: u8 = 0x95;

fn access_bits(access: &str) -> i32 {
    access.chars().fold(0, |acc, c| {
        acc | match c {
            'm' => ACC_MKNOD,
            'r' => ACC_READ,
            'w' => ACC_WRITE,
            _ => 0,
        }
    })
}

/// The instructions of one rule: fall through to `exit r0 = allow` when it matches, else jump
/// over the rest of the block.
fn rule_block(rule: &DeviceRule) -> Vec<Insn> {
    let access = access_bits(&rule.access);
    let all_access = access == ACC_MKNOD | ACC_READ | ACC_WRITE;
    // Each check is emitted with a placeholder offset, fixed once the block length is known.
    let mut checks: Vec<Insn> = Vec::new();
    match rule.kind {
        'c' => checks.push(insn(JMP_JNE_K, 2, 0, 0, DEV_CHAR)),
        'b' => checks.push(insn(JMP_JNE_K, 2, 0, 0, DEV_BLOCK)),
        _ => {}
    }
    if !all_access {
        checks.push(insn(ALU64_MOV_X, 1, 3, 0, 0));
        checks.push(insn(ALU64_AND_K, 1, 0, 0, access));
        if rule.allow {
            // Allow only if every requested access is granted by the rule.
            checks.push(insn(JMP_JNE_X, 1, 3, 0, 0));
        } else {
            // Deny if any requested access is named by the rule.
            checks.push(insn(JMP_JEQ_K, 1, 0, 0, 0));
        }
    }
    if let Some(major) = rule.major {
        checks.push(insn(JMP_JNE_K, 4, 0, 0, major as i32));
    }
    if let Some(minor) = rule.minor {
        checks.push(insn(JMP_JNE_K, 5, 0, 0, minor as i32));
    }
    let mut block = checks;
    block.push(insn(ALU64_MOV_K, 0, 0, 0, i32::from(rule.allow)));
    block.push(insn(JMP_EXIT, 0, 0, 0, 0));
    let len = block.len();
    for (i, ins) in block.iter_mut().enumerate() {
        if matches!(ins.code, JMP_JNE_K | JMP_JNE_X | JMP_JEQ_K) {
            // Jump to the first instruction after this block.
            ins.off = (len - i - 1) as i16;
        }
    }
    block
}

/// The whole program: load the context into r2 (type), r3 (access), r4 (major), r5 (minor),
/// then the rules from last to first (the last matching rule decides), then deny.
pub(crate) fn program(rules: &[DeviceRule]) -> Vec<Insn> {
    let mut p = vec![
        insn(LDX_MEM_W, 2, 1, 0, 0),
        insn(ALU64_AND_K, 2, 0, 0, 0xffff),
        insn(LDX_MEM_W, 3, 1, 0, 0),
        insn(ALU64_RSH_K, 3, 0, 0, 16),
        insn(LDX_MEM_W, 4, 1, 4, 0),
        insn(LDX_MEM_W, 5, 1, 8, 0),
    ];
    for rule in rules.iter().rev() {
        if rule.kind == 'p' {
            continue; // FIFOs are not device nodes the kernel asks about
        }
        let block = rule_block(rule);
        let catch_all = block.len() == 2;
        p.extend(block);
        if catch_all {
            // Nothing after a rule that matches everything is reachable, and the verifier
            // refuses unreachable instructions.
            return p;
        }
    }
    p.push(insn(ALU64_MOV_K, 0, 0, 0, 0));
    p.push(insn(JMP_EXIT, 0, 0, 0, 0));
    p
}

/// The bpf(2) attribute block (`union bpf_attr`), zeroed, filled field by field at the
/// offsets linux/bpf.h gives each command's struct.
#[repr(C, align(8))]
struct Attr([u8; 128]);

impl Attr {
    fn new() -> Attr {
        Attr([0; 128])
    }

    fn u32(mut self, off: usize, v: u32) -> Attr {
        self.0[off..off + 4].copy_from_slice(&v.to_ne_bytes());
        self
    }

    fn u64(mut self, off: usize, v: u64) -> Attr {
        self.0[off..off + 8].copy_from_slice(&v.to_ne_bytes());
        self
    }

    fn get_u32(&self, off: usize) -> u32 {
        u32::from_ne_bytes([
            self.0[off],
            self.0[off + 1],
            self.0[off + 2],
            self.0[off + 3],
        ])
    }
}

fn bpf(cmd: libc::c_long, attr: &mut Attr) -> io::Result<libc::c_long> {
    // SAFETY: `attr` is a valid, 8-byte aligned buffer of the size passed; the kernel reads (and
    // for queries writes) only within it and within the buffers its pointers name, which the
    // callers keep alive across the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr.0.as_mut_ptr(),
            std::mem::size_of::<Attr>(),
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// Take ownership of a descriptor a bpf(2) command returned.
fn owned_fd(rc: libc::c_long) -> OwnedFd {
    // SAFETY: the command returned a new file descriptor that nothing else owns.
    unsafe { OwnedFd::from_raw_fd(rc as i32) }
}

fn load(insns: &[Insn]) -> io::Result<OwnedFd> {
    let license = c"Apache";
    let attr = || {
        Attr::new()
            .u32(0, BPF_PROG_TYPE_CGROUP_DEVICE)
            .u32(4, insns.len() as u32)
            .u64(8, insns.as_ptr() as u64)
            .u64(16, license.as_ptr() as u64)
    };
    match bpf(BPF_PROG_LOAD, &mut attr()) {
        Ok(fd) => Ok(owned_fd(fd)),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            // Load again with the verifier log so that the error says what it refused.
            let mut log = vec![0u8; 64 * 1024];
            let mut with_log = attr()
                .u32(24, 1)
                .u32(28, log.len() as u32)
                .u64(32, log.as_mut_ptr() as u64);
            if let Ok(fd) = bpf(BPF_PROG_LOAD, &mut with_log) {
                return Ok(owned_fd(fd));
            }
            let end = log.iter().position(|b| *b == 0).unwrap_or(log.len());
            let text = String::from_utf8_lossy(&log[..end]).trim().to_string();
            Err(io::Error::new(e.kind(), format!("{e}; verifier: {text}")))
        }
        Err(e) => Err(e),
    }
}

/// IDs of the device programs attached to the cgroup now.
fn attached_ids(cgroup: &OwnedFd) -> io::Result<Vec<u32>> {
    let mut ids = [0u32; 64];
    let mut attr = Attr::new()
        .u32(0, cgroup.as_raw_fd() as u32)
        .u32(4, BPF_CGROUP_DEVICE)
        .u64(16, ids.as_mut_ptr() as u64)
        .u32(24, ids.len() as u32);
    bpf(BPF_PROG_QUERY, &mut attr)?;
    let count = (attr.get_u32(24) as usize).min(ids.len());
    Ok(ids[..count].to_vec())
}

fn detach(cgroup: &OwnedFd, id: u32) -> io::Result<()> {
    let prog = bpf(BPF_PROG_GET_FD_BY_ID, &mut Attr::new().u32(0, id)).map(owned_fd)?;
    let mut attr = Attr::new()
        .u32(0, cgroup.as_raw_fd() as u32)
        .u32(4, prog.as_raw_fd() as u32)
        .u32(8, BPF_CGROUP_DEVICE);
    bpf(BPF_PROG_DETACH, &mut attr).map(drop)
}

/// Load the device program for `devices` and attach it to the cgroup at `dir`, then detach
/// the programs that were attached before, so that exactly the new rules apply.
pub(crate) fn apply(dir: &Path, devices: &[LinuxDeviceCgroup]) -> Result<(), CgroupError> {
    let err = |reason: &'static str| {
        move |source| CgroupError::DeviceFilter {
            path: dir.to_path_buf(),
            reason,
            source,
        }
    };
    let insns = program(&effective_rules(devices));
    let cgroup: OwnedFd = std::fs::File::open(dir)
        .map_err(err("open cgroup directory"))?
        .into();
    let before = attached_ids(&cgroup).map_err(err("query attached device programs"))?;
    let prog = load(&insns).map_err(err("load device program"))?;
    let mut attach = Attr::new()
        .u32(0, cgroup.as_raw_fd() as u32)
        .u32(4, prog.as_raw_fd() as u32)
        .u32(8, BPF_CGROUP_DEVICE)
        .u32(12, BPF_F_ALLOW_MULTI);
    bpf(BPF_PROG_ATTACH, &mut attach).map_err(err("attach device program"))?;
    for id in before {
        detach(&cgroup, id).map_err(err("detach previous device program"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::default_allowed_devices;

    #[test]
    fn program_checks_rules_last_first_and_denies_by_default() {
        let rules = default_allowed_devices();
        let p = program(&rules);
        assert_eq!(p[0], insn(LDX_MEM_W, 2, 1, 0, 0));
        assert_eq!(p[p.len() - 2], insn(ALU64_MOV_K, 0, 0, 0, 0));
        assert_eq!(p[p.len() - 1], insn(JMP_EXIT, 0, 0, 0, 0));
        // The first rule block after the prologue is the last rule (c 10:200 rwm): type, major,
        // minor checks, then allow.
        assert_eq!(p[6], insn(JMP_JNE_K, 2, 0, 4, DEV_CHAR));
        assert_eq!(p[7], insn(JMP_JNE_K, 4, 0, 3, 10));
        assert_eq!(p[8], insn(JMP_JNE_K, 5, 0, 2, 200));
        assert_eq!(p[9], insn(ALU64_MOV_K, 0, 0, 0, 1));
        assert_eq!(p[10], insn(JMP_EXIT, 0, 0, 0, 0));
    }

    #[test]
    fn nothing_follows_a_catch_all_rule() {
        let deny_all = DeviceRule {
            allow: false,
            kind: 'a',
            major: None,
            minor: None,
            access: "rwm".into(),
        };
        let p = program(&[deny_all]);
        assert_eq!(p.len(), 8);
        assert_eq!(p[6], insn(ALU64_MOV_K, 0, 0, 0, 0));
        assert_eq!(p[7], insn(JMP_EXIT, 0, 0, 0, 0));
    }

    #[test]
    fn partial_access_rules_compare_access_bits() {
        let allow_mknod = DeviceRule {
            allow: true,
            kind: 'c',
            major: None,
            minor: None,
            access: "m".into(),
        };
        let b = rule_block(&allow_mknod);
        assert_eq!(
            b,
            vec![
                insn(JMP_JNE_K, 2, 0, 5, DEV_CHAR),
                insn(ALU64_MOV_X, 1, 3, 0, 0),
                insn(ALU64_AND_K, 1, 0, 0, ACC_MKNOD),
                insn(JMP_JNE_X, 1, 3, 2, 0),
                insn(ALU64_MOV_K, 0, 0, 0, 1),
                insn(JMP_EXIT, 0, 0, 0, 0),
            ]
        );
        let deny_write = DeviceRule {
            allow: false,
            access: "w".into(),
            ..allow_mknod
        };
        assert_eq!(rule_block(&deny_write)[3], insn(JMP_JEQ_K, 1, 0, 2, 0));
    }
}
