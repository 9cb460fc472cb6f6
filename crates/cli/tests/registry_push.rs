//! `berth push` against Debian's `docker-registry`: what Berth pushes, skopeo and Docker pull
//! with the same manifest digest and image ID; layers already there are skipped, layers in
//! another repository are cross-mounted, large layers go up in chunks; `-a` pushes every tag;
//! foreign layers are pulled from their URLs (else from the registry, as Docker does) and never
//! pushed.
mod registry_common;
use berth_testkit::registry::RegistryOptions;
use berth_testkit::TempRoot;
use registry_common::*;

/// The digest from Docker's `<tag>: digest: sha256:… size: N` line.
fn pushed_digest(out: &str, tag: &str) -> String {
    let line = out
        .lines()
        .find(|l| l.starts_with(&format!("{tag}: digest: ")))
        .unwrap_or_else(|| panic!("no digest line for {tag} in {out}"));
    line.split_whitespace()
        .nth(2)
        .unwrap_or_default()
        .to_string()
}

#[test]
fn pushed_by_berth_pulls_in_skopeo_and_docker_with_the_same_digest() {
    let Some(rig) = Rig::start(RegistryOptions::default()) else {
        return;
    };
    let (src, id) = busybox_root(&rig, "bb:1");
    let remote = format!("{}/bb:1", rig.host());
    ok(rig.berth(src.path()).args(["tag", "bb:1", &remote]));
    let out = ok(rig.berth(src.path()).args(["push", &remote]));
    assert!(
        out.contains(&format!(
            "The push refers to repository [{}/bb]",
            rig.host()
        )),
        "{out}"
    );
    assert!(out.contains(": Pushed"), "{out}");
    let digest = pushed_digest(&out, "1");
    assert_eq!(
        rig.skopeo_digest(&format!("docker://{remote}"), &[]),
        digest
    );
    // skopeo verifies every blob it copies.
    let oci = src.path().join("copied");
    rig.skopeo_copy(
        &format!("docker://{remote}"),
        &format!("oci:{}", oci.display()),
        &[],
    );
    // The RepoDigest is recorded locally, as Docker does after a push.
    let digests = ok(rig.berth(src.path()).args([
        "image",
        "inspect",
        "--format",
        "{{json .RepoDigests}}",
        "bb:1",
    ]));
    assert!(digests.contains(&digest), "{digests}");

    let again = ok(rig.berth(src.path()).args(["push", &remote]));
    assert!(again.contains("Layer already exists"), "{again}");
    assert_eq!(pushed_digest(&again, "1"), digest);

    if let Some(dockerd) = berth_testkit::dockerd::Dockerd::start().expect("dockerd") {
        let pulled = ok(dockerd.docker().args(["pull", &remote]));
        assert!(pulled.contains(&format!("Digest: {digest}")), "{pulled}");
        let docker_id = ok(dockerd
            .docker()
            .args(["image", "inspect", "--format", "{{.Id}}", &remote]));
        assert_eq!(docker_id.trim(), id);
    }
}

#[test]
fn push_uploads_in_chunks_mounts_across_repositories_and_pushes_all_tags() {
    let Some(rig) = Rig::start(RegistryOptions::default()) else {
        return;
    };
    let work = TempRoot::new("berth-reg-oci-").expect("dir");
    let layout = work.path().join("layout");
    let mut noise = vec![0u8; 20 << 20];
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
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
                vec![("noise".into(), noise)],
                vec![("small".into(), b"small".to_vec())],
            ],
        }],
    );
    let a = format!("{}/a:1", rig.host());
    rig.skopeo_copy(
        &format!("oci:{}", layout.display()),
        &format!("docker://{a}"),
        &[],
    );
    let root = TempRoot::new("berth-reg-push-").expect("root");
    ok(rig.berth(root.path()).args(["pull", &a]));
    // Forget where the blobs came from: the push must upload (and compress) them itself.
    std::fs::remove_dir_all(root.path().join("image/overlay2/distribution")).expect("rm");
    let b1 = format!("{}/b:1", rig.host());
    let b2 = format!("{}/b:2", rig.host());
    ok(rig.berth(root.path()).args(["tag", &a, &b1]));
    ok(rig.berth(root.path()).args(["tag", &a, &b2]));
    let out = ok(rig
        .berth(root.path())
        .args(["push", "-a", &format!("{}/b", rig.host())]));
    let d1 = pushed_digest(&out, "1");
    let d2 = pushed_digest(&out, "2");
    assert_eq!(d1, d2, "same image, same manifest");
    assert_eq!(out.matches(": Pushed").count(), 2, "{out}");
    assert_eq!(out.matches("Layer already exists").count(), 2, "{out}");
    let patches = rig
        .registry
        .log()
        .lines()
        .filter(|l| l.contains("PATCH") && l.contains("/v2/b/blobs/uploads/"))
        .count();
    assert!(patches >= 2, "the 20 MiB layer went up in several chunks");

    let c = format!("{}/c:1", rig.host());
    ok(rig.berth(root.path()).args(["tag", &a, &c]));
    let out = ok(rig.berth(root.path()).args(["push", &c]));
    assert_eq!(out.matches("Mounted from b").count(), 2, "{out}");
    assert_eq!(pushed_digest(&out, "1"), d1);

    // What Berth pushed pulls back into a fresh root as the same image.
    let fresh = TempRoot::new("berth-reg-fresh-").expect("root");
    ok(rig.berth(fresh.path()).args(["pull", &c]));
    let id = ok(rig
        .berth(fresh.path())
        .args(["image", "inspect", "--format", "{{.Id}}", &c]));
    assert_eq!(id.trim(), written[0].config_digest);

    let missing = fails(
        rig.berth(root.path())
            .args(["push", &format!("{}/nope:1", rig.host())]),
    );
    assert!(String::from_utf8_lossy(&missing.stderr).contains("nope"));
}

