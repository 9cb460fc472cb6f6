//! The engine's one door to the OCI runtime: create / start / kill / delete / exec / pause of a
//! container bundle, with the runtime state under `<berth root>/runtime`. Every runtime call the
//! engine makes goes through here, so switching runtimes touches only this file.
//!
//! By default it calls the `berth-runtime` library in-process (the init becomes a child of the
//! caller, the monitor). With `BERTH_RUNTIME=<binary>` it drives a runc-compatible binary
//! instead (runc, crun, berth-runtime), for comparison. Called only from single-threaded
//! processes.
use crate::error::{EngineError, Result};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The runtime as the engine sees it.
#[derive(Debug, Clone)]
pub struct Backend {
    state_root: PathBuf,
    /// A runc-compatible binary to drive instead of the library.
    binary: Option<PathBuf>,
    library: berth_runtime::Runtime,
}

fn rt_err(e: berth_runtime::RuntimeError) -> EngineError {
    EngineError::Runtime(e.to_string())
}

/// Duplicates `fd` into something `Stdio` can own.
fn stdio_from(fd: RawFd) -> Result<Stdio> {
    // SAFETY: fcntl(F_DUPFD_CLOEXEC) on a descriptor the caller keeps open; the result is a new
    // descriptor we own.
    let dup = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
    if dup < 0 {
        return Err(EngineError::Sys(format!(
            "dup of fd {fd}: {}",
            std::io::Error::last_os_error()
        )));
    }
    // SAFETY: `dup` is a fresh descriptor owned by nobody else.
    Ok(Stdio::from(unsafe { OwnedFd::from_raw_fd(dup) }))
}

impl Backend {
    pub fn new(berth_root: &Path) -> Backend {
        let state_root = berth_root.join("runtime");
        let binary = std::env::var_os("BERTH_RUNTIME")
            .filter(|b| !b.is_empty())
            .map(PathBuf::from);
        Backend {
            library: berth_runtime::Runtime::new(state_root.clone()),
            state_root,
            binary,
        }
    }

    fn binary(&self) -> &Path {
        self.binary.as_deref().unwrap_or(Path::new("runc"))
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(self.binary());
        cmd.arg("--root").arg(&self.state_root);
        cmd
    }

    fn run_quiet(&self, what: &str, id: &str, mut cmd: Command) -> Result<()> {
        let out = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .map_err(|e| {
                EngineError::Runtime(format!(
                    "{what} {id}: running {}: {e}",
                    self.binary().display()
                ))
            })?;
        if out.status.success() {
            Ok(())
        } else {
            Err(EngineError::Runtime(clean_message(
                &String::from_utf8_lossy(&out.stderr),
            )))
        }
    }

