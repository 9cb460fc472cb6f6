//! Finding the cgroup hierarchies: which version the host runs, where each v1 controller (or the
//! v2 unified tree) is mounted, and where the calling process sits in each of them. Owns the
//! parsing of `/proc/self/mountinfo` and `/proc/self/cgroup`; never writes anything.

use crate::CgroupError;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// The cgroup version a [`Hierarchy`] speaks. Hybrid hosts (v1 controllers plus an empty
/// cgroup2 tree) count as v1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum CgroupVersion {
    V1,
    V2,
}

impl fmt::Display for CgroupVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CgroupVersion::V1 => "v1",
            CgroupVersion::V2 => "v2",
        })
    }
}

/// v1 controllers Berth manages (named hierarchies such as `name=systemd` are left alone).
pub(crate) const V1_CONTROLLERS: &[&str] = &[
    "cpu",
    "cpuacct",
    "cpuset",
    "memory",
    "devices",
    "freezer",
    "blkio",
    "pids",
    "hugetlb",
    "net_cls",
    "net_prio",
    "perf_event",
    "rdma",
    "misc",
];

/// One mounted hierarchy as seen by this process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mount {
    /// Where the hierarchy is mounted (`/sys/fs/cgroup/memory`).
    pub mountpoint: PathBuf,
    /// Which cgroup of the hierarchy the mount shows at its mountpoint (mountinfo "root"; "/" normally).
    pub root: String,
    /// The calling process's own cgroup in this hierarchy (from /proc/self/cgroup), e.g. "/user.slice".
    pub own_path: String,
}

impl Mount {
    /// The directory of cgroup `cgroup` (a path from the hierarchy root, starting with '/').
    pub(crate) fn dir_of(&self, cgroup: &str) -> PathBuf {
        let inside = if self.root != "/" {
            cgroup.strip_prefix(self.root.as_str()).unwrap_or(cgroup)
        } else {
            cgroup
        };
        let rel = inside.trim_start_matches('/');
        if rel.is_empty() {
            self.mountpoint.clone()
        } else {
            self.mountpoint.join(rel)
        }
    }
}

/// Where the host's cgroup controllers live. Cheap to clone; detect once per process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    pub(crate) version: CgroupVersion,
    /// v1: controller name -> its mount (co-mounted controllers share a mountpoint).
    pub(crate) v1: BTreeMap<String, Mount>,
    /// v2: the unified tree (also set on hybrid v1 hosts, where it has no controllers).
    pub(crate) unified: Option<Mount>,
}

impl Hierarchy {
    /// Detect the host's hierarchy from `/proc/self/mountinfo` and `/proc/self/cgroup`.
    pub fn detect() -> Result<Hierarchy, CgroupError> {
        let mountinfo = read_proc("/proc/self/mountinfo")?;
        let own = read_proc("/proc/self/cgroup")?;
        Self::from_proc(&mountinfo, &own)
    }

