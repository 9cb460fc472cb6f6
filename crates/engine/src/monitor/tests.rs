use super::*;
use crate::lifecycle::Engine;
use crate::options::{RestartPolicy, RunOptions};
use crate::runtime_door::fake::FakeRuntime;

struct Fixture {
    _turn: std::sync::MutexGuard<'static, ()>,
    _root: tempfile::TempDir,
    rootfs: tempfile::TempDir,
    engine: Engine,
    fake: Arc<FakeRuntime>,
}

/// The monitor reaps any child of the process (waitpid(-1), as the subreaper of its
/// container must): two monitors in one test process would reap each other's inits, so
/// the tests that run one take turns.
static ONE_MONITOR_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn fixture(fake: FakeRuntime) -> Fixture {
    let root = tempfile::tempdir().expect("root");
    let rootfs = tempfile::tempdir().expect("rootfs");
    let fake = Arc::new(fake);
    let engine = Engine::with_runtime(root.path(), fake.clone());
    Fixture {
        _turn: ONE_MONITOR_AT_A_TIME
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()),
        _root: root,
        rootfs,
        engine,
        fake,
    }
}

impl Drop for Fixture {
    /// The containers are never removed, but their pinned network namespaces must not
    /// outlive the test's root.
    fn drop(&mut self) {
        let root = self.engine.root().to_path_buf();
        if let Ok(dir) = std::fs::read_dir(root.join("containers")) {
            for entry in dir.flatten() {
                let _ = crate::network::release(&root, &entry.file_name().to_string_lossy());
            }
        }
    }
}

impl Fixture {
    /// A `--rootfs` container whose command the fake runtime runs on the host.
    fn container(&self, script: &str, restart: &str, retries: i64) -> String {
        let mut opts = RunOptions {
            command: vec!["/bin/sh".into(), "-c".into(), script.into()],
            rootfs: Some(self.rootfs.path().to_path_buf()),
            ..Default::default()
        };
        opts.host.restart_policy = RestartPolicy {
            name: restart.into(),
            maximum_retry_count: retries,
        };
        self.engine.create(&opts).expect("create").id
    }

    /// Runs the monitor in this process until it is done; returns what it reported on
    /// its ready pipe.
    fn monitor(&self, id: &str) -> String {
        let (read, write) = crate::sys::pipe().expect("pipe");
        let mut monitor = Monitor::new(self.engine.monitor_context(), id, None, Some(write))
            .map_err(|(e, _, _)| e)
            .expect("monitor");
        monitor.run();
        drop(monitor);
        let mut text = String::new();
        std::fs::File::from(read)
            .read_to_string(&mut text)
            .expect("ready");
        text
    }

    fn creates(&self) -> usize {
        self.fake
            .calls()
            .iter()
            .filter(|c| c.starts_with("create "))
            .count()
    }
}

