//! `checkpoint` and `restore` with runc's flags.

use super::signals;
use berth_runtime::{CheckpointOptions, RestoreOptions, Runtime};
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug)]
pub struct CheckpointArgs {
    pub id: String,
    /// Path for saving criu image files
    #[arg(long = "image-path", default_value = "checkpoint")]
    pub image_path: PathBuf,
    /// Path for saving work files and logs
    #[arg(long = "work-path")]
    pub work_path: Option<PathBuf>,
    /// Path for previous criu image files in pre-dump
    #[arg(long = "parent-path")]
    pub parent_path: Option<PathBuf>,
    /// Leave the process running after checkpointing
    #[arg(long = "leave-running")]
    pub leave_running: bool,
    /// Allow open tcp connections
    #[arg(long = "tcp-established")]
    pub tcp_established: bool,
    /// Allow external unix sockets
    #[arg(long = "ext-unix-sk")]
    pub ext_unix_sk: bool,
    /// Allow shell jobs
    #[arg(long = "shell-job")]
    pub shell_job: bool,
    /// Handle file locks, for safety
    #[arg(long = "file-locks")]
    pub file_locks: bool,
    /// Dump container's memory information only, leave the container running after this
    #[arg(long = "pre-dump")]
    pub pre_dump: bool,
    /// Cgroups mode: soft (default), full, strict or ignore
    #[arg(long = "manage-cgroups-mode")]
    pub manage_cgroups_mode: Option<String>,
}

#[derive(clap::Args, Debug)]
pub struct RestoreArgs {
    pub id: String,
    /// Path to the bundle directory
    #[arg(short, long, default_value = ".")]
    pub bundle: PathBuf,
    /// Path to criu image files for restoring
    #[arg(long = "image-path", default_value = "checkpoint")]
    pub image_path: PathBuf,
    /// Path for saving work files and logs
    #[arg(long = "work-path")]
    pub work_path: Option<PathBuf>,
    /// Allow open tcp connections
    #[arg(long = "tcp-established")]
    pub tcp_established: bool,
    /// Allow external unix sockets
    #[arg(long = "ext-unix-sk")]
    pub ext_unix_sk: bool,
    /// Allow shell jobs
    #[arg(long = "shell-job")]
    pub shell_job: bool,
    /// Handle file locks, for safety
    #[arg(long = "file-locks")]
    pub file_locks: bool,
    /// Cgroups mode: soft (default), full, strict or ignore
    #[arg(long = "manage-cgroups-mode")]
    pub manage_cgroups_mode: Option<String>,
    /// Detach from the container's process
    #[arg(short, long)]
    pub detach: bool,
    /// File to write the restored init's pid to
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Unix socket that would receive the pty master (terminal containers are refused)
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// Accepted for compatibility
    #[arg(long = "no-subreaper")]
    pub no_subreaper: bool,
    /// Accepted for compatibility
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
}

pub fn checkpoint(rt: &Runtime, a: &CheckpointArgs, criu: &Path) -> anyhow::Result<i32> {
    rt.checkpoint(
        &a.id,
        &CheckpointOptions {
            criu: criu.to_path_buf(),
            image_path: a.image_path.clone(),
            work_path: a.work_path.clone(),
            parent_path: a.parent_path.clone(),
            leave_running: a.leave_running,
            tcp_established: a.tcp_established,
            ext_unix_sk: a.ext_unix_sk,
            shell_job: a.shell_job,
            file_locks: a.file_locks,
            pre_dump: a.pre_dump,
            manage_cgroups_mode: a.manage_cgroups_mode.clone(),
        },
    )?;
    Ok(0)
}

/// Restores; in the foreground (no `--detach`) waits for the restored init like `run`, passing
/// signals on, and deletes the container after.
pub fn restore(rt: &Runtime, a: &RestoreArgs, criu: &Path) -> anyhow::Result<i32> {
    if !a.detach {
        signals::hold_forwarded();
    }
    let st = rt.restore(
        &a.id,
        &a.bundle,
        &RestoreOptions {
            criu: criu.to_path_buf(),
            image_path: a.image_path.clone(),
            work_path: a.work_path.clone(),
            tcp_established: a.tcp_established,
            ext_unix_sk: a.ext_unix_sk,
            shell_job: a.shell_job,
            file_locks: a.file_locks,
            manage_cgroups_mode: a.manage_cgroups_mode.clone(),
            pid_file: a
                .pid_file
                .as_ref()
                .map(|p| std::path::absolute(p).unwrap_or_else(|_| p.clone())),
            console_socket: a.console_socket.clone(),
        },
    )?;
    if a.detach {
        return Ok(0);
    }
    signals::forward_to(st.pid);
    let code = berth_runtime::sys::wait_child(st.pid)?;
    rt.delete(&a.id, true)?;
    Ok(code)
}
