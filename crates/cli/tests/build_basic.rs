//! `berth build` end to end through the built binary, each test in its own `--root` with a
//! busybox base image from `berth import`: a full Dockerfile that runs as written, the cache
//! across invocations, build args, multi-stage builds, stdin contexts, and failures that name
//! file, line and cause and leave no tag, container or mount behind.
use berth_testkit::TempRoot;
use std::path::Path;
use std::process::{Command, Output, Stdio};

struct Setup {
    root: TempRoot,
    work: tempfile::TempDir,
}

impl Setup {
    fn new() -> Setup {
        let root = TempRoot::new("berth-build-test-").unwrap();
        let work = tempfile::tempdir().unwrap();
        let tar = work.path().join("bb.tar");
        berth_testkit::busybox_rootfs_tar(&tar).unwrap();
        let s = Setup { root, work };
        s.ok(s.berth().arg("import").arg(&tar).arg("bb"));
        s
    }

    fn berth(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_berth"));
        c.arg("--root").arg(self.root.path());
        c
    }

    fn ctx(&self) -> std::path::PathBuf {
        let ctx = self.work.path().join("ctx");
        std::fs::create_dir_all(&ctx).unwrap();
        ctx
    }

    fn write(&self, rel: &str, content: &str) {
        let p = self.ctx().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }

