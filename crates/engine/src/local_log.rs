//! Docker's `local` log file format: a sequence of protobuf `LogEntry` messages (moby's
//! `logdriver/entry.proto`: source, time_nano, line, partial, partial_log_metadata, attrs), each
//! framed by its length as a big-endian u32 before *and* after, so the file reads forwards and
//! backwards (`--tail` from the end, in bounded memory). The message itself is encoded by
//! `prost`; only the framing, which no crate does, is written here.
//!
//! A record's `line` has no trailing newline: the reader adds one unless the record is a piece
//! of a longer line that is not its last (Docker's `partial` metadata), as Docker's reader does.
//! This module knows records and frames, never files or rotation (that is `logs`).
use prost::Message;
use std::io::{self, Read, Seek, SeekFrom};

/// Bytes of each length frame.
const FRAME: u64 = 4;

/// Largest message Docker's reader accepts (its `maxMsgLen`); a bigger length means a torn or
/// foreign file, never an entry.
pub const MAX_MESSAGE: u32 = 1_000_000;

/// moby's `LogEntry` (field numbers as in its `entry.proto`).
#[derive(Clone, PartialEq, Message)]
pub struct LogRecord {
    /// `stdout` or `stderr`.
    #[prost(string, tag = "1")]
    pub source: String,
    #[prost(int64, tag = "2")]
    pub time_nano: i64,
    /// The bytes, without the newline.
    #[prost(bytes = "vec", tag = "3")]
    pub line: Vec<u8>,
    #[prost(bool, tag = "4")]
    pub partial: bool,
    #[prost(message, optional, tag = "5")]
    pub partial_log_metadata: Option<PartialMetadata>,
    #[prost(message, repeated, tag = "6")]
    pub attrs: Vec<LogAttr>,
}

/// moby's `PartialLogEntryMetadata`: which piece of a split line this is.
#[derive(Clone, PartialEq, Message)]
pub struct PartialMetadata {
    #[prost(bool, tag = "1")]
    pub last: bool,
    #[prost(string, tag = "2")]
    pub id: String,
    #[prost(int32, tag = "3")]
    pub ordinal: i32,
}

/// moby's `LogAttr` (`--log-opt labels=/env=/tag=` attributes).
#[derive(Clone, PartialEq, Message)]
pub struct LogAttr {
    #[prost(string, tag = "1")]
    pub key: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

impl LogRecord {
    /// Whether the reader ends this record's text with a newline (Docker's rule: a whole line,
    /// or the last piece of a split one).
    pub fn ends_line(&self) -> bool {
        !self.partial || self.partial_log_metadata.as_ref().is_some_and(|m| m.last)
    }

