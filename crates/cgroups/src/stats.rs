//! Resource usage figures read from a cgroup, in one shape for v1 and v2 (units: bytes and
//! nanoseconds), and the small parsers for the flat-keyed and nested-keyed files they come from.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A snapshot of a cgroup's resource usage. Fields a host cannot report stay at their defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    pub cpu: CpuStats,
    pub memory: MemoryStats,
    pub pids: PidsStats,
    pub blkio: BlkioStats,
    /// Page size ("2MB", "1GB") -> usage.
    pub hugetlb: BTreeMap<String, HugetlbStats>,
}

/// CPU time used, in nanoseconds, and CFS throttling.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuStats {
    pub usage_total_ns: u64,
    pub usage_user_ns: u64,
    pub usage_system_ns: u64,
    /// Per-CPU total usage (v1 only; empty on v2).
    pub usage_per_cpu_ns: Vec<u64>,
    pub throttling: Throttling,
}

/// CFS bandwidth throttling counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Throttling {
    pub periods: u64,
    pub throttled_periods: u64,
    pub throttled_time_ns: u64,
}

/// Memory figures in bytes. `limit` is `None` when unlimited.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryStats {
    pub usage: u64,
    pub max_usage: u64,
    pub limit: Option<u64>,
    pub failcnt: u64,
    /// Page cache (v1 `cache`, v2 `file`).
    pub cache: u64,
    /// Anonymous memory (v1 `rss`, v2 `anon`).
    pub rss: u64,
    /// Swap in use (v1: memsw usage minus memory usage; v2: memory.swap.current).
    pub swap_usage: u64,
    /// Swap limit (v1: memsw limit, which includes memory; v2: memory.swap.max). `None` = unlimited.
    pub swap_limit: Option<u64>,
    /// Times the OOM killer killed a process in this cgroup.
    pub oom_kills: u64,
    /// The raw `memory.stat` keys and values (Docker's `memory_stats.stats`).
    pub stat: BTreeMap<String, u64>,
}

/// Number of processes and the pids limit (`None` = "max").
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PidsStats {
    pub current: u64,
    pub limit: Option<u64>,
}

/// Block I/O totals and per-device counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlkioStats {
    pub read_bytes: u64,
    pub write_bytes: u64,
    /// Per device and operation: op is "Read", "Write", "Sync", "Async", "Discard", "Total" (v1
    /// names; v2 `rbytes`/`wbytes`/`dbytes` map to Read/Write/Discard bytes, `rios`/`wios` to
    /// ReadIos/WriteIos).
    pub entries: Vec<BlkioEntry>,
}

/// One line of a blkio/io statistics file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlkioEntry {
    pub major: u64,
    pub minor: u64,
    pub op: String,
    pub value: u64,
}

/// Huge page usage for one page size.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HugetlbStats {
    pub usage: u64,
    pub max_usage: u64,
    pub failcnt: u64,
}
