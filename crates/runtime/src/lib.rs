//! berth-runtime: an OCI runtime (runtime-spec 1.x, Linux) with runc's command line and a library
//! API for the engine. A container is a bundle (`config.json` + rootfs) plus a state dir
//! `<root>/<id>/` holding `state.json` and, until `start`, `exec.fifo`.
//!
//! Module map: `spec` (bundle loading), `state` (state file, status), `create` (runtime side of
//! making a container) and `init` (the container init, its child side; its failures are
//! `init_error::InitError`, sent to the runtime with their errno), `namespaces`, `rootfs`,
//! `mount_options`, `secure_join`, `process`, `capabilities`, `console`, `hooks`, `exec`,
//! `lifecycle` (start/kill/delete/pause/…), `cgroup` (glue to berth-cgroups), `seccomp`, `sys`
//! (raw syscalls), `validate` (spec checks before anything is made), `defaults` (`spec`/`features` output),
//! `checkpoint` (checkpoint/restore through CRIU's command line).
//!
//! Security notes (see `init` and `exec` module docs): the init and exec'd processes are
//! non-dumpable until execve and the runtime never re-executes itself inside a container
//! (CVE-2019-5736); every runtime fd is close-on-exec, fds above the preserved ones are marked
//! close-on-exec before exec and the cwd is verified to lie under the container root
//! (CVE-2024-21626); mount targets are resolved inside the rootfs with openat2(RESOLVE_IN_ROOT).
//!
//! Process model: the calling process must be single-threaded when it calls [`Runtime::create`]
//! or [`Runtime::exec`] (they fork). The init becomes a child of the caller, but does not need
//! the caller to stay alive.

pub mod capabilities;
pub mod cgroup;
pub mod checkpoint;
pub mod console;
pub mod create;
pub mod defaults;
pub mod error;
pub mod exec;
pub mod hooks;
pub mod init;
pub mod init_error;
pub mod lifecycle;
pub mod mount_options;
pub mod mountinfo;
pub mod namespaces;
pub mod netdev;
pub mod process;
pub mod rootfs;
pub mod seccomp;
pub mod secure_join;
pub mod spec;
pub mod state;
pub mod sync;
pub mod sys;
pub mod validate;

pub use checkpoint::{CheckpointOptions, RestoreOptions};
pub use error::{Result, RuntimeError};
pub use state::{ContainerState, Status};

use std::os::fd::RawFd;
use std::path::{Path, PathBuf};

/// Default state root, like runc's /run/runc.
pub const DEFAULT_ROOT: &str = "/run/berth-runtime";

/// Options of [`Runtime::create`].
#[derive(Debug, Default, Clone)]
pub struct CreateOptions {
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub no_pivot: bool,
    pub preserve_fds: u32,
    /// Fds the init gets as 0, 1, 2; None = inherit the caller's.
    pub stdio: Option<[RawFd; 3]>,
    /// Do not create a new session keyring (runc's --no-new-keyring).
    pub no_new_keyring: bool,
}

/// Options of [`Runtime::exec`].
#[derive(Debug, Default, Clone)]
pub struct ExecOptions {
    pub console_socket: Option<PathBuf>,
    pub pid_file: Option<PathBuf>,
    pub preserve_fds: u32,
    pub stdio: Option<[RawFd; 3]>,
    pub detach: bool,
    /// Exec even when the container is paused (runc's --ignore-paused); the process starts
    /// frozen and runs on resume.
    pub ignore_paused: bool,
    /// runc's `--cgroup`: sub-cgroups of the container's to put the process in, as
    /// (controllers, relative path); no controllers means every one. The sub-cgroups must exist.
    pub sub_cgroups: Vec<(Vec<String>, String)>,
}

/// A runtime state root.
#[derive(Debug, Clone)]
pub struct Runtime {
    root: PathBuf,
}

impl Runtime {
    pub fn new(root: impl Into<PathBuf>) -> Runtime {
        Runtime { root: root.into() }
    }

