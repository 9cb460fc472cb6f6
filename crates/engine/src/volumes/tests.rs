use super::mounts::{copy_up_if_empty, mount_flags, unescape_mountinfo};
use super::*;

fn store() -> (tempfile::TempDir, Volumes) {
    let dir = tempfile::tempdir().unwrap();
    let v = Volumes::new(dir.path());
    (dir, v)
}

#[test]
fn names_follow_docker() {
    assert!(valid_name("data"));
    assert!(valid_name("my_vol.1-x"));
    assert!(!valid_name("a"));
    assert!(!valid_name("-x"));
    assert!(!valid_name(".staging"));
    assert!(!valid_name("a/b"));
}

#[test]
fn create_get_list_remove() {
    let (_d, vols) = store();
    let v = vols
        .create(&CreateVolume {
            name: "data".into(),
            labels: BTreeMap::from([("k".into(), "v".into())]),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(v.driver, "local");
    assert!(v.mountpoint.ends_with("volumes/data/_data"));
    assert!(v.mountpoint.is_dir());
    // Idempotent.
    assert_eq!(
        vols.create(&CreateVolume {
            name: "data".into(),
            ..Default::default()
        })
        .unwrap()
        .labels,
        v.labels
    );
    let anon = vols.create(&CreateVolume::default()).unwrap();
    assert_eq!(anon.name.len(), 64);
    assert!(anon.is_anonymous());
    assert_eq!(vols.list().len(), 2);
    let labelled = vols
        .list_filtered(&[("label".into(), "k=v".into())])
        .unwrap();
    assert_eq!(labelled.len(), 1);
    assert!(vols.list_filtered(&[("bogus".into(), "1".into())]).is_err());
    let doc = v.inspect();
    for key in [
        "CreatedAt",
        "Driver",
        "Labels",
        "Mountpoint",
        "Name",
        "Options",
        "Scope",
    ] {
        assert!(doc.get(key).is_some(), "{key}");
    }
    vols.remove("data", false).unwrap();
    assert!(matches!(
        vols.get("data"),
        Err(EngineError::NoSuchVolume(_))
    ));
    assert!(vols.remove("data", false).is_err());
    vols.remove("data", true).unwrap();
    let report = vols.prune(false, &[]).unwrap();
    assert_eq!(report.deleted, vec![anon.name]);
    assert!(vols.list().is_empty());
}

#[test]
fn bad_input_is_refused_and_leaves_nothing() {
    let (_d, vols) = store();
    assert!(vols
        .create(&CreateVolume {
            name: "x".into(),
            ..Default::default()
        })
        .is_err());
    let opts = BTreeMap::from([("colour".to_string(), "red".to_string())]);
    let err = vols
        .create(&CreateVolume {
            name: "ok1".into(),
            options: opts,
            ..Default::default()
        })
        .unwrap_err();
    assert!(err.to_string().contains("invalid option"), "{err}");
    let opts = BTreeMap::from([("o".to_string(), "bind".to_string())]);
    assert!(vols
        .create(&CreateVolume {
            name: "ok2".into(),
            options: opts,
            ..Default::default()
        })
        .is_err());
    assert!(vols.list().is_empty());
}

#[test]
fn copy_up_keeps_content_and_stays_in_the_root() {
    let dir = tempfile::tempdir().unwrap();
    let rootfs = dir.path().join("rootfs");
    std::fs::create_dir_all(rootfs.join("srv/sub")).unwrap();
    std::fs::write(rootfs.join("srv/sub/file"), "hi").unwrap();
    std::os::unix::fs::symlink("/etc", rootfs.join("escape")).unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    copy_up_if_empty(&rootfs, "/srv", &data).unwrap();
    assert_eq!(
        std::fs::read_to_string(data.join("sub/file")).unwrap(),
        "hi"
    );
    // Not empty any more: a second copy does nothing.
    std::fs::write(rootfs.join("srv/new"), "x").unwrap();
    copy_up_if_empty(&rootfs, "/srv", &data).unwrap();
    assert!(!data.join("new").exists());
    // A symlink to the host's /etc resolves inside the root (where there is no etc).
    let data2 = dir.path().join("data2");
    std::fs::create_dir(&data2).unwrap();
    copy_up_if_empty(&rootfs, "/escape", &data2).unwrap();
    assert!(std::fs::read_dir(&data2).unwrap().next().is_none());
}

#[test]
fn mount_options_split() {
    let (flags, data) = mount_flags("size=10m,ro,uid=1000");
    assert!(flags.contains(nix::mount::MsFlags::MS_RDONLY));
    assert_eq!(data, "size=10m,uid=1000");
    assert_eq!(unescape_mountinfo("/a\\040b"), "/a b");
}
