//! Built-in images that need no network: `hello`, one static program (src/hello/main.rs, built
//! by build.rs and embedded here) that greets and reports its namespaces and cgroup limits.
//! On first use the image is imported into the store as `hello:latest` from an in-memory tar.
use berth_engine::error::EngineError;
use berth_engine::{ContainerRecord, Engine, RunOptions};

/// The static `hello` program (empty when build.rs could not build it).
static HELLO: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/hello"));

/// Whether `reference` names the built-in hello image.
pub(crate) fn is_hello(reference: &str) -> bool {
    matches!(
        reference,
        "hello"
            | "hello:latest"
            | "library/hello"
            | "library/hello:latest"
            | "docker.io/library/hello:latest"
    )
}

/// `Engine::create`, importing a built-in image first when the reference names one that the
/// store does not have yet.
pub fn create_with_builtin_images(
    engine: &Engine,
    opts: &RunOptions,
) -> Result<ContainerRecord, EngineError> {
    match engine.create(opts) {
        Err(EngineError::ImageNotFound { reference, .. })
            if is_hello(&reference) && opts.rootfs.is_none() =>
        {
            import_hello(engine.root())?;
            engine.create(opts)
        }
        other => other,
    }
}

/// Imports `hello:latest` into the store under `root`; returns the image ID.
pub fn import_hello(root: &std::path::Path) -> Result<String, EngineError> {
    if HELLO.is_empty() {
        return Err(EngineError::NoBuiltinHello);
    }
    let mut tar = Vec::with_capacity(HELLO.len() + 8192);
    for dir in ["dev/", "etc/", "proc/", "sys/", "tmp/"] {
        append(
            &mut tar,
            dir,
            b'5',
            if dir == "tmp/" { 0o1777 } else { 0o755 },
            &[],
        );
    }
    append(
        &mut tar,
        "etc/passwd",
        b'0',
        0o644,
        b"root:x:0:0:root:/:/hello\nnobody:x:65534:65534:nobody:/:/hello\n",
    );
    append(
        &mut tar,
        "etc/group",
        b'0',
        0o644,
        b"root:x:0:\nnogroup:x:65534:\n",
    );
    append(&mut tar, "hello", b'0', 0o755, HELLO);
    tar.extend_from_slice(&[0u8; 1024]);
    let store = berth_image::Store::open(root)?;
    let options = berth_image::ImportOptions {
        reference: Some("hello:latest".into()),
        changes: vec![r#"CMD ["/hello"]"#.into()],
        message: Some("Berth's built-in hello image".into()),
        source: "-".into(),
    };
    store
        .import(std::io::Cursor::new(tar), &options)
        .map_err(EngineError::Image)
}

/// Appends one ustar entry (name < 100 bytes, root-owned, mtime 0 for a stable DiffID).
fn append(tar: &mut Vec<u8>, name: &str, kind: u8, mode: u32, data: &[u8]) {
    let mut header = [0u8; 512];
    header[..name.len()].copy_from_slice(name.as_bytes());
    let octal = |field: &mut [u8], value: u64| {
        let text = format!("{:0width$o}\0", value, width = field.len() - 1);
        field.copy_from_slice(text.as_bytes());
    };
    octal(&mut header[100..108], mode as u64);
    octal(&mut header[108..116], 0);
    octal(&mut header[116..124], 0);
    octal(&mut header[124..136], data.len() as u64);
    octal(&mut header[136..148], 0);
    header[156] = kind;
    header[257..263].copy_from_slice(b"ustar\0");
    header[263..265].copy_from_slice(b"00");
    header[148..156].copy_from_slice(b"        ");
    let sum: u32 = header.iter().map(|b| *b as u32).sum();
    let text = format!("{sum:06o}\0 ");
    header[148..156].copy_from_slice(text.as_bytes());
    tar.extend_from_slice(&header);
    tar.extend_from_slice(data);
    let pad = (512 - data.len() % 512) % 512;
    tar.extend(std::iter::repeat_n(0u8, pad));
}

/// The static `docker-init` (src/init/main.rs, built by build.rs; empty when it could not be).
static DOCKER_INIT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/docker-init"));

/// Installs Berth's static init at `<root>/bin/docker-init` (where the engine looks first for
/// `--init`) unless the same bytes are already there; written to a temporary name and renamed,
/// so concurrent runs never see half a binary.
pub fn install_docker_init(root: &std::path::Path) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    if DOCKER_INIT.is_empty() {
        return Ok(()); // not built here: the engine falls back to the host's tini.
    }
    let target = root.join(berth_engine::lifecycle::BUILTIN_INIT);
    if std::fs::metadata(&target).is_ok_and(|m| m.len() == DOCKER_INIT.len() as u64) {
        return Ok(());
    }
    let dir = target.parent().unwrap_or(root);
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(DOCKER_INIT)?;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o755))?;
    tmp.persist(&target).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn tar_entries_are_padded_blocks() {
        let mut tar = Vec::new();
        super::append(&mut tar, "hello", b'0', 0o755, b"abc");
        assert_eq!(tar.len(), 1024);
        assert_eq!(&tar[257..262], b"ustar");
        assert_eq!(&tar[512..515], b"abc");
    }
}
