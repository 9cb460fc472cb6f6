//! Fixed documents the CLI prints or writes: runc's default `config.json` (for `spec`, with
//! runc's rootless variant) and the runtime-spec `features` JSON describing what we support.

use serde_json::{json, Value};

/// The config.json `runc spec` writes (runc 1.1), verbatim.
pub const DEFAULT_SPEC_JSON: &str = include_str!("runc-spec.json");

/// The default spec; `rootless` applies runc's rootless changes for the calling uid/gid.
pub fn default_spec(rootless: bool) -> Value {
    let mut spec: Value = serde_json::from_str(DEFAULT_SPEC_JSON).unwrap_or(Value::Null);
    if rootless {
        make_rootless(
            &mut spec,
            rustix::process::getuid().as_raw(),
            rustix::process::getgid().as_raw(),
        );
    }
    spec
}

/// runc's `spec --rootless`: a user namespace mapping the caller to root, no network namespace,
/// /sys bound from the host, no cgroup mount, no gid= options, no resources.
pub fn make_rootless(spec: &mut Value, uid: u32, gid: u32) {
    if let Some(nss) = spec["linux"]["namespaces"].as_array_mut() {
        nss.retain(|n| n["type"] != "network" && n["type"] != "user");
        nss.push(json!({"type": "user"}));
    }
    spec["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": uid, "size": 1}]);
    spec["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": gid, "size": 1}]);
    if let Some(mounts) = spec["mounts"].as_array_mut() {
        mounts.retain(|m| m["type"] != "cgroup");
        for m in mounts.iter_mut() {
            if m["destination"] == "/sys" {
                *m = json!({"destination": "/sys", "type": "none", "source": "/sys",
                            "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]});
            }
            if let Some(opts) = m["options"].as_array_mut() {
                opts.retain(|o| !o.as_str().unwrap_or("").starts_with("gid="));
            }
        }
    }
    if let Some(linux) = spec["linux"].as_object_mut() {
        linux.remove("resources");
    }
}

/// `features`: what this runtime implements, in the runtime-spec features format.
pub fn features() -> Value {
    json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": "1.2.0",
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": [
            "async", "atime", "bind", "defaults", "dev", "diratime", "dirsync", "exec", "lazytime",
            "loud", "mand", "noatime", "nodev", "nodiratime", "noexec", "nolazytime", "nomand",
            "norelatime", "nostrictatime", "nosuid", "private", "rbind", "relatime", "remount",
            "ro", "rprivate", "rshared", "rslave", "runbindable", "rw", "shared", "silent",
            "slave", "strictatime", "suid", "sync", "tmpcopyup", "unbindable",
            "ratime", "rdev", "rdiratime", "rexec", "rnoatime", "rnodev", "rnodiratime",
            "rnoexec", "rnorelatime", "rnostrictatime", "rnosuid", "rnosymfollow", "rrelatime",
            "rro", "rrw", "rstrictatime", "rsuid", "rsymfollow"
        ],
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"],
            "capabilities": caps::all().iter().map(|c| c.to_string()).collect::<std::collections::BTreeSet<_>>(),
            "cgroup": {"v1": true, "v2": true, "systemd": false, "systemdUser": false, "rdma": false},
            "seccomp": {
                "enabled": true,
                "actions": ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
                            "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP"],
                "operators": ["SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT",
                              "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"],
                "archs": ["SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]
            },
            "apparmor": {"enabled": false},
            "selinux": {"enabled": false},
            "intelRdt": {"enabled": false},
            "mountExtensions": {"idmap": {"enabled": false}},
            "netDevices": {"enabled": true}
        },
        "annotations": {
            "org.opencontainers.runc.version": "1.1.5",
            "io.github.berth.runtime.version": env!("CARGO_PKG_VERSION")
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rootless_spec() {
        let s = default_spec(false);
        assert_eq!(s["hostname"], "runc");
        let mut r = s.clone();
        make_rootless(&mut r, 1000, 1000);
        assert_eq!(r["linux"]["uidMappings"][0]["hostID"], 1000);
        assert!(r["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["type"] != "network"));
        assert!(r["linux"].get("resources").is_none());
    }
}
