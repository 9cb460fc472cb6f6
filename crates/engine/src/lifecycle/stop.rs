//! Ending and pausing: `kill`, `stop`, `rm`, `pause`/`unpause`, `restart`, and killing what is
//! left in a container's cgroup.

use super::*;

impl Engine {
    /// Sends `signal` to the container's init (through its monitor when there is one).
    pub fn kill(&self, id: &str, signal: i32) -> Result<()> {
        let record = self.store.load(id)?;
        if !record.is_running() {
            return Err(EngineError::state(
                id,
                format!("cannot kill container {id}: container {id} is not running"),
            ));
        }
        crate::events::container(
            &self.root,
            &record,
            "kill",
            &[("signal", signal.to_string())],
        );
        if let Some(mut stream) = self.connect(id) {
            if attach::write_frame(&mut stream, attach::SIGNAL, &attach::i32_payload(signal))
                .is_ok()
            {
                return Ok(());
            }
        }
        // SAFETY: the PID was checked against its recorded start time just above.
        if unsafe { libc::kill(record.state.pid, signal) } < 0 {
            return Err(EngineError::last_os(format!(
                "kill {} (the init of container {id})",
                record.state.pid
            )));
        }
        Ok(())
    }

    /// `berth stop -t`: stop signal, then SIGKILL after `timeout` seconds.
    pub fn stop(&self, id: &str, timeout: Option<i64>) -> Result<()> {
        let record = self.store.load(id)?;
        let _ = self
            .store
            .update(id, |r| r.has_been_manually_stopped = true);
        if !record.is_running() {
            if let Some(mut s) = self.connect(id) {
                let _ = attach::write_frame(&mut s, attach::NO_RESTART, &[]);
            }
            return Ok(());
        }
        let signal = record
            .config
            .stop_signal
            .as_deref()
            .map(crate::sys::parse_signal)
            .transpose()?
            .unwrap_or(libc::SIGTERM);
        let timeout =
            Duration::from_secs(timeout.or(record.config.stop_timeout).unwrap_or(10).max(0) as u64);
        crate::events::container(
            &self.root,
            &record,
            "kill",
            &[("signal", signal.to_string())],
        );
        let _stopped = StopEvent {
            root: &self.root,
            record: &record,
        };
        if self.end_container(&record, signal, timeout) == Ended::ByMonitor {
            return Ok(());
        }
        // No monitor cleaned up after the container: do it here.
        let _ = self.runtime.delete(id, true);
        let _ = crate::network::release(&self.root, id);
        self.unmount(&record)
    }

    /// `berth rm [-f]`. Takes the container's own lock for the removal, so a concurrent start
    /// either ran first (and the container is killed here) or finds the container gone.
    pub fn remove(&self, id: &str, force: bool, volumes: bool) -> Result<()> {
        for attempt in 0..10 {
            let op = match self.store.lock_container(id) {
                Ok(op) => op,
                // Gone while we killed it (its --rm monitor, a concurrent rm): done.
                Err(EngineError::NoSuchContainer(_)) if attempt > 0 => return Ok(()),
                Err(e) => return Err(e),
            };
            let record = match self.store.load(id) {
                Ok(r) => r,
                Err(EngineError::NoSuchContainer(_)) if attempt > 0 => return Ok(()),
                Err(e) => return Err(e),
            };
            if record.is_running() || record.status() == Status::Restarting {
                if !force {
                    return Err(EngineError::state(id, format!("You cannot remove a {} container {id}. Stop the container before attempting removal or force remove", record.status().as_str())));
                }
                // The monitor records the end (and may take the lock to restart): not held.
                drop(op);
                self.kill_for_removal(&record);
                continue;
            }
            // Killed from here on, the next command finishes the removal.
            let intent =
                berth_image::intent::Intent::begin(&self.root, crate::intents::REMOVE, id)?;
            self.remove_resources(&record)?;
            intent.done();
            drop(op);
            crate::events::container(&self.root, &record, "destroy", &[]);
            if volumes {
                crate::volumes::Volumes::new(&self.root).remove_anonymous_of(&record);
            }
            return Ok(());
        }
        Err(EngineError::state(
            id,
            format!("container {id} kept being restarted while it was removed"),
        ))
    }

    /// SIGKILLs a running container for `rm -f` and waits (bounded) for its end.
    pub(super) fn kill_for_removal(&self, record: &ContainerRecord) {
        self.end_container(record, libc::SIGKILL, Duration::ZERO);
    }

