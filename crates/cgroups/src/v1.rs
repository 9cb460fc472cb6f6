//! cgroup v1 backend: one directory per controller. Writes OCI resources into the v1 control
//! files (runc's ordering rules for memory+swap and CFS period/quota), freezes through the
//! freezer controller, and reads usage from cpuacct, cpu, memory, pids, blkio and hugetlb.

use crate::devices::v1_device_writes;
use crate::fs::{self, parse_flat_keyed, read_optional, read_u64, Setter};
use crate::stats::{BlkioEntry, HugetlbStats};
use crate::{Cgroup, CgroupError, CgroupVersion, Stats};
use berth_common::poll::{self, Backoff};
use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxResources};
use std::path::Path;
use std::time::Duration;

/// v1 reports "unlimited" as a huge page-aligned number (PAGE_COUNTER_MAX * PAGE_SIZE).
const V1_UNLIMITED_THRESHOLD: u64 = 1 << 62;

/// USER_HZ, the unit of cpuacct.stat on every Linux architecture Berth supports.
const USER_HZ: u64 = 100;

pub(crate) fn apply(cg: &Cgroup, r: &LinuxResources) -> Result<(), CgroupError> {
    // Refused before anything is written, in runc's words.
    if r.unified().as_ref().is_some_and(|u| !u.is_empty()) {
        return Err(CgroupError::Unsupported {
            resource: "linux.resources.unified".into(),
            version: CgroupVersion::V1,
            reason: "invalid configuration: cannot use unified on cgroup v1".into(),
        });
    }
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
        s.set("pids", "pids.max", &v, p.limit() <= 0)?;
    }
    if let Some(b) = r.block_io() {
        apply_blkio(&s, b)?;
    }
    for h in r.hugepage_limits().iter().flatten() {
        let file = format!("hugetlb.{}.limit_in_bytes", h.page_size());
        s.set("hugetlb", &file, &h.limit().to_string(), false)?;
    }
    if let Some(n) = r.network() {
        if let Some(id) = n.class_id() {
            s.set("net_cls", "net_cls.classid", &id.to_string(), false)?;
        }
        for p in n.priorities().iter().flatten() {
            let v = format!("{} {}", p.name(), p.priority());
            s.set("net_prio", "net_prio.ifpriomap", &v, false)?;
        }
    }
    for (dev, limit) in r.rdma().iter().flatten() {
        let mut parts = vec![dev.clone()];
        if let Some(h) = limit.hca_handles() {
            parts.push(format!("hca_handle={h}"));
        }
        if let Some(o) = limit.hca_objects() {
            parts.push(format!("hca_object={o}"));
        }
        s.set("rdma", "rdma.max", &parts.join(" "), false)?;
    }
    if let Some(devices) = r.devices() {
        apply_devices(&s, devices)?;
    }
    Ok(())
}

fn apply_memory(s: &Setter, m: &LinuxMemory) -> Result<(), CgroupError> {
    let limit = m.limit().filter(|v| *v != 0);
    let mut swap = m.swap().filter(|v| *v != 0);
    // runc: "memory unlimited" without a swap value means memory+swap unlimited too.
    if limit == Some(-1) && swap.is_none() {
        swap = Some(-1);
    }
    let set_limit = |v: i64| s.set("memory", "memory.limit_in_bytes", &v.to_string(), v == -1);
    let set_swap = |v: i64| {
        s.set(
            "memory",
            "memory.memsw.limit_in_bytes",
            &v.to_string(),
            v == -1,
        )
    };
    match (limit, swap) {
        (Some(l), Some(sw)) => {
            // memsw must stay >= memory at every step: raise memsw first when growing.
            let current = s
                .path("memory", "memory.limit_in_bytes")
                .map(|p| read_u64(&p))
                .transpose()?
                .unwrap_or(0);
            if sw == -1 || (current as i128) < sw as i128 {
                set_swap(sw)?;
                set_limit(l)?;
            } else {
                set_limit(l)?;
                set_swap(sw)?;
            }
        }
        (Some(l), None) => set_limit(l)?,
        (None, Some(sw)) => set_swap(sw)?,
        (None, None) => {}
    }
    if let Some(res) = m.reservation().filter(|v| *v != 0) {
        s.set(
            "memory",
            "memory.soft_limit_in_bytes",
            &res.to_string(),
            res == -1,
        )?;
    }
    if m.kernel().is_some() || m.kernel_tcp().is_some() {
        tracing::debug!("kernel memory limits are deprecated and ignored");
    }
    if let Some(sw) = m.swappiness() {
        if sw > 100 {
            return Err(CgroupError::Unsupported {
                resource: format!("memory.swappiness {sw}"),
                version: CgroupVersion::V1,
                reason: "valid range is 0-100".into(),
            });
        }
        s.set("memory", "memory.swappiness", &sw.to_string(), false)?;
    }
    if let Some(disable) = m.disable_oom_killer() {
        let v = if disable { "1" } else { "0" };
        s.set("memory", "memory.oom_control", v, !disable)?;
    }
    Ok(())
}

