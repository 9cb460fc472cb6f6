//! An image exactly at the kernel's 500-layer overlay limit gets its container's init layer
//! folded into a hard-link copy of its top layer (`fold`). The container must see what the
//! stack of 500 image layers plus an init layer would show: a directory that several layers
//! define keeps the owner and mode of the topmost layer that defines it (one chowned and
//! chmodded in layer 480 shows that layer's owner and mode; one the top layer defines shows the
//! top's), and whiteouts and opaque directories from the top layer and from layers below it
//! still hide what they hide. Loaded from a generated `docker save` archive through the library,
//! mounted for real (root only).
use berth_image::{NoProgress, Store};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

const LAYERS: usize = 500;
const LAYER_480: usize = 480;

/// One entry of a layer: (name, kind, uid, gid, mode).
struct Entry {
    name: &'static str,
    kind: tar::EntryType,
    owner: (u64, u64),
    mode: u32,
}

fn dir(name: &'static str, owner: (u64, u64), mode: u32) -> Entry {
    Entry {
        name,
        kind: tar::EntryType::Directory,
        owner,
        mode,
    }
}

fn file(name: &'static str) -> Entry {
    Entry {
        name,
        kind: tar::EntryType::Regular,
        owner: (0, 0),
        mode: 0o644,
    }
}

fn layer_tar(entries: &[Entry], extra: Option<String>) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |name: &str, kind: tar::EntryType, owner: (u64, u64), mode: u32| {
        let data: &[u8] = if kind == tar::EntryType::Regular {
            name.as_bytes()
        } else {
            b""
        };
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(kind);
        h.set_uid(owner.0);
        h.set_gid(owner.1);
        h.set_mode(mode);
        h.set_mtime(1_700_000_000);
        h.set_size(data.len() as u64);
        b.append_data(&mut h, name, data).unwrap();
    };
    for e in entries {
        add(e.name, e.kind, e.owner, e.mode);
    }
    if let Some(name) = extra {
        add(&name, tar::EntryType::Regular, (0, 0), 0o644);
    }
    b.into_inner().unwrap()
}

/// Layer `i` of the deep image.
fn layer(i: usize) -> Vec<u8> {
    let root = (0, 0);
    let entries: Vec<Entry> = match i {
        0 => vec![
            dir("chowned/", root, 0o755),
            file("chowned/base"),
            dir("multi/", root, 0o755),
            dir("wh/", root, 0o755),
            file("wh/gone-top"),
            file("wh/gone-480"),
            file("wh/kept"),
            dir("opq-top/", root, 0o755),
            file("opq-top/old"),
            dir("opq-480/", root, 0o755),
            file("opq-480/old"),
        ],
        LAYER_480 => vec![
            dir("chowned/", (1234, 5678), 0o750),
            file("chowned/from-480"),
            dir("multi/", (1234, 5678), 0o750),
            file("multi/from-480"),
            dir("wh/", root, 0o755),
            file("wh/.wh.gone-480"),
            dir("opq-480/", root, 0o755),
            file("opq-480/.wh..wh..opq"),
            file("opq-480/mid"),
        ],
        top if top == LAYERS - 1 => vec![
            dir("multi/", (4321, 8765), 0o705),
            file("multi/from-top"),
            dir("wh/", root, 0o755),
            file("wh/.wh.gone-top"),
            dir("opq-top/", root, 0o755),
            file("opq-top/.wh..wh..opq"),
            file("opq-top/new"),
        ],
        _ => Vec::new(),
    };
    layer_tar(&entries, Some(format!("f{i}")))
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// A `docker save` archive of the 500-layer image, tagged `deep:fold`.
fn deep_archive() -> Vec<u8> {
    let mut out = tar::Builder::new(Vec::new());
    let mut put = |name: &str, data: &[u8]| {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        out.append_data(&mut h, name, data).unwrap();
    };
    let mut diff_ids = Vec::new();
    let mut paths = Vec::new();
    for i in 0..LAYERS {
        let t = layer(i);
        let hex = sha256_hex(&t);
        let path = format!("{hex}/layer.tar");
        put(&path, &t);
        diff_ids.push(format!("sha256:{hex}"));
        paths.push(path);
    }
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    });
    let config = serde_json::to_vec(&config).unwrap();
    let config_name = format!("{}.json", sha256_hex(&config));
    put(&config_name, &config);
    let manifest = serde_json::json!([{
        "Config": config_name, "RepoTags": ["deep:fold"], "Layers": paths,
    }]);
    put("manifest.json", &serde_json::to_vec(&manifest).unwrap());
    out.into_inner().unwrap()
}

