//! Network planning and the firewall's desired state, on a store with a recording
//! firewall driver: no root, no links made (the only link read is `lo`).

use super::{NetMode, NetworkCreateRequest};
use crate::testing::{store, TestStore, DEAD_PID, TEST_POOL};
use crate::EngineError;
use coracle_core::{PortMapping, Protocol};
use coracle_image::ImageConfig;
use coracle_model::{
    parse_add_host, parse_expose, parse_mac, parse_publish, ContainerSpec, NetworkMode,
};
use coracle_net::firewall::{FirewallState, NetworkRule, PortForward};
use coracle_runtime::spec::NetworkNamespace;
use coracle_state::{EndpointConfig, LeaseRecord, NetworkRecord, PortRecord};
use ipnet::Ipv4Net;
use std::net::{IpAddr, Ipv4Addr};

const RESOLV: &str = "nameserver 192.0.2.53\nsearch example.com\n";

fn id(c: char) -> String {
    c.to_string().repeat(64)
}

fn image(exposed: &[&str]) -> ImageConfig {
    let ports: serde_json::Map<String, serde_json::Value> = exposed
        .iter()
        .map(|p| (p.to_string(), serde_json::json!({})))
        .collect();
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"ExposedPorts": ports},
        "rootfs": {"type": "layers", "diff_ids": []},
    });
    ImageConfig::parse(config.to_string().as_bytes()).unwrap()
}

fn with_network(network: NetworkMode) -> ContainerSpec {
    ContainerSpec {
        network,
        ..ContainerSpec::new()
    }
}

fn plan(s: &mut TestStore, opts: &ContainerSpec) -> Result<super::plan::NetworkPlan, EngineError> {
    s.engine
        .plan_network(&id('c'), opts, &image(&[]), "host1", RESOLV)
}

fn create_network(s: &mut TestStore, name: &str, subnet: &str) -> String {
    s.engine
        .networks()
        .network_create(&NetworkCreateRequest {
            name: name.into(),
            driver: "bridge".into(),
            subnet: Some(subnet.into()),
            gateway: None,
            internal: false,
            labels: Default::default(),
        })
        .unwrap()
}

#[test]
fn none_gets_a_namespace_of_its_own_in_the_run_directory() {
    let mut s = store();
    let p = plan(&mut s, &with_network(NetworkMode::None)).unwrap();
    assert_eq!(p.config.mode, NetMode::Loopback);
    let netns = s.tmp.path().join("run").join("netns").join(id('c'));
    assert_eq!(p.namespace, NetworkNamespace::Path(netns));
    assert!(p.endpoints.is_empty());
    assert_eq!(p.config.hostname, "host1");
}

#[test]
fn host_mode_discards_published_ports() {
    let mut s = store();
    let opts = ContainerSpec {
        publish: parse_publish("8080:80").unwrap(),
        ..with_network(NetworkMode::Host)
    };
    let p = plan(&mut s, &opts).unwrap();
    assert_eq!(p.namespace, NetworkNamespace::Host);
    assert_eq!(p.config.mode, NetMode::Host);
    assert!(p.config.publish.is_empty());
    assert!(p.endpoints.is_empty());
}

#[test]
fn the_default_network_is_made_on_first_use_from_the_configured_pools() {
    let mut s = store();
    let p = plan(&mut s, &ContainerSpec::new()).unwrap();
    assert_eq!(p.config.mode, NetMode::Bridge);
    let net = s.engine.db.network_by_name("bridge").unwrap().unwrap();
    let pool: Ipv4Net = TEST_POOL.parse().unwrap();
    let subnet: Ipv4Net = net.subnet.parse().unwrap();
    assert!(pool.contains(&subnet), "{subnet} from {pool}");
    assert_eq!(
        p.endpoints,
        [EndpointConfig {
            network_id: net.id.clone(),
            aliases: vec![],
            ip: None,
            mac: None,
        }]
    );
    // docker's default network: the host's resolvers, no embedded DNS.
    assert!(p.dns.nameservers.is_empty());
    assert!(p.config.dns_upstreams.is_empty());
    // Made once.
    plan(&mut s, &ContainerSpec::new()).unwrap();
    assert_eq!(s.engine.db.networks().unwrap().len(), 1);
}

