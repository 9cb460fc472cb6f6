//! Health checks, Docker's way: the `Healthcheck` of the image (`HEALTHCHECK`) or of `run
//! --health-*`, merged as Docker merges them; the container's `State.Health` (Status,
//! FailingStreak, the last five probes) and how a probe's result changes it; the schedule of
//! probes. The checker that runs the probes is the monitor's (`monitor::health_check`): this
//! module holds the rules and the data, and runs nothing.
use crate::error::Result;
use crate::options::ContainerConfig;
use berth_common::time::parse_go_duration;
use serde::{Deserialize, Serialize};
use std::time::Duration;

pub use berth_image::HealthConfig;

/// Docker's defaults (daemon/health.go).
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_START_INTERVAL: Duration = Duration::from_secs(5);
pub const DEFAULT_RETRIES: i64 = 3;
/// Probes kept in `State.Health.Log`.
pub const MAX_LOG_ENTRIES: usize = 5;
/// Bytes of a probe's output kept.
pub const MAX_OUTPUT: usize = 4096;

pub const STARTING: &str = "starting";
pub const HEALTHY: &str = "healthy";
pub const UNHEALTHY: &str = "unhealthy";

/// Docker's `State.Health`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct Health {
    pub status: String,
    pub failing_streak: i64,
    pub log: Vec<HealthLogEntry>,
}

/// One probe's result, Docker's `HealthcheckResult`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct HealthLogEntry {
    pub start: String,
    pub end: String,
    pub exit_code: i64,
    pub output: String,
}

impl Health {
    /// The state of a container that just started: no probe has passed yet.
    pub fn starting() -> Health {
        Health {
            status: STARTING.into(),
            ..Default::default()
        }
    }

    /// Records a probe's result as Docker does: success makes the container healthy and
    /// clears the streak; a failure counts (unless the container is still starting within its
    /// start period) and makes it unhealthy once `retries` failures follow each other.
    /// Returns the new status when it changed.
    pub fn record(
        &mut self,
        entry: HealthLogEntry,
        within_start_period: bool,
        retries: i64,
    ) -> Option<String> {
        let old = self.status.clone();
        let success = entry.exit_code == 0;
        self.log.push(entry);
        if self.log.len() > MAX_LOG_ENTRIES {
            let extra = self.log.len() - MAX_LOG_ENTRIES;
            self.log.drain(..extra);
        }
        if success {
            self.failing_streak = 0;
            self.status = HEALTHY.into();
        } else if !(self.status == STARTING && within_start_period) {
            self.failing_streak += 1;
            if self.failing_streak >= retries {
                self.status = UNHEALTHY.into();
            }
        }
        (self.status != old).then(|| self.status.clone())
    }

    /// What `ps` shows after "Up …": `health: starting`, `healthy` or `unhealthy`.
    pub fn ps_text(&self) -> String {
        if self.status == STARTING {
            "health: starting".into()
        } else {
            self.status.clone()
        }
    }
}

/// The container's health check after Docker's merge: fields the user left unset (`None` or
/// zero) come from the image; an empty user test takes the image's test.
pub fn merge(image: Option<&HealthConfig>, user: Option<&HealthConfig>) -> Option<HealthConfig> {
    let (image, user) = match (image, user) {
        (None, None) => return None,
        (Some(i), None) => return Some(i.clone()),
        (None, Some(u)) => return Some(u.clone()),
        (Some(i), Some(u)) => (i, u),
    };
    let pick = |u: Option<i64>, i: Option<i64>| u.filter(|v| *v != 0).or(i);
    Some(HealthConfig {
        test: user
            .test
            .clone()
            .filter(|t| !t.is_empty())
            .or_else(|| image.test.clone()),
        interval: pick(user.interval, image.interval),
        timeout: pick(user.timeout, image.timeout),
        start_period: pick(user.start_period, image.start_period),
        start_interval: pick(user.start_interval, image.start_interval),
        retries: pick(user.retries, image.retries),
    })
}

/// What `--health-cmd`, `--health-interval`, … and `--no-healthcheck` ask, as typed.
#[derive(Debug, Clone, Default)]
pub struct HealthFlags {
    pub cmd: Option<String>,
    pub interval: Option<String>,
    pub timeout: Option<String>,
    pub start_period: Option<String>,
    pub start_interval: Option<String>,
    pub retries: Option<i64>,
    pub no_healthcheck: bool,
}

