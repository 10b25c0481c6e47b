//! docker's time arguments (`logs --since/--until`, the prune commands' `until=`
//! filter) as docker takes them (moby `client/internal/timestamp.GetTimestamp`, then
//! the daemon's `ParseUnixTimestamp`): a Go duration before now (`10m`, `1h30m`), an
//! RFC 3339 date or time with or without fraction and zone (no zone: the local one),
//! or a unix timestamp (`1700000000.5`). Bad values get Go's `time.Parse` error text,
//! as docker prints it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use coracle_model::parse_go_duration;

/// The instant `value` names, relative to `now` for durations.
pub fn parse_timestamp(value: &str, now: SystemTime) -> Result<SystemTime, String> {
    if value != "0" {
        if let Ok(ns) = parse_go_duration(value) {
            // docker sends whole seconds for relative times.
            let at = unix_nanos(now) - i128::from(ns);
            return Ok(from_unix(at.div_euclid(1_000_000_000) as i64, 0));
        }
    }
    let in_location = !value.contains(['z', 'Z', '+']) && value.matches('-').count() != 3;
    let layout = if value.contains('.') {
        if in_location {
            "2006-01-02T15:04:05.999999999"
        } else {
            "2006-01-02T15:04:05.999999999Z07:00"
        }
    } else if value.contains('T') {
        let mut colons = value.matches(':').count();
        // A numeric zone offset brings a colon of its own.
        if !in_location && !value.contains(['z', 'Z']) && colons > 0 {
            colons -= 1;
        }
        match (in_location, colons) {
            (true, 0) => "2006-01-02T15",
            (true, 1) => "2006-01-02T15:04",
            (true, _) => "2006-01-02T15:04:05",
            (false, 0) => "2006-01-02T15Z07:00",
            (false, 1) => "2006-01-02T15:04Z07:00",
            (false, _) => "2006-01-02T15:04:05Z07:00",
        }
    } else if in_location {
        "2006-01-02"
    } else {
        "2006-01-02Z07:00"
    };
    match go_parse(layout, value) {
        Ok(p) => {
            let offset = match p.zone_offset {
                Some(o) => o,
                None => local_offset(),
            };
            let secs = days_from_civil(p.year, p.month, p.day) * 86_400
                + i64::from(p.hour * 3600 + p.min * 60 + p.sec)
                - i64::from(offset);
            Ok(from_unix(secs, p.nsec))
        }
        Err(e) if value.contains('-') => Err(e),
        Err(_) => parse_unix(value),
    }
}

fn unix_nanos(t: SystemTime) -> i128 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_nanos() as i128,
        Err(e) => -(e.duration().as_nanos() as i128),
    }
}

fn from_unix(secs: i64, nanos: u32) -> SystemTime {
    let base = if secs >= 0 {
        UNIX_EPOCH + Duration::from_secs(secs as u64)
    } else {
        UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
    };
    base + Duration::from_nanos(u64::from(nanos))
}

/// Go's `time.FixedZone(reference.Zone())`: the local offset now, for every date.
fn local_offset() -> i32 {
    chrono::Local::now().offset().local_minus_utc()
}

/// `1700000000` or `1700000000.5`: checked by the client (`strconv.ParseInt` of both
/// halves) and then by the daemon (digits only in the fraction, up to 9 kept).
fn parse_unix(value: &str) -> Result<SystemTime, String> {
    let (s, frac) = match value.split_once('.') {
        Some((s, f)) => (s, Some(f)),
        None => (value, None),
    };
    let client_ok = s.parse::<i64>().is_ok() && frac.is_none_or(|f| f.parse::<i64>().is_ok());
    if !client_ok {
        return Err(format!(
            "failed to parse value as time or duration: {}",
            go_strconv_quote(value)
        ));
    }
    let secs: i64 = s.parse().unwrap_or_default();
    let frac = frac.unwrap_or("");
    if let Some((i, c)) = frac.bytes().enumerate().find(|(_, c)| !c.is_ascii_digit()) {
        return Err(format!(
            "invalid timestamp {}: invalid nanoseconds: invalid character '{}' at position {i}",
            go_strconv_quote(value),
            c as char
        ));
    }
    let mut digits = frac.as_bytes()[..frac.len().min(9)].to_vec();
    digits.resize(9, b'0');
    let nanos = digits
        .iter()
        .fold(0u32, |n, d| n * 10 + u32::from(d - b'0'));
    Ok(from_unix(secs, nanos))
}

