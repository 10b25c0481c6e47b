//! Parsers for the cgroup placement and block I/O flags: `--cgroup-parent`,
//! `--cgroupns`, `--userns`, `--device-read-bps` and its kin, `--blkio-weight-device`,
//! `--device-cgroup-rule` (docker's syntax and messages, docker cli `opts/`).

use super::{bad, parse_ram_in_bytes, NamespaceMode, OptionsError};

/// A `--device-{read,write}-{bps,iops}` entry: a host device path and a rate (bytes or
/// operations per second). The engine turns the path into major:minor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThrottleDevice {
    pub path: String,
    pub rate: u64,
}

/// A `--blkio-weight-device` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeightDevice {
    pub path: String,
    pub weight: u16,
}

/// The four throttles, in docker's field order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlkioThrottles {
    pub read_bps: Vec<ThrottleDevice>,
    pub write_bps: Vec<ThrottleDevice>,
    pub read_iops: Vec<ThrottleDevice>,
    pub write_iops: Vec<ThrottleDevice>,
}

impl BlkioThrottles {
    pub fn is_empty(&self) -> bool {
        self.read_bps.is_empty()
            && self.write_bps.is_empty()
            && self.read_iops.is_empty()
            && self.write_iops.is_empty()
    }
}

/// A `--device-cgroup-rule` such as `c 1:3 mr`; None for a `*` number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceCgroupRule {
    /// As typed (what `inspect` shows).
    pub rule: String,
    /// 'a', 'b' or 'c'.
    pub typ: char,
    pub major: Option<i64>,
    pub minor: Option<i64>,
    /// A non-empty subset of "rwm" (repeats allowed, as docker).
    pub access: String,
}

/// `DEVICE:VALUE` with docker's first checks (`ValidateThrottleBpsDevice`...).
fn split_device<'a>(flag: &'static str, s: &'a str) -> Result<(&'a str, &'a str), OptionsError> {
    let (path, value) = s
        .split_once(':')
        .filter(|(p, _)| !p.is_empty())
        .ok_or_else(|| bad(flag, s, format!("bad format: {s}")))?;
    if !path.starts_with("/dev/") {
        return Err(bad(flag, s, format!("bad format for device path: {s}")));
    }
    Ok((path, value))
}

/// `--device-read-bps` / `--device-write-bps`: `DEVICE:RATE`, RATE in bytes with
/// docker's units (`1mb`, `512k`).
pub fn parse_throttle_bps(flag: &'static str, s: &str) -> Result<ThrottleDevice, OptionsError> {
    let (path, value) = split_device(flag, s)?;
    let rate = parse_ram_in_bytes(value).map_err(|_| {
        bad(
            flag,
            s,
            format!(
                "invalid rate for device: {s}. The correct format is <device-path>:<number>[<unit>]. \
                 Number must be a positive integer. Unit is optional and can be kb, mb, or gb"
            ),
        )
    })?;
    Ok(ThrottleDevice {
        path: path.to_string(),
        rate: rate as u64,
    })
}

/// `--device-read-iops` / `--device-write-iops`: `DEVICE:N`.
pub fn parse_throttle_iops(flag: &'static str, s: &str) -> Result<ThrottleDevice, OptionsError> {
    let (path, value) = split_device(flag, s)?;
    let rate = value.parse::<u64>().map_err(|_| {
        bad(
            flag,
            s,
            format!(
                "invalid rate for device: {s}. The correct format is <device-path>:<number>. \
                 Number must be a positive integer"
            ),
        )
    })?;
    Ok(ThrottleDevice {
        path: path.to_string(),
        rate,
    })
}

/// `--blkio-weight-device DEVICE:WEIGHT`, WEIGHT 10..=1000 (0: the device's default).
pub fn parse_weight_device(s: &str) -> Result<WeightDevice, OptionsError> {
    const FLAG: &str = "--blkio-weight-device";
    let (path, value) = split_device(FLAG, s)?;
    let weight = value
        .parse::<u16>()
        .ok()
        .filter(|w| *w == 0 || (10..=1000).contains(w))
        .ok_or_else(|| {
            bad(
                FLAG,
                s,
                format!("invalid weight for device: {s} (the weight is 10 to 1000)"),
            )
        })?;
    Ok(WeightDevice {
        path: path.to_string(),
        weight,
    })
}

