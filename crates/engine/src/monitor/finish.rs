//! The end of a run: the exit record, `--rm` removal and the final report to whoever waits.

use super::*;

impl Monitor {
    /// Records the end of one run: exit code, OOM flag, FinishedAt; deletes the runtime state.
    /// Returns the restart count so far. Fails when the record cannot be read or written.
    pub(super) fn finish_run(&mut self, code: i32, error: Option<&str>) -> Result<i64> {
        let record = self.ctx.store.load(&self.id)?;
        // The OOM killer's signal is SIGKILL: only then is the cgroup worth asking.
        let oom = error.is_none() && code == 128 + libc::SIGKILL && oom_killed(&record)?;
        if oom {
            crate::events::container(self.ctx.store.root(), &record, "oom", &[]);
        }
        if error.is_none() {
            crate::events::container(
                self.ctx.store.root(),
                &record,
                "die",
                &[("exitCode", code.to_string())],
            );
            crate::volumes::record_mount_events(self.ctx.store.root(), &record, false);
        }
        // Only reached for --rm when removing it failed: final_cleanup retries the whole
        // removal (runtime state first) before anyone is told.
        if !self.host.auto_remove {
            let _ = self.ctx.runtime.delete(&self.id, true);
        }
        self.ctx
            .store
            .update(&self.id, |r| {
                r.state.running = false;
                r.state.paused = false;
                r.state.pid = 0;
                r.state.exit_code = code;
                r.state.oom_killed = oom;
                r.state.finished_at = if error.is_some() && !r.has_been_started_before {
                    String::new()
                } else {
                    now_rfc3339()
                };
                r.state.error = error.unwrap_or("").to_string();
                // Docker: a stopped container is not healthy (no event for it).
                if let Some(health) = &mut r.state.health {
                    health.status = crate::health::UNHEALTHY.into();
                }
                r.berth_monitor_pid = 0;
                r.berth_pid_start_time = 0;
                r.restart_count
            })
            .inspect(|_| {
                let dir = self.ctx.store.container_dir(&self.id);
                let _ = std::fs::remove_file(dir.join(crate::intents::EXIT_FILE));
            })
    }

    /// After the last run: unmount (with `--rm`, remove everything), then tell everyone.
    pub(super) fn final_cleanup(&mut self, code: i32, error: Option<String>) {
        if self.host.auto_remove {
            // The fast path in `run` failed part-way: try again, still before reporting.
            self.remove_container();
        } else if let (Ok(_op), Ok(record)) = (
            self.ctx.store.lock_container(&self.id),
            self.ctx.store.load(&self.id),
        ) {
            // Under the container's lock: a concurrent start sees it stopped with its networks
            // given back, never half of it.
            let _ = self.ctx.layers.unmount_record(&record);
            // A stopped container holds no address, port or namespace (Docker frees them too);
            // the next start brings its networks back.
            let _ = crate::network::release(self.ctx.store.root(), &self.id);
        }
        let _ = std::fs::remove_file(self.ctx.store.container_dir(&self.id).join("attach.sock"));
        self.report(code, error);
    }

    /// `--rm`: removes the runtime state and cgroup (killing any straggler), the layer (its
    /// unmount included), and the record and name, in that order. True when all of it is gone.
    /// The deleted files' blocks are freed only when the monitor exits, after the report.
    pub(super) fn remove_container(&mut self) -> bool {
        let Ok(record) = self.ctx.store.load(&self.id) else {
            return false;
        };
        let layout = self.ctx.layers.layout().clone();
        self.held
            .hold_tree(&self.ctx.store.root().join("runtime").join(&self.id));
        if !record.berth_layer.mount_id.is_empty() {
            let layer = layout.layer_dir(&record.berth_layer.mount_id);
            let init = layout.layer_dir(&format!("{}-init", record.berth_layer.mount_id));
            for dir in [&layer, &init] {
                // The short link `l/<name>` is a symlink long enough to own a block.
                if let Ok(short) = std::fs::read_to_string(dir.join("link")) {
                    let short = short.trim();
                    if !short.is_empty() && !short.contains('/') {
                        self.held.hold_tree(&layout.links().join(short));
                    }
                }
                self.held.hold_tree(dir);
            }
        }
        self.held.hold_tree(&layout.mount_meta(&self.id));
        self.held.hold_tree(&self.ctx.store.container_dir(&self.id));
        self.held.hold_tree(
            &self
                .ctx
                .store
                .containers_dir()
                .join(".names")
                .join(record.short_name()),
        );
        let layers = &self.ctx.layers;
        let remove_layer = || {
            record.driver.is_empty()
                || layers.remove(&record.id).is_ok()
                || !layout.mount_meta(&record.id).exists()
        };
        let remove_runtime_state = || {
            if self.ctx.runtime.delete(&self.id, true).is_err() {
                // The runtime state may be gone already (its root removed under us): the
                // cgroup must not outlive the container anyway.
                if let Err(e) = record.kill_cgroup() {
                    eprintln!("monitor {}: {e}", self.id);
                }
            }
        };
        // In its own PID namespace nothing of the container outlives its init (the kernel
        // kills and reaps the rest before the init's exit is reported), so the layer can go
        // while the runtime state and cgroup do. Otherwise stragglers die first. The helper
        // thread ends before this returns; the monitor never forks after a --rm container.
        let layer_gone = if shares_pid_namespace(&self.host) {
            remove_runtime_state();
            remove_layer()
        } else {
            std::thread::scope(|scope| {
                let layer = scope.spawn(remove_layer);
                remove_runtime_state();
                layer.join().unwrap_or(false)
            })
        };
        let root = self.ctx.store.root();
        let network_gone = crate::network::release(root, &record.id).is_ok();
        let removed = layer_gone && network_gone && self.ctx.store.remove(&record).is_ok();
        if removed {
            // Docker's `run --rm` takes the container's anonymous volumes with it.
            crate::volumes::Volumes::new(root).remove_anonymous_of(&record);
        }
        removed
    }

    /// Tells the `ready` pipe and every attached client how the container ended.
    pub(super) fn report(&mut self, code: i32, error: Option<String>) {
        match error {
            Some(msg) => {
                if let Some(ready) = self.ready.take() {
                    let _ =
                        std::fs::File::from(ready).write_all(format!("{code} {msg}\n").as_bytes());
                }
                let mut payload = attach::i32_payload(code).to_vec();
                payload.extend_from_slice(msg.as_bytes());
                self.broadcast(attach::ERROR, &payload, 0);
            }
            None => {
                if let Some(ready) = self.ready.take() {
                    let _ = std::fs::File::from(ready).write_all(b"0\n");
                }
                self.broadcast(attach::EXIT, &attach::i32_payload(code), 0);
            }
        }
        self.clients.clear();
    }
}