/// What a successful `go_parse` read.
#[derive(Debug, Default, PartialEq, Eq)]
struct Parsed {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    min: u32,
    sec: u32,
    nsec: u32,
    /// Seconds east of UTC; None: the layout or value had no zone.
    zone_offset: Option<i32>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Elem {
    Year,
    Month,
    Day,
    Hour,
    Minute,
    Second,
    /// `.999999999`: any number of fraction digits, or none.
    Frac9,
    Zone,
}

/// Go's `nextStdChunk` for the elements the layouts above use: the literal before
/// the next element, the element and its layout text, and the rest of the layout.
fn next_elem(layout: &str) -> (&str, Option<(Elem, &str)>, &str) {
    let b = layout.as_bytes();
    for i in 0..b.len() {
        let rest = &layout[i..];
        let found = match b[i] {
            b'2' if rest.starts_with("2006") => Some((Elem::Year, 4)),
            b'0' => match b.get(i + 1) {
                Some(b'1') => Some((Elem::Month, 2)),
                Some(b'2') => Some((Elem::Day, 2)),
                Some(b'4') => Some((Elem::Minute, 2)),
                Some(b'5') => Some((Elem::Second, 2)),
                _ => None,
            },
            b'1' if b.get(i + 1) == Some(&b'5') => Some((Elem::Hour, 2)),
            b'Z' if rest.starts_with("Z07:00") => Some((Elem::Zone, 6)),
            b'.' if rest.starts_with(".999999999") => Some((Elem::Frac9, 10)),
            _ => None,
        };
        if let Some((e, len)) = found {
            return (
                &layout[..i],
                Some((e, &layout[i..i + len])),
                &layout[i + len..],
            );
        }
    }
    (layout, None, "")
}

/// Go's `time.Parse` error text.
fn parse_error(layout: &str, value: &[u8], elem: &str, rest: &[u8], message: &str) -> String {
    if message.is_empty() {
        format!(
            "parsing time {} as {}: cannot parse {} as {}",
            go_time_quote(value),
            go_time_quote(layout.as_bytes()),
            go_time_quote(rest),
            go_time_quote(elem.as_bytes())
        )
    } else {
        format!("parsing time {}{message}", go_time_quote(value))
    }
}

/// Go's `getnum`: one or two digits (`fixed`: exactly two).
fn getnum(s: &[u8], fixed: bool) -> Option<(u32, &[u8])> {
    let digit = |i: usize| {
        s.get(i)
            .filter(|c| c.is_ascii_digit())
            .map(|c| u32::from(c - b'0'))
    };
    let first = digit(0)?;
    match digit(1) {
        Some(second) => Some((first * 10 + second, &s[2..])),
        None if fixed => None,
        None => Some((first, &s[1..])),
    }
}

/// Go's `time.Parse` (general path) for the layouts above.
fn go_parse(layout_all: &str, value_all: &str) -> Result<Parsed, String> {
    let mut p = Parsed {
        month: 1,
        day: 1,
        ..Default::default()
    };
    let mut layout = layout_all;
    let mut value = value_all.as_bytes();
    let err = |elem: &str, rest: &[u8], msg: &str| {
        parse_error(layout_all, value_all.as_bytes(), elem, rest, msg)
    };
    loop {
        let (prefix, elem, suffix) = next_elem(layout);
        // The literal part must match byte for byte.
        let mut lit = prefix.as_bytes();
        while let Some((&c, more)) = lit.split_first() {
            if value.first() != Some(&c) {
                return Err(err(prefix, value, ""));
            }
            value = &value[1..];
            lit = more;
        }
        let Some((elem, elem_str)) = elem else {
            if !value.is_empty() {
                let extra = format!(": extra text: {}", go_time_quote(value));
                return Err(err("", value, &extra));
            }
            break;
        };
        layout = suffix;
        let hold = value;
        let (ok, range, rest) = read_elem(elem, value, &mut p);
        value = rest;
        if let Some(what) = range {
            return Err(err(elem_str, value, &format!(": {what} out of range")));
        }
        if !ok {
            return Err(err(elem_str, hold, ""));
        }
    }
    if p.day < 1 || p.day > days_in(p.month, p.year) {
        return Err(err("", value, ": day out of range"));
    }
    Ok(p)
}

/// Reads one layout element at the start of `value` into `p`: whether it read, the
/// field out of range if one is, and what follows.
fn read_elem<'a>(
    elem: Elem,
    mut value: &'a [u8],
    p: &mut Parsed,
) -> (bool, Option<&'static str>, &'a [u8]) {
    let mut range = None;
    let ok = match elem {
        Elem::Year => match value.get(..4) {
            Some(y) if y.iter().all(u8::is_ascii_digit) => {
                p.year = y.iter().fold(0, |n, d| n * 10 + i64::from(d - b'0'));
                value = &value[4..];
                true
            }
            _ => false,
        },
        Elem::Month | Elem::Day | Elem::Hour | Elem::Minute | Elem::Second => {
            match getnum(value, elem != Elem::Hour) {
                None => false,
                Some((n, rest)) => {
                    value = rest;
                    match elem {
                        Elem::Month => {
                            p.month = n;
                            range = (!(1..=12).contains(&n)).then_some("month");
                        }
                        Elem::Day => p.day = n,
                        Elem::Hour => {
                            p.hour = n;
                            range = (n >= 24).then_some("hour");
                        }
                        Elem::Minute => {
                            p.min = n;
                            range = (n >= 60).then_some("minute");
                        }
                        _ => {
                            p.sec = n;
                            range = (n >= 60).then_some("second");
                        }
                    }
                    true
                }
            }
        }
        Elem::Frac9 => {
            let digits = value
                .iter()
                .skip(1)
                .take_while(|c| c.is_ascii_digit())
                .count();
            if matches!(value.first(), Some(b'.' | b',')) && digits > 0 {
                // Go reads at most 9 digits' worth and ignores the rest.
                let kept = &value[1..1 + digits.min(9)];
                let mut n = kept.iter().fold(0u32, |n, d| n * 10 + u32::from(d - b'0'));
                for _ in kept.len()..9 {
                    n *= 10;
                }
                p.nsec = n;
                value = &value[1 + digits..];
            }
            true
        }
        Elem::Zone => {
            if value.first() == Some(&b'Z') {
                value = &value[1..];
                p.zone_offset = Some(0);
                true
            } else if value.len() < 6 || value[3] != b':' {
                false
            } else {
                let (sign, hh, mm) = (value[0], &value[1..3], &value[4..6]);
                value = &value[6..];
                match (getnum(hh, true), getnum(mm, true)) {
                    (Some((h, _)), Some((m, _))) if matches!(sign, b'+' | b'-') => {
                        if h > 24 {
                            range = Some("time zone offset hour");
                        } else if m > 60 {
                            range = Some("time zone offset minute");
                        }
                        let off = (h * 60 + m) as i32 * 60;
                        p.zone_offset = Some(if sign == b'-' { -off } else { off });
                        true
                    }
                    _ => false,
                }
            }
        }
    };
    (ok, range, value)
}

