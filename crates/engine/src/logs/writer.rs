//! The writer the monitor keeps, for both file drivers: log settings checked as Docker checks
//! them (json-file's and local's own defaults and messages), lines split at newlines per stream
//! (and at 16 KiB, as Docker's copier splits them), encoded as json-file lines or local records,
//! size rotation with optional gzip.

use super::*;
use berth_common::units::parse_human_size;

/// Longest line Docker writes as one entry before splitting.
pub(super) const MAX_LINE: usize = 16 * 1024;

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

/// The `n`th rotated file of `path` (`<path>.n`, or `<path>.n.gz`).
pub(super) fn rotated(path: &Path, n: usize, gz: bool) -> PathBuf {
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
pub(super) fn compress_file(from: &Path, to: &Path) -> Result<()> {
    let tmp = to.with_extension("gz.tmp");
    let mut input = File::open(from).map_err(|e| EngineError::io(from, e))?;
    let output = File::create(&tmp).map_err(|e| EngineError::io(&tmp, e))?;
    let mut encoder = flate2::write::GzEncoder::new(output, flate2::Compression::default());
    std::io::copy(&mut input, &mut encoder).map_err(|e| EngineError::io(&tmp, e))?;
    encoder.finish().map_err(|e| EngineError::io(&tmp, e))?;
    std::fs::rename(&tmp, to).map_err(|e| EngineError::io(to, e))?;
    std::fs::remove_file(from).map_err(|e| EngineError::io(from, e))
}

pub(super) fn encode(out: &mut Vec<u8>, line: &[u8], slot: usize) {
    let entry = LogEntry {
        log: String::from_utf8_lossy(line).into_owned(),
        stream: if slot == 1 { "stderr" } else { "stdout" }.to_string(),
        time: berth_common::time::now_rfc3339(),
    };
    if serde_json::to_writer(&mut *out, &entry).is_ok() {
        out.push(b'\n');
    }
}
