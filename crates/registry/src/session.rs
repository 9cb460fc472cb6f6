//! A `Session`: the settings and credentials one command works with, and its connections, one
//! per registry, made on first use with the credentials `config.json` keeps for that registry.
use crate::client::RegistryClient;
use crate::credentials::{CredentialStore, Credentials};
use crate::error::Result;
use crate::settings::{auth_key, Settings};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

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

    /// The connection to `domain`, made on first use.
    pub fn client(&self, domain: &str, _push: bool) -> Result<Arc<RegistryClient>> {
        if let Some(c) = self
            .clients
            .lock()
            .ok()
            .and_then(|m| m.get(domain).cloned())
        {
            return Ok(c);
        }
        let creds = self.credentials.get(&auth_key(domain))?;
        let client = Arc::new(RegistryClient::connect(domain, &self.settings, creds)?);
        if let Ok(mut m) = self.clients.lock() {
            m.insert(domain.to_string(), client.clone());
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
