//! Typed queries for containers. Names are unique by constraint, so two concurrent
//! `run --name x` cannot both succeed.

use crate::db::sql_err;
use crate::{ContainerState, Db, StateError};
use coracle_core::Digest;
use rusqlite::{params, OptionalExtension, Row};

/// The states a monitor may claim a container in to start it
/// ([`ContainerState::can_start`]).
const STARTABLE: [ContainerState; 2] = [ContainerState::Created, ContainerState::Exited];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerRecord {
    pub id: String,
    pub name: String,
    pub image_id: Digest,
    pub image_name: String,
    pub created_at: i64,
    pub config: String,
    pub state: ContainerState,
    /// The monitor process: alive while the container runs, pauses or restarts.
    pub monitor_pid: Option<i64>,
    /// The container's init (host pid namespace) while it runs.
    pub init_pid: Option<i64>,
    pub exit_code: Option<i64>,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub restart_count: i64,
    pub oom_killed: bool,
    /// `stop`/`kill` was asked for: the restart policy must not restart it.
    pub stopped_by_user: bool,
    /// Health state as JSON (docker's `State.Health`), when the container has a check.
    pub health: Option<String>,
    /// Why the last start failed (docker's `State.Error`).
    pub error: Option<String>,
}

impl ContainerRecord {
    /// A new record in the `created` state.
    pub fn new_created(
        id: String,
        name: String,
        image_id: Digest,
        image_name: String,
        created_at: i64,
        config: String,
    ) -> ContainerRecord {
        ContainerRecord {
            id,
            name,
            image_id,
            image_name,
            created_at,
            config,
            state: ContainerState::Created,
            monitor_pid: None,
            init_pid: None,
            exit_code: None,
            started_at: None,
            finished_at: None,
            restart_count: 0,
            oom_killed: false,
            stopped_by_user: false,
            health: None,
            error: None,
        }
    }

    /// Running, paused or restarting: a monitor should be alive.
    pub fn is_active(&self) -> bool {
        self.state.is_active()
    }
}

pub(crate) const COLUMNS: &str = "id, name, image_id, image_name, created_at, config, state, monitor_pid, init_pid, exit_code, started_at, finished_at, restart_count, oom_killed, stopped_by_user, health, error";

pub(crate) fn row_to_container(r: &Row) -> rusqlite::Result<ContainerRecord> {
    let image: String = r.get(2)?;
    Ok(ContainerRecord {
        id: r.get(0)?,
        name: r.get(1)?,
        image_id: image.parse().map_err(|_| {
            rusqlite::Error::FromSqlConversionFailure(
                2,
                rusqlite::types::Type::Text,
                Box::new(StateError::Corrupt {
                    what: "container image id",
                    value: image,
                }),
            )
        })?,
        image_name: r.get(3)?,
        created_at: r.get(4)?,
        config: r.get(5)?,
        state: r.get(6)?,
        monitor_pid: r.get(7)?,
        init_pid: r.get(8)?,
        exit_code: r.get(9)?,
        started_at: r.get(10)?,
        finished_at: r.get(11)?,
        restart_count: r.get(12)?,
        oom_killed: r.get(13)?,
        stopped_by_user: r.get(14)?,
        health: r.get(15)?,
        error: r.get(16)?,
    })
}

/// Ok if no container has `name`; else `NameInUse` naming its holder (Ok side of the
/// error), or the SQL error (Err side) for the caller to describe.
fn name_free(
    tx: &rusqlite::Transaction<'_>,
    name: &str,
) -> Result<(), Result<StateError, rusqlite::Error>> {
    let holder: Option<String> = tx
        .query_row("SELECT id FROM containers WHERE name = ?1", [name], |r| {
            r.get(0)
        })
        .optional()
        .map_err(Err)?;
    match holder {
        Some(id) => Err(Ok(StateError::NameInUse {
            name: name.to_string(),
            id,
        })),
        None => Ok(()),
    }
}

