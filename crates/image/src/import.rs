//! `import`: a root filesystem tarball (plain, gzip or zstd) becomes a one-layer image, with
//! Dockerfile-style `--change` instructions applied to its config, as `docker import` does.
use crate::compression::decompress;
use crate::config::{ContainerConfig, History, ImageConfig, RootFs};
use crate::error::{ImageError, Result};
use crate::store::Store;
use berth_common::time::now_rfc3339;
use std::io::Read;

/// Options of one import.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// Tag the new image with this reference.
    pub reference: Option<String>,
    /// `--change` instructions (CMD, ENTRYPOINT, ENV, WORKDIR, USER, EXPOSE, VOLUME, LABEL,
    /// STOPSIGNAL, ONBUILD).
    pub changes: Vec<String>,
    /// `--message`: the history comment (default "Imported from <source>").
    pub message: Option<String>,
    /// Where the tarball came from ("-" for stdin and uploaded files, as Docker records it).
    pub source: String,
}

/// Docker's GOARCH name for this machine.
pub fn host_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

fn bad(change: &str, reason: &str) -> ImageError {
    ImageError::BadChange {
        change: change.to_string(),
        reason: reason.to_string(),
    }
}

/// Splits a JSON-array or shell-form argument into the exec form Docker stores.
fn exec_form(args: &str, shell: &[String]) -> Vec<String> {
    let t = args.trim();
    if t.starts_with('[') {
        if let Ok(v) = serde_json::from_str::<Vec<String>>(t) {
            return v;
        }
    }
    let mut v = shell.to_vec();
    v.push(t.to_string());
    v
}

/// `KEY=VALUE ...` or `KEY VALUE` pairs (ENV, LABEL), quotes removed.
fn key_values(args: &str, change: &str) -> Result<Vec<(String, String)>> {
    let words = shell_words(args);
    if words.is_empty() {
        return Err(bad(change, "requires at least one argument"));
    }
    if !words[0].contains('=') {
        let (k, v) = args
            .trim()
            .split_once(char::is_whitespace)
            .ok_or_else(|| bad(change, "needs a value"))?;
        return Ok(vec![(k.to_string(), unquote(v.trim()))]);
    }
    words
        .into_iter()
        .map(|w| {
            w.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| bad(change, "expected KEY=VALUE"))
        })
        .collect()
}

fn unquote(s: &str) -> String {
    shell_words(s).join(" ")
}

/// Whitespace-separated words honouring single and double quotes and backslashes.
fn shell_words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut has = false;
    let mut chars = s.chars();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, c) if c.is_whitespace() => {
                if has {
                    out.push(std::mem::take(&mut cur));
                    has = false;
                }
            }
            (None, '\'' | '"') => {
                quote = Some(c);
                has = true;
            }
            (Some(q), c) if c == q => quote = None,
            (q, '\\') if q != Some('\'') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
                has = true;
            }
            (_, c) => {
                cur.push(c);
                has = true;
            }
        }
    }
    if has {
        out.push(cur);
    }
    out
}

