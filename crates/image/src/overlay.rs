//! Mounting one overlay filesystem: the only place Berth mounts overlayfs (container layers for
//! `run`, build steps and `commit` all come through [`mount_overlay`]).
//!
//! Three ways, best first, chosen by probing the kernel once:
//! - the new mount API (`fsopen`/`fsconfig`/`fsmount`/`move_mount`) with `lowerdir+` (Linux
//!   6.8+): one `fsconfig` call per lower directory, so no option string has to fit a page and
//!   a stack may be as deep as the kernel's own limit, [`MAX_LOWER_LAYERS`];
//! - the new mount API with one whole `lowerdir` string (overlayfs' native mount context on
//!   6.5–6.7), when that string fits `fsconfig`'s 256-byte value limit;
//! - `mount(2)` with Docker's relative short links (`l/<26 chars>`), which keeps the option
//!   string under a page for about 140 layers.
//!
//! Lower, upper and work directories are given relative to a base directory (the store's
//! `overlay2/`). They are resolved in a short-lived helper thread that unshares its filesystem
//! context (`unshare(CLONE_FS)`) and changes *its own* working directory to the base: the
//! process's working directory never changes, which a `chdir` around `mount(2)` would do for
//! every thread at once.
//!
//! Options: `index=off`, `redirect_dir=off`, `metacopy=off` always (Docker's overlay2 driver
//! does the same for layers it diffs naively): our commit and export read the upper directory
//! as a plain diff, which a redirected directory or a metadata-only copy-up would make wrong —
//! a renamed lower directory is copied up whole instead (`rename` gets `EXDEV`, and `mv`
//! copies). `userxattr` is never used: layers keep whiteouts and opaque markers in `trusted.*`
//! xattrs, which only a mount in the initial user namespace reads. `volatile` is added when
//! asked for and the kernel knows it. Data-only lower layers (`datadir+`) go to the kernel only
//! through `lowerdir+`-capable kernels; none of the store's own stacks has any, since they
//! exist only for metacopy.
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::mount::{FsMountFlags, FsOpenFlags, MountAttrFlags, MoveMountFlags};
use std::io;
use std::path::Path;
use std::sync::OnceLock;

/// The kernel's overlay stack limit (`OVL_MAX_STACK`): at most this many lower directories.
pub const MAX_LOWER_LAYERS: usize = 500;

/// `fsconfig(FSCONFIG_SET_STRING)` copies at most this many bytes of a value (`strndup_user(…,
/// 256)` in fs/fsopen.c), terminating NUL included.
const FSCONFIG_VALUE_MAX: usize = 256;

/// `mount(2)` copies one page of option data.
const MOUNT_DATA_MAX: usize = 4096;

/// What to mount: every path relative to `base` (absolute paths work too).
#[derive(Debug, Clone, Copy)]
pub struct OverlaySpec<'a> {
    /// Directory the relative paths are resolved against (the store's `overlay2/`).
    pub base: &'a Path,
    /// Lower directories, top first (Docker's short links `l/<id>`).
    pub lowers: &'a [String],
    /// Data-only lower directories (`datadir+`, for metacopy stacks); top first.
    pub data_dirs: &'a [String],
    pub upper: &'a str,
    pub work: &'a str,
    /// Skip syncing the upper directory (overlayfs `volatile`).
    pub volatile: bool,
}

/// How a mount was made (tests and diagnostics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountMethod {
    /// New mount API, one `lowerdir+` per layer (Linux 6.8+).
    LowerdirPlus,
    /// New mount API, one whole `lowerdir` string (Linux 6.5–6.7).
    WholeLowerdir,
    /// `mount(2)` with one option string under a page.
    LegacyMount,
}

/// What the running kernel's overlayfs supports, probed once per process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Support {
    LowerdirPlus,
    WholeLowerdir,
    Legacy,
}

fn kernel_support() -> Support {
    static SUPPORT: OnceLock<Support> = OnceLock::new();
    *SUPPORT.get_or_init(probe_support)
}

