//! Reading processes from /proc: liveness with start-time check, namespace links (the seed's
//! `/proc/<pid>/ns/*` inodes), cgroup membership, VmRSS. Read-only; never signals anything.
use std::collections::BTreeMap;
use std::fs;

/// The namespace kinds Berth reports, in `/proc/<pid>/ns` spelling.
pub const NAMESPACE_KINDS: &[&str] = &["cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts"];

/// Start time of `pid` in clock ticks since boot (`/proc/<pid>/stat` field 22).
pub fn start_time(pid: i32) -> Option<u64> {
    if pid <= 0 {
        return None;
    }
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after.split(' ').collect();
    if fields.first() == Some(&"Z") || fields.first() == Some(&"X") {
        return None;
    }
    fields.get(19)?.parse().ok()
}

/// Whether a process with this PID exists (and is not a zombie).
pub fn alive(pid: i32) -> bool {
    start_time(pid).is_some()
}

/// `kind` → link text (`pid:[4026532378]`) for every namespace of `pid`.
pub fn namespaces(pid: i32) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for kind in NAMESPACE_KINDS {
        if let Ok(link) = fs::read_link(format!("/proc/{pid}/ns/{kind}")) {
            out.insert(kind.to_string(), link.to_string_lossy().into_owned());
        }
    }
    out
}

/// The inode inside a namespace link text: `pid:[4026532378]` → 4026532378.
pub fn inode_of(link: &str) -> Option<u64> {
    let start = link.find('[')? + 1;
    let end = link.find(']')?;
    link.get(start..end)?.parse().ok()
}

/// Controller → cgroup path of `pid` (`/proc/<pid>/cgroup`; v2's line appears as `unified`).
pub fn cgroups(pid: i32) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let Ok(text) = fs::read_to_string(format!("/proc/{pid}/cgroup")) else {
        return out;
    };
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = match (parts.next(), parts.next(), parts.next()) {
            (Some(a), Some(b), Some(c)) => (a, b, c),
            _ => continue,
        };
        if controllers.is_empty() {
            out.insert("unified".to_string(), path.to_string());
        } else {
            for c in controllers.split(',') {
                out.insert(c.trim_start_matches("name=").to_string(), path.to_string());
            }
        }
    }
    out
}

/// Resident set size of `pid` in KiB (`VmRSS`).
pub fn rss_kib(pid: i32) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// This process's bounding capability set (`CapBnd`), all ones when unreadable.
pub fn bounding_caps() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("CapBnd:"))
                .and_then(|l| u64::from_str_radix(l[7..].trim(), 16).ok())
        })
        .unwrap_or(u64::MAX)
}

/// Children PIDs of `pid` over all its threads.
pub fn children(pid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for task in tasks.flatten() {
        if let Ok(text) = fs::read_to_string(task.path().join("children")) {
            out.extend(
                text.split_whitespace()
                    .filter_map(|p| p.parse::<i32>().ok()),
            );
        }
    }
    out
}

/// Every PID in the subtree rooted at `pid`, `pid` first.
pub fn subtree(pid: i32) -> Vec<i32> {
    let mut out = vec![pid];
    let mut i = 0;
    while i < out.len() {
        let kids = children(out[i]);
        out.extend(kids);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_self() {
        let me = std::process::id() as i32;
        assert!(alive(me));
        assert!(start_time(me).is_some());
        assert!(namespaces(me).contains_key("pid"));
        assert_eq!(inode_of("pid:[4026532378]"), Some(4026532378));
        assert!(rss_kib(me).unwrap_or(0) > 0);
        assert!(!alive(0));
    }
}