#[test]
fn the_default_network_refuses_an_address_and_aliases() {
    let mut s = store();
    let ip = ContainerSpec {
        ip: Some(Ipv4Addr::new(10, 213, 0, 9)),
        ..ContainerSpec::new()
    };
    let err = plan(&mut s, &ip).err().unwrap();
    assert_eq!(
        err.to_string(),
        "user specified IP address is supported on user defined networks only"
    );
    let alias = ContainerSpec {
        network_aliases: vec!["db".into()],
        ..ContainerSpec::new()
    };
    let err = plan(&mut s, &alias).err().unwrap();
    assert_eq!(
        err.to_string(),
        "network-scoped alias is supported only for containers in user defined networks"
    );
}

#[test]
fn publish_all_adds_every_exposed_port_once_on_a_random_host_port() {
    let mut s = store();
    let opts = ContainerSpec {
        publish: parse_publish("8080:80").unwrap(),
        publish_all: true,
        expose: parse_expose("53/udp").unwrap(),
        ..ContainerSpec::new()
    };
    let p = s
        .engine
        .plan_network(&id('c'), &opts, &image(&["80/tcp", "443/tcp"]), "h", RESOLV)
        .unwrap();
    let port = |container_port, proto, host_ports| PortMapping {
        host_ip: None,
        host_ports,
        container_port,
        proto,
    };
    assert_eq!(
        p.config.publish,
        [
            port(80, Protocol::Tcp, Some((8080, 8080))),
            port(53, Protocol::Udp, None),
            port(443, Protocol::Tcp, None),
        ]
    );
}

#[test]
fn a_user_network_gets_the_embedded_dns_and_the_endpoint_as_asked() {
    let mut s = store();
    let net = create_network(&mut s, "appnet", "10.213.77.0/24");
    let opts = ContainerSpec {
        ip: Some(Ipv4Addr::new(10, 213, 77, 9)),
        network_aliases: vec!["db".into()],
        mac_address: Some(parse_mac("02:42:0a:d5:4d:09").unwrap()),
        dns_options: vec!["timeout:2".into()],
        ..with_network(NetworkMode::Named("appnet".into()))
    };
    let p = plan(&mut s, &opts).unwrap();
    assert_eq!(
        p.endpoints,
        [EndpointConfig {
            network_id: net,
            aliases: vec!["db".into()],
            ip: Some("10.213.77.9".into()),
            mac: Some("02:42:0a:d5:4d:09".into()),
        }]
    );
    assert_eq!(p.dns.nameservers, ["127.0.0.11"]);
    assert_eq!(p.dns.options, ["timeout:2", "ndots:0"]);
    // The embedded server forwards to the host's resolvers...
    assert_eq!(p.config.dns_upstreams, ["192.0.2.53"]);
    // ... or to --dns; an ndots given is kept.
    let opts = ContainerSpec {
        dns: vec!["192.0.2.1".parse().unwrap()],
        dns_options: vec!["ndots:3".into()],
        ..with_network(NetworkMode::Named("appnet".into()))
    };
    let p = plan(&mut s, &opts).unwrap();
    assert_eq!(p.config.dns_upstreams, ["192.0.2.1"]);
    assert_eq!(p.dns.options, ["ndots:3"]);
}

#[test]
fn an_address_outside_the_networks_subnet_is_refused() {
    let mut s = store();
    create_network(&mut s, "appnet", "10.213.77.0/24");
    let opts = ContainerSpec {
        ip: Some(Ipv4Addr::new(10, 213, 78, 9)),
        ..with_network(NetworkMode::Named("appnet".into()))
    };
    assert!(matches!(plan(&mut s, &opts), Err(EngineError::Net(_))));
}

