//! cgroup v2 backend: one unified directory. Writes OCI resources with runc's v1->v2
//! conversions (cpu.weight from shares, memory.swap.max from memory+swap, io.weight from blkio
//! weight), freezes through cgroup.freeze, and reads usage from the v2 stat files. Device rules
//! go to the eBPF device filter (see `bpf_devices`).

use crate::convert::{blkio_weight_to_io_weight, cpu_shares_to_weight};
use crate::fs::{self, parse_flat_keyed, read_optional, read_u64, Setter};
use crate::stats::{BlkioEntry, HugetlbStats};
use crate::{Cgroup, CgroupError, CgroupVersion, Stats};
use berth_common::poll::{self, Backoff};
use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxResources};
use std::path::Path;
use std::time::Duration;

const UNIFIED: &str = "unified";

/// OCI's -1 means unlimited: "max" in v2.
fn limit_str(v: i64) -> String {
    if v < 0 {
        "max".to_string()
    } else {
        v.to_string()
    }
}

fn invalid(resource: String, reason: &str) -> CgroupError {
    CgroupError::Unsupported {
        resource,
        version: CgroupVersion::V2,
        reason: reason.to_string(),
    }
}

pub(crate) fn apply(cg: &Cgroup, r: &LinuxResources) -> Result<(), CgroupError> {
    let s = Setter { cg };
    if let Some(m) = r.memory() {
        apply_memory(&s, m)?;
    }
    if let Some(c) = r.cpu() {
        apply_cpu(&s, c)?;
    }
    if let Some(p) = r.pids() {
        let v = if p.limit() > 0 {
            p.limit().to_string()
        } else {
            "max".to_string()
        };
        s.set(UNIFIED, "pids.max", &v, p.limit() <= 0)?;
    }
    if let Some(b) = r.block_io() {
        apply_io(&s, b)?;
    }
    for h in r.hugepage_limits().iter().flatten() {
        let file = format!("hugetlb.{}.max", h.page_size());
        s.set(UNIFIED, &file, &limit_str(h.limit()), false)?;
    }
    for (dev, limit) in r.rdma().iter().flatten() {
        let mut parts = vec![dev.clone()];
        if let Some(h) = limit.hca_handles() {
            parts.push(format!("hca_handle={h}"));
        }
        if let Some(o) = limit.hca_objects() {
            parts.push(format!("hca_object={o}"));
        }
        s.set(UNIFIED, "rdma.max", &parts.join(" "), false)?;
    }
    if r.network().is_some() {
        tracing::debug!("linux.resources.network has no cgroup v2 equivalent; ignored");
    }
    if let Some(devices) = r.devices() {
        if let Some(dir) = cg.dir(UNIFIED) {
            crate::bpf_devices::apply(dir, devices)?;
        }
    }
    if let Some(unified) = r.unified() {
        // Sorted so that failures are reproducible.
        let sorted: std::collections::BTreeMap<_, _> = unified.iter().collect();
        for (key, value) in sorted {
            if key.contains('/') || key.starts_with('.') {
                return Err(invalid(
                    format!("unified key {key:?}"),
                    "not a control file name",
                ));
            }
            s.set(UNIFIED, key, value, false)?;
        }
    }
    Ok(())
}

/// runc's conversion of OCI memory+swap into memory.swap.max (swap alone).
pub(crate) fn swap_max(memory: i64, memory_plus_swap: i64) -> Result<Option<i64>, CgroupError> {
    if memory == -1 && memory_plus_swap == 0 {
        return Ok(Some(-1));
    }
    if memory_plus_swap == -1 {
        return Ok(Some(-1));
    }
    if memory_plus_swap == 0 {
        return Ok(None);
    }
    if memory <= 0 {
        return Err(invalid(
            format!("memory swap {memory_plus_swap}"),
            "a swap limit needs a memory limit",
        ));
    }
    if memory_plus_swap < memory {
        return Err(invalid(
            format!("memory swap {memory_plus_swap}"),
            "memory+swap limit must be >= the memory limit",
        ));
    }
    Ok(Some(memory_plus_swap - memory))
}

