//! Intent records: how a multi-step change of the root survives a `kill -9` at any instant.
//!
//! Before a command starts a change that takes several steps and cannot be one rename (staging
//! a layer, making a build step's layer, creating or removing a container), it writes
//! `<root>/intents/<kind>-<object>` naming itself (PID and start time). When the change is
//! complete it removes the file. A later command's recovery pass lists the intents: one whose
//! owner still lives protects its object; one whose owner is dead means the change was cut
//! short, and the recovery rolls it back (a half-made container, a staged layer) or forward (a
//! half-done removal), then drops the intent.
//!
//! Ordering rule for readers: list the objects (layer dirs, container dirs) FIRST and the
//! intents SECOND. An intent is always written before its object appears, so an object seen in
//! the first listing has its intent visible in the second.
//!
//! An intent may also name an heir: a second process that takes the change over should the
//! owner die (a container's keeper for its monitor). The change counts as in progress while
//! either lives, so no recovery pass acts on it behind the heir's back.
//!
//! This module owns the files only; what an intent of each kind means is up to its writer.
use crate::error::{ImageError, Result};
use std::path::{Path, PathBuf};

/// The directory of intent records under a Berth root.
pub fn intents_dir(root: &Path) -> PathBuf {
    root.join("intents")
}

/// A process, named so that a recycled PID is never taken for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    pub pid: i32,
    pub start_time: u64,
}

impl Owner {
    /// This process.
    pub fn me() -> Owner {
        let pid = std::process::id() as i32;
        Owner {
            pid,
            start_time: start_time(pid).unwrap_or(0),
        }
    }

    /// Whether this very process still runs (a zombie counts as gone).
    pub fn alive(&self) -> bool {
        self.pid > 0 && start_time(self.pid) == Some(self.start_time)
    }

    fn encode(&self) -> String {
        format!("{} {}\n", self.pid, self.start_time)
    }

    fn decode(text: &str) -> Option<Owner> {
        let mut it = text.split_whitespace();
        Some(Owner {
            pid: it.next()?.parse().ok()?,
            start_time: it.next()?.parse().ok()?,
        })
    }
}

/// Start time of `pid` in clock ticks since boot (`/proc/<pid>/stat` field 22); None for a
/// process that does not exist or is a zombie.
pub fn start_time(pid: i32) -> Option<u64> {
    if pid <= 0 {
        return None;
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.get(stat.rfind(')')? + 2..)?;
    let mut fields = after.split(' ');
    let state = fields.next()?;
    if state == "Z" || state == "X" {
        return None;
    }
    fields.nth(18)?.parse().ok()
}

/// One intent as found on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub kind: String,
    pub object: String,
    /// None when the file was unreadable or half-written: its owner died while writing it.
    pub owner: Option<Owner>,
    /// Who takes the change over when the owner dies, when the owner named one.
    pub heir: Option<Owner>,
    pub path: PathBuf,
}

impl Found {
    /// Whether the change it names may still be in progress: its owner or its heir lives.
    pub fn live(&self) -> bool {
        self.owner.is_some_and(|o| o.alive()) || self.heir.is_some_and(|h| h.alive())
    }

