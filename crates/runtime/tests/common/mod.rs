//! Shared helpers for the runtime's integration tests: the built binary, a temp --root, unique
//! container ids, and a guard that force-deletes a container when the test ends (even on panic).
#![allow(dead_code)]

use berth_testkit::{Bundle, TempRoot};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_berth-runtime")
}

/// A test's world: a temp state root and helpers to drive the binary in it.
pub struct World {
    pub root: TempRoot,
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A container id unique across tests and concurrent test processes.
pub fn unique_id(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

impl World {
    pub fn new() -> World {
        World {
            root: TempRoot::new("berth-rt-test-").expect("temp root"),
        }
    }

    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// `berth-runtime --root <root> args...`
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin());
        c.arg("--root").arg(self.root.path()).args(args);
        c.stdin(Stdio::null());
        c
    }

    /// Runs the binary. Commands that leave a container behind (`create`, `run -d`) hand their
    /// stdio to it, so stdout/stderr go through files rather than pipes that would stay open.
    pub fn out(&self, args: &[&str]) -> Output {
        output_within(&mut self.cmd(args), COMMAND_DEADLINE)
    }

    /// Runs and asserts success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.out(args);
        assert!(
            o.status.success(),
            "berth-runtime {args:?} failed: {}\nstdout: {}\nstderr: {}",
            o.status,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    pub fn state(&self, id: &str) -> Option<serde_json::Value> {
        let o = self.out(&["state", id]);
        o.status
            .success()
            .then(|| serde_json::from_slice(&o.stdout).expect("state JSON"))
    }

    pub fn status(&self, id: &str) -> String {
        self.state(id)
            .map(|s| s["status"].as_str().unwrap_or("").to_owned())
            .unwrap_or_else(|| "gone".into())
    }

    pub fn wait_status(&self, id: &str, want: &str) -> bool {
        berth_testkit::wait_until(Duration::from_secs(10), || self.status(id) == want)
    }

    /// Creates `id` from `bundle` and returns a guard that deletes it.
    pub fn create(&self, id: &str, bundle: &Bundle) -> Guard {
        let g = self.guard(id);
        self.ok(&["create", "--bundle", bundle.path().to_str().unwrap(), id]);
        g
    }

    pub fn guard(&self, id: &str) -> Guard {
        Guard {
            root: self.root.path().to_path_buf(),
            id: id.to_owned(),
        }
    }

    /// `run` in the foreground: (exit code, stdout, stderr).
    pub fn run(&self, id: &str, bundle: &Bundle) -> (i32, String, String) {
        let _g = self.guard(id);
        let o = self.out(&["run", "--bundle", bundle.path().to_str().unwrap(), id]);
        (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    }
}

/// Force-deletes its container on drop.
pub struct Guard {
    root: PathBuf,
    pub id: String,
}

impl Drop for Guard {
    fn drop(&mut self) {
        // Bounded, and never a panic (this may run while a failed test unwinds).
        let Ok(mut child) = Command::new(bin())
            .arg("--root")
            .arg(&self.root)
            .args(["delete", "-f", &self.id])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
        else {
            return;
        };
        if !exited_within(&child, COMMAND_DEADLINE) {
            eprintln!("note: delete -f {} did not finish; killed it", self.id);
            let _ = child.kill();
        }
        let _ = child.wait();
    }
}

/// How long one command a test runs may take before the test fails: far above any healthy
/// run, so only a hang reaches it.
pub const COMMAND_DEADLINE: Duration = Duration::from_secs(60);

/// Whether `child` exits within `timeout` (it is not reaped).
pub fn exited_within(child: &std::process::Child, timeout: Duration) -> bool {
    match berth_runtime::sys::pidfd_open(child.id() as i32) {
        Ok(fd) => berth_runtime::sys::wait_pidfd(&fd, Some(timeout)).unwrap_or(false),
        Err(_) => true, // already gone
    }
}

/// Runs `cmd` to its end, failing the test (after killing it) when it takes longer than
/// `timeout`. Its stdout and stderr go through files, not pipes: a container it leaves behind
/// inherits them and would keep a pipe open forever.
pub fn output_within(cmd: &mut Command, timeout: Duration) -> Output {
    Running::spawn(cmd)
        .finish(timeout)
        .unwrap_or_else(|e| panic!("{e}"))
}

/// `output()` with a deadline, for any command a test runs (berth-runtime, runc, unshare…).
pub trait BoundedOutput {
    /// Like `Command::output` (stdin is /dev/null), but the test fails, after killing the
    /// command, when it runs past COMMAND_DEADLINE.
    fn bounded_output(&mut self) -> Output;
}

impl BoundedOutput for Command {
    fn bounded_output(&mut self) -> Output {
        output_within(self.stdin(Stdio::null()), COMMAND_DEADLINE)
    }
}

/// Waits for a child the test spawned with its own stdio (a pty, say); after `timeout` kills
/// it and fails the test naming `what`.
pub fn wait_within(
    child: &mut std::process::Child,
    timeout: Duration,
    what: &str,
) -> std::process::ExitStatus {
    if !exited_within(child, timeout) {
        let _ = child.kill();
        let _ = child.wait();
        panic!("{what} did not finish within {timeout:?} (killed it)");
    }
    child.wait().expect("reaping a child")
}

/// Accepts one connection within `timeout`, failing the test naming `what` otherwise (a
/// runtime that failed before connecting must not leave the test waiting forever). The stream
/// gets the same read timeout.
pub fn accept_within(
    listener: &std::os::unix::net::UnixListener,
    timeout: Duration,
    what: &str,
) -> std::os::unix::net::UnixStream {
    let mut fds = [rustix::event::PollFd::new(
        listener,
        rustix::event::PollFlags::IN,
    )];
    let ts = rustix::event::Timespec {
        tv_sec: timeout.as_secs() as i64,
        tv_nsec: timeout.subsec_nanos() as i64,
    };
    let ready = loop {
        match rustix::event::poll(&mut fds, Some(&ts)) {
            Err(rustix::io::Errno::INTR) => continue,
            other => break other.expect("poll"),
        }
    };
    assert!(ready > 0, "no connection for {what} within {timeout:?}");
    let (stream, _) = listener.accept().expect("accept");
    stream
        .set_read_timeout(Some(timeout))
        .expect("read timeout");
    stream
}

/// Everything a container writes to its terminal (`master`) until the slave side closes
/// (EOF or EIO), failing the test when that takes longer than `timeout`. `\r` removed.
pub fn read_tty_until_closed(master: &impl rustix::fd::AsFd, timeout: Duration) -> String {
    let out = berth_runtime::sys::read_until(master, timeout, |_| false)
        .unwrap_or_else(|e| panic!("terminal not closed: {e}"));
    String::from_utf8_lossy(&out).replace('\r', "")
}

/// A command started with its stdout and stderr in files (see `output_within`).
pub struct Running {
    child: std::process::Child,
    what: String,
    _dir: tempfile::TempDir,
    out: PathBuf,
    err: PathBuf,
}

impl Running {
    pub fn spawn(cmd: &mut Command) -> Running {
        let dir = tempfile::tempdir().expect("tempdir");
        let (out, err) = (dir.path().join("out"), dir.path().join("err"));
        let child = cmd
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {cmd:?}: {e}"));
        Running {
            child,
            what: format!("{cmd:?}"),
            _dir: dir,
            out,
            err,
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// What the command has written to stdout so far.
    pub fn stdout_so_far(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.out).unwrap_or_default()).into_owned()
    }

    /// Polls until the command's stdout has a line equal to `line`; fails the test (killing
    /// the command) when that takes longer than `timeout`.
    pub fn wait_for_line(&mut self, line: &str, timeout: Duration) {
        let seen =
            berth_testkit::wait_until(timeout, || self.stdout_so_far().lines().any(|l| l == line));
        if !seen {
            let _ = self.child.kill();
            let _ = self.child.wait();
            panic!(
                "{} never printed {line:?} within {timeout:?}; stdout: {}; stderr: {}",
                self.what,
                self.stdout_so_far(),
                String::from_utf8_lossy(&std::fs::read(&self.err).unwrap_or_default())
            );
        }
    }

    /// Waits for the end within `timeout`; on timeout kills the command and returns an error
    /// that says what hung and what it had printed.
    pub fn finish(mut self, timeout: Duration) -> Result<Output, String> {
        let finished = exited_within(&self.child, timeout);
        if !finished {
            let _ = self.child.kill();
        }
        let status = self.child.wait().expect("reaping a child");
        let output = Output {
            status,
            stdout: std::fs::read(&self.out).unwrap_or_default(),
            stderr: std::fs::read(&self.err).unwrap_or_default(),
        };
        if finished {
            Ok(output)
        } else {
            Err(format!(
                "{} did not finish within {timeout:?} (killed it)\nstdout: {}\nstderr: {}",
                self.what,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ))
        }
    }
}

/// A bundle running `sh -c script`.
pub fn sh_bundle(script: &str) -> Bundle {
    Bundle::new(&["sh", "-c", script]).expect("bundle")
}

/// The container's cgroup dir for a v1 controller with the default cgroupsPath.
pub fn cgroup_dir(controller: &str, id: &str) -> PathBuf {
    PathBuf::from(format!("/sys/fs/cgroup/{controller}/berth/{id}"))
}
