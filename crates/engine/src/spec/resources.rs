//! Resource limits: the OCI `linux.resources` the flags set, and rlimit names.

use super::*;

pub(super) fn rlimit_name(name: &str) -> String {
    format!("RLIMIT_{}", name.to_ascii_uppercase())
}

/// The OCI `linux.resources` limits the flags set (`memory`, `cpu`, `pids`, `blockIO`), without
/// devices: what `create` puts in the spec and `update` applies live.
pub fn resource_limits(host: &HostConfig) -> serde_json::Map<String, Value> {
    let mut memory = serde_json::Map::new();
    if host.memory > 0 {
        memory.insert("limit".into(), json!(host.memory));
        let swap = match host.memory_swap {
            0 => host.memory * 2,
            s => s,
        };
        memory.insert("swap".into(), json!(swap));
    }
    if host.memory_reservation > 0 {
        memory.insert("reservation".into(), json!(host.memory_reservation));
    }
    if host.oom_kill_disable == Some(true) {
        memory.insert("disableOOMKiller".into(), json!(true));
    }
    let mut cpu = serde_json::Map::new();
    if host.cpu_shares > 0 {
        cpu.insert("shares".into(), json!(host.cpu_shares));
    }
    let period = if host.cpu_period > 0 {
        host.cpu_period
    } else {
        100_000
    };
    if host.nano_cpus > 0 {
        cpu.insert(
            "quota".into(),
            json!(host.nano_cpus * period / 1_000_000_000),
        );
        cpu.insert("period".into(), json!(period));
    } else if host.cpu_quota > 0 {
        cpu.insert("quota".into(), json!(host.cpu_quota));
        cpu.insert("period".into(), json!(period));
    } else if host.cpu_period > 0 {
        cpu.insert("period".into(), json!(period));
    }
    if !host.cpuset_cpus.is_empty() {
        cpu.insert("cpus".into(), json!(host.cpuset_cpus));
    }
    if !host.cpuset_mems.is_empty() {
        cpu.insert("mems".into(), json!(host.cpuset_mems));
    }
    let mut limits = serde_json::Map::new();
    if !memory.is_empty() {
        limits.insert("memory".into(), Value::Object(memory));
    }
    if !cpu.is_empty() {
        limits.insert("cpu".into(), Value::Object(cpu));
    }
    if let Some(limit) = host.pids_limit.filter(|l| *l != 0) {
        limits.insert("pids".into(), json!({"limit": limit}));
    }
    if host.blkio_weight > 0 {
        limits.insert("blockIO".into(), json!({"weight": host.blkio_weight}));
    }
    limits
}
