//! `linux.netDevices`: moving host network interfaces into the container's network namespace
//! (and renaming them there) with one rtnetlink RTM_NEWLINK request each — no `ip` helper.
//! Runs in the runtime after the clone, before the init is released.

use crate::error::{Result, RuntimeError};
use rustix::fd::{AsFd, AsRawFd, BorrowedFd};
use rustix::net::{RecvFlags, SendFlags};

const RTM_NEWLINK: u16 = 16;
const NLM_F_REQUEST: u16 = 0x01;
const NLM_F_ACK: u16 = 0x04;
const NLMSG_ERROR: u16 = 2;
const IFLA_IFNAME: u16 = 3;
const IFLA_NET_NS_PID: u16 = 19;
const IFLA_NET_NS_FD: u16 = 28;
const NETLINK_ROUTE: i32 = 0;

/// Where the interfaces go: the init's new network namespace, or a joined one.
pub enum Target<'a> {
    Pid(i32),
    NamespaceFd(BorrowedFd<'a>),
}

fn push_attr(buf: &mut Vec<u8>, kind: u16, payload: &[u8]) {
    let len = 4 + payload.len();
    buf.extend_from_slice(&(len as u16).to_ne_bytes());
    buf.extend_from_slice(&kind.to_ne_bytes());
    buf.extend_from_slice(payload);
    while !buf.len().is_multiple_of(4) {
        buf.push(0);
    }
}

/// The RTM_NEWLINK message moving interface `index` to `target`, renamed to `new_name`.
pub fn move_message(seq: u32, index: i32, target: &Target<'_>, new_name: &str) -> Vec<u8> {
    let mut msg = vec![0u8; 16];
    // struct ifinfomsg: family, pad, type, index, flags, change.
    msg.extend_from_slice(&[libc::AF_UNSPEC as u8, 0, 0, 0]);
    msg.extend_from_slice(&index.to_ne_bytes());
    msg.extend_from_slice(&0u32.to_ne_bytes());
    msg.extend_from_slice(&0u32.to_ne_bytes());
    match target {
        Target::Pid(pid) => push_attr(&mut msg, IFLA_NET_NS_PID, &(*pid as u32).to_ne_bytes()),
        Target::NamespaceFd(fd) => push_attr(
            &mut msg,
            IFLA_NET_NS_FD,
            &(fd.as_raw_fd() as u32).to_ne_bytes(),
        ),
    }
    let mut name = new_name.as_bytes().to_vec();
    name.push(0);
    push_attr(&mut msg, IFLA_IFNAME, &name);
    let len = msg.len() as u32;
    msg[0..4].copy_from_slice(&len.to_ne_bytes());
    msg[4..6].copy_from_slice(&RTM_NEWLINK.to_ne_bytes());
    msg[6..8].copy_from_slice(&(NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
    msg[8..12].copy_from_slice(&seq.to_ne_bytes());
    msg
}

/// Moves each `host name -> container name` device.
pub fn move_devices(devices: &[(String, String)], target: &Target<'_>) -> Result<()> {
    if devices.is_empty() {
        return Ok(());
    }
    // NETLINK_ROUTE is protocol 0, which rustix's Protocol cannot express: use libc.
    // SAFETY: socket(2) with constant arguments; the fd is owned below.
    let raw = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            NETLINK_ROUTE,
        )
    };
    if raw < 0 {
        return Err(RuntimeError::sys(
            "netlink socket",
            std::io::Error::last_os_error(),
        ));
    }
    // SAFETY: `raw` is a fresh fd nobody else owns.
    let sock = unsafe { <rustix::fd::OwnedFd as rustix::fd::FromRawFd>::from_raw_fd(raw) };
    for (seq, (host, container)) in devices.iter().enumerate() {
        let what = || format!("moving network device {host} into the container as {container}");
        let cname = std::ffi::CString::new(host.as_str())
            .map_err(|_| RuntimeError::InvalidArgument(format!("bad device name {host:?}")))?;
        // SAFETY: if_nametoindex reads a NUL-terminated string.
        let index = unsafe { libc::if_nametoindex(cname.as_ptr()) };
        if index == 0 {
            return Err(RuntimeError::sys(what(), std::io::Error::last_os_error()));
        }
        let msg = move_message(seq as u32 + 1, index as i32, target, container);
        rustix::net::send(sock.as_fd(), &msg, SendFlags::empty())
            .map_err(|e| RuntimeError::sys(what(), e))?;
        let mut buf = [0u8; 1024];
        let (n, _) = rustix::net::recv(sock.as_fd(), &mut buf, RecvFlags::empty())
            .map_err(|e| RuntimeError::sys(what(), e))?;
        if n >= 20 && u16::from_ne_bytes([buf[4], buf[5]]) == NLMSG_ERROR {
            let code = i32::from_ne_bytes([buf[16], buf[17], buf[18], buf[19]]);
            if code != 0 {
                return Err(RuntimeError::sys(
                    what(),
                    std::io::Error::from_raw_os_error(-code),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_layout() {
        let m = move_message(7, 3, &Target::Pid(42), "eth0");
        assert_eq!(
            u32::from_ne_bytes(m[0..4].try_into().unwrap()) as usize,
            m.len()
        );
        assert!(m.len().is_multiple_of(4));
        assert_eq!(u16::from_ne_bytes([m[4], m[5]]), RTM_NEWLINK);
        assert_eq!(i32::from_ne_bytes(m[20..24].try_into().unwrap()), 3);
        // First attribute: IFLA_NET_NS_PID = 42.
        assert_eq!(u16::from_ne_bytes([m[34], m[35]]), IFLA_NET_NS_PID);
        assert_eq!(u32::from_ne_bytes(m[36..40].try_into().unwrap()), 42);
        assert_eq!(&m[44..49], b"eth0\0");
    }
}
