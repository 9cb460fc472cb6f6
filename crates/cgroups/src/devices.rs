//! Device access rules: the OCI `linux.resources.devices` list turned into cgroup v1
//! `devices.allow`/`devices.deny` lines, plus runc's default allow list that every container gets
//! (null, zero, full, random, urandom, tty, console, ptmx, pts, tun, and mknod of any device).

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};
use std::fmt;

/// One device cgroup rule. `kind` is 'a' (all), 'c' or 'b'; `None` major/minor mean any ('*').
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRule {
    pub allow: bool,
    pub kind: char,
    pub major: Option<i64>,
    pub minor: Option<i64>,
    pub access: String,
}

impl DeviceRule {
    fn allow(kind: char, major: Option<i64>, minor: Option<i64>, access: &str) -> DeviceRule {
        DeviceRule {
            allow: true,
            kind,
            major,
            minor,
            access: access.to_string(),
        }
    }

    /// Convert an OCI rule (absent type = all devices, absent access = "rwm").
    pub fn from_oci(d: &LinuxDeviceCgroup) -> DeviceRule {
        let kind = match d.typ() {
            Some(LinuxDeviceType::C) | Some(LinuxDeviceType::U) => 'c',
            Some(LinuxDeviceType::B) => 'b',
            Some(LinuxDeviceType::P) => 'p',
            Some(LinuxDeviceType::A) | None => 'a',
        };
        let access = d
            .access()
            .clone()
            .filter(|a| !a.is_empty())
            .unwrap_or_else(|| "rwm".to_string());
        DeviceRule {
            allow: d.allow(),
            kind,
            major: d.major().filter(|m| *m >= 0),
            minor: d.minor().filter(|m| *m >= 0),
            access,
        }
    }

    /// True for "all devices, all access" (what `--privileged` or a leading deny-all look like).
    pub fn is_all_devices(&self) -> bool {
        self.kind == 'a' && self.major.is_none() && self.minor.is_none()
    }
}

impl fmt::Display for DeviceRule {
    /// The v1 `devices.allow`/`devices.deny` line: "c 1:3 rwm", "a *:* rwm".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let num = |n: Option<i64>| n.map_or_else(|| "*".to_string(), |n| n.to_string());
        write!(
            f,
            "{} {}:{} {}",
            self.kind,
            num(self.major),
            num(self.minor),
            self.access
        )
    }
}

/// Checks the spec's rules before any is written: access must be a combination of r, w and m
/// (a typo such as "rwa" would otherwise reach `devices.deny` and fail half-way, or be ignored
/// by the eBPF program), and numbers must not be below -1.
pub fn validate_rules(spec: &[LinuxDeviceCgroup]) -> Result<(), crate::CgroupError> {
    for d in spec {
        let rule = DeviceRule::from_oci(d);
        let bad = |reason: &str| crate::CgroupError::InvalidDeviceRule {
            rule: rule.to_string(),
            reason: reason.to_string(),
        };
        let mut seen = String::new();
        for c in rule.access.chars() {
            if !matches!(c, 'r' | 'w' | 'm') {
                return Err(bad(&format!(
                    "invalid access {:?}: must be a combination of r, w and m",
                    rule.access
                )));
            }
            if seen.contains(c) {
                return Err(bad(&format!("access {:?} repeats {c:?}", rule.access)));
            }
            seen.push(c);
        }
        if d.major().is_some_and(|m| m < -1) || d.minor().is_some_and(|m| m < -1) {
            return Err(bad("device numbers must be -1 (any) or above"));
        }
    }
    Ok(())
}

/// runc's default allowed devices, appended after the spec's own rules.
pub fn default_allowed_devices() -> Vec<DeviceRule> {
    vec![
        DeviceRule::allow('c', None, None, "m"),
        DeviceRule::allow('b', None, None, "m"),
        DeviceRule::allow('c', Some(1), Some(3), "rwm"), // /dev/null
        DeviceRule::allow('c', Some(1), Some(8), "rwm"), // /dev/random
        DeviceRule::allow('c', Some(1), Some(7), "rwm"), // /dev/full
        DeviceRule::allow('c', Some(5), Some(0), "rwm"), // /dev/tty
        DeviceRule::allow('c', Some(1), Some(5), "rwm"), // /dev/zero
        DeviceRule::allow('c', Some(1), Some(9), "rwm"), // /dev/urandom
        DeviceRule::allow('c', Some(5), Some(1), "rwm"), // /dev/console
        DeviceRule::allow('c', Some(136), None, "rwm"),  // /dev/pts/*
        DeviceRule::allow('c', Some(5), Some(2), "rwm"), // /dev/ptmx
        DeviceRule::allow('c', Some(10), Some(200), "rwm"), // /dev/net/tun
    ]
}

