//! `--security-opt`, parsed as Docker's daemon does (`key=value`, the deprecated `key:value`,
//! and bare `no-new-privileges` / `disable`), with every option either honoured or refused:
//! - `seccomp=unconfined` runs without a filter, `seccomp=builtin` (or nothing) with Docker's
//!   default profile, `seccomp=FILE` (read here, as the docker CLI reads it) or an inline JSON
//!   profile (what the Engine API receives) with that profile converted to OCI form;
//! - `no-new-privileges[=bool]` sets the spec's `noNewPrivileges`;
//! - `apparmor=` and `label=` name LSMs this host does not run: `apparmor=unconfined` and
//!   `label=disable` ask for nothing and are accepted, a profile or label is refused rather
//!   than silently ignored;
//! - any other key is refused with Docker's message (`invalid --security-opt 2: "…"`).
use crate::docker_profile;
use crate::error::{EngineError, Result};

/// Which seccomp filter a container gets.
#[derive(Debug, Clone, PartialEq)]
pub enum Seccomp {
    /// Docker's default profile for the container's capabilities.
    Default,
    Unconfined,
    /// A profile in Docker's JSON format (already read from its file).
    Profile(String),
}

/// The parsed options.
#[derive(Debug, Clone, PartialEq)]
pub struct SecurityOpts {
    pub seccomp: Seccomp,
    pub no_new_privileges: bool,
}

fn invalid(n: u8, opt: &str) -> EngineError {
    refused(opt, format!("invalid --security-opt {n}: {opt:?}"))
}

fn refused(opt: &str, message: String) -> EngineError {
    EngineError::InvalidOption {
        option: format!("--security-opt {opt}"),
        message,
    }
}

/// Go's `strconv.ParseBool`.
fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// An I/O error worded as Go's `os` package words it (Docker's messages quote those).
fn go_error_text(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        std::io::ErrorKind::IsADirectory => "is a directory".into(),
        _ => e.to_string(),
    }
}

fn lsm_enabled(name: &str) -> bool {
    std::fs::read_to_string("/sys/kernel/security/lsm")
        .map(|l| l.trim().split(',').any(|m| m == name))
        .unwrap_or(false)
}

/// Whether the options ask for `no_new_privs` (pure: no profile file is read).
pub fn no_new_privileges(opts: &[String]) -> bool {
    opts.iter().fold(false, |on, opt| {
        if opt == "no-new-privileges" {
            return true;
        }
        let kv = if opt.contains('=') {
            opt.split_once('=')
        } else {
            opt.split_once(':')
        };
        match kv {
            Some(("no-new-privileges", v)) => parse_bool(v).unwrap_or(on),
            _ => on,
        }
    })
}

/// Parses `--security-opt` values; a seccomp profile file is read here.
pub fn parse(opts: &[String]) -> Result<SecurityOpts> {
    let mut out = SecurityOpts {
        seccomp: Seccomp::Default,
        no_new_privileges: false,
    };
    for opt in opts {
        if opt == "no-new-privileges" {
            out.no_new_privileges = true;
            continue;
        }
        if opt == "disable" {
            continue; // label=disable in its short form
        }
        let (key, value) = if opt.contains('=') {
            opt.split_once('=')
        } else {
            opt.split_once(':')
        }
        .ok_or_else(|| invalid(1, opt))?;
        match key {
            "seccomp" => {
                out.seccomp = match value {
                    "unconfined" => Seccomp::Unconfined,
                    "builtin" | "" => Seccomp::Default,
                    v if v.trim_start().starts_with('{') => Seccomp::Profile(v.to_string()),
                    path => Seccomp::Profile(std::fs::read_to_string(path).map_err(|e| {
                        refused(
                            opt,
                            format!(
                                "opening seccomp profile ({path}) failed: open {path}: {}",
                                go_error_text(&e)
                            ),
                        )
                    })?),
                }
            }
            "no-new-privileges" => {
                out.no_new_privileges = parse_bool(value).ok_or_else(|| invalid(2, opt))?;
            }
            "apparmor" => {
                if value != "unconfined" && !lsm_enabled("apparmor") {
                    return Err(refused(opt, format!(
                        "invalid --security-opt {opt:?}: AppArmor is not enabled on this host, so profile {value:?} cannot be applied"
                    )));
                }
                if value != "unconfined" {
                    return Err(refused(opt, format!(
                        "invalid --security-opt {opt:?}: AppArmor profiles are not supported by berth-runtime"
                    )));
                }
            }
            "label" => {
                if value != "disable" && !lsm_enabled("selinux") {
                    return Err(refused(opt, format!(
                        "invalid --security-opt {opt:?}: SELinux is not enabled on this host, so the label cannot be applied"
                    )));
                }
                if value != "disable" {
                    return Err(refused(opt, format!(
                        "invalid --security-opt {opt:?}: SELinux labels are not supported by berth-runtime"
                    )));
                }
            }
            _ => return Err(invalid(2, opt)),
        }
    }
    Ok(out)
}

