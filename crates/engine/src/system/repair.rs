//! `system check --repair`: a damaged or missing state database is replaced by one
//! rebuilt from the store's files. The damaged files are moved aside as they are (only
//! a copy is read), nothing in the store is deleted, and the new database is built
//! under a temporary name and renamed into place only when complete, all under the
//! store lock held exclusive (no pull, rmi or prune meanwhile). Every other command
//! refuses a missing, empty or non-SQLite database; one whose damage only SQLite's
//! `quick_check` finds still opens, so what a command writes to it during the repair
//! is not carried over (taking SQLite's lock on it instead would have us checkpoint
//! into the kept file, and delete the new database's log by name, when we close it).
//!
//! What comes back: images whose manifest, config and unpacked layers are in the
//! store; networks from the files each keeps (`networks/<id>.json`); containers whose
//! directory has a readable `container.json` and whose image came back, from the
//! `record.json` each keeps (name, image, configuration, networks) or, for containers
//! an older coracle made, inferred from their other files; volumes need no record.
//! What does not, unless the damaged database can still be read: tags and repo
//! digests (images come back untagged), and the addresses and published ports of
//! running containers (they keep them until they stop, but nothing records them).

mod containers;
mod images;
mod networks;
mod record;

use crate::config::LazyRegistryConfig;
use crate::store::LockMode;
use crate::{Engine, EngineConfig, EngineError, StorePaths};
use coracle_core::Digest;
use coracle_image::{ContentStore, RegistryConfig};
use coracle_rootfs::LayerStore;
use coracle_state::{Db, Salvaged};
use std::path::{Path, PathBuf};

/// What a repair found and did, for its report.
#[derive(Debug, Default)]
pub struct RepairReport {
    pub database: PathBuf,
    /// What was wrong with the database; None: it is sound and nothing was changed.
    pub damage: Option<String>,
    /// The damaged files, moved aside.
    pub kept: Vec<PathBuf>,
    pub images: Vec<RecoveredImage>,
    pub containers: Vec<RecoveredContainer>,
    /// Networks, by name.
    pub networks: Vec<String>,
    /// Volumes in the store (they have no database record: nothing to rebuild).
    pub volumes: Vec<String>,
    /// What was found but could not be recorded again, and why.
    pub lost: Vec<Lost>,
    /// What the store's files cannot tell.
    pub notes: Vec<String>,
}

#[derive(Debug)]
pub struct RecoveredImage {
    pub id: Digest,
    pub tags: Vec<String>,
}

#[derive(Debug)]
pub struct RecoveredContainer {
    pub id: String,
    pub name: String,
    /// The name it had, when another container had taken it.
    pub renamed_from: Option<String>,
    pub state: coracle_state::ContainerState,
    pub source: RecordSource,
    /// Networks it was configured for that did not come back (their records were
    /// only in the database), or that it had but cannot be told (no `record.json`).
    pub networks_lost: bool,
    /// Running on a network: its addresses and published ports were recorded only in
    /// the database.
    pub running_networked: bool,
}

/// Where a container's record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordSource {
    /// Read from the damaged database.
    Database,
    /// The copy kept in its directory (`record.json`).
    RecordFile,
    /// Inferred from its other files (made before `record.json` was kept).
    Inferred,
}

#[derive(Debug)]
pub struct Lost {
    pub what: String,
    pub why: String,
}

/// Checks the store's database and, when it is damaged or missing, replaces it with
/// one rebuilt from the store's files.
pub fn repair_store(root: impl Into<PathBuf>) -> Result<RepairReport, EngineError> {
    let config = EngineConfig::new(root);
    let paths = StorePaths::new(config.root.clone());
    crate::perms::check_owner(&paths.root)?;
    let database = paths.database();
    let mut report = RepairReport {
        database: database.clone(),
        damage: paths.check_database(),
        ..Default::default()
    };
    if report.damage.is_none() {
        return Ok(report); // a sound store is left as it is
    }
    crate::perms::secure_store(&paths, &config.run_dir)?;
    let _lock = paths.lock(LockMode::Exclusive)?;
    // Another repair may have finished while we waited for the lock.
    report.damage = paths.check_database();
    if report.damage.is_none() {
        return Ok(report);
    }
    let salvaged = salvage(&paths);
    let fresh = with_suffix(&database, &format!(".repair-{}", std::process::id()));
    remove_database_files(&fresh);
    let mut engine = Engine {
        db: Db::create(&fresh)?,
        content: ContentStore::open(&paths.blobs())?,
        layers: LayerStore::open(paths.layers())?,
        registry_config: LazyRegistryConfig::given(RegistryConfig::default()),
        network_config: config.network,
        run_dir: config.run_dir,
        runtimes: config.runtimes,
        firewall: config.firewall,
        paths: paths.clone(),
        collected: 0,
    };
    let rebuilt = engine.rebuild(&salvaged, &mut report);
    let Engine { db, .. } = engine;
    if let Err(e) = rebuilt.and_then(|()| Ok(db.close()?)) {
        remove_database_files(&fresh);
        return Err(e);
    }
    report.kept = move_aside(&database)?;
    std::fs::rename(&fresh, &database).map_err(EngineError::io("rename", &fresh))?;
    crate::images::pull::sync_store(&paths.root)?;
    Ok(report)
}

