//! `update`: new resource limits and restart policy for a created, running or
//! stopped container, with dockerd's rules and messages (`daemon/update.go`,
//! `Container.UpdateContainer`). Each reader finds the new values where it looks:
//! `HostConfig` in the record (`inspect`), the bundle's `config.json` (every later
//! start) and `container.json` (the restart policy, which the monitor reads again at
//! each exit). A running or paused container's cgroups get them at once through its
//! runtime; if they refuse, the three documents are put back as they were.

use crate::container_config::{HostConfig, RestartPolicyJson, StoredConfig};
use crate::{Containers, Engine, EngineError};
use coracle_model::{ContainerSpec, CpuQuota, ResourceOptions, RestartPolicy, UpdateOptions};
use coracle_runtime::runtime::RuntimeError;
use coracle_runtime::spec::update::{apply_update, live_resources, ResourceChanges};
use std::path::Path;

impl Containers<'_> {
    /// `update KEY`: `opts` over the container's settings (docker's zero values leave
    /// a setting as it is).
    pub fn update_container(&mut self, key: &str, opts: &UpdateOptions) -> Result<(), EngineError> {
        opts.validate()?;
        let found = self.find_container(key)?;
        let dir = self.containers_dir().join(&found.id);
        // One update at a time, and none while the monitor starts it or `rm` removes it.
        let _lock = crate::containers::lock_dir(&dir)
            .map_err(|_| EngineError::NoSuchContainer(key.to_string()))?;
        let c = self
            .db
            .container(&found.id)?
            .ok_or_else(|| EngineError::NoSuchContainer(key.to_string()))?;
        let cannot =
            |m: &str| EngineError::Conflict(format!("Cannot update container {}: {m}", c.id));
        let mut stored = StoredConfig::parse(&c.config);
        stored.host_config = merge(&stored.host_config, opts).map_err(|m| cannot(&m))?;
        let saved = Saved::read(&dir, &c.config)?;

        let mut spec = oci_spec::runtime::Spec::load(dir.join("config.json"))
            .map_err(EngineError::corrupt(dir.display()))?;
        let mut resources = spec
            .linux()
            .as_ref()
            .and_then(|l| l.resources().clone())
            .unwrap_or_default();
        apply_update(&mut resources, &effective(&stored.host_config));
        if let Some(linux) = spec.linux_mut().as_mut() {
            linux.set_resources(Some(resources.clone()));
        }
        let mut cfg = self.container_config(&c.id)?;
        if let Some(policy) = opts.restart {
            cfg.restart = policy;
        }
        let written = (|| {
            replace_file(&dir.join("config.json"), &to_json(&spec))?;
            replace_file(&dir.join("container.json"), &to_json(&cfg))?;
            self.db.set_container_config(&c.id, &stored.to_json())?;
            Ok::<(), EngineError>(())
        })();
        let live = written.and_then(|()| {
            if !c.state.is_up() {
                // Stopped, created or between restarts: the next start applies them.
                return Ok(());
            }
            let changes = changes(&opts.resources);
            if changes == ResourceChanges::default() {
                return Ok(());
            }
            let rt = self.runtime_for(&cfg)?;
            match rt.update(&c.id, &live_resources(&resources, changes)) {
                Ok(()) | Err(RuntimeError::NotFound { .. }) => Ok(()),
                Err(RuntimeError::Failed { message, .. }) => Err(cannot(&message)),
                Err(e) => Err(cannot(&e.to_string())),
            }
        });
        if let Err(e) = live {
            saved.restore(self, &dir, &c.id);
            return Err(e);
        }
        Ok(())
    }
}

/// The documents as they were, to put back when the live update fails.
struct Saved {
    spec: Vec<u8>,
    container: Vec<u8>,
    record: String,
}

impl Saved {
    fn read(dir: &Path, record: &str) -> Result<Saved, EngineError> {
        let read = |name: &str| {
            let p = dir.join(name);
            std::fs::read(&p).map_err(EngineError::io("read", &p))
        };
        Ok(Saved {
            spec: read("config.json")?,
            container: read("container.json")?,
            record: record.to_string(),
        })
    }

    fn restore(self, engine: &mut Engine, dir: &Path, id: &str) {
        for (name, bytes) in [
            ("config.json", &self.spec),
            ("container.json", &self.container),
        ] {
            if let Err(e) = replace_file(&dir.join(name), bytes) {
                coracle_runtime::note!("coracle: update {}: restoring {name}: {e}", &id[..12]);
            }
        }
        if let Err(e) = engine.db.set_container_config(id, &self.record) {
            coracle_runtime::note!("coracle: update {}: restoring its config: {e}", &id[..12]);
        }
    }
}

