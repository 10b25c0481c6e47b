//! What can still be read from a damaged database, for `system check --repair`: the
//! rows only the database knows (tags, repo digests, containers' records, networks and
//! their endpoints). Read row by
//! row: a table is read up to the first page SQLite cannot read, rows that do not
//! parse are skipped.

use crate::containers::{row_to_container, COLUMNS};
use crate::networks::{row_to_endpoint, row_to_network, NETWORK_COLUMNS};
use crate::{ContainerRecord, EndpointConfig, NetworkRecord};
use coracle_core::Digest;
use rusqlite::{Connection, OpenFlags};
use std::path::Path;
use std::time::Duration;

/// Rows read from a damaged database (empty when nothing could be read).
#[derive(Debug, Default)]
pub struct Salvaged {
    /// `registry/repository:tag` and the image it names.
    pub tags: Vec<(String, Digest)>,
    /// `registry/repository@digest` and the image it names.
    pub repo_digests: Vec<(String, Digest)>,
    pub containers: Vec<ContainerRecord>,
    pub networks: Vec<NetworkRecord>,
    /// Container id and one of its endpoints, in each container's order.
    pub endpoints: Vec<(String, EndpointConfig)>,
}

impl crate::Db {
    /// Reads what it can from the database at `path`, which must be a copy: SQLite
    /// may write to it (recovering its write-ahead log). Never fails: an unreadable
    /// file salvages nothing.
    pub fn salvage(path: &Path) -> Salvaged {
        let Ok(conn) = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        ) else {
            return Salvaged::default();
        };
        // A copy nobody else has open: waiting would only hide a broken lock.
        let _ = conn.busy_timeout(Duration::from_millis(100));
        let names = |sql: &str| -> Vec<(String, Digest)> {
            rows(&conn, sql, |r| {
                let (name, image): (String, String) = (r.get(0)?, r.get(1)?);
                Ok(image.parse().ok().map(|d| (name, d)))
            })
            .into_iter()
            .flatten()
            .collect()
        };
        Salvaged {
            tags: names("SELECT name, image_id FROM tags"),
            repo_digests: names("SELECT name, image_id FROM repo_digests"),
            containers: rows(
                &conn,
                &format!("SELECT {COLUMNS} FROM containers"),
                row_to_container,
            ),
            networks: rows(
                &conn,
                &format!("SELECT {NETWORK_COLUMNS} FROM networks"),
                row_to_network,
            ),
            endpoints: rows(
                &conn,
                "SELECT network_id, aliases, ip, mac, container_id FROM container_endpoints
                 ORDER BY container_id, position",
                |r| Ok((r.get(4)?, row_to_endpoint(r)?)),
            ),
        }
    }
}

/// The rows of `sql` up to the first one SQLite cannot read, less those `map` refuses.
fn rows<T>(
    conn: &Connection,
    sql: &str,
    map: impl Fn(&rusqlite::Row) -> rusqlite::Result<T>,
) -> Vec<T> {
    let Ok(mut stmt) = conn.prepare(sql) else {
        return Vec::new();
    };
    let Ok(mut it) = stmt.query([]) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    while let Ok(Some(row)) = it.next() {
        match map(row) {
            Ok(v) => out.push(v),
            Err(_) => continue,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Db;

    #[test]
    fn salvages_the_rows_of_a_readable_database() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let mut db = Db::open(&path).unwrap();
        let id: Digest = format!("sha256:{}", "a".repeat(64)).parse().unwrap();
        db.put_image(&crate::NewImage {
            id: id.clone(),
            manifest_digest: id.clone(),
            manifest: b"{}".to_vec(),
            manifest_type: "m".into(),
            config: b"{}".to_vec(),
            created: None,
            os: "linux".into(),
            architecture: "amd64".into(),
            variant: None,
            layers: Vec::new(),
        })
        .unwrap();
        db.set_tag("docker.io/library/box:latest", &id).unwrap();
        let c = ContainerRecord::new_created(
            "b".repeat(64),
            "keep".into(),
            id.clone(),
            "box".into(),
            1,
            "{}".into(),
        );
        db.insert_container(&c).unwrap();
        db.close().unwrap();
        let s = Db::salvage(&path);
        assert_eq!(s.tags, vec![("docker.io/library/box:latest".into(), id)]);
        assert_eq!(s.containers, vec![c]);
        assert!(s.repo_digests.is_empty());
    }

    #[test]
    fn salvages_nothing_from_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        std::fs::write(&path, vec![0x5a; 8192]).unwrap();
        let s = Db::salvage(&path);
        assert!(s.tags.is_empty() && s.containers.is_empty());
    }
}
