//! Docker's log drivers as the monitor keeps them. `json-file`: `containers/<id>/<id>-json.log`,
//! one JSON object per line, `{"log":"…\n","stream":"stdout","time":"<RFC 3339 nano>"}`.
//! `local`: `containers/<id>/local-logs/container.log`, Docker's framed protobuf records (see
//! `local_log`), rotated by default (20 MiB, 5 files, gzipped). Both rotate by size
//! (`--log-opt max-size=… max-file=…`) as Docker does: the full file becomes `<file>.1`, older
//! ones move up (`.2`, …) and the oldest beyond `max-file` goes; `compress=true` gzips the
//! rotated files (`.1.gz`). `none`: nothing is kept and `logs` says so. The writer (used by the
//! monitor) splits output at newlines, keeping partial lines per stream until they complete; the
//! reader implements `logs --tail --since --until -t` across the rotated files (the tail read
//! from the end of each, in memory for N entries) and `-f`, following the log through its
//! rotations until the container stops. The CLI's `logs` and the API's
//! `/containers/{id}/logs` both go through [`print_container_logs`].
use crate::error::{EngineError, Result};
use crate::local_log::{LogRecord, Next};
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// One line of the log.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LogEntry {
    pub log: String,
    pub stream: String,
    pub time: String,
}

impl LogEntry {
    /// A `local` record as `logs` shows it (its newline restored as Docker's reader does).
    fn of_record(record: &LogRecord) -> LogEntry {
        LogEntry {
            log: String::from_utf8_lossy(&record.text()).into_owned(),
            stream: record.source.clone(),
            time: berth_common::time::rfc3339(chrono::DateTime::from_timestamp_nanos(
                record.time_nano,
            )),
        }
    }
}

/// Longest line Docker writes as one entry before splitting.
const MAX_LINE: usize = 16 * 1024;

/// How a kept log is written on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line.
    JsonFile,
    /// Docker's `local` driver: length-framed protobuf records.
    Local,
}

/// A container's kept log: its live file and format (rotated files sit beside it).
#[derive(Debug, Clone, PartialEq)]
pub struct LogFile {
    pub path: PathBuf,
    pub format: LogFormat,
}

impl LogFile {
    /// Where the log of container `id` in `format` lives (Docker's places).
    pub fn of(store: &crate::record::Store, id: &str, format: LogFormat) -> LogFile {
        let dir = store.container_dir(id);
        let path = match format {
            LogFormat::JsonFile => dir.join(format!("{id}-json.log")),
            LogFormat::Local => dir.join("local-logs").join("container.log"),
        };
        LogFile { path, format }
    }

    /// A json-file log at `path`.
    pub fn json(path: &Path) -> LogFile {
        LogFile {
            path: path.to_path_buf(),
            format: LogFormat::JsonFile,
        }
    }
}

/// A container's log driver and its options, checked as Docker's daemon checks them.
#[derive(Debug, Clone, PartialEq)]
pub struct LogSettings {
    /// How the log is kept, or None (`none`: nothing is).
    pub format: Option<LogFormat>,
    pub rotation: Rotation,
}

/// When the log rotates.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Rotation {
    /// `max-size` in bytes (Docker's decimal units); None is unbounded.
    pub max_size: Option<u64>,
    /// `max-file`: files kept, the live one included (at least 1).
    pub max_files: usize,
    /// `compress`: gzip the rotated files.
    pub compress: bool,
}

/// The log options both file drivers accept (`labels`… only name what Docker attaches).
const KNOWN_OPTS: [&str; 8] = [
    "max-size",
    "max-file",
    "compress",
    "labels",
    "labels-regex",
    "env",
    "env-regex",
    "tag",
];

/// Go's `strconv.ParseBool`.
fn parse_go_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

