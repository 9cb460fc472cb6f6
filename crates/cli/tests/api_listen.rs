//! How `berth system service` listens: sockets passed by systemd socket activation
//! (`LISTEN_FDS`/`LISTEN_PID`, a Unix socket and a TCP one), and `tcp://` only with TLS client
//! verification (a CA, server and client certificates made with openssl here): the docker CLI
//! gets in with a certificate of that CA, and not without one or with one of another CA.
//! Skips without the docker CLI or openssl.
mod api_common;
use api_common::{have_docker_cli, output_within};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

/// A service process ended (by PID) when the test ends, with its temporary root.
struct Running {
    child: Child,
    dir: tempfile::TempDir,
}

impl Running {
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("service.log")).unwrap_or_default()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        berth_testkit::unmount_below(self.dir.path());
    }
}

fn service_command(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_berth"));
    c.arg("--root")
        .arg(dir.join("root"))
        .args(["system", "service", "--time", "0"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("service.log")).unwrap());
    c
}

/// Starts the service with `fd` as its only inherited socket (fd 3), the way systemd does:
/// `LISTEN_FDS=1` and `LISTEN_PID` set to the service's own PID (a shell that execs it).
fn socket_activated(fd: &impl AsRawFd, extra: &[&str]) -> Running {
    let dir = tempfile::Builder::new()
        .prefix("berth-listen-")
        .tempdir()
        .unwrap();
    let raw = fd.as_raw_fd();
    let mut c = Command::new("sh");
    c.args(["-c", r#"LISTEN_PID=$$ LISTEN_FDS=1 exec "$@""#, "sh"])
        .arg(env!("CARGO_BIN_EXE_berth"))
        .arg("--root")
        .arg(dir.path().join("root"))
        .args(["system", "service", "--time", "0"])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("service.log")).unwrap());
    // SAFETY: dup2 and fcntl are async-signal-safe; the closure touches nothing else between
    // fork and exec.
    unsafe {
        c.pre_exec(move || {
            // dup2 onto itself keeps close-on-exec: the listener may already be fd 3.
            let ok = if raw == 3 {
                libc::fcntl(3, libc::F_SETFD, 0) >= 0
            } else {
                libc::dup2(raw, 3) >= 0
            };
            if !ok {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = c.spawn().expect("starting the socket-activated service");
    Running { child, dir }
}

fn docker(host: &str, envs: &[(&str, &Path)], args: &[&str]) -> Output {
    let mut c = Command::new("docker");
    c.env("DOCKER_HOST", host)
        .env_remove("DOCKER_CONTEXT")
        .env_remove("DOCKER_TLS_VERIFY")
        .env_remove("DOCKER_CERT_PATH")
        .args(args);
    for (k, v) in envs {
        c.env(k, v);
    }
    output_within(c, Duration::from_secs(30))
}

fn server_version(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn systemd_socket_activation_unix_socket() {
    if !have_docker_cli() {
        eprintln!("skipping: no docker CLI");
        return;
    }
    let sockdir = tempfile::tempdir().unwrap();
    let path = sockdir.path().join("activated.sock");
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let svc = socket_activated(&listener, &[]);
    // The service owns the socket now; the test keeps no listener of its own.
    drop(listener);
    let config = svc.dir.path().join("docker-config");
    std::fs::create_dir_all(&config).unwrap();
    let host = format!("unix://{}", path.display());
    let out = docker(
        &host,
        &[("DOCKER_CONFIG", &config)],
        &["version", "--format", "{{.Server.Version}}"],
    );
    assert!(out.status.success(), "{out:?}\n{}", svc.log());
    assert_eq!(server_version(&out), env!("CARGO_PKG_VERSION"));
}

/// `ca.crt`/`ca.key`, `server.crt`/`server.key` (testkit), plus the docker CLI's client files
/// `ca.pem`, `cert.pem`, `key.pem` in `client/`, and a client of another CA in `stranger/`.
fn tls_material(dir: &Path) -> (PathBuf, PathBuf) {
    berth_testkit::registry::make_tls_files(dir).expect("openssl CA and server certificate");
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl");
        assert!(out.status.success(), "openssl {args:?}: {out:?}");
    };
    std::fs::write(dir.join("client.cnf"), "extendedKeyUsage=clientAuth\n").unwrap();
    let client = dir.join("client");
    let stranger = dir.join("stranger");
    std::fs::create_dir_all(&client).unwrap();
    std::fs::create_dir_all(&stranger).unwrap();
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=client",
        "-keyout",
        "client/key.pem",
        "-out",
        "client.csr",
    ]);
    run(&[
        "x509",
        "-req",
        "-in",
        "client.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "client.cnf",
        "-out",
        "client/cert.pem",
    ]);
    std::fs::copy(dir.join("ca.crt"), client.join("ca.pem")).unwrap();
    // Another CA's client certificate (self-signed), trusting the real server CA.
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=stranger",
        "-keyout",
        "stranger/key.pem",
        "-out",
        "stranger/cert.pem",
    ]);
    std::fs::copy(dir.join("ca.crt"), stranger.join("ca.pem")).unwrap();
    (client, stranger)
}

