//! Image references normalised as Docker's `distribution/reference` does: `busybox` is
//! `docker.io/library/busybox:latest`, `localhost:5000/x` keeps its registry, and the "familiar"
//! short forms are what `repositories.json` and `docker images` show.
use crate::error::{ImageError, Result};

/// A parsed, normalised reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// Registry host (`docker.io`, `localhost:5000`).
    pub domain: String,
    /// Repository path inside the registry (`library/busybox`).
    pub path: String,
    pub tag: Option<String>,
    /// `sha256:<hex>`.
    pub digest: Option<String>,
}

const DEFAULT_DOMAIN: &str = "docker.io";

fn bad(reference: &str, reason: &str) -> ImageError {
    ImageError::InvalidReference {
        reference: reference.to_string(),
        reason: reason.to_string(),
    }
}

fn valid_component(c: &str) -> bool {
    // [a-z0-9]+ ( (\.|_|__|-+) [a-z0-9]+ )*
    if c.is_empty() {
        return false;
    }
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|&x| x.is_ascii_alphanumeric() || x == b'_' || x == b'.' || x == b'-')
}

impl Reference {
    /// Parses `[domain/]path[:tag][@sha256:hex]`; no default tag is added.
    pub fn parse(s: &str) -> Result<Reference> {
        if s.is_empty() {
            return Err(bad(s, "empty reference"));
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => {
                let hex = d
                    .strip_prefix("sha256:")
                    .ok_or_else(|| bad(s, "unsupported digest algorithm"))?;
                if !crate::digest::is_full_hex(hex) {
                    return Err(bad(s, "invalid digest"));
                }
                (r, Some(d.to_string()))
            }
            None => (s, None),
        };
        let last_slash = rest.rfind('/').map(|i| i + 1).unwrap_or(0);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => {
                let t = &rest[last_slash + i + 1..];
                if !valid_tag(t) {
                    return Err(bad(s, "invalid tag"));
                }
                (&rest[..last_slash + i], Some(t.to_string()))
            }
            None => (rest, None),
        };
        if name.is_empty() {
            return Err(bad(s, "empty repository name"));
        }
        let (domain, path) = match name.split_once('/') {
            Some((first, remainder))
                if first.contains('.')
                    || first.contains(':')
                    || first == "localhost"
                    || first.chars().any(|c| c.is_ascii_uppercase()) =>
            {
                (first.to_string(), remainder.to_string())
            }
            _ => (DEFAULT_DOMAIN.to_string(), name.to_string()),
        };
        let domain = if domain == "index.docker.io" {
            DEFAULT_DOMAIN.to_string()
        } else {
            domain
        };
        if path.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(bad(s, "repository name must be lowercase"));
        }
        if !path.split('/').all(valid_component) {
            return Err(bad(s, "invalid repository name"));
        }
        let path = if domain == DEFAULT_DOMAIN && !path.contains('/') {
            format!("library/{path}")
        } else {
            path
        };
        if name.len() > 255 {
            return Err(bad(s, "repository name too long"));
        }
        Ok(Reference {
            domain,
            path,
            tag,
            digest,
        })
    }

    /// Parses and adds `:latest` when neither tag nor digest is given (Docker's `TagNameOnly`).
    pub fn parse_tagged(s: &str) -> Result<Reference> {
        let mut r = Reference::parse(s)?;
        if r.tag.is_none() && r.digest.is_none() {
            r.tag = Some("latest".to_string());
        }
        Ok(r)
    }

    /// `docker.io/library/busybox`.
    pub fn full_name(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// `busybox`, `user/x`, `localhost:5000/x`.
    pub fn familiar_name(&self) -> String {
        if self.domain == DEFAULT_DOMAIN {
            match self.path.strip_prefix("library/") {
                Some(short) if !short.contains('/') => short.to_string(),
                _ => self.path.clone(),
            }
        } else {
            self.full_name()
        }
    }

    /// `busybox:latest` or `busybox@sha256:…` (tag wins when both are present, as Docker keys tags).
    pub fn familiar_string(&self) -> String {
        let mut s = self.familiar_name();
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        } else if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(d);
        }
        s
    }
}

/// True when `s` could be an image ID prefix (hex only, optional `sha256:`).
pub fn looks_like_id_prefix(s: &str) -> bool {
    let h = s.strip_prefix("sha256:").unwrap_or(s);
    !h.is_empty()
        && h.len() <= 64
        && h.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_like_docker() {
        let r = Reference::parse_tagged("busybox").unwrap();
        assert_eq!(r.full_name(), "docker.io/library/busybox");
        assert_eq!(r.familiar_string(), "busybox:latest");
        let r = Reference::parse_tagged("localhost:5000/x").unwrap();
        assert_eq!(r.familiar_string(), "localhost:5000/x:latest");
        let r = Reference::parse_tagged("docker.io/library/bb:1.0").unwrap();
        assert_eq!(r.familiar_string(), "bb:1.0");
        let r = Reference::parse_tagged("user/app").unwrap();
        assert_eq!(r.familiar_string(), "user/app:latest");
        let d = format!("sha256:{}", "a".repeat(64));
        let r = Reference::parse_tagged(&format!("bb@{d}")).unwrap();
        assert_eq!(r.familiar_string(), format!("bb@{d}"));
        assert!(r.tag.is_none());
    }

    #[test]
    fn refuses_bad_names() {
        assert!(Reference::parse("BusyBox").is_err());
        assert!(Reference::parse("bb:").is_err());
        assert!(Reference::parse("a//b").is_err());
        assert!(Reference::parse("bb@sha256:xyz").is_err());
    }
}
