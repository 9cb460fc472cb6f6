//! Crash safety: what `kill -9` of a command or of a container's monitor leaves is rolled back
//! or forward by the next command (`berth_engine::recovery`), `rm -f` removes every leftover,
//! and the store stays consistent (`berth_engine::recovery::check`).
mod container_common;
use berth_testkit::wait_until;
use container_common::*;
use std::path::Path;
use std::time::Duration;

fn record(env: &Env, id: &str) -> serde_json::Value {
    let path = env.path().join(format!("containers/{id}/config.v2.json"));
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn gone(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| s.contains(") Z") || s.contains(") X"))
        .unwrap_or(true)
}

/// SIGKILLs a process this test started (through berth) and waits until it is gone.
fn kill9(pid: i32) {
    assert!(pid > 0);
    // SAFETY: plain kill(2) of a PID this test's own berth commands created.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    assert!(
        wait_until(Duration::from_secs(20), || gone(pid)),
        "pid {pid} did not die"
    );
}

/// The monitor and init PIDs of a running container.
fn pids(env: &Env, id: &str) -> (i32, i32) {
    let r = record(env, id);
    (
        r["BerthMonitorPid"].as_i64().unwrap() as i32,
        r["State"]["Pid"].as_i64().unwrap() as i32,
    )
}

fn settled_check(env: &Env) -> Vec<String> {
    let engine = berth_engine::Engine::open(env.path());
    berth_engine::recovery::check(&engine, true).unwrap()
}

/// The parent of `pid` (`/proc/<pid>/stat` field 4): a monitor's keeper.
fn parent_of(pid: i32) -> i32 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    after.split(' ').nth(1).unwrap().parse().unwrap()
}

/// The monitor, its keeper and the init of a running container.
fn supervision(env: &Env, id: &str) -> (i32, i32, i32) {
    let (monitor, init) = pids(env, id);
    let keeper = parent_of(monitor);
    assert!(
        keeper > 1 && keeper != monitor,
        "keeper of {monitor}: {keeper}"
    );
    (monitor, keeper, init)
}

/// Waits (bounded) until `check` holds for the container's `inspect` output of `format`.
fn inspect_until(env: &Env, name: &str, format: &str, check: impl Fn(&str) -> bool) -> String {
    let mut last = String::new();
    let ok = wait_until(Duration::from_secs(30), || {
        last = env.inspect(name, format);
        check(&last)
    });
    assert!(ok, "{name}: {format} stayed {last:?}");
    last
}

/// A container that exits 7 once `/go` appears in it (see `go`), and 3 on SIGTERM.
const EXITS_ON_GO: &str =
    "trap 'exit 3' TERM; while [ ! -e /go ]; do sleep 0.02; done; rm -f /go; exit 7";

/// Makes `/go` appear in the container, from the host (an `exec` could still be in the
/// container's PID namespace when its init exits, and be killed with it).
fn go(env: &Env, name: &str) {
    let merged = env.inspect(name, "{{.GraphDriver.Data.MergedDir}}");
    std::fs::write(Path::new(&merged).join("go"), "").unwrap();
}

#[test]
fn a_killed_monitor_leaves_the_real_exit_code_to_its_keeper() {
    let env = Env::new("crash-keeper");
    let id = env.ok(&[
        "run",
        "-d",
        "--name",
        "seven",
        "busybox",
        "sh",
        "-c",
        EXITS_ON_GO,
    ]);
    let (monitor, keeper, init) = supervision(&env, &id);
    kill9(monitor);
    // The keeper took over: the container still runs, with the keeper as its witness.
    inspect_until(&env, "seven", "{{.State.Status}}", |s| s == "running");
    assert!(wait_until(Duration::from_secs(10), || pids(&env, &id).0 == keeper));
    assert!(!gone(init));
    go(&env, "seven");
    // `wait` (no monitor to ask) waits for the keeper's record.
    assert_eq!(env.ok(&["wait", "seven"]), "7");
    assert_eq!(
        env.inspect(
            "seven",
            "{{.State.Status}} {{.State.ExitCode}} [{{.State.Error}}]"
        ),
        "exited 7 []"
    );
    let ps = env.ok(&[
        "ps",
        "-a",
        "--filter",
        "name=seven",
        "--format",
        "{{.Status}}",
    ]);
    assert!(ps.starts_with("Exited (7)"), "{ps}");
    // Its job done, the keeper leaves, and so does whatever the container held.
    assert!(wait_until(Duration::from_secs(10), || gone(keeper)));
    assert!(env.mounts_below().is_empty(), "{:?}", env.mounts_below());
    assert_eq!(settled_check(&env), Vec::<String>::new());

    // The same container started again has a keeper again; a stop after its monitor was
    // killed records the real end (its TERM trap exits 3), not a made-up one.
    env.ok(&["start", "seven"]);
    let (monitor, _, _) = supervision(&env, &id);
    kill9(monitor);
    env.ok(&["stop", "-t", "10", "seven"]);
    assert_eq!(
        env.inspect("seven", "{{.State.Status}} {{.State.ExitCode}}"),
        "exited 3"
    );
    env.ok(&["rm", "seven"]);
    assert!(env.mounts_below().is_empty(), "{:?}", env.mounts_below());
    assert_eq!(settled_check(&env), Vec::<String>::new());
}

