//! Where the service listens: a Unix socket (0660, owner root, group `berth`, the group created
//! when missing), sockets inherited through systemd socket activation (`LISTEN_FDS`), or TCP —
//! which is refused unless TLS with client verification is configured: no unauthenticated TCP.
//! Owns binding and permissions only; serving connections is `server`'s job.
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The default socket, as `berth system service` documents it.
pub const DEFAULT_SOCKET: &str = "unix:///run/berth/berth.sock";
/// The group that may use the socket besides root.
pub const SOCKET_GROUP: &str = "berth";

/// One place to listen on, as given on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenAddr {
    Unix(PathBuf),
    Tcp(String),
}

/// Errors while preparing listeners.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error("invalid --socket {0:?}: expected unix:///path or tcp://host:port")]
    BadAddress(String),
    #[error("refusing to listen on {0}: TCP needs --tlsverify with --tlscacert, --tlscert and --tlskey (no unauthenticated TCP)")]
    TcpWithoutTls(String),
    #[error("{context} {path}: {source}")]
    Io {
        context: &'static str,
        path: String,
        source: std::io::Error,
    },
    #[error("creating group {group}: {reason}")]
    Group { group: String, reason: String },
    #[error("LISTEN_FDS: {0}")]
    Activation(String),
}

impl ListenAddr {
    pub fn parse(text: &str) -> Result<ListenAddr, ListenError> {
        if let Some(path) = text.strip_prefix("unix://") {
            if path.is_empty() {
                return Err(ListenError::BadAddress(text.into()));
            }
            return Ok(ListenAddr::Unix(PathBuf::from(path)));
        }
        if let Some(addr) = text.strip_prefix("tcp://") {
            if addr.is_empty() {
                return Err(ListenError::BadAddress(text.into()));
            }
            return Ok(ListenAddr::Tcp(addr.trim_end_matches('/').to_string()));
        }
        if text.starts_with('/') {
            return Ok(ListenAddr::Unix(PathBuf::from(text)));
        }
        Err(ListenError::BadAddress(text.into()))
    }
}

/// Binds a Unix socket at `path` (replacing a stale socket file), mode 0660, group `berth`.
pub fn bind_unix(path: &Path) -> Result<std::os::unix::net::UnixListener, ListenError> {
    let io = |context: &'static str| {
        let path = path.display().to_string();
        move |source| ListenError::Io {
            context,
            path,
            source,
        }
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io("creating the directory of"))?;
    }
    if std::fs::symlink_metadata(path).is_ok() {
        // A live service answers; a leftover file from a killed one does not (a connect alone
        // is not proof: a child may still hold the dead service's listening socket).
        if answers_ping(path) {
            return Err(ListenError::Io {
                context: "listening on",
                path: path.display().to_string(),
                source: std::io::Error::new(
                    std::io::ErrorKind::AddrInUse,
                    "another service is listening there",
                ),
            });
        }
        std::fs::remove_file(path).map_err(io("removing the stale socket"))?;
    }
    let listener = std::os::unix::net::UnixListener::bind(path).map_err(io("listening on"))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .map_err(io("setting the mode of"))?;
    let gid = ensure_group(SOCKET_GROUP)?;
    std::os::unix::fs::chown(path, Some(0), Some(gid)).map_err(io("changing the owner of"))?;
    listener.set_nonblocking(true).map_err(io("listening on"))?;
    Ok(listener)
}

fn answers_ping(path: &Path) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::os::unix::net::UnixStream::connect(path) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(1)));
    let _ = s.set_write_timeout(Some(std::time::Duration::from_secs(1)));
    if s.write_all(b"GET /_ping HTTP/1.0\r\n\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 16];
    matches!(s.read(&mut buf), Ok(n) if n > 0)
}

/// The GID of `name`, creating it as a system group when missing. Runs before the service
/// starts any thread (it spawns `groupadd`, which owns /etc/group and /etc/gshadow locking).
pub fn ensure_group(name: &str) -> Result<u32, ListenError> {
    let lookup = || nix::unistd::Group::from_name(name).ok().flatten();
    if let Some(group) = lookup() {
        return Ok(group.gid.as_raw());
    }
    let status = std::process::Command::new("groupadd")
        .args(["--system", name])
        .status()
        .map_err(|e| ListenError::Group {
            group: name.into(),
            reason: format!("running groupadd: {e}"),
        })?;
    match lookup() {
        Some(group) => Ok(group.gid.as_raw()),
        None => Err(ListenError::Group {
            group: name.into(),
            reason: format!("groupadd exited with {status}"),
        }),
    }
}

