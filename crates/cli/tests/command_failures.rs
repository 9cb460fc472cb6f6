//! A container's command that cannot run: Docker's exit codes for `run` and `exec`, chosen
//! from the errno the runtime's init (or exec'd process) sends back — 127 when the command is
//! not there, 126 when it cannot be executed — and 125 for a failed setup, whatever words its
//! errno's message has.
mod container_common;
use container_common::*;

#[test]
fn run_and_exec_exit_127_for_a_missing_command_and_126_for_one_that_cannot_run() {
    let env = Env::new("cmdfail");
    for (args, code) in [
        (&["no-such-command"][..], 127),
        (&["/no/such/path"][..], 127),
        (&["/etc/passwd"][..], 126),
        (&["/bin"][..], 126),
    ] {
        let mut run = vec!["run", "--rm", "--network", "none", "busybox"];
        run.extend(args);
        let out = env.berth(&run);
        assert_eq!(
            out.status.code(),
            Some(code),
            "run {args:?}: {}",
            stderr(&out)
        );
        assert!(
            stderr(&out).contains(args[0]),
            "run {args:?}: {}",
            stderr(&out)
        );
    }
    env.ok(&[
        "run",
        "-d",
        "--name",
        "up",
        "--network",
        "none",
        "busybox",
        "sleep",
        "300",
    ]);
    for (args, code) in [
        (&["no-such-command"][..], 127),
        (&["/etc/passwd"][..], 126),
        (&["/bin"][..], 126),
    ] {
        let mut exec = vec!["exec", "up"];
        exec.extend(args);
        let out = env.berth(&exec);
        assert_eq!(
            out.status.code(),
            Some(code),
            "exec {args:?}: {}",
            stderr(&out)
        );
    }
    env.ok(&["rm", "-f", "up"]);
}

#[test]
fn a_failed_setup_is_125_even_with_an_errno() {
    let env = Env::new("setupfail");
    // Above the kernel's nr_open: setrlimit fails with EPERM in the init, before the command.
    let out = env.berth(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--ulimit",
        "nofile=2000000000:2000000000",
        "busybox",
        "true",
    ]);
    assert_eq!(out.status.code(), Some(125), "{}", stderr(&out));
    assert!(stderr(&out).contains("RLIMIT_NOFILE"), "{}", stderr(&out));
    assert!(
        env.record_ids().is_empty(),
        "--rm left {:?}",
        env.record_ids()
    );
}