#[test]
fn monitor_logs_output_and_records_the_exit() {
    let f = fixture(FakeRuntime::default());
    let id = f.container("echo out; echo err >&2; exit 3", "no", 0);
    assert_eq!(f.monitor(&id).trim(), "0");
    let record = f.engine.store.load(&id).expect("record");
    assert_eq!(record.state.exit_code, 3);
    assert!(!record.state.running);
    assert_eq!(record.state.pid, 0);
    assert!(!record.state.finished_at.is_empty());
    let log = std::fs::read_to_string(&record.log_path).expect("log");
    assert!(log.contains(r#""log":"out\n","stream":"stdout""#), "{log}");
    assert!(log.contains(r#""log":"err\n","stream":"stderr""#), "{log}");
    assert_eq!(
        f.fake.calls(),
        vec![
            format!("create {id}"),
            format!("start {id}"),
            format!("delete {id}")
        ]
    );
}

#[test]
fn monitor_applies_on_failure_restarts_up_to_the_limit() {
    let f = fixture(FakeRuntime::default());
    let id = f.container("exit 1", "on-failure", 2);
    f.monitor(&id);
    let record = f.engine.store.load(&id).expect("record");
    assert_eq!(f.creates(), 3);
    assert_eq!(record.restart_count, 2);
    assert_eq!(record.state.exit_code, 1);
    assert!(!record.state.restarting);
}

#[test]
fn a_command_that_does_not_exist_is_127_from_its_errno() {
    let f = fixture(FakeRuntime {
        fail_create_errno: Some(libc::ENOENT),
        ..Default::default()
    });
    let id = f.container("true", "no", 0);
    let report = f.monitor(&id);
    assert!(report.starts_with("127 "), "{report}");
    drop(f);
    let f = fixture(FakeRuntime {
        fail_create_errno: Some(libc::EACCES),
        ..Default::default()
    });
    let id = f.container("true", "no", 0);
    let report = f.monitor(&id);
    assert!(report.starts_with("126 "), "{report}");
    let record = f.engine.store.load(&id).expect("record");
    assert_eq!(record.state.exit_code, 126);
    assert!(!record.state.error.is_empty());
    assert!(record.state.finished_at.is_empty());
}

#[test]
fn an_unreadable_record_stops_the_restart_policy() {
    let f = fixture(FakeRuntime::default());
    let id = f.container("", "always", 0);
    // The command breaks its own record: the monitor must not restart it on a default
    // record (forever, with "always"), but stop.
    let record_file = f.engine.store.container_dir(&id).join("config.v2.json");
    // It waits (bounded) until the monitor has recorded the start, so its write is not
    // lost to the monitor's own rename of the record.
    let file = record_file.to_string_lossy();
    let opts_script = format!(
        "i=0; while ! grep -q '\"Running\":true' {file} && [ $i -lt 1000 ]; do sleep 0.01; i=$((i+1)); done; echo broken > {file}"
    );
    let spec_path = f.engine.store.container_dir(&id).join("config.json");
    let mut spec = oci_spec::runtime::Spec::load(&spec_path).expect("spec");
    let mut process = spec.process().clone().expect("process");
    process.set_args(Some(vec!["/bin/sh".into(), "-c".into(), opts_script]));
    spec.set_process(Some(process));
    spec.save(&spec_path).expect("save");
    f.monitor(&id);
    assert_eq!(f.creates(), 1, "{:?}", f.fake.calls());
}

#[test]
fn a_log_that_cannot_be_opened_is_reported() {
    let f = fixture(FakeRuntime::default());
    let id = f.container("true", "no", 0);
    let log = f
        .engine
        .store
        .container_dir(&id)
        .join(format!("{id}-json.log"));
    std::fs::create_dir_all(&log).expect("a directory where the log goes");
    let (read, write) = crate::sys::pipe().expect("pipe");
    let err = match Monitor::new(f.engine.monitor_context(), &id, None, Some(write)) {
        Ok(_) => panic!("the monitor started without its log"),
        Err((e, client, ready)) => {
            report_setup_failure(&e, client, ready);
            e
        }
    };
    assert!(
        err.to_string().contains(&log.display().to_string()),
        "{err}"
    );
    let mut text = String::new();
    std::fs::File::from(read)
        .read_to_string(&mut text)
        .expect("ready");
    assert!(text.starts_with("125 container monitor: "), "{text}");
    assert_eq!(f.creates(), 0);
}

#[test]
fn an_attach_socket_that_cannot_be_bound_is_reported() {
    let f = fixture(FakeRuntime::default());
    let id = f.container("true", "no", 0);
    let sock = f.engine.store.container_dir(&id).join("attach.sock");
    // A directory (with something in it) where the socket goes: it cannot be removed as a
    // stale socket, and bind(2) finds the name taken.
    std::fs::create_dir_all(sock.join("kept")).expect("a directory where the socket goes");
    let (read, write) = crate::sys::pipe().expect("pipe");
    let err = match Monitor::new(f.engine.monitor_context(), &id, None, Some(write)) {
        Ok(_) => panic!("the monitor started without its attach socket"),
        Err((e, client, ready)) => {
            report_setup_failure(&e, client, ready);
            e
        }
    };
    assert!(
        err.to_string().contains(&sock.display().to_string()),
        "{err}"
    );
    let mut text = String::new();
    std::fs::File::from(read)
        .read_to_string(&mut text)
        .expect("ready");
    assert!(text.starts_with("125 container monitor: "), "{text}");
    assert_eq!(f.creates(), 0);
}
