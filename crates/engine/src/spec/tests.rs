use super::*;
use crate::options::{parse_volume, Ulimit};
use serde_json::json;

fn image() -> ContainerConfig {
    ContainerConfig {
        env: vec!["PATH=/bin".into(), "A=1".into()],
        cmd: Some(vec!["sh".into()]),
        working_dir: "/srv".into(),
        stop_signal: Some("SIGQUIT".into()),
        ..Default::default()
    }
}

fn ctx() -> SpecContext {
    SpecContext {
        id: "0123456789abcdef".into(),
        rootfs: "/r/merged".into(),
        container_dir: "/r/c".into(),
        volumes_dir: "/r/volumes".into(),
        cgroups_path: "/berth/x".into(),
        host_nofile: (1024, 4096),
        host_cap_mask: u64::MAX,
        ..Default::default()
    }
}

fn spec_json(opts: &RunOptions) -> Value {
    let (_, spec) = from_image_and_flags(&image(), opts, &ctx()).unwrap();
    serde_json::to_value(spec).unwrap()
}

#[test]
fn image_config_drives_process() {
    let opts = RunOptions {
        env: vec!["A=2".into(), "B=3".into()],
        ..Default::default()
    };
    let v = spec_json(&opts);
    assert_eq!(v["process"]["args"], json!(["sh"]));
    let env: Vec<String> = serde_json::from_value(v["process"]["env"].clone()).unwrap();
    assert!(env.contains(&"PATH=/bin".to_string()));
    assert!(env.contains(&"A=2".to_string()) && !env.contains(&"A=1".to_string()));
    assert!(env.contains(&"HOSTNAME=0123456789ab".to_string()));
    assert_eq!(v["process"]["cwd"], "/srv");
    assert_eq!(v["hostname"], "0123456789ab");
    assert_eq!(v["process"]["rlimits"][0]["hard"], 4096);
    assert_eq!(v["linux"]["cgroupsPath"], "/berth/x");
    assert_eq!(
        v["process"]["capabilities"]["bounding"]
            .as_array()
            .unwrap()
            .len(),
        DEFAULT_CAPS.len()
    );
}

#[test]
fn entrypoint_and_command_follow_docker() {
    let opts = RunOptions {
        entrypoint: Some("/bin/echo".into()),
        ..Default::default()
    };
    let (config, _) = from_image_and_flags(&image(), &opts, &ctx()).unwrap();
    assert_eq!(command_line(&config), vec!["/bin/echo"]);
    let opts = RunOptions {
        command: vec!["true".into()],
        ..Default::default()
    };
    let (config, _) = from_image_and_flags(&image(), &opts, &ctx()).unwrap();
    assert_eq!(command_line(&config), vec!["true"]);
    assert_eq!(config.stop_signal.as_deref(), Some("SIGQUIT"));
    let empty = ContainerConfig::default();
    assert!(from_image_and_flags(&empty, &RunOptions::default(), &ctx()).is_err());
}

#[test]
fn host_flags_land_in_spec() {
    let mut opts = RunOptions::default();
    opts.host.memory = 32 << 20;
    opts.host.nano_cpus = 1_500_000_000;
    opts.host.pids_limit = Some(20);
    opts.host.readonly_rootfs = true;
    opts.host.cap_drop = vec!["net_raw".into()];
    opts.host.cap_add = vec!["SYS_ADMIN".into()];
    opts.host.security_opt = vec!["no-new-privileges".into()];
    opts.host.ulimits = vec![Ulimit {
        name: "nproc".into(),
        soft: 10,
        hard: 20,
    }];
    opts.host.network_mode = "host".into();
    opts.host.mounts = vec![
        parse_volume("/data:/data:ro").unwrap(),
        parse_volume("vol:/v").unwrap(),
    ];
    let v = spec_json(&opts);
    let r = &v["linux"]["resources"];
    assert_eq!(r["memory"]["limit"], 32 << 20);
    assert_eq!(r["memory"]["swap"], 64 << 20);
    assert_eq!(r["cpu"]["quota"], 150_000);
    assert_eq!(r["cpu"]["period"], 100_000);
    assert_eq!(r["pids"]["limit"], 20);
    assert_eq!(v["root"]["readonly"], true);
    assert_eq!(v["process"]["noNewPrivileges"], true);
    let caps: Vec<String> =
        serde_json::from_value(v["process"]["capabilities"]["effective"].clone()).unwrap();
    assert!(caps.contains(&"CAP_SYS_ADMIN".into()) && !caps.contains(&"CAP_NET_RAW".into()));
    let kinds: Vec<&str> = v["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n["type"].as_str())
        .collect();
    assert!(!kinds.contains(&"network") && kinds.contains(&"pid"));
    let mounts = v["mounts"].as_array().unwrap();
    assert!(mounts
        .iter()
        .any(|m| m["destination"] == "/data"
            && m["options"].as_array().unwrap().contains(&json!("ro"))));
    assert!(mounts.iter().any(|m| m["source"] == "/r/volumes/vol/_data"));
    assert!(v["process"]["rlimits"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["type"] == "RLIMIT_NPROC"));
    assert!(v["linux"]["maskedPaths"]
        .as_array()
        .unwrap()
        .contains(&json!("/proc/kcore")));
}

#[test]
fn privileged_gets_everything() {
    let mut opts = RunOptions::default();
    opts.host.privileged = true;
    let v = spec_json(&opts);
    assert_eq!(
        v["process"]["capabilities"]["bounding"]
            .as_array()
            .unwrap()
            .len(),
        ALL_CAPS.len()
    );
    assert!(v["linux"].get("maskedPaths").is_none());
}

#[test]
fn privileged_gets_the_host_devices_and_others_do_not() {
    let mut ctx = ctx();
    ctx.host_devices = host_devices(std::path::Path::new("/dev"));
    let path = |p: &str| std::path::PathBuf::from(p);
    assert!(ctx
        .host_devices
        .iter()
        .any(|d| *d.path() == path("/dev/null") && d.major() == 1 && d.minor() == 3));
    assert!(!ctx
        .host_devices
        .iter()
        .any(|d| *d.path() == path("/dev/ptmx")));
    let mut opts = RunOptions::default();
    let plain =
        serde_json::to_value(from_image_and_flags(&image(), &opts, &ctx).unwrap().1).unwrap();
    assert!(plain["linux"].get("devices").is_none());
    opts.host.privileged = true;
    let privileged =
        serde_json::to_value(from_image_and_flags(&image(), &opts, &ctx).unwrap().1).unwrap();
    assert_eq!(
        privileged["linux"]["devices"].as_array().unwrap().len(),
        ctx.host_devices.len()
    );
}
