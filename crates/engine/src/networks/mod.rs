//! Networks: docker's `network` commands, and what a container is given at create
//! (its endpoints) and at start (see `sandbox`). The default network `bridge` is an
//! ordinary record, made on first use: on the first subnet of the address pools
//! (docker's by default, see `ipam::default_pools`; `default_address_pools` in
//! `/etc/coracle/network.toml`) that nothing on the host uses, or on the subnet that
//! file names (`default_subnet = "..."`).
//!
//! Several stores may share one network namespace (`--root`, CI jobs, tests): each
//! owns its firewall table and its bridges, named for the store (`StoreNet`), and
//! their subnets keep clear of each other because each one avoids the routes the
//! others' bridges put on the host.

mod endpoints;
pub(crate) mod inspect;
pub(crate) mod links;
pub(crate) mod network_filters;
pub(crate) mod plan;
mod sandbox;
#[cfg(test)]
mod tests;

pub(crate) use sandbox::{DbNames, DnsService};

use crate::filters::Filters;
use crate::names::new_container_id;
use crate::{Engine, EngineError, Networks};
use coracle_core::PortMapping;
use coracle_net::{ipam, link};
use coracle_state::{EndpointConfig, NetworkRecord};
use ipnet::Ipv4Net;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

pub use crate::stored::{NetMode, NetworkConfig, DEFAULT_NETWORK};
pub const DEFAULT_BRIDGE: &str = "coracle0";
/// Names docker reserves for its built-in networks besides `bridge`.
const BUILTIN: [(&str, &str); 2] = [("host", "host"), ("none", "null")];

pub struct NetworkCreateRequest {
    pub name: String,
    pub driver: String,
    pub subnet: Option<String>,
    pub gateway: Option<String>,
    pub internal: bool,
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkSummary {
    pub id: String,
    pub name: String,
    pub driver: String,
    pub scope: String,
    pub internal: bool,
    pub ipv6: bool,
    pub created: String,
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default)]
pub struct EndpointRequest {
    pub ip: Option<Ipv4Addr>,
    pub aliases: Vec<String>,
}

/// A network as `find_network` sees it: a record, or one of the built-ins without a
/// bridge (`host`, `none`).
pub(crate) enum Found {
    Record(NetworkRecord),
    Builtin {
        name: &'static str,
        driver: &'static str,
    },
}

fn builtin_id(name: &str) -> String {
    coracle_core::Digest::sha256_of(format!("coracle network {name}").as_bytes())
        .hex()
        .to_string()
}

/// `/etc/coracle/network.toml`: the default network's subnet (docker's `bip`) and
/// the pools new networks' subnets come from (docker's `default-address-pools`).
struct NetworkSettings {
    default_subnet: Option<String>,
    pools: Vec<ipam::AddressPool>,
    path: PathBuf,
}

fn network_settings(path: &Path) -> Result<NetworkSettings, EngineError> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Pool {
        base: String,
        size: u8,
    }
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct NetworkToml {
        default_subnet: Option<String>,
        default_address_pools: Option<Vec<Pool>>,
    }
    let invalid = |e: &dyn std::fmt::Display| {
        EngineError::InvalidArgument(format!("{}: {e}", path.display()))
    };
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(EngineError::io("read", path)(e)),
    };
    let cfg: NetworkToml = toml::from_str(&text).map_err(|e| invalid(&e))?;
    let pools = match cfg.default_address_pools {
        None => ipam::default_pools(),
        Some(pools) if pools.is_empty() => {
            return Err(invalid(&"default_address_pools is empty"));
        }
        Some(pools) => pools
            .iter()
            .map(|p| ipam::AddressPool::new(&p.base, p.size))
            .collect::<Result<_, _>>()
            .map_err(|e| invalid(&e))?,
    };
    Ok(NetworkSettings {
        default_subnet: cfg.default_subnet,
        pools,
        path: path.to_path_buf(),
    })
}