/// The OCI seccomp section for a container with `caps`: `None` when unconfined.
pub fn seccomp_for(
    opts: &SecurityOpts,
    caps: &[String],
) -> Result<Option<oci_spec::runtime::LinuxSeccomp>> {
    let profile = match &opts.seccomp {
        Seccomp::Unconfined => return Ok(None),
        Seccomp::Default => docker_profile::docker_profile_for_capabilities(caps),
        Seccomp::Profile(json) => {
            let docker = docker_profile::DockerProfile::from_json(json)
                .map_err(EngineError::SeccompProfile)?;
            docker.to_oci(&docker_profile::DockerTarget::host(caps))
        }
    };
    if matches!(opts.seccomp, Seccomp::Default)
        && profile.syscalls().as_ref().map(|s| s.len()).unwrap_or(0) == 0
    {
        return Ok(None);
    }
    Ok(Some(profile))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(opts: &[&str]) -> Result<SecurityOpts> {
        parse(&opts.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn docker_forms_and_refusals() {
        assert!(p(&["no-new-privileges"]).unwrap().no_new_privileges);
        assert!(p(&["no-new-privileges:true"]).unwrap().no_new_privileges);
        assert!(!p(&["no-new-privileges=false"]).unwrap().no_new_privileges);
        assert_eq!(
            p(&["no-new-privileges=maybe"]).unwrap_err().to_string(),
            "invalid --security-opt 2: \"no-new-privileges=maybe\""
        );
        assert_eq!(
            p(&["bogus=1"]).unwrap_err().to_string(),
            "invalid --security-opt 2: \"bogus=1\""
        );
        assert_eq!(
            p(&["bogus"]).unwrap_err().to_string(),
            "invalid --security-opt 1: \"bogus\""
        );
        assert_eq!(
            p(&["seccomp=unconfined"]).unwrap().seccomp,
            Seccomp::Unconfined
        );
        assert!(p(&["label=disable", "apparmor=unconfined"]).is_ok());
        let missing = p(&["seccomp=/nonexistent/profile.json"]).unwrap_err();
        assert_eq!(
            missing.to_string(),
            "opening seccomp profile (/nonexistent/profile.json) failed: open /nonexistent/profile.json: no such file or directory"
        );
        if !lsm_enabled("apparmor") {
            assert!(p(&["apparmor=docker-default"]).is_err());
        }
    }

    #[test]
    fn a_profile_file_becomes_the_oci_filter() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("p.json");
        std::fs::write(
            &file,
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO","errnoRet":1}]}"#,
        )
        .unwrap();
        let opts = p(&[&format!("seccomp={}", file.display())]).unwrap();
        let v = seccomp_for(&opts, &[]).unwrap().unwrap();
        let v = serde_json::to_value(v).unwrap();
        assert_eq!(v["defaultAction"], "SCMP_ACT_ALLOW");
        assert!(v.to_string().contains("mkdirat"));
        let bad = p(&["seccomp={not json"]).unwrap();
        assert!(seccomp_for(&bad, &[])
            .unwrap_err()
            .to_string()
            .starts_with("Decoding seccomp profile failed"));
        assert_eq!(
            seccomp_for(&p(&["seccomp=unconfined"]).unwrap(), &[]).unwrap(),
            None
        );
    }
}
