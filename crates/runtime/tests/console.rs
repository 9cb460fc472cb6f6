//! runc's console-socket protocol: the pty master arrives over the socket with SCM_RIGHTS and
//! the container's stdio is the pty slave (its controlling terminal).

mod common;

use common::*;
use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
use std::io::Read;
use std::os::unix::net::UnixListener;

fn receive_master(listener: &UnixListener) -> (std::fs::File, String) {
    let (stream, _) = listener.accept().unwrap();
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
    let (mut master, name) = receive_master(&listener);
    assert!(name.starts_with("/dev/pts/"), "{name}");
    w.ok(&["start", &id]);
    let mut out = Vec::new();
    let mut buf = [0u8; 1024];
    // Reads end with EIO once the slave side closes.
    while let Ok(n) = master.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&out);
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
    let status = child.wait().unwrap();
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
