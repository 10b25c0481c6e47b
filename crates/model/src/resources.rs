//! Parsers for the resource flags: sizes, CPUs, pids, ulimits, devices.

use super::{bad, OptionsError};
use crate::defaults;

/// Docker's `RAMInBytes` (go-units): a decimal number, an optional space, then an
/// optional unit `b`, `k`, `m`, `g`, `t`, `p` (case-insensitive, binary multiples) that
/// may be followed by `b` or `ib` (`512m`, `1g`, `1.5g`, `10KiB`, `100 MB`).
pub fn parse_ram_in_bytes(s: &str) -> Result<i64, String> {
    let sep = match s.rfind(|c: char| c.is_ascii_digit() || c == '.' || c == ' ') {
        Some(i) => i,
        None => return Err(format!("invalid size: '{s}'")),
    };
    let (num, sfx) = if s.as_bytes()[sep] == b' ' {
        (&s[..sep], &s[sep + 1..])
    } else {
        (&s[..sep + 1], &s[sep + 1..])
    };
    if num.starts_with('-') || num.starts_with('+') {
        return Err(format!("invalid size: '{s}'"));
    }
    let size: f64 = num
        .parse()
        .map_err(|_| format!("cannot parse \"{num}\" as a number"))?;
    if !size.is_finite() || size < 0.0 {
        return Err(format!("invalid size: '{s}'"));
    }
    if sfx.is_empty() {
        return Ok(size as i64);
    }
    let lower = sfx.to_ascii_lowercase();
    let bad_suffix = || format!("invalid suffix: '{lower}'");
    if lower.len() > 3 {
        return Err(bad_suffix());
    }
    let first = lower.as_bytes()[0];
    if first == b'b' {
        return if lower.len() == 1 {
            Ok(size as i64)
        } else {
            Err(bad_suffix())
        };
    }
    let mul: f64 = match first {
        b'k' => 1024f64,
        b'm' => 1024f64.powi(2),
        b'g' => 1024f64.powi(3),
        b't' => 1024f64.powi(4),
        b'p' => 1024f64.powi(5),
        _ => return Err(bad_suffix()),
    };
    match lower.len() {
        2 if &lower[1..] != "b" => return Err(bad_suffix()),
        3 if &lower[1..] != "ib" => return Err(bad_suffix()),
        _ => {}
    }
    let bytes = size * mul;
    if bytes >= i64::MAX as f64 {
        return Err(format!("invalid size: '{s}' is too large"));
    }
    Ok(bytes as i64)
}

/// `-m, --memory`: bytes (0 = no limit, as docker).
pub fn parse_memory(s: &str) -> Result<i64, OptionsError> {
    parse_ram_in_bytes(s).map_err(|e| bad("-m, --memory", s, e))
}

/// `--memory-swap`: memory plus swap in bytes, or `-1` for unlimited swap.
pub fn parse_memory_swap(s: &str) -> Result<i64, OptionsError> {
    if s == "-1" {
        return Ok(-1);
    }
    parse_ram_in_bytes(s).map_err(|e| bad("--memory-swap", s, e))
}

/// `--shm-size`: bytes of the /dev/shm tmpfs.
pub fn parse_shm_size(s: &str) -> Result<u64, OptionsError> {
    let v = parse_ram_in_bytes(s).map_err(|e| bad("--shm-size", s, e))?;
    Ok(v as u64)
}

/// A CFS quota over docker's fixed 100ms period, from `--cpus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuQuota {
    /// `--cpus` in billionths of a CPU (docker's NanoCPUs).
    pub nano_cpus: i64,
    pub quota: i64,
    pub period: u64,
}