/// What keeps this store's networking apart from other stores' in the same network
/// namespace: its firewall table, its bridges' names and its firewall-state record.
pub(crate) struct StoreNet {
    /// The system store (`/var/lib/coracle`) keeps the names coracle always used:
    /// table `inet coracle`, bridges `coracle0`, `coracle1`...
    system: bool,
    /// 8 hex digits of the sha256 of the store's canonical path.
    tag: String,
}

impl StoreNet {
    /// `coracle`, or `coracle-<tag>` (nft names allow letters, digits, `-` and `_`).
    pub(crate) fn table(&self) -> String {
        if self.system {
            "coracle".into()
        } else {
            format!("coracle-{}", self.tag)
        }
    }
}

impl Engine {
    pub(crate) fn store_net(&self) -> StoreNet {
        let canonical = |p: &std::path::Path| std::fs::canonicalize(p).unwrap_or(p.to_path_buf());
        let root = canonical(&self.paths.root);
        let system = root == canonical(std::path::Path::new(crate::DEFAULT_ROOT));
        let digest = coracle_core::Digest::sha256_of(root.as_os_str().as_encoded_bytes());
        StoreNet {
            system,
            tag: digest.hex()[..8].to_string(),
        }
    }

    /// A new network's id and bridge. The system store numbers its bridges (`coracle0`
    /// for the default network); other stores name them `coracle` + 8 hex digits of
    /// the network id, as docker names its `br-<id>`, so no two stores ever pick the
    /// same bridge, even when one made its records while the other's bridges were down.
    fn new_bridge(
        &self,
        default: bool,
        existing: &[NetworkRecord],
    ) -> Result<(String, String), EngineError> {
        let new_id = || new_container_id().map_err(EngineError::io("read", "/dev/urandom"));
        if self.store_net().system {
            let bridge = if default {
                DEFAULT_BRIDGE.to_string()
            } else {
                (1..)
                    .map(|i| format!("coracle{i}"))
                    .find(|b| !existing.iter().any(|n| &n.bridge == b))
                    .expect("an unused bridge name")
            };
            return Ok((new_id()?, bridge));
        }
        loop {
            let id = new_id()?;
            let bridge = format!("coracle{}", &id[..8]);
            if !existing.iter().any(|n| n.bridge == bridge) && !link::link_exists(&bridge)? {
                return Ok((id, bridge));
            }
        }
    }

    /// The default network's subnet: the configured one, which must not overlap a
    /// route or address on the host, or the first free one of the address pools.
    fn choose_default_subnet(
        &self,
        bridge: &str,
        existing: &[NetworkRecord],
    ) -> Result<Ipv4Net, EngineError> {
        let host = link::host_networks(Some(bridge))?;
        let settings = network_settings(&self.network_config)?;
        if let Some(s) = &settings.default_subnet {
            let subnet = ipam::parse_subnet(s)?;
            if let Some(h) = ipam::host_overlap(subnet, &host) {
                return Err(EngineError::Conflict(format!(
                    "default_subnet {subnet} ({}) overlaps with the host's {}: choose another subnet there",
                    settings.path.display(),
                    h.what
                )));
            }
            return Ok(subnet);
        }
        let candidates = ipam::candidates(&settings.pools);
        ipam::choose_subnet(candidates, &subnets_of(existing), &host).ok_or_else(no_free_pool)
    }

    /// The default network's record, made on first use.
    pub(crate) fn default_network(&mut self) -> Result<NetworkRecord, EngineError> {
        if let Some(n) = self.db.network_by_name(DEFAULT_NETWORK)? {
            return Ok(n);
        }
        let existing = self.db.networks()?;
        let (id, bridge) = self.new_bridge(true, &existing)?;
        let subnet = self.choose_default_subnet(&bridge, &existing)?;
        let rec = NetworkRecord {
            id,
            name: DEFAULT_NETWORK.into(),
            driver: "bridge".into(),
            bridge,
            subnet: subnet.to_string(),
            gateway: ipam::first_host(subnet).to_string(),
            internal: false,
            labels: BTreeMap::new(),
            created: crate::clock::now_rfc3339(),
        };
        match self.db.insert_network(&rec) {
            Ok(()) => {
                self.save_network_file(&rec);
                Ok(rec)
            }
            // Another process made it first.
            Err(coracle_state::StateError::NetworkNameInUse { .. }) => self
                .db
                .network_by_name(DEFAULT_NETWORK)?
                .ok_or_else(|| EngineError::Conflict("the default network vanished".into())),
            Err(e) => Err(e.into()),
        }
    }