#[test]
fn a_killed_monitor_and_keeper_leave_dead_with_the_reason() {
    let env = Env::new("crash-monitor");
    // 1. Monitor and keeper killed, then the init: nobody can know the status → Dead, with
    //    the reason.
    let lost = env.ok(&["run", "-d", "--name", "lost", "busybox", "sleep", "1000"]);
    let (monitor, keeper, init) = supervision(&env, &lost);
    kill9(monitor);
    kill9(keeper);
    assert_eq!(env.inspect("lost", "{{.State.Status}}"), "running");
    kill9(init);
    assert_eq!(env.inspect("lost", "{{.State.Status}}"), "dead");
    let error = env.inspect("lost", "{{.State.Error}}");
    assert!(
        error.contains("monitor") && error.contains("lost"),
        "{error}"
    );
    assert!(env.mounts_below().is_empty(), "{:?}", env.mounts_below());

    // 2. Killed after one of them reaped the init but before it recorded the exit: the exit
    //    file it wrote first is the truth.
    let late = env.ok(&["run", "-d", "--name", "late", "busybox", "sleep", "1000"]);
    let (monitor, keeper, init) = supervision(&env, &late);
    kill9(keeper);
    kill9(monitor);
    std::fs::write(
        env.path()
            .join(format!("containers/{late}"))
            .join(berth_engine::recovery::EXIT_FILE),
        "7",
    )
    .unwrap();
    kill9(init);
    assert_eq!(
        env.inspect("late", "{{.State.Status}} {{.State.ExitCode}}"),
        "exited 7"
    );
    assert_eq!(env.ok(&["wait", "late"]), "7");

    // 3. --restart always: the next command brings it back with a new monitor.
    let always = env.ok(&[
        "run",
        "-d",
        "--name",
        "always",
        "--restart",
        "always",
        "busybox",
        "sleep",
        "1000",
    ]);
    let (monitor, keeper, init) = supervision(&env, &always);
    kill9(monitor);
    kill9(keeper);
    kill9(init);
    assert_eq!(env.inspect("always", "{{.State.Status}}"), "running");
    let (monitor2, _, init2) = supervision(&env, &always);
    assert!(monitor2 != monitor && init2 != init && !gone(init2));

    for name in ["lost", "late", "always"] {
        env.ok(&["rm", "-f", name]);
    }
    assert!(env.record_ids().is_empty());
    assert!(env.mounts_below().is_empty());
    assert_eq!(settled_check(&env), Vec::<String>::new());
}

#[test]
fn restart_always_keeps_restarting_after_a_killed_monitor() {
    let env = Env::new("crash-restart");
    let id = env.ok(&[
        "run",
        "-d",
        "--name",
        "again",
        "--restart",
        "always",
        "busybox",
        "sh",
        "-c",
        EXITS_ON_GO,
    ]);
    let (monitor, _, init) = supervision(&env, &id);
    kill9(monitor);
    assert!(!gone(init));
    // Its end (no command runs meanwhile) is seen by the keeper, which starts it again under
    // a new keeper and monitor.
    go(&env, "again");
    let restarted = |env: &Env, before: i64| {
        inspect_until(env, "again", "{{.RestartCount}} {{.State.Status}}", |s| {
            let mut it = s.split(' ');
            let count: i64 = it.next().and_then(|c| c.parse().ok()).unwrap_or(0);
            count > before && it.next() == Some("running")
        })
    };
    restarted(&env, 0);
    let (monitor2, _, init2) = supervision(&env, &id);
    assert!(monitor2 != monitor && init2 != init);
    assert_eq!(env.inspect("again", "{{.State.ExitCode}}"), "0");
    // The new monitor applies the policy itself, and survives being killed in turn.
    go(&env, "again");
    restarted(&env, 1);
    let (monitor3, _, _) = supervision(&env, &id);
    kill9(monitor3);
    go(&env, "again");
    restarted(&env, 2);
    env.ok(&["rm", "-f", "again"]);
    assert!(env.record_ids().is_empty());
    assert!(env.mounts_below().is_empty(), "{:?}", env.mounts_below());
    assert_eq!(settled_check(&env), Vec::<String>::new());
}

