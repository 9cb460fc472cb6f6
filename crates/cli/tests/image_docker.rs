//! Berth against a private dockerd: an image Docker built (classic builder) loads into Berth with
//! Docker's image ID, DiffIDs, ChainID layout and overlay whiteouts; Berth's `save` loads back into
//! Docker with the same ID; skopeo's OCI archives load into Berth. Skips when dockerd is missing.
mod cli_common;
use berth_testkit::dockerd::Dockerd;
use cli_common::{berth, run_ok};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use std::process::Command;

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn chain_id(parent: &str, diff: &str) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("printf '%s' '{parent} {diff}' | sha256sum"))
        .output()
        .unwrap();
    format!(
        "sha256:{}",
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .next()
            .unwrap()
    )
}

#[test]
fn docker_built_image_round_trips_through_berth() {
    let Some(docker) = Dockerd::start().expect("starting dockerd") else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let rootfs = work.path().join("rootfs.tar");
    berth_testkit::busybox_rootfs_tar(&rootfs).unwrap();
    run_ok(docker.docker().arg("import").arg(&rootfs).arg("bb:latest"));
    let ctx = work.path().join("ctx");
    std::fs::create_dir(&ctx).unwrap();
    // Docker bind-mounts /etc/hostname during RUN, so the whiteout is made for /etc/group.
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM bb\nRUN echo hi > /newfile && rm /etc/group\nENV X=1\nCMD [\"sh\"]\n",
    )
    .unwrap();
    run_ok(docker.docker().args(["build", "-q", "-t", "bb2"]).arg(&ctx));
    let docker_id = run_ok(
        docker
            .docker()
            .args(["image", "inspect", "-f", "{{.Id}}", "bb2"]),
    );
    let docker_id = docker_id.trim();
    let docker_layers =
        run_ok(
            docker
                .docker()
                .args(["image", "inspect", "-f", "{{json .RootFS.Layers}}", "bb2"]),
        );
    let archive = work.path().join("bb2.tar");
    run_ok(
        docker
            .docker()
            .args(["save", "-o"])
            .arg(&archive)
            .arg("bb2"),
    );

    let root = berth_testkit::TempRoot::new("berth-img-").unwrap();
    let out = run_ok(berth(root.path()).args(["load", "-i"]).arg(&archive));
    assert_eq!(out.trim(), "Loaded image: bb2:latest");
    let inspect = run_ok(berth(root.path()).args(["image", "inspect", "bb2"]));
    let doc: serde_json::Value = serde_json::from_str(&inspect).unwrap();
    assert_eq!(doc[0]["Id"], docker_id, "same image ID as Docker");
    let layers: Vec<String> = serde_json::from_str(docker_layers.trim()).unwrap();
    let ours: Vec<String> = serde_json::from_value(doc[0]["RootFS"]["Layers"].clone()).unwrap();
    assert_eq!(ours, layers, "same DiffIDs");
    assert_eq!(layers.len(), 2);
    let docker_size = run_ok(
        docker
            .docker()
            .args(["image", "inspect", "-f", "{{.Size}}", "bb2"]),
    );
    assert_eq!(
        doc[0]["Size"].to_string(),
        docker_size.trim(),
        "same Size as Docker"
    );

    // ChainID directories, parent file, lower file, the whiteout.
    let layerdb = root.path().join("image/overlay2/layerdb/sha256");
    let top_chain = chain_id(&layers[0], &layers[1]);
    let top = layerdb.join(top_chain.trim_start_matches("sha256:"));
    assert_eq!(read(&top.join("parent")), layers[0]);
    assert_eq!(read(&top.join("diff")), layers[1]);
    let top_dir = root
        .path()
        .join("overlay2")
        .join(read(&top.join("cache-id")));
    let bottom = layerdb.join(layers[0].trim_start_matches("sha256:"));
    let bottom_dir = root
        .path()
        .join("overlay2")
        .join(read(&bottom.join("cache-id")));
    assert_eq!(
        read(&top_dir.join("lower")),
        format!("l/{}", read(&bottom_dir.join("link")))
    );
    let wh = std::fs::symlink_metadata(top_dir.join("diff/etc/group")).unwrap();
    assert!(
        wh.file_type().is_char_device(),
        "overlay whiteout for /etc/group"
    );
    assert_eq!(wh.rdev(), 0);
    assert_eq!(read(&top_dir.join("diff/newfile")).trim(), "hi");

    // history: as many rows as Docker's.
    let theirs = run_ok(docker.docker().args(["history", "-q", "bb2"]));
    let ours = run_ok(berth(root.path()).args(["history", "-q", "bb2"]));
    assert_eq!(ours.lines().count(), theirs.lines().count());
    let table = run_ok(berth(root.path()).args(["history", "bb2"]));
    assert!(table.contains("/bin/sh -c #(nop)  CMD [\"sh\"]"), "{table}");

    // berth save loads into Docker with the same ID.
    let saved = work.path().join("berth-save.tar");
    run_ok(
        berth(root.path())
            .args(["save", "-o"])
            .arg(&saved)
            .arg("bb2"),
    );
    run_ok(docker.docker().args(["rmi", "bb2"]));
    let loaded = run_ok(docker.docker().args(["load", "-i"]).arg(&saved));
    assert!(loaded.contains("Loaded image: bb2:latest"), "{loaded}");
    let again = run_ok(
        docker
            .docker()
            .args(["image", "inspect", "-f", "{{.Id}}", "bb2"]),
    );
    assert_eq!(again.trim(), docker_id);

    // The same layer at two positions: Docker's save writes the second as a symlink; Berth
    // needs two cache dirs (two ChainIDs) and must rebuild both byte for byte.
    let ctx2 = work.path().join("ctx2");
    std::fs::create_dir(&ctx2).unwrap();
    let same = "RUN mkdir -p /d && echo a > /d/f && touch -d @0 /d/f /d";
    std::fs::write(
        ctx2.join("Dockerfile"),
        format!("FROM bb\n{same}\nRUN echo b > /y\n{same}\n"),
    )
    .unwrap();
    run_ok(
        docker
            .docker()
            .args(["build", "-q", "-t", "dup"])
            .arg(&ctx2),
    );
    let dup_id = run_ok(
        docker
            .docker()
            .args(["image", "inspect", "-f", "{{.Id}}", "dup"]),
    );
    let dup_tar = work.path().join("dup.tar");
    run_ok(
        docker
            .docker()
            .args(["save", "-o"])
            .arg(&dup_tar)
            .arg("dup"),
    );
    let r4 = berth_testkit::TempRoot::new("berth-img-").unwrap();
    run_ok(berth(r4.path()).args(["load", "-i"]).arg(&dup_tar));
    let got = run_ok(berth(r4.path()).args(["image", "inspect", "-f", "{{.Id}}", "dup"]));
    assert_eq!(got.trim(), dup_id.trim());
    let layers_dup =
        run_ok(berth(r4.path()).args(["image", "inspect", "-f", "{{json .RootFS.Layers}}", "dup"]));
    let layers_dup: Vec<String> = serde_json::from_str(layers_dup.trim()).unwrap();
    assert_eq!(layers_dup.len(), 4);
    assert_eq!(
        layers_dup[1], layers_dup[3],
        "the test image repeats a layer"
    );
    assert_eq!(
        std::fs::read_dir(r4.path().join("image/overlay2/layerdb/sha256"))
            .unwrap()
            .count(),
        4
    );
    let dup_saved = work.path().join("dup-berth.tar");
    run_ok(
        berth(r4.path())
            .args(["save", "-o"])
            .arg(&dup_saved)
            .arg("dup"),
    );
    run_ok(docker.docker().args(["rmi", "dup"]));
    run_ok(docker.docker().args(["load", "-i"]).arg(&dup_saved));
    let again = run_ok(
        docker
            .docker()
            .args(["image", "inspect", "-f", "{{.Id}}", "dup"]),
    );
    assert_eq!(again.trim(), dup_id.trim());

    // skopeo: OCI archive (gzip layers) and an OCI layout directory with zstd layers.
    if berth_testkit::have("skopeo") {
        let oci = work.path().join("bb2.oci.tar");
        run_ok(
            Command::new("skopeo")
                .arg("copy")
                .arg(format!("docker-archive:{}", archive.display()))
                .arg(format!("oci-archive:{}:bb2:oci", oci.display())),
        );
        let r2 = berth_testkit::TempRoot::new("berth-img-").unwrap();
        let out = run_ok(berth(r2.path()).args(["load", "-i"]).arg(&oci));
        assert_eq!(out.trim(), "Loaded image: bb2:oci");
        let diff_ids = run_ok(berth(r2.path()).args([
            "image",
            "inspect",
            "-f",
            "{{json .RootFS.Layers}}",
            "bb2:oci",
        ]));
        let diff_ids: Vec<String> = serde_json::from_str(diff_ids.trim()).unwrap();
        assert_eq!(diff_ids, layers);
        // The gzip'd blobs are remembered against their DiffIDs, as Docker's distribution metadata.
        let by_digest = r2
            .path()
            .join("image/overlay2/distribution/diffid-by-digest/sha256");
        let recorded: Vec<String> = std::fs::read_dir(&by_digest)
            .unwrap()
            .flatten()
            .map(|e| read(&e.path()))
            .collect();
        for l in &layers {
            assert!(recorded.contains(l), "{l} not in {recorded:?}");
        }

        let dir = work.path().join("ocidir");
        run_ok(
            Command::new("skopeo")
                .args(["copy", "--dest-compress", "--dest-compress-format", "zstd"])
                .arg(format!("docker-archive:{}", archive.display()))
                .arg(format!("oci:{}:bb2", dir.display())),
        );
        let tarred = work.path().join("ocidir.tar");
        run_ok(
            Command::new("tar")
                .arg("-C")
                .arg(&dir)
                .arg("-cf")
                .arg(&tarred)
                .arg("."),
        );
        let r3 = berth_testkit::TempRoot::new("berth-img-").unwrap();
        let out = run_ok(berth(r3.path()).args(["load", "-i"]).arg(&tarred));
        assert!(out.starts_with("Loaded image ID: sha256:"), "{out}");
    } else {
        eprintln!("note: skopeo not installed; skipping the OCI archive part");
    }
}
