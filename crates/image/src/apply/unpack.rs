//! Unpacking a tar into a directory that is not a layer (`ADD`, `cp`): the same hardened
//! extractor, with its own options.
use super::*;

/// How [`unpack_into`] writes entries.
#[derive(Debug, Clone, Copy, Default)]
pub struct UnpackOptions {
    /// Owner given to every entry instead of the archive's (`cp` without `-a`, `ADD --chown`).
    pub owner: Option<(u32, u32)>,
    /// Interpret `.wh.` entries as whiteouts (only for layers; off for `cp` and `ADD`).
    pub whiteouts: bool,
}

/// Extracts a plain (uncompressed) tar stream into the directory `dest` with the same hardening
/// as layers: every name is resolved inside `dest` (`openat2(RESOLVE_IN_ROOT)` on its fd), `..`
/// and absolute names are refused, hard links may only point at files already extracted inside
/// `dest` (their names resolved from `dest`, never from the caller's working directory).
/// `label` names the archive in errors. Returns the number of entries applied.
pub fn unpack_into<R: Read>(
    reader: R,
    dest: rustix::fd::BorrowedFd<'_>,
    label: &str,
    options: UnpackOptions,
) -> Result<u64> {
    let root = rustix::fs::openat(
        dest,
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| ImageError::io("opening destination of", Path::new(label))(to_io(e)))?;
    let mut tar = TarReader::new(BufReader::with_capacity(1 << 16, reader));
    let mut ex = Extractor::new(root, label, options.whiteouts);
    let bad = |reason: TarError| match reason {
        TarError::Io(source) => ImageError::Io {
            context: "reading archive",
            path: label.into(),
            source,
        },
        TarError::Malformed(reason) => ImageError::BadTar {
            layer: label.to_string(),
            reason,
        },
    };
    let mut count = 0u64;
    while let Some(mut h) = tar.next_entry().map_err(bad)? {
        if let Some((uid, gid)) = options.owner {
            h.uid = u64::from(uid);
            h.gid = u64::from(gid);
        }
        ex.apply_entry(&h, &mut tar)?;
        count += 1;
    }
    ex.finish_dir_times()?;
    tar.finish().map_err(bad)?;
    Ok(count)
}

/// [`unpack_into`] fed by `produce`, which writes a tar on another thread through a pipe: how
/// `cp` and the builder's `COPY` move a tree they archive themselves without a temporary file.
pub fn unpack_produced<F>(
    dest: rustix::fd::BorrowedFd<'_>,
    label: &str,
    options: UnpackOptions,
    produce: F,
) -> Result<u64>
where
    F: FnOnce(&mut std::io::PipeWriter) -> std::io::Result<()> + Send,
{
    let (reader, mut writer) =
        std::io::pipe().map_err(ImageError::io("opening a pipe for", Path::new(label)))?;
    std::thread::scope(|s| {
        let producer = s.spawn(move || {
            let r = produce(&mut writer);
            drop(writer);
            r
        });
        let applied = unpack_into(reader, dest, label, options);
        let produced = producer
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("archiver panicked")));
        let count = applied?;
        produced.map_err(ImageError::io("archiving", Path::new(label)))?;
        Ok(count)
    })
}
