//! The engine's one door to the OCI runtime: create / start / kill / delete / exec / pause of a
//! container bundle, with the runtime state under `<berth root>/runtime`. Every runtime call the
//! engine makes goes through the [`OciRuntime`] trait, so switching runtimes touches only this
//! file, and lifecycle and monitor code can be tested against a fake.
//!
//! Two implementations: [`LibraryRuntime`] calls the `berth-runtime` library in-process (the
//! init becomes a child of the caller, the monitor); [`BinaryRuntime`] drives a runc-compatible
//! binary (runc, crun, berth-runtime), chosen with `BERTH_RUNTIME=<binary>`. Both fork: call
//! `create` and `exec` only from a single-threaded process (the monitor, the CLI).
//!
//! This module must not know about records, layers or terminals: it takes a bundle and fds and
//! returns PIDs.
use crate::error::{EngineError, Result};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

/// How `exec` connects the new process.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExecIo {
    /// Return as soon as the process runs.
    pub detach: bool,
    /// Give the process this process's stdin (else /dev/null).
    pub stdin: bool,
    /// Send the process's stdout and stderr to this descriptor (stdin /dev/null) and return
    /// at once with its PID, a child of the caller to reap (a health probe).
    pub output: Option<RawFd>,
}

/// What `exec` started.
#[derive(Debug, Default)]
pub struct ExecStarted {
    /// The process, a child of the caller still to be reaped (library runtime).
    pub pid: Option<i32>,
    /// The PTY master of a `terminal: true` process (library runtime).
    pub console: Option<OwnedFd>,
    /// The exit code when the runtime already waited for it (binary runtime).
    pub finished: Option<i32>,
}

/// An OCI runtime as the engine sees it.
pub trait OciRuntime: Send + Sync + std::fmt::Debug {
    /// Creates and starts the container from `bundle`; its stdio are `stdio` (or a terminal
    /// whose master is sent to `console_socket`). Returns the init's PID, a child of the
    /// caller. An implementation that needs a separate start does it in [`OciRuntime::start`].
    fn create(
        &self,
        id: &str,
        bundle: &Path,
        stdio: [RawFd; 3],
        console_socket: Option<&Path>,
    ) -> Result<i32>;
    /// Lets a created container run (a no-op when `create` already started it).
    fn start(&self, id: &str) -> Result<()>;
    fn kill(&self, id: &str, signal: i32, all: bool) -> Result<()>;
    fn delete(&self, id: &str, force: bool) -> Result<()>;
    fn pause(&self, id: &str) -> Result<()>;
    fn resume(&self, id: &str) -> Result<()>;
    /// Runs `process` inside the container (joins all its namespaces and its cgroup).
    fn exec(
        &self,
        id: &str,
        process: &oci_spec::runtime::Process,
        io: ExecIo,
    ) -> Result<ExecStarted>;
}

/// The runtime for the root `berth_root`: the library, or the binary `BERTH_RUNTIME` names.
pub fn from_env(berth_root: &Path) -> Arc<dyn OciRuntime> {
    let state_root = berth_root.join("runtime");
    match std::env::var_os("BERTH_RUNTIME").filter(|b| !b.is_empty()) {
        Some(binary) => Arc::new(BinaryRuntime {
            state_root,
            binary: PathBuf::from(binary),
        }),
        None => Arc::new(LibraryRuntime::new(state_root)),
    }
}

/// `berth-runtime` as a library, in this process.
#[derive(Debug, Clone)]
pub struct LibraryRuntime {
    library: berth_runtime::Runtime,
}

impl LibraryRuntime {
    pub fn new(state_root: PathBuf) -> LibraryRuntime {
        LibraryRuntime {
            library: berth_runtime::Runtime::new(state_root),
        }
    }
}

fn library_err(id: &str) -> impl FnOnce(berth_runtime::RuntimeError) -> EngineError + '_ {
    move |source| EngineError::Runtime {
        id: id.to_string(),
        source,
    }
}

