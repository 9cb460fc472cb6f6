//! Builder logic against the fake runner: history text and layers as Docker's classic builder
//! writes them, the cache, build args, stages, triggers and failures.
use super::*;
use crate::fake::FakeRunner;

struct Fixture {
    runner: FakeRunner,
    cache: BuildCache,
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        let mut runner = FakeRunner::default();
        runner.add_base(
            "bb",
            &[
                (
                    "etc/passwd",
                    "root:x:0:0::/root:/bin/sh\ntester:x:1000:1000::/home:/bin/sh\n",
                ),
                ("etc/group", "root:x:0:\ntester:x:1000:\n"),
            ],
        );
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.txt"), "hello\n").unwrap();
        std::fs::create_dir_all(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/b.txt"), "b\n").unwrap();
        std::fs::write(dir.path().join("skip.log"), "secret\n").unwrap();
        std::fs::write(dir.path().join(".dockerignore"), "*.log\n").unwrap();
        Fixture {
            runner,
            cache: BuildCache::in_memory(),
            dir,
        }
    }

    fn build_with(
        &mut self,
        dockerfile: &str,
        tweak: impl FnOnce(&mut BuildOptions),
    ) -> (Result<BuildOutcome>, String) {
        let context = BuildContext::from_dir(self.dir.path()).unwrap();
        let mut options = BuildOptions {
            dockerfile_name: "Dockerfile".into(),
            dockerfile_text: dockerfile.into(),
            tags: vec!["out".into()],
            ..Default::default()
        };
        tweak(&mut options);
        let mut out = Vec::new();
        let result = build(
            &mut self.runner,
            &mut self.cache,
            &context,
            &options,
            &mut out,
        );
        (result, String::from_utf8_lossy(&out).into_owned())
    }

    fn build(&mut self, dockerfile: &str) -> BuildOutcome {
        let (r, out) = self.build_with(dockerfile, |_| {});
        r.unwrap_or_else(|e| panic!("{e}\n{out}"))
    }

    fn history(&self, id: &str) -> Vec<(String, bool)> {
        self.runner.images[id]
            .history
            .iter()
            .skip(1)
            .map(|h| (h.created_by.clone().unwrap_or_default(), h.empty_layer))
            .collect()
    }
}

const BIG: &str = r#"FROM bb
ARG VER=1
ENV APP=/app GREETING="hi there"
LABEL a=b c="d e"
WORKDIR $APP
COPY a.txt .
COPY . /ctx/
RUN echo $VER $GREETING > out.txt && touch /app/made
ADD sub /sub2
EXPOSE 80 443/udp
VOLUME /data
USER tester
STOPSIGNAL SIGTERM
SHELL ["/bin/sh", "-xc"]
RUN echo shell
HEALTHCHECK --interval=5s --timeout=3s CMD true
ONBUILD RUN echo onbuild
MAINTAINER me
ENTRYPOINT ["/bin/sh"]
CMD ["-c", "cat out.txt"]
"#;

/// What Docker 20.10's classic builder wrote for BIG with `--build-arg VER=2` (hashes masked;
/// HEALTHCHECK has Docker 25+'s StartInterval field).
const DOCKER_HISTORY: &[(&str, bool)] = &[
    ("/bin/sh -c #(nop)  ARG VER=1", true),
    ("/bin/sh -c #(nop)  ENV APP=/app GREETING=hi there", true),
    ("/bin/sh -c #(nop)  LABEL a=b c=d e", true),
    ("/bin/sh -c #(nop) WORKDIR /app", false),
    ("/bin/sh -c #(nop) COPY file:# in . ", false),
    ("/bin/sh -c #(nop) COPY dir:# in /ctx/ ", false),
    ("|1 VER=2 /bin/sh -c echo $VER $GREETING > out.txt && touch /app/made", false),
    ("/bin/sh -c #(nop) ADD dir:# in /sub2 ", false),
    ("/bin/sh -c #(nop)  EXPOSE 443/udp 80", true),
    ("/bin/sh -c #(nop)  VOLUME [/data]", true),
    ("/bin/sh -c #(nop)  USER tester", true),
    ("/bin/sh -c #(nop)  STOPSIGNAL SIGTERM", true),
    ("/bin/sh -xc #(nop)  SHELL [/bin/sh -xc]", true),
    // A RUN after VOLUME: Docker's anonymous volume leaves its mount point in the layer.
    ("|1 VER=2 /bin/sh -xc echo shell", false),
    ("/bin/sh -xc #(nop)  HEALTHCHECK &{[\"CMD-SHELL\" \"true\"] \"5s\" \"3s\" \"0s\" \"0s\" '\\x00'}", true),
    ("/bin/sh -xc #(nop)  ONBUILD RUN echo onbuild", true),
    ("/bin/sh -xc #(nop)  MAINTAINER me", true),
    ("/bin/sh -xc #(nop)  ENTRYPOINT [\"/bin/sh\"]", true),
    ("/bin/sh -xc #(nop)  CMD [\"-c\" \"cat out.txt\"]", true),
];

