//! The docker CLI's `build` (classic builder, multi-step Dockerfile) and `cp` in both directions
//! through `berth system service`. Skips without the docker CLI.
mod api_common;
use api_common::{have_docker_cli, Service};

#[test]
fn build_a_multi_step_dockerfile_and_run_it() {
    if !have_docker_cli() {
        eprintln!("skipping: no docker CLI");
        return;
    }
    let s = Service::start();
    s.import_busybox("bb");
    let ctx = s.dir.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM bb\nARG WHO=world\nRUN echo built > /built.txt\nRUN echo step-output-$WHO; echo step-error >&2\nCOPY hello.txt /hello.txt\nENV GREETING=hi\nLABEL team=berth\nCMD [\"sh\", \"-c\", \"cat /built.txt /hello.txt; echo $GREETING\"]\n",
    )
    .unwrap();
    std::fs::write(ctx.join("hello.txt"), "hello from the context\n").unwrap();
    let out = s.docker_ok(&[
        "build",
        "-t",
        "built:1",
        "--build-arg",
        "WHO=you",
        ctx.to_str().unwrap(),
    ]);
    assert!(out.contains("Step 1/8 : FROM bb"), "{out}");
    // RUN output is in the stream, as Docker's classic builder shows it.
    assert!(out.contains("step-output-you"), "{out}");
    assert!(out.contains("step-error"), "{out}");
    assert!(out.contains("Successfully tagged built:1"), "{out}");
    assert_eq!(
        s.docker_ok(&["run", "--rm", "built:1"]),
        "built\nhello from the context\nhi\n"
    );
    let label = s.docker_ok(&[
        "image",
        "inspect",
        "--format",
        "{{.Config.Labels.team}}",
        "built:1",
    ]);
    assert_eq!(label.trim(), "berth");
    // A failing step is the CLI's failure, with the builder's message.
    std::fs::write(ctx.join("Dockerfile"), "FROM bb\nRUN exit 7\n").unwrap();
    let out = s.docker_out(&["build", ctx.to_str().unwrap()]);
    assert!(!out.status.success());
    // Quiet builds print the ID only.
    std::fs::write(ctx.join("Dockerfile"), "FROM bb\nENV X=1\n").unwrap();
    let id = s.docker_ok(&["build", "-q", ctx.to_str().unwrap()]);
    assert!(id.trim().starts_with("sha256:"), "{id}");
}

#[test]
fn cp_both_ways() {
    if !have_docker_cli() {
        eprintln!("skipping: no docker CLI");
        return;
    }
    let s = Service::start();
    s.import_busybox("bb");
    s.docker_ok(&["run", "-d", "--name", "box", "bb", "sleep", "60"]);
    let host = s.dir.path().join("host");
    std::fs::create_dir_all(host.join("tree/sub")).unwrap();
    std::fs::write(host.join("tree/sub/f.txt"), "deep\n").unwrap();
    std::fs::write(host.join("one.txt"), "one\n").unwrap();
    // Host → container: a file into a directory, and a whole tree.
    s.docker_ok(&["cp", host.join("one.txt").to_str().unwrap(), "box:/tmp/"]);
    s.docker_ok(&["cp", host.join("tree").to_str().unwrap(), "box:/tmp/tree"]);
    // Container → host.
    let back = s.dir.path().join("back");
    std::fs::create_dir_all(&back).unwrap();
    s.docker_ok(&[
        "cp",
        "box:/tmp/one.txt",
        back.join("one.txt").to_str().unwrap(),
    ]);
    s.docker_ok(&["cp", "box:/tmp/tree", back.join("tree").to_str().unwrap()]);
    assert_eq!(
        std::fs::read_to_string(back.join("one.txt")).unwrap(),
        "one\n"
    );
    assert_eq!(
        std::fs::read_to_string(back.join("tree/sub/f.txt")).unwrap(),
        "deep\n"
    );
    s.docker_ok(&["cp", "box:/etc/passwd", back.to_str().unwrap()]);
    assert!(std::fs::read_to_string(back.join("passwd"))
        .unwrap()
        .starts_with("root:"));
    // A missing path is Docker's not-found.
    let out = s.docker_out(&["cp", "box:/no/such/file", back.to_str().unwrap()]);
    assert!(!out.status.success());
    // Stopped containers copy too.
    s.docker_ok(&["stop", "-t", "0", "box"]);
    s.docker_ok(&[
        "cp",
        "box:/tmp/one.txt",
        back.join("again.txt").to_str().unwrap(),
    ]);
    assert_eq!(
        std::fs::read_to_string(back.join("again.txt")).unwrap(),
        "one\n"
    );
}
