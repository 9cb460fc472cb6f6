//! Resource limits: the OCI `linux.resources` the flags set, and rlimit names.

use super::*;
use oci_spec::runtime::{
    LinuxBlockIoBuilder, LinuxCpuBuilder, LinuxMemoryBuilder, LinuxPidsBuilder, LinuxResources,
};

pub(super) fn rlimit_name(name: &str) -> String {
    format!("RLIMIT_{}", name.to_ascii_uppercase())
}

/// The OCI `linux.resources` limits the flags set (`memory`, `cpu`, `pids`, `blockIO`), without
/// devices: what `create` puts in the spec and `update` applies live.
pub fn resource_limits(host: &HostConfig) -> Result<LinuxResources> {
    let mut limits = LinuxResources::default();
    if host.memory > 0 || host.memory_reservation > 0 || host.oom_kill_disable == Some(true) {
        let mut memory = LinuxMemoryBuilder::default();
        if host.memory > 0 {
            let swap = match host.memory_swap {
                0 => host.memory * 2,
                s => s,
            };
            memory = memory.limit(host.memory).swap(swap);
        }
        if host.memory_reservation > 0 {
            memory = memory.reservation(host.memory_reservation);
        }
        if host.oom_kill_disable == Some(true) {
            memory = memory.disable_oom_killer(true);
        }
        limits.set_memory(Some(memory.build()?));
    }
    let mut cpu = LinuxCpuBuilder::default();
    let mut any_cpu = false;
    if host.cpu_shares > 0 {
        cpu = cpu.shares(host.cpu_shares as u64);
        any_cpu = true;
    }
    let period = if host.cpu_period > 0 {
        host.cpu_period as u64
    } else {
        100_000
    };
    if host.nano_cpus > 0 {
        cpu = cpu
            .quota(host.nano_cpus * period as i64 / 1_000_000_000)
            .period(period);
        any_cpu = true;
    } else if host.cpu_quota > 0 {
        cpu = cpu.quota(host.cpu_quota).period(period);
        any_cpu = true;
    } else if host.cpu_period > 0 {
        cpu = cpu.period(period);
        any_cpu = true;
    }
    if !host.cpuset_cpus.is_empty() {
        cpu = cpu.cpus(host.cpuset_cpus.clone());
        any_cpu = true;
    }
    if !host.cpuset_mems.is_empty() {
        cpu = cpu.mems(host.cpuset_mems.clone());
        any_cpu = true;
    }
    if any_cpu {
        limits.set_cpu(Some(cpu.build()?));
    }
    if let Some(limit) = host.pids_limit.filter(|l| *l != 0) {
        limits.set_pids(Some(LinuxPidsBuilder::default().limit(limit).build()?));
    }
    if host.blkio_weight > 0 {
        limits.set_block_io(Some(
            LinuxBlockIoBuilder::default()
                .weight(host.blkio_weight)
                .build()?,
        ));
    }
    Ok(limits)
}
