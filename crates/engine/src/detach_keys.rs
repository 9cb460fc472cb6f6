//! `--detach-keys`: Docker's key sequence (default `ctrl-p,ctrl-q`) that detaches an attached
//! terminal from a container and leaves it running. Parses Docker's notation and matches the
//! sequence in the stdin stream, holding back a partial match and releasing it when the
//! sequence breaks, so no byte the user did not type reaches the container.
use crate::error::EngineError;

/// At most this many keys in a sequence.
const MAX_KEYS: usize = 8;

/// A parsed sequence (`Copy`, so it rides in [`crate::AttachOptions`]). Empty: never detach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DetachKeys {
    keys: [u8; MAX_KEYS],
    len: u8,
}

impl Default for DetachKeys {
    /// Docker's `ctrl-p,ctrl-q`.
    fn default() -> Self {
        let mut keys = [0; MAX_KEYS];
        keys[0] = 0x10;
        keys[1] = 0x11;
        DetachKeys { keys, len: 2 }
    }
}

impl DetachKeys {
    /// Docker's notation: comma-separated `ctrl-<a-z@[\]^_>` or single characters.
    pub fn parse(text: &str) -> Result<DetachKeys, EngineError> {
        let bad = |reason: &str| EngineError::InvalidFlag {
            flag: "--detach-keys".into(),
            value: text.into(),
            reason: reason.into(),
        };
        let mut out = DetachKeys {
            keys: [0; MAX_KEYS],
            len: 0,
        };
        for part in text.split(',').filter(|p| !p.is_empty()) {
            let key = match part.strip_prefix("ctrl-") {
                Some(c) if c.len() == 1 => {
                    let c = c.as_bytes()[0].to_ascii_lowercase();
                    match c {
                        b'a'..=b'z' => c - b'a' + 1,
                        b'@' => 0,
                        b'[' => 27,
                        b'\\' => 28,
                        b']' => 29,
                        b'^' => 30,
                        b'_' => 31,
                        _ => return Err(bad("unknown character after ctrl-")),
                    }
                }
                Some(_) => return Err(bad("expected one character after ctrl-")),
                None if part.len() == 1 => part.as_bytes()[0],
                None => return Err(bad("keys are ctrl-<value> or single characters")),
            };
            if out.len as usize == MAX_KEYS {
                return Err(bad("too many keys"));
            }
            out.keys[out.len as usize] = key;
            out.len += 1;
        }
        Ok(out)
    }

    pub fn keys(&self) -> &[u8] {
        &self.keys[..self.len as usize]
    }
}

/// Finds the sequence in a byte stream split across reads.
#[derive(Debug, Default)]
pub struct DetachMatcher {
    matched: usize,
}

impl DetachMatcher {
    /// Feeds `input`; returns the bytes to forward and whether the sequence was completed (the
    /// bytes after it are dropped, as Docker drops them).
    pub fn feed(&mut self, keys: &DetachKeys, input: &[u8]) -> (Vec<u8>, bool) {
        let seq = keys.keys();
        let mut out = Vec::with_capacity(input.len());
        if seq.is_empty() {
            out.extend_from_slice(input);
            return (out, false);
        }
        for &b in input {
            if b == seq[self.matched] {
                self.matched += 1;
                if self.matched == seq.len() {
                    self.matched = 0;
                    return (out, true);
                }
            } else {
                // Release what was held back, then look at this byte afresh.
                out.extend_from_slice(&seq[..self.matched]);
                self.matched = 0;
                if b == seq[0] {
                    self.matched = 1;
                    if seq.len() == 1 {
                        self.matched = 0;
                        return (out, true);
                    }
                } else {
                    out.push(b);
                }
            }
        }
        (out, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_docker_notation() {
        assert_eq!(DetachKeys::default().keys(), &[0x10, 0x11]);
        assert_eq!(DetachKeys::parse("ctrl-a,x").unwrap().keys(), &[1, b'x']);
        assert_eq!(DetachKeys::parse("ctrl-@,ctrl-[").unwrap().keys(), &[0, 27]);
        assert!(DetachKeys::parse("ctrl-1").is_err());
        assert!(DetachKeys::parse("alt-x").is_err());
        assert!(DetachKeys::parse("").unwrap().keys().is_empty());
    }

    #[test]
    fn matches_across_reads_and_releases_broken_prefixes() {
        let keys = DetachKeys::default();
        let mut m = DetachMatcher::default();
        assert_eq!(m.feed(&keys, b"ls\x10"), (b"ls".to_vec(), false));
        assert_eq!(m.feed(&keys, b"a"), (b"\x10a".to_vec(), false));
        assert_eq!(m.feed(&keys, b"\x10\x10"), (b"\x10".to_vec(), false));
        assert_eq!(m.feed(&keys, b"\x11rest"), (Vec::new(), true));
        let none = DetachKeys::parse("").unwrap();
        assert_eq!(m.feed(&none, b"\x10\x11"), (b"\x10\x11".to_vec(), false));
    }
}
