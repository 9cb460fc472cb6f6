//! Cgroups through the CLI: spec limits land in the container's cgroup files and the cgroup is
//! removed on delete; pause/resume (freezer), update, ps, events --stats, kill --all.

mod common;

use berth_testkit::Bundle;
use common::*;
use std::fs;

fn read(path: std::path::PathBuf) -> String {
    fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .trim()
        .to_owned()
}

#[test]
fn spec_limits_are_in_cgroup_files_and_removed_on_delete() {
    let w = World::new();
    let mut b = Bundle::new(&["sleep", "1000"]).unwrap();
    b.spec["linux"]["resources"]["memory"] = serde_json::json!({"limit": 67108864});
    b.spec["linux"]["resources"]["pids"] = serde_json::json!({"limit": 42});
    b.spec["linux"]["resources"]["cpu"] =
        serde_json::json!({"shares": 512, "quota": 50000, "period": 100000});
    b.write_config().unwrap();
    let id = unique_id("limits");
    let _g = w.create(&id, &b);
    assert_eq!(
        read(cgroup_dir("memory", &id).join("memory.limit_in_bytes")),
        "67108864"
    );
    assert_eq!(read(cgroup_dir("pids", &id).join("pids.max")), "42");
    assert_eq!(read(cgroup_dir("cpu", &id).join("cpu.shares")), "512");
    assert_eq!(
        read(cgroup_dir("cpu", &id).join("cpu.cfs_quota_us")),
        "50000"
    );
    let pid = w.state(&id).unwrap()["pid"].as_i64().unwrap();
    assert!(read(cgroup_dir("memory", &id).join("cgroup.procs"))
        .lines()
        .any(|l| l == pid.to_string()));
    w.ok(&["delete", &id]);
    for c in ["memory", "pids", "cpu", "freezer"] {
        assert!(!cgroup_dir(c, &id).exists(), "{c} cgroup left behind");
    }
}

#[test]
fn custom_cgroups_path() {
    let w = World::new();
    let mut b = Bundle::new(&["sleep", "1000"]).unwrap();
    let id = unique_id("cgpath");
    let path = format!("/berth-test/{id}");
    b.spec["linux"]["cgroupsPath"] = path.clone().into();
    b.write_config().unwrap();
    let _g = w.create(&id, &b);
    assert!(std::path::Path::new(&format!("/sys/fs/cgroup/memory{path}")).is_dir());
    w.ok(&["delete", &id]);
    assert!(!std::path::Path::new(&format!("/sys/fs/cgroup/memory{path}")).exists());
    let _ = fs::remove_dir("/sys/fs/cgroup/memory/berth-test");
    for c in [
        "blkio",
        "cpu,cpuacct",
        "cpuset",
        "devices",
        "freezer",
        "pids",
        "net_cls,net_prio",
        "perf_event",
        "hugetlb",
        "systemd",
        "cpu",
        "cpuacct",
    ] {
        let _ = fs::remove_dir(format!("/sys/fs/cgroup/{c}/berth-test"));
    }
}

