//! The container filesystem: spec mounts (bind ro, tmpfs), symlink escapes stay in the rootfs,
//! devices and /dev symlinks, masked and read-only paths, read-only root, cgroup mount,
//! --no-pivot, sysctls, user and time namespaces.

mod common;

use berth_testkit::Bundle;
use common::*;
use serde_json::json;

fn run_with(w: &World, script: &str, edit: impl FnOnce(&mut Bundle)) -> (i32, String, String) {
    let mut b = sh_bundle(script);
    edit(&mut b);
    b.write_config().unwrap();
    w.run(&unique_id("fs"), &b)
}

#[test]
fn bind_and_tmpfs_mounts() {
    let w = World::new();
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("hello"), "from host\n").unwrap();
    let file = host.path().join("single");
    std::fs::write(&file, "one file\n").unwrap();
    let (code, out, err) = run_with(
        &w,
        "cat /data/hello; cat /etc/single; touch /data/x 2>/dev/null && echo writable || echo readonly; grep ' /scratch ' /proc/mounts",
        |b| {
            let mounts = b.spec["mounts"].as_array_mut().unwrap();
            mounts.push(json!({"destination": "/data", "type": "bind", "source": host.path(), "options": ["rbind", "ro", "nosuid"]}));
            mounts.push(json!({"destination": "/etc/single", "type": "bind", "source": file, "options": ["bind"]}));
            mounts.push(json!({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m", "noexec"]}));
        },
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("from host"), "{out}");
    assert!(out.contains("one file"), "{out}");
    assert!(out.contains("readonly"), "{out}");
    assert!(
        out.contains("tmpfs /scratch tmpfs") && out.contains("noexec"),
        "{out}"
    );
}

#[test]
fn mount_targets_cannot_escape_through_symlinks() {
    let w = World::new();
    let outside = tempfile::tempdir().unwrap();
    let (code, _, err) = run_with(&w, "test -d /escape-target/made && echo inside", |b| {
        // An absolute symlink in the rootfs pointing at a host directory.
        std::os::unix::fs::symlink(outside.path(), b.rootfs().join("evil")).unwrap();
        b.spec["mounts"]
            .as_array_mut()
            .unwrap()
            .push(json!({"destination": "/evil/made", "type": "tmpfs", "source": "tmpfs"}));
    });
    assert_eq!(code, 1, "{err}");
    assert!(
        !outside.path().join("made").exists(),
        "mount point created outside the rootfs"
    );
}

#[test]
fn devices_symlinks_masked_and_readonly_paths() {
    let w = World::new();
    let script = "ls -l /dev/null /dev/zero /dev/full /dev/random /dev/urandom /dev/tty | wc -l; \
                  readlink /dev/fd; readlink /dev/stdin; readlink /dev/ptmx; \
                  echo x > /dev/null && echo null-ok; \
                  wc -c < /proc/keys; \
                  ls /sys/firmware | wc -l; \
                  echo 1 > /proc/sys/kernel/ns_last_pid 2>/dev/null || echo sys-ro; \
                  touch /newfile 2>/dev/null || echo root-ro; \
                  ls /dev/fuse";
    let (code, out, err) = run_with(&w, script, |b| {
        b.spec["linux"]["devices"] =
            json!([{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 438}]);
    });
    assert_eq!(code, 0, "{err}\n{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "6");
    assert_eq!(lines[1], "/proc/self/fd");
    assert_eq!(lines[2], "/proc/self/fd/0");
    assert_eq!(lines[3], "pts/ptmx");
    assert_eq!(lines[4], "null-ok");
    assert_eq!(lines[5], "0", "/proc/keys must be masked");
    assert_eq!(lines[6], "0", "/sys/firmware must be masked");
    assert_eq!(lines[7], "sys-ro");
    assert_eq!(lines[8], "root-ro");
    assert_eq!(lines[9], "/dev/fuse");
}

#[test]
fn cgroup_v1_mount_shows_the_containers_cgroup_read_only() {
    let w = World::new();
    let (code, out, err) = run_with(
        &w,
        "ls /sys/fs/cgroup; cat /sys/fs/cgroup/memory/memory.limit_in_bytes; touch /sys/fs/cgroup/memory/x 2>/dev/null || echo cg-ro",
        |b| {
            b.spec["linux"]["resources"]["memory"] = json!({"limit": 33554432});
        },
    );
    if !std::path::Path::new("/sys/fs/cgroup/memory").exists() {
        eprintln!("note: not a cgroup v1 host");
        return;
    }
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("memory\n"), "{out}");
    assert!(out.contains("pids\n"), "{out}");
    assert!(out.contains("33554432"), "{out}");
    assert!(out.contains("cg-ro"), "{out}");
}

#[test]
fn no_pivot_and_writable_root() {
    let w = World::new();
    let b = {
        let mut b = sh_bundle("touch /made && echo ok; cat /proc/self/mountinfo | wc -l");
        b.spec["root"]["readonly"] = false.into();
        b.write_config().unwrap();
        b
    };
    let id = unique_id("nopivot");
    let _g = w.guard(&id);
    let o = w.out(&[
        "run",
        "--no-pivot",
        "--bundle",
        b.path().to_str().unwrap(),
        &id,
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("ok\n"));
    assert!(b.rootfs().join("made").exists());
}

#[test]
fn sysctl_hostname_domainname() {
    let w = World::new();
    let (code, out, err) = run_with(
        &w,
        "cat /proc/sys/net/ipv4/ip_forward; hostname; cat /proc/sys/kernel/domainname",
        |b| {
            b.spec["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"});
            b.spec["hostname"] = "berthbox".into();
            b.spec["domainname"] = "example.org".into();
        },
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "1\nberthbox\nexample.org\n");
}

#[test]
fn user_namespace_maps_ids() {
    let w = World::new();
    let (code, out, err) = run_with(&w, "id -u; cat /proc/self/uid_map", |b| {
        b.spec["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "user"}));
        b.spec["linux"]["uidMappings"] =
            json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        b.spec["linux"]["gidMappings"] =
            json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        // sysfs needs a network namespace owned by the user namespace; cgroup binds are fine.
    });
    assert_eq!(code, 0, "{err}");
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("0"));
    let map: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(map, ["0", "100000", "65536"]);
}

#[test]
fn time_namespace_offsets() {
    if !std::path::Path::new("/proc/self/ns/time").exists() {
        eprintln!("note: no time namespaces on this kernel");
        return;
    }
    let w = World::new();
    let (code, out, err) = run_with(&w, "cut -d. -f1 /proc/uptime", |b| {
        b.spec["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "time"}));
        b.spec["linux"]["timeOffsets"] = json!({"boottime": {"secs": 864000, "nanosecs": 0}});
    });
    assert_eq!(code, 0, "{err}");
    let uptime: u64 = out.trim().parse().unwrap();
    assert!(uptime >= 864000, "{uptime}");
}

#[test]
fn joins_an_existing_network_namespace_by_path() {
    let w = World::new();
    // A sleeping container's netns, joined by a second container.
    let first = Bundle::new(&["sleep", "1000"]).unwrap();
    let id = unique_id("netowner");
    let _g = w.guard(&id);
    w.ok(&["run", "-d", "--bundle", first.path().to_str().unwrap(), &id]);
    let pid = w.state(&id).unwrap()["pid"].as_i64().unwrap();
    let want = std::fs::read_link(format!("/proc/{pid}/ns/net")).unwrap();
    let (code, out, err) = run_with(&w, "readlink /proc/self/ns/net", |b| {
        for ns in b.spec["linux"]["namespaces"].as_array_mut().unwrap() {
            if ns["type"] == "network" {
                ns["path"] = format!("/proc/{pid}/ns/net").into();
            }
        }
    });
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), want.to_str().unwrap());
}

#[test]
fn rootfs_propagation() {
    let w = World::new();
    // Field 7.. of mountinfo holds optional tags such as shared:N / master:N.
    let script = "awk '$5 == \"/\" {print}' /proc/self/mountinfo";
    let (code, out, err) = run_with(&w, script, |b| {
        b.spec["linux"]["rootfsPropagation"] = "private".into();
    });
    assert_eq!(code, 0, "{err}");
    assert!(
        !out.contains("shared:") && !out.contains("master:"),
        "{out}"
    );
    let (code, out, err) = run_with(&w, script, |_| {});
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains("shared:"), "default is rslave: {out}");
}

