//! The build context: a directory, or a tar read from stdin (`berth build -`) unpacked into a
//! temporary directory (a plain Dockerfile on stdin gives an empty context), with its
//! `.dockerignore`. Resolves `COPY`/`ADD` sources (globs included) in the context or in another
//! stage's root filesystem, and hashes them (`file:<sha256>`, `dir:<sha256>`) for history text
//! and the build cache.
use crate::dockerignore::{clean_path, glob_match, has_wildcards, IgnoreMatcher};
use crate::error::{BuildError, Result};
use crate::fsutil::secure_join;
use sha2::{Digest, Sha256};
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// A build context on disk.
#[derive(Debug)]
pub struct BuildContext {
    root: PathBuf,
    ignore: IgnoreMatcher,
    _temp: Option<tempfile::TempDir>,
}

/// What `berth build -` found on stdin.
#[derive(Debug)]
pub struct StdinContext {
    pub context: BuildContext,
    /// Set when stdin was a Dockerfile rather than a tar.
    pub dockerfile: Option<String>,
}

impl BuildContext {
    /// A context directory (with its `.dockerignore`, if any).
    pub fn from_dir(dir: &Path) -> Result<BuildContext> {
        let meta = std::fs::metadata(dir)
            .map_err(|e| BuildError::io("unable to prepare context: path", dir, e))?;
        if !meta.is_dir() {
            return Err(BuildError::Context(format!(
                "unable to prepare context: path {:?} is not a directory",
                dir
            )));
        }
        let ignore = match std::fs::read_to_string(dir.join(".dockerignore")) {
            Ok(text) => IgnoreMatcher::parse(&text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => IgnoreMatcher::default(),
            Err(e) => return Err(BuildError::io("reading", dir.join(".dockerignore"), e)),
        };
        Ok(BuildContext {
            root: dir.to_path_buf(),
            ignore,
            _temp: None,
        })
    }

    /// Reads stdin: a tar (plain or gzip) becomes the context; anything else is the Dockerfile
    /// of an empty context.
    pub fn from_stdin(mut input: impl Read) -> Result<StdinContext> {
        let mut data = Vec::new();
        input
            .read_to_end(&mut data)
            .map_err(|e| BuildError::io("reading", "stdin", e))?;
        let temp = tempfile::Builder::new()
            .prefix("berth-build-context-")
            .tempdir()
            .map_err(|e| BuildError::io("creating", std::env::temp_dir(), e))?;
        let gzip = data.starts_with(&[0x1f, 0x8b]);
        let is_tar = gzip || (data.len() >= 262 && &data[257..262] == b"ustar");
        let mut dockerfile = None;
        if is_tar {
            let reader: Box<dyn Read> = if gzip {
                Box::new(flate2::read::GzDecoder::new(&data[..]))
            } else {
                Box::new(&data[..])
            };
            let mut archive = tar::Archive::new(reader);
            archive.set_preserve_permissions(true);
            archive.unpack(temp.path()).map_err(|e| {
                BuildError::Context(format!("unpacking the context tar from stdin: {e}"))
            })?;
        } else {
            dockerfile = Some(String::from_utf8_lossy(&data).into_owned());
        }
        let mut context = BuildContext::from_dir(temp.path())?;
        context._temp = Some(temp);
        Ok(StdinContext {
            context,
            dockerfile,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn ignore(&self) -> &IgnoreMatcher {
        &self.ignore
    }

    /// The sources tree of this context (ignore rules applied).
    pub fn tree(&self) -> SourceTree<'_> {
        SourceTree {
            root: &self.root,
            ignore: Some(&self.ignore),
            in_context: true,
        }
    }
}

/// Where `COPY` sources come from: the context, or a stage's/image's root filesystem.
#[derive(Debug, Clone, Copy)]
pub struct SourceTree<'a> {
    pub root: &'a Path,
    pub ignore: Option<&'a IgnoreMatcher>,
    /// Errors speak of "the build context" (else of the stage's filesystem).
    pub in_context: bool,
}

/// One resolved `COPY`/`ADD` source.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    /// On disk.
    pub path: PathBuf,
    /// Relative to the tree's root, cleaned (`.` for the root itself).
    pub rel: String,
    pub is_dir: bool,
    /// `file:<sha256>` or `dir:<sha256>`.
    pub hash: String,
}

impl SourceTree<'_> {
    fn excluded(&self, rel: &str) -> bool {
        rel != "." && self.ignore.is_some_and(|m| m.is_excluded(rel))
    }

