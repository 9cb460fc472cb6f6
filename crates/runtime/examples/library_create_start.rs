//! How a monitor drives `create` then `start` through the library:
//! `library_create_start ROOT BUNDLE ID MARKER` creates the container, checks that it reads as
//! "created" and that its process has not run yet (MARKER, a host path the process creates,
//! is absent), starts it, reaps the init (a child of this process) and prints a JSON summary.
//! Exits 1 when anything was off. Single-threaded, as the library requires.

use berth_runtime::{CreateOptions, Runtime};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::Duration;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    anyhow::ensure!(
        args.len() == 5,
        "usage: library_create_start ROOT BUNDLE ID MARKER"
    );
    let rt = Runtime::new(&args[1]);
    let id = &args[3];
    let marker = Path::new(&args[4]);
    let null = std::fs::File::open("/dev/null")?;

    let created = rt.create(
        id,
        Path::new(&args[2]),
        &CreateOptions {
            stdio: Some([null.as_raw_fd(), null.as_raw_fd(), 2]),
            ..Default::default()
        },
    )?;
    let pid = created.pid;
    let status_after_create = rt.state(id).map(|s| s.status.to_string())?;
    // Give an init that wrongly went ahead the time to show it.
    std::thread::sleep(Duration::from_millis(30));
    let status_before_start = rt.state(id).map(|s| s.status.to_string())?;
    let ran_before_start = marker.exists();
    let start_error = rt.start(id).err().map(|e| e.to_string());
    let exit_status = if pid > 0 {
        // Bounded: an init that never ends fails this run instead of hanging it.
        berth_runtime::sys::wait_child_timeout(pid, Duration::from_secs(30))
            .ok()
            .flatten()
    } else {
        None
    };
    let ran = marker.exists();
    if exit_status.is_none() {
        let _ = rt.kill(id, libc::SIGKILL, true);
        let _ = berth_runtime::sys::wait_child_timeout(pid, Duration::from_secs(30));
    }
    let _ = rt.delete(id, true);
    let ok = pid > 0
        && status_after_create == "created"
        && status_before_start == "created"
        && !ran_before_start
        && start_error.is_none()
        && exit_status == Some(0)
        && ran;
    println!(
        "{}",
        serde_json::json!({
            "pid": pid,
            "status_after_create": status_after_create,
            "status_before_start": status_before_start,
            "ran_before_start": ran_before_start,
            "start_error": start_error,
            "exit_status": exit_status,
            "ran": ran,
        })
    );
    if !ok {
        std::process::exit(1);
    }
    Ok(())
}