fn mask(text: &str) -> String {
    let mut out = text.to_string();
    for prefix in ["file:", "dir:", "multi:"] {
        if let Some(at) = out.find(prefix) {
            let end = out[at..].find(' ').map_or(out.len(), |e| at + e);
            out.replace_range(at + prefix.len()..end, "#");
        }
    }
    out
}

#[test]
fn history_and_config_match_docker_classic() {
    let mut f = Fixture::new();
    let (r, out) = f.build_with(BIG, |o| {
        o.build_args.insert("VER".into(), Some("2".into()));
    });
    let outcome = r.unwrap_or_else(|e| panic!("{e}\n{out}"));
    let got: Vec<(String, bool)> = f
        .history(&outcome.image_id)
        .into_iter()
        .map(|(t, e)| (mask(&t), e))
        .collect();
    let want: Vec<(String, bool)> = DOCKER_HISTORY
        .iter()
        .map(|(t, e)| (t.to_string(), *e))
        .collect();
    assert_eq!(got, want);
    let image = &f.runner.images[&outcome.image_id];
    // Base layer + WORKDIR + COPY + COPY + RUN + ADD + RUN (the /data mount point), as Docker.
    assert_eq!(image.rootfs.diff_ids.len(), 7);
    let config = image.config.clone().unwrap();
    assert_eq!(config.user.as_deref(), Some("tester"));
    assert_eq!(config.working_dir.as_deref(), Some("/app"));
    assert_eq!(
        config.env.unwrap(),
        vec![
            format!("PATH={DEFAULT_PATH}"),
            "APP=/app".into(),
            "GREETING=hi there".into()
        ]
    );
    assert_eq!(config.cmd.unwrap(), vec!["-c", "cat out.txt"]);
    assert_eq!(config.entrypoint.unwrap(), vec!["/bin/sh"]);
    assert_eq!(config.on_build.unwrap(), vec!["RUN echo onbuild"]);
    assert_eq!(
        config.labels.unwrap().get("c").map(String::as_str),
        Some("d e")
    );
    assert_eq!(
        config
            .exposed_ports
            .unwrap()
            .keys()
            .cloned()
            .collect::<Vec<_>>(),
        vec!["443/udp", "80/tcp"]
    );
    let health = config.healthcheck.unwrap();
    assert_eq!(health.interval, Some(5_000_000_000));
    assert_eq!(health.test.unwrap(), vec!["CMD-SHELL", "true"]);
    assert_eq!(config.shell.unwrap(), vec!["/bin/sh", "-xc"]);
    assert_eq!(image.author.as_deref(), Some("me"));
    // RUN saw the build arg and ENV; files landed where Docker puts them.
    let run = &f.runner.runs[0];
    assert_eq!(
        run.args,
        vec![
            "/bin/sh",
            "-c",
            "echo $VER $GREETING > out.txt && touch /app/made"
        ]
    );
    assert!(run.env.contains(&"VER=2".to_string()));
    assert_eq!(run.workdir, "/app");
    assert_eq!(
        f.runner.read(&outcome.image_id, "app/a.txt").as_deref(),
        Some("hello\n")
    );
    assert_eq!(
        f.runner.read(&outcome.image_id, "ctx/sub/b.txt").as_deref(),
        Some("b\n")
    );
    assert!(f.runner.read(&outcome.image_id, "ctx/skip.log").is_none());
    assert_eq!(
        f.runner.read(&outcome.image_id, "sub2/b.txt").as_deref(),
        Some("b\n")
    );
    assert!(f.runner.read(&outcome.image_id, "app/made").is_some());
    assert!(out.contains("Step 1/20 : FROM bb\n"), "{out}");
    assert!(out.contains("Successfully tagged out:latest"), "{out}");
    assert!(f.runner.live.is_empty(), "step containers left behind");
    assert_eq!(f.runner.tags["out"], outcome.image_id);
}