/// Applies Dockerfile-style instructions to a runtime config.
pub fn apply_changes(config: &mut ContainerConfig, changes: &[String]) -> Result<()> {
    for change in changes {
        let trimmed = change.trim();
        let (instr, args) = trimmed
            .split_once(char::is_whitespace)
            .unwrap_or((trimmed, ""));
        let args = args.trim();
        let shell = config
            .shell
            .clone()
            .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()]);
        match instr.to_ascii_uppercase().as_str() {
            "CMD" => config.cmd = Some(exec_form(args, &shell)),
            "ENTRYPOINT" => config.entrypoint = Some(exec_form(args, &shell)),
            "ENV" => {
                let env = config.env.get_or_insert_with(Vec::new);
                for (k, v) in key_values(args, change)? {
                    env.retain(|e| e.split_once('=').map(|(ek, _)| ek) != Some(k.as_str()));
                    env.push(format!("{k}={v}"));
                }
            }
            "LABEL" => {
                let labels = config.labels.get_or_insert_with(Default::default);
                for (k, v) in key_values(args, change)? {
                    labels.insert(k, v);
                }
            }
            "WORKDIR" => {
                if args.is_empty() {
                    return Err(bad(change, "requires exactly one argument"));
                }
                let dir = unquote(args);
                let joined = if dir.starts_with('/') {
                    dir
                } else {
                    let base = config.working_dir.clone().unwrap_or_else(|| "/".into());
                    format!("{}/{}", base.trim_end_matches('/'), dir)
                };
                config.working_dir = Some(joined);
            }
            "USER" => {
                if args.is_empty() {
                    return Err(bad(change, "requires exactly one argument"));
                }
                config.user = Some(unquote(args));
            }
            "EXPOSE" => {
                let ports = config.exposed_ports.get_or_insert_with(Default::default);
                for p in shell_words(args) {
                    let p = if p.contains('/') {
                        p
                    } else {
                        format!("{p}/tcp")
                    };
                    ports.insert(p, serde_json::json!({}));
                }
            }
            "VOLUME" => {
                let vols = config.volumes.get_or_insert_with(Default::default);
                let list = if args.starts_with('[') {
                    serde_json::from_str::<Vec<String>>(args)
                        .map_err(|_| bad(change, "bad JSON array"))?
                } else {
                    shell_words(args)
                };
                for v in list {
                    vols.insert(v, serde_json::json!({}));
                }
            }
            "STOPSIGNAL" => config.stop_signal = Some(unquote(args)),
            "ONBUILD" => config
                .on_build
                .get_or_insert_with(Vec::new)
                .push(args.to_string()),
            other => {
                return Err(bad(
                    change,
                    &format!("{other} is not a valid change command"),
                ));
            }
        }
    }
    Ok(())
}

impl Store {
    /// Imports a root filesystem tarball as a new image; returns its ID.
    pub fn import(&self, input: impl Read, options: &ImportOptions) -> Result<String> {
        let mut runtime = ContainerConfig::default();
        apply_changes(&mut runtime, &options.changes)?;
        if let Some(r) = &options.reference {
            crate::reference::Reference::parse_tagged(r)?;
        }
        let label = format!("import from {}", options.source);
        let staged = self.stage_layer(decompress(input)?, &label)?;
        let diff_id = staged.applied.diff_id.clone();
        self.commit_staged(staged, None)?;
        let created = now_rfc3339();
        let comment = options
            .message
            .clone()
            .unwrap_or_else(|| format!("Imported from {}", options.source));
        let config = ImageConfig {
            architecture: host_architecture().to_string(),
            comment: Some(comment.clone()),
            config: Some(runtime),
            created: Some(created.clone()),
            docker_version: Some(format!("berth-{}", env!("CARGO_PKG_VERSION"))),
            history: vec![History {
                created: Some(created),
                comment: Some(comment),
                ..Default::default()
            }],
            os: "linux".into(),
            rootfs: RootFs {
                kind: "layers".into(),
                diff_ids: vec![diff_id],
            },
            ..Default::default()
        };
        let id = self.add_image(&config, None)?;
        if let Some(r) = &options.reference {
            self.tag(&id, r)?;
        }
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_follow_dockerfile_rules() {
        let mut c = ContainerConfig::default();
        apply_changes(
            &mut c,
            &[
                "CMD [\"sh\", \"-c\", \"echo hi\"]".into(),
                "ENTRYPOINT /bin/app --x".into(),
                "ENV A=1 B=\"two words\"".into(),
                "ENV C 3".into(),
                "WORKDIR /srv".into(),
                "WORKDIR app".into(),
                "USER tester".into(),
                "EXPOSE 80 53/udp".into(),
                "VOLUME [\"/data\"]".into(),
                "LABEL k=v".into(),
                "STOPSIGNAL SIGINT".into(),
            ],
        )
        .unwrap();
        assert_eq!(c.cmd.unwrap(), vec!["sh", "-c", "echo hi"]);
        assert_eq!(c.entrypoint.unwrap(), vec!["/bin/sh", "-c", "/bin/app --x"]);
        assert_eq!(c.env.unwrap(), vec!["A=1", "B=two words", "C=3"]);
        assert_eq!(c.working_dir.unwrap(), "/srv/app");
        assert!(c.exposed_ports.unwrap().contains_key("53/udp"));
        assert!(c.volumes.unwrap().contains_key("/data"));
        assert_eq!(c.stop_signal.unwrap(), "SIGINT");
        assert!(apply_changes(&mut ContainerConfig::default(), &["RUN x".into()]).is_err());
    }
}