/// `--cpus`: a decimal number of CPUs (`1.5`), at most nine decimals (docker:
/// "value is too precise"). `0` means no limit (None).
pub fn parse_cpus(s: &str) -> Result<Option<CpuQuota>, OptionsError> {
    const FLAG: &str = "--cpus";
    let t = s.trim();
    let rational_err = || bad(FLAG, s, format!("failed to parse {s} as a rational number"));
    let (neg, t) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let (int, frac) = match t.split_once('.') {
        Some((i, f)) => (i, f),
        None => (t, ""),
    };
    if (int.is_empty() && frac.is_empty())
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(rational_err());
    }
    let frac = frac.trim_end_matches('0');
    if frac.len() > 9 {
        return Err(bad(FLAG, s, "value is too precise"));
    }
    let int_v: i64 = if int.is_empty() {
        0
    } else {
        int.parse()
            .map_err(|_| bad(FLAG, s, "value is too large"))?
    };
    let frac_v: i64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<9}").parse().map_err(|_| rational_err())?
    };
    let nano = int_v
        .checked_mul(1_000_000_000)
        .and_then(|v| v.checked_add(frac_v))
        .ok_or_else(|| bad(FLAG, s, "value is too large"))?;
    if neg && nano != 0 {
        return Err(bad(FLAG, s, "range of CPUs starts at 0.01"));
    }
    if nano == 0 {
        return Ok(None);
    }
    if nano < 10_000_000 {
        return Err(bad(FLAG, s, "range of CPUs starts at 0.01"));
    }
    Ok(Some(CpuQuota::from_nano_cpus(nano)))
}

impl CpuQuota {
    /// docker's NanoCPUs as a CFS quota over its fixed 100ms period.
    pub fn from_nano_cpus(nano_cpus: i64) -> CpuQuota {
        let period = defaults::DEFAULT_CPU_PERIOD;
        CpuQuota {
            nano_cpus,
            quota: nano_cpus / (1_000_000_000 / period as i64),
            period,
        }
    }
}

/// `-c, --cpu-shares`: a relative weight (0 = default). Values below 2 are raised to
/// 2 by the kernel, as docker documents.
pub fn parse_cpu_shares(s: &str) -> Result<u64, OptionsError> {
    let v: i64 = s
        .trim()
        .parse()
        .map_err(|_| bad("-c, --cpu-shares", s, "expected an integer"))?;
    if v < 0 {
        return Err(bad(
            "-c, --cpu-shares",
            s,
            "must be a positive integer (0 keeps the default weight)",
        ));
    }
    Ok(v as u64)
}

/// `--cpuset-cpus` (and `--cpuset-mems`): a list like `0-2,4`. Returns the list
/// unchanged after checking its syntax (docker: "Invalid value ... for cpuset cpus").
pub fn parse_cpuset(s: &str) -> Result<String, OptionsError> {
    parse_cpuset_list("--cpuset-cpus", "cpus", s)
}

/// `--cpuset-mems`: memory nodes, same syntax as `--cpuset-cpus`.
pub fn parse_cpuset_mems(s: &str) -> Result<String, OptionsError> {
    parse_cpuset_list("--cpuset-mems", "mems", s)
}

fn parse_cpuset_list(flag: &'static str, what: &str, s: &str) -> Result<String, OptionsError> {
    let t = s.trim();
    if t.is_empty() {
        return Err(bad(flag, s, "expected a list of CPUs such as 0-2,4"));
    }
    for part in t.split(',') {
        let num = |x: &str| -> Result<u32, OptionsError> {
            if x.is_empty() || !x.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad(
                    flag,
                    s,
                    format!("invalid value {s} for cpuset {what}: '{part}' is not a CPU number or range like 0-2"),
                ));
            }
            x.parse()
                .map_err(|_| bad(flag, s, format!("CPU number {x} is too large")))
        };
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (num(a)?, num(b)?);
                if b < a {
                    return Err(bad(
                        flag,
                        s,
                        format!(
                            "invalid value {s} for cpuset {what}: range {part} ends before it starts"
                        ),
                    ));
                }
            }
            None => {
                num(part)?;
            }
        }
    }
    Ok(t.to_string())
}

/// `--pids-limit`: `None` for unlimited (docker: 0 or -1 mean unlimited).
pub fn parse_pids_limit(s: &str) -> Result<Option<i64>, OptionsError> {
    let v = pids_integer(s)?;
    Ok(if v <= 0 { None } else { Some(v) })
}

/// `update --pids-limit`: docker's CLI reads 0 as "leave it" (None) and any negative
/// value as unlimited (`Some(-1)`).
pub fn parse_pids_limit_update(s: &str) -> Result<Option<i64>, OptionsError> {
    Ok(match pids_integer(s)? {
        0 => None,
        v if v < 0 => Some(-1),
        v => Some(v),
    })
}

