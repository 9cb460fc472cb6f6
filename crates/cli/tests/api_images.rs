//! The real docker CLI against `berth system service`: version, info, ping headers, API version
//! refusals, and the image verbs (import, images, tag, history, save, rmi, load, inspect, prune,
//! system df). Skips when the docker CLI is missing.
mod api_common;
use api_common::{have_docker_cli, Service};

#[test]
fn version_info_and_errors() {
    if !have_docker_cli() {
        eprintln!("skipping: no docker CLI");
        return;
    }
    let s = Service::start();
    let v = s.docker_ok(&[
        "version",
        "--format",
        "{{.Server.APIVersion}} {{.Server.Os}}",
    ]);
    assert_eq!(v.trim(), "1.47 linux");
    let info = s.docker_ok(&[
        "info",
        "--format",
        "{{.Driver}} {{.Containers}} {{.OSType}}",
    ]);
    assert_eq!(info.trim(), "overlay2 0 linux");
    // Docker's error shape and status for a missing object.
    let out = s.docker_out(&["image", "inspect", "nosuch:image"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("No such image"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Ping over raw HTTP: both methods, with the version headers.
    let raw = raw_http(&s, "HEAD /_ping HTTP/1.0\r\n\r\n");
    assert!(raw.starts_with("HTTP/1.0 200"), "{raw}");
    assert!(
        raw.to_ascii_lowercase().contains("api-version: 1.47"),
        "{raw}"
    );
    let raw = raw_http(&s, "GET /v1.24/_ping HTTP/1.0\r\n\r\n");
    assert!(raw.ends_with("OK"), "{raw}");
    let raw = raw_http(&s, "GET /v1.99/version HTTP/1.0\r\n\r\n");
    assert!(raw.starts_with("HTTP/1.0 400"), "{raw}");
    assert!(
        raw.contains(r#"{"message":"client version 1.99 is too new"#),
        "{raw}"
    );
    let raw = raw_http(&s, "GET /v1.47/nosuch HTTP/1.0\r\n\r\n");
    assert!(raw.starts_with("HTTP/1.0 404"), "{raw}");
}

fn raw_http(s: &Service, request: &str) -> String {
    use std::io::{Read, Write};
    let mut c = std::os::unix::net::UnixStream::connect(s.socket()).unwrap();
    c.write_all(request.as_bytes()).unwrap();
    let mut out = String::new();
    c.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn image_verbs_through_the_docker_cli() {
    if !have_docker_cli() {
        eprintln!("skipping: no docker CLI");
        return;
    }
    let s = Service::start();
    let id = s.import_busybox("bb:1");
    assert!(id.starts_with("sha256:"), "{id}");
    let images = s.docker_ok(&["images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"]);
    assert_eq!(images.trim(), format!("bb:1 {}", &id[7..19]));
    s.docker_ok(&["tag", "bb:1", "example.com/team/bb:2"]);
    let inspect = s.docker_ok(&[
        "image",
        "inspect",
        "--format",
        "{{.Id}}",
        "example.com/team/bb:2",
    ]);
    assert_eq!(inspect.trim(), id);
    let history = s.docker_ok(&["history", "--format", "{{.Comment}}", "bb:1"]);
    assert!(history.contains("Imported from -"), "{history}");
    let filtered = s.docker_ok(&[
        "images",
        "--filter",
        "reference=example.com/*/*",
        "--format",
        "{{.Tag}}",
    ]);
    assert_eq!(filtered.trim(), "2");

    let saved = s.dir.path().join("saved.tar");
    s.docker_ok(&["save", "-o", saved.to_str().unwrap(), "bb:1"]);
    let out = s.docker_ok(&["rmi", "bb:1", "example.com/team/bb:2"]);
    assert!(
        out.contains("Untagged: bb:1") && out.contains(&format!("Deleted: {id}")),
        "{out}"
    );
    assert_eq!(s.docker_ok(&["images", "-q"]).trim(), "");
    let out = s.docker_ok(&["load", "-i", saved.to_str().unwrap()]);
    assert!(out.contains("Loaded image: bb:1"), "{out}");
    assert_eq!(
        s.docker_ok(&["image", "inspect", "--format", "{{.Id}}", "bb:1"])
            .trim(),
        id
    );
    // The same store as the berth CLI.
    let berth_images = api_common::Service::berth(&s)
        .args(["images", "--format", "{{.Repository}}"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&berth_images.stdout).trim(), "bb");
    let df = s.docker_ok(&["system", "df", "--format", "{{.Type}} {{.TotalCount}}"]);
    assert!(df.contains("Images 1"), "{df}");
    let out = s.docker_ok(&["image", "prune", "-a", "-f"]);
    assert!(out.contains("deleted:"), "{out}");
    assert_eq!(s.docker_ok(&["images", "-q"]).trim(), "");
}