#[test]
fn container_mode_joins_the_other_containers_namespace_and_etc_files() {
    let mut s = store();
    let target = id('d');
    s.add_container(&target, "db", serde_json::json!({}));
    let p = plan(&mut s, &with_network(NetworkMode::Container("db".into()))).unwrap();
    assert_eq!(p.config.mode, NetMode::Container(target.clone()));
    assert_eq!(p.shared_etc_from.as_deref(), Some(target.as_str()));
    let netns = s.tmp.path().join("run").join("netns").join(&target);
    assert_eq!(p.namespace, NetworkNamespace::Path(netns));
}

#[test]
fn host_gateway_is_the_default_networks_gateway() {
    let mut s = store();
    let opts = ContainerSpec {
        extra_hosts: vec![
            parse_add_host("gw:host-gateway").unwrap(),
            parse_add_host("one:192.0.2.1").unwrap(),
        ],
        ..with_network(NetworkMode::None)
    };
    let p = plan(&mut s, &opts).unwrap();
    let net = s.engine.db.network_by_name("bridge").unwrap().unwrap();
    let gateway: IpAddr = net.gateway.parse().unwrap();
    assert_eq!(
        p.config.extra_hosts,
        [
            ("gw".to_string(), gateway),
            ("one".to_string(), "192.0.2.1".parse().unwrap())
        ]
    );
}

/// A network record on bridge `bridge` (`lo` exists everywhere; nothing is made).
fn add_network(s: &TestStore, id: &str, bridge: &str, subnet: &str, internal: bool) {
    let subnet_net: Ipv4Net = subnet.parse().unwrap();
    s.engine
        .db
        .insert_network(&NetworkRecord {
            id: id.into(),
            name: format!("net-{}", &id[..4]),
            driver: "bridge".into(),
            bridge: bridge.into(),
            subnet: subnet.into(),
            gateway: coracle_net::ipam::first_host(subnet_net).to_string(),
            internal,
            labels: Default::default(),
            created: "2024-01-01T00:00:00Z".into(),
        })
        .unwrap();
}

/// Container `container` on `networks` (in that order), leased `ip` on each.
fn join(s: &mut TestStore, container: &str, networks: &[(&str, &str)]) {
    s.add_container(
        container,
        &format!("c-{}", &container[..4]),
        serde_json::json!({}),
    );
    let eps: Vec<EndpointConfig> = networks
        .iter()
        .map(|(net, _)| EndpointConfig {
            network_id: net.to_string(),
            aliases: vec![],
            ip: None,
            mac: None,
        })
        .collect();
    s.engine
        .db
        .set_container_endpoints(container, &eps)
        .unwrap();
    for (n, (net, ip)) in networks.iter().enumerate() {
        s.engine
            .db
            .insert_lease_with(net, &mut |_| {
                Some(LeaseRecord {
                    network_id: net.to_string(),
                    container_id: container.into(),
                    ip: ip.parse().unwrap(),
                    mac: [2, 0x42, 0, 0, 0, 1].into(),
                    host_if: format!("vethtest{n}"),
                    container_if: format!("eth{n}"),
                })
            })
            .unwrap()
            .unwrap();
    }
}

fn publish(s: &TestStore, container: &str, ports: &[(&str, &str, u16, u16)]) {
    let ports: Vec<PortRecord> = ports
        .iter()
        .map(|(proto, host_ip, host_port, container_port)| {
            let host_ip: Ipv4Addr = host_ip.parse().unwrap();
            PortRecord {
                container_id: container.into(),
                mapping: PortMapping {
                    host_ip: (!host_ip.is_unspecified()).then_some(host_ip),
                    host_ports: Some((*host_port, *host_port)),
                    container_port: *container_port,
                    proto: proto.parse().unwrap(),
                },
            }
        })
        .collect();
    s.engine.db.set_container_ports(container, &ports).unwrap();
}

fn forward(
    proto: Protocol,
    host: Option<[u8; 4]>,
    port: u16,
    to: [u8; 4],
    to_port: u16,
) -> PortForward {
    PortForward {
        mapping: PortMapping {
            host_ip: host.map(Ipv4Addr::from),
            host_ports: Some((port, port)),
            container_port: to_port,
            proto,
        },
        container_ip: Ipv4Addr::from(to),
    }
}

