//! A fake OCI runtime for unit tests of lifecycle and monitor code: `create` runs the bundle's
//! `process.args` directly on the host (no namespaces, no cgroup) with the given stdio, as a
//! child of the caller, and every call is recorded.
use super::{ExecIo, ExecStarted, OciRuntime};
use crate::error::{EngineError, Result};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;

#[derive(Debug, Default)]
pub(crate) struct FakeRuntime {
    /// Every call, as "verb id" (create, start, kill, delete, pause, resume, exec).
    pub calls: Mutex<Vec<String>>,
    /// When set, `create` fails with this errno as the init's exec error.
    pub fail_create_errno: Option<i32>,
}

impl FakeRuntime {
    fn note(&self, call: String) {
        if let Ok(mut calls) = self.calls.lock() {
            calls.push(call);
        }
    }

    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }
}

fn stdio_dup(fd: RawFd) -> Result<Stdio> {
    // SAFETY: duplicating a descriptor the caller keeps open; the copy is ours.
    let dup = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
    if dup < 0 {
        return Err(EngineError::last_os("dup"));
    }
    // SAFETY: `dup` is a fresh descriptor nobody else owns.
    Ok(Stdio::from(unsafe { OwnedFd::from_raw_fd(dup) }))
}

impl OciRuntime for FakeRuntime {
    fn create(
        &self,
        id: &str,
        bundle: &Path,
        stdio: [RawFd; 3],
        _console_socket: Option<&Path>,
    ) -> Result<i32> {
        self.note(format!("create {id}"));
        if let Some(errno) = self.fail_create_errno {
            return Err(EngineError::Runtime {
                id: id.to_string(),
                source: berth_runtime::RuntimeError::Exec {
                    message: "exec: \"fake\": fake failure".into(),
                    source: std::io::Error::from_raw_os_error(errno),
                },
            });
        }
        let spec = oci_spec::runtime::Spec::load(bundle.join("config.json"))?;
        let args = spec
            .process()
            .as_ref()
            .and_then(|p| p.args().clone())
            .unwrap_or_default();
        let Some((program, rest)) = args.split_first() else {
            return Err(EngineError::state(id, "fake runtime: no args"));
        };
        let child = Command::new(program)
            .args(rest)
            .stdin(stdio_dup(stdio[0])?)
            .stdout(stdio_dup(stdio[1])?)
            .stderr(stdio_dup(stdio[2])?)
            .spawn()
            .map_err(|e| EngineError::io(program, e))?;
        Ok(child.id() as i32)
    }

    fn start(&self, id: &str) -> Result<()> {
        self.note(format!("start {id}"));
        Ok(())
    }

    fn kill(&self, id: &str, signal: i32, _all: bool) -> Result<()> {
        self.note(format!("kill {id} {signal}"));
        Ok(())
    }

    fn delete(&self, id: &str, _force: bool) -> Result<()> {
        self.note(format!("delete {id}"));
        Ok(())
    }

    fn pause(&self, id: &str) -> Result<()> {
        self.note(format!("pause {id}"));
        Ok(())
    }

    fn resume(&self, id: &str) -> Result<()> {
        self.note(format!("resume {id}"));
        Ok(())
    }

    fn exec(
        &self,
        id: &str,
        process: &oci_spec::runtime::Process,
        io: ExecIo,
    ) -> Result<ExecStarted> {
        self.note(format!("exec {id}"));
        if let Some(out) = io.output {
            // A probe: run it on the host, as `create` runs the init.
            let args = process.args().clone().unwrap_or_default();
            let Some((program, rest)) = args.split_first() else {
                return Err(EngineError::state(id, "fake runtime: no exec args"));
            };
            let child = Command::new(program)
                .args(rest)
                .stdin(Stdio::null())
                .stdout(stdio_dup(out)?)
                .stderr(stdio_dup(out)?)
                .spawn()
                .map_err(|e| EngineError::io(program, e))?;
            return Ok(ExecStarted {
                pid: Some(child.id() as i32),
                ..Default::default()
            });
        }
        Ok(ExecStarted {
            finished: Some(0),
            ..Default::default()
        })
    }
}