#[test]
fn unchanged_rebuild_is_all_cache_and_changes_rebuild_from_their_step() {
    let mut f = Fixture::new();
    let df = "FROM bb\nENV X=1\nCOPY a.txt /a.txt\nRUN touch /ran\nCMD [\"sh\"]\n";
    let first = f.build(df);
    assert_eq!(first.cached_steps, 0);
    let runs = f.runner.runs.len();
    let (second, out) = f.build_with(df, |_| {});
    let second = second.unwrap();
    assert_eq!(second.image_id, first.image_id);
    assert_eq!(second.executed_steps, 0);
    assert_eq!(out.matches(" ---> Using cache").count(), 4, "{out}");
    assert_eq!(f.runner.runs.len(), runs, "cached RUN must not run");
    std::fs::write(f.dir.path().join("a.txt"), "changed\n").unwrap();
    let third = f.build(df);
    assert_ne!(third.image_id, first.image_id);
    assert_eq!((third.cached_steps, third.executed_steps), (1, 3));
    let (nocache, _) = f.build_with(df, |o| o.no_cache = true);
    assert_eq!(nocache.unwrap().cached_steps, 0);
}

#[test]
fn build_args_change_the_result_and_history() {
    let mut f = Fixture::new();
    let df = "ARG BASE=bb\nFROM $BASE\nARG MSG=default\nARG UNSET\nRUN echo $MSG\n";
    let a = f.build(df);
    let (b, out) = f.build_with(df, |o| {
        o.build_args.insert("MSG".into(), Some("other".into()));
        o.build_args.insert("NOBODY".into(), Some("x".into()));
        o.build_args.insert("http_proxy".into(), Some("p".into()));
    });
    let b = b.unwrap();
    assert_ne!(a.image_id, b.image_id);
    assert_eq!(
        f.history(&a.image_id).last().unwrap().0,
        "|1 MSG=default /bin/sh -c echo $MSG"
    );
    assert_eq!(
        f.history(&b.image_id).last().unwrap().0,
        "|1 MSG=other /bin/sh -c echo $MSG"
    );
    assert!(f
        .runner
        .runs
        .last()
        .unwrap()
        .env
        .contains(&"http_proxy=p".to_string()));
    assert!(
        out.contains("[Warning] One or more build-args [NOBODY] were not consumed"),
        "{out}"
    );
    assert!(out.contains("Step 1/5 : ARG BASE=bb"), "{out}");
}

#[test]
fn env_overrides_arg_and_meta_args_need_redeclaring() {
    let mut f = Fixture::new();
    let df =
        "ARG V=meta\nFROM bb\nRUN echo a-$V\nARG V\nENV W=${V:-none}\nENV V=env\nRUN echo $V\n";
    let out = f.build(df);
    let rows = f.history(&out.image_id);
    assert_eq!(rows[0].0, "/bin/sh -c echo a-$V");
    assert_eq!(rows[2].0, "/bin/sh -c #(nop)  ENV W=meta");
    // ENV shadows the ARG, so no `|1 V=…` prefix.
    assert_eq!(rows[4].0, "/bin/sh -c echo $V");
}