fn apply_cpu(s: &Setter, c: &LinuxCpu) -> Result<(), CgroupError> {
    if let Some(shares) = c.shares().filter(|v| *v != 0) {
        s.set("cpu", "cpu.shares", &shares.to_string(), false)?;
    }
    let period = c.period().filter(|v| *v != 0);
    let quota = c.quota().filter(|v| *v != 0);
    if let Some(p) = period {
        // A shorter period can be refused while the old quota exceeds it: then quota goes first.
        if let Err(e) = s.set("cpu", "cpu.cfs_period_us", &p.to_string(), false) {
            match (quota, &e) {
                (Some(q), CgroupError::Write { source, .. })
                    if source.raw_os_error() == Some(libc::EINVAL) =>
                {
                    s.set("cpu", "cpu.cfs_quota_us", &q.to_string(), false)?;
                    s.set("cpu", "cpu.cfs_period_us", &p.to_string(), false)?;
                }
                _ => return Err(e),
            }
        }
    }
    if let Some(q) = quota {
        s.set("cpu", "cpu.cfs_quota_us", &q.to_string(), q == -1)?;
    }
    if let Some(b) = c.burst() {
        s.set("cpu", "cpu.cfs_burst_us", &b.to_string(), b == 0)?;
    }
    if let Some(idle) = c.idle() {
        s.set("cpu", "cpu.idle", &idle.to_string(), idle == 0)?;
    }
    if let Some(p) = c.realtime_period().filter(|v| *v != 0) {
        s.set("cpu", "cpu.rt_period_us", &p.to_string(), false)?;
    }
    if let Some(rt) = c.realtime_runtime().filter(|v| *v != 0) {
        s.set("cpu", "cpu.rt_runtime_us", &rt.to_string(), false)?;
    }
    if let Some(cpus) = c.cpus().as_deref().filter(|v| !v.is_empty()) {
        s.set("cpuset", "cpuset.cpus", cpus, false)?;
    }
    if let Some(mems) = c.mems().as_deref().filter(|v| !v.is_empty()) {
        s.set("cpuset", "cpuset.mems", mems, false)?;
    }
    Ok(())
}

fn apply_blkio(s: &Setter, b: &LinuxBlockIo) -> Result<(), CgroupError> {
    // Hosts with BFQ only expose blkio.bfq.weight; runc writes whichever exists.
    let weight_file = |plain: &'static str, bfq: &'static str| {
        if s.path("blkio", plain).is_some_and(|p| p.exists()) {
            plain
        } else if s.path("blkio", bfq).is_some_and(|p| p.exists()) {
            bfq
        } else {
            plain
        }
    };
    if let Some(w) = b.weight().filter(|v| *v != 0) {
        let file = weight_file("blkio.weight", "blkio.bfq.weight");
        s.set("blkio", file, &w.to_string(), false)?;
    }
    if let Some(w) = b.leaf_weight().filter(|v| *v != 0) {
        s.set("blkio", "blkio.leaf_weight", &w.to_string(), false)?;
    }
    for wd in b.weight_device().iter().flatten() {
        if let Some(w) = wd.weight() {
            let file = weight_file("blkio.weight_device", "blkio.bfq.weight_device");
            let v = format!("{}:{} {}", wd.major(), wd.minor(), w);
            s.set("blkio", file, &v, false)?;
        }
        if let Some(w) = wd.leaf_weight() {
            let v = format!("{}:{} {}", wd.major(), wd.minor(), w);
            s.set("blkio", "blkio.leaf_weight_device", &v, false)?;
        }
    }
    let throttles = [
        (
            "blkio.throttle.read_bps_device",
            b.throttle_read_bps_device(),
        ),
        (
            "blkio.throttle.write_bps_device",
            b.throttle_write_bps_device(),
        ),
        (
            "blkio.throttle.read_iops_device",
            b.throttle_read_iops_device(),
        ),
        (
            "blkio.throttle.write_iops_device",
            b.throttle_write_iops_device(),
        ),
    ];
    for (file, devices) in throttles {
        for d in devices.iter().flatten() {
            let v = format!("{}:{} {}", d.major(), d.minor(), d.rate());
            s.set("blkio", file, &v, false)?;
        }
    }
    Ok(())
}

