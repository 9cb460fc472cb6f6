//! The steps that change the filesystem: `WORKDIR`, `RUN` (through the `StepRunner`), `COPY`
//! and `ADD` (from the context or another stage).

use super::*;

impl Builder<'_> {
    pub(super) fn workdir(&mut self, instruction: &Instruction, dir: &str) -> Result<()> {
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

    pub(super) fn run(
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

    pub(super) fn copy(
        &mut self,
        instruction: &Instruction,
        args: &CopyArgs,
        is_add: bool,
    ) -> Result<()> {
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

    pub(super) fn stage_image_by_name(&self, name: &str) -> Option<Option<String>> {
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
    pub(super) fn copy_with_sources(
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
