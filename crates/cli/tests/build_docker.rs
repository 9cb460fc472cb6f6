//! `berth build` against a private dockerd's classic builder (`DOCKER_BUILDKIT=0`) on the same
//! context and the same busybox base: the same number of layers, the same history rows, and the
//! same `created_by` text (COPY/ADD content hashes masked: Docker's are tarsum-style digests of
//! its own). Skips with a note when dockerd is missing.
mod cli_common;
use berth_testkit::dockerd::Dockerd;
use berth_testkit::TempRoot;
use cli_common::{berth, run_ok};

/// `file:<hex>` / `dir:<hex>` / `multi:<hex>` → `file:#`.
fn mask(line: &str) -> String {
    let mut out = String::new();
    for (i, word) in line.split(' ').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let mut masked = word.to_string();
        for prefix in ["file:", "dir:", "multi:"] {
            if let Some(at) = word.find(prefix) {
                let hex = &word[at + prefix.len()..];
                if hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit()) {
                    masked = format!("{}{prefix}#", &word[..at]);
                }
            }
        }
        out.push_str(&masked);
    }
    out
}

const DOCKERFILE: &str = r#"FROM bb
ARG VER=1
ENV APP=/app GREETING="hi there"
LABEL a=b c="d e"
WORKDIR $APP
COPY a.txt .
COPY . /ctx/
RUN echo $VER $GREETING > out.txt && rm a.txt
ADD sub /sub2
WORKDIR /tmp
RUN true
EXPOSE 80 443/udp
VOLUME /data
USER tester
STOPSIGNAL SIGTERM
SHELL ["/bin/sh", "-xc"]
RUN echo shell
ONBUILD RUN echo onbuild
MAINTAINER me
ENTRYPOINT ["/bin/sh"]
CMD ["-c", "cat /app/out.txt"]
"#;

#[test]
fn same_layers_and_history_as_docker_classic_builder() {
    let Some(docker) = Dockerd::start().expect("starting dockerd") else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let base = work.path().join("bb.tar");
    berth_testkit::busybox_rootfs_tar(&base).unwrap();
    let ctx = work.path().join("ctx");
    std::fs::create_dir_all(ctx.join("sub")).unwrap();
    std::fs::write(ctx.join("Dockerfile"), DOCKERFILE).unwrap();
    std::fs::write(ctx.join("a.txt"), "hello\n").unwrap();
    std::fs::write(ctx.join("sub/b.txt"), "b\n").unwrap();
    std::fs::write(ctx.join("skip.log"), "secret\n").unwrap();
    std::fs::write(ctx.join(".dockerignore"), "*.log\n").unwrap();

    run_ok(docker.docker().arg("import").arg(&base).arg("bb"));
    run_ok(
        docker
            .docker()
            .args(["build", "-t", "cmp", "--build-arg", "VER=2"])
            .arg(&ctx),
    );
    let docker_history = run_ok(docker.docker().args([
        "history",
        "--no-trunc",
        "--format",
        "{{.CreatedBy}}",
        "cmp",
    ]));
    let docker_layers = run_ok(docker.docker().args([
        "image",
        "inspect",
        "--format",
        "{{len .RootFS.Layers}}",
        "cmp",
    ]));

    let root = TempRoot::new("berth-build-docker-").unwrap();
    run_ok(berth(root.path()).arg("import").arg(&base).arg("bb"));
    run_ok(
        berth(root.path())
            .args(["build", "-t", "cmp", "--build-arg", "VER=2"])
            .arg(&ctx),
    );
    let berth_history = run_ok(berth(root.path()).args([
        "history",
        "--no-trunc",
        "--format",
        "{{.CreatedBy}}",
        "cmp",
    ]));
    let inspect = run_ok(berth(root.path()).args(["image", "inspect", "cmp"]));
    let json: serde_json::Value = serde_json::from_str(&inspect).unwrap();
    let berth_layers = json[0]["RootFS"]["Layers"].as_array().map_or(0, Vec::len);

    let docker_rows: Vec<String> = docker_history.lines().map(mask).collect();
    let berth_rows: Vec<String> = berth_history.lines().map(mask).collect();
    assert_eq!(berth_rows, docker_rows, "history differs");
    assert_eq!(
        berth_layers.to_string(),
        docker_layers.trim(),
        "layer count differs"
    );
    // Both images run the same way.
    let theirs = run_ok(
        docker
            .docker()
            .args(["run", "--rm", "--network", "none", "cmp"]),
    );
    let ours = run_ok(berth(root.path()).args(["run", "--rm", "cmp"]));
    assert_eq!(ours, theirs);
    assert_eq!(ours, "2 hi there\n");
}