fn days_in(month: u32, year: i64) -> u32 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 (Howard Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Go's `time.quote`: ASCII as is (`"` and `\` escaped), other bytes as `\xNN`.
fn go_time_quote(s: &[u8]) -> String {
    let mut out = String::from("\"");
    for &c in s {
        if !(b' '..0x80).contains(&c) {
            out.push_str(&format!("\\x{c:02x}"));
        } else {
            if c == b'"' || c == b'\\' {
                out.push('\\');
            }
            out.push(c as char);
        }
    }
    out.push('"');
    out
}

/// Go's `strconv.Quote` (`%q`) for what a command line can hold.
fn go_strconv_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x0b' => out.push_str("\\v"),
            c if (c as u32) < 0x80 && c.is_control() => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unix(value: &str) -> Result<(i64, u32), String> {
        let now = UNIX_EPOCH + Duration::new(1_700_000_000, 700_000_000);
        parse_timestamp(value, now).map(|t| {
            let n = unix_nanos(t);
            (
                n.div_euclid(1_000_000_000) as i64,
                n.rem_euclid(1_000_000_000) as u32,
            )
        })
    }

    #[test]
    fn durations_are_before_now_in_whole_seconds() {
        assert_eq!(unix("10m"), Ok((1_700_000_000 - 600, 0)));
        assert_eq!(unix("1h30m"), Ok((1_700_000_000 - 5400, 0)));
        assert_eq!(unix("-10s"), Ok((1_700_000_010, 0)));
        assert_eq!(unix("1.5s"), Ok((1_699_999_999, 0)));
    }

    #[test]
    fn rfc3339_with_zone() {
        assert_eq!(unix("2023-11-14T22:13:20Z"), Ok((1_700_000_000, 0)));
        assert_eq!(
            unix("2023-11-14T22:13:20.5Z"),
            Ok((1_700_000_000, 500_000_000))
        );
        assert_eq!(
            unix("2023-11-14T22:13:20.123456789123Z"),
            Ok((1_700_000_000, 123_456_789))
        );
        assert_eq!(unix("2023-11-15T00:13:20+02:00"), Ok((1_700_000_000, 0)));
        assert_eq!(unix("2023-11-14T22:13Z"), Ok((1_699_999_980, 0)));
        assert_eq!(unix("2023-11-14T22Z"), Ok((1_699_999_200, 0)));
        assert_eq!(unix("2023-11-14Z"), Ok((1_699_920_000, 0)));
        assert_eq!(unix("2024-02-29T00:00:00Z"), Ok((1_709_164_800, 0)));
        assert_eq!(unix("1969-12-31T23:59:59Z"), Ok((-1, 0)));
    }

    #[test]
    fn without_zone_is_local() {
        let off = i64::from(local_offset());
        assert_eq!(unix("2023-11-14T22:13:20"), Ok((1_700_000_000 - off, 0)));
        assert_eq!(
            unix("2023-11-14T22:13:20.25"),
            Ok((1_700_000_000 - off, 250_000_000))
        );
        assert_eq!(unix("2023-11-14"), Ok((1_699_920_000 - off, 0)));
        assert_eq!(unix("2023-11-14T22"), Ok((1_699_999_200 - off, 0)));
    }

    #[test]
    fn unix_timestamps() {
        assert_eq!(unix("1700000000"), Ok((1_700_000_000, 0)));
        assert_eq!(unix("1700000000.5"), Ok((1_700_000_000, 500_000_000)));
        assert_eq!(unix("1700000000.0000000019"), Ok((1_700_000_000, 1)));
        assert_eq!(unix("0"), Ok((0, 0)));
    }

    #[test]
    fn errors_are_gos() {
        assert_eq!(
            unix("yesterday").unwrap_err(),
            r#"failed to parse value as time or duration: "yesterday""#
        );
        assert_eq!(
            unix("1700000000.").unwrap_err(),
            r#"failed to parse value as time or duration: "1700000000.""#
        );
        assert_eq!(
            unix("2023-13-01").unwrap_err(),
            r#"parsing time "2023-13-01": month out of range"#
        );
        assert_eq!(
            unix("2023-02-30").unwrap_err(),
            r#"parsing time "2023-02-30": day out of range"#
        );
        assert_eq!(
            unix("2023/01/01-").unwrap_err(),
            r#"parsing time "2023/01/01-" as "2006-01-02": cannot parse "/01/01-" as "-""#
        );
        assert_eq!(
            unix("2023-1-01").unwrap_err(),
            r#"parsing time "2023-1-01" as "2006-01-02": cannot parse "1-01" as "01""#
        );
        assert_eq!(
            unix("-5").unwrap_err(),
            r#"parsing time "-5" as "2006-01-02": cannot parse "-5" as "2006""#
        );
        assert_eq!(
            unix("2023-11-14T25:00:00Z").unwrap_err(),
            r#"parsing time "2023-11-14T25:00:00Z": hour out of range"#
        );
        assert_eq!(
            unix("2023-11-14T22:13:20Zjunk").unwrap_err(),
            r#"parsing time "2023-11-14T22:13:20Zjunk": extra text: "junk""#
        );
        assert_eq!(
            unix("2023-11-14T22:13:20+0200").unwrap_err(),
            // docker's colon count takes the seconds' colon for the zone's.
            r#"parsing time "2023-11-14T22:13:20+0200" as "2006-01-02T15:04Z07:00": cannot parse ":20+0200" as "Z07:00""#
        );
        assert_eq!(
            unix("5.+3").unwrap_err(),
            r#"invalid timestamp "5.+3": invalid nanoseconds: invalid character '+' at position 0"#
        );
    }

    fn at(s: &str) -> SystemTime {
        chrono::DateTime::parse_from_rfc3339(s).unwrap().into()
    }

    fn since_may_day(value: &str) -> Result<SystemTime, String> {
        parse_timestamp(value, at("2024-05-01T12:00:00Z"))
    }

    #[test]
    fn durations_count_back_from_now() {
        assert_eq!(since_may_day("10m"), Ok(at("2024-05-01T11:50:00Z")));
        assert_eq!(since_may_day("1h30m"), Ok(at("2024-05-01T10:30:00Z")));
    }

    #[test]
    fn dates_with_zones() {
        assert_eq!(
            since_may_day("2024-01-02T03:04:05Z"),
            Ok(at("2024-01-02T03:04:05Z"))
        );
        assert_eq!(
            since_may_day("2024-01-02T03:04:05.5+02:00"),
            Ok(at("2024-01-02T01:04:05.5Z"))
        );
        assert_eq!(
            since_may_day("2024-01-02T03:04-01:00"),
            Ok(at("2024-01-02T04:04:00Z"))
        );
        assert_eq!(since_may_day("2024-01-02Z"), Ok(at("2024-01-02T00:00:00Z")));
    }

    #[test]
    fn local_dates_use_the_local_zone() {
        // Go's FixedZone of the local offset now, for every date.
        let want = at("2024-01-02T03:00:00Z");
        let off = i64::from(local_offset());
        let want = if off >= 0 {
            want - Duration::from_secs(off as u64)
        } else {
            want + Duration::from_secs(off.unsigned_abs())
        };
        assert_eq!(since_may_day("2024-01-02T03"), Ok(want));
    }

    #[test]
    fn unix_seconds_and_errors() {
        assert_eq!(since_may_day("1700000000"), Ok(at("2023-11-14T22:13:20Z")));
        assert_eq!(
            since_may_day("1700000000.25"),
            Ok(at("2023-11-14T22:13:20.25Z"))
        );
        for bad in ["2024-13-01", "abc", "", "1.x"] {
            assert!(since_may_day(bad).is_err(), "{bad:?}");
        }
    }
}