    /// Resolves one source as written (after expansion): a path or a glob, relative to the
    /// tree's root (a leading `/` is the root too).
    pub fn resolve(&self, source: &str) -> Result<Vec<Source>> {
        let cleaned = clean_path(&format!("/{source}"));
        let rel = cleaned.trim_start_matches('/');
        let rel = if rel.is_empty() { "." } else { rel };
        if self.in_context && clean_path(source).starts_with("..") {
            return Err(BuildError::Context(format!(
                "forbidden path outside the build context: {source} ()"
            )));
        }
        if has_wildcards(rel) {
            let pattern: Vec<char> = rel.chars().collect();
            let mut matches = Vec::new();
            self.walk(self.root, "", &mut |rel_path, _| {
                let chars: Vec<char> = rel_path.chars().collect();
                if glob_match(&pattern, &chars) {
                    matches.push(rel_path.to_string());
                }
            })?;
            matches.sort();
            // A matched directory already includes its matched children.
            let mut out: Vec<Source> = Vec::new();
            for m in matches {
                if out
                    .iter()
                    .any(|s| s.is_dir && m.starts_with(&format!("{}/", s.rel)))
                {
                    continue;
                }
                out.push(self.source_at(&m)?);
            }
            if out.is_empty() {
                return Err(self.not_found(source));
            }
            return Ok(out);
        }
        if self.excluded(rel) {
            return Err(self.not_found(source));
        }
        Ok(vec![self.source_at(rel)?])
    }

    fn not_found(&self, source: &str) -> BuildError {
        if self.in_context {
            BuildError::Context(format!(
                "file not found in build context or excluded by .dockerignore: stat {source}: file does not exist"
            ))
        } else {
            BuildError::Context(format!("stat {source}: file does not exist"))
        }
    }

    fn source_at(&self, rel: &str) -> Result<Source> {
        let path = if rel == "." {
            self.root.to_path_buf()
        } else {
            secure_join(self.root, rel, true)?
        };
        let meta = match std::fs::metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(self.not_found(rel)),
            Err(e) => return Err(BuildError::io("stat", &path, e)),
        };
        let hash = if meta.is_dir() {
            let mut hasher = Sha256::new();
            let base = if rel == "." {
                String::new()
            } else {
                rel.to_string()
            };
            self.walk(&path, &base, &mut |child_rel, child_path| {
                let entry = entry_digest(child_path);
                let shown = child_rel.strip_prefix(&base).unwrap_or(child_rel);
                hasher.update(shown.as_bytes());
                hasher.update([0]);
                hasher.update(entry.as_bytes());
                hasher.update([b'\n']);
            })?;
            format!("dir:{}", hex::encode(hasher.finalize()))
        } else {
            format!("file:{}", entry_digest(&path))
        };
        Ok(Source {
            path,
            rel: rel.to_string(),
            is_dir: meta.is_dir(),
            hash,
        })
    }

    /// Walks `dir` (whose tree-relative path is `base`), calling `visit(rel, path)` for every
    /// entry not excluded, parents before children, names sorted. Excluded directories are
    /// skipped unless an exception pattern could re-include something below them.
    fn walk(&self, dir: &Path, base: &str, visit: &mut dyn FnMut(&str, &Path)) -> Result<()> {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .map_err(|e| BuildError::io("reading directory", dir, e))?
            .collect::<std::io::Result<_>>()
            .map_err(|e| BuildError::io("reading directory", dir, e))?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let name = entry.file_name().to_string_lossy().into_owned();
            let rel = if base.is_empty() {
                name
            } else {
                format!("{base}/{name}")
            };
            let path = entry.path();
            let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
            let excluded = self.excluded(&rel);
            if !excluded {
                visit(&rel, &path);
            }
            if is_dir && (!excluded || self.ignore.is_some_and(|m| m.has_exceptions())) {
                self.walk(&path, &rel, visit)?;
            }
        }
        Ok(())
    }
}

