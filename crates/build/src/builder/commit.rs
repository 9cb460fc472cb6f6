//! The build cache and commits: probing the cache for a step, recording its result, committing
//! metadata-only steps and containers into image layers.

use super::*;

impl Builder<'_> {
    /// Container config recorded for a step: the stage's config with `Cmd` = `cmd` and `Image`
    /// the parent (what Docker compares when probing its cache).
    pub(super) fn probe_config(&self, cmd: Vec<String>) -> ContainerConfig {
        let mut config = self.stage().config.clone();
        config.cmd = Some(cmd);
        config.image = Some(self.stage().image_id.clone().unwrap_or_default());
        config
    }

    pub(super) fn cache_key(&self, probe: &ContainerConfig, extra: &[u8]) -> String {
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
    pub(super) fn probe_cache(&mut self, key: &str) -> Result<bool> {
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

    pub(super) fn record(&mut self, key: &str, image_id: String, image: ImageConfig) -> Result<()> {
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
    pub(super) fn commit_metadata(
        &mut self,
        _instruction: &Instruction,
        comment: &str,
    ) -> Result<()> {
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
    pub(super) fn flush_pending(&mut self) -> Result<()> {
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
    pub(super) fn commit_container(
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
    pub(super) fn with_container(
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
}
