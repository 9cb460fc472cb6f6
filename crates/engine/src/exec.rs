//! `berth exec`: runs a new process inside a running container — joining every namespace and
//! the cgroup of its init through the runtime's exec (setns on `/proc/<pid>/ns/*`, then a fork so
//! the PID namespace takes effect, as `nsenter` does). The command is looked up in the
//! container's own root first, so a missing command gives Docker's 127 and an unexecutable one
//! 126 without a trip through the runtime.
use crate::error::{EngineError, Result};
use crate::record::{ContainerRecord, Store};
use crate::runtime_door::OciRuntime;

pub use crate::events::ExecEvents;
use oci_spec::runtime::{Process, Spec};
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
    /// `--detach-keys` of `exec -it` (Docker's ctrl-p,ctrl-q by default).
    pub detach_keys: crate::detach_keys::DetachKeys,
}

/// Finds `command` as execvp would inside the container whose root is the host directory
/// `root` (`/proc/<pid>/root`), with the runtime's one lookup: every path is resolved inside
/// that root (openat2 RESOLVE_IN_ROOT), so an image's absolute symlinks lead where they lead in
/// the container. Err is Docker's code (127 from ENOENT, 126 from EACCES) and message.
fn find_command(
    root: &Path,
    command: &str,
    path_env: &str,
) -> std::result::Result<(), (i32, String)> {
    use rustix::fd::AsFd;
    use rustix::fs::{Mode, OFlags};
    let dir = rustix::fs::open(
        root,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| (125, format!("{}: {e}", root.display())))?;
    match berth_runtime::process::find_executable(dir.as_fd(), command, path_env) {
        Ok(_) => Ok(()),
        Err(e) if e.errno == libc::ENOENT || e.errno == libc::ENOTDIR => Err((127, e.to_string())),
        Err(e) => Err((126, e.to_string())),
    }
}

/// Runs `req` in the container; returns the command's exit code (0 at once with `detach`, the
/// process then watched by a waiter that records its `exec_die`; see `detached_exec`).
pub(crate) fn run(
    store: &Store,
    runtime: &dyn OciRuntime,
    record: &ContainerRecord,
    req: &ExecRequest,
) -> Result<i32> {
    let process = process_for(store, record, req)?;
    let root = store.root();
    let events = ExecEvents::created(root, record, &crate::names::new_id(), &req.command);
    if req.detach {
        crate::detached_exec::start(root, record, &process, &events)?;
        return Ok(0);
    }
    let io = crate::runtime_door::ExecIo {
        detach: false,
        stdin: req.interactive || req.tty,
        output: None,
    };
    let started = runtime.exec(&record.id, &process, io)?;
    events.started();
    let died = |code: i32| {
        events.died(code);
        code
    };
    if let Some(code) = started.finished {
        return Ok(died(code));
    }
    if let Some(master) = started.console {
        if crate::terminal_session::proxy_terminal(master, io.stdin, req.detach_keys)
            == crate::terminal_session::TerminalEnd::Detached
        {
            // Docker's words and status for a detached exec; the process runs on.
            eprintln!("read escape sequence");
            return Ok(1);
        }
    }
    Ok(died(
        started.pid.map(crate::runtime_door::wait_for).unwrap_or(0),
    ))
}

/// The OCI process `req` runs in the running container `record` (its spec's process with the
/// request's command, env, user, workdir, TTY and privileges), after Docker's checks: running,
/// not paused, the command found (127) and executable (126). `Engine::exec_process` for
/// callers that run it themselves; the monitor's health probes call it on the store alone.
pub(crate) fn process_for(
    store: &Store,
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
    let spec_path = store.container_dir(&record.id).join("config.json");
    let spec = Spec::load(&spec_path).map_err(|e| match e {
        oci_spec::OciSpecError::Io(source) => EngineError::io(&spec_path, source),
        other => EngineError::Spec(other),
    })?;
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
    use std::os::unix::fs::PermissionsExt;

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

    #[test]
    fn absolute_symlinks_resolve_inside_the_container_root() {
        // `/usr/local/bin/tool -> /opt/tool/bin/tool` and `/bin/sh -> /bin/busybox`, as in
        // images: the targets exist only inside the root, never on the host.
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let unique = format!("berth-test-{}", std::process::id());
        let target_dir = root.join("opt").join(&unique).join("bin");
        std::fs::create_dir_all(&target_dir).unwrap();
        std::fs::write(target_dir.join("tool"), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(
            target_dir.join("tool"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        std::fs::create_dir_all(root.join("usr/local/bin")).unwrap();
        std::os::unix::fs::symlink(
            format!("/opt/{unique}/bin/tool"),
            root.join("usr/local/bin/tool"),
        )
        .unwrap();
        assert!(!Path::new("/opt").join(&unique).exists());
        assert!(find_command(root, "tool", "/usr/local/bin:/bin").is_ok());
        assert!(find_command(root, "/usr/local/bin/tool", "").is_ok());
        // A relative escape is clamped to the root too.
        std::os::unix::fs::symlink(
            "../../../../../../etc/passwd",
            root.join("usr/local/bin/escape"),
        )
        .unwrap();
        assert_eq!(
            find_command(root, "escape", "/usr/local/bin")
                .unwrap_err()
                .0,
            127
        );
    }
}
