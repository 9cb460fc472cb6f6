//! Where everything lives under Berth's root (Docker's overlay2 layout, byte for byte), plus the
//! two primitives every metadata change uses: an exclusive flock on the store, and atomic file
//! writes (temporary name, fsync, rename).
use crate::digest::hex_part;
use crate::error::{ImageError, Result};
use std::path::{Path, PathBuf};

/// Paths of the store under one root.
#[derive(Debug, Clone)]
pub struct Layout {
    pub root: PathBuf,
    /// `<root>/image/overlay2`
    pub image: PathBuf,
    /// `<root>/overlay2`
    pub overlay: PathBuf,
}

impl Layout {
    pub fn new(root: &Path) -> Layout {
        Layout {
            root: root.to_path_buf(),
            image: root.join("image/overlay2"),
            overlay: root.join("overlay2"),
        }
    }
    pub fn layerdb(&self) -> PathBuf {
        self.image.join("layerdb/sha256")
    }
    pub fn layer_meta(&self, chain_id: &str) -> PathBuf {
        self.layerdb().join(hex_part(chain_id))
    }
    pub fn layerdb_tmp(&self) -> PathBuf {
        self.image.join("layerdb/tmp")
    }
    pub fn mounts(&self) -> PathBuf {
        self.image.join("layerdb/mounts")
    }
    pub fn mount_meta(&self, container_id: &str) -> PathBuf {
        self.mounts().join(container_id)
    }
    pub fn image_content_dir(&self) -> PathBuf {
        self.image.join("imagedb/content/sha256")
    }
    pub fn image_content(&self, id: &str) -> PathBuf {
        self.image_content_dir().join(hex_part(id))
    }
    pub fn image_meta(&self, id: &str) -> PathBuf {
        self.image
            .join("imagedb/metadata/sha256")
            .join(hex_part(id))
    }
    pub fn repositories(&self) -> PathBuf {
        self.image.join("repositories.json")
    }
    pub fn distribution(&self) -> PathBuf {
        self.image.join("distribution")
    }
    pub fn lock_file(&self) -> PathBuf {
        self.image.join(".berth-lock")
    }
    pub fn layer_dir(&self, cache_id: &str) -> PathBuf {
        self.overlay.join(cache_id)
    }
    pub fn links(&self) -> PathBuf {
        self.overlay.join("l")
    }

    /// Creates the directory skeleton (idempotent). Like Docker, `overlay2/` is 0710 and
    /// `image/` 0700 when we create them: layer contents (setuid binaries included) are not for
    /// other users to browse.
    pub fn ensure(&self) -> Result<()> {
        use std::os::unix::fs::PermissionsExt;
        for (d, mode) in [(&self.overlay, 0o710), (&self.root.join("image"), 0o700)] {
            if !d.exists() {
                std::fs::create_dir_all(d).map_err(ImageError::io("creating", d))?;
                std::fs::set_permissions(d, std::fs::Permissions::from_mode(mode))
                    .map_err(ImageError::io("chmod", d))?;
            }
        }
        spread_subdirectories(&self.overlay);
        for d in [
            self.layerdb(),
            self.layerdb_tmp(),
            self.mounts(),
            self.image_content_dir(),
            self.image.join("imagedb/metadata/sha256"),
            self.links(),
        ] {
            std::fs::create_dir_all(&d).map_err(ImageError::io("creating", &d))?;
        }
        Ok(())
    }
}

/// Marks `dir` as the top of unrelated directory trees (`chattr +T`, ext2/3/4's
/// `FS_TOPDIR_FL`), so ext4's Orlov allocator places each new subdirectory (one per layer) in a
/// block group of its own, one with free inodes and few directories, instead of next to its
/// siblings. Why: on ext4 without a journal every inode allocation scans past the group's
/// recently deleted inodes (`recently_deleted`: 5 s, or 5 minutes while their inode table block
/// is dirty), so files created next to trees just deleted (a removed image, a pruned store,
/// other programs' temporary files) cost O(deleted) each: measured on this host, 8000 files
/// took 18 s next to recent deletions and 0.85 s under a `+T` directory, and a profile of a pull
/// showed a third of its CPU time in that scan. Best effort: other filesystems lack the flag
/// (the allocation is theirs to decide), and nothing depends on it.
pub fn spread_subdirectories(dir: &Path) {
    use rustix::fs::{ioctl_getflags, ioctl_setflags, IFlags, Mode, OFlags};
    let Ok(fd) = rustix::fs::open(
        dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
    ) else {
        return;
    };
    match ioctl_getflags(&fd) {
        Ok(flags) if !flags.contains(IFlags::TOPDIR) => {
            if let Err(e) = ioctl_setflags(&fd, flags | IFlags::TOPDIR) {
                tracing::debug!("{}: chattr +T: {e}", dir.display());
            }
        }
        _ => {}
    }
}

/// Holds the store's exclusive lock until dropped.
pub struct StoreLock {
    _file: std::fs::File,
}

/// Takes the exclusive metadata lock (blocking).
pub fn lock(layout: &Layout) -> Result<StoreLock> {
    let path = layout.lock_file();
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(ImageError::io("opening lock file", &path))?;
    file.lock().map_err(ImageError::io("locking", &path))?;
    Ok(StoreLock { _file: file })
}

/// Writes `bytes` to `path` atomically: temporary sibling, fsync, rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    berth_common::fs::write_atomic(path, bytes).map_err(ImageError::io("writing", path))
}

/// Writes a small file that is not yet visible to anyone (inside a staging directory).
pub fn write_plain(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).map_err(ImageError::io("writing", path))
}

/// Reads a small metadata file as trimmed text.
pub fn read_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .map_err(ImageError::io("reading", path))
}

/// Reads a small metadata file as trimmed text; None when it does not exist.
pub fn read_text_opt(path: &Path) -> Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s.trim().to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ImageError::io("reading", path)(e)),
    }
}

/// Flushes every filesystem that holds one of `paths` with one `syncfs` each (one per distinct
/// device): how a layer's thousands of files become durable together, instead of an `fsync`
/// per file.
pub fn sync_filesystems(paths: &[&Path]) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let mut synced = Vec::new();
    for path in paths {
        let dir = std::fs::File::open(path).map_err(ImageError::io("opening", path))?;
        let dev = dir
            .metadata()
            .map_err(ImageError::io("inspecting", path))?
            .dev();
        if synced.contains(&dev) {
            continue;
        }
        rustix::fs::syncfs(&dir).map_err(|e| ImageError::io("syncing", path)(e.into()))?;
        synced.push(dev);
    }
    Ok(())
}

/// `fsync`s a directory, making the creations, renames and removals in it durable.
pub fn sync_dir(path: &Path) -> Result<()> {
    std::fs::File::open(path)
        .and_then(|d| d.sync_all())
        .map_err(ImageError::io("syncing", path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_directories_are_spread_where_the_filesystem_can() {
        use rustix::fs::{ioctl_getflags, IFlags, Mode, OFlags};
        let root = tempfile::tempdir().unwrap();
        let layout = Layout::new(root.path());
        layout.ensure().unwrap();
        let open = |p: &Path| {
            rustix::fs::open(p, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()).unwrap()
        };
        // Only where the filesystem keeps inode flags (ext4 here; tmpfs has none).
        if ioctl_getflags(open(root.path())).is_err() {
            return;
        }
        assert!(ioctl_getflags(open(&layout.overlay))
            .unwrap()
            .contains(IFlags::TOPDIR));
        // Idempotent on a store that has it.
        layout.ensure().unwrap();
    }
}
