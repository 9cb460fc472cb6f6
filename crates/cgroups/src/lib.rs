//! berth-cgroups: put container processes into cgroups and limit and measure them, on cgroup v1
//! (including hybrid hosts) and cgroup v2, behind one interface chosen at run time.
//!
//! - [`Hierarchy`] finds where the controllers are mounted (from `/proc/self/mountinfo`) and where
//!   the calling process lives in each of them (from `/proc/self/cgroup`).
//! - [`Cgroup`] is one container's cgroup: created, configured from an OCI `LinuxResources`,
//!   joined, frozen, measured ([`Stats`]) and destroyed.
//!
//! Resource conversions ([`Cgroup::apply`], following runc):
//!
//! | OCI | v1 | v2 |
//! |---|---|---|
//! | memory.limit (-1 = unlimited) | memory.limit_in_bytes | memory.max ("max") |
//! | memory.reservation | memory.soft_limit_in_bytes | memory.low |
//! | memory.swap (memory+swap) | memory.memsw.limit_in_bytes, ordered against the limit | memory.swap.max = swap - limit |
//! | memory.swappiness / disableOOMKiller | memory.swappiness / memory.oom_control | ignored |
//! | memory.kernel / kernelTCP | ignored | ignored |
//! | cpu.shares | cpu.shares | cpu.weight = 1 + (shares-2)*9999/262142 |
//! | cpu.quota / period | cpu.cfs_quota_us / cpu.cfs_period_us | cpu.max "quota period" ("max period") |
//! | cpu.realtime* | cpu.rt_period_us / cpu.rt_runtime_us (only when set) | error when set |
//! | cpu.cpus / mems | cpuset.cpus / cpuset.mems | same |
//! | pids.limit (<= 0 = "max") | pids.max | pids.max |
//! | blockIO weight / devices / throttles | blkio.(bfq.)weight*, blkio.throttle.* | io.bfq.weight or io.weight (converted), io.max |
//! | hugepageLimits | hugetlb.SIZE.limit_in_bytes | hugetlb.SIZE.max |
//! | devices | devices.deny "a", then each rule, then runc's defaults | eBPF CGROUP_DEVICE program, same rules |
//! | network | net_cls.classid, net_prio.ifpriomap | ignored |
//! | rdma | rdma.max | rdma.max |
//! | unified | error when non-empty | written verbatim |
//!
//! A missing controller or control file is an error naming it when a value is asked of it, and
//! skipped (debug log) when the value is the kernel's default anyway.
//!
//! The crate knows nothing of containers beyond the OCI resources type: it never forks and never
//! spawns helper programs.

mod bpf_devices;
mod cgroup;
mod convert;
mod devices;
mod error;
#[cfg(test)]
mod fake_tree_tests;
mod fs;
mod hierarchy;
mod stats;
mod v1;
mod v2;

pub use cgroup::{kill_and_destroy_path, systemd_cgroups_path, Cgroup};
pub use convert::{blkio_weight_to_io_weight, cpu_shares_to_weight};
pub use devices::{default_allowed_devices, DeviceRule};
pub use error::CgroupError;
pub use hierarchy::{CgroupVersion, Hierarchy};
pub use stats::{
    BlkioEntry, BlkioStats, CpuStats, HugetlbStats, MemoryStats, PidsStats, Stats, Throttling,
};
