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

mod reader;
mod writer;
pub use crate::options::parse_since;
pub use reader::{print_container_logs, print_logs, LogOptions};
pub use writer::{parse_human_size, LogSettings, LogWriter, Rotation};
use writer::{rotated, MAX_LINE};

/// One line of the log.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LogEntry {
    pub log: String,
    pub stream: String,
    pub time: String,
}

/// Where the json-file log of container `id` lives.
pub fn json_log_path(store: &crate::record::Store, id: &str) -> PathBuf {
    store.container_dir(id).join(format!("{id}-json.log"))
}

#[cfg(test)]
mod tests;