/// Probes with a throwaway `fsopen` context: no `fsopen` → `mount(2)` only; a context that takes
/// an unknown key is the generic "legacy" one (pre-6.5 overlayfs, which parses a mount(2)
/// string) → `mount(2)`; otherwise `lowerdir+` either parses or is unknown.
fn probe_support() -> Support {
    let Ok(fs) = rustix::mount::fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC) else {
        return Support::Legacy;
    };
    if rustix::mount::fsconfig_set_string(&fs, "berth-probe-no-such-option", "x").is_ok() {
        return Support::Legacy;
    }
    let Ok(fs) = rustix::mount::fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC) else {
        return Support::Legacy;
    };
    // "/" always exists; nothing is mounted, the context is dropped.
    if rustix::mount::fsconfig_set_string(&fs, "lowerdir+", "/").is_ok() {
        Support::LowerdirPlus
    } else {
        Support::WholeLowerdir
    }
}

/// The most lower directories this kernel can stack for a spec like this one (for the clear
/// error Berth gives before mounting anything). `mount(2)` kernels are bounded by the page.
pub fn max_lower_layers() -> usize {
    match kernel_support() {
        Support::LowerdirPlus => MAX_LOWER_LAYERS,
        // Short links "l/<26>" plus ':' each, plus room for upper/work and the fixed options.
        Support::WholeLowerdir | Support::Legacy => {
            ((MOUNT_DATA_MAX - 300) / 29).min(MAX_LOWER_LAYERS)
        }
    }
}

/// Mounts the overlay described by `spec` at `target` (an absolute path, or one relative to the
/// process's working directory). Never changes the process's working directory.
pub fn mount_overlay(spec: &OverlaySpec<'_>, target: &Path) -> io::Result<MountMethod> {
    mount_overlay_as(spec, target, kernel_support())
}

/// [`mount_overlay`] as if the kernel supported only `support` (tests reach the older paths).
fn mount_overlay_as(
    spec: &OverlaySpec<'_>,
    target: &Path,
    support: Support,
) -> io::Result<MountMethod> {
    if spec.lowers.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "an overlay needs at least one lower directory",
        ));
    }
    if spec.lowers.len() + spec.data_dirs.len() > MAX_LOWER_LAYERS {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{} lower layers exceed the kernel's overlay limit of {MAX_LOWER_LAYERS}",
                spec.lowers.len() + spec.data_dirs.len()
            ),
        ));
    }
    let target = if target.is_absolute() {
        target.to_path_buf()
    } else {
        std::env::current_dir()?.join(target)
    };
    std::thread::scope(|s| {
        std::thread::Builder::new()
            .name("overlay-mount".into())
            .spawn_scoped(s, || {
                // SAFETY: CLONE_FS only gives this thread its own cwd/root/umask; unlike
                // CLONE_FILES it cannot make other threads' file descriptors invisible here.
                unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::FS) }?;
                rustix::process::chdir(spec.base)?;
                mount_in_base(spec, &target, support)
            })?
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("overlay mount thread panicked")))
    })
}

/// Runs in the helper thread, whose working directory is `spec.base`.
fn mount_in_base(
    spec: &OverlaySpec<'_>,
    target: &Path,
    support: Support,
) -> io::Result<MountMethod> {
    let whole_lower = whole_lowerdir(spec);
    match support {
        Support::LowerdirPlus => {
            mount_new_api(spec, target, None)?;
            Ok(MountMethod::LowerdirPlus)
        }
        Support::WholeLowerdir if whole_lower.len() < FSCONFIG_VALUE_MAX => {
            mount_new_api(spec, target, Some(&whole_lower))?;
            Ok(MountMethod::WholeLowerdir)
        }
        Support::WholeLowerdir | Support::Legacy => {
            mount_legacy(spec, target, &whole_lower)?;
            Ok(MountMethod::LegacyMount)
        }
    }
}

