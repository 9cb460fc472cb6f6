//! `run`, `create` and `start`: options from the flags, the built-in `hello` image, attaching
//! the terminal, and the exit code as Docker gives it.

use super::*;

pub(super) fn run_or_create(engine: &Engine, flags: &CreateFlags, start: bool) -> i32 {
    if !flags.rootfs && !hello::is_hello(&flags.image) {
        if let Err(code) = crate::registry::ensure_image(
            engine,
            &flags.image,
            &flags.pull,
            flags.platform.as_deref(),
        ) {
            return code;
        }
    }
    // `run` only: the cgroup move of the init waits out an RCU grace period unless one just
    // passed; start that wait now so it overlaps creating the container (berth is still
    // single-threaded here).
    let _primer = if start {
        berth_engine::cgroup_prime::start()
    } else {
        None
    };
    if let Err(e) = parse_detach_keys(flags.detach_keys.as_deref()) {
        eprintln!(
            "berth: {e}\nSee 'berth {} --help'.",
            if start { "run" } else { "create" }
        );
        return 125;
    }
    let opts = match flags.to_options() {
        Ok(o) => o,
        Err(e) => {
            eprintln!(
                "berth: {e}\nSee 'berth {} --help'.",
                if start { "run" } else { "create" }
            );
            return 125;
        }
    };
    if opts.host.init == Some(true) {
        if let Err(e) = hello::install_docker_init(engine.root()) {
            eprintln!("berth: --init: {e:#}");
            return 125;
        }
    }
    let record = match hello::create_with_builtin_images(engine, &opts) {
        Ok(r) => r,
        Err(EngineError::ImageNotFound { reference, cause }) => {
            eprintln!(
                "Unable to find image '{}' locally",
                full_reference(&reference)
            );
            eprintln!("berth: Error response from daemon: pull access denied for {reference}, repository does not exist or may require 'berth login' ({cause})");
            return 125;
        }
        Err(e) => {
            eprintln!("berth: Error response from daemon: {e}");
            return e.exit_code();
        }
    };
    if !start {
        // Like Docker, a created container's root is mounted only while it runs.
        let _ = engine.unmount(&record);
        println!("{}", record.id);
        return 0;
    }
    if flags.detach {
        return match engine.start_detached(&record.id) {
            Ok(()) => {
                println!("{}", record.id);
                0
            }
            Err(e) => {
                eprintln!("berth: Error response from daemon: {e}");
                e.exit_code()
            }
        };
    }
    match engine.start_attached(&record.id, &flags.attach_options()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("berth: Error response from daemon: {e}");
            e.exit_code()
        }
    }
}

/// `--detach-keys`, else the `detachKeys` of the client's `config.json` (as Docker's CLI
/// reads it), else Docker's default.
pub(super) fn parse_detach_keys(
    text: Option<&str>,
) -> Result<berth_engine::detach_keys::DetachKeys, EngineError> {
    let configured = || {
        let path = berth_registry::credentials::default_config_path();
        let text = std::fs::read_to_string(path).ok()?;
        let json: serde_json::Value = serde_json::from_str(&text).ok()?;
        json.get("detachKeys")?.as_str().map(str::to_string)
    };
    match text.map(str::to_string).or_else(configured) {
        Some(keys) => berth_engine::detach_keys::DetachKeys::parse(&keys),
        None => Ok(Default::default()),
    }
}

pub(super) fn start(
    engine: &Engine,
    attach: bool,
    interactive: bool,
    detach_keys: berth_engine::detach_keys::DetachKeys,
    containers: &[String],
) -> i32 {
    let mut code = 0;
    for c in containers {
        let record = match engine.lookup(c) {
            Ok(r) => r,
            Err(e) => {
                code = fail(e);
                continue;
            }
        };
        if attach {
            let opts = AttachOptions {
                stdin: interactive && record.config.open_stdin,
                stdout: true,
                stderr: true,
                tty: record.config.tty,
                sig_proxy: !record.config.tty,
                detach_keys,
            };
            return match engine.start_attached(&record.id, &opts) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("Error response from daemon: {e}");
                    e.exit_code()
                }
            };
        }
        match engine.start_detached(&record.id) {
            Ok(()) => println!("{c}"),
            Err(e) => code = fail(e),
        }
    }
    code
}
