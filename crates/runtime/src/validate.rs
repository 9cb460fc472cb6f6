//! Checks of a spec that must pass before anything is made (state dir, cgroup, process): the
//! process's uid/gid range and the sysctls a container may set. Pure apart from stat(2) of
//! namespace paths. Messages are runc's, so tools that match on them keep working.

use crate::error::{Result, RuntimeError};
use oci_spec::runtime::{LinuxNamespaceType, Process, Spec};
use std::os::unix::fs::MetadataExt;

/// The largest uid/gid runc accepts; larger values wrap to -1 or to root in the kernel.
pub const MAX_ID: u32 = 2_147_483_647;

/// Refuses uid, gid and additional gids outside 0..=2147483647 (runc: "unable to setup user").
pub fn check_user_ids(process: &Process) -> Result<()> {
    let user = process.user();
    let out_of_range = user.uid() > MAX_ID
        || user.gid() > MAX_ID
        || user
            .additional_gids()
            .as_deref()
            .unwrap_or(&[])
            .iter()
            .any(|g| *g > MAX_ID);
    if out_of_range {
        return Err(RuntimeError::ContainerInit(
            "unable to setup user: uids and gids must be in range 0-2147483647".into(),
        ));
    }
    Ok(())
}

/// Which namespace a sysctl belongs to, or None when it is not namespaced at all.
fn sysctl_namespace(key: &str) -> Option<LinuxNamespaceType> {
    const IPC: [&str; 8] = [
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    if IPC.contains(&key) || key.starts_with("fs.mqueue.") {
        Some(LinuxNamespaceType::Ipc)
    } else if key.starts_with("net.") {
        Some(LinuxNamespaceType::Network)
    } else if key == "kernel.hostname" || key == "kernel.domainname" {
        Some(LinuxNamespaceType::Uts)
    } else {
        None
    }
}

/// Allows only sysctls of namespaces the container owns (new, or joined by a path that is not
/// the host's own namespace); everything else would change the host.
pub fn check_sysctls(spec: &Spec) -> Result<()> {
    let Some(linux) = spec.linux().as_ref() else {
        return Ok(());
    };
    let Some(sysctls) = linux.sysctl().as_ref() else {
        return Ok(());
    };
    let namespaces = linux.namespaces().as_deref().unwrap_or(&[]);
    let mut keys: Vec<&String> = sysctls.keys().collect();
    keys.sort();
    for key in keys {
        let refuse = |reason: String| Err(RuntimeError::InvalidArgument(reason));
        let Some(kind) = sysctl_namespace(key) else {
            return refuse(format!(
                "sysctl {key:?} is not in a separate kernel namespace"
            ));
        };
        let Some(ns) = namespaces.iter().find(|n| n.typ() == kind) else {
            return refuse(match kind {
                LinuxNamespaceType::Ipc => {
                    format!("sysctl {key:?} is not allowed in the hosts ipc namespace")
                }
                LinuxNamespaceType::Network => {
                    format!("sysctl {key:?} not allowed in host network namespace")
                }
                _ => format!("sysctl {key:?} is not in a separate kernel namespace"),
            });
        };
        if let Some(path) = ns.path().as_ref().filter(|p| !p.as_os_str().is_empty()) {
            let (_, name) = crate::namespaces::flag_and_name(kind);
            if is_host_namespace(path, name) {
                return refuse(match kind {
                    LinuxNamespaceType::Network => {
                        format!("sysctl {key:?} not allowed in host network namespace")
                    }
                    _ => format!("sysctl {key:?} is not allowed in the host's {name} namespace"),
                });
            }
        }
    }
    Ok(())
}

/// Whether `path` names the namespace this process (the host side) lives in.
fn is_host_namespace(path: &std::path::Path, name: &str) -> bool {
    let ours = std::fs::metadata(format!("/proc/self/ns/{name}"));
    let theirs = std::fs::metadata(path);
    match (ours, theirs) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(sysctls: serde_json::Value, namespaces: serde_json::Value) -> Spec {
        serde_json::from_value(serde_json::json!({
            "ociVersion": "1.0.2",
            "root": {"path": "rootfs"},
            "linux": {"sysctl": sysctls, "namespaces": namespaces}
        }))
        .unwrap()
    }

    #[test]
    fn namespaced_sysctls_need_their_namespace() {
        let all = serde_json::json!([{"type": "ipc"}, {"type": "network"}, {"type": "uts"}]);
        for key in [
            "kernel.shmmax",
            "fs.mqueue.msg_max",
            "net.ipv4.ip_forward",
            "kernel.domainname",
        ] {
            assert!(
                check_sysctls(&spec(serde_json::json!({key: "1"}), all.clone())).is_ok(),
                "{key}"
            );
            let e = check_sysctls(&spec(serde_json::json!({key: "1"}), serde_json::json!([])))
                .unwrap_err()
                .to_string();
            assert!(e.contains(key), "{e}");
        }
        let e = check_sysctls(&spec(serde_json::json!({"kernel.panic": "0"}), all))
            .unwrap_err()
            .to_string();
        assert!(e.contains("is not in a separate kernel namespace"), "{e}");
    }

    #[test]
    fn joining_the_hosts_netns_is_not_owning_one() {
        let e = check_sysctls(&spec(
            serde_json::json!({"net.ipv4.ip_forward": "1"}),
            serde_json::json!([{"type": "network", "path": "/proc/self/ns/net"}]),
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("not allowed in host network namespace"), "{e}");
    }

    #[test]
    fn ids_beyond_i32_are_refused() {
        let p: Process = serde_json::from_value(
            serde_json::json!({"cwd": "/", "user": {"uid": 4294967295u32, "gid": 0}}),
        )
        .unwrap();
        assert!(check_user_ids(&p).is_err());
        let p: Process = serde_json::from_value(
            serde_json::json!({"cwd": "/", "user": {"uid": 0, "gid": 0, "additionalGids": [2147483648u32]}}),
        )
        .unwrap();
        assert!(check_user_ids(&p).is_err());
        let p: Process = serde_json::from_value(
            serde_json::json!({"cwd": "/", "user": {"uid": 2147483647, "gid": 2147483647}}),
        )
        .unwrap();
        assert!(check_user_ids(&p).is_ok());
    }
}