/// Digest of one entry's type, mode, owner-independent metadata and content (or link target).
fn entry_digest(path: &Path) -> String {
    let mut hasher = Sha256::new();
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => {
            hasher.update(b"l");
            if let Ok(target) = std::fs::read_link(path) {
                hasher.update(target.to_string_lossy().as_bytes());
            }
        }
        Ok(meta) if meta.is_dir() => {
            hasher.update(format!("d{:o}", meta.permissions().mode() & 0o7777).as_bytes());
        }
        Ok(meta) => {
            hasher.update(
                format!("f{:o}:{}:", meta.permissions().mode() & 0o7777, meta.size()).as_bytes(),
            );
            if let Ok(mut file) = std::fs::File::open(path) {
                let mut buf = vec![0u8; 64 * 1024];
                while let Ok(n) = file.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    hasher.update(&buf[..n]);
                }
            }
        }
        Err(_) => hasher.update(b"?"),
    }
    hex::encode(hasher.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context() -> (tempfile::TempDir, BuildContext) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        std::fs::create_dir_all(p.join("sub/deep")).unwrap();
        std::fs::write(p.join("a.txt"), "a").unwrap();
        std::fs::write(p.join("b.txt"), "b").unwrap();
        std::fs::write(p.join("skip.log"), "x").unwrap();
        std::fs::write(p.join("sub/c.txt"), "c").unwrap();
        std::fs::write(p.join("sub/deep/d.txt"), "d").unwrap();
        std::fs::write(p.join(".dockerignore"), "*.log\n").unwrap();
        let ctx = BuildContext::from_dir(p).unwrap();
        (dir, ctx)
    }

    #[test]
    fn resolves_files_dirs_and_globs() {
        let (_d, ctx) = context();
        let t = ctx.tree();
        let a = t.resolve("a.txt").unwrap();
        assert_eq!(a.len(), 1);
        assert!(a[0].hash.starts_with("file:"));
        let txt = t.resolve("*.txt").unwrap();
        assert_eq!(
            txt.iter().map(|s| s.rel.as_str()).collect::<Vec<_>>(),
            vec!["a.txt", "b.txt"]
        );
        let sub = t.resolve("/sub/").unwrap();
        assert!(sub[0].is_dir && sub[0].hash.starts_with("dir:"));
        assert!(t
            .resolve("skip.log")
            .unwrap_err()
            .to_string()
            .contains("skip.log"));
        assert!(t
            .resolve("missing")
            .unwrap_err()
            .to_string()
            .contains("missing"));
        assert!(t.resolve("nomatch*").is_err());
        assert!(t.resolve("../etc/passwd").is_err());
    }

    #[test]
    fn hashes_follow_content_and_ignore_rules() {
        let (dir, ctx) = context();
        let before = ctx.tree().resolve(".").unwrap()[0].hash.clone();
        std::fs::write(dir.path().join("skip.log"), "changed, but ignored").unwrap();
        assert_eq!(ctx.tree().resolve(".").unwrap()[0].hash, before);
        std::fs::write(dir.path().join("sub/c.txt"), "changed").unwrap();
        assert_ne!(ctx.tree().resolve(".").unwrap()[0].hash, before);
    }

    #[test]
    fn stdin_tar_or_dockerfile() {
        let mut tar_bytes = Vec::new();
        {
            let mut b = tar::Builder::new(&mut tar_bytes);
            let mut h = tar::Header::new_gnu();
            h.set_size(11);
            h.set_mode(0o644);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(0);
            h.set_cksum();
            b.append_data(&mut h, "Dockerfile", &b"FROM x\nRUN"[..])
                .unwrap();
            b.finish().unwrap();
        }
        let got = BuildContext::from_stdin(&tar_bytes[..]).unwrap();
        assert!(got.dockerfile.is_none());
        assert!(got.context.root().join("Dockerfile").is_file());
        let got = BuildContext::from_stdin(&b"FROM scratch\n"[..]).unwrap();
        assert_eq!(got.dockerfile.as_deref(), Some("FROM scratch\n"));
    }
}