impl LogSettings {
    /// Docker's rules for `--log-driver` and `--log-opt`, with its messages.
    pub fn of(config: &crate::options::LogConfig) -> Result<LogSettings> {
        let bad = |message: String| EngineError::InvalidOption {
            option: "--log-opt".into(),
            message,
        };
        match config.r#type.as_str() {
            "" | "json-file" => {}
            "none" => {
                if !config.config.is_empty() {
                    return Err(bad("invalid logging opts for driver none".into()));
                }
                return Ok(LogSettings {
                    format: None,
                    rotation: Rotation::default(),
                });
            }
            "local" => return LogSettings::local(config),
            other => {
                return Err(EngineError::InvalidOption {
                    option: "--log-driver".into(),
                    message: format!(
                        "error looking up logging plugin {other}: plugin \"{other}\" not found"
                    ),
                })
            }
        }
        if let Some(key) = config
            .config
            .keys()
            .find(|k| !KNOWN_OPTS.contains(&k.as_str()))
        {
            return Err(bad(format!(
                "unknown log opt '{key}' for json-file log driver"
            )));
        }
        let init = |m: &str| bad(format!("failed to initialize logging driver: {m}"));
        let max_size = match config.config.get("max-size") {
            Some(text) => match parse_human_size(text) {
                Some(n) if n > 0 => Some(n as u64),
                _ => return Err(init("max-size must be a positive number")),
            },
            None => None,
        };
        let max_files = match config.config.get("max-file") {
            Some(text) => match text.parse::<i64>() {
                Ok(n) if n >= 1 => n as usize,
                Ok(_) => return Err(init("max-file cannot be less than 1")),
                Err(_) => return Err(init(&format!("invalid value for max-file: {text}"))),
            },
            None => 1,
        };
        let compress = match config.config.get("compress") {
            Some(text) => match parse_go_bool(text) {
                Some(b) => b,
                None => return Err(init(&format!("invalid value for compress: {text}"))),
            },
            None => false,
        };
        if compress && (max_files < 2 || max_size.is_none()) {
            return Err(init(
                "compress cannot be true when max-file is less than 2 or max-size is not set",
            ));
        }
        Ok(LogSettings {
            format: Some(LogFormat::JsonFile),
            rotation: Rotation {
                max_size,
                max_files,
                compress,
            },
        })
    }

    /// The `local` driver's options: Docker's defaults (20 MiB, 5 files, compressed) and checks.
    fn local(config: &crate::options::LogConfig) -> Result<LogSettings> {
        let bad = |message: String| EngineError::InvalidOption {
            option: "--log-opt".into(),
            message,
        };
        if let Some(key) = config
            .config
            .keys()
            .find(|k| !KNOWN_OPTS.contains(&k.as_str()))
        {
            return Err(bad(format!("unknown log opt '{key}' for log driver local")));
        }
        let init = |m: &str| bad(format!("failed to initialize logging driver: {m}"));
        let max_size = match config.config.get("max-size") {
            Some(text) => match parse_human_size(text) {
                Some(n) if n < 0 => return Err(init("max-size must not be negative")),
                Some(0) => None,
                Some(n) => Some(n as u64),
                None => return Err(init(&format!("invalid value for max-size: {text}"))),
            },
            None => Some(20 * 1024 * 1024),
        };
        let max_files = match config.config.get("max-file") {
            Some(text) => match text.parse::<i64>() {
                Ok(n) if n < 0 => return Err(init("max-file must not be negative")),
                Ok(n) => n as usize,
                Err(_) => return Err(init(&format!("invalid value for max-file: {text}"))),
            },
            None => 5,
        };
        let compress = match config.config.get("compress") {
            Some(text) => parse_go_bool(text).ok_or_else(|| {
                init(&format!(
                    "invalid boolean value for compress: strconv.ParseBool: parsing \"{text}\": \
                     invalid syntax"
                ))
            })?,
            None => true,
        };
        if compress && max_files <= 1 {
            return Err(init(
                "compression cannot be enabled when max file count is 1",
            ));
        }
        if max_files < 1 {
            return Err(init("max-file cannot be less than 1"));
        }
        Ok(LogSettings {
            format: Some(LogFormat::Local),
            rotation: Rotation {
                max_size,
                max_files,
                compress,
            },
        })
    }

    /// Whether anything is kept to read back.
    pub fn keeps_logs(&self) -> bool {
        self.format.is_some()
    }
}

/// Docker's `units.FromHumanSize`: decimal units (`1k` = 1000), an optional `b`/`B`, and
/// optional space: `10m`, `1.5MB`, `500 k`, `100`.
pub fn parse_human_size(text: &str) -> Option<i64> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let value: f64 = t[..split].parse().ok()?;
    let unit = t[split..].trim().to_ascii_lowercase();
    let unit = unit.strip_suffix('b').unwrap_or(&unit);
    let unit = unit.strip_suffix('i').unwrap_or(unit);
    let scale = match unit {
        "" => 1.0,
        "k" => 1e3,
        "m" => 1e6,
        "g" => 1e9,
        "t" => 1e12,
        "p" => 1e15,
        _ => return None,
    };
    Some((value * scale) as i64)
}

/// The `n`th rotated file of `path` (`<path>.n`, or `<path>.n.gz`).
fn rotated(path: &Path, n: usize, gz: bool) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{n}"));
    if gz {
        name.push(".gz");
    }
    PathBuf::from(name)
}

/// Appends a container's output to its log (json-file or local), rotating it by size.
pub struct LogWriter {
    file: File,
    path: PathBuf,
    format: LogFormat,
    size: u64,
    rotation: Rotation,
    pending: [Vec<u8>; 2],
    /// Per stream, the split line being written in pieces (`local`'s partial metadata): its
    /// ID and the ordinal of the last piece written.
    split: [Option<(String, i32)>; 2],
}

impl LogWriter {
    /// An unbounded json-file log at `path`.
    pub fn open(path: &Path) -> Result<LogWriter> {
        LogWriter::open_rotating(path, Rotation::default())
    }

    /// A json-file log at `path`.
    pub fn open_rotating(path: &Path, rotation: Rotation) -> Result<LogWriter> {
        LogWriter::create(&LogFile::json(path), rotation)
    }

