//! `berth run` end to end on an imported busybox image: output, exit codes, env / workdir /
//! user / hostname, volumes, read-only roots, cgroup limits, OOM, failures that leave nothing
//! behind, and concurrent runs on one root.
mod container_common;
use container_common::*;

#[test]
fn run_rm_prints_output_and_passes_exit_codes() {
    let env = Env::new("codes");
    let out = env.berth(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "echo hello; echo oops >&2; exit 3",
    ]);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(stdout(&out), "hello\n");
    assert_eq!(stderr(&out), "oops\n");
    assert_eq!(
        env.berth(&["run", "--rm", "busybox", "true"]).status.code(),
        Some(0)
    );
    let missing = env.berth(&["run", "--rm", "busybox", "no-such-command"]);
    assert_eq!(missing.status.code(), Some(127), "{}", stderr(&missing));
    assert!(stderr(&missing).contains("no-such-command"));
    assert_eq!(
        env.berth(&["run", "--rm", "busybox", "/etc/passwd"])
            .status
            .code(),
        Some(126)
    );
    assert!(
        env.record_ids().is_empty(),
        "--rm left records: {:?}",
        env.record_ids()
    );
}

#[test]
fn failed_runs_leave_nothing_behind() {
    let env = Env::new("fail");
    // A registry on loopback where nothing listens: the pull that `run` tries stays on this host.
    let out = env.berth(&["run", "--rm", "127.0.0.1:9/no-such-image"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        stderr(&out).contains("Unable to find image '127.0.0.1:9/no-such-image:latest' locally"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        env.berth(&["run", "--rm", "busybox", "no-such-command"])
            .status
            .code(),
        Some(127)
    );
    assert!(env.record_ids().is_empty());
    // Without --rm the record stays (as Docker's does) but nothing is mounted and no cgroup is left.
    let out = env.berth(&["run", "--name", "broken", "busybox", "no-such-command"]);
    assert_eq!(out.status.code(), Some(127));
    let id = env.inspect("broken", "{{.Id}}");
    assert_eq!(env.inspect("broken", "{{.State.ExitCode}}"), "127");
    assert!(
        env.mounts_below().is_empty(),
        "mounts left: {:?}",
        env.mounts_below()
    );
    assert!(!cgroup_dir("pids", &id).exists(), "cgroup left for {id}");
    env.ok(&["rm", "broken"]);
    assert!(env.record_ids().is_empty());
    let bad_flag = env.berth(&["run", "--rm", "--restart", "sometimes", "busybox", "true"]);
    assert_eq!(bad_flag.status.code(), Some(125));
}

/// Directory entries under `dir` (names only, sorted); empty when it does not exist.
fn entries(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn foreground_run_rm_returns_only_after_removal() {
    // Like `docker run --rm`, the client returns only once the container is gone: the same
    // name can be taken again at once, and nothing of it is left for a test to poll for.
    let env = Env::new("rmsync");
    let layerdb_mounts = env.path().join("image/overlay2/layerdb/mounts");
    let overlay_dirs = entries(&env.path().join("overlay2"));
    for round in 0..20 {
        let out = env.berth(&["run", "--rm", "--name", "same", "busybox", "true"]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "round {round}: {}",
            stderr(&out)
        );
        assert!(
            env.record_ids().is_empty(),
            "round {round}: record left: {:?}",
            env.record_ids()
        );
        assert!(
            entries(&env.path().join("containers/.names")).is_empty(),
            "round {round}: name left"
        );
        assert!(
            env.mounts_below().is_empty(),
            "round {round}: mounts left: {:?}",
            env.mounts_below()
        );
        assert!(
            entries(&layerdb_mounts).is_empty(),
            "round {round}: layerdb/mounts left: {:?}",
            entries(&layerdb_mounts)
        );
        assert_eq!(
            entries(&env.path().join("overlay2")),
            overlay_dirs,
            "round {round}: layer directories left"
        );
    }
    // The cgroup goes before the client returns too (the hostname names the container).
    for round in 0..3 {
        let short = env.ok(&["run", "--rm", "--name", "same", "busybox", "hostname"]);
        let short = short.trim();
        assert_eq!(short.len(), 12, "hostname {short:?}");
        let parent = cgroup_dir("pids", "x");
        let parent = parent.parent().unwrap_or(std::path::Path::new("/"));
        let left: Vec<String> = entries(parent)
            .into_iter()
            .filter(|n| n.starts_with(short))
            .collect();
        assert!(left.is_empty(), "round {round}: cgroup left: {left:?}");
        assert!(env.record_ids().is_empty(), "round {round}: record left");
    }
    // A failed start with --rm is removed before the error comes back, too.
    for round in 0..3 {
        let out = env.berth(&[
            "run",
            "--rm",
            "--name",
            "same",
            "busybox",
            "no-such-command",
        ]);
        assert_eq!(
            out.status.code(),
            Some(127),
            "round {round}: {}",
            stderr(&out)
        );
        assert!(env.record_ids().is_empty(), "round {round}: record left");
        assert!(env.mounts_below().is_empty(), "round {round}: mounts left");
        assert!(
            entries(&layerdb_mounts).is_empty(),
            "round {round}: layer left"
        );
    }
}

#[test]
fn env_workdir_user_and_hostname_follow_flags_and_image() {
    let env = Env::new("proc");
    let out = env.ok(&[
        "run",
        "--rm",
        "-e",
        "GREETING=hi",
        "-w",
        "/tmp",
        "-u",
        "tester",
        "--hostname",
        "box",
        "busybox",
        "sh",
        "-c",
        "echo $GREETING; pwd; id -u; id -g; id -G; hostname; echo $PATH; cat /etc/hostname",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "hi");
    assert_eq!(lines[1], "/tmp");
    assert_eq!(lines[2], "1000");
    assert_eq!(lines[3], "1000");
    assert!(
        lines[4].split(' ').any(|g| g == "50"),
        "supplementary groups: {}",
        lines[4]
    );
    assert_eq!(lines[5], "box");
    assert!(lines[6].contains("/usr/bin"));
    assert_eq!(lines[7], "box");
    let env_file = env.path().join("env.list");
    std::fs::write(&env_file, "# comment\nFROM_FILE=yes\n").unwrap();
    let out = env.ok(&[
        "run",
        "--rm",
        "--env-file",
        env_file.to_str().unwrap(),
        "busybox",
        "sh",
        "-c",
        "echo $FROM_FILE; cat /proc/1/cmdline | tr '\\0' ' '",
    ]);
    assert!(out.starts_with("yes\n"), "{out}");
    let out = env.ok(&[
        "run",
        "--rm",
        "--entrypoint",
        "echo",
        "busybox",
        "from",
        "entrypoint",
    ]);
    assert_eq!(out, "from entrypoint");
}

#[test]
fn volumes_write_to_the_host_and_read_only_refuses_writes() {
    let env = Env::new("vol");
    let host_dir = env.path().join("hostdata");
    std::fs::create_dir_all(&host_dir).unwrap();
    let spec = format!("{}:/data", host_dir.display());
    env.ok(&[
        "run",
        "--rm",
        "-v",
        &spec,
        "busybox",
        "sh",
        "-c",
        "echo written > /data/file",
    ]);
    assert_eq!(
        std::fs::read_to_string(host_dir.join("file")).unwrap(),
        "written\n"
    );
    let ro = format!("{}:/data:ro", host_dir.display());
    assert_ne!(
        env.berth(&["run", "--rm", "-v", &ro, "busybox", "touch", "/data/nope"])
            .status
            .code(),
        Some(0)
    );
    env.ok(&[
        "run",
        "--rm",
        "-v",
        "named:/v",
        "busybox",
        "sh",
        "-c",
        "echo kept > /v/f",
    ]);
    assert_eq!(
        env.ok(&["run", "--rm", "-v", "named:/v", "busybox", "cat", "/v/f"]),
        "kept"
    );
    let out = env.berth(&["run", "--rm", "--read-only", "busybox", "touch", "/newfile"]);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        stderr(&out).contains("Read-only file system"),
        "{}",
        stderr(&out)
    );
    env.ok(&[
        "run",
        "--rm",
        "--read-only",
        "--tmpfs",
        "/scratch",
        "busybox",
        "touch",
        "/scratch/ok",
    ]);
}

#[test]
fn resource_limits_land_in_the_cgroup() {
    let env = Env::new("limits");
    let id = env.ok(&[
        "run",
        "-d",
        "--pids-limit",
        "20",
        "--cpus",
        "0.5",
        "-m",
        "64m",
        "busybox",
        "sleep",
        "1000",
    ]);
    let read = |ctl: &str, file: &str| {
        std::fs::read_to_string(cgroup_dir(ctl, &id).join(file))
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    if std::path::Path::new("/sys/fs/cgroup/pids").exists() {
        assert_eq!(read("pids", "pids.max"), "20");
        assert_eq!(read("cpu", "cpu.cfs_quota_us"), "50000");
        assert_eq!(read("cpu", "cpu.cfs_period_us"), "100000");
        assert_eq!(
            read("memory", "memory.limit_in_bytes"),
            (64u64 << 20).to_string()
        );
    } else {
        assert_eq!(read("pids", "pids.max"), "20");
        assert_eq!(read("cpu", "cpu.max"), "50000 100000");
    }
    let cgroups = env.inspect(&id, "{{json .Cgroups}}");
    assert!(cgroups.contains(&id), "{cgroups}");
    env.ok(&["rm", "-f", &id]);
    assert!(!cgroup_dir("pids", &id).exists());
}

#[test]
fn memory_hog_is_oom_killed() {
    let env = Env::new("oom");
    let out = env.berth(&[
        "run",
        "--name",
        "hog",
        "-m",
        "32m",
        "--memory-swap",
        "32m",
        "busybox",
        "sh",
        "-c",
        "x=0123456789; while true; do x=$x$x; done",
    ]);
    assert_eq!(out.status.code(), Some(137), "{}", stderr(&out));
    assert_eq!(env.inspect("hog", "{{.State.OOMKilled}}"), "true");
    assert_eq!(env.inspect("hog", "{{.State.ExitCode}}"), "137");
}

#[test]
fn concurrent_runs_on_one_root_all_succeed() {
    let env = Env::new("concurrent");
    let handles: Vec<_> = (0..6)
        .map(|i| {
            let mut cmd = env.cmd(&["run", "--rm", "busybox", "echo", &format!("run-{i}")]);
            std::thread::spawn(move || cmd.output().expect("berth run"))
        })
        .collect();
    for (i, h) in handles.into_iter().enumerate() {
        let out = h.join().expect("thread");
        assert!(out.status.success(), "run {i}: {}", stderr(&out));
        assert_eq!(stdout(&out), format!("run-{i}\n"));
    }
    assert!(env.record_ids().is_empty());
    assert!(env.mounts_below().is_empty());
}

#[test]
fn capabilities_follow_docker_defaults_and_flags() {
    let env = Env::new("caps");
    let eff = |args: &[&str]| {
        let mut all = vec!["run", "--rm"];
        all.extend_from_slice(args);
        all.extend_from_slice(&[
            "busybox",
            "sh",
            "-c",
            "grep CapEff /proc/self/status | cut -f2",
        ]);
        u64::from_str_radix(env.ok(&all).trim(), 16).unwrap()
    };
    // Docker's default set: CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID SETPCAP
    // NET_BIND_SERVICE NET_RAW SYS_CHROOT MKNOD AUDIT_WRITE SETFCAP.
    assert_eq!(eff(&[]), 0xa80425fb);
    assert_eq!(eff(&["--cap-drop", "ALL"]), 0);
    assert_eq!(
        eff(&["--cap-drop", "NET_RAW", "--cap-add", "SYS_ADMIN"]),
        (0xa80425fb & !(1 << 13)) | (1 << 21)
    );
    let host_bounding = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| {
            l.strip_prefix("CapBnd:")
                .map(|v| u64::from_str_radix(v.trim(), 16).unwrap())
        })
        .unwrap();
    assert_eq!(eff(&["--privileged"]), host_bounding);
    let nnp = env.ok(&[
        "run",
        "--rm",
        "--security-opt",
        "no-new-privileges",
        "busybox",
        "grep",
        "NoNewPrivs",
        "/proc/self/status",
    ]);
    assert!(nnp.ends_with('1'), "{nnp}");
    // Docker's default seccomp profile is applied (mode 2, filter) unless unconfined.
    let filtered = env.ok(&[
        "run",
        "--rm",
        "busybox",
        "grep",
        "Seccomp:",
        "/proc/self/status",
    ]);
    assert!(filtered.ends_with('2'), "{filtered}");
    let unconfined = env.ok(&[
        "run",
        "--rm",
        "--security-opt",
        "seccomp=unconfined",
        "busybox",
        "grep",
        "Seccomp:",
        "/proc/self/status",
    ]);
    assert!(unconfined.ends_with('0'), "{unconfined}");
}

#[test]
fn tty_and_signal_proxy() {
    let env = Env::new("tty");
    if berth_testkit::have("script") {
        let cmd = format!(
            "{} --root {} run --rm -t busybox sh -c 'tty; echo $TERM'",
            berth_bin(),
            env.path().display()
        );
        let out = std::process::Command::new("script")
            .args(["-qc", &cmd, "/dev/null"])
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        let text = stdout(&out);
        assert!(
            text.contains("/dev/pts/") && text.contains("xterm"),
            "run -t got no terminal: {text}"
        );
    } else {
        eprintln!("note: script(1) missing, skipping run -t");
    }
    // SIGTERM to the foreground CLI reaches the container (--sig-proxy defaults to true).
    let mut child = env
        .cmd(&[
            "run",
            "--rm",
            "busybox",
            "sh",
            "-c",
            "trap 'echo got TERM; exit 42' TERM; echo ready; while true; do sleep 0.05; done",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout_pipe = child.stdout.take().unwrap();
    let mut first = [0u8; 6];
    std::io::Read::read_exact(&mut stdout_pipe, &mut first).unwrap();
    assert_eq!(&first, b"ready\n");
    // SAFETY: signalling the berth process this test spawned.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout_pipe, &mut rest).unwrap();
    assert_eq!(status.code(), Some(42), "output: {rest}");
    assert!(rest.contains("got TERM"));
}

#[test]
fn init_runs_as_pid_1_and_reaps() {
    // Berth's own static docker-init serves when the host has no tini.
    let env = Env::new("init");
    let out = env.ok(&[
        "run",
        "--rm",
        "--init",
        "busybox",
        "sh",
        "-c",
        "cat /proc/1/cmdline | tr '\\0' ' '; echo",
    ]);
    assert!(out.starts_with("/sbin/docker-init -- sh"), "{out}");
    assert_eq!(
        env.berth(&["run", "--rm", "--init", "busybox", "sh", "-c", "exit 5"])
            .status
            .code(),
        Some(5)
    );
}

#[test]
fn rm_containers_get_a_volatile_layer_and_kept_ones_do_not() {
    let env = Env::new("rmlayer");
    let root_mount = ["sh", "-c", "grep ' / / ' /proc/self/mountinfo"];
    let mut args = vec!["run", "--rm", "busybox"];
    args.extend(root_mount);
    let out = env.ok(&args);
    // Newer kernels show the option as `fsync=volatile`, older ones as `volatile`.
    let volatile = |o: &str| o.contains(",volatile") || o.contains("fsync=volatile");
    assert!(out.contains("overlay") && volatile(&out), "{out}");
    let mut args = vec!["run", "--name", "kept", "busybox"];
    args.extend(root_mount);
    let out = env.ok(&args);
    assert!(out.contains("overlay") && !volatile(&out), "{out}");
}

#[test]
fn privileged_sees_the_host_devices() {
    let env = Env::new("privdev");
    // /dev/kmsg exists on every Linux host and is not among a container's default devices.
    let probe = [
        "sh",
        "-c",
        "test -c /dev/kmsg && echo present || echo absent",
    ];
    let mut args = vec!["run", "--rm", "--privileged", "busybox"];
    args.extend(probe);
    assert_eq!(env.ok(&args).trim(), "present");
    let mut args = vec!["run", "--rm", "busybox"];
    args.extend(probe);
    assert_eq!(env.ok(&args).trim(), "absent");
}