#[test]
fn multi_stage_copy_from_and_target() {
    let mut f = Fixture::new();
    let df = "FROM bb AS builder\nRUN touch /built\nFROM bb\nCOPY --from=builder /built /out/\nCOPY --from=0 /etc/passwd /p\nFROM scratch AS never\n";
    let (r, out) = f.build_with(df, |o| o.target = Some("never".into()));
    let err = r.unwrap_err().to_string();
    assert!(err.contains("No image was generated"), "{err}\n{out}");
    let full = df.replace("FROM scratch AS never\n", "");
    let (r, out) = f.build_with(&full, |o| o.tags.clear());
    let outcome = r.unwrap_or_else(|e| panic!("{e}\n{out}"));
    assert!(f.runner.read(&outcome.image_id, "out/built").is_some());
    assert!(f
        .runner
        .read(&outcome.image_id, "p")
        .unwrap()
        .contains("tester"));
    let (r, _) = f.build_with(df, |o| o.target = Some("builder".into()));
    let builder = r.unwrap();
    assert!(f.runner.read(&builder.image_id, "built").is_some());
    assert!(f.runner.read(&builder.image_id, "out/built").is_none());
    let (r, _) = f.build_with(df, |o| o.target = Some("nope".into()));
    assert!(r
        .unwrap_err()
        .to_string()
        .contains("failed to reach build target nope"));
    assert!(f.runner.live.is_empty());
}

#[test]
fn failures_name_file_line_and_cause_and_tag_nothing() {
    let mut f = Fixture::new();
    let (r, _) = f.build_with("FROM bb\nENV A=1\nCOPY missing.txt /x\n", |_| {});
    let err = r.unwrap_err().to_string();
    assert!(
        err.starts_with("Dockerfile:3: COPY:") && err.contains("missing.txt"),
        "{err}"
    );
    let (r, _) = f.build_with("FROM bb\nRUN false\n", |_| {});
    assert_eq!(
        r.unwrap_err().to_string(),
        "Dockerfile:2: The command '/bin/sh -c false' returned a non-zero code: 1"
    );
    let (r, _) = f.build_with("FROM bb\nCOPY --from=nostage /a /b\n", |_| {});
    let err = r.unwrap_err().to_string();
    assert!(
        err.contains("Dockerfile:2") && err.contains("nostage"),
        "{err}"
    );
    let (r, _) = f.build_with("FROM bb\nFOOBAR x\n", |_| {});
    assert_eq!(
        r.unwrap_err().to_string(),
        "Dockerfile:2: unknown instruction: FOOBAR"
    );
    let (r, _) = f.build_with("FROM nosuchimage\n", |_| {});
    assert!(r.unwrap_err().to_string().contains("nosuchimage"));
    let (r, _) = f.build_with("FROM bb\nCOPY a.txt sub/b.txt /notdir\n", |_| {});
    assert!(r
        .unwrap_err()
        .to_string()
        .contains("must be a directory and end with a /"));
    let (r, _) = f.build_with("FROM bb\nCOPY skip.log /\n", |_| {});
    assert!(r.unwrap_err().to_string().contains("skip.log"));
    let (r, _) = f.build_with("FROM bb\nADD http://example.com/x /x\n", |_| {});
    assert!(r.unwrap_err().to_string().contains("URL"));
    assert!(!f.runner.tags.contains_key("out"));
    assert!(f.runner.live.is_empty());
}

#[test]
fn onbuild_triggers_run_in_the_child() {
    let mut f = Fixture::new();
    let parent = f.build("FROM bb\nONBUILD RUN touch /triggered\n");
    f.runner.tags.insert("parent".into(), parent.image_id);
    let (r, out) = f.build_with("FROM parent\nENV X=1\n", |_| {});
    let child = r.unwrap();
    assert!(out.contains("# Executing 1 build trigger\n"), "{out}");
    assert!(f.runner.read(&child.image_id, "triggered").is_some());
    assert!(f.runner.images[&child.image_id]
        .config
        .as_ref()
        .unwrap()
        .on_build
        .is_none());
}

