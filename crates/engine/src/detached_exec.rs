//! A detached exec (`exec -d`, the API's `Detach: true`) and the small waiter that outlives its
//! caller to see it end. Without a daemon nobody else would: the exec's process is not the
//! monitor's child, and the CLI returns at once. So the caller re-executes `berth` at the hidden
//! entry point `__berth-exec-wait` (never a bare fork: the API service is threaded); that entry
//! process forks the waiter and exits, the waiter leaves the caller's session, starts the
//! process through the runtime as its own child, records `exec_start`, tells the caller on a
//! pipe that the process runs (or why it could not), then waits for it and records `exec_die`
//! with its exit code. The process's output goes nowhere, as with Docker's `exec -d`; a TTY's
//! output is read and dropped so the process never blocks on a full terminal.
//!
//! This module must not know about terminals of its callers or the API's exec table.
use crate::error::{EngineError, Result};
use crate::events::ExecEvents;
use crate::record::ContainerRecord;
use oci_spec::runtime::Process;
use serde::{Deserialize, Serialize};
use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// argv\[1\] of the waiter's entry point.
pub const EXEC_WAIT_ENTRY: &str = "__berth-exec-wait";

/// What the caller hands the waiter on its stdin.
#[derive(Debug, Serialize, Deserialize)]
struct WaitRequest {
    container: String,
    exec_id: String,
    command: Vec<String>,
    process: Process,
}

/// The waiter's first (and only) line to its caller: `ok`, or `error <exit code> <message>`.
fn parse_reply(container: &str, reply: &str) -> Result<()> {
    let line = reply.lines().next().unwrap_or_default();
    if line == "ok" {
        return Ok(());
    }
    let mut parts = line.splitn(3, ' ');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("error"), Some(code), Some(message)) => Err(EngineError::Command {
            message: message.to_string(),
            exit_code: code.parse().unwrap_or(126),
        }),
        _ => Err(EngineError::Command {
            message: format!(
                "container {container}: the exec waiter ended without starting the process"
            ),
            exit_code: 126,
        }),
    }
}

/// Starts `process` in `record`'s running container, detached: returns once it runs, with a
/// waiter left behind to record `events`' `exec_start` and (when it ends) `exec_die`.
pub fn start(
    root: &Path,
    record: &ContainerRecord,
    process: &Process,
    events: &ExecEvents,
) -> Result<()> {
    let launch_failed = |reason: String| EngineError::Command {
        message: format!(
            "container {}: starting the exec waiter: {reason}",
            record.id
        ),
        exit_code: 126,
    };
    let program = crate::reexec::entry_program().ok_or_else(|| {
        launch_failed(
            "no program serves berth's hidden entry points: call \
             berth_engine::hidden_entry::run_if_requested() at the start of main, or set \
             BERTH_BINARY to a berth binary"
                .into(),
        )
    })?;
    let request = WaitRequest {
        container: record.id.clone(),
        exec_id: events.exec_id().to_string(),
        command: events.command().to_vec(),
        process: process.clone(),
    };
    let json = serde_json::to_vec(&request).map_err(|e| EngineError::encode("exec process", e))?;
    let mut child = Command::new(&program)
        .arg(EXEC_WAIT_ENTRY)
        .arg("--root")
        .arg(root)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| launch_failed(format!("running {}: {e}", program.display())))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(&json)
            .map_err(|e| launch_failed(format!("sending the process: {e}")))?;
    }
    // The pipe ends when the waiter has answered (or died): it holds the only write end left.
    let mut reply = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        let _ = stdout.read_to_string(&mut reply);
    }
    // The entry process exits as soon as it has forked the waiter: no zombie is left.
    let _ = child.wait();
    parse_reply(&record.id, &reply)
}

