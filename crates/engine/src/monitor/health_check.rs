//! The health checker the monitor drives for one run of a container: it execs the test into
//! the container on a timer, kills a probe that outlives its timeout, and records each result
//! in the container's `State.Health` (see `crate::health` for the rules), emitting
//! `health_status: <status>` events when the status changes and Docker's `exec_create`,
//! `exec_start` and `exec_die` events for every probe.
//!
//! What it must not do: fork on its own (the monitor owns the process), or block — a probe is
//! started, watched through the monitor's poll loop, and finished when reaped.

use crate::error::Result;
use crate::health::{nanos, Health, HealthLogEntry, Schedule, MAX_OUTPUT, STARTING};
use crate::record::{ContainerRecord, Store};
use berth_common::time::{format_go_duration, now_rfc3339};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

/// A probe on its way: the exec'd process, the read end of its output, and when it must end.
struct Probe {
    pid: i32,
    pidfd: Option<OwnedFd>,
    output: Option<OwnedFd>,
    collected: Vec<u8>,
    start: String,
    started: Instant,
    events: crate::exec::ExecEvents,
    timed_out: bool,
}

/// The monitor's health checker for one run of the container.
pub(crate) struct Checker {
    schedule: Schedule,
    /// When the container started (the start period counts from here).
    started: Instant,
    next_probe: Instant,
    probe: Option<Probe>,
}

impl Checker {
    pub fn new(schedule: Schedule) -> Checker {
        let started = Instant::now();
        let mut checker = Checker {
            schedule,
            started,
            next_probe: started,
            probe: None,
        };
        checker.next_probe = started + checker.interval(STARTING);
        checker
    }

    /// Docker's interval: the start interval while starting within the start period.
    fn interval(&self, status: &str) -> Duration {
        if self.started.elapsed() < self.schedule.start_period && status == STARTING {
            self.schedule.start_interval
        } else {
            self.schedule.interval
        }
    }

    /// How long the monitor may sleep before the checker needs it.
    pub fn wait(&self) -> Duration {
        let due = match &self.probe {
            Some(p) => p.started + self.schedule.timeout,
            None => self.next_probe,
        };
        due.saturating_duration_since(Instant::now())
    }

    /// Descriptors to watch: the running probe's pidfd and output.
    pub fn fds(&self) -> Vec<RawFd> {
        let Some(p) = &self.probe else {
            return Vec::new();
        };
        p.pidfd
            .iter()
            .chain(p.output.iter())
            .map(|f| f.as_raw_fd())
            .collect()
    }

    /// The running probe's PID.
    pub fn probe_pid(&self) -> Option<i32> {
        self.probe.as_ref().map(|p| p.pid)
    }

