//! Helpers shared by the image and build integration tests: the built `berth` on a given root,
//! and running a command that must succeed. (Each test binary uses a subset.)
#![allow(dead_code)]
use std::path::Path;
use std::process::Command;

/// The built `berth`, with `--root root`.
pub fn berth(root: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_berth"));
    c.arg("--root").arg(root);
    c
}

/// Runs `cmd`, fails the test with its output unless it succeeds, returns its stdout.
pub fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().expect("running command");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
