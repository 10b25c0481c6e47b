//! What a container uses, read from its cgroups and its `/proc` entries: CPU time,
//! memory, pids, block I/O and network bytes (`coracle stats`), and the processes in
//! its cgroup (`coracle top`).
//!
//! A container's cgroups are found from its init's `/proc/<pid>/cgroup`, mapped onto
//! the cgroup mounts of `/proc/self/mountinfo`. That works alike on a pure v2 host
//! (one unified hierarchy), on a v1 host and on a hybrid host, where each controller
//! lives in exactly one hierarchy: a v1 hierarchy when one has the controller, else the
//! unified one. On this kind of hybrid host the runtime places containers in the v1
//! hierarchies only (their unified path is `/`, the root cgroup, which holds every
//! process of the machine), so a root path is never taken as the container's.
//!
//! Everything is read relative to a proc root and the mount points mountinfo names, so
//! tests point [`CgroupFs::load`] at fixture trees.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum CgroupStatsError {
    #[error("{what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{}: {detail}", path.display())]
    Parse { path: PathBuf, detail: String },
    #[error("process {pid} is in no cgroup with the {controller} controller")]
    NoCgroup { pid: u32, controller: &'static str },
}

impl CgroupStatsError {
    pub fn kind(&self) -> coracle_core::ErrorKind {
        match self {
            CgroupStatsError::Io { source, .. } if source.kind() == io::ErrorKind::NotFound => {
                coracle_core::ErrorKind::NotFound
            }
            CgroupStatsError::NoCgroup { .. } => coracle_core::ErrorKind::NotFound,
            _ => coracle_core::ErrorKind::Internal,
        }
    }
}

fn read(what: &'static str, path: &Path) -> Result<String, CgroupStatsError> {
    std::fs::read_to_string(path).map_err(|source| CgroupStatsError::Io {
        what,
        path: path.to_path_buf(),
        source,
    })
}

fn parse_err(path: &Path, detail: impl Into<String>) -> CgroupStatsError {
    CgroupStatsError::Parse {
        path: path.to_path_buf(),
        detail: detail.into(),
    }
}

fn parse_u64(path: &Path, s: &str) -> Result<u64, CgroupStatsError> {
    s.trim()
        .parse()
        .map_err(|_| parse_err(path, format!("not a number: {:?}", s.trim())))
}

/// One cgroup's usage counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CgroupStats {
    /// CPU time of every task in the cgroup, in nanoseconds.
    pub cpu_usage_ns: u64,
    /// Memory charged to the cgroup, page cache included.
    pub memory_usage: u64,
    /// Inactive file cache (v1 `total_inactive_file`, v2 `inactive_file`), if reported.
    pub memory_inactive_file: Option<u64>,
    /// The memory limit; None when unlimited (v2 `max`, v1's page-counter maximum is
    /// returned as the number it is).
    pub memory_limit: Option<u64>,
    pub pids_current: u64,
    pub io_read_bytes: u64,
    pub io_write_bytes: u64,
}

impl CgroupStats {
    /// Usage without the inactive file cache, as the docker CLI shows it
    /// (`calculateMemUsageUnixNoCache`).
    pub fn memory_usage_no_cache(&self) -> u64 {
        match self.memory_inactive_file {
            Some(inactive) if inactive < self.memory_usage => self.memory_usage - inactive,
            _ => self.memory_usage,
        }
    }
}

/// The whole machine's CPU time (docker's `SystemUsage`) and its online CPUs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SystemCpu {
    pub total_ns: u64,
    pub online_cpus: u32,
}

/// Bytes through a network namespace's interfaces, loopback excluded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetStats {
    pub rx_bytes: u64,
    pub tx_bytes: u64,
}

#[derive(Debug, Clone)]
struct Mount {
    point: PathBuf,
    /// The cgroup path mounted there (mountinfo's root field; `/` unless the mount was
    /// made inside a cgroup namespace or is a bind of a sub-cgroup).
    root: String,
}

