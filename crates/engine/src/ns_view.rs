//! `berth ns`: the seed's namespace table. For the host (PID 1's view, as `readlink
//! /proc/1/ns/*` shows it) and each running container (its init, `State.Pid`, which is PID 1
//! inside its own PID namespace): every namespace kind with its inode, marked `host` when it is
//! the host's and `=name` when another container owns it first — two processes are in the same
//! namespace exactly when the inodes match. Then a list of the namespaces that are shared.
use crate::procinfo::{inode_of, namespaces, NAMESPACE_KINDS};
use crate::record::ContainerRecord;
use std::collections::BTreeMap;
use std::fmt::Write;

/// Renders the table for `records` (running containers, oldest first).
pub fn table(records: &[ContainerRecord]) -> String {
    let host = namespaces(1);
    let host = if host.is_empty() {
        namespaces(std::process::id() as i32)
    } else {
        host
    };
    let kinds: Vec<&str> = NAMESPACE_KINDS
        .iter()
        .copied()
        .filter(|k| host.contains_key(*k))
        .collect();
    // inode -> owners, in order of appearance ("host" first).
    let mut owners: BTreeMap<(String, u64), Vec<String>> = BTreeMap::new();
    let mut rows: Vec<(String, i32, BTreeMap<String, String>)> =
        vec![("(host)".into(), 1, host.clone())];
    for r in records.iter().filter(|r| r.is_running()) {
        rows.push((
            r.short_name().to_string(),
            r.state.pid,
            namespaces(r.state.pid),
        ));
    }
    let mut out = String::new();
    let mut header = format!("{:<20} {:>8}", "CONTAINER", "PID");
    for k in &kinds {
        header.push_str(&format!(" {:<16}", k.to_uppercase()));
    }
    let _ = writeln!(out, "{}", header.trim_end());
    for (name, pid, ns) in &rows {
        let mut line = format!("{:<20} {:>8}", name, pid);
        for k in &kinds {
            let inode = ns.get(*k).and_then(|l| inode_of(l));
            let cell = match inode {
                None => "-".to_string(),
                Some(i) => {
                    let list = owners.entry((k.to_string(), i)).or_default();
                    let cell = match list.first() {
                        None => i.to_string(),
                        Some(first) if first == "(host)" => format!("{i} host"),
                        Some(first) => format!("{i} ={first}"),
                    };
                    list.push(name.clone());
                    cell
                }
            };
            line.push_str(&format!(" {:<16}", cell));
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
    let shared: Vec<String> = owners
        .iter()
        .filter(|(_, who)| who.len() > 1 && who.iter().any(|w| w != "(host)"))
        .map(|((kind, inode), who)| format!("{kind}:[{inode}]  {}", who.join(", ")))
        .collect();
    if !shared.is_empty() {
        let _ = writeln!(out, "\nSHARED NAMESPACES");
        for s in shared {
            let _ = writeln!(out, "{s}");
        }
    }
    out
}
