//! The build itself, as Docker's classic builder does it: meta args, then each stage from its
//! `FROM` (an image, a previous stage, or `scratch`, with the base's `ONBUILD` triggers), then
//! each instruction: variables expanded with the stage's ENV and ARGs, a cache probe keyed on the
//! parent image and the resulting container config, and on a miss a commit — a layer for
//! `RUN`/`COPY`/`ADD`/`WORKDIR` when they change the filesystem, an `empty_layer` history row
//! otherwise. Prints `Step N/M : …`, ` ---> <id>` like `docker build`.
use crate::args::{BuildArgOptions, BuildArgs};
use crate::cache::{step_key, BuildCache};
use crate::context::{BuildContext, Source, SourceTree};
use crate::copy::{copy_source, write_file, CopyOptions};
use crate::error::{BuildError, Result};
use crate::history::{
    copy_comment, go_list, go_quote_list, healthcheck_comment, multi_source_hash, nop_cmd,
    nop_cmd_string, run_cmd_with_args,
};
use crate::instruction::{
    parse_instruction, Command, CommandLine, CopyArgs, HealthArgs, Instruction,
};
use crate::lex::{expand_vars_only, process_word, process_words, Vars};
use crate::runner::{ProcessSpec, StepContainer, StepRunner};
use berth_image::{ContainerConfig, HealthConfig, History, ImageConfig, RootFs};
use std::collections::BTreeMap;
use std::io::Write;

mod commit;
mod fs_steps;
mod stages;
use stages::plan;

/// Docker's default `PATH` for Linux images.
use berth_common::process::DEFAULT_PATH;

/// What to build and how.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// How errors name the Dockerfile (`Dockerfile`, or the `-f` path).
    pub dockerfile_name: String,
    pub dockerfile_text: String,
    /// `-t` references, as given.
    pub tags: Vec<String>,
    pub build_args: BuildArgOptions,
    pub target: Option<String>,
    pub no_cache: bool,
    /// `--label`s, applied as a final `LABEL` step like Docker.
    pub labels: BTreeMap<String, String>,
}

/// A finished build.
#[derive(Debug, Clone, PartialEq)]
pub struct BuildOutcome {
    /// `sha256:<hex>`.
    pub image_id: String,
    /// Steps answered from the cache / steps that ran.
    pub cached_steps: usize,
    pub executed_steps: usize,
}

/// `sha256:0123…` → `0123456789ab`.
pub fn short_id(id: &str) -> &str {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    &hex[..hex.len().min(12)]
}

/// One stage's progress.
#[derive(Debug, Clone)]
struct Stage {
    name: Option<String>,
    /// None until the first commit of a `FROM scratch` stage.
    image_id: Option<String>,
    /// The config of `image_id`; None when a cache hit moved the stage onto an image whose
    /// config has not been read yet (read on demand: a cached step costs the same however
    /// many layers and history rows the image has).
    image: Option<ImageConfig>,
    config: ContainerConfig,
    cmd_set: bool,
    maintainer: Option<String>,
    /// Metadata-only steps taken in memory since `image_id` and not yet written: `image` holds
    /// their history rows. Written once, by [`Builder::flush_pending`], when the run of
    /// metadata steps ends, so a long run of `ENV`/`LABEL`/… costs one image write and one
    /// cache write instead of one per step (each of which copies the whole, growing history).
    pending: Option<PendingMeta>,
}

/// The metadata steps taken in memory (see [`Stage::pending`]).
#[derive(Debug, Clone)]
struct PendingMeta {
    /// Cache key of the last step: chained from the key of the first, which covers the parent
    /// image and the stage's whole config; each later step adds its instruction text.
    key: String,
    /// Keys of the earlier steps of the run (recorded as known, so a rebuild reports them
    /// from the cache too).
    earlier_keys: Vec<String>,
    /// The last step's `#(nop)` command (its image's container config).
    cmd: Vec<String>,
    created: String,
}

/// Cache value of a metadata step a build took in memory (it names no image of its own).
const IN_MEMORY_STEP: &str = "in-memory";

