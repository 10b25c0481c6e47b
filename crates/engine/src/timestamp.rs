//! docker's time arguments (`prune --filter until=`, `logs --since/--until`, `events`):
//! a Go duration before now (`10m`, `1h30m`), an RFC 3339 date-time with or without
//! zone (without: the local zone), a bare date, or Unix seconds with optional
//! fraction. moby's `daemon/internal/timestamp.Parse`.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeZone, Utc};

/// The instant `value` names, durations counted back from `now`.
pub fn parse_timestamp(value: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    if value.trim().is_empty() {
        return Err("failed to parse value as time or duration: value is empty".into());
    }
    if value != "0" {
        if let Ok(ns) = coracle_model::parse_go_duration(value) {
            return Ok(now - chrono::Duration::nanoseconds(ns));
        }
    }
    let in_local_zone = !value.contains(['z', 'Z', '+']) && value.matches('-').count() != 3;
    let parsed = if in_local_zone {
        let local = chrono::Local
            .offset_from_utc_datetime(&now.naive_utc())
            .fix();
        parse_naive(value).and_then(|t| local_to_utc(t, local))
    } else {
        split_zone(value)
            .and_then(|(body, zone)| parse_naive(body).and_then(|t| local_to_utc(t, zone)))
    };
    match parsed {
        Some(t) => Ok(t),
        // Something date-like that did not parse is an error, not a Unix time.
        None if value.contains('-') => Err(format!("parsing time {value:?}: not a valid time")),
        None => {
            parse_unix(value).map_err(|e| format!("failed to parse value as time or duration: {e}"))
        }
    }
}

fn local_to_utc(t: NaiveDateTime, zone: FixedOffset) -> Option<DateTime<Utc>> {
    zone.from_local_datetime(&t)
        .single()
        .map(|t| t.with_timezone(&Utc))
}

/// `body` and its zone: a trailing `Z` or `±hh:mm` after the date.
fn split_zone(value: &str) -> Option<(&str, FixedOffset)> {
    if let Some(body) = value.strip_suffix(['Z', 'z']) {
        return Some((body, Utc.fix()));
    }
    // The zone sign comes after the date's two dashes.
    let date_end = value.find(['T', 't']).unwrap_or(10.min(value.len()));
    let at = value[date_end..].rfind(['+', '-'])? + date_end;
    let (body, zone) = value.split_at(at);
    let sign = if zone.starts_with('-') { -1 } else { 1 };
    let (h, m) = zone[1..].split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let secs = h.parse::<i32>().ok()? * 3600 + m.parse::<i32>().ok()? * 60;
    Some((body, FixedOffset::east_opt(sign * secs)?))
}

/// Go's layouts `2006-01-02`, `2006-01-02T15`, `2006-01-02T15:04`,
/// `2006-01-02T15:04:05` and `2006-01-02T15:04:05.999999999`.
fn parse_naive(body: &str) -> Option<NaiveDateTime> {
    let (date, time) = match body.split_once(['T', 't']) {
        Some((d, t)) => (d, Some(t)),
        None => (body, None),
    };
    if date.len() != 10 {
        return None;
    }
    let date = NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()?;
    let time = match time {
        None => NaiveTime::MIN,
        Some(t) => {
            let two = |s: &str| (s.len() == 2).then(|| s.parse::<u32>().ok()).flatten();
            let (hms, frac) = match t.split_once('.') {
                Some((hms, f)) => (hms, Some(f)),
                None => (t, None),
            };
            let parts: Vec<&str> = hms.split(':').collect();
            let (h, m, s) = match parts.as_slice() {
                [h] if frac.is_none() => (two(h)?, 0, 0),
                [h, m] if frac.is_none() => (two(h)?, two(m)?, 0),
                [h, m, s] => (two(h)?, two(m)?, two(s)?),
                _ => return None,
            };
            let nanos = match frac {
                None => 0,
                Some(f)
                    if !f.is_empty() && f.len() <= 9 && f.bytes().all(|b| b.is_ascii_digit()) =>
                {
                    format!("{f:0<9}").parse().ok()?
                }
                Some(_) => return None,
            };
            NaiveTime::from_hms_nano_opt(h, m, s, nanos)?
        }
    };
    Some(date.and_time(time))
}

/// `seconds[.fraction]`.
fn parse_unix(value: &str) -> Result<DateTime<Utc>, String> {
    let (s, n) = match value.split_once('.') {
        Some((s, n)) => (s, n),
        None => (value, ""),
    };
    let secs: i64 = s
        .parse()
        .map_err(|_| format!("invalid seconds {s:?}: invalid syntax"))?;
    if n.len() > 20 {
        return Err(format!(
            "invalid nanoseconds: length {} exceeds maximum 20",
            n.len()
        ));
    }
    if let Some((i, c)) = n.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        return Err(format!(
            "invalid nanoseconds: invalid character {c:?} at position {i}"
        ));
    }
    let nanos: u32 = if n.is_empty() {
        0
    } else {
        let mut digits: String = n.chars().take(9).collect();
        while digits.len() < 9 {
            digits.push('0');
        }
        digits
            .parse()
            .map_err(|_| format!("invalid nanoseconds {n:?}"))?
    };
    DateTime::from_timestamp(secs, nanos).ok_or_else(|| format!("timestamp {value} out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2024-05-01T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn durations_count_back_from_now() {
        assert_eq!(
            parse_timestamp("10m", now()).unwrap(),
            at("2024-05-01T11:50:00Z")
        );
        assert_eq!(
            parse_timestamp("1h30m", now()).unwrap(),
            at("2024-05-01T10:30:00Z")
        );
    }

    #[test]
    fn dates_with_zones() {
        assert_eq!(
            parse_timestamp("2024-01-02T03:04:05Z", now()).unwrap(),
            at("2024-01-02T03:04:05Z")
        );
        assert_eq!(
            parse_timestamp("2024-01-02T03:04:05.5+02:00", now()).unwrap(),
            at("2024-01-02T01:04:05.5Z")
        );
        assert_eq!(
            parse_timestamp("2024-01-02T03:04-01:00", now()).unwrap(),
            at("2024-01-02T04:04:00Z")
        );
        assert_eq!(
            parse_timestamp("2024-01-02Z", now()).unwrap(),
            at("2024-01-02T00:00:00Z")
        );
    }

    #[test]
    fn local_dates_use_the_local_zone() {
        let local = chrono::Local
            .offset_from_utc_datetime(&now().naive_utc())
            .fix();
        let want = local
            .from_local_datetime(
                &NaiveDate::from_ymd_opt(2024, 1, 2)
                    .unwrap()
                    .and_hms_opt(3, 0, 0)
                    .unwrap(),
            )
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(parse_timestamp("2024-01-02T03", now()).unwrap(), want);
    }

    #[test]
    fn unix_seconds_and_errors() {
        assert_eq!(
            parse_timestamp("1700000000", now()).unwrap().timestamp(),
            1_700_000_000
        );
        let t = parse_timestamp("1700000000.25", now()).unwrap();
        assert_eq!(t.timestamp_subsec_nanos(), 250_000_000);
        assert!(parse_timestamp("2024-13-01", now()).is_err());
        assert!(parse_timestamp("abc", now()).is_err());
        assert!(parse_timestamp("", now()).is_err());
        assert!(parse_timestamp("1.x", now()).is_err());
    }
}