    /// Creates and starts the container from `bundle`; its stdio are `stdio` (or a terminal whose
    /// master is sent to `console_socket`). Returns the init's PID, a child of the caller. The
    /// library does it in one step, without the exec-fifo round trip; a binary needs `start`.
    pub fn create(
        &self,
        id: &str,
        bundle: &Path,
        stdio: [RawFd; 3],
        console_socket: Option<&Path>,
    ) -> Result<i32> {
        if self.binary.is_none() {
            // The returned state always names the init, even when a fast command has already
            // exited; its exit status is still ours to reap.
            let opts = berth_runtime::CreateOptions {
                console_socket: console_socket.map(Path::to_path_buf),
                stdio: Some(stdio),
                ..Default::default()
            };
            let state = self
                .library
                .create_and_start(id, bundle, &opts)
                .map_err(rt_err)?;
            return Ok(state.pid);
        }
        let pid_file = bundle.join("init.pid");
        let _ = std::fs::remove_file(&pid_file);
        let log_path = bundle.join("runtime.log");
        let _ = std::fs::remove_file(&log_path);
        let mut cmd = Command::new(self.binary());
        cmd.arg("--root")
            .arg(&self.state_root)
            .arg("--log")
            .arg(&log_path);
        cmd.arg("create")
            .arg("--bundle")
            .arg(bundle)
            .arg("--pid-file")
            .arg(&pid_file);
        if let Some(sock) = console_socket {
            cmd.arg("--console-socket").arg(sock);
        }
        cmd.arg(id);
        let (err_read, err_write) =
            rustix::pipe::pipe().map_err(|e| EngineError::Sys(format!("pipe: {e}")))?;
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
        let status = cmd.status().map_err(|e| {
            EngineError::Runtime(format!(
                "create {id}: running {}: {e}",
                self.binary().display()
            ))
        })?;
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
            return Err(EngineError::Runtime(text));
        }
        let pid_text =
            std::fs::read_to_string(&pid_file).map_err(|e| EngineError::io(&pid_file, e))?;
        pid_text
            .trim()
            .parse()
            .map_err(|_| EngineError::Runtime(format!("bad pid file {}", pid_file.display())))
    }

    /// Lets a created container run; a no-op for the library, whose create already started it.
    pub fn start(&self, id: &str) -> Result<()> {
        if self.binary.is_none() {
            return Ok(());
        }
        let mut cmd = self.command();
        cmd.arg("start").arg(id);
        self.run_quiet("start", id, cmd)
    }

    pub fn kill(&self, id: &str, signal: i32, all: bool) -> Result<()> {
        if self.binary.is_none() {
            return self.library.kill(id, signal, all).map_err(rt_err);
        }
        let mut cmd = self.command();
        cmd.arg("kill");
        if all {
            cmd.arg("--all");
        }
        cmd.arg(id).arg(signal.to_string());
        self.run_quiet("kill", id, cmd)
    }

    pub fn delete(&self, id: &str, force: bool) -> Result<()> {
        if self.binary.is_none() {
            return self.library.delete(id, force).map_err(rt_err);
        }
        let mut cmd = self.command();
        cmd.arg("delete");
        if force {
            cmd.arg("--force");
        }
        cmd.arg(id);
        self.run_quiet("delete", id, cmd)
    }

    pub fn pause(&self, id: &str) -> Result<()> {
        if self.binary.is_none() {
            return self.library.pause(id).map_err(rt_err);
        }
        let mut cmd = self.command();
        cmd.arg("pause").arg(id);
        self.run_quiet("pause", id, cmd)
    }

    pub fn resume(&self, id: &str) -> Result<()> {
        if self.binary.is_none() {
            return self.library.resume(id).map_err(rt_err);
        }
        let mut cmd = self.command();
        cmd.arg("resume").arg(id);
        self.run_quiet("resume", id, cmd)
    }

    /// Runs `process` inside the container (joins all its namespaces and cgroup), with this
    /// process's stdio; returns its exit code, or 0 at once with `detach`.
    pub fn exec(
        &self,
        id: &str,
        process: &oci_spec::runtime::Process,
        detach: bool,
        stdin: bool,
    ) -> Result<i32> {
        if self.binary.is_none() {
            return self.exec_library(id, process, detach, stdin);
        }
        let dir = tempfile_dir()?;
        let path = dir.join("process.json");
        let json = serde_json::to_vec(process).map_err(|e| EngineError::Sys(e.to_string()))?;
        std::fs::write(&path, json).map_err(|e| EngineError::io(&path, e))?;
        let mut cmd = self.command();
        cmd.arg("exec").arg("--process").arg(&path);
        if detach {
            cmd.arg("--detach");
        }
        cmd.arg(id);
        if !stdin {
            cmd.stdin(Stdio::null());
        }
        let status = cmd
            .status()
            .map_err(|e| EngineError::Runtime(format!("exec in {id}: {e}")));
        let _ = std::fs::remove_dir_all(&dir);
        let status = status?;
        use std::os::unix::process::ExitStatusExt;
        Ok(match (status.code(), status.signal()) {
            (Some(c), _) => c,
            (None, Some(s)) => 128 + s,
            _ => 125,
        })
    }
}

impl Backend {
    /// Exec through the library: the process is our child; with a terminal we receive its PTY
    /// master over a console socket and proxy this terminal to it.
    fn exec_library(
        &self,
        id: &str,
        process: &oci_spec::runtime::Process,
        detach: bool,
        stdin: bool,
    ) -> Result<i32> {
        let tty = process.terminal().unwrap_or(false);
        let null = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/null")
            .map_err(|e| EngineError::io("/dev/null", e))?;
        let mut opts = berth_runtime::ExecOptions {
            detach,
            ..Default::default()
        };
        let mut listener = None;
        let mut sock_dir = None;
        if tty {
            let dir = tempfile_dir()?;
            let path = dir.join("console.sock");
            listener = Some(
                std::os::unix::net::UnixListener::bind(&path)
                    .map_err(|e| EngineError::io(&path, e))?,
            );
            opts.console_socket = Some(path);
            sock_dir = Some(dir);
        } else if !stdin {
            opts.stdio = Some([null.as_raw_fd(), 1, 2]);
        }
        let pid = self.library.exec(id, process, &opts);
        if let Some(d) = &sock_dir {
            let _ = std::fs::remove_dir_all(d);
        }
        let pid = pid.map_err(rt_err)?;
        let master = match &listener {
            Some(l) => Some(receive_console(l)?),
            None => None,
        };
        if detach {
            return Ok(0);
        }
        if let Some(master) = master {
            crate::client::proxy_terminal(master, stdin);
        }
        Ok(wait_for(pid))
    }
}

/// Waits for child `pid`; returns Docker's code for how it ended.
pub fn wait_for(pid: i32) -> i32 {
    let mut status = 0;
    loop {
        // SAFETY: waiting for our own child.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            break;
        }
        if r < 0 && std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            return 125;
        }
    }
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        125
    }
}

fn tempfile_dir() -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "berth-exec-{}-{}",
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
        .map_err(|e| EngineError::Sys(format!("console socket accept: {e}")))?;
    let mut buf = [0u8; 4096];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(
        conn.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(|e| EngineError::Sys(format!("console socket recvmsg: {e}")))?;
    for cmsg in msg
        .cmsgs()
        .map_err(|e| EngineError::Sys(format!("console socket: {e}")))?
    {
        if let ControlMessageOwned::ScmRights(fds) = cmsg {
            if let Some(fd) = fds.first() {
                // SAFETY: the kernel just installed this descriptor in our table for us.
                return Ok(unsafe { OwnedFd::from_raw_fd(*fd) });
            }
        }
    }
    Err(EngineError::Sys(
        "console socket: no terminal received".into(),
    ))
}

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