impl Db {
    /// Record a new container; a taken name is `StateError::NameInUse` naming the
    /// container that has it.
    pub fn insert_container(&mut self, c: &ContainerRecord) -> Result<(), StateError> {
        let path = self.path.clone();
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(sql_err(&path, "create container"))?;
        name_free(&tx, &c.name)
            .map_err(|e| e.unwrap_or_else(sql_err(&path, "create container")))?;
        tx.execute(
            &format!("INSERT INTO containers ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)"),
            params![
                c.id,
                c.name,
                c.image_id.to_string(),
                c.image_name,
                c.created_at,
                c.config,
                c.state,
                c.monitor_pid,
                c.init_pid,
                c.exit_code,
                c.started_at,
                c.finished_at,
                c.restart_count,
                c.oom_killed,
                c.stopped_by_user,
                c.health,
                c.error
            ],
        )
        .map_err(sql_err(&path, "create container"))?;
        tx.commit().map_err(sql_err(&path, "create container"))
    }

    pub fn container(&self, id: &str) -> Result<Option<ContainerRecord>, StateError> {
        self.conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM containers WHERE id = ?1"),
                [id],
                row_to_container,
            )
            .optional()
            .map_err(self.err("look up container"))
    }

    /// By exact name, exact id, or unique id prefix, as docker resolves them.
    pub fn find_container(&self, key: &str) -> Result<Vec<ContainerRecord>, StateError> {
        let by_name = self
            .conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM containers WHERE name = ?1 OR id = ?1"),
                [key],
                row_to_container,
            )
            .optional()
            .map_err(self.err("look up container"))?;
        if let Some(c) = by_name {
            return Ok(vec![c]);
        }
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(Vec::new());
        }
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM containers WHERE id LIKE ?1"
            ))
            .map_err(self.err("look up container"))?;
        let rows = stmt
            .query_map([format!("{}%", key.to_ascii_lowercase())], row_to_container)
            .map_err(self.err("look up container"))?;
        rows.collect::<Result<_, _>>()
            .map_err(self.err("look up container"))
    }

    pub fn containers(&self) -> Result<Vec<ContainerRecord>, StateError> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM containers ORDER BY created_at DESC, id"
            ))
            .map_err(self.err("list containers"))?;
        let rows = stmt
            .query_map([], row_to_container)
            .map_err(self.err("list containers"))?;
        rows.collect::<Result<_, _>>()
            .map_err(self.err("list containers"))
    }

    /// The ids of the containers in `state`, without reading their records.
    pub fn container_ids_in_state(&self, state: ContainerState) -> Result<Vec<String>, StateError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id FROM containers WHERE state = ?1")
            .map_err(self.err("list containers"))?;
        let rows = stmt
            .query_map([state], |r| r.get(0))
            .map_err(self.err("list containers"))?;
        rows.collect::<Result<_, _>>()
            .map_err(self.err("list containers"))
    }

    fn update(&mut self, sql: &str, params: impl rusqlite::Params) -> Result<bool, StateError> {
        let n = self
            .conn
            .execute(sql, params)
            .map_err(self.err("update container"))?;
        Ok(n > 0)
    }

    /// Frees SQLite's page cache (a long-lived monitor keeps its connection but has
    /// no use for the pages it read while setting up).
    pub fn release_memory(&self) {
        let _ = self.conn.execute_batch("PRAGMA shrink_memory");
    }

    /// A monitor claims a stopped container to start it; false if another one has it
    /// (or it is not stopped). Concurrent `start`s of one container: one wins.
    pub fn claim_container_monitor(
        &mut self,
        id: &str,
        monitor_pid: i64,
    ) -> Result<bool, StateError> {
        self.update(
            "UPDATE containers SET monitor_pid = ?2 WHERE id = ?1 AND monitor_pid IS NULL AND state IN (?3, ?4)",
            params![id, monitor_pid, STARTABLE[0], STARTABLE[1]],
        )
    }

    /// Forgets a monitor that died before it started the container.
    pub fn clear_container_monitor(&mut self, id: &str) -> Result<(), StateError> {
        self.update(
            "UPDATE containers SET monitor_pid = NULL WHERE id = ?1 AND state IN (?2, ?3)",
            params![id, STARTABLE[0], STARTABLE[1]],
        )?;
        Ok(())
    }

    /// The monitor started the container (first start, `start`, or a policy restart).
    pub fn set_container_running(
        &mut self,
        id: &str,
        monitor_pid: i64,
        init_pid: i64,
        started_at: &str,
    ) -> Result<(), StateError> {
        self.update(
            "UPDATE containers SET state = ?5, monitor_pid = ?2, init_pid = ?3, started_at = ?4, exit_code = NULL, oom_killed = 0, error = NULL WHERE id = ?1",
            params![id, monitor_pid, init_pid, started_at, ContainerState::Running],
        )?;
        Ok(())
    }

    /// The container stopped for good (its monitor is done with it).
    pub fn set_container_exited(
        &mut self,
        id: &str,
        exit_code: i64,
        finished_at: &str,
        oom_killed: bool,
    ) -> Result<(), StateError> {
        self.update(
            "UPDATE containers SET state = ?5, monitor_pid = NULL, init_pid = NULL, exit_code = ?2, finished_at = ?3, oom_killed = ?4 WHERE id = ?1",
            params![id, exit_code, finished_at, oom_killed, ContainerState::Exited],
        )?;
        Ok(())
    }

    /// The container exited and its monitor will start it again (restart policy).
    pub fn set_container_restarting(
        &mut self,
        id: &str,
        exit_code: i64,
        finished_at: &str,
        oom_killed: bool,
    ) -> Result<(), StateError> {
        self.update(
            "UPDATE containers SET state = ?5, init_pid = NULL, exit_code = ?2, finished_at = ?3, oom_killed = ?4, restart_count = restart_count + 1 WHERE id = ?1",
            params![id, exit_code, finished_at, oom_killed, ContainerState::Restarting],
        )?;
        Ok(())
    }

    /// Starting failed (docker keeps the container `created`, with the exit code its
    /// command would have had and the error).
    pub fn set_container_start_failed(
        &mut self,
        id: &str,
        exit_code: i64,
        error: &str,
    ) -> Result<(), StateError> {
        self.update(
            "UPDATE containers SET state = ?4, monitor_pid = NULL, init_pid = NULL, exit_code = ?2, error = ?3 WHERE id = ?1",
            params![id, exit_code, error, ContainerState::Created],
        )?;
        Ok(())
    }

    /// `running` <-> `paused`; only from the other of the two.
    pub fn set_container_paused(&mut self, id: &str, paused: bool) -> Result<bool, StateError> {
        let (from, to) = if paused {
            (ContainerState::Running, ContainerState::Paused)
        } else {
            (ContainerState::Paused, ContainerState::Running)
        };
        self.update(
            "UPDATE containers SET state = ?3 WHERE id = ?1 AND state = ?2",
            params![id, from, to],
        )
    }

    /// `stop`/`kill` asked for it (true), or `start` cleared it (false).
    pub fn set_container_stopped_by_user(&mut self, id: &str, v: bool) -> Result<(), StateError> {
        self.update(
            "UPDATE containers SET stopped_by_user = ?2 WHERE id = ?1",
            params![id, v],
        )?;
        Ok(())
    }

    pub fn set_container_health(
        &mut self,
        id: &str,
        health: Option<&str>,
    ) -> Result<(), StateError> {
        self.update(
            "UPDATE containers SET health = ?2 WHERE id = ?1",
            params![id, health],
        )?;
        Ok(())
    }

    /// Replaces the stored creation config (JSON).
    pub fn set_container_config(&mut self, id: &str, config: &str) -> Result<(), StateError> {
        self.update(
            "UPDATE containers SET config = ?2 WHERE id = ?1",
            params![id, config],
        )?;
        Ok(())
    }

    /// Renames; a taken name is `NameInUse` naming its holder.
    pub fn rename_container(&mut self, id: &str, new_name: &str) -> Result<(), StateError> {
        let path = self.path.clone();
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(sql_err(&path, "rename container"))?;
        name_free(&tx, new_name)
            .map_err(|e| e.unwrap_or_else(sql_err(&path, "rename container")))?;
        tx.execute(
            "UPDATE containers SET name = ?2 WHERE id = ?1",
            params![id, new_name],
        )
        .map_err(sql_err(&path, "rename container"))?;
        tx.commit().map_err(sql_err(&path, "rename container"))
    }

    pub fn delete_container(&mut self, id: &str) -> Result<bool, StateError> {
        let n = self
            .conn
            .execute("DELETE FROM containers WHERE id = ?1", [id])
            .map_err(self.err("remove container"))?;
        Ok(n > 0)
    }

    /// Containers created from an image (rmi refuses to delete it while any exist).
    pub fn containers_using(&self, image: &Digest) -> Result<Vec<String>, StateError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id FROM containers WHERE image_id = ?1 ORDER BY id")
            .map_err(self.err("list containers"))?;
        let rows = stmt
            .query_map([image.to_string()], |r| r.get(0))
            .map_err(self.err("list containers"))?;
        rows.collect::<Result<_, _>>()
            .map_err(self.err("list containers"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ImageLayer, NewImage};

    fn record(id: &str, name: &str, image: &Digest) -> ContainerRecord {
        ContainerRecord::new_created(
            id.into(),
            name.into(),
            image.clone(),
            "busybox".into(),
            1,
            "{}".into(),
        )
    }

    fn db_with_image() -> (tempfile::TempDir, Db, Digest) {
        let dir = tempfile::tempdir().unwrap();
        let mut db = Db::open(&dir.path().join("state.db")).unwrap();
        let id = Digest::sha256_of(b"img");
        let diff = Digest::sha256_of(b"layer");
        db.put_image(&NewImage {
            id: id.clone(),
            manifest_digest: Digest::sha256_of(b"m"),
            manifest: vec![],
            manifest_type: "x".into(),
            config: vec![],
            created: None,
            os: "linux".into(),
            architecture: "amd64".into(),
            variant: None,
            layers: vec![ImageLayer {
                chain_id: diff.clone(),
                diff_id: diff.clone(),
                blob_digest: diff,
                blob_size: 1,
                media_type: "x".into(),
                size: 1,
            }],
        })
        .unwrap();
        (dir, db, id)
    }

    #[test]
    fn names_are_unique_and_lookup_follows_docker() {
        let (_d, mut db, img) = db_with_image();
        db.insert_container(&record("abc123", "web", &img)).unwrap();
        let err = db
            .insert_container(&record("abd999", "web", &img))
            .unwrap_err();
        assert!(
            matches!(err, StateError::NameInUse { ref id, .. } if id == "abc123"),
            "{err}"
        );
        db.insert_container(&record("abd999", "db", &img)).unwrap();
        assert_eq!(db.find_container("web").unwrap()[0].id, "abc123");
        assert_eq!(db.find_container("abc").unwrap().len(), 1);
        assert_eq!(
            db.find_container("ab").unwrap().len(),
            2,
            "ambiguous prefix"
        );
        assert!(db.find_container("zz").unwrap().is_empty());
        assert_eq!(db.containers_using(&img).unwrap().len(), 2);
        let err = db.rename_container("abd999", "web").unwrap_err();
        assert!(matches!(err, StateError::NameInUse { .. }), "{err}");
        db.rename_container("abd999", "cache").unwrap();
        assert_eq!(db.find_container("cache").unwrap()[0].id, "abd999");
    }

    #[test]
    fn state_transitions_and_delete() {
        let (_d, mut db, img) = db_with_image();
        db.insert_container(&record("c1", "one", &img)).unwrap();
        assert!(db.claim_container_monitor("c1", 42).unwrap());
        assert!(!db.claim_container_monitor("c1", 50).unwrap(), "claimed");
        db.set_container_running("c1", 42, 43, "2024-01-01T00:00:00Z")
            .unwrap();
        let c = db.container("c1").unwrap().unwrap();
        assert_eq!((c.monitor_pid, c.init_pid), (Some(42), Some(43)));
        assert!(db.set_container_paused("c1", true).unwrap());
        assert!(
            !db.set_container_paused("c1", true).unwrap(),
            "already paused"
        );
        assert_eq!(
            db.container("c1").unwrap().unwrap().state,
            ContainerState::Paused
        );
        assert!(db.set_container_paused("c1", false).unwrap());
        db.set_container_restarting("c1", 1, "2024-01-01T00:00:01Z", false)
            .unwrap();
        let c = db.container("c1").unwrap().unwrap();
        assert_eq!((c.state, c.restart_count), (ContainerState::Restarting, 1));
        db.set_container_exited("c1", 3, "2024-01-01T00:00:01Z", true)
            .unwrap();
        let c = db.container("c1").unwrap().unwrap();
        assert_eq!(
            (c.state, c.exit_code, c.monitor_pid, c.oom_killed),
            (ContainerState::Exited, Some(3), None, true)
        );
        db.set_container_start_failed("c1", 127, "exec: not found")
            .unwrap();
        let c = db.container("c1").unwrap().unwrap();
        assert_eq!(
            (c.state, c.exit_code, c.error.as_deref()),
            (ContainerState::Created, Some(127), Some("exec: not found"))
        );
        // The image is in use: deleting its record must fail (no cascade).
        assert!(db.delete_image(&img).is_err());
        assert!(db.delete_container("c1").unwrap());
        assert!(db.delete_image(&img).is_ok());
    }

    #[test]
    fn monitors_claim_exactly_the_startable_states() {
        let startable: Vec<ContainerState> = ContainerState::ALL
            .into_iter()
            .filter(|s| s.can_start())
            .collect();
        assert_eq!(startable, STARTABLE);
        let (_d, mut db, img) = db_with_image();
        db.insert_container(&record("c1", "one", &img)).unwrap();
        db.set_container_running("c1", 42, 43, "2024-01-01T00:00:00Z")
            .unwrap();
        db.clear_container_monitor("c1").unwrap();
        assert!(!db.claim_container_monitor("c1", 50).unwrap(), "running");
        db.set_container_exited("c1", 0, "2024-01-01T00:00:01Z", false)
            .unwrap();
        assert!(db.claim_container_monitor("c1", 50).unwrap(), "exited");
    }

    #[test]
    fn states_are_stored_as_dockers_words_and_unknown_ones_are_corrupt() {
        let (_d, mut db, img) = db_with_image();
        db.insert_container(&record("c1", "one", &img)).unwrap();
        db.set_container_running("c1", 42, 43, "2024-01-01T00:00:00Z")
            .unwrap();
        let stored: String = db
            .conn
            .query_row("SELECT state FROM containers WHERE id = 'c1'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(stored, "running");
        // A database written by another version (or damaged): an error, never a panic.
        db.conn
            .execute("UPDATE containers SET state = 'dead' WHERE id = 'c1'", [])
            .unwrap();
        let err = db.container("c1").unwrap_err();
        assert_eq!(err.kind(), coracle_core::ErrorKind::Internal);
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&err);
        let mut corrupt = None;
        while let Some(c) = cause {
            if let Some(StateError::Corrupt { what, value }) = c.downcast_ref::<StateError>() {
                corrupt = Some((*what, value.clone()));
            }
            cause = c.source();
        }
        assert_eq!(
            corrupt,
            Some(("container state", "dead".to_string())),
            "{err}"
        );
        assert!(err.to_string().contains("\"dead\""), "{err}");
        assert!(db.containers().is_err());
        assert_eq!(
            db.container_ids_in_state(ContainerState::Running).unwrap(),
            Vec::<String>::new()
        );
    }
}