/// The cgroup mounts of a machine, and where to read its processes' entries.
#[derive(Debug, Clone)]
pub struct CgroupFs {
    proc_root: PathBuf,
    /// v1 hierarchies by controller (`memory`, `cpuacct`, `name=systemd`, ...).
    v1: HashMap<String, Mount>,
    v2: Option<Mount>,
}

/// Where one process's cgroups are, per hierarchy, as `/proc/<pid>/cgroup` says.
struct ProcessCgroups {
    pid: u32,
    /// Controller (or `name=` of a named hierarchy) -> cgroup path.
    v1: HashMap<String, String>,
    v2: Option<String>,
}

impl CgroupFs {
    /// The host's, from `/proc/self/mountinfo`.
    pub fn host() -> Result<CgroupFs, CgroupStatsError> {
        CgroupFs::load(Path::new("/proc"))
    }

    /// Reads `<proc_root>/self/mountinfo`; processes are then read under `proc_root`.
    pub fn load(proc_root: &Path) -> Result<CgroupFs, CgroupStatsError> {
        let path = proc_root.join("self/mountinfo");
        let text = read("read", &path)?;
        let mut fs = CgroupFs {
            proc_root: proc_root.to_path_buf(),
            v1: HashMap::new(),
            v2: None,
        };
        for line in text.lines() {
            // id parent major:minor root mount-point options [optional...] - type source super
            let Some((left, right)) = line.split_once(" - ") else {
                continue;
            };
            let fields: Vec<&str> = left.split(' ').collect();
            let tail: Vec<&str> = right.split(' ').collect();
            if fields.len() < 5 || tail.len() < 3 {
                continue;
            }
            let mount = Mount {
                point: PathBuf::from(unescape(fields[4])),
                root: unescape(fields[3]),
            };
            match tail[0] {
                "cgroup2" => {
                    fs.v2.get_or_insert(mount);
                }
                "cgroup" => {
                    for opt in tail[2].split(',') {
                        if is_v1_controller(opt) {
                            fs.v1
                                .entry(opt.to_string())
                                .or_insert_with(|| mount.clone());
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(fs)
    }

    fn process(&self, pid: u32) -> Result<ProcessCgroups, CgroupStatsError> {
        let path = self.proc_root.join(format!("{pid}/cgroup"));
        let text = read("read", &path)?;
        let mut out = ProcessCgroups {
            pid,
            v1: HashMap::new(),
            v2: None,
        };
        for line in text.lines() {
            let mut parts = line.splitn(3, ':');
            let (Some(_id), Some(controllers), Some(cgroup)) =
                (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            if controllers.is_empty() {
                out.v2 = Some(cgroup.to_string());
            } else {
                for c in controllers.split(',') {
                    out.v1.insert(c.to_string(), cgroup.to_string());
                }
            }
        }
        Ok(out)
    }

    fn v1_dir(&self, p: &ProcessCgroups, controller: &str) -> Option<PathBuf> {
        let mount = self.v1.get(controller)?;
        let cgroup = p.v1.get(controller)?;
        Some(join_cgroup(mount, cgroup))
    }

    /// The v2 cgroup of the process, unless it is the root cgroup.
    fn v2_dir(&self, p: &ProcessCgroups) -> Option<PathBuf> {
        let mount = self.v2.as_ref()?;
        let cgroup =
            p.v2.as_deref()
                .filter(|c| !c.trim_end_matches('/').is_empty())?;
        Some(join_cgroup(mount, cgroup))
    }

    /// The directory holding `controller`'s files for the process: its v1 hierarchy
    /// when there is one, else the unified hierarchy if the controller is enabled
    /// there.
    fn controller_dir(
        &self,
        p: &ProcessCgroups,
        v1_controller: &str,
        v2_controller: &str,
    ) -> Option<PathBuf> {
        if self.v1.contains_key(v1_controller) {
            return self.v1_dir(p, v1_controller);
        }
        let dir = self.v2_dir(p)?;
        let enabled = std::fs::read_to_string(dir.join("cgroup.controllers")).ok()?;
        enabled
            .split_whitespace()
            .any(|c| c == v2_controller)
            .then_some(dir)
    }

    fn require(
        &self,
        p: &ProcessCgroups,
        v1: &'static str,
        v2: &'static str,
    ) -> Result<(PathBuf, bool), CgroupStatsError> {
        let is_v1 = self.v1.contains_key(v1);
        self.controller_dir(p, v1, v2)
            .map(|d| (d, is_v1))
            .ok_or(CgroupStatsError::NoCgroup {
                pid: p.pid,
                controller: v2,
            })
    }

    /// CPU, memory, pids and block I/O of the cgroups `pid` is in.
    pub fn stats(&self, pid: u32) -> Result<CgroupStats, CgroupStatsError> {
        let p = self.process(pid)?;
        let mut s = CgroupStats::default();

        // cpu.stat's usage_usec is there whether or not the cpu controller is enabled.
        if self.v1.contains_key("cpuacct") {
            let (dir, _) = self.require(&p, "cpuacct", "cpu")?;
            let path = dir.join("cpuacct.usage");
            s.cpu_usage_ns = parse_u64(&path, &read("read", &path)?)?;
        } else {
            let dir = self.v2_dir(&p).ok_or(CgroupStatsError::NoCgroup {
                pid,
                controller: "cpu",
            })?;
            let path = dir.join("cpu.stat");
            let stat = flat_keyed(&path, &read("read", &path)?)?;
            s.cpu_usage_ns = stat.get("usage_usec").copied().unwrap_or(0) * 1000;
        }

        let (dir, v1) = self.require(&p, "memory", "memory")?;
        if v1 {
            let path = dir.join("memory.usage_in_bytes");
            s.memory_usage = parse_u64(&path, &read("read", &path)?)?;
            let path = dir.join("memory.limit_in_bytes");
            s.memory_limit = Some(parse_u64(&path, &read("read", &path)?)?);
            let path = dir.join("memory.stat");
            let stat = flat_keyed(&path, &read("read", &path)?)?;
            s.memory_inactive_file = stat.get("total_inactive_file").copied();
        } else {
            let path = dir.join("memory.current");
            s.memory_usage = parse_u64(&path, &read("read", &path)?)?;
            let path = dir.join("memory.max");
            let max = read("read", &path)?;
            s.memory_limit = match max.trim() {
                "max" => None,
                n => Some(parse_u64(&path, n)?),
            };
            let path = dir.join("memory.stat");
            let stat = flat_keyed(&path, &read("read", &path)?)?;
            s.memory_inactive_file = stat.get("inactive_file").copied();
        }

        let (dir, _) = self.require(&p, "pids", "pids")?;
        let path = dir.join("pids.current");
        s.pids_current = parse_u64(&path, &read("read", &path)?)?;

        // Block I/O is optional: a kernel without the blkio/io controller still has
        // everything else to show.
        if let Some(dir) = self.controller_dir(&p, "blkio", "io") {
            let (r, w) = if self.v1.contains_key("blkio") {
                blkio_v1(&dir)?
            } else {
                let path = dir.join("io.stat");
                io_stat_v2(&path, &read("read", &path)?)?
            };
            s.io_read_bytes = r;
            s.io_write_bytes = w;
        }
        Ok(s)
    }

    /// Every process in the container's cgroup: the unified hierarchy's when the
    /// container has its own cgroup there, else the v1 pids (or memory, or any) one.
    /// A container in no cgroup of its own (every path is the root) gets its init and
    /// the init's descendants instead.
    pub fn pids(&self, init_pid: u32) -> Result<Vec<u32>, CgroupStatsError> {
        let p = self.process(init_pid)?;
        let mut dirs: Vec<PathBuf> = self.v2_dir(&p).into_iter().collect();
        for c in ["pids", "memory"] {
            dirs.extend(self.v1_dir(&p, c));
        }
        let mut others: Vec<&String> = p.v1.keys().collect();
        others.sort();
        for c in others {
            dirs.extend(self.v1_dir(&p, c));
        }
        for dir in dirs {
            let cgroup = dir.strip_prefix(self.mount_point_of(&dir)).unwrap_or(&dir);
            if cgroup.as_os_str().is_empty() || cgroup == Path::new("/") {
                continue;
            }
            let path = dir.join("cgroup.procs");
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            let mut pids = text
                .lines()
                .map(|l| parse_u64(&path, l).map(|n| n as u32))
                .collect::<Result<Vec<_>, _>>()?;
            pids.sort_unstable();
            return Ok(pids);
        }
        self.descendants(init_pid)
    }

    fn mount_point_of(&self, dir: &Path) -> &Path {
        self.v1
            .values()
            .chain(self.v2.iter())
            .map(|m| m.point.as_path())
            .filter(|p| dir.starts_with(p))
            .max_by_key(|p| p.as_os_str().len())
            .unwrap_or(Path::new("/"))
    }

    fn descendants(&self, init_pid: u32) -> Result<Vec<u32>, CgroupStatsError> {
        let entries =
            std::fs::read_dir(&self.proc_root).map_err(|source| CgroupStatsError::Io {
                what: "list",
                path: self.proc_root.clone(),
                source,
            })?;
        let mut parent: HashMap<u32, u32> = HashMap::new();
        for e in entries.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            // Processes come and go while we look: skip the ones that went.
            let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
                continue;
            };
            // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
            if let Some(ppid) = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|s| s.parse().ok())
            {
                parent.insert(pid, ppid);
            }
        }
        let mut out = vec![init_pid];
        let mut grew = true;
        while grew {
            grew = false;
            for (&pid, &ppid) in &parent {
                if out.contains(&ppid) && !out.contains(&pid) {
                    out.push(pid);
                    grew = true;
                }
            }
        }
        out.sort_unstable();
        Ok(out)
    }

    /// docker's `SystemUsage`: the first seven fields of `/proc/stat`'s cpu line in
    /// nanoseconds, and the online CPUs (its `cpuN` lines).
    pub fn system_cpu(&self) -> Result<SystemCpu, CgroupStatsError> {
        let path = self.proc_root.join("stat");
        let text = read("read", &path)?;
        let mut total_ticks = None;
        let mut online = 0;
        for line in text.lines() {
            let mut fields = line.split_whitespace();
            match fields.next() {
                Some("cpu") => {
                    let ticks: Vec<u64> = fields
                        .take(7)
                        .map(|f| parse_u64(&path, f))
                        .collect::<Result<_, _>>()?;
                    if ticks.len() < 7 {
                        return Err(parse_err(&path, "short cpu line"));
                    }
                    total_ticks = Some(ticks.iter().sum::<u64>());
                }
                Some(c) if c.starts_with("cpu") => online += 1,
                _ => {}
            }
        }
        let ticks = total_ticks.ok_or_else(|| parse_err(&path, "no cpu line"))?;
        Ok(SystemCpu {
            total_ns: ticks.saturating_mul(1_000_000_000) / clock_ticks(),
            online_cpus: online,
        })
    }

    /// The machine's memory (`MemTotal`), docker's limit for unlimited containers.
    pub fn host_memory(&self) -> Result<u64, CgroupStatsError> {
        let path = self.proc_root.join("meminfo");
        let text = read("read", &path)?;
        let line = text
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .ok_or_else(|| parse_err(&path, "no MemTotal"))?;
        let kb = line.trim().trim_end_matches("kB");
        Ok(parse_u64(&path, kb)? * 1024)
    }

    /// Bytes received and sent on `pid`'s network namespace, loopback excluded. A
    /// process in the host's namespace (`--network host`) counts nothing, as docker
    /// shows no networks for it.
    pub fn net(&self, pid: u32) -> Result<NetStats, CgroupStatsError> {
        let ns = self.proc_root.join(format!("{pid}/ns/net"));
        let host = self.proc_root.join("self/ns/net");
        if let (Ok(a), Ok(b)) = (std::fs::metadata(&ns), std::fs::metadata(&host)) {
            use std::os::unix::fs::MetadataExt;
            if (a.dev(), a.ino()) == (b.dev(), b.ino()) {
                return Ok(NetStats::default());
            }
        }
        let path = self.proc_root.join(format!("{pid}/net/dev"));
        let text = read("read", &path)?;
        let mut out = NetStats::default();
        for line in text.lines().skip(2) {
            let Some((iface, counters)) = line.split_once(':') else {
                continue;
            };
            if iface.trim() == "lo" {
                continue;
            }
            let f: Vec<&str> = counters.split_whitespace().collect();
            if f.len() < 9 {
                return Err(parse_err(&path, format!("short line {line:?}")));
            }
            out.rx_bytes += parse_u64(&path, f[0])?;
            out.tx_bytes += parse_u64(&path, f[8])?;
        }
        Ok(out)
    }
}

/// Every process in the cgroup of the container whose init is `init_pid` (host pids).
pub fn cgroup_pids(init_pid: u32) -> Result<Vec<u32>, CgroupStatsError> {
    CgroupFs::host()?.pids(init_pid)
}

fn is_v1_controller(opt: &str) -> bool {
    const NOT_CONTROLLERS: &[&str] = &["rw", "ro", "xattr", "noprefix", "clone_children"];
    !NOT_CONTROLLERS.contains(&opt) && !opt.starts_with("release_agent=")
}

fn join_cgroup(mount: &Mount, cgroup: &str) -> PathBuf {
    let rel = cgroup
        .strip_prefix(mount.root.trim_end_matches('/'))
        .unwrap_or(cgroup)
        .trim_start_matches('/');
    if rel.is_empty() {
        mount.point.clone()
    } else {
        mount.point.join(rel)
    }
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `key value` lines (memory.stat, cpu.stat).
fn flat_keyed(path: &Path, text: &str) -> Result<HashMap<String, u64>, CgroupStatsError> {
    let mut out = HashMap::new();
    for line in text.lines() {
        let mut f = line.split_whitespace();
        if let (Some(k), Some(v)) = (f.next(), f.next()) {
            out.insert(k.to_string(), parse_u64(path, v)?);
        }
    }
    Ok(out)
}

/// v1 block I/O: the throttle counters see every request whatever the I/O scheduler;
/// the CFQ/BFQ ones only requests through that scheduler. docker sums `Read`/`Write`.
fn blkio_v1(dir: &Path) -> Result<(u64, u64), CgroupStatsError> {
    for name in [
        "blkio.throttle.io_service_bytes_recursive",
        "blkio.bfq.io_service_bytes_recursive",
        "blkio.io_service_bytes_recursive",
    ] {
        let path = dir.join(name);
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let (mut r, mut w) = (0, 0);
        for line in text.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            // "MAJ:MIN Op bytes"; the last line is "Total N".
            if f.len() != 3 {
                continue;
            }
            let n = parse_u64(&path, f[2])?;
            match f[1].as_bytes().first() {
                Some(b'r' | b'R') => r += n,
                Some(b'w' | b'W') => w += n,
                _ => {}
            }
        }
        return Ok((r, w));
    }
    Ok((0, 0))
}

/// v2 `io.stat`: `MAJ:MIN rbytes=N wbytes=N rios=N ...` per device.
fn io_stat_v2(path: &Path, text: &str) -> Result<(u64, u64), CgroupStatsError> {
    let (mut r, mut w) = (0, 0);
    for line in text.lines() {
        for kv in line.split_whitespace().skip(1) {
            match kv.split_once('=') {
                Some(("rbytes", v)) => r += parse_u64(path, v)?,
                Some(("wbytes", v)) => w += parse_u64(path, v)?,
                _ => {}
            }
        }
    }
    Ok((r, w))
}

fn clock_ticks() -> u64 {
    match rustix::param::clock_ticks_per_second() {
        0 => 100,
        n => n,
    }
}

#[cfg(test)]
mod tests;
