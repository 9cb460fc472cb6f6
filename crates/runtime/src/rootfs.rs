//! The container's filesystem view, built by the init inside its new mount namespace: mount
//! propagation, the rootfs bind, the spec's mounts in order (targets resolved inside the rootfs,
//! see `secure_join`), cgroup mounts, device nodes and /dev symlinks, pivot_root (or MS_MOVE +
//! chroot), then masked and read-only paths and the read-only root. Runs only in the init, which
//! is single-threaded; it never touches the runtime's own mount namespace.

use crate::init_error::InitError;
use crate::mount_options::{self, MountOptions};
use crate::mountinfo;
use crate::secure_join::{ensure_in_root, open_in_root, proc_fd_path, Kind};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType, Mount, Spec};
use rustix::fd::AsFd;
use rustix::fs::{Mode, OFlags};
use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

mod devices;
mod hardening;
use devices::{create_devices, dev_symlinks};
pub use hardening::{mask_paths, readonly_paths, readonly_root, write_sysctls};

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
    /// Bind sources the runtime cloned (open_tree) before the init entered its user
    /// namespace, indexed like the spec's mounts (see `mount_sources`).
    pub mount_sources: &'a [Option<rustix::fd::OwnedFd>],
}

/// With a new user namespace the init's root may not reach a bind source (a 0700 host
/// directory): as runc's mount-source fds, the runtime clones each bind source's mount tree
/// (open_tree(OPEN_TREE_CLONE)) while still host root, and the init attaches the detached tree
/// with move_mount. Entries line up with the spec's mounts; None where nothing was opened.
pub fn mount_sources(spec: &Spec, bundle: &Path) -> Vec<Option<rustix::fd::OwnedFd>> {
    use rustix::mount::OpenTreeFlags;
    spec.mounts()
        .as_deref()
        .unwrap_or(&[])
        .iter()
        .map(|m| {
            let opts = mount_options::parse(m.options().as_deref().unwrap_or(&[]));
            if !(m.typ().as_deref() == Some("bind") || opts.bind) {
                return None;
            }
            let source = m.source().as_ref()?;
            let source = if source.is_absolute() {
                source.clone()
            } else {
                bundle.join(source)
            };
            let mut flags = OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC;
            if opts.recursive {
                flags |= OpenTreeFlags::AT_RECURSIVE;
            }
            // A source that cannot be opened here is left to the init, which reports it.
            rustix::mount::open_tree(rustix::fs::CWD, &source, flags).ok()
        })
        .collect()
}

type Res<T> = std::result::Result<T, InitError>;

fn err(what: impl std::fmt::Display, e: impl Into<io::Error>) -> InitError {
    InitError::sys(what, e)
}

/// A C string for a syscall; a NUL byte inside is refused (it would cut the string short and
/// mount something else than asked).
fn cpath(p: impl AsRef<Path>) -> io::Result<CString> {
    CString::new(p.as_ref().as_os_str().as_bytes()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{:?} contains a NUL byte", p.as_ref()),
        )
    })
}

