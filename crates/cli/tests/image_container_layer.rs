//! Container layers through the library API the engine uses (create, one overlay mount, commit,
//! unmount, remove) and how `berth rmi` treats an image a container layer sits on.
mod cli_common;
use berth_image::Store;
use cli_common::{berth, run_ok};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use std::process::Command;

fn import_busybox(root: &Path, work: &Path, tag: &str) -> String {
    let tar = work.join("rootfs.tar");
    berth_testkit::busybox_rootfs_tar(&tar).unwrap();
    let out = berth(root)
        .arg("import")
        .arg(&tar)
        .arg(tag)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn container_layer_mounts_commits_and_goes_away() {
    let root = berth_testkit::TempRoot::new("berth-img-").unwrap();
    let work = tempfile::tempdir().unwrap();
    let id = import_busybox(root.path(), work.path(), "bb:latest");
    let store = Store::open(root.path()).unwrap();
    let layer = store.create_container_layer("c1", Some("bb")).unwrap();
    let meta = root.path().join("image/overlay2/layerdb/mounts/c1");
    assert_eq!(
        std::fs::read_to_string(meta.join("mount-id")).unwrap(),
        layer.mount_id
    );
    assert_eq!(
        std::fs::read_to_string(meta.join("init-id")).unwrap(),
        format!("{}-init", layer.mount_id)
    );
    assert!(std::fs::read_to_string(meta.join("parent"))
        .unwrap()
        .starts_with("sha256:"));
    assert_eq!(layer.lower_dirs.len(), 2, "init layer + image layer");
    let init = root
        .path()
        .join("overlay2")
        .join(format!("{}-init", layer.mount_id));
    for p in [
        "diff/etc/hosts",
        "diff/etc/hostname",
        "diff/etc/resolv.conf",
        "diff/dev/console",
        "diff/.dockerenv",
    ] {
        assert!(init.join(p).is_file(), "{p}");
    }
    for p in ["diff/proc", "diff/sys", "diff/dev/pts", "diff/dev/shm"] {
        assert!(init.join(p).is_dir(), "{p}");
    }

    let merged = store.mount_container_layer("c1").unwrap();
    assert_eq!(
        store.mount_container_layer("c1").unwrap(),
        merged,
        "idempotent"
    );
    assert!(merged.join("bin/busybox").is_file());
    assert!(merged.join("etc/hostname").is_file());
    std::fs::write(merged.join("hello"), "world").unwrap();
    std::fs::remove_file(merged.join("etc/group")).unwrap();
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert_eq!(
        mounts
            .lines()
            .filter(|l| l.contains(merged.to_str().unwrap()))
            .count(),
        1,
        "one overlay mount"
    );
    // The upper dir holds the change and overlay's whiteout.
    let wh = std::fs::symlink_metadata(layer.upper.join("etc/group")).unwrap();
    assert!(wh.file_type().is_char_device() && wh.rdev() == 0);

    // rmi refuses while the container layer sits on the image.
    let out = berth(root.path()).args(["rmi", "bb"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("conflict: unable to remove repository reference \"bb\" (must force) - container c1 is using its referenced image"), "{err}");
    let out = berth(root.path()).args(["rmi", &id]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("image is being used by stopped container c1"));

    // Commit: a new image whose top layer is the container's diff, whiteout as `.wh.` in the tar.
    let mut config = store.resolve("bb").unwrap().config;
    config.history.push(berth_image::History {
        created_by: Some("commit test".into()),
        ..Default::default()
    });
    let new_id = store
        .commit_container_layer("c1", config, Some(&id))
        .unwrap();
    store.tag(&new_id, "committed:1").unwrap();
    let img = store.resolve("committed:1").unwrap();
    assert_eq!(img.config.rootfs.diff_ids.len(), 2);
    let saved = work.path().join("c.tar");
    let out = berth(root.path())
        .args(["save", "-o"])
        .arg(&saved)
        .arg("committed:1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let top = img.config.rootfs.diff_ids[1]
        .trim_start_matches("sha256:")
        .to_string();
    let listing = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "tar xOf {} {top}/layer.tar | tar t",
            saved.display()
        ))
        .output()
        .unwrap();
    let names = String::from_utf8_lossy(&listing.stdout);
    assert!(names.lines().any(|l| l == "etc/.wh.group"), "{names}");
    assert!(names.lines().any(|l| l == "hello"), "{names}");
    let hist = berth(root.path())
        .args(["history", "-q", "committed:1"])
        .output()
        .unwrap();
    let rows: Vec<String> = String::from_utf8_lossy(&hist.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(
        rows,
        vec![new_id[7..19].to_string(), id[7..19].to_string()],
        "parent chain fills IMAGE"
    );

    store.unmount_container_layer("c1").unwrap();
    assert!(!berth_image::mounts::is_mountpoint(&merged));
    store.remove_container_layer("c1").unwrap();
    assert!(!meta.exists());
    assert!(!root.path().join("overlay2").join(&layer.mount_id).exists());
    assert!(!init.exists());
    // Now the images can go, child first; the layers go with the last user.
    let out = berth(root.path())
        .args(["rmi", "committed:1", "bb"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read_dir(root.path().join("image/overlay2/layerdb/sha256"))
            .unwrap()
            .count(),
        0
    );
    assert_eq!(
        std::fs::read_dir(root.path().join("overlay2/l"))
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn empty_rootfs_container_layer_mounts() {
    let root = berth_testkit::TempRoot::new("berth-img-").unwrap();
    let store = Store::open(root.path()).unwrap();
    let layer = store.create_container_layer("scratch", None).unwrap();
    assert_eq!(layer.lower_dirs.len(), 1);
    let merged = store.mount_container_layer("scratch").unwrap();
    assert!(merged.join("etc/hosts").is_file());
    store.remove_container_layer("scratch").unwrap();
    assert!(!merged.exists());
}

#[test]
fn removing_last_tag_drops_digest_references_of_that_repository() {
    let root = berth_testkit::TempRoot::new("berth-img-").unwrap();
    let work = tempfile::tempdir().unwrap();
    let id = import_busybox(root.path(), work.path(), "bb:latest");
    let store = Store::open(root.path()).unwrap();
    let digest = format!("bb@sha256:{}", "a".repeat(64));
    store.tag(&id, &digest).unwrap();
    let out = berth(root.path()).args(["rmi", "bb"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "Untagged: bb:latest");
    assert_eq!(lines[1], format!("Untagged: {digest}"));
    assert_eq!(lines[2], format!("Deleted: {id}"));
    // Docker refuses to tag with a digest from the command line.
    let id2 = import_busybox(root.path(), work.path(), "bb2:latest");
    let out = berth(root.path())
        .args(["tag", &id2, &digest])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("refusing to create a tag with a digest reference"));
}

#[test]
fn deep_chains_mount_through_relative_short_links() {
    // A long root path and 24 layers make absolute lowerdirs exceed a page, so the mount must
    // use relative short links from overlay2/, as Docker does.
    let base = berth_testkit::TempRoot::new("berth-img-").unwrap();
    let deep = base.path().join("x".repeat(120)).join("y".repeat(120));
    std::fs::create_dir_all(&deep).unwrap();
    let work = tempfile::tempdir().unwrap();
    let mut id = import_busybox(&deep, work.path(), "deep:0");
    let store = Store::open(&deep).unwrap();
    for i in 1..24 {
        let cid = format!("builder{i}");
        let layer = store.create_container_layer(&cid, Some(&id)).unwrap();
        std::fs::write(layer.upper.join(format!("layer{i}")), i.to_string()).unwrap();
        let config = store.image(&id).unwrap().config;
        id = store
            .commit_container_layer(&cid, config, Some(&id))
            .unwrap();
        store.remove_container_layer(&cid).unwrap();
    }
    let layer = store.create_container_layer("deep", Some(&id)).unwrap();
    let abs_len: usize = layer
        .lower_dirs
        .iter()
        .map(|p| p.as_os_str().len() + 1)
        .sum();
    assert!(abs_len > 4096, "test needs a long lowerdir, got {abs_len}");
    let merged = store.mount_container_layer("deep").unwrap();
    for i in 1..24 {
        assert_eq!(
            std::fs::read_to_string(merged.join(format!("layer{i}"))).unwrap(),
            i.to_string()
        );
    }
    assert!(merged.join("bin/busybox").is_file());
    store.remove_container_layer("deep").unwrap();
}

#[test]
fn renaming_a_lower_directory_commits_as_a_plain_diff() {
    // overlayfs without redirect_dir refuses to rename a directory that comes from a lower
    // layer (EXDEV), so `mv` copies it up whole and whites out the old name: the commit is a
    // plain diff that any Docker can apply, with no trusted.overlay.redirect left in it.
    let root = berth_testkit::TempRoot::new("berth-img-").unwrap();
    let work = tempfile::tempdir().unwrap();
    import_busybox(root.path(), work.path(), "bb:latest");
    let r = root.path();
    run_ok(berth(r).args([
        "run",
        "--name",
        "maker",
        "bb",
        "sh",
        "-c",
        "mkdir -p /data/sub && echo x > /data/sub/file",
    ]));
    run_ok(berth(r).args(["commit", "maker", "withdata"]));
    run_ok(berth(r).args([
        "run", "--name", "mover", "withdata", "mv", "/data", "/moved",
    ]));
    let store = Store::open(r).unwrap();
    let upper = store
        .container_layer(&container_id(r, "mover"))
        .unwrap()
        .upper;
    assert!(upper.join("moved/sub/file").is_file(), "copied up whole");
    assert!(
        !has_xattr(&upper.join("moved"), "trusted.overlay.redirect"),
        "a redirect was recorded"
    );
    run_ok(berth(r).args(["commit", "mover", "moved"]));
    let out = berth(r)
        .args([
            "run",
            "--rm",
            "moved",
            "sh",
            "-c",
            "cat /moved/sub/file; ls /data",
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "x\n");
    assert!(
        !out.status.success(),
        "/data is gone in the committed image"
    );
    run_ok(berth(r).args(["rm", "maker", "mover"]));
}

fn container_id(root: &Path, name: &str) -> String {
    run_ok(berth(root).args(["inspect", "--format", "{{.Id}}", name]))
        .trim()
        .to_string()
}

fn has_xattr(path: &Path, name: &str) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let p = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    let n = std::ffi::CString::new(name).unwrap();
    // SAFETY: both are valid NUL-terminated strings; a null buffer of size 0 only asks for the
    // value's length.
    unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), std::ptr::null_mut(), 0) >= 0 }
}