#[test]
fn pause_resume_update_ps_events() {
    let w = World::new();
    let b = Bundle::new(&["sleep", "1000"]).unwrap();
    let id = unique_id("ops");
    let _g = w.guard(&id);
    w.ok(&["run", "-d", "--bundle", b.path().to_str().unwrap(), &id]);
    let pid = w.state(&id).unwrap()["pid"].as_i64().unwrap();

    w.ok(&["pause", &id]);
    assert_eq!(w.status(&id), "paused");
    assert_eq!(
        read(cgroup_dir("freezer", &id).join("freezer.state")),
        "FROZEN"
    );
    w.ok(&["resume", &id]);
    assert_eq!(w.status(&id), "running");

    w.ok(&["update", &id, "--memory", "128m", "--pids-limit", "77"]);
    assert_eq!(
        read(cgroup_dir("memory", &id).join("memory.limit_in_bytes")),
        (128u64 << 20).to_string()
    );
    assert_eq!(read(cgroup_dir("pids", &id).join("pids.max")), "77");
    let res = w.root().join("res.json");
    fs::write(&res, r#"{"pids":{"limit":88}}"#).unwrap();
    w.ok(&["update", "-r", res.to_str().unwrap(), &id]);
    assert_eq!(read(cgroup_dir("pids", &id).join("pids.max")), "88");

    let pids: Vec<i64> = serde_json::from_str(&w.ok(&["ps", "-f", "json", &id])).unwrap();
    assert_eq!(pids, vec![pid]);
    let table = w.ok(&["ps", &id]);
    assert!(table.lines().next().unwrap().contains("PID"));
    assert!(table.contains("sleep 1000"), "{table}");

    let ev: serde_json::Value =
        serde_json::from_str(w.ok(&["events", "--stats", &id]).trim()).unwrap();
    assert_eq!(ev["type"], "stats");
    assert_eq!(ev["id"], id.as_str());
    // runc's `types.Stats` shape, which tools that drive runc parse.
    let data = &ev["data"];
    assert!(
        data["cpu"]["usage"]["total"].as_u64().unwrap() > 0,
        "{data}"
    );
    assert!(
        data["memory"]["usage"]["usage"].as_u64().unwrap() > 0,
        "{data}"
    );
    assert!(
        data["memory"]["usage"]["limit"].as_u64().is_some(),
        "{data}"
    );
    assert_eq!(data["pids"]["current"], 1, "{data}");
    assert_eq!(data["pids"]["limit"], 88, "{data}");
}

#[test]
fn kill_all_signals_every_process() {
    let w = World::new();
    // The shell (PID 1) ignores TERM; its children do not.
    let b = sh_bundle("trap '' TERM; sleep 1000 & sleep 1000 & wait");
    let id = unique_id("killall");
    let _g = w.guard(&id);
    w.ok(&["run", "-d", "--bundle", b.path().to_str().unwrap(), &id]);
    assert!(berth_testkit::wait_until(
        std::time::Duration::from_secs(5),
        || {
            serde_json::from_str::<Vec<i64>>(&w.ok(&["ps", "-f", "json", &id]))
                .unwrap()
                .len()
                == 3
        }
    ));
    w.ok(&["kill", "--all", &id, "KILL"]);
    assert!(w.wait_status(&id, "stopped"));
    w.ok(&["delete", &id]);
}

#[test]
fn events_stream_until_the_container_stops() {
    let w = World::new();
    let b = sh_bundle("sleep 0.5");
    let id = unique_id("events");
    let _g = w.guard(&id);
    w.ok(&[
        "run",
        "-d",
        "--keep",
        "--bundle",
        b.path().to_str().unwrap(),
        &id,
    ]);
    let out = w.ok(&["events", "--interval", "100ms", &id]);
    let events: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(events.len() >= 2, "{out}");
    assert!(events
        .iter()
        .all(|e| e["type"] == "stats" && e["id"] == id.as_str()));
    w.ok(&["delete", &id]);
}

#[test]
fn systemd_cgroup_paths_are_mapped_to_plain_paths() {
    let w = World::new();
    let mut b = Bundle::new(&["sleep", "1000"]).unwrap();
    let id = unique_id("sd");
    b.spec["linux"]["cgroupsPath"] = format!("berthtest.slice:berth:{id}").into();
    b.write_config().unwrap();
    let _g = w.guard(&id);
    w.ok(&[
        "--systemd-cgroup",
        "create",
        "--bundle",
        b.path().to_str().unwrap(),
        &id,
    ]);
    let dir = std::path::PathBuf::from(format!(
        "/sys/fs/cgroup/memory/berthtest.slice/berth-{id}.scope"
    ));
    assert!(dir.is_dir(), "{}", dir.display());
    w.ok(&["delete", &id]);
    assert!(!dir.exists());
    for c in [
        "blkio",
        "cpu",
        "cpuacct",
        "cpuset",
        "devices",
        "freezer",
        "memory",
        "pids",
        "hugetlb",
        "net_cls",
        "perf_event",
        "cpu,cpuacct",
        "net_cls,net_prio",
    ] {
        let _ = fs::remove_dir(format!("/sys/fs/cgroup/{c}/berthtest.slice"));
    }
}

#[test]
fn spec_without_device_rules_gets_the_default_allow_list() {
    let w = World::new();
    let mut b = Bundle::new(&["sleep", "1000"]).unwrap();
    b.spec["linux"]["resources"] = serde_json::json!({});
    b.write_config().unwrap();
    let id = unique_id("devdefault");
    let _g = w.create(&id, &b);
    let list = read(cgroup_dir("devices", &id).join("devices.list"));
    assert!(
        !list.lines().any(|l| l == "a *:* rwm"),
        "devices left open: {list}"
    );
    assert!(
        list.lines().any(|l| l.starts_with("c 1:3 ")),
        "/dev/null not allowed: {list}"
    );
    w.ok(&["delete", "-f", &id]);
}
