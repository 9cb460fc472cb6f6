//! `berth stats --no-stream`: one row of Docker's stats columns per container, from its cgroup
//! (through berth-cgroups) sampled twice 100 ms apart for CPU %.
use crate::record::ContainerRecord;
use serde_json::{json, Value};

/// Docker's `units.BytesSize` (binary, e.g. `1.5MiB`).
pub fn bytes_size(n: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i < units.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    format!("{}{}", trim_float(v), units[i])
}

/// Docker's `units.HumanSize` (decimal, e.g. `1.2MB`).
pub fn human_size(n: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1000.0 && i < units.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    format!("{}{}", trim_float(v), units[i])
}

fn trim_float(v: f64) -> String {
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    let digits = s.split('.').next().map(|x| x.len()).unwrap_or(0);
    if digits >= 3 {
        format!("{:.0}", v)
    } else {
        format!(
            "{:.*}",
            4usize.saturating_sub(digits).min(3).saturating_sub(1),
            v
        )
        .trim_end_matches('0')
        .trim_end_matches('.')
        .to_string()
    }
}

fn cgroup(record: &ContainerRecord) -> Option<berth_cgroups::Cgroup> {
    let h = berth_cgroups::Hierarchy::detect().ok()?;
    berth_cgroups::Cgroup::open(&h, &record.berth_cgroups_path).ok()
}

/// The stats row for `record` (zeros when it is not running).
pub fn stats_row(record: &ContainerRecord) -> Value {
    let id: String = record.id.chars().take(12).collect();
    let running = record.is_running();
    let cg = if running { cgroup(record) } else { None };
    let first = cg.as_ref().and_then(|c| c.stats().ok());
    let t0 = std::time::Instant::now();
    let (cpu, stats) = match (&cg, first) {
        (Some(c), Some(a)) => {
            std::thread::sleep(std::time::Duration::from_millis(100));
            let b = c.stats().ok();
            let wall = t0.elapsed().as_nanos() as f64;
            let pct = b
                .as_ref()
                .map(|b| {
                    (b.cpu.usage_total_ns.saturating_sub(a.cpu.usage_total_ns)) as f64 / wall
                        * 100.0
                })
                .unwrap_or(0.0);
            (pct, b.or(Some(a)))
        }
        _ => (0.0, None),
    };
    let (usage, limit, pids, rd, wr) = match &stats {
        Some(s) => {
            let host_mem = host_memory();
            let limit = s.memory.limit.filter(|l| *l < host_mem).unwrap_or(host_mem);
            let usage = s.memory.usage.saturating_sub(
                s.memory
                    .stat
                    .get("total_inactive_file")
                    .or(s.memory.stat.get("inactive_file"))
                    .copied()
                    .unwrap_or(0),
            );
            (
                usage,
                limit,
                s.pids.current,
                s.blkio.read_bytes,
                s.blkio.write_bytes,
            )
        }
        None => (0, 0, 0, 0, 0),
    };
    let mem_pct = if limit > 0 {
        usage as f64 / limit as f64 * 100.0
    } else {
        0.0
    };
    json!({
        "ID": id,
        "Container": id,
        "Name": record.short_name(),
        "CPUPerc": format!("{cpu:.2}%"),
        "MemUsage": format!("{} / {}", bytes_size(usage), bytes_size(limit)),
        "MemPerc": format!("{mem_pct:.2}%"),
        "NetIO": "0B / 0B",
        "BlockIO": format!("{} / {}", human_size(rd), human_size(wr)),
        "PIDs": pids.to_string(),
    })
}

fn host_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        })
        .map(|kib| kib * 1024)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes_look_like_docker() {
        assert_eq!(super::bytes_size(0), "0B");
        assert_eq!(super::bytes_size(1536), "1.5KiB");
        assert_eq!(super::bytes_size(32 << 20), "32MiB");
        assert_eq!(super::human_size(1_200_000), "1.2MB");
    }
}
