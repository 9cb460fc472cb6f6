//! Device nodes in the container's `/dev`: runc's defaults and the spec's devices (made, or bind-mounted
//! from the host where mknod is not allowed), and the `/dev` symlinks.

use super::*;

/// Devices every container gets, as runc creates them.
pub(super) fn default_devices() -> Vec<(&'static str, u64, u64)> {
    vec![
        ("/dev/null", 1, 3),
        ("/dev/zero", 1, 5),
        ("/dev/full", 1, 7),
        ("/dev/random", 1, 8),
        ("/dev/urandom", 1, 9),
        ("/dev/tty", 5, 0),
    ]
}

pub(super) fn create_devices(plan: &RootfsPlan<'_>, root: rustix::fd::BorrowedFd<'_>) -> Res<()> {
    let spec_devices: &[LinuxDevice] = plan
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.devices().as_deref())
        .unwrap_or(&[]);
    // SAFETY: umask only changes this process's file creation mask.
    let old = unsafe { libc::umask(0) };
    let result = (|| {
        for (path, major, minor) in default_devices() {
            if spec_devices.iter().any(|d| d.path() == Path::new(path)) {
                continue;
            }
            make_device(
                plan,
                root,
                Path::new(path),
                libc::S_IFCHR,
                major,
                minor,
                0o666,
                0,
                0,
            )?;
        }
        for d in spec_devices {
            let kind = match d.typ() {
                LinuxDeviceType::B => libc::S_IFBLK,
                LinuxDeviceType::P => libc::S_IFIFO,
                _ => libc::S_IFCHR,
            };
            make_device(
                plan,
                root,
                d.path(),
                kind,
                d.major() as u64,
                d.minor() as u64,
                d.file_mode().unwrap_or(0o666),
                d.uid().unwrap_or(0),
                d.gid().unwrap_or(0),
            )?;
        }
        Ok(())
    })();
    // SAFETY: restoring the previous mask.
    unsafe { libc::umask(old) };
    result
}

#[allow(clippy::too_many_arguments)]
pub(super) fn make_device(
    plan: &RootfsPlan<'_>,
    root: rustix::fd::BorrowedFd<'_>,
    path: &Path,
    kind: libc::mode_t,
    major: u64,
    minor: u64,
    mode: u32,
    uid: u32,
    gid: u32,
) -> Res<()> {
    let what = || format!("device {}", path.display());
    if plan.in_user_ns {
        // mknod is not allowed in a user namespace: bind the host's node.
        let target = ensure_in_root(root, path, Kind::File).map_err(|e| err(what(), e))?;
        let host = path
            .to_str()
            .ok_or_else(|| InitError::Refused("device path is not UTF-8".into()))?;
        return mount(
            Some(host),
            &proc_fd_path(&target),
            None,
            libc::MS_BIND,
            None,
        )
        .map_err(|e| err(what(), e));
    }
    let parent = path.parent().unwrap_or(Path::new("/"));
    let name = path
        .file_name()
        .ok_or_else(|| InitError::Refused(format!("{}: no file name", what())))?;
    let dir = ensure_in_root(root, parent, Kind::Dir).map_err(|e| err(what(), e))?;
    let dev = rustix::fs::makedev(major as u32, minor as u32);
    let file_type = rustix::fs::FileType::from_raw_mode(kind);
    match rustix::fs::mknodat(
        dir.as_fd(),
        name,
        file_type,
        Mode::from_raw_mode(mode & 0o7777),
        dev,
    ) {
        Ok(()) => {}
        Err(rustix::io::Errno::EXIST) => return Ok(()),
        Err(e) => return Err(err(what(), e)),
    }
    if uid != 0 || gid != 0 {
        rustix::fs::chownat(
            dir.as_fd(),
            name,
            Some(rustix::process::Uid::from_raw(uid)),
            Some(rustix::process::Gid::from_raw(gid)),
            rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(|e| err(what(), e))?;
    }
    Ok(())
}

pub(super) fn dev_symlinks(root: rustix::fd::BorrowedFd<'_>) -> Res<()> {
    let dev = match open_in_root(root, Path::new("/dev"), OFlags::PATH | OFlags::DIRECTORY) {
        Ok(fd) => fd,
        Err(_) => return Ok(()),
    };
    let mut links = vec![
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
    ];
    if Path::new("/proc/kcore").exists() {
        links.push(("/proc/kcore", "core"));
    }
    for (target, name) in links {
        match rustix::fs::symlinkat(target, dev.as_fd(), name) {
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            Err(e) => return Err(err(format!("/dev/{name}"), e)),
        }
    }
    if open_in_root(root, Path::new("/dev/pts/ptmx"), OFlags::PATH).is_ok() {
        let _ = rustix::fs::unlinkat(dev.as_fd(), "ptmx", rustix::fs::AtFlags::empty());
        rustix::fs::symlinkat("pts/ptmx", dev.as_fd(), "ptmx").map_err(|e| err("/dev/ptmx", e))?;
    }
    Ok(())
}
