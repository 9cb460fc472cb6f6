//! Which namespaces a container gets: new ones become clone flags (or a later unshare), existing
//! ones given by path are opened in the runtime before fork and joined with setns. Also the
//! user-namespace id maps and time-namespace offsets, which the runtime writes for the init.

use crate::error::{Result, RuntimeError};
use oci_spec::runtime::{LinuxIdMapping, LinuxNamespaceType, Spec};
use rustix::fd::OwnedFd;
use std::io::Write;

/// Namespace kind: clone flag and `/proc/<pid>/ns/<name>`.
pub fn flag_and_name(t: LinuxNamespaceType) -> (libc::c_int, &'static str) {
    match t {
        LinuxNamespaceType::Mount => (libc::CLONE_NEWNS, "mnt"),
        LinuxNamespaceType::Cgroup => (libc::CLONE_NEWCGROUP, "cgroup"),
        LinuxNamespaceType::Uts => (libc::CLONE_NEWUTS, "uts"),
        LinuxNamespaceType::Ipc => (libc::CLONE_NEWIPC, "ipc"),
        LinuxNamespaceType::User => (libc::CLONE_NEWUSER, "user"),
        LinuxNamespaceType::Pid => (libc::CLONE_NEWPID, "pid"),
        LinuxNamespaceType::Network => (libc::CLONE_NEWNET, "net"),
        LinuxNamespaceType::Time => (libc::CLONE_NEWTIME, "time"),
    }
}

/// The order namespaces are joined in: user first (it grants rights over the rest), mount last.
pub const JOIN_ORDER: [libc::c_int; 8] = [
    libc::CLONE_NEWUSER,
    libc::CLONE_NEWIPC,
    libc::CLONE_NEWUTS,
    libc::CLONE_NEWNET,
    libc::CLONE_NEWPID,
    libc::CLONE_NEWCGROUP,
    libc::CLONE_NEWTIME,
    libc::CLONE_NEWNS,
];

/// The namespace plan of one container.
#[derive(Default)]
pub struct Plan {
    /// Every CLONE_NEW* flag the container gets a fresh namespace for.
    pub new_flags: libc::c_int,
    /// Existing namespaces to join: (flag, fd, path for messages).
    pub joins: Vec<(libc::c_int, OwnedFd, String)>,
}

impl Plan {
    pub fn has_new(&self, flag: libc::c_int) -> bool {
        self.new_flags & flag != 0
    }
    pub fn joins_kind(&self, flag: libc::c_int) -> bool {
        self.joins.iter().any(|(f, _, _)| *f == flag)
    }
    /// Flags for the clone itself. Cgroup is unshared after the init joined its cgroup, time is
    /// unshared by the runtime beforehand; with a joined user namespace, the rest (except pid)
    /// are unshared after joining it so they belong to it.
    pub fn clone_flags(&self) -> libc::c_int {
        let mut f = self.new_flags & !(libc::CLONE_NEWCGROUP | libc::CLONE_NEWTIME);
        if self.joins_kind(libc::CLONE_NEWUSER) {
            f &= libc::CLONE_NEWPID;
        }
        f
    }
    /// Flags the init unshares itself after joining (see [`Plan::clone_flags`]); the cgroup
    /// namespace is unshared separately, once the init is in its cgroup.
    pub fn unshare_in_init(&self) -> libc::c_int {
        let mut f = 0;
        if self.joins_kind(libc::CLONE_NEWUSER) {
            f |= self.new_flags & !(libc::CLONE_NEWPID | libc::CLONE_NEWTIME | libc::CLONE_NEWUSER);
        }
        f
    }
}

/// Builds the plan from the spec, opening every namespace path.
pub fn plan(spec: &Spec) -> Result<Plan> {
    let mut plan = Plan::default();
    let Some(namespaces) = spec.linux().as_ref().and_then(|l| l.namespaces().as_ref()) else {
        return Ok(plan);
    };
    for ns in namespaces {
        let (flag, name) = flag_and_name(ns.typ());
        match ns.path() {
            Some(path) if !path.as_os_str().is_empty() => {
                let fd = rustix::fs::open(
                    path,
                    rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
                    rustix::fs::Mode::empty(),
                )
                .map_err(|e| RuntimeError::io(path, e.into()))?;
                check_type(&fd, flag, name, path)?;
                plan.joins
                    .push((flag, fd, format!("{name} at {}", path.display())));
            }
            _ => plan.new_flags |= flag,
        }
    }
    plan.joins.sort_by_key(|(flag, _, _)| {
        JOIN_ORDER
            .iter()
            .position(|f| f == flag)
            .unwrap_or(usize::MAX)
    });
    Ok(plan)
}

