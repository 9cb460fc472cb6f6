//! `berth pull` against Debian's `docker-registry` on 127.0.0.1: images pushed by skopeo pull
//! with Docker's IDs and DiffIDs and run; multi-platform indexes; a corrupted blob is refused by
//! digest with the store unchanged; a pull killed halfway resumes without downloading finished
//! layers again.
mod registry_common;
use berth_testkit::registry::RegistryOptions;
use berth_testkit::TempRoot;
use registry_common::*;

fn inspect_field(rig: &Rig, root: &std::path::Path, image: &str, template: &str) -> String {
    ok(rig
        .berth(root)
        .args(["image", "inspect", "--format", template, image]))
    .trim()
    .to_string()
}

#[test]
fn pull_of_skopeo_pushed_image_keeps_docker_ids_and_runs() {
    let Some(rig) = Rig::start(RegistryOptions::default()) else {
        return;
    };
    let (src, id) = busybox_root(&rig, "bb:1");
    let archive = src.path().join("bb-save.tar");
    ok(rig
        .berth(src.path())
        .args(["save", "-o"])
        .arg(&archive)
        .arg("bb:1"));
    let remote = format!("{}/bb:1", rig.host());
    rig.skopeo_copy(
        &format!("docker-archive:{}", archive.display()),
        &format!("docker://{remote}"),
        &[],
    );
    let digest = rig.skopeo_digest(&format!("docker://{remote}"), &[]);

    let dst = TempRoot::new("berth-reg-dst-").expect("root");
    let out = ok(rig.berth(dst.path()).args(["pull", &remote]));
    assert!(out.contains("1: Pulling from"), "{out}");
    assert!(out.contains("Pull complete"), "{out}");
    assert!(out.contains(&format!("Digest: {digest}")), "{out}");
    assert!(
        out.contains(&format!("Status: Downloaded newer image for {remote}")),
        "{out}"
    );
    assert!(out.trim_end().ends_with(&remote), "{out}");

    assert_eq!(
        inspect_field(&rig, dst.path(), &remote, "{{.Id}}"),
        id,
        "same image ID as the source"
    );
    assert_eq!(
        inspect_field(&rig, dst.path(), &remote, "{{json .RootFS.Layers}}"),
        inspect_field(&rig, src.path(), "bb:1", "{{json .RootFS.Layers}}"),
    );
    let digests = inspect_field(&rig, dst.path(), &remote, "{{json .RepoDigests}}");
    assert_eq!(digests, format!("[\"{}/bb@{digest}\"]", rig.host()));
    let listing = ok(rig.berth(dst.path()).args(["images", "--digests"]));
    assert!(listing.contains(&digest), "{listing}");
    // Docker's distribution metadata: blob -> DiffID.
    let dist = dst
        .path()
        .join("image/overlay2/distribution/diffid-by-digest/sha256");
    assert_eq!(
        std::fs::read_dir(&dist).expect("distribution dir").count(),
        1
    );

    // Again: nothing downloaded, the layer already exists.
    let again = ok(rig.berth(dst.path()).args(["pull", &remote]));
    assert!(again.contains("Already exists"), "{again}");
    assert!(
        again.contains(&format!("Status: Image is up to date for {remote}")),
        "{again}"
    );

    // By digest, quietly: prints only the reference.
    let by_digest = format!("{}/bb@{digest}", rig.host());
    let q = ok(rig.berth(dst.path()).args(["pull", "-q", &by_digest]));
    assert_eq!(q.trim(), by_digest);

    let ran = ok(rig.berth(dst.path()).args([
        "run",
        "--rm",
        "--network",
        "none",
        &remote,
        "/bin/echo",
        "pulled",
    ]));
    assert_eq!(ran.trim(), "pulled");

    // -a: every tag of the repository.
    let two = format!("{}/bb:2", rig.host());
    ok(rig.berth(src.path()).args(["tag", "bb:1", &two]));
    ok(rig.berth(src.path()).args(["push", &two]));
    let all = ok(rig
        .berth(dst.path())
        .args(["pull", "-a", &format!("{}/bb", rig.host())]));
    assert!(all.contains("2: Pulling from"), "{all}");
    assert_eq!(
        inspect_field(&rig, dst.path(), &two, "{{.Id}}"),
        id,
        "tag 2 pulled"
    );
    let bad = fails(rig.berth(dst.path()).args(["pull", "-a", &remote]));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--all-tags"));
}

