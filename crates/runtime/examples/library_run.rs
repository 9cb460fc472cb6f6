//! How the engine drives the library: `library_run ROOT BUNDLE ID` creates and starts the
//! container with its stdout on a pipe (CreateOptions::stdio), execs a second process into it
//! with its own pipe (ExecOptions::stdio), waits for both (they are children of this process),
//! deletes the container and prints a JSON summary. Single-threaded, as the library requires.

use berth_runtime::{CreateOptions, ExecOptions, Runtime};
use std::io::Read;
use std::os::fd::AsRawFd;

fn pipe() -> anyhow::Result<(std::fs::File, std::fs::File)> {
    let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
    Ok((std::fs::File::from(r), std::fs::File::from(w)))
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    anyhow::ensure!(args.len() == 4, "usage: library_run ROOT BUNDLE ID");
    let rt = Runtime::new(&args[1]);
    let id = &args[3];
    let null = std::fs::File::open("/dev/null")?;

    let (mut init_out, init_w) = pipe()?;
    let state = rt.create_and_start(
        id,
        std::path::Path::new(&args[2]),
        &CreateOptions {
            stdio: Some([null.as_raw_fd(), init_w.as_raw_fd(), 2]),
            ..Default::default()
        },
    )?;
    drop(init_w);

    let mut process = oci_spec::runtime::Process::default();
    process.set_args(Some(vec![
        "sh".into(),
        "-c".into(),
        "echo from-exec; exit 3".into(),
    ]));
    process.set_terminal(Some(false));
    process.set_cwd("/".into());
    process.set_capabilities(None);
    let (mut exec_out, exec_w) = pipe()?;
    let exec_pid = rt.exec(
        id,
        &process,
        &ExecOptions {
            stdio: Some([null.as_raw_fd(), exec_w.as_raw_fd(), 2]),
            ..Default::default()
        },
    )?;
    drop(exec_w);
    let mut exec_text = String::new();
    exec_out.read_to_string(&mut exec_text)?;
    let exec_status = berth_runtime::sys::wait_child(exec_pid)?;

    rt.kill(id, libc::SIGTERM, false)?;
    let mut init_text = String::new();
    init_out.read_to_string(&mut init_text)?;
    let init_status = berth_runtime::sys::wait_child(state.pid)?;
    rt.delete(id, false)?;
    println!(
        "{}",
        serde_json::json!({
            "init_pid": state.pid,
            "init_output": init_text,
            "init_status": init_status,
            "exec_output": exec_text,
            "exec_status": exec_status,
            "gone": rt.state(id).is_err(),
        })
    );
    Ok(())
}
