//! The on-disk cache of compiled programs: one file per profile, keyed and checked by everything
//! the program depends on (profile, libseccomp version, flags), so repeated starts skip libseccomp.

use super::*;

/// What a cache file records next to the BPF: everything the program depends on, compared
/// exactly on lookup so that a stale or colliding file is never used.
#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub(super) struct CacheHeader {
    profile: LinuxSeccomp,
    libseccomp: String,
    arch: String,
    flags: libc::c_ulong,
    skipped: Vec<String>,
}

pub(super) fn libseccomp_version() -> String {
    libseccomp::ScmpVersion::current()
        .map(|v| format!("{}.{}.{}", v.major, v.minor, v.micro))
        .unwrap_or_default()
}

/// [`compile`], with the result kept in `cache_dir` and reused when the same profile is compiled
/// again by the same libseccomp. libseccomp needs ~12 ms for Docker's default profile with its
/// three x86 architectures, half the time a whole `runc run` takes; a cache hit costs one small
/// file read. Cache trouble is never fatal: it falls back to compiling.
pub fn compile_cached(
    profile: &LinuxSeccomp,
    cache_dir: &std::path::Path,
) -> Result<Program, SeccompError> {
    use std::hash::{Hash, Hasher};
    let Ok(profile_json) = serde_json::to_string(profile) else {
        return compile(profile);
    };
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    profile_json.hash(&mut hasher);
    let libseccomp = libseccomp_version();
    libseccomp.hash(&mut hasher);
    // Bumped whenever compile() changes the program it makes for the same profile.
    "program-v2-enosys-stub".hash(&mut hasher);
    let path = cache_dir.join(format!("seccomp-{:016x}.bpf", hasher.finish()));
    if let Some(program) = read_cache(&path, profile, &libseccomp) {
        return Ok(program);
    }
    let program = compile(profile)?;
    write_cache(&path, profile, &libseccomp, &program);
    Ok(program)
}

pub(super) fn read_cache(
    path: &std::path::Path,
    profile: &LinuxSeccomp,
    libseccomp: &str,
) -> Option<Program> {
    let bytes = std::fs::read(path).ok()?;
    let newline = bytes.iter().position(|b| *b == b'\n')?;
    let header: CacheHeader = serde_json::from_slice(&bytes[..newline]).ok()?;
    if header.profile != *profile
        || header.libseccomp != libseccomp
        || header.arch != std::env::consts::ARCH
    {
        return None;
    }
    let filter = decode_bpf(&bytes[newline + 1..]).ok()?;
    if filter.is_empty() || filter.len() > BPF_MAX_INSNS {
        return None;
    }
    Some(Program {
        filter,
        flags: header.flags,
        skipped: header.skipped,
    })
}

/// Write atomically (temporary name, then rename); failures only cost the next run a compile.
pub(super) fn write_cache(
    path: &std::path::Path,
    profile: &LinuxSeccomp,
    libseccomp: &str,
    program: &Program,
) {
    let header = CacheHeader {
        profile: profile.clone(),
        libseccomp: libseccomp.to_string(),
        arch: std::env::consts::ARCH.to_string(),
        flags: program.flags,
        skipped: program.skipped.clone(),
    };
    let Ok(mut bytes) = serde_json::to_vec(&header) else {
        return;
    };
    bytes.push(b'\n');
    for insn in &program.filter {
        bytes.extend_from_slice(&insn.code.to_ne_bytes());
        bytes.push(insn.jt);
        bytes.push(insn.jf);
        bytes.extend_from_slice(&insn.k.to_ne_bytes());
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let written = std::fs::create_dir_all(path.parent().unwrap_or(path))
        .and_then(|()| std::fs::write(&tmp, &bytes))
        .and_then(|()| std::fs::rename(&tmp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
}
