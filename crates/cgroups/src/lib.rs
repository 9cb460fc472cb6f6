//! berth-cgroups: put container processes into cgroups and limit and measure them, on cgroup v1
//! (including hybrid hosts) and cgroup v2, behind one interface chosen at run time.
//!
//! - [`Hierarchy`] finds where the controllers are mounted (from `/proc/self/mountinfo`) and where
//!   the calling process lives in each of them (from `/proc/self/cgroup`).
//! - [`Cgroup`] is one container's cgroup: created, configured from an OCI `LinuxResources`,
//!   joined, frozen, measured ([`Stats`]) and destroyed.
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

pub use cgroup::{systemd_cgroups_path, Cgroup};
pub use convert::{blkio_weight_to_io_weight, cpu_shares_to_weight};
pub use devices::{default_allowed_devices, DeviceRule};
pub use error::CgroupError;
pub use hierarchy::{CgroupVersion, Hierarchy};
pub use stats::{
    BlkioEntry, BlkioStats, CpuStats, HugetlbStats, MemoryStats, PidsStats, Stats, Throttling,
};
