//! Behaviour of both backends against fake cgroupfs trees (plain files in a tempdir): resource
//! conversions, creation, freezing and statistics parsing.

use crate::{Cgroup, CgroupError, CgroupVersion, Hierarchy};
use oci_spec::runtime::*;
use std::path::Path;

fn put(dir: &Path, file: &str, content: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(file), content).unwrap();
}

fn get(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file)).unwrap()
}

const V1_DIRS: &[&str] = &[
    "cpu,cpuacct",
    "cpuset",
    "memory",
    "pids",
    "blkio",
    "devices",
    "freezer",
    "hugetlb",
];

/// A v1 tree with the container cgroup /berth/c1 created and its files present.
fn v1_tree(files: &[(&str, &str, &str)]) -> (tempfile::TempDir, Cgroup) {
    let tmp = tempfile::tempdir().unwrap();
    for d in V1_DIRS {
        std::fs::create_dir_all(tmp.path().join(d)).unwrap();
    }
    put(&tmp.path().join("cpuset"), "cpuset.cpus", "0-1\n");
    put(&tmp.path().join("cpuset"), "cpuset.mems", "0\n");
    let h = Hierarchy::v1_at(tmp.path()).unwrap();
    let cg = Cgroup::open(&h, "/berth/c1").unwrap();
    for (controller, file, content) in files {
        put(&tmp.path().join(controller).join("berth/c1"), file, content);
    }
    // cpuset files exist empty in every new cpuset cgroup.
    for level in ["berth", "berth/c1"] {
        put(&tmp.path().join("cpuset").join(level), "cpuset.cpus", "");
        put(&tmp.path().join("cpuset").join(level), "cpuset.mems", "");
    }
    cg.create().unwrap();
    (tmp, cg)
}

fn v2_tree(files: &[(&str, &str)]) -> (tempfile::TempDir, Cgroup) {
    let tmp = tempfile::tempdir().unwrap();
    put(
        tmp.path(),
        "cgroup.controllers",
        "cpuset cpu io memory hugetlb pids rdma misc\n",
    );
    put(tmp.path(), "cgroup.subtree_control", "");
    put(
        &tmp.path().join("berth"),
        "cgroup.controllers",
        "cpu io memory pids\n",
    );
    put(
        &tmp.path().join("berth"),
        "cgroup.subtree_control",
        "memory\n",
    );
    let h = Hierarchy::v2_at(tmp.path()).unwrap();
    let cg = Cgroup::open(&h, "/berth/c1").unwrap();
    for (file, content) in files {
        put(&tmp.path().join("berth/c1"), file, content);
    }
    cg.create().unwrap();
    (tmp, cg)
}

fn memory(limit: i64, swap: Option<i64>) -> LinuxResources {
    let mut m = LinuxMemoryBuilder::default().limit(limit);
    if let Some(s) = swap {
        m = m.swap(s);
    }
    LinuxResourcesBuilder::default()
        .memory(m.build().unwrap())
        .build()
        .unwrap()
}

#[test]
fn open_resolves_absolute_and_relative_paths() {
    let mi = "35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
              41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n";
    let h = Hierarchy::from_proc(mi, "4:memory:/outer/me\n0::/\n").unwrap();
    let abs = Cgroup::open(&h, "/berth/x").unwrap();
    assert_eq!(
        abs.paths()["memory"],
        Path::new("/sys/fs/cgroup/memory/berth/x")
    );
    let rel = Cgroup::open(&h, "berth/x").unwrap();
    assert_eq!(
        rel.paths()["memory"],
        Path::new("/sys/fs/cgroup/memory/outer/me/berth/x")
    );
    for bad in ["", "/", "/a/../b", "a/./b"] {
        assert!(
            matches!(Cgroup::open(&h, bad), Err(CgroupError::InvalidPath(_))),
            "{bad:?}"
        );
    }
}

