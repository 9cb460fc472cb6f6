//! What every handler shares: the engine and image store of one root, the activity count the
//! idle timeout reads, and the service's own bookkeeping that has no place on disk (attach
//! clients waiting for a container's start, exec sessions between create and start).
use berth_engine::Engine;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

pub struct AppState {
    pub root: PathBuf,
    pub engine: Engine,
    pub activity: Arc<Activity>,
    /// Exit codes of the starts this service made, by container ID (the latest start each).
    pub exits: Mutex<HashMap<String, watch::Sender<Option<i32>>>>,
    /// Exec instances by ID, from create until the service exits.
    pub execs: crate::routes::exec::ExecTable,
    /// Attach clients waiting for their container's start.
    pending: Mutex<HashMap<String, PendingAttach>>,
    /// One recovery pass at a time within the service (other processes' passes are safe
    /// against it, as two CLI commands' are).
    recovering: Mutex<()>,
}

/// An attach request on a container that is not running yet: the hijacked connection (once the
/// upgrade completes) and what it wants. The service's `start` takes it.
pub struct PendingAttach {
    pub io: hyper::upgrade::OnUpgrade,
    pub wants: crate::hijack::Wants,
    pub window: Option<(u16, u16)>,
    /// The keys that end the session (stdin sessions only).
    pub detach: Option<berth_engine::detach_keys::DetachKeys>,
}

impl AppState {
    pub fn new(root: &Path) -> AppState {
        AppState {
            root: root.to_path_buf(),
            engine: Engine::open(root),
            activity: Arc::new(Activity::default()),
            exits: Mutex::new(HashMap::new()),
            execs: Mutex::new(HashMap::new()),
            pending: Mutex::new(HashMap::new()),
            recovering: Mutex::new(()),
        }
    }

    /// The store's recovery pass (`berth_engine::recovery::recover`), which every CLI command
    /// runs first: what a killed command or monitor left is rolled forward or back. The
    /// service runs it when it starts and before every request that may change the store, so
    /// a long-running service acts on what was cut short while it ran, as the next CLI command
    /// would. Cheap (two directory listings) when nothing was. Blocking: call off the async
    /// workers.
    pub fn recover(&self) {
        let _one = self.recovering.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = berth_engine::recovery::recover(&self.engine) {
            tracing::warn!("recovery of {}: {e}", self.root.display());
        }
    }

    /// Parks an attach client until the container starts (a later one replaces an earlier).
    pub fn add_pending_attach(&self, id: &str, attach: PendingAttach) {
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.to_string(), attach);
    }

    pub fn take_pending_attach(&self, id: &str) -> Option<PendingAttach> {
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id)
    }

    /// The image store; opened per use because opening creates the layout when missing.
    pub fn images(&self) -> Result<berth_image::Store, crate::error::ApiError> {
        Ok(berth_image::Store::open(&self.root)?)
    }
}

/// Open connections and hijacked sessions, and when the last one ended.
pub struct Activity {
    active: AtomicUsize,
    last_end: Mutex<Instant>,
}

impl Default for Activity {
    fn default() -> Self {
        Activity {
            active: AtomicUsize::new(0),
            last_end: Mutex::new(Instant::now()),
        }
    }
}

/// Marks the service busy while alive.
pub struct Busy(Arc<Activity>);

impl Activity {
    pub fn enter(self: &Arc<Self>) -> Busy {
        self.active.fetch_add(1, Ordering::SeqCst);
        Busy(self.clone())
    }

    /// How much longer the service may stay idle; zero when the timeout has passed.
    pub fn idle_remaining(&self, idle: Duration) -> Duration {
        if self.active.load(Ordering::SeqCst) > 0 {
            return idle;
        }
        let last = *self.last_end.lock().unwrap_or_else(|e| e.into_inner());
        idle.saturating_sub(last.elapsed())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        *self.0.last_end.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
        self.0.active.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_clock_runs_only_without_activity() {
        let a = Arc::new(Activity::default());
        let busy = a.enter();
        assert_eq!(
            a.idle_remaining(Duration::from_secs(5)),
            Duration::from_secs(5)
        );
        drop(busy);
        assert!(a.idle_remaining(Duration::from_secs(5)) <= Duration::from_secs(5));
        assert_eq!(a.idle_remaining(Duration::ZERO), Duration::ZERO);
    }
}
