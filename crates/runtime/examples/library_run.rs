//! How the engine drives the library: `library_run ROOT BUNDLE ID` creates and starts the
//! container with its stdout on a pipe (CreateOptions::stdio), waits for the init's first line
//! (its "ready" line, which it must print only after installing its SIGTERM trap: PID 1 of a
//! PID namespace ignores signals it has no handler for), execs a second process into it with
//! its own pipe (ExecOptions::stdio), waits for both (they are children of this process),
//! stops the init with SIGTERM, deletes the container and prints a JSON summary.
//! Single-threaded, as the library requires.
//!
//! Every read and wait is bounded: a container that misbehaves makes this fail (after killing
//! and deleting it), never hang.

use berth_runtime::{CreateOptions, ExecOptions, Runtime};
use std::os::fd::AsRawFd;
use std::time::Duration;

/// How long any one read or wait on the container may take.
const DEADLINE: Duration = Duration::from_secs(30);

fn pipe() -> anyhow::Result<(std::fs::File, std::fs::File)> {
    let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
    Ok((std::fs::File::from(r), std::fs::File::from(w)))
}

/// Reads `source` to EOF within DEADLINE.
fn read_all(source: &std::fs::File, what: &str) -> anyhow::Result<String> {
    let bytes = berth_runtime::sys::read_until(source, DEADLINE, |_| false)
        .map_err(|e| anyhow::anyhow!("reading {what}: {e}"))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Reaps child `pid` within DEADLINE.
fn reap(pid: i32, what: &str) -> anyhow::Result<i32> {
    berth_runtime::sys::wait_child_timeout(pid, DEADLINE)
        .map_err(|e| anyhow::anyhow!("waiting for {what} (pid {pid}): {e}"))?
        .ok_or_else(|| anyhow::anyhow!("{what} (pid {pid}) still running after {DEADLINE:?}"))
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    anyhow::ensure!(args.len() == 4, "usage: library_run ROOT BUNDLE ID");
    let rt = Runtime::new(&args[1]);
    let id = &args[3];
    let null = std::fs::File::open("/dev/null")?;

    let (init_out, init_w) = pipe()?;
    let state = rt.create_and_start(
        id,
        std::path::Path::new(&args[2]),
        &CreateOptions {
            stdio: Some([null.as_raw_fd(), init_w.as_raw_fd(), 2]),
            ..Default::default()
        },
    )?;
    drop(init_w);
    let summary = drive(&rt, id, state.pid, &init_out, &null);
    if summary.is_err() {
        // Leave nothing running behind a failure: kill every process, then delete.
        let _ = rt.kill(id, libc::SIGKILL, true);
        let _ = berth_runtime::sys::wait_child_timeout(state.pid, DEADLINE);
        let _ = rt.delete(id, true);
    }
    println!("{}", summary?);
    Ok(())
}

/// Everything after the container started; the caller cleans up when this fails.
fn drive(
    rt: &Runtime,
    id: &str,
    init_pid: i32,
    init_out: &std::fs::File,
    null: &std::fs::File,
) -> anyhow::Result<serde_json::Value> {
    let ready = berth_runtime::sys::read_until(init_out, DEADLINE, |text| text.contains(&b'\n'))
        .map_err(|e| anyhow::anyhow!("waiting for the init's ready line: {e}"))?;

    let mut process = oci_spec::runtime::Process::default();
    process.set_args(Some(vec![
        "sh".into(),
        "-c".into(),
        "echo from-exec; exit 3".into(),
    ]));
    process.set_terminal(Some(false));
    process.set_cwd("/".into());
    process.set_capabilities(None);
    let (exec_out, exec_w) = pipe()?;
    let exec_pid = rt.exec(
        id,
        &process,
        &ExecOptions {
            stdio: Some([null.as_raw_fd(), exec_w.as_raw_fd(), 2]),
            ..Default::default()
        },
    )?;
    drop(exec_w);
    let exec_text = read_all(&exec_out, "the exec'd process's output")?;
    let exec_status = reap(exec_pid, "the exec'd process")?;

    rt.kill(id, libc::SIGTERM, false)?;
    let init_text = String::from_utf8_lossy(&ready).into_owned()
        + &read_all(init_out, "the init's output after SIGTERM")?;
    let init_status = reap(init_pid, "the init after SIGTERM")?;
    rt.delete(id, false)?;
    Ok(serde_json::json!({
        "init_pid": init_pid,
        "init_output": init_text,
        "init_status": init_status,
        "exec_output": exec_text,
        "exec_status": exec_status,
        "gone": rt.state(id).is_err(),
    }))
}
