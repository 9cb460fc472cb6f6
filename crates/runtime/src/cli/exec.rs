//! `exec`: a process from `--process process.json`, or the container's own process with the
//! command line's args and overrides, run inside the container; waits unless `--detach`.

use super::signals;
use anyhow::Context;
use berth_runtime::{ExecOptions, Runtime};
use oci_spec::runtime::{Capability, LinuxCapabilities, Process};
use std::path::PathBuf;
use std::str::FromStr;

#[derive(clap::Args, Debug)]
pub struct ExecArgs {
    pub id: String,
    /// Command and arguments
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
    /// Path to a process.json
    #[arg(short, long)]
    pub process: Option<PathBuf>,
    /// Allocate a pseudo-TTY
    #[arg(short, long)]
    pub tty: bool,
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// Detach from the process
    #[arg(short, long)]
    pub detach: bool,
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Extra environment variables (KEY=VALUE)
    #[arg(short, long)]
    pub env: Vec<String>,
    /// Working directory in the container
    #[arg(long)]
    pub cwd: Option<PathBuf>,
    /// uid[:gid]
    #[arg(short, long)]
    pub user: Option<String>,
    /// Additional gids
    #[arg(short = 'g', long = "additional-gids")]
    pub additional_gids: Vec<u32>,
    /// Add a capability
    #[arg(short = 'c', long = "cap")]
    pub cap: Vec<String>,
    /// Set no_new_privs
    #[arg(long = "no-new-privs")]
    pub no_new_privs: bool,
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
    /// Allow exec in a paused container (the process runs once it is resumed)
    #[arg(long = "ignore-paused")]
    pub ignore_paused: bool,
    /// Run the process in an (existing) sub-cgroup: PATH, or CONTROLLER[,CONTROLLER]:PATH
    #[arg(long = "cgroup")]
    pub cgroup: Vec<String>,
    /// Accepted for compatibility
    #[arg(long = "apparmor")]
    pub apparmor: Option<String>,
    /// Accepted for compatibility
    #[arg(long = "process-label")]
    pub process_label: Option<String>,
}

fn build_process(rt: &Runtime, a: &ExecArgs) -> anyhow::Result<Process> {
    if let Some(path) = &a.process {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let mut value: serde_json::Value = serde_json::from_slice(&bytes)
            .with_context(|| format!("parsing {}", path.display()))?;
        // As runc: a process without `user` runs as 0:0; `cwd` is required.
        if let Some(obj) = value.as_object_mut() {
            obj.entry("user")
                .or_insert_with(|| serde_json::json!({"uid": 0, "gid": 0}));
            if obj
                .get("cwd")
                .and_then(|c| c.as_str())
                .is_none_or(str::is_empty)
            {
                anyhow::bail!("Cwd property must not be empty");
            }
        }
        return serde_json::from_value(value)
            .with_context(|| format!("parsing {}", path.display()));
    }
    anyhow::ensure!(!a.command.is_empty(), "exec: command must not be empty");
    let st = rt.state(&a.id)?;
    let bundle = berth_runtime::spec::load_bundle(&st.bundle)?;
    let mut p = bundle.spec.process().clone().unwrap_or_default();
    p.set_args(Some(a.command.clone()));
    p.set_terminal(Some(a.tty));
    let mut env = p.env().clone().unwrap_or_default();
    env.extend(a.env.iter().cloned());
    p.set_env(Some(env));
    if let Some(cwd) = &a.cwd {
        p.set_cwd(cwd.clone());
    }
    if let Some(user) = &a.user {
        let (uid, gid) = user.split_once(':').unwrap_or((user, "0"));
        let u = p.user_mut();
        u.set_uid(
            uid.parse()
                .with_context(|| format!("invalid uid {uid:?}"))?,
        );
        u.set_gid(
            gid.parse()
                .with_context(|| format!("invalid gid {gid:?}"))?,
        );
    }
    if !a.additional_gids.is_empty() {
        p.user_mut()
            .set_additional_gids(Some(a.additional_gids.clone()));
    }
    if !a.cap.is_empty() {
        let mut caps = p
            .capabilities()
            .clone()
            .unwrap_or_else(LinuxCapabilities::default);
        for name in &a.cap {
            let cap = Capability::from_str(name.trim_start_matches("CAP_"))
                .map_err(|_| anyhow::anyhow!("unknown capability {name:?}"))?;
            let add = |s: &Option<oci_spec::runtime::Capabilities>| {
                let mut s = s.clone().unwrap_or_default();
                s.insert(cap);
                Some(s)
            };
            let (b, e, pm) = (
                add(caps.bounding()),
                add(caps.effective()),
                add(caps.permitted()),
            );
            caps.set_bounding(b);
            caps.set_effective(e);
            caps.set_permitted(pm);
        }
        p.set_capabilities(Some(caps));
    }
    if a.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    Ok(p)
}

/// `--cgroup` values: "sub" (every controller) or "cpu,memory:sub".
fn parse_sub_cgroups(values: &[String]) -> anyhow::Result<Vec<(Vec<String>, String)>> {
    values
        .iter()
        .map(|v| {
            let (controllers, path) = match v.split_once(':') {
                Some((c, p)) => (c.split(',').map(str::to_owned).collect(), p.to_owned()),
                None => (Vec::new(), v.clone()),
            };
            anyhow::ensure!(!path.is_empty(), "invalid --cgroup argument {v:?}");
            Ok((controllers, path))
        })
        .collect()
}

/// runc exits 255 whenever exec fails (missing container, bad process JSON, failed setup).
pub fn exec(rt: &Runtime, a: &ExecArgs) -> anyhow::Result<i32> {
    exec_inner(rt, a).map_err(|e| match e.downcast::<super::CodedError>() {
        Ok(coded) => coded.into(),
        Err(e) => super::CodedError {
            code: 255,
            message: format!("exec failed: {e:#}"),
        }
        .into(),
    })
}

fn exec_inner(rt: &Runtime, a: &ExecArgs) -> anyhow::Result<i32> {
    let process = build_process(rt, a)?;
    let console = if !a.detach && a.console_socket.is_none() && process.terminal().unwrap_or(false)
    {
        Some(super::tty::listen(rt.root(), &a.id)?)
    } else {
        None
    };
    let opts = ExecOptions {
        console_socket: console
            .as_ref()
            .map(|c| c.path.clone())
            .or_else(|| a.console_socket.clone()),
        pid_file: a
            .pid_file
            .as_ref()
            .map(|p| std::path::absolute(p).unwrap_or_else(|_| p.clone())),
        preserve_fds: a.preserve_fds,
        stdio: None,
        detach: a.detach,
        ignore_paused: a.ignore_paused,
        sub_cgroups: parse_sub_cgroups(&a.cgroup)?,
    };
    if !a.detach {
        signals::hold_forwarded();
    }
    let pid = match rt.exec(&a.id, &process, &opts) {
        Ok(pid) => pid,
        // runc exits 255 when the exec itself fails.
        Err(e) => {
            return Err(super::CodedError {
                code: 255,
                message: format!("exec failed: {e}"),
            }
            .into())
        }
    };
    if a.detach {
        return Ok(0);
    }
    signals::forward_to(pid);
    match console {
        Some(listener) => {
            let master = listener.receive_master()?;
            drop(listener);
            super::tty::proxy(master, pid)
        }
        None => Ok(berth_runtime::sys::wait_child(pid)?),
    }
}
