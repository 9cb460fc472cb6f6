//! Starting one run: mount the rootfs, create the container with fresh stdio (pipes or a PTY),
//! start it through the runtime door.

use super::*;

impl Monitor {
    /// Mounts the rootfs if needed, creates the container with fresh stdio, starts it.
    /// None when the container already runs (a concurrent start won).
    pub(super) fn start_once(&mut self) -> Result<Option<(i32, ContainerIo)>> {
        // Held until the record says running: an `rm` either finished before (the record is
        // gone, nothing is made) or waits and then finds a running container to kill.
        let _op = self.ctx.store.lock_container(&self.id)?;
        let record = self.ctx.store.load(&self.id)?;
        if record.is_running() {
            return Ok(None);
        }
        if !crate::network::is_ready(self.ctx.store.root(), &self.id) {
            // Its networks were given back after our caller prepared them: a stop or removal
            // ran between. Nothing is made; the caller may start it again.
            return Err(EngineError::state(
                &self.id,
                format!(
                    "container {} was stopped or removed while it was being started",
                    self.id
                ),
            ));
        }
        self.ctx.layers.ensure_mounted(&record)?;
        let bundle = self.ctx.store.container_dir(&self.id);
        // A previous run may have left runtime state behind (killed monitor).
        if record.has_been_started_before {
            let _ = self.ctx.runtime.delete(&self.id, true);
        }
        let mut io = ContainerIo::default();
        let pid = if self.tty {
            let sock_path = bundle.join("console.sock");
            let _ = std::fs::remove_file(&sock_path);
            let short = crate::sys::socket_path(&sock_path)?;
            let listener =
                UnixListener::bind(&short.path).map_err(|e| EngineError::io(&sock_path, e))?;
            let null =
                std::fs::File::open("/dev/null").map_err(|e| EngineError::io("/dev/null", e))?;
            let n = null.as_raw_fd();
            let pid = self
                .ctx
                .runtime
                .create(&self.id, &bundle, [n, n, n], Some(&short.path));
            let _ = std::fs::remove_file(&sock_path);
            let pid = pid?;
            let master = crate::runtime_door::receive_console(&listener)?;
            if let Some((rows, cols)) = self.window {
                crate::sys::set_window_size(master.as_raw_fd(), rows, cols);
            }
            io.pty = Some(master);
            pid
        } else {
            let (stdin_child, stdin_ours) = if self.open_stdin {
                let (r, w) = crate::sys::pipe()?;
                (r, Some(w))
            } else {
                let null = std::fs::File::open("/dev/null")
                    .map_err(|e| EngineError::io("/dev/null", e))?;
                (OwnedFd::from(null), None)
            };
            let (out_r, out_w) = crate::sys::pipe()?;
            let (err_r, err_w) = crate::sys::pipe()?;
            let pid = self.ctx.runtime.create(
                &self.id,
                &bundle,
                [
                    stdin_child.as_raw_fd(),
                    out_w.as_raw_fd(),
                    err_w.as_raw_fd(),
                ],
                None,
            )?;
            io.stdin = stdin_ours;
            io.stdout = Some(out_r);
            io.stderr = Some(err_r);
            pid
        };
        let start_time = crate::procinfo::start_time(pid).unwrap_or(0);
        if let Err(e) = self.ctx.runtime.start(&self.id) {
            // SAFETY: `pid` is our unreaped child (the runtime made it so).
            unsafe { libc::kill(pid, libc::SIGKILL) };
            crate::runtime_door::wait_for(pid);
            let _ = self.ctx.runtime.delete(&self.id, true);
            // Whatever the init said before dying explains the failure best.
            let said = io
                .stderr
                .as_ref()
                .map(|fd| read_available(fd.as_raw_fd()))
                .unwrap_or_default();
            if !said.trim().is_empty() {
                return Err(EngineError::Command {
                    message: format!("{e}: {}", said.trim()),
                    exit_code: e.command_failure_code(),
                });
            }
            return Err(e);
        }
        let me = std::process::id() as i32;
        let schedule = crate::health::Schedule::of(&record.config);
        let has_health = schedule.is_some();
        self.health = schedule.map(health_check::Checker::new);
        self.ctx.store.update(&self.id, |r| {
            if has_health {
                // Docker keeps the log of earlier runs and starts over otherwise.
                let health = r
                    .state
                    .health
                    .get_or_insert_with(crate::health::Health::starting);
                health.status = crate::health::STARTING.into();
                health.failing_streak = 0;
            }
            r.state.running = true;
            r.state.dead = false;
            r.state.paused = false;
            r.state.restarting = false;
            r.state.pid = pid;
            r.state.exit_code = 0;
            r.state.error.clear();
            r.state.oom_killed = false;
            r.state.started_at = now_rfc3339();
            r.has_been_started_before = true;
            r.berth_monitor_pid = me;
            r.berth_pid_start_time = start_time;
        })?;
        if let Ok(record) = self.ctx.store.load(&self.id) {
            let root = self.ctx.store.root();
            crate::volumes::record_mount_events(root, &record, true);
            crate::events::container(root, &record, "start", &[]);
        }
        if let Some(ready) = self.ready.take() {
            let _ = std::fs::File::from(ready).write_all(b"0\n");
        }
        self.broadcast(attach::STARTED, &attach::i32_payload(pid), 0);
        Ok(Some((pid, io)))
    }
}
