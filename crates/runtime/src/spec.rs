//! Reading a bundle: `config.json` parsed once into `oci_spec::runtime::Spec`, its version
//! checked (any 1.x.y), the rootfs resolved against the bundle directory.

use crate::error::{Result, RuntimeError};
use oci_spec::runtime::Spec;
use std::path::{Path, PathBuf};

/// A parsed bundle.
pub struct Bundle {
    /// Absolute bundle directory.
    pub dir: PathBuf,
    /// Absolute rootfs path.
    pub rootfs: PathBuf,
    pub spec: Spec,
}

/// Loads `<bundle>/config.json`.
pub fn load_bundle(bundle: &Path) -> Result<Bundle> {
    let dir = std::fs::canonicalize(bundle).map_err(|e| RuntimeError::io(bundle, e))?;
    let path = dir.join("config.json");
    let bytes = std::fs::read(&path).map_err(|e| RuntimeError::io(&path, e))?;
    let spec: Spec = serde_json::from_slice(&bytes).map_err(|e| RuntimeError::Spec {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    check_version(spec.version()).map_err(|reason| RuntimeError::Spec {
        path: path.clone(),
        reason,
    })?;
    let root = spec.root().as_ref().ok_or_else(|| RuntimeError::Spec {
        path: path.clone(),
        reason: "root is missing".into(),
    })?;
    if spec.process().is_none() {
        return Err(RuntimeError::Spec {
            path,
            reason: "process is missing".into(),
        });
    }
    let rootfs = dir.join(root.path());
    let rootfs = std::fs::canonicalize(&rootfs).map_err(|e| RuntimeError::io(&rootfs, e))?;
    Ok(Bundle { dir, rootfs, spec })
}

/// Accepts any 1.x.y (with pre-release suffixes such as "1.0.2-dev").
pub fn check_version(version: &str) -> std::result::Result<(), String> {
    let mut parts = version.splitn(3, '.');
    match (parts.next(), parts.next()) {
        (Some("1"), Some(minor))
            if minor.chars().all(|c| c.is_ascii_digit()) && !minor.is_empty() =>
        {
            Ok(())
        }
        _ => Err(format!("unsupported ociVersion {version:?} (need 1.x.y)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert!(check_version("1.0.2-dev").is_ok());
        assert!(check_version("1.2.0").is_ok());
        assert!(check_version("1.1").is_ok());
        assert!(check_version("2.0.0").is_err());
        assert!(check_version("").is_err());
    }
}
