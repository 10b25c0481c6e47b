//! `volume create/ls/inspect/rm/prune`, with docker's JSON shape and its refusal to
//! remove a volume a container uses.

use crate::filters::Filters;
use crate::names::new_container_id;
use crate::{Engine, EngineError, Volumes};
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
        "Options": v.options,
        "Scope": "local",
    })
}

impl Volumes<'_> {
    /// `volume create` with the local driver's options (`-o type=... -o o=... -o
    /// device=...`), checked as docker checks them and mounted while a container uses
    /// the volume.
    pub fn create_volume(
        &mut self,
        name: Option<&str>,
        labels: BTreeMap<String, String>,
        options: BTreeMap<String, String>,
    ) -> Result<Value, EngineError> {
        let name = match name {
            Some(n) => n.to_string(),
            None => new_container_id().map_err(EngineError::io("read", "/dev/urandom"))?,
        };
        validate_options(&options)
            .map_err(|e| EngineError::InvalidArgument(format!("create {name}: {e}")))?;
        let store = self.volume_store()?;
        Ok(volume_json(
            &store.create_with_options(&name, labels, options)?,
        ))
    }
}

impl Engine {
    /// The volumes whose data directories container `id`'s bundle mounts.
    fn container_volumes(&self, id: &str) -> Vec<String> {
        let config = self.containers_dir().join(id).join("config.json");
        let Ok(spec) = std::fs::read(&config)
            .map_err(|_| ())
            .and_then(|b| serde_json::from_slice::<Value>(&b).map_err(|_| ()))
        else {
            return Vec::new();
        };
        let dir = self.paths.volumes();
        let mut names: Vec<String> = spec["mounts"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| {
                let src = std::path::Path::new(m["source"].as_str()?);
                (src.parent()?.parent()? == dir && src.file_name()? == "_data")
                    .then(|| src.parent()?.file_name()?.to_str().map(str::to_owned))
                    .flatten()
            })
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// Mounts the volumes with mount options container `id` uses (its monitor calls
    /// this before the container starts, and keeps the uses for its whole life).
    pub(crate) fn acquire_volumes(
        &self,
        id: &str,
    ) -> Result<Vec<coracle_rootfs::volume::mount::VolumeUse>, EngineError> {
        let store = self.volume_store()?;
        let mut uses = Vec::new();
        for name in self.container_volumes(id) {
            match store.acquire(&name, id) {
                Ok(u) => uses.extend(u),
                Err(e) => {
                    drop(uses);
                    self.release_volumes(id);
                    return Err(e.into());
                }
            }
        }
        Ok(uses)
    }

    /// Ends container `id`'s use of its volumes (its monitor at the end, or the
    /// command that finds its monitor dead): each is unmounted if it was the last user.
    /// Failures are noted, not returned (teardown goes on).
    pub(crate) fn release_volumes(&self, id: &str) {
        let Ok(store) = self.volume_store() else {
            return;
        };
        for name in self.container_volumes(id) {
            if let Err(e) = store.release(&name, id) {
                coracle_runtime::note!("coracle: release volume {name}: {e}");
            }
        }
    }
}

impl Volumes<'_> {
    pub fn inspect_volume(&self, name: &str) -> Result<Value, EngineError> {
        Ok(volume_json(&self.volume_store()?.get(name)?))
    }
}

