//! Containers rebuilt from their directories. A container's record comes, best
//! first, from what could be read of the damaged database, from the `record.json`
//! kept beside its files, or is inferred from its `container.json` (name, runtime
//! settings), its root filesystem's layers (the image) and its OCI spec (command,
//! environment). Its state comes from reality: a live monitor means it runs.

use super::record::RecordFile;
use super::{Lost, RecordSource, RecoveredContainer, RepairReport};
use crate::container_config::StoredConfig;
use crate::containers::monitor_alive;
use crate::names::short;
use crate::networks::NetMode;
use crate::stored::ContainerRuntimeConfig;
use crate::{Engine, EngineError};
use coracle_core::Digest;
use coracle_rootfs::snapshot::RootfsKind;
use coracle_state::{ContainerRecord, ContainerState, Salvaged, StateError};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::SystemTime;

impl Engine {
    /// Records every container directory whose container and image can be told.
    pub(super) fn rebuild_containers(
        &mut self,
        images: &BTreeMap<Digest, Vec<Digest>>,
        networks: &BTreeMap<String, String>,
        salvaged: &Salvaged,
        report: &mut RepairReport,
    ) -> Result<(), EngineError> {
        let dir = self.containers_dir();
        let entries = match std::fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(EngineError::io("read", &dir)(e)),
        };
        let mut found: Vec<(SystemTime, String)> = entries
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .filter_map(|e| {
                let id = e.file_name().to_str()?.to_string();
                let is_id = id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit());
                is_id.then(|| (created_time(&e.path()), id))
            })
            .collect();
        // Oldest first: when two claim one name, the older keeps it.
        found.sort();
        for (_, id) in found {
            match self.recover_container(&id, images, networks, salvaged) {
                Ok(c) => report.containers.push(c),
                Err(why) => report.lost.push(Lost {
                    what: format!("container {}", short(&id)),
                    why,
                }),
            }
        }
        Ok(())
    }

    fn recover_container(
        &mut self,
        id: &str,
        images: &BTreeMap<Digest, Vec<Digest>>,
        networks: &BTreeMap<String, String>,
        salvaged: &Salvaged,
    ) -> Result<RecoveredContainer, String> {
        let dir = self.containers_dir().join(id);
        let cfg = self
            .container_config(id)
            .map_err(|e| format!("its container.json cannot be read: {e}"))?;
        let file = RecordFile::read(&dir).filter(|f| f.id == id);
        // Its endpoints, where they can be told.
        let (mut record, source, endpoints) = match salvaged.containers.iter().find(|c| c.id == id)
        {
            Some(c) => {
                let eps = salvaged.endpoints.iter().filter(|(cid, _)| cid == id);
                let eps = eps.map(|(_, e)| e.clone()).collect();
                (c.clone(), RecordSource::Database, Some(eps))
            }
            None => match file {
                Some(f) => {
                    let eps = f.endpoints();
                    (from_record_file(f)?, RecordSource::RecordFile, Some(eps))
                }
                None => (
                    infer_record(&dir, &cfg, images)?,
                    RecordSource::Inferred,
                    None,
                ),
            },
        };
        if !images.contains_key(&record.image_id) {
            return Err(format!(
                "its image {} is not among the recovered images",
                super::images::short_id(&record.image_id)
            ));
        }
        self.settle_state(&mut record, &cfg, source);
        let renamed_from = self.insert_unique(&mut record)?;
        let bridged = cfg.network.mode == NetMode::Bridge;
        let (kept, lost): (Vec<_>, Vec<_>) = endpoints
            .iter()
            .flatten()
            .cloned()
            .partition(|e| networks.contains_key(&e.network_id));
        self.db
            .set_container_endpoints(id, &kept)
            .map_err(|e| e.to_string())?;
        Ok(RecoveredContainer {
            id: id.to_string(),
            name: record.name.clone(),
            renamed_from,
            state: record.state,
            source,
            networks_lost: bridged && (endpoints.is_none() || !lost.is_empty()),
            running_networked: bridged && record.is_active(),
        })
    }

    /// Inserts the record; a name taken by an older container gets the short id
    /// appended (returns the name it had).
    fn insert_unique(&mut self, record: &mut ContainerRecord) -> Result<Option<String>, String> {
        match self.db.insert_container(record) {
            Ok(()) => return Ok(None),
            Err(StateError::NameInUse { .. }) => {}
            Err(e) => return Err(e.to_string()),
        }
        let new_name = format!("{}_{}", record.name, short(&record.id));
        let old = std::mem::replace(&mut record.name, new_name);
        self.db
            .insert_container(record)
            .map_err(|e| e.to_string())?;
        Ok(Some(old))
    }

    /// Its state as reality has it: a record read from the damaged database that
    /// agrees with the host's processes keeps its own; otherwise the container runs if
    /// its monitor lives, else is cleaned up after (as reconciling does) and is exited
    /// if it ever ran.
    fn settle_state(
        &mut self,
        record: &mut ContainerRecord,
        cfg: &ContainerRuntimeConfig,
        source: RecordSource,
    ) {
        let id = record.id.clone();
        let monitor = record
            .monitor_pid
            .filter(|p| monitor_alive(*p, &id))
            .or_else(|| find_monitor(&id));
        if source == RecordSource::Database && record.monitor_pid == monitor {
            return; // it agrees with reality
        }
        let dir = self.containers_dir().join(&id);
        if let Some(pid) = monitor {
            let rt = self.runtime_for(cfg).ok();
            let state = rt.and_then(|rt| rt.state(&id).ok());
            record.state = match state.as_ref().map(|s| s.status) {
                Some(coracle_runtime::runtime::Status::Paused) => ContainerState::Paused,
                _ => ContainerState::Running,
            };
            record.monitor_pid = Some(pid);
            record.init_pid = state.and_then(|s| s.pid).map(i64::from);
            record.started_at = Some(rfc3339(
                std::fs::metadata(self.run_dir.attach_socket(&id))
                    .and_then(|m| m.modified())
                    .unwrap_or_else(|_| SystemTime::now()),
            ));
            record.exit_code = None;
            record.finished_at = None;
            return;
        }
        // No monitor: whatever a dead one left (runtime state, cgroups, mounts,
        // namespace, socket) goes, as `reconcile` does for a record.
        if self.run_dir.runtime_state().join(&id).exists() {
            self.delete_from_runtime(&id, cfg);
        }
        let _ = coracle_rootfs::snapshot::unmount(&cfg.rootfs);
        let _ = coracle_net::netns::remove(&self.run_dir.netns(&id));
        let _ = std::fs::remove_file(self.run_dir.attach_socket(&id));
        record.monitor_pid = None;
        record.init_pid = None;
        let exit = dir.join("exit");
        let ran = exit.exists() || dir.join(crate::containers::monitor::MONITOR_LOG).exists();
        if ran {
            record.state = ContainerState::Exited;
            record.exit_code =
                Some(coracle_runtime::monitor::read_exit_file(&exit).unwrap_or(255) as i64);
            let at = std::fs::metadata(&exit).and_then(|m| m.modified());
            record.finished_at = Some(rfc3339(at.unwrap_or_else(|_| SystemTime::now())));
        }
    }
}

