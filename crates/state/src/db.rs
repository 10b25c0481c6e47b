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
        if let Some(why) = damage(path) {
            return Err(StateError::Damaged {
                path: path.display().to_string(),
                why,
            });
        }
        balance_reserve(path);
        create_private(path).map_err(|source| StateError::Create {
            path: path.display().to_string(),
            source,
        })?;
        Db::open_unchecked(path)
    }

    /// A new, empty database at `path`, which must not exist: `system check --repair`
    /// builds the replacement of a damaged database here before moving it into place.
    pub fn create(path: &Path) -> Result<Db, StateError> {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|source| StateError::Create {
                path: path.display().to_string(),
                source,
            })?;
        Db::open_unchecked(path)
    }

    /// Checkpoints the write-ahead log into the database file and closes it, so that
    /// the file alone holds everything (it can then be renamed).
    pub fn close(self) -> Result<(), StateError> {
        let e = sql_err(&self.path, "close");
        self.conn
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
            .map_err(sql_err(&self.path, "checkpoint"))?;
        self.conn.close().map_err(|(_, source)| e(source))
    }

    fn open_unchecked(path: &Path) -> Result<Db, StateError> {
        let err = |op| sql_err(path, op);
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
        set_wal(&conn).map_err(err("journal_mode"))?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(err("synchronous"))?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(err("foreign_keys"))?;
        let mut db = Db {
            conn,
            path: path.to_path_buf(),
        };
        db.migrate().map_err(|e| damaged_if_corrupt(path, e))?;
        Ok(db)
    }

    /// What is wrong with the database at `path`, read without opening it for
    /// writing: None when it is sound (or absent in a store with nothing in it).
    pub fn check(path: &Path) -> Option<String> {
        if let Some(why) = damage(path) {
            return Some(why);
        }
        if !path.exists() {
            return None;
        }
        let conn = match Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY) {
            Ok(c) => c,
            Err(e) => return Some(e.to_string()),
        };
        let _ = conn.busy_timeout(BUSY_TIMEOUT);
        let result: Result<Vec<String>, rusqlite::Error> = conn
            .prepare("PRAGMA quick_check")
            .and_then(|mut st| st.query_map([], |r| r.get(0))?.collect());
        match result {
            Ok(rows) if rows == ["ok"] => None,
            Ok(rows) => Some(rows.join("; ")),
            Err(e) => Some(e.to_string()),
        }
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

/// SQLite's first 16 bytes of every database file.
const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";

/// Whether the store around the database (its parent directory) holds containers,
/// layers or blobs: then a missing or empty database is damage, not a new store.
fn store_has_content(db: &Path) -> bool {
    let Some(root) = db.parent() else {
        return false;
    };
    ["containers", "layers", "blobs/sha256"].iter().any(|d| {
        std::fs::read_dir(root.join(d)).is_ok_and(|mut rd| {
            rd.any(|e| e.is_ok_and(|e| !e.file_name().to_string_lossy().starts_with('.')))
        })
    })
}

/// Why the file at `path` cannot be the store's database, checked before SQLite opens
/// it: an emptied file would otherwise become a fresh database (orphaning everything
/// the store holds), and garbage made SQLite wait for locks it never gets.
fn damage(path: &Path) -> Option<String> {
    use std::io::Read;
    let mut header = [0u8; 16];
    let read = std::fs::File::open(path).and_then(|mut f| {
        let mut n = 0;
        while n < header.len() {
            match f.read(&mut header[n..])? {
                0 => break,
                m => n += m,
            }
        }
        Ok(n)
    });
    match read {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            store_has_content(path).then(|| "missing".to_string())
        }
        Err(_) => None, // Opening reports it with SQLite's words and the path.
        Ok(0) => store_has_content(path).then(|| "empty".to_string()),
        Ok(n) if n < header.len() || &header != SQLITE_HEADER => {
            Some("not an SQLite database".to_string())
        }
        Ok(_) => None,
    }
}

/// SQLite's corruption errors while opening, as [`StateError::Damaged`].
fn damaged_if_corrupt(path: &Path, e: StateError) -> StateError {
    match &e {
        StateError::Sqlite { source, .. }
            if matches!(
                source.sqlite_error_code(),
                Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase)
            ) =>
        {
            StateError::Damaged {
                path: path.display().to_string(),
                why: source.to_string(),
            }
        }
        _ => e,
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

/// Wraps a SQLite error with the database path and the operation that failed; a
/// failed write on a full store says so, naming the store (SQLite says "disk I/O
/// error" when it cannot grow its shared-memory file).
pub(crate) fn sql_err(path: &Path, op: &'static str) -> impl FnOnce(rusqlite::Error) -> StateError {
    let path = path.to_path_buf();
    move |source| {
        // SQLITE_FULL is a full disk; an I/O error counts as one when the store is
        // (nearly) full, as SQLite reports a shared-memory file it cannot grow.
        let store = path.parent().unwrap_or(Path::new("/"));
        let no_space = match source.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DiskFull) => true,
            Some(rusqlite::ErrorCode::SystemIoFailure) => {
                free_bytes(store).is_some_and(|f| f < RESERVE)
            }
            _ => false,
        };
        if no_space {
            return StateError::NoSpace {
                path: path.display().to_string(),
                store: store.display().to_string(),
                op,
            };
        }
        StateError::Sqlite {
            path: path.display().to_string(),
            op,
            source,
        }
    }
}

/// Space the store keeps in `state.db.reserve` so that a full store can still be
/// cleaned up: SQLite needs room for its shared-memory file and its write-ahead log
/// even to delete rows.
const RESERVE: u64 = 4 << 20;

fn reserve_path(db: &Path) -> PathBuf {
    let mut p = db.as_os_str().to_owned();
    p.push(".reserve");
    PathBuf::from(p)
}

fn free_bytes(dir: &Path) -> Option<u64> {
    let s = rustix::fs::statvfs(dir).ok()?;
    Some(s.f_bavail.saturating_mul(s.f_frsize))
}

/// Releases the reserve when the store is (nearly) full, so that this command's
/// deletes have room; makes it again once there is space to spare. Best effort: a
/// store without one works as before.
fn balance_reserve(db: &Path) {
    let Some(dir) = db.parent() else {
        return;
    };
    let Some(free) = free_bytes(dir) else {
        return;
    };
    let reserve = reserve_path(db);
    if free < RESERVE / 2 {
        let _ = std::fs::remove_file(&reserve);
    } else if free > 2 * RESERVE && !reserve.exists() {
        let _ = make_reserve(&reserve);
    }
}

/// Writes the reserve's bytes for real (a sparse file would hold no space) under a
/// temporary name, then renames it into place.
fn make_reserve(reserve: &Path) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut tmp = reserve.as_os_str().to_owned();
    tmp.push(format!(".tmp-{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| {
            let zeros = vec![0u8; 1 << 20];
            for _ in 0..RESERVE / zeros.len() as u64 {
                f.write_all(&zeros)?;
            }
            f.sync_all()
        })
        .and_then(|()| std::fs::rename(&tmp, reserve));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// Switches the database to WAL (persistent: a store's later opens find it set). The
/// switch needs an exclusive lock, and SQLite answers BUSY at once, without waiting in
/// the busy handler, when another connection holds a lock it would have to wait on
/// (several first commands on a new store at once): retry until `BUSY_TIMEOUT`.
fn set_wal(conn: &Connection) -> Result<(), rusqlite::Error> {
    let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
    loop {
        let mode: Result<String, _> =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0));
        match mode {
            Ok(_) => return Ok(()),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            Err(e) => return Err(e),
        }
    }
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