/// `__berth-exec-wait --root DIR`, the request on stdin; returns this process's exit code.
pub(crate) fn waiter_main(args: &[OsString]) -> i32 {
    let root = match args {
        [flag, dir] if flag == "--root" => PathBuf::from(dir),
        _ => {
            eprintln!("{EXEC_WAIT_ENTRY}: usage: {EXEC_WAIT_ENTRY} --root DIR < request");
            return 2;
        }
    };
    let answer = |text: &str| {
        let mut out = std::io::stdout();
        let _ = writeln!(out, "{text}");
        let _ = out.flush();
    };
    let mut input = Vec::new();
    let request = match std::io::stdin().read_to_end(&mut input) {
        Ok(_) => serde_json::from_slice::<WaitRequest>(&input),
        Err(e) => {
            answer(&format!("error 126 reading the exec request: {e}"));
            return 1;
        }
    };
    let request = match request {
        Ok(r) => r,
        Err(e) => {
            answer(&format!("error 126 bad exec request: {e}"));
            return 1;
        }
    };
    if !crate::sys::is_single_threaded() {
        answer("error 126 the exec waiter has threads before main; refusing to fork");
        return 1;
    }
    // SAFETY: this process is single-threaded (checked above), so the child may run any code.
    match unsafe { libc::fork() } {
        -1 => {
            let e = std::io::Error::last_os_error();
            answer(&format!("error 126 forking the exec waiter: {e}"));
            1
        }
        0 => {
            let code = wait_for_exec(&root, request, answer);
            // SAFETY: ends the forked waiter without running the parent's atexit handlers twice.
            unsafe { libc::_exit(code) }
        }
        _ => 0,
    }
}

/// The waiter proper: starts the process, answers the caller, waits, records `exec_die`.
fn wait_for_exec(root: &Path, request: WaitRequest, answer: impl Fn(&str)) -> i32 {
    // Out of the caller's session: its terminal hanging up must not end the waiter.
    // SAFETY: setsid has no memory-safety preconditions.
    unsafe { libc::setsid() };
    let store = crate::record::Store::new(root);
    let record = match store.load(&request.container) {
        Ok(r) => r,
        Err(e) => {
            answer(&format!("error {} {e}", e.exit_code()));
            return 1;
        }
    };
    let events = ExecEvents::of_existing(root, &record, &request.exec_id, &request.command);
    let null = match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        Ok(f) => f,
        Err(e) => {
            answer(&format!("error 126 /dev/null: {e}"));
            return 1;
        }
    };
    let runtime = crate::runtime_door::from_env(root);
    let io = crate::runtime_door::ExecIo {
        detach: false,
        stdin: false,
        output: Some(null.as_raw_fd()),
    };
    let started = match runtime.exec(&record.id, &request.process, io) {
        Ok(s) => s,
        Err(e) => {
            let code = match e.command_failure_code() {
                125 => 126,
                c => c,
            };
            answer(&format!("error {code} {e}"));
            return 1;
        }
    };
    events.started();
    answer("ok");
    // From here on nobody reads us: stdout was the caller's pipe.
    let _ = crate::sys::dup_onto(null.as_raw_fd(), 1);
    let _ = crate::sys::dup_onto(null.as_raw_fd(), 2);
    if let Some(master) = started.console {
        // Read and drop what the TTY shows, so the process never blocks writing to it; the
        // master reads EIO once the process (and every holder of the terminal) is gone.
        std::thread::spawn(move || {
            let mut file = std::fs::File::from(master);
            let mut buf = [0u8; 4096];
            while matches!(file.read(&mut buf), Ok(n) if n > 0) {}
        });
    }
    let code = match (started.finished, started.pid) {
        (Some(code), _) => code,
        (None, Some(pid)) => crate::runtime_door::wait_for(pid),
        (None, None) => 125,
    };
    events.died(code);
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_parsed_with_their_codes() {
        assert!(parse_reply("c", "ok\n").is_ok());
        let err = parse_reply("c", "error 127 exec: \"nope\": not found\n").unwrap_err();
        assert_eq!(err.exit_code(), 127);
        assert_eq!(err.to_string(), "exec: \"nope\": not found");
        let err = parse_reply("c", "").unwrap_err();
        assert_eq!(err.exit_code(), 126);
        assert!(err.to_string().contains("container c"), "{err}");
    }
}
