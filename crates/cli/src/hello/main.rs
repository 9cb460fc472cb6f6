//! The `hello` image's only program (built static by crates/cli/build.rs, std only): greets like
//! Docker's hello-world and shows what makes it a container — its PID, hostname, the inode of
//! each namespace it lives in, and the cgroup limits that bind it.
use std::fs;

fn read(path: &str) -> Option<String> {
    fs::read_to_string(path).ok().map(|s| s.trim().to_string())
}

/// The first readable file among `/sys/fs/cgroup/<controller>/<file>` (v1, the container's own
/// cgroup mounted there), the same under the process's cgroup path, and v2's `<v2file>`.
fn limit(controller: &str, v1_file: &str, v2_file: &str, own_path: Option<&str>) -> Option<String> {
    let mut candidates = vec![format!("/sys/fs/cgroup/{controller}/{v1_file}")];
    if let Some(p) = own_path {
        candidates.push(format!("/sys/fs/cgroup/{controller}{p}/{v1_file}"));
    }
    candidates.push(format!("/sys/fs/cgroup/{v2_file}"));
    candidates.iter().find_map(|c| read(c))
}

fn main() {
    println!();
    println!("Hello from Berth!");
    println!("This message shows that your installation appears to be working correctly.");
    println!();
    println!("To generate this message, Berth took these steps:");
    println!(
        " 1. The berth command resolved the built-in \"hello\" image (imported on first use)."
    );
    println!(" 2. It mounted an overlay layer, wrote an OCI spec and started a monitor process.");
    println!(
        " 3. The runtime cloned this process into fresh namespaces and a cgroup, then exec'd it."
    );
    println!(" 4. The monitor streamed this output to your terminal and recorded the exit status.");
    println!();
    println!("Inside the container:");
    println!("  pid       {}", std::process::id());
    println!(
        "  hostname  {}",
        read("/proc/sys/kernel/hostname").unwrap_or_else(|| "?".into())
    );
    let mut kinds: Vec<String> = fs::read_dir("/proc/self/ns")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    kinds.sort();
    println!("  namespaces:");
    for kind in kinds {
        if let Ok(link) = fs::read_link(format!("/proc/self/ns/{kind}")) {
            println!("    {:<18} {}", kind, link.display());
        }
    }
    let cgroup = read("/proc/self/cgroup").unwrap_or_default();
    let path_of = |ctl: &str| {
        cgroup.lines().find_map(|l| {
            let mut parts = l.splitn(3, ':');
            let (_, ctls, path) = (parts.next()?, parts.next()?, parts.next()?);
            ctls.split(',').any(|c| c == ctl).then(|| path.to_string())
        })
    };
    println!("  cgroup limits:");
    let memory = limit(
        "memory",
        "memory.limit_in_bytes",
        "memory.max",
        path_of("memory").as_deref(),
    );
    let memory = memory.map(|m| match m.parse::<u64>() {
        Ok(b) if b >= 1 << 60 => "unlimited".to_string(),
        Ok(b) => format!("{} MiB", b >> 20),
        Err(_) => m,
    });
    println!(
        "    memory   {}",
        memory.unwrap_or_else(|| "unknown".into())
    );
    println!(
        "    pids     {}",
        limit("pids", "pids.max", "pids.max", path_of("pids").as_deref())
            .unwrap_or_else(|| "unknown".into())
    );
    let quota = limit(
        "cpu",
        "cpu.cfs_quota_us",
        "cpu.max",
        path_of("cpu").as_deref(),
    );
    let period = limit(
        "cpu",
        "cpu.cfs_period_us",
        "cpu.max",
        path_of("cpu").as_deref(),
    );
    let cpus = match (quota.as_deref(), period.as_deref()) {
        (Some(q), Some(_)) if q.contains(' ') => {
            let mut it = q.split(' ');
            match (it.next(), it.next().and_then(|p| p.parse::<f64>().ok())) {
                (Some("max"), _) | (None, _) | (_, None) => "unlimited".to_string(),
                (Some(q), Some(p)) => q
                    .parse::<f64>()
                    .map(|q| format!("{:.2} CPUs", q / p))
                    .unwrap_or_else(|_| "unknown".into()),
            }
        }
        (Some(q), Some(p)) => match (q.parse::<f64>(), p.parse::<f64>()) {
            (Ok(q), Ok(p)) if q > 0.0 && p > 0.0 => format!("{:.2} CPUs", q / p),
            _ => "unlimited".to_string(),
        },
        _ => "unknown".to_string(),
    };
    let _ = period;
    println!("    cpu      {cpus}");
    println!();
    println!("Try limits and sharing:");
    println!(" $ berth run --rm -m 64m --cpus 0.5 --pids-limit 10 hello");
    println!(
        " $ berth import rootfs.tar bb    # any root filesystem tar, e.g. from `docker export`"
    );
    println!(
        " $ berth run -d --name box bb sleep 1000 && berth run --rm --pid container:box hello"
    );
    println!(" $ berth ns");
    println!();
}
