//! Attach sessions: the bridge between a hijacked HTTP connection (or a streamed response) and
//! a container monitor's attach socket (berth-engine's `attach` frame protocol). Without a TTY
//! the output is Docker's stdcopy multiplexing (`[stream, 0, 0, 0, len BE u32] payload`); with
//! one it is the raw bytes. Owns framing and copying only.
use berth_engine::attach;
use berth_engine::detach_keys::{DetachKeys, DetachMatcher};
use std::io;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::UnixStream;

/// Which streams a client asked for.
#[derive(Debug, Clone, Copy, Default)]
pub struct Wants {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
}

impl Wants {
    /// The HELLO payload byte.
    pub fn bits(self) -> u8 {
        let mut b = 0;
        if self.stdout {
            b |= attach::WANT_STDOUT;
        }
        if self.stderr {
            b |= attach::WANT_STDERR;
        }
        if self.stdin {
            b |= attach::WANT_STDIN;
        }
        b
    }
}

/// Docker's stdcopy header for one frame of `stream` (1 stdout, 2 stderr).
pub fn stdcopy_header(stream: u8, len: usize) -> [u8; 8] {
    let l = (len as u32).to_be_bytes();
    [stream, 0, 0, 0, l[0], l[1], l[2], l[3]]
}

/// Reads one monitor frame; `None` at EOF.
pub async fn read_frame<R: AsyncRead + Unpin>(r: &mut R) -> io::Result<Option<(u8, Vec<u8>)>> {
    let mut head = [0u8; 5];
    match r.read_exact(&mut head).await {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
    if len > 16 << 20 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "attach frame too large",
        ));
    }
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload).await?;
    Ok(Some((head[0], payload)))
}

/// Writes one monitor frame.
pub async fn write_frame<W: AsyncWrite + Unpin>(
    w: &mut W,
    kind: u8,
    payload: &[u8],
) -> io::Result<()> {
    let mut buf = Vec::with_capacity(5 + payload.len());
    buf.push(kind);
    buf.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    buf.extend_from_slice(payload);
    w.write_all(&buf).await
}

/// How a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// The container exited with this code.
    Exited(i32),
    /// The container could not start (code, message).
    Failed(i32, String),
    /// The client or the monitor went away first.
    Detached,
}

/// Copies the monitor's output to `client` (stdcopy-framed unless `tty`) and, when `stdin`,
/// the client's bytes to the container, until the container exits or either side leaves.
/// With `detach` keys, typing that sequence on stdin ends the session and leaves the
/// container running (the keys themselves never reach it), as Docker's daemon does.
pub async fn pump<C>(
    monitor: UnixStream,
    client: Option<C>,
    tty: bool,
    stdin: bool,
    detach: Option<DetachKeys>,
) -> Ending
where
    C: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (mut mon_r, mut mon_w) = monitor.into_split();
    let (mut cli_r, mut cli_w) = match client {
        Some(c) => {
            let (r, w) = tokio::io::split(c);
            (Some(r), Some(w))
        }
        None => (None, None),
    };
    let input = async {
        let Some(r) = cli_r.as_mut() else {
            return std::future::pending::<()>().await;
        };
        let mut buf = vec![0u8; 32 * 1024];
        let mut matcher = DetachMatcher::default();
        loop {
            match r.read(&mut buf).await {
                Ok(0) | Err(_) => {
                    if stdin {
                        let _ = write_frame(&mut mon_w, attach::STDIN_EOF, &[]).await;
                    }
                    // Half-closed: keep serving output until the container ends.
                    return std::future::pending::<()>().await;
                }
                Ok(n) if stdin => {
                    let (forward, detached) = match &detach {
                        Some(keys) => matcher.feed(keys, &buf[..n]),
                        None => (buf[..n].to_vec(), false),
                    };
                    if !forward.is_empty()
                        && write_frame(&mut mon_w, attach::STDIN, &forward)
                            .await
                            .is_err()
                    {
                        return std::future::pending::<()>().await;
                    }
                    if detached {
                        return;
                    }
                }
                Ok(_) => {}
            }
        }
    };
    let output = async {
        loop {
            match read_frame(&mut mon_r).await {
                Ok(Some((kind, payload))) => match kind {
                    attach::STDOUT | attach::STDERR => {
                        let Some(w) = cli_w.as_mut() else { continue };
                        let result = if tty {
                            w.write_all(&payload).await
                        } else {
                            let stream = if kind == attach::STDOUT { 1 } else { 2 };
                            let mut buf = stdcopy_header(stream, payload.len()).to_vec();
                            buf.extend_from_slice(&payload);
                            w.write_all(&buf).await
                        };
                        if result.is_err() || w.flush().await.is_err() {
                            return Ending::Detached;
                        }
                    }
                    attach::EXIT => return Ending::Exited(attach::payload_i32(&payload)),
                    attach::ERROR => {
                        let code = attach::payload_i32(&payload);
                        let msg =
                            String::from_utf8_lossy(payload.get(4..).unwrap_or(&[])).into_owned();
                        return Ending::Failed(code, msg);
                    }
                    _ => {}
                },
                Ok(None) | Err(_) => return Ending::Detached,
            }
        }
    };
    let ending = tokio::select! {
        e = output => e,
        _ = input => Ending::Detached,
    };
    if let Some(mut w) = cli_w {
        let _ = w.shutdown().await;
    }
    ending
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stdcopy_headers_are_dockers() {
        assert_eq!(stdcopy_header(1, 3), [1, 0, 0, 0, 0, 0, 0, 3]);
        assert_eq!(stdcopy_header(2, 256), [2, 0, 0, 0, 0, 0, 1, 0]);
        let w = Wants {
            stdin: true,
            stdout: true,
            stderr: false,
        };
        assert_eq!(w.bits(), attach::WANT_STDOUT | attach::WANT_STDIN);
    }
}
