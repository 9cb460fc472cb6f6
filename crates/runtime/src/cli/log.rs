//! runc-style logging for the CLI: errors to stderr, and to `--log FILE` as text or as the JSON
//! lines containerd's shim reads (`{"level":"error","msg":…,"time":…}`).

use std::io::Write;
use std::path::{Path, PathBuf};

pub struct Logger {
    file: Option<PathBuf>,
    json: bool,
    pub debug: bool,
}

impl Logger {
    pub fn new(file: Option<&Path>, format: &str, debug: bool) -> Logger {
        Logger {
            file: file.map(Path::to_path_buf),
            json: format == "json",
            debug,
        }
    }

    pub fn error(&self, msg: &str) {
        eprintln!("berth-runtime: {msg}");
        self.write("error", msg);
    }

    /// Debug messages, only with --debug.
    pub fn debug(&self, msg: &str) {
        if self.debug {
            if self.file.is_none() {
                eprintln!("berth-runtime: debug: {msg}");
            }
            self.write("debug", msg);
        }
    }

    fn write(&self, level: &str, msg: &str) {
        let Some(path) = &self.file else { return };
        let time = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        let line = if self.json {
            serde_json::json!({"level": level, "msg": msg, "time": time}).to_string()
        } else {
            format!("time=\"{time}\" level={level} msg={msg:?}")
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