#[test]
fn pull_chooses_platform_from_an_index() {
    let Some(rig) = Rig::start(RegistryOptions::default()) else {
        return;
    };
    let work = TempRoot::new("berth-reg-oci-").expect("dir");
    let layout = work.path().join("layout");
    let host_arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    let other_arch = if host_arch == "arm64" {
        "amd64"
    } else {
        "arm64"
    };
    let spec = |arch: &str| ImageSpec {
        architecture: arch.to_string(),
        layers: vec![vec![("arch".into(), arch.as_bytes().to_vec())]],
    };
    let written = oci_layout(&layout, &[spec(host_arch), spec(other_arch)]);
    let remote = format!("{}/multi:1", rig.host());
    rig.skopeo_copy(
        &format!("oci:{}", layout.display()),
        &format!("docker://{remote}"),
        &["--all"],
    );
    let index_digest = rig.skopeo_digest(&format!("docker://{remote}"), &[]);

    let dst = TempRoot::new("berth-reg-dst-").expect("root");
    ok(rig.berth(dst.path()).args(["pull", &remote]));
    assert_eq!(
        inspect_field(&rig, dst.path(), &remote, "{{.Id}}"),
        written[0].config_digest
    );
    assert_eq!(
        inspect_field(&rig, dst.path(), &remote, "{{.Architecture}}"),
        host_arch
    );
    // The RepoDigest is the index's, as Docker records it.
    let digests = inspect_field(&rig, dst.path(), &remote, "{{json .RepoDigests}}");
    assert!(digests.contains(&index_digest), "{digests}");

    let other = format!("--platform=linux/{other_arch}");
    ok(rig.berth(dst.path()).args(["pull", &other, &remote]));
    assert_eq!(
        inspect_field(&rig, dst.path(), &remote, "{{.Id}}"),
        written[1].config_digest
    );
    assert_eq!(
        inspect_field(&rig, dst.path(), &remote, "{{.Architecture}}"),
        other_arch
    );
    let none = fails(
        rig.berth(dst.path())
            .args(["pull", "--platform", "linux/s390x", &remote]),
    );
    assert!(String::from_utf8_lossy(&none.stderr).contains("no matching manifest for linux/s390x"));
}

#[test]
fn corrupted_blob_is_refused_by_digest_and_the_store_is_unchanged() {
    let Some(rig) = Rig::start(RegistryOptions::default()) else {
        return;
    };
    let work = TempRoot::new("berth-reg-oci-").expect("dir");
    let layout = work.path().join("layout");
    let written = oci_layout(
        &layout,
        &[ImageSpec {
            architecture: "amd64".into(),
            layers: vec![
                vec![("a".into(), vec![b'a'; 100_000])],
                vec![("b".into(), vec![b'b'; 100_000])],
            ],
        }],
    );
    let remote = format!("{}/broken:1", rig.host());
    rig.skopeo_copy(
        &format!("oci:{}", layout.display()),
        &format!("docker://{remote}"),
        &[],
    );
    let bad = &written[0].layer_digests[1];
    let path = rig.registry.blob_path(bad);
    let mut bytes = std::fs::read(&path).expect("blob in registry storage");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&path, bytes).expect("corrupting blob");

    let dst = TempRoot::new("berth-reg-dst-").expect("root");
    let out = fails(rig.berth(dst.path()).args(["pull", &remote]));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(bad.as_str()), "error names the digest: {err}");
    assert!(err.contains(&rig.host()) && err.contains("broken"), "{err}");
    assert_eq!(layer_count(dst.path()), 0, "no layer committed");
    assert!(layer_dirs(dst.path()).is_empty(), "no layer directory left");
    let images = ok(rig.berth(dst.path()).args(["images", "-q"]));
    assert!(images.trim().is_empty(), "{images}");

    // Unknown tags say so, naming the reference.
    let missing = fails(
        rig.berth(dst.path())
            .args(["pull", &format!("{}/broken:nope", rig.host())]),
    );
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(
        err.contains("broken:nope") && err.contains("not found"),
        "{err}"
    );
}

