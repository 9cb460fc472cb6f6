//! `berth import`, `images`, `tag`, `rmi`, `history`, `inspect`, `save`/`load` round trips and
//! the safety rules of tar extraction, driven through the built `berth` binary, each test in its
//! own temporary --root.
mod cli_common;
use cli_common::{berth, run_ok};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn sha256_file(path: &Path) -> String {
    let out = Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("sha256sum");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

fn busybox_tar(dir: &Path) -> PathBuf {
    let tar = dir.join("rootfs.tar");
    berth_testkit::busybox_rootfs_tar(&tar).expect("building busybox tar");
    tar
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// A raw ustar header, so hostile names and links survive (tar writers refuse them).
fn raw_entry(name: &str, typeflag: u8, link: &str, data: &[u8]) -> Vec<u8> {
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    h[100..107].copy_from_slice(b"0000644");
    h[108..115].copy_from_slice(b"0000000");
    h[116..123].copy_from_slice(b"0000000");
    h[124..135].copy_from_slice(format!("{:011o}", data.len()).as_bytes());
    h[136..147].copy_from_slice(b"00000000000");
    h[156] = typeflag;
    h[157..157 + link.len()].copy_from_slice(link.as_bytes());
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
    let mut out = h.to_vec();
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out
}

fn raw_tar(entries: &[Vec<u8>]) -> Vec<u8> {
    let mut t: Vec<u8> = entries.concat();
    t.extend_from_slice(&[0u8; 1024]);
    t
}

#[test]
fn import_lays_out_docker_overlay2() {
    let root = berth_testkit::TempRoot::new("berth-img-").unwrap();
    let work = tempfile::tempdir().unwrap();
    let tar = busybox_tar(work.path());
    let id = run_ok(
        berth(root.path())
            .args(["import"])
            .arg(&tar)
            .arg("bb:latest"),
    );
    let id = id.trim();
    assert!(
        id.starts_with("sha256:") && id.len() == 71,
        "import printed {id:?}"
    );

    let diff_id = sha256_file(&tar);
    let layer = root
        .path()
        .join("image/overlay2/layerdb/sha256")
        .join(&diff_id);
    assert_eq!(read(&layer.join("diff")), format!("sha256:{diff_id}"));
    let size: u64 = read(&layer.join("size")).parse().unwrap();
    assert!(size > 100_000, "size {size}");
    assert!(!layer.join("parent").exists());
    assert!(layer.join("tar-split.json.gz").exists());
    let cache_id = read(&layer.join("cache-id"));
    assert_eq!(cache_id.len(), 64);
    let dir = root.path().join("overlay2").join(&cache_id);
    assert!(dir.join("diff/bin/busybox").is_file());
    assert!(dir.join("diff/etc/passwd").is_file());
    assert!(
        !dir.join("lower").exists(),
        "bottom layer has no lower file"
    );
    let link = read(&dir.join("link"));
    assert_eq!(link.len(), 26);
    assert!(link
        .bytes()
        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()));
    let target = std::fs::read_link(root.path().join("overlay2/l").join(&link)).unwrap();
    assert_eq!(target, PathBuf::from(format!("../{cache_id}/diff")));

    let config = root
        .path()
        .join("image/overlay2/imagedb/content/sha256")
        .join(id.trim_start_matches("sha256:"));
    assert_eq!(format!("sha256:{}", sha256_file(&config)), id);
    let cfg: serde_json::Value = serde_json::from_str(&read(&config)).unwrap();
    assert_eq!(cfg["rootfs"]["diff_ids"][0], format!("sha256:{diff_id}"));
    assert_eq!(cfg["comment"], "Imported from -");

    let repos: serde_json::Value =
        serde_json::from_str(&read(&root.path().join("image/overlay2/repositories.json"))).unwrap();
    assert_eq!(repos["Repositories"]["bb"]["bb:latest"], id);

    let list = run_ok(berth(root.path()).arg("images"));
    let lines: Vec<&str> = list.lines().collect();
    assert!(
        lines[0].starts_with("REPOSITORY   TAG       IMAGE ID       CREATED"),
        "{list}"
    );
    assert!(lines[1].starts_with("bb           latest    "), "{list}");
    assert!(lines[1].contains(&id[7..19]));
    assert!(lines[1].trim_end().ends_with("MB"), "{list}");
    let quiet = run_ok(berth(root.path()).args(["images", "-q"]));
    assert_eq!(quiet.trim(), &id[7..19]);
    let json = run_ok(berth(root.path()).args(["images", "--format", "json"]));
    let row: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(row["Repository"], "bb");
    assert_eq!(row["Tag"], "latest");

    // Short ID prefixes, full IDs and normalised names all resolve.
    for r in [&id[7..12], id, "docker.io/library/bb:latest", "bb"] {
        let out = run_ok(berth(root.path()).args(["image", "inspect", "--format", "{{.Id}}", r]));
        assert_eq!(out.trim(), id, "resolving {r}");
    }
}

#[test]
fn import_with_changes_tag_history_inspect_rmi() {
    let root = berth_testkit::TempRoot::new("berth-img-").unwrap();
    let work = tempfile::tempdir().unwrap();
    let tar = busybox_tar(work.path());
    let id = run_ok(
        berth(root.path())
            .args([
                "import",
                "-c",
                "CMD [\"sh\"]",
                "-c",
                "ENV A=1",
                "-c",
                "WORKDIR /srv",
                "-m",
                "hello",
            ])
            .arg(&tar)
            .arg("bb"),
    );
    let id = id.trim().to_string();
    let doc = run_ok(berth(root.path()).args(["inspect", "bb"]));
    let v: serde_json::Value = serde_json::from_str(&doc).unwrap();
    let img = &v[0];
    assert_eq!(img["Id"], id.as_str());
    assert_eq!(img["RepoTags"][0], "bb:latest");
    assert_eq!(img["Config"]["Cmd"][0], "sh");
    assert_eq!(img["Config"]["Env"][0], "A=1");
    assert_eq!(img["Config"]["WorkingDir"], "/srv");
    assert_eq!(img["Comment"], "hello");
    assert_eq!(img["GraphDriver"]["Name"], "overlay2");
    assert!(img["GraphDriver"]["Data"]["UpperDir"]
        .as_str()
        .unwrap()
        .ends_with("/diff"));
    assert_eq!(img["RootFS"]["Type"], "layers");
    assert!(
        doc.starts_with("[\n    {\n        \"Id\""),
        "Docker's indentation and order: {doc}"
    );

    let hist = run_ok(berth(root.path()).args(["history", "bb"]));
    let lines: Vec<&str> = hist.lines().collect();
    assert!(lines[0].starts_with("IMAGE          CREATED"), "{hist}");
    assert_eq!(lines.len(), 2);
    assert!(lines[1].contains("hello"));
    let raw = run_ok(berth(root.path()).args(["history", "-H=false", "-q", "--no-trunc", "bb"]));
    assert_eq!(raw.trim(), id);

    run_ok(berth(root.path()).args(["tag", "bb", "other/name:v1"]));
    let list = run_ok(berth(root.path()).args(["image", "ls"]));
    assert!(list.contains("other/name   v1"), "{list}");
    // Removing one of two tags only untags.
    let out = run_ok(berth(root.path()).args(["rmi", "other/name:v1"]));
    assert_eq!(out.trim(), "Untagged: other/name:v1");
    // A missing image: Docker's message and status 1.
    let out = berth(root.path()).args(["rmi", "nosuch"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("No such image: nosuch:latest"));
    // The last tag: untag, delete the image and its layer.
    let out = run_ok(berth(root.path()).args(["image", "rm", "bb"]));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "Untagged: bb:latest");
    assert_eq!(lines[1], format!("Deleted: {id}"));
    assert_eq!(lines.len(), 3, "{out}");
    let layerdb = std::fs::read_dir(root.path().join("image/overlay2/layerdb/sha256"))
        .unwrap()
        .count();
    assert_eq!(layerdb, 0);
    let overlay: Vec<_> = std::fs::read_dir(root.path().join("overlay2"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(overlay, vec![std::ffi::OsString::from("l")]);
    assert_eq!(
        std::fs::read_dir(root.path().join("overlay2/l"))
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn six_concurrent_imports_keep_repositories_valid() {
    let root = berth_testkit::TempRoot::new("berth-img-").unwrap();
    let work = tempfile::tempdir().unwrap();
    let tar = busybox_tar(work.path());
    let children: Vec<_> = (0..6)
        .map(|i| {
            berth(root.path())
                .arg("import")
                .arg(&tar)
                .arg(format!("par{i}:t{i}"))
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out: Output = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let repos: serde_json::Value =
        serde_json::from_str(&read(&root.path().join("image/overlay2/repositories.json"))).unwrap();
    for i in 0..6 {
        assert!(
            repos["Repositories"][format!("par{i}")][format!("par{i}:t{i}")].is_string(),
            "{repos}"
        );
    }
    // One shared layer, no leftover staging directories.
    assert_eq!(
        std::fs::read_dir(root.path().join("image/overlay2/layerdb/sha256"))
            .unwrap()
            .count(),
        1
    );
    assert_eq!(
        std::fs::read_dir(root.path().join("overlay2/l"))
            .unwrap()
            .count(),
        1
    );
    let dirs = std::fs::read_dir(root.path().join("overlay2"))
        .unwrap()
        .count();
    assert_eq!(dirs, 2, "overlay2 holds the layer and l/ only");
}

#[test]
fn hostile_tars_write_nothing_outside() {
    let root = berth_testkit::TempRoot::new("berth-img-").unwrap();
    let work = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let out_dir = outside.path().display().to_string();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "traversal",
            raw_tar(&[raw_entry("../../../../escape-x", b'0', "", b"bad")]),
        ),
        (
            "absolute",
            raw_tar(&[raw_entry(&format!("{out_dir}/abs-x"), b'0', "", b"bad")]),
        ),
        (
            "symlink escape",
            raw_tar(&[
                raw_entry("link", b'2', &out_dir, b""),
                raw_entry("link/file", b'0', "", b"bad"),
            ]),
        ),
        (
            "hard link out",
            raw_tar(&[raw_entry("passwd", b'1', "/etc/passwd", b"")]),
        ),
        (
            "hard link via ..",
            raw_tar(&[raw_entry(
                "passwd",
                b'1',
                "../../../../../../etc/passwd",
                b"",
            )]),
        ),
    ];
    for (what, bytes) in cases {
        let path = work.path().join("hostile.tar");
        std::fs::write(&path, &bytes).unwrap();
        let out = berth(root.path())
            .arg("import")
            .arg(&path)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() {
            assert!(stderr.contains("Error:"), "{what}: unclear error {stderr}");
        }
        assert_eq!(
            std::fs::read_dir(outside.path()).unwrap().count(),
            0,
            "{what} wrote outside"
        );
    }
    assert!(!Path::new("/escape-x").exists());
    // Failed imports leave no layer behind.
    let leftovers: Vec<_> = std::fs::read_dir(root.path().join("overlay2"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n != "l")
        .collect();
    let layers = std::fs::read_dir(root.path().join("image/overlay2/layerdb/sha256"))
        .unwrap()
        .count();
    assert_eq!(leftovers.len(), layers, "staging dirs left: {leftovers:?}");
}

#[test]
fn save_then_load_round_trips_ids_and_bytes() {
    let a = berth_testkit::TempRoot::new("berth-img-").unwrap();
    let b = berth_testkit::TempRoot::new("berth-img-").unwrap();
    let work = tempfile::tempdir().unwrap();
    let tar = busybox_tar(work.path());
    let id = run_ok(berth(a.path()).arg("import").arg(&tar).arg("bb:1"));
    let archive = work.path().join("bb.tar");
    run_ok(
        berth(a.path())
            .args(["save", "-o"])
            .arg(&archive)
            .arg("bb:1"),
    );
    // The saved layer is the imported tar, byte for byte.
    let listing = Command::new("tar")
        .arg("tf")
        .arg(&archive)
        .output()
        .unwrap();
    let names = String::from_utf8_lossy(&listing.stdout).into_owned();
    let layer_name = names
        .lines()
        .find(|l| l.ends_with("layer.tar"))
        .unwrap()
        .to_string();
    let extracted = Command::new("tar")
        .arg("xOf")
        .arg(&archive)
        .arg(&layer_name)
        .output()
        .unwrap();
    assert_eq!(extracted.stdout, std::fs::read(&tar).unwrap());
    let load = berth(b.path())
        .args(["load", "-i"])
        .arg(&archive)
        .output()
        .unwrap();
    assert!(load.status.success());
    assert_eq!(
        String::from_utf8_lossy(&load.stdout).trim(),
        "Loaded image: bb:1"
    );
    // Without a terminal, progress is one plain line per layer on stderr.
    let progress = String::from_utf8_lossy(&load.stderr);
    assert!(
        progress.lines().any(|l| l.starts_with("Loading layer "))
            && progress.contains("Loaded layer "),
        "no plain progress lines: {progress}"
    );
    let got = run_ok(berth(b.path()).args(["image", "inspect", "-f", "{{.Id}}", "bb:1"]));
    assert_eq!(got.trim(), id.trim());
    // Loading from stdin, compressed with gzip, works too.
    let gz = work.path().join("bb.tar.gz");
    let st = Command::new("sh")
        .arg("-c")
        .arg(format!("gzip -c {} > {}", archive.display(), gz.display()))
        .status()
        .unwrap();
    assert!(st.success());
    let c = berth_testkit::TempRoot::new("berth-img-").unwrap();
    let out = run_ok(
        berth(c.path())
            .arg("load")
            .stdin(std::fs::File::open(&gz).unwrap()),
    );
    assert_eq!(out.trim(), "Loaded image: bb:1");
}

#[test]
fn retag_leaves_dangling_image_that_prune_removes() {
    let root = berth_testkit::TempRoot::new("berth-img-").unwrap();
    let work = tempfile::tempdir().unwrap();
    let tar = busybox_tar(work.path());
    let first = run_ok(berth(root.path()).arg("import").arg(&tar).arg("bb"));
    // Compressed input from stdin works too (gzip detected by its magic).
    let gz = work.path().join("rootfs.tar.gz");
    let st = Command::new("sh")
        .arg("-c")
        .arg(format!("gzip -c {} > {}", tar.display(), gz.display()))
        .status()
        .unwrap();
    assert!(st.success());
    let second = run_ok(
        berth(root.path())
            .args(["import", "-", "bb"])
            .stdin(std::fs::File::open(&gz).unwrap()),
    );
    assert_ne!(first, second);
    let dangling =
        run_ok(berth(root.path()).args(["images", "-q", "--no-trunc", "-f", "dangling=true"]));
    assert_eq!(dangling.trim(), first.trim());
    let list = run_ok(berth(root.path()).arg("images"));
    assert!(
        list.lines().any(|l| l.starts_with("<none>       <none>")),
        "{list}"
    );
    let out = run_ok(berth(root.path()).args(["image", "prune", "-f"]));
    assert!(out.starts_with("Deleted Images:\n"), "{out}");
    assert!(out.contains(&format!("deleted: {}", first.trim())), "{out}");
    assert!(out.contains("Total reclaimed space: "), "{out}");
    // The shared layer stays for the tagged image.
    let still = run_ok(berth(root.path()).args(["image", "inspect", "-f", "{{.Id}}", "bb"]));
    assert_eq!(still.trim(), second.trim());
    assert_eq!(
        std::fs::read_dir(root.path().join("image/overlay2/layerdb/sha256"))
            .unwrap()
            .count(),
        1
    );
    let out = run_ok(berth(root.path()).args(["image", "prune", "-a", "-f"]));
    assert!(out.contains("untagged: bb:latest"), "{out}");
    assert_eq!(
        std::fs::read_dir(root.path().join("image/overlay2/layerdb/sha256"))
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn import_from_loopback_url() {
    use std::io::{Read, Write};
    let root = berth_testkit::TempRoot::new("berth-img-").unwrap();
    let work = tempfile::tempdir().unwrap();
    let tar = busybox_tar(work.path());
    let body = std::fs::read(&tar).unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut req = Vec::new();
        let mut byte = [0u8; 1];
        while !req.ends_with(b"\r\n\r\n") && conn.read(&mut byte).unwrap() == 1 {
            req.push(byte[0]);
        }
        let head = format!("HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
        conn.write_all(head.as_bytes()).unwrap();
        conn.write_all(&body).unwrap();
    });
    let url = format!("http://127.0.0.1:{port}/rootfs.tar");
    let id = run_ok(berth(root.path()).arg("import").arg(&url).arg("fromurl:1"));
    server.join().unwrap();
    let comment =
        run_ok(berth(root.path()).args(["image", "inspect", "-f", "{{.Comment}}", "fromurl:1"]));
    assert_eq!(comment.trim(), format!("Imported from {url}"));
    let diff = run_ok(berth(root.path()).args([
        "image",
        "inspect",
        "-f",
        "{{json .RootFS.Layers}}",
        id.trim(),
    ]));
    assert!(diff.contains(&sha256_file(&tar)));
    // https is refused with a clear message rather than fetched insecurely.
    let out = berth(root.path())
        .args(["import", "https://127.0.0.1:1/x.tar"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("only http:// URLs are supported"));
}

#[test]
fn load_with_wrong_diff_id_fails_and_leaves_nothing() {
    let root = berth_testkit::TempRoot::new("berth-img-").unwrap();
    let work = tempfile::tempdir().unwrap();
    let stage = work.path().join("stage");
    std::fs::create_dir_all(stage.join("l1")).unwrap();
    std::fs::create_dir_all(stage.join("l2")).unwrap();
    berth_testkit::busybox_rootfs_tar(&stage.join("l1/layer.tar")).unwrap();
    std::fs::write(
        stage.join("l2/layer.tar"),
        raw_tar(&[raw_entry("extra", b'0', "", b"payload")]),
    )
    .unwrap();
    let good = format!("sha256:{}", sha256_file(&stage.join("l1/layer.tar")));
    let wrong = format!("sha256:{}", "0".repeat(64));
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [good, wrong]},
    });
    let bytes = serde_json::to_vec(&config).unwrap();
    std::fs::write(stage.join("c.json"), &bytes).unwrap();
    let id = sha256_file(&stage.join("c.json"));
    std::fs::rename(stage.join("c.json"), stage.join(format!("{id}.json"))).unwrap();
    let manifest = serde_json::json!([{"Config": format!("{id}.json"), "RepoTags": ["bad:1"], "Layers": ["l1/layer.tar", "l2/layer.tar"]}]);
    std::fs::write(
        stage.join("manifest.json"),
        serde_json::to_vec(&manifest).unwrap(),
    )
    .unwrap();
    let archive = work.path().join("bad.tar");
    let st = Command::new("tar")
        .arg("-C")
        .arg(&stage)
        .arg("-cf")
        .arg(&archive)
        .args([
            "l1/layer.tar",
            "l2/layer.tar",
            &format!("{id}.json"),
            "manifest.json",
        ])
        .status()
        .unwrap();
    assert!(st.success());
    let out = berth(root.path())
        .args(["load", "-i"])
        .arg(&archive)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("digest mismatch for layer l2/layer.tar"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_dir(root.path().join("image/overlay2/layerdb/sha256"))
            .unwrap()
            .count(),
        0
    );
    let dirs: Vec<_> = std::fs::read_dir(root.path().join("overlay2"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(dirs, vec![std::ffi::OsString::from("l")]);
    assert_eq!(
        std::fs::read_dir(root.path().join("overlay2/l"))
            .unwrap()
            .count(),
        0
    );
    let list = run_ok(berth(root.path()).args(["images", "-q"]));
    assert!(list.trim().is_empty());
}

/// Runs `cmd` to completion within `deadline`; returns its exit status and peak resident set
/// size in KiB (from `wait4`'s rusage, so only this child counts).
fn run_measuring_rss(
    cmd: &mut Command,
    deadline: std::time::Duration,
) -> (std::process::ExitStatus, i64) {
    use std::os::unix::process::ExitStatusExt;
    // Reaped below by wait4 (which std's wait cannot do: it drops the rusage).
    #[allow(clippy::zombie_processes)]
    let child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;
    let until = std::time::Instant::now() + deadline;
    loop {
        let mut status = 0;
        // SAFETY: rusage is plain data that wait4 fills in; status is a valid out-pointer.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: waiting (without blocking) for our own child, whose pid we hold.
        let got = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        assert!(got >= 0, "wait4: {}", std::io::Error::last_os_error());
        if got == pid {
            return (std::process::ExitStatus::from_raw(status), usage.ru_maxrss);
        }
        if std::time::Instant::now() > until {
            // SAFETY: our own unreaped child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("{cmd:?} did not finish within {deadline:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Streams a tar of `dirs` × `per_dir` files (most empty, every 97th with a few bytes) to
/// `path`, never holding it in memory.
fn write_many_file_tar(path: &Path, dirs: usize, per_dir: usize) {
    let out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut b = tar::Builder::new(out);
    for d in 0..dirs {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_size(0);
        b.append_data(&mut h, format!("d{d:04}/"), &[][..]).unwrap();
        for f in 0..per_dir {
            let i = d * per_dir + f;
            let data = if i.is_multiple_of(97) {
                format!("file {i}\n")
            } else {
                String::new()
            };
            let mut h = tar::Header::new_ustar();
            h.set_entry_type(tar::EntryType::Regular);
            h.set_mode(0o644);
            h.set_size(data.len() as u64);
            b.append_data(&mut h, format!("d{d:04}/f{f:03}"), data.as_bytes())
                .unwrap();
        }
    }
    b.into_inner().unwrap().into_inner().unwrap();
}

#[test]
fn importing_a_hundred_thousand_files_runs_in_bounded_memory() {
    // The tar-split document is written as entries go by, never collected: the importer's
    // peak RSS (the binary, ~20 MiB, plus at most ~20 MiB of queued buffers) stays below what
    // 100k recorded entries alone (~85 MiB) would take.
    const BOUND_KIB: i64 = 64 * 1024;
    let work = tempfile::tempdir().unwrap();
    let tar = work.path().join("many.tar");
    write_many_file_tar(&tar, 1000, 100);
    let root = berth_testkit::TempRoot::new("berth-many-").unwrap();
    // A tmpfs root: creating 100k inodes on a busy shared ext4 disk (its recently-deleted
    // inode scan) would make this test about the disk rather than the importer. Unmounted
    // with everything else below the root when `root` drops.
    nix::mount::mount(
        Some("tmpfs"),
        root.path(),
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        Some("size=1g,mode=0700"),
    )
    .unwrap();
    let (status, peak_kib) = run_measuring_rss(
        berth(root.path()).arg("import").arg(&tar).arg("many"),
        std::time::Duration::from_secs(120),
    );
    assert!(status.success(), "import failed: {status:?}");
    eprintln!("berth import of 100k files: peak RSS {peak_kib} KiB");
    assert!(
        peak_kib < BOUND_KIB,
        "peak RSS {peak_kib} KiB, bound {BOUND_KIB} KiB"
    );
    // Every file arrived, and the recorded tar-split rebuilds the tar byte for byte.
    let store = berth_image::Store::open(root.path()).unwrap();
    let top = store.resolve("many").unwrap().top_layer().unwrap();
    let diff = store.layer_diff_dir(&top).unwrap();
    assert_eq!(std::fs::read_dir(diff.join("d0999")).unwrap().count(), 100);
    assert_eq!(
        std::fs::read_to_string(diff.join("d0970/f000")).unwrap(),
        "file 97000\n"
    );
    let saved = work.path().join("saved.tar");
    run_ok(
        berth(root.path())
            .args(["save", "-o"])
            .arg(&saved)
            .arg("many"),
    );
    let listing = run_ok(Command::new("tar").arg("-tf").arg(&saved));
    let layer = listing
        .lines()
        .find(|l| l.ends_with("/layer.tar"))
        .unwrap()
        .to_string();
    let extracted = work.path().join("x");
    std::fs::create_dir(&extracted).unwrap();
    run_ok(
        Command::new("tar")
            .arg("-xf")
            .arg(&saved)
            .arg("-C")
            .arg(&extracted)
            .arg(&layer),
    );
    assert_eq!(sha256_file(&extracted.join(&layer)), sha256_file(&tar));
}
