//! Shared helpers for the container acceptance tests: a temporary root with the busybox image
//! imported, running the built `berth`, and cleanup of every container on drop.
#![allow(dead_code)]
use berth_testkit::TempRoot;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub fn berth_bin() -> &'static str {
    env!("CARGO_BIN_EXE_berth")
}

/// A Berth root with `busybox:latest` imported.
pub struct Env {
    pub root: TempRoot,
}

impl Env {
    pub fn new(tag: &str) -> Env {
        let root = TempRoot::new(&format!("berth-ctr-{tag}-")).expect("temp root");
        let tar = root.path().join("busybox.tar");
        berth_testkit::busybox_rootfs_tar(&tar).expect("busybox tar");
        let env = Env { root };
        let out = env.berth(&["import", tar.to_str().unwrap_or_default(), "busybox:latest"]);
        assert!(
            out.status.success(),
            "import failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        env
    }

    pub fn path(&self) -> &Path {
        self.root.path()
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(berth_bin());
        cmd.arg("--root")
            .arg(self.root.path())
            .args(args)
            .stdin(Stdio::null());
        cmd
    }

    pub fn berth(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("running berth")
    }

    /// Runs berth, asserts success, returns trimmed stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.berth(args);
        assert!(
            out.status.success(),
            "berth {args:?} failed ({:?}): {}{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    pub fn inspect(&self, container: &str, format: &str) -> String {
        self.ok(&["container", "inspect", "-f", format, container])
    }

    /// Container IDs recorded under the root.
    pub fn record_ids(&self) -> Vec<String> {
        std::fs::read_dir(self.root.path().join("containers"))
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.len() == 64)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Mount points at or below the root.
    pub fn mounts_below(&self) -> Vec<String> {
        let prefix = self.root.path().to_string_lossy().into_owned();
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|m| m.starts_with(&prefix))
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        for id in self.record_ids() {
            let _ = self.cmd(&["rm", "-f", &id]).output();
        }
    }
}

/// The cgroup v1 (or v2) directory of a container's controller.
pub fn cgroup_dir(controller: &str, id: &str) -> PathBuf {
    if Path::new(&format!("/sys/fs/cgroup/{controller}")).exists() {
        PathBuf::from(format!("/sys/fs/cgroup/{controller}/berth/{id}"))
    } else {
        PathBuf::from(format!("/sys/fs/cgroup/berth/{id}"))
    }
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A private dockerd with the busybox image `env` imported (the same tar, as `busybox:latest`),
/// for side-by-side tests; None when dockerd is not installed (`Dockerd::start` says so and the
/// test skips).
pub fn dockerd_with_busybox(env: &Env) -> Option<berth_testkit::dockerd::Dockerd> {
    let docker = berth_testkit::dockerd::Dockerd::start().expect("starting dockerd")?;
    let status = docker
        .docker()
        .arg("import")
        .arg(env.path().join("busybox.tar"))
        .arg("busybox:latest")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .expect("docker import");
    assert!(status.success(), "docker import of the busybox tar");
    Some(docker)
}
