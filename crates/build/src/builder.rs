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

/// Parses and validates the whole Dockerfile (every line typed before anything runs).
fn plan(options: &BuildOptions) -> Result<(char, Vec<Instruction>, Vec<StagePlan>)> {
    let file = options.dockerfile_name.as_str();
    let parsed = crate::parser::parse(&options.dockerfile_text, file)?;
    let mut meta = Vec::new();
    let mut stages: Vec<StagePlan> = Vec::new();
    for raw in &parsed.instructions {
        let instruction = parse_instruction(raw, file, parsed.escape)?;
        match (&instruction.command, stages.last_mut()) {
            (Command::From { .. }, _) => stages.push(StagePlan {
                from: instruction,
                commands: Vec::new(),
            }),
            (_, Some(stage)) => stage.commands.push(instruction),
            (Command::Arg(_), None) => meta.push(instruction),
            (_, None) => {
                return Err(BuildError::Syntax {
                    file: file.to_string(),
                    line: instruction.line,
                    message: "no build stage in current context".into(),
                })
            }
        }
    }
    if stages.is_empty() {
        return Err(BuildError::Syntax {
            file: file.to_string(),
            line: parsed.instructions.last().map_or(1, |i| i.line),
            message: "file with no instructions".into(),
        });
    }
    Ok((parsed.escape, meta, stages))
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

    fn begin_stage(&mut self, from: &Instruction) -> Result<()> {
        let Command::From {
            image, stage_name, ..
        } = &from.command
        else {
            return Err(self.step_error(from, "not a FROM instruction"));
        };
        let meta_vars: Vars = self.args.meta_values().into_iter().collect();
        let reference = process_word(image, &meta_vars, self.escape)
            .map_err(|e| self.step_error(from, e.to_string()))?;
        if reference.is_empty() {
            return Err(self.step_error(from, format!("base name ({image}) should not be blank")));
        }
        if let Some(name) = stage_name {
            if self
                .stages
                .iter()
                .any(|s| s.name.as_deref() == Some(name.as_str()))
            {
                return Err(self.step_error(from, format!("duplicate name {name}")));
            }
        }
        self.args.begin_stage();
        let lowered = reference.to_ascii_lowercase();
        let (image_id, image) = if lowered == "scratch" {
            let image = ImageConfig {
                architecture: berth_image::import::host_architecture().to_string(),
                os: "linux".into(),
                rootfs: RootFs::default(),
                ..Default::default()
            };
            (None, image)
        } else if let Some(index) = self
            .stages
            .iter()
            .position(|s| s.name.as_deref() == Some(lowered.as_str()))
        {
            let image = self.image_of_stage(index)?;
            (self.stages[index].image_id.clone(), image)
        } else {
            let base = self
                .runner
                .resolve_image(&reference)
                .map_err(|e| self.step_error(from, e.to_string()))?;
            (Some(base.id), base.config)
        };
        let mut config = image.config.clone().unwrap_or_default();
        config.image = None;
        let env = config.env.get_or_insert_with(Vec::new);
        if !env.iter().any(|e| e.starts_with("PATH=")) {
            env.push(format!("PATH={DEFAULT_PATH}"));
        }
        let triggers = config.on_build.take().unwrap_or_default();
        self.stages.push(Stage {
            name: stage_name.clone(),
            image_id,
            image: Some(image),
            config,
            cmd_set: false,
            maintainer: None,
            pending: None,
        });
        self.print_image()?;
        if !triggers.is_empty() {
            let plural = if triggers.len() > 1 { "s" } else { "" };
            writeln!(
                self.out,
                "# Executing {} build trigger{plural}",
                triggers.len()
            )
            .ok();
            for trigger in triggers {
                let parsed = crate::parser::parse(&trigger, &self.file()).map_err(|e| {
                    self.step_error(from, format!("ONBUILD trigger {trigger:?}: {e}"))
                })?;
                for raw in &parsed.instructions {
                    let mut instruction = parse_instruction(raw, &self.file(), self.escape)?;
                    instruction.line = from.line;
                    self.dispatch(&instruction)?;
                }
            }
            self.flush_pending()?;
        }
        Ok(())
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

    /// The image config a step produces, given its container config and layer state.
    /// The config of stage `index`'s image, read now if a cache hit left it unread.
    fn image_of_stage(&mut self, index: usize) -> Result<ImageConfig> {
        if let Some(image) = &self.stages[index].image {
            return Ok(image.clone());
        }
        let image = match self.stages[index].image_id.clone() {
            Some(id) => self.runner.resolve_image(&id)?.config,
            None => ImageConfig::default(),
        };
        self.stages[index].image = Some(image.clone());
        Ok(image)
    }

    fn child_image(
        &self,
        base: &ImageConfig,
        container_config: &ContainerConfig,
        created_by: &str,
        empty_layer: bool,
        container: Option<&str>,
    ) -> ImageConfig {
        let stage = self.stage();
        let now = berth_common::time::now_rfc3339();
        let mut config = stage.config.clone();
        config.image = Some(stage.image_id.clone().unwrap_or_default());
        let mut history = base.history.clone();
        history.push(History {
            created: Some(now.clone()),
            author: stage.maintainer.clone(),
            created_by: Some(created_by.to_string()),
            comment: None,
            empty_layer,
        });
        ImageConfig {
            architecture: base.architecture.clone(),
            variant: base.variant.clone(),
            os: if base.os.is_empty() {
                "linux".into()
            } else {
                base.os.clone()
            },
            os_version: base.os_version.clone(),
            author: stage.maintainer.clone(),
            config: Some(config),
            container: container.map(str::to_string),
            container_config: Some(container_config.clone()),
            created: Some(now),
            rootfs: base.rootfs.clone(),
            history,
            ..Default::default()
        }
    }

    /// Container config recorded for a step: the stage's config with `Cmd` = `cmd` and `Image`
    /// the parent (what Docker compares when probing its cache).
    fn probe_config(&self, cmd: Vec<String>) -> ContainerConfig {
        let mut config = self.stage().config.clone();
        config.cmd = Some(cmd);
        config.image = Some(self.stage().image_id.clone().unwrap_or_default());
        config
    }

    fn cache_key(&self, probe: &ContainerConfig, extra: &[u8]) -> String {
        let stage = self.stage();
        let json = serde_json::to_vec(probe).unwrap_or_default();
        step_key(
            stage.image_id.as_deref().unwrap_or("scratch"),
            &[
                &json,
                stage.maintainer.as_deref().unwrap_or("").as_bytes(),
                extra,
            ],
        )
    }

    /// Looks the step up in the cache; on a hit moves the stage onto the cached image.
    ///
    /// The key covers the parent image and the stage's whole container config, and a step's
    /// image takes its container config from exactly that state, so the stage's config stays
    /// as it is and the cached image's config (which grows with every layer and history row)
    /// is not read: a cached step costs the same at step 300 as at step 3.
    fn probe_cache(&mut self, key: &str) -> Result<bool> {
        if self.options.no_cache {
            return Ok(false);
        }
        let Some(id) = self.cache.get(key).map(str::to_string) else {
            return Ok(false);
        };
        if !self.runner.image_exists(&id) {
            return Ok(false);
        }
        writeln!(self.out, " ---> Using cache").ok();
        let stage = self.stage_mut();
        stage.image = None;
        stage.image_id = Some(id);
        self.cached_steps += 1;
        Ok(true)
    }

    fn record(&mut self, key: &str, image_id: String, image: ImageConfig) -> Result<()> {
        self.cache.put(key, &image_id)?;
        let stage = self.stage_mut();
        stage.image = Some(image);
        stage.image_id = Some(image_id);
        self.executed_steps += 1;
        Ok(())
    }

    /// A metadata-only step (`ENV`, `CMD`, …): an `empty_layer` history row, kept in memory
    /// until the run of metadata steps ends ([`Builder::flush_pending`]). Costs the same at
    /// step 10,000 as at step 10: no copy of the config or history, no write.
    fn commit_metadata(&mut self, _instruction: &Instruction, comment: &str) -> Result<()> {
        let cmd = nop_cmd(&self.stage().shell(), comment);
        let key = match &self.stage().pending {
            Some(p) => step_key(
                &p.key,
                &[
                    comment.as_bytes(),
                    self.stage().maintainer.as_deref().unwrap_or("").as_bytes(),
                ],
            ),
            None => {
                let probe = self.probe_config(cmd.clone());
                self.cache_key(&probe, b"")
            }
        };
        // A written image for exactly this state: move onto it.
        if self.probe_cache(&key)? {
            self.stage_mut().pending = None;
            return Ok(());
        }
        if !self.options.no_cache && self.cache.get(&key).is_some() {
            // A step a previous build took in memory on the way to a written image.
            writeln!(self.out, " ---> Using cache").ok();
            self.cached_steps += 1;
        } else {
            self.executed_steps += 1;
        }
        let index = self.stages.len() - 1;
        if self.stages[index].image.is_none() {
            let image = self.image_of_stage(index)?;
            self.stages[index].image = Some(image);
        }
        let now = berth_common::time::now_rfc3339();
        let stage = self.stage_mut();
        let maintainer = stage.maintainer.clone();
        if let Some(image) = stage.image.as_mut() {
            image.history.push(History {
                created: Some(now.clone()),
                author: maintainer,
                created_by: Some(cmd.join(" ")),
                comment: None,
                empty_layer: true,
            });
        }
        let earlier_keys = match stage.pending.take() {
            Some(mut p) => {
                p.earlier_keys.push(p.key);
                p.earlier_keys
            }
            None => Vec::new(),
        };
        stage.pending = Some(PendingMeta {
            key,
            earlier_keys,
            cmd,
            created: now,
        });
        Ok(())
    }

    /// Writes the image of the metadata steps taken in memory (one image, one cache write),
    /// or moves onto the image a previous build wrote for the same state.
    fn flush_pending(&mut self) -> Result<()> {
        let Some(pending) = self.stage_mut().pending.take() else {
            return Ok(());
        };
        let index = self.stages.len() - 1;
        let mut known = false;
        if !self.options.no_cache {
            if let Some(id) = self.cache.get(&pending.key).map(str::to_string) {
                if self.runner.image_exists(&id) {
                    let stage = self.stage_mut();
                    stage.image = None;
                    stage.image_id = Some(id);
                    known = true;
                }
            }
        }
        if !known {
            let probe = self.probe_config(pending.cmd.clone());
            let stage = &self.stages[index];
            let accumulated = stage.image.clone().unwrap_or_default();
            let mut image =
                self.child_image(&accumulated, &probe, &pending.cmd.join(" "), true, None);
            // The rows are the accumulated ones (child_image appended one more: drop it).
            image.history.pop();
            image.created = Some(pending.created.clone());
            if let Some(last) = image.history.last_mut() {
                last.created = Some(pending.created.clone());
            }
            let parent = stage.image_id.clone();
            let id = self.runner.add_image(&image, parent.as_deref())?;
            let stage = self.stage_mut();
            stage.image = Some(image);
            stage.image_id = Some(id);
        }
        let id = self.stage().image_id.clone().unwrap_or_default();
        let mut entries: Vec<(String, String)> = pending
            .earlier_keys
            .into_iter()
            .map(|k| (k, IN_MEMORY_STEP.to_string()))
            .collect();
        entries.push((pending.key, id));
        self.cache.put_all(&entries)?;
        Ok(())
    }

    /// Commits a step container: a layer when it changed something, else an empty-layer row.
    fn commit_container(
        &mut self,
        instruction: &Instruction,
        container: &StepContainer,
        probe: &ContainerConfig,
        key: &str,
    ) -> Result<()> {
        let created_by = probe.cmd.clone().unwrap_or_default().join(" ");
        let parent = self.stage().image_id.clone();
        let changed = self.runner.has_changes(container)?;
        let base = self.image_of_stage(self.stages.len() - 1)?;
        let image = self.child_image(&base, probe, &created_by, !changed, Some(&container.id));
        let id = if changed {
            self.runner
                .commit_layer(container, &image, parent.as_deref())
        } else {
            self.runner.add_image(&image, parent.as_deref())
        }
        .map_err(|e| self.step_error(instruction, e.to_string()))?;
        // The stored config has the new layer's DiffID; read it back for the next step.
        let stored = if changed {
            self.runner.resolve_image(&id)?.config
        } else {
            image
        };
        self.record(key, id, stored)
    }

    /// Runs `work` in a fresh step container, then commits it; the container is removed
    /// whatever happens.
    fn with_container(
        &mut self,
        instruction: &Instruction,
        probe: &ContainerConfig,
        key: &str,
        announce_removal: bool,
        work: &mut dyn FnMut(&mut Self, &StepContainer) -> Result<()>,
    ) -> Result<()> {
        let parent = self.stage().image_id.clone();
        let container = self
            .runner
            .create_container(parent.as_deref())
            .map_err(|e| self.step_error(instruction, e.to_string()))?;
        let result = work(self, &container)
            .and_then(|()| self.commit_container(instruction, &container, probe, key));
        let removed = self.runner.remove_container(&container);
        if result.is_ok() && announce_removal {
            writeln!(
                self.out,
                " ---> Removed intermediate container {}",
                short_id(&container.id)
            )
            .ok();
        }
        result.and(removed)
    }

    fn workdir(&mut self, instruction: &Instruction, dir: &str) -> Result<()> {
        let cmd = nop_cmd_string(&self.stage().shell(), &format!("WORKDIR {dir}"));
        let probe = self.probe_config(cmd);
        let key = self.cache_key(&probe, b"");
        if self.probe_cache(&key)? {
            return Ok(());
        }
        let dir = dir.to_string();
        self.with_container(instruction, &probe, &key, false, &mut |b, c| {
            // Created inside the stage's root by the kernel's in-root resolution.
            berth_inroot::Root::open(&c.rootfs)
                .and_then(|root| root.mkdir_all(std::path::Path::new(&dir), 0o755))
                .map(drop)
                .map_err(|e| b.step_error(instruction, format!("mkdir {dir}: {e}")))
        })
    }

    fn run(
        &mut self,
        instruction: &Instruction,
        cmd: &CommandLine,
        heredocs: &[crate::parser::Heredoc],
    ) -> Result<()> {
        let words = match cmd {
            CommandLine::Shell(line) if !heredocs.is_empty() => {
                let mut words = self.stage().shell();
                let only_heredoc = heredocs.len() == 1
                    && line.split_whitespace().count() == 1
                    && crate::parser::heredoc_markers(line)
                        .first()
                        .map(|h| h.name.as_str())
                        == Some(heredocs[0].name.as_str());
                if only_heredoc {
                    words.push(heredocs[0].content.clone());
                } else {
                    let mut script = line.clone();
                    script.push('\n');
                    for h in heredocs {
                        script.push_str(&h.content);
                        script.push_str(&h.name);
                        script.push('\n');
                    }
                    words.push(script);
                }
                words
            }
            other => self.command_words(other),
        };
        let env_keys: Vec<String> = self
            .stage()
            .config
            .env
            .iter()
            .flatten()
            .filter_map(|e| e.split_once('=').map(|(k, _)| k.to_string()))
            .collect();
        let build_args: BTreeMap<String, String> = self
            .args
            .in_effect()
            .into_iter()
            .filter(|(k, _)| !env_keys.contains(k))
            .collect();
        let history_args: BTreeMap<String, String> = build_args
            .iter()
            .filter(|(k, _)| self.args.shows_in_history(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let save_cmd = run_cmd_with_args(&history_args, &words);
        let mut probe = self.probe_config(save_cmd);
        probe.entrypoint = None;
        let key = self.cache_key(&probe, b"");
        if self.probe_cache(&key)? {
            return Ok(());
        }
        let stage_config = self.stage().config.clone();
        let mut env = stage_config.env.clone().unwrap_or_default();
        env.extend(build_args.iter().map(|(k, v)| format!("{k}={v}")));
        let process = ProcessSpec {
            args: words.clone(),
            env,
            user: stage_config.user.clone().unwrap_or_default(),
            workdir: stage_config.working_dir.clone().unwrap_or_default(),
            volumes: stage_config
                .volumes
                .iter()
                .flat_map(|v| v.keys().cloned())
                .collect(),
        };
        let command_text = words.join(" ");
        let file = self.file();
        self.with_container(instruction, &probe, &key, true, &mut |b, c| {
            writeln!(b.out, " ---> Running in {}", short_id(&c.id)).ok();
            let code = b
                .runner
                .run(c, &process, b.out)
                .map_err(|e| b.step_error(instruction, e.to_string()))?;
            if code != 0 {
                return Err(BuildError::CommandFailed {
                    file: file.clone(),
                    line: instruction.line,
                    command: command_text.clone(),
                    code,
                });
            }
            Ok(())
        })
    }

    fn copy(&mut self, instruction: &Instruction, args: &CopyArgs, is_add: bool) -> Result<()> {
        let keyword = if is_add { "ADD" } else { "COPY" };
        let vars = self.vars();
        let mut sources = Vec::new();
        for s in &args.sources {
            sources.push(self.expand(instruction, s, &vars)?);
        }
        let dest_written = self.expand(instruction, &args.dest, &vars)?;
        let chown = match &args.chown {
            Some(c) => Some(self.expand(instruction, c, &vars)?),
            None => None,
        };
        let chmod = match &args.chmod {
            Some(c) => {
                let text = self.expand(instruction, c, &vars)?;
                Some(u32::from_str_radix(&text, 8).map_err(|_| {
                    self.step_error(instruction, format!("invalid chmod parameter: {text}"))
                })?)
            }
            None => None,
        };
        let workdir = self.stage().config.working_dir.clone().unwrap_or_default();
        let dest = if dest_written.starts_with('/') {
            dest_written.clone()
        } else {
            let joined = crate::dockerignore::clean_path(&format!("/{workdir}/{dest_written}"));
            if dest_written.ends_with('/') && joined != "/" {
                format!("{joined}/")
            } else {
                joined
            }
        };

        // Where sources come from: the context, or another stage / image (kept mounted).
        let mut from_container: Option<StepContainer> = None;
        if let Some(from) = &args.from {
            let from = self.expand(instruction, from, &vars)?.to_ascii_lowercase();
            let image_id = match self.stage_image_by_name(&from) {
                Some(id) => id,
                None => {
                    let resolved = self.runner.resolve_image(&from).map_err(|e| {
                        self.step_error(instruction, format!("invalid from flag value {from}: {e}"))
                    })?;
                    Some(resolved.id)
                }
            };
            let c = self
                .runner
                .create_container(image_id.as_deref())
                .map_err(|e| self.step_error(instruction, e.to_string()))?;
            from_container = Some(c);
        }
        let result = self.copy_with_sources(
            instruction,
            keyword,
            args,
            &sources,
            &dest_written,
            &dest,
            chown,
            chmod,
            is_add,
            from_container.as_ref(),
        );
        if let Some(c) = &from_container {
            let removed = self.runner.remove_container(c);
            result?;
            return removed;
        }
        result
    }

    fn stage_image_by_name(&self, name: &str) -> Option<Option<String>> {
        if let Some(stage) = self.stages.iter().find(|s| s.name.as_deref() == Some(name)) {
            return Some(stage.image_id.clone());
        }
        let index: usize = name.parse().ok()?;
        // Only earlier stages (the current one is last).
        self.stages[..self.stages.len().saturating_sub(1)]
            .get(index)
            .map(|s| s.image_id.clone())
    }

    #[allow(clippy::too_many_arguments)]
    fn copy_with_sources(
        &mut self,
        instruction: &Instruction,
        keyword: &str,
        args: &CopyArgs,
        sources: &[String],
        dest_written: &str,
        dest: &str,
        chown: Option<String>,
        chmod: Option<u32>,
        is_add: bool,
        from: Option<&StepContainer>,
    ) -> Result<()> {
        let context: &BuildContext = self.context;
        let tree = match from {
            Some(c) => SourceTree {
                root: &c.rootfs,
                ignore: None,
                in_context: false,
            },
            None => context.tree(),
        };
        enum Item {
            Path(Source),
            Heredoc { name: String, content: Vec<u8> },
        }
        let mut items = Vec::new();
        let mut hashes = Vec::new();
        let vars = self.vars();
        for (raw, source) in args.sources.iter().zip(sources) {
            let marker = crate::parser::heredoc_markers(raw).into_iter().next();
            if let Some(h) = marker.and_then(|m| args.heredocs.iter().find(|h| h.name == m.name)) {
                let content = if h.expand {
                    expand_vars_only(&h.content, &vars, self.escape)
                        .map_err(|e| self.step_error(instruction, e.to_string()))?
                } else {
                    h.content.clone()
                };
                use sha2::Digest;
                hashes.push(format!(
                    "file:{}",
                    hex::encode(sha2::Sha256::digest(content.as_bytes()))
                ));
                items.push(Item::Heredoc {
                    name: h.name.clone(),
                    content: content.into_bytes(),
                });
                continue;
            }
            if is_add
                && (source.starts_with("http://")
                    || source.starts_with("https://")
                    || source.starts_with("git@"))
            {
                return Err(self.step_error(
                    instruction,
                    format!("ADD from a URL is not supported by berth: {source}"),
                ));
            }
            let resolved = tree
                .resolve(source)
                .map_err(|e| self.step_error(instruction, e.to_string()))?;
            for s in resolved {
                hashes.push(s.hash.clone());
                items.push(Item::Path(s));
            }
        }
        if items.len() > 1 && !dest.ends_with('/') {
            return Err(self.step_error(
                instruction,
                format!("When using {keyword} with more than one source file, the destination must be a directory and end with a /"),
            ));
        }
        let comment = copy_comment(
            keyword,
            chown.as_deref(),
            &multi_source_hash(&hashes),
            dest_written,
        );
        let cmd = nop_cmd_string(&self.stage().shell(), &comment);
        let probe = self.probe_config(cmd);
        let extra = format!("chmod={chmod:?};from={}", from.is_some());
        let key = self.cache_key(&probe, extra.as_bytes());
        if self.probe_cache(&key)? {
            return Ok(());
        }
        let ignore = if from.is_none() {
            Some(context.ignore())
        } else {
            None
        };
        let dest = dest.to_string();
        self.with_container(instruction, &probe, &key, false, &mut |b, c| {
            let owner = match &chown {
                Some(spec) => crate::fsutil::resolve_chown(&c.rootfs, spec)
                    .map_err(|e| b.step_error(instruction, e.to_string()))?,
                None => (0, 0),
            };
            let options = CopyOptions {
                owner,
                chmod,
                decompress: is_add,
            };
            for item in &items {
                match item {
                    Item::Path(s) => copy_source(
                        &c.rootfs,
                        s,
                        &dest,
                        &options,
                        ignore.map(|m| (m, s.rel.as_str())),
                    )
                    .map_err(|e| b.step_error(instruction, e.to_string()))?,
                    Item::Heredoc { name, content } => {
                        write_file(&c.rootfs, &dest, name, content, &options)?
                    }
                }
            }
            Ok(())
        })
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