impl Engine {
    /// Containers whose bundle mounts the volume's data directory.
    pub(crate) fn volume_users(&self, name: &str) -> Result<Vec<String>, EngineError> {
        let data = self.volume_store()?.path(name);
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
}

impl Volumes<'_> {
    pub fn remove_volume(&mut self, name: &str) -> Result<(), EngineError> {
        let volumes = self.volume_store()?;
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
        for v in self.volume_store()?.list()? {
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
        let volumes = self.volume_store()?;
        let mut removed = Vec::new();
        let mut freed = 0;
        for v in volumes.list()? {
            if !all && !v.labels.contains_key(ANONYMOUS_LABEL) {
                continue;
            }
            if !labels_match(filters, &v.labels) || !self.volume_users(&v.name)?.is_empty() {
                continue;
            }
            freed += crate::images::unpack::tree_size(&volumes.path(&v.name)).unwrap_or(0);
            volumes.remove(&v.name)?;
            removed.push(v.name);
        }
        Ok((removed, freed))
    }
}

/// The local driver's options checked as docker's `validateOpts`: only `type`, `o`,
/// `device` and `size`; `device` and `type` go together and `o` needs both; `size`
/// (an XFS project quota in docker) only as 0, since this store keeps no quotas.
fn validate_options(opts: &BTreeMap<String, String>) -> Result<(), String> {
    for k in opts.keys() {
        if !matches!(k.as_str(), "type" | "o" | "device" | "size") {
            return Err(format!(
                "invalid option: {k:?} (the local driver takes type, o, device and size)"
            ));
        }
    }
    if let (Some("cifs"), Some(dev)) = (
        opts.get("type").map(String::as_str),
        opts.get("device").filter(|d| !d.is_empty()),
    ) {
        let host = dev.trim_start_matches("//").split('/').next().unwrap_or("");
        let port = host.rsplit_once(':').map(|(_, p)| p).unwrap_or("");
        if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) {
            return Err("port not allowed in CIFS device URL, include 'port' in 'o='".into());
        }
    }
    if let Some(size) = opts.get("size") {
        let bytes = coracle_model::parse_ram_in_bytes(size)?;
        if bytes > 0 {
            return Err(format!(
                "quota size requested but no quota support (size={size}: coracle keeps no \
                 XFS project quotas; for a tmpfs volume give the size in o=size={size})"
            ));
        }
    }
    for (opt, needs) in [
        ("device", &["type"][..]),
        ("type", &["device"][..]),
        ("o", &["device", "type"][..]),
    ] {
        if opts.contains_key(opt) {
            if let Some(missing) = needs.iter().find(|n| !opts.contains_key(**n)) {
                return Err(format!("missing required option: {missing:?}"));
            }
        }
    }
    Ok(())
}

/// docker's mark on the volumes it makes for anonymous mounts (image `VOLUME`s, `-v
/// /path`): `volume prune` without `--all` removes only these.
pub(crate) const ANONYMOUS_LABEL: &str = "com.docker.volume.anonymous";

/// `label=` (each must hold) and `label!=` (none may hold).
fn labels_match(f: &Filters, labels: &BTreeMap<String, String>) -> bool {
    f.match_kv_list("label", labels) && !(f.contains("label!") && f.match_kv_list("label!", labels))
}

#[cfg(test)]
mod tests {
    use super::validate_options;
    use std::collections::BTreeMap;

    fn opts(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn options_are_checked_as_dockers_local_driver() {
        validate_options(&opts(&[])).unwrap();
        validate_options(&opts(&[
            ("type", "tmpfs"),
            ("device", "tmpfs"),
            ("o", "size=1m"),
        ]))
        .unwrap();
        validate_options(&opts(&[("size", "0")])).unwrap();
        let err = |kv: &[(&str, &str)]| validate_options(&opts(kv)).unwrap_err();
        assert!(err(&[("colour", "red")]).starts_with("invalid option: \"colour\""));
        assert_eq!(
            err(&[("o", "bind"), ("device", "/x")]),
            "missing required option: \"type\""
        );
        assert!(err(&[("size", "1g")]).starts_with("quota size requested but no quota support"));
        assert_eq!(
            err(&[("type", "cifs"), ("device", "//host:445/share")]),
            "port not allowed in CIFS device URL, include 'port' in 'o='"
        );
        validate_options(&opts(&[("type", "cifs"), ("device", "//host/share")])).unwrap();
    }
}
