//! Credentials in Docker's client `config.json` (`$DOCKER_CONFIG/config.json`, else
//! `~/.docker/config.json`), so `docker login` and `berth login` share them:
//! `auths.<server>.auth` (base64 `user:password`) or `identitytoken`, and `credsStore` /
//! `credHelpers.<server>` naming a `docker-credential-<helper>` program spoken to over stdin/stdout
//! with Docker's credential-helper protocol (`get`, `store`, `erase`). Other keys of the file are
//! kept untouched on every write.
use crate::error::{RegistryError, Result};
use base64::Engine;
use serde_json::{json, Map, Value};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A user name with its password, or an identity (refresh) token.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub secret: String,
    /// True when `secret` is an OAuth identity token rather than a password.
    pub identity_token: bool,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// Docker's client configuration file.
#[derive(Debug, Clone)]
pub struct CredentialStore {
    path: PathBuf,
}

/// The default `config.json` path.
pub fn default_config_path() -> PathBuf {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG") {
        return PathBuf::from(dir).join("config.json");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/root"));
    home.join(".docker/config.json")
}

impl CredentialStore {
    /// The store at the default location.
    pub fn open_default() -> CredentialStore {
        CredentialStore::at(default_config_path())
    }

    /// The store in the given `config.json`.
    pub fn at(path: impl Into<PathBuf>) -> CredentialStore {
        CredentialStore { path: path.into() }
    }

    /// The file this store reads and writes.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn read(&self) -> Result<Map<String, Value>> {
        match std::fs::read(&self.path) {
            Ok(b) if b.iter().all(u8::is_ascii_whitespace) => Ok(Map::new()),
            Ok(b) => match serde_json::from_slice(&b) {
                Ok(Value::Object(m)) => Ok(m),
                Ok(_) => Err(self.bad("not a JSON object")),
                Err(e) => Err(self.bad(&e.to_string())),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Map::new()),
            Err(e) => Err(RegistryError::io("reading", &self.path)(e)),
        }
    }

    fn bad(&self, reason: &str) -> RegistryError {
        RegistryError::BadConfig {
            path: self.path.clone(),
            reason: reason.to_string(),
        }
    }

    fn write(&self, config: &Map<String, Value>) -> Result<()> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(RegistryError::io("creating", dir))?;
        let mut tmp =
            tempfile::NamedTempFile::new_in(dir).map_err(RegistryError::io("creating", dir))?;
        let mut bytes = serde_json::to_vec_pretty(&Value::Object(config.clone()))
            .map_err(|e| self.bad(&e.to_string()))?;
        bytes.push(b'\n');
        tmp.write_all(&bytes)
            .map_err(RegistryError::io("writing", &self.path))?;
        // Credentials: readable by the owner only, as Docker writes the file.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o600))
            .map_err(RegistryError::io("setting mode of", &self.path))?;
        tmp.persist(&self.path)
            .map_err(|e| RegistryError::io("writing", &self.path)(e.error))?;
        Ok(())
    }

    fn helper_for(config: &Map<String, Value>, server: &str) -> Option<String> {
        config
            .get("credHelpers")
            .and_then(|h| h.get(server))
            .and_then(Value::as_str)
            .or_else(|| config.get("credsStore").and_then(Value::as_str))
            .filter(|h| !h.is_empty())
            .map(str::to_string)
    }

    /// The credentials kept for `server` (a `config.json` key: see [`crate::settings::auth_key`]).
    pub fn get(&self, server: &str) -> Result<Option<Credentials>> {
        let config = self.read()?;
        if let Some(helper) = Self::helper_for(&config, server) {
            return helper_get(&helper, server);
        }
        let Some(entry) = config.get("auths").and_then(|a| a.get(server)) else {
            return Ok(None);
        };
        if let Some(token) = entry.get("identitytoken").and_then(Value::as_str) {
            if !token.is_empty() {
                let username = decode_auth(entry).map(|(u, _)| u).unwrap_or_default();
                return Ok(Some(Credentials {
                    username,
                    secret: token.to_string(),
                    identity_token: true,
                }));
            }
        }
        Ok(decode_auth(entry).map(|(username, secret)| Credentials {
            username,
            secret,
            identity_token: false,
        }))
    }

    /// Keeps `creds` for `server`, in its helper when one is configured, else in `auths`.
    pub fn store(&self, server: &str, creds: &Credentials) -> Result<()> {
        let mut config = self.read()?;
        let auths = config
            .entry("auths")
            .or_insert_with(|| Value::Object(Map::new()));
        if !auths.is_object() {
            *auths = Value::Object(Map::new());
        }
        let entry = if let Some(helper) = Self::helper_for(&config, server) {
            helper_store(&helper, server, creds)?;
            json!({})
        } else if creds.identity_token {
            json!({ "auth": encode_auth(&creds.username, ""), "identitytoken": creds.secret })
        } else {
            json!({ "auth": encode_auth(&creds.username, &creds.secret) })
        };
        if let Some(Value::Object(auths)) = config.get_mut("auths") {
            auths.insert(server.to_string(), entry);
        }
        self.write(&config)
    }

    /// Forgets the credentials for `server`; false when there were none.
    pub fn erase(&self, server: &str) -> Result<bool> {
        let mut config = self.read()?;
        let mut found = false;
        if let Some(helper) = Self::helper_for(&config, server) {
            found |= helper_erase(&helper, server)?;
        }
        if let Some(Value::Object(auths)) = config.get_mut("auths") {
            found |= auths.remove(server).is_some();
        }
        if found {
            self.write(&config)?;
        }
        Ok(found)
    }
}

