//! `run` flag validation as Docker's (issue 14): each refusal exits 125 with Docker's message
//! and leaves no container behind; an unknown command exits 1.
use std::process::Command;

fn berth(root: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_berth"))
        .arg("--root")
        .arg(root)
        .args(args)
        .output()
        .expect("running berth")
}

#[test]
fn bad_run_flags_exit_125_with_dockers_messages() {
    let root = berth_testkit::TempRoot::new("berth-validate-").unwrap();
    let cpus = std::thread::available_parallelism().unwrap().get();
    let too_many = (cpus + 1).to_string();
    let cpu_msg =
        format!("Range of CPUs is from 0.01 to {cpus}.00, as there are only {cpus} CPUs available");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--cpus", &too_many], &cpu_msg),
        (vec!["-e", ""], "invalid environment variable: "),
        (vec!["-e", "=x"], "invalid environment variable: =x"),
        (vec!["-v", ":/x"], "invalid volume specification: ':/x'"),
        (vec!["--stop-signal", "NOPE"], "Invalid signal: NOPE"),
        (
            vec!["--security-opt", "nope=1"],
            "invalid --security-opt 2: \"nope=1\"",
        ),
        (vec!["--tmpfs", ""], "invalid tmpfs mount"),
        (
            vec!["-w", "relative"],
            "the working directory 'relative' is invalid, it needs to be an absolute path",
        ),
        (vec!["-m", "5m"], "Minimum memory limit allowed is 6MB"),
    ];
    for (flags, message) in cases {
        let mut args = vec!["run", "--rm"];
        args.extend(flags.iter().copied());
        args.push("hello");
        let out = berth(root.path(), &args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(125), "{flags:?}: {err}");
        assert!(err.contains(message), "{flags:?}: {err}");
    }
    let listed = berth(root.path(), &["ps", "-aq"]);
    assert!(String::from_utf8_lossy(&listed.stdout).trim().is_empty());
    let unknown = berth(root.path(), &["frobnicate"]);
    assert_eq!(unknown.status.code(), Some(1));
}