impl HealthFlags {
    /// Docker's CLI rules: `--no-healthcheck` excludes every other health flag; durations
    /// are Go durations (`30s`, `1m30s`, `500ms`) and, when set, at least 1ms; retries are
    /// not negative. None when no flag was given.
    pub fn to_config(&self) -> Result<Option<HealthConfig>> {
        let any_other = self.cmd.is_some()
            || self.interval.is_some()
            || self.timeout.is_some()
            || self.start_period.is_some()
            || self.start_interval.is_some()
            || self.retries.is_some();
        if self.no_healthcheck {
            if any_other {
                return Err(crate::error::EngineError::InvalidFlag {
                    flag: "--no-healthcheck".into(),
                    value: "true".into(),
                    reason: "--no-healthcheck conflicts with --health-* options".into(),
                });
            }
            return Ok(Some(HealthConfig {
                test: Some(vec!["NONE".into()]),
                ..Default::default()
            }));
        }
        if !any_other {
            return Ok(None);
        }
        let duration = |flag: &str, text: &Option<String>| -> Result<Option<i64>> {
            let Some(text) = text else { return Ok(None) };
            let bad = |reason: &str| crate::error::EngineError::InvalidFlag {
                flag: flag.into(),
                value: text.clone(),
                reason: reason.into(),
            };
            let nanos = parse_go_duration(text)
                .ok_or_else(|| bad("expected a duration like 30s or 1m30s"))?;
            if nanos < 0 {
                return Err(bad(&format!("{flag} cannot be negative")));
            }
            if nanos != 0 && nanos < 1_000_000 {
                return Err(bad(&format!("{flag} must be at least 1ms")));
            }
            Ok(Some(nanos))
        };
        if self.retries.is_some_and(|r| r < 0) {
            return Err(crate::error::EngineError::InvalidFlag {
                flag: "--health-retries".into(),
                value: self.retries.unwrap_or_default().to_string(),
                reason: "--health-retries cannot be negative".into(),
            });
        }
        Ok(Some(HealthConfig {
            test: self
                .cmd
                .as_ref()
                .map(|c| vec!["CMD-SHELL".to_string(), c.clone()]),
            interval: duration("--health-interval", &self.interval)?,
            timeout: duration("--health-timeout", &self.timeout)?,
            start_period: duration("--health-start-period", &self.start_period)?,
            start_interval: duration("--health-start-interval", &self.start_interval)?,
            retries: self.retries,
        }))
    }
}

/// `d` in nanoseconds, for Go's duration text.
pub(crate) fn nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

/// A container's checks in effect: the probe's command line and its timings.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    pub command: Vec<String>,
    pub interval: Duration,
    pub timeout: Duration,
    pub start_period: Duration,
    pub start_interval: Duration,
    pub retries: i64,
}