/// `lowerdir=` value: lowers joined by ':', then each data-only layer after "::".
fn whole_lowerdir(spec: &OverlaySpec<'_>) -> String {
    let mut s = spec.lowers.join(":");
    for d in spec.data_dirs {
        s.push_str("::");
        s.push_str(d);
    }
    s
}

/// Turns an `fsconfig`/`fsmount` failure into an error carrying the kernel's own explanation,
/// which the mount context keeps as messages readable from its descriptor ("e overlay: …").
fn with_fs_log(fs: BorrowedFd<'_>, step: &str, errno: rustix::io::Errno) -> io::Error {
    let mut log = Vec::new();
    let mut buf = [0u8; 512];
    // Non-blocking by nature: read returns ENODATA once the log is empty.
    while let Ok(n) = rustix::io::read(fs, &mut buf) {
        if n == 0 {
            break;
        }
        let line = String::from_utf8_lossy(&buf[..n]);
        log.push(line.trim_end().to_string());
        if log.len() > 8 {
            break;
        }
    }
    let base = io::Error::from(errno);
    if log.is_empty() {
        io::Error::new(base.kind(), format!("{step}: {base}"))
    } else {
        io::Error::new(base.kind(), format!("{step}: {base} ({})", log.join("; ")))
    }
}

fn mount_new_api(spec: &OverlaySpec<'_>, target: &Path, whole: Option<&str>) -> io::Result<()> {
    use rustix::mount::{fsconfig_set_flag, fsconfig_set_string};
    let fs = rustix::mount::fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC)?;
    let fd = fs.as_fd();
    let set = |key: &str, value: &str| {
        fsconfig_set_string(fd, key, value)
            .map_err(|e| with_fs_log(fd, &format!("{key}={value}"), e))
    };
    match whole {
        Some(lower) => set("lowerdir", lower)?,
        None => {
            for l in spec.lowers {
                set("lowerdir+", l)?;
            }
            for d in spec.data_dirs {
                set("datadir+", d)?;
            }
        }
    }
    set("upperdir", spec.upper)?;
    set("workdir", spec.work)?;
    set("index", "off")?;
    set("redirect_dir", "off")?;
    set("metacopy", "off")?;
    if spec.volatile {
        // Kernels before 5.10 do not know it; the mount is then an ordinary one.
        let _ = fsconfig_set_flag(fd, "volatile");
    }
    rustix::mount::fsconfig_create(fd).map_err(|e| with_fs_log(fd, "creating overlay", e))?;
    let mnt = rustix::mount::fsmount(fd, FsMountFlags::FSMOUNT_CLOEXEC, MountAttrFlags::empty())
        .map_err(|e| with_fs_log(fd, "fsmount", e))?;
    attach(&mnt, target)
}

fn attach(mnt: &OwnedFd, target: &Path) -> io::Result<()> {
    rustix::mount::move_mount(
        mnt.as_fd(),
        "",
        rustix::fs::CWD,
        target,
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )
    .map_err(|e| {
        let base = io::Error::from(e);
        io::Error::new(
            base.kind(),
            format!("move_mount to {}: {base}", target.display()),
        )
    })
}