fn apply_memory(s: &Setter, m: &LinuxMemory) -> Result<(), CgroupError> {
    let limit = m.limit().unwrap_or(0);
    if let Some(swap) = swap_max(limit, m.swap().unwrap_or(0))? {
        s.set(UNIFIED, "memory.swap.max", &limit_str(swap), swap == -1)?;
    }
    if limit != 0 {
        s.set(UNIFIED, "memory.max", &limit_str(limit), limit == -1)?;
    }
    if let Some(res) = m.reservation().filter(|v| *v != 0) {
        s.set(UNIFIED, "memory.low", &limit_str(res), res == -1)?;
    }
    if m.kernel().is_some() || m.kernel_tcp().is_some() {
        tracing::debug!("kernel memory limits are not supported on cgroup v2; ignored");
    }
    if m.swappiness().is_some() {
        tracing::debug!("memory.swappiness has no cgroup v2 equivalent; ignored");
    }
    if m.disable_oom_killer() == Some(true) {
        tracing::debug!("disableOOMKiller has no cgroup v2 equivalent; ignored");
    }
    Ok(())
}

/// cpu.max as runc writes it: "<quota|max> <period>" (an unset quota means "max"); an unset
/// period keeps the current one (the kernel default is 100000).
pub(crate) fn cpu_max_value(
    quota: Option<i64>,
    period: Option<u64>,
    current: Option<&str>,
) -> Option<String> {
    let period = period.filter(|p| *p != 0);
    if quota.is_none() && period.is_none() {
        return None;
    }
    let q = match quota {
        Some(q) if q > 0 => q.to_string(),
        _ => "max".to_string(),
    };
    let p = period.map_or_else(
        || {
            current
                .and_then(|c| c.split_whitespace().nth(1))
                .unwrap_or("100000")
                .to_string()
        },
        |p| p.to_string(),
    );
    Some(format!("{q} {p}"))
}

fn apply_cpu(s: &Setter, c: &LinuxCpu) -> Result<(), CgroupError> {
    if let Some(shares) = c.shares().filter(|v| *v != 0) {
        let weight = cpu_shares_to_weight(shares);
        s.set(UNIFIED, "cpu.weight", &weight.to_string(), false)?;
    }
    let current = s
        .path(UNIFIED, "cpu.max")
        .map(|p| read_optional(&p))
        .transpose()?
        .flatten();
    let quota = c.quota().filter(|v| *v != 0);
    if let Some(v) = cpu_max_value(quota, c.period(), current.as_deref()) {
        let is_default = v.starts_with("max ") && c.period().is_none();
        s.set(UNIFIED, "cpu.max", &v, is_default)?;
    }
    if let Some(b) = c.burst() {
        s.set(UNIFIED, "cpu.max.burst", &b.to_string(), b == 0)?;
    }
    if let Some(idle) = c.idle() {
        s.set(UNIFIED, "cpu.idle", &idle.to_string(), idle == 0)?;
    }
    if c.realtime_period().is_some_and(|v| v != 0) || c.realtime_runtime().is_some_and(|v| v != 0) {
        return Err(invalid(
            "cpu realtime period/runtime".into(),
            "the v2 cpu controller has no realtime bandwidth files",
        ));
    }
    if let Some(cpus) = c.cpus().as_deref().filter(|v| !v.is_empty()) {
        s.set(UNIFIED, "cpuset.cpus", cpus, false)?;
    }
    if let Some(mems) = c.mems().as_deref().filter(|v| !v.is_empty()) {
        s.set(UNIFIED, "cpuset.mems", mems, false)?;
    }
    Ok(())
}

