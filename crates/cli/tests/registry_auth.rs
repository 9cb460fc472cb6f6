//! Registry authentication and TLS against Debian's `docker-registry`: htpasswd basic auth over
//! HTTPS with a CA from `certs.d` (`login`, `logout`, credentials in Docker's `config.json`), and
//! token auth with a token server this test runs (RS256 JWTs signed with `openssl`).
mod registry_common;
use base64::Engine;
use berth_testkit::registry::{make_tls_files, RegistryAuth, RegistryOptions};
use berth_testkit::TempRoot;
use registry_common::*;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

fn login(rig: &Rig, root: &Path, user: &str, password: &str) -> std::process::Output {
    let mut child = rig
        .berth(root)
        .args(["login", "-u", user, "--password-stdin", &rig.host()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("berth login");
    if let Some(mut stdin) = child.stdin.take() {
        let _ = writeln!(stdin, "{password}");
    }
    child.wait_with_output().expect("berth login")
}

#[test]
fn basic_auth_over_tls_with_a_certs_d_ca() {
    let Some(rig) = Rig::start(RegistryOptions {
        auth: RegistryAuth::Basic {
            user: "alice".into(),
            password: "s3cret".into(),
        },
        tls: true,
    }) else {
        return;
    };
    let (src, _id) = busybox_root(&rig, "bb:1");
    let remote = format!("{}/private/bb:1", rig.host());
    ok(rig.berth(src.path()).args(["tag", "bb:1", &remote]));

    // Without the CA the registry's certificate is not trusted.
    let untrusted = fails(rig.berth(src.path()).args(["push", &remote]));
    let err = String::from_utf8_lossy(&untrusted.stderr);
    assert!(err.contains(&rig.host()), "{err}");

    let certs = rig.config_dir().join("certs.d").join(rig.host());
    std::fs::create_dir_all(&certs).expect("certs.d");
    std::fs::copy(rig.registry.ca_cert(), certs.join("ca.crt")).expect("ca.crt");

    let denied = fails(rig.berth(src.path()).args(["push", &remote]));
    let err = String::from_utf8_lossy(&denied.stderr);
    assert!(
        err.contains("unauthorized") || err.contains("denied"),
        "{err}"
    );

    let wrong = login(&rig, src.path(), "alice", "nope");
    assert!(!wrong.status.success());
    assert!(
        String::from_utf8_lossy(&wrong.stderr).contains("unauthorized"),
        "{}",
        String::from_utf8_lossy(&wrong.stderr)
    );
    let good = login(&rig, src.path(), "alice", "s3cret");
    assert!(
        good.status.success(),
        "{}",
        String::from_utf8_lossy(&good.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&good.stdout).trim(),
        "Login Succeeded"
    );
    let config =
        std::fs::read_to_string(rig.config_dir().join("docker/config.json")).expect("config.json");
    let auth = base64::engine::general_purpose::STANDARD.encode("alice:s3cret");
    assert!(
        config.contains(&rig.host()) && config.contains(&auth),
        "{config}"
    );

    let out = ok(rig.berth(src.path()).args(["push", &remote]));
    let dst = TempRoot::new("berth-reg-dst-").expect("root");
    ok(rig.berth(dst.path()).args(["pull", &remote]));
    assert!(out.contains("digest: sha256:"), "{out}");

    let bye = ok(rig.berth(src.path()).args(["logout", &rig.host()]));
    assert_eq!(
        bye.trim(),
        format!("Removing login credentials for {}", rig.host())
    );
    let again = ok(rig.berth(src.path()).args(["logout", &rig.host()]));
    assert_eq!(again.trim(), format!("Not logged in to {}", rig.host()));
    let fresh = TempRoot::new("berth-reg-dst-").expect("root");
    fails(rig.berth(fresh.path()).args(["pull", &remote]));

    // The catalog answers search once logged in.
    login(&rig, src.path(), "alice", "s3cret");
    let found = ok(rig
        .berth(src.path())
        .args(["search", &format!("{}/bb", rig.host())]));
    assert!(found.starts_with("NAME"), "{found}");
    assert!(
        found.contains(&format!("{}/private/bb", rig.host())),
        "{found}"
    );
}

/// A token server: Basic-authenticated GETs get an RS256 JWT granting the requested scopes.
/// With `refresh`, a GET asking for offline access also gets a refresh token, and OAuth2 POSTs
/// (`grant_type=refresh_token`) presenting it get access tokens.
struct TokenServer {
    port: u16,
    scopes: Arc<Mutex<Vec<String>>>,
    /// How each token was granted: `password` (GET, Basic) or `refresh_token` (POST).
    grants: Arc<Mutex<Vec<String>>>,
}

const REFRESH_TOKEN: &str = "berth-test-refresh-token";

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn sign(dir: &Path, payload: &str) -> Vec<u8> {
    let input = dir.join(format!("to-sign-{}", std::process::id()));
    std::fs::write(&input, payload).expect("payload");
    let out = std::process::Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(dir.join("ca.key"))
        .arg(&input)
        .output()
        .expect("openssl dgst");
    assert!(out.status.success());
    out.stdout
}

/// `application/x-www-form-urlencoded` (query strings too) decoded into pairs.
fn form_pairs(text: &str) -> Vec<(String, String)> {
    let decode = |s: &str| {
        let s = s.replace('+', " ");
        let bytes = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' && i + 2 < bytes.len() {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                if let Ok(b) = u8::from_str_radix(hex, 16) {
                    out.push(b);
                    i += 3;
                    continue;
                }
            }
            out.push(bytes[i]);
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    text.split('&')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}

fn serve_tokens(dir: PathBuf, user: &str, password: &str, refresh: bool) -> TokenServer {
    use std::io::Read;
    let listener = TcpListener::bind("127.0.0.1:0").expect("token port");
    let port = listener.local_addr().expect("addr").port();
    let scopes = Arc::new(Mutex::new(Vec::new()));
    let grants = Arc::new(Mutex::new(Vec::new()));
    let (seen, granted) = (scopes.clone(), grants.clone());
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    );
    let pem = std::fs::read_to_string(dir.join("ca.crt")).expect("ca.crt");
    let der_b64: String = pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<Vec<_>>()
        .join("");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(30)));
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut request_line = String::new();
            let _ = reader.read_line(&mut request_line);
            let mut basic_ok = false;
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some((k, v)) = line.split_once(':') {
                    if k.eq_ignore_ascii_case("authorization") && v.trim() == expected {
                        basic_ok = true;
                    }
                    if k.eq_ignore_ascii_case("content-length") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                }
            }
            let mut body = vec![0u8; length.min(1 << 20)];
            let _ = reader.read_exact(&mut body);
            let target = request_line.split_whitespace().nth(1).unwrap_or("");
            let query = target.split_once('?').map(|(_, q)| q).unwrap_or("");
            let post = request_line.starts_with("POST");
            let params = if post {
                form_pairs(&String::from_utf8_lossy(&body))
            } else {
                form_pairs(query)
            };
            let param = |k: &str| {
                params
                    .iter()
                    .filter(|(n, _)| n == k)
                    .map(|(_, v)| v.clone())
                    .collect::<Vec<_>>()
            };
            let authorized = if post {
                refresh
                    && param("grant_type") == ["refresh_token"]
                    && param("refresh_token") == [REFRESH_TOKEN]
                    && param("client_id") == ["docker"]
            } else {
                basic_ok
            };
            let mut access = Vec::new();
            // OAuth sends the scopes space-separated in one field; GET repeats `scope`.
            for v in param("scope").iter().flat_map(|v| v.split(' ')) {
                if v.is_empty() {
                    continue;
                }
                seen.lock().expect("scopes").push(v.to_string());
                let parts: Vec<&str> = v.splitn(3, ':').collect();
                if parts.len() == 3 {
                    access.push(serde_json::json!({
                        "type": parts[0], "name": parts[1],
                        "actions": parts[2].split(',').collect::<Vec<_>>()
                    }));
                }
            }
            if !authorized {
                let body = r#"{"details":"authentication required"}"#;
                let _ = write!(
                    stream,
                    "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                continue;
            }
            granted
                .lock()
                .expect("grants")
                .push(if post { "refresh_token" } else { "password" }.to_string());
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            let header = serde_json::json!({"typ": "JWT", "alg": "RS256", "x5c": [der_b64]});
            let claims = serde_json::json!({
                "iss": "berth-test-issuer", "sub": "alice", "aud": "berth-test-registry",
                "exp": now + 600, "nbf": now - 60, "iat": now, "jti": format!("{now}-{}", access.len()),
                "access": access
            });
            let signing_input = format!(
                "{}.{}",
                b64url(header.to_string().as_bytes()),
                b64url(claims.to_string().as_bytes())
            );
            let signature = sign(&dir, &signing_input);
            let token = format!("{signing_input}.{}", b64url(&signature));
            let mut answer = if post {
                serde_json::json!({"access_token": token, "expires_in": 600})
            } else {
                serde_json::json!({"token": token, "expires_in": 600})
            };
            if refresh && !post && param("offline_token") == ["true"] {
                answer["refresh_token"] = REFRESH_TOKEN.into();
            }
            let body = answer.to_string();
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    TokenServer {
        port,
        scopes,
        grants,
    }
}

