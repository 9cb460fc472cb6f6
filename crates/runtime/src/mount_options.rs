//! fstab-style mount options from the spec turned into mount(2) flags, propagation flags and the
//! filesystem data string. Pure: no syscalls here.

use libc::c_ulong;

/// The parsed options of one spec mount.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MountOptions {
    /// Flags for the mount (and, for binds, the remount).
    pub flags: c_ulong,
    /// Flags explicitly cleared by an option (`rw`, `suid`, …); informational.
    pub cleared: c_ulong,
    /// MS_SHARED/MS_SLAVE/MS_PRIVATE/MS_UNBINDABLE (with MS_REC), applied after the mount.
    pub propagation: Vec<c_ulong>,
    /// Everything the kernel should see as filesystem data (`mode=755,size=65536k`).
    pub data: String,
    pub bind: bool,
    pub recursive: bool,
    /// `MOUNT_ATTR_*` bits to set on the mount and every mount below it (`rro`, `rnosuid`, …),
    /// applied with mount_setattr(AT_RECURSIVE) after the mount.
    pub recursive_set: u64,
    /// `MOUNT_ATTR_*` bits to clear recursively (`rrw`, `rsuid`, `ratime`, …).
    pub recursive_clear: u64,
}

/// mount_setattr(2) attribute bits (linux/mount.h); libc does not export them all.
pub mod attr {
    pub const RDONLY: u64 = 0x0000_0001;
    pub const NOSUID: u64 = 0x0000_0002;
    pub const NODEV: u64 = 0x0000_0004;
    pub const NOEXEC: u64 = 0x0000_0008;
    /// The atime setting is a 3-bit enum, not flags: changing it clears all of these.
    pub const ATIME_MASK: u64 = 0x0000_0070;
    pub const RELATIME: u64 = 0x0000_0000;
    pub const NOATIME: u64 = 0x0000_0010;
    pub const STRICTATIME: u64 = 0x0000_0020;
    pub const NODIRATIME: u64 = 0x0000_0080;
    pub const NOSYMFOLLOW: u64 = 0x0020_0000;
}

impl MountOptions {
    /// Whether any recursive attribute was asked for.
    pub fn has_recursive_attrs(&self) -> bool {
        self.recursive_set != 0 || self.recursive_clear != 0
    }
}

/// A recursive attribute option: (bits, true when the option clears them).
fn recursive_attr(opt: &str) -> Option<(u64, bool)> {
    Some(match opt {
        "rro" => (attr::RDONLY, false),
        "rrw" => (attr::RDONLY, true),
        "rnosuid" => (attr::NOSUID, false),
        "rsuid" => (attr::NOSUID, true),
        "rnodev" => (attr::NODEV, false),
        "rdev" => (attr::NODEV, true),
        "rnoexec" => (attr::NOEXEC, false),
        "rexec" => (attr::NOEXEC, true),
        "rnodiratime" => (attr::NODIRATIME, false),
        "rdiratime" => (attr::NODIRATIME, true),
        "rrelatime" => (attr::RELATIME, false),
        "rnorelatime" => (attr::RELATIME, true),
        "rnoatime" => (attr::NOATIME, false),
        "ratime" => (attr::NOATIME, true),
        "rstrictatime" => (attr::STRICTATIME, false),
        "rnostrictatime" => (attr::STRICTATIME, true),
        "rnosymfollow" => (attr::NOSYMFOLLOW, false),
        "rsymfollow" => (attr::NOSYMFOLLOW, true),
        _ => return None,
    })
}

fn is_atime_option(opt: &str) -> bool {
    matches!(
        opt,
        "rrelatime" | "rnorelatime" | "rnoatime" | "ratime" | "rstrictatime" | "rnostrictatime"
    )
}

