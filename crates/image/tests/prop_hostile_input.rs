//! Bounded property runs (issue 14) over hostile input to the image store: the tar applier never
//! writes outside its destination whatever names, links and kinds an archive holds; arbitrary
//! bytes as a layer, a `docker save` archive or an image reference fail cleanly, never panic.
//! Longer runs: `cargo fuzz` targets in `fuzz/` (see its README).
use proptest::prelude::*;

fn name() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop::sample::select(vec!["a", "b", "..", ".", "", "etc", "/", "x/..", "l"]),
        1..5,
    )
    .prop_map(|parts| parts.join("/"))
}

#[derive(Debug, Clone)]
enum Kind {
    File,
    Dir,
    Symlink(String),
    HardLink(String),
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        Just(Kind::File),
        Just(Kind::Dir),
        prop::sample::select(vec!["/", "..", "../..", "/etc", "a", "../../outside"])
            .prop_map(|t| Kind::Symlink(t.to_string())),
        name().prop_map(Kind::HardLink),
    ]
}

fn tar_of(entries: &[(String, Kind)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, kind) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o755);
        h.set_mtime(1);
        let data: &[u8] = match kind {
            Kind::File => {
                h.set_entry_type(tar::EntryType::Regular);
                b"payload"
            }
            Kind::Dir => {
                h.set_entry_type(tar::EntryType::Directory);
                b""
            }
            Kind::Symlink(t) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_link_name_literal(t).unwrap();
                b""
            }
            Kind::HardLink(t) => {
                h.set_entry_type(tar::EntryType::Link);
                h.set_link_name_literal(t).unwrap();
                b""
            }
        };
        h.set_size(data.len() as u64);
        let bytes = name.as_bytes();
        let n = bytes.len().min(99);
        h.as_old_mut().name[..n].copy_from_slice(&bytes[..n]);
        h.set_cksum();
        b.append(&h, data).unwrap();
    }
    b.into_inner().unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn applier_never_writes_outside(entries in prop::collection::vec((name(), kind()), 1..8)) {
        let outer = tempfile::tempdir().unwrap();
        let dest = outer.path().join("dest");
        std::fs::create_dir(&dest).unwrap();
        let tar = tar_of(&entries);
        let split = tempfile::tempdir().unwrap();
        let _ = berth_image::apply::apply_tar(&tar[..], &dest, "prop", &split.path().join("ts"));
        let fd = rustix::fs::open(&dest, rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::DIRECTORY, rustix::fs::Mode::empty()).unwrap();
        let _ = berth_image::apply::unpack_into(&tar[..], rustix::fd::AsFd::as_fd(&fd), "prop", Default::default());
        let outside: Vec<_> = std::fs::read_dir(outer.path()).unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| n != "dest")
            .collect();
        prop_assert!(outside.is_empty(), "wrote {:?} outside", outside);
    }

    #[test]
    fn arbitrary_bytes_as_a_layer_fail_cleanly(bytes in prop::collection::vec(any::<u8>(), 0..4096)) {
        let dir = tempfile::tempdir().unwrap();
        let split = tempfile::tempdir().unwrap();
        let _ = berth_image::apply::apply_tar(&bytes[..], dir.path(), "prop", &split.path().join("ts"));
    }

    #[test]
    fn arbitrary_save_archives_fail_cleanly(entries in prop::collection::vec((prop::sample::select(vec!["manifest.json", "index.json", "oci-layout", "repositories", "blobs/sha256/aa", "x/layer.tar"]), prop::collection::vec(any::<u8>(), 0..256)), 0..4)) {
        let root = tempfile::tempdir().unwrap();
        let store = berth_image::Store::open(root.path()).unwrap();
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in &entries {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, name, &data[..]).unwrap();
        }
        let tar = b.into_inner().unwrap();
        prop_assert!(store.load(&tar[..], &berth_image::archive::NoProgress).is_err() || entries.is_empty());
    }

    #[test]
    fn references_parse_or_refuse(text in "\\PC{0,80}") {
        let _ = berth_image::reference::Reference::parse(&text);
        let _ = berth_image::reference::Reference::parse_tagged(&text);
    }
}
