//! The API service runs the store's recovery pass (`berth_engine::recovery`) as every CLI
//! command does: when it starts, and before the requests it serves, so what a killed command
//! left is rolled back (a half-made container) or forward (a half-done removal) without any
//! CLI command running.
mod api_common;
use api_common::Service;
use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

/// An intent owner that is certainly dead: a child that already exited and was reaped.
fn dead_owner() -> String {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id() as i32;
    let start = berth_image::intent::start_time(pid).unwrap_or(1);
    child.wait().unwrap();
    format!("{pid} {start}\n")
}

fn berth_ok(svc: &Service, args: &[&str]) -> String {
    let mut cmd = svc.berth();
    cmd.args(args);
    let out = api_common::output_within(cmd, Duration::from_secs(60));
    assert!(
        out.status.success(),
        "berth {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// What a `create` killed after it made the layer and took the name, but before it saved the
/// record, leaves: the record is removed and an intent of a dead process names the container.
fn cut_short_create(root: &Path, id: &str) {
    std::fs::remove_file(root.join(format!("containers/{id}/config.v2.json"))).unwrap();
    std::fs::write(root.join(format!("intents/create-{id}")), dead_owner()).unwrap();
}

/// One HTTP/1.1 request over the service's socket; returns the whole answer.
fn request(svc: &Service, method: &str, path: &str) -> String {
    let mut s = std::os::unix::net::UnixStream::connect(svc.socket()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: berth\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    answer
}

#[test]
fn the_service_rolls_back_and_forward_what_killed_commands_left() {
    let mut svc = Service::start();
    let root = svc.root();
    let tar = svc.dir.path().join("busybox.tar");
    berth_testkit::busybox_rootfs_tar(&tar).unwrap();
    berth_ok(&svc, &["import", tar.to_str().unwrap(), "busybox"]);

    // At start: a killed create (rolled back) and a killed rm (finished) from before.
    svc.kill();
    let half = berth_ok(&svc, &["create", "--name", "half", "busybox", "true"]);
    let cut = berth_ok(&svc, &["create", "--name", "cut", "busybox", "true"]);
    cut_short_create(&root, &half);
    std::fs::write(root.join(format!("intents/remove-{cut}")), dead_owner()).unwrap();
    svc.restart_after_kill();
    for id in [&half, &cut] {
        assert!(!root.join(format!("containers/{id}")).exists(), "{id}");
        assert!(!root
            .join(format!("image/overlay2/layerdb/mounts/{id}"))
            .exists());
    }
    assert!(std::fs::read_dir(root.join("intents"))
        .unwrap()
        .next()
        .is_none());

    // While it runs: a create killed now is rolled back before the next request is served,
    // with no CLI command in between, and its name is free again.
    let late = berth_ok(&svc, &["create", "--name", "late", "busybox", "true"]);
    cut_short_create(&root, &late);
    let listed = request(&svc, "GET", "/v1.47/containers/json?all=1");
    assert!(listed.starts_with("HTTP/1.1 200"), "{listed}");
    assert!(!listed.contains(&late), "{listed}");
    assert!(!root.join(format!("containers/{late}")).exists());
    assert!(!root.join(format!("intents/create-{late}")).exists());
    let made = request(&svc, "POST", "/v1.47/containers/create?name=late");
    // The name is free: the create fails only for want of a body, never for a conflict.
    assert!(!made.contains("Conflict"), "{made}");

    let engine = berth_engine::Engine::open(&root);
    assert_eq!(
        berth_engine::recovery::check(&engine, true).unwrap(),
        Vec::<String>::new()
    );
}