#[test]
fn heredocs_chown_chmod_and_labels() {
    let mut f = Fixture::new();
    let df = "FROM bb\nCOPY --chmod=600 <<EOF /greeting\nhello $USERNAME\nEOF\nENV USERNAME=x\nCOPY <<-'RAW' /etc/raw\n\tkeep $USERNAME\n\tRAW\nRUN <<EOF\ntouch /from-heredoc\nEOF\n";
    let (r, out) = f.build_with(df, |o| {
        o.labels.insert("team".into(), "berth".into());
    });
    let outcome = r.unwrap_or_else(|e| panic!("{e}\n{out}"));
    assert_eq!(
        f.runner.read(&outcome.image_id, "greeting").as_deref(),
        Some("hello \n")
    );
    assert_eq!(
        f.runner.read(&outcome.image_id, "etc/raw").as_deref(),
        Some("keep $USERNAME\n")
    );
    assert!(f.runner.read(&outcome.image_id, "from-heredoc").is_some());
    assert_eq!(
        f.runner.runs[0].args,
        vec!["/bin/sh", "-c", "touch /from-heredoc\n"]
    );
    let rows = f.history(&outcome.image_id);
    assert_eq!(
        rows.last().unwrap().0,
        "/bin/sh -c #(nop)  LABEL team=berth"
    );
    assert!(out.contains("LABEL \"team\"='berth'"), "{out}");
}

#[test]
fn entrypoint_resets_inherited_cmd_and_workdir_is_relative() {
    let mut f = Fixture::new();
    let base = f.build("FROM bb\nCMD [\"base\"]\nWORKDIR /a\n");
    f.runner.tags.insert("base".into(), base.image_id);
    let out = f.build("FROM base\nWORKDIR b/../c\nENTRYPOINT echo hi\n");
    let config = f.runner.images[&out.image_id].config.clone().unwrap();
    assert_eq!(config.cmd, None);
    assert_eq!(config.entrypoint.unwrap(), vec!["/bin/sh", "-c", "echo hi"]);
    assert_eq!(config.working_dir.as_deref(), Some("/a/c"));
}

/// `FROM bb` and `n` metadata-only lines (labels that accumulate, env and exposed ports that
/// cycle through a few names, commands, users).
fn metadata_dockerfile(n: usize) -> String {
    let mut df = String::from("FROM bb\n");
    for i in 0..n {
        let line = match i % 5 {
            0 => format!("LABEL l{i}=v{i}\n"),
            1 => format!("ENV K{}=v{i}\n", i % 8),
            2 => format!("EXPOSE {}\n", 1000 + i % 100),
            3 => format!("CMD [\"echo\", \"{i}\"]\n"),
            _ => format!("USER u{}\n", i % 5),
        };
        df.push_str(&line);
    }
    df
}

#[test]
fn a_run_of_metadata_steps_writes_one_image_and_costs_the_same_per_step_at_10k_as_at_1k() {
    let mut f = Fixture::new();
    let cache_dir = tempfile::tempdir().unwrap();
    // The on-disk cache, as the CLI uses it: its index must not be rewritten per step.
    f.cache = BuildCache::open(cache_dir.path()).unwrap();
    let mut per_step = Vec::new();
    for n in [1_000usize, 10_000] {
        let before = f.runner.images.len();
        let df = metadata_dockerfile(n);
        let started = std::time::Instant::now();
        let outcome = f.build(&df);
        per_step.push(started.elapsed().as_secs_f64() / n as f64);
        // The 10k file starts with the 1k one: those steps come from the cache.
        assert_eq!(outcome.executed_steps + outcome.cached_steps, n);
        assert_eq!(
            f.runner.images.len(),
            before + 1,
            "one image per run of steps"
        );
        let image = &f.runner.images[&outcome.image_id];
        assert_eq!(image.history.len(), 1 + n, "a history row per step");
        let config = image.config.clone().unwrap_or_default();
        let labels = config.labels.unwrap_or_default();
        assert_eq!(labels.len(), n.div_ceil(5));
        assert_eq!(config.user.as_deref(), Some("u4"));
    }
    // Linear work: the per-step cost stays flat (a quadratic builder is ~10x at 10k). The
    // bound is loose against load noise, never a wall-clock limit.
    assert!(
        per_step[1] < per_step[0] * 4.0,
        "per-step cost grew from {:.1} us at 1k to {:.1} us at 10k",
        per_step[0] * 1e6,
        per_step[1] * 1e6
    );
    // A rebuild takes every step from the cache and writes nothing.
    let before = f.runner.images.len();
    let again = f.build(&metadata_dockerfile(10_000));
    assert_eq!(again.executed_steps, 0);
    assert_eq!(f.runner.images.len(), before);
}