    /// Build a hierarchy from the text of a mountinfo and a `/proc/<pid>/cgroup` file.
    pub fn from_proc(mountinfo: &str, proc_cgroup: &str) -> Result<Hierarchy, CgroupError> {
        let own = parse_proc_cgroup(proc_cgroup);
        let own_of = |key: &str| own.get(key).cloned().unwrap_or_else(|| "/".to_string());
        let mut v1 = BTreeMap::new();
        let mut unified_candidates = Vec::new();
        for line in mountinfo.lines() {
            let Some(entry) = parse_mountinfo_line(line) else {
                continue;
            };
            match entry.fstype.as_str() {
                "cgroup2" => unified_candidates.push(Mount {
                    mountpoint: entry.mountpoint,
                    root: entry.root,
                    own_path: own_of(""),
                }),
                "cgroup" => {
                    let controllers: Vec<&str> = entry
                        .super_opts
                        .split(',')
                        .filter(|o| V1_CONTROLLERS.contains(o))
                        .collect();
                    for c in &controllers {
                        v1.entry(c.to_string()).or_insert_with(|| Mount {
                            mountpoint: entry.mountpoint.clone(),
                            root: entry.root.clone(),
                            own_path: own_of(c),
                        });
                    }
                }
                _ => {}
            }
        }
        let unified = unified_candidates
            .iter()
            .find(|m| m.mountpoint == Path::new("/sys/fs/cgroup"))
            .or_else(|| unified_candidates.first())
            .cloned();
        let pure_v2 = unified
            .as_ref()
            .is_some_and(|m| m.mountpoint == Path::new("/sys/fs/cgroup"));
        let version = if pure_v2 || (v1.is_empty() && unified.is_some()) {
            CgroupVersion::V2
        } else if !v1.is_empty() {
            CgroupVersion::V1
        } else {
            return Err(CgroupError::NoHierarchy(
                "no cgroup or cgroup2 mount in /proc/self/mountinfo".into(),
            ));
        };
        if version == CgroupVersion::V2 {
            v1.clear();
        }
        Ok(Hierarchy {
            version,
            v1,
            unified,
        })
    }

    /// A v1 hierarchy rooted at `root_dir` whose subdirectories are the controllers (a directory
    /// named "cpu,cpuacct" serves both). The calling process is taken to live at "/". For tests.
    pub fn v1_at(root_dir: &Path) -> Result<Hierarchy, CgroupError> {
        let read_err = |source| CgroupError::Read {
            path: root_dir.to_path_buf(),
            source,
        };
        let mut v1 = BTreeMap::new();
        for entry in std::fs::read_dir(root_dir).map_err(read_err)? {
            let entry = entry.map_err(read_err)?;
            if !entry.path().is_dir() {
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            for c in name.split(',').filter(|c| V1_CONTROLLERS.contains(c)) {
                v1.insert(
                    c.to_string(),
                    Mount {
                        mountpoint: entry.path(),
                        root: "/".into(),
                        own_path: "/".into(),
                    },
                );
            }
        }
        if v1.is_empty() {
            return Err(CgroupError::NoHierarchy(format!(
                "no controller directories under {}",
                root_dir.display()
            )));
        }
        Ok(Hierarchy {
            version: CgroupVersion::V1,
            v1,
            unified: None,
        })
    }

    /// A v2 unified hierarchy rooted at `root_dir`; the calling process is taken to live at "/".
    /// For tests against a fake cgroupfs.
    pub fn v2_at(root_dir: &Path) -> Result<Hierarchy, CgroupError> {
        Ok(Hierarchy {
            version: CgroupVersion::V2,
            v1: BTreeMap::new(),
            unified: Some(Mount {
                mountpoint: root_dir.to_path_buf(),
                root: "/".into(),
                own_path: "/".into(),
            }),
        })
    }

    /// Which cgroup version this hierarchy uses.
    pub fn version(&self) -> CgroupVersion {
        self.version
    }

    /// Where the cgroup2 tree is mounted: the whole hierarchy on v2 hosts, the controller-less
    /// `unified` tree on hybrid v1 hosts; `None` on pure v1 hosts.
    pub fn unified_mountpoint(&self) -> Option<&Path> {
        self.unified.as_ref().map(|m| m.mountpoint.as_path())
    }

    /// v1: controller name -> mountpoint; v2: "unified" -> mountpoint.
    pub fn mountpoints(&self) -> BTreeMap<String, PathBuf> {
        match self.version {
            CgroupVersion::V1 => self
                .v1
                .iter()
                .map(|(k, m)| (k.clone(), m.mountpoint.clone()))
                .collect(),
            CgroupVersion::V2 => self
                .unified
                .iter()
                .map(|m| ("unified".to_string(), m.mountpoint.clone()))
                .collect(),
        }
    }
}

fn read_proc(path: &str) -> Result<String, CgroupError> {
    std::fs::read_to_string(path).map_err(|source| CgroupError::Read {
        path: path.into(),
        source,
    })
}

/// `/proc/<pid>/cgroup` as controller -> path; the v2 line ("0::/path") has key "".
pub(crate) fn parse_proc_cgroup(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_id), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if controllers.is_empty() {
            out.insert(String::new(), path.to_string());
        } else {
            for c in controllers.split(',') {
                out.insert(c.to_string(), path.to_string());
            }
        }
    }
    out
}