fn owner_mode(path: &Path) -> (u32, u32, u32) {
    let md = std::fs::symlink_metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(md.is_dir(), "{} is a directory", path.display());
    (md.uid(), md.gid(), md.mode() & 0o7777)
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn folded_init_layer_keeps_directory_owners_and_whiteouts() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: mounting overlays needs root");
        return;
    }
    if berth_image::overlay::max_lower_layers() < LAYERS {
        eprintln!("skipped: this kernel stacks fewer than {LAYERS} overlay layers");
        return;
    }
    let root = berth_testkit::TempRoot::new("berth-fold-").unwrap();
    let store = Store::open(root.path()).unwrap();
    let archive = deep_archive();
    let started = std::time::Instant::now();
    let loaded = store.load(&archive[..], &NoProgress).unwrap();
    eprintln!("loaded {LAYERS} layers in {:?}", started.elapsed());
    assert_eq!(loaded.len(), 1);
    let layer = store
        .create_container_layer("folded", Some("deep:fold"))
        .unwrap();
    // Folded: the init layer plus the image's lower 499 layers, 500 in all.
    assert_eq!(layer.lower_dirs.len(), LAYERS, "the init layer was folded");
    let merged = store.mount_container_layer("folded").unwrap();
    let check = || {
        // Set in layer 480 only: layer 480's owner and mode, its files and the base's.
        assert_eq!(owner_mode(&merged.join("chowned")), (1234, 5678, 0o750));
        assert_eq!(names(&merged.join("chowned")), ["base", "from-480"]);
        // Set in layers 0, 480 and the top: the top's.
        assert_eq!(owner_mode(&merged.join("multi")), (4321, 8765, 0o705));
        assert_eq!(names(&merged.join("multi")), ["from-480", "from-top"]);
        // Whiteouts from the top (folded) layer and from layer 480.
        assert_eq!(names(&merged.join("wh")), ["kept"]);
        // Opaque directories from the top layer and from layer 480.
        assert_eq!(names(&merged.join("opq-top")), ["new"]);
        assert_eq!(names(&merged.join("opq-480")), ["mid"]);
        // Every layer's own file, and the init layer's entries.
        for i in [0, 1, LAYER_480, LAYERS - 1] {
            assert_eq!(
                std::fs::read_to_string(merged.join(format!("f{i}"))).unwrap(),
                format!("f{i}")
            );
        }
        assert!(merged.join("etc/hosts").is_file());
        assert!(merged.join(".dockerenv").is_file());
        assert!(std::fs::symlink_metadata(merged.join("dev/console"))
            .unwrap()
            .is_file());
        assert!(merged.join("dev/pts").is_dir() && merged.join("proc").is_dir());
    };
    let outcome = std::panic::catch_unwind(check);
    store.unmount_container_layer("folded").unwrap();
    // The folded copy shares the top layer's inodes and leaves the top layer as it was: its
    // whiteout still a 0:0 device, its directory's owner and mode untouched.
    let top = store.layer_chain(&loaded_top(&store)).unwrap()[0].clone();
    let top_diff = root
        .path()
        .join("overlay2")
        .join(&top.cache_id)
        .join("diff");
    let wh = std::fs::symlink_metadata(top_diff.join("wh/gone-top")).unwrap();
    assert!(wh.file_type().is_char_device() && wh.rdev() == 0);
    assert_eq!(owner_mode(&top_diff.join("multi")), (4321, 8765, 0o705));
    assert!(
        !top_diff.join("etc").exists(),
        "init entries only in the copy"
    );
    store.remove_container_layer("folded").unwrap();
    if let Err(e) = outcome {
        std::panic::resume_unwind(e);
    }
}

fn loaded_top(store: &Store) -> String {
    store.resolve("deep:fold").unwrap().top_layer().unwrap()
}
