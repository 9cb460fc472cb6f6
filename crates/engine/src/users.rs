//! `--user` / image `User` resolution against the image's own `/etc/passwd` and `/etc/group`
//! (never the host's): `name`, `uid`, `name:group`, `uid:gid`, plus supplementary groups, like
//! Docker's `getent`-free lookup. The parsers are pure; [`resolve_in_rootfs`] reads the files.
use crate::error::{EngineError, Result};
use std::path::Path;

/// A user the container's process runs as.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResolvedUser {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    /// Home directory from passwd (for `HOME`), when known.
    pub home: Option<String>,
}

struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

struct GroupEntry {
    name: String,
    gid: u32,
    members: Vec<String>,
}

fn parse_passwd(text: &str) -> Vec<PasswdEntry> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 7 {
                return None;
            }
            Some(PasswdEntry {
                name: f[0].into(),
                uid: f[2].parse().ok()?,
                gid: f[3].parse().ok()?,
                home: f[5].into(),
            })
        })
        .collect()
}

fn parse_group(text: &str) -> Vec<GroupEntry> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 4 {
                return None;
            }
            Some(GroupEntry {
                name: f[0].into(),
                gid: f[2].parse().ok()?,
                members: f[3]
                    .split(',')
                    .filter(|m| !m.is_empty())
                    .map(str::to_string)
                    .collect(),
            })
        })
        .collect()
}

/// The largest uid/gid a container may use (runc refuses the rest).
pub const MAX_ID: u64 = 2_147_483_647;
const ID_RANGE_MESSAGE: &str = "uids and gids must be in range 0-2147483647";

/// Resolves `spec` (`""` means root) given the image's passwd and group text.
pub fn resolve(spec: &str, passwd: &str, group: &str) -> Result<ResolvedUser> {
    let users = parse_passwd(passwd);
    let groups = parse_group(group);
    let (user_part, group_part) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let err = |reason: &str| EngineError::User {
        user: spec.to_string(),
        reason: reason.to_string(),
    };
    // Like runc (and so Docker): ids beyond i32 would wrap to root or to -1 in the kernel.
    for part in [Some(user_part), group_part].into_iter().flatten() {
        if !part.is_empty()
            && part.bytes().all(|b| b.is_ascii_digit())
            && part.parse::<u64>().map_or(true, |n| n > MAX_ID)
        {
            return Err(err(ID_RANGE_MESSAGE));
        }
    }
    let entry = if user_part.is_empty() {
        users.iter().find(|u| u.uid == 0)
    } else if let Ok(uid) = user_part.parse::<u32>() {
        users.iter().find(|u| u.uid == uid)
    } else {
        Some(
            users
                .iter()
                .find(|u| u.name == user_part)
                .ok_or_else(|| err("no matching entries in passwd file"))?,
        )
    };
    let uid = match (user_part.parse::<u32>(), entry) {
        (Ok(uid), _) => uid,
        (Err(_), Some(e)) => e.uid,
        (Err(_), None) => 0,
    };
    let gid = match group_part {
        Some(g) if !g.is_empty() => match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => {
                groups
                    .iter()
                    .find(|e| e.name == g)
                    .ok_or_else(|| err("no matching entries in group file"))?
                    .gid
            }
        },
        _ => entry.map(|e| e.gid).unwrap_or(0),
    };
    let mut additional_gids = Vec::new();
    if group_part.is_none() {
        if let Some(e) = entry {
            for g in &groups {
                if g.members.iter().any(|m| m == &e.name)
                    && g.gid != gid
                    && !additional_gids.contains(&g.gid)
                {
                    additional_gids.push(g.gid);
                }
            }
        }
    }
    Ok(ResolvedUser {
        uid,
        gid,
        additional_gids,
        home: entry.map(|e| e.home.clone()),
    })
}

