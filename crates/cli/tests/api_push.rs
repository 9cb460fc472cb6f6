//! `docker login`, `push`, `pull` and `search` through the service against a local registry
//! (Debian's docker-registry on 127.0.0.1, htpasswd auth over TLS with a fresh CA): the CLI's
//! credentials reach the registry only as it sends them (`/auth`, `X-Registry-Auth`); the
//! service keeps none. Skips without docker, skopeo, docker-registry or htpasswd.
mod api_common;
mod registry_common;
use api_common::{have_docker_cli, Service};
use berth_testkit::registry::{RegistryAuth, RegistryOptions};
use registry_common::Rig;

#[test]
fn login_push_pull_and_search_with_the_clients_credentials() {
    if !have_docker_cli() || !berth_testkit::have("htpasswd") {
        eprintln!("skipping: no docker CLI or htpasswd");
        return;
    }
    let Some(rig) = Rig::start(RegistryOptions {
        auth: RegistryAuth::Basic {
            user: "alice".into(),
            password: "s3cret".into(),
        },
        tls: true,
    }) else {
        return;
    };
    let certs = rig.config_dir().join("certs.d").join(rig.host());
    std::fs::create_dir_all(&certs).unwrap();
    std::fs::copy(rig.registry.ca_cert(), certs.join("ca.crt")).unwrap();
    let config = rig.config_dir().to_str().unwrap().to_string();
    // The service's own credential store stays empty: only the client's credentials work.
    let service_docker = rig.config_dir().join("service-docker");
    std::fs::create_dir_all(&service_docker).unwrap();
    let s = Service::start_with_env(&[
        ("BERTH_CONFIG_DIR", &config),
        ("DOCKER_CONFIG", service_docker.to_str().unwrap()),
    ]);
    s.import_busybox("bb:1");
    let remote = format!("{}/team/bb:1", rig.host());
    s.docker_ok(&["tag", "bb:1", &remote]);

    let out = s.docker_out(&["push", &remote]);
    assert!(!out.status.success(), "push without login: {out:?}");
    let out = s.docker_out(&["login", "-u", "alice", "-p", "wrong", &rig.host()]);
    assert!(
        !out.status.success(),
        "login with a wrong password: {out:?}"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unauthorized"),
        "{out:?}"
    );
    let out = s.docker_ok(&["login", "-u", "alice", "-p", "s3cret", &rig.host()]);
    assert!(out.contains("Login Succeeded"), "{out}");
    assert!(
        !service_docker.join("config.json").exists(),
        "the service kept credentials"
    );

    let out = s.docker_ok(&["push", &remote]);
    assert!(out.contains("Pushed"), "{out}");
    assert!(out.contains("1: digest: sha256:"), "{out}");
    let again = s.docker_ok(&["push", &remote]);
    assert!(again.contains("Layer already exists"), "{again}");

    s.docker_ok(&["rmi", &remote]);
    let pulled = s.docker_ok(&["pull", &remote]);
    assert!(
        pulled.contains(&format!("Downloaded newer image for {remote}")),
        "{pulled}"
    );

    let found = s.docker_ok(&[
        "search",
        "--format",
        "{{.Name}}",
        &format!("{}/team", rig.host()),
    ]);
    assert_eq!(found.trim(), format!("{}/team/bb", rig.host()));

    s.docker_ok(&["logout", &rig.host()]);
    let out = s.docker_out(&["pull", &remote]);
    assert!(!out.status.success(), "pull after logout: {out:?}");
}
