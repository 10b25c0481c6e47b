//! A container's network while its monitor runs it: host ports reserved, its own
//! namespace wired to its networks, /etc/hosts with its address, and the embedded DNS
//! server for user-defined networks. Set up once per monitor (restarts keep it) and
//! released when the monitor finishes (or by reconciliation when the monitor died).

use super::{NetMode, DEFAULT_NETWORK};
use crate::stored::ContainerRuntimeConfig;
use crate::{Engine, EngineError};
use coracle_net::dns::{self, DnsServer};
use coracle_net::{netns, ports, NetError};
use coracle_rootfs::etc_files;
use coracle_state::{NetworkRecord, PortRecord};
use std::net::{IpAddr, Ipv4Addr};

/// What the monitor holds for the container's life.
#[derive(Default)]
pub struct Sandbox {
    /// Bound host ports: nobody else can take them while the container runs.
    _reservations: Vec<ports::Reservation>,
    pub dns: Option<DnsServer>,
}

impl Engine {
    /// Prepares the container's network before its first start. On failure nothing is
    /// left behind.
    pub(crate) fn setup_network(
        &mut self,
        id: &str,
        cfg: &ContainerRuntimeConfig,
    ) -> Result<Sandbox, EngineError> {
        match &cfg.network.mode {
            NetMode::None | NetMode::Host => Ok(Sandbox::default()),
            NetMode::Loopback => {
                let ns = self.run_dir.netns(id);
                netns::remove(&ns)?;
                coracle_net::link::create_netns(&ns)?;
                Ok(Sandbox::default())
            }
            NetMode::Container(target) => {
                self.join_container_network(id, target)?;
                Ok(Sandbox::default())
            }
            NetMode::Bridge => self.setup_bridged(id, cfg).inspect_err(|_| {
                for f in self.release_container_network(id) {
                    coracle_runtime::note!("coracle: {f}");
                }
            }),
        }
    }

    fn setup_bridged(
        &mut self,
        id: &str,
        cfg: &ContainerRuntimeConfig,
    ) -> Result<Sandbox, EngineError> {
        let endpoints = self.db.container_endpoints(id)?;
        let mut nets: Vec<NetworkRecord> = Vec::with_capacity(endpoints.len());
        for ep in &endpoints {
            nets.push(self.db.network_by_id(&ep.network_id)?.ok_or_else(|| {
                EngineError::InvalidArgument(format!(
                    "network {} not found: it was removed; disconnect the container from it",
                    ep.network_id
                ))
            })?);
        }
        // Legacy links first: a linked container that is not running fails the start
        // before anything is built (docker's order).
        let linked = if nets.iter().any(|n| n.name == DEFAULT_NETWORK) {
            self.apply_legacy_links(id, cfg)?
        } else {
            Vec::new()
        };
        if !cfg.network.publish.is_empty() && nets.iter().all(|n| n.internal) {
            return Err(EngineError::InvalidArgument(
                "published ports need a network with a way out: every network of this container is --internal".into(),
            ));
        }
        // Ports first: a port someone holds fails the start before anything is built.
        let mut reservations = Vec::new();
        let mut records = Vec::new();
        for p in &cfg.network.publish {
            let r = ports::reserve(p).map_err(|e| match e {
                NetError::PortInUse { .. } => EngineError::Conflict(format!(
                    "driver failed programming external connectivity on endpoint {} ({}): {e}",
                    cfg.name, id
                )),
                e => e.into(),
            })?;
            records.push(PortRecord {
                container_id: id.to_string(),
                mapping: r.mapping,
            });
            reservations.push(r);
        }
        let ns = self.run_dir.netns(id);
        // A file left by a monitor that died before its teardown ran.
        netns::remove(&ns)?;
        coracle_net::link::create_netns(&ns)?;
        let lock = self.network_lock()?;
        let first_out = nets.iter().position(|n| !n.internal);
        let mut first_ip = None;
        for (i, (ep, net)) in endpoints.iter().zip(&nets).enumerate() {
            let lease =
                self.attach_locked(id, &ns, net, ep, &format!("eth{i}"), Some(i) == first_out)?;
            first_ip.get_or_insert(lease.ip);
        }
        self.db.set_container_ports(id, &records)?;
        self.sync_firewall()?;
        drop(lock);

        let ip = first_ip.map(IpAddr::V4);
        self.write_hosts(id, cfg, ip, &linked)?;
        if nets.iter().any(|n| n.name == DEFAULT_NETWORK) {
            self.update_linking_containers(id);
        }
        let dns = if nets.iter().any(|n| n.name != DEFAULT_NETWORK) {
            // Internal networks have no way out, not even for names.
            let upstreams = if nets.iter().any(|n| !n.internal) {
                cfg.network
                    .dns_upstreams
                    .iter()
                    .filter_map(|s| s.parse::<IpAddr>().ok())
                    .map(|ip| std::net::SocketAddr::new(ip, 53))
                    .collect()
            } else {
                Vec::new()
            };
            Some(DnsServer::bind_in(&ns, upstreams)?)
        } else {
            None
        };
        Ok(Sandbox {
            _reservations: reservations,
            dns,
        })
    }

