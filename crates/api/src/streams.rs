//! Bridges between hyper's async bodies and the libraries' blocking `Read`/`Write`: a request
//! body read as a `Read` on a blocking thread, a response body fed by a `Write` on one, and
//! Docker's JSON-message lines (`{"status":…}`, `{"stream":…}`, `{"errorDetail":…}`).
use axum::body::Body;
use bytes::Bytes;
use futures_util::TryStreamExt;
use std::io::{self, Read, Write};
use tokio::sync::mpsc;

/// The request body as a blocking reader (use it only inside `spawn_blocking`).
pub fn body_reader(body: Body) -> impl Read + Send + 'static {
    let stream = body.into_data_stream().map_err(io::Error::other);
    tokio_util::io::SyncIoBridge::new(tokio_util::io::StreamReader::new(stream))
}

/// A `Write` whose bytes become a streamed response body. Writing fails once the client left.
pub struct ChannelWriter {
    tx: mpsc::Sender<Result<Bytes, io::Error>>,
}

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        self.tx
            .blocking_send(Ok(Bytes::copy_from_slice(buf)))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl ChannelWriter {
    /// Ends the body with an error (the client sees a truncated transfer, as with Docker).
    pub fn fail(self, err: impl std::fmt::Display) {
        let _ = self
            .tx
            .blocking_send(Err(io::Error::other(err.to_string())));
    }

    /// A check that stays true while the client still reads (for loops that wait between
    /// writes and must notice a client that left).
    pub fn client_alive(&self) -> impl Fn() -> bool + Send + 'static {
        let tx = self.tx.clone();
        move || !tx.is_closed()
    }

    /// Writes one JSON message line.
    pub fn json_line(&mut self, value: &serde_json::Value) -> io::Result<()> {
        let mut line = value.to_string();
        line.push_str("\r\n");
        self.write_all(line.as_bytes())
    }
}

/// A response body produced by `produce` on a blocking thread.
pub fn blocking_body<F>(produce: F) -> Body
where
    F: FnOnce(ChannelWriter) + Send + 'static,
{
    let (tx, rx) = mpsc::channel(16);
    tokio::task::spawn_blocking(move || produce(ChannelWriter { tx }));
    Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx))
}

/// Docker's error line inside a JSON-message stream.
pub fn error_line(message: &str) -> serde_json::Value {
    serde_json::json!({"errorDetail": {"message": message}, "error": message})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_lines_have_both_fields() {
        let v = error_line("boom");
        assert_eq!(v["error"], "boom");
        assert_eq!(v["errorDetail"]["message"], "boom");
    }
}
