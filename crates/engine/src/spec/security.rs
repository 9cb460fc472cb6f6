//! Security defaults of the spec: Docker's capability sets (default, all) and what `--cap-add`,
//! `--cap-drop` and `--privileged` make of them; the masked and read-only paths.

use super::*;

/// Docker's default capability set (one list, kept with the default seccomp profile that
/// depends on it).
pub const DEFAULT_CAPS: &[&str] = crate::docker_profile::DOCKER_DEFAULT_CAPABILITIES;

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
