//! `.dockerignore` patterns with Docker's rules (moby `patternmatcher`): one pattern a line,
//! `#` comments, `!` exceptions, patterns cleaned and anchored at the context root (`*.log` only
//! matches at the top; `**` spans directories), the last matching pattern wins, and a pattern
//! that matches a parent directory matches everything below it.

/// A compiled `.dockerignore`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IgnoreMatcher {
    patterns: Vec<Pattern>,
}

#[derive(Debug, Clone, PartialEq)]
struct Pattern {
    text: Vec<char>,
    exclusion: bool,
}

impl IgnoreMatcher {
    /// Parses `.dockerignore` text.
    pub fn parse(text: &str) -> IgnoreMatcher {
        let mut patterns = Vec::new();
        for line in text.lines() {
            if line.starts_with('#') {
                continue;
            }
            let mut line = line.trim();
            if line.is_empty() {
                continue;
            }
            let exclusion = line.starts_with('!');
            if exclusion {
                line = line[1..].trim();
                if line.is_empty() {
                    continue;
                }
            }
            let mut cleaned = clean_path(line);
            if cleaned.len() > 1 && cleaned.starts_with('/') {
                cleaned.remove(0);
            }
            patterns.push(Pattern {
                text: cleaned.chars().collect(),
                exclusion,
            });
        }
        IgnoreMatcher { patterns }
    }

    /// Whether the context-relative `path` (`a/b.txt`, no leading `/`) is excluded.
    pub fn is_excluded(&self, path: &str) -> bool {
        let path = path.trim_start_matches('/');
        let path: Vec<char> = path.chars().collect();
        let parents: Vec<usize> = path
            .iter()
            .enumerate()
            .filter(|(_, c)| **c == '/')
            .map(|(i, _)| i)
            .collect();
        let mut matched = false;
        for pattern in &self.patterns {
            if pattern.exclusion != matched {
                continue;
            }
            let mut hit = glob_match(&pattern.text, &path);
            if !hit {
                hit = parents
                    .iter()
                    .any(|&end| glob_match(&pattern.text, &path[..end]));
            }
            if hit {
                matched = !pattern.exclusion;
            }
        }
        matched
    }

    /// Whether some `!` exception could re-include something below an excluded directory
    /// (then the walk must still descend into it).
    pub fn has_exceptions(&self) -> bool {
        self.patterns.iter().any(|p| p.exclusion)
    }

    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }
}

