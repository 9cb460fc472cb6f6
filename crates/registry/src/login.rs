//! `login`, `logout` and `search`. Login proves the credentials against the registry (a token
//! from its realm, or `GET /v2/` with Basic auth) before keeping them in `config.json` (the
//! token server's refresh token in place of the password when it grants one); search
//! asks Docker Hub's search API, and other registries their `_catalog` where they offer it.
use crate::client::{RegistryClient, RequestBody};
use crate::credentials::Credentials;
use crate::error::{RegistryError, Result};
use crate::session::Session;
use crate::settings::{auth_key, DOCKER_HUB};
use ureq::http::Method;

/// Normalises a `login`/`logout` server argument to the registry name (`docker.io` by default;
/// `https://` prefixes and paths dropped as Docker does).
pub fn server_domain(server: Option<&str>) -> String {
    let Some(s) = server else {
        return DOCKER_HUB.to_string();
    };
    let s = s
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let host = s.split('/').next().unwrap_or(s);
    match host {
        "" | "index.docker.io" | "registry-1.docker.io" | "docker.io" => DOCKER_HUB.to_string(),
        h => h.to_string(),
    }
}

/// Checks `creds` against `domain` and keeps them; returns the `config.json` key used.
/// When the registry's token server grants a refresh token, that identity token is kept instead
/// of the password (`auths.<server>.identitytoken`, as Docker does), and later requests trade it
/// for access tokens with OAuth2's `grant_type=refresh_token`.
pub fn login(session: &Session, domain: &str, creds: Credentials) -> Result<String> {
    let client = session
        .client_with(domain, creds.clone())?
        .with_offline_access();
    verify(&client)?;
    let key = auth_key(domain);
    let kept = match client.refresh_token() {
        Some(token) => Credentials {
            username: creds.username,
            secret: token,
            identity_token: true,
        },
        None => creds,
    };
    session.credentials.store(&key, &kept)?;
    Ok(key)
}

/// Checks `creds` against `domain` without keeping them (the Engine API's `/auth`: the client
/// stores what it was told works).
pub fn check(session: &Session, domain: &str, creds: Credentials) -> Result<()> {
    verify(&session.client_with(domain, creds)?)
}

fn verify(client: &RegistryClient) -> Result<()> {
    let url = client.url("/v2/");
    // An empty scope: the token server checks the password and grants nothing in particular.
    let mut resp = client.send_scoped(Method::GET, &url, "", &[], RequestBody::Empty)?;
    match resp.status().as_u16() {
        200 => Ok(()),
        401 | 403 => Err(RegistryError::Unauthorized {
            registry: client.domain().to_string(),
            message: {
                let f = crate::client::failure_of(&mut resp);
                if f.message.is_empty() || f.message == "unauthorized" {
                    "incorrect username or password".into()
                } else {
                    f.message
                }
            },
        }),
        _ => Err(client.error_for("", "login", &mut resp)),
    }
}

/// Forgets the credentials of `domain`; returns (config.json key, whether there were any).
pub fn logout(session: &Session, domain: &str) -> Result<(String, bool)> {
    let key = auth_key(domain);
    let found = session.credentials.erase(&key)?;
    Ok((key, found))
}

/// One search result, in Docker's columns.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct SearchResult {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub star_count: u64,
    #[serde(default)]
    pub is_official: bool,
}

/// Searches `term` (`[registry/]words`): Docker Hub through its search API, another registry
/// through its catalog (names containing the words).
pub fn search(session: &Session, term: &str, limit: usize) -> Result<Vec<SearchResult>> {
    let (domain, words) = match term.split_once('/') {
        Some((first, rest))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            (first.to_string(), rest.to_string())
        }
        _ => (DOCKER_HUB.to_string(), term.to_string()),
    };
    if domain == DOCKER_HUB {
        return search_hub(session, &words, limit);
    }
    let client = session.client(&domain, false)?;
    #[derive(serde::Deserialize)]
    struct Catalog {
        #[serde(default)]
        repositories: Vec<String>,
    }
    let url = client.url("/v2/_catalog?n=1000");
    let mut resp = client.send(Method::GET, &url, "", false, &[], RequestBody::Empty)?;
    if resp.status().as_u16() != 200 {
        return Err(client.error_for("", "catalog (search)", &mut resp));
    }
    let catalog: Catalog = resp
        .body_mut()
        .with_config()
        .limit(16 << 20)
        .read_to_vec()
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
        .map_err(|reason| RegistryError::BadContent {
            registry: domain.clone(),
            repository: String::new(),
            what: "catalog".into(),
            reason,
        })?;
    Ok(catalog
        .repositories
        .into_iter()
        .filter(|r| r.contains(&words))
        .take(limit)
        .map(|r| SearchResult {
            name: format!("{domain}/{r}"),
            description: String::new(),
            star_count: 0,
            is_official: false,
        })
        .collect())
}

fn search_hub(session: &Session, words: &str, limit: usize) -> Result<Vec<SearchResult>> {
    #[derive(serde::Deserialize)]
    struct Answer {
        #[serde(default)]
        results: Vec<SearchResult>,
    }
    let roots = session.settings.clone();
    let agent = ureq::Agent::config_builder()
        .tls_config(
            ureq::tls::TlsConfig::builder()
                .root_certs(crate::client::system_roots(&roots, "index.docker.io")?)
                .build(),
        )
        .build()
        .new_agent();
    let fail = |reason: String| RegistryError::Connect {
        registry: DOCKER_HUB.into(),
        reason,
    };
    let mut resp = agent
        .get("https://index.docker.io/v1/search")
        .query("q", words)
        .query("n", limit.to_string())
        .call()
        .map_err(|e| fail(e.to_string()))?;
    let answer: Answer = resp
        .body_mut()
        .with_config()
        .limit(16 << 20)
        .read_to_vec()
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
        .map_err(fail)?;
    Ok(answer.results.into_iter().take(limit).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names_like_docker() {
        assert_eq!(server_domain(None), "docker.io");
        assert_eq!(
            server_domain(Some("https://index.docker.io/v1/")),
            "docker.io"
        );
        assert_eq!(server_domain(Some("localhost:5000")), "localhost:5000");
        assert_eq!(server_domain(Some("https://r.example/v2/")), "r.example");
    }
}