impl OciRuntime for LibraryRuntime {
    fn create(
        &self,
        id: &str,
        bundle: &Path,
        stdio: [RawFd; 3],
        console_socket: Option<&Path>,
    ) -> Result<i32> {
        // One step, without the exec-fifo round trip. The returned state always names the
        // init, even when a fast command has already exited; its exit status is ours to reap.
        let opts = berth_runtime::CreateOptions {
            console_socket: console_socket.map(Path::to_path_buf),
            stdio: Some(stdio),
            ..Default::default()
        };
        let state = self
            .library
            .create_and_start(id, bundle, &opts)
            .map_err(library_err(id))?;
        Ok(state.pid)
    }

    fn start(&self, _id: &str) -> Result<()> {
        Ok(())
    }

    fn kill(&self, id: &str, signal: i32, all: bool) -> Result<()> {
        self.library.kill(id, signal, all).map_err(library_err(id))
    }

    fn delete(&self, id: &str, force: bool) -> Result<()> {
        self.library.delete(id, force).map_err(library_err(id))
    }

    fn pause(&self, id: &str) -> Result<()> {
        self.library.pause(id).map_err(library_err(id))
    }

    fn resume(&self, id: &str) -> Result<()> {
        self.library.resume(id).map_err(library_err(id))
    }

    /// The process is our child; with a terminal we receive its PTY master over a console
    /// socket.
    fn exec(
        &self,
        id: &str,
        process: &oci_spec::runtime::Process,
        io: ExecIo,
    ) -> Result<ExecStarted> {
        let tty = process.terminal().unwrap_or(false);
        let null = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/null")
            .map_err(|e| EngineError::io("/dev/null", e))?;
        let mut opts = berth_runtime::ExecOptions {
            detach: io.detach,
            ..Default::default()
        };
        let mut listener = None;
        let mut sock_dir = None;
        if tty {
            let dir = private_temp_dir("exec")?;
            let path = dir.join("console.sock");
            listener = Some(
                std::os::unix::net::UnixListener::bind(&path)
                    .map_err(|e| EngineError::io(&path, e))?,
            );
            opts.console_socket = Some(path);
            sock_dir = Some(dir);
        } else if let Some(out) = io.output {
            opts.stdio = Some([null.as_raw_fd(), out, out]);
        } else if !io.stdin {
            opts.stdio = Some([null.as_raw_fd(), 1, 2]);
        }
        let pid = self.library.exec(id, process, &opts);
        if let Some(d) = &sock_dir {
            let _ = std::fs::remove_dir_all(d);
        }
        let pid = pid.map_err(library_err(id))?;
        let console = match &listener {
            Some(l) => Some(receive_console(l)?),
            None => None,
        };
        Ok(ExecStarted {
            pid: Some(pid),
            console,
            finished: None,
        })
    }
}

/// A runc-compatible runtime binary.
#[derive(Debug, Clone)]
pub struct BinaryRuntime {
    state_root: PathBuf,
    binary: PathBuf,
}

impl BinaryRuntime {
    pub fn new(binary: PathBuf, state_root: PathBuf) -> BinaryRuntime {
        BinaryRuntime { state_root, binary }
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.binary);
        cmd.arg("--root").arg(&self.state_root);
        cmd
    }

    fn failed(&self, id: &str, message: String) -> EngineError {
        EngineError::RuntimeBinary {
            binary: self.binary.clone(),
            id: id.to_string(),
            message,
        }
    }

    fn spawn_err(&self, op: &'static str, id: &str, source: std::io::Error) -> EngineError {
        EngineError::RuntimeSpawn {
            binary: self.binary.clone(),
            op,
            id: id.to_string(),
            source,
        }
    }

    fn run_quiet(&self, op: &'static str, id: &str, mut cmd: Command) -> Result<()> {
        let out = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .map_err(|e| self.spawn_err(op, id, e))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(self.failed(id, clean_message(&String::from_utf8_lossy(&out.stderr))))
        }
    }
}

