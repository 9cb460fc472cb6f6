//! Docker's json-file log: `containers/<id>/<id>-json.log`, one JSON object per line,
//! `{"log":"…\n","stream":"stdout","time":"<RFC 3339 nano>"}`. The writer (used by the monitor)
//! splits output at newlines, keeping partial lines per stream until they complete; the reader
//! implements `logs --tail --since -t` and `-f` (follow until the container stops).
use crate::error::{EngineError, Result};
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::Path;

/// One line of the log.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LogEntry {
    pub log: String,
    pub stream: String,
    pub time: String,
}

/// Longest line Docker writes as one entry before splitting.
const MAX_LINE: usize = 16 * 1024;

/// Appends a container's output to its json-file log.
pub struct LogWriter {
    file: File,
    pending: [Vec<u8>; 2],
}

impl LogWriter {
    pub fn open(path: &Path) -> Result<LogWriter> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| EngineError::io(path, e))?;
        Ok(LogWriter {
            file,
            pending: [Vec::new(), Vec::new()],
        })
    }

    /// Records `data` read from stream 1 (stdout) or 2 (stderr).
    pub fn write(&mut self, stream: usize, data: &[u8]) {
        let slot = if stream == 2 { 1 } else { 0 };
        self.pending[slot].extend_from_slice(data);
        let mut out = Vec::new();
        loop {
            let buf = &self.pending[slot];
            let cut = match buf.iter().position(|b| *b == b'\n') {
                Some(i) => i + 1,
                None if buf.len() >= MAX_LINE => MAX_LINE,
                None => break,
            };
            let line: Vec<u8> = self.pending[slot].drain(..cut).collect();
            encode(&mut out, &line, slot);
        }
        if !out.is_empty() {
            let _ = self.file.write_all(&out);
        }
    }

    /// Writes any partial lines (at container exit).
    pub fn flush(&mut self) {
        let mut out = Vec::new();
        for slot in 0..2 {
            if !self.pending[slot].is_empty() {
                let line = std::mem::take(&mut self.pending[slot]);
                encode(&mut out, &line, slot);
            }
        }
        if !out.is_empty() {
            let _ = self.file.write_all(&out);
        }
    }
}

fn encode(out: &mut Vec<u8>, line: &[u8], slot: usize) {
    let entry = LogEntry {
        log: String::from_utf8_lossy(line).into_owned(),
        stream: if slot == 1 { "stderr" } else { "stdout" }.to_string(),
        time: crate::record::now_rfc3339(),
    };
    if serde_json::to_writer(&mut *out, &entry).is_ok() {
        out.push(b'\n');
    }
}

/// `logs` options.
#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    pub follow: bool,
    /// Show only the last N lines.
    pub tail: Option<usize>,
    /// Show only entries at or after this time.
    pub since: Option<chrono::DateTime<chrono::Utc>>,
    pub until: Option<chrono::DateTime<chrono::Utc>>,
    pub timestamps: bool,
}

/// Parses `--since`/`--until`: RFC 3339, a Unix timestamp, or a relative duration like `10m`,
/// `2h`, `30s` (Docker's `GetTimestamp`).
pub fn parse_since(text: &str) -> Result<chrono::DateTime<chrono::Utc>> {
    berth_common::time::parse_timestamp(text, chrono::Utc::now()).ok_or_else(|| {
        EngineError::InvalidFlag {
            flag: "--since".into(),
            value: text.into(),
            reason: "expected a timestamp or a duration like 10m".into(),
        }
    })
}

fn entry_time(entry: &LogEntry) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(&entry.time)
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
}

fn keep(entry: &LogEntry, opts: &LogOptions) -> bool {
    match entry_time(entry) {
        Some(t) => opts.since.is_none_or(|s| t >= s) && opts.until.is_none_or(|u| t <= u),
        None => true,
    }
}

fn emit(entry: &LogEntry, opts: &LogOptions, stdout: &mut dyn Write, stderr: &mut dyn Write) {
    let out: &mut dyn Write = if entry.stream == "stderr" {
        stderr
    } else {
        stdout
    };
    if opts.timestamps {
        let _ = write!(out, "{} ", entry.time);
    }
    let _ = out.write_all(entry.log.as_bytes());
}