fn pids_integer(s: &str) -> Result<i64, OptionsError> {
    s.trim()
        .parse()
        .map_err(|_| bad("--pids-limit", s, "expected an integer (-1 for unlimited)"))
}

/// `--cpu-period` / `--cpu-quota`: CFS microseconds as an integer; the ranges are
/// checked across flags in [`super::ContainerSpec::validate`], as docker's daemon does.
pub fn parse_cpu_cfs(flag: &'static str, s: &str) -> Result<i64, OptionsError> {
    s.trim().parse().map_err(|_| {
        bad(
            flag,
            s,
            format!("strconv.ParseInt: parsing \"{s}\": invalid syntax"),
        )
    })
}

/// `--memory-reservation`: a soft limit in bytes (0 = none).
pub fn parse_memory_reservation(s: &str) -> Result<i64, OptionsError> {
    parse_ram_in_bytes(s).map_err(|e| bad("--memory-reservation", s, e))
}

/// `--memory-swappiness`: 0..=100, or -1 for the kernel's (None), as docker.
pub fn parse_memory_swappiness(s: &str) -> Result<Option<u64>, OptionsError> {
    const FLAG: &str = "--memory-swappiness";
    let v: i64 = s.trim().parse().map_err(|_| {
        bad(
            FLAG,
            s,
            format!("strconv.ParseInt: parsing \"{s}\": invalid syntax"),
        )
    })?;
    match v {
        -1 => Ok(None),
        0..=100 => Ok(Some(v as u64)),
        _ => Err(bad(
            FLAG,
            s,
            format!("Invalid value: {v}, valid memory swappiness range is 0-100"),
        )),
    }
}

/// Whether the host's memory cgroup has a swappiness knob (cgroup v1 only; docker
/// discards the flag with a warning elsewhere).
pub fn host_has_memory_swappiness() -> bool {
    std::path::Path::new("/sys/fs/cgroup/memory/memory.swappiness").exists()
}

/// `--blkio-weight`: 10..=1000, 0 for none (docker's range and message).
pub fn parse_blkio_weight(s: &str) -> Result<Option<u16>, OptionsError> {
    const FLAG: &str = "--blkio-weight";
    let v: u16 = s.trim().parse().map_err(|_| {
        bad(
            FLAG,
            s,
            format!("strconv.ParseUint: parsing \"{s}\": invalid syntax"),
        )
    })?;
    match v {
        0 => Ok(None),
        10..=1000 => Ok(Some(v)),
        _ => Err(bad(FLAG, s, "Range of blkio weight is from 10 to 1000")),
    }
}

/// Whether the host's blkio cgroup takes a weight (CFQ or BFQ on v1, io.weight or
/// io.bfq.weight on v2); docker discards the flag with a warning elsewhere.
pub fn host_has_blkio_weight() -> bool {
    [
        "/sys/fs/cgroup/blkio/blkio.weight",
        "/sys/fs/cgroup/blkio/blkio.bfq.weight",
        "/sys/fs/cgroup/io.weight",
        "/sys/fs/cgroup/io.bfq.weight",
    ]
    .iter()
    .any(|p| std::path::Path::new(p).exists())
}

/// docker's warning when `--blkio-weight` is dropped (the host has no weight knob).
pub const BLKIO_WEIGHT_DISCARDED: &str = "WARNING: Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded.";

/// docker's warning when a memory limit goes without its swap limit (no swap
/// accounting: [`host_has_swap_limit`]).
pub const SWAP_LIMIT_DISCARDED: &str = "WARNING: Your kernel does not support swap limit capabilities or the cgroup is not mounted. Memory limited without swap.";

/// Whether the host's memory cgroup limits swap (moby's sysinfo `SwapLimit`): v1
/// needs swap accounting (`memory.memsw.limit_in_bytes`); on v2, docker looks for
/// `memory.swap.max` in its own cgroup. Without it docker limits memory only.
pub fn host_has_swap_limit() -> bool {
    let v1 = std::path::Path::new("/sys/fs/cgroup/memory");
    if v1.is_dir() {
        return v1.join("memory.memsw.limit_in_bytes").exists();
    }
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    own.lines()
        .find_map(|l| l.strip_prefix("0::"))
        .is_some_and(|g| {
            std::path::Path::new("/sys/fs/cgroup")
                .join(g.trim_start_matches('/'))
                .join("memory.swap.max")
                .exists()
        })
}

