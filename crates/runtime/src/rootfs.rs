//! The container's filesystem view, built by the init inside its new mount namespace: mount
//! propagation, the rootfs bind, the spec's mounts in order (targets resolved inside the rootfs,
//! see `secure_join`), cgroup mounts, device nodes and /dev symlinks, pivot_root (or MS_MOVE +
//! chroot), then masked and read-only paths and the read-only root. Runs only in the init, which
//! is single-threaded; it never touches the runtime's own mount namespace.

use crate::mount_options::{self, MountOptions};
use crate::secure_join::{ensure_in_root, open_in_root, proc_fd_path, Kind};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType, Mount, Spec};
use rustix::fd::AsFd;
use rustix::fs::{Mode, OFlags};
use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// One cgroup v1 hierarchy as it appears inside the container.
#[derive(Debug, Clone)]
pub struct CgroupBind {
    /// Directory name under the cgroup mount ("cpu,cpuacct").
    pub name: String,
    /// The container's cgroup directory on the host.
    pub host_dir: PathBuf,
    /// Symlinks to `name` for co-mounted controllers ("cpu", "cpuacct").
    pub aliases: Vec<String>,
}

/// What the rootfs setup needs besides the spec.
pub struct RootfsPlan<'a> {
    pub spec: &'a Spec,
    pub rootfs: &'a Path,
    pub bundle: &'a Path,
    /// v1 binds; empty on v2 (a cgroup2 mount is made instead).
    pub cgroup_binds: Vec<CgroupBind>,
    pub cgroup_v2: bool,
    pub in_user_ns: bool,
    pub no_pivot: bool,
    /// Called before a cgroup mount: the container's cgroup must exist and hold the init.
    pub before_cgroup_mount: &'a dyn Fn() -> Res<()>,
}

type Res<T> = std::result::Result<T, String>;

fn err(what: impl std::fmt::Display, e: impl Into<io::Error>) -> String {
    format!("{what}: {}", e.into())
}

fn cpath(p: impl AsRef<Path>) -> CString {
    CString::new(p.as_ref().as_os_str().as_bytes()).unwrap_or_default()
}

