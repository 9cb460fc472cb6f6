//! Time as Docker writes and shows it: RFC 3339 with nanoseconds (`created`, `StartedAt`),
//! Go's `time.String()` for `CreatedAt` columns, and `units.HumanDuration` ("2 hours").
use chrono::{DateTime, SecondsFormat, Utc};

/// Now, as Docker stores times (RFC 3339, nanoseconds, `Z`).
pub fn now_rfc3339() -> String {
    rfc3339(Utc::now())
}

/// `t` as Docker stores times (RFC 3339, nanoseconds, `Z`).
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

/// `t` in RFC 3339 to the second (`CreatedAt` of volumes, archive headers).
pub fn rfc3339_secs(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Parses an RFC 3339 time (any offset, nanoseconds allowed) into UTC.
pub fn parse_rfc3339(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Go's `time.Time.String()` of a UTC time, as Docker's `CreatedAt` columns print it:
/// `2024-01-02 15:04:05 +0000 UTC`.
pub fn docker_cli_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S %z UTC").to_string()
}

/// Docker's `GetTimestamp` for `--since`, `--until` and `until=` filters: RFC 3339, a Unix
/// timestamp (fractions allowed), or a duration before now like `10m`, `2h`, `30s`, `500ms`.
/// Relative durations are measured from `now`.
pub fn parse_timestamp(text: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    if let Some(t) = parse_rfc3339(text) {
        return Some(t);
    }
    if let Ok(secs) = text.parse::<f64>() {
        return secs
            .is_finite()
            .then(|| DateTime::from_timestamp_nanos((secs * 1e9) as i64));
    }
    let split = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (num, unit) = text.split_at(split);
    let n: f64 = num.parse().ok()?;
    let millis = match unit {
        "ms" => n,
        "s" => n * 1e3,
        "m" => n * 60e3,
        "h" => n * 3600e3,
        _ => return None,
    };
    if !millis.is_finite() {
        return None;
    }
    Some(now - chrono::Duration::milliseconds(millis as i64))
}

/// `units.HumanDuration` of `secs` seconds.
pub fn human_duration(secs: i64) -> String {
    let seconds = secs;
    if seconds < 1 {
        return "Less than a second".into();
    }
    if seconds == 1 {
        return "1 second".into();
    }
    if seconds < 60 {
        return format!("{seconds} seconds");
    }
    let minutes = seconds / 60;
    if minutes == 1 {
        return "About a minute".into();
    }
    if minutes < 60 {
        return format!("{minutes} minutes");
    }
    let hours = ((seconds as f64) / 3600.0 + 0.5) as i64;
    if hours == 1 {
        return "About an hour".into();
    }
    if hours < 48 {
        return format!("{hours} hours");
    }
    if hours < 24 * 7 * 2 {
        return format!("{} days", hours / 24);
    }
    if hours < 24 * 30 * 2 {
        return format!("{} weeks", hours / 24 / 7);
    }
    if hours < 24 * 365 * 2 {
        return format!("{} months", hours / 24 / 30);
    }
    format!("{} years", seconds / 3600 / 24 / 365)
}

/// "2 hours ago" for a moment `secs_ago` seconds in the past.
pub fn time_ago(when: chrono::DateTime<chrono::Utc>) -> String {
    let secs = (chrono::Utc::now() - when).num_seconds();
    format!("{} ago", human_duration(secs))
}

/// Go's `time.ParseDuration` for the units Docker's flags take (`ns us µs ms s m h`, decimals
/// and sequences like `1m30s`); nanoseconds. Written by hand: no crate parses Go durations
/// exactly (humantime takes other units and spaces).
pub fn parse_go_duration(text: &str) -> Option<i64> {
    let (negative, mut rest) = match text.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return None;
        }
        let number: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += number * scale;
    }
    let ns = total.round() as i64;
    Some(if negative { -ns } else { ns })
}

/// Formats nanoseconds like Go's `time.Duration.String()` (`5s`, `1m30s`, `1.5s`, `0s`, `100ms`).
pub fn format_go_duration(ns: i64) -> String {
    if ns == 0 {
        return "0s".into();
    }
    let sign = if ns < 0 { "-" } else { "" };
    let u = ns.unsigned_abs();
    if u < 1_000 {
        return format!("{sign}{u}ns");
    }
    if u < 1_000_000 {
        return format!("{sign}{}µs", trim_fraction(u, 1_000));
    }
    if u < 1_000_000_000 {
        return format!("{sign}{}ms", trim_fraction(u, 1_000_000));
    }
    let hours = u / 3_600_000_000_000;
    let minutes = (u / 60_000_000_000) % 60;
    let secs_ns = u % 60_000_000_000;
    let mut out = sign.to_string();
    if hours > 0 {
        out.push_str(&format!("{hours}h"));
    }
    if hours > 0 || minutes > 0 {
        out.push_str(&format!("{minutes}m"));
    }
    out.push_str(&format!("{}s", trim_fraction(secs_ns, 1_000_000_000)));
    out
}

fn trim_fraction(value: u64, unit: u64) -> String {
    let whole = value / unit;
    let frac = value % unit;
    if frac == 0 {
        return whole.to_string();
    }
    let digits = unit.ilog10() as usize;
    let frac_text = format!("{frac:0digits$}");
    format!("{whole}.{}", frac_text.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_like_go_units() {
        assert_eq!(human_duration(0), "Less than a second");
        assert_eq!(human_duration(30), "30 seconds");
        assert_eq!(human_duration(90), "About a minute");
        assert_eq!(human_duration(7200), "2 hours");
        assert_eq!(human_duration(3 * 86400), "3 days");
        assert_eq!(human_duration(20 * 86400), "2 weeks");
    }

    #[test]
    fn rfc3339_round_trips_and_cli_form() {
        let t = parse_rfc3339("2024-01-02T03:04:05.123456789+01:00").unwrap();
        assert_eq!(rfc3339(t), "2024-01-02T02:04:05.123456789Z");
        assert_eq!(rfc3339_secs(t), "2024-01-02T02:04:05Z");
        assert_eq!(docker_cli_time(t), "2024-01-02 02:04:05 +0000 UTC");
        assert!(parse_rfc3339("yesterday").is_none());
        assert!(now_rfc3339().ends_with('Z'));
        let now = parse_rfc3339("2024-01-02T00:00:00Z").unwrap();
        let at = |text: &str| parse_timestamp(text, now).map(rfc3339_secs);
        assert_eq!(at("10m").as_deref(), Some("2024-01-01T23:50:00Z"));
        assert_eq!(at("2h").as_deref(), Some("2024-01-01T22:00:00Z"));
        assert_eq!(at("1700000000").as_deref(), Some("2023-11-14T22:13:20Z"));
        assert_eq!(
            at("2024-01-01T00:00:00Z").as_deref(),
            Some("2024-01-01T00:00:00Z")
        );
        assert_eq!(at("10 parsecs"), None);
        assert_eq!(at("soon"), None);
    }
}