/// `--device-cgroup-rule 'TYPE MAJOR:MINOR ACCESS'`: TYPE `a`, `b` or `c`, numbers or
/// `*`, ACCESS one to three of `rwm` (docker's `^[acb] ([0-9]+|\*):([0-9]+|\*) [rwm]{1,3}$`).
pub fn parse_device_cgroup_rule(s: &str) -> Result<DeviceCgroupRule, OptionsError> {
    let invalid = || {
        bad(
            "--device-cgroup-rule",
            s,
            format!("invalid device cgroup format '{s}' (expected TYPE MAJOR:MINOR ACCESS, e.g. 'c 1:3 mr': TYPE a, b or c, numbers or *, ACCESS of r, w, m)"),
        )
    };
    let parts: Vec<&str> = s.split(' ').collect();
    let [typ, numbers, access] = parts[..] else {
        return Err(invalid());
    };
    let typ = match typ {
        "a" | "b" | "c" => typ.chars().next().unwrap_or('a'),
        _ => return Err(invalid()),
    };
    let number = |n: &str| -> Result<Option<i64>, OptionsError> {
        if n == "*" {
            return Ok(None);
        }
        if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid());
        }
        n.parse().map(Some).map_err(|_| invalid())
    };
    let (major, minor) = numbers.split_once(':').ok_or_else(invalid)?;
    let (major, minor) = (number(major)?, number(minor)?);
    if access.is_empty() || access.len() > 3 || !access.bytes().all(|b| b"rwm".contains(&b)) {
        return Err(invalid());
    }
    Ok(DeviceCgroupRule {
        rule: s.to_string(),
        typ,
        major,
        minor,
        access: access.to_string(),
    })
}

/// `--cgroup-parent`: the cgroup the container's cgroup is made in, in every
/// hierarchy. Returned absolute and clean (`/a/b`, or `/` for the root). A relative
/// path is taken from the hierarchy's root, as docker's documentation describes it
/// ("relative to the cgroups path of the init process"): coracle has no daemon whose
/// own cgroup could anchor it, and the caller's (a login session's scope) would not do.
/// `..` is refused: the container's cgroup must stay below the parent named.
pub fn parse_cgroup_parent(s: &str) -> Result<String, OptionsError> {
    const FLAG: &str = "--cgroup-parent";
    let mut parts = Vec::new();
    for part in s.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                return Err(bad(
                    FLAG,
                    s,
                    "a cgroup parent cannot contain '..': name a path below the cgroup root",
                ))
            }
            _ if part.contains('\0') || part.contains(':') => {
                return Err(bad(
                    FLAG,
                    s,
                    "a cgroup name cannot contain ':' or NUL (systemd slice notation is not supported: coracle manages cgroupfs paths)",
                ))
            }
            _ if part.len() > 255 => {
                return Err(bad(FLAG, s, "a cgroup name is at most 255 bytes"))
            }
            _ => parts.push(part),
        }
    }
    Ok(format!("/{}", parts.join("/")))
}

/// `--cgroupns host|private` (docker: "--cgroupns: invalid CGROUP mode").
pub fn parse_cgroupns(s: &str) -> Result<NamespaceMode, OptionsError> {
    match s {
        "" | "private" => Ok(NamespaceMode::Private),
        "host" => Ok(NamespaceMode::Host),
        _ => Err(bad(
            "--cgroupns",
            s,
            "invalid CGROUP mode: use host or private",
        )),
    }
}

/// `--userns`: only `host` (or empty), which is what a rootful container gets: docker
/// accepts nothing else either, and the remapping its daemon can be configured for
/// arrives here with rootless mode. Returns whether `host` was asked.
pub fn parse_userns(s: &str) -> Result<bool, OptionsError> {
    match s {
        "" => Ok(false),
        "host" => Ok(true),
        _ => Err(bad(
            "--userns",
            s,
            "invalid USER mode: only 'host' is supported (containers run in the host's user namespace; user-namespace remapping is not supported yet, it arrives with rootless mode)",
        )),
    }
}

/// Whether the host can disable a cgroup's OOM killer: cgroup v1's
/// `memory.oom_control`; cgroup v2 has no such knob (docker discards the flag there).
pub fn host_has_oom_kill_disable() -> bool {
    std::path::Path::new("/sys/fs/cgroup/memory/memory.oom_control").exists()
}

/// Whether the host's blkio (v1) or io (v2) controller takes per-device throttles.
pub fn host_has_blkio_throttle() -> bool {
    std::path::Path::new("/sys/fs/cgroup/blkio/blkio.throttle.read_bps_device").exists()
        || std::fs::read_to_string("/sys/fs/cgroup/cgroup.controllers")
            .is_ok_and(|c| c.split_whitespace().any(|c| c == "io"))
}

