//! Typed queries for images, their layers, tags and repo digests. Layer reference
//! counts are derived (how many images list a chain ID), never stored, so they cannot
//! drift from the truth.

use crate::db::sql_err;
use crate::{Db, StateError};
use coracle_core::Digest;
use rusqlite::{params, OptionalExtension, Row};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageLayer {
    pub chain_id: Digest,
    pub diff_id: Digest,
    pub blob_digest: Digest,
    pub blob_size: u64,
    pub media_type: String,
    /// Bytes of unpacked content.
    pub size: u64,
}

/// What a pull or load records once every layer is in place.
#[derive(Debug, Clone)]
pub struct NewImage {
    pub id: Digest,
    pub manifest_digest: Digest,
    pub manifest: Vec<u8>,
    pub manifest_type: String,
    pub config: Vec<u8>,
    pub created: Option<String>,
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
    pub layers: Vec<ImageLayer>,
}

#[derive(Debug, Clone)]
pub struct ImageRecord {
    pub id: Digest,
    pub manifest_digest: Digest,
    pub manifest: Vec<u8>,
    pub manifest_type: String,
    pub config: Vec<u8>,
    pub created: Option<String>,
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
    pub added_at: i64,
    /// `registry/repository:tag`, sorted.
    pub tags: Vec<String>,
    /// `registry/repository@digest`, sorted.
    pub repo_digests: Vec<String>,
    pub layers: Vec<ImageLayer>,
}

impl ImageRecord {
    /// Unpacked size of all layers, docker's SIZE column.
    pub fn size(&self) -> u64 {
        self.layers.iter().map(|l| l.size).sum()
    }
}