impl Engine {
    fn rebuild(
        &mut self,
        salvaged: &Salvaged,
        report: &mut RepairReport,
    ) -> Result<(), EngineError> {
        let networks = self.rebuild_networks(salvaged, report)?;
        let images = self.rebuild_images(salvaged, report)?;
        self.rebuild_containers(&images, &networks, salvaged, report)?;
        report.volumes = self
            .volume_store()?
            .list()?
            .into_iter()
            .map(|v| v.name)
            .collect();
        if !report.images.is_empty() && salvaged.tags.is_empty() {
            report.notes.push(
                "image tags are recorded only in the database: the images are back untagged; \
                 name them again with `coracle tag IMAGE-ID NAME`"
                    .into(),
            );
        }
        let names = |f: fn(&RecoveredContainer) -> bool| -> Vec<&str> {
            let all = report.containers.iter().filter(|c| f(c));
            all.map(|c| c.name.as_str()).collect()
        };
        let mut notes = Vec::new();
        let lost = names(|c| c.networks_lost);
        if !lost.is_empty() {
            notes.push(format!(
                "{} container(s) lost networks that were recorded only in the database ({}): \
                 recreate them with `coracle network create` and `coracle network connect \
                 NETWORK CONTAINER`",
                lost.len(),
                lost.join(", ")
            ));
        }
        let running = names(|c| c.running_networked);
        if !running.is_empty() {
            notes.push(format!(
                "the addresses and published ports of running containers were recorded only \
                 in the database ({}): they keep them, but `port` does not show them and \
                 another container may be given the same address; `coracle restart` them to \
                 record them again",
                running.join(", ")
            ));
        }
        let inferred = names(|c| c.source == RecordSource::Inferred);
        if !inferred.is_empty() {
            notes.push(format!(
                "{} container(s) were made by an older coracle that kept no record.json ({}): \
                 rebuilt from their files, they keep their name, image, command, environment \
                 and runtime settings, but `inspect` no longer shows their other creation \
                 options and they show their image by id",
                inferred.len(),
                inferred.join(", ")
            ));
        }
        report.notes.extend(notes);
        Ok(())
    }
}

/// What can be read of the damaged database, read from a copy (SQLite writes to a
/// database it recovers; the damaged file is kept as it was).
fn salvage(paths: &StorePaths) -> Salvaged {
    let database = paths.database();
    if !database.exists() {
        return Salvaged::default();
    }
    let tmp = paths.tmp();
    let Ok(dir) = std::fs::create_dir_all(&tmp).and_then(|()| {
        tempfile::Builder::new()
            .prefix(&format!("repair-{}-", std::process::id()))
            .tempdir_in(&tmp)
    }) else {
        return Salvaged::default();
    };
    let copy = dir.path().join("state.db");
    let copied = std::fs::copy(&database, &copy).is_ok()
        && std::fs::copy(with_suffix(&database, "-wal"), with_suffix(&copy, "-wal"))
            .map(drop)
            .or_else(|e| match e.kind() {
                std::io::ErrorKind::NotFound => Ok(()),
                _ => Err(e),
            })
            .is_ok();
    if copied {
        Db::salvage(&copy)
    } else {
        Salvaged::default()
    }
}

/// Renames the damaged database and its WAL and shared-memory files to
/// `state.db.damaged-<UTC time>` (the others with their suffix after it, so that
/// SQLite still pairs them); returns the new names.
fn move_aside(database: &Path) -> Result<Vec<PathBuf>, EngineError> {
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    let mut aside = with_suffix(database, &format!(".damaged-{stamp}"));
    // Never over an earlier repair's kept file (two repairs within a second).
    for n in 1.. {
        if !aside.exists() {
            break;
        }
        aside = with_suffix(database, &format!(".damaged-{stamp}.{n}"));
    }
    let mut kept = Vec::new();
    for suffix in ["", "-wal", "-shm"] {
        let from = with_suffix(database, suffix);
        let to = with_suffix(&aside, suffix);
        match std::fs::rename(&from, &to) {
            Ok(()) => kept.push(to),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(EngineError::io("rename", &from)(e)),
        }
    }
    Ok(kept)
}

fn remove_database_files(database: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(with_suffix(database, suffix));
    }
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(suffix);
    PathBuf::from(p)
}