#[test]
fn hybrid_hosts_also_name_the_unified_tree() {
    let mi = "35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
              41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n";
    let h = Hierarchy::from_proc(mi, "4:memory:/\n0::/user.slice\n").unwrap();
    assert_eq!(h.version(), CgroupVersion::V1);
    let cg = Cgroup::open(&h, "/berth/x").unwrap();
    assert_eq!(
        cg.paths()["unified"],
        Path::new("/sys/fs/cgroup/unified/berth/x")
    );
    let rel = Cgroup::open(&h, "berth/x").unwrap();
    assert_eq!(
        rel.paths()["unified"],
        Path::new("/sys/fs/cgroup/unified/user.slice/berth/x")
    );
}

#[test]
fn v1_create_makes_every_controller_and_inherits_cpuset() {
    let (tmp, cg) = v1_tree(&[]);
    assert_eq!(cg.version(), CgroupVersion::V1);
    assert!(cg.exists());
    let paths = cg.paths();
    assert_eq!(paths["cpu"], paths["cpuacct"]);
    assert_eq!(paths["cpu"], tmp.path().join("cpu,cpuacct/berth/c1"));
    let c1 = tmp.path().join("cpuset/berth/c1");
    assert_eq!(get(&c1, "cpuset.cpus"), "0-1");
    assert_eq!(get(&c1, "cpuset.mems"), "0");
    assert_eq!(get(&tmp.path().join("cpuset/berth"), "cpuset.cpus"), "0-1");
}

