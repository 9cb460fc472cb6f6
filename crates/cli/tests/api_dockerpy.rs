//! docker-py (PyPI `docker`, Debian `python3-docker`) drives a scripted flow through `berth
//! system service`: run (attached and detached), streamed logs, exec_run, put/get_archive,
//! stop/wait/remove, images.build with streamed output, image list and removal; and images.pull
//! from a local registry, volumes and networks in a throwaway network namespace. Skips when
//! docker-py is not installed.
mod api_common;
mod registry_common;
use api_common::Service;
use registry_common::Rig;

fn have_docker_py() -> bool {
    std::process::Command::new("python3")
        .args(["-c", "import docker"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

#[test]
fn docker_py_flow() {
    if !have_docker_py() || !api_common::have_docker_cli() {
        eprintln!("skipping: docker-py or the docker CLI is not installed");
        return;
    }
    let s = Service::start();
    s.import_busybox("bb:py");
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/api_scripts/dockerpy_flow.py"
    );
    let out = std::process::Command::new("python3")
        .arg(script)
        .env("DOCKER_HOST", s.host())
        .env("IMAGE", "bb:py")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}\nservice log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        s.log()
    );
    assert!(stdout.contains("images ok"), "{stdout}");
}

/// docker-py's images.pull from a local registry, volumes (create, run -v, list by label, remove)
/// and networks (create, run on it, reach by name, connect with an alias, disconnect, remove),
/// all inside a throwaway network namespace that plays the host.
#[test]
fn docker_py_pull_volumes_and_networks() {
    if !have_docker_py() || !api_common::have_docker_cli() || !berth_testkit::have("ip") {
        eprintln!("skipping: docker-py, the docker CLI or ip is not installed");
        return;
    }
    api_common::in_throwaway_host(|| {
        let Some(rig) = Rig::start(Default::default()) else {
            return;
        };
        let config = rig.config_dir().to_str().unwrap().to_string();
        let s = Service::start_with_env(&[("BERTH_CONFIG_DIR", &config)]);
        s.import_busybox("bb:pyobj");
        let archive = s.dir.path().join("bb.tar");
        s.docker_ok(&["save", "-o", archive.to_str().unwrap(), "bb:pyobj"]);
        let remote = format!("{}/py/bb:1", rig.host());
        rig.skopeo_copy(
            &format!("docker-archive:{}", archive.display()),
            &format!("docker://{remote}"),
            &[],
        );
        s.docker_ok(&["rmi", "bb:pyobj"]);
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/api_scripts/dockerpy_objects.py"
        );
        let mut cmd = std::process::Command::new("python3");
        cmd.arg(script)
            .env("DOCKER_HOST", s.host())
            .env("REMOTE", &remote);
        let out = api_common::output_within(cmd, std::time::Duration::from_secs(180));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{stdout}\n{}\nservice log:\n{}",
            String::from_utf8_lossy(&out.stderr),
            s.log()
        );
        assert!(stdout.contains("networks ok"), "{stdout}");
        let _ = s.docker_out(&["rm", "-f", "pysrv"]);
    });
}
