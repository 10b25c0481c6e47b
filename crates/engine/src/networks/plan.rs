//! What `create` decides about a container's network: the namespace its spec joins,
//! its endpoints (networks, aliases, `--ip`, `--mac-address`), the ports to publish
//! at start, and what goes into its /etc/hosts and /etc/resolv.conf.

use super::{NetMode, NetworkConfig, DEFAULT_NETWORK};
use crate::{Engine, EngineError};
use coracle_core::PortMapping;
use coracle_image::ImageConfig;
use coracle_model::{ContainerSpec, HostAddr, NetworkMode};
use coracle_net::dns::DNS_ADDR;
use coracle_rootfs::etc_files::DnsOverrides;
use coracle_runtime::spec::NetworkNamespace;
use coracle_state::EndpointConfig;
use std::net::IpAddr;

pub(crate) struct NetworkPlan {
    pub namespace: NetworkNamespace,
    pub config: NetworkConfig,
    pub endpoints: Vec<EndpointConfig>,
    pub dns: DnsOverrides,
    /// Container mode: the joined container's /etc files are shared (docker).
    pub shared_etc_from: Option<String>,
}

impl Engine {
    pub(crate) fn plan_network(
        &mut self,
        id: &str,
        opts: &ContainerSpec,
        image: &ImageConfig,
        hostname: &str,
        host_resolv_conf: &str,
    ) -> Result<NetworkPlan, EngineError> {
        let mut config = NetworkConfig {
            hostname: hostname.to_string(),
            ..Default::default()
        };
        (config.legacy_links, config.link_aliases) = self.resolve_links(opts)?;
        let joined = self.join_network(id, opts, image, &mut config)?;
        config.extra_hosts = self.extra_hosts(opts)?;
        let dns = dns_overrides(opts, joined.user_network, host_resolv_conf, &mut config);
        Ok(NetworkPlan {
            namespace: joined.namespace,
            config,
            endpoints: joined.endpoints,
            dns,
            shared_etc_from: joined.shared_etc_from,
        })
    }

    /// The namespace the container joins for its `--network` mode (the mode and the
    /// ports to publish go into `config`).
    fn join_network(
        &mut self,
        id: &str,
        opts: &ContainerSpec,
        image: &ImageConfig,
        config: &mut NetworkConfig,
    ) -> Result<JoinedNetwork, EngineError> {
        let mut joined = JoinedNetwork {
            namespace: NetworkNamespace::Host,
            endpoints: Vec::new(),
            user_network: false,
            shared_etc_from: None,
        };
        joined.namespace = match &opts.network {
            NetworkMode::None => {
                config.mode = NetMode::Loopback;
                NetworkNamespace::Path(self.run_dir.netns(id))
            }
            NetworkMode::Host => {
                config.mode = NetMode::Host;
                if !opts.publish.is_empty() || opts.publish_all {
                    coracle_runtime::note!(
                        "WARNING: Published ports are discarded when using host network mode"
                    );
                }
                NetworkNamespace::Host
            }
            NetworkMode::Container(target) => {
                let t = self.find_container(target)?;
                config.mode = NetMode::Container(t.id.clone());
                joined.shared_etc_from = Some(t.id.clone());
                // Rewritten with the joined container's current init at each start.
                NetworkNamespace::Path(self.run_dir.netns(&t.id))
            }
            NetworkMode::DefaultBridge | NetworkMode::Named(_) => {
                let (endpoint, user_network) = self.bridge_endpoint(opts)?;
                config.mode = NetMode::Bridge;
                config.publish = published(opts, image);
                joined.endpoints.push(endpoint);
                joined.user_network = user_network;
                NetworkNamespace::Path(self.run_dir.netns(id))
            }
        };
        Ok(joined)
    }

