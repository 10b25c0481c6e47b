//! Networks as docker shows them: `network inspect`'s NetworkResource, and the
//! NetworkSettings part of a container's `inspect`.

use super::{builtin_id, Found, NetMode};
use crate::{Engine, EngineError, Networks};
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// What a container's `inspect` shows of its networks.
pub(crate) struct ContainerNetworks {
    pub sandbox_key: String,
    pub ports: BTreeMap<String, Value>,
    /// By network name.
    pub networks: BTreeMap<String, EndpointSettings>,
}

/// docker's `EndpointSettings`: addresses only while the container runs.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct EndpointSettings {
    #[serde(rename = "IPAMConfig")]
    pub ipam_config: Option<serde_json::Value>,
    pub links: Option<Vec<String>>,
    pub aliases: Option<Vec<String>>,
    pub mac_address: String,
    pub driver_opts: Option<BTreeMap<String, String>>,
    pub gw_priority: i64,
    #[serde(rename = "NetworkID")]
    pub network_id: String,
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    pub gateway: String,
    #[serde(rename = "IPAddress")]
    pub ip_address: String,
    #[serde(rename = "IPPrefixLen")]
    pub ip_prefix_len: i64,
    #[serde(rename = "IPv6Gateway")]
    pub ipv6_gateway: String,
    #[serde(rename = "GlobalIPv6Address")]
    pub global_ipv6_address: String,
    #[serde(rename = "GlobalIPv6PrefixLen")]
    pub global_ipv6_prefix_len: i64,
    #[serde(rename = "DNSNames")]
    pub dns_names: Option<Vec<String>>,
}

impl Networks<'_> {
    pub fn network_inspect(&mut self, key: &str) -> Result<Value, EngineError> {
        // Leases of containers whose monitor died are released first.
        self.container_records()?;
        let n = match self.find_network(key)? {
            Found::Record(n) => n,
            Found::Builtin { name, driver } => {
                return Ok(json!({
                    "Name": name, "Id": builtin_id(name), "Created": "0001-01-01T00:00:00Z",
                    "Scope": "local", "Driver": driver, "EnableIPv4": true, "EnableIPv6": false,
                    "IPAM": {"Driver": "default", "Options": null, "Config": []},
                    "Internal": false, "Attachable": false, "Ingress": false,
                    "ConfigFrom": {"Network": ""}, "ConfigOnly": false,
                    "Containers": {}, "Options": {}, "Labels": {},
                }))
            }
        };
        let prefix = coracle_net::ipam::parse_subnet(&n.subnet)?.prefix_len();
        let mut containers = serde_json::Map::new();
        for l in self.db.leases_of_network(&n.id)? {
            let name = self
                .db
                .container(&l.container_id)?
                .map(|c| c.name)
                .unwrap_or_default();
            containers.insert(
                l.container_id.clone(),
                json!({
                    "Name": name,
                    "EndpointID": endpoint_id(&n.id, &l.container_id),
                    "MacAddress": l.mac.to_string(),
                    "IPv4Address": format!("{}/{prefix}", l.ip),
                    "IPv6Address": "",
                }),
            );
        }
        Ok(json!({
            "Name": n.name,
            "Id": n.id,
            "Created": n.created,
            "Scope": "local",
            "Driver": n.driver,
            "EnableIPv4": true,
            "EnableIPv6": false,
            "IPAM": {
                "Driver": "default",
                "Options": {},
                "Config": [{"Subnet": n.subnet, "Gateway": n.gateway}],
            },
            "Internal": n.internal,
            "Attachable": false,
            "Ingress": false,
            "ConfigFrom": {"Network": ""},
            "ConfigOnly": false,
            "Containers": containers,
            "Options": {"com.docker.network.bridge.name": n.bridge},
            "Labels": n.labels,
        }))
    }
}

impl Engine {
    /// A container's endpoints (addresses while it runs), published ports and
    /// namespace path.
    pub(crate) fn container_networks(
        &mut self,
        id: &str,
        running: bool,
        exposed: &[String],
    ) -> Result<ContainerNetworks, EngineError> {
        let mode = self
            .container_config(id)
            .map(|c| c.network.mode)
            .unwrap_or_default();
        let mut networks = BTreeMap::new();
        let mut ports = BTreeMap::new();
        match &mode {
            NetMode::Bridge => {
                let leases = self.db.leases_of_container(id)?;
                for ep in self.db.container_endpoints(id)? {
                    let Some(n) = self.db.network_by_id(&ep.network_id)? else {
                        continue;
                    };
                    let mut s = EndpointSettings {
                        network_id: n.id.clone(),
                        aliases: (!ep.aliases.is_empty()).then(|| ep.aliases.clone()),
                        ..Default::default()
                    };
                    if let Some(l) = leases.iter().find(|l| l.network_id == n.id) {
                        s.endpoint_id = endpoint_id(&n.id, id);
                        s.ip_address = l.ip.to_string();
                        s.ip_prefix_len = coracle_net::ipam::parse_subnet(&n.subnet)
                            .map(|s| s.prefix_len() as i64)
                            .unwrap_or(0);
                        s.mac_address = l.mac.to_string();
                        s.gateway = if n.internal {
                            String::new()
                        } else {
                            n.gateway.clone()
                        };
                    }
                    if ep.ip.is_some() {
                        s.ipam_config = Some(json!({"IPv4Address": ep.ip}));
                    }
                    if n.name != super::DEFAULT_NETWORK {
                        let mut names = vec![];
                        if let Some(c) = self.db.container(id)? {
                            names.push(c.name);
                        }
                        names.extend(ep.aliases.iter().cloned());
                        names.push(id[..12].to_string());
                        s.dns_names = Some(names);
                    }
                    networks.insert(n.name, s);
                }
                if running {
                    for key in exposed {
                        ports.insert(key.clone(), Value::Null);
                    }
                    for p in self.published_ports(id)? {
                        let key = format!("{}/{}", p.container_port, p.proto.as_str());
                        let entry = ports.entry(key).or_insert(Value::Null);
                        if !entry.is_array() {
                            *entry = json!([]);
                        }
                        if let (Some(port), Value::Array(list)) = (p.host_port(), entry) {
                            list.push(json!({
                                "HostIp": p.host_addr().to_string(),
                                "HostPort": port.to_string()
                            }));
                        }
                    }
                }
            }
            other => {
                networks.insert(super::mode_name(other), EndpointSettings::default());
            }
        }
        Ok(ContainerNetworks {
            sandbox_key: match (&mode, running) {
                (NetMode::Bridge, true) => self.run_dir.netns(id).display().to_string(),
                _ => String::new(),
            },
            ports,
            networks,
        })
    }
}

/// A stable id for the pair (docker's endpoints have their own random ids).
fn endpoint_id(network_id: &str, container_id: &str) -> String {
    coracle_core::Digest::sha256_of(format!("{network_id}/{container_id}").as_bytes())
        .hex()
        .to_string()
}
