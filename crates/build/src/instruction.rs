//! Raw instructions → typed commands: which keywords exist, which flags each accepts, exec (JSON)
//! versus shell form, `KEY=value` lists with Docker's quoting rules, `HEALTHCHECK` options (Go
//! durations stored in nanoseconds) and `ONBUILD` triggers. Variables are NOT expanded here:
//! expansion depends on the stage's state, so the builder does it while dispatching.
use crate::error::{BuildError, Result};
use crate::parser::{Heredoc, RawInstruction};
use berth_common::time::parse_go_duration;

/// A command's argument in exec (JSON array) or shell (string) form.
#[derive(Debug, Clone, PartialEq)]
pub enum CommandLine {
    Exec(Vec<String>),
    Shell(String),
}

/// `COPY`/`ADD` arguments and flags, unexpanded.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CopyArgs {
    pub sources: Vec<String>,
    pub dest: String,
    pub from: Option<String>,
    pub chown: Option<String>,
    pub chmod: Option<String>,
    pub heredocs: Vec<Heredoc>,
}

/// `HEALTHCHECK` options, Docker's `HealthConfig` (durations in ns).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HealthArgs {
    pub test: Vec<String>,
    pub interval: i64,
    pub timeout: i64,
    pub start_period: i64,
    pub start_interval: i64,
    pub retries: i64,
}

/// One typed instruction.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    From {
        image: String,
        stage_name: Option<String>,
        platform: Option<String>,
    },
    Run {
        cmd: CommandLine,
        heredocs: Vec<Heredoc>,
    },
    Cmd(CommandLine),
    Entrypoint(CommandLine),
    Copy(CopyArgs),
    Add(CopyArgs),
    /// `(key, value)` words, still quoted; `legacy` is the `ENV key value` form.
    Env(Vec<(String, String)>),
    Label(Vec<(String, String)>),
    Arg(Vec<(String, Option<String>)>),
    Workdir(String),
    User(String),
    Expose(Vec<String>),
    Volume(Vec<String>),
    StopSignal(String),
    Shell(Vec<String>),
    /// `None` is `HEALTHCHECK NONE`.
    Healthcheck(Option<HealthArgs>),
    /// The trigger text, e.g. `RUN echo hi`.
    OnBuild(String),
    Maintainer(String),
}

/// A typed instruction and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Instruction {
    pub command: Command,
    pub line: usize,
    /// As Docker prints it after `Step N/M : `.
    pub original: String,
}

impl Instruction {
    /// The keyword (`COPY`).
    pub fn keyword(&self) -> &'static str {
        match &self.command {
            Command::From { .. } => "FROM",
            Command::Run { .. } => "RUN",
            Command::Cmd(_) => "CMD",
            Command::Entrypoint(_) => "ENTRYPOINT",
            Command::Copy(_) => "COPY",
            Command::Add(_) => "ADD",
            Command::Env(_) => "ENV",
            Command::Label(_) => "LABEL",
            Command::Arg(_) => "ARG",
            Command::Workdir(_) => "WORKDIR",
            Command::User(_) => "USER",
            Command::Expose(_) => "EXPOSE",
            Command::Volume(_) => "VOLUME",
            Command::StopSignal(_) => "STOPSIGNAL",
            Command::Shell(_) => "SHELL",
            Command::Healthcheck(_) => "HEALTHCHECK",
            Command::OnBuild(_) => "ONBUILD",
            Command::Maintainer(_) => "MAINTAINER",
        }
    }
}

/// Types one raw instruction; `file` names the Dockerfile in errors.
pub fn parse_instruction(raw: &RawInstruction, file: &str, escape: char) -> Result<Instruction> {
    let err = |message: String| BuildError::Syntax {
        file: file.to_string(),
        line: raw.line,
        message,
    };
    let command = typed_command(raw, escape).map_err(err)?;
    Ok(Instruction {
        command,
        line: raw.line,
        original: raw.original.clone(),
    })
}

