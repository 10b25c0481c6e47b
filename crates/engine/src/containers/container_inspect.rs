//! `inspect` for containers in docker's JSON shape (`ContainerJSON`), from the record,
//! its stored config and its `container.json`. Typed so that it prints in docker's
//! field order.

use crate::container_config::{Config, HostConfig, MountPoint, StoredConfig};
use crate::networks::inspect::EndpointSettings;
use crate::{Containers, EngineError};
use coracle_rootfs::snapshot::RootfsKind;
use coracle_state::{ContainerRecord, ContainerState};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// docker's zero time, shown for times not yet reached.
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerInspect {
    pub id: String,
    pub created: String,
    pub path: String,
    pub args: Vec<String>,
    pub state: InspectState,
    pub image: String,
    pub resolv_conf_path: String,
    pub hostname_path: String,
    pub hosts_path: String,
    pub log_path: String,
    pub name: String,
    pub restart_count: i64,
    pub driver: String,
    pub platform: String,
    pub mount_label: String,
    pub process_label: String,
    pub app_armor_profile: String,
    #[serde(rename = "ExecIDs")]
    pub exec_ids: Option<Vec<String>>,
    pub host_config: HostConfig,
    pub graph_driver: GraphDriver,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_rw: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_root_fs: Option<u64>,
    pub mounts: Vec<MountPoint>,
    pub config: Config,
    pub network_settings: NetworkSettings,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct InspectState {
    pub status: String,
    pub running: bool,
    pub paused: bool,
    pub restarting: bool,
    #[serde(rename = "OOMKilled")]
    pub oom_killed: bool,
    pub dead: bool,
    pub pid: i64,
    pub exit_code: i64,
    pub error: String,
    pub started_at: String,
    pub finished_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health: Option<InspectHealth>,
}

/// docker's `State.Health`, as the monitor records it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct InspectHealth {
    pub status: String,
    pub failing_streak: i64,
    pub log: Vec<HealthLogEntry>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct HealthLogEntry {
    pub start: String,
    pub end: String,
    pub exit_code: i64,
    pub output: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GraphDriver {
    pub data: Option<BTreeMap<String, String>>,
    pub name: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkSettings {
    #[serde(rename = "SandboxID")]
    pub sandbox_id: String,
    pub sandbox_key: String,
    pub ports: BTreeMap<String, serde_json::Value>,
    /// The default bridge's endpoint, repeated at the top as docker does.
    pub gateway: String,
    #[serde(rename = "IPAddress")]
    pub ip_address: String,
    #[serde(rename = "IPPrefixLen")]
    pub ip_prefix_len: i64,
    pub mac_address: String,
    pub networks: BTreeMap<String, EndpointSettings>,
}

/// docker's `State` from a record.
pub fn inspect_state(c: &ContainerRecord) -> InspectState {
    let active = c.is_active();
    InspectState {
        status: c.state.to_string(),
        running: active,
        paused: c.state == ContainerState::Paused,
        restarting: c.state == ContainerState::Restarting,
        oom_killed: c.oom_killed,
        dead: false,
        pid: if active { c.init_pid.unwrap_or(0) } else { 0 },
        exit_code: c.exit_code.unwrap_or(0),
        error: c.error.clone().unwrap_or_default(),
        started_at: c.started_at.clone().unwrap_or_else(|| ZERO_TIME.into()),
        finished_at: c.finished_at.clone().unwrap_or_else(|| ZERO_TIME.into()),
        health: c
            .health
            .as_deref()
            .and_then(|h| serde_json::from_str(h).ok()),
    }
}

impl Containers<'_> {
    /// `inspect` of one container (name, id or unique id prefix); `size` adds
    /// `SizeRw` and `SizeRootFs` as `inspect -s`.
    pub fn inspect_container(
        &mut self,
        key: &str,
        size: bool,
    ) -> Result<ContainerInspect, EngineError> {
        let c = self.find_container(key)?;
        let stored = StoredConfig::parse(&c.config);
        let dir = self.containers_dir().join(&c.id);
        let runtime_cfg = self.container_config(&c.id).ok();
        let graph_driver = graph_driver(runtime_cfg.as_ref().map(|r| &r.rootfs));
        let (size_rw, size_root_fs) = if size {
            let (rw, root) = self.container_sizes(&c);
            (Some(rw), Some(root))
        } else {
            (None, None)
        };
        let lsm = crate::containers::lsm::StoredConfinement::read(&dir.join("config.json"));
        let path = |f: &str| dir.join(f).display().to_string();
        let logs = stored.host_config.log_config.kind != "none";
        let created = created_time(&stored, &c);
        let mut host_config = stored.host_config;
        let network_settings = self.network_settings(
            &c,
            &stored.config,
            &mut host_config,
            runtime_cfg.as_ref().map(|r| &r.network),
        )?;
        Ok(ContainerInspect {
            id: c.id.clone(),
            created,
            path: stored.path,
            args: stored.args,
            state: inspect_state(&c),
            image: c.image_id.to_string(),
            resolv_conf_path: path("resolv.conf"),
            hostname_path: path("hostname"),
            hosts_path: path("hosts"),
            log_path: if logs {
                path(&format!("{}-json.log", c.id))
            } else {
                String::new()
            },
            name: format!("/{}", c.name),
            restart_count: c.restart_count,
            driver: graph_driver.name.clone(),
            platform: "linux".into(),
            mount_label: lsm.mount_label,
            process_label: lsm.process_label,
            app_armor_profile: lsm.apparmor_profile,
            exec_ids: None,
            host_config,
            graph_driver,
            size_rw,
            size_root_fs,
            mounts: stored.mounts,
            config: stored.config,
            network_settings,
        })
    }

    /// `NetworkSettings`, and the links `HostConfig` shows (`network` is absent when
    /// the container's runtime config cannot be read).
    fn network_settings(
        &mut self,
        c: &ContainerRecord,
        config: &Config,
        host_config: &mut HostConfig,
        network: Option<&crate::stored::NetworkConfig>,
    ) -> Result<NetworkSettings, EngineError> {
        let exposed: Vec<String> = config
            .exposed_ports
            .as_ref()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        let mut nets = self.container_networks(&c.id, c.is_active(), &exposed)?;
        if let Some(net) = network {
            // docker lists a link by the containers' names of today.
            let links = self.links_for_inspect(&c.name, &net.legacy_links);
            host_config.links = (!links.is_empty()).then_some(links);
            if let Some(ep) = nets.networks.get_mut(&host_config.network_mode) {
                let links: Vec<String> = net
                    .link_aliases
                    .iter()
                    .map(|(alias, name)| format!("{name}:{alias}"))
                    .collect();
                ep.links = (!links.is_empty()).then_some(links);
            }
        }
        let default = nets
            .networks
            .get(crate::stored::DEFAULT_NETWORK)
            .cloned()
            .unwrap_or_default();
        Ok(NetworkSettings {
            sandbox_id: if nets.sandbox_key.is_empty() {
                String::new()
            } else {
                c.id.clone()
            },
            sandbox_key: nets.sandbox_key,
            ports: nets.ports,
            gateway: default.gateway,
            ip_address: default.ip_address,
            ip_prefix_len: default.ip_prefix_len,
            mac_address: default.mac_address,
            networks: nets.networks,
        })
    }
}

/// `GraphDriver`: the overlay's directories, or `vfs` for a copied root filesystem.
fn graph_driver(rootfs: Option<&coracle_rootfs::snapshot::RootfsMount>) -> GraphDriver {
    match rootfs {
        Some(rootfs) => match &rootfs.kind {
            RootfsKind::Overlay {
                lowers,
                upper,
                work,
                ..
            } => GraphDriver {
                data: Some(BTreeMap::from([
                    (
                        "LowerDir".to_string(),
                        lowers
                            .iter()
                            .map(|l| l.display().to_string())
                            .collect::<Vec<_>>()
                            .join(":"),
                    ),
                    ("MergedDir".into(), rootfs.target.display().to_string()),
                    ("UpperDir".into(), upper.display().to_string()),
                    ("WorkDir".into(), work.display().to_string()),
                ])),
                name: "overlay".into(),
            },
            RootfsKind::Copy => GraphDriver {
                data: None,
                name: "vfs".into(),
            },
        },
        None => GraphDriver {
            data: None,
            name: "overlay".into(),
        },
    }
}

/// `Created` to the nanosecond as stored, else from the record's whole seconds.
fn created_time(stored: &StoredConfig, c: &ContainerRecord) -> String {
    if stored.created.is_empty() {
        chrono::DateTime::from_timestamp(c.created_at, 0)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true))
            .unwrap_or_else(|| ZERO_TIME.into())
    } else {
        stored.created.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_follows_docker() {
        let mut c = ContainerRecord::new_created(
            "a".repeat(64),
            "web".into(),
            coracle_core::Digest::sha256_of(b"i"),
            "box".into(),
            0,
            "{}".into(),
        );
        let s = inspect_state(&c);
        assert_eq!(
            (s.status.as_str(), s.running, s.pid, s.started_at.as_str()),
            ("created", false, 0, ZERO_TIME)
        );
        assert!(s.health.is_none());
        c.state = ContainerState::Paused;
        c.init_pid = Some(42);
        c.health = Some(
            r#"{"Status":"healthy","FailingStreak":0,"Log":[{"Start":"s","End":"e","ExitCode":0,"Output":"ok"}]}"#
                .into(),
        );
        let s = inspect_state(&c);
        assert!(s.running && s.paused && !s.restarting);
        assert_eq!(s.pid, 42);
        let h = s.health.unwrap();
        assert_eq!(
            (h.status.as_str(), h.log[0].output.as_str()),
            ("healthy", "ok")
        );
        let json = serde_json::to_string(&inspect_state(&c)).unwrap();
        assert!(
            json.starts_with(r#"{"Status":"paused","Running":true,"Paused":true,"Restarting":false,"OOMKilled":false,"Dead":false,"Pid":42,"#),
            "{json}"
        );
    }
}
