//! API versions: the `/v1.xx/` path prefix, the range Berth speaks (1.24 … 1.47), and the
//! refusals Docker's daemon gives for versions outside it.
use crate::error::ApiError;

/// The newest API version served (also the default for unversioned paths).
pub const API_VERSION: &str = "1.47";
/// The oldest API version served.
pub const MIN_API_VERSION: &str = "1.24";

/// A parsed `major.minor` API version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ApiVersion {
    pub major: u32,
    pub minor: u32,
}

impl ApiVersion {
    pub const MAX: ApiVersion = ApiVersion {
        major: 1,
        minor: 47,
    };
    pub const MIN: ApiVersion = ApiVersion {
        major: 1,
        minor: 24,
    };

    pub fn parse(text: &str) -> Option<ApiVersion> {
        let (major, minor) = text.split_once('.')?;
        Some(ApiVersion {
            major: major.parse().ok()?,
            minor: minor.parse().ok()?,
        })
    }

    /// At least `1.minor`.
    pub fn at_least(self, minor: u32) -> bool {
        self >= ApiVersion { major: 1, minor }
    }
}

impl std::fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// Splits `/v1.43/containers/json` into the version and `/containers/json`. Paths without a
/// version prefix are served at [`ApiVersion::MAX`]. Versions outside the range are refused
/// with Docker's own messages.
pub fn split_path(path: &str) -> Result<(ApiVersion, &str), ApiError> {
    let Some(rest) = path.strip_prefix("/v") else {
        return Ok((ApiVersion::MAX, path));
    };
    let (text, tail) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let Some(version) = ApiVersion::parse(text) else {
        // Not a version (e.g. `/volumes`): an ordinary path.
        return Ok((ApiVersion::MAX, path));
    };
    if version > ApiVersion::MAX {
        return Err(ApiError::bad_request(format!(
            "client version {version} is too new. Maximum supported API version is {API_VERSION}"
        )));
    }
    if version < ApiVersion::MIN {
        return Err(ApiError::bad_request(format!(
            "client version {version} is too old. Minimum supported API version is {MIN_API_VERSION}, please upgrade your client to a newer version"
        )));
    }
    Ok((version, tail))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versioned_and_plain_paths() {
        let (v, p) = split_path("/v1.43/containers/json").unwrap();
        assert_eq!((v.to_string().as_str(), p), ("1.43", "/containers/json"));
        let (v, p) = split_path("/_ping").unwrap();
        assert_eq!((v, p), (ApiVersion::MAX, "/_ping"));
        let (v, p) = split_path("/volumes/x").unwrap();
        assert_eq!((v, p), (ApiVersion::MAX, "/volumes/x"));
        assert!(split_path("/v1.48/info")
            .unwrap_err()
            .message
            .contains("too new"));
        assert!(split_path("/v1.12/info")
            .unwrap_err()
            .message
            .contains("too old"));
        assert!(ApiVersion::parse("1.41").unwrap().at_least(40));
    }
}
