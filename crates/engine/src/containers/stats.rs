//! `stats`: one sample of a container's resource usage, with docker's derived numbers
//! (the CPU percentage between two samples, memory without the inactive file cache,
//! the host's memory as the limit of an unlimited container). A container that does
//! not run samples as zeros, as docker shows it.

use crate::{Containers, EngineError};
use coracle_runtime::cgroup_stats::{CgroupFs, CgroupStatsError};
use coracle_state::ContainerRecord;

#[derive(Debug, thiserror::Error)]
pub enum StatsError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Cgroup(#[from] CgroupStatsError),
}

impl StatsError {
    pub fn kind(&self) -> coracle_core::ErrorKind {
        match self {
            StatsError::Engine(e) => e.kind(),
            StatsError::Cgroup(e) => e.kind(),
        }
    }
}

/// One reading of a container's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatsSample {
    pub id: String,
    pub name: String,
    pub running: bool,
    /// CPU time of the container's cgroup, ns.
    pub cpu_ns: u64,
    /// CPU time of the whole machine, ns (docker's `SystemUsage`).
    pub system_ns: u64,
    pub online_cpus: u32,
    /// Memory use without the inactive file cache.
    pub memory_usage: u64,
    /// The container's limit, or the machine's memory when it has none; 0 when not
    /// running.
    pub memory_limit: u64,
    pub net_rx: u64,
    pub net_tx: u64,
    pub block_read: u64,
    pub block_write: u64,
    pub pids: u64,
}

impl StatsSample {
    /// docker's `calculateCPUPercentUnix`: the container's share of the machine's CPU
    /// time since `previous`, times the online CPUs (100% = one CPU busy).
    pub fn cpu_percent(&self, previous: Option<&StatsSample>) -> f64 {
        let Some(prev) = previous.filter(|p| p.running && self.running) else {
            return 0.0;
        };
        let cpu = self.cpu_ns as f64 - prev.cpu_ns as f64;
        let system = self.system_ns as f64 - prev.system_ns as f64;
        if system > 0.0 && cpu > 0.0 {
            cpu / system * f64::from(self.online_cpus) * 100.0
        } else {
            0.0
        }
    }

    /// docker's `calculateMemPercentUnixNoCache`.
    pub fn memory_percent(&self) -> f64 {
        if self.memory_limit == 0 {
            return 0.0;
        }
        self.memory_usage as f64 / self.memory_limit as f64 * 100.0
    }
}

/// Reads samples; holds the machine's cgroup mounts and memory size, read once.
pub struct StatsReader {
    fs: CgroupFs,
    host_memory: u64,
}

/// A container to sample, reconciled when it was looked up.
pub struct StatsTarget(ContainerRecord);

impl StatsTarget {
    pub fn id(&self) -> &str {
        &self.0.id
    }

    /// Whether it runs (or is paused or restarting): what `stats` shows without `-a`.
    pub fn is_active(&self) -> bool {
        self.0.is_active()
    }
}

impl Containers<'_> {
    /// Every container, newest first.
    pub fn stats_targets(&mut self) -> Result<Vec<StatsTarget>, EngineError> {
        Ok(self
            .container_records()?
            .into_iter()
            .map(StatsTarget)
            .collect())
    }

    pub fn stats_target(&mut self, key: &str) -> Result<StatsTarget, EngineError> {
        self.find_container(key).map(StatsTarget)
    }

    pub fn stats_reader(&self) -> Result<StatsReader, StatsError> {
        let fs = CgroupFs::host()?;
        let host_memory = fs.host_memory()?;
        Ok(StatsReader { fs, host_memory })
    }

    /// A sample of `target`.
    pub fn stats_sample(
        &self,
        reader: &StatsReader,
        target: &StatsTarget,
    ) -> Result<StatsSample, StatsError> {
        let c = &target.0;
        let system = reader.fs.system_cpu()?;
        let mut s = StatsSample {
            id: c.id.clone(),
            name: c.name.clone(),
            system_ns: system.total_ns,
            online_cpus: system.online_cpus,
            ..StatsSample::default()
        };
        let Some(pid) = self.container_init_pid(c) else {
            return Ok(s);
        };
        let (cg, net) = match (reader.fs.stats(pid), reader.fs.net(pid)) {
            (Ok(cg), Ok(net)) => (cg, net),
            // Gone between the lookup and the reading: it no longer runs.
            (Err(e), _) | (_, Err(e)) if e.kind() == coracle_core::ErrorKind::NotFound => {
                return Ok(s)
            }
            (Err(e), _) | (_, Err(e)) => return Err(e.into()),
        };
        s.running = true;
        s.cpu_ns = cg.cpu_usage_ns;
        s.memory_usage = cg.memory_usage_no_cache();
        s.memory_limit = cg
            .memory_limit
            .map_or(reader.host_memory, |l| l.min(reader.host_memory));
        s.net_rx = net.rx_bytes;
        s.net_tx = net.tx_bytes;
        s.block_read = cg.io_read_bytes;
        s.block_write = cg.io_write_bytes;
        s.pids = cg.pids_current;
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(cpu_ns: u64, system_ns: u64) -> StatsSample {
        StatsSample {
            running: true,
            cpu_ns,
            system_ns,
            online_cpus: 2,
            ..StatsSample::default()
        }
    }

    #[test]
    fn cpu_percent_as_docker() {
        // Half of one CPU's time on a 2-CPU machine over the interval: 50%.
        let a = sample(1_000, 10_000);
        let b = sample(1_000 + 500_000_000, 10_000 + 2_000_000_000);
        assert!((b.cpu_percent(Some(&a)) - 50.0).abs() < 1e-9);
        assert_eq!(b.cpu_percent(None), 0.0);
        // No progress, or a counter that went back (a restart): 0.
        assert_eq!(a.cpu_percent(Some(&b)), 0.0);
        let stopped = StatsSample::default();
        assert_eq!(b.cpu_percent(Some(&stopped)), 0.0);
    }

    #[test]
    fn memory_percent_as_docker() {
        let mut s = sample(0, 0);
        s.memory_usage = 16 << 20;
        s.memory_limit = 64 << 20;
        assert_eq!(s.memory_percent(), 25.0);
        s.memory_limit = 0;
        assert_eq!(s.memory_percent(), 0.0);
    }
}
