//! A `Session`: the settings and credentials one command works with, and its connections, one
//! per registry endpoint (the registry itself, or one of Docker Hub's mirrors), made on first use
//! with the credentials `config.json` keeps for that registry.
use crate::client::RegistryClient;
use crate::credentials::{CredentialStore, Credentials};
use crate::error::Result;
use crate::settings::{auth_key, Settings};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Where a registry's API is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A `registry-mirrors` entry (`https://mirror.example`).
    Mirror(String),
    /// The registry itself.
    Official,
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Mirror(base) => write!(f, "mirror {base}"),
            Endpoint::Official => f.write_str("the registry"),
        }
    }
}

/// Settings, credentials and open connections.
pub struct Session {
    pub settings: Settings,
    pub credentials: CredentialStore,
    clients: Mutex<HashMap<String, Arc<RegistryClient>>>,
}

impl Session {
    /// A session with the default settings (`$BERTH_CONFIG_DIR`) and Docker's `config.json`.
    pub fn from_environment() -> Result<Session> {
        Ok(Session::new(
            Settings::load()?,
            CredentialStore::open_default(),
        ))
    }

    /// A session with explicit settings and credential store.
    pub fn new(settings: Settings, credentials: CredentialStore) -> Session {
        Session {
            settings,
            credentials,
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// The connection to the registry `domain` itself, made on first use (pushes, searches).
    pub fn client(&self, domain: &str, _push: bool) -> Result<Arc<RegistryClient>> {
        self.client_for(domain, &Endpoint::Official)
    }

    /// Where a pull of an image of `domain` is tried, in order: its mirrors (Docker Hub only),
    /// then the registry itself.
    pub fn pull_endpoints(&self, domain: &str) -> Vec<Endpoint> {
        let mut out: Vec<Endpoint> = self
            .settings
            .mirrors_for(domain)
            .into_iter()
            .map(Endpoint::Mirror)
            .collect();
        out.push(Endpoint::Official);
        out
    }

    /// The connection to `domain` at `endpoint`, made on first use with the credentials
    /// `config.json` keeps for `domain` (mirrors get Docker Hub's, as Docker sends them).
    pub fn client_for(&self, domain: &str, endpoint: &Endpoint) -> Result<Arc<RegistryClient>> {
        let key = match endpoint {
            Endpoint::Official => domain.to_string(),
            Endpoint::Mirror(base) => format!("{domain} via {base}"),
        };
        if let Some(c) = self.clients.lock().ok().and_then(|m| m.get(&key).cloned()) {
            return Ok(c);
        }
        let creds = self.credentials.get(&auth_key(domain))?;
        let client = Arc::new(match endpoint {
            Endpoint::Official => RegistryClient::connect(domain, &self.settings, creds)?,
            Endpoint::Mirror(base) => {
                RegistryClient::connect_endpoint(domain, base, &self.settings, creds)?
            }
        });
        if let Ok(mut m) = self.clients.lock() {
            m.insert(key, client.clone());
        }
        Ok(client)
    }

    /// Makes later requests to `domain` use `creds` instead of what `config.json` keeps (a
    /// client that sent its own credentials, as Engine API clients do with `X-Registry-Auth`).
    pub fn use_credentials(&self, domain: &str, creds: Credentials) -> Result<()> {
        let client = Arc::new(RegistryClient::connect(
            domain,
            &self.settings,
            Some(creds),
        )?);
        if let Ok(mut m) = self.clients.lock() {
            m.insert(domain.to_string(), client);
        }
        Ok(())
    }

    /// A fresh connection to `domain` with the given credentials (for `login`).
    pub fn client_with(&self, domain: &str, creds: Credentials) -> Result<RegistryClient> {
        RegistryClient::connect(domain, &self.settings, Some(creds))
    }
}
