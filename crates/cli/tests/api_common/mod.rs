//! A `berth system service` for one test: its own temporary root and socket, the real docker
//! CLI pointed at it (`DOCKER_HOST`, a private `DOCKER_CONFIG`), a busybox image imported
//! through the API, and the service ended by PID when the test ends.
#![allow(dead_code)]
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

pub struct Service {
    pub dir: tempfile::TempDir,
    child: Option<Child>,
    env: Vec<(String, String)>,
}

impl Service {
    /// Starts the service and waits until its socket answers `/_ping`.
    pub fn start() -> Service {
        Service::start_with_env(&[])
    }

    /// Starts the service with extra environment (e.g. a registry configuration directory).
    pub fn start_with_env(env: &[(&str, &str)]) -> Service {
        let dir = tempfile::Builder::new()
            .prefix("berth-api-")
            .tempdir()
            .unwrap();
        std::fs::create_dir_all(dir.path().join("docker-config")).unwrap();
        let mut s = Service {
            dir,
            child: None,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        s.spawn();
        s
    }

    fn spawn(&mut self) {
        let child = Command::new(env!("CARGO_BIN_EXE_berth"))
            .arg("--root")
            .arg(self.root())
            .args(["system", "service", "--time", "0"])
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .arg(format!("unix://{}", self.socket().display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(self.dir.path().join("service.log")).unwrap())
            .spawn()
            .expect("starting berth system service");
        self.child = Some(child);
        let socket = self.socket();
        assert!(
            berth_testkit::wait_until(Duration::from_secs(20), || {
                std::os::unix::net::UnixStream::connect(&socket).is_ok()
            }),
            "the service did not listen on {}: {}",
            socket.display(),
            std::fs::read_to_string(self.dir.path().join("service.log")).unwrap_or_default()
        );
    }

    /// Kills the service (SIGKILL, by PID) and starts a new one on the same root and socket.
    pub fn restart_after_kill(&mut self) {
        self.kill();
        self.spawn();
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("berth.sock")
    }

    pub fn host(&self) -> String {
        format!("unix://{}", self.socket().display())
    }

    /// The docker CLI talking to this service.
    pub fn docker(&self) -> Command {
        let mut c = Command::new("docker");
        c.env("DOCKER_HOST", self.host())
            .env("DOCKER_CONFIG", self.dir.path().join("docker-config"))
            .env("DOCKER_BUILDKIT", "0")
            .env_remove("DOCKER_CONTEXT")
            .env_remove("DOCKER_TLS_VERIFY");
        c
    }

    /// `docker ARGS`, which must succeed; returns stdout.
    pub fn docker_ok(&self, args: &[&str]) -> String {
        let out = self.docker_out(args);
        assert!(
            out.status.success(),
            "docker {args:?} failed ({:?}): {}\n{}\nservice log:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `docker ARGS` with no stdin, failing the test if it runs longer than a minute.
    pub fn docker_out(&self, args: &[&str]) -> Output {
        let mut cmd = self.docker();
        cmd.args(args);
        output_within(cmd, Duration::from_secs(60))
    }

    /// The built `berth` on the service's root.
    pub fn berth(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_berth"));
        c.arg("--root").arg(self.root());
        c
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("service.log")).unwrap_or_default()
    }

    /// A busybox rootfs tarball, imported through `docker import` as `name`.
    pub fn import_busybox(&self, name: &str) -> String {
        let tar = self.dir.path().join("busybox.tar");
        if !tar.exists() {
            berth_testkit::busybox_rootfs_tar(&tar).unwrap();
        }
        self.docker_ok(&["import", tar.to_str().unwrap(), name])
            .trim()
            .to_string()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        // Containers first (they hold mounts under the root), then the service.
        let _ = self
            .berth()
            .args(["rm", "-f"])
            .args(
                String::from_utf8_lossy(
                    &self
                        .berth()
                        .args(["ps", "-aq", "--no-trunc"])
                        .output()
                        .map(|o| o.stdout)
                        .unwrap_or_default(),
                )
                .split_whitespace(),
            )
            .output();
        self.kill();
        berth_testkit::unmount_below(self.dir.path());
    }
}

/// Runs `cmd` (stdin closed) to its end, or kills it (by PID) and fails the test once
/// `limit` has passed: no test waits forever on a client the service fails to answer.
pub fn output_within(mut cmd: Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning a client");
    let drain = |mut r: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = r.read_to_end(&mut buf);
            buf
        })
    };
    let out_reader = drain(Box::new(child.stdout.take().expect("stdout")));
    let err_reader = drain(Box::new(child.stderr.take().expect("stderr")));
    let deadline = std::time::Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for a client") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Output {
        status,
        stdout: out_reader.join().unwrap_or_default(),
        stderr: err_reader.join().unwrap_or_default(),
    }
}

pub fn have_docker_cli() -> bool {
    Command::new("docker")
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Runs `body` on a thread inside a new network namespace with `lo` up: it plays the host, so the
/// service and everything it starts inherit it and no bridge or rule touches the machine.
pub fn in_throwaway_host(body: impl FnOnce() + Send + 'static) {
    std::thread::spawn(move || {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare -n");
        let st = Command::new("ip")
            .args(["link", "set", "lo", "up"])
            .status()
            .expect("ip");
        assert!(st.success());
        body();
    })
    .join()
    .expect("test thread");
}