    /// The log `log`, appended to (its directory made when missing).
    pub fn create(log: &LogFile, rotation: Rotation) -> Result<LogWriter> {
        let path = &log.path;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| EngineError::io(dir, e))?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| EngineError::io(path, e))?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(LogWriter {
            file,
            path: path.to_path_buf(),
            format: log.format,
            size,
            rotation,
            pending: [Vec::new(), Vec::new()],
            split: [None, None],
        })
    }

    /// Records `data` read from stream 1 (stdout) or 2 (stderr).
    pub fn write(&mut self, stream: usize, data: &[u8]) {
        let slot = if stream == 2 { 1 } else { 0 };
        self.pending[slot].extend_from_slice(data);
        let mut out = Vec::new();
        loop {
            let buf = &self.pending[slot];
            // Docker's copier: a line longer than its buffer goes out in pieces.
            let cut = match buf.iter().take(MAX_LINE).position(|b| *b == b'\n') {
                Some(i) => i + 1,
                None if buf.len() >= MAX_LINE => MAX_LINE,
                None => break,
            };
            let line: Vec<u8> = self.pending[slot].drain(..cut).collect();
            self.add_entry(&mut out, &line, slot);
        }
        self.append(&out);
    }

    /// Writes any partial lines (at container exit).
    pub fn flush(&mut self) {
        let mut out = Vec::new();
        for slot in 0..2 {
            if !self.pending[slot].is_empty() {
                let line = std::mem::take(&mut self.pending[slot]);
                self.add_entry(&mut out, &line, slot);
            }
        }
        self.append(&out);
    }

    /// Adds one encoded entry to the batch `out`, rotating first (after writing what the
    /// batch holds) when the entry would take the file past `max-size`: a file never exceeds
    /// it unless one entry alone does.
    fn add_entry(&mut self, out: &mut Vec<u8>, line: &[u8], slot: usize) {
        let start = out.len();
        match self.format {
            LogFormat::JsonFile => encode(out, line, slot),
            LogFormat::Local => {
                let record = self.local_record(line, slot);
                crate::local_log::encode(out, &record);
            }
        }
        let len = (out.len() - start) as u64;
        if let Some(max) = self.rotation.max_size {
            if self.size > 0 && self.size + len > max {
                let entry = out.split_off(start);
                self.append(out);
                out.clear();
                if let Err(e) = self.rotate() {
                    eprintln!("log {}: rotating: {e}", self.path.display());
                }
                out.extend_from_slice(&entry);
            }
        }
        self.size += len;
    }

    /// `line` (ending in a newline, or a piece of a longer one) as Docker's local driver
    /// records it: without the newline; a piece, and the piece that completes a split line,
    /// carry partial metadata (one random ID per split line, ordinals from 1).
    fn local_record(&mut self, line: &[u8], slot: usize) -> LogRecord {
        let whole = line.strip_suffix(b"\n");
        let (text, partial) = match (whole, self.split[slot].take()) {
            (Some(text), None) => (text, None),
            (Some(text), Some((id, ordinal))) => (
                text,
                Some(crate::local_log::PartialMetadata {
                    last: true,
                    id,
                    ordinal: ordinal + 1,
                }),
            ),
            (None, split) => {
                let (id, ordinal) = split.unwrap_or_else(|| (crate::names::new_id(), 0));
                self.split[slot] = Some((id.clone(), ordinal + 1));
                (
                    line,
                    Some(crate::local_log::PartialMetadata {
                        last: false,
                        id,
                        ordinal: ordinal + 1,
                    }),
                )
            }
        };
        LogRecord {
            source: if slot == 1 { "stderr" } else { "stdout" }.into(),
            time_nano: chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default(),
            line: text.to_vec(),
            partial: partial.is_some(),
            partial_log_metadata: partial,
            attrs: Vec::new(),
        }
    }

    fn append(&mut self, bytes: &[u8]) {
        if !bytes.is_empty() {
            let _ = self.file.write_all(bytes);
        }
    }

    /// Docker's rotation: with one file it is truncated; otherwise `.n-1` → `.n`, …, the
    /// live file → `.1` (gzipped with `compress`), and a fresh live file.
    fn rotate(&mut self) -> Result<()> {
        self.size = 0;
        if self.rotation.max_files < 2 {
            return self
                .file
                .set_len(0)
                .map_err(|e| EngineError::io(&self.path, e));
        }
        let gz = self.rotation.compress;
        for n in (1..self.rotation.max_files - 1).rev() {
            let from = rotated(&self.path, n, gz);
            if from.exists() {
                let to = rotated(&self.path, n + 1, gz);
                std::fs::rename(&from, &to).map_err(|e| EngineError::io(&from, e))?;
            }
        }
        let first = rotated(&self.path, 1, false);
        std::fs::rename(&self.path, &first).map_err(|e| EngineError::io(&self.path, e))?;
        self.file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(|e| EngineError::io(&self.path, e))?;
        if gz {
            compress_file(&first, &rotated(&self.path, 1, true))?;
        }
        Ok(())
    }
}