/// mount(2) with optional strings.
pub fn mount(
    source: Option<&str>,
    target: &str,
    fstype: Option<&str>,
    flags: libc::c_ulong,
    data: Option<&str>,
) -> io::Result<()> {
    let source = source.map(cpath);
    let target = cpath(target);
    let fstype = fstype.map(cpath);
    let data = data.filter(|d| !d.is_empty()).map(cpath);
    let ptr = |c: &Option<CString>| c.as_ref().map_or(std::ptr::null(), |c| c.as_ptr());
    // SAFETY: every pointer is null or a NUL-terminated string that outlives the call.
    let ret = unsafe {
        libc::mount(
            ptr(&source),
            target.as_ptr(),
            ptr(&fstype),
            flags,
            ptr(&data) as *const libc::c_void,
        )
    };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Everything before pivot_root: propagation, rootfs bind, spec mounts, devices.
pub fn prepare(plan: &RootfsPlan<'_>) -> Res<()> {
    let linux = plan.spec.linux().as_ref();
    let propagation = linux
        .and_then(|l| l.rootfs_propagation().as_deref())
        .filter(|p| !p.is_empty())
        .map(mount_options::propagation_flag)
        .unwrap_or(libc::MS_SLAVE | libc::MS_REC);
    mount(None, "/", None, propagation | libc::MS_REC, None)
        .map_err(|e| err("making / private", e))?;
    let rootfs = plan.rootfs.to_str().ok_or("rootfs path is not UTF-8")?;
    mount(
        Some(rootfs),
        rootfs,
        None,
        libc::MS_BIND | libc::MS_REC,
        None,
    )
    .map_err(|e| err(format!("bind-mounting rootfs {rootfs}"), e))?;
    let root = rustix::fs::open(
        plan.rootfs,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| err(format!("opening rootfs {rootfs}"), e))?;
    let mut dev_is_bind = false;
    for m in plan.spec.mounts().as_deref().unwrap_or(&[]) {
        mount_one(plan, root.as_fd(), m).map_err(|e| {
            format!(
                "mounting {:?} to rootfs at {:?}: {e}",
                source_of(m),
                m.destination()
            )
        })?;
        if m.destination() == Path::new("/dev")
            && mount_options::parse(m.options().as_deref().unwrap_or(&[])).bind
        {
            dev_is_bind = true;
        }
    }
    if !dev_is_bind {
        create_devices(plan, root.as_fd())?;
        dev_symlinks(root.as_fd())?;
    }
    Ok(())
}

fn source_of(m: &Mount) -> String {
    m.source()
        .as_ref()
        .map(|s| s.display().to_string())
        .unwrap_or_default()
}

fn mount_one(plan: &RootfsPlan<'_>, root: rustix::fd::BorrowedFd<'_>, m: &Mount) -> Res<()> {
    let opts = mount_options::parse(m.options().as_deref().unwrap_or(&[]));
    let typ = m.typ().as_deref().unwrap_or("");
    let dest = m.destination();
    if typ == "bind" || opts.bind {
        return bind_mount(plan, root, m, &opts);
    }
    if typ == "cgroup" || typ == "cgroup2" {
        (plan.before_cgroup_mount)()?;
    }
    if typ == "cgroup" && !plan.cgroup_v2 {
        return cgroup_v1_mount(plan, root, dest, &opts);
    }
    let typ = if typ == "cgroup" { "cgroup2" } else { typ };
    let target = ensure_in_root(root, dest, Kind::Dir).map_err(|e| err("mount point", e))?;
    let source = m
        .source()
        .as_ref()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| typ.to_owned());
    let flags = opts.flags & !libc::MS_REMOUNT;
    let target_path = proc_fd_path(&target);
    mount(
        Some(&source),
        &target_path,
        Some(typ),
        flags,
        Some(&opts.data),
    )
    .map_err(|e| err("mount", e))?;
    apply_propagation(root, dest, &opts)
}

fn apply_propagation(
    root: rustix::fd::BorrowedFd<'_>,
    dest: &Path,
    opts: &MountOptions,
) -> Res<()> {
    if opts.propagation.is_empty() {
        return Ok(());
    }
    let target = open_in_root(root, dest, OFlags::PATH).map_err(|e| err("reopening mount", e))?;
    for flag in &opts.propagation {
        mount(None, &proc_fd_path(&target), None, *flag, None)
            .map_err(|e| err("setting propagation", e))?;
    }
    Ok(())
}

fn bind_mount(
    plan: &RootfsPlan<'_>,
    root: rustix::fd::BorrowedFd<'_>,
    m: &Mount,
    opts: &MountOptions,
) -> Res<()> {
    let source = m.source().as_ref().ok_or("bind mount without source")?;
    let source = if source.is_absolute() {
        source.clone()
    } else {
        plan.bundle.join(source)
    };
    let meta = std::fs::metadata(&source).map_err(|e| err(source.display(), e))?;
    let kind = if meta.is_dir() { Kind::Dir } else { Kind::File };
    let target = ensure_in_root(root, m.destination(), kind).map_err(|e| err("mount point", e))?;
    let mut flags = libc::MS_BIND;
    if opts.recursive {
        flags |= libc::MS_REC;
    }
    let source_str = source.to_str().ok_or("source path is not UTF-8")?;
    mount(Some(source_str), &proc_fd_path(&target), None, flags, None)
        .map_err(|e| err("bind", e))?;
    drop(target);
    let extra = opts.flags & !(libc::MS_REC | libc::MS_REMOUNT | libc::MS_BIND);
    if extra != 0 {
        let target = open_in_root(root, m.destination(), OFlags::PATH)
            .map_err(|e| err("reopening bind", e))?;
        remount_bind(&proc_fd_path(&target), extra)?;
    }
    apply_propagation(root, m.destination(), opts)
}

