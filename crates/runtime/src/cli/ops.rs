//! `ps`, `update`, `events`, `spec`, `list`.

use anyhow::Context;
use berth_runtime::{Runtime, Status};
use serde_json::{json, Value};
use std::io::Read;
use std::path::PathBuf;
use std::process::Command;

#[derive(clap::Args, Debug)]
pub struct PsArgs {
    pub id: String,
    /// table or json
    #[arg(short, long, default_value = "table")]
    pub format: String,
    /// Arguments for ps(1) (default -ef)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
}

pub fn ps(rt: &Runtime, a: &PsArgs) -> anyhow::Result<i32> {
    let pids = rt.processes(&a.id)?;
    if a.format == "json" {
        println!("{}", serde_json::to_string(&pids)?);
        return Ok(0);
    }
    anyhow::ensure!(a.format == "table", "invalid format option {:?}", a.format);
    let args: Vec<String> = if a.ps_args.is_empty() {
        vec!["-ef".into()]
    } else {
        a.ps_args.clone()
    };
    let out = Command::new("ps")
        .args(&args)
        .output()
        .context("running ps")?;
    anyhow::ensure!(
        out.status.success(),
        "ps failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or("");
    let pid_col = header
        .split_whitespace()
        .position(|c| c == "PID")
        .context("couldn't find PID field in ps output")?;
    println!("{header}");
    for line in lines {
        let pid = line
            .split_whitespace()
            .nth(pid_col)
            .and_then(|p| p.parse::<i32>().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            println!("{line}");
        }
    }
    Ok(0)
}

#[derive(clap::Args, Debug)]
pub struct UpdateArgs {
    pub id: String,
    /// Resources JSON file ("-" for stdin)
    #[arg(short, long)]
    pub resources: Option<PathBuf>,
    #[arg(long, allow_negative_numbers = true)]
    pub memory: Option<String>,
    #[arg(long = "memory-reservation", allow_negative_numbers = true)]
    pub memory_reservation: Option<String>,
    #[arg(long = "memory-swap", allow_negative_numbers = true)]
    pub memory_swap: Option<String>,
    #[arg(long = "kernel-memory", allow_negative_numbers = true)]
    pub kernel_memory: Option<String>,
    #[arg(long = "cpu-shares")]
    pub cpu_shares: Option<u64>,
    #[arg(long = "cpu-quota", allow_negative_numbers = true)]
    pub cpu_quota: Option<i64>,
    #[arg(long = "cpu-period")]
    pub cpu_period: Option<u64>,
    #[arg(long = "cpu-rt-period")]
    pub cpu_rt_period: Option<u64>,
    #[arg(long = "cpu-rt-runtime", allow_negative_numbers = true)]
    pub cpu_rt_runtime: Option<i64>,
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    #[arg(long = "pids-limit", allow_negative_numbers = true)]
    pub pids_limit: Option<i64>,
    #[arg(long = "blkio-weight")]
    pub blkio_weight: Option<u16>,
}

/// "512m", "1g", "1024" (Docker's `RAMInBytes`), or runc's "-1" (unlimited) → bytes.
pub fn parse_bytes(s: &str) -> anyhow::Result<i64> {
    if s.trim() == "-1" {
        return Ok(-1);
    }
    Ok(berth_common::units::parse_bytes(s)?)
}

pub fn update(rt: &Runtime, a: &UpdateArgs) -> anyhow::Result<i32> {
    let mut v: Value = match &a.resources {
        Some(p) if p.as_os_str() == "-" => {
            let mut s = String::new();
            std::io::stdin().read_to_string(&mut s)?;
            serde_json::from_str(&s).context("parsing resources from stdin")?
        }
        Some(p) => serde_json::from_slice(
            &std::fs::read(p).with_context(|| format!("reading {}", p.display()))?,
        )
        .with_context(|| format!("parsing {}", p.display()))?,
        None => json!({}),
    };
    let mut set = |section: &str, key: &str, val: Value| {
        if !v[section].is_object() {
            v[section] = json!({});
        }
        v[section][key] = val;
    };
    if let Some(m) = &a.memory {
        set("memory", "limit", json!(parse_bytes(m)?));
    }
    if let Some(m) = &a.memory_reservation {
        set("memory", "reservation", json!(parse_bytes(m)?));
    }
    if let Some(m) = &a.memory_swap {
        set("memory", "swap", json!(parse_bytes(m)?));
    }
    if let Some(m) = &a.kernel_memory {
        set("memory", "kernel", json!(parse_bytes(m)?));
    }
    if let Some(x) = a.cpu_shares {
        set("cpu", "shares", json!(x));
    }
    if let Some(x) = a.cpu_quota {
        set("cpu", "quota", json!(x));
    }
    if let Some(x) = a.cpu_period {
        set("cpu", "period", json!(x));
    }
    if let Some(x) = a.cpu_rt_period {
        set("cpu", "realtimePeriod", json!(x));
    }
    if let Some(x) = a.cpu_rt_runtime {
        set("cpu", "realtimeRuntime", json!(x));
    }
    if let Some(x) = &a.cpuset_cpus {
        set("cpu", "cpus", json!(x));
    }
    if let Some(x) = &a.cpuset_mems {
        set("cpu", "mems", json!(x));
    }
    if let Some(x) = a.pids_limit {
        set("pids", "limit", json!(x));
    }
    if let Some(x) = a.blkio_weight {
        set("blockIO", "weight", json!(x));
    }
    let resources: oci_spec::runtime::LinuxResources =
        serde_json::from_value(v).context("invalid resources")?;
    rt.update(&a.id, &resources)?;
    Ok(0)
}

#[derive(clap::Args, Debug)]
pub struct EventsArgs {
    pub id: String,
    /// Print one stats event and exit
    #[arg(long)]
    pub stats: bool,
    /// Interval between stats events (e.g. 5s, 500ms)
    #[arg(long, default_value = "5s")]
    pub interval: String,
}

fn parse_interval(s: &str) -> anyhow::Result<std::time::Duration> {
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map(|i| s.split_at(i))
        .unwrap_or((s, "s"));
    let n: f64 = num
        .parse()
        .with_context(|| format!("invalid interval {s:?}"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" | "" => n,
        "m" => n * 60.0,
        _ => anyhow::bail!("invalid interval {s:?}"),
    };
    anyhow::ensure!(secs > 0.0, "interval must be greater than 0");
    Ok(std::time::Duration::from_secs_f64(secs))
}

/// One event line in runc's field order (`type`, `id`, then `data` when there is any);
/// serde_json's map would sort the keys.
#[derive(serde::Serialize)]
struct Event<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<Value>,
}

fn event_line(kind: &str, id: &str, data: Option<Value>) -> String {
    serde_json::to_string(&Event { kind, id, data }).unwrap_or_default()
}

fn stats_event(rt: &Runtime, id: &str) -> anyhow::Result<String> {
    let stats = rt.stats(id)?;
    Ok(event_line("stats", id, Some(runc_stats(&stats))))
}

/// The cgroup statistics in the shape of runc's `events --stats` (runc's `types.Stats`), which
/// tools that drive runc parse: cpu.usage in ns, memory.usage/swap with limit (the all-ones
/// value when unlimited, as the kernel reports), pids, blkio recursive entries, hugetlb.
fn runc_stats(s: &berth_cgroups::Stats) -> Value {
    let unlimited = |v: Option<u64>| v.unwrap_or(u64::MAX);
    let blkio: Vec<Value> = s
        .blkio
        .entries
        .iter()
        .map(|e| json!({"major": e.major, "minor": e.minor, "op": e.op, "value": e.value}))
        .collect();
    let hugetlb: serde_json::Map<String, Value> = s
        .hugetlb
        .iter()
        .map(|(size, h)| {
            (
                size.clone(),
                json!({"usage": h.usage, "max": h.max_usage, "failcnt": h.failcnt}),
            )
        })
        .collect();
    json!({
        "cpu": {
            "usage": {
                "total": s.cpu.usage_total_ns,
                "percpu": s.cpu.usage_per_cpu_ns,
                "kernel": s.cpu.usage_system_ns,
                "user": s.cpu.usage_user_ns,
            },
            "throttling": {
                "periods": s.cpu.throttling.periods,
                "throttled_periods": s.cpu.throttling.throttled_periods,
                "throttled_time": s.cpu.throttling.throttled_time_ns,
            },
        },
        "memory": {
            "cache": s.memory.cache,
            "usage": {
                "limit": unlimited(s.memory.limit),
                "usage": s.memory.usage,
                "max": s.memory.max_usage,
                "failcnt": s.memory.failcnt,
            },
            "swap": {"limit": unlimited(s.memory.swap_limit), "usage": s.memory.swap_usage},
            "raw": s.memory.stat,
        },
        "pids": {"current": s.pids.current, "limit": s.pids.limit.unwrap_or(0)},
        "blkio": {"ioServiceBytesRecursive": blkio},
        "hugetlb": hugetlb,
        "intel_rdt": {},
        "network_interfaces": null,
    })
}

pub fn events(rt: &Runtime, a: &EventsArgs) -> anyhow::Result<i32> {
    let interval = parse_interval(&a.interval)?;
    if rt.state(&a.id)?.status == Status::Stopped {
        anyhow::bail!("container with id {} is not running", a.id);
    }
    if a.stats {
        println!("{}", stats_event(rt, &a.id)?);
        return Ok(0);
    }
    let mut ooms = berth_runtime::lifecycle::oom_kills(rt, &a.id).unwrap_or(0);
    loop {
        let stopped = !matches!(rt.state(&a.id), Ok(st) if st.status != Status::Stopped);
        // Checked once more after the container stopped: the OOM kill may be what stopped it.
        let now = berth_runtime::lifecycle::oom_kills(rt, &a.id).unwrap_or(ooms);
        if now > ooms {
            println!("{}", event_line("oom", &a.id, None));
            ooms = now;
        }
        if stopped {
            return Ok(0);
        }
        if let Ok(ev) = stats_event(rt, &a.id) {
            println!("{ev}");
        }
        std::thread::sleep(interval);
    }
}

#[derive(clap::Args, Debug)]
pub struct SpecArgs {
    /// Directory to write config.json into
    #[arg(short, long, default_value = ".")]
    pub bundle: PathBuf,
}

pub fn spec(a: &SpecArgs, rootless: bool) -> anyhow::Result<i32> {
    let path = a.bundle.join("config.json");
    anyhow::ensure!(
        !path.exists(),
        "File {} exists. Remove it first",
        path.display()
    );
    let spec = berth_runtime::defaults::default_spec(rootless);
    std::fs::write(&path, serde_json::to_string_pretty(&spec)?)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(0)
}

#[derive(clap::Args, Debug)]
pub struct ListArgs {
    /// table or json
    #[arg(short, long, default_value = "table")]
    pub format: String,
    /// Only ids
    #[arg(short, long)]
    pub quiet: bool,
}

pub fn list(rt: &Runtime, a: &ListArgs) -> anyhow::Result<i32> {
    let all = rt.list()?;
    if a.quiet {
        for c in &all {
            println!("{}", c.id);
        }
        return Ok(0);
    }
    match a.format.as_str() {
        "json" => println!("{}", serde_json::to_string(&all)?),
        "table" => {
            let mut rows =
                vec![["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"].map(String::from)];
            for c in &all {
                rows.push([
                    c.id.clone(),
                    c.pid.to_string(),
                    c.status.to_string(),
                    c.bundle.display().to_string(),
                    c.created.clone(),
                    "root".to_owned(),
                ]);
            }
            print!("{}", table(&rows));
        }
        f => anyhow::bail!("invalid format option {f:?}"),
    }
    Ok(0)
}

/// runc's tabwriter layout: min width 12, padding 3.
fn table(rows: &[[String; 6]]) -> String {
    let mut widths = [12usize; 6];
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.len() + 3);
        }
    }
    let mut out = String::new();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if i + 1 == r.len() {
                out.push_str(c);
            } else {
                out.push_str(&format!("{c:<w$}", w = widths[i]));
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_bytes("512m").unwrap(), 512 << 20);
        assert_eq!(parse_bytes("1G").unwrap(), 1 << 30);
        assert_eq!(parse_bytes("100").unwrap(), 100);
        assert_eq!(parse_bytes("-1").unwrap(), -1);
    }

    #[test]
    fn events_keep_runcs_field_order() {
        assert_eq!(
            event_line("stats", "c1", Some(json!({"b": 1, "a": 2}))),
            r#"{"type":"stats","id":"c1","data":{"a":2,"b":1}}"#
        );
        assert_eq!(event_line("oom", "c1", None), r#"{"type":"oom","id":"c1"}"#);
    }

    #[test]
    fn intervals() {
        assert_eq!(
            parse_interval("5s").unwrap(),
            std::time::Duration::from_secs(5)
        );
        assert_eq!(
            parse_interval("100ms").unwrap(),
            std::time::Duration::from_millis(100)
        );
    }
}