/// Network 1 on `lo` (the one link every namespace has), 2 (internal) and 3 on
/// bridges that do not exist; container a on 1, b on 2 then 1, c on 2 only; each
/// publishes a port.
fn three_networks() -> TestStore {
    let mut s = store();
    add_network(&s, &id('1'), "lo", "10.213.50.0/24", false);
    add_network(&s, &id('2'), "crtestabsent1", "10.213.51.0/24", true);
    add_network(&s, &id('3'), "crtestabsent0", "10.213.52.0/24", false);
    join(&mut s, &id('a'), &[(&id('1'), "10.213.50.2")]);
    join(
        &mut s,
        &id('b'),
        &[(&id('2'), "10.213.51.3"), (&id('1'), "10.213.50.3")],
    );
    join(&mut s, &id('c'), &[(&id('2'), "10.213.51.4")]);
    publish(
        &s,
        &id('a'),
        &[("tcp", "0.0.0.0", 8080, 80), ("udp", "127.0.0.1", 5353, 53)],
    );
    publish(&s, &id('b'), &[("tcp", "0.0.0.0", 9090, 90)]);
    publish(&s, &id('c'), &[("tcp", "0.0.0.0", 7070, 70)]);
    s
}

#[test]
fn the_firewall_gets_networks_with_a_bridge_and_ports_at_an_open_address() {
    let s = three_networks();
    s.engine.sync_firewall().unwrap();
    let applied = s.firewall.lock().unwrap().clone();
    assert_eq!(applied.len(), 1);
    let (table, mut state) = applied.into_iter().next().unwrap();
    assert_eq!(table, s.engine.store_net().table());
    state.ports.sort_by_key(|p| p.mapping.host_port());
    assert_eq!(
        state,
        FirewallState {
            // Only a network whose bridge is up needs rules.
            networks: vec![NetworkRule {
                bridge: "lo".into(),
                subnet: "10.213.50.0/24".parse().unwrap(),
                internal: false,
            }],
            // c has no address outside its internal network: nothing leads to it.
            ports: vec![
                forward(
                    Protocol::Udp,
                    Some([127, 0, 0, 1]),
                    5353,
                    [10, 213, 50, 2],
                    53
                ),
                forward(Protocol::Tcp, None, 8080, [10, 213, 50, 2], 80),
                forward(Protocol::Tcp, None, 9090, [10, 213, 50, 3], 90),
            ],
        }
    );
}

#[test]
fn an_unchanged_firewall_is_not_applied_again() {
    let s = three_networks();
    s.engine.sync_firewall().unwrap();
    s.engine.sync_firewall().unwrap();
    // What was applied is recorded per network namespace (where the kernel tells
    // namespaces apart by cookie, Linux 5.14+; otherwise every sync applies).
    // Not root: no run directory to record in.
    let recorded = std::fs::read_dir(s.engine.run_dir().path()).is_ok_and(|entries| {
        entries
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with("firewall-"))
    });
    assert_eq!(s.applied().len(), if recorded { 1 } else { 2 });
    publish(&s, &id('a'), &[]);
    s.engine.sync_firewall().unwrap();
    let last = s.applied().pop().unwrap();
    assert_eq!(last.ports.len(), 1, "{last:?}");
}

#[test]
fn a_dead_bridged_containers_addresses_and_ports_are_released() {
    let mut s = three_networks();
    let a = id('a');
    let dir = s.engine.containers_dir().join(&a);
    let mut cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("container.json")).unwrap()).unwrap();
    cfg["network"] = serde_json::json!({"mode": "Bridge"});
    std::fs::write(dir.join("container.json"), cfg.to_string()).unwrap();
    s.set_running(&a, DEAD_PID);
    let rec = s.record(&a).unwrap();
    let after = s.engine.reconcile(&rec).unwrap();
    assert!(!after.is_active());
    assert!(s.engine.db.leases_of_container(&a).unwrap().is_empty());
    assert!(s.engine.db.container_ports(&a).unwrap().is_empty());
    let last = s.applied().pop().unwrap();
    assert_eq!(
        last.ports,
        [forward(Protocol::Tcp, None, 9090, [10, 213, 50, 3], 90)]
    );
    assert_eq!(s.runtime.deletes(), [a]);
}