/// Gzips `from` into `to` (through a temporary name) and removes `from`.
fn compress_file(from: &Path, to: &Path) -> Result<()> {
    let tmp = to.with_extension("gz.tmp");
    let mut input = File::open(from).map_err(|e| EngineError::io(from, e))?;
    let output = File::create(&tmp).map_err(|e| EngineError::io(&tmp, e))?;
    let mut encoder = flate2::write::GzEncoder::new(output, flate2::Compression::default());
    std::io::copy(&mut input, &mut encoder).map_err(|e| EngineError::io(&tmp, e))?;
    encoder.finish().map_err(|e| EngineError::io(&tmp, e))?;
    std::fs::rename(&tmp, to).map_err(|e| EngineError::io(to, e))?;
    std::fs::remove_file(from).map_err(|e| EngineError::io(from, e))
}

fn encode(out: &mut Vec<u8>, line: &[u8], slot: usize) {
    let entry = LogEntry {
        log: String::from_utf8_lossy(line).into_owned(),
        stream: if slot == 1 { "stderr" } else { "stdout" }.to_string(),
        time: berth_common::time::now_rfc3339(),
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
    berth_common::time::parse_rfc3339(&entry.time)
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

/// Reads the complete entries from `reader`'s position on (lines of a json-file log, records of
/// a local one), advancing `offset` past each, and hands every entry that passes the options'
/// filters to `each`. A partial last entry (the monitor is mid-write) is left for the next read.
fn read_complete_entries(
    reader: &mut impl BufRead,
    format: LogFormat,
    path: &Path,
    offset: &mut u64,
    opts: &LogOptions,
    mut each: impl FnMut(LogEntry),
) -> Result<()> {
    if format == LogFormat::Local {
        loop {
            match crate::local_log::read_next(reader).map_err(|e| EngineError::io(path, e))? {
                Next::Record(record, n) => {
                    *offset += n;
                    let entry = LogEntry::of_record(&record);
                    if keep(&entry, opts) {
                        each(entry);
                    }
                }
                Next::End => return Ok(()),
            }
        }
    }
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
/// entry. The file is read backwards (in chunks of lines, or record by record along the
/// `local` format's trailing lengths); only the entries kept are held in memory.
fn tail_entries<R: Read + Seek>(
    file: &mut R,
    format: LogFormat,
    path: &Path,
    opts: &LogOptions,
    n: usize,
) -> Result<(Vec<LogEntry>, u64)> {
    if format == LogFormat::JsonFile {
        return tail_json_entries(file, path, opts, n);
    }
    let io = |e| EngineError::io(path, e);
    let len = file.seek(SeekFrom::End(0)).map_err(io)?;
    let end = crate::local_log::complete_end(file, len).map_err(io)?;
    let mut found = Vec::new();
    if n > 0 {
        crate::local_log::read_backwards(file, end, |record| {
            let entry = LogEntry::of_record(&record);
            if keep(&entry, opts) {
                found.push(entry);
            }
            found.len() < n
        })
        .map_err(io)?;
    }
    found.reverse();
    Ok((found, end))
}

/// [`tail_entries`] of a json-file log: backwards in chunks; only the entries kept and one
/// partial line are held in memory.
fn tail_json_entries<R: Read + Seek>(
    file: &mut R,
    path: &Path,
    opts: &LogOptions,
    n: usize,
) -> Result<(Vec<LogEntry>, u64)> {
    const CHUNK: u64 = 64 * 1024;
    let io = |e| EngineError::io(path, e);
    let len = file.seek(SeekFrom::End(0)).map_err(io)?;
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
        file.read_exact(&mut chunk).map_err(io)?;
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

/// A rotated file of the log: plain or gzipped.
#[derive(Debug, Clone, PartialEq)]
struct OldFile {
    path: PathBuf,
    gz: bool,
    format: LogFormat,
}

/// The rotated files of `log`, newest (`.1`) first.
fn old_files(log: &LogFile) -> Vec<OldFile> {
    let mut out = Vec::new();
    for n in 1.. {
        let plain = rotated(&log.path, n, false);
        let gz = rotated(&log.path, n, true);
        let (path, gz) = if plain.exists() {
            (plain, false)
        } else if gz.exists() {
            (gz, true)
        } else {
            return out;
        };
        out.push(OldFile {
            path,
            gz,
            format: log.format,
        });
    }
    out
}

impl OldFile {
    /// Its content from the start: the file, or its gzip stream decoded as it is read. None
    /// when it was rotated away (beyond max-file) while we looked.
    fn open(&self) -> Result<Option<Box<dyn BufRead>>> {
        let file = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(EngineError::io(&self.path, e)),
        };
        Ok(Some(if self.gz {
            Box::new(BufReader::new(flate2::read::GzDecoder::new(file)))
        } else {
            Box::new(BufReader::new(file))
        }))
    }

    /// Every entry passing the filters, in order, to `each`.
    fn stream(&self, opts: &LogOptions, each: impl FnMut(LogEntry)) -> Result<()> {
        let mut offset = 0;
        match self.open()? {
            Some(mut reader) => read_complete_entries(
                &mut reader,
                self.format,
                &self.path,
                &mut offset,
                opts,
                each,
            ),
            None => Ok(()),
        }
    }

    /// Its last `n` entries passing the filters: read backwards from its end, or (gzip reads
    /// only forwards) streamed through a window of `n` entries.
    fn tail(&self, opts: &LogOptions, n: usize) -> Result<Vec<LogEntry>> {
        if self.gz {
            let mut window = std::collections::VecDeque::with_capacity(n.min(4096));
            if n > 0 {
                self.stream(opts, |entry| {
                    if window.len() == n {
                        window.pop_front();
                    }
                    window.push_back(entry);
                })?;
            }
            return Ok(window.into());
        }
        match File::open(&self.path) {
            Ok(mut f) => Ok(tail_entries(&mut f, self.format, &self.path, opts, n)?.0),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(EngineError::io(&self.path, e)),
        }
    }
}

/// Prints the json-file log at `path`; see [`print_log`].
pub fn print_logs(
    path: &Path,
    opts: &LogOptions,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
    still_running: impl FnMut() -> bool,
) -> Result<()> {
    print_log(&LogFile::json(path), opts, stdout, stderr, still_running)
}

/// Prints the log `log` (its rotated files first); with `follow`, keeps printing new entries,
/// through rotations, until `still_running` says the container stopped (then prints what is
/// left and returns).
pub fn print_log(
    log: &LogFile,
    opts: &LogOptions,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
    mut still_running: impl FnMut() -> bool,
) -> Result<()> {
    let (path, format) = (log.path.as_path(), log.format);
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !opts.follow => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(|e| EngineError::io(dir, e))?;
            }
            File::create(path).map_err(|e| EngineError::io(path, e))?;
            File::open(path).map_err(|e| EngineError::io(path, e))?
        }
        Err(e) => return Err(EngineError::io(path, e)),
    };
    let mut inode = file.metadata().map(|m| m.ino()).unwrap_or(0);
    let older = old_files(log);
    let mut offset = 0u64;
    let mut reader = match opts.tail {
        // `--tail N` reads backwards from the end, then into older files while it needs
        // more: memory holds N entries, whatever the size.
        Some(n) => {
            let mut file = file;
            let (mut entries, end) = tail_entries(&mut file, format, path, opts, n)?;
            for old in &older {
                if entries.len() >= n {
                    break;
                }
                let mut earlier = old.tail(opts, n - entries.len())?;
                earlier.append(&mut entries);
                entries = earlier;
            }
            for entry in &entries {
                emit(entry, opts, stdout, stderr);
            }
            offset = end;
            reader_from(file, path, offset)?
        }
        // Otherwise entries stream from the oldest file on, one entry in memory at a time.
        None => {
            for old in older.iter().rev() {
                old.stream(opts, |entry| emit(&entry, opts, stdout, stderr))?;
            }
            let mut reader = BufReader::new(file);
            read_complete_entries(&mut reader, format, path, &mut offset, opts, |entry| {
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
        read_complete_entries(&mut reader, format, path, &mut offset, opts, |entry| {
            emit(&entry, opts, stdout, stderr)
        })?;
        match std::fs::metadata(path) {
            // Rotated: what we hold is now `.1` (or older) and complete. Read the files
            // rotated after it, then go on with the new live file.
            Ok(meta) if meta.ino() != inode => {
                // The writer may have added entries to our file between our read and its
                // rename; it never writes to it after, so this read finishes it.
                reader
                    .seek(SeekFrom::Start(offset))
                    .map_err(|e| EngineError::io(path, e))?;
                read_complete_entries(&mut reader, format, path, &mut offset, opts, |entry| {
                    emit(&entry, opts, stdout, stderr)
                })?;
                let newer = old_files(log);
                let ours = newer.iter().position(|f| {
                    !f.gz && std::fs::metadata(&f.path).is_ok_and(|m| m.ino() == inode)
                });
                if let Some(k) = ours {
                    for old in newer[..k].iter().rev() {
                        old.stream(opts, |entry| emit(&entry, opts, stdout, stderr))?;
                    }
                }
                let file = File::open(path).map_err(|e| EngineError::io(path, e))?;
                inode = file.metadata().map(|m| m.ino()).unwrap_or(0);
                offset = 0;
                reader = BufReader::new(file);
                continue;
            }
            // Truncated (`max-file=1`): start over at its beginning.
            Ok(meta) if meta.len() < offset => offset = 0,
            _ => {}
        }
        let _ = stdout.flush();
        let _ = stderr.flush();
        if !running {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// The log container `id` keeps, by its log driver (its host config), or Docker's error for a
/// driver that keeps nothing.
pub fn container_log(store: &crate::record::Store, id: &str) -> Result<LogFile> {
    let host = store.load_host_config(id).unwrap_or_default();
    match LogSettings::of(&host.log_config).map(|s| s.format) {
        Ok(Some(format)) => Ok(LogFile::of(store, id, format)),
        _ => Err(EngineError::LogsNotReadable { id: id.to_string() }),
    }
}

/// `logs` of a container, by its log driver: the json-file or local log (rotated files
/// included), or Docker's error for a driver that keeps nothing. The CLI and the API's
/// `/containers/{id}/logs` both call this.
pub fn print_container_logs(
    store: &crate::record::Store,
    record: &crate::record::ContainerRecord,
    opts: &LogOptions,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
    still_running: impl FnMut() -> bool,
) -> Result<()> {
    let log = container_log(store, &record.id)?;
    print_log(&log, opts, stdout, stderr, still_running)
}

/// Where the json-file log of container `id` lives.
pub fn json_log_path(store: &crate::record::Store, id: &str) -> PathBuf {
    LogFile::of(store, id, LogFormat::JsonFile).path
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
        let (_, end) = tail_entries(
            &mut file,
            LogFormat::JsonFile,
            &path,
            &LogOptions::default(),
            1,
        )
        .unwrap();
        assert_eq!(end as usize, text.rfind('\n').unwrap() + 1);
    }

    fn read_all(path: &Path, tail: Option<usize>) -> Vec<String> {
        let opts = LogOptions {
            tail,
            ..Default::default()
        };
        let (mut out, mut err) = (Vec::new(), Vec::new());
        print_logs(path, &opts, &mut out, &mut err, || false).unwrap();
        String::from_utf8(out)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn rotation_keeps_max_file_files_under_max_size_and_reads_across_them() {
        for compress in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("c-json.log");
            let rotation = Rotation {
                max_size: Some(1000),
                max_files: 3,
                compress,
            };
            let mut w = LogWriter::open_rotating(&path, rotation).unwrap();
            for i in 0..100 {
                w.write(1, format!("line {i}\n").as_bytes());
            }
            w.flush();
            let mut names: Vec<String> = std::fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            let want: Vec<String> = if compress {
                vec![
                    "c-json.log".into(),
                    "c-json.log.1.gz".into(),
                    "c-json.log.2.gz".into(),
                ]
            } else {
                vec![
                    "c-json.log".into(),
                    "c-json.log.1".into(),
                    "c-json.log.2".into(),
                ]
            };
            assert_eq!(names, want);
            if !compress {
                for name in &names {
                    let len = std::fs::metadata(dir.path().join(name)).unwrap().len();
                    assert!(len <= 1000, "{name} is {len} bytes");
                }
            }
            let all = read_all(&path, None);
            assert_eq!(all.last().map(String::as_str), Some("line 99"));
            // Contiguous from wherever the oldest kept file starts.
            let first: usize = all[0].trim_start_matches("line ").parse().unwrap();
            let want: Vec<String> = (first..100).map(|i| format!("line {i}")).collect();
            assert_eq!(all, want);
            // --tail reaches into the rotated files.
            let tail = read_all(&path, Some(all.len() - 1));
            assert_eq!(tail, all[1..].to_vec());
            assert_eq!(read_all(&path, Some(2)), ["line 98", "line 99"]);
        }
    }

    #[test]
    fn one_file_is_truncated_and_options_are_checked_as_docker_does() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c-json.log");
        let rotation = Rotation {
            max_size: Some(300),
            max_files: 1,
            compress: false,
        };
        let mut w = LogWriter::open_rotating(&path, rotation).unwrap();
        for i in 0..50 {
            w.write(2, format!("line {i}\n").as_bytes());
        }
        assert!(std::fs::metadata(&path).unwrap().len() <= 300);
        assert_eq!(old_files(&LogFile::json(&path)), Vec::new());

        let settings = |driver: &str, opts: &[(&str, &str)]| {
            LogSettings::of(&crate::options::LogConfig {
                r#type: driver.into(),
                config: opts
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            })
        };
        let ok = settings("json-file", &[("max-size", "1m"), ("max-file", "3")]).unwrap();
        assert_eq!(ok.rotation.max_size, Some(1_000_000));
        assert_eq!(ok.rotation.max_files, 3);
        assert!(!settings("none", &[]).unwrap().keeps_logs());
        let err =
            |driver: &str, opts: &[(&str, &str)]| settings(driver, opts).unwrap_err().to_string();
        assert_eq!(
            err("none", &[("max-size", "1m")]),
            "invalid logging opts for driver none"
        );
        assert_eq!(
            err("json-file", &[("colour", "red")]),
            "unknown log opt 'colour' for json-file log driver"
        );
        assert!(
            err("json-file", &[("max-size", "0")]).contains("max-size must be a positive number")
        );
        assert!(err("json-file", &[("max-file", "0")]).contains("max-file cannot be less than 1"));
        assert!(
            err("json-file", &[("max-size", "1m"), ("compress", "true")])
                .contains("compress cannot be true")
        );
        assert!(err("foo", &[]).contains("plugin \"foo\" not found"));
        assert_eq!(parse_human_size("1.5MB"), Some(1_500_000));
        assert_eq!(parse_human_size("10k"), Some(10_000));
        assert_eq!(parse_human_size("big"), None);
    }

    #[test]
    fn follow_goes_through_rotations() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c-json.log");
        let rotation = Rotation {
            max_size: Some(400),
            max_files: 1000,
            compress: false,
        };
        let mut w = LogWriter::open_rotating(&path, rotation).unwrap();
        w.write(1, b"first\n");
        let opts = LogOptions {
            follow: true,
            ..Default::default()
        };
        let (mut out, mut err) = (Vec::new(), Vec::new());
        // Each poll of the reader writes a burst that rotates the log once or twice.
        let mut polls = 0;
        print_logs(&path, &opts, &mut out, &mut err, || {
            polls += 1;
            if polls <= 20 {
                for i in 0..10 {
                    w.write(1, format!("poll {polls} line {i}\n").as_bytes());
                }
            }
            polls <= 20
        })
        .unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1 + 20 * 10, "{text}");
        assert_eq!(lines[0], "first");
        assert_eq!(lines[200], "poll 20 line 9");
        assert!(old_files(&LogFile::json(&path)).len() > 5);
    }

    fn local_settings(opts: &[(&str, &str)]) -> Result<LogSettings> {
        LogSettings::of(&crate::options::LogConfig {
            r#type: "local".into(),
            config: opts
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        })
    }

    fn read_log(log: &LogFile, tail: Option<usize>) -> (String, String) {
        let opts = LogOptions {
            tail,
            ..Default::default()
        };
        let (mut out, mut err) = (Vec::new(), Vec::new());
        print_log(log, &opts, &mut out, &mut err, || false).unwrap();
        (
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
        )
    }

    #[test]
    fn local_records_round_trip_with_docker_partial_lines() {
        let dir = tempfile::tempdir().unwrap();
        let log = LogFile {
            path: dir.path().join("local-logs/container.log"),
            format: LogFormat::Local,
        };
        let mut w = LogWriter::create(&log, Rotation::default()).unwrap();
        w.write(1, b"hel");
        w.write(1, b"lo\nwor");
        w.write(2, b"oops\n");
        let long = "x".repeat(MAX_LINE + 10);
        w.write(1, b"ld\n");
        w.write(2, format!("{long}\n").as_bytes());
        w.write(1, b"no newline");
        w.flush();
        // The records, as Docker's local driver writes them.
        let bytes = std::fs::read(&log.path).unwrap();
        let mut reader = std::io::Cursor::new(&bytes);
        let mut records = Vec::new();
        while let Next::Record(r, _) = crate::local_log::read_next(&mut reader).unwrap() {
            records.push(r);
        }
        let lines: Vec<(&str, &[u8], bool)> = records
            .iter()
            .map(|r| (r.source.as_str(), &r.line[..], r.partial))
            .collect();
        assert_eq!(lines[0], ("stdout", &b"hello"[..], false));
        assert_eq!(lines[1], ("stderr", &b"oops"[..], false));
        assert_eq!(lines[2], ("stdout", &b"world"[..], false));
        // The long line: a first piece of MAX_LINE bytes, then the last piece, one ID.
        let (a, b) = (&records[3], &records[4]);
        assert_eq!(a.line.len(), MAX_LINE);
        let (ma, mb) = (
            a.partial_log_metadata.as_ref().unwrap(),
            b.partial_log_metadata.as_ref().unwrap(),
        );
        assert_eq!(
            (ma.ordinal, ma.last, mb.ordinal, mb.last),
            (1, false, 2, true)
        );
        assert_eq!(ma.id, mb.id);
        assert_eq!(b.line.len(), 10);
        // The unfinished last line is a partial that is not the last piece: no newline.
        assert!(records[5].partial && !records[5].ends_line());
        assert!(records[0].time_nano > 1_700_000_000_000_000_000);

        let (out, err) = read_log(&log, None);
        assert_eq!(out, "hello\nworld\nno newline");
        assert_eq!(
            err,
            format!("oops\n{}{}\n", &long[..MAX_LINE], &long[MAX_LINE..])
        );
        let (out, err) = read_log(&log, Some(2));
        assert_eq!(out, "no newline");
        assert_eq!(err, format!("{}\n", &long[MAX_LINE..]));
        // -t prints each entry's own time.
        let opts = LogOptions {
            timestamps: true,
            tail: Some(1),
            ..Default::default()
        };
        let (mut out, mut err) = (Vec::new(), Vec::new());
        print_log(&log, &opts, &mut out, &mut err, || false).unwrap();
        let out = String::from_utf8(out).unwrap();
        let (time, text) = out.split_once(' ').unwrap();
        assert_eq!(text, "no newline");
        assert_eq!(
            berth_common::time::parse_rfc3339(time)
                .and_then(|t| t.timestamp_nanos_opt())
                .unwrap(),
            records[5].time_nano
        );
    }

    #[test]
    fn local_rotation_keeps_max_file_gzipped_files_and_tails_across_them() {
        for compress in [true, false] {
            let dir = tempfile::tempdir().unwrap();
            let log = LogFile {
                path: dir.path().join("container.log"),
                format: LogFormat::Local,
            };
            let rotation = Rotation {
                max_size: Some(1000),
                max_files: 3,
                compress,
            };
            let mut w = LogWriter::create(&log, rotation).unwrap();
            for i in 0..200 {
                w.write(1 + i % 2, format!("line {i}\n").as_bytes());
            }
            w.flush();
            let mut names: Vec<String> = std::fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            let suffix = if compress { ".gz" } else { "" };
            assert_eq!(
                names,
                [
                    "container.log".to_string(),
                    format!("container.log.1{suffix}"),
                    format!("container.log.2{suffix}"),
                ]
            );
            for name in &names {
                let bytes = std::fs::read(dir.path().join(name)).unwrap();
                let plain = if name.ends_with(".gz") {
                    let mut v = Vec::new();
                    flate2::read::GzDecoder::new(&bytes[..])
                        .read_to_end(&mut v)
                        .unwrap();
                    v
                } else {
                    bytes
                };
                assert!(plain.len() <= 1000, "{name} holds {} bytes", plain.len());
            }
            let (out, err) = read_log(&log, None);
            let mut all: Vec<usize> = out
                .lines()
                .chain(err.lines())
                .map(|l| l.trim_start_matches("line ").parse().unwrap())
                .collect();
            all.sort();
            let first = all[0];
            assert_eq!(all, (first..200).collect::<Vec<_>>());
            // --tail reaches back through both rotated files.
            let n = all.len() - 1;
            let (out, err) = read_log(&log, Some(n));
            assert_eq!(out.lines().count() + err.lines().count(), n);
            assert!(!out.contains(&format!("line {first}\n")));
            assert!(!err.contains(&format!("line {first}\n")));
            assert_eq!(
                read_log(&log, Some(2)),
                ("line 198\n".into(), "line 199\n".into())
            );
        }
    }

    #[test]
    fn local_options_default_and_fail_as_docker() {
        let s = local_settings(&[]).unwrap();
        assert_eq!(s.format, Some(LogFormat::Local));
        assert_eq!(
            s.rotation,
            Rotation {
                max_size: Some(20 * 1024 * 1024),
                max_files: 5,
                compress: true,
            }
        );
        let s = local_settings(&[("max-size", "1m"), ("max-file", "3"), ("compress", "false")])
            .unwrap();
        assert_eq!(s.rotation.max_size, Some(1_000_000));
        assert_eq!((s.rotation.max_files, s.rotation.compress), (3, false));
        let err = |opts: &[(&str, &str)]| local_settings(opts).unwrap_err().to_string();
        assert_eq!(
            err(&[("colour", "red")]),
            "unknown log opt 'colour' for log driver local"
        );
        assert!(err(&[("max-file", "1")])
            .contains("compression cannot be enabled when max file count is 1"));
        assert!(err(&[("max-file", "-1")]).contains("max-file must not be negative"));
        assert!(err(&[("max-size", "huge")]).contains("invalid value for max-size: huge"));
        assert!(err(&[("compress", "maybe")]).contains("invalid boolean value for compress"));
        assert!(local_settings(&[("max-file", "1"), ("compress", "false")]).is_ok());
    }

    #[test]
    fn following_a_local_log_reads_records_as_they_complete() {
        let dir = tempfile::tempdir().unwrap();
        let log = LogFile {
            path: dir.path().join("container.log"),
            format: LogFormat::Local,
        };
        let rotation = Rotation {
            max_size: Some(300),
            max_files: 1000,
            compress: false,
        };
        let mut w = LogWriter::create(&log, rotation).unwrap();
        w.write(1, b"first\n");
        // A torn record at the end (a write in progress) is read once it is whole.
        let mut torn = Vec::new();
        crate::local_log::encode(
            &mut torn,
            &LogRecord {
                source: "stdout".into(),
                time_nano: 1,
                line: b"torn".to_vec(),
                ..Default::default()
            },
        );
        let (half, rest) = torn.split_at(torn.len() / 2);
        let mut raw = std::fs::OpenOptions::new()
            .append(true)
            .open(&log.path)
            .unwrap();
        raw.write_all(half).unwrap();
        let opts = LogOptions {
            follow: true,
            ..Default::default()
        };
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let mut polls = 0;
        print_log(&log, &opts, &mut out, &mut err, || {
            polls += 1;
            if polls == 2 {
                raw.write_all(rest).unwrap();
            }
            if (3..=12).contains(&polls) {
                for i in 0..10 {
                    w.write(1, format!("poll {polls} line {i}\n").as_bytes());
                }
            }
            polls <= 12
        })
        .unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2 + 10 * 10, "{text}");
        assert_eq!(&lines[..2], ["first", "torn"]);
        assert_eq!(lines[101], "poll 12 line 9");
        assert!(old_files(&log).len() > 3);
    }
}
