//! After pivot_root: masked paths, read-only paths, the read-only root and sysctls.

use super::*;

/// After pivot_root: masked paths (/dev/null over files, a read-only tmpfs over directories).
pub fn mask_paths(paths: &[String]) -> Res<()> {
    for p in paths {
        let meta = match std::fs::symlink_metadata(p) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(err(format!("masking {p}"), e)),
        };
        let r = if meta.is_dir() {
            mount(Some("tmpfs"), p, Some("tmpfs"), libc::MS_RDONLY, None)
        } else {
            mount(Some("/dev/null"), p, None, libc::MS_BIND, None)
        };
        match r {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(err(format!("masking {p}"), e)),
        }
    }
    Ok(())
}

/// After pivot_root: read-only binds of `paths`.
pub fn readonly_paths(paths: &[String]) -> Res<()> {
    for p in paths {
        match mount(Some(p), p, None, libc::MS_BIND | libc::MS_REC, None) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(err(format!("read-only path {p}"), e)),
        }
        remount_bind(p, libc::MS_RDONLY).map_err(|e| e.context(format!("read-only path {p}")))?;
    }
    Ok(())
}

/// After pivot_root: remount `/` read-only.
pub fn readonly_root() -> Res<()> {
    remount_bind("/", libc::MS_RDONLY).map_err(|e| e.context("read-only root"))
}

/// After pivot_root: `/proc/sys` writes for the spec's sysctls.
pub fn write_sysctls(spec: &Spec) -> Res<()> {
    let Some(sysctls) = spec.linux().as_ref().and_then(|l| l.sysctl().as_ref()) else {
        return Ok(());
    };
    for (key, value) in sysctls {
        if key.is_empty() || key.contains("..") || key.starts_with('/') {
            return Err(InitError::Refused(format!("invalid sysctl {key:?}")));
        }
        let path = format!("/proc/sys/{}", key.replace('.', "/"));
        std::fs::write(&path, value.as_bytes()).map_err(|e| err(format!("sysctl {key}"), e))?;
    }
    Ok(())
}