/// Reads the complete lines from `reader`'s position on, advancing `offset` past each, and hands
/// every entry that parses and passes the options' filters to `each`. A partial last line (the
/// monitor is mid-write) is left for the next read.
fn read_complete_entries(
    reader: &mut BufReader<File>,
    path: &Path,
    offset: &mut u64,
    opts: &LogOptions,
    mut each: impl FnMut(LogEntry),
) -> Result<()> {
    let mut line = String::new();
    loop {
        line.clear();
        let n = reader
            .read_line(&mut line)
            .map_err(|e| EngineError::io(path, e))?;
        if n == 0 || !line.ends_with('\n') {
            return Ok(());
        }
        *offset += n as u64;
        if let Ok(entry) = serde_json::from_str::<LogEntry>(&line) {
            if keep(&entry, opts) {
                each(entry);
            }
        }
    }
}

fn reader_from(mut file: File, path: &Path, offset: u64) -> Result<BufReader<File>> {
    file.seek(SeekFrom::Start(offset))
        .map_err(|e| EngineError::io(path, e))?;
    Ok(BufReader::new(file))
}

/// The last `n` entries passing the filters, in order, and the offset just past the last complete
/// line. The file is read backwards in chunks; only the entries kept and one partial line are
/// held in memory.
fn tail_entries(
    file: &mut File,
    path: &Path,
    opts: &LogOptions,
    n: usize,
) -> Result<(Vec<LogEntry>, u64)> {
    const CHUNK: u64 = 64 * 1024;
    let io = |e| EngineError::io(path, e);
    let len = file.metadata().map_err(io)?.len();
    let mut found: Vec<LogEntry> = Vec::new();
    let mut pos = len;
    let mut carry: Vec<u8> = Vec::new();
    let mut end: Option<u64> = None;
    let take = |line: &[u8], found: &mut Vec<LogEntry>| {
        if let Ok(entry) = serde_json::from_slice::<LogEntry>(line) {
            if keep(&entry, opts) {
                found.push(entry);
            }
        }
    };
    while pos > 0 && found.len() < n {
        let start = pos.saturating_sub(CHUNK);
        let mut chunk = vec![0u8; (pos - start) as usize];
        file.seek(SeekFrom::Start(start)).map_err(io)?;
        std::io::Read::read_exact(file, &mut chunk).map_err(io)?;
        chunk.extend_from_slice(&carry);
        pos = start;
        let mut line_end = chunk.len();
        if end.is_none() {
            // A partial last line (the monitor is mid-write) is not an entry yet.
            match chunk.iter().rposition(|&b| b == b'\n') {
                Some(i) => {
                    end = Some(start + i as u64 + 1);
                    line_end = i + 1;
                }
                None => {
                    carry = chunk;
                    continue;
                }
            }
        }
        while line_end > 0 && found.len() < n {
            match chunk[..line_end - 1].iter().rposition(|&b| b == b'\n') {
                Some(i) => {
                    take(&chunk[i + 1..line_end], &mut found);
                    line_end = i + 1;
                }
                None if pos == 0 => {
                    take(&chunk[..line_end], &mut found);
                    line_end = 0;
                }
                None => break,
            }
        }
        chunk.truncate(line_end);
        carry = chunk;
    }
    found.reverse();
    Ok((found, end.unwrap_or(0)))
}

