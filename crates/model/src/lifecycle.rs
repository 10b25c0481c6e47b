//! Flags that shape a container's life rather than its process: restart policy, log
//! options, labels, stop signal, health check and detach keys. docker's rules and words.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{bad, OptionsError};

/// `--restart`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "Name", rename_all = "kebab-case")]
pub enum RestartPolicy {
    #[default]
    No,
    Always,
    /// `on-failure[:max]`: restart after a non-zero exit, at most `max` times.
    OnFailure {
        #[serde(rename = "MaximumRetryCount")]
        max: Option<u32>,
    },
    UnlessStopped,
}

impl RestartPolicy {
    /// docker's name (`HostConfig.RestartPolicy.Name`).
    pub fn name(&self) -> &'static str {
        match self {
            RestartPolicy::No => "no",
            RestartPolicy::Always => "always",
            RestartPolicy::OnFailure { .. } => "on-failure",
            RestartPolicy::UnlessStopped => "unless-stopped",
        }
    }

    pub fn max_retries(&self) -> u32 {
        match self {
            RestartPolicy::OnFailure { max } => max.unwrap_or(0),
            _ => 0,
        }
    }

    /// Whether a container that exited with `code`, after `restarts` restarts, is
    /// started again. A `stop`/`kill` by the user always wins (docker's rule).
    pub fn should_restart(&self, code: i32, restarts: u32, stopped_by_user: bool) -> bool {
        if stopped_by_user {
            return false;
        }
        match self {
            RestartPolicy::No => false,
            RestartPolicy::Always | RestartPolicy::UnlessStopped => true,
            RestartPolicy::OnFailure { max } => code != 0 && max.is_none_or(|m| restarts < m),
        }
    }

    /// Whether the container comes back at boot (`coracle system boot`), as dockerd
    /// restarts containers when it starts.
    pub fn restart_at_boot(&self, stopped_by_user: bool) -> bool {
        match self {
            RestartPolicy::Always => true,
            RestartPolicy::UnlessStopped => !stopped_by_user,
            RestartPolicy::No | RestartPolicy::OnFailure { .. } => false,
        }
    }
}

pub fn parse_restart(s: &str) -> Result<RestartPolicy, OptionsError> {
    let (name, count) = match s.split_once(':') {
        Some((n, c)) => (n, Some(c)),
        None => (s, None),
    };
    let policy = match name {
        "" | "no" => RestartPolicy::No,
        "always" => RestartPolicy::Always,
        "unless-stopped" => RestartPolicy::UnlessStopped,
        "on-failure" => RestartPolicy::OnFailure {
            max: match count {
                None => None,
                Some(c) => Some(c.parse::<u32>().map_err(|_| {
                    OptionsError::Invalid(format!(
                        "invalid restart policy format: maximum retry count must be an integer: {c:?}"
                    ))
                })?),
            },
        },
        _ => {
            return Err(OptionsError::Invalid(format!(
                "invalid restart policy '{name}'"
            )))
        }
    };
    if count.is_some() && !matches!(policy, RestartPolicy::OnFailure { .. }) {
        return Err(OptionsError::Invalid(format!(
            "invalid restart policy: maximum retry count can only be used with 'on-failure': {s}"
        )));
    }
    Ok(policy)
}

/// The json-file log driver's options (`--log-opt`); `--log-driver none` disables logs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogOptions {
    /// false: `--log-driver none` (nothing is kept; `logs` refuses).
    pub enabled: bool,
    /// `max-size`: rotate when the file would grow past this many bytes.
    pub max_size: Option<u64>,
    /// `max-file`: files kept, counting the current one (docker's default 1).
    pub max_file: u32,
}

impl Default for LogOptions {
    fn default() -> LogOptions {
        LogOptions {
            enabled: true,
            max_size: None,
            max_file: 1,
        }
    }
}

impl LogOptions {
    /// docker's `HostConfig.LogConfig.Config` map.
    pub fn config_map(&self) -> BTreeMap<String, String> {
        let mut m = BTreeMap::new();
        if let Some(s) = self.max_size {
            m.insert("max-size".into(), s.to_string());
        }
        if self.max_file != 1 {
            m.insert("max-file".into(), self.max_file.to_string());
        }
        m
    }
}