/// Duplicates `fd` into something `Stdio` can own.
fn stdio_from(fd: RawFd) -> Result<Stdio> {
    // SAFETY: fcntl(F_DUPFD_CLOEXEC) on a descriptor the caller keeps open; the result is a new
    // descriptor we own.
    let dup = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
    if dup < 0 {
        return Err(EngineError::last_os(format!("dup of fd {fd}")));
    }
    // SAFETY: `dup` is a fresh descriptor owned by nobody else.
    Ok(Stdio::from(unsafe { OwnedFd::from_raw_fd(dup) }))
}

impl OciRuntime for BinaryRuntime {
    fn create(
        &self,
        id: &str,
        bundle: &Path,
        stdio: [RawFd; 3],
        console_socket: Option<&Path>,
    ) -> Result<i32> {
        let pid_file = bundle.join("init.pid");
        let _ = std::fs::remove_file(&pid_file);
        let log_path = bundle.join("runtime.log");
        let _ = std::fs::remove_file(&log_path);
        let mut cmd = self.command();
        cmd.arg("--log").arg(&log_path);
        cmd.arg("create")
            .arg("--bundle")
            .arg(bundle)
            .arg("--pid-file")
            .arg(&pid_file);
        if let Some(sock) = console_socket {
            cmd.arg("--console-socket").arg(sock);
        }
        cmd.arg(id);
        let (err_read, err_write) = crate::sys::pipe()?;
        cmd.stdin(stdio_from(stdio[0])?)
            .stdout(stdio_from(stdio[1])?);
        if console_socket.is_some() {
            cmd.stderr(Stdio::from(err_write));
        } else {
            // runc passes its own stderr to the container; errors from runc itself go there too,
            // and are also its exit status.
            drop(err_write);
            cmd.stderr(stdio_from(stdio[2])?);
        }
        let status = cmd.status().map_err(|e| self.spawn_err("create", id, e))?;
        if !status.success() {
            let mut text = String::new();
            use std::io::Read;
            let _ = std::fs::File::from(err_read).read_to_string(&mut text);
            if let Ok(log) = std::fs::read_to_string(&log_path) {
                if let Some(line) = log.lines().rev().find(|l| l.contains("level=error")) {
                    text = line.to_string();
                }
            }
            let text = if text.trim().is_empty() {
                format!("runtime create failed: {status}")
            } else {
                clean_message(&text)
            };
            return Err(self.failed(id, text));
        }
        let pid_text =
            std::fs::read_to_string(&pid_file).map_err(|e| EngineError::io(&pid_file, e))?;
        pid_text
            .trim()
            .parse()
            .map_err(|_| self.failed(id, format!("bad pid file {}", pid_file.display())))
    }

    fn start(&self, id: &str) -> Result<()> {
        let mut cmd = self.command();
        cmd.arg("start").arg(id);
        self.run_quiet("start", id, cmd)
    }

    fn kill(&self, id: &str, signal: i32, all: bool) -> Result<()> {
        let mut cmd = self.command();
        cmd.arg("kill");
        if all {
            cmd.arg("--all");
        }
        cmd.arg(id).arg(signal.to_string());
        self.run_quiet("kill", id, cmd)
    }

    fn delete(&self, id: &str, force: bool) -> Result<()> {
        let mut cmd = self.command();
        cmd.arg("delete");
        if force {
            cmd.arg("--force");
        }
        cmd.arg(id);
        self.run_quiet("delete", id, cmd)
    }

    fn pause(&self, id: &str) -> Result<()> {
        let mut cmd = self.command();
        cmd.arg("pause").arg(id);
        self.run_quiet("pause", id, cmd)
    }

    fn resume(&self, id: &str) -> Result<()> {
        let mut cmd = self.command();
        cmd.arg("resume").arg(id);
        self.run_quiet("resume", id, cmd)
    }

