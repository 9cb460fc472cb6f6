//! `--pull missing|always|never` for `run`, `create` (and any library caller): makes sure the
//! image is in the store before a container is created, pulling it through berth-registry as
//! Docker does. The registry client's transfer threads are scoped and joined before this returns,
//! so a CLI that forks the monitor afterwards is single-threaded again (the fork path checks).
use crate::error::{EngineError, Result};
use crate::lifecycle::Engine;
pub use berth_registry::pull::Silent;
pub use berth_registry::{LayerEvent, PullProgress};
use berth_registry::{PullOptions, Session};

/// When to pull the image of a new container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PullPolicy {
    /// Only when the store does not have it (Docker's default).
    #[default]
    Missing,
    /// Every time, so the tag is current.
    Always,
    /// Never: a missing image is an error.
    Never,
}

impl std::str::FromStr for PullPolicy {
    type Err = EngineError;
    fn from_str(s: &str) -> Result<PullPolicy> {
        match s {
            "missing" => Ok(PullPolicy::Missing),
            "always" => Ok(PullPolicy::Always),
            "never" => Ok(PullPolicy::Never),
            other => Err(EngineError::InvalidOption {
                option: format!("--pull {other}"),
                message: format!(
                    "invalid pull option: '{other}': must be one of \"always\", \"missing\" or \"never\""
                ),
            }),
        }
    }
}

impl Engine {
    /// Applies `policy` to `reference` (a name, name:tag, name@digest or image ID).
    /// `on_missing` runs once before a pull of an image the store lacks (Docker prints
    /// "Unable to find image '…' locally" there). Returns whether a newer image arrived.
    pub fn ensure_image(
        &self,
        reference: &str,
        policy: PullPolicy,
        platform: Option<&str>,
        progress: &dyn PullProgress,
        on_missing: &mut dyn FnMut(),
    ) -> Result<bool> {
        let images = berth_image::Store::open(self.root())?;
        let present = images.resolve_id(reference).is_ok();
        let wanted = match policy {
            PullPolicy::Never => false,
            PullPolicy::Missing => !present,
            PullPolicy::Always => true,
        };
        if !wanted || looks_like_image_id(reference) {
            return Ok(false);
        }
        if !present {
            on_missing();
        }
        let options = PullOptions {
            platform: platform.map(berth_registry::Platform::parse).transpose()?,
            all_tags: false,
        };
        let session = Session::from_environment()?;
        let pulled = berth_registry::pull(&images, &session, reference, &options, progress)?;
        for p in &pulled {
            crate::image_verbs::pulled(&images, &p.reference);
        }
        Ok(pulled.iter().any(|p| p.downloaded))
    }
}

/// A full or short image ID is never pulled (Docker refuses to pull by ID).
fn looks_like_image_id(reference: &str) -> bool {
    let hex = reference.strip_prefix("sha256:").unwrap_or(reference);
    hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_docker_policies() {
        assert_eq!(
            "missing".parse::<PullPolicy>().unwrap(),
            PullPolicy::Missing
        );
        assert_eq!("always".parse::<PullPolicy>().unwrap(), PullPolicy::Always);
        assert_eq!("never".parse::<PullPolicy>().unwrap(), PullPolicy::Never);
        assert!("sometimes".parse::<PullPolicy>().is_err());
        assert!(looks_like_image_id(&"a".repeat(64)));
        assert!(!looks_like_image_id("busybox"));
    }
}