/// Refuses a namespace path of another kind (`/proc/x/ns/net` given as `mnt`) or not a
/// namespace at all: setns would fail later with a bare EINVAL, or join something unintended.
fn check_type(fd: &OwnedFd, flag: libc::c_int, name: &str, path: &std::path::Path) -> Result<()> {
    const NS_GET_NSTYPE: libc::c_ulong = 0xb703; // _IO(0xb7, 0x3), linux/nsfs.h
                                                 // SAFETY: NS_GET_NSTYPE takes no argument and only reads the fd's namespace type.
    let kind = unsafe { libc::ioctl(rustix::fd::AsRawFd::as_raw_fd(fd), NS_GET_NSTYPE) };
    let actual = match kind {
        -1 => {
            return Err(RuntimeError::InvalidArgument(format!(
                "namespace path {} for {name} is not a namespace",
                path.display()
            )))
        }
        k => k,
    };
    if actual != flag {
        let actual_name = JOIN_ORDER
            .iter()
            .find(|f| **f == actual)
            .map(|f| name_of_flag(*f))
            .unwrap_or("unknown");
        return Err(RuntimeError::InvalidArgument(format!(
            "namespace path {} is a {actual_name} namespace, not {name}",
            path.display()
        )));
    }
    Ok(())
}

fn name_of_flag(flag: libc::c_int) -> &'static str {
    match flag {
        libc::CLONE_NEWNS => "mnt",
        libc::CLONE_NEWCGROUP => "cgroup",
        libc::CLONE_NEWUTS => "uts",
        libc::CLONE_NEWIPC => "ipc",
        libc::CLONE_NEWUSER => "user",
        libc::CLONE_NEWPID => "pid",
        libc::CLONE_NEWNET => "net",
        libc::CLONE_NEWTIME => "time",
        _ => "unknown",
    }
}

/// Writes uid_map and gid_map of `pid` (the runtime does this for the init).
pub fn write_id_maps(pid: i32, uids: &[LinuxIdMapping], gids: &[LinuxIdMapping]) -> Result<()> {
    write_map(pid, "uid_map", uids)?;
    write_map(pid, "gid_map", gids)
}

fn write_map(pid: i32, file: &str, maps: &[LinuxIdMapping]) -> Result<()> {
    if maps.is_empty() {
        return Ok(());
    }
    let path = format!("/proc/{pid}/{file}");
    let text = format_map(maps);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .map_err(|e| RuntimeError::io(&path, e))?;
    f.write_all(text.as_bytes())
        .map_err(|e| RuntimeError::io(&path, e))
}

/// The text of a uid_map/gid_map file.
pub fn format_map(maps: &[LinuxIdMapping]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect()
}

/// The `/proc/self/timens_offsets` text for the spec's timeOffsets.
pub fn time_offsets_text(spec: &Spec) -> Option<String> {
    let offsets = spec.linux().as_ref()?.time_offsets().as_ref()?;
    let mut text = String::new();
    for (clock, off) in offsets {
        let name = match clock.as_str() {
            "monotonic" => "monotonic",
            "boottime" => "boottime",
            _ => continue,
        };
        text.push_str(&format!(
            "{name} {} {}\n",
            off.secs().unwrap_or(0),
            off.nanosecs().unwrap_or(0)
        ));
    }
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_text() {
        let m: LinuxIdMapping =
            serde_json::from_str(r#"{"containerID":0,"hostID":100000,"size":65536}"#).unwrap();
        assert_eq!(format_map(&[m]), "0 100000 65536\n");
    }

    #[test]
    fn clone_flags_leave_cgroup_for_later() {
        let p = Plan {
            new_flags: libc::CLONE_NEWPID | libc::CLONE_NEWCGROUP | libc::CLONE_NEWNS,
            joins: vec![],
        };
        assert_eq!(p.clone_flags(), libc::CLONE_NEWPID | libc::CLONE_NEWNS);
        assert_eq!(p.unshare_in_init(), 0);
    }
}
