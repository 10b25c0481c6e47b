use crate::{schema::MIGRATIONS, StateError};
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long a writer waits for another process's transaction before giving up.
/// Concurrent CLI calls are normal (no daemon serialises them), so be generous.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Db {
    pub(crate) conn: Connection,
    pub(crate) path: PathBuf,
}

impl Db {
    /// Open (creating and migrating if needed) the database at `path`.
    pub fn open(path: &Path) -> Result<Db, StateError> {
        let err = |op| {
            let path = path.display().to_string();
            move |source| StateError::Sqlite { path, op, source }
        };
        create_private(path).map_err(|source| StateError::Create {
            path: path.display().to_string(),
            source,
        })?;
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(err("open"))?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(err("busy_timeout"))?;
        // WAL: readers never block the writer; NORMAL sync is durable at checkpoints and
        // never corrupts (a crash can lose only the last transactions, which GC redoes).
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(err("journal_mode"))?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(err("synchronous"))?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(err("foreign_keys"))?;
        let mut db = Db {
            conn,
            path: path.to_path_buf(),
        };
        db.migrate()?;
        Ok(db)
    }

    pub(crate) fn err(&self, op: &'static str) -> impl FnOnce(rusqlite::Error) -> StateError {
        sql_err(&self.path, op)
    }

    fn migrate(&mut self) -> Result<(), StateError> {
        let version: i64 = self
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(self.err("read schema version"))?;
        let supported = MIGRATIONS.len() as i64;
        if version > supported {
            return Err(StateError::TooNew {
                path: self.path.display().to_string(),
                found: version,
                supported,
            });
        }
        if version == supported {
            return Ok(());
        }
        let path = self.path.clone();
        let e = sql_err(&path, "migrate");
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(e)?;
        // Another process may have migrated while we waited for the write lock.
        let version: i64 = tx
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(sql_err(&path, "read schema version"))?;
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            tx.execute_batch(sql).map_err(sql_err(&path, "migrate"))?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)
                .map_err(sql_err(&path, "migrate"))?;
        }
        tx.commit().map_err(sql_err(&path, "migrate"))
    }
}

/// The database holds containers' environments (secrets): create it 0600 before
/// SQLite does (it would use 0644). SQLite gives its WAL and shared-memory files the
/// database file's mode, so those are 0600 too. An empty file is an empty database.
fn create_private(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        r => r.map(drop),
    }
}

/// Wraps a SQLite error with the database path and the operation that failed.
pub(crate) fn sql_err(path: &Path, op: &'static str) -> impl FnOnce(rusqlite::Error) -> StateError {
    let path = path.display().to_string();
    move |source| StateError::Sqlite { path, op, source }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    /// Under a permissive umask too: the database and SQLite's WAL and shared-memory
    /// files hold containers' environments.
    #[test]
    fn database_files_are_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        // SAFETY: umask(2) only sets this process's file creation mask; restored
        // right after (other tests meanwhile create files as with a 0 mask: harmless).
        let old = unsafe { umask(0) };
        let db = Db::open(&path);
        unsafe { umask(old) };
        let db = db.unwrap();
        db.conn
            .execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
            .unwrap();
        for suffix in ["", "-wal", "-shm"] {
            let p = PathBuf::from(format!("{}{suffix}", path.display()));
            assert_eq!(mode(&p), 0o600, "{}", p.display());
        }
    }

    // libc's (std links it); mode_t is u32 on Linux.
    extern "C" {
        fn umask(mask: u32) -> u32;
    }
}
