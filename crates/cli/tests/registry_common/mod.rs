//! Helpers for the registry tests: a test registry with a private Berth configuration directory
//! and Docker client config (so no test reads or writes the host's), `berth` on a temp root with
//! that environment, and hand-made OCI layouts (gzip layers, optional multi-platform index)
//! that `skopeo` pushes.
#![allow(dead_code)]
use berth_testkit::registry::{Registry, RegistryOptions};
use berth_testkit::TempRoot;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A registry plus the client-side configuration the tests give berth and skopeo.
pub struct Rig {
    pub registry: Registry,
    pub config: tempfile::TempDir,
}

impl Rig {
    /// Starts a registry; None (test skipped) when docker-registry or skopeo is missing.
    pub fn start(options: RegistryOptions) -> Option<Rig> {
        if !berth_testkit::have("skopeo") {
            eprintln!("note: skopeo not installed; skipping");
            return None;
        }
        let registry = Registry::start_with(options).expect("starting docker-registry")?;
        let config = tempfile::Builder::new()
            .prefix("berth-regcfg-")
            .tempdir()
            .expect("config dir");
        std::fs::create_dir_all(config.path().join("docker")).expect("docker config dir");
        Some(Rig { registry, config })
    }

    pub fn host(&self) -> String {
        self.registry.host()
    }

    /// `$BERTH_CONFIG_DIR` of the tests.
    pub fn config_dir(&self) -> &Path {
        self.config.path()
    }

    /// `berth --root root` with this rig's configuration.
    pub fn berth(&self, root: &Path) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_berth"));
        c.arg("--root")
            .arg(root)
            .env("BERTH_CONFIG_DIR", self.config.path())
            .env("DOCKER_CONFIG", self.config.path().join("docker"))
            // Network safety: Docker Hub names never leave loopback (port 9: nothing listens).
            .env("BERTH_DOCKER_HUB_ENDPOINT", "http://127.0.0.1:9")
            .stdin(Stdio::null());
        c
    }

    /// `skopeo copy` with the rig's credentials file and no TLS verification of loopback.
    pub fn skopeo_copy(&self, from: &str, to: &str, extra: &[&str]) {
        let out = Command::new("skopeo")
            .arg("copy")
            .args(["--dest-tls-verify=false", "--src-tls-verify=false"])
            .args(extra)
            .arg(from)
            .arg(to)
            .output()
            .expect("running skopeo");
        assert!(
            out.status.success(),
            "skopeo copy {from} {to}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The digest of the raw manifest skopeo sees for `reference` (`docker://…`).
    pub fn skopeo_digest(&self, reference: &str, extra: &[&str]) -> String {
        let out = Command::new("skopeo")
            .args(["inspect", "--raw", "--tls-verify=false"])
            .args(extra)
            .arg(reference)
            .output()
            .expect("running skopeo inspect");
        assert!(
            out.status.success(),
            "skopeo inspect {reference}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        sha256(&out.stdout)
    }
}

/// Runs `cmd`, asserting success; returns stdout.
pub fn ok(cmd: &mut Command) -> String {
    let out = cmd.output().expect("running command");
    assert!(
        out.status.success(),
        "{cmd:?} failed ({:?}): {}\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `cmd`, asserting failure; returns its output.
pub fn fails(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("running command");
    assert!(
        !out.status.success(),
        "{cmd:?} should have failed: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    out
}

pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// A temp root holding the busybox image imported as `name`; returns (root, image id).
pub fn busybox_root(rig: &Rig, name: &str) -> (TempRoot, String) {
    let root = TempRoot::new("berth-reg-src-").expect("temp root");
    let tar = root.path().join("busybox.tar");
    berth_testkit::busybox_rootfs_tar(&tar).expect("busybox tar");
    let id = ok(rig.berth(root.path()).arg("import").arg(&tar).arg(name))
        .trim()
        .to_string();
    (root, id)
}

/// One image of a hand-made layout.
pub struct ImageSpec {
    pub architecture: String,
    /// Each layer: (path, content) files.
    pub layers: Vec<Vec<(String, Vec<u8>)>>,
}

/// What [`oci_layout`] wrote for one image.
pub struct Written {
    pub config_digest: String,
    pub diff_ids: Vec<String>,
    pub layer_digests: Vec<String>,
    pub manifest_digest: String,
}

fn layer_tar(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(1_700_000_000);
        h.set_cksum();
        b.append_data(&mut h, path, &data[..]).expect("tar entry");
    }
    b.into_inner().expect("tar")
}

fn put_blob(dir: &Path, bytes: &[u8]) -> String {
    let d = sha256(bytes);
    let p = dir
        .join("blobs/sha256")
        .join(d.trim_start_matches("sha256:"));
    std::fs::write(p, bytes).expect("blob");
    d
}

/// Writes an OCI image layout in `dir` with `images`; with more than one, index.json points at
/// an inner index listing them by platform (so `skopeo copy --all` pushes a multi-platform
/// image). Layers are gzip streams of stored (uncompressed) blocks: quick to make, still gzip.
pub fn oci_layout(dir: &Path, images: &[ImageSpec]) -> Vec<Written> {
    std::fs::create_dir_all(dir.join("blobs/sha256")).expect("layout dir");
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#)
        .expect("oci-layout");
    let mut written = Vec::new();
    let mut entries = Vec::new();
    for img in images {
        let mut diff_ids = Vec::new();
        let mut layer_descs = Vec::new();
        let mut layer_digests = Vec::new();
        for files in &img.layers {
            let raw = layer_tar(files);
            diff_ids.push(sha256(&raw));
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::none());
            gz.write_all(&raw).expect("gzip");
            let gz = gz.finish().expect("gzip");
            let d = put_blob(dir, &gz);
            layer_descs.push(serde_json::json!({
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": d, "size": gz.len()
            }));
            layer_digests.push(d);
        }
        let config = serde_json::json!({
            "architecture": img.architecture, "os": "linux",
            "config": {"Cmd": ["/bin/sh"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": []
        });
        let config_bytes = serde_json::to_vec(&config).expect("config");
        let config_digest = put_blob(dir, &config_bytes);
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": config_digest, "size": config_bytes.len()},
            "layers": layer_descs
        });
        let manifest_bytes = serde_json::to_vec(&manifest).expect("manifest");
        let manifest_digest = put_blob(dir, &manifest_bytes);
        entries.push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest, "size": manifest_bytes.len(),
            "platform": {"architecture": img.architecture, "os": "linux"}
        }));
        written.push(Written {
            config_digest,
            diff_ids,
            layer_digests,
            manifest_digest,
        });
    }
    let top = if entries.len() == 1 {
        entries[0].clone()
    } else {
        let inner = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": entries
        });
        let bytes = serde_json::to_vec(&inner).expect("index");
        let d = put_blob(dir, &bytes);
        serde_json::json!({"mediaType": "application/vnd.oci.image.index.v1+json",
                           "digest": d, "size": bytes.len()})
    };
    let index = serde_json::json!({"schemaVersion": 2, "manifests": [top]});
    std::fs::write(
        dir.join("index.json"),
        serde_json::to_vec(&index).expect("index"),
    )
    .expect("index.json");
    written
}