    /// The endpoint on the default or a named network, its `--ip` and aliases checked;
    /// and whether the network is user-defined.
    fn bridge_endpoint(
        &mut self,
        opts: &ContainerSpec,
    ) -> Result<(EndpointConfig, bool), EngineError> {
        let net = match &opts.network {
            NetworkMode::Named(name) => self.find_joinable(name)?,
            _ => self.default_network()?,
        };
        let user_network = net.name != DEFAULT_NETWORK;
        if !user_network && opts.ip.is_some() {
            return Err(EngineError::InvalidArgument(
                "user specified IP address is supported on user defined networks only".into(),
            ));
        }
        if !user_network && !opts.network_aliases.is_empty() {
            return Err(EngineError::InvalidArgument(
                "network-scoped alias is supported only for containers in user defined networks"
                    .into(),
            ));
        }
        if let Some(ip) = opts.ip {
            let subnet = coracle_net::ipam::parse_subnet(&net.subnet)?;
            coracle_net::ipam::check_in_subnet("--ip", subnet, ip)?;
        }
        let endpoint = EndpointConfig {
            network_id: net.id.clone(),
            aliases: opts.network_aliases.clone(),
            ip: opts.ip.map(|ip| ip.to_string()),
            mac: opts.mac_address.map(|m| coracle_net::ipam::format_mac(&m)),
        };
        Ok((endpoint, user_network))
    }

    /// `--add-host` entries with their addresses, `host-gateway` resolved.
    fn extra_hosts(&mut self, opts: &ContainerSpec) -> Result<Vec<(String, IpAddr)>, EngineError> {
        // host-gateway: the default network's gateway, as docker's is docker0's.
        let gateway = if opts
            .extra_hosts
            .iter()
            .any(|h| h.addr == HostAddr::HostGateway)
        {
            Some(
                self.default_network()?
                    .gateway
                    .parse::<IpAddr>()
                    .map_err(EngineError::corrupt("the default network's gateway"))?,
            )
        } else {
            None
        };
        Ok(opts
            .extra_hosts
            .iter()
            .map(|h| {
                let ip = match &h.addr {
                    HostAddr::Ip(ip) => *ip,
                    HostAddr::HostGateway => gateway.expect("resolved above"),
                };
                (h.name.clone(), ip)
            })
            .collect())
    }
}

/// What `join_network` decides besides the stored config.
struct JoinedNetwork {
    namespace: NetworkNamespace,
    endpoints: Vec<EndpointConfig>,
    /// On a user-defined network: the embedded DNS server answers.
    user_network: bool,
    shared_etc_from: Option<String>,
}

/// The container's /etc/resolv.conf settings; on a user-defined network the
/// upstreams of the embedded server go into `config`.
fn dns_overrides(
    opts: &ContainerSpec,
    user_network: bool,
    host_resolv_conf: &str,
    config: &mut NetworkConfig,
) -> DnsOverrides {
    let host_servers: Vec<String> = coracle_net::dns::upstreams_from_resolv_conf(host_resolv_conf)
        .iter()
        .map(|a| a.ip().to_string())
        .collect();
    let given: Vec<String> = opts.dns.iter().map(|ip| ip.to_string()).collect();
    if user_network {
        // The embedded server answers; it forwards to --dns or the host's servers.
        config.dns_upstreams = if given.is_empty() {
            host_servers
        } else {
            given
        };
        let mut options = opts.dns_options.clone();
        if !options.iter().any(|o| o.starts_with("ndots:")) {
            options.push("ndots:0".into());
        }
        DnsOverrides {
            nameservers: vec![DNS_ADDR.to_string()],
            search: opts.dns_search.clone(),
            options,
        }
    } else {
        DnsOverrides {
            nameservers: given,
            search: opts.dns_search.clone(),
            options: opts.dns_options.clone(),
        }
    }
}

/// `-p`, plus with `-P` every port the image or `--expose` declares, each on a random
/// host port (docker's PublishAllPorts).
fn published(opts: &ContainerSpec, image: &ImageConfig) -> Vec<PortMapping> {
    let mut out = opts.publish.clone();
    if opts.publish_all {
        let mut exposed: Vec<_> = image
            .config
            .exposed_ports
            .as_ref()
            .map(|m| {
                m.keys()
                    .filter_map(|k| coracle_model::parse_exposed_key(k))
                    .collect()
            })
            .unwrap_or_default();
        exposed.extend(opts.expose.iter().copied());
        exposed.sort();
        exposed.dedup();
        for e in exposed {
            if !out
                .iter()
                .any(|p| p.container_port == e.port && p.proto == e.proto)
            {
                out.push(PortMapping {
                    host_ip: None,
                    host_ports: None,
                    container_port: e.port,
                    proto: e.proto,
                });
            }
        }
    }
    out
}
