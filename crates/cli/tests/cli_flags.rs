//! The command line's own contract: Docker's exit code 125 for bad flags, 0 for help and version.
use std::process::Command;

fn berth(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(args)
        .output()
        .expect("running berth")
}

#[test]
fn unknown_flag_exits_125_like_docker() {
    let out = berth(&["run", "--no-such-flag", "busybox", "true"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--no-such-flag"));
    // An unknown command exits 1, as `docker no-such-verb` does (issue 14).
    assert_eq!(berth(&["no-such-verb"]).status.code(), Some(1));
}

#[test]
fn help_and_version_exit_0() {
    assert_eq!(berth(&["--help"]).status.code(), Some(0));
    let out = berth(&["version"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Berth version"));
}