fn apply_devices(
    s: &Setter,
    devices: &[oci_spec::runtime::LinuxDeviceCgroup],
) -> Result<(), CgroupError> {
    for (file, line) in v1_device_writes(devices) {
        s.set("devices", file, &line, false)?;
    }
    Ok(())
}

/// New cpuset cgroups start with empty cpus/mems, which makes joining them fail: give every
/// level from the root down to `dir` its parent's values when empty.
pub(crate) fn init_cpuset_levels(root: &Path, dir: &Path) -> Result<(), CgroupError> {
    let Ok(rel) = dir.strip_prefix(root) else {
        return Ok(());
    };
    let mut parent = root.to_path_buf();
    for comp in rel.components() {
        let child = parent.join(comp);
        for file in ["cpuset.cpus", "cpuset.mems"] {
            let child_file = child.join(file);
            let Some(current) = read_optional(&child_file)? else {
                continue;
            };
            if current.trim().is_empty() {
                let inherited = fs::read(&parent.join(file))?;
                if !inherited.trim().is_empty() {
                    fs::write(&child_file, inherited.trim())?;
                }
            }
        }
        parent = child;
    }
    Ok(())
}

fn freezer_state_path(cg: &Cgroup) -> Result<std::path::PathBuf, CgroupError> {
    cg.dir("freezer")
        .map(|d| d.join("freezer.state"))
        .ok_or_else(|| CgroupError::MissingController {
            resource: "freeze".into(),
            controller: "freezer".into(),
        })
}

pub(crate) fn set_frozen(cg: &Cgroup, frozen: bool) -> Result<(), CgroupError> {
    let path = freezer_state_path(cg)?;
    let (want, label) = if frozen {
        ("FROZEN", "frozen")
    } else {
        ("THAWED", "thawed")
    };
    let backoff = Backoff::exponential(Duration::from_micros(100), Duration::from_millis(10));
    // Polls left before FROZEN is written again.
    let mut attempt = 0u32;
    let settled = poll::try_until(Duration::from_secs(5), backoff, || {
        // The kernel may stall in FREEZING when a task is in an uninterruptible sleep; writing
        // FROZEN again retries the freeze (as runc does).
        if attempt == 0 {
            fs::write(&path, want)?;
            attempt = 8;
        }
        attempt -= 1;
        Ok::<_, CgroupError>(fs::read(&path)?.trim() == want)
    })?;
    if settled {
        return Ok(());
    }
    if frozen {
        let _ = fs::write(&path, "THAWED");
    }
    Err(CgroupError::Timeout { path, state: label })
}

pub(crate) fn is_frozen(cg: &Cgroup) -> Result<bool, CgroupError> {
    let path = freezer_state_path(cg)?;
    // FREEZING: a freeze in progress, or a frozen cgroup that just received a new task (exec
    // --ignore-paused); either way the container is paused, not running.
    Ok(matches!(fs::read(&path)?.trim(), "FROZEN" | "FREEZING"))
}

pub(crate) fn oom_kill_count(cg: &Cgroup) -> Result<u64, CgroupError> {
    let Some(dir) = cg.dir("memory") else {
        return Ok(0);
    };
    let text = read_optional(&dir.join("memory.oom_control"))?.unwrap_or_default();
    Ok(parse_flat_keyed(&text)
        .get("oom_kill")
        .copied()
        .unwrap_or(0))
}

fn limit_value(v: u64) -> Option<u64> {
    (v < V1_UNLIMITED_THRESHOLD).then_some(v)
}

