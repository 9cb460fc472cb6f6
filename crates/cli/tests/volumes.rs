//! Volumes through the built `berth`: `volume create|ls|inspect|rm|prune` in Docker's shapes,
//! named and anonymous volumes in containers (from `-v` and the image's `VOLUME`, populated
//! from the image on first use), `rm -v` and `run --rm` taking anonymous volumes along,
//! `--volumes-from`, a volume in use refusing removal, and a bind volume from `-o`.
mod container_common;
use container_common::*;

/// `busybox:latest` committed with `VOLUME /srv` and a file in /srv.
fn image_with_volume(env: &Env) {
    let id = env.ok(&["create", "--name", "seed", "busybox", "sh"]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("srv")).unwrap();
    std::fs::write(dir.path().join("srv/file"), "from the image\n").unwrap();
    env.ok(&[
        "cp",
        dir.path().join("srv").to_str().unwrap(),
        &format!("{id}:/"),
    ]);
    env.ok(&[
        "commit",
        "-c",
        "VOLUME [\"/srv\"]",
        "seed",
        "withvol:latest",
    ]);
    env.ok(&["rm", "seed"]);
}

#[test]
fn volume_verbs_follow_docker() {
    let env = Env::new("vol-verbs");
    assert_eq!(env.ok(&["volume", "create", "data"]), "data");
    assert_eq!(
        env.ok(&["volume", "create", "--label", "tier=db", "tagged"]),
        "tagged"
    );
    let table = env.ok(&["volume", "ls"]);
    assert_eq!(
        table,
        "DRIVER    VOLUME NAME\nlocal     data\nlocal     tagged"
    );
    assert_eq!(env.ok(&["volume", "ls", "-q"]), "data\ntagged");
    assert_eq!(
        env.ok(&["volume", "ls", "-q", "-f", "label=tier=db"]),
        "tagged"
    );
    assert_eq!(
        env.ok(&["volume", "ls", "--format", "{{.Name}}:{{.Driver}}"]),
        "data:local\ntagged:local"
    );
    let doc: serde_json::Value =
        serde_json::from_str(&env.ok(&["volume", "inspect", "data"])).unwrap();
    for key in [
        "CreatedAt",
        "Driver",
        "Labels",
        "Mountpoint",
        "Name",
        "Options",
        "Scope",
    ] {
        assert!(doc[0].get(key).is_some(), "inspect lacks {key}: {doc}");
    }
    let mountpoint = env.path().join("volumes/data/_data");
    assert_eq!(doc[0]["Mountpoint"], mountpoint.to_str().unwrap());
    assert!(env.path().join("volumes/data/metadata.json").is_file());

    // Bad input: clear errors, non-zero exit, nothing made.
    let out = env.berth(&["volume", "create", "x/y"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("includes invalid characters"),
        "{}",
        stderr(&out)
    );
    let out = env.berth(&["volume", "create", "-o", "colour=red", "odd"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("invalid option"), "{}", stderr(&out));
    let out = env.berth(&["volume", "inspect", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no such volume"), "{}", stderr(&out));
    assert_eq!(env.ok(&["volume", "ls", "-q"]), "data\ntagged");

    // In use: refused, naming the container; dangling=false lists it.
    let cid = env.ok(&["create", "-v", "data:/data", "busybox", "true"]);
    let out = env.berth(&["volume", "rm", "data"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("volume is in use"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains(&cid), "{}", stderr(&out));
    assert_eq!(
        env.ok(&["volume", "ls", "-q", "-f", "dangling=false"]),
        "data"
    );
    assert_eq!(
        env.ok(&["volume", "ls", "-q", "-f", "dangling=true"]),
        "tagged"
    );
    // `rm -v` keeps named volumes.
    env.ok(&["rm", "-v", &cid]);
    assert!(mountpoint.is_dir());

    // prune without -a keeps named volumes; -a removes the unused ones.
    let out = env.ok(&["volume", "prune", "-f"]);
    assert_eq!(out, "Total reclaimed space: 0B");
    let out = env.ok(&["volume", "prune", "-a", "-f"]);
    assert!(out.starts_with("Deleted Volumes:\n"), "{out}");
    assert!(out.contains("data") && out.contains("tagged"), "{out}");
    assert_eq!(env.ok(&["volume", "ls", "-q"]), "");
    let out = env.berth(&["volume", "rm", "data"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        env.berth(&["volume", "rm", "-f", "data"]).status.code(),
        Some(0)
    );
}

#[test]
fn containers_get_named_and_anonymous_volumes() {
    let env = Env::new("vol-ctr");
    image_with_volume(&env);

    // The image's VOLUME becomes an anonymous volume holding the image's content there.
    let out = env.ok(&[
        "run",
        "--name",
        "first",
        "withvol",
        "sh",
        "-c",
        "ls /srv; echo added > /srv/new",
    ]);
    assert_eq!(out, "file");
    let mounts: serde_json::Value =
        serde_json::from_str(&env.inspect("first", "{{json .Mounts}}")).unwrap();
    assert_eq!(mounts[0]["Type"], "volume", "{mounts}");
    assert_eq!(mounts[0]["Destination"], "/srv");
    let anon = mounts[0]["Name"].as_str().unwrap().to_string();
    assert_eq!(anon.len(), 64);
    let data = env.path().join("volumes").join(&anon).join("_data");
    assert_eq!(
        std::fs::read_to_string(data.join("new")).unwrap(),
        "added\n"
    );
    let labels = env.ok(&["volume", "inspect", "-f", "{{json .Labels}}", &anon]);
    assert!(labels.contains("com.docker.volume.anonymous"), "{labels}");

    // --volumes-from shares it.
    assert_eq!(
        env.ok(&[
            "run",
            "--rm",
            "--volumes-from",
            "first",
            "busybox",
            "cat",
            "/srv/new"
        ]),
        "added"
    );
    // rm -v takes the anonymous volume along.
    env.ok(&["rm", "-v", "first"]);
    assert!(!data.exists());

    // run --rm with `-v /path` leaves no volume behind.
    env.ok(&[
        "run",
        "--rm",
        "-v",
        "/scratch",
        "busybox",
        "touch",
        "/scratch/x",
    ]);
    assert_eq!(env.ok(&["volume", "ls", "-q"]), "");

    // A named volume persists between containers and is created on first use.
    env.ok(&[
        "run",
        "--rm",
        "-v",
        "keep:/k",
        "busybox",
        "sh",
        "-c",
        "echo 1 > /k/f",
    ]);
    assert_eq!(
        env.ok(&["run", "--rm", "-v", "keep:/k:ro", "busybox", "cat", "/k/f"]),
        "1"
    );
    let out = env.berth(&[
        "run",
        "--rm",
        "-v",
        "keep:/k:ro",
        "busybox",
        "touch",
        "/k/g",
    ]);
    assert_ne!(out.status.code(), Some(0));
    env.ok(&["volume", "rm", "keep"]);
}

#[test]
fn bind_and_tmpfs_volumes_from_driver_options() {
    let env = Env::new("vol-opts");
    let host_dir = tempfile::tempdir().unwrap();
    let device = format!("device={}", host_dir.path().display());
    env.ok(&[
        "volume",
        "create",
        "-o",
        "type=none",
        "-o",
        &device,
        "-o",
        "o=bind",
        "bound",
    ]);
    env.ok(&[
        "volume",
        "create",
        "-o",
        "type=tmpfs",
        "-o",
        "device=tmpfs",
        "-o",
        "o=size=1m",
        "scratch",
    ]);
    env.ok(&[
        "run",
        "--rm",
        "-v",
        "bound:/b",
        "-v",
        "scratch:/t",
        "busybox",
        "sh",
        "-c",
        "echo hi > /b/f && grep -q ' /t tmpfs' /proc/mounts",
    ]);
    assert_eq!(
        std::fs::read_to_string(host_dir.path().join("f")).unwrap(),
        "hi\n"
    );
    env.ok(&["volume", "rm", "bound", "scratch"]);
    assert!(env.mounts_below().is_empty(), "{:?}", env.mounts_below());
    // The host directory itself is left alone.
    assert!(host_dir.path().join("f").exists());
}