/// Whether the instruction only changes the image's config (no container, no layer).
fn is_metadata_only(command: &Command) -> bool {
    !matches!(
        command,
        Command::From { .. }
            | Command::Run { .. }
            | Command::Copy(_)
            | Command::Add(_)
            | Command::Workdir(_)
    )
}

impl Stage {
    fn shell(&self) -> Vec<String> {
        self.config
            .shell
            .clone()
            .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()])
    }
}

/// A stage's instructions.
struct StagePlan {
    from: Instruction,
    commands: Vec<Instruction>,
}

/// The builder: state across stages, the runner, the cache and the output.
pub struct Builder<'a> {
    runner: &'a mut dyn StepRunner,
    cache: &'a mut BuildCache,
    context: &'a BuildContext,
    out: &'a mut dyn Write,
    options: &'a BuildOptions,
    escape: char,
    args: BuildArgs,
    stages: Vec<Stage>,
    cached_steps: usize,
    executed_steps: usize,
}

/// Builds `options.dockerfile_text` in `context`; returns the final image. Tags it with
/// `options.tags` only when every step succeeded.
pub fn build(
    runner: &mut dyn StepRunner,
    cache: &mut BuildCache,
    context: &BuildContext,
    options: &BuildOptions,
    out: &mut dyn Write,
) -> Result<BuildOutcome> {
    let (escape, meta, mut stage_plans) = plan(options)?;
    if let Some(target) = &options.target {
        let target = target.to_ascii_lowercase();
        let at = stage_plans
            .iter()
            .position(|s| matches!(&s.from.command, Command::From { stage_name: Some(n), .. } if *n == target))
            .ok_or_else(|| BuildError::Options(format!("failed to reach build target {target} in Dockerfile")))?;
        stage_plans.truncate(at + 1);
    }
    if !options.labels.is_empty() {
        if let Some(last) = stage_plans.last_mut() {
            let text = options
                .labels
                .iter()
                .map(|(k, v)| format!("{}='{v}'", crate::history::go_quote(k)))
                .collect::<Vec<_>>()
                .join(" ");
            last.commands.push(Instruction {
                command: Command::Label(
                    options
                        .labels
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                ),
                line: 0,
                original: format!("LABEL {text}"),
            });
        }
    }
    let total = meta.len()
        + stage_plans
            .iter()
            .map(|s| 1 + s.commands.len())
            .sum::<usize>();
    let mut builder = Builder {
        runner,
        cache,
        context,
        out,
        options,
        escape,
        args: BuildArgs::new(options.build_args.clone()),
        stages: Vec::new(),
        cached_steps: 0,
        executed_steps: 0,
    };
    let mut step = 0;
    for instruction in &meta {
        step += 1;
        builder.print_step(step, total, instruction)?;
        if let Command::Arg(pairs) = &instruction.command {
            for (name, default) in pairs {
                let vars: Vars = builder.args.meta_values().into_iter().collect();
                let default = match default {
                    Some(d) => Some(builder.expand(instruction, d, &vars)?),
                    None => None,
                };
                builder.args.add_meta_arg(name, default);
            }
        }
    }
    for stage_plan in &stage_plans {
        step += 1;
        builder.print_step(step, total, &stage_plan.from)?;
        builder.begin_stage(&stage_plan.from)?;
        for (i, instruction) in stage_plan.commands.iter().enumerate() {
            step += 1;
            builder.print_step(step, total, instruction)?;
            builder.dispatch(instruction)?;
            // A run of metadata steps is written once, at its last step.
            let next_is_metadata = stage_plan
                .commands
                .get(i + 1)
                .is_some_and(|n| is_metadata_only(&n.command));
            if !next_is_metadata {
                builder.flush_pending()?;
            }
            builder.print_image()?;
        }
        builder.flush_pending()?;
    }
    let unconsumed = builder.args.unconsumed();
    if !unconsumed.is_empty() {
        writeln!(
            builder.out,
            "[Warning] One or more build-args [{}] were not consumed",
            unconsumed.join(" ")
        )
        .ok();
    }
    let stage = builder
        .stages
        .last()
        .cloned()
        .ok_or_else(|| BuildError::Options("no build stage".into()))?;
    let image_id = match stage.image_id {
        Some(id) => id,
        // `FROM scratch` and nothing else: Docker refuses too.
        None => {
            return Err(BuildError::Options(
                "No image was generated. Is your Dockerfile empty?".into(),
            ))
        }
    };
    writeln!(builder.out, "Successfully built {}", short_id(&image_id)).ok();
    for tag in &options.tags {
        builder.runner.tag(&image_id, tag)?;
        writeln!(builder.out, "Successfully tagged {}", familiar_tag(tag)).ok();
    }
    Ok(BuildOutcome {
        image_id,
        cached_steps: builder.cached_steps,
        executed_steps: builder.executed_steps,
    })
}