/// `--log-driver` (json-file or none; docker's other drivers ship logs off the host)
/// and `--log-opt k=v` for json-file.
pub fn parse_log_options(
    driver: Option<&str>,
    opts: &[String],
) -> Result<LogOptions, OptionsError> {
    let mut out = LogOptions::default();
    match driver.unwrap_or("json-file") {
        "json-file" => {}
        "none" => {
            if !opts.is_empty() {
                return Err(OptionsError::Invalid(
                    "--log-opt is not valid with --log-driver none".into(),
                ));
            }
            out.enabled = false;
            return Ok(out);
        }
        other => {
            return Err(OptionsError::Unsupported {
                option: format!("--log-driver {other}"),
                hint: "coracle keeps logs with the json-file driver (or none)".into(),
            })
        }
    }
    for o in opts {
        let (k, v) = o
            .split_once('=')
            .ok_or_else(|| bad("--log-opt", o, "expected key=value"))?;
        match k {
            "max-size" => {
                let n = super::parse_ram_in_bytes(v).map_err(|_| {
                    bad(
                        "--log-opt",
                        o,
                        "max-size must be a size such as 10m or 512k",
                    )
                })?;
                if n <= 0 {
                    return Err(bad("--log-opt", o, "max-size must be a positive size"));
                }
                out.max_size = Some(n as u64);
            }
            "max-file" => {
                let n: u32 =
                    v.parse().ok().filter(|n| *n >= 1).ok_or_else(|| {
                        bad("--log-opt", o, "max-file must be a positive integer")
                    })?;
                out.max_file = n;
            }
            _ => {
                return Err(OptionsError::Invalid(format!(
                    "unknown log opt '{k}' for json-file log driver"
                )))
            }
        }
    }
    if out.max_file > 1 && out.max_size.is_none() {
        return Err(OptionsError::Invalid(
            "max-file cannot be set without max-size: the file would never rotate".into(),
        ));
    }
    Ok(out)
}

/// `--label k=v` / `k` (empty value), after the `--label-file` lines (docker's order:
/// files first, flags override).
pub fn parse_labels(
    file_lines: &[String],
    flags: &[String],
) -> Result<BTreeMap<String, String>, OptionsError> {
    let mut out = BTreeMap::new();
    let lines = file_lines
        .iter()
        .map(|l| l.trim())
        .filter(|l| !l.is_empty() && !l.starts_with('#'));
    for l in lines.chain(flags.iter().map(String::as_str)) {
        let (k, v) = l.split_once('=').unwrap_or((l, ""));
        if k.is_empty() {
            return Err(bad("--label", l, "label name must not be empty"));
        }
        out.insert(k.to_string(), v.to_string());
    }
    Ok(out)
}

/// A signal by name (`SIGTERM`, `TERM`, case-insensitive) or number, as docker takes
/// `--stop-signal`, `kill -s` and the image's STOPSIGNAL.
pub fn parse_signal(s: &str) -> Result<i32, OptionsError> {
    if let Ok(n) = s.parse::<i32>() {
        if (1..=64).contains(&n) {
            return Ok(n);
        }
        return Err(OptionsError::Invalid(format!("Invalid signal: {s}")));
    }
    let upper = s.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some(rt) = name.strip_prefix("RTMIN") {
        let off: i32 = match rt {
            "" => 0,
            r => r
                .strip_prefix('+')
                .and_then(|n| n.parse().ok())
                .unwrap_or(-1),
        };
        let n = libc::SIGRTMIN() + off;
        if off >= 0 && n <= libc::SIGRTMAX() {
            return Ok(n);
        }
    }
    let full = format!("SIG{name}");
    full.parse::<nix::sys::signal::Signal>()
        .map(|s| s as i32)
        .map_err(|_| OptionsError::Invalid(format!("Invalid signal: {s}")))
}