/// Remounts a bind mount with `flags`, keeping the flags the kernel locks (nosuid, nodev, noexec,
/// atime flags) when they were set on the source.
pub fn remount_bind(target: &str, flags: libc::c_ulong) -> Res<()> {
    let locked = statvfs_flags(target).unwrap_or(0);
    mount(
        None,
        target,
        None,
        libc::MS_BIND | libc::MS_REMOUNT | flags | locked,
        None,
    )
    .map_err(|e| err("remount", e))
}

fn statvfs_flags(path: &str) -> Option<libc::c_ulong> {
    let st = rustix::fs::statvfs(path).ok()?;
    let f = st.f_flag;
    let mut out = 0;
    for (st_flag, ms_flag) in [
        (rustix::fs::StatVfsMountFlags::NOSUID, libc::MS_NOSUID),
        (rustix::fs::StatVfsMountFlags::NODEV, libc::MS_NODEV),
        (rustix::fs::StatVfsMountFlags::NOEXEC, libc::MS_NOEXEC),
        (rustix::fs::StatVfsMountFlags::NOATIME, libc::MS_NOATIME),
        (
            rustix::fs::StatVfsMountFlags::NODIRATIME,
            libc::MS_NODIRATIME,
        ),
        (rustix::fs::StatVfsMountFlags::RELATIME, libc::MS_RELATIME),
    ] {
        if f.contains(st_flag) {
            out |= ms_flag;
        }
    }
    Some(out)
}

/// cgroup v1: a tmpfs with each hierarchy's container directory bound read-only, like runc.
fn cgroup_v1_mount(
    plan: &RootfsPlan<'_>,
    root: rustix::fd::BorrowedFd<'_>,
    dest: &Path,
    opts: &MountOptions,
) -> Res<()> {
    let target = ensure_in_root(root, dest, Kind::Dir).map_err(|e| err("mount point", e))?;
    let base_flags = opts.flags & !(libc::MS_RDONLY | libc::MS_REMOUNT);
    mount(
        Some("tmpfs"),
        &proc_fd_path(&target),
        Some("tmpfs"),
        base_flags,
        Some("mode=755"),
    )
    .map_err(|e| err("cgroup tmpfs", e))?;
    drop(target);
    let dir = open_in_root(root, dest, OFlags::PATH | OFlags::DIRECTORY)
        .map_err(|e| err("cgroup tmpfs", e))?;
    for bind in &plan.cgroup_binds {
        if !bind.host_dir.is_dir() {
            continue;
        }
        let sub = dest.join(&bind.name);
        let t = ensure_in_root(root, &sub, Kind::Dir).map_err(|e| err(sub.display(), e))?;
        let host = bind.host_dir.to_str().ok_or("cgroup path is not UTF-8")?;
        mount(
            Some(host),
            &proc_fd_path(&t),
            None,
            libc::MS_BIND | libc::MS_REC,
            None,
        )
        .map_err(|e| err(format!("binding {host}"), e))?;
        drop(t);
        let t = open_in_root(root, &sub, OFlags::PATH).map_err(|e| err(sub.display(), e))?;
        remount_bind(
            &proc_fd_path(&t),
            libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
        )?;
        for alias in &bind.aliases {
            match rustix::fs::symlinkat(bind.name.as_str(), dir.as_fd(), alias.as_str()) {
                Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                Err(e) => return Err(err(format!("cgroup symlink {alias}"), e)),
            }
        }
    }
    if opts.flags & libc::MS_RDONLY != 0 {
        let t = open_in_root(root, dest, OFlags::PATH).map_err(|e| err("cgroup tmpfs", e))?;
        mount(
            None,
            &proc_fd_path(&t),
            None,
            libc::MS_REMOUNT | libc::MS_RDONLY | base_flags,
            None,
        )
        .map_err(|e| err("remounting cgroup tmpfs read-only", e))?;
    }
    Ok(())
}

/// Devices every container gets, as runc creates them.
fn default_devices() -> Vec<(&'static str, u64, u64)> {
    vec![
        ("/dev/null", 1, 3),
        ("/dev/zero", 1, 5),
        ("/dev/full", 1, 7),
        ("/dev/random", 1, 8),
        ("/dev/urandom", 1, 9),
        ("/dev/tty", 5, 0),
    ]
}