    /// The one stop sequence (`stop`, `restart`, `rm -f`, recovery): `signal` to the init,
    /// up to `grace` for it to end, then SIGKILL to every process of the container and up to
    /// [`KILL_WAIT`] more. Through the container's monitor when it has one (the monitor is told
    /// not to restart it and records the end); else directly, waiting for the keeper's record
    /// when a keeper took over from a killed monitor, or recording the end (137) here.
    fn end_container(&self, record: &ContainerRecord, signal: i32, grace: Duration) -> Ended {
        let id = record.id.as_str();
        if let Some(mut stream) = self.connect(id) {
            let _ = attach::write_frame(&mut stream, attach::HELLO, &[0]);
            let _ = attach::write_frame(&mut stream, attach::NO_RESTART, &[]);
            let send = |stream: &mut UnixStream, signal: i32| {
                let _ = attach::write_frame(stream, attach::SIGNAL, &attach::i32_payload(signal));
            };
            send(&mut stream, signal);
            if signal != libc::SIGKILL && wait_exit_frame(&mut stream, grace) {
                return Ended::ByMonitor;
            }
            send(&mut stream, libc::SIGKILL);
            let _ = self.runtime.kill(id, libc::SIGKILL, true);
            wait_exit_frame(&mut stream, KILL_WAIT);
            return Ended::ByMonitor;
        }
        if recovery::supervised(&self.root, id) {
            // The keeper that took over from a killed monitor reaps the init and records the
            // real exit: signal, and wait for that record.
            let recorded = || self.store.load(id).map_or(true, |r| !r.state.running);
            let every = Backoff::fixed(Duration::from_millis(20));
            let signal_init = |signal: i32| {
                if record.init_alive() {
                    // SAFETY: the PID was checked against its recorded start time just now.
                    unsafe { libc::kill(record.state.pid, signal) };
                }
            };
            signal_init(signal);
            if signal == libc::SIGKILL || !poll::until(grace, every, recorded) {
                signal_init(libc::SIGKILL);
                poll::until(KILL_WAIT, every, recorded);
            }
            return Ended::ByMonitor;
        }
        if record.init_alive() {
            let every = Backoff::fixed(Duration::from_millis(10));
            // SAFETY: the PID was checked against its recorded start time just above.
            unsafe { libc::kill(record.state.pid, signal) };
            if signal != libc::SIGKILL {
                poll::until(grace, every, || !record.init_alive());
            }
            let _ = self.runtime.kill(id, libc::SIGKILL, true);
            poll::until(KILL_WAIT, every, || !record.init_alive());
        }
        let _ = self.store.update(id, |r| {
            r.state.running = false;
            r.state.pid = 0;
            r.state.exit_code = 137;
            r.state.finished_at = now_rfc3339();
        });
        Ended::Here
    }

    pub fn pause(&self, id: &str) -> Result<()> {
        let record = self.store.load(id)?;
        if !record.is_running() {
            return Err(EngineError::state(
                id,
                format!("Container {id} is not running"),
            ));
        }
        self.runtime.pause(id)?;
        crate::events::container(&self.root, &record, "pause", &[]);
        self.store.update(id, |r| r.state.paused = true)
    }

    pub fn unpause(&self, id: &str) -> Result<()> {
        let record = self.store.load(id)?;
        if !record.state.paused {
            return Err(EngineError::state(
                id,
                format!("Container {id} is not paused"),
            ));
        }
        self.runtime.resume(id)?;
        crate::events::container(&self.root, &record, "unpause", &[]);
        self.store.update(id, |r| r.state.paused = false)
    }

    /// Waits (up to 10 s) until container `id` is stopped and its monitor has finished its
    /// cleanup (it does so just after reporting the exit), then clears the manual-stop mark so
    /// the next start applies the restart policy again: the middle of `restart`.
    pub fn settle_for_restart(&self, id: &str) -> Result<()> {
        poll::try_until(
            Duration::from_secs(10),
            Backoff::fixed(Duration::from_millis(10)),
            || {
                let r = self.store.load(id)?;
                Ok::<_, EngineError>(
                    !r.is_running() && !crate::procinfo::alive(r.berth_monitor_pid),
                )
            },
        )?;
        self.store
            .update(id, |r| r.has_been_manually_stopped = false)
    }

    /// `berth restart`: stop (if running), then start detached.
    pub fn restart(&self, id: &str, timeout: Option<i64>) -> Result<()> {
        self.stop(id, timeout)?;
        self.settle_for_restart(id)?;
        self.start_detached(id)?;
        if let Ok(record) = self.store.load(id) {
            crate::events::container(&self.root, &record, "restart", &[]);
        }
        Ok(())
    }
}

/// How long a SIGKILLed container is waited for before the caller goes on.
const KILL_WAIT: Duration = Duration::from_secs(30);

/// Who recorded the end of a container that `end_container` stopped.
#[derive(Debug, PartialEq)]
enum Ended {
    /// Its monitor, or the keeper that took over from a killed monitor (either also cleans up
    /// after it).
    ByMonitor,
    /// `end_container` itself: there was no monitor.
    Here,
}

/// Records Docker's `stop` event when a running container's stop is over (however it ended).
pub(super) struct StopEvent<'a> {
    root: &'a Path,
    record: &'a ContainerRecord,
}

impl Drop for StopEvent<'_> {
    fn drop(&mut self) {
        crate::events::container(self.root, self.record, "stop", &[]);
    }
}

/// Waits up to `timeout` for an EXIT (or ERROR) frame; true when it came (or the monitor left).
pub(super) fn wait_exit_frame(stream: &mut UnixStream, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        let _ = stream.set_read_timeout(Some(left));
        match attach::read_frame(stream) {
            Ok(Some((kind, _))) if kind == attach::EXIT || kind == attach::ERROR => return true,
            Ok(Some(_)) => continue,
            Ok(None) => return true,
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                return false
            }
            Err(_) => return true,
        }
    }
}
