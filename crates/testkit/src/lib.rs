//! Test support for Berth: busybox root filesystems and OCI bundles built from Debian's
//! `busybox-static`, temporary roots, and cleanup of what a test leaves behind.
//!
//! Test-only: no production crate depends on this one.

pub mod dockerd;
pub mod forked;
pub mod registry;

use anyhow::{bail, Context, Result};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where Debian's `busybox-static` puts its binary.
pub const BUSYBOX: &str = "/bin/busybox";

/// The default `config.json` that `runc spec` writes (runc 1.1), kept verbatim so tests can check
/// that a bundle made for runc behaves the same under `berth-runtime`.
pub const RUNC_SPEC_JSON: &str = include_str!("runc-spec.json");

/// Fails with a clear message when the test machine lacks `busybox-static`.
pub fn require_busybox() -> Result<()> {
    let out = Command::new("file").arg(BUSYBOX).output();
    if !Path::new(BUSYBOX).exists() {
        bail!("{BUSYBOX} is missing: install Debian's busybox-static (scripts/test does)");
    }
    if let Ok(out) = out {
        let text = String::from_utf8_lossy(&out.stdout);
        if !text.contains("statically linked") && !text.contains("static-pie") {
            bail!("{BUSYBOX} is not static: install Debian's busybox-static");
        }
    }
    Ok(())
}

/// The applets the installed busybox knows, from `busybox --list`.
pub fn busybox_applets() -> Result<Vec<String>> {
    let out = Command::new(BUSYBOX)
        .arg("--list")
        .output()
        .with_context(|| format!("running {BUSYBOX} --list"))?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .filter(|s| !s.is_empty() && !s.contains('/'))
        .collect())
}

/// Lays out a minimal busybox root filesystem in `dir`: `/bin/busybox`, a symlink per applet in
/// `/bin`, the usual empty mount points, and `/etc/{passwd,group,hostname}` with `root`, `nobody`
/// and a `tester` user (1000:1000).
pub fn busybox_rootfs(dir: &Path) -> Result<()> {
    require_busybox()?;
    for d in [
        "bin",
        "sbin",
        "usr/bin",
        "usr/sbin",
        "etc",
        "proc",
        "sys",
        "dev",
        "tmp",
        "root",
        "home/tester",
        "var/tmp",
        "run",
    ] {
        fs::create_dir_all(dir.join(d))
            .with_context(|| format!("creating {}", dir.join(d).display()))?;
    }
    fs::set_permissions(dir.join("tmp"), fs::Permissions::from_mode(0o1777))?;
    fs::copy(BUSYBOX, dir.join("bin/busybox")).context("copying busybox into the rootfs")?;
    for applet in busybox_applets()? {
        if applet == "busybox" {
            continue;
        }
        let link = dir.join("bin").join(&applet);
        if !link.exists() {
            symlink("busybox", &link).with_context(|| format!("linking applet {applet}"))?;
        }
    }
    fs::write(
        dir.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\ntester:x:1000:1000:tester:/home/tester:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )?;
    fs::write(
        dir.join("etc/group"),
        "root:x:0:\ntester:x:1000:\nstaff:x:50:tester\nnogroup:x:65534:\n",
    )?;
    fs::write(dir.join("etc/hostname"), "busybox\n")?;
    Ok(())
}

/// Writes the busybox root filesystem as an uncompressed tar archive (the input of
/// `berth import` / `docker import`), with stable ordering so the DiffID is reproducible
/// for one busybox build.
pub fn busybox_rootfs_tar(out: &Path) -> Result<()> {
    let tmp = tempfile::tempdir()?;
    busybox_rootfs(tmp.path())?;
    let file = fs::File::create(out).with_context(|| format!("creating {}", out.display()))?;
    let mut builder = tar::Builder::new(file);
    builder.follow_symlinks(false);
    builder.mode(tar::HeaderMode::Deterministic);
    append_dir_sorted(&mut builder, tmp.path(), Path::new(""))?;
    builder.into_inner()?.flush()?;
    Ok(())
}

fn append_dir_sorted(builder: &mut tar::Builder<fs::File>, root: &Path, rel: &Path) -> Result<()> {
    let mut entries: Vec<_> = fs::read_dir(root.join(rel))?.collect::<std::io::Result<_>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let rel_path = rel.join(entry.file_name());
        let full = root.join(&rel_path);
        builder.append_path_with_name(&full, &rel_path)?;
        if entry.file_type()?.is_dir() {
            append_dir_sorted(builder, root, &rel_path)?;
        }
    }
    Ok(())
}

