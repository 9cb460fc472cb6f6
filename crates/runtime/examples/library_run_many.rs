//! A monitor's fast path, repeated: `library_run_many ROOT BUNDLE ID_PREFIX COUNT` runs the
//! bundle COUNT times through `create_and_start`, reaps each init by the pid it returned (a
//! child of this process), deletes the container and prints a JSON summary of the pids and
//! exit statuses. Exits 1 when any pid was not > 0 or any wait failed. Single-threaded, as the
//! library requires.

use berth_runtime::{CreateOptions, Runtime};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::Duration;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    anyhow::ensure!(
        args.len() == 5,
        "usage: library_run_many ROOT BUNDLE ID_PREFIX COUNT"
    );
    let rt = Runtime::new(&args[1]);
    let bundle = Path::new(&args[2]);
    let count: usize = args[4].parse()?;
    let null = std::fs::File::open("/dev/null")?;
    let mut runs = Vec::new();
    let mut ok = true;
    for i in 0..count {
        let id = format!("{}-{i}", args[3]);
        let state = rt.create_and_start(
            &id,
            bundle,
            &CreateOptions {
                stdio: Some([null.as_raw_fd(), null.as_raw_fd(), 2]),
                ..Default::default()
            },
        )?;
        let waited = if state.pid > 0 {
            // Bounded: an init that never ends fails this run instead of hanging it.
            match berth_runtime::sys::wait_child_timeout(state.pid, Duration::from_secs(30)) {
                Ok(Some(code)) => Ok(code),
                Ok(None) => {
                    let _ = rt.kill(&id, libc::SIGKILL, true);
                    let _ =
                        berth_runtime::sys::wait_child_timeout(state.pid, Duration::from_secs(30));
                    Err("still running after 30s".to_owned())
                }
                Err(e) => Err(e.to_string()),
            }
        } else {
            Err("no pid".to_owned())
        };
        rt.delete(&id, true)?;
        ok &= state.pid > 0 && waited == Ok(0);
        runs.push(serde_json::json!({
            "pid": state.pid,
            "status": state.status.to_string(),
            "exit": match &waited { Ok(code) => serde_json::json!(code), Err(e) => serde_json::json!(e) },
        }));
    }
    println!("{}", serde_json::json!({ "runs": runs }));
    if !ok {
        std::process::exit(1);
    }
    Ok(())
}