#[test]
fn foreign_layers_come_from_their_urls_and_are_not_pushed() {
    let Some(rig) = Rig::start(RegistryOptions::default()) else {
        return;
    };
    let host = rig.host();
    let (base_gz, base_diff) = gzip_layer(&[("base", b"in the registry")]);
    let (foreign_gz, foreign_diff) = gzip_layer(&[("foreign", b"from elsewhere")]);
    let foreign = sha256(&foreign_gz);
    let (addr, served) = serve_file(foreign_gz.clone());
    let url = format!(
        "http://{addr}/layers/{}",
        foreign.trim_start_matches("sha256:")
    );
    let base = upload_blob(&host, "mixed", &base_gz);
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux", "config": {},
        "rootfs": {"type": "layers", "diff_ids": [base_diff, foreign_diff]}
    }))
    .expect("config");
    let config_digest = upload_blob(&host, "mixed", &config);
    let manifest = |manifest_type: &str, config_type: &str, base_type: &str, foreign_type: &str| {
        serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2, "mediaType": manifest_type,
            "config": {"mediaType": config_type, "digest": config_digest, "size": config.len()},
            "layers": [
                {"mediaType": base_type, "digest": base, "size": base_gz.len()},
                {"mediaType": foreign_type, "digest": foreign, "size": foreign_gz.len(),
                 "urls": [url]}
            ]
        }))
        .expect("manifest")
    };
    let docker = manifest(
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.container.image.v1+json",
        "application/vnd.docker.image.rootfs.diff.tar.gzip",
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    );
    put_manifest(
        &host,
        "mixed",
        "docker",
        "application/vnd.docker.distribution.manifest.v2+json",
        &docker,
    );
    let oci = manifest(
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.config.v1+json",
        "application/vnd.oci.image.layer.v1.tar+gzip",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    );
    put_manifest(
        &host,
        "mixed",
        "oci",
        "application/vnd.oci.image.manifest.v1+json",
        &oci,
    );
    let id_of = |root: &std::path::Path, image: &str| {
        ok(rig
            .berth(root)
            .args(["image", "inspect", "--format", "{{.Id}}", image]))
        .trim()
        .to_string()
    };

    // Pulled from its URL, never asked of the registry (which does not have it).
    for (tag, n) in [("docker", 1), ("oci", 2)] {
        let dst = TempRoot::new("berth-reg-dst-").expect("root");
        let remote = format!("{host}/mixed:{tag}");
        ok(rig.berth(dst.path()).args(["pull", &remote]));
        assert_eq!(id_of(dst.path(), &remote), config_digest);
        assert_eq!(served.lock().expect("log").len(), n);
    }
    assert!(blob_gets(&rig.registry.log(), &foreign).is_empty());

    // Pushed elsewhere: the manifest names it with its URL, the blob is not uploaded.
    let src = TempRoot::new("berth-reg-src-").expect("root");
    let remote = format!("{host}/mixed:docker");
    ok(rig.berth(src.path()).args(["pull", &remote]));
    let descriptors = std::fs::read_dir(src.path().join("image/overlay2/layerdb/sha256"))
        .expect("layerdb")
        .flatten()
        .filter(|e| e.path().join("descriptor.json").is_file())
        .count();
    assert_eq!(
        descriptors, 1,
        "Docker's descriptor.json for the foreign layer"
    );
    let copy = format!("{host}/copy:1");
    ok(rig.berth(src.path()).args(["tag", &remote, &copy]));
    let out = ok(rig.berth(src.path()).args(["push", &copy]));
    assert!(out.contains("Skipped foreign layer"), "{out}");
    assert!(
        !rig.registry.blob_path(&foreign).exists(),
        "foreign blob uploaded"
    );
    let pushed: serde_json::Value =
        serde_json::from_slice(&get_manifest(&host, "copy", "1")).expect("manifest json");
    let layer = &pushed["layers"][1];
    assert_eq!(
        layer["mediaType"],
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
    );
    assert_eq!(layer["digest"], foreign.as_str());
    assert_eq!(layer["urls"][0], url.as_str());
    let fresh = TempRoot::new("berth-reg-dst-").expect("root");
    ok(rig.berth(fresh.path()).args(["pull", &copy]));
    assert_eq!(id_of(fresh.path(), &copy), config_digest);
    assert_eq!(served.lock().expect("log").len(), 4);
}