impl Schedule {
    /// The checks `config` asks for; None when it has none (no test, `NONE`, or an empty one).
    pub fn of(config: &ContainerConfig) -> Option<Schedule> {
        let hc = config.healthcheck.as_ref()?;
        let test = hc.test.as_ref()?;
        let command = match test.split_first()? {
            (kind, args) if kind == "CMD" && !args.is_empty() => args.to_vec(),
            (kind, [line]) if kind == "CMD-SHELL" => {
                let mut shell = config
                    .shell
                    .clone()
                    .filter(|s| !s.is_empty())
                    .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()]);
                shell.push(line.clone());
                shell
            }
            _ => return None,
        };
        let nanos = |v: Option<i64>, default: Duration| match v {
            Some(n) if n > 0 => Duration::from_nanos(n as u64),
            _ => default,
        };
        Some(Schedule {
            command,
            interval: nanos(hc.interval, DEFAULT_INTERVAL),
            timeout: nanos(hc.timeout, DEFAULT_TIMEOUT),
            start_period: nanos(hc.start_period, Duration::ZERO),
            start_interval: nanos(hc.start_interval, DEFAULT_START_INTERVAL),
            retries: hc.retries.filter(|r| *r > 0).unwrap_or(DEFAULT_RETRIES),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_common::time::format_go_duration;

    fn entry(code: i64) -> HealthLogEntry {
        HealthLogEntry {
            exit_code: code,
            ..Default::default()
        }
    }

    #[test]
    fn streaks_and_statuses_follow_docker() {
        let mut h = Health::starting();
        assert_eq!(h.record(entry(1), false, 3), None);
        assert_eq!(h.record(entry(1), false, 3), None);
        assert_eq!(h.record(entry(1), false, 3).as_deref(), Some(UNHEALTHY));
        assert_eq!(h.failing_streak, 3);
        assert_eq!(h.record(entry(0), false, 3).as_deref(), Some(HEALTHY));
        assert_eq!(h.failing_streak, 0);
        assert_eq!(h.record(entry(2), false, 1).as_deref(), Some(UNHEALTHY));
        for _ in 0..10 {
            h.record(entry(1), false, 3);
        }
        assert_eq!(h.log.len(), MAX_LOG_ENTRIES);
    }

    #[test]
    fn failures_in_the_start_period_do_not_count_while_starting() {
        let mut h = Health::starting();
        for _ in 0..5 {
            assert_eq!(h.record(entry(1), true, 1), None);
        }
        assert_eq!(h.failing_streak, 0);
        assert_eq!(h.status, STARTING);
        h.record(entry(0), true, 1);
        // Once healthy, a failure counts even within the start period.
        assert_eq!(h.record(entry(1), true, 1).as_deref(), Some(UNHEALTHY));
    }

    #[test]
    fn flags_give_docker_configs() {
        let flags = HealthFlags {
            cmd: Some("test -f /ok".into()),
            interval: Some("1m30s".into()),
            retries: Some(2),
            ..Default::default()
        };
        let hc = flags.to_config().unwrap().unwrap();
        assert_eq!(
            hc.test,
            Some(vec!["CMD-SHELL".to_string(), "test -f /ok".into()])
        );
        assert_eq!(hc.interval, Some(90_000_000_000));
        assert_eq!(hc.timeout, None);
        let none = HealthFlags {
            no_healthcheck: true,
            ..Default::default()
        };
        assert_eq!(
            none.to_config().unwrap().unwrap().test,
            Some(vec!["NONE".to_string()])
        );
        let both = HealthFlags {
            no_healthcheck: true,
            cmd: Some("true".into()),
            ..Default::default()
        };
        assert!(both
            .to_config()
            .unwrap_err()
            .to_string()
            .contains("conflicts"));
        let tiny = HealthFlags {
            interval: Some("10us".into()),
            ..Default::default()
        };
        assert!(tiny.to_config().is_err());
        assert_eq!(HealthFlags::default().to_config().unwrap(), None);
    }

    #[test]
    fn go_durations_parse_and_print() {
        assert_eq!(parse_go_duration("30s"), Some(30_000_000_000));
        assert_eq!(parse_go_duration("1.5s"), Some(1_500_000_000));
        assert_eq!(parse_go_duration("100ms"), Some(100_000_000));
        assert_eq!(parse_go_duration("1h2m3s"), Some(3_723_000_000_000));
        assert_eq!(parse_go_duration("0"), Some(0));
        assert_eq!(parse_go_duration("5"), None);
        assert_eq!(parse_go_duration("s"), None);
        assert_eq!(format_go_duration(nanos(Duration::from_secs(30))), "30s");
        assert_eq!(
            format_go_duration(nanos(Duration::from_millis(1500))),
            "1.5s"
        );
        assert_eq!(
            format_go_duration(nanos(Duration::from_millis(100))),
            "100ms"
        );
        assert_eq!(format_go_duration(nanos(Duration::from_secs(90))), "1m30s");
    }

    #[test]
    fn user_fields_override_the_image_and_none_disables() {
        let image = HealthConfig {
            test: Some(vec!["CMD".into(), "check".into()]),
            interval: Some(5),
            retries: Some(7),
            ..Default::default()
        };
        let user = HealthConfig {
            interval: Some(9),
            ..Default::default()
        };
        let merged = merge(Some(&image), Some(&user)).unwrap();
        assert_eq!(merged.test, image.test);
        assert_eq!((merged.interval, merged.retries), (Some(9), Some(7)));
        let mut config = ContainerConfig {
            healthcheck: Some(merged),
            ..Default::default()
        };
        let s = Schedule::of(&config).unwrap();
        assert_eq!(s.command, vec!["check".to_string()]);
        assert_eq!(s.timeout, DEFAULT_TIMEOUT);
        config.healthcheck = Some(HealthConfig {
            test: Some(vec!["CMD-SHELL".into(), "exit 0".into()]),
            ..Default::default()
        });
        assert_eq!(
            Schedule::of(&config).unwrap().command,
            vec!["/bin/sh".to_string(), "-c".into(), "exit 0".into()]
        );
        config.healthcheck = Some(HealthConfig {
            test: Some(vec!["NONE".into()]),
            ..Default::default()
        });
        assert_eq!(Schedule::of(&config), None);
    }
}