/// The full ordered rule list for a container: the spec's rules, then runc's defaults.
pub(crate) fn effective_rules(spec: &[LinuxDeviceCgroup]) -> Vec<DeviceRule> {
    let mut rules: Vec<DeviceRule> = spec.iter().map(DeviceRule::from_oci).collect();
    rules.extend(default_allowed_devices());
    rules
}

/// The v1 writes for a rule list, in order: deny everything, then replay the spec's rules and
/// runc's defaults (allow rules to `devices.allow`, deny rules to `devices.deny`).
pub(crate) fn v1_device_writes(spec: &[LinuxDeviceCgroup]) -> Vec<(&'static str, String)> {
    let mut writes = vec![("devices.deny", "a".to_string())];
    for rule in effective_rules(spec) {
        let file = if rule.allow {
            "devices.allow"
        } else {
            "devices.deny"
        };
        let line = if rule.is_all_devices() {
            "a".to_string()
        } else {
            rule.to_string()
        };
        writes.push((file, line));
    }
    writes
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxDeviceCgroupBuilder;

    #[test]
    fn access_strings_are_validated() {
        let rule = |access: &str| {
            LinuxDeviceCgroupBuilder::default()
                .allow(false)
                .typ(LinuxDeviceType::C)
                .major(1)
                .minor(3)
                .access(access)
                .build()
                .unwrap()
        };
        assert!(validate_rules(&[rule("rwm"), rule("r"), rule("mw"), rule("")]).is_ok());
        for bad in ["rwa", "x", "rr", "rwmx"] {
            let e = validate_rules(&[rule(bad)]).unwrap_err().to_string();
            assert!(e.contains("c 1:3"), "{e}");
        }
    }

    #[test]
    fn oci_rules_render_as_v1_lines() {
        let deny_all = LinuxDeviceCgroupBuilder::default()
            .allow(false)
            .access("rwm")
            .build()
            .unwrap();
        let r = DeviceRule::from_oci(&deny_all);
        assert!(r.is_all_devices());
        assert_eq!(r.to_string(), "a *:* rwm");
        let null = LinuxDeviceCgroupBuilder::default()
            .allow(true)
            .typ(LinuxDeviceType::C)
            .major(1)
            .minor(3)
            .access("rw")
            .build()
            .unwrap();
        assert_eq!(DeviceRule::from_oci(&null).to_string(), "c 1:3 rw");
    }

    #[test]
    fn v1_writes_deny_all_then_rules_then_defaults() {
        let deny_all = LinuxDeviceCgroupBuilder::default()
            .allow(false)
            .access("rwm")
            .build()
            .unwrap();
        let fuse = LinuxDeviceCgroupBuilder::default()
            .allow(true)
            .typ(LinuxDeviceType::C)
            .major(10)
            .minor(229)
            .access("rwm")
            .build()
            .unwrap();
        let w = v1_device_writes(&[deny_all, fuse]);
        assert_eq!(w[0], ("devices.deny", "a".to_string()));
        assert_eq!(w[1], ("devices.deny", "a".to_string()));
        assert_eq!(w[2], ("devices.allow", "c 10:229 rwm".to_string()));
        assert_eq!(w[3], ("devices.allow", "c *:* m".to_string()));
        assert_eq!(w.last().unwrap().1, "c 10:200 rwm");
        let privileged = LinuxDeviceCgroupBuilder::default()
            .allow(true)
            .access("rwm")
            .build()
            .unwrap();
        assert_eq!(
            v1_device_writes(&[privileged])[1],
            ("devices.allow", "a".to_string())
        );
    }

    #[test]
    fn defaults_follow_spec_rules() {
        let rules = effective_rules(&[]);
        assert_eq!(rules[0].to_string(), "c *:* m");
        assert!(rules.iter().any(|r| r.to_string() == "c 136:* rwm"));
    }
}
