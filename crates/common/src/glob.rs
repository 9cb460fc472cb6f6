//! Go's `path.Match`: shell patterns over `/`-separated names, as Docker's `reference` filters
//! use them. `*` is any run of characters but `/`, `?` one character but `/`, `[a-z]` / `[^…]`
//! a class, `\` quotes the next character. Written by hand: the `glob` crate's `Pattern` lets
//! `*` cross `/` unless asked otherwise and has no `^` negation, and this is twenty lines.

/// Whether `name` matches `pattern` as a whole. A malformed pattern (an unclosed `[`, a
/// trailing `\`) matches nothing, as Go's `path.Match` returns `ErrBadPattern`.
pub fn path_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = name.chars().collect();
    // Iterative matching with one backtrack point per `*`: linear-ish, no recursion on
    // hostile patterns.
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
            continue;
        }
        if pi < p.len() {
            if let Some(next) = match_one(&p, pi, t[ti]) {
                if next == usize::MAX {
                    return false;
                }
                pi = next;
                ti += 1;
                continue;
            }
        }
        // Backtrack: let the last `*` take one more character (never a `/`).
        match star {
            Some((sp, st)) if t[st] != '/' => {
                star = Some((sp, st + 1));
                pi = sp + 1;
                ti = st + 1;
            }
            _ => return false,
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// Matches the single-character element at `p[i]` against `c`: `Some(next index)` on a match,
/// `None` on a mismatch, `Some(usize::MAX)` on a malformed pattern.
fn match_one(p: &[char], i: usize, c: char) -> Option<usize> {
    match p[i] {
        '?' => (c != '/').then_some(i + 1),
        '\\' => match p.get(i + 1) {
            None => Some(usize::MAX),
            Some(q) => (*q == c).then_some(i + 2),
        },
        '[' => {
            let mut j = i + 1;
            let negated = p.get(j) == Some(&'^');
            if negated {
                j += 1;
            }
            let mut hit = false;
            let mut first = true;
            loop {
                let Some(&lo) = p.get(j) else {
                    return Some(usize::MAX);
                };
                if lo == ']' && !first {
                    j += 1;
                    break;
                }
                first = false;
                let (lo, after) = match lo {
                    '\\' => (*p.get(j + 1)?, j + 2),
                    other => (other, j + 1),
                };
                let (hi, after) = if p.get(after) == Some(&'-') && p.get(after + 1) != Some(&']') {
                    match p.get(after + 1) {
                        Some('\\') => (*p.get(after + 2)?, after + 3),
                        Some(h) => (*h, after + 2),
                        None => return Some(usize::MAX),
                    }
                } else {
                    (lo, after)
                };
                if lo <= c && c <= hi {
                    hit = true;
                }
                j = after;
            }
            (hit != negated && c != '/').then_some(j)
        }
        literal => (literal == c).then_some(i + 1),
    }
}

#[cfg(test)]
mod tests {
    use super::path_match;

    #[test]
    fn go_path_match_rules() {
        assert!(path_match("busybox", "busybox"));
        assert!(path_match("busy*", "busybox:latest"));
        assert!(path_match("*", "busybox"));
        assert!(!path_match("*", "library/busybox"));
        assert!(path_match("*/*", "library/busybox"));
        assert!(path_match("b?sybox", "busybox"));
        assert!(!path_match("b?sybox", "b/sybox"));
        assert!(path_match("[a-c]at", "bat"));
        assert!(!path_match("[^a-c]at", "bat"));
        assert!(path_match("[^a-c]at", "rat"));
        assert!(path_match("a\\*b", "a*b"));
        assert!(!path_match("a\\*b", "axb"));
        assert!(!path_match("[a-", "a"));
        assert!(!path_match("ab\\", "ab"));
        assert!(path_match("*:1.*", "app:1.2"));
        assert!(!path_match("app", "app:1"));
        assert!(path_match("", ""));
        assert!(!path_match("", "a"));
        assert!(path_match("a**", "a"));
    }

    #[test]
    fn hostile_patterns_stay_fast() {
        let text = "a".repeat(2000);
        let pattern = format!("{}b", "*a".repeat(50));
        assert!(!path_match(&pattern, &text));
    }
}
