//! Containers and images meeting: `commit` makes an image with the change and one more history
//! row, `export` tars the root, `cp` copies both ways, the built-in `hello` image runs with no
//! network, and `ns` shows namespaces shared through `--pid container:X`.
mod container_common;
use container_common::*;

#[test]
fn commit_adds_a_layer_and_a_history_row() {
    let env = Env::new("commit");
    env.ok(&[
        "run",
        "--name",
        "maker",
        "busybox",
        "sh",
        "-c",
        "echo data > /newfile",
    ]);
    let before = env.ok(&["history", "-q", "busybox"]).lines().count();
    let id = env.ok(&[
        "commit",
        "-m",
        "add newfile",
        "-c",
        "ENV FOO=bar",
        "maker",
        "made:v1",
    ]);
    assert!(id.starts_with("sha256:"), "{id}");
    let history = env.ok(&["history", "made:v1"]);
    assert_eq!(history.lines().count() - 1, before + 1, "{history}");
    assert!(history.contains("add newfile"));
    assert_eq!(
        env.ok(&[
            "run",
            "--rm",
            "made:v1",
            "sh",
            "-c",
            "cat /newfile; echo $FOO"
        ]),
        "data\nbar"
    );
    env.ok(&["rm", "maker"]);
}

#[test]
fn export_and_cp_reach_the_container_root() {
    let env = Env::new("cp");
    env.ok(&[
        "run",
        "--name",
        "box",
        "busybox",
        "sh",
        "-c",
        "echo inside > /inside",
    ]);
    let tar = env.path().join("box.tar");
    env.ok(&["export", "-o", tar.to_str().unwrap(), "box"]);
    let listing = std::process::Command::new("tar")
        .arg("tf")
        .arg(&tar)
        .output()
        .unwrap();
    assert!(
        stdout(&listing)
            .lines()
            .any(|l| l.trim_start_matches("./") == "inside"),
        "export lacks /inside"
    );
    let out_dir = env.path().join("out");
    std::fs::create_dir_all(&out_dir).unwrap();
    env.ok(&["cp", "box:/inside", out_dir.to_str().unwrap()]);
    assert_eq!(
        std::fs::read_to_string(out_dir.join("inside")).unwrap(),
        "inside\n"
    );
    let host_file = env.path().join("hostfile");
    std::fs::write(&host_file, "from host\n").unwrap();
    env.ok(&["cp", host_file.to_str().unwrap(), "box:/tmp/"]);
    env.ok(&[
        "cp",
        "box:/tmp/hostfile",
        env.path().join("back").to_str().unwrap(),
    ]);
    assert_eq!(
        std::fs::read_to_string(env.path().join("back")).unwrap(),
        "from host\n"
    );
    env.ok(&["rm", "box"]);
    assert!(env.mounts_below().is_empty());
}

#[test]
fn hello_image_is_built_in() {
    let env = Env::new("hello");
    let out = env.ok(&["run", "--rm", "--pids-limit", "10", "hello"]);
    assert!(out.contains("Hello from Berth!"), "{out}");
    assert!(out.contains("pid       1"), "{out}");
    assert!(out.contains("pid:["), "{out}");
    assert!(out.contains("pids     10"), "{out}");
    assert!(env.ok(&["images"]).contains("hello"));
}

#[test]
fn ns_shows_shared_namespaces() {
    let env = Env::new("ns");
    env.ok(&["run", "-d", "--name", "first", "busybox", "sleep", "1000"]);
    env.ok(&[
        "run",
        "-d",
        "--name",
        "second",
        "--pid",
        "container:first",
        "busybox",
        "sleep",
        "1000",
    ]);
    let pid_first = env.inspect("first", "{{.State.Pid}}");
    let inode = berth_testkit::ns_inode(&pid_first, "pid").unwrap();
    let table = env.ok(&["ns"]);
    assert!(
        table.contains(&format!("pid:[{inode}]  first, second")),
        "{table}"
    );
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("second") && l.contains(&format!("{inode} =first"))),
        "{table}"
    );
    let ps = env.ok(&["exec", "second", "ps"]);
    assert!(
        ps.lines().count() >= 3,
        "second should see first's processes:\n{ps}"
    );
    env.ok(&["rm", "-f", "first", "second"]);
}