/// Whether the host takes per-device weights, checked as docker's daemon checks it
/// (the knob at the hierarchy's root); docker discards the flag elsewhere.
pub fn host_has_blkio_weight_device() -> bool {
    [
        "/sys/fs/cgroup/blkio/blkio.weight_device",
        "/sys/fs/cgroup/blkio/blkio.bfq.weight_device",
        "/sys/fs/cgroup/io.weight",
        "/sys/fs/cgroup/io.bfq.weight",
    ]
    .iter()
    .any(|p| std::path::Path::new(p).exists())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttles_and_weights_parse_as_docker() {
        let t = parse_throttle_bps("--device-read-bps", "/dev/sda:1mb").unwrap();
        assert_eq!((t.path.as_str(), t.rate), ("/dev/sda", 1 << 20));
        assert_eq!(
            parse_throttle_iops("--device-write-iops", "/dev/sda:100")
                .unwrap()
                .rate,
            100
        );
        for (s, want) in [
            ("/dev/sda", "bad format: /dev/sda"),
            (":1mb", "bad format: :1mb"),
            ("sda:1mb", "bad format for device path: sda:1mb"),
            ("/dev/sda:lots", "invalid rate for device: /dev/sda:lots"),
        ] {
            let e = parse_throttle_bps("--device-read-bps", s)
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{s}: {e}");
            assert!(e.contains("\"--device-read-bps\" flag"), "{e}");
        }
        assert!(parse_throttle_iops("--device-read-iops", "/dev/sda:1k").is_err());
        assert!(parse_throttle_iops("--device-read-iops", "/dev/sda:-1").is_err());
        assert_eq!(parse_weight_device("/dev/sda:300").unwrap().weight, 300);
        assert_eq!(parse_weight_device("/dev/sda:0").unwrap().weight, 0);
        for s in ["/dev/sda:5", "/dev/sda:1001", "/dev/sda:x", "sda:300"] {
            assert!(parse_weight_device(s).is_err(), "{s}");
        }
    }

    #[test]
    fn device_cgroup_rules_follow_docker_syntax() {
        let r = parse_device_cgroup_rule("c 1:3 mr").unwrap();
        assert_eq!(
            (r.typ, r.major, r.minor, r.access.as_str()),
            ('c', Some(1), Some(3), "mr")
        );
        let r = parse_device_cgroup_rule("a *:* rwm").unwrap();
        assert_eq!((r.typ, r.major, r.minor), ('a', None, None));
        let r = parse_device_cgroup_rule("b 8:* w").unwrap();
        assert_eq!((r.major, r.minor), (Some(8), None));
        for s in [
            "",
            "c 1:3",
            "x 1:3 r",
            "c 1 r",
            "c 1:3 rx",
            "c 1:3 rwmr",
            "c -1:3 r",
            "c  1:3 r",
            "c 1:3 r ",
            "c 99999999999999999999:1 r",
        ] {
            let e = parse_device_cgroup_rule(s).unwrap_err().to_string();
            assert!(e.contains("invalid device cgroup format"), "{s}: {e}");
        }
    }

    #[test]
    fn cgroup_parent_is_made_absolute_and_kept_below_its_root() {
        assert_eq!(parse_cgroup_parent("/ci/jobs").unwrap(), "/ci/jobs");
        assert_eq!(parse_cgroup_parent("ci//jobs/").unwrap(), "/ci/jobs");
        assert_eq!(parse_cgroup_parent("./ci").unwrap(), "/ci");
        assert_eq!(parse_cgroup_parent("/").unwrap(), "/");
        for s in ["../x", "/a/../../b", "a/..", "a:b", "x.slice:docker:y"] {
            let e = parse_cgroup_parent(s).unwrap_err().to_string();
            assert!(e.contains("--cgroup-parent"), "{s}: {e}");
        }
    }

    #[test]
    fn cgroupns_and_userns_modes() {
        assert_eq!(parse_cgroupns("host").unwrap(), NamespaceMode::Host);
        assert_eq!(parse_cgroupns("private").unwrap(), NamespaceMode::Private);
        assert!(parse_cgroupns("container:x")
            .unwrap_err()
            .to_string()
            .contains("invalid CGROUP mode"));
        assert!(parse_userns("host").unwrap());
        assert!(!parse_userns("").unwrap());
        let e = parse_userns("1000:1000").unwrap_err().to_string();
        assert!(e.contains("--userns") && e.contains("rootless"), "{e}");
    }
}
