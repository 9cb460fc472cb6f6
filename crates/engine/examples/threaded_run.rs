//! Starts one container from each of 8 threads at once through the engine library, waits for
//! each, and prints its logs: the path a multithreaded caller (an API server) takes, where the
//! engine re-executes this program at its hidden entry point to start each monitor instead of
//! forking. Usage: `threaded_run ROOT ROOTFS` (as root; ROOTFS a directory with `/bin/sh`).
use berth_engine::logs::{print_logs, LogOptions};
use berth_engine::{Engine, RunOptions};
use std::path::PathBuf;

const THREADS: usize = 8;

fn run_one(engine: &Engine, rootfs: PathBuf, n: usize) -> Result<String, String> {
    let mut opts = RunOptions {
        command: vec![
            "/bin/sh".into(),
            "-c".into(),
            format!("echo hello from thread {n}"),
        ],
        rootfs: Some(rootfs),
        ..Default::default()
    };
    opts.host.network_mode = "none".into();
    let record = engine.create(&opts).map_err(|e| format!("create: {e}"))?;
    let id = record.id.clone();
    engine
        .start_detached(&id)
        .map_err(|e| format!("start {id}: {e}"))?;
    let code = engine.wait(&id).map_err(|e| format!("wait {id}: {e}"))?;
    let mut out = Vec::new();
    let mut err = Vec::new();
    print_logs(
        std::path::Path::new(&record.log_path),
        &LogOptions::default(),
        &mut out,
        &mut err,
        || false,
    )
    .map_err(|e| format!("logs {id}: {e}"))?;
    engine
        .remove(&id, true, false)
        .map_err(|e| format!("rm {id}: {e}"))?;
    if code != 0 {
        return Err(format!("container {id} exited {code}"));
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

fn main() {
    // Serve the engine's hidden entry points (the monitor start) when re-executed.
    berth_engine::hidden_entry::run_if_requested();
    let args: Vec<String> = std::env::args().collect();
    let (Some(root), Some(rootfs)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: threaded_run ROOT ROOTFS");
        std::process::exit(2);
    };
    let engine = Engine::open(std::path::Path::new(root));
    let results: Vec<Result<String, String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..THREADS)
            .map(|n| {
                let engine = engine.clone();
                let rootfs = PathBuf::from(rootfs);
                scope.spawn(move || run_one(&engine, rootfs, n))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err("thread panicked".into())))
            .collect()
    });
    let mut failed = false;
    for result in results {
        match result {
            Ok(log) => print!("{log}"),
            Err(e) => {
                eprintln!("threaded_run: {e}");
                failed = true;
            }
        }
    }
    std::process::exit(i32::from(failed));
}
