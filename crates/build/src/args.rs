//! Build arguments with Docker's scoping: `ARG`s before the first `FROM` are meta args, usable in
//! `FROM` lines; inside a stage only declared `ARG`s are visible, a redeclared meta arg without a
//! default takes the meta value, `--build-arg` overrides declared defaults, and the predefined
//! proxy args are allowed without declaration but kept out of history unless declared.
use std::collections::{BTreeMap, BTreeSet};

/// Docker's predefined args.
pub const BUILTIN_ARGS: &[&str] = &[
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// `--build-arg` values (None: declared on the command line without a value and absent from
/// the environment, so the Dockerfile default applies).
pub type BuildArgOptions = BTreeMap<String, Option<String>>;

/// The args of the whole build (options, meta args) and of the current stage.
#[derive(Debug, Clone, Default)]
pub struct BuildArgs {
    options: BuildArgOptions,
    meta: BTreeMap<String, Option<String>>,
    /// Declared in the current stage, with their defaults.
    allowed: BTreeMap<String, Option<String>>,
    /// Every arg name any stage or meta ARG declared (to report unconsumed options).
    referenced: BTreeSet<String>,
}

impl BuildArgs {
    pub fn new(options: BuildArgOptions) -> Self {
        BuildArgs {
            options,
            ..Default::default()
        }
    }

    /// A meta `ARG` (before the first FROM).
    pub fn add_meta_arg(&mut self, name: &str, default: Option<String>) {
        self.referenced.insert(name.to_string());
        self.meta.insert(name.to_string(), default);
    }

    /// Values of meta args, for expanding `FROM` lines.
    pub fn meta_values(&self) -> BTreeMap<String, String> {
        self.meta
            .keys()
            .filter_map(|k| self.meta_value(k).map(|v| (k.clone(), v)))
            .collect()
    }

    fn meta_value(&self, name: &str) -> Option<String> {
        if let Some(Some(v)) = self.options.get(name) {
            return Some(v.clone());
        }
        self.meta.get(name).cloned().flatten()
    }

    /// Starts a new stage: nothing declared yet.
    pub fn begin_stage(&mut self) {
        self.allowed.clear();
    }

    /// An `ARG` inside a stage.
    pub fn add_arg(&mut self, name: &str, default: Option<String>) {
        self.referenced.insert(name.to_string());
        self.allowed.insert(name.to_string(), default);
    }

    fn value(&self, name: &str, default: &Option<String>) -> Option<String> {
        if let Some(Some(v)) = self.options.get(name) {
            return Some(v.clone());
        }
        match default {
            Some(d) => Some(d.clone()),
            None => self.meta_value(name),
        }
    }

    /// Args in effect in this stage with a value, sorted by name (declared ones, plus
    /// predefined proxy args given as options).
    pub fn in_effect(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for (name, default) in &self.allowed {
            if let Some(v) = self.value(name, default) {
                out.insert(name.clone(), v);
            }
        }
        for name in BUILTIN_ARGS {
            if !self.allowed.contains_key(*name) {
                if let Some(Some(v)) = self.options.get(*name) {
                    out.insert(name.to_string(), v.clone());
                }
            }
        }
        out
    }

    /// Whether `name` goes into `RUN` history (`|N K=V …`): declared, or not a predefined arg.
    pub fn shows_in_history(&self, name: &str) -> bool {
        self.allowed.contains_key(name) || !BUILTIN_ARGS.contains(&name)
    }

    /// `--build-arg`s no ARG declared (Docker warns about them).
    pub fn unconsumed(&self) -> Vec<String> {
        self.options
            .keys()
            .filter(|k| !self.referenced.contains(*k) && !BUILTIN_ARGS.contains(&k.as_str()))
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(pairs: &[(&str, Option<&str>)]) -> BuildArgOptions {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.map(str::to_string)))
            .collect()
    }

    #[test]
    fn scoping() {
        let mut a = BuildArgs::new(opts(&[
            ("VER", Some("2")),
            ("UNUSED", Some("x")),
            ("http_proxy", Some("p")),
        ]));
        a.add_meta_arg("BASE", Some("busybox".into()));
        a.add_meta_arg("VER", Some("1".into()));
        assert_eq!(
            a.meta_values().get("BASE").map(String::as_str),
            Some("busybox")
        );
        assert_eq!(a.meta_values().get("VER").map(String::as_str), Some("2"));
        a.begin_stage();
        // Meta args are not visible in a stage until redeclared.
        assert!(!a.in_effect().contains_key("BASE"));
        a.add_arg("BASE", None);
        assert_eq!(
            a.in_effect().get("BASE").map(String::as_str),
            Some("busybox")
        );
        a.add_arg("VER", Some("3".into()));
        assert_eq!(a.in_effect().get("VER").map(String::as_str), Some("2"));
        a.add_arg("NOVAL", None);
        assert!(!a.in_effect().contains_key("NOVAL"));
        assert_eq!(
            a.in_effect().get("http_proxy").map(String::as_str),
            Some("p")
        );
        assert!(!a.shows_in_history("http_proxy"));
        assert!(a.shows_in_history("VER"));
        assert_eq!(a.unconsumed(), vec!["UNUSED"]);
        a.begin_stage();
        assert!(!a.in_effect().contains_key("VER"));
    }
}