/// The CPUs the host offers containers, as a cpuset list; None when unknown.
pub fn host_cpuset_cpus() -> Option<String> {
    [
        "/sys/fs/cgroup/cpuset/cpuset.cpus",
        "/sys/fs/cgroup/cpuset.cpus.effective",
        "/sys/devices/system/cpu/online",
    ]
    .iter()
    .find_map(|p| std::fs::read_to_string(p).ok())
    .map(|s| s.trim().to_string())
    .filter(|s| !s.is_empty())
}

/// The memory nodes the host offers, as a cpuset list; None when unknown.
pub fn host_cpuset_mems() -> Option<String> {
    [
        "/sys/fs/cgroup/cpuset/cpuset.mems",
        "/sys/fs/cgroup/cpuset.mems.effective",
        "/sys/devices/system/node/online",
    ]
    .iter()
    .find_map(|p| std::fs::read_to_string(p).ok())
    .map(|s| s.trim().to_string())
    .filter(|s| !s.is_empty())
}

/// The numbers a checked cpuset list names.
pub fn cpuset_members(list: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        if let (Ok(a), Ok(b)) = (a.parse::<u32>(), b.parse::<u32>()) {
            // A huge range is not expanded (docker caps the same way, CVE-2018-20699).
            out.extend((a..=b).take(8192));
        }
    }
    out
}

/// `--oom-score-adj`: the kernel's OOM score adjustment, -1000..=1000 (docker's range
/// and message).
pub fn parse_oom_score_adj(s: &str) -> Result<i32, OptionsError> {
    const FLAG: &str = "--oom-score-adj";
    let v: i64 = s.trim().parse().map_err(|_| {
        bad(
            FLAG,
            s,
            format!("strconv.ParseInt: parsing \"{s}\": invalid syntax"),
        )
    })?;
    if !(-1000..=1000).contains(&v) {
        return Err(bad(
            FLAG,
            s,
            format!("Invalid value {v}, range for oom score adj is [-1000, 1000]"),
        ));
    }
    Ok(v as i32)
}

/// One `--ulimit`, with the rlimit it sets. Docker's `-1` (unlimited) becomes
/// `u64::MAX` (RLIM_INFINITY).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ulimit {
    /// docker's name, e.g. `nofile`.
    pub name: String,
    /// the rlimit, e.g. `RLIMIT_NOFILE`.
    pub rlimit: &'static str,
    pub soft: u64,
    pub hard: u64,
}

/// `--ulimit name=soft[:hard]` (hard defaults to soft), names as docker
/// (`nofile`, `nproc`, `core`, `memlock`, `stack`, ...).
pub fn parse_ulimit(s: &str) -> Result<Ulimit, OptionsError> {
    const FLAG: &str = "--ulimit";
    let (name, limits) = s.split_once('=').ok_or_else(|| {
        bad(
            FLAG,
            s,
            format!("invalid ulimit argument: {s} (expected NAME=SOFT[:HARD])"),
        )
    })?;
    let rlimit = defaults::ulimit_rlimit(name).ok_or_else(|| {
        let names: Vec<&str> = defaults::ULIMIT_NAMES.iter().map(|(n, _)| *n).collect();
        bad(
            FLAG,
            s,
            format!("invalid ulimit type: {name} (known: {})", names.join(", ")),
        )
    })?;
    let (soft_s, hard_s) = match limits.split_once(':') {
        Some((a, b)) => (a, Some(b)),
        None => (limits, None),
    };
    let num = |x: &str| -> Result<i64, OptionsError> {
        x.parse().map_err(|_| {
            bad(
                FLAG,
                s,
                format!("invalid ulimit value {x:?}: expected an integer (-1 for unlimited)"),
            )
        })
    };
    let soft = num(soft_s)?;
    let hard = match hard_s {
        Some(h) => num(h)?,
        None => soft,
    };
    let as_u = |v: i64| if v < 0 { u64::MAX } else { v as u64 };
    if soft != -1 && hard != -1 && soft > hard {
        return Err(bad(
            FLAG,
            s,
            format!("ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}"),
        ));
    }
    if hard != -1 && soft == -1 {
        return Err(bad(
            FLAG,
            s,
            format!(
                "ulimit soft limit must be less than or equal to hard limit: unlimited > {hard}"
            ),
        ));
    }
    Ok(Ulimit {
        name: name.to_string(),
        rlimit,
        soft: as_u(soft),
        hard: as_u(hard),
    })
}

