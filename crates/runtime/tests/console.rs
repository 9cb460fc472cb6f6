//! runc's console-socket protocol: the pty master arrives over the socket with SCM_RIGHTS and
//! the container's stdio is the pty slave (its controlling terminal).

mod common;

use common::*;
use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
use std::os::unix::net::UnixListener;

fn receive_master(listener: &UnixListener) -> (std::fs::File, String) {
    let stream = accept_within(listener, COMMAND_DEADLINE, "the console socket");
    let mut name = [0u8; 128];
    let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let msg = rustix::net::recvmsg(
        &stream,
        &mut [std::io::IoSliceMut::new(&mut name)],
        &mut control,
        RecvFlags::empty(),
    )
    .unwrap();
    let name = String::from_utf8_lossy(&name[..msg.bytes]).into_owned();
    for m in control.drain() {
        if let RecvAncillaryMessage::ScmRights(mut fds) = m {
            let fd = fds.next().unwrap();
            return (std::fs::File::from(fd), name);
        }
    }
    panic!("no fd received");
}

#[test]
fn console_socket_receives_pty_master() {
    let w = World::new();
    let mut b = sh_bundle("tty; echo hello-tty; sleep 0.2");
    b.spec["process"]["terminal"] = true.into();
    b.write_config().unwrap();
    let sock = w.root().join("console.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let id = unique_id("tty");
    let _g = w.guard(&id);
    w.ok(&[
        "create",
        "--console-socket",
        sock.to_str().unwrap(),
        "--bundle",
        b.path().to_str().unwrap(),
        &id,
    ]);
    let (master, name) = receive_master(&listener);
    assert!(name.starts_with("/dev/pts/"), "{name}");
    w.ok(&["start", &id]);
    let text = read_tty_until_closed(&master, COMMAND_DEADLINE);
    assert!(text.contains("/dev/pts/0"), "{text}");
    assert!(text.contains("hello-tty"), "{text}");
}

#[test]
fn terminal_without_console_socket_is_refused_for_create() {
    let w = World::new();
    let mut b = sh_bundle("true");
    b.spec["process"]["terminal"] = true.into();
    b.write_config().unwrap();
    let id = unique_id("notty");
    let o = w.out(&["create", "--bundle", b.path().to_str().unwrap(), &id]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("console socket"));
}

/// Foreground `run` of a terminal bundle without --console-socket proxies through its own pty.
#[test]
fn foreground_run_with_terminal_proxies_stdio() {
    use rustix::pty::OpenptFlags;
    let w = World::new();
    let mut b = sh_bundle("tty; read x; echo got=$x; exit 4");
    b.spec["process"]["terminal"] = true.into();
    b.write_config().unwrap();
    let master = rustix::pty::openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).unwrap();
    rustix::pty::grantpt(&master).unwrap();
    rustix::pty::unlockpt(&master).unwrap();
    let name = rustix::pty::ptsname(&master, Vec::new()).unwrap();
    let slave = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(name.to_str().unwrap())
        .unwrap();
    let id = unique_id("ttyrun");
    let _g = w.guard(&id);
    let mut child = w
        .cmd(&["run", "--bundle", b.path().to_str().unwrap(), &id])
        .stdin(slave.try_clone().unwrap())
        .stdout(slave.try_clone().unwrap())
        .stderr(slave)
        .spawn()
        .unwrap();
    assert!(w.wait_status(&id, "running"));
    rustix::io::write(&master, b"hello\n").unwrap();
    let status = wait_within(&mut child, COMMAND_DEADLINE, "run with a terminal");
    let mut out = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        let mut fds = [rustix::event::PollFd::new(
            &master,
            rustix::event::PollFlags::IN,
        )];
        let ready = rustix::event::poll(
            &mut fds,
            Some(&rustix::event::Timespec {
                tv_sec: 0,
                tv_nsec: 100_000_000,
            }),
        )
        .unwrap();
        if ready == 0 {
            break;
        }
        match rustix::io::read(&master, &mut buf) {
            Ok(n) if n > 0 => out.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    let text = String::from_utf8_lossy(&out);
    assert_eq!(status.code(), Some(4), "{text}");
    assert!(text.contains("/dev/pts/0"), "{text}");
    assert!(text.contains("got=hello"), "{text}");
}

/// Reads everything the container writes to its terminal until the slave closes.
fn read_all(master: &mut std::fs::File) -> String {
    read_tty_until_closed(master, COMMAND_DEADLINE)
}

/// The pty belongs to the process's uid/gid (as under runc), for the init and for exec.
#[test]
fn pty_is_owned_by_the_process_user() {
    let w = World::new();
    let mut b = sh_bundle("stat -c %u:%g $(tty)");
    b.spec["process"]["terminal"] = true.into();
    b.spec["process"]["user"] = serde_json::json!({"uid": 1000, "gid": 1000});
    b.write_config().unwrap();
    let sock = w.root().join("console.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let id = unique_id("ptyown");
    let _g = w.guard(&id);
    w.ok(&[
        "run",
        "-d",
        "--console-socket",
        sock.to_str().unwrap(),
        "--bundle",
        b.path().to_str().unwrap(),
        &id,
    ]);
    let (mut master, _) = receive_master(&listener);
    assert_eq!(read_all(&mut master).trim(), "1000:1000");

    // exec -t as another user gets a pty of its own user.
    let sleeper = sh_bundle("sleep 100");
    let id = unique_id("ptyexec");
    let _g2 = w.guard(&id);
    w.ok(&[
        "run",
        "-d",
        "--bundle",
        sleeper.path().to_str().unwrap(),
        &id,
    ]);
    w.ok(&[
        "exec",
        "-t",
        "-d",
        "--user",
        "1000:50",
        "--console-socket",
        sock.to_str().unwrap(),
        &id,
        "sh",
        "-c",
        "stat -c %u:%g $(tty)",
    ]);
    let (mut master, _) = receive_master(&listener);
    assert_eq!(read_all(&mut master).trim(), "1000:50");
}

/// `exec --process` JSON without `user` runs as 0:0 (runc's default); without `cwd` it is
/// refused with runc's message.
#[test]
fn exec_process_json_defaults_like_runc() {
    let w = World::new();
    let b = sh_bundle("sleep 100");
    let id = unique_id("procjson");
    let _g = w.guard(&id);
    w.ok(&["run", "-d", "--bundle", b.path().to_str().unwrap(), &id]);
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("p.json");
    std::fs::write(
        &p,
        r#"{"args":["/bin/sh","-c","id -u; id -g; pwd"],"cwd":"/tmp"}"#,
    )
    .unwrap();
    assert_eq!(
        w.ok(&["exec", "--process", p.to_str().unwrap(), &id]),
        "0\n0\n/tmp\n"
    );
    std::fs::write(&p, r#"{"args":["/bin/true"]}"#).unwrap();
    let o = w.out(&["exec", "--process", p.to_str().unwrap(), &id]);
    assert_eq!(o.status.code(), Some(255));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("Cwd property must not be empty"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// `exec --env` replaces a variable the spec also sets (one value, the command line's).
#[test]
fn exec_env_overrides_the_spec() {
    let w = World::new();
    let mut b = sh_bundle("sleep 100");
    b.spec["process"]["env"]
        .as_array_mut()
        .unwrap()
        .push("FOO=spec".into());
    b.write_config().unwrap();
    let id = unique_id("execenv");
    let _g = w.guard(&id);
    w.ok(&["run", "-d", "--bundle", b.path().to_str().unwrap(), &id]);
    assert_eq!(
        w.ok(&[
            "exec",
            "--env",
            "FOO=cli",
            &id,
            "sh",
            "-c",
            "env | grep '^FOO='"
        ]),
        "FOO=cli\n"
    );
}