/// Prints the log at `path`; with `follow`, keeps printing new entries until `still_running`
/// says the container stopped (then prints what is left and returns).
pub fn print_logs(
    path: &Path,
    opts: &LogOptions,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
    mut still_running: impl FnMut() -> bool,
) -> Result<()> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !opts.follow => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            File::create(path).map_err(|e| EngineError::io(path, e))?;
            File::open(path).map_err(|e| EngineError::io(path, e))?
        }
        Err(e) => return Err(EngineError::io(path, e)),
    };
    let mut offset = 0u64;
    let mut reader = match opts.tail {
        // `--tail N` reads backwards from the end: memory holds N entries, whatever the size.
        Some(n) => {
            let mut file = file;
            let (entries, end) = tail_entries(&mut file, path, opts, n)?;
            for entry in &entries {
                emit(entry, opts, stdout, stderr);
            }
            offset = end;
            reader_from(file, path, offset)?
        }
        // Otherwise entries stream from the start, one line in memory at a time.
        None => {
            let mut reader = BufReader::new(file);
            read_complete_entries(&mut reader, path, &mut offset, opts, |entry| {
                emit(&entry, opts, stdout, stderr)
            })?;
            reader
        }
    };
    let _ = stdout.flush();
    let _ = stderr.flush();
    if !opts.follow {
        return Ok(());
    }
    loop {
        let running = still_running();
        reader
            .seek(SeekFrom::Start(offset))
            .map_err(|e| EngineError::io(path, e))?;
        read_complete_entries(&mut reader, path, &mut offset, opts, |entry| {
            emit(&entry, opts, stdout, stderr)
        })?;
        let _ = stdout.flush();
        let _ = stderr.flush();
        if !running {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_docker_json_lines_and_reads_them_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x-json.log");
        let mut w = LogWriter::open(&path).unwrap();
        w.write(1, b"hel");
        w.write(1, b"lo\nwor");
        w.write(2, b"oops\n");
        w.flush();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<LogEntry> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines[0].log, "hello\n");
        assert_eq!(lines[0].stream, "stdout");
        assert_eq!(lines[1].stream, "stderr");
        assert_eq!(lines[2].log, "wor");
        assert!(lines[0].time.ends_with('Z'));
        let (mut out, mut err) = (Vec::new(), Vec::new());
        print_logs(
            &path,
            &LogOptions {
                tail: Some(2),
                ..Default::default()
            },
            &mut out,
            &mut err,
            || false,
        )
        .unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "wor");
        assert_eq!(String::from_utf8(err).unwrap(), "oops\n");
    }

    #[test]
    fn since_accepts_durations_and_timestamps() {
        assert!(parse_since("10m").unwrap() < chrono::Utc::now());
        assert!(parse_since("2026-01-01T00:00:00Z").is_ok());
        assert!(parse_since("1700000000").is_ok());
        assert!(parse_since("soon").is_err());
    }

    #[test]
    fn tail_reads_from_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c-json.log");
        let mut text = String::new();
        for i in 0..5000 {
            let stream = if i % 2 == 0 { "stdout" } else { "stderr" };
            text.push_str(&format!(
                "{{\"log\":\"line {i}\\n\",\"stream\":\"{stream}\",\"time\":\"2024-01-01T00:00:00.000000000Z\"}}\n"
            ));
        }
        text.push_str("{\"log\":\"partial");
        std::fs::write(&path, &text).unwrap();
        let run = |tail: Option<usize>| {
            let opts = LogOptions {
                tail,
                ..Default::default()
            };
            let (mut out, mut err) = (Vec::new(), Vec::new());
            print_logs(&path, &opts, &mut out, &mut err, || false).unwrap();
            (
                String::from_utf8(out).unwrap(),
                String::from_utf8(err).unwrap(),
            )
        };
        let (out, err) = run(Some(3));
        assert_eq!(out, "line 4998\n");
        assert_eq!(err, "line 4997\nline 4999\n");
        let (out, err) = run(Some(0));
        assert!(out.is_empty() && err.is_empty());
        let (out, err) = run(Some(100_000));
        assert_eq!(out.lines().count() + err.lines().count(), 5000);
        assert!(out.starts_with("line 0\n"));
        let (out, _) = run(None);
        assert_eq!(out.lines().count(), 2500);
        let mut file = File::open(&path).unwrap();
        let (_, end) = tail_entries(&mut file, &path, &LogOptions::default(), 1).unwrap();
        assert_eq!(end as usize, text.rfind('\n').unwrap() + 1);
    }
}
