//! Docker's sizes as people read and write them (`go-units`): "4.26MB" (decimal, `HumanSize`),
//! "1.5MiB" (binary, `BytesSize`), "512m" / "1g" parsed (binary, `RAMInBytes`) and "10m" /
//! "1.5MB" parsed (decimal, `FromHumanSize`); and Docker's `Ellipsis` for cut columns.

/// Go's `%.{prec}g` for a positive float.
fn go_g(v: f64, prec: usize) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let exp = v.abs().log10().floor() as i32;
    // Rounding may push the exponent up (999.9 -> 1e+03 at 3 digits).
    let rounded: f64 = format!("{:.*e}", prec - 1, v).parse().unwrap_or(v);
    let exp = if rounded != 0.0 {
        rounded.abs().log10().floor() as i32
    } else {
        exp
    };
    if exp < -4 || exp >= prec as i32 {
        let s = format!("{:.*e}", prec - 1, v);
        let (mant, e) = s.split_once('e').unwrap_or((&s, "0"));
        let mant = trim_zeros(mant);
        let e: i32 = e.parse().unwrap_or(0);
        format!("{mant}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs())
    } else {
        let decimals = (prec as i32 - 1 - exp).max(0) as usize;
        trim_zeros(&format!("{:.*}", decimals, v)).to_string()
    }
}

fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// `units.HumanSize`: decimal units, three significant digits ("4.26MB", "0B", "1.23kB").
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1000.0 && i < UNITS.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    format!("{}{}", go_g(v, 3), UNITS[i])
}

/// `units.BytesSize`: binary units, four significant digits ("1.5KiB", "32MiB", "0B").
pub fn bytes_size(bytes: u64) -> String {
    const UNITS: [&str; 9] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    format!("{}{}", go_g(v, 4), UNITS[i])
}

/// A size that is not one `parse_bytes` reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidSize(pub String);

impl std::fmt::Display for InvalidSize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "invalid size {:?}: expected a size like 32m or 1g",
            self.0
        )
    }
}

impl std::error::Error for InvalidSize {}

/// `units.RAMInBytes`: `32m`, `1g`, `512k`, `100` (bytes), `64mb`, `2GiB`; binary units,
/// case-insensitive, fractions allowed (`1.5g`), negative values refused.
pub fn parse_bytes(text: &str) -> Result<i64, InvalidSize> {
    let bad = || InvalidSize(text.to_string());
    let lower = text.trim().to_ascii_lowercase();
    let lower = lower.strip_suffix("ib").unwrap_or(&lower);
    let lower = lower.strip_suffix('b').unwrap_or(lower);
    let (num, mult) = match lower.chars().last() {
        Some('k') => (&lower[..lower.len() - 1], 1i64 << 10),
        Some('m') => (&lower[..lower.len() - 1], 1 << 20),
        Some('g') => (&lower[..lower.len() - 1], 1 << 30),
        Some('t') => (&lower[..lower.len() - 1], 1 << 40),
        Some('p') => (&lower[..lower.len() - 1], 1 << 50),
        Some(c) if c.is_ascii_digit() => (lower, 1),
        _ => return Err(bad()),
    };
    let value: f64 = num.parse().map_err(|_| bad())?;
    if !value.is_finite() || value < 0.0 {
        return Err(bad());
    }
    Ok((value * mult as f64) as i64)
}

/// Docker's `units.FromHumanSize`: decimal units (`1k` = 1000), an optional `b`/`B`, and
/// optional space: `10m`, `1.5MB`, `500 k`, `100`.
pub fn parse_human_size(text: &str) -> Option<i64> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let value: f64 = t[..split].parse().ok()?;
    let unit = t[split..].trim().to_ascii_lowercase();
    let unit = unit.strip_suffix('b').unwrap_or(&unit);
    let unit = unit.strip_suffix('i').unwrap_or(unit);
    let scale = match unit {
        "" => 1.0,
        "k" => 1e3,
        "m" => 1e6,
        "g" => 1e9,
        "t" => 1e12,
        "p" => 1e15,
        _ => return None,
    };
    Some((value * scale) as i64)
}

/// Docker's `Ellipsis`: at most `max` characters, the last one "…" when cut.
pub fn ellipsis(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_sizes_are_decimal() {
        assert_eq!(parse_human_size("1.5MB"), Some(1_500_000));
        assert_eq!(parse_human_size("10k"), Some(10_000));
        assert_eq!(parse_human_size("500 k"), Some(500_000));
        assert_eq!(parse_human_size("100"), Some(100));
        assert_eq!(parse_human_size("big"), None);
    }

    #[test]
    fn sizes_like_go_units() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(12), "12B");
        assert_eq!(human_size(4_261_000), "4.26MB");
        assert_eq!(human_size(1234), "1.23kB");
        assert_eq!(human_size(100_000), "100kB");
        assert_eq!(human_size(999_999), "1e+03kB");
        assert_eq!(human_size(1_000_000), "1MB");
    }

    #[test]
    fn binary_sizes_and_parsing_like_go_units() {
        assert_eq!(bytes_size(0), "0B");
        assert_eq!(bytes_size(1536), "1.5KiB");
        assert_eq!(bytes_size(32 << 20), "32MiB");
        assert_eq!(bytes_size(1_234_567), "1.177MiB");
        assert_eq!(parse_bytes("512m"), Ok(512 << 20));
        assert_eq!(parse_bytes("1g"), Ok(1 << 30));
        assert_eq!(parse_bytes("1GiB"), Ok(1 << 30));
        assert_eq!(parse_bytes("64MB"), Ok(64 << 20));
        assert_eq!(parse_bytes("100"), Ok(100));
        assert_eq!(parse_bytes("1.5k"), Ok(1536));
        assert!(parse_bytes("").is_err());
        assert!(parse_bytes("x").is_err());
        assert!(parse_bytes("-1m").is_err());
        assert!(parse_bytes("12q").is_err());
    }

    #[test]
    fn ellipsis_cuts_to_width() {
        assert_eq!(ellipsis("abc", 5), "abc");
        assert_eq!(ellipsis("abcdef", 5), "abcd…");
    }
}
