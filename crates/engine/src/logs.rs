//! Docker's log drivers as the monitor keeps them. `json-file`: `containers/<id>/<id>-json.log`,
//! one JSON object per line, `{"log":"…\n","stream":"stdout","time":"<RFC 3339 nano>"}`,
//! rotated by size (`--log-opt max-size=… max-file=…`) as Docker does: the full file becomes
//! `<id>-json.log.1`, older ones move up (`.2`, …) and the oldest beyond `max-file` goes;
//! `compress=true` gzips the rotated files (`.1.gz`). `none`: nothing is kept and `logs` says
//! so. The writer (used by the monitor) splits output at newlines, keeping partial lines per
//! stream until they complete; the reader implements `logs --tail --since --until -t` across
//! the rotated files and `-f`, following the log through its rotations until the container stops.
use crate::error::{EngineError, Result};
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

/// Longest line Docker writes as one entry before splitting.
const MAX_LINE: usize = 16 * 1024;

/// A container's log driver and its options, checked as Docker's daemon checks them.
#[derive(Debug, Clone, PartialEq)]
pub struct LogSettings {
    /// Whether anything is kept (`json-file`) or not (`none`).
    pub keeps_logs: bool,
    pub rotation: Rotation,
}

/// When the json-file log rotates.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Rotation {
    /// `max-size` in bytes (Docker's decimal units); None is unbounded.
    pub max_size: Option<u64>,
    /// `max-file`: files kept, the live one included (at least 1).
    pub max_files: usize,
    /// `compress`: gzip the rotated files.
    pub compress: bool,
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
                    keeps_logs: false,
                    rotation: Rotation::default(),
                });
            }
            // Docker's own binary format; Berth keeps json-file only (say so, not "not found").
            "local" => {
                return Err(EngineError::InvalidOption {
                    option: "--log-driver".into(),
                    message: "the local log driver is not supported by berth: use json-file \
                              with --log-opt max-size and max-file"
                        .into(),
                })
            }
            other => {
                return Err(EngineError::InvalidOption {
                    option: "--log-driver".into(),
                    message: format!(
                        "error looking up logging plugin {other}: plugin \"{other}\" not found"
                    ),
                })
            }
        }
        const KNOWN: [&str; 8] = [
            "max-size",
            "max-file",
            "compress",
            "labels",
            "labels-regex",
            "env",
            "env-regex",
            "tag",
        ];
        if let Some(key) = config.config.keys().find(|k| !KNOWN.contains(&k.as_str())) {
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
            Some(text) => match text.as_str() {
                "1" | "t" | "T" | "true" | "TRUE" | "True" => true,
                "0" | "f" | "F" | "false" | "FALSE" | "False" => false,
                _ => return Err(init(&format!("invalid value for compress: {text}"))),
            },
            None => false,
        };
        if compress && (max_files < 2 || max_size.is_none()) {
            return Err(init(
                "compress cannot be true when max-file is less than 2 or max-size is not set",
            ));
        }
        Ok(LogSettings {
            keeps_logs: true,
            rotation: Rotation {
                max_size,
                max_files,
                compress,
            },
        })
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

/// Appends a container's output to its json-file log, rotating it by size.
pub struct LogWriter {
    file: File,
    path: PathBuf,
    size: u64,
    rotation: Rotation,
    pending: [Vec<u8>; 2],
}

impl LogWriter {
    /// An unbounded log at `path`.
    pub fn open(path: &Path) -> Result<LogWriter> {
        LogWriter::open_rotating(path, Rotation::default())
    }

