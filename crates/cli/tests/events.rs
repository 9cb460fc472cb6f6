//! `berth events`: engine actions appended to the root's event log by whoever did them, read
//! live (following the log) and historically, filtered, in Docker's JSON shape.
mod container_common;
use container_common::*;
use std::io::BufRead;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// The `events` follower, killed however the test ends.
struct Follower(std::process::Child);

impl Drop for Follower {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn events_are_followed_live_and_read_back() {
    let env = Env::new("events");
    let mut follower = Follower(
        env.cmd(&["events", "--format", "{{json .}}", "-f", "type=container"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("events"),
    );
    let stdout = follower.0.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(|l| l.ok())
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // The follower starts from "now": give it its inotify watch before acting. Polled: the
    // first event it must see is the container's create.
    std::thread::sleep(Duration::from_millis(300));
    let out = env.berth(&[
        "run", "--name", "ev", "-l", "tier=web", "busybox", "sh", "-c", "exit 3",
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    env.ok(&["rm", "ev"]);
    let mut actions = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline && !actions.iter().any(|a| a == "destroy") {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            let e: serde_json::Value = serde_json::from_str(&line).expect("json event");
            assert_eq!(e["Type"], "container");
            assert_eq!(e["Actor"]["Attributes"]["name"], "ev");
            assert_eq!(e["Actor"]["Attributes"]["tier"], "web");
            for key in ["status", "id", "from", "scope", "time", "timeNano"] {
                assert!(e.get(key).is_some(), "{key} missing in {e}");
            }
            if e["Action"] == "die" {
                assert_eq!(e["Actor"]["Attributes"]["exitCode"], "3");
            }
            actions.push(e["Action"].as_str().unwrap().to_string());
        }
    }
    drop(follower);
    assert_eq!(actions, ["create", "start", "die", "destroy"]);

    // History with bounds and filters.
    env.ok(&["volume", "create", "evvol"]);
    env.ok(&["tag", "busybox", "other:tag"]);
    let past = env.ok(&[
        "events",
        "--since",
        "5m",
        "--until",
        "0s",
        "-f",
        "event=die",
        "--format",
        "{{.Action}} {{.Actor.Attributes.exitCode}}",
    ]);
    assert_eq!(past, "die 3");
    let vols = env.ok(&[
        "events",
        "--since",
        "5m",
        "--until",
        "0s",
        "-f",
        "type=volume",
    ]);
    assert!(
        vols.contains(" volume create evvol (driver=local)"),
        "{vols}"
    );
    let tags = env.ok(&[
        "events",
        "--since",
        "5m",
        "--until",
        "0s",
        "-f",
        "type=image",
        "-f",
        "event=tag",
        "--format",
        "{{.Actor.Attributes.name}}",
    ]);
    assert_eq!(tags, "other:tag");
    let out = env.berth(&["events", "--until", "0s", "-f", "colour=red"]);
    assert_eq!(out.status.code(), Some(1));
}