fn to_json(v: &impl serde::Serialize) -> Vec<u8> {
    serde_json::to_vec_pretty(v).expect("documents serialise")
}

/// Replaced by a rename, so that a reader (the monitor at an exit, `exec`) never sees
/// the file half written.
fn replace_file(path: &Path, bytes: &[u8]) -> Result<(), EngineError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.update-{}", std::process::id()));
    crate::perms::write_private(&tmp, bytes)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            EngineError::io("write", path)(e)
        })
}

/// The controllers the request touches.
fn changes(r: &ResourceOptions) -> ResourceChanges {
    let set = |v: Option<i64>| v.is_some_and(|v| v != 0);
    ResourceChanges {
        memory: set(r.memory) || set(r.memory_swap) || set(r.memory_reservation),
        cpu: r.cpus.is_some()
            || r.cpu_shares.is_some_and(|s| s != 0)
            || set(r.cpu_period)
            || set(r.cpu_quota)
            || r.cpuset_cpus.is_some()
            || r.cpuset_mems.is_some(),
        pids: r.pids_limit.is_some(),
        blkio_weight: r.blkio_weight.is_some(),
    }
}

/// docker's `Container.UpdateContainer`: the request over the current HostConfig,
/// with its conflicts (message without the "Cannot update container" prefix).
fn merge(h: &HostConfig, o: &UpdateOptions) -> Result<HostConfig, String> {
    let r = &o.resources;
    let nano = r.cpus.map_or(0, |c| c.nano_cpus);
    let period = r.cpu_period.unwrap_or(0);
    let quota = r.cpu_quota.unwrap_or(0);
    let conflict = |what: &str, set: &str| {
        Err(format!(
            "Conflicting options: {what} cannot be updated as {set} has already been set"
        ))
    };
    if nano > 0 && h.cpu_period > 0 {
        return conflict("Nano CPUs", "CPU Period");
    }
    if nano > 0 && h.cpu_quota > 0 {
        return conflict("Nano CPUs", "CPU Quota");
    }
    if period > 0 && h.nano_cpus > 0 {
        return conflict("CPU Period", "NanoCPUs");
    }
    if quota > 0 && h.nano_cpus > 0 {
        return conflict("CPU Quota", "NanoCPUs");
    }
    let mut n = h.clone();
    if let Some(w) = r.blkio_weight.filter(|w| *w != 0) {
        n.blkio_weight = w;
    }
    if let Some(s) = r.cpu_shares.filter(|s| *s != 0) {
        n.cpu_shares = s;
    }
    if nano != 0 {
        n.nano_cpus = nano;
    }
    if period != 0 {
        n.cpu_period = period;
    }
    if quota != 0 {
        n.cpu_quota = quota;
    }
    if let Some(c) = r.cpuset_cpus.as_ref().filter(|c| !c.is_empty()) {
        n.cpuset_cpus = c.clone();
    }
    if let Some(m) = r.cpuset_mems.as_ref().filter(|m| !m.is_empty()) {
        n.cpuset_mems = m.clone();
    }
    let memory = r.memory.unwrap_or(0);
    let swap = r.memory_swap.unwrap_or(0);
    if memory != 0 {
        if memory > h.memory_swap && swap == 0 {
            return Err("Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time".into());
        }
        n.memory = memory;
    }
    if swap != 0 {
        n.memory_swap = swap;
    }
    if let Some(res) = r.memory_reservation.filter(|m| *m != 0) {
        n.memory_reservation = res;
    }
    if let Some(p) = r.pids_limit {
        n.pids_limit = Some(p);
    }
    if let Some(policy) = o.restart {
        if h.auto_remove && policy != RestartPolicy::No {
            return Err(
                "Restart policy cannot be updated because AutoRemove is enabled for the container"
                    .into(),
            );
        }
        n.restart_policy = RestartPolicyJson {
            name: policy.name().into(),
            maximum_retry_count: policy.max_retries(),
        };
    }
    Ok(n)
}

