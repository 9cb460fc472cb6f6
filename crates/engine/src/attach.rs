//! The wire protocol between a monitor and its clients (`run` in the foreground, `attach`,
//! `start -a`, `wait`, `stop`) over `containers/<id>/attach.sock` or an inherited socketpair.
//! Frames are `[kind: u8][len: u32 BE][payload]`. Owns encoding and decoding, and what a client
//! asks for when it attaches ([`AttachOptions`]).
use std::io::{self, Read, Write};

/// What an attached client wants (`-a`, `-i`, `-t`, `--sig-proxy`).
#[derive(Debug, Clone, Copy)]
pub struct AttachOptions {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
    pub sig_proxy: bool,
    /// `--detach-keys` (default ctrl-p,ctrl-q), honoured on an interactive terminal.
    pub detach_keys: crate::detach_keys::DetachKeys,
}

/// Client → monitor: which streams the client wants (payload: one byte of [`WANT_*`] bits).
pub const HELLO: u8 = b'h';
/// Client → monitor: bytes for the container's stdin.
pub const STDIN: u8 = b'i';
/// Client → monitor: the client's stdin reached EOF.
pub const STDIN_EOF: u8 = b'e';
/// Client → monitor: terminal size (rows u16 BE, cols u16 BE).
pub const RESIZE: u8 = b'r';
/// Client → monitor: deliver this signal (i32 BE) to the container.
pub const SIGNAL: u8 = b's';
/// Client → monitor: the user stopped the container; do not restart it.
pub const NO_RESTART: u8 = b'n';
/// Monitor → client: container stdout bytes.
pub const STDOUT: u8 = b'1';
/// Monitor → client: container stderr bytes.
pub const STDERR: u8 = b'2';
/// Monitor → client: the container started (payload: init PID, i32 BE).
pub const STARTED: u8 = b'S';
/// Monitor → client: the container exited (payload: exit code, i32 BE). Sent after cleanup.
pub const EXIT: u8 = b'x';
/// Monitor → client: the container could not start (payload: exit code i32 BE + message).
pub const ERROR: u8 = b'E';

pub const WANT_STDOUT: u8 = 1;
pub const WANT_STDERR: u8 = 2;
pub const WANT_STDIN: u8 = 4;

/// Writes one frame.
pub fn write_frame(w: &mut impl Write, kind: u8, payload: &[u8]) -> io::Result<()> {
    let mut buf = Vec::with_capacity(5 + payload.len());
    buf.push(kind);
    buf.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    buf.extend_from_slice(payload);
    w.write_all(&buf)
}

/// Reads one frame; `Ok(None)` at a clean EOF.
pub fn read_frame(r: &mut impl Read) -> io::Result<Option<(u8, Vec<u8>)>> {
    let mut head = [0u8; 5];
    match r.read_exact(&mut head) {
        Ok(()) => {}
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
    r.read_exact(&mut payload)?;
    Ok(Some((head[0], payload)))
}

/// Incremental decoder for a non-blocking reader: feed bytes, take whole frames.
#[derive(Default)]
pub struct FrameBuffer {
    buf: Vec<u8>,
}

impl FrameBuffer {
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next complete frame, if one has arrived.
    pub fn next_frame(&mut self) -> Option<(u8, Vec<u8>)> {
        if self.buf.len() < 5 {
            return None;
        }
        let len = u32::from_be_bytes([self.buf[1], self.buf[2], self.buf[3], self.buf[4]]) as usize;
        if self.buf.len() < 5 + len {
            return None;
        }
        let kind = self.buf[0];
        let payload = self.buf[5..5 + len].to_vec();
        self.buf.drain(..5 + len);
        Some((kind, payload))
    }
}

pub fn i32_payload(value: i32) -> [u8; 4] {
    value.to_be_bytes()
}

pub fn payload_i32(payload: &[u8]) -> i32 {
    payload
        .get(..4)
        .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let mut wire = Vec::new();
        write_frame(&mut wire, STDOUT, b"hello").unwrap();
        write_frame(&mut wire, EXIT, &i32_payload(3)).unwrap();
        let mut fb = FrameBuffer::default();
        fb.push(&wire[..7]);
        assert!(fb.next_frame().is_none());
        fb.push(&wire[7..]);
        assert_eq!(fb.next_frame(), Some((STDOUT, b"hello".to_vec())));
        let (kind, p) = fb.next_frame().unwrap();
        assert_eq!((kind, payload_i32(&p)), (EXIT, 3));
        let mut cursor = std::io::Cursor::new(wire);
        assert_eq!(read_frame(&mut cursor).unwrap().unwrap().0, STDOUT);
    }
}
