//! Manifests as registries serve them: Docker schema2 and OCI image manifests, Docker manifest
//! lists and OCI indexes, and choosing the entry for a platform as Docker does (exact os/arch,
//! variant when asked or when the host has one, else the first compatible entry).
use crate::error::{RegistryError, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const DOCKER_FOREIGN_LAYER: &str = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
pub const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
pub const DOCKER_SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// The `Accept` header of a manifest request: every kind Berth can pull.
pub const ACCEPT_MANIFESTS: &str = "application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json";

/// A content descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
}

impl Descriptor {
    /// Foreign and non-distributable layers live outside the registry; Docker neither pushes
    /// them nor expects the registry to have them.
    pub fn is_foreign(&self) -> bool {
        self.media_type == DOCKER_FOREIGN_LAYER || self.media_type.contains("nondistributable")
    }
}

/// A platform, as in an index entry or `--platform os/arch[/variant]`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Platform {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
}

impl Platform {
    /// The machine Berth runs on.
    pub fn host() -> Platform {
        let architecture = berth_image::import::host_architecture().to_string();
        let variant = match architecture.as_str() {
            "arm64" => Some("v8".to_string()),
            "arm" => Some("v7".to_string()),
            _ => None,
        };
        Platform {
            architecture,
            os: "linux".into(),
            variant,
            os_version: None,
        }
    }

    /// Parses `os[/arch[/variant]]` (Docker's `--platform`), normalising architecture aliases.
    pub fn parse(s: &str) -> Result<Platform> {
        let bad = |reason: &str| RegistryError::BadPlatform {
            platform: s.to_string(),
            reason: reason.to_string(),
        };
        let parts: Vec<&str> = s.split('/').collect();
        if parts.iter().any(|p| p.is_empty()) || parts.len() > 3 {
            return Err(bad("expected os/arch[/variant]"));
        }
        let os = parts[0].to_ascii_lowercase();
        if os != "linux" {
            return Err(bad("only linux images can be pulled"));
        }
        let host = Platform::host();
        let (architecture, mut variant) = match parts.get(1) {
            Some(a) => normalize_arch(&a.to_ascii_lowercase()),
            None => (host.architecture.clone(), host.variant.clone()),
        };
        if let Some(v) = parts.get(2) {
            variant = Some(v.to_ascii_lowercase());
        }
        Ok(Platform {
            architecture,
            os,
            variant,
            os_version: None,
        })
    }

    /// `linux/amd64`, `linux/arm64/v8`.
    pub fn display(&self) -> String {
        match &self.variant {
            Some(v) => format!("{}/{}/{v}", self.os, self.architecture),
            None => format!("{}/{}", self.os, self.architecture),
        }
    }

    /// True when an index entry `entry` can serve this platform.
    pub fn matches(&self, entry: &Platform) -> bool {
        let (arch, variant) = normalize_arch(&entry.architecture);
        let entry_variant = entry.variant.clone().or(variant);
        if entry.os != self.os || arch != self.architecture {
            return false;
        }
        match (&self.variant, &entry_variant) {
            (Some(want), Some(have)) => want == have || (arch == "arm64" && want == "v8"),
            (Some(want), None) => arch == "arm64" && want == "v8",
            (None, _) => true,
        }
    }
}

fn normalize_arch(arch: &str) -> (String, Option<String>) {
    match arch {
        "x86_64" | "x86-64" => ("amd64".into(), None),
        "aarch64" => ("arm64".into(), Some("v8".into())),
        "arm64" => ("arm64".into(), Some("v8".into())),
        "armhf" => ("arm".into(), Some("v7".into())),
        "armel" => ("arm".into(), Some("v6".into())),
        "i386" => ("386".into(), None),
        other => (other.to_string(), None),
    }
}

/// An image manifest (Docker schema2 or OCI).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub media_type: String,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
}

/// A manifest list or OCI index.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    #[serde(default)]
    pub media_type: String,
    pub manifests: Vec<Descriptor>,
}

/// What a manifest request returned.
#[derive(Debug, Clone)]
pub enum Manifest {
    Image(Box<ImageManifest>),
    Index(Index),
}