fn create_devices(plan: &RootfsPlan<'_>, root: rustix::fd::BorrowedFd<'_>) -> Res<()> {
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
fn make_device(
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
        let host = path.to_str().ok_or("device path is not UTF-8")?;
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
        .ok_or_else(|| format!("{}: no file name", what()))?;
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

fn dev_symlinks(root: rustix::fd::BorrowedFd<'_>) -> Res<()> {
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

/// Makes the rootfs the process's root: pivot_root, or MS_MOVE + chroot with `--no-pivot`.
pub fn enter_root(rootfs: &Path, no_pivot: bool) -> Res<()> {
    if no_pivot {
        rustix::process::chdir(rootfs).map_err(|e| err("chdir rootfs", e))?;
        let here = rootfs.to_str().ok_or("rootfs path is not UTF-8")?;
        mount(Some(here), "/", None, libc::MS_MOVE, None)
            .map_err(|e| err("moving rootfs to /", e))?;
        rustix::process::chroot(".").map_err(|e| err("chroot", e))?;
        return rustix::process::chdir("/").map_err(|e| err("chdir /", e));
    }
    let old = rustix::fs::open(
        "/",
        OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| err("opening old root", e))?;
    let new = rustix::fs::open(
        rootfs,
        OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| err("opening rootfs", e))?;
    rustix::process::fchdir(&new).map_err(|e| err("fchdir rootfs", e))?;
    rustix::process::pivot_root(".", ".").map_err(|e| err("pivot_root", e))?;
    rustix::process::fchdir(&old).map_err(|e| err("fchdir old root", e))?;
    // The old root may be shared with the host: make sure the unmount does not propagate.
    mount(None, ".", None, libc::MS_SLAVE | libc::MS_REC, None)
        .map_err(|e| err("old root slave", e))?;
    rustix::mount::unmount(".", rustix::mount::UnmountFlags::DETACH)
        .map_err(|e| err("unmounting old root", e))?;
    rustix::process::chdir("/").map_err(|e| err("chdir /", e))
}

/// After pivot_root: masked paths (/dev/null over files, a read-only tmpfs over directories).
pub fn mask_paths(paths: &[String]) -> Res<()> {
    for p in paths {
        let meta = match std::fs::symlink_metadata(p) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(err(format!("masking {p}"), e)),
        };
        let r = if meta.is_dir() {
            mount(Some("tmpfs"), p, Some("tmpfs"), libc::MS_RDONLY, None)
        } else {
            mount(Some("/dev/null"), p, None, libc::MS_BIND, None)
        };
        match r {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(err(format!("masking {p}"), e)),
        }
    }
    Ok(())
}

/// After pivot_root: read-only binds of `paths`.
pub fn readonly_paths(paths: &[String]) -> Res<()> {
    for p in paths {
        match mount(Some(p), p, None, libc::MS_BIND | libc::MS_REC, None) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(err(format!("read-only path {p}"), e)),
        }
        remount_bind(p, libc::MS_RDONLY).map_err(|e| format!("read-only path {p}: {e}"))?;
    }
    Ok(())
}

/// After pivot_root: remount `/` read-only.
pub fn readonly_root() -> Res<()> {
    remount_bind("/", libc::MS_RDONLY).map_err(|e| format!("read-only root: {e}"))
}

/// After pivot_root: `/proc/sys` writes for the spec's sysctls.
pub fn write_sysctls(spec: &Spec) -> Res<()> {
    let Some(sysctls) = spec.linux().as_ref().and_then(|l| l.sysctl().as_ref()) else {
        return Ok(());
    };
    for (key, value) in sysctls {
        if key.is_empty() || key.contains("..") || key.starts_with('/') {
            return Err(format!("invalid sysctl {key:?}"));
        }
        let path = format!("/proc/sys/{}", key.replace('.', "/"));
        std::fs::write(&path, value.as_bytes()).map_err(|e| err(format!("sysctl {key}"), e))?;
    }
    Ok(())
}