    /// Drops the record (after recovery dealt with its object).
    pub fn clear(&self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A change in progress, owned by this process. Finish it with [`Intent::done`]; dropping it
/// without that leaves the record for the recovery pass (which acts once this process is gone).
#[derive(Debug)]
pub struct Intent {
    path: PathBuf,
}

impl Intent {
    /// Records that this process begins a change of `kind` on `object`.
    pub fn begin(root: &Path, kind: &str, object: &str) -> Result<Intent> {
        Intent::write(root, kind, object, None)
    }

    /// Like [`Intent::begin`], naming `heir` as the process that finishes the change should
    /// this one die (the record stays live while either runs).
    pub fn begin_with_heir(root: &Path, kind: &str, object: &str, heir: Owner) -> Result<Intent> {
        Intent::write(root, kind, object, Some(heir))
    }

    fn write(root: &Path, kind: &str, object: &str, heir: Option<Owner>) -> Result<Intent> {
        let dir = intents_dir(root);
        std::fs::create_dir_all(&dir).map_err(ImageError::io("creating", &dir))?;
        let path = dir.join(format!("{kind}-{object}"));
        // Written whole before it is visible: a reader never sees a torn owner. No fsync: after
        // a power loss no owner is alive, and a lost intent only leaves work for the sweep.
        let tmp = dir.join(format!(
            ".{kind}-{object}.{}",
            &crate::digest::random_hex_id()[..8]
        ));
        let mut text = Owner::me().encode();
        if let Some(heir) = heir {
            text.push_str(&heir.encode());
        }
        std::fs::write(&tmp, text).map_err(ImageError::io("writing", &tmp))?;
        std::fs::rename(&tmp, &path).map_err(ImageError::io("writing", &path))?;
        Ok(Intent { path })
    }

    /// The change is complete: forget it.
    pub fn done(self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The intent `kind`-`object`, if there is one (live or not).
pub fn find(root: &Path, kind: &str, object: &str) -> Option<Found> {
    let path = intents_dir(root).join(format!("{kind}-{object}"));
    let text = std::fs::read_to_string(&path).ok()?;
    Some(parse(kind, object, &text, path))
}

fn parse(kind: &str, object: &str, text: &str, path: PathBuf) -> Found {
    let mut lines = text.lines();
    let owner = lines.next().and_then(Owner::decode);
    let heir = lines.next().and_then(Owner::decode);
    Found {
        kind: kind.to_string(),
        object: object.to_string(),
        owner,
        heir,
        path,
    }
}

/// Every intent under `root`, of any kind.
pub fn list(root: &Path) -> Vec<Found> {
    let dir = intents_dir(root);
    let Ok(rd) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let path = e.path();
        if name.starts_with('.') {
            // A temporary whose writer died before the rename: nothing relies on it.
            if old(&path) {
                let _ = std::fs::remove_file(&path);
            }
            continue;
        }
        let Some((kind, object)) = name.split_once('-') else {
            continue;
        };
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        out.push(parse(kind, object, &text, path));
    }
    out
}

/// The owner of the intent `kind`-`object`, if there is one (alive or not).
pub fn owner(root: &Path, kind: &str, object: &str) -> Option<Owner> {
    let path = intents_dir(root).join(format!("{kind}-{object}"));
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| Owner::decode(&t))
}

/// Objects of `kind` whose change may still be in progress.
pub fn live_objects(root: &Path, kind: &str) -> std::collections::HashSet<String> {
    list(root)
        .into_iter()
        .filter(|f| f.kind == kind && f.live())
        .map(|f| f.object)
        .collect()
}

/// True for a file older than a minute (a temporary no writer can still be renaming).
fn old(path: &Path) -> bool {
    std::fs::symlink_metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age.as_secs() >= 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_intent_is_live_while_its_owner_runs_and_gone_when_done() {
        let root = tempfile::tempdir().unwrap();
        let intent = Intent::begin(root.path(), "stage", "abc").unwrap();
        let found = list(root.path());
        assert_eq!(found.len(), 1);
        assert_eq!(
            (found[0].kind.as_str(), found[0].object.as_str()),
            ("stage", "abc")
        );
        assert!(found[0].live());
        assert!(live_objects(root.path(), "stage").contains("abc"));
        intent.done();
        assert!(list(root.path()).is_empty());
    }

    #[test]
    fn an_intent_with_a_live_heir_stays_live_after_its_owner_died() {
        let root = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id() as i32;
        let st = start_time(pid).unwrap_or(1);
        child.wait().unwrap();
        let dead = Owner {
            pid,
            start_time: st,
        };
        // This process as the owner, a dead heir: live (the owner runs).
        let intent = Intent::begin_with_heir(root.path(), "monitor", "c", dead).unwrap();
        let found = list(root.path());
        assert_eq!(found[0].heir, Some(dead));
        assert!(found[0].live());
        assert_eq!(owner(root.path(), "monitor", "c"), Some(Owner::me()));
        intent.done();
        // A dead owner, this process as the heir: still live.
        let dir = intents_dir(root.path());
        std::fs::write(
            dir.join("monitor-d"),
            format!("{}{}", dead.encode(), Owner::me().encode()),
        )
        .unwrap();
        let found = list(root.path());
        assert_eq!(found[0].owner, Some(dead));
        assert!(found[0].live());
        assert_eq!(find(root.path(), "monitor", "d"), Some(found[0].clone()));
        // Both dead: not live.
        std::fs::write(
            dir.join("monitor-d"),
            format!("{}{}", dead.encode(), dead.encode()),
        )
        .unwrap();
        assert!(!list(root.path())[0].live());
    }

    #[test]
    fn a_dead_or_unknown_owner_is_not_live() {
        let root = tempfile::tempdir().unwrap();
        let dir = intents_dir(root.path());
        std::fs::create_dir_all(&dir).unwrap();
        // PID 1's real start time is not 12345; a recycled PID must not count as the owner.
        std::fs::write(dir.join("create-x"), "1 12345\n").unwrap();
        std::fs::write(dir.join("create-y"), "garbage").unwrap();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id() as i32;
        let st = start_time(pid);
        child.wait().unwrap();
        std::fs::write(dir.join("create-z"), format!("{pid} {}\n", st.unwrap_or(1))).unwrap();
        let found = list(root.path());
        assert_eq!(found.len(), 3);
        assert!(found.iter().all(|f| !f.live()), "{found:?}");
        for f in &found {
            f.clear();
        }
        assert!(list(root.path()).is_empty());
    }
}
