//! Reading and writing cgroup control files, with errors that name the file. Control files are
//! written with a single write(2) of the whole value, as the kernel expects.

use crate::CgroupError;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

pub(crate) fn read(path: &Path) -> Result<String, CgroupError> {
    std::fs::read_to_string(path).map_err(|source| CgroupError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Read a file that may legitimately be absent (controller not enabled, accounting off).
pub(crate) fn read_optional(path: &Path) -> Result<Option<String>, CgroupError> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(source) => Err(CgroupError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

pub(crate) fn write(path: &Path, value: &str) -> Result<(), CgroupError> {
    let err = |source| CgroupError::Write {
        path: path.to_path_buf(),
        value: value.to_string(),
        source,
    };
    // O_TRUNC keeps fake (regular-file) trees in tests honest; cgroupfs ignores it.
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .map_err(err)?;
    f.write_all(value.as_bytes()).map_err(err)
}

/// Parse a single unsigned number ("max" and empty become `None`).
pub(crate) fn parse_u64_or_max(path: &Path, text: &str) -> Result<Option<u64>, CgroupError> {
    let t = text.trim();
    if t == "max" || t.is_empty() {
        return Ok(None);
    }
    t.parse::<u64>().map(Some).map_err(|e| CgroupError::Parse {
        path: path.to_path_buf(),
        reason: format!("{t:?}: {e}"),
    })
}

/// Read a single-number file; absent file gives 0.
pub(crate) fn read_u64(path: &Path) -> Result<u64, CgroupError> {
    match read_optional(path)? {
        Some(t) => Ok(parse_u64_or_max(path, &t)?.unwrap_or(u64::MAX)),
        None => Ok(0),
    }
}

/// "key value" lines (memory.stat, cpu.stat, memory.events) into a map; bad lines are skipped.
pub(crate) fn parse_flat_keyed(text: &str) -> std::collections::BTreeMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(char::is_whitespace)?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

/// Writes a cgroup's resource files, knowing which controller each file belongs to.
pub(crate) struct Setter<'a> {
    pub cg: &'a crate::Cgroup,
}

impl Setter<'_> {
    /// Write `value` to `file` of `controller`. A missing controller or file is an error naming
    /// it, unless `value_is_default` (writing the kernel's default, e.g. "unlimited"), in which
    /// case it is skipped with a debug log.
    pub(crate) fn set(
        &self,
        controller: &str,
        file: &str,
        value: &str,
        value_is_default: bool,
    ) -> Result<(), CgroupError> {
        let Some(dir) = self.cg.dir(controller) else {
            if value_is_default {
                tracing::debug!(
                    controller,
                    file,
                    value,
                    "controller absent; default value skipped"
                );
                return Ok(());
            }
            return Err(CgroupError::MissingController {
                resource: file.to_string(),
                controller: controller.to_string(),
            });
        };
        let path = dir.join(file);
        if !path.exists() {
            if value_is_default {
                tracing::debug!(path = %path.display(), value, "control file absent; default value skipped");
                return Ok(());
            }
            return Err(CgroupError::MissingFile {
                resource: file.to_string(),
                path,
            });
        }
        write(&path, value)
    }

    /// Path of a file of `controller`, if the controller is present.
    pub(crate) fn path(&self, controller: &str, file: &str) -> Option<PathBuf> {
        self.cg.dir(controller).map(|d| d.join(file))
    }
}