#[test]
fn leftovers_of_a_killed_create_are_rolled_back_and_rm_f_takes_them() {
    let env = Env::new("crash-create");
    // A create killed after it reserved the name and made the layer but before it saved the
    // record: simulated by removing the record and leaving an intent of a dead process.
    let dead_owner = {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id() as i32;
        let st = berth_image::intent::start_time(pid).unwrap_or(1);
        child.wait().unwrap();
        format!("{pid} {st}\n")
    };
    // Run once (its monitor done: the foreground run returns after the monitor's cleanup), so
    // the layer and the runtime's leftovers all exist.
    env.ok(&["run", "--name", "half", "busybox", "true"]);
    let half = env.inspect("half", "{{.Id}}");
    std::fs::remove_file(env.path().join(format!("containers/{half}/config.v2.json"))).unwrap();
    std::fs::write(
        env.path().join(format!("intents/create-{half}")),
        &dead_owner,
    )
    .unwrap();
    // Any next command rolls it back: the name is free again, the layer gone.
    env.ok(&["ps", "-a"]);
    assert!(!env.path().join(format!("containers/{half}")).exists());
    assert!(!env
        .path()
        .join(format!("image/overlay2/layerdb/mounts/{half}"))
        .exists());
    env.ok(&["create", "--name", "half", "busybox", "true"]);
    env.ok(&["rm", "half"]);

    // Without any intent (an older leftover): `rm -f NAME` still takes it, and the name is
    // free afterwards.
    let old = env.ok(&["create", "--name", "old", "busybox", "true"]);
    std::fs::remove_file(env.path().join(format!("containers/{old}/config.v2.json"))).unwrap();
    let out = env.berth(&["rm", "old"]);
    assert!(!out.status.success(), "rm without -f of a leftover");
    env.ok(&["rm", "-f", "old"]);
    env.ok(&["run", "--rm", "--name", "old", "busybox", "true"]);

    // A removal killed half-way (layer gone, record left): rm finishes it.
    let torn = env.ok(&["create", "--name", "torn", "busybox", "true"]);
    let store = berth_image::Store::open(env.path()).unwrap();
    store.remove_container_layer(&torn).unwrap();
    env.ok(&["rm", "torn"]);
    // And a killed `rm` is finished by the next command.
    let cut = env.ok(&["create", "--name", "cut", "busybox", "true"]);
    std::fs::write(
        env.path().join(format!("intents/remove-{cut}")),
        &dead_owner,
    )
    .unwrap();
    env.ok(&["ps"]);
    assert!(env.record_ids().is_empty());
    // A killed build step's layer (mounted, nothing names it) goes too.
    let step = "f".repeat(64);
    store
        .create_container_layer(&step, Some("busybox"))
        .unwrap();
    store.mount_container_layer(&step).unwrap();
    std::fs::write(env.path().join(format!("intents/step-{step}")), &dead_owner).unwrap();
    env.ok(&["images"]);
    assert!(env.mounts_below().is_empty(), "{:?}", env.mounts_below());
    assert_eq!(settled_check(&env), Vec::<String>::new());
}

#[test]
fn concurrent_start_and_rm_f_of_one_container() {
    let env = Env::new("crash-race");
    for round in 0..3 {
        let name = format!("race{round}");
        env.ok(&["create", "--name", &name, "busybox", "sleep", "1000"]);
        let mut children = Vec::new();
        for i in 0..6 {
            let verb: &[&str] = if i % 2 == 0 {
                &["start"]
            } else {
                &["rm", "-f"]
            };
            let mut args = verb.to_vec();
            args.push(&name);
            children.push(
                env.cmd(&args)
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap(),
            );
        }
        for c in children {
            let out = wait_output(c, Duration::from_secs(60));
            let err = stderr(&out);
            assert!(
                out.status.success()
                    || err.contains("No such container")
                    || err.contains("no such container")
                    || err.contains("while it was being started")
                    || err.contains("is not running"),
                "{:?}: {err}",
                out.status
            );
        }
        env.berth(&["rm", "-f", &name]);
        assert!(env.record_ids().is_empty(), "round {round}");
    }
    assert!(env.mounts_below().is_empty(), "{:?}", env.mounts_below());
    assert_eq!(settled_check(&env), Vec::<String>::new());
}

