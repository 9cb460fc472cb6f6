//! Seccomp: compiles an OCI `linux.seccomp` profile to a classic BPF program before fork (with
//! libseccomp, which may allocate), and loads the prebuilt program in the container's init right
//! before exec with one async-signal-safe seccomp(2) call. Also carries Docker's default profile.
//! (API committed first; bodies being filled in.)

use oci_spec::runtime::LinuxSeccomp;

/// Errors compiling or loading a seccomp profile.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    /// libseccomp rejected part of the profile.
    #[error("seccomp {what}: {source}")]
    Libseccomp {
        what: String,
        source: libseccomp::error::SeccompError,
    },
    /// The profile asks for something this runtime cannot do.
    #[error("seccomp profile: {0}")]
    Unsupported(String),
    /// Reading back the exported BPF failed.
    #[error("export seccomp BPF: {0}")]
    Export(std::io::Error),
    /// The kernel refused the filter.
    #[error("load seccomp filter: {0}")]
    Load(std::io::Error),
    /// A Docker-format profile could not be parsed.
    #[error("parse seccomp profile JSON: {0}")]
    Json(serde_json::Error),
}

/// A compiled seccomp filter, ready to load with a single syscall.
#[derive(Debug, Clone)]
pub struct Program {
    filter: Vec<libc::sock_filter>,
    flags: libc::c_ulong,
}

/// Compile an OCI seccomp profile to BPF (call before fork).
pub fn compile(profile: &LinuxSeccomp) -> Result<Program, SeccompError> {
    let _ = profile;
    Err(SeccompError::Unsupported("not implemented yet".into()))
}

impl Program {
    /// Install the filter on the calling thread. Async-signal-safe: one seccomp(2) syscall on
    /// the prebuilt program; no allocation. The caller sets `no_new_privs` (or holds
    /// CAP_SYS_ADMIN) beforehand.
    pub fn load(&self) -> Result<(), SeccompError> {
        let _ = (&self.filter, self.flags);
        Err(SeccompError::Unsupported("not implemented yet".into()))
    }

    /// Number of BPF instructions.
    pub fn len(&self) -> usize {
        self.filter.len()
    }

    /// Whether the program is empty (never true for a compiled profile).
    pub fn is_empty(&self) -> bool {
        self.filter.is_empty()
    }
}

/// Docker's default seccomp profile, translated for Docker's default capability set.
pub fn docker_default_profile() -> LinuxSeccomp {
    docker_profile_for_capabilities(&[])
}

/// Docker's default seccomp profile translated for a container holding `capabilities`
/// ("CAP_SYS_ADMIN", …), as Docker does for `--cap-add`.
pub fn docker_profile_for_capabilities(capabilities: &[String]) -> LinuxSeccomp {
    let _ = capabilities;
    LinuxSeccomp::default()
}