/// mount(2) with optional strings.
pub fn mount(
    source: Option<&str>,
    target: &str,
    fstype: Option<&str>,
    flags: libc::c_ulong,
    data: Option<&str>,
) -> io::Result<()> {
    let source = source.map(cpath).transpose()?;
    let target = cpath(target)?;
    let fstype = fstype.map(cpath).transpose()?;
    let data = data.filter(|d| !d.is_empty()).map(cpath).transpose()?;
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

/// The propagation the spec asks for the container's root (runc's default: rslave).
fn root_propagation(spec: &Spec) -> libc::c_ulong {
    spec.linux()
        .as_ref()
        .and_then(|l| l.rootfs_propagation().as_deref())
        .filter(|p| !p.is_empty())
        .map(mount_options::propagation_flag)
        .unwrap_or(libc::MS_SLAVE | libc::MS_REC)
}

/// Everything before pivot_root: propagation, rootfs bind, spec mounts, devices.
pub fn prepare(plan: &RootfsPlan<'_>) -> Res<()> {
    let mut propagation = root_propagation(plan.spec);
    if propagation & libc::MS_UNBINDABLE != 0 {
        // An unbindable host tree could not be bound from (cgroup dirs, bind sources): the
        // host side stays a slave, the container's "/" becomes unbindable after pivot_root.
        propagation = libc::MS_SLAVE | libc::MS_REC;
    }
    mount(None, "/", None, propagation, None).map_err(|e| err("setting propagation of /", e))?;
    // As runc: the mount holding the rootfs is made private, so the rootfs bind (and every mount
    // below it) cannot propagate to the host when "/" is shared, pivot_root accepts it (it
    // refuses a shared parent), and a bind of it works when "/" is unbindable. The spec's
    // propagation is applied to the container's "/" after pivot_root (see `enter_root`).
    let parent = mountinfo::mount_point_of(plan.rootfs)
        .map_err(|e| err("reading /proc/self/mountinfo", e))?;
    let parent_str = parent
        .to_str()
        .ok_or_else(|| InitError::Refused("mount point is not UTF-8".into()))?;
    mount(None, parent_str, None, libc::MS_PRIVATE, None).map_err(|e| {
        err(
            format!("making the rootfs's parent mount {parent_str} private"),
            e,
        )
    })?;
    let rootfs = plan
        .rootfs
        .to_str()
        .ok_or_else(|| InitError::Refused("rootfs path is not UTF-8".into()))?;
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
    let mut dev_read_only = false;
    for (i, m) in plan
        .spec
        .mounts()
        .as_deref()
        .unwrap_or(&[])
        .iter()
        .enumerate()
    {
        let cloned = plan.mount_sources.get(i).and_then(Option::as_ref);
        mount_one(plan, root.as_fd(), m, cloned).map_err(|e| {
            e.context(format!(
                "mounting {:?} to rootfs at {:?}",
                source_of(m),
                m.destination()
            ))
        })?;
        if is_dev(m.destination()) {
            let opts = mount_options::parse(m.options().as_deref().unwrap_or(&[]));
            dev_is_bind = opts.bind || m.typ().as_deref() == Some("bind");
            dev_read_only = !dev_is_bind && opts.flags & libc::MS_RDONLY != 0;
        }
    }
    if !dev_is_bind {
        create_devices(plan, root.as_fd())?;
        dev_symlinks(root.as_fd())?;
    }
    if dev_read_only {
        // Mounted writable so the nodes above could be made (as runc does); now as asked.
        let dev = open_in_root(root.as_fd(), Path::new("/dev"), OFlags::PATH)
            .map_err(|e| err("/dev", e))?;
        remount_bind(&proc_fd_path(&dev), libc::MS_RDONLY)
            .map_err(|e| e.context("remounting /dev read-only"))?;
    }
    Ok(())
}

fn is_dev(dest: &Path) -> bool {
    let clean: PathBuf = dest.components().collect();
    clean == Path::new("/dev")
}

fn source_of(m: &Mount) -> String {
    m.source()
        .as_ref()
        .map(|s| s.display().to_string())
        .unwrap_or_default()
}

fn mount_one(
    plan: &RootfsPlan<'_>,
    root: rustix::fd::BorrowedFd<'_>,
    m: &Mount,
    cloned: Option<&rustix::fd::OwnedFd>,
) -> Res<()> {
    let opts = mount_options::parse(m.options().as_deref().unwrap_or(&[]));
    let typ = m.typ().as_deref().unwrap_or("");
    let dest = m.destination();
    if typ == "bind" || opts.bind {
        return bind_mount(plan, root, m, &opts, cloned);
    }
    if typ == "cgroup" || typ == "cgroup2" {
        (plan.before_cgroup_mount)()?;
    }
    if typ == "cgroup" && !plan.cgroup_v2 {
        return cgroup_v1_mount(plan, root, dest, &opts);
    }
    let typ = if typ == "cgroup" { "cgroup2" } else { typ };
    if typ == "proc" || typ == "sysfs" {
        refuse_non_directory(root, dest, typ)?;
    }
    let target = ensure_in_root(root, dest, Kind::Dir).map_err(|e| err("mount point", e))?;
    let source = m
        .source()
        .as_ref()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| typ.to_owned());
    let mut flags = opts.flags & !libc::MS_REMOUNT;
    // A read-only tmpfs is mounted writable and made read-only once filled (runc does the same;
    // /dev waits until its device nodes exist, see `prepare`).
    let read_only_later = typ == "tmpfs" && flags & libc::MS_RDONLY != 0;
    if read_only_later {
        flags &= !libc::MS_RDONLY;
    }
    let target_path = proc_fd_path(&target);
    mount(
        Some(&source),
        &target_path,
        Some(typ),
        flags,
        Some(&opts.data),
    )
    .map_err(|e| err("mount", e))?;
    drop(target);
    if read_only_later && !is_dev(dest) {
        let t = open_in_root(root, dest, OFlags::PATH).map_err(|e| err("reopening mount", e))?;
        remount_bind(&proc_fd_path(&t), libc::MS_RDONLY)?;
    }
    apply_recursive_attrs(root, dest, &opts)?;
    apply_propagation(root, dest, &opts)
}