/// One `--device HOST[:CONTAINER[:PERMS]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceMapping {
    pub host_path: String,
    pub container_path: String,
    /// a non-empty subset of `rwm`.
    pub permissions: String,
}

fn valid_device_mode(m: &str) -> bool {
    !m.is_empty() && m.len() <= 3 && m.chars().all(|c| matches!(c, 'r' | 'w' | 'm')) && {
        let mut seen = [false; 3];
        m.chars().all(|c| {
            let i = match c {
                'r' => 0,
                'w' => 1,
                _ => 2,
            };
            !std::mem::replace(&mut seen[i], true)
        })
    }
}

/// `--device`: docker's rules — `HOST`, `HOST:CONTAINER`, `HOST:PERMS`,
/// `HOST:CONTAINER:PERMS`; permissions default to `rwm`; paths must be absolute.
pub fn parse_device(s: &str) -> Result<DeviceMapping, OptionsError> {
    const FLAG: &str = "--device";
    let parts: Vec<&str> = s.split(':').collect();
    let (host, ctr, perms) = match parts.as_slice() {
        [h] => (*h, *h, "rwm"),
        [h, x] if valid_device_mode(x) => (*h, *h, *x),
        [h, c] => (*h, *c, "rwm"),
        [h, c, p] => {
            if !valid_device_mode(p) {
                return Err(bad(
                    FLAG,
                    s,
                    format!("invalid device mode: {p} (use a combination of r, w and m)"),
                ));
            }
            (*h, *c, *p)
        }
        _ => return Err(bad(FLAG, s, format!("invalid device specification: {s}"))),
    };
    if host.is_empty() || ctr.is_empty() {
        return Err(bad(FLAG, s, format!("invalid device specification: {s}")));
    }
    if !host.starts_with('/') {
        return Err(bad(FLAG, s, format!("{host} is not an absolute path")));
    }
    if !ctr.starts_with('/') {
        return Err(bad(FLAG, s, format!("{ctr} is not an absolute path")));
    }
    Ok(DeviceMapping {
        host_path: host.to_string(),
        container_path: ctr.to_string(),
        permissions: perms.to_string(),
    })
}

/// Resource limits, already defaulted as docker does (see
/// [`crate::ContainerSpec::resources`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources {
    /// bytes.
    pub memory: Option<i64>,
    /// memory + swap in bytes, -1 unlimited.
    pub memory_swap: Option<i64>,
    pub cpu_quota: Option<i64>,
    pub cpu_period: Option<u64>,
    pub cpu_shares: Option<u64>,
    pub cpuset_cpus: Option<String>,
    /// None = unlimited.
    pub pids_limit: Option<i64>,
    /// soft limit in bytes.
    pub memory_reservation: Option<i64>,
    pub memory_swappiness: Option<u64>,
    pub cpuset_mems: Option<String>,
    pub blkio_weight: Option<u16>,
    /// `--blkio-weight-device`: the value is the weight.
    pub blkio_weight_device: Vec<BlkioDevice>,
    /// `--device-read-bps` ... `--device-write-iops`.
    pub blkio_read_bps: Vec<BlkioDevice>,
    pub blkio_write_bps: Vec<BlkioDevice>,
    pub blkio_read_iops: Vec<BlkioDevice>,
    pub blkio_write_iops: Vec<BlkioDevice>,
    /// `--oom-kill-disable` (cgroup v1 only; the CLI drops it elsewhere).
    pub disable_oom_killer: bool,
    /// `--device-cgroup-rule`s: type ('a', 'b', 'c'), major, minor (None: any),
    /// access; allowed after the default rules (not with `privileged`).
    pub device_cgroup_rules: Vec<(char, Option<i64>, Option<i64>, String)>,
}

