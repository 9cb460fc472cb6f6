//! `berth stats --no-stream`: one row of Docker's stats columns per container, from its cgroup
//! (through berth-cgroups) sampled twice 100 ms apart for CPU %.
use crate::record::ContainerRecord;
use serde::Serialize;

use berth_common::units::{bytes_size, human_size};

/// One `stats --no-stream` row with Docker's `--format` field names.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StatsRow {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Container")]
    pub container: String,
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "CPUPerc")]
    pub cpu_perc: String,
    #[serde(rename = "MemUsage")]
    pub mem_usage: String,
    #[serde(rename = "MemPerc")]
    pub mem_perc: String,
    #[serde(rename = "NetIO")]
    pub net_io: String,
    #[serde(rename = "BlockIO")]
    pub block_io: String,
    #[serde(rename = "PIDs")]
    pub pids: String,
}

fn cgroup(record: &ContainerRecord) -> Option<berth_cgroups::Cgroup> {
    let h = berth_cgroups::Hierarchy::detect().ok()?;
    berth_cgroups::Cgroup::open(&h, &record.berth_cgroups_path).ok()
}

/// The stats row for `record` (zeros when it is not running).
pub fn stats_row(record: &ContainerRecord) -> StatsRow {
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
    StatsRow {
        container: id.clone(),
        id,
        name: record.short_name().to_string(),
        cpu_perc: format!("{cpu:.2}%"),
        mem_usage: format!("{} / {}", bytes_size(usage), bytes_size(limit)),
        mem_perc: format!("{mem_pct:.2}%"),
        net_io: "0B / 0B".into(),
        block_io: format!("{} / {}", human_size(rd), human_size(wr)),
        pids: pids.to_string(),
    }
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
    fn a_stopped_container_has_a_zero_row_with_docker_names() {
        let record = crate::record::ContainerRecord {
            id: "a".repeat(64),
            name: "/web".into(),
            ..Default::default()
        };
        let row = super::stats_row(&record);
        assert_eq!(row.id, "a".repeat(12));
        assert_eq!(row.mem_usage, "0B / 0B");
        let json = serde_json::to_value(&row).unwrap();
        for key in [
            "ID", "Name", "CPUPerc", "MemUsage", "MemPerc", "NetIO", "BlockIO", "PIDs",
        ] {
            assert!(json.get(key).is_some(), "{key}");
        }
    }
}
