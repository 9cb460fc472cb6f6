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

mod reader;
mod writer;
pub use crate::options::parse_since;
pub use reader::{container_log, print_container_logs, print_log, print_logs, LogOptions};
use writer::{rotated, MAX_LINE};
pub use writer::{LogSettings, LogWriter, Rotation};

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

/// Where the json-file log of container `id` lives.
pub fn json_log_path(store: &crate::record::Store, id: &str) -> PathBuf {
    LogFile::of(store, id, LogFormat::JsonFile).path
}

#[cfg(test)]
mod tests;