fn encode_auth(user: &str, password: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
}

fn decode_auth(entry: &Value) -> Option<(String, String)> {
    let auth = entry.get("auth")?.as_str()?;
    if auth.is_empty() {
        return None;
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(auth.trim())
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (u, p) = text.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

fn run_helper(helper: &str, verb: &str, input: &[u8]) -> Result<(bool, String)> {
    let program = format!("docker-credential-{helper}");
    let fail = |reason: String| RegistryError::CredentialHelper {
        helper: helper.to_string(),
        reason,
    };
    let mut child = Command::new(&program)
        .arg(verb)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fail(format!("cannot run {program}: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input)
            .map_err(|e| fail(format!("writing to {program}: {e}")))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| fail(format!("waiting for {program}: {e}")))?;
    let mut text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if text.is_empty() {
        text = String::from_utf8_lossy(&out.stderr).trim().to_string();
    }
    Ok((out.status.success(), text))
}

fn helper_get(helper: &str, server: &str) -> Result<Option<Credentials>> {
    let (ok, text) = run_helper(helper, "get", server.as_bytes())?;
    if !ok {
        if text.contains("credentials not found") {
            return Ok(None);
        }
        return Err(RegistryError::CredentialHelper {
            helper: helper.to_string(),
            reason: text,
        });
    }
    let v: Value = serde_json::from_str(&text).map_err(|e| RegistryError::CredentialHelper {
        helper: helper.to_string(),
        reason: format!("invalid answer to get: {e}"),
    })?;
    let field = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let (username, secret) = (field("Username"), field("Secret"));
    if secret.is_empty() {
        return Ok(None);
    }
    Ok(Some(Credentials {
        identity_token: username == "<token>",
        username,
        secret,
    }))
}

fn helper_store(helper: &str, server: &str, creds: &Credentials) -> Result<()> {
    let username = if creds.identity_token {
        "<token>"
    } else {
        &creds.username
    };
    let input = json!({"ServerURL": server, "Username": username, "Secret": creds.secret});
    let (ok, text) = run_helper(helper, "store", input.to_string().as_bytes())?;
    if !ok {
        return Err(RegistryError::CredentialHelper {
            helper: helper.to_string(),
            reason: text,
        });
    }
    Ok(())
}

fn helper_erase(helper: &str, server: &str) -> Result<bool> {
    let (ok, text) = run_helper(helper, "erase", server.as_bytes())?;
    if !ok {
        if text.contains("credentials not found") {
            return Ok(false);
        }
        return Err(RegistryError::CredentialHelper {
            helper: helper.to_string(),
            reason: text,
        });
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(u: &str, p: &str) -> Credentials {
        Credentials {
            username: u.into(),
            secret: p.into(),
            identity_token: false,
        }
    }

    #[test]
    fn auths_round_trip_and_keep_other_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(&path, r#"{"psFormat":"table {{.ID}}","auths":{}}"#).unwrap();
        let store = CredentialStore::at(&path);
        assert_eq!(store.get("r:5000").unwrap(), None);
        store.store("r:5000", &creds("bob", "pa:ss")).unwrap();
        assert_eq!(store.get("r:5000").unwrap(), Some(creds("bob", "pa:ss")));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("psFormat"));
        assert!(text.contains(&encode_auth("bob", "pa:ss")));
        assert!(store.erase("r:5000").unwrap());
        assert!(!store.erase("r:5000").unwrap());
        assert_eq!(store.get("r:5000").unwrap(), None);
    }

    #[test]
    fn reads_docker_written_entries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(
            &path,
            format!(
                r#"{{"auths":{{"https://index.docker.io/v1/":{{"auth":"{}"}},"t.io":{{"auth":"{}","identitytoken":"tok"}}}}}}"#,
                encode_auth("u", "p"),
                encode_auth("u2", "")
            ),
        )
        .unwrap();
        let store = CredentialStore::at(&path);
        assert_eq!(
            store.get("https://index.docker.io/v1/").unwrap(),
            Some(creds("u", "p"))
        );
        let t = store.get("t.io").unwrap().unwrap();
        assert!(t.identity_token);
        assert_eq!(t.secret, "tok");
    }

    #[test]
    fn helper_protocol() {
        let dir = tempfile::tempdir().unwrap();
        // A toy helper keeping one secret in a file, speaking Docker's protocol.
        let bin = dir.path().join("docker-credential-toy");
        let db = dir.path().join("db");
        std::fs::write(
            &bin,
            format!(
                "#!/bin/sh\ncase $1 in\nstore) cat > {db};;\nget) read s; if [ -f {db} ]; then cat {db}; else echo 'credentials not found in native keychain'; exit 1; fi;;\nerase) read s; rm {db};;\nesac\n",
                db = db.display()
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(&path, r#"{"credHelpers":{"h.io":"toy"}}"#).unwrap();
        let old_path = std::env::var("PATH").unwrap_or_default();
        // The helper is found through PATH as Docker finds it; no other test here spawns one.
        std::env::set_var("PATH", format!("{}:{old_path}", dir.path().display()));
        let store = CredentialStore::at(&path);
        assert_eq!(store.get("h.io").unwrap(), None);
        store.store("h.io", &creds("carol", "s3")).unwrap();
        assert_eq!(store.get("h.io").unwrap(), Some(creds("carol", "s3")));
        assert!(!std::fs::read_to_string(&path).unwrap().contains("s3"));
        assert!(store.erase("h.io").unwrap());
    }
}