    /// The binary runs the process with this process's stdio and waits for it.
    fn exec(
        &self,
        id: &str,
        process: &oci_spec::runtime::Process,
        io: ExecIo,
    ) -> Result<ExecStarted> {
        let dir = private_temp_dir("exec")?;
        let path = dir.join("process.json");
        let json =
            serde_json::to_vec(process).map_err(|e| EngineError::encode("exec process", e))?;
        std::fs::write(&path, json).map_err(|e| EngineError::io(&path, e))?;
        let mut cmd = self.command();
        cmd.arg("exec").arg("--process").arg(&path);
        if io.detach {
            cmd.arg("--detach");
        }
        cmd.arg(id);
        if let Some(out) = io.output {
            // The binary waits for the process: it is the probe's stand-in, our child.
            let child = cmd
                .stdin(Stdio::null())
                .stdout(stdio_from(out)?)
                .stderr(stdio_from(out)?)
                .spawn()
                .map_err(|e| self.spawn_err("exec", id, e));
            // The process file is read by the time the binary forks the process; a stale
            // directory in the temporary dir is all a slow start could leave.
            let child = child?;
            let _ = std::fs::remove_dir_all(&dir);
            return Ok(ExecStarted {
                pid: Some(child.id() as i32),
                ..Default::default()
            });
        }
        if !io.stdin {
            cmd.stdin(Stdio::null());
        }
        let status = cmd.status().map_err(|e| self.spawn_err("exec", id, e));
        let _ = std::fs::remove_dir_all(&dir);
        let status = status?;
        Ok(ExecStarted {
            finished: Some(crate::sys::exit_code_of(status)),
            ..Default::default()
        })
    }
}

/// Waits for child `pid`; returns Docker's code for how it ended (125 when it cannot be waited
/// for).
pub fn wait_for(pid: i32) -> i32 {
    let mut status = 0;
    loop {
        // SAFETY: waiting for our own child.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            return crate::sys::decode_wait_status(status).unwrap_or(125);
        }
        if r < 0 && std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            return 125;
        }
    }
}

/// A fresh private directory under the temporary directory (for sockets and process files).
fn private_temp_dir(what: &str) -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "berth-{what}-{}-{}",
        std::process::id(),
        crate::names::new_id().get(..8).unwrap_or("x")
    ));
    std::fs::create_dir_all(&dir).map_err(|e| EngineError::io(&dir, e))?;
    Ok(dir)
}

/// Strips runc's log decoration (`time="…" level=error msg="…"`) down to the message.
fn clean_message(text: &str) -> String {
    let line = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    if let Some(start) = line.find("msg=\"") {
        let rest = &line[start + 5..];
        let end = rest.rfind('"').unwrap_or(rest.len());
        return rest[..end].replace("\\\"", "\"");
    }
    line.to_string()
}

/// Receives the PTY master a runtime sends over a console socket (SCM_RIGHTS).
pub fn receive_console(listener: &std::os::unix::net::UnixListener) -> Result<OwnedFd> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let (conn, _) = listener
        .accept()
        .map_err(|e| EngineError::os("console socket accept", e))?;
    let mut buf = [0u8; 4096];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(
        conn.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(|e| EngineError::os("console socket recvmsg", e))?;
    for cmsg in msg
        .cmsgs()
        .map_err(|e| EngineError::os("console socket", e))?
    {
        if let ControlMessageOwned::ScmRights(fds) = cmsg {
            if let Some(fd) = fds.first() {
                // SAFETY: the kernel just installed this descriptor in our table for us.
                return Ok(unsafe { OwnedFd::from_raw_fd(*fd) });
            }
        }
    }
    Err(EngineError::os(
        "console socket",
        std::io::Error::new(std::io::ErrorKind::InvalidData, "no terminal received"),
    ))
}

#[cfg(test)]
pub(crate) mod fake;

#[cfg(test)]
mod tests {
    #[test]
    fn runc_messages_are_cleaned() {
        let text = "time=\"2026\" level=error msg=\"runc create failed: exec: \\\"nope\\\": executable file not found in $PATH\"\n";
        assert_eq!(
            super::clean_message(text),
            "runc create failed: exec: \"nope\": executable file not found in $PATH"
        );
    }
}