#[test]
fn token_auth_with_a_token_server() {
    if !berth_testkit::have("openssl") {
        return;
    }
    let keys = TempRoot::new("berth-reg-token-").expect("dir");
    make_tls_files(keys.path()).expect("keys");
    let server = serve_tokens(keys.path().to_path_buf(), "alice", "tok-pass", false);
    let Some(rig) = Rig::start(RegistryOptions {
        auth: RegistryAuth::Token {
            realm: format!("http://127.0.0.1:{}/token", server.port),
            service: "berth-test-registry".into(),
            issuer: "berth-test-issuer".into(),
            cert_pem: keys.path().join("ca.crt"),
        },
        tls: false,
    }) else {
        return;
    };
    let (src, id) = busybox_root(&rig, "bb:1");
    let remote = format!("{}/team/app:1", rig.host());
    ok(rig.berth(src.path()).args(["tag", "bb:1", &remote]));
    let denied = fails(rig.berth(src.path()).args(["push", &remote]));
    assert!(
        String::from_utf8_lossy(&denied.stderr).contains("unauthorized"),
        "{}",
        String::from_utf8_lossy(&denied.stderr)
    );
    let good = login(&rig, src.path(), "alice", "tok-pass");
    assert!(
        good.status.success(),
        "{}",
        String::from_utf8_lossy(&good.stderr)
    );
    ok(rig.berth(src.path()).args(["push", &remote]));
    let dst = TempRoot::new("berth-reg-dst-").expect("root");
    ok(rig.berth(dst.path()).args(["pull", &remote]));
    let pulled = ok(rig
        .berth(dst.path())
        .args(["image", "inspect", "--format", "{{.Id}}", &remote]));
    assert_eq!(pulled.trim(), id);
    let scopes = server.scopes.lock().expect("scopes").clone();
    assert!(
        scopes.iter().any(|s| s == "repository:team/app:pull,push"),
        "{scopes:?}"
    );
    assert!(
        scopes.iter().any(|s| s == "repository:team/app:pull"),
        "{scopes:?}"
    );
}

