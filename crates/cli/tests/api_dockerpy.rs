//! docker-py (PyPI `docker`, Debian `python3-docker`) drives a scripted flow through `berth
//! system service`: run (attached and detached), streamed logs, exec_run, put/get_archive,
//! stop/wait/remove, images.build with streamed output, image list and removal. Skips when
//! docker-py is not installed.
mod api_common;
use api_common::Service;

#[test]
fn docker_py_flow() {
    let have_py = std::process::Command::new("python3")
        .args(["-c", "import docker"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !have_py || !api_common::have_docker_cli() {
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