/// `name` → `name:latest` (as `Successfully tagged` prints it).
fn familiar_tag(tag: &str) -> String {
    let last = tag.rsplit('/').next().unwrap_or(tag);
    if last.contains(':') || tag.contains('@') {
        tag.to_string()
    } else {
        format!("{tag}:latest")
    }
}

impl Builder<'_> {
    fn print_step(&mut self, step: usize, total: usize, instruction: &Instruction) -> Result<()> {
        writeln!(self.out, "Step {step}/{total} : {}", instruction.original).ok();
        Ok(())
    }

    fn print_image(&mut self) -> Result<()> {
        if self.stage().pending.is_some() {
            return Ok(());
        }
        let id = self.stage().image_id.clone().unwrap_or_default();
        writeln!(self.out, " ---> {}", short_id(&id)).ok();
        Ok(())
    }

    fn stage(&self) -> &Stage {
        // begin_stage always pushes before dispatch runs.
        &self.stages[self.stages.len() - 1]
    }

    fn stage_mut(&mut self) -> &mut Stage {
        let last = self.stages.len() - 1;
        &mut self.stages[last]
    }

    fn file(&self) -> String {
        self.options.dockerfile_name.clone()
    }

    fn step_error(&self, instruction: &Instruction, message: impl Into<String>) -> BuildError {
        BuildError::Step {
            file: self.file(),
            line: instruction.line,
            instruction: instruction.keyword().to_string(),
            message: message.into(),
        }
    }

    fn expand(&self, instruction: &Instruction, word: &str, vars: &Vars) -> Result<String> {
        process_word(word, vars, self.escape)
            .map_err(|e| self.step_error(instruction, e.to_string()))
    }

    /// Variables visible to expansion: the stage's ENV, then ARGs ENV does not shadow.
    fn vars(&self) -> Vars {
        let mut vars = Vars::new();
        for (k, v) in self.args.in_effect() {
            vars.insert(k, v);
        }
        for entry in self.stage().config.env.iter().flatten() {
            if let Some((k, v)) = entry.split_once('=') {
                vars.insert(k.to_string(), v.to_string());
            }
        }
        vars
    }

    fn dispatch(&mut self, instruction: &Instruction) -> Result<()> {
        if !is_metadata_only(&instruction.command) {
            // Containers and cache keys of these steps need the stage's image written.
            self.flush_pending()?;
        }
        let vars = self.vars();
        match &instruction.command {
            Command::From { .. } => Err(self.step_error(instruction, "FROM inside a stage")),
            Command::Run { cmd, heredocs } => self.run(instruction, cmd, heredocs),
            Command::Copy(args) => self.copy(instruction, args, false),
            Command::Add(args) => self.copy(instruction, args, true),
            Command::Cmd(cmd) => {
                let cmd = self.command_words(cmd);
                let stage = self.stage_mut();
                stage.config.cmd = Some(cmd.clone());
                stage.cmd_set = true;
                self.commit_metadata(instruction, &format!("CMD {}", go_quote_list(&cmd)))
            }
            Command::Entrypoint(cmd) => {
                let cmd = self.command_words(cmd);
                let stage = self.stage_mut();
                stage.config.entrypoint = Some(cmd.clone());
                if !stage.cmd_set {
                    stage.config.cmd = None;
                }
                self.commit_metadata(instruction, &format!("ENTRYPOINT {}", go_quote_list(&cmd)))
            }
            Command::Env(pairs) => {
                let mut comment = String::from("ENV");
                let mut expanded = Vec::new();
                for (k, v) in pairs {
                    let k = self.expand(instruction, k, &vars)?;
                    let v = self.expand(instruction, v, &vars)?;
                    comment.push_str(&format!(" {k}={v}"));
                    expanded.push((k, v));
                }
                let env = self.stage_mut().config.env.get_or_insert_with(Vec::new);
                for (k, v) in expanded {
                    let entry = format!("{k}={v}");
                    match env
                        .iter_mut()
                        .find(|e| e.split_once('=').map(|(ek, _)| ek) == Some(k.as_str()))
                    {
                        Some(slot) => *slot = entry,
                        None => env.push(entry),
                    }
                }
                self.commit_metadata(instruction, &comment)
            }
            Command::Label(pairs) => {
                let mut comment = String::from("LABEL");
                let mut expanded = Vec::new();
                for (k, v) in pairs {
                    // `--label` values arrive literal (line 0); Dockerfile ones are words.
                    let (k, v) = if instruction.line == 0 {
                        (k.clone(), v.clone())
                    } else {
                        (
                            self.expand(instruction, k, &vars)?,
                            self.expand(instruction, v, &vars)?,
                        )
                    };
                    comment.push_str(&format!(" {k}={v}"));
                    expanded.push((k, v));
                }
                let labels = self
                    .stage_mut()
                    .config
                    .labels
                    .get_or_insert_with(BTreeMap::new);
                labels.extend(expanded);
                self.commit_metadata(instruction, &comment)
            }
            Command::Arg(pairs) => {
                let mut comment = String::from("ARG");
                for (name, default) in pairs {
                    let vars = self.vars();
                    let default = match default {
                        Some(d) => Some(self.expand(instruction, d, &vars)?),
                        None => None,
                    };
                    comment.push(' ');
                    comment.push_str(name);
                    if let Some(d) = &default {
                        comment.push('=');
                        comment.push_str(d);
                    }
                    self.args.add_arg(name, default);
                }
                self.commit_metadata(instruction, &comment)
            }
            Command::Workdir(path) => {
                let requested = self.expand(instruction, path, &vars)?;
                let current = self.stage().config.working_dir.clone().unwrap_or_default();
                let dir = if requested.starts_with('/') {
                    crate::dockerignore::clean_path(&requested)
                } else {
                    crate::dockerignore::clean_path(&format!("/{current}/{requested}"))
                };
                self.stage_mut().config.working_dir = Some(dir.clone());
                self.workdir(instruction, &dir)
            }
            Command::User(user) => {
                let user = self.expand(instruction, user, &vars)?;
                self.stage_mut().config.user = Some(user.clone());
                self.commit_metadata(instruction, &format!("USER {user}"))
            }
            Command::Expose(ports) => {
                let mut words = Vec::new();
                for p in ports {
                    words.extend(
                        process_words(p, &vars, self.escape)
                            .map_err(|e| self.step_error(instruction, e.to_string()))?,
                    );
                }
                let mut keys = Vec::new();
                for w in &words {
                    keys.extend(parse_port_spec(w).map_err(|e| self.step_error(instruction, e))?);
                }
                let exposed = self
                    .stage_mut()
                    .config
                    .exposed_ports
                    .get_or_insert_with(BTreeMap::new);
                for k in keys {
                    exposed.insert(k, serde_json::json!({}));
                }
                words.sort();
                self.commit_metadata(instruction, &format!("EXPOSE {}", words.join(" ")))
            }
            Command::Volume(volumes) => {
                let mut expanded = Vec::new();
                for v in volumes {
                    let v = self.expand(instruction, v, &vars)?;
                    if v.trim().is_empty() {
                        return Err(self.step_error(
                            instruction,
                            "VOLUME specified can not be an empty string",
                        ));
                    }
                    expanded.push(v);
                }
                let map = self
                    .stage_mut()
                    .config
                    .volumes
                    .get_or_insert_with(BTreeMap::new);
                for v in &expanded {
                    map.insert(v.clone(), serde_json::json!({}));
                }
                self.commit_metadata(instruction, &format!("VOLUME {}", go_list(&expanded)))
            }
            Command::StopSignal(signal) => {
                let signal = self.expand(instruction, signal, &vars)?;
                if !valid_signal(&signal) {
                    return Err(self.step_error(instruction, format!("Invalid signal: {signal}")));
                }
                self.stage_mut().config.stop_signal = Some(signal.clone());
                self.commit_metadata(instruction, &format!("STOPSIGNAL {signal}"))
            }
            Command::Shell(shell) => {
                self.stage_mut().config.shell = Some(shell.clone());
                self.commit_metadata(instruction, &format!("SHELL {}", go_list(shell)))
            }
            Command::Healthcheck(health) => {
                let args = health.clone().unwrap_or(HealthArgs {
                    test: vec!["NONE".into()],
                    ..Default::default()
                });
                if let Some(old) = self
                    .stage()
                    .config
                    .healthcheck
                    .as_ref()
                    .and_then(|h| h.test.clone())
                {
                    if old.first().map(String::as_str) != Some("NONE") {
                        writeln!(
                            self.out,
                            "Note: overriding previous HEALTHCHECK: {}",
                            go_list(&old)
                        )
                        .ok();
                    }
                }
                let nonzero = |v: i64| if v == 0 { None } else { Some(v) };
                self.stage_mut().config.healthcheck = Some(HealthConfig {
                    test: Some(args.test.clone()),
                    interval: nonzero(args.interval),
                    timeout: nonzero(args.timeout),
                    start_period: nonzero(args.start_period),
                    start_interval: nonzero(args.start_interval),
                    retries: nonzero(args.retries),
                });
                self.commit_metadata(instruction, &healthcheck_comment(&args))
            }
            Command::OnBuild(trigger) => {
                self.stage_mut()
                    .config
                    .on_build
                    .get_or_insert_with(Vec::new)
                    .push(trigger.clone());
                self.commit_metadata(instruction, &format!("ONBUILD {trigger}"))
            }
            Command::Maintainer(who) => {
                self.stage_mut().maintainer = Some(who.clone());
                self.commit_metadata(instruction, &format!("MAINTAINER {who}"))
            }
        }
    }

    /// Exec form as is; shell form through the stage's `SHELL`.
    fn command_words(&self, cmd: &CommandLine) -> Vec<String> {
        match cmd {
            CommandLine::Exec(words) => words.clone(),
            CommandLine::Shell(line) => {
                let mut words = self.stage().shell();
                words.push(line.clone());
                words
            }
        }
    }
}