fn mount_legacy(spec: &OverlaySpec<'_>, target: &Path, whole_lower: &str) -> io::Result<()> {
    if !spec.data_dirs.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "data-only overlay layers need the new mount API (Linux 6.8+)",
        ));
    }
    let data = format!(
        "lowerdir={whole_lower},upperdir={},workdir={},index=off,redirect_dir=off,metacopy=off",
        spec.upper, spec.work
    );
    if data.len() + ",volatile".len() >= MOUNT_DATA_MAX {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{} lower layers do not fit mount(2)'s one-page option string on this kernel \
                 (Linux 6.8+ stacks up to {MAX_LOWER_LAYERS} with the new mount API)",
                spec.lowers.len()
            ),
        ));
    }
    let mount = |options: &str| -> io::Result<()> {
        let c = std::ffi::CString::new(options).map_err(io::Error::other)?;
        rustix::mount::mount(
            "overlay",
            target,
            "overlay",
            rustix::mount::MountFlags::empty(),
            c.as_c_str(),
        )
        .map_err(io::Error::from)
    };
    if spec.volatile && mount(&format!("{data},volatile")).is_ok() {
        return Ok(());
    }
    mount(&data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_lowerdir_puts_data_layers_after_double_colons() {
        let lowers = vec!["l/A".to_string(), "l/B".to_string()];
        let data = vec!["l/D".to_string()];
        let spec = OverlaySpec {
            base: Path::new("/"),
            lowers: &lowers,
            data_dirs: &data,
            upper: "u",
            work: "w",
            volatile: false,
        };
        assert_eq!(whole_lowerdir(&spec), "l/A:l/B::l/D");
    }

    #[test]
    fn refuses_stacks_past_the_kernel_limit_before_mounting() {
        let lowers: Vec<String> = (0..=MAX_LOWER_LAYERS).map(|i| format!("l/{i}")).collect();
        let spec = OverlaySpec {
            base: Path::new("/nonexistent"),
            lowers: &lowers,
            data_dirs: &[],
            upper: "u",
            work: "w",
            volatile: false,
        };
        let err = mount_overlay(&spec, Path::new("/nonexistent/m")).unwrap_err();
        assert!(err.to_string().contains("limit of 500"), "{err}");
    }

    /// A store-like directory: `l/<n>` short links to `<n>/diff`, an upper and a work dir.
    fn stack(n: usize) -> (tempfile::TempDir, Vec<String>) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("l")).unwrap();
        let mut lowers = Vec::new();
        for i in 0..n {
            let diff = dir.path().join(format!("{i}/diff"));
            std::fs::create_dir_all(&diff).unwrap();
            std::fs::write(diff.join(format!("f{i}")), i.to_string()).unwrap();
            let link = format!("L{i:025}");
            std::os::unix::fs::symlink(format!("../{i}/diff"), dir.path().join("l").join(&link))
                .unwrap();
            lowers.push(format!("l/{link}"));
        }
        lowers.reverse();
        for d in ["up/diff", "up/work", "merged"] {
            std::fs::create_dir_all(dir.path().join(d)).unwrap();
        }
        (dir, lowers)
    }

    fn spec<'a>(base: &'a Path, lowers: &'a [String]) -> OverlaySpec<'a> {
        OverlaySpec {
            base,
            lowers,
            data_dirs: &[],
            upper: "up/diff",
            work: "up/work",
            volatile: false,
        }
    }

    fn unmount(p: &Path) {
        rustix::mount::unmount(p, rustix::mount::UnmountFlags::DETACH).unwrap();
    }

    #[test]
    fn mounting_never_changes_the_process_working_directory() {
        let (dir, lowers) = stack(3);
        let merged = dir.path().join("merged");
        let cwd = std::env::current_dir().unwrap();
        let stop = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            let watcher = s.spawn(|| {
                let mut checks = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    assert_eq!(std::env::current_dir().unwrap(), cwd, "cwd changed");
                    checks += 1;
                }
                checks
            });
            // Each mount resolves relative paths ("l/…", "up/diff") against the store dir.
            let mounter = s.spawn(|| {
                for _ in 0..20 {
                    mount_overlay(&spec(dir.path(), &lowers), &merged).unwrap();
                    assert_eq!(std::fs::read_to_string(merged.join("f0")).unwrap(), "0");
                    unmount(&merged);
                }
            });
            mounter.join().unwrap();
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            assert!(watcher.join().unwrap() > 0);
        });
        assert_eq!(std::env::current_dir().unwrap(), cwd);
    }

    #[test]
    fn stacks_the_kernels_full_500_layers() {
        if kernel_support() != Support::LowerdirPlus {
            eprintln!("kernel lacks lowerdir+: skipping");
            return;
        }
        let (dir, lowers) = stack(MAX_LOWER_LAYERS);
        let merged = dir.path().join("merged");
        let method = mount_overlay(&spec(dir.path(), &lowers), &merged).unwrap();
        assert_eq!(method, MountMethod::LowerdirPlus);
        let bottom = std::fs::read_to_string(merged.join("f0"));
        let top = std::fs::read_to_string(merged.join("f499"));
        unmount(&merged);
        assert_eq!(bottom.unwrap(), "0");
        assert_eq!(top.unwrap(), "499");
    }

    #[test]
    fn renaming_a_lower_directory_copies_up_instead_of_redirecting() {
        let (dir, lowers) = stack(1);
        let base = dir.path();
        std::fs::create_dir_all(base.join("0/diff/d/sub")).unwrap();
        std::fs::write(base.join("0/diff/d/sub/x"), "x").unwrap();
        let merged = base.join("merged");
        mount_overlay(&spec(base, &lowers), &merged).unwrap();
        // redirect_dir=off: the kernel refuses to rename a merged/lower directory in place, so
        // tools copy it (what `mv` does on EXDEV) and the upper dir stays a plain diff.
        let renamed = std::fs::rename(merged.join("d"), merged.join("e"));
        let options = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        unmount(&merged);
        assert_eq!(
            renamed.unwrap_err().raw_os_error(),
            Some(libc::EXDEV),
            "a lower directory was renamed in place (redirect_dir on)"
        );
        let line = options
            .lines()
            .find(|l| l.contains(&*merged.to_string_lossy()))
            .unwrap()
            .to_string();
        assert!(!line.contains("redirect_dir=on"), "{line}");
        assert!(!line.contains("metacopy=on"), "{line}");
        assert!(!line.contains("userxattr"), "{line}");
    }

    #[test]
    fn older_kernels_paths_mount_too_without_chdir() {
        let (dir, lowers) = stack(3);
        let merged = dir.path().join("merged");
        let cwd = std::env::current_dir().unwrap();
        for (support, method) in [
            (Support::WholeLowerdir, MountMethod::WholeLowerdir),
            (Support::Legacy, MountMethod::LegacyMount),
        ] {
            let got = mount_overlay_as(&spec(dir.path(), &lowers), &merged, support).unwrap();
            let top = std::fs::read_to_string(merged.join("f2"));
            let bottom = std::fs::read_to_string(merged.join("f0"));
            unmount(&merged);
            assert_eq!(got, method);
            assert_eq!((top.unwrap(), bottom.unwrap()), ("2".into(), "0".into()));
            assert_eq!(std::env::current_dir().unwrap(), cwd);
        }
        // A whole lowerdir past fsconfig's 256 bytes falls back to mount(2)'s page.
        let (dir, lowers) = stack(20);
        let merged = dir.path().join("merged");
        let got =
            mount_overlay_as(&spec(dir.path(), &lowers), &merged, Support::WholeLowerdir).unwrap();
        unmount(&merged);
        assert_eq!(got, MountMethod::LegacyMount);
    }

    #[test]
    fn mount2_says_when_a_stack_does_not_fit_a_page() {
        let (dir, lowers) = stack(200);
        let merged = dir.path().join("merged");
        let err =
            mount_overlay_as(&spec(dir.path(), &lowers), &merged, Support::Legacy).unwrap_err();
        assert!(err.to_string().contains("one-page option string"), "{err}");
        assert!(max_lower_layers() >= 128);
    }

    #[test]
    fn volatile_is_passed_when_asked() {
        let (dir, lowers) = stack(1);
        let merged = dir.path().join("merged");
        let mut s = spec(dir.path(), &lowers);
        s.volatile = true;
        mount_overlay(&s, &merged).unwrap();
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        unmount(&merged);
        let line = info
            .lines()
            .find(|l| l.contains(&*merged.to_string_lossy()))
            .unwrap();
        assert!(line.contains("volatile"), "{line}");
    }
}
