//! Berth and a private dockerd side by side on the same busybox image: `ps`, `images`,
//! `inspect` and `logs` give the same columns, the same JSON field names and the same exit
//! codes, and a health check reads the same in both. Skips (with a note) without dockerd.
mod container_common;
use berth_testkit::dockerd::Dockerd;
use container_common::*;
use std::collections::BTreeSet;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn out(cmd: &mut Command) -> Output {
    cmd.stdin(std::process::Stdio::null())
        .output()
        .expect("running")
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn keys(json: &serde_json::Value) -> BTreeSet<String> {
    json.as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

/// The two sides of one comparison.
struct Sides<'a> {
    env: &'a Env,
    docker: &'a Dockerd,
}

impl Sides<'_> {
    fn both(&self, args: &[&str]) -> (Output, Output) {
        (self.env.berth(args), out(self.docker.docker().args(args)))
    }

    fn both_ok(&self, args: &[&str]) -> (String, String) {
        let (b, d) = self.both(args);
        assert!(b.status.success(), "berth {args:?}: {}", stderr(&b));
        assert!(d.status.success(), "docker {args:?}: {}", stderr(&d));
        (text(&b), text(&d))
    }

    /// Polls `inspect -f FORMAT` on both until each prints `want` (30 s at most).
    fn wait_both(&self, name: &str, format: &str, want: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (b, d) = self.both_ok(&["inspect", "-f", format, name]);
            if b.trim() == want && d.trim() == want {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "waited 30s for {format} of {name} to be {want:?}: berth {b:?}, docker {d:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[test]
fn ps_images_inspect_and_logs_match_docker() {
    let env = Env::new("side-by-side");
    let Some(docker) = dockerd_with_busybox(&env) else {
        return;
    };
    let sides = Sides {
        env: &env,
        docker: &docker,
    };

    // A finished container with output on both streams, and a healthy running one.
    let (b, d) = sides.both(&[
        "run",
        "--name",
        "done",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    assert_eq!((b.status.code(), d.status.code()), (Some(3), Some(3)));
    sides.both_ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "--network",
        "none",
        "--health-cmd",
        "true",
        "--health-interval",
        "100ms",
        "--label",
        "tier=front",
        "busybox",
        "sleep",
        "300",
    ]);
    sides.wait_both("web", "{{.State.Health.Status}}", "healthy");

    // ps: the table's columns and the JSON fields.
    let (b, d) = sides.both_ok(&["ps", "-a"]);
    let header = |t: &str| {
        t.lines()
            .next()
            .unwrap_or_default()
            .split("  ")
            .filter(|w| !w.trim().is_empty())
            .map(|w| w.trim().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(header(&b), header(&d), "ps header\n{b}\n{d}");
    let status_of = |t: &str, name: &str| {
        t.lines()
            .find(|l| l.trim_end().ends_with(name))
            .map(|l| l.contains("(healthy)"))
    };
    assert_eq!(status_of(&b, "web"), Some(true), "{b}");
    assert_eq!(status_of(&d, "web"), Some(true), "{d}");
    let (b, d) = sides.both_ok(&["ps", "-a", "--format", "{{json .}}"]);
    let first = |t: &str| {
        serde_json::from_str::<serde_json::Value>(t.lines().next().unwrap_or("{}"))
            .expect("ps JSON")
    };
    let (bk, dk) = (keys(&first(&b)), keys(&first(&d)));
    let missing: Vec<_> = dk.difference(&bk).collect();
    assert!(
        missing.is_empty(),
        "ps JSON fields Berth lacks: {missing:?}\nberth: {b}\ndocker: {d}"
    );
    let (b, d) = sides.both_ok(&["ps", "-q", "-f", "health=healthy"]);
    assert_eq!((b.lines().count(), d.lines().count()), (1, 1));

    // images: columns.
    let (b, d) = sides.both_ok(&["images"]);
    assert_eq!(header(&b), header(&d), "images header\n{b}\n{d}");

    // inspect: the same fields at the top, in State and in State.Health.
    let (b, d) = sides.both_ok(&["inspect", "web"]);
    let (b, d): (serde_json::Value, serde_json::Value) = (
        serde_json::from_str(&b).expect("berth JSON"),
        serde_json::from_str(&d).expect("docker JSON"),
    );
    let (b, d) = (&b[0], &d[0]);
    for (what, bv, dv) in [
        ("top level", b, d),
        ("State", &b["State"], &d["State"]),
        ("State.Health", &b["State"]["Health"], &d["State"]["Health"]),
        (
            "State.Health.Log[0]",
            &b["State"]["Health"]["Log"][0],
            &d["State"]["Health"]["Log"][0],
        ),
        (
            "Config.Healthcheck",
            &b["Config"]["Healthcheck"],
            &d["Config"]["Healthcheck"],
        ),
        (
            "HostConfig.LogConfig",
            &b["HostConfig"]["LogConfig"],
            &d["HostConfig"]["LogConfig"],
        ),
    ] {
        let missing: Vec<_> = keys(dv).difference(&keys(bv)).cloned().collect();
        assert!(
            missing.is_empty(),
            "{what}: fields Berth lacks: {missing:?}"
        );
    }

    // logs: the streams, --tail, and the exit code for a container that does not exist.
    let (b, d) = sides.both(&["logs", "done"]);
    assert_eq!(
        (text(&b), stderr(&b)),
        ("out\n".to_string(), "err\n".to_string())
    );
    assert_eq!(
        (text(&d), stderr(&d)),
        ("out\n".to_string(), "err\n".to_string())
    );
    // The two streams are written through separate pipes: which line is last is up to the
    // scheduler, on both sides, so --tail 1 is checked for one line from the two.
    let (b, d) = sides.both(&["logs", "--tail", "1", "done"]);
    for o in [&b, &d] {
        let one = text(o) + &stderr(o);
        assert!(one == "out\n" || one == "err\n", "{one:?}");
    }
    let (b, d) = sides.both(&["logs", "nosuch"]);
    assert_eq!(b.status.code(), d.status.code());
    assert!(
        stderr(&b).contains("No such container: nosuch"),
        "{}",
        stderr(&b)
    );

    // The none driver: logs refuses the same way.
    sides.both_ok(&[
        "create",
        "--name",
        "quiet",
        "--network",
        "none",
        "--log-driver",
        "none",
        "busybox",
        "true",
    ]);
    let (b, d) = sides.both(&["logs", "quiet"]);
    assert_eq!(b.status.code(), d.status.code());
    assert_eq!(stderr(&b), stderr(&d));

    for name in ["web", "done", "quiet"] {
        let _ = sides.both(&["rm", "-f", name]);
    }
}
