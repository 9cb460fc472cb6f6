//! `create`, `run`, `kill`, `delete`.

use super::signals;
use berth_runtime::{CreateOptions, Runtime, RuntimeError};
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct CreateArgs {
    pub id: String,
    /// Path to the bundle directory
    #[arg(short, long, default_value = ".")]
    pub bundle: PathBuf,
    /// File to write the init's pid to
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Unix socket that receives the pty master
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// Use MS_MOVE + chroot instead of pivot_root
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// Pass N extra fds (3..3+N) to the container
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
    /// Do not create a new session keyring
    #[arg(long = "no-new-keyring")]
    pub no_new_keyring: bool,
}

impl CreateArgs {
    fn options(&self) -> CreateOptions {
        CreateOptions {
            pid_file: self.pid_file.as_ref().map(|p| absolute(p)),
            console_socket: self.console_socket.clone(),
            no_pivot: self.no_pivot,
            preserve_fds: self.preserve_fds,
            stdio: None,
            no_new_keyring: self.no_new_keyring,
        }
    }
}

fn absolute(p: &std::path::Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub create: CreateArgs,
    /// Detach from the container's process
    #[arg(short, long)]
    pub detach: bool,
    /// Keep the container's state after it exits
    #[arg(long)]
    pub keep: bool,
}

#[derive(clap::Args, Debug)]
pub struct KillArgs {
    pub id: String,
    /// Signal name or number
    #[arg(default_value = "SIGTERM")]
    pub signal: String,
    /// Signal every process in the container
    #[arg(short, long)]
    pub all: bool,
}

#[derive(clap::Args, Debug)]
pub struct DeleteArgs {
    pub id: String,
    /// Kill the container first if it is running
    #[arg(short, long)]
    pub force: bool,
}

pub fn create(rt: &Runtime, a: &CreateArgs) -> anyhow::Result<i32> {
    rt.create(&a.id, &a.bundle, &a.options())?;
    Ok(0)
}

pub fn run(rt: &Runtime, a: &RunArgs) -> anyhow::Result<i32> {
    let mut opts = a.create.options();
    // Foreground with a terminal and no console socket: be the terminal ourselves, like runc.
    let console = if !a.detach
        && opts.console_socket.is_none()
        && super::tty::bundle_wants_terminal(&a.create.bundle)
    {
        let listener = super::tty::listen(rt.root(), &a.create.id)?;
        opts.console_socket = Some(listener.path.clone());
        Some(listener)
    } else {
        None
    };
    if !a.detach {
        signals::hold_forwarded();
    }
    let st = rt.create_and_start(&a.create.id, &a.create.bundle, &opts)?;
    if a.detach {
        return Ok(0);
    }
    let code = match console {
        Some(listener) => {
            let master = listener.receive_master()?;
            drop(listener);
            signals::forward_to(st.pid);
            super::tty::proxy(master, st.pid)?
        }
        None => {
            signals::forward_to(st.pid);
            berth_runtime::sys::wait_child(st.pid)?
        }
    };
    if !a.keep {
        rt.delete(&a.create.id, true)?;
    }
    Ok(code)
}

pub fn kill(rt: &Runtime, a: &KillArgs) -> anyhow::Result<i32> {
    let signal = signals::parse(&a.signal)
        .ok_or_else(|| anyhow::anyhow!("unknown signal {:?}", a.signal))?;
    rt.kill(&a.id, signal, a.all)?;
    Ok(0)
}

pub fn delete(rt: &Runtime, a: &DeleteArgs) -> anyhow::Result<i32> {
    match rt.delete(&a.id, a.force) {
        Ok(()) => Ok(0),
        Err(RuntimeError::NotFound { .. }) if a.force => Ok(0),
        Err(e) => Err(e.into()),
    }
}