/// A block device (host major:minor) and a rate or weight for it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BlkioDevice {
    pub major: i64,
    pub minor: i64,
    pub value: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ram_in_bytes_follows_go_units() {
        assert_eq!(parse_ram_in_bytes("512m"), Ok(512 * 1024 * 1024));
        assert_eq!(parse_ram_in_bytes("1g"), Ok(1 << 30));
        assert_eq!(parse_ram_in_bytes("1G"), Ok(1 << 30));
        assert_eq!(parse_ram_in_bytes("1.5g"), Ok(1610612736));
        assert_eq!(parse_ram_in_bytes("10KiB"), Ok(10240));
        assert_eq!(parse_ram_in_bytes("100 MB"), Ok(100 << 20));
        assert_eq!(parse_ram_in_bytes("32"), Ok(32));
        assert_eq!(parse_ram_in_bytes("32b"), Ok(32));
        assert_eq!(parse_ram_in_bytes("1t"), Ok(1 << 40));
        assert_eq!(parse_ram_in_bytes("12x"), Err("invalid suffix: 'x'".into()));
        assert_eq!(
            parse_ram_in_bytes("1gb2"),
            Err("cannot parse \"1gb2\" as a number".into())
        );
        assert_eq!(parse_ram_in_bytes("-1"), Err("invalid size: '-1'".into()));
        assert_eq!(parse_ram_in_bytes("m"), Err("invalid size: 'm'".into()));
        assert_eq!(
            parse_ram_in_bytes("1kbb"),
            Err("invalid suffix: 'kbb'".into())
        );
        assert_eq!(
            parse_ram_in_bytes("1kx"),
            Err("invalid suffix: 'kx'".into())
        );
    }

    #[test]
    fn memory_errors_name_the_flag() {
        assert_eq!(
            parse_memory("12x").unwrap_err().to_string(),
            "invalid argument \"12x\" for \"-m, --memory\" flag: invalid suffix: 'x'"
        );
        assert_eq!(parse_memory_swap("-1").unwrap(), -1);
        assert_eq!(
            parse_memory_swap("-2").unwrap_err().to_string(),
            "invalid argument \"-2\" for \"--memory-swap\" flag: invalid size: '-2'"
        );
        assert_eq!(parse_shm_size("64m").unwrap(), 64 << 20);
        assert!(parse_shm_size("-1").is_err());
    }

    #[test]
    fn cpus_become_quota_over_100ms() {
        let q = parse_cpus("1.5").unwrap().unwrap();
        assert_eq!(
            (q.nano_cpus, q.quota, q.period),
            (1_500_000_000, 150_000, 100_000)
        );
        let q = parse_cpus("0.5").unwrap().unwrap();
        assert_eq!(q.quota, 50_000);
        let q = parse_cpus(".25").unwrap().unwrap();
        assert_eq!(q.quota, 25_000);
        assert_eq!(parse_cpus("2").unwrap().unwrap().quota, 200_000);
        assert_eq!(parse_cpus("0").unwrap(), None);
        assert_eq!(
            parse_cpus("abc").unwrap_err().to_string(),
            "invalid argument \"abc\" for \"--cpus\" flag: failed to parse abc as a rational number"
        );
        assert_eq!(
            parse_cpus("0.0000000001").unwrap_err().to_string(),
            "invalid argument \"0.0000000001\" for \"--cpus\" flag: value is too precise"
        );
        assert!(parse_cpus("-1").is_err());
        assert!(parse_cpus("0.001").is_err());
    }

    #[test]
    fn shares_cpuset_pids() {
        assert_eq!(parse_cpu_shares("512").unwrap(), 512);
        assert!(parse_cpu_shares("x").is_err());
        assert!(parse_cpu_shares("-3").is_err());
        assert_eq!(parse_cpuset("0-2,4").unwrap(), "0-2,4");
        assert_eq!(parse_cpuset("3").unwrap(), "3");
        for bad in ["0-x", "", "2-1", "0,,1", "a", "0-"] {
            assert!(parse_cpuset(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_pids_limit("-1").unwrap(), None);
        assert_eq!(parse_pids_limit("0").unwrap(), None);
        assert_eq!(parse_pids_limit("100").unwrap(), Some(100));
        assert!(parse_pids_limit("abc").is_err());
        assert_eq!(parse_pids_limit_update("0").unwrap(), None);
        assert_eq!(parse_pids_limit_update("-1").unwrap(), Some(-1));
        assert_eq!(parse_pids_limit_update("-5").unwrap(), Some(-1));
        assert_eq!(parse_pids_limit_update("64").unwrap(), Some(64));
        assert!(parse_pids_limit_update("x").is_err());
        assert_eq!(parse_oom_score_adj("-1000").unwrap(), -1000);
        assert_eq!(parse_oom_score_adj("500").unwrap(), 500);
        let e = parse_oom_score_adj("1001").unwrap_err().to_string();
        assert!(
            e.contains("range for oom score adj is [-1000, 1000]"),
            "{e}"
        );
        assert!(parse_oom_score_adj("-1001").is_err());
        assert!(parse_oom_score_adj("x").is_err());
        assert_eq!(parse_cpuset_mems("0").unwrap(), "0");
        let e = parse_cpuset_mems("1-0").unwrap_err().to_string();
        assert!(e.contains("for cpuset mems"), "{e}");
        assert_eq!(parse_blkio_weight("0").unwrap(), None);
        assert_eq!(parse_blkio_weight("500").unwrap(), Some(500));
        let e = parse_blkio_weight("5").unwrap_err().to_string();
        assert!(
            e.contains("Range of blkio weight is from 10 to 1000"),
            "{e}"
        );
        assert!(parse_blkio_weight("70000").is_err());
        assert_eq!(parse_memory_reservation("64m").unwrap(), 64 << 20);
        assert!(parse_memory_reservation("lots").is_err());
        assert_eq!(parse_memory_swappiness("-1").unwrap(), None);
        assert_eq!(parse_memory_swappiness("0").unwrap(), Some(0));
        assert_eq!(parse_memory_swappiness("100").unwrap(), Some(100));
        let e = parse_memory_swappiness("101").unwrap_err().to_string();
        assert!(e.contains("valid memory swappiness range is 0-100"), "{e}");
        assert!(parse_memory_swappiness("-2").is_err());
        assert_eq!(parse_cpu_cfs("--cpu-period", "50000").unwrap(), 50000);
        assert_eq!(parse_cpu_cfs("--cpu-quota", "-1").unwrap(), -1);
        assert!(parse_cpu_cfs("--cpu-quota", "1.5").is_err());
    }

    #[test]
    fn ulimits_follow_docker() {
        let u = parse_ulimit("nofile=1024:2048").unwrap();
        assert_eq!((u.rlimit, u.soft, u.hard), ("RLIMIT_NOFILE", 1024, 2048));
        let u = parse_ulimit("nproc=64").unwrap();
        assert_eq!((u.rlimit, u.soft, u.hard), ("RLIMIT_NPROC", 64, 64));
        let u = parse_ulimit("core=-1").unwrap();
        assert_eq!((u.soft, u.hard), (u64::MAX, u64::MAX));
        assert_eq!(
            parse_ulimit("nofile=10:5").unwrap_err().to_string(),
            "invalid argument \"nofile=10:5\" for \"--ulimit\" flag: ulimit soft limit must be less than or equal to hard limit: 10 > 5"
        );
        assert!(parse_ulimit("foo=1")
            .unwrap_err()
            .to_string()
            .contains("invalid ulimit type: foo"));
        assert!(parse_ulimit("nofile").is_err());
        assert!(parse_ulimit("nofile=a").is_err());
        assert!(parse_ulimit("stack=-1:100").is_err());
    }

    #[test]
    fn devices_follow_docker() {
        let d = parse_device("/dev/sda").unwrap();
        assert_eq!(
            (
                d.host_path.as_str(),
                d.container_path.as_str(),
                d.permissions.as_str()
            ),
            ("/dev/sda", "/dev/sda", "rwm")
        );
        let d = parse_device("/dev/sda:r").unwrap();
        assert_eq!(
            (d.container_path.as_str(), d.permissions.as_str()),
            ("/dev/sda", "r")
        );
        let d = parse_device("/dev/sda:/dev/xvda").unwrap();
        assert_eq!(
            (d.container_path.as_str(), d.permissions.as_str()),
            ("/dev/xvda", "rwm")
        );
        let d = parse_device("/dev/sda:/dev/xvda:rw").unwrap();
        assert_eq!(d.permissions, "rw");
        assert!(parse_device("/dev/sda:/dev/xvda:rwx").is_err());
        assert!(parse_device("/dev/sda:dev:r").is_err());
        assert!(parse_device("sda").is_err());
        assert!(parse_device("/a:/b:r:x").is_err());
    }
}
