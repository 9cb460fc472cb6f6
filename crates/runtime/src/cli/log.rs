//! runc-style logging for the CLI. Like runc's logrus setup: every error goes to stderr as a
//! `time="…" level=error msg="…"` line, and to `--log FILE` (created at startup even when
//! nothing is logged, as containerd's shim expects) as text or as the JSON lines the shim reads
//! (`{"level":"error","msg":…,"time":…}`); `--debug` adds `level=debug` lines.

use std::io::Write;
use std::path::{Path, PathBuf};

pub struct Logger {
    file: Option<PathBuf>,
    json: bool,
    pub debug: bool,
}

impl Logger {
    pub fn new(file: Option<&Path>, format: &str, debug: bool) -> Logger {
        if let Some(path) = file {
            // runc opens the log before doing anything else; a shim waits for the file.
            let _ = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path);
        }
        Logger {
            file: file.map(Path::to_path_buf),
            json: format == "json",
            debug,
        }
    }

    pub fn error(&self, msg: &str) {
        eprintln!("{}", text_line("error", msg));
        self.write("error", msg);
    }

    /// Debug messages, only with --debug: to the log file, or to stderr without one.
    pub fn debug(&self, msg: &str) {
        if self.debug {
            if self.file.is_none() {
                eprintln!("{}", text_line("debug", msg));
            }
            self.write("debug", msg);
        }
    }

    fn write(&self, level: &str, msg: &str) {
        let Some(path) = &self.file else { return };
        let line = if self.json {
            serde_json::json!({"level": level, "msg": msg, "time": berth_common::time::now_rfc3339()}).to_string()
        } else {
            text_line(level, msg)
        };
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = writeln!(f, "{line}");
        }
    }
}

/// logrus's text format.
fn text_line(level: &str, msg: &str) -> String {
    format!(
        "time=\"{}\" level={level} msg={msg:?}",
        berth_common::time::now_rfc3339()
    )
}
