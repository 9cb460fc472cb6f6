//! The remaining verbs and global flags: spec, features, list, --log JSON, seccomp, and a
//! side-by-side comparison with runc on the same bundle.

mod common;

use berth_testkit::{Bundle, RUNC_SPEC_JSON};
use common::*;

#[test]
fn spec_writes_runcs_default_and_rootless_variant() {
    let w = World::new();
    let dir = tempfile::tempdir().unwrap();
    w.ok(&["spec", "--bundle", dir.path().to_str().unwrap()]);
    let ours: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("config.json")).unwrap())
            .unwrap();
    let runc: serde_json::Value = serde_json::from_str(RUNC_SPEC_JSON).unwrap();
    assert_eq!(ours, runc);
    assert!(!w
        .out(&["spec", "--bundle", dir.path().to_str().unwrap()])
        .status
        .success());
    let dir = tempfile::tempdir().unwrap();
    w.ok(&[
        "spec",
        "--rootless",
        "--bundle",
        dir.path().to_str().unwrap(),
    ]);
    let rootless: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("config.json")).unwrap())
            .unwrap();
    let types: Vec<&str> = rootless["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["type"].as_str().unwrap())
        .collect();
    assert!(types.contains(&"user") && !types.contains(&"network"));
}

#[test]
fn features_json() {
    let w = World::new();
    let f: serde_json::Value = serde_json::from_str(&w.ok(&["features"])).unwrap();
    assert_eq!(f["ociVersionMin"], "1.0.0");
    assert!(f["linux"]["namespaces"].as_array().unwrap().len() >= 7);
    assert!(f["hooks"]
        .as_array()
        .unwrap()
        .iter()
        .any(|h| h == "createRuntime"));
}

#[test]
fn list_formats() {
    let w = World::new();
    let b = Bundle::new(&["sleep", "1000"]).unwrap();
    let id = unique_id("list");
    let _g = w.create(&id, &b);
    assert_eq!(w.ok(&["list", "-q"]).trim(), id);
    let table = w.ok(&["list"]);
    let mut lines = table.lines();
    assert!(lines.next().unwrap().starts_with("ID "));
    assert!(lines.next().unwrap().contains("created"));
    let json: serde_json::Value = serde_json::from_str(&w.ok(&["list", "-f", "json"])).unwrap();
    assert_eq!(json[0]["id"], id.as_str());
    assert_eq!(json[0]["status"], "created");
}

#[test]
fn log_file_gets_json_errors() {
    let w = World::new();
    let log = w.root().join("log.json");
    let o = w.out(&[
        "--log",
        log.to_str().unwrap(),
        "--log-format",
        "json",
        "state",
        "missing",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let line: serde_json::Value = serde_json::from_str(
        std::fs::read_to_string(&log)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(line["level"], "error");
    assert!(line["msg"].as_str().unwrap().contains("missing"));
}

#[test]
fn seccomp_profile_blocks_syscalls() {
    let w = World::new();
    let mut b = sh_bundle("mkdir /tmp/x && echo made || echo blocked");
    b.spec["root"]["readonly"] = false.into();
    b.spec["linux"]["seccomp"] = serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
    });
    b.write_config().unwrap();
    let (code, out, err) = w.run(&unique_id("seccomp"), &b);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "blocked");
}

/// The same runc-spec bundle under runc and under berth-runtime: identical view of the process.
#[test]
fn matches_runc_on_the_same_bundle() {
    if !berth_testkit::have("runc") {
        eprintln!("note: runc not installed, skipping");
        return;
    }
    let w = World::new();
    let mut b = Bundle::new(&["true"]).unwrap();
    b.spec = serde_json::from_str(RUNC_SPEC_JSON).unwrap();
    b.spec["process"]["terminal"] = false.into();
    b.spec["process"]["args"] = serde_json::json!([
        "sh", "-c",
        "hostname; id; grep -E '^(Cap|NoNewPrivs)' /proc/self/status; ulimit -n; ls -a /dev | tr '\\n' ' '; echo; pwd; env | sort; echo $$"
    ]);
    b.write_config().unwrap();
    let (code, ours, err) = w.run(&unique_id("cmp"), &b);
    assert_eq!(code, 0, "{err}");
    let runc_root = tempfile::tempdir().unwrap();
    let runc_id = unique_id("cmp-runc");
    let o = std::process::Command::new("runc")
        .arg("--root")
        .arg(runc_root.path())
        .args(["run", "--bundle", b.path().to_str().unwrap(), &runc_id])
        .stdin(std::process::Stdio::null())
        .bounded_output();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(ours, String::from_utf8_lossy(&o.stdout));
}