/// A socket handed over by systemd.
#[derive(Debug)]
pub enum InheritedSocket {
    Unix(std::os::unix::net::UnixListener),
    Tcp(std::net::TcpListener),
}

/// Takes the sockets systemd passed (`LISTEN_PID` = us, `LISTEN_FDS` = n, fds 3 … 3+n-1) and
/// clears the variables so children do not take them again. Empty when not socket-activated.
pub fn inherited_sockets() -> Result<Vec<InheritedSocket>, ListenError> {
    let pid_matches = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
        == Some(std::process::id());
    let count = match std::env::var("LISTEN_FDS") {
        Ok(n) if pid_matches => n
            .parse::<i32>()
            .map_err(|_| ListenError::Activation(format!("not a number: {n:?}")))?,
        _ => return Ok(Vec::new()),
    };
    // SAFETY: called before any thread exists (the service takes them at startup).
    unsafe {
        std::env::remove_var("LISTEN_PID");
        std::env::remove_var("LISTEN_FDS");
        std::env::remove_var("LISTEN_FDNAMES");
    }
    let mut sockets = Vec::new();
    for fd in 3..3 + count {
        sockets.push(classify(fd)?);
    }
    Ok(sockets)
}

fn classify(fd: RawFd) -> Result<InheritedSocket, ListenError> {
    use nix::sys::socket::{getsockname, AddressFamily, SockaddrLike, SockaddrStorage};
    let addr: SockaddrStorage = getsockname(fd)
        .map_err(|e| ListenError::Activation(format!("fd {fd} is not a socket: {e}")))?;
    // SAFETY: systemd hands these descriptors to us and nothing else in this process owns them.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    nix::fcntl::fcntl(
        &owned,
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    )
    .map_err(|e| ListenError::Activation(format!("fd {fd}: {e}")))?;
    match addr.family() {
        Some(AddressFamily::Unix) => {
            let l = std::os::unix::net::UnixListener::from(owned);
            l.set_nonblocking(true)
                .map_err(|e| ListenError::Activation(format!("fd {fd}: {e}")))?;
            Ok(InheritedSocket::Unix(l))
        }
        Some(AddressFamily::Inet) | Some(AddressFamily::Inet6) => {
            let l = std::net::TcpListener::from(owned);
            l.set_nonblocking(true)
                .map_err(|e| ListenError::Activation(format!("fd {fd}: {e}")))?;
            Ok(InheritedSocket::Tcp(l))
        }
        other => Err(ListenError::Activation(format!(
            "fd {fd} has unsupported address family {other:?}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_socket_addresses() {
        assert_eq!(
            ListenAddr::parse("unix:///run/berth/berth.sock").unwrap(),
            ListenAddr::Unix("/run/berth/berth.sock".into())
        );
        assert_eq!(
            ListenAddr::parse("tcp://127.0.0.1:2376").unwrap(),
            ListenAddr::Tcp("127.0.0.1:2376".into())
        );
        assert!(ListenAddr::parse("http://x").is_err());
        assert!(ListenAddr::parse("unix://").is_err());
    }

    #[test]
    fn unix_socket_is_0660_and_replaces_stale_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s/berth.sock");
        let l = bind_unix(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o660);
        // A listener that answers is not replaced.
        let answering = std::thread::spawn(move || {
            l.set_nonblocking(false).unwrap();
            let (mut c, _) = l.accept().unwrap();
            use std::io::{Read, Write};
            let mut request = [0u8; 64];
            let _ = c.read(&mut request).unwrap();
            c.write_all(b"HTTP/1.0 200 OK\r\n\r\nOK").unwrap();
        });
        assert!(bind_unix(&path).is_err());
        answering.join().unwrap();
        // A stale socket file is.
        bind_unix(&path).unwrap();
    }
}