    /// A network by exact name, full id or unique id prefix (docker's order).
    pub(crate) fn find_network(&mut self, key: &str) -> Result<Found, EngineError> {
        let not_found = || EngineError::NoSuchNetwork(key.to_string());
        if key == DEFAULT_NETWORK {
            return Ok(Found::Record(self.default_network()?));
        }
        for (name, driver) in BUILTIN {
            if key == name || key == builtin_id(name) {
                return Ok(Found::Builtin { name, driver });
            }
        }
        if let Some(n) = self.db.network_by_name(key)? {
            return Ok(Found::Record(n));
        }
        if key.is_empty() {
            return Err(not_found());
        }
        let matches: Vec<NetworkRecord> = self
            .db
            .networks()?
            .into_iter()
            .filter(|n| n.id.starts_with(key))
            .collect();
        match matches.len() {
            0 => Err(not_found()),
            1 => Ok(Found::Record(matches.into_iter().next().expect("one"))),
            _ => Err(EngineError::InvalidArgument(format!(
                "network {key} is ambiguous ({} matches found based on ID prefix)",
                matches.len()
            ))),
        }
    }

    /// A network containers can join by record (not `host`/`none`).
    pub(crate) fn find_joinable(&mut self, key: &str) -> Result<NetworkRecord, EngineError> {
        match self.find_network(key)? {
            Found::Record(n) => Ok(n),
            Found::Builtin { name, .. } => Err(EngineError::InvalidArgument(format!(
                "container cannot be connected to the {name} network with other networks"
            ))),
        }
    }
}

