//! One registry's HTTP API (Distribution spec v2) over `ureq` with rustls: endpoint discovery
//! (HTTPS, plain HTTP only where [`Settings::allows_plain_http`] says so), authentication (Basic,
//! or Bearer tokens per scope fetched from the challenge's realm: a GET with Basic credentials,
//! or Docker's OAuth2 POST `grant_type=refresh_token` with an identity token), retries with back-off for
//! transient failures (connection errors, 429, 5xx; `Retry-After` honoured), and errors that name
//! the registry and repository. Blocking I/O: callers run concurrent transfers on scoped threads,
//! so a process that later forks a container is single-threaded again once they return.
use crate::auth::{parse_challenges, repository_scope, Challenge, TokenResponse, CLIENT_ID};
use crate::credentials::Credentials;
use crate::error::{RegistryError, Result};
use crate::settings::Settings;
use base64::Engine;
use std::collections::HashMap;
use std::io::Read;
use std::sync::Mutex;
use std::time::Duration;
use ureq::http::{Method, Response};
use ureq::tls::{Certificate, RootCerts, TlsConfig};
use ureq::Body;

/// How many times a transient failure is retried.
const RETRIES: u32 = 4;

/// A request body.
pub enum RequestBody<'a> {
    Empty,
    Bytes(&'a [u8]),
    /// A stream of known length (sent once: never retried).
    Stream(&'a mut dyn Read, u64),
}

#[derive(Debug, Clone)]
enum AuthMode {
    Anonymous,
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

/// A connection to one registry.
pub struct RegistryClient {
    agent: ureq::Agent,
    /// The registry name as references spell it (`docker.io`, `localhost:5000`).
    domain: String,
    /// `https://host[:port]` or `http://…`, decided by the first contact.
    base: String,
    credentials: Option<Credentials>,
    mode: Mutex<AuthMode>,
    tokens: Mutex<HashMap<String, String>>,
    /// Ask the token server for a refresh token too (`login`, as Docker's `offline_token`).
    offline_access: bool,
    /// The refresh token the token server sent last, if any.
    refresh_token: Mutex<Option<String>>,
}

/// A registry's error answer, as the Distribution spec words it.
#[derive(Debug, Default, serde::Deserialize)]
struct ErrorBody {
    #[serde(default)]
    errors: Vec<ErrorEntry>,
}

#[derive(Debug, Default, serde::Deserialize)]
struct ErrorEntry {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

/// Status and message of a failed response.
#[derive(Debug, Clone)]
pub struct Failure {
    pub status: u16,
    pub code: String,
    pub message: String,
}

fn is_transient(status: u16) -> bool {
    matches!(status, 408 | 429 | 500 | 502 | 503 | 504)
}

/// The system's CA certificates plus `certs.d/<host>/*.crt`.
pub fn system_roots(settings: &Settings, host: &str) -> Result<RootCerts> {
    let mut certs: Vec<Certificate<'static>> = Vec::new();
    let native = rustls_native_certs::load_native_certs();
    for c in native.certs {
        certs.push(Certificate::from_der(c.as_ref()).to_owned());
    }
    for file in settings.ca_files(host) {
        let pem = std::fs::read(&file).map_err(RegistryError::io("reading", &file))?;
        for item in ureq::tls::parse_pem(&pem) {
            match item {
                Ok(ureq::tls::PemItem::Certificate(c)) => certs.push(c),
                Ok(_) => {}
                Err(e) => {
                    return Err(RegistryError::BadConfig {
                        path: file.clone(),
                        reason: e.to_string(),
                    })
                }
            }
        }
    }
    Ok(RootCerts::new_with_certs(&certs))
}

impl RegistryClient {
    /// Contacts the registry `domain` itself (never a mirror: pushes, logins and searches go to
    /// the registry), working out the scheme and the authentication it asks for.
    pub fn connect(
        domain: &str,
        settings: &Settings,
        credentials: Option<Credentials>,
    ) -> Result<RegistryClient> {
        let mut last_err = None;
        for base in settings.official_endpoints(domain) {
            match Self::connect_url(domain, &base, settings, credentials.clone()) {
                Ok(c) => return Ok(c),
                Err(e) => {
                    tracing::debug!("{base} unusable: {e}");
                    last_err = Some(e);
                }
            }
        }
        Err(last_err.unwrap_or_else(|| RegistryError::Connect {
            registry: domain.to_string(),
            reason: "no endpoint".into(),
        }))
    }

    /// Contacts `domain`'s registry at the endpoint `base` (`https://mirror.example`), as a
    /// pull from a mirror does.
    pub fn connect_endpoint(
        domain: &str,
        base: &str,
        settings: &Settings,
        credentials: Option<Credentials>,
    ) -> Result<RegistryClient> {
        Self::connect_url(domain, base, settings, credentials)
    }

    fn connect_url(
        domain: &str,
        base: &str,
        settings: &Settings,
        credentials: Option<Credentials>,
    ) -> Result<RegistryClient> {
        let host = base
            .split_once("://")
            .map(|(_, h)| h)
            .unwrap_or(base)
            .trim_end_matches('/');
        let tls = TlsConfig::builder()
            .root_certs(system_roots(settings, host)?)
            .build();
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .tls_config(tls)
            .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
            .timeout_connect(Some(Duration::from_secs(15)))
            .timeout_recv_response(Some(Duration::from_secs(60)))
            .timeout_recv_body(None)
            .timeout_per_read(Some(Duration::from_secs(120)))
            .max_idle_connections_per_host(16)
            .build()
            .new_agent();
        let client = RegistryClient {
            agent,
            domain: domain.to_string(),
            base: base.trim_end_matches('/').to_string(),
            credentials,
            mode: Mutex::new(AuthMode::Anonymous),
            tokens: Mutex::new(HashMap::new()),
            offline_access: false,
            refresh_token: Mutex::new(None),
        };
        client.ping()?;
        Ok(client)
    }

    /// Asks token servers for a refresh token as well (`offline_token=true`), as `login` does.
    pub fn with_offline_access(mut self) -> RegistryClient {
        self.offline_access = true;
        self
    }

    /// The refresh token a token server granted (see [`RegistryClient::with_offline_access`]).
    pub fn refresh_token(&self) -> Option<String> {
        self.refresh_token.lock().ok().and_then(|t| t.clone())
    }

    /// The registry name (`docker.io`, `localhost:5000`).
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The endpoint in use (`https://…`).
    pub fn base_url(&self) -> &str {
        &self.base
    }

    fn connect_error(&self, e: impl std::fmt::Display) -> RegistryError {
        RegistryError::Connect {
            registry: self.domain.clone(),
            reason: format!("{}: {e}", self.base),
        }
    }

    /// `GET /v2/`: learns the authentication scheme from a 401's challenge.
    fn ping(&self) -> Result<()> {
        let url = format!("{}/v2/", self.base);
        let resp = self
            .agent
            .get(&url)
            .call()
            .map_err(|e| self.connect_error(e))?;
        let status = resp.status().as_u16();
        if status == 401 {
            self.learn_challenge(&resp);
            return Ok(());
        }
        if status == 200 {
            return Ok(());
        }
        Err(self.connect_error(format!("GET /v2/: HTTP {status}")))
    }

    fn learn_challenge(&self, resp: &Response<Body>) {
        let mut mode = AuthMode::Anonymous;
        for h in resp.headers().get_all("www-authenticate") {
            let Ok(h) = h.to_str() else { continue };
            for c in parse_challenges(h) {
                match c {
                    Challenge::Bearer { realm, service, .. } => {
                        mode = AuthMode::Bearer { realm, service };
                    }
                    Challenge::Basic => {
                        if matches!(mode, AuthMode::Anonymous) {
                            mode = AuthMode::Basic;
                        }
                    }
                }
            }
        }
        if let Ok(mut m) = self.mode.lock() {
            *m = mode;
        }
    }

    fn basic_header(&self) -> Option<String> {
        let c = self.credentials.as_ref()?;
        if c.identity_token {
            return None;
        }
        let raw = format!("{}:{}", c.username, c.secret);
        Some(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        ))
    }

    /// The `Authorization` header for `scope`, fetching a token when the registry wants one.
    fn authorization(&self, scope: &str, refresh: bool) -> Result<Option<String>> {
        let mode = self
            .mode
            .lock()
            .map(|m| m.clone())
            .unwrap_or(AuthMode::Anonymous);
        match mode {
            AuthMode::Anonymous => Ok(None),
            AuthMode::Basic => Ok(self.basic_header()),
            AuthMode::Bearer { realm, service } => {
                if !refresh {
                    if let Some(t) = self.tokens.lock().ok().and_then(|t| t.get(scope).cloned()) {
                        return Ok(Some(format!("Bearer {t}")));
                    }
                }
                let token = self.fetch_token(&realm, service.as_deref(), scope)?;
                if let Ok(mut t) = self.tokens.lock() {
                    t.insert(scope.to_string(), token.clone());
                }
                Ok(Some(format!("Bearer {token}")))
            }
        }
    }

    fn fetch_token(&self, realm: &str, service: Option<&str>, scope: &str) -> Result<String> {
        let resp = match &self.credentials {
            // An identity token is an OAuth2 refresh token: Docker trades it with a POST.
            Some(c) if c.identity_token => {
                let mut form: Vec<(&str, &str)> = vec![
                    ("grant_type", "refresh_token"),
                    ("refresh_token", c.secret.as_str()),
                    ("client_id", CLIENT_ID),
                ];
                if let Some(s) = service {
                    form.push(("service", s));
                }
                if !scope.is_empty() {
                    form.push(("scope", scope));
                }
                if self.offline_access {
                    form.push(("access_type", "offline"));
                }
                self.agent.post(realm).send_form(form)
            }
            _ => {
                let mut req = self.agent.get(realm);
                if let Some(s) = service {
                    req = req.query("service", s);
                }
                for one in scope.split(' ').filter(|s| !s.is_empty()) {
                    req = req.query("scope", one);
                }
                if let Some(c) = &self.credentials {
                    req = req.query("account", &c.username);
                }
                if self.offline_access {
                    req = req
                        .query("offline_token", "true")
                        .query("client_id", CLIENT_ID);
                }
                if let Some(h) = self.basic_header() {
                    req = req.header("Authorization", h);
                }
                req.call()
            }
        };
        let mut resp = resp.map_err(|e| RegistryError::Connect {
            registry: self.domain.clone(),
            reason: format!("token server {realm}: {e}"),
        })?;
        let status = resp.status().as_u16();
        if status == 400 || status == 401 || status == 403 {
            let f = failure_of(&mut resp);
            return Err(RegistryError::Unauthorized {
                registry: self.domain.clone(),
                message: if f.message.is_empty() || status == 400 {
                    "incorrect username or password".into()
                } else {
                    f.message
                },
            });
        }
        if status != 200 {
            let f = failure_of(&mut resp);
            return Err(RegistryError::Connect {
                registry: self.domain.clone(),
                reason: format!("token server {realm}: HTTP {status}: {}", f.message),
            });
        }
        let body: TokenResponse = resp
            .body_mut()
            .with_config()
            .limit(1 << 20)
            .read_to_vec()
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
            .map_err(|e| RegistryError::Connect {
                registry: self.domain.clone(),
                reason: format!("token server {realm}: {e}"),
            })?;
        if !body.refresh_token.is_empty() {
            if let Ok(mut t) = self.refresh_token.lock() {
                *t = Some(body.refresh_token.clone());
            }
        }
        body.bearer()
            .map(str::to_string)
            .ok_or_else(|| RegistryError::Connect {
                registry: self.domain.clone(),
                reason: format!("token server {realm} sent no token"),
            })
    }

    /// The absolute URL of an API path or of a `Location` the registry sent.
    pub fn url(&self, path_or_location: &str) -> String {
        if path_or_location.starts_with("http://") || path_or_location.starts_with("https://") {
            path_or_location.to_string()
        } else if path_or_location.starts_with('/') {
            format!("{}{path_or_location}", self.base)
        } else {
            format!("{}/{path_or_location}", self.base)
        }
    }

    /// Sends one request with authentication for `repository` (push scope when `push`),
    /// retrying transient failures. Returns the response whatever its status.
    pub fn send(
        &self,
        method: Method,
        url: &str,
        repository: &str,
        push: bool,
        headers: &[(&str, String)],
        body: RequestBody<'_>,
    ) -> Result<Response<Body>> {
        let scope = if repository.is_empty() {
            "registry:catalog:*".to_string()
        } else {
            repository_scope(repository, push)
        };
        self.send_scoped(method, url, &scope, headers, body)
    }

    /// Like [`RegistryClient::send`] with an explicit token scope (several separated by spaces,
    /// as a cross-repository mount needs pull access to the source too).
    pub fn send_scoped(
        &self,
        method: Method,
        url: &str,
        scope: &str,
        headers: &[(&str, String)],
        mut body: RequestBody<'_>,
    ) -> Result<Response<Body>> {
        let scope = scope.to_string();
        let mut refreshed = false;
        let mut attempt = 0;
        loop {
            let auth = self.authorization(&scope, false)?;
            let mut builder = ureq::http::Request::builder()
                .method(method.clone())
                .uri(url);
            for (k, v) in headers {
                builder = builder.header(*k, v.as_str());
            }
            if let Some(a) = &auth {
                builder = builder.header("Authorization", a.as_str());
            }
            let replayable = !matches!(body, RequestBody::Stream(..));
            let result = match &mut body {
                RequestBody::Empty => builder
                    .body(())
                    .map_err(|e| self.connect_error(e))
                    .and_then(|r| self.agent.run(r).map_err(|e| self.connect_error(e))),
                RequestBody::Bytes(b) => builder
                    .header("Content-Length", b.len().to_string())
                    .body(*b)
                    .map_err(|e| self.connect_error(e))
                    .and_then(|r| self.agent.run(r).map_err(|e| self.connect_error(e))),
                RequestBody::Stream(r, len) => builder
                    .header("Content-Length", len.to_string())
                    .body(ureq::SendBody::from_reader(*r))
                    .map_err(|e| self.connect_error(e))
                    .and_then(|r| self.agent.run(r).map_err(|e| self.connect_error(e))),
            };
            attempt += 1;
            match result {
                Ok(resp) if resp.status().as_u16() == 401 && !refreshed && replayable => {
                    self.learn_challenge(&resp);
                    refreshed = true;
                    if let Ok(mut t) = self.tokens.lock() {
                        t.remove(&scope);
                    }
                    let basic = matches!(
                        self.mode.lock().map(|m| m.clone()),
                        Ok(AuthMode::Basic) | Ok(AuthMode::Anonymous)
                    );
                    if basic && self.credentials.is_none() {
                        return Ok(resp);
                    }
                }
                Ok(resp)
                    if is_transient(resp.status().as_u16()) && replayable && attempt <= RETRIES =>
                {
                    let wait = retry_after(&resp).unwrap_or(backoff(attempt));
                    tracing::debug!("{url}: HTTP {}, retrying in {wait:?}", resp.status());
                    std::thread::sleep(wait);
                }
                Ok(resp) => return Ok(resp),
                Err(e) if replayable && attempt <= RETRIES => {
                    tracing::debug!("{url}: {e}, retrying");
                    std::thread::sleep(backoff(attempt));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// `GET url` on another server (a foreign layer's `urls`): the same TLS roots and
    /// timeouts, never the registry's credentials. Not retried: the caller has other sources.
    pub fn get_external(&self, url: &str, headers: &[(&str, String)]) -> Result<Response<Body>> {
        let mut req = self.agent.get(url);
        for (k, v) in headers {
            req = req.header(*k, v.as_str());
        }
        req.call().map_err(|e| RegistryError::Connect {
            registry: self.domain.clone(),
            reason: format!("{url}: {e}"),
        })
    }

    /// Turns a failed response into the error Docker would print for it.
    pub fn error_for(
        &self,
        repository: &str,
        what: &str,
        resp: &mut Response<Body>,
    ) -> RegistryError {
        let f = failure_of(resp);
        match f.status {
            401 => RegistryError::Unauthorized {
                registry: self.domain.clone(),
                message: format!("{repository}: {}", f.message),
            },
            403 => RegistryError::Denied {
                registry: self.domain.clone(),
                repository: repository.to_string(),
                message: f.message,
            },
            404 if f.code == "NAME_UNKNOWN" => RegistryError::Denied {
                registry: self.domain.clone(),
                repository: repository.to_string(),
                message: f.message,
            },
            status => RegistryError::Http {
                registry: self.domain.clone(),
                repository: repository.to_string(),
                what: what.to_string(),
                status,
                message: if f.message.is_empty() {
                    f.code
                } else {
                    f.message
                },
            },
        }
    }
}

/// Status, code and message of a failed response (the body is read, up to 64 KiB).
pub fn failure_of(resp: &mut Response<Body>) -> Failure {
    let status = resp.status().as_u16();
    let text = resp
        .body_mut()
        .with_config()
        .limit(64 << 10)
        .read_to_string()
        .unwrap_or_default();
    let parsed: ErrorBody = serde_json::from_str(&text).unwrap_or_default();
    let (code, message) = match parsed.errors.into_iter().next() {
        Some(e) => (e.code, e.message.to_lowercase()),
        None => (
            String::new(),
            text.trim().chars().take(200).collect::<String>(),
        ),
    };
    let message = if message.is_empty() {
        resp.status()
            .canonical_reason()
            .unwrap_or("error")
            .to_lowercase()
    } else {
        message
    };
    Failure {
        status,
        code,
        message,
    }
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(200u64 << attempt.min(5))
}

fn retry_after(resp: &Response<Body>) -> Option<Duration> {
    let v = resp.headers().get("retry-after")?.to_str().ok()?;
    let secs: u64 = v.trim().parse().ok()?;
    Some(Duration::from_secs(secs.min(10)))
}

/// A header's value as text.
pub fn header(resp: &Response<Body>, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}
