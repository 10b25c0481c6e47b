//! docker's health checks without a daemon. The container's monitor spawns
//! `coracle __healthcheck ID` every interval; each such process runs one probe in the
//! container (an exec), waits for it within the check's timeout and folds the result
//! into the record's `health` column, which holds docker's `State.Health` JSON as
//! `inspect` shows it. The rules are moby's (daemon/health.go).

use chrono::{DateTime, SecondsFormat, Utc};
use coracle_model::HealthConfig;
use coracle_state::ContainerRecord;
use serde::{Deserialize, Serialize};
use std::time::Duration;

mod probe;
mod record;

/// Longest probe output kept (docker's `maxOutputLen`); more is cut and marked "...".
pub const MAX_OUTPUT_LEN: usize = 4096;
/// Results kept in `Health.Log` (docker's `maxLogEntries`).
pub const MAX_LOG_ENTRIES: usize = 5;

pub const STARTING: &str = "starting";
pub const HEALTHY: &str = "healthy";
pub const UNHEALTHY: &str = "unhealthy";

/// docker's `State.Health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Health {
    /// [`STARTING`], [`HEALTHY`] or [`UNHEALTHY`].
    pub status: String,
    /// Consecutive failures counted so far.
    pub failing_streak: u32,
    /// The last results, oldest first (docker shows `[]`, never null).
    #[serde(default, deserialize_with = "null_as_empty")]
    pub log: Vec<HealthcheckResult>,
}

/// One probe's result, an entry of `State.Health.Log`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HealthcheckResult {
    /// RFC 3339 with nanoseconds.
    pub start: String,
    pub end: String,
    /// The probe's exit code; -1 when it timed out or could not be run.
    pub exit_code: i32,
    pub output: String,
}

fn null_as_empty<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Vec<HealthcheckResult>, D::Error> {
    Ok(Option::<Vec<HealthcheckResult>>::deserialize(d)?.unwrap_or_default())
}

impl Health {
    /// The state a (re)started container's check begins in: docker resets the status
    /// and the streak but keeps the log of earlier runs.
    pub fn starting(log: Vec<HealthcheckResult>) -> Health {
        Health {
            status: STARTING.into(),
            failing_streak: 0,
            log,
        }
    }

    /// The checks stopped (the container exited or was paused): docker then reports
    /// the container unhealthy "for compatibility reasons" (moby's
    /// `CloseMonitorChannel`), keeping the streak and the log.
    pub fn stopped(self) -> Health {
        Health {
            status: UNHEALTHY.into(),
            ..self
        }
    }

    /// Parses the record's `health` column; None without a check (or if unreadable).
    pub(crate) fn of(record: &ContainerRecord) -> Option<Health> {
        serde_json::from_str(record.health.as_deref()?).ok()
    }
}

/// What one probe run gave, before it is folded into the state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProbeResult {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub exit_code: i32,
    pub output: String,
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

/// moby's `handleProbeResult`: append to the log (keeping the last five); success makes
/// the container healthy and clears the streak; a failure adds to the streak and makes
/// it unhealthy once the streak reaches the retries, except that failures while the
/// container is still starting and within its start period do not count.
pub(crate) fn apply_probe(
    prev: Option<Health>,
    result: ProbeResult,
    check: &HealthConfig,
    started_at: Option<DateTime<Utc>>,
) -> Health {
    let mut h = prev.unwrap_or_else(|| Health::starting(Vec::new()));
    if h.log.len() >= MAX_LOG_ENTRIES {
        h.log.drain(..h.log.len() + 1 - MAX_LOG_ENTRIES);
    }
    h.log.push(HealthcheckResult {
        start: rfc3339(result.start),
        end: rfc3339(result.end),
        exit_code: result.exit_code,
        output: result.output,
    });
    if result.exit_code == 0 {
        h.failing_streak = 0;
        h.status = HEALTHY.into();
        return h;
    }
    let in_start_period = h.status == STARTING
        && started_at.is_some_and(|s| {
            (result.start - s)
                .to_std()
                .map_or(true, |since| since < check.start_period())
        });
    if !in_start_period {
        h.failing_streak += 1;
        if h.failing_streak >= check.retries() {
            h.status = UNHEALTHY.into();
        }
    }
    h
}

/// Probe output as docker keeps it: the first [`MAX_OUTPUT_LEN`] bytes, "..." appended
/// when more was written; invalid UTF-8 replaced (as Go's JSON encoder does).
#[derive(Debug, Default)]
pub(crate) struct LimitedOutput {
    buf: Vec<u8>,
    truncated: bool,
}

impl LimitedOutput {
    pub fn push(&mut self, data: &[u8]) {
        let keep = (MAX_OUTPUT_LEN - self.buf.len()).min(data.len());
        self.buf.extend_from_slice(&data[..keep]);
        if keep < data.len() {
            self.truncated = true;
        }
    }