    /// The state root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    pub(crate) fn dir(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    /// Makes the state root (0700) and claims `id`'s state directory in it: the create (or
    /// restore) that makes the directory owns the id; any other gets `AlreadyExists`.
    pub(crate) fn claim_state_dir(&self, id: &str) -> Result<PathBuf> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.root)
            .map_err(|e| RuntimeError::io(&self.root, e))?;
        let dir = self.dir(id);
        match std::fs::create_dir(&dir) {
            Ok(()) => Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(RuntimeError::AlreadyExists { id: id.to_owned() })
            }
            Err(e) => Err(RuntimeError::io(&dir, e)),
        }
    }

    /// Creates the container; the init waits for [`Runtime::start`]. The init is a child of the
    /// calling process; the returned `pid` is always its pid.
    pub fn create(&self, id: &str, bundle: &Path, opts: &CreateOptions) -> Result<ContainerState> {
        Ok(create::create(self, id, bundle, opts, true)?.state)
    }

    /// Creates and starts in one step, without the exec-fifo round trip (`run`). Poststart
    /// hooks run before returning. The returned `pid` is always the init's, a child of the
    /// caller to reap with waitpid, even when the process has already exited (the status then
    /// reads "stopped"). The caller must not ignore SIGCHLD (SIG_IGN reaps children itself).
    pub fn create_and_start(
        &self,
        id: &str,
        bundle: &Path,
        opts: &CreateOptions,
    ) -> Result<ContainerState> {
        let state = create::create(self, id, bundle, opts, false)?.state;
        lifecycle::run_poststart(self, id);
        Ok(state)
    }

    /// Lets the init exec the container's process.
    pub fn start(&self, id: &str) -> Result<()> {
        create::validate_id(id)?;
        lifecycle::start(self, id)
    }

    pub fn state(&self, id: &str) -> Result<ContainerState> {
        create::validate_id(id)?;
        lifecycle::state(self, id)
    }

    /// Signals the init, or with `all` every process of the container's cgroup.
    pub fn kill(&self, id: &str, signal: i32, all: bool) -> Result<()> {
        create::validate_id(id)?;
        lifecycle::kill(self, id, signal, all)
    }

    /// Removes a stopped (or created) container; `force` kills a running one first.
    pub fn delete(&self, id: &str, force: bool) -> Result<()> {
        create::validate_id(id)?;
        lifecycle::delete(self, id, force)
    }

    /// Runs `process` in the container; returns its pid (a child of the caller).
    pub fn exec(
        &self,
        id: &str,
        process: &oci_spec::runtime::Process,
        opts: &ExecOptions,
    ) -> Result<i32> {
        create::validate_id(id)?;
        exec::exec(self, id, process, opts)
    }

    pub fn pause(&self, id: &str) -> Result<()> {
        create::validate_id(id)?;
        lifecycle::pause(self, id)
    }

    pub fn resume(&self, id: &str) -> Result<()> {
        create::validate_id(id)?;
        lifecycle::resume(self, id)
    }

    pub fn update(&self, id: &str, resources: &oci_spec::runtime::LinuxResources) -> Result<()> {
        create::validate_id(id)?;
        lifecycle::update(self, id, resources)
    }

    pub fn list(&self) -> Result<Vec<ContainerState>> {
        lifecycle::list(self)
    }

    /// Pids in the container's cgroup.
    pub fn processes(&self, id: &str) -> Result<Vec<i32>> {
        create::validate_id(id)?;
        lifecycle::processes(self, id)
    }

    pub fn stats(&self, id: &str) -> Result<berth_cgroups::Stats> {
        create::validate_id(id)?;
        lifecycle::stats(self, id)
    }

    /// Dumps the container with CRIU (see [`checkpoint::checkpoint`]).
    pub fn checkpoint(&self, id: &str, opts: &CheckpointOptions) -> Result<()> {
        create::validate_id(id)?;
        checkpoint::checkpoint(self, id, opts)
    }

    /// Restores a container from a CRIU image (see [`checkpoint::restore`]). The restored init
    /// is a child of the caller, which must be single-threaded as for `create`.
    pub fn restore(
        &self,
        id: &str,
        bundle: &Path,
        opts: &RestoreOptions,
    ) -> Result<ContainerState> {
        checkpoint::restore(self, id, bundle, opts)
    }
}