    /// `/etc/hosts` as docker writes it once the endpoint joined: the linked
    /// containers' lines after `--add-host`'s, then the container's own address with
    /// its hostname. Written in place: a running container has it bind mounted.
    pub(crate) fn write_hosts(
        &self,
        id: &str,
        cfg: &ContainerRuntimeConfig,
        ip: Option<IpAddr>,
        linked: &[(String, IpAddr)],
    ) -> Result<(), EngineError> {
        let path = self.containers_dir().join(id).join("hosts");
        let text = etc_files::hosts_content(&etc_files::HostsConfig {
            hostname: cfg.network.hostname.clone(),
            domainname: None,
            ip,
            extra_hosts: cfg
                .network
                .extra_hosts
                .iter()
                .chain(linked)
                .cloned()
                .collect(),
        });
        std::fs::write(&path, text).map_err(EngineError::io("write", &path))
    }

    /// The linked containers' /etc/hosts lines for this start; their variables go
    /// into the bundle's process environment (which `exec` takes too).
    fn apply_legacy_links(
        &mut self,
        id: &str,
        cfg: &ContainerRuntimeConfig,
    ) -> Result<Vec<(String, IpAddr)>, EngineError> {
        let links = &cfg.network.legacy_links;
        if links.is_empty() {
            return Ok(Vec::new());
        }
        let linked = self.linked_names(id, links)?;
        let env = crate::networks::links::with_link_env(&cfg.network.link_base_env, &linked.env);
        self.edit_bundle_spec(id, |spec| {
            if let Some(p) = spec.process_mut().as_mut() {
                p.set_env(Some(env));
            }
        })?;
        Ok(linked.hosts)
    }

    /// Rewrites the bundle's config.json (before the runtime reads it).
    fn edit_bundle_spec(
        &self,
        id: &str,
        edit: impl FnOnce(&mut oci_spec::runtime::Spec),
    ) -> Result<(), EngineError> {
        let path = self.containers_dir().join(id).join("config.json");
        let bytes = std::fs::read(&path).map_err(EngineError::io("read", &path))?;
        let mut spec: oci_spec::runtime::Spec =
            serde_json::from_slice(&bytes).map_err(EngineError::corrupt(path.display()))?;
        edit(&mut spec);
        let json = serde_json::to_vec_pretty(&spec).expect("specs serialise");
        crate::perms::write_private(&path, &json).map_err(EngineError::io("write", &path))
    }

    /// `--network container:NAME`: the joined container must run; its namespace is
    /// the one in its init's /proc entry, written into the bundle for this start.
    fn join_container_network(&mut self, id: &str, target: &str) -> Result<(), EngineError> {
        let t = self.find_container(target)?;
        let pid = t
            .init_pid
            .filter(|_| t.state == coracle_state::ContainerState::Running)
            .ok_or_else(|| {
                EngineError::Conflict(format!(
                    "cannot join network of a non running container: {}",
                    t.id
                ))
            })?;
        self.edit_bundle_spec(id, |spec| {
            if let Some(namespaces) = spec
                .linux_mut()
                .as_mut()
                .and_then(|l| l.namespaces_mut().as_mut())
            {
                for ns in namespaces.iter_mut() {
                    if ns.typ() == oci_spec::runtime::LinuxNamespaceType::Network {
                        ns.set_path(Some(format!("/proc/{pid}/ns/net").into()));
                    }
                }
            }
        })
    }
}

/// Answers the embedded DNS server's questions from the database: names, aliases and
/// short ids of containers on this container's user-defined networks.
pub(crate) struct DbNames<'a> {
    pub db: &'a coracle_state::Db,
    pub container_id: &'a str,
    /// `--link NAME:ALIAS` on a user network, as `(ALIAS, NAME)`: ALIAS answers as
    /// NAME, for this container only (docker's endpoint aliases).
    pub links: &'a [(String, String)],
}

impl dns::Names for DbNames<'_> {
    fn lookup(&mut self, name: &str) -> Option<Vec<Ipv4Addr>> {
        let name = self
            .links
            .iter()
            .find(|(alias, _)| alias.eq_ignore_ascii_case(name))
            .map_or(name, |(_, target)| target.as_str());
        let networks: Vec<String> = self
            .db
            .container_endpoints(self.container_id)
            .ok()?
            .into_iter()
            .map(|e| e.network_id)
            .filter(|id| {
                self.db
                    .network_by_id(id)
                    .ok()
                    .flatten()
                    .is_some_and(|n| n.name != DEFAULT_NETWORK)
            })
            .collect();
        let ips: Vec<Ipv4Addr> = self
            .db
            .resolve_on_networks(&networks, name)
            .ok()?
            .iter()
            .filter_map(|s| s.parse().ok())
            .collect();
        (!ips.is_empty()).then_some(ips)
    }
}

/// The DNS server as one of the monitor's poll-loop services.
pub(crate) struct DnsService<'a> {
    pub server: &'a mut DnsServer,
    pub names: DbNames<'a>,
}

impl coracle_runtime::monitor::supervise::Service for DnsService<'_> {
    fn fds(&self) -> Vec<std::os::fd::BorrowedFd<'_>> {
        self.server.fds()
    }
    fn ready(&mut self, fd: std::os::fd::RawFd) {
        self.server.handle(fd, &mut self.names);
    }
    fn deadline(&self) -> Option<std::time::Instant> {
        self.server.next_deadline()
    }
    fn timeout(&mut self) {
        self.server.on_timeout();
    }
}
