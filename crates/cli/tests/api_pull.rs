//! `docker pull` (and `docker run` of an image that is not there yet) through the service,
//! from a local test registry that skopeo fills. Skips without docker, skopeo or docker-registry.
mod api_common;
mod registry_common;
use api_common::{have_docker_cli, Service};
use registry_common::Rig;

#[test]
fn pull_and_run_from_a_local_registry() {
    if !have_docker_cli() {
        eprintln!("skipping: no docker CLI");
        return;
    }
    let Some(rig) = Rig::start(Default::default()) else {
        return;
    };
    let config = rig.config_dir().to_str().unwrap().to_string();
    let s = Service::start_with_env(&[("BERTH_CONFIG_DIR", &config)]);
    s.import_busybox("bb:1");
    let archive = s.dir.path().join("bb.tar");
    s.docker_ok(&["save", "-o", archive.to_str().unwrap(), "bb:1"]);
    let remote = format!("{}/team/bb:1", rig.host());
    rig.skopeo_copy(
        &format!("docker-archive:{}", archive.display()),
        &format!("docker://{remote}"),
        &[],
    );
    s.docker_ok(&["rmi", "bb:1"]);
    let out = s.docker_ok(&["pull", &remote]);
    assert!(out.contains("Pull complete"), "{out}");
    assert!(
        out.contains(&format!("Downloaded newer image for {remote}")),
        "{out}"
    );
    let again = s.docker_ok(&["pull", &remote]);
    assert!(again.contains("Image is up to date"), "{again}");
    s.docker_ok(&["rmi", &remote]);
    // `run` pulls what it does not have.
    let out = s.docker_out(&["run", "--rm", &remote, "echo", "pulled"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "pulled\n", "{out:?}");
    // A missing repository is the CLI's failure with the registry's words.
    let out = s.docker_out(&["pull", &format!("{}/team/nosuch:1", rig.host())]);
    assert!(!out.status.success());
}