    /// Reads what the probe wrote so far (keeping the first [`MAX_OUTPUT`] bytes).
    pub fn read_output(&mut self) {
        let Some(p) = &mut self.probe else { return };
        let Some(fd) = &p.output else { return };
        let mut buf = [0u8; 4096];
        loop {
            match crate::sys::read_fd(fd.as_raw_fd(), &mut buf) {
                Ok(0) => {
                    p.output = None;
                    return;
                }
                Ok(n) => {
                    let room = MAX_OUTPUT.saturating_sub(p.collected.len());
                    p.collected.extend_from_slice(&buf[..n.min(room)]);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return,
            }
        }
    }

    /// Starts a probe when one is due, kills one that outlived its timeout. `init` is the
    /// container's init (exec joins it).
    pub fn tick(&mut self, store: &Store, runtime: &dyn crate::runtime_door::OciRuntime, id: &str) {
        let now = Instant::now();
        if let Some(p) = &mut self.probe {
            if !p.timed_out && now >= p.started + self.schedule.timeout {
                p.timed_out = true;
                // SAFETY: `p.pid` is our unreaped child, so the PID cannot have been reused.
                unsafe { libc::kill(p.pid, libc::SIGKILL) };
            }
            return;
        }
        if now < self.next_probe {
            return;
        }
        let Ok(record) = store.load(id) else { return };
        match self.start_probe(store, runtime, &record) {
            Ok(probe) => self.probe = Some(probe),
            // Docker records a probe that could not even start as exit code -1.
            Err(e) => {
                let stamp = now_rfc3339();
                let entry = HealthLogEntry {
                    start: stamp.clone(),
                    end: stamp,
                    exit_code: -1,
                    output: e.to_string(),
                };
                self.finish(store, &record, entry);
            }
        }
    }

    fn start_probe(
        &self,
        store: &Store,
        runtime: &dyn crate::runtime_door::OciRuntime,
        record: &ContainerRecord,
    ) -> Result<Probe> {
        let req = crate::exec::ExecRequest {
            command: self.schedule.command.clone(),
            ..Default::default()
        };
        let process = crate::exec::process_for(store, record, &req)?;
        let events = crate::exec::ExecEvents::created(
            store.root(),
            record,
            &crate::names::new_id(),
            &self.schedule.command,
        );
        let (read, write) = crate::sys::pipe()?;
        crate::sys::set_nonblocking(read.as_raw_fd());
        let start = now_rfc3339();
        let started = Instant::now();
        let io = crate::runtime_door::ExecIo {
            output: Some(write.as_raw_fd()),
            ..Default::default()
        };
        let begun = runtime.exec(&record.id, &process, io)?;
        drop(write);
        events.started();
        let pid = begun.pid.ok_or_else(|| {
            crate::error::EngineError::state(&record.id, "the runtime ran the probe to its end")
        })?;
        let pidfd = rustix::process::Pid::from_raw(pid).and_then(|p| {
            rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty()).ok()
        });
        Ok(Probe {
            pid,
            pidfd,
            output: Some(read),
            collected: Vec::new(),
            start,
            started,
            events,
            timed_out: false,
        })
    }

    /// The probe `pid` exited with `code` (already reaped): record its result.
    pub fn probe_exited(&mut self, store: &Store, id: &str, code: i32) {
        self.read_output();
        let Some(p) = self.probe.take() else { return };
        let (exit_code, output) = if p.timed_out {
            (
                -1,
                format!(
                    "Health check exceeded timeout ({})",
                    format_go_duration(nanos(self.schedule.timeout))
                ),
            )
        } else {
            (
                code as i64,
                String::from_utf8_lossy(&p.collected).into_owned(),
            )
        };
        let entry = HealthLogEntry {
            start: p.start,
            end: now_rfc3339(),
            exit_code,
            output,
        };
        p.events.died(exit_code as i32);
        if let Ok(record) = store.load(id) {
            self.finish(store, &record, entry);
        }
    }

    fn finish(&mut self, store: &Store, record: &ContainerRecord, entry: HealthLogEntry) {
        let within = self.started.elapsed() < self.schedule.start_period;
        let retries = self.schedule.retries;
        let changed = store.update(&record.id, |r| {
            let health = r.state.health.get_or_insert_with(Health::starting);
            let changed = health.record(entry, within, retries);
            (changed, health.status.clone())
        });
        let status = match changed {
            Ok((Some(status), _)) => {
                if let Ok(fresh) = store.load(&record.id) {
                    crate::events::container(
                        store.root(),
                        &fresh,
                        &format!("health_status: {status}"),
                        &[],
                    );
                }
                status
            }
            Ok((None, status)) => status,
            Err(_) => STARTING.into(),
        };
        self.next_probe = Instant::now() + self.interval(&status);
    }

    /// The container stopped: kill a probe still running (the caller reaps it).
    pub fn stop(&mut self) {
        if let Some(p) = self.probe.take() {
            // SAFETY: `p.pid` is our unreaped child.
            unsafe { libc::kill(p.pid, libc::SIGKILL) };
        }
    }
}
