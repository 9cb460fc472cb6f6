//! A terminal for foreground `run`/`exec` without `--console-socket`, as runc provides: the CLI
//! listens on a private console socket, receives the pty master from the container, puts its
//! own terminal in raw mode and copies bytes both ways until the process exits.

use anyhow::Context;
use rustix::event::{PollFd, PollFlags};
use rustix::fd::{AsFd, OwnedFd};
use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

/// A listening console socket, removed on drop.
pub struct ConsoleListener {
    listener: UnixListener,
    pub path: PathBuf,
}

impl Drop for ConsoleListener {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[derive(serde::Deserialize, Default)]
struct PartialSpec {
    process: Option<PartialProcess>,
}

#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct PartialProcess {
    terminal: Option<bool>,
    apparmor_profile: Option<String>,
    selinux_label: Option<String>,
}

/// The few process fields the CLI itself looks at (a cheap partial parse of config.json).
fn partial_process(bundle: &Path) -> PartialProcess {
    std::fs::read(bundle.join("config.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<PartialSpec>(&b).ok())
        .and_then(|p| p.process)
        .unwrap_or_default()
}

/// Whether the bundle's process asks for a terminal.
pub fn bundle_wants_terminal(bundle: &Path) -> bool {
    partial_process(bundle).terminal.unwrap_or(false)
}

/// With --debug, says that LSM labels in the bundle are ignored.
pub fn log_ignored_labels(bundle: &Path, log: &super::log::Logger) {
    if !log.debug {
        return;
    }
    let p = partial_process(bundle);
    if let Some(profile) = p.apparmor_profile.filter(|s| !s.is_empty()) {
        log.debug(&format!(
            "apparmorProfile {profile:?} ignored (AppArmor not supported)"
        ));
    }
    if let Some(label) = p.selinux_label.filter(|s| !s.is_empty()) {
        log.debug(&format!(
            "selinuxLabel {label:?} ignored (SELinux not supported)"
        ));
    }
}

/// Listens on `<root>/console:<id>:<pid>` (':' cannot appear in container ids).
pub fn listen(root: &Path, id: &str) -> anyhow::Result<ConsoleListener> {
    std::fs::create_dir_all(root).with_context(|| format!("creating {}", root.display()))?;
    let path = root.join(format!("console:{id}:{}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let listener =
        UnixListener::bind(&path).with_context(|| format!("binding {}", path.display()))?;
    Ok(ConsoleListener { listener, path })
}

impl ConsoleListener {
    /// The pty master the container sent (it is queued before `create` returns).
    pub fn receive_master(&self) -> anyhow::Result<OwnedFd> {
        let (stream, _) = self.listener.accept().context("accepting console socket")?;
        let mut name = [0u8; 256];
        let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        rustix::net::recvmsg(
            &stream,
            &mut [std::io::IoSliceMut::new(&mut name)],
            &mut control,
            RecvFlags::CMSG_CLOEXEC,
        )
        .context("receiving pty master")?;
        for msg in control.drain() {
            if let RecvAncillaryMessage::ScmRights(mut fds) = msg {
                if let Some(fd) = fds.next() {
                    return Ok(fd);
                }
            }
        }
        anyhow::bail!("console socket: no pty master received")
    }
}

/// Copies stdin → master and master → stdout until `pid` exits; returns its status.
pub fn proxy(master: OwnedFd, pid: i32) -> anyhow::Result<i32> {
    let stdin = rustix::stdio::stdin();
    let stdout = rustix::stdio::stdout();
    let saved = rustix::termios::tcgetattr(stdin).ok();
    if let Some(attrs) = &saved {
        let mut raw = attrs.clone();
        raw.make_raw();
        let _ = rustix::termios::tcsetattr(stdin, rustix::termios::OptionalActions::Now, &raw);
        if let Ok(ws) = rustix::termios::tcgetwinsize(stdin) {
            let _ = rustix::termios::tcsetwinsize(&master, ws);
        }
    }
    let result = copy_loop(&master, pid, stdin, stdout);
    if let Some(attrs) = &saved {
        let _ = rustix::termios::tcsetattr(stdin, rustix::termios::OptionalActions::Now, attrs);
    }
    result
}

fn copy_loop(
    master: &OwnedFd,
    pid: i32,
    stdin: rustix::fd::BorrowedFd<'_>,
    stdout: rustix::fd::BorrowedFd<'_>,
) -> anyhow::Result<i32> {
    let pidfd = berth_runtime::sys::pidfd_open(pid).context("pidfd_open")?;
    let mut stdin_open = true;
    let mut buf = [0u8; 8192];
    loop {
        let mut fds = vec![
            PollFd::new(master, PollFlags::IN),
            PollFd::new(&pidfd, PollFlags::IN),
        ];
        if stdin_open {
            fds.push(PollFd::new(&stdin, PollFlags::IN));
        }
        match rustix::event::poll(&mut fds, None) {
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e).context("poll"),
            Ok(_) => {}
        }
        let master_ev = fds[0].revents();
        let exited = fds[1].revents().contains(PollFlags::IN);
        let stdin_ev = fds.get(2).map(|f| f.revents());
        if master_ev.intersects(PollFlags::IN | PollFlags::HUP | PollFlags::ERR) {
            match rustix::io::read(master, &mut buf) {
                Ok(0) | Err(_) if !master_ev.contains(PollFlags::IN) || exited => {}
                Ok(n) => write_all(stdout, &buf[..n]),
                Err(_) => {}
            }
        }
        if let Some(ev) = stdin_ev {
            if ev.intersects(PollFlags::IN | PollFlags::HUP) {
                match rustix::io::read(stdin, &mut buf) {
                    Ok(0) | Err(_) => stdin_open = false,
                    Ok(n) => write_all(master.as_fd(), &buf[..n]),
                }
            }
        }
        if exited {
            drain(master, stdout);
            return Ok(berth_runtime::sys::wait_child(pid)?);
        }
    }
}

/// Reads what is left in the master without blocking.
fn drain(master: &OwnedFd, stdout: rustix::fd::BorrowedFd<'_>) {
    let mut buf = [0u8; 8192];
    loop {
        let mut fds = [PollFd::new(master, PollFlags::IN)];
        match rustix::event::poll(
            &mut fds,
            Some(&rustix::event::Timespec {
                tv_sec: 0,
                tv_nsec: 0,
            }),
        ) {
            Ok(1) if fds[0].revents().contains(PollFlags::IN) => {}
            _ => return,
        }
        match rustix::io::read(master, &mut buf) {
            Ok(n) if n > 0 => write_all(stdout, &buf[..n]),
            _ => return,
        }
    }
}

fn write_all(fd: rustix::fd::BorrowedFd<'_>, mut data: &[u8]) {
    while !data.is_empty() {
        match rustix::io::write(fd, data) {
            Ok(n) if n > 0 => data = &data[n..],
            Err(rustix::io::Errno::INTR) => continue,
            _ => return,
        }
    }
}