impl Networks<'_> {
    pub fn network_create(&mut self, req: &NetworkCreateRequest) -> Result<String, EngineError> {
        if req.driver != "bridge" {
            return Err(EngineError::InvalidArgument(format!(
                "plugin \"{}\" not found: coracle has the bridge driver only",
                req.driver
            )));
        }
        if !crate::names::valid_name(&req.name) {
            return Err(EngineError::InvalidArgument(format!(
                "invalid network name \"{}\": only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed",
                req.name
            )));
        }
        if req.name == DEFAULT_NETWORK || BUILTIN.iter().any(|(n, _)| *n == req.name) {
            return Err(EngineError::Conflict(format!(
                "network with name {} already exists",
                req.name
            )));
        }
        self.default_network()?;
        let _lock = self.network_lock()?;
        let existing = self.db.networks()?;
        let taken = subnets_of(&existing);
        let (id, bridge) = self.new_bridge(false, &existing)?;
        let host = link::host_networks(Some(&bridge))?;
        let subnet = match &req.subnet {
            Some(s) => {
                let s = ipam::parse_subnet(s)?;
                if taken.iter().any(|t| ipam::overlaps(*t, s)) {
                    return Err(EngineError::Conflict(format!(
                        "invalid pool request: Pool overlaps with other one on this address space ({s})"
                    )));
                }
                if let Some(h) = ipam::host_overlap(s, &host) {
                    return Err(EngineError::Conflict(format!(
                        "invalid pool request: {s} overlaps with the host's {}: choose another --subnet",
                        h.what
                    )));
                }
                s
            }
            None => {
                let pools = network_settings(&self.network_config)?.pools;
                ipam::choose_subnet(ipam::candidates(&pools), &taken, &host)
                    .ok_or_else(no_free_pool)?
            }
        };
        let gateway = match &req.gateway {
            Some(g) => {
                let g = ipam::parse_ipv4("gateway", g)?;
                ipam::check_in_subnet("gateway", subnet, g)?;
                g
            }
            None => ipam::first_host(subnet),
        };
        let rec = NetworkRecord {
            id,
            name: req.name.clone(),
            driver: req.driver.clone(),
            bridge,
            subnet: subnet.to_string(),
            gateway: gateway.to_string(),
            internal: req.internal,
            labels: req.labels.clone(),
            created: crate::clock::now_rfc3339(),
        };
        self.db.insert_network(&rec)?;
        self.save_network_file(&rec);
        Ok(rec.id)
    }

    pub fn network_list(&mut self) -> Result<Vec<NetworkSummary>, EngineError> {
        self.default_network()?;
        let mut out: Vec<NetworkSummary> = self
            .db
            .networks()?
            .into_iter()
            .map(|n| NetworkSummary {
                id: n.id,
                name: n.name,
                driver: n.driver,
                scope: "local".into(),
                internal: n.internal,
                ipv6: false,
                created: n.created,
                labels: n.labels,
            })
            .collect();
        for (name, driver) in BUILTIN {
            out.push(NetworkSummary {
                id: builtin_id(name),
                name: name.into(),
                driver: driver.into(),
                scope: "local".into(),
                internal: false,
                ipv6: false,
                created: String::new(),
                labels: BTreeMap::new(),
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    pub fn network_remove(&mut self, key: &str) -> Result<(), EngineError> {
        let n = match self.find_network(key)? {
            Found::Record(n) if n.name != DEFAULT_NETWORK => n,
            Found::Record(n) => return Err(predefined(&n.name)),
            Found::Builtin { name, .. } => return Err(predefined(name)),
        };
        // Leases of containers whose monitor died are released first.
        self.container_records()?;
        let _lock = self.network_lock()?;
        if !self.db.leases_of_network(&n.id)?.is_empty() {
            return Err(EngineError::Conflict(format!(
                "error while removing network: network {} id {} has active endpoints",
                n.name, n.id
            )));
        }
        self.db.delete_network(&n.id)?;
        self.remove_network_file(&n.id);
        link::delete_link(&n.bridge)?;
        self.sync_firewall()
    }

    /// Removes user-defined networks no container (running or not) is configured on;
    /// returns their names.
    pub fn network_prune(
        &mut self,
        filters: &[(String, String)],
    ) -> Result<Vec<String>, EngineError> {
        let mut f = Filters::default();
        for (k, v) in filters {
            f.add(k, v);
        }
        f.validate(&["label", "label!", "until"])?;
        let until = f.until()?;
        let mut removed = Vec::new();
        for n in self.db.networks()? {
            if n.name == DEFAULT_NETWORK
                || !self.db.network_endpoint_containers(&n.id)?.is_empty()
                || !f.match_kv_list("label", &n.labels)
                || (f.contains("label!") && f.match_kv_list("label!", &n.labels))
            {
                continue;
            }
            if let Some(until) = until {
                let created = chrono::DateTime::parse_from_rfc3339(&n.created).ok();
                if created.is_some_and(|t| t.with_timezone(&chrono::Utc) > until) {
                    continue;
                }
            }
            if self.network_remove(&n.id).is_ok() {
                removed.push(n.name);
            }
        }
        Ok(removed)
    }

    pub fn network_connect(
        &mut self,
        network: &str,
        container: &str,
        req: &EndpointRequest,
    ) -> Result<(), EngineError> {
        let c = self.find_container(container)?;
        let cfg = self.container_config(&c.id)?;
        if cfg.network.mode != NetMode::Bridge {
            return Err(EngineError::InvalidArgument(format!(
                "container {} is not on a bridge network (--network {}): it cannot join others",
                c.name,
                mode_name(&cfg.network.mode)
            )));
        }
        let net = self.find_joinable(network)?;
        if net.name == DEFAULT_NETWORK && (req.ip.is_some() || !req.aliases.is_empty()) {
            return Err(EngineError::InvalidArgument(
                "user specified IP address and network-scoped aliases are supported on user defined networks only".into(),
            ));
        }
        let ep = EndpointConfig {
            network_id: net.id.clone(),
            aliases: req.aliases.clone(),
            ip: req.ip.map(|ip| ip.to_string()),
            mac: None,
        };
        if !self.db.add_container_endpoint(&c.id, &ep)? {
            return Err(EngineError::Conflict(format!(
                "endpoint with name {} already exists in network {}",
                c.name, net.name
            )));
        }
        let _ = self.save_record_file(&c.id); // best effort: only a repair reads it
        if c.state != coracle_state::ContainerState::Running {
            return Ok(());
        }
        let ns = self.run_dir.netns(&c.id);
        let result = (|| {
            let used = link::links_in(&ns)?;
            let container_if = (0..)
                .map(|i| format!("eth{i}"))
                .find(|n| !used.contains(n))
                .expect("a free interface name");
            let _lock = self.network_lock()?;
            self.attach_locked(&c.id, &ns, &net, &ep, &container_if, false)?;
            self.sync_firewall()
        })();
        if result.is_err() {
            let _ = self.db.remove_container_endpoint(&c.id, &net.id);
            let _ = self.save_record_file(&c.id);
        }
        result
    }

    pub fn network_disconnect(
        &mut self,
        network: &str,
        container: &str,
        force: bool,
    ) -> Result<(), EngineError> {
        let net = match self.find_network(network) {
            Ok(Found::Record(n)) => n,
            Ok(Found::Builtin { name, .. }) => {
                return Err(EngineError::InvalidArgument(format!(
                    "container cannot be disconnected from the {name} network"
                )))
            }
            Err(e) => return Err(e),
        };
        let c = match self.find_container(container) {
            Ok(c) => c,
            // docker: -f removes a stale endpoint of a container that is gone.
            Err(EngineError::NoSuchContainer(_)) if force => return Ok(()),
            Err(e) => return Err(e),
        };
        if !self
            .db
            .container_endpoints(&c.id)?
            .iter()
            .any(|e| e.network_id == net.id)
        {
            return Err(EngineError::Conflict(format!(
                "container {} is not connected to network {}",
                c.id, net.name
            )));
        }
        let lock = self.network_lock()?;
        if let Some(lease) = self
            .db
            .leases_of_container(&c.id)?
            .into_iter()
            .find(|l| l.network_id == net.id)
        {
            link::detach_in(&self.run_dir.netns(&c.id), &lease.container_if)?;
            let mut failures = Vec::new();
            self.detach_locked(&lease, true, &mut failures);
            self.sync_firewall()?;
            if let Some(f) = failures.into_iter().next() {
                return Err(f.into());
            }
        }
        drop(lock);
        self.db.remove_container_endpoint(&c.id, &net.id)?;
        let _ = self.save_record_file(&c.id); // best effort: only a repair reads it
        Ok(())
    }

    /// `port`: the container's published ports while it runs.
    pub fn container_port(&mut self, container: &str) -> Result<Vec<PortMapping>, EngineError> {
        let c = self.find_container(container)?;
        self.published_ports(&c.id)
    }
}

impl Engine {
    pub(crate) fn published_ports(&self, id: &str) -> Result<Vec<PortMapping>, EngineError> {
        let mut out: Vec<PortMapping> = self
            .db
            .container_ports(id)?
            .into_iter()
            .map(|p| p.mapping)
            .collect();
        out.sort_by_key(PortMapping::listing_key);
        Ok(out)
    }
}

fn subnets_of(networks: &[NetworkRecord]) -> Vec<Ipv4Net> {
    networks
        .iter()
        .filter_map(|n| ipam::parse_subnet(&n.subnet).ok())
        .collect()
}

/// docker's words when the pools are used up.
fn no_free_pool() -> EngineError {
    EngineError::Conflict(
        "could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network".into(),
    )
}

fn predefined(name: &str) -> EngineError {
    EngineError::Conflict(format!(
        "{name} is a pre-defined network and cannot be removed"
    ))
}

pub(crate) fn mode_name(mode: &NetMode) -> String {
    match mode {
        NetMode::None | NetMode::Loopback => "none".into(),
        NetMode::Host => "host".into(),
        NetMode::Bridge => "bridge".into(),
        NetMode::Container(id) => format!("container:{id}"),
    }
}