    /// The text as `logs` prints it.
    pub fn text(&self) -> Vec<u8> {
        let mut out = self.line.clone();
        if self.ends_line() {
            out.push(b'\n');
        }
        out
    }
}

/// Appends `record`, framed, to `out`.
pub fn encode(out: &mut Vec<u8>, record: &LogRecord) {
    let len = record.encoded_len() as u32;
    out.extend_from_slice(&len.to_be_bytes());
    // Encoding into a Vec only fails for lack of capacity, which a Vec grows.
    let _ = record.encode(out);
    out.extend_from_slice(&len.to_be_bytes());
}

/// What one forward read found.
#[derive(Debug)]
pub enum Next {
    /// A whole record and the bytes it took.
    Record(LogRecord, u64),
    /// Nothing more: the end, or a record still being written (read again later).
    End,
}

fn invalid(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

/// Reads `buf.len()` bytes, or returns false at an end that comes first (a record still being
/// written reads as the end; the caller seeks back to where the record began).
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<bool> {
    let mut got = 0;
    while got < buf.len() {
        match reader.read(&mut buf[got..]) {
            Ok(0) => return Ok(false),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// Reads the next record from `reader`.
pub fn read_next(reader: &mut impl Read) -> io::Result<Next> {
    let mut head = [0u8; FRAME as usize];
    if !read_full(reader, &mut head)? {
        return Ok(Next::End);
    }
    let len = u32::from_be_bytes(head);
    if len > MAX_MESSAGE {
        return Err(invalid(format!(
            "log message is too large ({len} > {MAX_MESSAGE})"
        )));
    }
    let mut body = vec![0u8; len as usize + FRAME as usize];
    if !read_full(reader, &mut body)? {
        return Ok(Next::End);
    }
    let tail = u32::from_be_bytes(
        body[len as usize..]
            .try_into()
            .map_err(|_| invalid("short frame".into()))?,
    );
    if tail != len {
        return Err(invalid(format!(
            "log message header and footer indicate different message sizes ({len} and {tail})"
        )));
    }
    let record = LogRecord::decode(&body[..len as usize])
        .map_err(|e| invalid(format!("error unmarshalling log entry (size={len}): {e}")))?;
    Ok(Next::Record(record, len as u64 + 2 * FRAME))
}

/// The end of the last whole record at or before `len`: `len` itself when the file ends with a
/// whole record (its trailer and header agree), else found by reading forwards from the start
/// (a record is being written right now, which is rare and short-lived).
pub fn complete_end<R: Read + Seek>(file: &mut R, len: u64) -> io::Result<u64> {
    if len == 0 || frame_before(file, len)?.is_some() {
        return Ok(len);
    }
    file.seek(SeekFrom::Start(0))?;
    let mut reader = io::BufReader::new(&mut *file);
    let mut end = 0;
    loop {
        match read_next(&mut reader) {
            Ok(Next::Record(_, n)) if end + n <= len => end += n,
            Ok(_) | Err(_) => return Ok(end),
        }
    }
}

/// The record that ends at `end`, and where it starts, when the frames around it agree.
fn frame_before<R: Read + Seek>(file: &mut R, end: u64) -> io::Result<Option<(u64, u32)>> {
    if end < 2 * FRAME {
        return Ok(None);
    }
    let mut word = [0u8; FRAME as usize];
    file.seek(SeekFrom::Start(end - FRAME))?;
    file.read_exact(&mut word)?;
    let len = u32::from_be_bytes(word);
    if len > MAX_MESSAGE || (len as u64) + 2 * FRAME > end {
        return Ok(None);
    }
    let start = end - 2 * FRAME - len as u64;
    file.seek(SeekFrom::Start(start))?;
    file.read_exact(&mut word)?;
    Ok((u32::from_be_bytes(word) == len).then_some((start, len)))
}

/// Reads records backwards from `end`, newest first, handing each to `each` until it returns
/// false or the file's start is reached. Memory holds one record at a time.
pub fn read_backwards<R: Read + Seek>(
    file: &mut R,
    mut end: u64,
    mut each: impl FnMut(LogRecord) -> bool,
) -> io::Result<()> {
    while end > 0 {
        let Some((start, len)) = frame_before(file, end)? else {
            return Err(invalid(format!(
                "log message header and footer disagree before offset {end}"
            )));
        };
        let mut body = vec![0u8; len as usize];
        file.seek(SeekFrom::Start(start + FRAME))?;
        file.read_exact(&mut body)?;
        let record = LogRecord::decode(&body[..])
            .map_err(|e| invalid(format!("error unmarshalling log entry (size={len}): {e}")))?;
        if !each(record) {
            return Ok(());
        }
        end = start;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn record(line: &str, partial: Option<(bool, i32)>) -> LogRecord {
        LogRecord {
            source: "stdout".into(),
            time_nano: 1_700_000_000_123_456_789,
            line: line.as_bytes().to_vec(),
            partial: partial.is_some(),
            partial_log_metadata: partial.map(|(last, ordinal)| PartialMetadata {
                last,
                id: "p".into(),
                ordinal,
            }),
            attrs: Vec::new(),
        }
    }

    #[test]
    fn frames_read_forwards_and_backwards() {
        let mut bytes = Vec::new();
        let records = [
            record("one", None),
            record("two-a", Some((false, 1))),
            record("two-b", Some((true, 2))),
            record("", None),
        ];
        for r in &records {
            encode(&mut bytes, r);
        }
        // Hand-checked against the wire format: length, then field 1 (tag 0x0a) "stdout".
        let first_len = u32::from_be_bytes(bytes[..4].try_into().unwrap()) as usize;
        assert_eq!(&bytes[4..12], b"\x0a\x06stdout");
        assert_eq!(&bytes[4 + first_len..8 + first_len], &bytes[..4]);

        let mut reader = Cursor::new(&bytes);
        let mut forwards = Vec::new();
        while let Next::Record(r, _) = read_next(&mut reader).unwrap() {
            forwards.push(r);
        }
        assert_eq!(forwards, records);
        let texts: Vec<Vec<u8>> = forwards.iter().map(LogRecord::text).collect();
        assert_eq!(texts, [&b"one\n"[..], b"two-a", b"two-b\n", b"\n"]);

        let mut backwards = Vec::new();
        let mut file = Cursor::new(&bytes);
        read_backwards(&mut file, bytes.len() as u64, |r| {
            backwards.push(r);
            true
        })
        .unwrap();
        backwards.reverse();
        assert_eq!(backwards, records);
    }

    #[test]
    fn a_record_being_written_is_not_read_yet() {
        let mut bytes = Vec::new();
        encode(&mut bytes, &record("whole", None));
        let whole = bytes.len() as u64;
        encode(&mut bytes, &record("torn", None));
        bytes.truncate(bytes.len() - 3);
        let mut reader = Cursor::new(&bytes);
        assert!(matches!(read_next(&mut reader).unwrap(), Next::Record(..)));
        assert!(matches!(read_next(&mut reader).unwrap(), Next::End));
        let mut file = Cursor::new(&bytes);
        assert_eq!(complete_end(&mut file, bytes.len() as u64).unwrap(), whole);
        assert_eq!(complete_end(&mut file, whole).unwrap(), whole);
    }

    #[test]
    fn garbage_is_an_error_not_an_entry() {
        let mut reader = Cursor::new(vec![0xff, 0xff, 0xff, 0xff, 1, 2, 3]);
        assert!(read_next(&mut reader).is_err());
        let mut bytes = Vec::new();
        encode(&mut bytes, &record("x", None));
        let n = bytes.len();
        bytes[n - 1] ^= 1;
        assert!(read_next(&mut Cursor::new(&bytes)).is_err());
    }
}
