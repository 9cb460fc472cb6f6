//! Times the library's per-container network work (sandbox, attach, release) in a throwaway
//! network namespace: `cargo run --release -p berth-net --example attach_profile [ROUNDS]`.
use std::time::{Duration, Instant};

use berth_net::{AttachRequest, NetStore};

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|r| r.parse().ok())
        .unwrap_or(200);
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare -n");
    let root = tempfile::tempdir().expect("tempdir");
    let store = NetStore::new(root.path());
    store.ensure_default().expect("default network");
    let (mut sandbox, mut attach, mut release, mut none) = (
        Duration::ZERO,
        Duration::ZERO,
        Duration::ZERO,
        Duration::ZERO,
    );
    for i in 0..rounds {
        let id = format!("{i:064x}");
        let t0 = Instant::now();
        let ns = store.create_sandbox(&id).expect("sandbox");
        let t1 = Instant::now();
        store
            .attach(
                &ns,
                &AttachRequest {
                    container_id: id.clone(),
                    container_name: format!("c{i}"),
                    network: "bridge".into(),
                    ..Default::default()
                },
            )
            .expect("attach");
        let t2 = Instant::now();
        store.release_container(&id).expect("release");
        let t3 = Instant::now();
        // The `--network none` equivalent: a sandbox and its release only.
        let ns = store.create_sandbox(&id).expect("sandbox");
        drop(ns);
        store.release_container(&id).expect("release");
        let t4 = Instant::now();
        sandbox += t1 - t0;
        attach += t2 - t1;
        release += t3 - t2;
        none += t4 - t3;
    }
    let per = |d: Duration| d.as_secs_f64() * 1e3 / rounds as f64;
    println!(
        "per container: sandbox {:.3} ms, attach {:.3} ms, release {:.3} ms; none (sandbox+release) {:.3} ms",
        per(sandbox),
        per(attach),
        per(release),
        per(none)
    );
}
