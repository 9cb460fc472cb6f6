//! runc's console-socket protocol: the init opens a pty inside the container, sends the master
//! over the caller's unix socket (SCM_RIGHTS, the pty name as payload) and makes the slave its
//! controlling terminal and stdio.

use oci_spec::runtime::Process;
use rustix::fd::{AsFd, AsRawFd, OwnedFd};
use std::io::IoSlice;

use crate::init_error::InitError;

type Res<T> = std::result::Result<T, InitError>;

/// Opens a pty in the container (after pivot_root), sends the master over `socket`, and makes
/// the slave stdin/stdout/stderr and the controlling terminal of a new session.
pub fn setup(socket: &OwnedFd, process: &Process) -> Res<()> {
    use rustix::pty::OpenptFlags;
    let master =
        rustix::pty::openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)
            .map_err(|e| InitError::sys("opening /dev/ptmx", e))?;
    rustix::pty::unlockpt(&master).map_err(|e| InitError::sys("unlockpt", e))?;
    let name =
        rustix::pty::ptsname(&master, Vec::new()).map_err(|e| InitError::sys("ptsname", e))?;
    let slave = rustix::pty::ioctl_tiocgptpeer(&master, OpenptFlags::RDWR | OpenptFlags::NOCTTY)
        .map_err(|e| InitError::sys("opening pty slave", e))?;
    if let Some(size) = process.console_size() {
        let ws = rustix::termios::Winsize {
            ws_row: size.height() as u16,
            ws_col: size.width() as u16,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        rustix::termios::tcsetwinsize(&slave, ws)
            .map_err(|e| InitError::sys("setting console size", e))?;
    }
    // The process's own terminal, as under runc: owned by its uid/gid, not by the runtime's root.
    let user = process.user();
    rustix::fs::fchown(
        &slave,
        Some(rustix::process::Uid::from_raw(user.uid())),
        Some(rustix::process::Gid::from_raw(user.gid())),
    )
    .map_err(|e| {
        InitError::sys(
            format!("chown of pty slave to {}:{}", user.uid(), user.gid()),
            e,
        )
    })?;
    send_fd(socket, &master, name.as_bytes())?;
    drop(master);
    rustix::process::setsid().map_err(|e| InitError::sys("setsid", e))?;
    rustix::process::ioctl_tiocsctty(&slave).map_err(|e| InitError::sys("TIOCSCTTY", e))?;
    for target in 0..3 {
        crate::sys::dup_onto(slave.as_raw_fd(), target)
            .map_err(|e| InitError::sys(format!("dup2 pty onto {target}"), e))?;
    }
    Ok(())
}

/// Sends `fd` with `payload` over a unix socket.
pub fn send_fd(socket: &OwnedFd, fd: &OwnedFd, payload: &[u8]) -> Res<()> {
    use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
    let fds = [fd.as_fd()];
    let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    control.push(SendAncillaryMessage::ScmRights(&fds));
    rustix::net::sendmsg(
        socket,
        &[IoSlice::new(payload)],
        &mut control,
        SendFlags::NOSIGNAL,
    )
    .map_err(|e| InitError::sys("sending pty master over console socket", e))?;
    Ok(())
}
