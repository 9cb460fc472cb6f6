use super::*;
use rustix::fd::AsFd;

#[test]
fn components_refuse_escapes() {
    assert!(safe_components(b"../x").is_err());
    assert!(safe_components(b"a/../../x").is_err());
    assert!(safe_components(b"/etc/x").is_err());
    assert_eq!(safe_components(b"./a//b/").unwrap(), vec![&b"a"[..], b"b"]);
    assert!(safe_components(b"./").unwrap().is_empty());
}

fn tar_of(entries: &[(&str, tar::EntryType, &str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, kind, link, data) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(*kind);
        h.set_mode(0o755);
        h.set_size(data.len() as u64);
        h.set_mtime(1_600_000_000);
        if !link.is_empty() {
            h.set_link_name_literal(link).unwrap();
        }
        // Write the name raw so hostile names survive the builder's own checks.
        let bytes = name.as_bytes();
        let gnu = h.as_old_mut();
        gnu.name[..bytes.len()].copy_from_slice(bytes);
        h.set_cksum();
        b.append(&h, *data).unwrap();
    }
    b.into_inner().unwrap()
}

#[test]
fn extracts_files_whiteouts_and_hashes() {
    let dir = tempfile::tempdir().unwrap();
    let t = tar_of(&[
        ("etc/", tar::EntryType::Directory, "", b""),
        ("etc/passwd", tar::EntryType::Regular, "", b"root\n"),
        ("etc/.wh.hostname", tar::EntryType::Regular, "", b""),
        ("etc/link", tar::EntryType::Symlink, "passwd", b""),
        ("etc/hard", tar::EntryType::Link, "etc/passwd", b""),
    ]);
    let split = tempfile::tempdir().unwrap();
    let split = split.path().join("tar-split.json.gz");
    let applied = apply_tar(&t[..], dir.path(), "test", &split).unwrap();
    assert_eq!(applied.diff_id, crate::digest::sha256_digest(&t));
    assert_eq!(
        std::fs::read(dir.path().join("etc/passwd")).unwrap(),
        b"root\n"
    );
    assert_eq!(
        std::fs::read(dir.path().join("etc/hard")).unwrap(),
        b"root\n"
    );
    assert_eq!(
        std::fs::read_link(dir.path().join("etc/link")).unwrap(),
        Path::new("passwd")
    );
    if rustix::process::geteuid().is_root() {
        use std::os::unix::fs::{FileTypeExt, MetadataExt};
        let md = std::fs::symlink_metadata(dir.path().join("etc/hostname")).unwrap();
        assert!(md.file_type().is_char_device());
        assert_eq!(md.rdev(), 0);
    }
}

#[test]
fn unpack_into_resolves_hard_links_inside_and_keeps_whiteout_names() {
    let outer = tempfile::tempdir().unwrap();
    let dest = outer.path().join("dest");
    std::fs::create_dir(&dest).unwrap();
    let t = tar_of(&[
        ("a/f", tar::EntryType::Regular, "", b"data"),
        ("a/hl", tar::EntryType::Link, "a/f", b""),
        (".wh.keep", tar::EntryType::Regular, "", b""),
    ]);
    let fd = rustix::fs::open(&dest, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()).unwrap();
    let opts = UnpackOptions {
        owner: Some((0, 0)),
        whiteouts: false,
    };
    assert_eq!(unpack_into(&t[..], fd.as_fd(), "t", opts).unwrap(), 3);
    assert_eq!(std::fs::read(dest.join("a/hl")).unwrap(), b"data");
    assert!(dest.join(".wh.keep").is_file());
    // A relative hard link never resolves against the process's cwd.
    let t = tar_of(&[("x", tar::EntryType::Link, "Cargo.toml", b"")]);
    assert!(unpack_into(&t[..], fd.as_fd(), "t", opts).is_err());
    for t in [
        tar_of(&[("../x", tar::EntryType::Regular, "", b"bad")]),
        tar_of(&[("hl", tar::EntryType::Link, "../../etc/passwd", b"")]),
    ] {
        assert!(unpack_into(&t[..], fd.as_fd(), "t", opts).is_err());
    }
    assert!(!outer.path().join("x").exists());
}