/// A health check as docker stores it (`Config.Healthcheck`), durations in
/// nanoseconds. `test`: `["NONE"]`, `["CMD", args...]` or `["CMD-SHELL", command]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HealthConfig {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub test: Vec<String>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub interval: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub timeout: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub start_period: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub start_interval: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub retries: u32,
}

fn is_zero<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

/// docker's defaults for fields left at zero.
pub const DEFAULT_HEALTH_INTERVAL: Duration = Duration::from_secs(30);
pub const DEFAULT_HEALTH_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_HEALTH_START_INTERVAL: Duration = Duration::from_secs(5);
pub const DEFAULT_HEALTH_RETRIES: u32 = 3;

impl HealthConfig {
    /// Whether there is a check to run (`NONE` or no test: none).
    pub fn enabled(&self) -> bool {
        !self.test.is_empty() && self.test[0] != "NONE"
    }

    pub fn interval(&self) -> Duration {
        nonzero_or(self.interval, DEFAULT_HEALTH_INTERVAL)
    }
    pub fn timeout(&self) -> Duration {
        nonzero_or(self.timeout, DEFAULT_HEALTH_TIMEOUT)
    }
    pub fn start_period(&self) -> Duration {
        Duration::from_nanos(self.start_period)
    }
    pub fn start_interval(&self) -> Duration {
        nonzero_or(self.start_interval, DEFAULT_HEALTH_START_INTERVAL)
    }
    pub fn retries(&self) -> u32 {
        if self.retries == 0 {
            DEFAULT_HEALTH_RETRIES
        } else {
            self.retries
        }
    }

    /// The command to run in the container: `CMD` args as they are, `CMD-SHELL`
    /// through `/bin/sh -c` (docker's rule on Linux).
    pub fn command(&self) -> Option<Vec<String>> {
        match self.test.first().map(String::as_str) {
            Some("CMD") if self.test.len() > 1 => Some(self.test[1..].to_vec()),
            Some("CMD-SHELL") if self.test.len() > 1 => Some(vec![
                "/bin/sh".into(),
                "-c".into(),
                self.test[1..].join(" "),
            ]),
            _ => None,
        }
    }
}

fn nonzero_or(ns: u64, default: Duration) -> Duration {
    if ns == 0 {
        default
    } else {
        Duration::from_nanos(ns)
    }
}

/// The `--health-*` flags as given (None: not given).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HealthFlags {
    pub cmd: Option<String>,
    pub interval: Option<String>,
    pub timeout: Option<String>,
    pub start_period: Option<String>,
    pub start_interval: Option<String>,
    pub retries: Option<i64>,
    pub no_healthcheck: bool,
}

/// The check the container runs: the image's, with each flag given overriding its
/// field (docker merges field by field); `--no-healthcheck` disables the image's.
pub fn merge_health(
    image: Option<&HealthConfig>,
    flags: &HealthFlags,
) -> Result<Option<HealthConfig>, OptionsError> {
    let any_flag = flags.cmd.is_some()
        || flags.interval.is_some()
        || flags.timeout.is_some()
        || flags.start_period.is_some()
        || flags.start_interval.is_some()
        || flags.retries.is_some();
    if flags.no_healthcheck {
        if any_flag {
            return Err(OptionsError::Invalid(
                "--no-healthcheck conflicts with --health-* options".into(),
            ));
        }
        return Ok(Some(HealthConfig {
            test: vec!["NONE".into()],
            ..Default::default()
        }));
    }
    let mut h = image.cloned().unwrap_or_default();
    if let Some(cmd) = &flags.cmd {
        h.test = if cmd.is_empty() {
            Vec::new()
        } else {
            vec!["CMD-SHELL".into(), cmd.clone()]
        };
    }
    let dur = |flag: &'static str, v: &Option<String>, cur: u64| -> Result<u64, OptionsError> {
        match v {
            None => Ok(cur),
            Some(s) => {
                let d = parse_go_duration(s).map_err(|r| bad(flag, s, r))?;
                if d < 0 {
                    return Err(OptionsError::Invalid(format!("{flag} cannot be negative")));
                }
                if d != 0 && d < 1_000_000 {
                    return Err(OptionsError::Invalid(format!(
                        "{flag} cannot be less than 1ms"
                    )));
                }
                Ok(d as u64)
            }
        }
    };
    h.interval = dur("--health-interval", &flags.interval, h.interval)?;
    h.timeout = dur("--health-timeout", &flags.timeout, h.timeout)?;
    h.start_period = dur("--health-start-period", &flags.start_period, h.start_period)?;
    h.start_interval = dur(
        "--health-start-interval",
        &flags.start_interval,
        h.start_interval,
    )?;
    if let Some(r) = flags.retries {
        if r < 0 {
            return Err(OptionsError::Invalid(
                "--health-retries cannot be negative".into(),
            ));
        }
        h.retries =
            u32::try_from(r).map_err(|_| bad("--health-retries", &r.to_string(), "too large"))?;
    }
    if h.test.is_empty() && !any_flag {
        return Ok(image.cloned());
    }
    if h.test.is_empty() {
        return Err(OptionsError::Invalid(
            "--health-* options need a health check command (--health-cmd or the image's HEALTHCHECK)"
                .into(),
        ));
    }
    Ok(Some(h))
}

