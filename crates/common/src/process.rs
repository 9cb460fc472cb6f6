//! What every container process gets by default.

/// The `PATH` a process gets when its environment names none (Docker's and runc's default).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Docker's code for how a process ended, from a `waitpid` status: its exit code, or 128 + the
/// signal that killed it; None for a stop or continue report. The one rule every crate uses.
pub fn decode_wait_status(status: i32) -> Option<i32> {
    use std::os::unix::process::ExitStatusExt;
    let status = std::process::ExitStatus::from_raw(status);
    status
        .code()
        .or_else(|| status.signal().map(|sig| 128 + sig))
}

/// [`decode_wait_status`] for a std `ExitStatus` (125, Docker's engine error, when it says
/// neither).
pub fn exit_code_of(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    decode_wait_status(status.into_raw()).unwrap_or(125)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_statuses_decode_as_docker_reports_them() {
        // Exited with 3: code in bits 8..16.
        assert_eq!(decode_wait_status(3 << 8), Some(3));
        assert_eq!(decode_wait_status(0), Some(0));
        // Killed by SIGKILL (9), with and without a core dump bit.
        assert_eq!(decode_wait_status(9), Some(137));
        assert_eq!(decode_wait_status(11 | 0x80), Some(139));
        // Stopped by SIGSTOP (19): neither exited nor killed.
        assert_eq!(decode_wait_status((19 << 8) | 0x7f), None);
        // Continued.
        assert_eq!(decode_wait_status(0xffff), None);
    }
}