    /// More was written than is kept.
    pub fn overflowed(&self) -> bool {
        self.truncated
    }

    pub fn into_string(self) -> String {
        let mut s = String::from_utf8_lossy(&self.buf).into_owned();
        if self.truncated {
            s.push_str("...");
        }
        s
    }
}

/// Go's `time.Duration.String()`, which docker's messages print: `30s`, `1m30s`,
/// `1h0m0s`, `300ms`, `1.5s`.
pub(crate) fn go_duration(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns == 0 {
        return "0s".into();
    }
    if ns < 1_000_000_000 {
        let (div, width, unit) = match ns {
            0..1_000 => (1, 0, "ns"),
            1_000..1_000_000 => (1_000, 3, "µs"),
            _ => (1_000_000, 6, "ms"),
        };
        return format!("{}{unit}", decimal(ns / div, ns % div, width));
    }
    let secs = ns / 1_000_000_000;
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if h > 0 || m > 0 {
        out.push_str(&format!("{m}m"));
    }
    out.push_str(&decimal(s, ns % 1_000_000_000, 9));
    out.push('s');
    out
}

/// `int.frac` with the fraction `width` digits wide, trailing zeros (and a bare
/// point) dropped.
fn decimal(int: u128, frac: u128, width: usize) -> String {
    if frac == 0 {
        return int.to_string();
    }
    let f = format!("{frac:0width$}");
    format!("{int}.{}", f.trim_end_matches('0'))
}

