//! Typed queries for containers. Names are unique by constraint, so two concurrent
//! `run --name x` cannot both succeed.

use crate::db::sql_err;
use crate::{Db, StateError};
use coracle_core::Digest;
use rusqlite::{params, OptionalExtension, Row};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerRecord {
    pub id: String,
    pub name: String,
    pub image_id: Digest,
    pub image_name: String,
    pub created_at: i64,
    pub config: String,
    pub state: String,
    pub pid: Option<i64>,
    pub exit_code: Option<i64>,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
}

const COLUMNS: &str = "id, name, image_id, image_name, created_at, config, state, pid, exit_code, started_at, finished_at";

fn row_to_container(r: &Row) -> rusqlite::Result<ContainerRecord> {
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
        pid: r.get(7)?,
        exit_code: r.get(8)?,
        started_at: r.get(9)?,
        finished_at: r.get(10)?,
    })
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
        let holder: Option<String> = tx
            .query_row(
                "SELECT id FROM containers WHERE name = ?1",
                [&c.name],
                |r| r.get(0),
            )
            .optional()
            .map_err(sql_err(&path, "create container"))?;
        if let Some(id) = holder {
            return Err(StateError::NameInUse {
                name: c.name.clone(),
                id,
            });
        }
        tx.execute(
            &format!("INSERT INTO containers ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"),
            params![
                c.id,
                c.name,
                c.image_id.to_string(),
                c.image_name,
                c.created_at,
                c.config,
                c.state,
                c.pid,
                c.exit_code,
                c.started_at,
                c.finished_at
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

    pub fn set_container_running(
        &mut self,
        id: &str,
        pid: i64,
        started_at: &str,
    ) -> Result<(), StateError> {
        self.conn
            .execute(
                "UPDATE containers SET state = 'running', pid = ?2, started_at = ?3, exit_code = NULL WHERE id = ?1",
                params![id, pid, started_at],
            )
            .map_err(self.err("update container"))?;
        Ok(())
    }

    pub fn set_container_exited(
        &mut self,
        id: &str,
        exit_code: i64,
        finished_at: &str,
    ) -> Result<(), StateError> {
        self.conn
            .execute(
                "UPDATE containers SET state = 'exited', pid = NULL, exit_code = ?2, finished_at = ?3 WHERE id = ?1",
                params![id, exit_code, finished_at],
            )
            .map_err(self.err("update container"))?;
        Ok(())
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
        ContainerRecord {
            id: id.into(),
            name: name.into(),
            image_id: image.clone(),
            image_name: "busybox".into(),
            created_at: 1,
            config: "{}".into(),
            state: "created".into(),
            pid: None,
            exit_code: None,
            started_at: None,
            finished_at: None,
        }
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
    }

    #[test]
    fn state_transitions_and_delete() {
        let (_d, mut db, img) = db_with_image();
        db.insert_container(&record("c1", "one", &img)).unwrap();
        db.set_container_running("c1", 42, "2024-01-01T00:00:00Z")
            .unwrap();
        assert_eq!(db.container("c1").unwrap().unwrap().pid, Some(42));
        db.set_container_exited("c1", 3, "2024-01-01T00:00:01Z")
            .unwrap();
        let c = db.container("c1").unwrap().unwrap();
        assert_eq!(
            (c.state.as_str(), c.exit_code, c.pid),
            ("exited", Some(3), None)
        );
        // The image is in use: deleting its record must fail (no cascade).
        assert!(db.delete_image(&img).is_err());
        assert!(db.delete_container("c1").unwrap());
        assert!(db.delete_image(&img).is_ok());
    }
}