/// The monitor of container `id`, found among the host's processes.
fn find_monitor(id: &str) -> Option<i64> {
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i64>().ok())
        .find(|pid| monitor_alive(*pid, id))
}

fn from_record_file(f: RecordFile) -> Result<ContainerRecord, String> {
    let image_id = f
        .image_id
        .parse()
        .map_err(|_| format!("its record.json names no valid image ({})", f.image_id))?;
    Ok(ContainerRecord::new_created(
        f.id,
        f.name,
        image_id,
        f.image_name,
        f.created_at,
        f.config,
    ))
}

/// A record from the container's own files, for containers made before `record.json`.
fn infer_record(
    dir: &Path,
    cfg: &ContainerRuntimeConfig,
    images: &BTreeMap<Digest, Vec<Digest>>,
) -> Result<ContainerRecord, String> {
    let image_id = image_of(cfg, images)?;
    let created = created_time(dir);
    let created_at = created
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let image_name = image_id.to_string();
    let mut config = StoredConfig {
        created: rfc3339(created),
        ..Default::default()
    };
    config.config.image = image_name.clone();
    config.host_config.auto_remove = cfg.rm;
    if let Ok(spec) = oci_spec::runtime::Spec::load(dir.join("config.json")) {
        if let Some(p) = spec.process() {
            let args = p.args().clone().unwrap_or_default();
            config.path = args.first().cloned().unwrap_or_default();
            config.args = args.iter().skip(1).cloned().collect();
            config.config.cmd = Some(args);
            config.config.env = p.env().clone();
            config.config.working_dir = p.cwd().display().to_string();
            config.config.tty = p.terminal().unwrap_or(false);
            config.config.user = format!("{}:{}", p.user().uid(), p.user().gid());
        }
        config.config.hostname = spec.hostname().clone().unwrap_or_default();
    }
    Ok(ContainerRecord::new_created(
        cfg.id.clone(),
        cfg.name.clone(),
        image_id,
        image_name,
        created_at,
        config.to_json(),
    ))
}

/// The image whose layers are the container's overlay lower dirs (the first, by id,
/// when images share all their layers).
fn image_of(
    cfg: &ContainerRuntimeConfig,
    images: &BTreeMap<Digest, Vec<Digest>>,
) -> Result<Digest, String> {
    let RootfsKind::Overlay { lowers, .. } = &cfg.rootfs.kind else {
        return Err(
            "its root filesystem is a copy, which does not say which image it came from".into(),
        );
    };
    // Top-most first; an image without layers has the container's own `empty` dir.
    let names: Vec<String> = lowers
        .iter()
        .rev()
        .filter_map(|l| l.file_name()?.to_str().map(str::to_string))
        .filter(|n| n != "empty")
        .collect();
    images
        .iter()
        .find(|(_, chain)| {
            chain
                .iter()
                .map(|c| c.hex())
                .eq(names.iter().map(String::as_str))
        })
        .map(|(id, _)| id.clone())
        .ok_or_else(|| "none of the recovered images has its layers".to_string())
}

/// When a container directory was made (its birth time where the filesystem keeps
/// one, else its last change).
fn created_time(dir: &Path) -> SystemTime {
    std::fs::metadata(dir)
        .and_then(|m| m.created().or_else(|_| m.modified()))
        .unwrap_or(SystemTime::UNIX_EPOCH)
}

fn rfc3339(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}