/// The limits a HostConfig stands for, defaulted as `run` defaults its flags.
fn effective(h: &HostConfig) -> coracle_model::Resources {
    let pos = |v: i64| (v > 0).then_some(v);
    let text = |s: &str| (!s.is_empty()).then(|| s.to_string());
    let mut run = ContainerSpec::new();
    run.resources = ResourceOptions {
        memory: pos(h.memory),
        memory_swap: (h.memory_swap != 0).then_some(h.memory_swap),
        cpus: pos(h.nano_cpus).map(CpuQuota::from_nano_cpus),
        cpu_shares: (h.cpu_shares > 0).then_some(h.cpu_shares),
        cpuset_cpus: text(&h.cpuset_cpus),
        pids_limit: h.pids_limit.filter(|p| *p > 0),
        cpu_period: (h.cpu_period != 0).then_some(h.cpu_period),
        cpu_quota: (h.cpu_quota != 0).then_some(h.cpu_quota),
        memory_reservation: pos(h.memory_reservation),
        cpuset_mems: text(&h.cpuset_mems),
        blkio_weight: (h.blkio_weight > 0).then_some(h.blkio_weight),
        ..Default::default()
    };
    run.resources()
}

#[cfg(test)]
mod tests {
    use super::*;
    use coracle_model::parse_cpus;

    fn host(memory: i64, swap: i64) -> HostConfig {
        HostConfig {
            memory,
            memory_swap: swap,
            ..Default::default()
        }
    }

    #[test]
    fn memory_above_the_set_swap_needs_a_new_swap() {
        let mut o = UpdateOptions::default();
        o.resources.memory = Some(800 << 20);
        assert_eq!(
            merge(&host(300 << 20, 600 << 20), &o).unwrap_err(),
            "Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time"
        );
        o.resources.memory_swap = Some(1000 << 20);
        let n = merge(&host(300 << 20, 600 << 20), &o).unwrap();
        assert_eq!((n.memory, n.memory_swap), (800 << 20, 1000 << 20));
        // Within the swap limit, memory alone is fine.
        let mut o = UpdateOptions::default();
        o.resources.memory = Some(500 << 20);
        let n = merge(&host(300 << 20, 600 << 20), &o).unwrap();
        assert_eq!((n.memory, n.memory_swap), (500 << 20, 600 << 20));
    }

    #[test]
    fn cpus_and_cfs_settings_exclude_each_other() {
        let with_cpus = HostConfig {
            nano_cpus: 500_000_000,
            ..Default::default()
        };
        let mut o = UpdateOptions::default();
        o.resources.cpu_quota = Some(80_000);
        assert_eq!(
            merge(&with_cpus, &o).unwrap_err(),
            "Conflicting options: CPU Quota cannot be updated as NanoCPUs has already been set"
        );
        let with_period = HostConfig {
            cpu_period: 50_000,
            ..Default::default()
        };
        let mut o = UpdateOptions::default();
        o.resources.cpus = parse_cpus("0.8").unwrap();
        assert_eq!(
            merge(&with_period, &o).unwrap_err(),
            "Conflicting options: Nano CPUs cannot be updated as CPU Period has already been set"
        );
        let n = merge(&with_cpus, &o).unwrap();
        assert_eq!(n.nano_cpus, 800_000_000);
        let r = effective(&n);
        assert_eq!((r.cpu_quota, r.cpu_period), (Some(80_000), Some(100_000)));
    }

    #[test]
    fn auto_remove_keeps_its_restart_policy() {
        let mut h = HostConfig {
            auto_remove: true,
            ..Default::default()
        };
        let mut o = UpdateOptions {
            restart: Some(RestartPolicy::Always),
            ..Default::default()
        };
        assert_eq!(
            merge(&h, &o).unwrap_err(),
            "Restart policy cannot be updated because AutoRemove is enabled for the container"
        );
        o.restart = Some(RestartPolicy::No);
        merge(&h, &o).unwrap();
        h.auto_remove = false;
        o.restart = Some(RestartPolicy::OnFailure { max: Some(5) });
        let n = merge(&h, &o).unwrap();
        assert_eq!(
            (
                n.restart_policy.name.as_str(),
                n.restart_policy.maximum_retry_count
            ),
            ("on-failure", 5)
        );
    }

    #[test]
    fn zero_values_leave_settings_and_pids_can_be_lifted() {
        let mut h = host(300 << 20, 600 << 20);
        h.cpu_shares = 800;
        h.pids_limit = Some(100);
        let mut o = UpdateOptions::default();
        o.resources.cpu_shares = Some(0);
        o.resources.memory = Some(0);
        assert_eq!(merge(&h, &o).unwrap(), h);
        o.resources.pids_limit = Some(-1);
        let n = merge(&h, &o).unwrap();
        assert_eq!(n.pids_limit, Some(-1));
        assert_eq!(effective(&n).pids_limit, None);
        assert_eq!(effective(&h).pids_limit, Some(100));
        assert_eq!(effective(&h).memory_swap, Some(600 << 20));
    }
}