fn tls_flags(dir: &Path) -> Vec<String> {
    vec![
        "--tlsverify".into(),
        "--tlscacert".into(),
        dir.join("ca.crt").display().to_string(),
        "--tlscert".into(),
        dir.join("server.crt").display().to_string(),
        "--tlskey".into(),
        dir.join("server.key").display().to_string(),
    ]
}

/// The docker CLI over TLS with the certificates in `certs`; returns its output.
fn docker_tls(addr: &str, certs: &Path, config: &Path) -> Output {
    docker(
        &format!("tcp://{addr}"),
        &[("DOCKER_CERT_PATH", certs), ("DOCKER_CONFIG", config)],
        &["--tlsverify", "version", "--format", "{{.Server.Version}}"],
    )
}

fn wait_for_tcp(addr: &str, svc: &Running) {
    assert!(
        berth_testkit::wait_until(Duration::from_secs(20), || {
            std::net::TcpStream::connect(addr).is_ok()
        }),
        "the service did not listen on {addr}: {}",
        svc.log()
    );
}

#[test]
fn tcp_only_with_tls_client_verification() {
    if !have_docker_cli() || !berth_testkit::have("openssl") {
        eprintln!("skipping: no docker CLI or openssl");
        return;
    }
    let certs = tempfile::tempdir().unwrap();
    let (client, stranger) = tls_material(certs.path());
    let config = certs.path().join("docker-config");
    std::fs::create_dir_all(&config).unwrap();

    // No unauthenticated TCP: tcp:// without TLS flags is refused before anything listens.
    let dir = tempfile::tempdir().unwrap();
    let mut c = service_command(dir.path());
    c.arg("tcp://127.0.0.1:0");
    let out = output_within(c, Duration::from_secs(30));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no unauthenticated TCP"), "{err}");

    // tcp:// with --tlsverify on a port that was free a moment ago.
    let port = berth_testkit::registry::free_port().unwrap();
    let addr = format!("127.0.0.1:{port}");
    let dir = tempfile::tempdir().unwrap();
    let mut c = service_command(dir.path());
    c.args(tls_flags(certs.path())).arg(format!("tcp://{addr}"));
    let svc = Running {
        child: c.spawn().expect("starting the TLS service"),
        dir,
    };
    wait_for_tcp(&addr, &svc);
    let out = docker_tls(&addr, &client, &config);
    assert!(out.status.success(), "{out:?}\n{}", svc.log());
    assert_eq!(server_version(&out), env!("CARGO_PKG_VERSION"));
    // A client of another CA, and one without any certificate, are turned away.
    let out = docker_tls(&addr, &stranger, &config);
    assert!(!out.status.success(), "a foreign client certificate got in");
    let nocert = certs.path().join("nocert");
    std::fs::create_dir_all(&nocert).unwrap();
    std::fs::copy(certs.path().join("ca.crt"), nocert.join("ca.pem")).unwrap();
    let out = docker(
        &format!("tcp://{addr}"),
        &[("DOCKER_CONFIG", &config)],
        &[
            "--tls",
            "--tlscacert",
            nocert.join("ca.pem").to_str().unwrap(),
            "version",
        ],
    );
    assert!(
        !out.status.success(),
        "a client without a certificate got in"
    );
    // Plain HTTP on the TLS port gets no API answer.
    let out = docker(
        &format!("tcp://{addr}"),
        &[("DOCKER_CONFIG", &config)],
        &["version", "--format", "{{.Server.Version}}"],
    );
    assert!(!out.status.success(), "plain HTTP got an answer");
    drop(svc);

    // A socket-activated TCP listener gets the same TLS (and is refused without it).
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = tcp.local_addr().unwrap().to_string();
    let flags = tls_flags(certs.path());
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let svc = socket_activated(&tcp, &flags);
    drop(tcp);
    let out = docker_tls(&addr, &client, &config);
    assert!(out.status.success(), "{out:?}\n{}", svc.log());
    let out = docker_tls(&addr, &stranger, &config);
    assert!(!out.status.success(), "a foreign client certificate got in");
}