    fn ok(&self, cmd: &mut Command) -> String {
        let out = cmd.output().expect("running berth");
        assert!(
            out.status.success(),
            "{cmd:?} failed ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn build(&self, extra: &[&str]) -> Output {
        self.berth()
            .arg("build")
            .args(extra)
            .arg(self.ctx())
            .output()
            .expect("running berth build")
    }

    /// `-q` build; returns the image ID.
    fn build_id(&self, extra: &[&str]) -> String {
        let mut args = vec!["-q"];
        args.extend_from_slice(extra);
        let out = self.ok(self.berth().arg("build").args(&args).arg(self.ctx()));
        let id = out.trim().to_string();
        assert!(id.starts_with("sha256:") && id.len() == 71, "{out}");
        id
    }

    fn image_id(&self, reference: &str) -> Option<String> {
        let out = self
            .berth()
            .args(["image", "inspect", "--format", "{{.Id}}", reference])
            .output()
            .unwrap();
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// Nothing left behind: no containers, no step layers, no mounts below the root.
    fn assert_clean(&self) {
        // `run --rm` finishes its cleanup in the container's monitor, just after the client returns.
        let mounts_dir = self.root.path().join("image/overlay2/layerdb/mounts");
        let empty = || {
            std::fs::read_dir(&mounts_dir)
                .map(|d| d.count() == 0)
                .unwrap_or(true)
        };
        berth_testkit::wait_until(std::time::Duration::from_secs(10), empty);
        let ps = self.ok(self.berth().args(["ps", "-aq"]));
        assert!(ps.trim().is_empty(), "containers left: {ps}");
        let left = std::fs::read_dir(&mounts_dir)
            .map(|d| d.count())
            .unwrap_or(0);
        assert_eq!(
            left,
            0,
            "step container layers left in {}",
            mounts_dir.display()
        );
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let root = self.root.path().to_string_lossy().to_string();
        assert!(!info.contains(&root), "mounts left below {root}");
    }
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const APP: &str = r#"FROM bb
ARG GREETING=hello
ENV APP=/app NAME="the app"
WORKDIR $APP
COPY note.txt .
COPY . /src/
RUN echo "$GREETING from $NAME" > out.txt && cat note.txt >> out.txt && rm note.txt && test ! -e /src/secret.log
USER tester
CMD ["sh", "-c", "cat /app/out.txt; ls /src; id -u; ls /app"]
"#;

fn write_app(s: &Setup) {
    s.write("Dockerfile", APP);
    s.write("note.txt", "a note\n");
    s.write("secret.log", "never copied\n");
    s.write("lib/util.txt", "util\n");
    s.write(".dockerignore", "*.log\n");
}

#[test]
fn build_runs_as_written_and_history_shows_the_run_step() {
    let s = Setup::new();
    write_app(&s);
    let out = s.build(&["-t", "app"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("Step 1/9 : FROM bb\n"), "{stdout}");
    assert!(stdout.contains(" ---> Running in "), "{stdout}");
    assert!(
        stdout.contains("Successfully tagged app:latest"),
        "{stdout}"
    );
    let run = s.ok(s.berth().args(["run", "--rm", "app"]));
    assert_eq!(
        run,
        "hello from the app\na note\nDockerfile\nlib\nnote.txt\n1000\nout.txt\n"
    );
    let history =
        s.ok(s
            .berth()
            .args(["history", "--no-trunc", "--format", "{{.CreatedBy}}", "app"]));
    let rows: Vec<&str> = history.lines().collect();
    assert!(
        rows.contains(&"|1 GREETING=hello /bin/sh -c echo \"$GREETING from $NAME\" > out.txt && cat note.txt >> out.txt && rm note.txt && test ! -e /src/secret.log"),
        "{history}"
    );
    assert!(
        rows.contains(&"/bin/sh -c #(nop) WORKDIR /app"),
        "{history}"
    );
    assert_eq!(
        rows[0],
        "/bin/sh -c #(nop)  CMD [\"sh\" \"-c\" \"cat /app/out.txt; ls /src; id -u; ls /app\"]"
    );
    s.assert_clean();
}

#[test]
fn cache_build_args_and_changed_sources() {
    let s = Setup::new();
    write_app(&s);
    let first = s.build_id(&["-t", "app"]);
    // Unchanged: same ID, every step from the cache, nothing runs.
    let out = s.build(&["-t", "app"]);
    let (stdout, _) = text(&out);
    assert!(out.status.success());
    assert!(!stdout.contains("Running in"), "{stdout}");
    assert_eq!(stdout.matches(" ---> Using cache").count(), 8, "{stdout}");
    assert_eq!(s.build_id(&[]), first);
    // A changed source rebuilds from its step on.
    s.write("lib/util.txt", "util v2\n");
    let out = s.build(&[]);
    let (stdout, _) = text(&out);
    assert_eq!(stdout.matches(" ---> Using cache").count(), 4, "{stdout}");
    let second = s.build_id(&["-t", "app2"]);
    assert_ne!(second, first);
    // A build arg changes the result and the output.
    let third = s.build_id(&["-t", "app3", "--build-arg", "GREETING=bonjour"]);
    assert_ne!(third, second);
    let run = s.ok(s
        .berth()
        .args(["run", "--rm", "--entrypoint", "cat", "app3", "/app/out.txt"]));
    assert!(run.starts_with("bonjour from the app"), "{run}");
    // --no-cache runs everything again.
    let out = s.build(&["--no-cache"]);
    assert!(!text(&out).0.contains("Using cache"));
    // The original tag still points at the first build.
    assert_eq!(s.image_id("app").as_deref(), Some(first.as_str()));
    s.assert_clean();
}

#[test]
fn multi_stage_copy_from_and_target() {
    let s = Setup::new();
    s.write(
        "Dockerfile",
        "FROM bb AS builder\nWORKDIR /build\nRUN echo built > artifact && echo junk > junk\n\nFROM bb\nCOPY --from=builder /build/artifact /opt/\nRUN cat /opt/artifact\nCMD [\"cat\", \"/opt/artifact\"]\n",
    );
    let id = s.build_id(&["-t", "final"]);
    assert_eq!(s.ok(s.berth().args(["run", "--rm", &id])), "built\n");
    let ls = s.ok(s.berth().args(["run", "--rm", "final", "ls", "/opt"]));
    assert_eq!(ls, "artifact\n");
    let builder = s.build_id(&["--target", "builder", "-t", "stage1"]);
    assert_ne!(builder, id);
    assert_eq!(
        s.ok(s
            .berth()
            .args(["run", "--rm", "stage1", "cat", "/build/junk"])),
        "junk\n"
    );
    s.assert_clean();
}

#[test]
fn missing_copy_source_names_the_file_and_tags_nothing() {
    let s = Setup::new();
    s.write("Dockerfile", "FROM bb\nENV A=1\nCOPY nothere.txt /x\n");
    let out = s.build(&["-t", "broken"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("Dockerfile:3") && stderr.contains("nothere.txt"),
        "{stderr}"
    );
    assert!(s.image_id("broken").is_none());
    s.assert_clean();
}

#[test]
fn failing_run_fails_the_build() {
    let s = Setup::new();
    s.write(
        "Dockerfile",
        "FROM bb\nRUN echo before && false\nCMD [\"true\"]\n",
    );
    let out = s.build(&["-t", "broken"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stdout.contains("before"), "{stdout}");
    assert!(
        stderr.contains("Dockerfile:2: The command '/bin/sh -c echo before && false' returned a non-zero code: 1"),
        "{stderr}"
    );
    assert!(s.image_id("broken").is_none());
    s.assert_clean();
}

#[test]
fn syntax_error_and_unknown_stage_fail_with_file_and_line() {
    let s = Setup::new();
    s.write("Dockerfile", "FROM bb\nRUN true\nFOOBAR x\n");
    let out = s.build(&[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out)
            .1
            .contains("Dockerfile:3: unknown instruction: FOOBAR"),
        "{}",
        text(&out).1
    );
    s.write("Dockerfile", "FROM bb\nCOPY --from=nosuchstage /a /b\n");
    let out = s.build(&["-t", "x"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out).1;
    assert!(
        err.contains("Dockerfile:2") && err.contains("nosuchstage"),
        "{err}"
    );
    assert!(s.image_id("x").is_none());
    s.assert_clean();
}

#[test]
fn context_from_stdin_tar_and_dockerfile_flag() {
    let s = Setup::new();
    s.write(
        "other.Dockerfile",
        "FROM bb\nCOPY hello.txt /\nCMD [\"cat\", \"/hello.txt\"]\n",
    );
    s.write("hello.txt", "from a tar\n");
    let tar_bytes = Command::new("tar")
        .arg("-C")
        .arg(s.ctx())
        .args(["-cf", "-", "."])
        .output()
        .unwrap()
        .stdout;
    let mut child = s
        .berth()
        .args([
            "build",
            "-q",
            "-f",
            "other.Dockerfile",
            "-t",
            "fromtar",
            "-",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(&tar_bytes).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{:?}", text(&out));
    assert_eq!(
        s.ok(s.berth().args(["run", "--rm", "fromtar"])),
        "from a tar\n"
    );
    // -f relative to the working directory with a directory context.
    let df = s.work.path().join("elsewhere.Dockerfile");
    std::fs::write(&df, "FROM bb\nLABEL from=elsewhere\n").unwrap();
    let out = s.ok(s
        .berth()
        .arg("build")
        .arg("-q")
        .arg("-f")
        .arg(&df)
        .arg(s.ctx()));
    assert!(out.trim().starts_with("sha256:"));
    assert!(Path::new(&df).exists());
    // `-f -`: the Dockerfile on stdin, the context a directory (the seed's two-line build).
    let mut child = s
        .berth()
        .args(["build", "-q", "-t", "fromstdin", "-f", "-"])
        .arg(s.ctx())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"FROM bb\nCOPY hello.txt /\nRUN echo \"Hello world\" > /tmp/newfile\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{:?}", text(&out));
    assert_eq!(
        s.ok(s.berth().args([
            "run",
            "--rm",
            "fromstdin",
            "cat",
            "/tmp/newfile",
            "/hello.txt"
        ])),
        "Hello world\nfrom a tar\n"
    );
    s.assert_clean();
}

#[test]
fn chown_chmod_add_archive_heredoc_and_onbuild() {
    let s = Setup::new();
    s.write("tree/inner/file.txt", "in a tar\n");
    let tar = Command::new("tar")
        .arg("-C")
        .arg(s.ctx().join("tree"))
        .args(["-czf"])
        .arg(s.ctx().join("pack.tar.gz"))
        .arg(".")
        .status()
        .unwrap();
    assert!(tar.success());
    s.write("owned.txt", "mine\n");
    s.write(
        "Dockerfile",
        "FROM bb\nCOPY --chown=tester:staff --chmod=640 owned.txt /data/\nADD pack.tar.gz /unpacked/\nCOPY <<EOF /etc/motd\nwelcome $HOSTNAME_UNSET\nEOF\nRUN <<EOF\nset -e\necho from a heredoc script > /script.out\nEOF\nONBUILD RUN echo triggered > /onbuild.out\n",
    );
    s.ok(s.berth().args(["build", "-q", "-t", "parent"]).arg(s.ctx()));
    let stat = s.ok(s.berth().args([
        "run",
        "--rm",
        "parent",
        "stat",
        "-c",
        "%u:%g %a",
        "/data/owned.txt",
    ]));
    assert_eq!(stat, "1000:50 640\n");
    let files = s.ok(s.berth().args([
        "run",
        "--rm",
        "parent",
        "cat",
        "/unpacked/inner/file.txt",
        "/etc/motd",
        "/script.out",
    ]));
    assert_eq!(files, "in a tar\nwelcome \nfrom a heredoc script\n");
    s.write("Dockerfile", "FROM parent\nENV CHILD=1\n");
    let out = s.build(&["-t", "child"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("# Executing 1 build trigger"), "{stdout}");
    assert_eq!(
        s.ok(s
            .berth()
            .args(["run", "--rm", "child", "cat", "/onbuild.out"])),
        "triggered\n"
    );
    s.assert_clean();
}