/// Go's `time.ParseDuration` (what docker uses for `--health-*` and `--since`
/// relative times): `1h2m3.5s`, `300ms`, `-1.5h`; units ns us µs ms s m h. Nanoseconds.
pub fn parse_go_duration(s: &str) -> Result<i64, String> {
    let err = || format!("invalid duration {s:?}");
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(err());
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("missing unit in duration {s:?}"))?;
        if num_len == 0 {
            return Err(err());
        }
        let n: f64 = rest[..num_len].parse().map_err(|_| err())?;
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
            u => return Err(format!("unknown unit {u:?} in duration {s:?}")),
        };
        total += n * scale;
        rest = &rest[unit_len..];
    }
    if total > i64::MAX as f64 {
        return Err(format!("invalid duration {s:?}: too large"));
    }
    let ns = total.round() as i64;
    Ok(if neg { -ns } else { ns })
}

/// `--detach-keys`: docker's format, comma-separated keys, each a single character
/// (`a`) or `ctrl-X` with X in `a-z @ [ \ ] ^ _`. Default ctrl-p,ctrl-q.
pub fn parse_detach_keys(s: &str) -> Result<Vec<u8>, OptionsError> {
    let mut out = Vec::new();
    for key in s.split(',') {
        let k = key.trim();
        let lower = k.to_ascii_lowercase();
        if let Some(c) = lower.strip_prefix("ctrl-") {
            let b = match c.as_bytes() {
                [b @ b'a'..=b'z'] => b - b'a' + 1,
                [b'@'] => 0,
                [b'['] => 27,
                [b'\\'] => 28,
                [b']'] => 29,
                [b'^'] => 30,
                [b'_'] => 31,
                _ => return Err(bad("--detach-keys", s, format!("unknown character: '{k}'"))),
            };
            out.push(b);
        } else if k.len() == 1 {
            out.push(k.as_bytes()[0]);
        } else {
            return Err(bad("--detach-keys", s, format!("unknown character: '{k}'")));
        }
    }
    if out.is_empty() {
        return Err(bad("--detach-keys", s, "no keys given"));
    }
    Ok(out)
}

