//! Planning the stages of a Dockerfile and starting each one from its `FROM` (an image, a
//! previous stage or `scratch`).

use super::*;

/// Parses and validates the whole Dockerfile (every line typed before anything runs).
pub(super) fn plan(options: &BuildOptions) -> Result<(char, Vec<Instruction>, Vec<StagePlan>)> {
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

impl Builder<'_> {
    pub(super) fn begin_stage(&mut self, from: &Instruction) -> Result<()> {
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
}

impl Builder<'_> {
    /// The image config a step produces, given its container config and layer state.
    /// The config of stage `index`'s image, read now if a cache hit left it unread.
    pub(super) fn image_of_stage(&mut self, index: usize) -> Result<ImageConfig> {
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

    pub(super) fn child_image(
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
}
