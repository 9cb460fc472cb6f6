//! A container's files seen from the host are resolved inside its root (issue 14): a container
//! racing `cp` and `export` by swapping a directory for a symlink to a host path never makes them
//! read or write outside it; `cp -a`, `-L` and `-` (tar on stdout / from stdin) behave as Docker's.
mod container_common;
use container_common::*;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::process::Stdio;

const SECRET: &str = "HOST-SECRET-4c1d";

/// Every file below `dir` with its content, sorted.
fn snapshot(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<_> = walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(|e| e.ok())
        .map(|e| {
            let content = std::fs::read(e.path()).unwrap_or_default();
            (e.path().display().to_string(), content)
        })
        .collect();
    out.sort();
    out
}

#[test]
fn racing_symlink_swaps_never_reach_the_host() {
    let env = Env::new("race");
    let host = env.path().join("hostdir");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("secret"), SECRET).unwrap();
    let before = snapshot(&host);
    // The container flips /w between a symlink to the host directory's path and a real
    // directory, a bounded number of times, then exits.
    let script = format!(
        "i=0; while [ $i -lt 4000 ]; do ln -s {h} /w; rm /w; mkdir /w; echo inner > /w/secret; rm -rf /w; i=$((i+1)); done",
        h = host.display()
    );
    env.ok(&[
        "run", "-d", "--name", "racer", "busybox", "sh", "-c", &script,
    ]);
    let payload = env.path().join("payload");
    std::fs::write(&payload, "from host\n").unwrap();
    let out_dir = env.path().join("out");
    for round in 0..40 {
        let _ = env.berth(&["cp", payload.to_str().unwrap(), "racer:/w/x"]);
        let _ = env.berth(&["cp", payload.to_str().unwrap(), "racer:/w/"]);
        let dst = out_dir.join(round.to_string());
        std::fs::create_dir_all(&dst).unwrap();
        let _ = env.berth(&["cp", "racer:/w/secret", dst.to_str().unwrap()]);
        let _ = env.berth(&["cp", "-L", "racer:/w", dst.join("w").to_str().unwrap()]);
        let tar = env.berth(&["cp", "racer:/w", "-"]);
        assert!(!contains(&tar.stdout, SECRET), "cp - read a host file");
        if round % 8 == 0 {
            let export = env.berth(&["export", "racer"]);
            assert!(!contains(&export.stdout, SECRET), "export read a host file");
        }
    }
    for (path, content) in snapshot(&out_dir) {
        assert!(!contains(&content, SECRET), "{path} holds the host secret");
    }
    assert_eq!(snapshot(&host), before, "the host directory was written");
    env.ok(&["rm", "-f", "racer"]);
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[test]
fn cp_modes_follow_docker() {
    let env = Env::new("cpmodes");
    env.ok(&[
        "run",
        "--name",
        "box",
        "busybox",
        "sh",
        "-c",
        "mkdir -p /d/sub && echo hi > /d/sub/f && ln -s /d/sub/f /lnk && chown 1234:55 /d/sub/f",
    ]);
    let out = env.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    // A symlink source is copied as a link; -L copies what it points at (inside the container).
    env.ok(&["cp", "box:/lnk", out.join("plain").to_str().unwrap()]);
    assert!(std::fs::symlink_metadata(out.join("plain"))
        .unwrap()
        .file_type()
        .is_symlink());
    env.ok(&[
        "cp",
        "-L",
        "box:/lnk",
        out.join("followed").to_str().unwrap(),
    ]);
    assert_eq!(
        std::fs::read_to_string(out.join("followed")).unwrap(),
        "hi\n"
    );
    // Without -a the copy belongs to the caller; with -a it keeps the container's ids.
    env.ok(&["cp", "box:/d", out.join("d").to_str().unwrap()]);
    assert_eq!(std::fs::metadata(out.join("d/sub/f")).unwrap().uid(), 0);
    env.ok(&["cp", "-a", "box:/d", out.join("da").to_str().unwrap()]);
    let md = std::fs::metadata(out.join("da/sub/f")).unwrap();
    assert_eq!((md.uid(), md.gid()), (1234, 55));
    // SRC/. copies the contents into an existing directory.
    std::fs::create_dir_all(out.join("contents")).unwrap();
    env.ok(&["cp", "box:/d/.", out.join("contents").to_str().unwrap()]);
    assert!(out.join("contents/sub/f").is_file());
    // `-` writes a tar named after the source.
    let tar = env.berth(&["cp", "box:/d", "-"]);
    assert!(tar.status.success());
    let mut lister = std::process::Command::new("tar")
        .arg("tf")
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    lister.stdin.take().unwrap().write_all(&tar.stdout).unwrap();
    let names = String::from_utf8(lister.wait_with_output().unwrap().stdout).unwrap();
    assert!(names.lines().any(|l| l == "d/sub/f"), "{names}");
    // `-` as the source extracts a tar from stdin into a directory.
    let mut child = env
        .cmd(&["cp", "-", "box:/d"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&tar.stdout).unwrap();
    assert!(child.wait().unwrap().success());
    env.ok(&["cp", "box:/d/d/sub/f", out.join("round").to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(out.join("round")).unwrap(), "hi\n");
    // Host files copied in belong to root unless -a.
    let host_file = env.path().join("owned");
    std::fs::write(&host_file, "x").unwrap();
    std::os::unix::fs::chown(&host_file, Some(4321), Some(4321)).unwrap();
    env.ok(&["cp", host_file.to_str().unwrap(), "box:/d/"]);
    env.ok(&["cp", "-a", host_file.to_str().unwrap(), "box:/d/kept"]);
    env.ok(&["cp", "-a", "box:/d", out.join("check").to_str().unwrap()]);
    assert_eq!(std::fs::metadata(out.join("check/owned")).unwrap().uid(), 0);
    assert_eq!(
        std::fs::metadata(out.join("check/kept")).unwrap().uid(),
        4321
    );
    // Missing sources name the container and the path.
    let missing = env.berth(&["cp", "box:/nope", out.to_str().unwrap()]);
    assert!(!missing.status.success());
    assert!(stderr(&missing).contains("Could not find the file /nope in container box"));
    env.ok(&["rm", "box"]);
    assert!(env.mounts_below().is_empty());
}