/// docker's default detach sequence: ctrl-p ctrl-q.
pub const DEFAULT_DETACH_KEYS: [u8; 2] = [16, 17];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_policies_follow_docker() {
        assert_eq!(parse_restart("no").unwrap(), RestartPolicy::No);
        assert_eq!(
            parse_restart("on-failure:3").unwrap(),
            RestartPolicy::OnFailure { max: Some(3) }
        );
        assert!(parse_restart("always:3").is_err());
        assert!(parse_restart("sometimes").is_err());
        assert!(parse_restart("on-failure:x").is_err());
        let p = RestartPolicy::OnFailure { max: Some(2) };
        assert!(p.should_restart(1, 1, false));
        assert!(!p.should_restart(1, 2, false), "max reached");
        assert!(!p.should_restart(0, 0, false), "success is not a failure");
        assert!(
            !RestartPolicy::Always.should_restart(1, 0, true),
            "stop wins"
        );
        assert!(RestartPolicy::UnlessStopped.restart_at_boot(false));
        assert!(!RestartPolicy::UnlessStopped.restart_at_boot(true));
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(json, r#"{"Name":"on-failure","MaximumRetryCount":2}"#);
    }

    #[test]
    fn log_options() {
        let o = parse_log_options(None, &["max-size=1k".into(), "max-file=3".into()]).unwrap();
        assert_eq!((o.max_size, o.max_file, o.enabled), (Some(1024), 3, true));
        assert!(!parse_log_options(Some("none"), &[]).unwrap().enabled);
        assert!(parse_log_options(Some("syslog"), &[]).is_err());
        assert!(parse_log_options(None, &["max-file=3".into()]).is_err());
        assert!(parse_log_options(None, &["color=red".into()]).is_err());
        assert!(parse_log_options(None, &["max-size=0".into()]).is_err());
    }

    #[test]
    fn labels_signals_keys() {
        let l = parse_labels(&["# c".into(), "a=1".into()], &["a=2".into(), "b".into()]).unwrap();
        assert_eq!(l["a"], "2");
        assert_eq!(l["b"], "");
        assert_eq!(parse_signal("TERM").unwrap(), 15);
        assert_eq!(parse_signal("sigkill").unwrap(), 9);
        assert_eq!(parse_signal("10").unwrap(), 10);
        assert_eq!(parse_signal("SIGRTMIN+1").unwrap(), libc::SIGRTMIN() + 1);
        assert!(parse_signal("SIGNOPE").is_err());
        assert!(parse_signal("0").is_err());
        assert_eq!(
            parse_detach_keys("ctrl-p,ctrl-q").unwrap(),
            DEFAULT_DETACH_KEYS
        );
        assert_eq!(parse_detach_keys("ctrl-a,x").unwrap(), vec![1, b'x']);
        assert!(parse_detach_keys("ctrl-1").is_err());
    }

    #[test]
    fn durations_like_go() {
        assert_eq!(parse_go_duration("1m30s").unwrap(), 90_000_000_000);
        assert_eq!(parse_go_duration("300ms").unwrap(), 300_000_000);
        assert_eq!(parse_go_duration("1.5h").unwrap(), 5_400_000_000_000);
        assert_eq!(parse_go_duration("-2s").unwrap(), -2_000_000_000);
        assert_eq!(parse_go_duration("0").unwrap(), 0);
        assert!(parse_go_duration("10").is_err());
        assert!(parse_go_duration("5x").is_err());
        assert!(parse_go_duration("").is_err());
    }

    #[test]
    fn health_merges_field_by_field() {
        let image = HealthConfig {
            test: vec!["CMD".into(), "true".into()],
            interval: 10_000_000_000,
            retries: 5,
            ..Default::default()
        };
        let h = merge_health(
            Some(&image),
            &HealthFlags {
                interval: Some("2s".into()),
                ..Default::default()
            },
        )
        .unwrap()
        .unwrap();
        assert_eq!((h.interval, h.retries), (2_000_000_000, 5));
        assert_eq!(h.command().unwrap(), vec!["true"]);
        let h = merge_health(
            None,
            &HealthFlags {
                cmd: Some("exit 1".into()),
                ..Default::default()
            },
        )
        .unwrap()
        .unwrap();
        assert_eq!(h.command().unwrap(), vec!["/bin/sh", "-c", "exit 1"]);
        assert_eq!(h.retries(), 3);
        let none = merge_health(
            Some(&image),
            &HealthFlags {
                no_healthcheck: true,
                ..Default::default()
            },
        )
        .unwrap()
        .unwrap();
        assert!(!none.enabled());
        assert!(merge_health(
            None,
            &HealthFlags {
                no_healthcheck: true,
                retries: Some(1),
                ..Default::default()
            }
        )
        .is_err());
        assert!(merge_health(
            None,
            &HealthFlags {
                interval: Some("-1s".into()),
                cmd: Some("true".into()),
                ..Default::default()
            }
        )
        .is_err());
        assert_eq!(merge_health(None, &HealthFlags::default()).unwrap(), None);
    }
}