/// proc and sysfs only on an ordinary directory: a symlink there would redirect the mount
/// (runc refuses the same way).
fn refuse_non_directory(root: rustix::fd::BorrowedFd<'_>, dest: &Path, typ: &str) -> Res<()> {
    let fd = match open_in_root(root, dest, OFlags::PATH | OFlags::NOFOLLOW) {
        Ok(fd) => fd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(err(dest.display(), e)),
    };
    let st = rustix::fs::fstat(&fd).map_err(|e| err(dest.display(), e))?;
    if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::Directory {
        return Err(InitError::Refused(format!(
            "filesystem {typ:?} must be mounted on ordinary directory"
        )));
    }
    Ok(())
}

/// `rro`, `rnosuid`, … : mount_setattr(AT_RECURSIVE) on the new mount and everything below it.
fn apply_recursive_attrs(
    root: rustix::fd::BorrowedFd<'_>,
    dest: &Path,
    opts: &MountOptions,
) -> Res<()> {
    if !opts.has_recursive_attrs() {
        return Ok(());
    }
    let target = open_in_root(root, dest, OFlags::PATH).map_err(|e| err("reopening mount", e))?;
    crate::sys::mount_setattr_recursive(&target, opts.recursive_set, opts.recursive_clear)
        .map_err(|e| err("setting recursive mount attributes", e))
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
    cloned: Option<&rustix::fd::OwnedFd>,
) -> Res<()> {
    let source = m
        .source()
        .as_ref()
        .ok_or_else(|| InitError::Refused("bind mount without source".into()))?;
    let source = if source.is_absolute() {
        source.clone()
    } else {
        plan.bundle.join(source)
    };
    if let Some(tree) = cloned {
        let st = rustix::fs::fstat(tree).map_err(|e| err(source.display(), e))?;
        let is_dir =
            rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Directory;
        let kind = if is_dir { Kind::Dir } else { Kind::File };
        let target =
            ensure_in_root(root, m.destination(), kind).map_err(|e| err("mount point", e))?;
        use rustix::mount::MoveMountFlags;
        rustix::mount::move_mount(
            tree,
            "",
            &target,
            "",
            MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH | MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH,
        )
        .map_err(|e| err(format!("attaching {}", source.display()), e))?;
    } else {
        let meta = std::fs::metadata(&source).map_err(|e| err(source.display(), e))?;
        let kind = if meta.is_dir() { Kind::Dir } else { Kind::File };
        let target =
            ensure_in_root(root, m.destination(), kind).map_err(|e| err("mount point", e))?;
        let mut flags = libc::MS_BIND;
        if opts.recursive {
            flags |= libc::MS_REC;
        }
        let source_str = source
            .to_str()
            .ok_or_else(|| InitError::Refused("source path is not UTF-8".into()))?;
        mount(Some(source_str), &proc_fd_path(&target), None, flags, None)
            .map_err(|e| err("bind", e))?;
    }
    let extra = opts.flags & !(libc::MS_REC | libc::MS_REMOUNT | libc::MS_BIND);
    if extra != 0 {
        let target = open_in_root(root, m.destination(), OFlags::PATH)
            .map_err(|e| err("reopening bind", e))?;
        remount_bind(&proc_fd_path(&target), extra)?;
    }
    apply_recursive_attrs(root, m.destination(), opts)?;
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
        let host = bind
            .host_dir
            .to_str()
            .ok_or_else(|| InitError::Refused("cgroup path is not UTF-8".into()))?;
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
        // Read-only unless the spec's cgroup mount says rw (runc honours it the same way).
        remount_bind(
            &proc_fd_path(&t),
            (opts.flags & libc::MS_RDONLY) | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
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

/// Makes the rootfs the process's root: pivot_root, or MS_MOVE + chroot with `--no-pivot`.
pub fn enter_root(rootfs: &Path, no_pivot: bool) -> Res<()> {
    if no_pivot {
        hide_host_proc_and_sys(rootfs)?;
        rustix::process::chdir(rootfs).map_err(|e| err("chdir rootfs", e))?;
        let here = rootfs
            .to_str()
            .ok_or_else(|| InitError::Refused("rootfs path is not UTF-8".into()))?;
        mount(Some(here), "/", None, libc::MS_MOVE, None)
            .map_err(|e| err("moving rootfs to /", e))?;
        rustix::process::chroot(".").map_err(|e| err("chroot", e))?;
        rustix::process::chdir("/").map_err(|e| err("chdir /", e))?;
    } else {
        pivot(rootfs)?;
    }
    Ok(())
}

/// Gives the container's "/" the spec's rootfsPropagation, last of the mount work (an
/// unbindable "/" would refuse the binds of read-only and masked paths). Private is already in
/// place (see `prepare`).
pub fn apply_root_propagation(spec: &Spec) -> Res<()> {
    let propagation = root_propagation(spec);
    if propagation & libc::MS_PRIVATE == 0 {
        mount(None, "/", None, propagation, None)
            .map_err(|e| err("applying rootfsPropagation to /", e))?;
    }
    Ok(())
}

fn pivot(rootfs: &Path) -> Res<()> {
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

/// `--no-pivot` keeps the host's mounts in the container's mount namespace (only hidden by
/// chroot). A full procfs or sysfs among them would let the container mount a fresh, unmasked
/// proc (the kernel allows that when a fully visible one exists in the namespace), so, as runc
/// does, every full proc and sysfs outside the rootfs is detached, or covered with a tmpfs
/// where detaching is refused.
fn hide_host_proc_and_sys(rootfs: &Path) -> Res<()> {
    let mounts = mountinfo::read().map_err(|e| err("reading /proc/self/mountinfo", e))?;
    // Deepest first, so a mount is not hidden under one detached before it.
    let mut targets: Vec<&mountinfo::Entry> = mounts
        .iter()
        .filter(|m| {
            (m.fs_type == "proc" || m.fs_type == "sysfs")
                && m.root == Path::new("/")
                && !m.mount_point.starts_with(rootfs)
        })
        .collect();
    targets.sort_by_key(|m| std::cmp::Reverse(m.mount_point.components().count()));
    for m in targets {
        let Some(p) = m.mount_point.to_str() else {
            continue;
        };
        match mount(None, p, None, libc::MS_SLAVE | libc::MS_REC, None) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(err(format!("making {p} a slave"), e)),
        }
        match rustix::mount::unmount(p, rustix::mount::UnmountFlags::DETACH) {
            Ok(()) => {}
            Err(rustix::io::Errno::INVAL) | Err(rustix::io::Errno::PERM) => {
                mount(Some("tmpfs"), p, Some("tmpfs"), 0, None)
                    .map_err(|e| err(format!("covering {p}"), e))?;
            }
            Err(e) => return Err(err(format!("unmounting {p}"), e)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod nul_tests {
    #[test]
    fn mount_paths_with_nul_bytes_are_refused() {
        // The old code mounted onto "" (the string cut at the NUL turned into an empty one).
        let err = super::mount(None, "/tmp/berth\0x", None, libc::MS_BIND, None)
            .expect_err("a NUL in the target");
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{err}");
        let err = super::mount(Some("/tmp\0"), "/tmp", None, libc::MS_BIND, None)
            .expect_err("a NUL in the source");
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{err}");
    }
}