/// Flag values by name; rejects names the instruction does not accept.
fn flags(
    raw: &RawInstruction,
    allowed: &[&str],
) -> std::result::Result<Vec<(String, Option<String>)>, String> {
    let mut out = Vec::new();
    for flag in &raw.flags {
        let body = &flag[2..];
        let (name, value) = match body.split_once('=') {
            Some((n, v)) => (n, Some(unquote(v))),
            None => (body, None),
        };
        if !allowed.contains(&name) {
            return Err(format!(
                "{} does not support the --{name} flag (unknown flag: {name})",
                raw.keyword
            ));
        }
        out.push((name.to_string(), value));
    }
    Ok(out)
}

fn flag_value(
    flags: &[(String, Option<String>)],
    name: &str,
) -> std::result::Result<Option<String>, String> {
    match flags.iter().rev().find(|(n, _)| n == name) {
        None => Ok(None),
        Some((_, Some(v))) => Ok(Some(v.clone())),
        Some((_, None)) if name == "link" => Ok(Some("true".into())),
        Some((_, None)) => Err(format!("missing a value on flag: --{name}")),
    }
}

fn unquote(v: &str) -> String {
    for q in ['"', '\''] {
        if let Some(inner) = v.strip_prefix(q).and_then(|s| s.strip_suffix(q)) {
            return inner.to_string();
        }
    }
    v.to_string()
}

fn typed_command(raw: &RawInstruction, escape: char) -> std::result::Result<Command, String> {
    let args = raw.args.as_str();
    let keyword = raw.keyword.as_str();
    let require_args = || {
        if args.trim().is_empty() {
            Err(format!("{keyword} requires at least one argument"))
        } else {
            Ok(())
        }
    };
    let no_flags = |raw: &RawInstruction| flags(raw, &[]).map(|_| ());
    Ok(match keyword {
        "FROM" => {
            let f = flags(raw, &["platform"])?;
            let words: Vec<&str> = args.split_whitespace().collect();
            let (image, stage_name) = match words.as_slice() {
                [image] => (image.to_string(), None),
                [image, as_kw, name] if as_kw.eq_ignore_ascii_case("as") => {
                    let name = name.to_ascii_lowercase();
                    if !valid_stage_name(&name) {
                        return Err(format!(
                            "invalid name for build stage: {name:?}, name can't start with a number or contain symbols"
                        ));
                    }
                    (image.to_string(), Some(name))
                }
                _ => return Err("FROM requires either one or three arguments".into()),
            };
            Command::From {
                image,
                stage_name,
                platform: flag_value(&f, "platform")?,
            }
        }
        "RUN" => {
            flags(raw, &["mount", "network", "security"])?;
            require_args()?;
            Command::Run {
                cmd: command_line(args)?,
                heredocs: raw.heredocs.clone(),
            }
        }
        "CMD" | "ENTRYPOINT" => {
            no_flags(raw)?;
            require_args()?;
            let cmd = command_line(args)?;
            if keyword == "CMD" {
                Command::Cmd(cmd)
            } else {
                Command::Entrypoint(cmd)
            }
        }
        "COPY" | "ADD" => {
            let allowed: &[&str] = if keyword == "COPY" {
                &["from", "chown", "chmod", "link"]
            } else {
                &["chown", "chmod", "link", "checksum", "keep-git-dir"]
            };
            let f = flags(raw, allowed)?;
            let mut list = match parse_json_array(args)? {
                Some(list) => list,
                None => args.split_whitespace().map(str::to_string).collect(),
            };
            if list.len() < 2 {
                return Err(format!(
                    "{keyword} requires at least two arguments, but only one was provided. Destination could not be determined."
                ));
            }
            let dest = list.pop().unwrap_or_default();
            let copy = CopyArgs {
                sources: list,
                dest,
                from: flag_value(&f, "from")?,
                chown: flag_value(&f, "chown")?,
                chmod: flag_value(&f, "chmod")?,
                heredocs: raw.heredocs.clone(),
            };
            if keyword == "COPY" {
                Command::Copy(copy)
            } else {
                Command::Add(copy)
            }
        }
        "ENV" | "LABEL" => {
            no_flags(raw)?;
            let pairs = name_value_pairs(args, keyword, escape)?;
            if keyword == "ENV" {
                Command::Env(pairs)
            } else {
                Command::Label(pairs)
            }
        }
        "ARG" => {
            no_flags(raw)?;
            let words = split_words(args, escape);
            if words.is_empty() {
                return Err("ARG requires at least one argument".into());
            }
            Command::Arg(
                words
                    .into_iter()
                    .map(|w| match w.split_once('=') {
                        Some((k, v)) => (k.to_string(), Some(v.to_string())),
                        None => (w, None),
                    })
                    .collect(),
            )
        }
        "WORKDIR" | "USER" | "STOPSIGNAL" | "MAINTAINER" => {
            no_flags(raw)?;
            require_args()?;
            let value = args.trim().to_string();
            match keyword {
                "WORKDIR" => Command::Workdir(value),
                "USER" => Command::User(value),
                "STOPSIGNAL" => Command::StopSignal(value),
                _ => Command::Maintainer(value),
            }
        }
        "EXPOSE" => {
            no_flags(raw)?;
            require_args()?;
            Command::Expose(args.split_whitespace().map(str::to_string).collect())
        }
        "VOLUME" => {
            no_flags(raw)?;
            require_args()?;
            let list = match parse_json_array(args)? {
                Some(list) => list,
                None => args.split_whitespace().map(str::to_string).collect(),
            };
            if list.iter().any(|v| v.trim().is_empty()) {
                return Err("VOLUME specified can not be an empty string".into());
            }
            Command::Volume(list)
        }
        "SHELL" => {
            no_flags(raw)?;
            match parse_json_array(args)? {
                Some(list) if !list.is_empty() => Command::Shell(list),
                _ => return Err("SHELL requires the arguments to be in JSON form".into()),
            }
        }
        "HEALTHCHECK" => Command::Healthcheck(healthcheck(raw)?),
        "ONBUILD" => {
            no_flags(raw)?;
            require_args()?;
            let trigger = args.trim();
            let inner = trigger
                .split_whitespace()
                .next()
                .unwrap_or("")
                .to_ascii_uppercase();
            match inner.as_str() {
                "ONBUILD" => {
                    return Err("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed".into())
                }
                "FROM" | "MAINTAINER" => {
                    return Err(format!("{inner} isn't allowed as an ONBUILD trigger"))
                }
                _ => {}
            }
            Command::OnBuild(trigger.to_string())
        }
        other => return Err(format!("unknown instruction: {other}")),
    })
}