/// An OCI bundle in a temporary directory: `config.json` (runc's default spec) and a busybox
/// `rootfs/`. Removed on drop.
pub struct Bundle {
    dir: tempfile::TempDir,
    /// The spec as JSON, edited by the test before [`Bundle::write_config`].
    pub spec: serde_json::Value,
}

impl Bundle {
    /// A bundle whose process runs `args`, with no terminal (tests have none).
    pub fn new(args: &[&str]) -> Result<Bundle> {
        let dir = tempfile::Builder::new().prefix("berth-bundle-").tempdir()?;
        busybox_rootfs(&dir.path().join("rootfs"))?;
        let mut spec: serde_json::Value = serde_json::from_str(RUNC_SPEC_JSON)?;
        spec["process"]["args"] = serde_json::json!(args);
        spec["process"]["terminal"] = serde_json::json!(false);
        let bundle = Bundle { dir, spec };
        bundle.write_config()?;
        Ok(bundle)
    }

    /// The bundle directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The bundle's root filesystem.
    pub fn rootfs(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }

    /// Writes `self.spec` to `config.json`.
    pub fn write_config(&self) -> Result<()> {
        fs::write(
            self.path().join("config.json"),
            serde_json::to_vec_pretty(&self.spec)?,
        )?;
        Ok(())
    }
}

/// A temporary directory for a `--root`, with everything mounted below it unmounted on drop.
pub struct TempRoot {
    dir: tempfile::TempDir,
}

impl TempRoot {
    pub fn new(prefix: &str) -> Result<TempRoot> {
        Ok(TempRoot {
            dir: tempfile::Builder::new().prefix(prefix).tempdir()?,
        })
    }
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for TempRoot {
    fn drop(&mut self) {
        unmount_below(self.dir.path());
    }
}

/// Lazily unmounts every mount at or below `dir`, deepest first. Tests call this so a failed
/// test never leaves a mount behind.
pub fn unmount_below(dir: &Path) {
    let Ok(mounts) = fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let prefix = dir.to_string_lossy().to_string();
    let mut targets: Vec<String> = mounts
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(unescape_mountinfo)
        .filter(|m| m == &prefix || m.starts_with(&format!("{prefix}/")))
        .collect();
    targets.sort_by_key(|t| std::cmp::Reverse(t.len()));
    for t in targets {
        let _ = nix::mount::umount2(t.as_str(), nix::mount::MntFlags::MNT_DETACH);
    }
}

fn unescape_mountinfo(s: &str) -> String {
    s.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

/// True when `name` is on PATH.
pub fn have(name: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
        .unwrap_or(false)
}

/// Polls `cond` every 5 ms until it holds or `timeout` passes; returns whether it held.
pub fn wait_until(timeout: std::time::Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if std::time::Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// The inode of namespace `kind` (`pid`, `net`, …) of process `pid`, as `/proc/<pid>/ns/<kind>`
/// shows it (`pid:[4026531836]` gives 4026531836).
pub fn ns_inode(pid: &str, kind: &str) -> Result<u64> {
    let link = fs::read_link(format!("/proc/{pid}/ns/{kind}"))?;
    let text = link.to_string_lossy();
    let start = text.find('[').context("no [ in ns link")? + 1;
    let end = text.find(']').context("no ] in ns link")?;
    Ok(text[start..end].parse()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rootfs_has_shell_and_users() {
        let dir = tempfile::tempdir().unwrap();
        busybox_rootfs(dir.path()).unwrap();
        assert!(dir.path().join("bin/sh").exists());
        assert!(fs::read_to_string(dir.path().join("etc/passwd"))
            .unwrap()
            .contains("tester:x:1000"));
    }

    #[test]
    fn rootfs_tar_is_reproducible() {
        let dir = tempfile::tempdir().unwrap();
        busybox_rootfs_tar(&dir.path().join("a.tar")).unwrap();
        busybox_rootfs_tar(&dir.path().join("b.tar")).unwrap();
        assert_eq!(
            fs::read(dir.path().join("a.tar")).unwrap(),
            fs::read(dir.path().join("b.tar")).unwrap()
        );
    }

    #[test]
    fn runc_spec_parses() {
        let v: serde_json::Value = serde_json::from_str(RUNC_SPEC_JSON).unwrap();
        assert_eq!(v["hostname"], "runc");
    }
}