/// `80`, `80/udp`, `8000-8002/tcp` → `80/tcp`, … (Docker's nat.ParsePortSpecs for EXPOSE).
fn parse_port_spec(spec: &str) -> std::result::Result<Vec<String>, String> {
    let (ports, proto) = match spec.split_once('/') {
        Some((p, proto)) => (p, proto.to_ascii_lowercase()),
        None => (spec, "tcp".to_string()),
    };
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!("invalid proto: {proto}"));
    }
    let bad = || format!("invalid containerPort: {ports}");
    let (lo, hi) = match ports.split_once('-') {
        Some((a, b)) => (
            a.parse::<u16>().map_err(|_| bad())?,
            b.parse::<u16>().map_err(|_| bad())?,
        ),
        None => {
            let p = ports.parse::<u16>().map_err(|_| bad())?;
            (p, p)
        }
    };
    if hi < lo {
        return Err(bad());
    }
    Ok((lo..=hi).map(|p| format!("{p}/{proto}")).collect())
}

fn valid_signal(signal: &str) -> bool {
    if let Ok(n) = signal.parse::<u32>() {
        return (1..=64).contains(&n);
    }
    let name = signal.strip_prefix("SIG").unwrap_or(signal);
    const NAMES: &[&str] = &[
        "ABRT", "ALRM", "BUS", "CHLD", "CLD", "CONT", "FPE", "HUP", "ILL", "INT", "IO", "IOT",
        "KILL", "PIPE", "POLL", "PROF", "PWR", "QUIT", "SEGV", "STKFLT", "STOP", "SYS", "TERM",
        "TRAP", "TSTP", "TTIN", "TTOU", "URG", "USR1", "USR2", "VTALRM", "WINCH", "XCPU", "XFSZ",
    ];
    NAMES.contains(&name) || name.starts_with("RTMIN") || name.starts_with("RTMAX")
}

#[cfg(test)]
mod tests;