fn valid_stage_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && chars
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'))
}

/// `RUN`/`CMD`/`ENTRYPOINT` argument: a JSON string array is exec form, anything else shell form.
fn command_line(args: &str) -> std::result::Result<CommandLine, String> {
    Ok(match parse_json_array(args)? {
        Some(list) => CommandLine::Exec(list),
        None => CommandLine::Shell(args.to_string()),
    })
}

/// `Some(list)` when `args` is a JSON array of strings; `None` when it is not JSON at all
/// (Docker then falls back to shell form); an error when it is JSON but not strings.
pub fn parse_json_array(args: &str) -> std::result::Result<Option<Vec<String>>, String> {
    let trimmed = args.trim();
    if !trimmed.starts_with('[') {
        return Ok(None);
    }
    match serde_json::from_str::<serde_json::Value>(trimmed) {
        Ok(serde_json::Value::Array(items)) => items
            .into_iter()
            .map(|v| match v {
                serde_json::Value::String(s) => Ok(s),
                _ => Err("JSON arrays must contain only strings".to_string()),
            })
            .collect::<std::result::Result<Vec<_>, _>>()
            .map(Some),
        _ => Ok(None),
    }
}

/// Docker's `parseWords`: split on whitespace outside quotes; quotes and escapes are kept (the
/// word is processed later).
pub fn split_words(text: &str, escape: char) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for c in text.chars() {
        if escaped {
            word.push(c);
            escaped = false;
            continue;
        }
        if c == escape && quote != Some('\'') {
            escaped = true;
            word.push(c);
            continue;
        }
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '"' || c == '\'' => quote = Some(c),
            None if c.is_whitespace() => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                continue;
            }
            None => {}
        }
        word.push(c);
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

