//! `--security-opt` honoured or refused as Docker's daemon does (issue 14): a seccomp profile
//! file is applied, a missing one refused, unconfined runs unfiltered, no-new-privileges takes
//! Go's booleans, LSM profiles this host cannot apply and unknown keys are refused with exit 125.
mod container_common;
use container_common::*;

#[test]
fn security_opts_are_honoured_or_refused() {
    let env = Env::new("secopt");
    let profile = env.path().join("deny-mkdir.json");
    std::fs::write(
        &profile,
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO","errnoRet":1}]}"#,
    )
    .unwrap();
    let opt = format!("seccomp={}", profile.display());
    let denied = env.berth(&[
        "run",
        "--rm",
        "--security-opt",
        &opt,
        "busybox",
        "mkdir",
        "/x",
    ]);
    assert_eq!(denied.status.code(), Some(1), "{}", stderr(&denied));
    assert!(
        stderr(&denied).contains("Operation not permitted"),
        "{}",
        stderr(&denied)
    );
    let nnp = env.ok(&[
        "run",
        "--rm",
        "--security-opt",
        "no-new-privileges=1",
        "busybox",
        "grep",
        "NoNewPrivs",
        "/proc/self/status",
    ]);
    assert!(nnp.ends_with('1'), "{nnp}");
    env.ok(&[
        "run",
        "--rm",
        "--security-opt",
        "label=disable",
        "busybox",
        "true",
    ]);
    for (opt, message) in [
        (
            "seccomp=/nonexistent.json",
            "opening seccomp profile (/nonexistent.json) failed: open /nonexistent.json: no such file or directory",
        ),
        ("bogus=1", "invalid --security-opt 2: \"bogus=1\""),
        ("bogus", "invalid --security-opt 1: \"bogus\""),
        ("no-new-privileges=maybe", "invalid --security-opt 2: \"no-new-privileges=maybe\""),
        ("apparmor=docker-default", "apparmor=docker-default"),
    ] {
        let out = env.berth(&["run", "--rm", "--security-opt", opt, "busybox", "true"]);
        assert_eq!(out.status.code(), Some(125), "{opt}: {}", stderr(&out));
        assert!(stderr(&out).contains(message), "{opt}: {}", stderr(&out));
    }
    assert!(
        env.record_ids().is_empty(),
        "a refused run left a container"
    );
}
