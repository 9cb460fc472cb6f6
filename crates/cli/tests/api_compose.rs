//! Debian's `docker-compose` against `berth system service`: a two-service project (one
//! `depends_on` the other and reaches it by name on a user network, a named volume) goes `up -d`,
//! shows in `ps` and `logs`, and `down -v` removes containers, network and volume. All inside a
//! throwaway network namespace that plays the host. Skips without docker-compose or ip.
mod api_common;
use api_common::{in_throwaway_host, output_within, Service};
use std::process::{Command, Output};
use std::time::Duration;

const PROJECT: &str = r#"version: "3.7"
services:
  db:
    image: bb
    command: ["sh", "-c", "trap 'exit 0' TERM; echo db-ready > /data/mark; nc -ll -p 7000 -e echo pong & wait"]
    volumes: ["data:/data"]
    networks: [backend]
  web:
    image: bb
    depends_on: [db]
    command: ["sh", "-c", "trap 'exit 0' TERM; until nc -w 2 db 7000 </dev/null | grep -q pong; do sleep 0.2; done; echo web reached db; sleep 1000 & wait"]
    networks: [backend]
volumes:
  data: {}
networks:
  backend: {}
"#;

fn compose(s: &Service, dir: &std::path::Path, args: &[&str]) -> Output {
    let mut c = Command::new("docker-compose");
    c.current_dir(dir)
        .env("DOCKER_HOST", s.host())
        .env("DOCKER_CONFIG", s.dir.path().join("docker-config"))
        .env_remove("DOCKER_TLS_VERIFY")
        .env_remove("COMPOSE_FILE")
        .args(["-p", "proj"])
        .args(args);
    output_within(c, Duration::from_secs(90))
}

fn compose_ok(s: &Service, dir: &std::path::Path, args: &[&str]) -> String {
    let out = compose(s, dir, args);
    assert!(
        out.status.success(),
        "docker-compose {args:?}: {}\n{}\nservice log:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        s.log()
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn compose_up_ps_logs_down() {
    if !berth_testkit::have("docker-compose")
        || !berth_testkit::have("ip")
        || !api_common::have_docker_cli()
    {
        eprintln!("skipping: no docker-compose, docker or ip");
        return;
    }
    in_throwaway_host(|| {
        let s = Service::start();
        s.import_busybox("bb");
        let dir = s.dir.path().join("project");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("docker-compose.yml"), PROJECT).unwrap();
        compose_ok(&s, &dir, &["up", "-d"]);
        // web reaches db by its service name once both run.
        let mut logs = String::new();
        let reached = berth_testkit::wait_until(Duration::from_secs(40), || {
            logs = compose_ok(&s, &dir, &["logs", "--no-color"]);
            logs.contains("web reached db")
        });
        assert!(reached, "web never reached db by name:\n{logs}");
        let ps = compose_ok(&s, &dir, &["ps"]);
        for name in ["proj_db_1", "proj_web_1"] {
            assert!(
                ps.lines().any(|l| l.starts_with(name) && l.contains("Up")),
                "{name} up in:\n{ps}"
            );
        }
        // The project's network and named volume exist, and the volume holds db's file.
        let nets = s.docker_ok(&["network", "ls", "--format", "{{.Name}}"]);
        assert!(nets.lines().any(|l| l == "proj_backend"), "{nets}");
        let mark = s.root().join("volumes/proj_data/_data/mark");
        assert_eq!(std::fs::read_to_string(&mark).unwrap(), "db-ready\n");
        // berth sees the same containers.
        let berth_ps = s
            .berth()
            .args(["ps", "--format", "{{.Names}}"])
            .output()
            .unwrap();
        let berth_ps = String::from_utf8_lossy(&berth_ps.stdout);
        assert!(berth_ps.contains("proj_web_1"), "{berth_ps}");

        compose_ok(&s, &dir, &["down", "-v", "-t", "2"]);
        assert_eq!(s.docker_ok(&["ps", "-aq"]).trim(), "");
        let nets = s.docker_ok(&["network", "ls", "--format", "{{.Name}}"]);
        assert!(!nets.contains("proj_"), "{nets}");
        let vols = s.docker_ok(&["volume", "ls", "-q"]);
        assert!(!vols.contains("proj_data"), "{vols}");
    });
}
