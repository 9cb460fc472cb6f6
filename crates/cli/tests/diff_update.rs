//! `diff` (A/C/D from the container's upper layer) and `update` (limits applied live to the
//! cgroup, kept in hostconfig.json; a memory hog is OOM-killed at the new limit).
mod container_common;
use container_common::*;
use std::path::Path;

#[test]
fn diff_lists_added_changed_and_deleted_paths() {
    let env = Env::new("diff");
    env.ok(&[
        "run",
        "--name",
        "changer",
        "busybox",
        "sh",
        "-c",
        "mkdir -p /new/dir && touch /new/dir/f && rm /bin/ls && echo x > /etc/motd-berth",
    ]);
    assert_eq!(
        env.ok(&["diff", "changer"]),
        "C /bin\nD /bin/ls\nC /etc\nA /etc/motd-berth\nA /new\nA /new/dir\nA /new/dir/f"
    );
    let out = env.berth(&["diff", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("No such container: nope"),
        "{}",
        stderr(&out)
    );
}

fn memory_limit_file(id: &str) -> std::path::PathBuf {
    let v1 = cgroup_dir("memory", id).join("memory.limit_in_bytes");
    if Path::new("/sys/fs/cgroup/memory").exists() {
        v1
    } else {
        cgroup_dir("", id).join("memory.max")
    }
}

#[test]
fn update_changes_limits_live_and_the_hog_is_oom_killed() {
    let env = Env::new("update");
    let id = env.ok(&[
        "run",
        "-d",
        "--name",
        "hog",
        "busybox",
        "sh",
        "-c",
        "while [ ! -f /go ]; do sleep 0.05; done; dd if=/dev/zero of=/dev/null bs=300M count=1",
    ]);
    assert_eq!(
        env.ok(&[
            "update",
            "-m",
            "64m",
            "--pids-limit",
            "40",
            "--cpu-shares",
            "512",
            "hog"
        ]),
        "hog"
    );
    let limit = std::fs::read_to_string(memory_limit_file(&id)).unwrap();
    assert_eq!(limit.trim(), (64u64 << 20).to_string());
    assert_eq!(
        env.inspect("hog", "{{.HostConfig.Memory}}"),
        (64u64 << 20).to_string()
    );
    assert_eq!(env.inspect("hog", "{{.HostConfig.PidsLimit}}"), "40");
    // The bundle keeps the limits for the next start.
    let spec: serde_json::Value = serde_json::from_slice(
        &std::fs::read(env.path().join("containers").join(&id).join("config.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(spec["linux"]["resources"]["memory"]["limit"], 64u64 << 20);

    env.ok(&["exec", "hog", "touch", "/go"]);
    assert_eq!(env.ok(&["wait", "hog"]), "137");
    assert_eq!(env.inspect("hog", "{{.State.OOMKilled}}"), "true");

    // Docker's refusals: nothing changes.
    let out = env.berth(&["update", "-m", "1m", "hog"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("Minimum memory limit allowed is 6MB"),
        "{}",
        stderr(&out)
    );
    let out = env.berth(&["update", "hog"]);
    assert_eq!(out.status.code(), Some(1));
    let out = env.berth(&["update", "-m", "64m", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("No such container"),
        "{}",
        stderr(&out)
    );
    // --restart on a stopped container is kept.
    env.ok(&["update", "--restart", "on-failure:2", "hog"]);
    assert_eq!(
        env.inspect("hog", "{{.HostConfig.RestartPolicy.Name}}"),
        "on-failure"
    );
}
