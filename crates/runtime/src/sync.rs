//! The runtime ↔ init channel: a SOCK_SEQPACKET pair (close-on-exec, so a successful exec reads
//! as EOF). One message per datagram: a tag byte and a payload.

use rustix::fd::{AsFd, OwnedFd};
use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType};
use std::io;

/// Message tags.
pub mod tag {
    /// Runtime → init: carry on (payload: the init's pid as seen by the runtime, 4 bytes LE).
    pub const GO: u8 = b'G';
    /// Runtime → init: the init is in its cgroup now (sent after GO, so the slow first cgroup v1
    /// migration overlaps the init's mount work).
    pub const CGROUP_JOINED: u8 = b'C';
    /// Init → runtime: run prestart/createRuntime hooks now, then answer GO.
    pub const HOOKS: u8 = b'H';
    /// Init → runtime: set up and waiting for start.
    pub const READY: u8 = b'R';
    /// Init → runtime: failed (payload: the message).
    pub const ERROR: u8 = b'E';
    /// Init → runtime: the command cannot be executed (payload: errno as 4 bytes LE, then the
    /// message).
    pub const EXEC_FAILED: u8 = b'X';
    /// Init → runtime: the seccomp notify fd rides along (SCM_RIGHTS), for the listenerPath
    /// agent.
    pub const SECCOMP_FD: u8 = b'S';
}

/// A received message: tag, payload, and the fd it carried (if any).
pub type MessageWithFd = (u8, Vec<u8>, Option<OwnedFd>);

/// One end of the channel.
pub struct SyncSocket(pub OwnedFd);

/// A connected pair: (runtime end, init end).
pub fn pair() -> io::Result<(SyncSocket, SyncSocket)> {
    let (a, b) = rustix::net::socketpair(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )?;
    Ok((SyncSocket(a), SyncSocket(b)))
}

impl SyncSocket {
    pub fn send(&self, tag: u8, payload: &[u8]) -> io::Result<()> {
        let mut msg = Vec::with_capacity(payload.len() + 1);
        msg.push(tag);
        msg.extend_from_slice(payload);
        loop {
            match rustix::net::send(self.0.as_fd(), &msg, SendFlags::NOSIGNAL) {
                Ok(_) => return Ok(()),
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The next message, or None at EOF (the peer exited or exec'd).
    pub fn recv(&self) -> io::Result<Option<(u8, Vec<u8>)>> {
        self.recv_with(RecvFlags::empty())
    }

    /// A message already queued; None at EOF, WouldBlock when nothing is queued.
    pub fn try_recv(&self) -> io::Result<Option<(u8, Vec<u8>)>> {
        self.recv_with(RecvFlags::DONTWAIT)
    }

    /// Sends `tag` with `fd` attached (SCM_RIGHTS).
    pub fn send_fd(&self, tag: u8, fd: &OwnedFd) -> io::Result<()> {
        crate::console::send_fd(&self.0, fd, &[tag]).map_err(io::Error::other)
    }

    /// The next message and any fd it carries; None at EOF.
    pub fn recv_with_fd(&self) -> io::Result<Option<MessageWithFd>> {
        use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage};
        let mut buf = vec![0u8; 65536];
        let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut reset_seen = false;
        loop {
            let mut control = RecvAncillaryBuffer::new(&mut space);
            let msg = match rustix::net::recvmsg(
                self.0.as_fd(),
                &mut [io::IoSliceMut::new(&mut buf)],
                &mut control,
                RecvFlags::CMSG_CLOEXEC,
            ) {
                Ok(m) => m,
                Err(rustix::io::Errno::INTR) => continue,
                Err(rustix::io::Errno::CONNRESET) if !reset_seen => {
                    reset_seen = true;
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            let mut fd = None;
            for m in control.drain() {
                if let RecvAncillaryMessage::ScmRights(mut fds) = m {
                    fd = fds.next();
                }
            }
            if msg.bytes == 0 {
                return Ok(None);
            }
            let payload = buf[1..msg.bytes].to_vec();
            return Ok(Some((buf[0], payload, fd)));
        }
    }

    /// A peer that exits with messages of ours unread leaves ECONNRESET pending on this end,
    /// and the kernel reports that pending error before the messages the peer sent first (its
    /// ERROR, say). Reading the error clears it: the retry then returns the queued messages,
    /// then EOF. (This lost the init's own error message under load.)
    fn recv_with(&self, flags: RecvFlags) -> io::Result<Option<(u8, Vec<u8>)>> {
        let mut buf = vec![0u8; 65536];
        let mut reset_seen = false;
        loop {
            match rustix::net::recv(self.0.as_fd(), &mut buf, flags) {
                Ok((0, _)) => return Ok(None),
                Ok((n, _)) => {
                    buf.truncate(n);
                    let payload = buf.split_off(1);
                    return Ok(Some((buf[0], payload)));
                }
                Err(rustix::io::Errno::INTR) => continue,
                Err(rustix::io::Errno::CONNRESET) if !reset_seen => {
                    reset_seen = true;
                    continue;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// The error an ERROR message carries: the init's failure with its errno, when it had one.
pub fn init_failed(payload: &[u8]) -> crate::RuntimeError {
    match crate::init_error::decode(payload) {
        (Some(errno), message) => crate::RuntimeError::InitFailed {
            message,
            source: std::io::Error::from_raw_os_error(errno),
        },
        (None, message) => crate::RuntimeError::ContainerInit(message),
    }
}

/// The error an EXEC_FAILED message carries.
pub fn exec_failed(payload: &[u8]) -> crate::RuntimeError {
    let (errno, message) = match payload {
        [a, b, c, d, rest @ ..] => (i32::from_le_bytes([*a, *b, *c, *d]), rest),
        _ => (libc::ENOEXEC, payload),
    };
    crate::RuntimeError::Exec {
        message: String::from_utf8_lossy(message).into_owned(),
        source: std::io::Error::from_raw_os_error(errno),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The init fails (sends ERROR) and exits without reading what the runtime sent: the
    /// runtime still reads the ERROR, then EOF, not ECONNRESET.
    #[test]
    fn message_of_a_peer_that_exited_with_unread_input_is_not_lost() {
        for use_fd_variant in [false, true] {
            let (runtime, init) = pair().unwrap();
            runtime.send(tag::CGROUP_JOINED, b"").unwrap();
            let failure = crate::init_error::InitError::Refused(
                "proc must be mounted on ordinary directory".into(),
            );
            init.send(tag::ERROR, &failure.encode()).unwrap();
            drop(init);
            let (t, payload) = if use_fd_variant {
                let (t, p, _) = runtime.recv_with_fd().unwrap().unwrap();
                (t, p)
            } else {
                runtime.recv().unwrap().unwrap()
            };
            assert_eq!(t, tag::ERROR);
            assert_eq!(
                init_failed(&payload).to_string(),
                "unable to start container process: proc must be mounted on ordinary directory"
            );
            assert!(runtime.recv().unwrap().is_none(), "then EOF");
        }
    }
}