#[test]
fn v1_memory_limit_swap_reservation_swappiness_oom() {
    let (tmp, cg) = v1_tree(&[
        ("memory", "memory.limit_in_bytes", "9223372036854771712\n"),
        (
            "memory",
            "memory.memsw.limit_in_bytes",
            "9223372036854771712\n",
        ),
        ("memory", "memory.soft_limit_in_bytes", ""),
        ("memory", "memory.swappiness", "60"),
        (
            "memory",
            "memory.oom_control",
            "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n",
        ),
    ]);
    let r = LinuxResourcesBuilder::default()
        .memory(
            LinuxMemoryBuilder::default()
                .limit(100 << 20)
                .swap(200 << 20)
                .reservation(50 << 20)
                .swappiness(10u64)
                .disable_oom_killer(true)
                .kernel(1 << 20)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    cg.apply(&r).unwrap();
    let d = tmp.path().join("memory/berth/c1");
    assert_eq!(get(&d, "memory.limit_in_bytes"), (100 << 20).to_string());
    assert_eq!(
        get(&d, "memory.memsw.limit_in_bytes"),
        (200 << 20).to_string()
    );
    assert_eq!(
        get(&d, "memory.soft_limit_in_bytes"),
        (50 << 20).to_string()
    );
    assert_eq!(get(&d, "memory.swappiness"), "10");
    assert_eq!(get(&d, "memory.oom_control"), "1");
}

#[test]
fn v1_missing_memsw_is_an_error_only_when_swap_is_limited() {
    let (_tmp, cg) = v1_tree(&[("memory", "memory.limit_in_bytes", "0")]);
    match cg.apply(&memory(100 << 20, Some(200 << 20))) {
        Err(CgroupError::MissingFile { path, .. }) => {
            assert!(path.ends_with("memory.memsw.limit_in_bytes"))
        }
        other => panic!("expected MissingFile, got {other:?}"),
    }
    cg.apply(&memory(100 << 20, Some(-1))).unwrap();
    cg.apply(&memory(-1, None)).unwrap();
}

#[test]
fn v1_cpu_shares_quota_period_cpuset() {
    let (tmp, cg) = v1_tree(&[
        ("cpu,cpuacct", "cpu.shares", "1024"),
        ("cpu,cpuacct", "cpu.cfs_quota_us", "-1"),
        ("cpu,cpuacct", "cpu.cfs_period_us", "100000"),
    ]);
    let r = LinuxResourcesBuilder::default()
        .cpu(
            LinuxCpuBuilder::default()
                .shares(512u64)
                .quota(50000i64)
                .period(200000u64)
                .cpus("1")
                .mems("0")
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    cg.apply(&r).unwrap();
    let d = tmp.path().join("cpu,cpuacct/berth/c1");
    assert_eq!(get(&d, "cpu.shares"), "512");
    assert_eq!(get(&d, "cpu.cfs_quota_us"), "50000");
    assert_eq!(get(&d, "cpu.cfs_period_us"), "200000");
    assert_eq!(get(&tmp.path().join("cpuset/berth/c1"), "cpuset.cpus"), "1");
    // Realtime is only written when asked for: the file is absent here and nothing failed.
    assert!(!d.join("cpu.rt_runtime_us").exists());
}

#[test]
fn v1_pids_blkio_hugetlb_devices_unified() {
    let (tmp, cg) = v1_tree(&[
        ("pids", "pids.max", "max"),
        ("blkio", "blkio.bfq.weight", "100"),
        ("blkio", "blkio.throttle.read_bps_device", ""),
        ("hugetlb", "hugetlb.2MB.limit_in_bytes", ""),
        ("devices", "devices.allow", ""),
        ("devices", "devices.deny", ""),
    ]);
    let pids = |n: i64| {
        LinuxResourcesBuilder::default()
            .pids(LinuxPidsBuilder::default().limit(n).build().unwrap())
            .build()
            .unwrap()
    };
    cg.apply(&pids(10)).unwrap();
    assert_eq!(get(&tmp.path().join("pids/berth/c1"), "pids.max"), "10");
    cg.apply(&pids(0)).unwrap();
    assert_eq!(get(&tmp.path().join("pids/berth/c1"), "pids.max"), "max");

    let r = LinuxResourcesBuilder::default()
        .block_io(
            LinuxBlockIoBuilder::default()
                .weight(300u16)
                .throttle_read_bps_device(vec![LinuxThrottleDeviceBuilder::default()
                    .major(8)
                    .minor(0)
                    .rate(1048576u64)
                    .build()
                    .unwrap()])
                .build()
                .unwrap(),
        )
        .hugepage_limits(vec![LinuxHugepageLimitBuilder::default()
            .page_size("2MB")
            .limit(4i64 << 21)
            .build()
            .unwrap()])
        .devices(vec![LinuxDeviceCgroupBuilder::default()
            .allow(false)
            .access("rwm")
            .build()
            .unwrap()])
        .build()
        .unwrap();
    cg.apply(&r).unwrap();
    let b = tmp.path().join("blkio/berth/c1");
    assert_eq!(get(&b, "blkio.bfq.weight"), "300");
    assert_eq!(get(&b, "blkio.throttle.read_bps_device"), "8:0 1048576");
    let h = tmp.path().join("hugetlb/berth/c1");
    assert_eq!(
        get(&h, "hugetlb.2MB.limit_in_bytes"),
        (4u64 << 21).to_string()
    );
    // The last write to devices.allow is the last of runc's defaults.
    assert_eq!(
        get(&tmp.path().join("devices/berth/c1"), "devices.allow"),
        "c 10:200 rwm"
    );

    let unified = LinuxResourcesBuilder::default()
        .unified(
            [("memory.high".to_string(), "1G".to_string())]
                .into_iter()
                .collect::<std::collections::HashMap<_, _>>(),
        )
        .build()
        .unwrap();
    let e = cg.apply(&unified).unwrap_err();
    assert!(
        matches!(
            e,
            CgroupError::Unsupported {
                version: CgroupVersion::V1,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("invalid configuration"), "{e}");
}

#[test]
fn v1_freeze_thaw_and_oom_count() {
    let (_tmp, cg) = v1_tree(&[
        ("freezer", "freezer.state", "THAWED\n"),
        (
            "memory",
            "memory.oom_control",
            "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n",
        ),
    ]);
    assert!(!cg.is_frozen().unwrap());
    cg.freeze().unwrap();
    assert!(cg.is_frozen().unwrap());
    cg.thaw().unwrap();
    assert!(!cg.is_frozen().unwrap());
    assert_eq!(cg.oom_kill_count().unwrap(), 3);
}

#[test]
fn v1_stats_are_parsed() {
    let (_tmp, cg) = v1_tree(&[
        ("cpu,cpuacct", "cpuacct.usage", "5000000000\n"),
        ("cpu,cpuacct", "cpuacct.stat", "user 300\nsystem 100\n"),
        ("cpu,cpuacct", "cpuacct.usage_percpu", "3000000000 2000000000 \n"),
        ("cpu,cpuacct", "cpu.stat", "nr_periods 10\nnr_throttled 4\nthrottled_time 123456\n"),
        ("memory", "memory.usage_in_bytes", "1048576\n"),
        ("memory", "memory.max_usage_in_bytes", "2097152\n"),
        ("memory", "memory.limit_in_bytes", "9223372036854771712\n"),
        ("memory", "memory.failcnt", "7\n"),
        ("memory", "memory.memsw.usage_in_bytes", "1148576\n"),
        ("memory", "memory.memsw.limit_in_bytes", "209715200\n"),
        ("memory", "memory.stat", "cache 4096\nrss 8192\ntotal_cache 4096\ntotal_rss 8192\n"),
        ("memory", "memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n"),
        ("pids", "pids.current", "3\n"),
        ("pids", "pids.max", "max\n"),
        ("blkio", "blkio.throttle.io_service_bytes_recursive",
         "8:0 Read 4096\n8:0 Write 8192\n8:0 Sync 0\n8:0 Async 12288\n8:0 Total 12288\nTotal 12288\n"),
        ("hugetlb", "hugetlb.2MB.usage_in_bytes", "2097152\n"),
        ("hugetlb", "hugetlb.2MB.max_usage_in_bytes", "4194304\n"),
        ("hugetlb", "hugetlb.2MB.failcnt", "1\n"),
    ]);
    let st = cg.stats().unwrap();
    assert_eq!(st.cpu.usage_total_ns, 5_000_000_000);
    assert_eq!(st.cpu.usage_user_ns, 3_000_000_000);
    assert_eq!(st.cpu.usage_system_ns, 1_000_000_000);
    assert_eq!(st.cpu.usage_per_cpu_ns, vec![3_000_000_000, 2_000_000_000]);
    assert_eq!(st.cpu.throttling.throttled_periods, 4);
    assert_eq!(st.cpu.throttling.throttled_time_ns, 123456);
    assert_eq!(st.memory.usage, 1 << 20);
    assert_eq!(st.memory.max_usage, 2 << 20);
    assert_eq!(st.memory.limit, None);
    assert_eq!(st.memory.failcnt, 7);
    assert_eq!(st.memory.swap_usage, 100_000);
    assert_eq!(st.memory.swap_limit, Some(200 << 20));
    assert_eq!((st.memory.cache, st.memory.rss), (4096, 8192));
    assert_eq!(st.memory.oom_kills, 1);
    assert_eq!((st.pids.current, st.pids.limit), (3, None));
    assert_eq!((st.blkio.read_bytes, st.blkio.write_bytes), (4096, 8192));
    assert_eq!(st.blkio.entries.len(), 5);
    assert_eq!(st.hugetlb["2MB"].max_usage, 4 << 20);
    let json = serde_json::to_string(&st).unwrap();
    assert!(json.contains("\"usage_total_ns\":5000000000"));
}

#[test]
fn v1_destroy_removes_every_controller_dir() {
    let (tmp, cg) = v1_tree(&[]);
    // Fake trees hold regular files that rmdir would refuse; real cgroupfs dirs hold none.
    for dir in cg.paths().values() {
        for e in std::fs::read_dir(dir).unwrap() {
            std::fs::remove_file(e.unwrap().path()).unwrap();
        }
    }
    std::fs::create_dir(tmp.path().join("memory/berth/c1/child")).unwrap();
    cg.destroy().unwrap();
    assert!(!cg.exists());
    assert!(cg.paths().values().all(|d| !d.exists()));
    cg.destroy().unwrap(); // already gone is fine
}

#[test]
fn v2_create_enables_controllers_in_ancestors() {
    let (tmp, cg) = v2_tree(&[]);
    assert_eq!(cg.version(), CgroupVersion::V2);
    assert_eq!(cg.paths()["unified"], tmp.path().join("berth/c1"));
    assert_eq!(
        get(tmp.path(), "cgroup.subtree_control"),
        "+cpuset +cpu +io +memory +hugetlb +pids +rdma +misc"
    );
    // "memory" was already on in /berth.
    assert_eq!(
        get(&tmp.path().join("berth"), "cgroup.subtree_control"),
        "+cpu +io +pids"
    );
}

#[test]
fn v2_swap_conversion_matches_runc() {
    use crate::v2::swap_max;
    assert_eq!(swap_max(-1, 0).unwrap(), Some(-1));
    assert_eq!(swap_max(100, -1).unwrap(), Some(-1));
    assert_eq!(swap_max(100, 0).unwrap(), None);
    assert_eq!(swap_max(100, 300).unwrap(), Some(200));
    assert!(swap_max(0, 300).is_err());
    assert!(swap_max(300, 100).is_err());
}

#[test]
fn v2_memory_files() {
    let (tmp, cg) = v2_tree(&[
        ("memory.max", "max\n"),
        ("memory.swap.max", "max\n"),
        ("memory.low", "0\n"),
    ]);
    let r = LinuxResourcesBuilder::default()
        .memory(
            LinuxMemoryBuilder::default()
                .limit(100i64 << 20)
                .swap(300i64 << 20)
                .reservation(50i64 << 20)
                .swappiness(10u64)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    cg.apply(&r).unwrap();
    let d = tmp.path().join("berth/c1");
    assert_eq!(get(&d, "memory.max"), (100 << 20).to_string());
    assert_eq!(get(&d, "memory.swap.max"), (200 << 20).to_string());
    assert_eq!(get(&d, "memory.low"), (50 << 20).to_string());
    cg.apply(&memory(-1, None)).unwrap();
    assert_eq!(get(&d, "memory.max"), "max");
    assert_eq!(get(&d, "memory.swap.max"), "max");
}

#[test]
fn v2_cpu_weight_and_max() {
    let (tmp, cg) = v2_tree(&[
        ("cpu.weight", "100\n"),
        ("cpu.max", "max 100000\n"),
        ("cpuset.cpus", ""),
    ]);
    let d = tmp.path().join("berth/c1");
    let cpu = |b: LinuxCpuBuilder| {
        LinuxResourcesBuilder::default()
            .cpu(b.build().unwrap())
            .build()
            .unwrap()
    };
    cg.apply(&cpu(LinuxCpuBuilder::default()
        .shares(1024u64)
        .quota(50000i64)
        .cpus("0")))
        .unwrap();
    assert_eq!(get(&d, "cpu.weight"), "39");
    assert_eq!(get(&d, "cpu.max"), "50000 100000");
    assert_eq!(get(&d, "cpuset.cpus"), "0");
    cg.apply(&cpu(LinuxCpuBuilder::default()
        .quota(-1i64)
        .period(250000u64)))
        .unwrap();
    assert_eq!(get(&d, "cpu.max"), "max 250000");
    assert!(cg
        .apply(&cpu(LinuxCpuBuilder::default().realtime_runtime(1000i64)))
        .is_err());
}

#[test]
fn v2_pids_io_hugetlb_unified() {
    let (tmp, cg) = v2_tree(&[
        ("pids.max", "max\n"),
        ("io.weight", "default 100\n"),
        ("io.max", ""),
        ("hugetlb.2MB.max", "max\n"),
        ("memory.high", "max\n"),
    ]);
    let d = tmp.path().join("berth/c1");
    let r = LinuxResourcesBuilder::default()
        .pids(LinuxPidsBuilder::default().limit(-1i64).build().unwrap())
        .block_io(
            LinuxBlockIoBuilder::default()
                .weight(500u16)
                .throttle_write_iops_device(vec![LinuxThrottleDeviceBuilder::default()
                    .major(8)
                    .minor(16)
                    .rate(100u64)
                    .build()
                    .unwrap()])
                .build()
                .unwrap(),
        )
        .hugepage_limits(vec![LinuxHugepageLimitBuilder::default()
            .page_size("2MB")
            .limit(2i64 << 21)
            .build()
            .unwrap()])
        .unified(
            [("memory.high".to_string(), "1073741824".to_string())]
                .into_iter()
                .collect::<std::collections::HashMap<_, _>>(),
        )
        .build()
        .unwrap();
    cg.apply(&r).unwrap();
    assert_eq!(get(&d, "pids.max"), "max");
    assert_eq!(get(&d, "io.weight"), "default 4950");
    assert_eq!(get(&d, "io.max"), "8:16 wiops=100");
    assert_eq!(get(&d, "hugetlb.2MB.max"), (2u64 << 21).to_string());
    assert_eq!(get(&d, "memory.high"), "1073741824");
    let missing = LinuxResourcesBuilder::default()
        .unified(
            [("memory.nonexistent".to_string(), "1".to_string())]
                .into_iter()
                .collect::<std::collections::HashMap<_, _>>(),
        )
        .build()
        .unwrap();
    assert!(matches!(
        cg.apply(&missing),
        Err(CgroupError::MissingFile { .. })
    ));
}

#[test]
fn v2_freeze_and_oom_count() {
    let (tmp, cg) = v2_tree(&[
        ("cgroup.freeze", "0\n"),
        ("cgroup.events", "populated 1\nfrozen 1\n"),
        ("memory.events", "low 0\nhigh 0\nmax 5\noom 2\noom_kill 2\n"),
    ]);
    cg.freeze().unwrap();
    assert_eq!(get(&tmp.path().join("berth/c1"), "cgroup.freeze"), "1");
    assert!(cg.is_frozen().unwrap());
    put(
        &tmp.path().join("berth/c1"),
        "cgroup.events",
        "populated 1\nfrozen 0\n",
    );
    cg.thaw().unwrap();
    assert!(!cg.is_frozen().unwrap());
    assert_eq!(cg.oom_kill_count().unwrap(), 2);
}

#[test]
fn v2_stats_are_parsed() {
    let (_tmp, cg) = v2_tree(&[
        ("cpu.stat", "usage_usec 5000\nuser_usec 3000\nsystem_usec 2000\nnr_periods 10\nnr_throttled 2\nthrottled_usec 700\n"),
        ("memory.current", "1048576\n"),
        ("memory.peak", "2097152\n"),
        ("memory.max", "104857600\n"),
        ("memory.events", "low 0\nhigh 0\nmax 5\noom 1\noom_kill 1\n"),
        ("memory.swap.current", "4096\n"),
        ("memory.swap.max", "max\n"),
        ("memory.stat", "anon 8192\nfile 4096\nkernel 100\n"),
        ("pids.current", "4\n"),
        ("pids.max", "100\n"),
        ("io.stat", "8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n8:16 rbytes=1 wbytes=1 rios=1 wios=1 dbytes=0 dios=0\n"),
        ("hugetlb.2MB.current", "2097152\n"),
        ("hugetlb.2MB.events", "max 3\n"),
    ]);
    let st = cg.stats().unwrap();
    assert_eq!(st.cpu.usage_total_ns, 5_000_000);
    assert_eq!(st.cpu.usage_user_ns, 3_000_000);
    assert_eq!(st.cpu.usage_system_ns, 2_000_000);
    assert_eq!(st.cpu.throttling.throttled_time_ns, 700_000);
    assert_eq!(st.memory.usage, 1 << 20);
    assert_eq!(st.memory.max_usage, 2 << 20);
    assert_eq!(st.memory.limit, Some(100 << 20));
    assert_eq!(st.memory.failcnt, 5);
    assert_eq!(st.memory.oom_kills, 1);
    assert_eq!((st.memory.swap_usage, st.memory.swap_limit), (4096, None));
    assert_eq!((st.memory.rss, st.memory.cache), (8192, 4096));
    assert_eq!((st.pids.current, st.pids.limit), (4, Some(100)));
    assert_eq!((st.blkio.read_bytes, st.blkio.write_bytes), (4097, 8193));
    assert_eq!(st.hugetlb["2MB"].usage, 2 << 20);
    assert_eq!(st.hugetlb["2MB"].failcnt, 3);
}

#[test]
fn v2_pids_reads_cgroup_procs() {
    let (_tmp, cg) = v2_tree(&[("cgroup.procs", "12\n34\n")]);
    assert_eq!(cg.pids().unwrap(), vec![12, 34]);
}

#[test]
fn systemd_paths_expand_like_systemd() {
    use crate::systemd_cgroups_path as p;
    assert_eq!(
        p("system.slice:berth:abc").unwrap(),
        "/system.slice/berth-abc.scope"
    );
    assert_eq!(p(":berth:abc").unwrap(), "/system.slice/berth-abc.scope");
    assert_eq!(p("a-b.slice:p:n").unwrap(), "/a.slice/a-b.slice/p-n.scope");
    assert_eq!(p("-.slice::n").unwrap(), "/n.scope");
    assert_eq!(p("user.slice:x:my.slice").unwrap(), "/my.slice");
    for bad in [
        "abc",
        "a:b",
        "x.slice:p:",
        "notaslice:p:n",
        "a--b.slice:p:n",
        "s.slice:p:a/b",
    ] {
        assert!(p(bad).is_err(), "{bad}");
    }
}

#[test]
fn cgroup_round_trips_through_json_and_lists_nested_pids() {
    let (tmp, cg) = v2_tree(&[("cgroup.procs", "12\n")]);
    put(&tmp.path().join("berth/c1/sub"), "cgroup.procs", "34\n56\n");
    let json = serde_json::to_string(&cg).unwrap();
    let back: Cgroup = serde_json::from_str(&json).unwrap();
    assert_eq!(back, cg);
    let mut all = back.all_pids().unwrap();
    all.sort();
    assert_eq!(all, vec![12, 34, 56]);
    assert_eq!(back.pids().unwrap(), vec![12]);
}

#[test]
fn create_and_apply_always_whitelists_devices() {
    let (tmp, cg) = v1_tree(&[
        ("devices", "devices.allow", ""),
        ("devices", "devices.deny", ""),
    ]);
    cg.create_and_apply(None).unwrap();
    let d = tmp.path().join("devices/berth/c1");
    assert_eq!(get(&d, "devices.deny"), "a");
    assert_eq!(get(&d, "devices.allow"), "c 10:200 rwm");
}

#[test]
fn v1_network_rdma_realtime_and_limits_checks() {
    let tmp = tempfile::tempdir().unwrap();
    for d in ["cpu", "memory", "net_cls,net_prio", "rdma"] {
        std::fs::create_dir_all(tmp.path().join(d)).unwrap();
    }
    let h = Hierarchy::v1_at(tmp.path()).unwrap();
    let cg = Cgroup::open(&h, "c2").unwrap();
    for (dir, file) in [
        ("net_cls,net_prio", "net_cls.classid"),
        ("net_cls,net_prio", "net_prio.ifpriomap"),
        ("rdma", "rdma.max"),
        ("cpu", "cpu.rt_period_us"),
        ("cpu", "cpu.rt_runtime_us"),
        ("memory", "memory.swappiness"),
    ] {
        put(&tmp.path().join(dir).join("c2"), file, "");
    }
    cg.create().unwrap();
    let r = LinuxResourcesBuilder::default()
        .network(
            LinuxNetworkBuilder::default()
                .class_id(0x100001u32)
                .priorities(vec![LinuxInterfacePriorityBuilder::default()
                    .name("eth0")
                    .priority(5u32)
                    .build()
                    .unwrap()])
                .build()
                .unwrap(),
        )
        .rdma(
            [(
                "mlx5_0".to_string(),
                LinuxRdmaBuilder::default()
                    .hca_handles(2u32)
                    .hca_objects(100u32)
                    .build()
                    .unwrap(),
            )]
            .into_iter()
            .collect::<std::collections::HashMap<_, _>>(),
        )
        .cpu(
            LinuxCpuBuilder::default()
                .realtime_period(1000000u64)
                .realtime_runtime(950000i64)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    cg.apply(&r).unwrap();
    let net = tmp.path().join("net_cls,net_prio/c2");
    assert_eq!(get(&net, "net_cls.classid"), "1048577");
    assert_eq!(get(&net, "net_prio.ifpriomap"), "eth0 5");
    assert_eq!(
        get(&tmp.path().join("rdma/c2"), "rdma.max"),
        "mlx5_0 hca_handle=2 hca_object=100"
    );
    assert_eq!(
        get(&tmp.path().join("cpu/c2"), "cpu.rt_runtime_us"),
        "950000"
    );
    let bad = LinuxResourcesBuilder::default()
        .memory(
            LinuxMemoryBuilder::default()
                .swappiness(101u64)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    assert!(cg.apply(&bad).is_err());
    // A controller this host lacks is an error only when a value is asked of it.
    let hugetlb = LinuxResourcesBuilder::default()
        .hugepage_limits(vec![LinuxHugepageLimitBuilder::default()
            .page_size("2MB")
            .limit(1i64 << 21)
            .build()
            .unwrap()])
        .build()
        .unwrap();
    assert!(matches!(
        cg.apply(&hugetlb),
        Err(CgroupError::MissingController { .. })
    ));
    let unlimited_pids = LinuxResourcesBuilder::default()
        .pids(LinuxPidsBuilder::default().limit(-1i64).build().unwrap())
        .build()
        .unwrap();
    cg.apply(&unlimited_pids).unwrap();
}

#[test]
fn v2_bfq_weight_rdma_and_relative_paths() {
    let (tmp, cg) = v2_tree(&[("io.bfq.weight", "default 100\n"), ("rdma.max", "")]);
    let d = tmp.path().join("berth/c1");
    let r = LinuxResourcesBuilder::default()
        .block_io(
            LinuxBlockIoBuilder::default()
                .weight(300u16)
                .weight_device(vec![LinuxWeightDeviceBuilder::default()
                    .major(8)
                    .minor(0)
                    .weight(700u16)
                    .build()
                    .unwrap()])
                .build()
                .unwrap(),
        )
        .rdma(
            [(
                "mlx5_0".to_string(),
                LinuxRdmaBuilder::default()
                    .hca_handles(3u32)
                    .build()
                    .unwrap(),
            )]
            .into_iter()
            .collect::<std::collections::HashMap<_, _>>(),
        )
        .build()
        .unwrap();
    cg.apply(&r).unwrap();
    // BFQ takes blkio-scale weights unconverted; the per-device line is the last write.
    assert_eq!(get(&d, "io.bfq.weight"), "8:0 700");
    assert_eq!(get(&d, "rdma.max"), "mlx5_0 hca_handle=3");
    let mi = "30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
    let h = Hierarchy::from_proc(mi, "0::/user.slice/me.scope\n").unwrap();
    let rel = Cgroup::open(&h, "berth/x").unwrap();
    assert_eq!(
        rel.paths()["unified"],
        Path::new("/sys/fs/cgroup/user.slice/me.scope/berth/x")
    );
}

/// A device rule with a bad access string is refused before anything is written, on both
/// versions (v1 would write `devices.deny` first; v2 would build the eBPF program from it).
#[test]
fn bad_device_access_is_refused_before_any_write() {
    let bad = LinuxResourcesBuilder::default()
        .devices(vec![LinuxDeviceCgroupBuilder::default()
            .allow(false)
            .typ(LinuxDeviceType::C)
            .major(1)
            .minor(3)
            .access("rwa")
            .build()
            .unwrap()])
        .memory(
            LinuxMemoryBuilder::default()
                .limit(1 << 20)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let (tmp, cg) = v1_tree(&[("memory", "memory.limit_in_bytes", "9223372036854771712\n")]);
    let e = cg.apply(&bad).unwrap_err();
    assert!(matches!(e, CgroupError::InvalidDeviceRule { .. }), "{e}");
    assert!(!tmp.path().join("devices/berth/c1/devices.deny").exists());
    assert_eq!(
        get(&tmp.path().join("memory/berth/c1"), "memory.limit_in_bytes"),
        "9223372036854771712\n",
        "nothing applied"
    );
    let (_tmp, cg) = v2_tree(&[("memory.max", "max\n")]);
    let e = cg.apply(&bad).unwrap_err();
    assert!(matches!(e, CgroupError::InvalidDeviceRule { .. }), "{e}");
}
