//! `networks/<id>.json`: each network's record kept as a file beside the database
//! (written when the network is made, removed with it), so that `system check
//! --repair` brings networks back with their ids, bridges and subnets: the bridges
//! on the host are theirs again, none is left behind or made twice.

use super::{Lost, RepairReport};
use crate::{Engine, EngineError, StorePaths};
use coracle_state::{NetworkRecord, Salvaged};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Debug, Serialize, Deserialize)]
struct NetworkFile {
    id: String,
    name: String,
    driver: String,
    bridge: String,
    subnet: String,
    gateway: String,
    internal: bool,
    labels: BTreeMap<String, String>,
    created: String,
}

fn dir(paths: &StorePaths) -> PathBuf {
    paths.root.join("networks")
}

fn file(paths: &StorePaths, id: &str) -> PathBuf {
    dir(paths).join(format!("{id}.json"))
}

impl Engine {
    /// Keeps a copy of a new network's record. Best effort: the database is the
    /// authority, a missing copy only means a repair cannot bring the network back.
    pub(crate) fn save_network_file(&self, n: &NetworkRecord) {
        let f = NetworkFile {
            id: n.id.clone(),
            name: n.name.clone(),
            driver: n.driver.clone(),
            bridge: n.bridge.clone(),
            subnet: n.subnet.clone(),
            gateway: n.gateway.clone(),
            internal: n.internal,
            labels: n.labels.clone(),
            created: n.created.clone(),
        };
        let dir = dir(&self.paths);
        let path = file(&self.paths, &n.id);
        let tmp = dir.join(format!(".{}.tmp-{}", n.id, std::process::id()));
        let json = serde_json::to_vec(&f).expect("a network serialises");
        let written = crate::perms::private_dir(&dir)
            .and_then(|_| crate::perms::write_private(&tmp, &json))
            .and_then(|()| std::fs::rename(&tmp, &path));
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            tracing::debug!(path = %path.display(), error = %e, "network file not written");
        }
    }

    pub(crate) fn remove_network_file(&self, id: &str) {
        let _ = std::fs::remove_file(file(&self.paths, id));
    }

    /// Records the networks kept as files; returns their names by id.
    pub(super) fn rebuild_networks(
        &mut self,
        salvaged: &Salvaged,
        report: &mut RepairReport,
    ) -> Result<BTreeMap<String, String>, EngineError> {
        let mut names = BTreeMap::new();
        // What the damaged database still says first, then the files.
        for rec in &salvaged.networks {
            if self.db.insert_network(rec).is_ok() {
                names.insert(rec.id.clone(), rec.name.clone());
            }
        }
        let dir = dir(&self.paths);
        let entries = match std::fs::read_dir(&dir) {
            Ok(rd) => rd.flatten().collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(EngineError::io("read", &dir)(e)),
        };
        for e in entries {
            let path = e.path();
            if path.extension().is_none_or(|x| x != "json") {
                continue;
            }
            let rec = std::fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|b| serde_json::from_slice::<NetworkFile>(&b).map_err(|e| e.to_string()))
                .map(|f| NetworkRecord {
                    id: f.id,
                    name: f.name,
                    driver: f.driver,
                    bridge: f.bridge,
                    subnet: f.subnet,
                    gateway: f.gateway,
                    internal: f.internal,
                    labels: f.labels,
                    created: f.created,
                })
                .and_then(|rec| {
                    if names.contains_key(&rec.id) {
                        return Ok(None); // read from the damaged database already
                    }
                    let inserted = self.db.insert_network(&rec);
                    inserted.map(|()| Some(rec)).map_err(|e| e.to_string())
                });
            match rec {
                Ok(None) => {}
                Ok(Some(rec)) => {
                    names.insert(rec.id, rec.name);
                }
                Err(why) => report.lost.push(Lost {
                    what: format!("network file {}", path.display()),
                    why,
                }),
            }
        }
        report.networks = names.values().cloned().collect();
        report.networks.sort();
        Ok(names)
    }
}
