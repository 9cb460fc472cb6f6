//! What `berth import` and `berth commit` leave when killed (SIGKILL, through the
//! `BERTH_FAULT_AT` crash points) between the steps of a layer commit: before the layerdb entry
//! is renamed into place there is no layer at all, only orphans that the store's orphan sweep
//! removes; after it, a complete layer. Either way no image refers to a missing layer, and the
//! same command run again works.
mod cli_common;
use berth_image::Store;
use cli_common::{berth, run_ok};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;

const POINTS: [&str; 3] = [
    "layer-commit:written",
    "layer-commit:synced",
    "layer-commit:registered",
];

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Every registered layer is complete: its metadata files, and a cache directory with its
/// contents, short link and `committed` marker. Returns the registered ChainIDs.
fn complete_layers(root: &Path) -> Vec<String> {
    let layerdb = root.join("image/overlay2/layerdb/sha256");
    let chains = entries(&layerdb);
    for chain in &chains {
        let meta = layerdb.join(chain);
        for f in ["diff", "cache-id", "size", "tar-split.json.gz"] {
            assert!(meta.join(f).is_file(), "layer {chain} lacks {f}");
        }
        let cache = std::fs::read_to_string(meta.join("cache-id")).unwrap();
        let dir = root.join("overlay2").join(cache.trim());
        assert!(dir.join("diff").is_dir(), "layer {chain} lacks its diff");
        assert!(dir.join("committed").is_file(), "layer {chain} uncommitted");
        let link = std::fs::read_to_string(dir.join("link")).unwrap();
        assert!(
            root.join("overlay2/l").join(link.trim()).join(".").is_dir(),
            "layer {chain}: short link does not lead to its diff"
        );
    }
    chains
}

/// Runs `cmd` with the crash point `point` armed; it must die by SIGKILL there.
fn crash_at(cmd: &mut std::process::Command, point: &str) {
    let out = cmd
        .env(berth_image::fault::FAULT_ENV, point)
        .output()
        .unwrap();
    assert_eq!(
        out.status.signal(),
        Some(9),
        "{cmd:?} was not killed at {point}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn images(root: &Path) -> String {
    run_ok(berth(root).args(["images", "-q", "--no-trunc"]))
}

/// Sweeps orphans the way `image prune` does (without its one-hour grace) and checks that only
/// registered layers' directories and links remain.
fn sweep_and_check(root: &Path) {
    let store = Store::open(root).unwrap();
    store.remove_orphans(std::time::Duration::ZERO).unwrap();
    let chains = complete_layers(root);
    let mut wanted: Vec<String> = chains
        .iter()
        .map(|c| {
            let meta = root.join("image/overlay2/layerdb/sha256").join(c);
            std::fs::read_to_string(meta.join("cache-id"))
                .unwrap()
                .trim()
                .to_string()
        })
        .collect();
    for m in entries(&root.join("image/overlay2/layerdb/mounts")) {
        let meta = root.join("image/overlay2/layerdb/mounts").join(m);
        let mount = std::fs::read_to_string(meta.join("mount-id")).unwrap();
        wanted.push(mount.trim().to_string());
        wanted.push(format!("{}-init", mount.trim()));
    }
    wanted.push("l".into());
    wanted.sort();
    assert_eq!(entries(&root.join("overlay2")), wanted, "orphans left");
    assert_eq!(
        entries(&root.join("overlay2/l")).len(),
        wanted.len() - 1,
        "short links"
    );
    assert!(entries(&root.join("image/overlay2/layerdb/tmp")).is_empty());
}

#[test]
fn import_killed_between_commit_steps_leaves_no_half_registered_layer() {
    let work = tempfile::tempdir().unwrap();
    let tar = work.path().join("rootfs.tar");
    berth_testkit::busybox_rootfs_tar(&tar).unwrap();
    for point in POINTS {
        let root = berth_testkit::TempRoot::new("berth-crash-").unwrap();
        let r = root.path();
        crash_at(berth(r).arg("import").arg(&tar).arg("bb"), point);
        assert_eq!(images(r), "", "no image after a crash at {point}");
        let chains = complete_layers(r);
        let registered = point == "layer-commit:registered";
        assert_eq!(chains.len(), usize::from(registered), "{point}: {chains:?}");
        sweep_and_check(r);
        // The same import works afterwards (reusing a layer that made it).
        run_ok(berth(r).arg("import").arg(&tar).arg("bb"));
        assert_eq!(complete_layers(r).len(), 1);
        let out = run_ok(berth(r).args(["run", "--rm", "bb", "cat", "/etc/passwd"]));
        assert!(out.starts_with("root:"), "{out}");
    }
}

#[test]
fn commit_killed_between_commit_steps_leaves_no_half_registered_layer() {
    let root = berth_testkit::TempRoot::new("berth-crash-commit-").unwrap();
    let r = root.path();
    let work = tempfile::tempdir().unwrap();
    let tar = work.path().join("rootfs.tar");
    berth_testkit::busybox_rootfs_tar(&tar).unwrap();
    run_ok(berth(r).arg("import").arg(&tar).arg("bb"));
    run_ok(berth(r).args([
        "run",
        "--name",
        "maker",
        "bb",
        "sh",
        "-c",
        "echo made > /made",
    ]));
    let base = images(r);
    for point in POINTS {
        crash_at(berth(r).args(["commit", "maker", "made"]), point);
        assert_eq!(images(r), base, "no new image after a crash at {point}");
        let chains = complete_layers(r);
        let registered = point == "layer-commit:registered";
        assert_eq!(chains.len(), 1 + usize::from(registered), "{point}");
        sweep_and_check(r);
    }
    run_ok(berth(r).args(["commit", "maker", "made"]));
    let out = run_ok(berth(r).args(["run", "--rm", "made", "cat", "/made"]));
    assert_eq!(out, "made\n");
    assert_eq!(complete_layers(r).len(), 2);
}
