//! A private `dockerd` for comparison tests: its own data root, exec root, socket and pid file in
//! a temporary directory; no iptables, no bridge. Ready when `docker version` answers. Dropping it
//! kills the daemon by PID, waits for it, and unmounts whatever it left below its directory.
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running private Docker daemon.
pub struct Dockerd {
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Dockerd {
    /// Starts dockerd, or returns Ok(None) (after printing a note) when `dockerd` or `docker`
    /// is not installed, so callers can skip.
    pub fn start() -> Result<Option<Dockerd>> {
        Dockerd::start_with(false)
    }

    /// Like [`Dockerd::start`], but with Docker's default bridge network and its iptables rules.
    /// Call it only from a process inside a throwaway network namespace.
    pub fn start_networked() -> Result<Option<Dockerd>> {
        Dockerd::start_with(true)
    }

    fn start_with(networked: bool) -> Result<Option<Dockerd>> {
        if !crate::have("dockerd") || !crate::have("docker") {
            eprintln!("note: dockerd/docker not installed; skipping the Docker comparison");
            return Ok(None);
        }
        let dir = tempfile::Builder::new()
            .prefix("berth-dockerd-")
            .tempdir()?;
        let d = dir.path();
        for sub in ["root", "exec"] {
            std::fs::create_dir_all(d.join(sub))?;
        }
        let log = std::fs::File::create(d.join("dockerd.log"))?;
        let mut cmd = Command::new("dockerd");
        if !networked {
            cmd.arg("--iptables=false")
                .arg("--ip6tables=false")
                .arg("--bridge=none");
        } else {
            cmd.arg("--ip6tables=false");
        }
        let child = cmd
            .arg("--storage-driver=overlay2")
            .arg("--data-root")
            .arg(d.join("root"))
            .arg("--exec-root")
            .arg(d.join("exec"))
            .arg("-H")
            .arg(format!("unix://{}", d.join("sock").display()))
            .arg("-p")
            .arg(d.join("pid"))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting dockerd")?;
        let mut daemon = Dockerd {
            dir,
            child: Some(child),
        };
        daemon.wait_ready(Duration::from_secs(60))?;
        Ok(Some(daemon))
    }

    fn wait_ready(&mut self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Some(status) = child.try_wait()? {
                    let log = std::fs::read_to_string(self.dir.path().join("dockerd.log"))
                        .unwrap_or_default();
                    bail!("dockerd exited early ({status}):\n{log}");
                }
            }
            let ok = self
                .docker()
                .arg("version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if ok {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("dockerd did not answer within {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The daemon's socket address (`unix://…`).
    pub fn host(&self) -> String {
        format!("unix://{}", self.dir.path().join("sock").display())
    }

    /// `docker` talking to this daemon (classic builder).
    pub fn docker(&self) -> Command {
        let mut c = Command::new("docker");
        c.env("DOCKER_HOST", self.host())
            .env("DOCKER_BUILDKIT", "0")
            .env("DOCKER_CONFIG", self.dir.path().join("client-config"));
        c
    }

    /// The daemon's data root.
    pub fn data_root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// The temporary directory holding everything.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(15);
            loop {
                match child.try_wait() {
                    Ok(Some(_)) => break,
                    Ok(None) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(50))
                    }
                    _ => {
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                }
            }
        }
        crate::unmount_below(self.dir.path());
    }
}