#[test]
fn killed_pull_resumes_without_downloading_finished_layers_again() {
    let Some(rig) = Rig::start(RegistryOptions::default()) else {
        return;
    };
    let work = TempRoot::new("berth-reg-oci-").expect("dir");
    let layout = work.path().join("layout");
    // A small layer that finishes at once and a large incompressible one still running when
    // the pull is killed.
    let mut noise = vec![0u8; 32 << 20];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for chunk in noise.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
    let written = oci_layout(
        &layout,
        &[ImageSpec {
            architecture: "amd64".into(),
            layers: vec![
                vec![("big".into(), noise)],
                vec![("small".into(), b"small".to_vec())],
            ],
        }],
    );
    let remote = format!("{}/resume:1", rig.host());
    rig.skopeo_copy(
        &format!("oci:{}", layout.display()),
        &format!("docker://{remote}"),
        &[],
    );
    let small = written[0].layer_digests[1].clone();
    let kept = |root: &std::path::Path| {
        root.join("image/overlay2/distribution/pulling")
            .join(small.trim_start_matches("sha256:"))
            .join("layer.json")
            .is_file()
    };
    let dst = TempRoot::new("berth-reg-dst-").expect("root");
    let mut child = rig
        .berth(dst.path())
        .args(["pull", &remote])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("starting pull");
    let seen = berth_testkit::wait_until(std::time::Duration::from_secs(60), || kept(dst.path()));
    let _ = child.kill();
    let status = child.wait().expect("waiting for the pull");
    assert!(seen, "the small layer was never kept");
    assert!(
        !status.success(),
        "the pull finished before it could be killed"
    );
    assert_eq!(
        layer_count(dst.path()),
        0,
        "nothing committed by the killed pull"
    );

    let out = ok(rig.berth(dst.path()).args(["pull", &remote]));
    assert!(out.contains("Downloaded newer image"), "{out}");
    assert_eq!(
        inspect_field(&rig, dst.path(), &remote, "{{.Id}}"),
        written[0].config_digest
    );
    // The registry served the small blob once.
    let log = rig.registry.log();
    let gets = |d: &str| {
        log.lines()
            .filter(|l| {
                l.contains("GET") && l.contains(&format!("/blobs/{d}")) && l.contains("200")
            })
            .count()
    };
    assert_eq!(gets(&small), 1, "small layer fetched again:\n{log}");
    // The big one was asked for again (from where the killed pull stopped, when it had kept
    // any of it: `a_pull_killed_mid_blob_continues_from_the_partial_blob` checks that part).
    let big = blob_gets(&log, &written[0].layer_digests[0]);
    assert!(big.len() >= 2, "{big:?}");
}