/// docker's output for a probe killed at its timeout.
pub(crate) fn timeout_message(timeout: Duration, output: &str) -> String {
    if output.is_empty() {
        format!("Health check exceeded timeout ({})", go_duration(timeout))
    } else {
        format!(
            "Health check exceeded timeout ({}): {output}",
            go_duration(timeout)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn check(retries: u32, start_period_s: u64) -> HealthConfig {
        HealthConfig {
            test: vec!["CMD-SHELL".into(), "true".into()],
            retries,
            start_period: start_period_s * 1_000_000_000,
            ..Default::default()
        }
    }

    pub(super) fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + s, 500).unwrap()
    }

    pub(super) fn result(at: i64, code: i32) -> ProbeResult {
        ProbeResult {
            start: t(at),
            end: t(at),
            exit_code: code,
            output: format!("run at {at}"),
        }
    }

    #[test]
    fn starting_then_healthy_then_unhealthy_after_retries() {
        let c = check(2, 0);
        let h = apply_probe(None, result(1, 1), &c, Some(t(0)));
        assert_eq!((h.status.as_str(), h.failing_streak), (STARTING, 1));
        let h = apply_probe(Some(h), result(2, 0), &c, Some(t(0)));
        assert_eq!((h.status.as_str(), h.failing_streak), (HEALTHY, 0));
        let h = apply_probe(Some(h), result(3, 1), &c, Some(t(0)));
        assert_eq!((h.status.as_str(), h.failing_streak), (HEALTHY, 1));
        let h = apply_probe(Some(h), result(4, 2), &c, Some(t(0)));
        assert_eq!((h.status.as_str(), h.failing_streak), (UNHEALTHY, 2));
        let h = apply_probe(Some(h), result(5, 7), &c, Some(t(0)));
        assert_eq!((h.status.as_str(), h.failing_streak), (UNHEALTHY, 3));
        let h = apply_probe(Some(h), result(6, 0), &c, Some(t(0)));
        assert_eq!((h.status.as_str(), h.failing_streak), (HEALTHY, 0));
        assert_eq!(h.log.len(), 5);
        assert_eq!(h.log[4].exit_code, 0);
        assert_eq!(h.log[3].exit_code, 7);
    }

    #[test]
    fn default_retries_are_three() {
        let c = check(0, 0);
        let mut h = None;
        for i in 1..=3 {
            let next = apply_probe(h, result(i, 1), &c, Some(t(0)));
            assert_eq!(next.status == UNHEALTHY, i == 3, "after {i} failures");
            h = Some(next);
        }
    }

    #[test]
    fn failures_in_the_start_period_do_not_count_while_starting() {
        let c = check(1, 10);
        let h = apply_probe(None, result(3, 1), &c, Some(t(0)));
        assert_eq!((h.status.as_str(), h.failing_streak), (STARTING, 0));
        assert_eq!(h.log.len(), 1, "the result is still logged");
        // Past the start period a single failure (retries 1) is enough.
        let h = apply_probe(Some(h), result(10, 1), &c, Some(t(0)));
        assert_eq!((h.status.as_str(), h.failing_streak), (UNHEALTHY, 1));
        // Once healthy, the start period no longer shields failures.
        let healthy = apply_probe(None, result(1, 0), &c, Some(t(0)));
        let h = apply_probe(Some(healthy), result(2, 1), &c, Some(t(0)));
        assert_eq!((h.status.as_str(), h.failing_streak), (UNHEALTHY, 1));
        // Without a known start time the failure counts.
        let h = apply_probe(None, result(2, 1), &c, None);
        assert_eq!(h.failing_streak, 1);
    }

    #[test]
    fn log_keeps_the_last_five_oldest_first() {
        let c = check(100, 0);
        let mut h = None;
        for i in 0..8 {
            h = Some(apply_probe(h, result(i, 1), &c, Some(t(0))));
        }
        let h = h.unwrap();
        let outputs: Vec<&str> = h.log.iter().map(|r| r.output.as_str()).collect();
        assert_eq!(
            outputs,
            ["run at 3", "run at 4", "run at 5", "run at 6", "run at 7"]
        );
        assert_eq!(h.failing_streak, 8);
    }

    #[test]
    fn reset_keeps_the_log() {
        let h = apply_probe(None, result(1, 1), &check(1, 0), None);
        assert_eq!(h.status, UNHEALTHY);
        let r = Health::starting(h.log.clone());
        assert_eq!((r.status.as_str(), r.failing_streak), (STARTING, 0));
        assert_eq!(r.log, h.log);
    }

    #[test]
    fn stopping_reads_unhealthy_and_keeps_streak_and_log() {
        let h = apply_probe(None, result(1, 0), &check(3, 0), None);
        let h = apply_probe(Some(h), result(2, 1), &check(3, 0), None);
        let s = h.clone().stopped();
        assert_eq!((s.status.as_str(), s.failing_streak), (UNHEALTHY, 1));
        assert_eq!(s.log, h.log);
        // After `unpause` the next success makes it healthy again.
        let back = apply_probe(Some(s), result(3, 0), &check(3, 0), None);
        assert_eq!(back.status, HEALTHY);
    }

    #[test]
    fn json_is_dockers_state_health() {
        let h = apply_probe(None, result(1, 0), &check(3, 0), None);
        let v: serde_json::Value = serde_json::to_value(&h).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "Status": "healthy",
                "FailingStreak": 0,
                "Log": [{
                    "Start": "2023-11-14T22:13:21.000000500Z",
                    "End": "2023-11-14T22:13:21.000000500Z",
                    "ExitCode": 0,
                    "Output": "run at 1",
                }],
            })
        );
        assert_eq!(
            serde_json::to_string(&Health::starting(vec![])).unwrap(),
            r#"{"Status":"starting","FailingStreak":0,"Log":[]}"#
        );
        let back: Health =
            serde_json::from_str(r#"{"Status":"starting","FailingStreak":0,"Log":null}"#).unwrap();
        assert!(back.log.is_empty());
        assert_eq!(serde_json::from_value::<Health>(v).unwrap(), h);
    }

    #[test]
    fn output_is_cut_at_4096_bytes() {
        let mut o = LimitedOutput::default();
        o.push(b"ok\n");
        assert_eq!(o.into_string(), "ok\n");
        let mut o = LimitedOutput::default();
        o.push(&[b'a'; 4000]);
        o.push(&[b'b'; 200]);
        o.push(b"more");
        let s = o.into_string();
        assert_eq!(s.len(), 4096 + 3);
        assert!(s.starts_with(&"a".repeat(4000)));
        assert!(s.ends_with(&format!("{}...", "b".repeat(96))));
        let mut o = LimitedOutput::default();
        o.push(&[b'x'; 4096]);
        assert_eq!(o.into_string().len(), 4096, "exactly the limit is not cut");
        let mut o = LimitedOutput::default();
        o.push(b"bad \xff byte");
        assert_eq!(o.into_string(), "bad \u{fffd} byte");
    }

    #[test]
    fn durations_print_like_go() {
        let cases = [
            (Duration::from_secs(30), "30s"),
            (Duration::from_secs(90), "1m30s"),
            (Duration::from_secs(60), "1m0s"),
            (Duration::from_secs(3600), "1h0m0s"),
            (Duration::from_millis(300), "300ms"),
            (Duration::from_millis(1500), "1.5s"),
            (Duration::from_micros(2), "2µs"),
            (Duration::from_nanos(1_500), "1.5µs"),
            (Duration::from_nanos(7), "7ns"),
            (Duration::from_nanos(1_000_000_001), "1.000000001s"),
            (Duration::ZERO, "0s"),
        ];
        for (d, want) in cases {
            assert_eq!(go_duration(d), want, "{d:?}");
        }
        assert_eq!(
            timeout_message(Duration::from_secs(30), ""),
            "Health check exceeded timeout (30s)"
        );
        assert_eq!(
            timeout_message(Duration::from_millis(500), "partial"),
            "Health check exceeded timeout (500ms): partial"
        );
    }
}