/// `KEY=value …` pairs, or the legacy `KEY value with spaces` form.
fn name_value_pairs(
    args: &str,
    keyword: &str,
    escape: char,
) -> std::result::Result<Vec<(String, String)>, String> {
    let words = split_words(args, escape);
    let Some(first) = words.first() else {
        return Err(format!("{keyword} requires at least one argument"));
    };
    if !first.contains('=') {
        let trimmed = args.trim();
        return match trimmed.find(char::is_whitespace) {
            Some(at) => Ok(vec![(
                trimmed[..at].to_string(),
                trimmed[at..].trim_start().to_string(),
            )]),
            None => Err(format!("{keyword} must have two arguments")),
        };
    }
    words
        .iter()
        .map(|w| match w.split_once('=') {
            Some(("", _)) => Err(format!("{keyword} names can not be blank")),
            Some((k, v)) => Ok((k.to_string(), v.to_string())),
            None => Err(format!(
                "Syntax error - can't find = in {w:?}. Must be of the form: name=value"
            )),
        })
        .collect()
}

fn healthcheck(raw: &RawInstruction) -> std::result::Result<Option<HealthArgs>, String> {
    let args = raw.args.trim();
    let (first, rest) = match args.find(char::is_whitespace) {
        Some(at) => (&args[..at], args[at..].trim_start()),
        None => (args, ""),
    };
    if first.eq_ignore_ascii_case("NONE") {
        if !rest.is_empty() || !raw.flags.is_empty() {
            return Err("HEALTHCHECK NONE takes no arguments".into());
        }
        return Ok(None);
    }
    if !first.eq_ignore_ascii_case("CMD") {
        return Err(format!("Unknown type {first:?} in HEALTHCHECK (try CMD)"));
    }
    if rest.is_empty() {
        return Err("Missing command after HEALTHCHECK CMD".into());
    }
    let f = flags(
        raw,
        &[
            "interval",
            "timeout",
            "start-period",
            "start-interval",
            "retries",
        ],
    )?;
    let test = match parse_json_array(rest)? {
        Some(list) => std::iter::once("CMD".to_string()).chain(list).collect(),
        None => vec!["CMD-SHELL".to_string(), rest.to_string()],
    };
    let duration = |name: &str| -> std::result::Result<i64, String> {
        match flag_value(&f, name)? {
            None => Ok(0),
            Some(text) => {
                let ns = parse_go_duration(&text)
                    .ok_or_else(|| format!("time: invalid duration {text:?}"))?;
                if ns != 0 && ns < 1_000_000 {
                    return Err(format!("Interval {name:?} cannot be less than 1ms"));
                }
                Ok(ns)
            }
        }
    };
    let retries = match flag_value(&f, "retries")? {
        None => 0,
        Some(text) => {
            let n: i64 = text
                .parse()
                .map_err(|_| format!("invalid retries value {text:?}"))?;
            if n < 0 {
                return Err("--retries cannot be negative".into());
            }
            n
        }
    };
    Ok(Some(HealthArgs {
        test,
        interval: duration("interval")?,
        timeout: duration("timeout")?,
        start_period: duration("start-period")?,
        start_interval: duration("start-interval")?,
        retries,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::parse;
    use berth_common::time::format_go_duration;

    fn one(text: &str) -> std::result::Result<Command, String> {
        let df = parse(text, "Dockerfile").map_err(|e| e.to_string())?;
        parse_instruction(&df.instructions[0], "Dockerfile", '\\')
            .map(|i| i.command)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn unknown_instruction_names_file_and_line() {
        let df = parse("FROM x\n\nFOOBAR y\n", "Dockerfile").unwrap();
        let err = parse_instruction(&df.instructions[1], "Dockerfile", '\\').unwrap_err();
        assert_eq!(err.to_string(), "Dockerfile:3: unknown instruction: FOOBAR");
    }

    #[test]
    fn from_forms() {
        assert_eq!(
            one("FROM --platform=linux/amd64 busybox AS Build").unwrap(),
            Command::From {
                image: "busybox".into(),
                stage_name: Some("build".into()),
                platform: Some("linux/amd64".into())
            }
        );
        assert!(one("FROM a b").is_err());
        assert!(one("FROM a AS 1x").is_err());
    }

    #[test]
    fn exec_and_shell_forms() {
        assert_eq!(
            one("CMD [\"sh\", \"-c\"]").unwrap(),
            Command::Cmd(CommandLine::Exec(vec!["sh".into(), "-c".into()]))
        );
        assert_eq!(
            one("CMD [not json").unwrap(),
            Command::Cmd(CommandLine::Shell("[not json".into()))
        );
        assert!(one("CMD [1, 2]").is_err());
        assert!(one("SHELL /bin/bash").is_err());
    }

    #[test]
    fn env_forms() {
        assert_eq!(
            one("ENV A=1 B=\"two words\" C=x\\ y").unwrap(),
            Command::Env(vec![
                ("A".into(), "1".into()),
                ("B".into(), "\"two words\"".into()),
                ("C".into(), "x\\ y".into())
            ])
        );
        assert_eq!(
            one("ENV KEY some value").unwrap(),
            Command::Env(vec![("KEY".into(), "some value".into())])
        );
        assert!(one("ENV A=1 B").is_err());
        assert!(one("ENV ONLY").is_err());
    }

    #[test]
    fn copy_flags_and_json() {
        let Command::Copy(c) =
            one("COPY --from=build --chown=tester:staff [\"a b\", \"/dst/\"]").unwrap()
        else {
            panic!()
        };
        assert_eq!(c.sources, vec!["a b"]);
        assert_eq!(c.dest, "/dst/");
        assert_eq!(c.from.as_deref(), Some("build"));
        assert_eq!(c.chown.as_deref(), Some("tester:staff"));
        assert!(one("COPY onlyone")
            .unwrap_err()
            .contains("at least two arguments"));
        assert!(one("COPY --bogus=1 a b").unwrap_err().contains("bogus"));
        assert!(one("ADD --from=x a b").is_err());
    }

    #[test]
    fn healthcheck_options() {
        let Command::Healthcheck(Some(h)) =
            one("HEALTHCHECK --interval=5s --timeout=1m30s --retries=3 CMD curl -f x").unwrap()
        else {
            panic!()
        };
        assert_eq!(h.test, vec!["CMD-SHELL", "curl -f x"]);
        assert_eq!(
            (h.interval, h.timeout, h.retries),
            (5_000_000_000, 90_000_000_000, 3)
        );
        assert_eq!(one("HEALTHCHECK NONE").unwrap(), Command::Healthcheck(None));
        let Command::Healthcheck(Some(h)) = one("HEALTHCHECK CMD [\"true\"]").unwrap() else {
            panic!()
        };
        assert_eq!(h.test, vec!["CMD", "true"]);
        assert!(one("HEALTHCHECK --interval=1us CMD x").is_err());
    }

    #[test]
    fn onbuild_rules() {
        assert_eq!(
            one("ONBUILD RUN echo hi").unwrap(),
            Command::OnBuild("RUN echo hi".into())
        );
        assert!(one("ONBUILD ONBUILD RUN x").is_err());
        assert!(one("ONBUILD FROM x").is_err());
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("1.5s"), Some(1_500_000_000));
        assert_eq!(parse_go_duration("1h2m"), Some(3_720_000_000_000));
        assert_eq!(parse_go_duration("100ms"), Some(100_000_000));
        assert_eq!(parse_go_duration("5"), None);
        assert_eq!(format_go_duration(5_000_000_000), "5s");
        assert_eq!(format_go_duration(90_000_000_000), "1m30s");
        assert_eq!(format_go_duration(1_500_000_000), "1.5s");
        assert_eq!(format_go_duration(100_000_000), "100ms");
        assert_eq!(format_go_duration(3_600_000_000_000), "1h0m0s");
        assert_eq!(format_go_duration(0), "0s");
    }

    proptest::proptest! {
        #[test]
        fn typing_never_panics(
            keyword in proptest::sample::select(vec!["FROM", "RUN", "CMD", "COPY", "ADD", "ENV", "LABEL", "ARG", "WORKDIR", "USER", "EXPOSE", "VOLUME", "SHELL", "HEALTHCHECK", "ONBUILD", "STOPSIGNAL", "ENTRYPOINT", "MAINTAINER", "BOGUS"]),
            rest in "[ -~]{0,60}",
        ) {
            let text = format!("{keyword} {rest}\n");
            if let Ok(df) = parse(&text, "Dockerfile") {
                for raw in &df.instructions {
                    let _ = parse_instruction(raw, "Dockerfile", df.escape);
                }
            }
        }

        #[test]
        fn duration_round_trip(ns in 0i64..10_000_000_000_000) {
            let text = format_go_duration(ns);
            proptest::prop_assert_eq!(parse_go_duration(&text), Some(ns));
        }
    }
}