    pub fn open_rotating(path: &Path, rotation: Rotation) -> Result<LogWriter> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| EngineError::io(path, e))?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(LogWriter {
            file,
            path: path.to_path_buf(),
            size,
            rotation,
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
        encode(out, line, slot);
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

/// Reads the complete lines from `reader`'s position on, advancing `offset` past each, and hands
/// every entry that parses and passes the options' filters to `each`. A partial last line (the
/// monitor is mid-write) is left for the next read.
fn read_complete_entries(
    reader: &mut impl BufRead,
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
fn tail_entries<R: Read + Seek>(
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
}

/// The rotated files of the log at `path`, newest (`.1`) first.
fn old_files(path: &Path) -> Vec<OldFile> {
    let mut out = Vec::new();
    for n in 1.. {
        let plain = rotated(path, n, false);
        let gz = rotated(path, n, true);
        if plain.exists() {
            out.push(OldFile {
                path: plain,
                gz: false,
            });
        } else if gz.exists() {
            out.push(OldFile { path: gz, gz: true });
        } else {
            return out;
        }
    }
    out
}

impl OldFile {
    /// Its whole content when gzipped (bounded by `max-size`), else None.
    fn unpacked(&self) -> Result<Option<Vec<u8>>> {
        if !self.gz {
            return Ok(None);
        }
        let file = File::open(&self.path).map_err(|e| EngineError::io(&self.path, e))?;
        let mut bytes = Vec::new();
        flate2::read::GzDecoder::new(file)
            .read_to_end(&mut bytes)
            .map_err(|e| EngineError::io(&self.path, e))?;
        Ok(Some(bytes))
    }

    /// Every entry passing the filters, in order, to `each`.
    fn stream(&self, opts: &LogOptions, each: impl FnMut(LogEntry)) -> Result<()> {
        let mut offset = 0;
        match self.unpacked()? {
            Some(bytes) => {
                read_complete_entries(&mut &bytes[..], &self.path, &mut offset, opts, each)
            }
            None => match File::open(&self.path) {
                Ok(f) => read_complete_entries(
                    &mut BufReader::new(f),
                    &self.path,
                    &mut offset,
                    opts,
                    each,
                ),
                // Rotated away (beyond max-file) while we looked: nothing left to read.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(EngineError::io(&self.path, e)),
            },
        }
    }

    /// Its last `n` entries passing the filters.
    fn tail(&self, opts: &LogOptions, n: usize) -> Result<Vec<LogEntry>> {
        match self.unpacked()? {
            Some(bytes) => {
                Ok(tail_entries(&mut std::io::Cursor::new(bytes), &self.path, opts, n)?.0)
            }
            None => match File::open(&self.path) {
                Ok(mut f) => Ok(tail_entries(&mut f, &self.path, opts, n)?.0),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
                Err(e) => Err(EngineError::io(&self.path, e)),
            },
        }
    }
}

/// A file of the log's rotation chain, opened: what is read from it no longer depends on the
/// names the writer moves it through.
struct HeldFile {
    path: PathBuf,
    file: File,
    gz: bool,
    ino: u64,
}

impl HeldFile {
    /// Every entry passing the filters, in order, to `each`.
    fn stream(&self, opts: &LogOptions, each: impl FnMut(LogEntry)) -> Result<()> {
        let mut offset = 0;
        if self.gz {
            let mut reader =
                BufReader::new(flate2::read::GzDecoder::new(ReadAt::start(&self.file)));
            read_complete_entries(&mut reader, &self.path, &mut offset, opts, each)
        } else {
            let mut reader = BufReader::new(ReadAt::start(&self.file));
            read_complete_entries(&mut reader, &self.path, &mut offset, opts, each)
        }
    }

    /// Its first line (decompressed), if it has a complete one.
    fn first_line(&self) -> Option<Vec<u8>> {
        if self.gz {
            first_line_of(flate2::read::GzDecoder::new(ReadAt::start(&self.file)))
        } else {
            first_line_of(ReadAt::start(&self.file))
        }
    }
}

/// Reads a file from a position of its own (`pread`), leaving the descriptor's offset alone, so
/// one opened file can be read more than once.
struct ReadAt<'a> {
    file: &'a File,
    pos: u64,
}

impl<'a> ReadAt<'a> {
    fn start(file: &'a File) -> Self {
        ReadAt { file, pos: 0 }
    }
}

impl Read for ReadAt<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = std::os::unix::fs::FileExt::read_at(self.file, buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// The first complete line read from `from`'s start (at most one entry's worth of bytes).
fn first_line_of(from: impl Read) -> Option<Vec<u8>> {
    let mut line = Vec::new();
    let mut limited = BufReader::new(from.take(4 * MAX_LINE as u64));
    limited.read_until(b'\n', &mut line).ok()?;
    line.ends_with(b"\n").then_some(line)
}

/// The rotated files as they are now, `.1` first, opened. A missing number is passed over
/// once (a rotation in progress moves the files up one at a time, oldest first); two in a row
/// end the chain.
fn open_chain(path: &Path) -> Result<Vec<HeldFile>> {
    let mut chain = Vec::new();
    let mut missing = 0;
    for n in 1.. {
        let mut found = false;
        for gz in [false, true] {
            let name = rotated(path, n, gz);
            match File::open(&name) {
                Ok(file) => {
                    let ino = file
                        .metadata()
                        .map_err(|e| EngineError::io(&name, e))?
                        .ino();
                    chain.push(HeldFile {
                        path: name,
                        file,
                        gz,
                        ino,
                    });
                    found = true;
                    break;
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(EngineError::io(&name, e)),
            }
        }
        missing = if found { 0 } else { missing + 1 };
        if missing == 2 {
            break;
        }
    }
    Ok(chain)
}

fn inode_of(path: &Path) -> Option<u64> {
    std::fs::metadata(path).ok().map(|m| m.ino())
}

/// After the file `held` was rotated: the files rotated after it, oldest first, and the new live
/// file, all opened. The writer (another process) may rotate again at any moment, so the chain is
/// opened, then checked name by name, and taken again until nothing moved in between; `held` is
/// found in it by inode, or by its first line once gzipped. When it is not there any more (gone
/// past `max-file`), every rotated file is newer than it.
fn files_after(path: &Path, held: &File) -> Result<(Vec<HeldFile>, File)> {
    let held_ino = held.metadata().map_err(|e| EngineError::io(path, e))?.ino();
    let held_first = first_line_of(ReadAt::start(held));
    for _ in 0..10_000 {
        let live = match File::open(path) {
            Ok(f) => f,
            // Between the rename of the live file and the creation of the next one.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::thread::sleep(std::time::Duration::from_millis(1));
                continue;
            }
            Err(e) => return Err(EngineError::io(path, e)),
        };
        let live_ino = live.metadata().map_err(|e| EngineError::io(path, e))?.ino();
        let mut chain = open_chain(path)?;
        let still = inode_of(path) == Some(live_ino)
            && chain.iter().all(|h| inode_of(&h.path) == Some(h.ino));
        if !still {
            continue;
        }
        let ours = chain.iter().position(|h| {
            h.ino == held_ino || (h.gz && held_first.is_some() && h.first_line() == held_first)
        });
        if let Some(k) = ours {
            chain.truncate(k);
        }
        chain.reverse();
        return Ok((chain, live));
    }
    Err(EngineError::io(
        path,
        std::io::Error::other("the log kept rotating while it was being followed"),
    ))
}

/// Prints the log at `path` (its rotated files first); with `follow`, keeps printing new
/// entries, through rotations, until `still_running` says the container stopped (then prints
/// what is left and returns).
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
    let mut inode = file.metadata().map(|m| m.ino()).unwrap_or(0);
    let older = old_files(path);
    let mut offset = 0u64;
    let mut reader = match opts.tail {
        // `--tail N` reads backwards from the end, then into older files while it needs
        // more: memory holds N entries, whatever the size.
        Some(n) => {
            let mut file = file;
            let (mut entries, end) = tail_entries(&mut file, path, opts, n)?;
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
        // Otherwise entries stream from the oldest file on, one line in memory at a time.
        None => {
            for old in older.iter().rev() {
                old.stream(opts, |entry| emit(&entry, opts, stdout, stderr))?;
            }
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
        match std::fs::metadata(path) {
            // Rotated: what we hold is now `.1` (or older) and complete. Read the files
            // rotated after it, then go on with the new live file.
            Ok(meta) if meta.ino() != inode => {
                // The writer may have added lines to our file between our read and its
                // rename; it never writes to it after, so this read finishes it.
                reader
                    .seek(SeekFrom::Start(offset))
                    .map_err(|e| EngineError::io(path, e))?;
                read_complete_entries(&mut reader, path, &mut offset, opts, |entry| {
                    emit(&entry, opts, stdout, stderr)
                })?;
                let (newer, live) = files_after(path, reader.get_ref())?;
                for held in newer {
                    held.stream(opts, |entry| emit(&entry, opts, stdout, stderr))?;
                }
                inode = live.metadata().map(|m| m.ino()).unwrap_or(0);
                offset = 0;
                reader = BufReader::new(live);
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

/// `logs` of a container, by its log driver: the json-file log (rotated files included), or
/// Docker's error for a driver that keeps nothing.
pub fn print_container_logs(
    store: &crate::record::Store,
    record: &crate::record::ContainerRecord,
    opts: &LogOptions,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
    still_running: impl FnMut() -> bool,
) -> Result<()> {
    let host = store.load_host_config(&record.id).unwrap_or_default();
    if !LogSettings::of(&host.log_config).is_ok_and(|s| s.keeps_logs) {
        return Err(EngineError::LogsNotReadable {
            id: record.id.clone(),
        });
    }
    print_logs(
        &json_log_path(store, &record.id),
        opts,
        stdout,
        stderr,
        still_running,
    )
}

/// Where the json-file log of container `id` lives.
pub fn json_log_path(store: &crate::record::Store, id: &str) -> PathBuf {
    store.container_dir(id).join(format!("{id}-json.log"))
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
        assert_eq!(old_files(&path), Vec::new());

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
        assert!(!settings("none", &[]).unwrap().keeps_logs);
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
        assert!(err("local", &[]).contains("not supported by berth"));
        assert_eq!(parse_human_size("1.5MB"), Some(1_500_000));
        assert_eq!(parse_human_size("10k"), Some(10_000));
        assert_eq!(parse_human_size("big"), None);
    }

    /// The writer is another process in real use and rotates whenever it likes, also while the
    /// follower is between noticing a rotation and opening the next file: nothing may be skipped
    /// or repeated (a full run once lost 40 lines of `logs -f` that way).
    #[test]
    fn follow_keeps_every_line_while_a_concurrent_writer_rotates() {
        for compress in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("c-json.log");
            let rotation = Rotation {
                max_size: Some(1500),
                max_files: 1000,
                compress,
            };
            let mut w = LogWriter::open_rotating(&path, rotation).unwrap();
            let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let writer_done = done.clone();
            let lines = 6000;
            let writer = std::thread::spawn(move || {
                for i in 0..lines {
                    w.write(1, format!("line {i}\n").as_bytes());
                    if i % 50 == 0 {
                        w.flush();
                        std::thread::sleep(std::time::Duration::from_micros(100));
                    }
                }
                w.flush();
                writer_done.store(true, std::sync::atomic::Ordering::SeqCst);
            });
            let opts = LogOptions {
                follow: true,
                ..Default::default()
            };
            let (mut out, mut err) = (Vec::new(), Vec::new());
            print_logs(&path, &opts, &mut out, &mut err, || {
                !done.load(std::sync::atomic::Ordering::SeqCst)
            })
            .unwrap();
            writer.join().unwrap();
            let text = String::from_utf8(out).unwrap();
            let want: Vec<String> = (0..lines).map(|i| format!("line {i}")).collect();
            let got: Vec<&str> = text.lines().collect();
            assert_eq!(got.len(), want.len(), "compress={compress}");
            assert!(
                got.iter().zip(&want).all(|(a, b)| a == b),
                "compress={compress}"
            );
        }
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
        assert!(old_files(&path).len() > 5);
    }
}