/// Resolves `spec` against `<rootfs>/etc/passwd` and `/etc/group` (missing files read as empty).
/// Both are read through an fd of the root with `RESOLVE_IN_ROOT`, so an image whose
/// `/etc/passwd` is a symlink (`-> /etc/shadow`, `../../..`) reads its own files, never the host's.
pub fn resolve_in_rootfs(spec: &str, rootfs: &Path) -> Result<ResolvedUser> {
    let root = berth_inroot::Root::open(rootfs).map_err(|e| EngineError::io(rootfs, e))?;
    let read = |path: &str| -> String {
        root.read(Path::new(path))
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    };
    if spec.is_empty() || spec == "0" || spec == "root" {
        // The common case costs no file reads beyond passwd for HOME.
        let mut user = resolve("", &read("/etc/passwd"), "")?;
        if user.home.is_none() {
            user.home = Some("/root".into());
        }
        return Ok(user);
    }
    resolve(spec, &read("/etc/passwd"), &read("/etc/group"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str =
        "root:x:0:0:root:/root:/bin/sh\ntester:x:1000:1000:tester:/home/tester:/bin/sh\n";
    const GROUP: &str = "root:x:0:\ntester:x:1000:\nstaff:x:50:tester\n";

    #[test]
    fn names_numbers_and_groups() {
        let u = resolve("tester", PASSWD, GROUP).unwrap();
        assert_eq!(
            (u.uid, u.gid, u.additional_gids.clone()),
            (1000, 1000, vec![50])
        );
        assert_eq!(u.home.as_deref(), Some("/home/tester"));
        let u = resolve("tester:staff", PASSWD, GROUP).unwrap();
        assert_eq!((u.uid, u.gid), (1000, 50));
        let u = resolve("1234:5678", PASSWD, GROUP).unwrap();
        assert_eq!((u.uid, u.gid), (1234, 5678));
        let u = resolve("", PASSWD, GROUP).unwrap();
        assert_eq!((u.uid, u.gid), (0, 0));
        assert!(resolve("ghost", PASSWD, GROUP).is_err());
        assert!(resolve("tester:ghosts", PASSWD, GROUP).is_err());
    }

    #[test]
    fn ids_beyond_i32_are_refused() {
        for spec in [
            "4294967295",
            "0:4294967295",
            "2147483648",
            "1:99999999999999999999",
        ] {
            let e = resolve(spec, PASSWD, GROUP).unwrap_err().to_string();
            assert!(e.contains("must be in range 0-2147483647"), "{spec}: {e}");
        }
        let u = resolve("2147483647:2147483647", PASSWD, GROUP).unwrap();
        assert_eq!((u.uid, u.gid), (2147483647, 2147483647));
    }

    #[test]
    fn passwd_is_read_inside_the_root_even_through_an_escaping_symlink() {
        let host = tempfile::tempdir().unwrap();
        std::fs::write(
            host.path().join("passwd"),
            "hostonly:x:4242:4242::/h:/bin/sh\n",
        )
        .unwrap();
        let rootfs = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(rootfs.path().join("etc")).unwrap();
        // An absolute link to a host file, and a relative one climbing out of the root.
        std::os::unix::fs::symlink(host.path().join("passwd"), rootfs.path().join("etc/passwd"))
            .unwrap();
        let e = resolve_in_rootfs("hostonly", rootfs.path()).unwrap_err();
        assert!(e.to_string().contains("no matching entries"), "{e}");
        std::fs::remove_file(rootfs.path().join("etc/passwd")).unwrap();
        let climb = format!(
            "../../../../../../..{}",
            host.path().join("passwd").display()
        );
        std::os::unix::fs::symlink(climb, rootfs.path().join("etc/passwd")).unwrap();
        assert!(resolve_in_rootfs("hostonly", rootfs.path()).is_err());
        // The image's own file, reached through a link inside the root, is used.
        std::fs::write(rootfs.path().join("etc/real"), PASSWD).unwrap();
        std::fs::remove_file(rootfs.path().join("etc/passwd")).unwrap();
        std::os::unix::fs::symlink("/etc/real", rootfs.path().join("etc/passwd")).unwrap();
        assert_eq!(
            resolve_in_rootfs("tester", rootfs.path()).unwrap().uid,
            1000
        );
    }
}
