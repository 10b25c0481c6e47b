//! `volume create/ls/inspect/rm/prune`, with docker's JSON shape and its refusal to
//! remove a volume a container uses.

use crate::filters::Filters;
use crate::names::new_container_id;
use crate::{Engine, EngineError};
use coracle_rootfs::Volume;
use serde_json::{json, Value};
use std::collections::BTreeMap;

fn volume_json(v: &Volume) -> Value {
    json!({
        "CreatedAt": v.created_at,
        "Driver": v.driver,
        "Labels": v.labels,
        "Mountpoint": v.mountpoint,
        "Name": v.name,
        "Options": {},
        "Scope": "local",
    })
}

impl Engine {
    pub fn create_volume(
        &mut self,
        name: Option<&str>,
        labels: BTreeMap<String, String>,
    ) -> Result<Value, EngineError> {
        let name = match name {
            Some(n) => n.to_string(),
            None => new_container_id().map_err(EngineError::io("read", "/dev/urandom"))?,
        };
        Ok(volume_json(&self.volumes()?.create(&name, labels)?))
    }

    pub fn list_volumes(&self) -> Result<Vec<Value>, EngineError> {
        Ok(self.volumes()?.list()?.iter().map(volume_json).collect())
    }

    pub fn inspect_volume(&self, name: &str) -> Result<Value, EngineError> {
        Ok(volume_json(&self.volumes()?.get(name)?))
    }

    /// Containers whose bundle mounts the volume's data directory.
    pub(crate) fn volume_users(&self, name: &str) -> Result<Vec<String>, EngineError> {
        let data = self.volumes()?.path(name);
        let mut users = Vec::new();
        for c in self.db.containers()? {
            let config = self.containers_dir().join(&c.id).join("config.json");
            let Ok(bytes) = std::fs::read(&config) else {
                continue;
            };
            let Ok(spec) = serde_json::from_slice::<Value>(&bytes) else {
                continue;
            };
            let uses = spec["mounts"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|m| m["source"].as_str() == Some(data.to_str().unwrap_or_default()));
            if uses {
                users.push(c.id);
            }
        }
        Ok(users)
    }

    pub fn remove_volume(&mut self, name: &str) -> Result<(), EngineError> {
        let volumes = self.volumes()?;
        volumes.get(name)?;
        let users = self.volume_users(name)?;
        if !users.is_empty() {
            return Err(EngineError::Conflict(format!(
                "remove {name}: volume is in use - [{}]",
                users.join(", ")
            )));
        }
        volumes.remove(name)?;
        Ok(())
    }

    /// `volume ls --filter`: `dangling=` (no container uses it), `driver=`, `label=`,
    /// `label!=`, `name=` (a substring or expression, as docker's).
    pub fn list_volumes_filtered(&self, filters: &Filters) -> Result<Vec<Value>, EngineError> {
        filters.validate(&["dangling", "driver", "label", "label!", "name"])?;
        let dangling = filters.get_bool("dangling")?;
        let mut out = Vec::new();
        for v in self.volumes()?.list()? {
            if !filters.matches("name", &v.name)
                || !filters.exact_match("driver", &v.driver)
                || !labels_match(filters, &v.labels)
            {
                continue;
            }
            if let Some(d) = dangling {
                if self.volume_users(&v.name)?.is_empty() != d {
                    continue;
                }
            }
            out.push(volume_json(&v));
        }
        Ok(out)
    }

    /// Removes the volumes no container uses: only anonymous ones, or with `all` named
    /// ones too (docker 23+), that the filters select (`label=`, `label!=`, `all=`);
    /// returns their names and the bytes freed.
    pub fn prune_volumes(
        &mut self,
        all: bool,
        filters: &Filters,
    ) -> Result<(Vec<String>, u64), EngineError> {
        filters.validate(&["label", "label!", "all"])?;
        let all = filters.get_bool("all")?.unwrap_or(all);
        let volumes = self.volumes()?;
        let mut removed = Vec::new();
        let mut freed = 0;
        for v in volumes.list()? {
            if !all && !v.labels.contains_key(ANONYMOUS_LABEL) {
                continue;
            }
            if !labels_match(filters, &v.labels) || !self.volume_users(&v.name)?.is_empty() {
                continue;
            }
            freed += crate::unpack::tree_size(&volumes.path(&v.name)).unwrap_or(0);
            volumes.remove(&v.name)?;
            removed.push(v.name);
        }
        Ok((removed, freed))
    }
}

/// docker's mark on the volumes it makes for anonymous mounts (image `VOLUME`s, `-v
/// /path`): `volume prune` without `--all` removes only these.
pub(crate) const ANONYMOUS_LABEL: &str = "com.docker.volume.anonymous";

/// `label=` (each must hold) and `label!=` (none may hold).
fn labels_match(f: &Filters, labels: &BTreeMap<String, String>) -> bool {
    f.match_kv_list("label", labels) && !(f.contains("label!") && f.match_kv_list("label!", labels))
}