fn apply_io(s: &Setter, b: &LinuxBlockIo) -> Result<(), CgroupError> {
    // Prefer io.bfq.weight (same 1..1000 scale as blkio.weight) when BFQ is the scheduler,
    // else io.weight with runc's conversion.
    let bfq = s.path(UNIFIED, "io.bfq.weight").is_some_and(|p| p.exists());
    if let Some(w) = b.weight().filter(|v| *v != 0) {
        if bfq {
            s.set(UNIFIED, "io.bfq.weight", &w.to_string(), false)?;
        } else {
            let v = format!("default {}", blkio_weight_to_io_weight(w));
            s.set(UNIFIED, "io.weight", &v, false)?;
        }
    }
    for wd in b.weight_device().iter().flatten() {
        if let Some(w) = wd.weight() {
            let (file, w) = if bfq {
                ("io.bfq.weight", u64::from(w))
            } else {
                ("io.weight", blkio_weight_to_io_weight(w))
            };
            let v = format!("{}:{} {}", wd.major(), wd.minor(), w);
            s.set(UNIFIED, file, &v, false)?;
        }
    }
    let throttles = [
        ("rbps", b.throttle_read_bps_device()),
        ("wbps", b.throttle_write_bps_device()),
        ("riops", b.throttle_read_iops_device()),
        ("wiops", b.throttle_write_iops_device()),
    ];
    for (key, devices) in throttles {
        for d in devices.iter().flatten() {
            let rate = if d.rate() == 0 {
                "max".to_string()
            } else {
                d.rate().to_string()
            };
            let v = format!("{}:{} {}={}", d.major(), d.minor(), key, rate);
            s.set(UNIFIED, "io.max", &v, false)?;
        }
    }
    Ok(())
}

fn unified_dir(cg: &Cgroup) -> Result<&Path, CgroupError> {
    cg.dir(UNIFIED)
        .ok_or_else(|| CgroupError::NoHierarchy("no cgroup2 directory".into()))
}

fn events_frozen(dir: &Path) -> Result<Option<bool>, CgroupError> {
    Ok(read_optional(&dir.join("cgroup.events"))?
        .map(|t| parse_flat_keyed(&t).get("frozen").copied() == Some(1)))
}

pub(crate) fn set_frozen(cg: &Cgroup, frozen: bool) -> Result<(), CgroupError> {
    let dir = unified_dir(cg)?;
    let path = dir.join("cgroup.freeze");
    if !path.exists() {
        return Err(CgroupError::MissingFile {
            resource: "freeze".into(),
            path,
        });
    }
    fs::write(&path, if frozen { "1" } else { "0" })?;
    let backoff = Backoff::exponential(Duration::from_micros(100), Duration::from_millis(10));
    let settled = poll::try_until(Duration::from_secs(5), backoff, || {
        // No cgroup.events to confirm with: trust the write.
        Ok::<_, CgroupError>(events_frozen(dir)?.is_none_or(|state| state == frozen))
    })?;
    if settled {
        return Ok(());
    }
    if frozen {
        let _ = fs::write(&path, "0");
    }
    Err(CgroupError::Timeout {
        path: dir.join("cgroup.events"),
        state: if frozen { "frozen" } else { "thawed" },
    })
}

pub(crate) fn is_frozen(cg: &Cgroup) -> Result<bool, CgroupError> {
    let dir = unified_dir(cg)?;
    if let Some(state) = events_frozen(dir)? {
        return Ok(state);
    }
    Ok(read_optional(&dir.join("cgroup.freeze"))?.is_some_and(|t| t.trim() == "1"))
}

fn memory_events(dir: &Path) -> Result<std::collections::BTreeMap<String, u64>, CgroupError> {
    Ok(read_optional(&dir.join("memory.events"))?
        .map(|t| parse_flat_keyed(&t))
        .unwrap_or_default())
}

pub(crate) fn oom_kill_count(cg: &Cgroup) -> Result<u64, CgroupError> {
    let dir = unified_dir(cg)?;
    Ok(memory_events(dir)?.get("oom_kill").copied().unwrap_or(0))
}

fn read_limit(path: &Path) -> Result<Option<u64>, CgroupError> {
    match read_optional(path)? {
        Some(t) => fs::parse_u64_or_max(path, &t),
        None => Ok(None),
    }
}

