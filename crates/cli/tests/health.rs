//! Health checks end to end: `--health-*` flags run by the container's monitor, seen in
//! `inspect` (State.Health), `ps` (STATUS and `--filter health=`) and `events`.
mod container_common;
use container_common::*;
use std::time::{Duration, Instant};

/// Polls `inspect -f FORMAT` until it prints `want` (fails after 30 s, naming what it saw).
fn wait_for(env: &Env, container: &str, format: &str, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = env.inspect(container, format);
        if got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "waited 30s for {format} of {container} to be {want:?}; it is {got:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_health_check_goes_starting_unhealthy_healthy() {
    let env = Env::new("health");
    let t0 = chrono_now();
    // The first probe waits for /go, so "starting" is observable without a race.
    env.ok(&[
        "run",
        "-d",
        "--name",
        "hc",
        "--health-cmd",
        "while [ ! -f /go ]; do sleep 0.02; done; test -f /ok",
        "--health-interval",
        "100ms",
        "--health-retries",
        "1",
        "busybox",
        "sleep",
        "300",
    ]);
    assert_eq!(env.inspect("hc", "{{.State.Health.Status}}"), "starting");
    let ps = env.ok(&["ps", "--format", "{{.Status}}"]);
    assert!(ps.ends_with("(health: starting)"), "{ps}");
    assert_eq!(env.ok(&["ps", "-q", "-f", "health=starting"]).len(), 12);
    env.ok(&["exec", "hc", "touch", "/go"]);
    wait_for(&env, "hc", "{{.State.Health.Status}}", "unhealthy");
    // At least the probe that made it unhealthy; under load a further probe (every 100 ms)
    // may have failed before this inspect runs.
    let streak: u32 = env
        .inspect("hc", "{{.State.Health.FailingStreak}}")
        .parse()
        .expect("a number");
    assert!(streak >= 1, "{streak}");
    let ps = env.ok(&["ps", "--format", "{{.Status}}"]);
    assert!(ps.ends_with("(unhealthy)"), "{ps}");
    assert_eq!(env.ok(&["ps", "-q", "-f", "health=healthy"]), "");
    env.ok(&["exec", "hc", "touch", "/ok"]);
    wait_for(&env, "hc", "{{.State.Health.Status}}", "healthy");
    let ps = env.ok(&["ps", "--format", "{{.Status}}"]);
    assert!(ps.ends_with("(healthy)"), "{ps}");
    assert_eq!(env.ok(&["ps", "-q", "-f", "health=healthy"]).len(), 12);
    let log = env.inspect("hc", "{{json .State.Health.Log}}");
    let log: serde_json::Value = serde_json::from_str(&log).expect("log JSON");
    let entries = log.as_array().expect("log array");
    assert!(!entries.is_empty() && entries.len() <= 5, "{log}");
    let last = entries.last().expect("an entry");
    assert_eq!(last["ExitCode"], 0);
    for key in ["Start", "End", "Output"] {
        assert!(last.get(key).is_some(), "{key} in {last}");
    }
    // The event follows the record's change: poll for it (bounded).
    let deadline = Instant::now() + Duration::from_secs(30);
    let until = loop {
        let until = chrono_now();
        let actions = env.ok(&[
            "events",
            "--since",
            &t0,
            "--until",
            &until,
            "--filter",
            "event=health_status",
            "--format",
            "{{.Action}}",
        ]);
        let actions: Vec<&str> = actions.lines().collect();
        if actions == ["health_status: unhealthy", "health_status: healthy"] {
            break until;
        }
        assert!(Instant::now() < deadline, "health events: {actions:?}");
        std::thread::sleep(Duration::from_millis(20));
    };
    let execs = env.ok(&[
        "events",
        "--since",
        &t0,
        "--until",
        &until,
        "--filter",
        "event=exec_die",
        "--format",
        "{{.Action}} {{index .Actor.Attributes \"exitCode\"}}",
    ]);
    assert!(execs.lines().any(|l| l == "exec_die 1"), "{execs}");
    assert_eq!(
        env.berth(&["ps", "-f", "health=sick"]).status.code(),
        Some(1)
    );
    // Docker: a stopped container reads unhealthy, its log kept.
    env.ok(&["kill", "hc"]);
    wait_for(&env, "hc", "{{.State.Health.Status}}", "unhealthy");
    assert_eq!(env.inspect("hc", "{{.State.Status}}"), "exited");
    assert!(env
        .inspect("hc", "{{json .State.Health.Log}}")
        .contains("\"ExitCode\":0"));
    env.ok(&["rm", "-f", "hc"]);
}

#[test]
fn a_probe_that_outlives_its_timeout_fails_and_no_healthcheck_disables() {
    let env = Env::new("health-timeout");
    env.ok(&[
        "run",
        "-d",
        "--name",
        "slow",
        "--health-cmd",
        "sleep 30",
        "--health-interval",
        "50ms",
        "--health-timeout",
        "200ms",
        "--health-retries",
        "1",
        "busybox",
        "sleep",
        "300",
    ]);
    wait_for(&env, "slow", "{{.State.Health.Status}}", "unhealthy");
    let log = env.inspect("slow", "{{json .State.Health.Log}}");
    assert!(
        log.contains("Health check exceeded timeout (200ms)") && log.contains("\"ExitCode\":-1"),
        "{log}"
    );
    let out = env.berth(&[
        "run",
        "-d",
        "--no-healthcheck",
        "--health-cmd",
        "true",
        "busybox",
        "true",
    ]);
    assert_eq!(out.status.code(), Some(125), "{}", stderr(&out));
    assert!(stderr(&out).contains("--no-healthcheck conflicts with --health-* options"));
    env.ok(&[
        "run",
        "-d",
        "--name",
        "none",
        "--no-healthcheck",
        "busybox",
        "sleep",
        "300",
    ]);
    assert_eq!(env.inspect("none", "{{json .State.Health}}"), "null");
    assert_eq!(
        env.inspect("none", "{{json .Config.Healthcheck.Test}}"),
        "[\"NONE\"]"
    );
    env.ok(&["rm", "-f", "slow", "none"]);
}

#[test]
fn the_image_healthcheck_runs_and_flags_override_it() {
    let env = Env::new("health-image");
    let ctx = env.path().join("ctx");
    std::fs::create_dir_all(&ctx).expect("context");
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\nHEALTHCHECK --interval=100ms --retries=1 CMD [\"test\", \"-f\", \"/etc/passwd\"]\n",
    )
    .expect("Dockerfile");
    env.ok(&["build", "-q", "-t", "checked", ctx.to_str().expect("path")]);
    env.ok(&["run", "-d", "--name", "img", "checked", "sleep", "300"]);
    wait_for(&env, "img", "{{.State.Health.Status}}", "healthy");
    // A flag replaces only its own field: the image's test stays, the retries change.
    env.ok(&[
        "run",
        "-d",
        "--name",
        "flag",
        "--health-retries",
        "4",
        "checked",
        "sleep",
        "300",
    ]);
    let merged: serde_json::Value =
        serde_json::from_str(&env.inspect("flag", "{{json .Config.Healthcheck}}")).expect("JSON");
    assert_eq!(
        merged,
        serde_json::json!({"Test":["CMD","test","-f","/etc/passwd"],"Interval":100000000,"Retries":4})
    );
    env.ok(&["rm", "-f", "img", "flag"]);
}

fn chrono_now() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock");
    format!("{}.{:09}", now.as_secs(), now.subsec_nanos())
}