pub(crate) fn stats(cg: &Cgroup) -> Result<Stats, CgroupError> {
    let mut st = Stats::default();
    if let Some(dir) = cg.dir("cpuacct") {
        let cpu = &mut st.cpu;
        cpu.usage_total_ns = read_u64(&dir.join("cpuacct.usage"))?;
        let user = dir.join("cpuacct.usage_user");
        if user.exists() {
            cpu.usage_user_ns = read_u64(&user)?;
            cpu.usage_system_ns = read_u64(&dir.join("cpuacct.usage_sys"))?;
        } else if let Some(text) = read_optional(&dir.join("cpuacct.stat"))? {
            let kv = parse_flat_keyed(&text);
            let ticks_to_ns = |t: u64| t.saturating_mul(1_000_000_000 / USER_HZ);
            cpu.usage_user_ns = ticks_to_ns(kv.get("user").copied().unwrap_or(0));
            cpu.usage_system_ns = ticks_to_ns(kv.get("system").copied().unwrap_or(0));
        }
        if let Some(text) = read_optional(&dir.join("cpuacct.usage_percpu"))? {
            cpu.usage_per_cpu_ns = text
                .split_whitespace()
                .filter_map(|v| v.parse().ok())
                .collect();
        }
    }
    if let Some(dir) = cg.dir("cpu") {
        if let Some(text) = read_optional(&dir.join("cpu.stat"))? {
            let kv = parse_flat_keyed(&text);
            let t = &mut st.cpu.throttling;
            t.periods = kv.get("nr_periods").copied().unwrap_or(0);
            t.throttled_periods = kv.get("nr_throttled").copied().unwrap_or(0);
            t.throttled_time_ns = kv.get("throttled_time").copied().unwrap_or(0);
        }
    }
    if let Some(dir) = cg.dir("memory") {
        let m = &mut st.memory;
        m.usage = read_u64(&dir.join("memory.usage_in_bytes"))?;
        m.max_usage = read_u64(&dir.join("memory.max_usage_in_bytes"))?;
        m.failcnt = read_u64(&dir.join("memory.failcnt"))?;
        let limit_path = dir.join("memory.limit_in_bytes");
        m.limit = if limit_path.exists() {
            limit_value(read_u64(&limit_path)?)
        } else {
            None
        };
        let memsw_usage = dir.join("memory.memsw.usage_in_bytes");
        if memsw_usage.exists() {
            m.swap_usage = read_u64(&memsw_usage)?.saturating_sub(m.usage);
            m.swap_limit = limit_value(read_u64(&dir.join("memory.memsw.limit_in_bytes"))?);
        }
        if let Some(text) = read_optional(&dir.join("memory.stat"))? {
            m.stat = parse_flat_keyed(&text);
        }
        let pick = |a: &str, b: &str| m.stat.get(a).or_else(|| m.stat.get(b)).copied();
        m.cache = pick("total_cache", "cache").unwrap_or(0);
        m.rss = pick("total_rss", "rss").unwrap_or(0);
        m.oom_kills = oom_kill_count(cg)?;
    }
    if let Some(dir) = cg.dir("pids") {
        st.pids.current = read_u64(&dir.join("pids.current"))?;
        if let Some(text) = read_optional(&dir.join("pids.max"))? {
            st.pids.limit = fs::parse_u64_or_max(&dir.join("pids.max"), &text)?;
        }
    }
    if let Some(dir) = cg.dir("blkio") {
        st.blkio = blkio_stats(dir)?;
    }
    if let Some(dir) = cg.dir("hugetlb") {
        st.hugetlb = hugetlb_stats(dir)?;
    }
    Ok(st)
}

/// The first non-empty of the recursive byte counters: CFQ, BFQ, then the throttle layer.
fn blkio_stats(dir: &Path) -> Result<crate::BlkioStats, CgroupError> {
    let mut out = crate::BlkioStats::default();
    for file in [
        "blkio.io_service_bytes_recursive",
        "blkio.bfq.io_service_bytes_recursive",
        "blkio.throttle.io_service_bytes_recursive",
    ] {
        let Some(text) = read_optional(&dir.join(file))? else {
            continue;
        };
        let entries = parse_blkio_entries(&text);
        if entries.is_empty() {
            continue;
        }
        out.read_bytes = entries
            .iter()
            .filter(|e| e.op == "Read")
            .map(|e| e.value)
            .sum();
        out.write_bytes = entries
            .iter()
            .filter(|e| e.op == "Write")
            .map(|e| e.value)
            .sum();
        out.entries = entries;
        break;
    }
    Ok(out)
}

/// "8:0 Read 4096" lines (the trailing "Total N" line has no device and is skipped).
pub(crate) fn parse_blkio_entries(text: &str) -> Vec<BlkioEntry> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let (dev, op, value) = (it.next()?, it.next()?, it.next()?);
            let (major, minor) = dev.split_once(':')?;
            Some(BlkioEntry {
                major: major.parse().ok()?,
                minor: minor.parse().ok()?,
                op: op.to_string(),
                value: value.parse().ok()?,
            })
        })
        .collect()
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
            .and_then(|r| r.strip_suffix(".usage_in_bytes"))
        else {
            continue;
        };
        out.insert(
            size.to_string(),
            HugetlbStats {
                usage: read_u64(&entry.path())?,
                max_usage: read_u64(&dir.join(format!("hugetlb.{size}.max_usage_in_bytes")))?,
                failcnt: read_u64(&dir.join(format!("hugetlb.{size}.failcnt")))?,
            },
        );
    }
    Ok(out)
}
