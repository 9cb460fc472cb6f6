//! `berth exec`: runs a new process inside a running container — joining every namespace and
//! the cgroup of its init through the runtime's exec (setns on `/proc/<pid>/ns/*`, then a fork so
//! the PID namespace takes effect, as `nsenter` does). The command is looked up in the
//! container's own root first, so a missing command gives Docker's 127 and an unexecutable one
//! 126 without a trip through the runtime.
use crate::error::{EngineError, Result};
use crate::lifecycle::Engine;
use crate::record::ContainerRecord;
use oci_spec::runtime::{Process, Spec};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// What `berth exec` was asked.
#[derive(Debug, Clone, Default)]
pub struct ExecRequest {
    pub command: Vec<String>,
    pub env: Vec<String>,
    pub user: Option<String>,
    pub workdir: Option<String>,
    pub tty: bool,
    pub interactive: bool,
    pub detach: bool,
    pub privileged: bool,
}

/// Finds `command` the way execvp would inside `root` with `path_env`; Err is Docker's code.
fn find_command(
    root: &Path,
    command: &str,
    path_env: &str,
) -> std::result::Result<PathBuf, (i32, String)> {
    let check = |p: &Path| -> Option<std::result::Result<PathBuf, (i32, String)>> {
        let meta = std::fs::metadata(p).ok()?;
        if meta.is_dir() || meta.permissions().mode() & 0o111 == 0 {
            return Some(Err((
                126,
                format!("exec: \"{command}\": permission denied"),
            )));
        }
        Some(Ok(p.to_path_buf()))
    };
    let inside = |p: &str| root.join(p.trim_start_matches('/'));
    if command.contains('/') {
        return check(&inside(command)).unwrap_or_else(|| {
            Err((
                127,
                format!("exec: \"{command}\": stat {command}: no such file or directory"),
            ))
        });
    }
    let mut denied = None;
    for dir in path_env.split(':').filter(|d| !d.is_empty()) {
        match check(&inside(&format!("{dir}/{command}"))) {
            Some(Ok(p)) => return Ok(p),
            Some(Err(e)) => denied = Some(e),
            None => {}
        }
    }
    Err(denied.unwrap_or((
        127,
        format!("exec: \"{command}\": executable file not found in $PATH"),
    )))
}

/// Runs `req` in the container; returns the command's exit code (0 at once with `detach`).
pub fn exec(engine: &Engine, record: &ContainerRecord, req: &ExecRequest) -> Result<i32> {
    let process = exec_process(engine, record, req)?;
    engine
        .backend
        .exec(&record.id, &process, req.detach, req.interactive || req.tty)
}

/// The OCI process `req` runs in the running container `record` (its spec's process with the
/// request's command, env, user, workdir, TTY and privileges), after Docker's checks: running,
/// not paused, the command found (127) and executable (126). For callers that run it
/// themselves, like the API service (through the runtime binary, never forking).
pub fn exec_process(
    engine: &Engine,
    record: &ContainerRecord,
    req: &ExecRequest,
) -> Result<Process> {
    if !record.is_running() {
        return Err(EngineError::state(
            &record.id,
            format!("container {} is not running", record.id),
        ));
    }
    if record.state.paused {
        return Err(EngineError::state(
            &record.id,
            format!(
                "container {} is paused, unpause the container before exec",
                record.id
            ),
        ));
    }
    let spec_path = engine.store.container_dir(&record.id).join("config.json");
    let spec = Spec::load(&spec_path)
        .map_err(|e| EngineError::Sys(format!("{}: {e}", spec_path.display())))?;
    let mut process: Process = spec.process().clone().unwrap_or_default();
    let mut env = process.env().clone().unwrap_or_default();
    for entry in &req.env {
        let key = entry.split('=').next().unwrap_or(entry);
        env.retain(|e| e.split('=').next() != Some(key));
        env.push(entry.clone());
    }
    let path_env = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(crate::spec::DEFAULT_PATH)
        .to_string();
    let root = PathBuf::from(format!("/proc/{}/root", record.state.pid));
    let first = req.command.first().ok_or_else(|| EngineError::Command {
        message: "no command given".into(),
        exit_code: 125,
    })?;
    if let Err((code, message)) = find_command(&root, first, &path_env) {
        return Err(EngineError::Command {
            message: format!("OCI runtime exec failed: {message}"),
            exit_code: code,
        });
    }
    if req.tty && !env.iter().any(|e| e.starts_with("TERM=")) {
        env.push("TERM=xterm".into());
    }
    process.set_env(Some(env));
    process.set_args(Some(req.command.clone()));
    process.set_terminal(Some(req.tty));
    if let Some(w) = &req.workdir {
        process.set_cwd(PathBuf::from(w));
    }
    if let Some(u) = &req.user {
        let user = crate::users::resolve_in_rootfs(u, &root)?;
        let mut spec_user = process.user().clone();
        spec_user.set_uid(user.uid);
        spec_user.set_gid(user.gid);
        spec_user.set_additional_gids(Some(user.additional_gids));
        process.set_user(spec_user);
    }
    if req.privileged {
        let all: std::collections::HashSet<oci_spec::runtime::Capability> =
            crate::spec::caps_in_mask(crate::procinfo::bounding_caps())
                .iter()
                .filter_map(|c| c.trim_start_matches("CAP_").parse().ok())
                .collect();
        if let Some(mut caps) = process.capabilities().clone() {
            caps.set_bounding(Some(all.clone()));
            caps.set_effective(Some(all.clone()));
            caps.set_permitted(Some(all));
            process.set_capabilities(Some(caps));
        }
    }
    Ok(process)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_lookup_gives_docker_codes() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("bin")).unwrap();
        std::fs::write(dir.path().join("bin/tool"), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(
            dir.path().join("bin/tool"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        std::fs::write(dir.path().join("bin/data"), "x").unwrap();
        assert!(find_command(dir.path(), "tool", "/bin").is_ok());
        assert!(find_command(dir.path(), "/bin/tool", "").is_ok());
        assert_eq!(find_command(dir.path(), "nope", "/bin").unwrap_err().0, 127);
        assert_eq!(
            find_command(dir.path(), "/bin/data", "/bin").unwrap_err().0,
            126
        );
        assert_eq!(find_command(dir.path(), "/bin", "/bin").unwrap_err().0, 126);
    }
}
