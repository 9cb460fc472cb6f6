//! Registry authentication: parsing `WWW-Authenticate` challenges (RFC 7235 syntax, as the
//! Distribution token spec uses it) and the token request a Bearer challenge asks for.
use std::collections::BTreeMap;

/// One challenge from a `WWW-Authenticate` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// `Basic realm="…"`: send the user's password with every request.
    Basic,
    /// `Bearer realm="…",service="…",scope="…"`: fetch a token from `realm`.
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

/// Parses the challenges of one `WWW-Authenticate` header value; unknown schemes are skipped.
pub fn parse_challenges(header: &str) -> Vec<Challenge> {
    let mut out = Vec::new();
    let mut rest = header.trim();
    while !rest.is_empty() {
        let scheme_end = rest.find(|c: char| c.is_whitespace()).unwrap_or(rest.len());
        let scheme = rest[..scheme_end]
            .trim_end_matches(',')
            .to_ascii_lowercase();
        rest = rest[scheme_end..].trim_start();
        let (params, after) = parse_params(rest);
        rest = after.trim_start().trim_start_matches(',').trim_start();
        match scheme.as_str() {
            "basic" => out.push(Challenge::Basic),
            "bearer" => {
                if let Some(realm) = params.get("realm") {
                    out.push(Challenge::Bearer {
                        realm: realm.clone(),
                        service: params.get("service").cloned(),
                        scope: params.get("scope").cloned(),
                    });
                }
            }
            _ => {}
        }
        if scheme.is_empty() {
            break;
        }
    }
    out
}

/// Reads `key=value` / `key="quoted, value"` pairs until a token that starts a new challenge.
fn parse_params(mut s: &str) -> (BTreeMap<String, String>, &str) {
    let mut params = BTreeMap::new();
    loop {
        s = s.trim_start().trim_start_matches(',').trim_start();
        let Some(eq) = s.find('=') else { break };
        let key = &s[..eq];
        if key.is_empty() || key.contains(|c: char| c.is_whitespace() || c == ',') {
            break; // the next challenge's scheme
        }
        let mut value = String::new();
        let mut rest = &s[eq + 1..];
        if let Some(q) = rest.strip_prefix('"') {
            let mut chars = q.char_indices();
            let mut end = q.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            value.push(n);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => value.push(c),
                }
            }
            rest = &q[end.min(q.len())..];
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            value = rest[..end].trim().to_string();
            rest = &rest[end..];
        }
        params.insert(key.to_ascii_lowercase(), value);
        s = rest;
    }
    (params, s)
}

/// The scope a request for `repository` needs: `repository:<path>:pull` or `:pull,push`.
pub fn repository_scope(repository: &str, push: bool) -> String {
    if push {
        format!("repository:{repository}:pull,push")
    } else {
        format!("repository:{repository}:pull")
    }
}

/// The `client_id` Docker sends to token servers.
pub const CLIENT_ID: &str = "docker";

/// The token server's answer (`token`, or OAuth's `access_token`; `refresh_token` when offline
/// access was asked for: Docker keeps it as the registry's identity token).
#[derive(Debug, serde::Deserialize)]
pub struct TokenResponse {
    #[serde(default)]
    pub token: String,
    #[serde(default)]
    pub access_token: String,
    #[serde(default)]
    pub refresh_token: String,
}

impl TokenResponse {
    /// The bearer token to send, whichever field carried it.
    pub fn bearer(&self) -> Option<&str> {
        [&self.token, &self.access_token]
            .into_iter()
            .find(|t| !t.is_empty())
            .map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_distribution_challenges() {
        let c = parse_challenges(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull""#,
        );
        assert_eq!(
            c,
            vec![Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/alpine:pull".into()),
            }]
        );
        assert_eq!(
            parse_challenges(r#"Basic realm="Registry Realm""#),
            vec![Challenge::Basic]
        );
        let both = parse_challenges(r#"Basic realm="a, b", Bearer realm="http://t/x",service=s"#);
        assert_eq!(both.len(), 2);
        assert_eq!(
            both[1],
            Challenge::Bearer {
                realm: "http://t/x".into(),
                service: Some("s".into()),
                scope: None
            }
        );
        assert!(parse_challenges("").is_empty());
        assert!(parse_challenges("Negotiate").is_empty());
    }

    #[test]
    fn token_answer_either_field() {
        let t: TokenResponse = serde_json::from_str(r#"{"access_token":"a"}"#).unwrap();
        assert_eq!(t.bearer(), Some("a"));
        let t: TokenResponse = serde_json::from_str(r#"{"token":"b","expires_in":60}"#).unwrap();
        assert_eq!(t.bearer(), Some("b"));
    }
}