/// linux.netDevices moves (and renames) an interface into the container. Runs the runtime inside
/// a throwaway network namespace (`unshare -n`) so the host's interfaces are never touched.
#[test]
fn net_devices_are_moved_and_renamed() {
    if !berth_testkit::have("unshare") || !berth_testkit::have("ip") {
        eprintln!("note: unshare/ip missing, skipping");
        return;
    }
    let w = World::new();
    let mut b = sh_bundle("ls /sys/class/net | tr '\\n' ' '");
    b.spec["linux"]["netDevices"] = json!({"bv0": {"name": "ctr0"}});
    b.write_config().unwrap();
    let id = unique_id("netdev");
    let _g = w.guard(&id);
    let script = format!(
        "ip link add bv0 type veth peer name bv1 || exit 77; {} --root {} run --bundle {} {id}; echo rc=$?; ip link show bv0 >/dev/null 2>&1 && echo still-on-host",
        bin(),
        w.root().display(),
        b.path().display()
    );
    let o = std::process::Command::new("unshare")
        .args(["-n", "sh", "-c", &script])
        .bounded_output();
    if o.status.code() == Some(77) {
        eprintln!("note: veth unsupported, skipping");
        return;
    }
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("ctr0"),
        "{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(out.contains("rc=0"), "{out}");
    assert!(!out.contains("still-on-host"), "{out}");
}