#[test]
fn login_keeps_the_identity_token_and_pulls_trade_it_with_oauth() {
    if !berth_testkit::have("openssl") {
        return;
    }
    let keys = TempRoot::new("berth-reg-token-").expect("dir");
    make_tls_files(keys.path()).expect("keys");
    let server = serve_tokens(keys.path().to_path_buf(), "alice", "tok-pass", true);
    let Some(rig) = Rig::start(RegistryOptions {
        auth: RegistryAuth::Token {
            realm: format!("http://127.0.0.1:{}/token", server.port),
            service: "berth-test-registry".into(),
            issuer: "berth-test-issuer".into(),
            cert_pem: keys.path().join("ca.crt"),
        },
        tls: false,
    }) else {
        return;
    };
    let (src, id) = busybox_root(&rig, "bb:1");
    let good = login(&rig, src.path(), "alice", "tok-pass");
    assert!(
        good.status.success(),
        "{}",
        String::from_utf8_lossy(&good.stderr)
    );
    // Kept as Docker keeps it: the identity token, and no password.
    let config: serde_json::Value = serde_json::from_slice(
        &std::fs::read(rig.config_dir().join("docker/config.json")).expect("config.json"),
    )
    .expect("config json");
    let entry = &config["auths"][rig.host().as_str()];
    assert_eq!(entry["identitytoken"], REFRESH_TOKEN, "{config}");
    assert_eq!(
        entry["auth"],
        base64::engine::general_purpose::STANDARD.encode("alice:"),
        "{config}"
    );
    assert!(!config.to_string().contains("tok-pass"), "{config}");
    assert_eq!(
        *server.grants.lock().expect("grants"),
        vec!["password".to_string()]
    );

    // Push and pull with only the identity token: access tokens come from OAuth2 POSTs.
    let remote = format!("{}/team/tok:1", rig.host());
    ok(rig.berth(src.path()).args(["tag", "bb:1", &remote]));
    ok(rig.berth(src.path()).args(["push", &remote]));
    let dst = TempRoot::new("berth-reg-dst-").expect("root");
    ok(rig.berth(dst.path()).args(["pull", &remote]));
    let pulled = ok(rig
        .berth(dst.path())
        .args(["image", "inspect", "--format", "{{.Id}}", &remote]));
    assert_eq!(pulled.trim(), id);
    let grants = server.grants.lock().expect("grants").clone();
    assert_eq!(grants[0], "password");
    assert!(grants.len() >= 3, "{grants:?}");
    assert!(
        grants[1..].iter().all(|g| g == "refresh_token"),
        "{grants:?}"
    );
    let scopes = server.scopes.lock().expect("scopes").clone();
    assert!(
        scopes.iter().any(|s| s == "repository:team/tok:pull,push"),
        "{scopes:?}"
    );
}