/// Parses a list of options.
pub fn parse(options: &[String]) -> MountOptions {
    let mut out = MountOptions::default();
    let mut data = Vec::new();
    for opt in options {
        let (set, clear): (c_ulong, c_ulong) = match opt.as_str() {
            "ro" => (libc::MS_RDONLY, 0),
            "rw" => (0, libc::MS_RDONLY),
            "suid" => (0, libc::MS_NOSUID),
            "nosuid" => (libc::MS_NOSUID, 0),
            "dev" => (0, libc::MS_NODEV),
            "nodev" => (libc::MS_NODEV, 0),
            "exec" => (0, libc::MS_NOEXEC),
            "noexec" => (libc::MS_NOEXEC, 0),
            "sync" => (libc::MS_SYNCHRONOUS, 0),
            "async" => (0, libc::MS_SYNCHRONOUS),
            "dirsync" => (libc::MS_DIRSYNC, 0),
            "remount" => (libc::MS_REMOUNT, 0),
            "mand" => (libc::MS_MANDLOCK, 0),
            "nomand" => (0, libc::MS_MANDLOCK),
            "atime" => (0, libc::MS_NOATIME),
            "noatime" => (libc::MS_NOATIME, 0),
            "diratime" => (0, libc::MS_NODIRATIME),
            "nodiratime" => (libc::MS_NODIRATIME, 0),
            "relatime" => (libc::MS_RELATIME, 0),
            "norelatime" => (0, libc::MS_RELATIME),
            "strictatime" => (libc::MS_STRICTATIME, 0),
            "nostrictatime" => (0, libc::MS_STRICTATIME),
            "lazytime" => (libc::MS_LAZYTIME, 0),
            "nolazytime" => (0, libc::MS_LAZYTIME),
            "silent" => (libc::MS_SILENT, 0),
            "loud" => (0, libc::MS_SILENT),
            "bind" => {
                out.bind = true;
                continue;
            }
            "rbind" => {
                out.bind = true;
                out.recursive = true;
                continue;
            }
            "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave" | "unbindable"
            | "runbindable" => {
                out.propagation.push(propagation_flag(opt));
                continue;
            }
            r if recursive_attr(r).is_some() => {
                let Some((bits, clear)) = recursive_attr(r) else {
                    continue;
                };
                if is_atime_option(r) {
                    // The kernel takes an atime change only as "clear the whole atime field,
                    // set one value": clearing one (ratime, rnostrictatime) means relatime,
                    // the kernel's default.
                    out.recursive_clear |= attr::ATIME_MASK;
                    out.recursive_set &= !attr::ATIME_MASK;
                    if !clear {
                        out.recursive_set |= bits;
                    }
                } else if clear {
                    out.recursive_clear |= bits;
                    out.recursive_set &= !bits;
                } else {
                    out.recursive_set |= bits;
                    out.recursive_clear &= !bits;
                }
                continue;
            }
            // Options runc accepts that have no mount(2) meaning here.
            "tmpcopyup" | "idmap" | "ridmap" | "defaults" => continue,
            other => {
                data.push(other.to_owned());
                continue;
            }
        };
        out.flags = (out.flags & !clear) | set;
        out.cleared |= clear;
    }
    out.data = data.join(",");
    out
}

/// The flag value for one propagation option name.
pub fn propagation_flag(name: &str) -> c_ulong {
    let base = match name.trim_start_matches('r') {
        "shared" => libc::MS_SHARED,
        "slave" => libc::MS_SLAVE,
        "unbindable" => libc::MS_UNBINDABLE,
        _ => libc::MS_PRIVATE,
    };
    // Only the r-forms ("rprivate", "rshared", …) start with 'r'.
    if name.starts_with('r') {
        base | libc::MS_REC
    } else {
        base
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(v: &[&str]) -> MountOptions {
        parse(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn tmpfs_options() {
        let o = opts(&["nosuid", "strictatime", "mode=755", "size=65536k"]);
        assert_eq!(o.flags, libc::MS_NOSUID | libc::MS_STRICTATIME);
        assert_eq!(o.data, "mode=755,size=65536k");
        assert!(!o.bind);
    }

    #[test]
    fn bind_ro_propagation() {
        let o = opts(&["rbind", "ro", "rprivate"]);
        assert!(o.bind && o.recursive);
        assert_eq!(o.flags, libc::MS_RDONLY);
        assert_eq!(o.propagation, vec![libc::MS_PRIVATE | libc::MS_REC]);
    }

    #[test]
    fn recursive_attributes() {
        let o = opts(&["rbind", "rro", "rnosuid", "rnoexec", "rnoatime"]);
        assert_eq!(
            o.recursive_set,
            attr::RDONLY | attr::NOSUID | attr::NOEXEC | attr::NOATIME
        );
        assert_eq!(o.recursive_clear, attr::ATIME_MASK);
        assert!(o.data.is_empty(), "not filesystem data: {}", o.data);
        let o = opts(&["rro", "rrw", "rnoatime", "ratime"]);
        assert_eq!(o.recursive_set, attr::RELATIME);
        assert_eq!(o.recursive_clear, attr::RDONLY | attr::ATIME_MASK);
        let o = opts(&["rnosymfollow", "rnodev", "rdev"]);
        assert_eq!(o.recursive_set, attr::NOSYMFOLLOW);
        assert_eq!(o.recursive_clear, attr::NODEV);
        assert!(!opts(&["ro", "nosuid"]).has_recursive_attrs());
    }

    #[test]
    fn later_option_wins() {
        let o = opts(&["ro", "rw"]);
        assert_eq!(o.flags & libc::MS_RDONLY, 0);
    }

    #[test]
    fn propagation_names() {
        assert_eq!(propagation_flag("private"), libc::MS_PRIVATE);
        assert_eq!(
            propagation_flag("rprivate"),
            libc::MS_PRIVATE | libc::MS_REC
        );
        assert_eq!(propagation_flag("rshared"), libc::MS_SHARED | libc::MS_REC);
        assert_eq!(propagation_flag("slave"), libc::MS_SLAVE);
        assert_eq!(
            propagation_flag("runbindable"),
            libc::MS_UNBINDABLE | libc::MS_REC
        );
    }
}