/// Layer ChainIDs committed in a root (`layerdb/sha256/*`).
pub fn layer_count(root: &Path) -> usize {
    std::fs::read_dir(root.join("image/overlay2/layerdb/sha256"))
        .map(|r| r.count())
        .unwrap_or(0)
}

/// Layer directories under `overlay2/` (besides `l`).
pub fn layer_dirs(root: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(root.join("overlay2"))
        .map(|r| {
            r.flatten()
                .map(|e| e.path())
                .filter(|p| !p.ends_with("l"))
                .collect()
        })
        .unwrap_or_default()
}

/// A TCP proxy on 127.0.0.1 in front of `upstream` that passes what the server sends at no more
/// than `bytes_per_second`, so a test can catch a pull halfway through a blob. Its threads end
/// with their connections; the listener lives as long as the test process.
pub fn throttling_proxy(upstream: String, bytes_per_second: u64) -> String {
    use std::net::{Shutdown, TcpListener, TcpStream};
    use std::time::{Duration, Instant};
    let listener = TcpListener::bind("127.0.0.1:0").expect("proxy port");
    let addr = listener.local_addr().expect("proxy addr");
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { continue };
            let Ok(server) = TcpStream::connect(&upstream) else {
                continue;
            };
            let (Ok(client_r), Ok(server_w)) = (client.try_clone(), server.try_clone()) else {
                continue;
            };
            std::thread::spawn(move || {
                let (mut from, mut to) = (client_r, server_w);
                let _ = std::io::copy(&mut from, &mut to);
                let _ = to.shutdown(Shutdown::Write);
            });
            std::thread::spawn(move || {
                let (mut from, mut to) = (server, client);
                let mut buf = vec![0u8; 64 << 10];
                let start = Instant::now();
                let mut sent = 0u64;
                loop {
                    let n = match std::io::Read::read(&mut from, &mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    if to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                    sent += n as u64;
                    // Rate limiting, not synchronisation: stay under the byte budget.
                    let due = Duration::from_secs_f64(sent as f64 / bytes_per_second as f64);
                    if let Some(wait) = due.checked_sub(start.elapsed()) {
                        std::thread::sleep(wait);
                    }
                }
                let _ = to.shutdown(Shutdown::Both);
                let _ = from.shutdown(Shutdown::Both);
            });
        }
    });
    addr.to_string()
}