fn digest(row: &Row, idx: usize, what: &'static str) -> rusqlite::Result<Digest> {
    let s: String = row.get(idx)?;
    s.parse().map_err(|_| {
        rusqlite::Error::FromSqlConversionFailure(
            idx,
            rusqlite::types::Type::Text,
            Box::new(StateError::Corrupt { what, value: s }),
        )
    })
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl Db {
    /// Record an image and its layers (idempotent: a second pull of the same image
    /// changes nothing). Call only once every layer directory is committed.
    pub fn put_image(&mut self, img: &NewImage) -> Result<(), StateError> {
        let path = self.path.clone();
        let e = sql_err(&path, "record image");
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(e)?;
        let inserted = tx
            .execute(
                "INSERT OR IGNORE INTO images (id, manifest_digest, manifest, manifest_type, config,
                    created, os, architecture, variant, added_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![
                    img.id.to_string(),
                    img.manifest_digest.to_string(),
                    img.manifest,
                    img.manifest_type,
                    img.config,
                    img.created,
                    img.os,
                    img.architecture,
                    img.variant,
                    now()
                ],
            )
            .map_err(sql_err(&path, "record image"))?;
        if inserted == 1 {
            for (pos, l) in img.layers.iter().enumerate() {
                tx.execute(
                    "INSERT OR IGNORE INTO layers (chain_id, diff_id, size) VALUES (?1, ?2, ?3)",
                    params![l.chain_id.to_string(), l.diff_id.to_string(), l.size as i64],
                )
                .map_err(sql_err(&path, "record layer"))?;
                tx.execute(
                    "INSERT INTO image_layers (image_id, position, chain_id, blob_digest, blob_size, media_type)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![
                        img.id.to_string(),
                        pos as i64,
                        l.chain_id.to_string(),
                        l.blob_digest.to_string(),
                        l.blob_size as i64,
                        l.media_type
                    ],
                )
                .map_err(sql_err(&path, "record image layer"))?;
            }
        }
        tx.commit().map_err(sql_err(&path, "record image"))
    }

    /// Point `name` (`registry/repo:tag`) at an image; returns the image it pointed at
    /// before, if that was another one.
    pub fn set_tag(&mut self, name: &str, image: &Digest) -> Result<Option<Digest>, StateError> {
        let path = self.path.clone();
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(sql_err(&path, "tag image"))?;
        let previous: Option<String> = tx
            .query_row("SELECT image_id FROM tags WHERE name = ?1", [name], |r| {
                r.get(0)
            })
            .optional()
            .map_err(sql_err(&path, "tag image"))?;
        tx.execute(
            "INSERT INTO tags (name, image_id) VALUES (?1, ?2)
             ON CONFLICT(name) DO UPDATE SET image_id = excluded.image_id",
            params![name, image.to_string()],
        )
        .map_err(sql_err(&path, "tag image"))?;
        tx.commit().map_err(sql_err(&path, "tag image"))?;
        let id = image.to_string();
        Ok(previous.filter(|p| *p != id).and_then(|p| p.parse().ok()))
    }

    /// Remove a tag; returns whether it existed.
    pub fn remove_tag(&mut self, name: &str) -> Result<bool, StateError> {
        let n = self
            .conn
            .execute("DELETE FROM tags WHERE name = ?1", [name])
            .map_err(self.err("untag image"))?;
        Ok(n > 0)
    }

    pub fn add_repo_digest(&mut self, name: &str, image: &Digest) -> Result<(), StateError> {
        self.conn
            .execute(
                "INSERT INTO repo_digests (name, image_id) VALUES (?1, ?2)
                 ON CONFLICT(name) DO UPDATE SET image_id = excluded.image_id",
                params![name, image.to_string()],
            )
            .map_err(self.err("record repo digest"))?;
        Ok(())
    }

    pub fn remove_repo_digest(&mut self, name: &str) -> Result<bool, StateError> {
        let n = self
            .conn
            .execute("DELETE FROM repo_digests WHERE name = ?1", [name])
            .map_err(self.err("remove repo digest"))?;
        Ok(n > 0)
    }

    pub fn image_by_tag(&self, name: &str) -> Result<Option<Digest>, StateError> {
        self.lookup("SELECT image_id FROM tags WHERE name = ?1", name)
    }

    pub fn image_by_repo_digest(&self, name: &str) -> Result<Option<Digest>, StateError> {
        self.lookup("SELECT image_id FROM repo_digests WHERE name = ?1", name)
    }

    fn lookup(&self, sql: &str, key: &str) -> Result<Option<Digest>, StateError> {
        self.conn
            .query_row(sql, [key], |r| digest(r, 0, "image id"))
            .optional()
            .map_err(self.err("look up image"))
    }

    /// Image ids starting with `prefix` (hex, with or without `sha256:`).
    pub fn images_by_id_prefix(&self, prefix: &str) -> Result<Vec<Digest>, StateError> {
        let full = if prefix.contains(':') {
            prefix.to_string()
        } else {
            format!("sha256:{prefix}")
        };
        // Escape LIKE wildcards: the prefix is user input.
        let pattern = full
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
            + "%";
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id FROM images WHERE id LIKE ?1 ESCAPE '\\'")
            .map_err(self.err("look up image"))?;
        let rows = stmt
            .query_map([pattern], |r| digest(r, 0, "image id"))
            .map_err(self.err("look up image"))?;
        rows.collect::<Result<_, _>>()
            .map_err(self.err("look up image"))
    }

    pub fn image(&self, id: &Digest) -> Result<Option<ImageRecord>, StateError> {
        Ok(self
            .query_images("WHERE i.id = ?1", &[&id.to_string()])?
            .pop())
    }

    /// Every image, newest first.
    pub fn images(&self) -> Result<Vec<ImageRecord>, StateError> {
        self.query_images("", &[])
    }

    fn query_images(
        &self,
        filter: &str,
        args: &[&dyn rusqlite::ToSql],
    ) -> Result<Vec<ImageRecord>, StateError> {
        let e = || self.err("list images");
        let sql = format!(
            "SELECT i.id, i.manifest_digest, i.manifest, i.manifest_type, i.config, i.created,
                    i.os, i.architecture, i.variant, i.added_at
             FROM images i {filter} ORDER BY COALESCE(i.created, '') DESC, i.added_at DESC, i.id"
        );
        let mut stmt = self.conn.prepare_cached(&sql).map_err(e())?;
        let mut images: Vec<ImageRecord> = stmt
            .query_map(args, |r| {
                Ok(ImageRecord {
                    id: digest(r, 0, "image id")?,
                    manifest_digest: digest(r, 1, "manifest digest")?,
                    manifest: r.get(2)?,
                    manifest_type: r.get(3)?,
                    config: r.get(4)?,
                    created: r.get(5)?,
                    os: r.get(6)?,
                    architecture: r.get(7)?,
                    variant: r.get(8)?,
                    added_at: r.get(9)?,
                    tags: Vec::new(),
                    repo_digests: Vec::new(),
                    layers: Vec::new(),
                })
            })
            .map_err(e())?
            .collect::<Result<_, _>>()
            .map_err(e())?;
        let mut tags = self
            .conn
            .prepare_cached("SELECT name FROM tags WHERE image_id = ?1 ORDER BY name")
            .map_err(e())?;
        let mut digests = self
            .conn
            .prepare_cached("SELECT name FROM repo_digests WHERE image_id = ?1 ORDER BY name")
            .map_err(e())?;
        let mut layers = self
            .conn
            .prepare_cached(
                "SELECT il.chain_id, l.diff_id, il.blob_digest, il.blob_size, il.media_type, l.size
                 FROM image_layers il JOIN layers l ON l.chain_id = il.chain_id
                 WHERE il.image_id = ?1 ORDER BY il.position",
            )
            .map_err(e())?;
        for img in &mut images {
            let id = img.id.to_string();
            img.tags = tags
                .query_map([&id], |r| r.get(0))
                .map_err(e())?
                .collect::<Result<_, _>>()
                .map_err(e())?;
            img.repo_digests = digests
                .query_map([&id], |r| r.get(0))
                .map_err(e())?
                .collect::<Result<_, _>>()
                .map_err(e())?;
            img.layers = layers
                .query_map([&id], |r| {
                    Ok(ImageLayer {
                        chain_id: digest(r, 0, "chain id")?,
                        diff_id: digest(r, 1, "diff id")?,
                        blob_digest: digest(r, 2, "blob digest")?,
                        blob_size: r.get::<_, i64>(3)? as u64,
                        media_type: r.get(4)?,
                        size: r.get::<_, i64>(5)? as u64,
                    })
                })
                .map_err(e())?
                .collect::<Result<_, _>>()
                .map_err(e())?;
        }
        Ok(images)
    }

    /// Delete an image record (its tags and repo digests go with it). Returns the chain
    /// IDs that no image references any more, whose directories the caller removes.
    pub fn delete_image(&mut self, id: &Digest) -> Result<Vec<Digest>, StateError> {
        let path = self.path.clone();
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(sql_err(&path, "delete image"))?;
        tx.execute("DELETE FROM images WHERE id = ?1", [id.to_string()])
            .map_err(sql_err(&path, "delete image"))?;
        let orphans: Vec<Digest> = {
            let mut stmt = tx
                .prepare(
                    "SELECT chain_id FROM layers
                     WHERE chain_id NOT IN (SELECT chain_id FROM image_layers)",
                )
                .map_err(sql_err(&path, "delete image"))?;
            let rows = stmt
                .query_map([], |r| digest(r, 0, "chain id"))
                .map_err(sql_err(&path, "delete image"))?;
            rows.collect::<Result<_, _>>()
                .map_err(sql_err(&path, "delete image"))?
        };
        tx.execute(
            "DELETE FROM layers WHERE chain_id NOT IN (SELECT chain_id FROM image_layers)",
            [],
        )
        .map_err(sql_err(&path, "delete image"))?;
        tx.commit().map_err(sql_err(&path, "delete image"))?;
        Ok(orphans)
    }

    /// How many images use each layer.
    pub fn layer_refcounts(&self) -> Result<Vec<(Digest, u64)>, StateError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT l.chain_id, COUNT(DISTINCT il.image_id) FROM layers l
                 LEFT JOIN image_layers il ON il.chain_id = l.chain_id GROUP BY l.chain_id",
            )
            .map_err(self.err("count layer references"))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((digest(r, 0, "chain id")?, r.get::<_, i64>(1)? as u64))
            })
            .map_err(self.err("count layer references"))?;
        rows.collect::<Result<_, _>>()
            .map_err(self.err("count layer references"))
    }

    /// Blob digests (manifests, configs, layers) some image still needs.
    pub fn referenced_blobs(&self) -> Result<Vec<Digest>, StateError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT manifest_digest FROM images UNION SELECT id FROM images
                 UNION SELECT blob_digest FROM image_layers
                 UNION SELECT substr(name, instr(name, '@') + 1) FROM repo_digests",
            )
            .map_err(self.err("list referenced blobs"))?;
        let rows = stmt
            .query_map([], |r| digest(r, 0, "blob digest"))
            .map_err(self.err("list referenced blobs"))?;
        rows.collect::<Result<_, _>>()
            .map_err(self.err("list referenced blobs"))
    }

    /// Unpacked size of a recorded layer.
    pub fn layer_size(&self, chain_id: &Digest) -> Result<Option<u64>, StateError> {
        self.conn
            .query_row(
                "SELECT size FROM layers WHERE chain_id = ?1",
                [chain_id.to_string()],
                |r| r.get::<_, i64>(0),
            )
            .optional()
            .map(|s| s.map(|s| s as u64))
            .map_err(self.err("look up layer"))
    }

    /// Chain IDs recorded in the database (for GC of layer dirs nobody recorded).
    pub fn layer_ids(&self) -> Result<Vec<Digest>, StateError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT chain_id FROM layers")
            .map_err(self.err("list layers"))?;
        let rows = stmt
            .query_map([], |r| digest(r, 0, "chain id"))
            .map_err(self.err("list layers"))?;
        rows.collect::<Result<_, _>>()
            .map_err(self.err("list layers"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Digest {
        Digest::sha256_of(s.as_bytes())
    }

    fn image(id: &str, layers: &[&str]) -> NewImage {
        let diff: Vec<Digest> = layers.iter().map(|l| d(l)).collect();
        let chains = coracle_core::chain_id(&diff);
        NewImage {
            id: d(id),
            manifest_digest: d(&format!("m{id}")),
            manifest: b"{}".to_vec(),
            manifest_type: "application/vnd.oci.image.manifest.v1+json".into(),
            config: b"{}".to_vec(),
            created: Some("2024-01-01T00:00:00Z".into()),
            os: "linux".into(),
            architecture: "amd64".into(),
            variant: None,
            layers: diff
                .iter()
                .zip(chains)
                .map(|(diff_id, chain_id)| ImageLayer {
                    chain_id,
                    diff_id: diff_id.clone(),
                    blob_digest: d(&format!("blob{diff_id}")),
                    blob_size: 10,
                    media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
                    size: 100,
                })
                .collect(),
        }
    }

    #[test]
    fn shared_layers_are_counted_and_freed_last() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = Db::open(&dir.path().join("state.db")).unwrap();
        db.put_image(&image("a", &["base", "a1"])).unwrap();
        db.put_image(&image("b", &["base", "b1"])).unwrap();
        db.put_image(&image("b", &["base", "b1"])).unwrap(); // idempotent
        let counts = db.layer_refcounts().unwrap();
        let base = d("base");
        assert_eq!(counts.iter().find(|(c, _)| *c == base).unwrap().1, 2);
        assert_eq!(counts.len(), 3);

        let freed = db.delete_image(&d("a")).unwrap();
        assert_eq!(freed.len(), 1, "only a's own layer is freed");
        let freed = db.delete_image(&d("b")).unwrap();
        assert_eq!(freed.len(), 2);
        assert!(freed.contains(&base));
        assert!(db.layer_ids().unwrap().is_empty());
    }

    #[test]
    fn tags_move_and_cascade() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = Db::open(&dir.path().join("state.db")).unwrap();
        db.put_image(&image("a", &["x"])).unwrap();
        db.put_image(&image("b", &["y"])).unwrap();
        assert_eq!(db.set_tag("docker.io/library/t:1", &d("a")).unwrap(), None);
        assert_eq!(db.set_tag("docker.io/library/t:1", &d("a")).unwrap(), None);
        assert_eq!(
            db.set_tag("docker.io/library/t:1", &d("b")).unwrap(),
            Some(d("a"))
        );
        db.add_repo_digest("docker.io/library/t@sha256:00", &d("b"))
            .unwrap();
        let rec = db.image(&d("b")).unwrap().unwrap();
        assert_eq!(rec.tags, vec!["docker.io/library/t:1".to_string()]);
        assert_eq!(rec.size(), 100);
        db.delete_image(&d("b")).unwrap();
        assert_eq!(db.image_by_tag("docker.io/library/t:1").unwrap(), None);
        assert_eq!(
            db.image_by_repo_digest("docker.io/library/t@sha256:00")
                .unwrap(),
            None
        );
    }

    #[test]
    fn id_prefix_lookup_escapes_wildcards() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = Db::open(&dir.path().join("state.db")).unwrap();
        db.put_image(&image("a", &["x"])).unwrap();
        let hex = d("a").hex().to_string();
        assert_eq!(db.images_by_id_prefix(&hex[..6]).unwrap(), vec![d("a")]);
        assert!(db.images_by_id_prefix("%").unwrap().is_empty());
        assert!(db.images_by_id_prefix("_").unwrap().is_empty());
    }

    #[test]
    fn reopen_keeps_data_and_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        {
            let mut db = Db::open(&path).unwrap();
            db.put_image(&image("a", &["x"])).unwrap();
        }
        let db = Db::open(&path).unwrap();
        assert_eq!(db.images().unwrap().len(), 1);
    }

    #[test]
    fn concurrent_writers_do_not_fail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        Db::open(&path).unwrap();
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let path = path.clone();
                std::thread::spawn(move || {
                    let mut db = Db::open(&path).unwrap();
                    for j in 0..20 {
                        let img = image(&format!("{i}-{j}"), &["shared", &format!("{i}-{j}")]);
                        db.put_image(&img).unwrap();
                        db.set_tag(&format!("r/x:{i}-{j}"), &img.id).unwrap();
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let db = Db::open(&path).unwrap();
        assert_eq!(db.images().unwrap().len(), 160);
    }
}