/// Go's `filepath.Clean` for slash paths.
pub fn clean_path(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|p| *p != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            p => parts.push(p),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

/// Glob match of a whole path: `*` and `?` stay within one segment, `**` spans segments
/// (`**/` also matches nothing), `[…]` classes, `\` escapes.
pub fn glob_match(pattern: &[char], text: &[char]) -> bool {
    let Some(&first) = pattern.first() else {
        return text.is_empty();
    };
    match first {
        '*' if pattern.get(1) == Some(&'*') => {
            let rest = &pattern[2..];
            if rest.first() == Some(&'/') {
                // `**/x`: zero or more whole segments, then x.
                if glob_match(&rest[1..], text) {
                    return true;
                }
                (0..text.len()).any(|i| text[i] == '/' && glob_match(&rest[1..], &text[i + 1..]))
            } else {
                (0..=text.len()).any(|i| glob_match(rest, &text[i..]))
            }
        }
        '*' => {
            let rest = &pattern[1..];
            for i in 0..=text.len() {
                if glob_match(rest, &text[i..]) {
                    return true;
                }
                if i < text.len() && text[i] == '/' {
                    break;
                }
            }
            false
        }
        '?' => !text.is_empty() && text[0] != '/' && glob_match(&pattern[1..], &text[1..]),
        '[' => {
            let Some(&c) = text.first() else {
                return false;
            };
            match class_match(&pattern[1..], c) {
                Some((true, used)) if c != '/' => glob_match(&pattern[1 + used..], &text[1..]),
                Some(_) => false,
                None => c == '[' && glob_match(&pattern[1..], &text[1..]),
            }
        }
        '\\' if pattern.len() > 1 => {
            !text.is_empty() && text[0] == pattern[1] && glob_match(&pattern[2..], &text[1..])
        }
        c => !text.is_empty() && text[0] == c && glob_match(&pattern[1..], &text[1..]),
    }
}

/// Matches a `[...]` class (pattern starts after `[`); returns (matched, chars consumed
/// including the closing `]`), or `None` when the class is not closed.
fn class_match(pattern: &[char], c: char) -> Option<(bool, usize)> {
    let mut i = 0;
    let negate = matches!(pattern.first(), Some('^') | Some('!'));
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    while i < pattern.len() {
        let mut lo = pattern[i];
        if lo == ']' && !first {
            return Some((matched != negate, i + 1));
        }
        first = false;
        if lo == '\\' && i + 1 < pattern.len() {
            i += 1;
            lo = pattern[i];
        }
        let mut hi = lo;
        if i + 2 < pattern.len() && pattern[i + 1] == '-' && pattern[i + 2] != ']' {
            hi = pattern[i + 2];
            if hi == '\\' && i + 3 < pattern.len() {
                i += 1;
                hi = pattern[i + 2];
            }
            i += 2;
        }
        if lo <= c && c <= hi {
            matched = true;
        }
        i += 1;
    }
    None
}

/// Whether `text` contains glob metacharacters (Docker's `containsWildcards`).
pub fn has_wildcards(text: &str) -> bool {
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                chars.next();
            }
            '*' | '?' | '[' => return true,
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn g(p: &str, t: &str) -> bool {
        glob_match(
            &p.chars().collect::<Vec<_>>(),
            &t.chars().collect::<Vec<_>>(),
        )
    }

    #[test]
    fn globs() {
        assert!(g("*.log", "a.log"));
        assert!(!g("*.log", "dir/a.log"));
        assert!(g("**/*.log", "dir/sub/a.log"));
        assert!(g("**/*.log", "a.log"));
        assert!(g("dir/**", "dir/a/b"));
        assert!(g("a?c", "abc"));
        assert!(!g("a?c", "a/c"));
        assert!(g("[a-c]x", "bx"));
        assert!(!g("[^a-c]x", "bx"));
        assert!(g("\\*", "*"));
        assert!(g("**", "anything/at/all"));
    }

    #[test]
    fn ignore_rules() {
        let m = IgnoreMatcher::parse("# comment\n*.log\n!keep.log\nbuild/\n/secret\n**/*.tmp\n");
        assert!(m.is_excluded("a.log"));
        assert!(!m.is_excluded("keep.log"));
        assert!(!m.is_excluded("sub/a.log"));
        assert!(m.is_excluded("build"));
        assert!(m.is_excluded("build/out/x.o"));
        assert!(m.is_excluded("secret"));
        assert!(m.is_excluded("x/y/z.tmp"));
        assert!(!m.is_excluded("src/main.rs"));
        assert!(m.has_exceptions());
    }

    #[test]
    fn last_match_wins() {
        let m = IgnoreMatcher::parse("docs\n!docs/README.md\n");
        assert!(m.is_excluded("docs/a.md"));
        assert!(!m.is_excluded("docs/README.md"));
        let m = IgnoreMatcher::parse("!a\n*\n");
        assert!(m.is_excluded("a"));
    }

    #[test]
    fn clean() {
        assert_eq!(clean_path("./a//b/../c/"), "a/c");
        assert_eq!(clean_path("/../x"), "/x");
        assert_eq!(clean_path("../x"), "../x");
        assert_eq!(clean_path(""), ".");
    }

    proptest! {
        #[test]
        fn literal_patterns_match_themselves(s in "[a-z]{1,5}(/[a-z]{1,5}){0,3}") {
            let m = IgnoreMatcher::parse(&s);
            prop_assert!(m.is_excluded(&s));
            let below = format!("{s}/child");
            prop_assert!(m.is_excluded(&below));
        }

        #[test]
        fn star_never_crosses_slash(a in "[a-z]{1,5}", b in "[a-z]{1,5}") {
            prop_assert!(g("*", &a));
            let nested = format!("{a}/{b}");
            prop_assert!(!g("*", &nested));
        }

        #[test]
        fn never_panics(p in "[ -~]{0,20}", t in "[ -~]{0,20}") {
            let _ = g(&p, &t);
            let _ = IgnoreMatcher::parse(&p).is_excluded(&t);
        }
    }
}
