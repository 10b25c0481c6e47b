//! The on-disk store: where things live under the root, and the store lock.
//!
//! Adding content (pull, load) takes the lock shared; deleting layers or blobs (rmi,
//! prune) takes it exclusive, so a delete never removes a layer a concurrent pull has
//! committed but not yet recorded. Everything else relies on SQLite transactions.

use crate::EngineError;
use std::fs::File;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

pub const DEFAULT_ROOT: &str = "/var/lib/coracle";

#[derive(Debug, Clone)]
pub struct StorePaths {
    pub root: PathBuf,
}

impl StorePaths {
    pub fn new(root: impl Into<PathBuf>) -> StorePaths {
        StorePaths { root: root.into() }
    }
    pub fn database(&self) -> PathBuf {
        self.root.join("state.db")
    }
    pub fn blobs(&self) -> PathBuf {
        self.root.join("blobs")
    }
    pub fn layers(&self) -> PathBuf {
        self.root.join("layers")
    }
    pub fn tmp(&self) -> PathBuf {
        self.root.join("tmp")
    }
    pub fn containers(&self) -> PathBuf {
        self.root.join("containers")
    }
    pub fn volumes(&self) -> PathBuf {
        self.root.join("volumes")
    }
    /// Binaries the store provides to containers (the `--init` binary).
    pub fn bin(&self) -> PathBuf {
        self.root.join("bin")
    }
    /// The database and the WAL and shared-memory files SQLite keeps beside it.
    pub(crate) fn database_files(&self) -> [PathBuf; 3] {
        let db = self.database();
        let with = |suffix: &str| {
            let mut p = db.clone().into_os_string();
            p.push(suffix);
            PathBuf::from(p)
        };
        [with("-wal"), with("-shm"), db]
    }
    /// What is wrong with the state database, checked without opening it for writing
    /// (`system check`); None when it is sound.
    pub fn check_database(&self) -> Option<String> {
        coracle_state::Db::check(&self.database())
    }
    fn lock_file(&self) -> PathBuf {
        self.root.join("store.lock")
    }
}

/// Which root to use: `--root`, then `CORACLE_ROOT`, then rootless
/// `$XDG_DATA_HOME/coracle` for non-root users, then `/var/lib/coracle`.
pub fn default_root() -> PathBuf {
    if let Some(r) = std::env::var_os("CORACLE_ROOT").filter(|r| !r.is_empty()) {
        return PathBuf::from(r);
    }
    if !rustix::process::geteuid().is_root() {
        let data = std::env::var_os("XDG_DATA_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".local/share")));
        if let Some(d) = data {
            return d.join("coracle");
        }
    }
    PathBuf::from(DEFAULT_ROOT)
}

pub(crate) struct StoreLock {
    _file: File,
}

#[derive(Clone, Copy)]
pub(crate) enum LockMode {
    Shared,
    Exclusive,
}

impl StorePaths {
    pub(crate) fn lock(&self, mode: LockMode) -> Result<StoreLock, EngineError> {
        let path = self.lock_file();
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(crate::perms::FILE_MODE)
            .open(&path)
            .map_err(EngineError::io("open store lock", &path))?;
        let op = match mode {
            LockMode::Shared => rustix::fs::FlockOperation::LockShared,
            LockMode::Exclusive => rustix::fs::FlockOperation::LockExclusive,
        };
        rustix::fs::flock(&file, op).map_err(|e| EngineError::io("lock store", &path)(e.into()))?;
        Ok(StoreLock { _file: file })
    }
}
