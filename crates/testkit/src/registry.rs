//! A private `docker-registry` (Debian's build of the reference Distribution server) for registry
//! tests: 127.0.0.1 on a free port, its own storage directory, optionally TLS (a fresh CA made
//! with `openssl`), htpasswd basic auth (`htpasswd -B`) or token auth against a realm the test
//! serves; manifests may name foreign layers on loopback URLs. Ready when the port accepts
//! connections; dropping it kills the server by PID.
use anyhow::{bail, Context, Result};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How the registry authenticates clients.
#[derive(Debug, Clone, Default)]
pub enum RegistryAuth {
    #[default]
    None,
    /// htpasswd basic auth with one user.
    Basic { user: String, password: String },
    /// Token auth: tokens from `realm`, signed by the key of `cert_pem` (PEM file paths).
    Token {
        realm: String,
        service: String,
        issuer: String,
        cert_pem: PathBuf,
    },
}

/// Options of a test registry.
#[derive(Debug, Clone, Default)]
pub struct RegistryOptions {
    pub auth: RegistryAuth,
    /// Serve HTTPS with a certificate for 127.0.0.1 signed by a fresh CA.
    pub tls: bool,
}

/// A running test registry.
pub struct Registry {
    dir: tempfile::TempDir,
    child: Option<Child>,
    port: u16,
}

/// A free TCP port on 127.0.0.1 (bound, read and released).
pub fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// Makes a CA and a server certificate for 127.0.0.1/localhost in `dir` with `openssl`:
/// `ca.crt`, `ca.key`, `server.crt`, `server.key`.
pub fn make_tls_files(dir: &Path) -> Result<()> {
    let run = |args: &[&str]| -> Result<()> {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .context("running openssl")?;
        if !out.status.success() {
            bail!("openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(())
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=berth test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
    ])?;
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
    ])?;
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n",
    )?;
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
        "-out",
        "server.crt",
    ])?;
    Ok(())
}

impl Registry {
    /// Starts a plain-HTTP registry without auth, or Ok(None) (after a note) when
    /// `docker-registry` is not installed.
    pub fn start() -> Result<Option<Registry>> {
        Registry::start_with(RegistryOptions::default())
    }

    /// Starts a registry with `options`, or Ok(None) when `docker-registry` is missing.
    pub fn start_with(options: RegistryOptions) -> Result<Option<Registry>> {
        if !crate::have("docker-registry") {
            eprintln!("note: docker-registry not installed; skipping the registry test");
            return Ok(None);
        }
        let dir = tempfile::Builder::new()
            .prefix("berth-registry-")
            .tempdir()?;
        let d = dir.path();
        let port = free_port()?;
        let mut config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: berth-test-secret\n",
            d.join("storage").display()
        );
        if options.tls {
            make_tls_files(d)?;
            config.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                d.join("server.crt").display(),
                d.join("server.key").display()
            ));
        }
        match &options.auth {
            RegistryAuth::None => {}
            RegistryAuth::Basic { user, password } => {
                let out = Command::new("htpasswd")
                    .args(["-Bbn", user, password])
                    .output()
                    .context("running htpasswd (Debian's apache2-utils)")?;
                if !out.status.success() {
                    bail!("htpasswd: {}", String::from_utf8_lossy(&out.stderr));
                }
                std::fs::write(d.join("htpasswd"), &out.stdout)?;
                config.push_str(&format!(
                    "auth:\n  htpasswd:\n    realm: berth-test\n    path: {}\n",
                    d.join("htpasswd").display()
                ));
            }
            RegistryAuth::Token {
                realm,
                service,
                issuer,
                cert_pem,
            } => {
                config.push_str(&format!(
                    "auth:\n  token:\n    realm: {realm}\n    service: {service}\n    issuer: {issuer}\n    rootcertbundle: {}\n",
                    cert_pem.display()
                ));
            }
        }
        // Foreign layers may name URLs on loopback (the registry refuses any URL by default).
        config.push_str(
            "validation:\n  manifests:\n    urls:\n      allow:\n        - '^https?://127\\.0\\.0\\.1(:[0-9]+)?/'\n",
        );
        std::fs::write(d.join("config.yml"), config)?;
        let log = std::fs::File::create(d.join("registry.log"))?;
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(d.join("config.yml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting docker-registry")?;
        let mut reg = Registry {
            dir,
            child: Some(child),
            port,
        };
        reg.wait_ready(Duration::from_secs(30))?;
        Ok(Some(reg))
    }

    fn wait_ready(&mut self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Some(status) = child.try_wait()? {
                    bail!("docker-registry exited early ({status}):\n{}", self.log());
                }
            }
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("docker-registry did not listen within {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `127.0.0.1:<port>`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Where it keeps blobs and manifests.
    pub fn storage(&self) -> PathBuf {
        self.dir.path().join("storage")
    }

    /// The CA certificate of a TLS registry.
    pub fn ca_cert(&self) -> PathBuf {
        self.dir.path().join("ca.crt")
    }

    /// The path of blob `digest` (`sha256:…`) in the storage, to corrupt it in tests.
    pub fn blob_path(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.storage()
            .join("docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    /// What the server logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