/// Deterministic incompressible bytes (xorshift64).
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut out = vec![0u8; len];
    let mut x = seed | 1;
    for chunk in out.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
    out
}

/// `(status, bytes written)` of each access-log line of the registry for `GET …/blobs/<digest>`.
pub fn blob_gets(log: &str, digest: &str) -> Vec<(u16, u64)> {
    log.lines()
        .filter(|l| l.contains("\"GET ") && l.contains(&format!("/blobs/{digest} ")))
        .filter_map(|l| {
            let after = l.split("HTTP/1.1\" ").nth(1)?;
            let mut f = after.split_whitespace();
            Some((f.next()?.parse().ok()?, f.next()?.parse().ok()?))
        })
        .collect()
}

/// One plain HTTP/1.1 request to `host` (`127.0.0.1:port`) on a fresh connection (closed after
/// the answer; reads time out after 30 s): (status, headers lower-cased, body).
pub fn http(
    method: &str,
    host: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    use std::io::Read;
    let mut s = std::net::TcpStream::connect(host).expect("connecting to the registry");
    s.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .expect("read timeout");
    let mut req = format!(
        "{method} {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).expect("request");
    s.write_all(body).expect("request body");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("response");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("response head");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .expect("status");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers, raw[split + 4..].to_vec())
}

/// Uploads `bytes` as a blob of `repository` (POST, then PUT with the digest); returns it.
pub fn upload_blob(host: &str, repository: &str, bytes: &[u8]) -> String {
    let digest = sha256(bytes);
    let (status, headers, _) = http(
        "POST",
        host,
        &format!("/v2/{repository}/blobs/uploads/"),
        &[],
        b"",
    );
    assert_eq!(status, 202, "starting an upload");
    let location = headers
        .iter()
        .find(|(k, _)| k == "location")
        .map(|(_, v)| v.clone())
        .expect("upload location");
    let path = location
        .split_once("://")
        .and_then(|(_, rest)| rest.find('/').map(|i| rest[i..].to_string()))
        .unwrap_or(location);
    let sep = if path.contains('?') { '&' } else { '?' };
    let (status, _, body) = http(
        "PUT",
        host,
        &format!("{path}{sep}digest={}", digest.replace(':', "%3A")),
        &[("Content-Type", "application/octet-stream")],
        bytes,
    );
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    digest
}

/// Puts a manifest under `reference` (a tag or digest).
pub fn put_manifest(host: &str, repository: &str, reference: &str, media_type: &str, bytes: &[u8]) {
    let (status, _, body) = http(
        "PUT",
        host,
        &format!("/v2/{repository}/manifests/{reference}"),
        &[("Content-Type", media_type)],
        bytes,
    );
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
}

/// The manifest under `reference`, as the registry serves it to a schema2/OCI client.
pub fn get_manifest(host: &str, repository: &str, reference: &str) -> Vec<u8> {
    let (status, _, body) = http(
        "GET",
        host,
        &format!("/v2/{repository}/manifests/{reference}"),
        &[(
            "Accept",
            "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json",
        )],
        b"",
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    body
}

/// Serves `body` at every path over plain HTTP on 127.0.0.1 (one request per connection);
/// returns its address and the paths asked for.
pub fn serve_file(body: Vec<u8>) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::BufRead;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("file server port");
    let addr = listener.local_addr().expect("addr").to_string();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(30)));
            let mut reader = std::io::BufReader::new(stream.try_clone().expect("clone"));
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                    break;
                }
            }
            let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
            log.lock().expect("log").push(path);
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(&body);
        }
    });
    (addr, seen)
}

/// A gzip'd layer tar of `files`: (blob bytes, DiffID).
pub fn gzip_layer(files: &[(&str, &[u8])]) -> (Vec<u8>, String) {
    let files: Vec<(String, Vec<u8>)> = files
        .iter()
        .map(|(p, d)| (p.to_string(), d.to_vec()))
        .collect();
    let raw = layer_tar(&files);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&raw).expect("gzip");
    (gz.finish().expect("gzip"), sha256(&raw))
}