pub(crate) fn stats(cg: &Cgroup) -> Result<Stats, CgroupError> {
    let dir = unified_dir(cg)?;
    let mut st = Stats::default();
    if let Some(text) = read_optional(&dir.join("cpu.stat"))? {
        let kv = parse_flat_keyed(&text);
        let us = |k: &str| kv.get(k).copied().unwrap_or(0).saturating_mul(1000);
        st.cpu.usage_total_ns = us("usage_usec");
        st.cpu.usage_user_ns = us("user_usec");
        st.cpu.usage_system_ns = us("system_usec");
        st.cpu.throttling.periods = kv.get("nr_periods").copied().unwrap_or(0);
        st.cpu.throttling.throttled_periods = kv.get("nr_throttled").copied().unwrap_or(0);
        st.cpu.throttling.throttled_time_ns = us("throttled_usec");
    }
    let m = &mut st.memory;
    m.usage = read_u64(&dir.join("memory.current"))?;
    m.max_usage = read_u64(&dir.join("memory.peak"))?;
    m.limit = read_limit(&dir.join("memory.max"))?;
    let events = memory_events(dir)?;
    m.failcnt = events.get("max").copied().unwrap_or(0);
    m.oom_kills = events.get("oom_kill").copied().unwrap_or(0);
    m.swap_usage = read_u64(&dir.join("memory.swap.current"))?;
    m.swap_limit = read_limit(&dir.join("memory.swap.max"))?;
    if let Some(text) = read_optional(&dir.join("memory.stat"))? {
        m.stat = parse_flat_keyed(&text);
    }
    m.cache = m.stat.get("file").copied().unwrap_or(0);
    m.rss = m.stat.get("anon").copied().unwrap_or(0);
    st.pids.current = read_u64(&dir.join("pids.current"))?;
    st.pids.limit = read_limit(&dir.join("pids.max"))?;
    if let Some(text) = read_optional(&dir.join("io.stat"))? {
        st.blkio.entries = parse_io_stat(&text);
        let sum = |op: &str| {
            st.blkio
                .entries
                .iter()
                .filter(|e| e.op == op)
                .map(|e| e.value)
                .sum()
        };
        st.blkio.read_bytes = sum("Read");
        st.blkio.write_bytes = sum("Write");
    }
    st.hugetlb = hugetlb_stats(dir)?;
    Ok(st)
}

/// io.stat lines: "8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=5 dios=6".
pub(crate) fn parse_io_stat(text: &str) -> Vec<BlkioEntry> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut it = line.split_whitespace();
        let Some((major, minor)) = it.next().and_then(|d| d.split_once(':')) else {
            continue;
        };
        let (Ok(major), Ok(minor)) = (major.parse(), minor.parse()) else {
            continue;
        };
        for kv in it {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            let op = match k {
                "rbytes" => "Read",
                "wbytes" => "Write",
                "dbytes" => "Discard",
                "rios" => "ReadIos",
                "wios" => "WriteIos",
                "dios" => "DiscardIos",
                _ => continue,
            };
            if let Ok(value) = v.parse() {
                out.push(BlkioEntry {
                    major,
                    minor,
                    op: op.to_string(),
                    value,
                });
            }
        }
    }
    out
}

fn hugetlb_stats(
    dir: &Path,
) -> Result<std::collections::BTreeMap<String, HugetlbStats>, CgroupError> {
    let mut out = std::collections::BTreeMap::new();
    let entries = std::fs::read_dir(dir).map_err(|source| CgroupError::Read {
        path: dir.to_path_buf(),
        source,
    })?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(size) = name
            .strip_prefix("hugetlb.")
            .and_then(|r| r.strip_suffix(".current"))
        else {
            continue;
        };
        let events = read_optional(&dir.join(format!("hugetlb.{size}.events")))?
            .map(|t| parse_flat_keyed(&t))
            .unwrap_or_default();
        out.insert(
            size.to_string(),
            HugetlbStats {
                usage: read_u64(&entry.path())?,
                max_usage: 0,
                failcnt: events.get("max").copied().unwrap_or(0),
            },
        );
    }
    Ok(out)
}
