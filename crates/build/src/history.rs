//! The `created_by` text Docker's classic builder writes into image history (and into
//! `container_config.Cmd`): `/bin/sh -c #(nop)  CMD ["sh"]` for metadata steps,
//! `/bin/sh -c #(nop) WORKDIR /app`, `/bin/sh -c #(nop) COPY file:<sha256> in /dst `, and
//! `|N K=V … /bin/sh -c <cmd>` for `RUN` with build args. Includes the bits of Go's `fmt`
//! (`%q` of a string slice, `%v` of a slice) that text depends on.
use crate::instruction::HealthArgs;
use berth_common::time::format_go_duration;
use std::collections::BTreeMap;

/// `Cmd` of a metadata step: the shell, then `#(nop) ` and the comment as its own word (the
/// words join with a space, hence Docker's two spaces).
pub fn nop_cmd(shell: &[String], comment: &str) -> Vec<String> {
    let mut cmd = shell.to_vec();
    cmd.push("#(nop) ".into());
    cmd.push(comment.into());
    cmd
}

/// `Cmd` of `WORKDIR`/`COPY`/`ADD`: `#(nop) ` and the comment in one word (one space).
pub fn nop_cmd_string(shell: &[String], comment: &str) -> Vec<String> {
    let mut cmd = shell.to_vec();
    cmd.push(format!("#(nop) {comment}"));
    cmd
}

/// `RUN`'s saved command: `|N` and the sorted `K=V` build args in effect, then the command.
pub fn run_cmd_with_args(args: &BTreeMap<String, String>, cmd: &[String]) -> Vec<String> {
    if args.is_empty() {
        return cmd.to_vec();
    }
    let mut out = vec![format!("|{}", args.len())];
    out.extend(args.iter().map(|(k, v)| format!("{k}={v}")));
    out.extend(cmd.iter().cloned());
    out
}

/// `COPY`/`ADD` comment: `COPY [--chown=u:g]<hash> in <dest> ` (Docker's spacing, trailing space
/// included).
pub fn copy_comment(keyword: &str, chown: Option<&str>, source_hash: &str, dest: &str) -> String {
    let chown = chown.map(|c| format!("--chown={c}")).unwrap_or_default();
    format!("{keyword} {chown}{source_hash} in {dest} ")
}

/// Hash naming several sources: `multi:<sha256 of the hashes joined by commas>`.
pub fn multi_source_hash(hashes: &[String]) -> String {
    use sha2::{Digest, Sha256};
    if hashes.len() == 1 {
        return hashes[0].clone();
    }
    format!(
        "multi:{}",
        hex::encode(Sha256::digest(hashes.join(",").as_bytes()))
    )
}

pub use berth_common::strconv::quote as go_quote;

/// Go's `%q` of a `[]string`: `["a" "b"]`.
pub fn go_quote_list(items: &[String]) -> String {
    format!(
        "[{}]",
        items
            .iter()
            .map(|s| go_quote(s))
            .collect::<Vec<_>>()
            .join(" ")
    )
}

/// Go's `%v` of a `[]string`: `[a b]`.
pub fn go_list(items: &[String]) -> String {
    format!("[{}]", items.join(" "))
}

/// Go's `%q` of an int (a quoted rune): `'\x00'`, `'A'`.
fn go_quote_rune(n: i64) -> String {
    match char::from_u32(n as u32) {
        Some('\'') => "'\\''".into(),
        Some('\\') => "'\\\\'".into(),
        Some(c) if (' '..='~').contains(&c) => format!("'{c}'"),
        _ if (0..0x80).contains(&n) => format!("'\\x{n:02x}'"),
        _ => format!("'\\u{:04x}'", n),
    }
}

/// `HEALTHCHECK` comment: Go's `%q` of `*HealthConfig` (Docker 25+ field order, with
/// StartInterval): `&{["CMD-SHELL" "true"] "5s" "3s" "0s" "0s" '\x00'}`.
pub fn healthcheck_comment(h: &HealthArgs) -> String {
    format!(
        "HEALTHCHECK &{{{} {} {} {} {} {}}}",
        go_quote_list(&h.test),
        go_quote(&format_go_duration(h.interval)),
        go_quote(&format_go_duration(h.timeout)),
        go_quote(&format_go_duration(h.start_period)),
        go_quote(&format_go_duration(h.start_interval)),
        go_quote_rune(h.retries)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh() -> Vec<String> {
        vec!["/bin/sh".into(), "-c".into()]
    }

    #[test]
    fn docker_texts() {
        assert_eq!(
            nop_cmd(&sh(), "CMD [\"sh\"]").join(" "),
            "/bin/sh -c #(nop)  CMD [\"sh\"]"
        );
        assert_eq!(
            nop_cmd_string(&sh(), "WORKDIR /app").join(" "),
            "/bin/sh -c #(nop) WORKDIR /app"
        );
        assert_eq!(
            nop_cmd_string(&sh(), &copy_comment("COPY", None, "file:ab", ".")).join(" "),
            "/bin/sh -c #(nop) COPY file:ab in . "
        );
        assert_eq!(
            copy_comment("ADD", Some("1:2"), "dir:cd", "/x/"),
            "ADD --chown=1:2dir:cd in /x/ "
        );
        let mut args = BTreeMap::new();
        args.insert("VER".to_string(), "2".to_string());
        let mut cmd = sh();
        cmd.push("echo $VER".into());
        assert_eq!(
            run_cmd_with_args(&args, &cmd).join(" "),
            "|1 VER=2 /bin/sh -c echo $VER"
        );
        assert_eq!(
            go_quote_list(&["-c".into(), "cat \"x\"".into()]),
            "[\"-c\" \"cat \\\"x\\\"\"]"
        );
        assert_eq!(go_list(&["/bin/sh".into(), "-xc".into()]), "[/bin/sh -xc]");
    }

    #[test]
    fn healthcheck_text_matches_go() {
        let h = HealthArgs {
            test: vec!["CMD-SHELL".into(), "true".into()],
            interval: 5_000_000_000,
            timeout: 3_000_000_000,
            ..Default::default()
        };
        assert_eq!(
            healthcheck_comment(&h),
            "HEALTHCHECK &{[\"CMD-SHELL\" \"true\"] \"5s\" \"3s\" \"0s\" \"0s\" '\\x00'}"
        );
    }

    #[test]
    fn multi_hash() {
        assert_eq!(multi_source_hash(&["file:a".into()]), "file:a");
        assert!(multi_source_hash(&["file:a".into(), "file:b".into()]).starts_with("multi:"));
    }
}