#[test]
fn hostile_entries_stay_inside() {
    let outer = tempfile::tempdir().unwrap();
    let dest = outer.path().join("layer");
    std::fs::create_dir(&dest).unwrap();
    for t in [
        tar_of(&[("../x", tar::EntryType::Regular, "", b"bad")]),
        tar_of(&[("/x", tar::EntryType::Regular, "", b"bad")]),
        tar_of(&[("hl", tar::EntryType::Link, "/etc/passwd", b"")]),
    ] {
        let _ = std::fs::remove_file(outer.path().join("split"));
        assert!(apply_tar(&t[..], &dest, "hostile", &outer.path().join("split")).is_err());
    }
    // A symlink pointing out, then a write through it: lands inside the layer.
    let t = tar_of(&[
        (
            "link",
            tar::EntryType::Symlink,
            outer.path().to_str().unwrap(),
            b"",
        ),
        ("link/x", tar::EntryType::Regular, "", b"bad"),
    ]);
    let _ = std::fs::remove_file(outer.path().join("split"));
    let _ = apply_tar(&t[..], &dest, "hostile", &outer.path().join("split"));
    assert!(!outer.path().join("x").exists());
}

/// Hands out a stream in chunks of `size` bytes, so headers, payloads and padding straddle
/// chunk boundaries everywhere.
struct Tiny<'a>(&'a [u8], usize);

impl ChunkSource for Tiny<'_> {
    fn next_chunk(&mut self) -> std::io::Result<Option<crate::side::SharedChunk>> {
        if self.0.is_empty() {
            return Ok(None);
        }
        let n = self.1.min(self.0.len());
        let chunk = crate::side::Chunk::from_vec(self.0[..n].to_vec());
        self.0 = &self.0[n..];
        Ok(Some(chunk))
    }
}

fn gunzip(path: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_end(&mut out)
        .unwrap();
    out
}

#[test]
fn chunk_boundaries_change_nothing_recorded() {
    let big: Vec<u8> = (0..70_000u32).map(|i| (i % 253) as u8).collect();
    let mut t = tar_of(&[
        ("d/", tar::EntryType::Directory, "", b""),
        ("d/big", tar::EntryType::Regular, "", &big),
        ("d/empty", tar::EntryType::Regular, "", b""),
        ("d/small", tar::EntryType::Regular, "", b"abc"),
        ("d/link", tar::EntryType::Symlink, "small", b""),
    ]);
    t.extend_from_slice(b"trailing bytes after the end blocks");
    let work = tempfile::tempdir().unwrap();
    let mut results = Vec::new();
    for size in [1, 7, 512, 513, 4096, 1 << 20] {
        let dest = work.path().join(format!("d{size}"));
        std::fs::create_dir(&dest).unwrap();
        let split = work.path().join(format!("split{size}"));
        let applied = apply_chunks(Tiny(&t, size), &dest, "t", &split).unwrap();
        assert_eq!(
            applied.diff_id,
            crate::digest::sha256_digest(&t),
            "size {size}"
        );
        assert_eq!(
            std::fs::read(dest.join("d/big")).unwrap(),
            big,
            "size {size}"
        );
        results.push((size, applied.size, gunzip(&split)));
    }
    let (_, size, doc) = &results[results.len() - 1];
    for (chunk, s, d) in &results {
        assert_eq!((s, d), (size, doc), "chunks of {chunk} bytes");
    }
    let mut crc = crate::tarsplit::Crc64::new();
    crc.update(&big);
    let mut seen = None;
    crate::tarsplit::read_entries(
        &std::fs::read(work.path().join("split7")).unwrap()[..],
        |e| {
            if let crate::tarsplit::TarSplitEntry::File { name, crc: c, .. } = e {
                if name == b"d/big" {
                    seen = c;
                }
            }
            Ok(())
        },
    )
    .unwrap();
    assert_eq!(seen, Some(crc.value()));
}