#[test]
fn a_foreign_layer_whose_urls_fail_comes_from_the_registry_or_is_named() {
    let Some(rig) = Rig::start(RegistryOptions::default()) else {
        return;
    };
    let host = rig.host();
    let (base_gz, base_diff) = gzip_layer(&[("base", b"in the registry")]);
    let (foreign_gz, foreign_diff) = gzip_layer(&[("foreign", b"its URLs are gone")]);
    let foreign = sha256(&foreign_gz);
    let hex = foreign.trim_start_matches("sha256:");
    // Nothing listens on port 9; the registry answers 404 for a path it does not serve.
    let urls = [
        format!("http://127.0.0.1:9/layers/{hex}"),
        format!("http://{host}/elsewhere/{hex}"),
    ];
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux", "config": {},
        "rootfs": {"type": "layers", "diff_ids": [base_diff, foreign_diff]}
    }))
    .expect("config");
    let manifest = |config_digest: &str, base: &str| {
        serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                       "digest": config_digest, "size": config.len()},
            "layers": [
                {"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                 "digest": base, "size": base_gz.len()},
                {"mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
                 "digest": foreign, "size": foreign_gz.len(), "urls": urls}
            ]
        }))
        .expect("manifest")
    };
    let schema2 = "application/vnd.docker.distribution.manifest.v2+json";
    // `kept`: the registry has the blob after all (Docker falls back to it).
    let base = upload_blob(&host, "kept", &base_gz);
    let config_digest = upload_blob(&host, "kept", &config);
    upload_blob(&host, "kept", &foreign_gz);
    put_manifest(
        &host,
        "kept",
        "1",
        schema2,
        &manifest(&config_digest, &base),
    );
    // `lost`: nobody has it.
    upload_blob(&host, "lost", &base_gz);
    upload_blob(&host, "lost", &config);
    put_manifest(
        &host,
        "lost",
        "1",
        schema2,
        &manifest(&config_digest, &base),
    );

    let root = TempRoot::new("berth-reg-dst-").expect("root");
    let kept = format!("{host}/kept:1");
    ok(rig.berth(root.path()).args(["pull", &kept]));
    let id = ok(rig
        .berth(root.path())
        .args(["image", "inspect", "--format", "{{.Id}}", &kept]));
    assert_eq!(id.trim(), config_digest);
    let log = rig.registry.log();
    assert!(
        log.contains(&format!("/elsewhere/{hex}")),
        "the reachable URL was tried first: {log}"
    );
    assert_eq!(
        blob_gets(&log, &foreign)
            .iter()
            .filter(|(status, _)| *status == 200)
            .count(),
        1,
        "then the registry served it: {log}"
    );

    let empty = TempRoot::new("berth-reg-dst-").expect("root");
    let lost = format!("{host}/lost:1");
    let out = fails(rig.berth(empty.path()).args(["pull", &lost]));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&foreign) && err.contains("lost"),
        "the error names the repository and the layer: {err}"
    );
    assert_eq!(layer_count(empty.path()), 0, "no layer committed");
    assert!(layer_dirs(empty.path()).is_empty(), "no layer left staged");
    let images = ok(rig.berth(empty.path()).args(["images", "-q"]));
    assert!(images.trim().is_empty(), "no image or tag: {images}");
}
