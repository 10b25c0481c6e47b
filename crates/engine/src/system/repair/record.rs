//! `record.json` in a container's directory: a copy of its database record and
//! network endpoints (docker keeps the same in `config.v2.json`), so that `system check
//! --repair` can give a container back its name, image and configuration when the
//! database is lost. The database stays the authority; this file is only read then.

use crate::{Engine, EngineError};
use coracle_state::{ContainerRecord, EndpointConfig};
use serde::{Deserialize, Serialize};
use std::path::Path;

pub(crate) const RECORD_FILE: &str = "record.json";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RecordFile {
    pub id: String,
    pub name: String,
    pub image_id: String,
    /// The image as the user named it.
    pub image_name: String,
    /// Unix seconds.
    pub created_at: i64,
    /// The record's `config` document (docker's Config, HostConfig, Mounts).
    pub config: String,
    /// The networks it is configured for, in order.
    #[serde(default)]
    pub endpoints: Vec<EndpointFile>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct EndpointFile {
    pub network_id: String,
    pub aliases: Vec<String>,
    pub ip: Option<String>,
    pub mac: Option<String>,
}

impl Engine {
    /// Rewrites the container's `record.json` from its record and endpoints (after
    /// create, rename, network connect and disconnect).
    pub(crate) fn save_record_file(&self, id: &str) -> Result<(), EngineError> {
        let Some(c) = self.db.container(id)? else {
            return Ok(());
        };
        let endpoints = self.db.container_endpoints(id)?;
        RecordFile::of(&c, &endpoints).write(&self.containers_dir().join(id))
    }
}

impl RecordFile {
    fn of(c: &ContainerRecord, endpoints: &[EndpointConfig]) -> RecordFile {
        RecordFile {
            id: c.id.clone(),
            name: c.name.clone(),
            image_id: c.image_id.to_string(),
            image_name: c.image_name.clone(),
            created_at: c.created_at,
            config: c.config.clone(),
            endpoints: endpoints
                .iter()
                .map(|e| EndpointFile {
                    network_id: e.network_id.clone(),
                    aliases: e.aliases.clone(),
                    ip: e.ip.clone(),
                    mac: e.mac.clone(),
                })
                .collect(),
        }
    }

    pub(crate) fn endpoints(&self) -> Vec<EndpointConfig> {
        self.endpoints
            .iter()
            .map(|e| EndpointConfig {
                network_id: e.network_id.clone(),
                aliases: e.aliases.clone(),
                ip: e.ip.clone(),
                mac: e.mac.clone(),
            })
            .collect()
    }

    pub(crate) fn read(dir: &Path) -> Option<RecordFile> {
        let bytes = std::fs::read(dir.join(RECORD_FILE)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Written whole under a temporary name and renamed into place: a crash leaves
    /// the old file or the new one, never half of one. Private: the configuration
    /// holds the container's environment.
    pub(crate) fn write(&self, dir: &Path) -> Result<(), EngineError> {
        let path = dir.join(RECORD_FILE);
        let tmp = dir.join(format!("{RECORD_FILE}.tmp-{}", std::process::id()));
        let json = serde_json::to_vec(self).expect("a record serialises");
        let written =
            crate::perms::write_private(&tmp, &json).and_then(|()| std::fs::rename(&tmp, &path));
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        written.map_err(EngineError::io("write", &path))
    }
}
