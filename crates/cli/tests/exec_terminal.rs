//! `exec -it` under a real terminal (`script` gives berth a PTY): the detach keys (default,
//! `--detach-keys`, and `detachKeys` from the client's config.json) leave the exec'd shell
//! running, with Docker's message and status; and no byte the user did not type (the NUL a
//! queued end-of-file becomes in raw mode) reaches the container's terminal.
mod container_common;
use berth_testkit::have;
use container_common::*;
use std::io::{Read, Write};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// `berth ARGS` in `script`, with what it prints collected as it comes.
struct Terminal {
    child: Child,
    input: std::process::ChildStdin,
    seen: Arc<Mutex<Vec<u8>>>,
}

impl Terminal {
    fn open(env: &Env, args: &str, config_dir: Option<&std::path::Path>) -> Terminal {
        let command = format!("{} --root {} {args}", berth_bin(), env.path().display());
        let mut cmd = std::process::Command::new("script");
        cmd.args(["-qfec", &command, "/dev/null"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        if let Some(dir) = config_dir {
            cmd.env("DOCKER_CONFIG", dir);
        }
        let mut child = cmd.spawn().expect("script");
        let input = child.stdin.take().expect("stdin");
        let mut out = child.stdout.take().expect("stdout");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = out.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().expect("lock").extend_from_slice(&buf[..n]);
            }
        });
        Terminal { child, input, seen }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.seen.lock().expect("lock")).into_owned()
    }

    /// Waits (30 s at most) until the terminal shows `want`.
    fn wait_for(&self, want: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.text().contains(want) {
            assert!(
                Instant::now() < deadline,
                "waited 30s for {want:?}; the terminal shows {:?}",
                self.text()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn type_keys(&mut self, keys: &[u8]) {
        self.input.write_all(keys).expect("typing");
        self.input.flush().expect("typing");
    }

    /// Waits (30 s at most) for berth to end; its exit code (script -e passes it on).
    fn finish(mut self) -> (Option<i32>, String) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                // The reader thread ends with the output; give it the bounded moment it needs.
                let end = Instant::now() + Duration::from_secs(5);
                while Arc::strong_count(&self.seen) > 1 && Instant::now() < end {
                    std::thread::sleep(Duration::from_millis(5));
                }
                return (status.code(), self.text());
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("berth did not end within 30s: {:?}", self.text());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// PIDs (inside the container) of the shells `sh` running in `container`, but not its init.
fn shells(env: &Env, container: &str) -> Vec<String> {
    env.ok(&["exec", container, "ps", "-o", "pid,args"])
        .lines()
        .filter(|l| l.trim_end().ends_with(" sh"))
        .map(|l| l.split_whitespace().next().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn exec_it_detaches_with_default_flag_and_configured_keys() {
    if !have("script") {
        eprintln!("skipping: no script(1)");
        return;
    }
    let env = Env::new("exec-tty");
    env.ok(&["run", "-d", "--name", "box", "busybox", "sleep", "300"]);

    let mut term = Terminal::open(&env, "exec -it box sh", None);
    term.wait_for("# ");
    term.type_keys(b"echo in-$((6*7))\r");
    term.wait_for("in-42");
    term.type_keys(b"\x10\x11");
    let (code, out) = term.finish();
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("read escape sequence"), "{out}");
    assert!(!out.contains("^@") && !out.contains('\0'), "{out:?}");
    assert_eq!(shells(&env, "box").len(), 1, "the detached shell runs on");
    assert_eq!(env.inspect("box", "{{.State.Status}}"), "running");

    let mut term = Terminal::open(&env, "exec -it --detach-keys ctrl-a,x box sh", None);
    term.wait_for("# ");
    // The default keys are just keys now; they reach the shell, which ignores them.
    term.type_keys(b"\x10\x11echo custom\r");
    term.wait_for("custom");
    term.type_keys(b"\x01x");
    let (code, out) = term.finish();
    assert_eq!(code, Some(1), "{out}");
    assert_eq!(
        shells(&env, "box").len(),
        2,
        "{out:?} {}",
        env.ok(&["exec", "box", "ps", "-o", "pid,args"])
    );

    let config = env.path().join("client-config");
    std::fs::create_dir_all(&config).expect("config dir");
    std::fs::write(config.join("config.json"), r#"{"detachKeys":"ctrl-e,e"}"#).expect("config");
    let mut term = Terminal::open(&env, "exec -it box sh", Some(&config));
    term.wait_for("# ");
    term.type_keys(b"echo configured\r");
    term.wait_for("configured");
    term.type_keys(b"\x05e");
    let (code, out) = term.finish();
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("read escape sequence"), "{out}");
    assert_eq!(shells(&env, "box").len(), 3);

    // A shell that ends by itself ends the session with its status.
    let mut term = Terminal::open(&env, "exec -it box sh", None);
    term.wait_for("# ");
    term.type_keys(b"exit 3\r");
    let (code, out) = term.finish();
    assert_eq!(code, Some(3), "{out}");
    assert!(!out.contains("read escape sequence"), "{out}");
}

#[test]
fn an_end_of_file_queued_before_raw_mode_is_not_a_typed_nul() {
    if !have("script") {
        eprintln!("skipping: no script(1)");
        return;
    }
    let env = Env::new("exec-nul");
    env.ok(&["run", "-d", "--name", "box", "busybox", "sleep", "300"]);
    // script's stdin is empty: it queues an end-of-file on berth's terminal at once.
    let command = format!(
        "{} --root {} exec -it box sh -c 'echo hi'",
        berth_bin(),
        env.path().display()
    );
    let out = std::process::Command::new("timeout")
        .args(["30", "script", "-qec", &command, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .expect("script");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hi\r\n");
    assert_eq!(out.status.code(), Some(0));
}