/// Waits for a child with a deadline (killing it, by PID, when it passes).
fn wait_output(mut child: std::process::Child, limit: Duration) -> std::process::Output {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            return child.wait_with_output().unwrap();
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("berth did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A tiny xorshift generator: reproducible kill points from a printed seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[test]
fn kill_9_at_random_points_leaves_a_store_that_recovers_and_checks_clean() {
    let env = Env::new("crash-kill9");
    let seed = std::env::var("BERTH_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64 | 1)
                .unwrap_or(0x9e37_79b9)
        });
    eprintln!("BERTH_CRASH_SEED={seed}");
    let mut rng = Rng(seed);
    let save = env.path().join("saved.tar");
    env.ok(&["save", "-o", save.to_str().unwrap(), "busybox"]);
    let bb_tar = env.path().join("bb.tar");
    berth_testkit::busybox_rootfs_tar(&bb_tar).unwrap();
    let ctx = env.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("f"), vec![b'x'; 200_000]).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\nCOPY f /f\nRUN cp /f /g && echo built > /h\nENV A=1\nLABEL x=y\n",
    )
    .unwrap();
    let (save, bb_tar, ctx) = (
        save.to_str().unwrap().to_string(),
        bb_tar.to_str().unwrap().to_string(),
        ctx.to_str().unwrap().to_string(),
    );
    for round in 0..8 {
        let n = format!("{round}");
        // What the previous round made (round 0 names nothing: its commands must all work).
        let prev = if round == 0 {
            "none".to_string()
        } else {
            format!("{}", round - 1)
        };
        let commands: Vec<Vec<String>> = vec![
            vec![
                "run",
                "-d",
                "--name",
                &format!("d{n}"),
                "busybox",
                "sleep",
                "1000",
            ],
            vec![
                "run",
                "--name",
                &format!("f{n}"),
                "busybox",
                "sh",
                "-c",
                "echo hi > /x",
            ],
            vec!["create", "--name", &format!("c{n}"), "busybox", "true"],
            vec!["rm", "-f", &format!("d{prev}")],
            vec!["rm", "-f", &format!("c{prev}")],
            vec!["load", "-q", "-i", &save],
            vec!["import", &bb_tar, &format!("imp:{n}")],
            vec!["build", "-q", "-t", &format!("built:{n}"), &ctx],
            vec!["tag", "busybox", &format!("tagged:{n}")],
            vec!["rmi", &format!("tagged:{prev}")],
        ]
        .into_iter()
        .map(|v| v.into_iter().map(str::to_string).collect())
        .collect();
        let mut children: Vec<(String, std::process::Child)> = commands
            .iter()
            .map(|args| {
                let refs: Vec<&str> = args.iter().map(String::as_str).collect();
                let child = env
                    .cmd(&refs)
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .spawn()
                    .unwrap();
                (args.join(" "), child)
            })
            .collect();
        // Random kill points: each command gets its own moment, some never (they finish).
        let mut moments: Vec<(u64, usize)> =
            (0..children.len()).map(|i| (rng.below(400), i)).collect();
        moments.sort();
        let start = std::time::Instant::now();
        for (ms, i) in moments {
            // Round 0 kills nothing: every command line must work when left alone.
            if round == 0 || rng.below(4) == 0 {
                continue;
            }
            let at = Duration::from_millis(ms);
            if let Some(left) = at.checked_sub(start.elapsed()) {
                std::thread::sleep(left);
            }
            // Child::kill is SIGKILL of this child's PID only.
            let _ = children[i].1.kill();
        }
        for (what, c) in children {
            let out = wait_output(c, Duration::from_secs(120));
            let racy = what.starts_with("rm ") || what.starts_with("rmi ");
            if round == 0 && !racy {
                assert!(out.status.success(), "{what}: {:?}", out.status);
            }
        }
        // Sometimes a container's monitor dies too: the one its intent names, checked by PID
        // and start time, so a recycled PID is never signalled.
        if rng.below(2) == 0 {
            let dname = format!("d{n}");
            if let Ok(id) = berth_engine::Engine::open(env.path()).store.resolve(&dname) {
                let owner =
                    berth_image::intent::owner(env.path(), berth_engine::recovery::MONITOR, &id);
                if let Some(o) = owner.filter(|o| o.alive()) {
                    kill9(o.pid);
                }
            }
        }
    }
    // The next command recovers; then everything must check clean and be removable.
    env.ok(&["ps", "-a"]);
    let problems = settled_check(&env);
    assert_eq!(problems, Vec::<String>::new(), "seed {seed}");
    for id in env.record_ids() {
        env.ok(&["rm", "-f", &id]);
    }
    env.ok(&["system", "prune", "-a", "-f"]);
    assert!(env.record_ids().is_empty());
    assert!(env.mounts_below().is_empty(), "{:?}", env.mounts_below());
    let store = berth_image::Store::open(env.path()).unwrap();
    assert!(store.image_ids().unwrap().is_empty(), "seed {seed}");
    let overlay: Vec<String> = std::fs::read_dir(env.path().join("overlay2"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "l")
        .collect();
    assert!(overlay.is_empty(), "seed {seed}: {overlay:?}");
    assert_eq!(settled_check(&env), Vec::<String>::new(), "seed {seed}");
}

#[test]
fn a_root_that_does_not_exist_is_not_created_by_recovery() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("nothing-here");
    let out = std::process::Command::new(berth_bin())
        .arg("--root")
        .arg(&root)
        .arg("version")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(!Path::new(&root).exists());
}
