//! Ctrl-P Ctrl-Q under a real terminal (`script` gives berth a PTY): `run -it` detaches and
//! leaves the container running, `attach` gets the session back and detaches again, and a
//! custom `--detach-keys` sequence works too.
mod container_common;
use berth_testkit::have;
use container_common::*;
use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

/// Runs `berth ARGS` inside `script` (a PTY), typing `keys` after the shell prompt appears.
fn in_terminal(env: &Env, args: &str, keys: &[&[u8]]) -> String {
    let command = format!("{} --root {} {args}", berth_bin(), env.path().display());
    let mut child = std::process::Command::new("script")
        .args(["-qfec", &command, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("script");
    let mut stdin = child.stdin.take().unwrap();
    for k in keys {
        // The shell reads its line only once it has printed a prompt; there is no state to
        // poll from outside a terminal session, so each chunk waits a moment.
        std::thread::sleep(Duration::from_millis(700));
        stdin.write_all(k).unwrap();
        stdin.flush().unwrap();
    }
    let out = child.wait_with_output().expect("script output");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn ctrl_p_ctrl_q_detaches_and_attach_resumes() {
    if !have("script") {
        eprintln!("skipping: no script(1)");
        return;
    }
    let env = Env::new("detach");
    let out = in_terminal(
        &env,
        "run -it --name term busybox sh",
        &[b"echo one\r", b"\x10\x11"],
    );
    assert!(out.contains("one"), "{out}");
    assert!(out.contains("read escape sequence"), "{out}");
    assert_eq!(env.inspect("term", "{{.State.Status}}"), "running");

    let out = in_terminal(&env, "attach term", &[b"echo back\r", b"\x10\x11"]);
    assert!(out.contains("back"), "{out}");
    assert_eq!(env.inspect("term", "{{.State.Status}}"), "running");

    let out = in_terminal(
        &env,
        "attach --detach-keys ctrl-a,x term",
        &[b"\x10\x11echo still\r", b"\x01x"],
    );
    assert!(out.contains("still"), "{out}");
    assert!(out.contains("read escape sequence"), "{out}");
    assert_eq!(env.inspect("term", "{{.State.Status}}"), "running");
    env.ok(&["rm", "-f", "term"]);
    let bad = env.berth(&["run", "--detach-keys", "alt-x", "busybox", "true"]);
    assert_eq!(bad.status.code(), Some(125));
    assert!(stderr(&bad).contains("--detach-keys"), "{}", stderr(&bad));
}
