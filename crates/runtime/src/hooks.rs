//! OCI hooks: each runs with the container state JSON on stdin, its own args and env, and an
//! optional timeout (the hook is killed when it passes). The caller decides whether a failure
//! fails the operation (createRuntime, createContainer, startContainer, prestart) or is only
//! logged (poststart, poststop).

use oci_spec::runtime::Hook;
use std::io::{self, Write};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

/// Why a hook failed, naming it.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("hook {}: starting: {source}", path.display())]
    Start {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("hook {}: waiting: {source}", path.display())]
    Wait {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("hook {}: timed out after {secs}s", path.display())]
    Timeout { path: PathBuf, secs: u64 },
    #[error("hook {}: exited with {status}", path.display())]
    Failed { path: PathBuf, status: ExitStatus },
}

/// Where and with what environment a hook runs.
#[derive(Default, Clone, Copy)]
pub struct HookContext<'a> {
    /// Working directory (createContainer hooks: the container's rootfs); None = ours.
    pub cwd: Option<&'a std::path::Path>,
    /// Environment for a hook whose `env` is absent (startContainer hooks: the container
    /// process's); None = ours. As in runc (Go's exec with a nil Env), a hook that sets `env`
    /// gets exactly that.
    pub default_env: Option<&'a [String]>,
}

/// Runs `hooks` in order; the first failure stops and is returned.
pub fn run_all(hooks: &[Hook], state_json: &[u8]) -> Result<(), HookError> {
    run_all_with(hooks, state_json, HookContext::default())
}

/// [`run_all`] with a working directory and default environment.
pub fn run_all_with(
    hooks: &[Hook],
    state_json: &[u8],
    ctx: HookContext<'_>,
) -> Result<(), HookError> {
    for hook in hooks {
        run(hook, state_json, ctx)?;
    }
    Ok(())
}

fn run(hook: &Hook, state_json: &[u8], ctx: HookContext<'_>) -> Result<(), HookError> {
    let path = || hook.path().clone();
    let wait = |source| HookError::Wait {
        path: path(),
        source,
    };
    let mut cmd = Command::new(hook.path());
    if let Some(args) = hook.args() {
        if let Some((first, rest)) = args.split_first() {
            cmd.arg0(first);
            cmd.args(rest);
        }
    }
    let env = match (hook.env().as_deref(), ctx.default_env) {
        (Some(env), _) => Some(env),
        (None, Some(default)) => Some(default),
        (None, None) => None,
    };
    if let Some(env) = env {
        cmd.env_clear();
        for kv in env {
            if let Some((k, v)) = kv.split_once('=') {
                cmd.env(k, v);
            }
        }
    }
    if let Some(dir) = ctx.cwd {
        cmd.current_dir(dir);
    }
    cmd.stdin(Stdio::piped());
    let mut child = cmd.spawn().map_err(|source| HookError::Start {
        path: path(),
        source,
    })?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook may exit without reading its stdin; that is not an error.
        let _ = stdin.write_all(state_json);
    }
    let timeout = hook
        .timeout()
        .filter(|t| *t > 0)
        .map(|t| Duration::from_secs(t as u64));
    if let Some(timeout) = timeout {
        let pidfd = crate::sys::pidfd_open(child.id() as i32).map_err(wait)?;
        if !crate::sys::wait_pidfd(&pidfd, Some(timeout)).map_err(wait)? {
            let _ = child.kill();
            let _ = child.wait();
            return Err(HookError::Timeout {
                path: path(),
                secs: timeout.as_secs(),
            });
        }
    }
    let status = child.wait().map_err(wait)?;
    if status.success() {
        Ok(())
    } else {
        Err(HookError::Failed {
            path: path(),
            status,
        })
    }
}