/// Parses manifest bytes, trusting the body's `mediaType` over the response's content type
/// (OCI manifests may omit it; then the shape decides).
pub fn parse(content_type: &str, bytes: &[u8]) -> std::result::Result<Manifest, String> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Probe {
        #[serde(default)]
        media_type: String,
        #[serde(default)]
        schema_version: u32,
        #[serde(default)]
        manifests: Option<serde_json::Value>,
    }
    let probe: Probe = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    let media = if probe.media_type.is_empty() {
        content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_string()
    } else {
        probe.media_type.clone()
    };
    if probe.schema_version == 1 || media == DOCKER_SCHEMA1 || media == DOCKER_SCHEMA1_SIGNED {
        return Err("Docker Image Format v1 and Docker Image manifest version 2, schema 1 are not supported: the image must be pushed again with a newer client".into());
    }
    let is_index = media == DOCKER_MANIFEST_LIST
        || media == OCI_INDEX
        || (media != DOCKER_MANIFEST && media != OCI_MANIFEST && probe.manifests.is_some());
    if is_index {
        serde_json::from_slice(bytes)
            .map(Manifest::Index)
            .map_err(|e| e.to_string())
    } else {
        serde_json::from_slice(bytes)
            .map(|m| Manifest::Image(Box::new(m)))
            .map_err(|e| e.to_string())
    }
}

impl Index {
    /// The entry Docker would pick for `want`.
    pub fn choose(&self, want: &Platform) -> Option<&Descriptor> {
        let candidates = self
            .manifests
            .iter()
            .filter(|d| d.platform.as_ref().is_some_and(|p| want.matches(p)));
        // An exact variant match wins over a variant-less entry.
        let mut best: Option<&Descriptor> = None;
        for d in candidates {
            let exact =
                d.platform.as_ref().and_then(|p| p.variant.as_ref()) == want.variant.as_ref();
            if exact {
                return Some(d);
            }
            best = best.or(Some(d));
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(arch: &str, variant: Option<&str>, digest: &str) -> Descriptor {
        Descriptor {
            media_type: DOCKER_MANIFEST.into(),
            digest: digest.into(),
            size: 1,
            urls: vec![],
            annotations: Default::default(),
            platform: Some(Platform {
                architecture: arch.into(),
                os: "linux".into(),
                variant: variant.map(str::to_string),
                os_version: None,
            }),
        }
    }

    #[test]
    fn parses_platforms() {
        let p = Platform::parse("linux/arm64").unwrap();
        assert_eq!(p.display(), "linux/arm64/v8");
        assert_eq!(
            Platform::parse("linux/x86_64").unwrap().display(),
            "linux/amd64"
        );
        assert_eq!(
            Platform::parse("linux/arm/v6").unwrap().display(),
            "linux/arm/v6"
        );
        assert!(Platform::parse("windows/amd64").is_err());
        assert!(Platform::parse("linux//").is_err());
    }

    #[test]
    fn chooses_like_docker() {
        let idx = Index {
            media_type: OCI_INDEX.into(),
            manifests: vec![
                entry("arm", Some("v6"), "a6"),
                entry("arm", Some("v7"), "a7"),
                entry("amd64", None, "x"),
                entry("arm64", None, "a64"),
            ],
        };
        let pick = |s: &str| {
            idx.choose(&Platform::parse(s).unwrap())
                .map(|d| d.digest.clone())
        };
        assert_eq!(pick("linux/amd64").as_deref(), Some("x"));
        assert_eq!(pick("linux/arm64").as_deref(), Some("a64"));
        assert_eq!(pick("linux/arm/v7").as_deref(), Some("a7"));
        assert_eq!(pick("linux/arm/v6").as_deref(), Some("a6"));
        assert_eq!(pick("linux/s390x"), None);
    }

    #[test]
    fn tells_kinds_apart() {
        let m = br#"{"schemaVersion":2,"config":{"mediaType":"x","digest":"sha256:a","size":1},"layers":[]}"#;
        assert!(matches!(parse(OCI_MANIFEST, m), Ok(Manifest::Image(_))));
        let i = br#"{"schemaVersion":2,"manifests":[]}"#;
        assert!(matches!(
            parse("application/json", i),
            Ok(Manifest::Index(_))
        ));
        let v1 = br#"{"schemaVersion":1,"name":"x"}"#;
        assert!(parse(DOCKER_SCHEMA1_SIGNED, v1).is_err());
    }
}