#[test]
fn run_pulls_a_missing_image_as_the_pull_policy_says() {
    let Some(rig) = Rig::start(RegistryOptions::default()) else {
        return;
    };
    let (src, id) = busybox_root(&rig, "bb:1");
    let remote = format!("{}/runme:1", rig.host());
    ok(rig.berth(src.path()).args(["tag", "bb:1", &remote]));
    ok(rig.berth(src.path()).args(["push", &remote]));

    let dst = TempRoot::new("berth-reg-dst-").expect("root");
    let never = fails(rig.berth(dst.path()).args([
        "run",
        "--rm",
        "--pull",
        "never",
        "--network",
        "none",
        &remote,
        "/bin/true",
    ]));
    assert_eq!(never.status.code(), Some(125));
    assert_eq!(layer_count(dst.path()), 0);

    let out = rig
        .berth(dst.path())
        .args([
            "run",
            "--rm",
            "--network",
            "none",
            &remote,
            "/bin/echo",
            "hi",
        ])
        .output()
        .expect("berth run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "hi");
    assert!(
        err.contains(&format!("Unable to find image '{remote}' locally")),
        "{err}"
    );
    assert!(err.contains("Pull complete"), "{err}");
    assert_eq!(inspect_field(&rig, dst.path(), &remote, "{{.Id}}"), id);

    // Present now: `missing` does not contact the registry, `always` does and finds it current.
    let again = rig
        .berth(dst.path())
        .args(["create", "--network", "none", &remote, "/bin/true"])
        .output()
        .expect("berth create");
    assert!(again.status.success());
    assert!(!String::from_utf8_lossy(&again.stderr).contains("Pulling"));
    let always = rig
        .berth(dst.path())
        .args([
            "run",
            "--rm",
            "--pull",
            "always",
            "--network",
            "none",
            &remote,
            "/bin/true",
        ])
        .output()
        .expect("berth run");
    let err = String::from_utf8_lossy(&always.stderr);
    assert!(always.status.success(), "{err}");
    assert!(
        err.contains("Already exists") && !err.contains("Unable to find"),
        "{err}"
    );
    let bad = fails(
        rig.berth(dst.path())
            .args(["run", "--pull", "sometimes", &remote]),
    );
    assert!(String::from_utf8_lossy(&bad.stderr).contains("invalid pull option"));
    let c = String::from_utf8_lossy(&again.stdout).trim().to_string();
    ok(rig.berth(dst.path()).args(["rm", "-f", &c]));
}

#[test]
fn build_pulls_a_missing_base_image() {
    let Some(rig) = Rig::start(RegistryOptions::default()) else {
        return;
    };
    let (src, id) = busybox_root(&rig, "bb:1");
    let remote = format!("{}/base:1", rig.host());
    ok(rig.berth(src.path()).args(["tag", "bb:1", &remote]));
    ok(rig.berth(src.path()).args(["push", &remote]));

    let dst = TempRoot::new("berth-reg-dst-").expect("root");
    let ctx = dst.path().join("ctx");
    std::fs::create_dir_all(&ctx).expect("ctx");
    std::fs::write(
        ctx.join("Dockerfile"),
        format!("FROM {remote}\nRUN echo built > /out\n"),
    )
    .expect("Dockerfile");
    let out = rig
        .berth(dst.path())
        .args(["build", "--network", "none", "-t", "app:1"])
        .arg(&ctx)
        .output()
        .expect("berth build");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{err}{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(err.contains("Pull complete"), "{err}");
    assert_eq!(inspect_field(&rig, dst.path(), &remote, "{{.Id}}"), id);
    let ran = ok(rig.berth(dst.path()).args([
        "run",
        "--rm",
        "--network",
        "none",
        "app:1",
        "/bin/cat",
        "/out",
    ]));
    assert_eq!(ran.trim(), "built");
}

#[test]
fn concurrent_pulls_of_one_image_share_the_store() {
    let Some(rig) = Rig::start(RegistryOptions::default()) else {
        return;
    };
    let work = TempRoot::new("berth-reg-oci-").expect("dir");
    let layout = work.path().join("layout");
    let layers: Vec<Vec<(String, Vec<u8>)>> = (0..6)
        .map(|i| vec![(format!("f{i}"), vec![b'a' + i as u8; 2 << 20])])
        .collect();
    let written = oci_layout(
        &layout,
        &[ImageSpec {
            architecture: "amd64".into(),
            layers,
        }],
    );
    let remote = format!("{}/shared:1", rig.host());
    rig.skopeo_copy(
        &format!("oci:{}", layout.display()),
        &format!("docker://{remote}"),
        &[],
    );
    let dst = TempRoot::new("berth-reg-dst-").expect("root");
    let children: Vec<_> = (0..3)
        .map(|_| {
            rig.berth(dst.path())
                .args(["pull", "-q", &remote])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("pull")
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().expect("pull");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(layer_count(dst.path()), 6);
    assert_eq!(
        layer_dirs(dst.path()).len(),
        6,
        "no staged copy left behind"
    );
    assert_eq!(
        inspect_field(&rig, dst.path(), &remote, "{{.Id}}"),
        written[0].config_digest
    );
    // Every layer's files are intact.
    let top = dst.path().join("image/overlay2/layerdb/sha256");
    for e in std::fs::read_dir(top).expect("layerdb").flatten() {
        let cache = std::fs::read_to_string(e.path().join("cache-id")).expect("cache-id");
        let diff = dst.path().join("overlay2").join(cache.trim()).join("diff");
        assert_eq!(
            std::fs::read_dir(&diff).expect("diff").count(),
            1,
            "{diff:?}"
        );
    }
}

#[test]
fn docker_hub_names_go_to_the_configured_mirror() {
    let Some(rig) = Rig::start(RegistryOptions::default()) else {
        return;
    };
    let (src, id) = busybox_root(&rig, "bb:1");
    let on_mirror = format!("{}/library/mirrored:1", rig.host());
    ok(rig.berth(src.path()).args(["tag", "bb:1", &on_mirror]));
    ok(rig.berth(src.path()).args(["push", &on_mirror]));
    std::fs::write(
        rig.config_dir().join("daemon.json"),
        format!(r#"{{"registry-mirrors": ["http://{}"]}}"#, rig.host()),
    )
    .expect("daemon.json");
    let dst = TempRoot::new("berth-reg-dst-").expect("root");
    let out = ok(rig.berth(dst.path()).args(["pull", "mirrored:1"]));
    assert!(out.contains("1: Pulling from library/mirrored"), "{out}");
    assert!(
        out.trim_end().ends_with("docker.io/library/mirrored:1"),
        "{out}"
    );
    assert_eq!(inspect_field(&rig, dst.path(), "mirrored:1", "{{.Id}}"), id);
}

/// Starts a pull of `remote` into `root` and kills it (SIGKILL) once the partial download of
/// `blob` holds at least `at_least` bytes; returns how many bytes it kept.
fn kill_pull_mid_blob(
    rig: &Rig,
    root: &std::path::Path,
    remote: &str,
    blob: &str,
    at_least: u64,
) -> u64 {
    let data = root
        .join("image/overlay2/distribution/partial")
        .join(blob.trim_start_matches("sha256:"))
        .join("data");
    let size = || std::fs::metadata(&data).map(|m| m.len()).unwrap_or(0);
    let mut child = rig
        .berth(root)
        .args(["pull", remote])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("starting pull");
    let seen = berth_testkit::wait_until(std::time::Duration::from_secs(60), || size() >= at_least);
    let _ = child.kill();
    let status = child.wait().expect("waiting for the pull");
    assert!(seen, "the partial blob never reached {at_least} bytes");
    assert!(!status.success(), "the pull finished before it was killed");
    assert_eq!(layer_count(root), 0, "nothing committed by the killed pull");
    size()
}

#[test]
fn a_pull_killed_mid_blob_continues_from_the_partial_blob() {
    let Some(rig) = Rig::start(RegistryOptions::default()) else {
        return;
    };
    let work = TempRoot::new("berth-reg-oci-").expect("dir");
    let layout = work.path().join("layout");
    let written = oci_layout(
        &layout,
        &[ImageSpec {
            architecture: "amd64".into(),
            layers: vec![vec![("big".into(), noise(12 << 20, 0x5eed))]],
        }],
    );
    rig.skopeo_copy(
        &format!("oci:{}", layout.display()),
        &format!("docker://{}/partial:1", rig.host()),
        &[],
    );
    let blob = written[0].layer_digests[0].clone();
    let blob_size = std::fs::metadata(rig.registry.blob_path(&blob))
        .expect("blob")
        .len();
    // 8 MB/s: the blob takes about 1.5 s, time enough to catch it halfway.
    let proxy = throttling_proxy(rig.host(), 8 << 20);
    let remote = format!("{proxy}/partial:1");
    let partial_dir = |root: &std::path::Path| {
        root.join("image/overlay2/distribution/partial")
            .join(blob.trim_start_matches("sha256:"))
    };
    let consistent = |root: &std::path::Path| {
        assert_eq!(
            ok(rig
                .berth(root)
                .args(["image", "inspect", "--format", "{{.Id}}", &remote]))
            .trim(),
            written[0].config_digest
        );
        assert_eq!(layer_count(root), 1);
        assert_eq!(
            layer_dirs(root).len(),
            1,
            "no half-extracted directory left"
        );
        assert!(!partial_dir(root).exists(), "partial download removed");
        let diff = layer_dirs(root)[0].join("diff/big");
        assert_eq!(std::fs::metadata(diff).expect("file").len(), 12 << 20);
    };

    // Killed with part of the blob kept: the next pull asks only for the rest.
    let dst = TempRoot::new("berth-reg-dst-").expect("root");
    let kept = kill_pull_mid_blob(&rig, dst.path(), &remote, &blob, 2 << 20);
    assert!(kept < blob_size, "{kept} of {blob_size}");
    let out = ok(rig.berth(dst.path()).args(["pull", &remote]));
    assert!(out.contains("Downloaded newer image"), "{out}");
    consistent(dst.path());
    let gets = blob_gets(&rig.registry.log(), &blob);
    let last = *gets.last().expect("blob requests logged");
    assert_eq!(last, (206, blob_size - kept), "{gets:?}");
    assert_eq!(gets.iter().filter(|g| g.0 == 200).count(), 1, "{gets:?}");

    // A kept prefix that no longer matches (damaged here) is thrown away: the digest check
    // fails and the blob is downloaded again whole.
    let dst = TempRoot::new("berth-reg-dst-").expect("root");
    let kept = kill_pull_mid_blob(&rig, dst.path(), &remote, &blob, 2 << 20);
    let data = partial_dir(dst.path()).join("data");
    let mut bytes = std::fs::read(&data).expect("partial data");
    let at = kept as usize / 2;
    bytes[at] ^= 0x55;
    std::fs::write(&data, bytes).expect("damaging the partial blob");
    let out = ok(rig.berth(dst.path()).args(["pull", &remote]));
    assert!(out.contains("Downloaded newer image"), "{out}");
    consistent(dst.path());
    let gets = blob_gets(&rig.registry.log(), &blob);
    let n = gets.len();
    assert!(n >= 4, "{gets:?}");
    assert_eq!(gets[n - 2], (206, blob_size - kept), "{gets:?}");
    assert_eq!(gets[n - 1], (200, blob_size), "{gets:?}");
}

#[test]
fn a_mirror_that_lacks_the_image_or_is_down_falls_back_to_docker_hub() {
    let Some(hub) = Rig::start(RegistryOptions::default()) else {
        return;
    };
    let Some(mirror) = berth_testkit::registry::Registry::start().expect("mirror registry") else {
        return;
    };
    let (src, id) = busybox_root(&hub, "bb:1");
    // Docker Hub here is the rig's registry; the mirror is empty.
    let on_hub = format!("{}/library/hubonly:1", hub.host());
    ok(hub.berth(src.path()).args(["tag", "bb:1", &on_hub]));
    ok(hub.berth(src.path()).args(["push", &on_hub]));
    let daemon_json = |mirror: &str| {
        std::fs::write(
            hub.config_dir().join("daemon.json"),
            format!(r#"{{"registry-mirrors": ["http://{mirror}"]}}"#),
        )
        .expect("daemon.json");
    };
    let berth = |root: &std::path::Path| {
        let mut c = hub.berth(root);
        c.env(
            "BERTH_DOCKER_HUB_ENDPOINT",
            format!("http://{}", hub.host()),
        );
        c
    };
    let manifest_gets = |log: &str, status: &str| {
        log.lines()
            .filter(|l| {
                l.contains("\"GET /v2/library/hubonly/manifests/1 ")
                    && l.contains(&format!("HTTP/1.1\" {status} "))
            })
            .count()
    };

    // The mirror answers 404 for the manifest: Hub serves it.
    daemon_json(&mirror.host());
    let dst = TempRoot::new("berth-reg-dst-").expect("root");
    let out = ok(berth(dst.path()).args(["pull", "hubonly:1"]));
    assert_eq!(
        out.matches("Pulling from library/hubonly").count(),
        1,
        "{out}"
    );
    assert!(
        out.trim_end().ends_with("docker.io/library/hubonly:1"),
        "{out}"
    );
    assert_eq!(id_of(&hub, dst.path(), "hubonly:1"), id);
    assert_eq!(manifest_gets(&mirror.log(), "404"), 1, "{}", mirror.log());
    assert_eq!(manifest_gets(&hub.registry.log(), "200"), 1);

    // The mirror is down (nothing listens on its port): Hub serves it.
    let closed = berth_testkit::registry::free_port().expect("port");
    daemon_json(&format!("127.0.0.1:{closed}"));
    let dst = TempRoot::new("berth-reg-dst-").expect("root");
    ok(berth(dst.path()).args(["pull", "hubonly:1"]));
    assert_eq!(id_of(&hub, dst.path(), "hubonly:1"), id);
    assert_eq!(manifest_gets(&hub.registry.log(), "200"), 2);

    // A tag neither has: the error is Hub's.
    daemon_json(&mirror.host());
    let missing = fails(berth(dst.path()).args(["pull", "hubonly:nope"]));
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(
        err.contains("hubonly:nope") && err.contains("not found"),
        "{err}"
    );

    // Pushes go to Hub itself, never to a mirror.
    ok(berth(src.path()).args(["tag", "bb:1", "pushed:1"]));
    ok(berth(src.path()).args(["push", "pushed:1"]));
    assert!(hub
        .registry
        .log()
        .contains("\"PUT /v2/library/pushed/manifests/1 "));
    assert!(!mirror.log().contains("/v2/library/pushed/"));
}

fn id_of(rig: &Rig, root: &std::path::Path, image: &str) -> String {
    inspect_field(rig, root, image, "{{.Id}}")
}