struct MountinfoEntry {
    root: String,
    mountpoint: PathBuf,
    fstype: String,
    super_opts: String,
}

fn parse_mountinfo_line(line: &str) -> Option<MountinfoEntry> {
    let (left, right) = line.split_once(" - ")?;
    let fields: Vec<&str> = left.split(' ').collect();
    let right: Vec<&str> = right.split(' ').collect();
    if fields.len() < 5 || right.len() < 3 {
        return None;
    }
    Some(MountinfoEntry {
        root: unescape_octal(fields[3]),
        mountpoint: PathBuf::from(unescape_octal(fields[4])),
        fstype: right[0].to_string(),
        super_opts: right[2].to_string(),
    })
}

/// mountinfo escapes space, tab, newline and backslash as \ooo.
fn unescape_octal(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 4 <= bytes.len() {
            if let Some(v) = std::str::from_utf8(&bytes[i + 1..i + 4])
                .ok()
                .and_then(|oct| u8::from_str_radix(oct, 8).ok())
            {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID_MOUNTINFO: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
    const HYBRID_CGROUP: &str =
        "9:name=systemd:/\n4:memory:/process_api/c38\n2:cpuacct:/\n1:cpu:/\n0::/\n";

    #[test]
    fn hybrid_host_is_v1_with_own_paths() {
        let h = Hierarchy::from_proc(HYBRID_MOUNTINFO, HYBRID_CGROUP).unwrap();
        assert_eq!(h.version(), CgroupVersion::V1);
        assert_eq!(h.v1["memory"].own_path, "/process_api/c38");
        assert_eq!(h.v1["cpu"].mountpoint, Path::new("/sys/fs/cgroup/cpu"));
        assert!(!h.v1.contains_key("systemd"));
        assert!(!h.v1.contains_key("name=systemd"));
    }

    #[test]
    fn comounted_cpu_cpuacct_share_a_mount() {
        let mi = "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n";
        let h = Hierarchy::from_proc(mi, "3:cpu,cpuacct:/a\n").unwrap();
        assert_eq!(h.v1["cpu"], h.v1["cpuacct"]);
        assert_eq!(h.v1["cpuacct"].own_path, "/a");
    }

    #[test]
    fn unified_at_sys_fs_cgroup_is_v2() {
        let mi = "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n";
        let h = Hierarchy::from_proc(mi, "0::/user.slice/session-1.scope\n").unwrap();
        assert_eq!(h.version(), CgroupVersion::V2);
        assert_eq!(
            h.unified.as_ref().unwrap().own_path,
            "/user.slice/session-1.scope"
        );
    }

    #[test]
    fn no_cgroup_mounts_is_an_error() {
        let mi = "31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n";
        assert!(Hierarchy::from_proc(mi, "").is_err());
    }

    #[test]
    fn mount_root_is_stripped() {
        let m = Mount {
            mountpoint: "/sys/fs/cgroup/memory".into(),
            root: "/docker/abc".into(),
            own_path: "/docker/abc".into(),
        };
        assert_eq!(
            m.dir_of("/docker/abc/berth/x"),
            Path::new("/sys/fs/cgroup/memory/berth/x")
        );
        assert_eq!(m.dir_of("/"), Path::new("/sys/fs/cgroup/memory"));
    }

    #[test]
    fn octal_escapes_are_decoded() {
        assert_eq!(unescape_octal("/a\\040b"), "/a b");
        assert_eq!(unescape_octal("/plain"), "/plain");
    }
}
