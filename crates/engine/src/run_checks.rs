//! Checks of `run`/`create` flags that Docker makes before anything exists, with Docker's
//! messages: `-e` entries, `-v` sections, `--tmpfs` and `-w` paths, `--stop-signal`, the
//! memory minimum and `--cpus` against this host's CPUs. Called first in [`Engine::create`]
//! (so nothing is half-made) and by the CLI for the flags it resolves itself (`-e`).
//!
//! [`Engine::create`]: crate::Engine::create
use crate::error::{EngineError, Result};
use crate::options::RunOptions;

/// Docker's floor for `--memory` (`linuxMinMemory`).
pub const MIN_MEMORY: i64 = 6 * 1024 * 1024;

/// One `-e` flag as typed: empty or starting with `=` is refused, as Docker's `ValidateEnv`.
pub fn env_flag(text: &str) -> Result<()> {
    if text.trim().is_empty() || text.starts_with('=') {
        return Err(EngineError::InvalidFlag {
            flag: "-e, --env".into(),
            value: text.into(),
            reason: format!("invalid environment variable: {text}"),
        });
    }
    Ok(())
}

/// `-v` as typed: no empty section between colons.
pub fn volume_flag(text: &str) -> Result<()> {
    if text.is_empty() || text.split(':').any(str::is_empty) {
        return Err(refused(
            "-v, --volume",
            format!("invalid volume specification: '{text}'"),
        ));
    }
    Ok(())
}

/// A flag Docker's daemon refuses, with its message.
fn refused(option: &str, message: String) -> EngineError {
    EngineError::InvalidOption {
        option: option.to_string(),
        message,
    }
}

fn online_cpus() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// Everything in `opts` Docker's daemon checks before creating a container.
pub fn run_options(opts: &RunOptions) -> Result<()> {
    for e in &opts.env {
        env_flag(e)?;
    }
    for b in &opts.host.binds {
        volume_flag(b)?;
    }
    for target in opts.host.tmpfs.keys() {
        if target.is_empty() {
            return Err(refused(
                "--tmpfs",
                "invalid tmpfs mount: the destination cannot be empty".into(),
            ));
        }
        if !target.starts_with('/') {
            return Err(refused("--tmpfs", format!(
                "invalid mount config for type \"tmpfs\": invalid mount path: '{target}' mount path must be absolute"
            )));
        }
    }
    if let Some(dir) = &opts.workdir {
        if !dir.is_empty() && !dir.starts_with('/') {
            return Err(refused(
                "-w, --workdir",
                format!(
                    "the working directory '{dir}' is invalid, it needs to be an absolute path"
                ),
            ));
        }
    }
    if let Some(sig) = &opts.stop_signal {
        crate::sys::parse_signal(sig)
            .map_err(|_| refused("--stop-signal", format!("Invalid signal: {sig}")))?;
    }
    if opts.host.memory > 0 && opts.host.memory < MIN_MEMORY {
        return Err(refused(
            "-m, --memory",
            "Minimum memory limit allowed is 6MB".into(),
        ));
    }
    if opts.host.memory_reservation > 0 && opts.host.memory_reservation < MIN_MEMORY {
        return Err(refused(
            "--memory-reservation",
            "Minimum memory reservation allowed is 6MB".into(),
        ));
    }
    let cpus = online_cpus();
    if opts.host.nano_cpus > 0 && opts.host.nano_cpus > cpus as i64 * 1_000_000_000 {
        return Err(refused(
            "--cpus",
            format!(
                "Range of CPUs is from 0.01 to {cpus}.00, as there are only {cpus} CPUs available"
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(edit: impl FnOnce(&mut RunOptions)) -> Result<()> {
        let mut o = RunOptions::default();
        edit(&mut o);
        run_options(&o)
    }

    #[test]
    fn docker_refusals() {
        assert!(env_flag("").is_err());
        assert!(env_flag("=x").is_err());
        assert!(env_flag("A=").is_ok());
        assert_eq!(
            volume_flag(":/x").unwrap_err().to_string(),
            "invalid volume specification: ':/x'"
        );
        assert!(volume_flag("/a:/b:ro").is_ok());
        assert!(opts(|o| o.workdir = Some("rel".into())).is_err());
        assert!(opts(|o| o.workdir = Some("/abs".into())).is_ok());
        assert_eq!(
            opts(|o| o.stop_signal = Some("FOO".into()))
                .unwrap_err()
                .to_string(),
            "Invalid signal: FOO"
        );
        assert!(opts(|o| o.stop_signal = Some("SIGUSR1".into())).is_ok());
        assert_eq!(
            opts(|o| o.host.memory = 5 << 20).unwrap_err().to_string(),
            "Minimum memory limit allowed is 6MB"
        );
        assert!(opts(|o| o.host.memory = 6 << 20).is_ok());
        assert!(opts(|o| o.host.nano_cpus = 10_000 * 1_000_000_000).is_err());
        assert!(opts(|o| {
            o.host.tmpfs.insert(String::new(), String::new());
        })
        .is_err());
    }
}
