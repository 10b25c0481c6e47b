//! Root tests against the kernel: each runs on a thread that first moves into a network
//! namespace of its own, so the host's links are never touched. Commands spawned from
//! that thread (`ip`, `nsenter`) inherit its namespace.

use super::*;
use crate::netns;
use rustix::thread::{unshare_unsafe, UnshareFlags};
use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;

/// Skipped, saying so, unless root.
fn in_fresh_netns(f: impl FnOnce() + Send + 'static) {
    if coracle_testsupport::skip_unless_root() {
        return;
    }
    std::thread::spawn(move || {
        unsafe { unshare_unsafe(UnshareFlags::NEWNET) }.expect("unshare(CLONE_NEWNET)");
        f()
    })
    .join()
    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// A container namespace, removed (unmounted) even when the test fails.
struct Ns {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Ns {
    fn drop(&mut self) {
        let _ = netns::remove(&self.path);
    }
}

fn new_ns() -> Ns {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ns");
    create_netns(&path).unwrap();
    Ns { path, _dir: dir }
}

fn output(cmd: &mut Command) -> std::process::Output {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn ip(args: &[&str]) -> Value {
    let out = output(Command::new("ip").arg("-j").args(args));
    serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
}

fn ip_in(ns: &Ns, args: &[&str]) -> Value {
    let out = output(
        Command::new("nsenter")
            .arg(format!("--net={}", ns.path.display()))
            .args(["ip", "-j"])
            .args(args),
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn sh(args: &[&str]) {
    output(Command::new("ip").args(args));
}

fn ping_from(ns: &Ns, target: Ipv4Addr) -> bool {
    Command::new("nsenter")
        .arg(format!("--net={}", ns.path.display()))
        .args(["busybox", "ping", "-c1", "-W2", &target.to_string()])
        .output()
        .unwrap()
        .status
        .success()
}

/// "a.b.c.d/len" of every IPv4 address in one `ip -j addr show dev X` answer.
fn ipv4_of(link: &Value) -> Vec<String> {
    link[0]["addr_info"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["family"] == "inet")
        .map(|a| format!("{}/{}", a["local"].as_str().unwrap(), a["prefixlen"]))
        .collect()
}

fn is_up(link: &Value) -> bool {
    link[0]["flags"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f == "UP")
}

fn bridge() -> BridgeConfig {
    BridgeConfig {
        name: "ctest0".into(),
        gateway: Ipv4Addr::new(10, 123, 0, 1),
        prefix_len: 16,
    }
}

fn endpoint(n: u8) -> Endpoint {
    Endpoint {
        bridge: "ctest0".into(),
        host_if: format!("vethtest{n}"),
        container_if: "eth0".into(),
        address: Ipv4Addr::new(10, 123, 0, n),
        prefix_len: 16,
        gateway: Some(Ipv4Addr::new(10, 123, 0, 1)),
        mac: [0x02, 0x42, 10, 123, 0, n],
    }
}

fn sysctl(path: &str) -> String {
    fs::read_to_string(path).unwrap().trim().to_string()
}

#[test]
fn ensure_bridge_is_idempotent_and_enables_forwarding() {
    in_fresh_netns(|| {
        // A new namespace inherits the host's setting (devconf_inherit_init_net=0
        // means "copy init_net's" for IPv4): start from off.
        fs::write("/proc/sys/net/ipv4/ip_forward", "0").unwrap();
        ensure_bridge(&bridge()).unwrap();
        ensure_bridge(&bridge()).unwrap();
        let link = ip(&["-d", "addr", "show", "dev", "ctest0"]);
        assert_eq!(link[0]["linkinfo"]["info_kind"], "bridge");
        assert_eq!(ipv4_of(&link), ["10.123.0.1/16"]);
        assert!(is_up(&link));
        assert!(link_exists("ctest0").unwrap());
        assert_eq!(sysctl("/proc/sys/net/ipv4/ip_forward"), "1");
        assert_eq!(sysctl("/proc/sys/net/ipv4/conf/ctest0/route_localnet"), "1");
    })
}

#[test]
fn ensure_bridge_replaces_a_stale_address() {
    in_fresh_netns(|| {
        sh(&["link", "add", "ctest0", "type", "bridge"]);
        sh(&["addr", "add", "10.9.9.1/24", "dev", "ctest0"]);
        ensure_bridge(&bridge()).unwrap();
        assert_eq!(
            ipv4_of(&ip(&["addr", "show", "dev", "ctest0"])),
            ["10.123.0.1/16"]
        );
    })
}

#[test]
fn ensure_bridge_refuses_a_link_that_is_not_a_bridge() {
    in_fresh_netns(|| {
        sh(&[
            "link", "add", "ctest0", "type", "veth", "peer", "name", "other",
        ]);
        let err = ensure_bridge(&bridge()).unwrap_err();
        assert!(matches!(err, NetError::Conflict(_)), "{err}");
    })
}

#[test]
fn a_new_bridge_refuses_a_subnet_another_route_takes() {
    in_fresh_netns(|| {
        sh(&["link", "add", "podman0", "type", "bridge"]);
        sh(&["link", "set", "podman0", "up"]);
        // Wider routes lose to the bridge's own: fine.
        sh(&["route", "add", "10.0.0.0/8", "dev", "podman0"]);
        sh(&["route", "add", "blackhole", "10.122.0.0/15", "table", "7"]);
        // Down, its address routes nothing: fine too.
        sh(&["link", "add", "docker0", "type", "bridge"]);
        sh(&["addr", "add", "10.123.0.1/16", "dev", "docker0"]);
        ensure_bridge(&bridge()).unwrap();
        delete_link("ctest0").unwrap();
        // The same subnet, or a part of it, routed elsewhere: refused, naming the route.
        sh(&[
            "route",
            "add",
            "10.123.7.0/24",
            "dev",
            "podman0",
            "table",
            "9",
        ]);
        let err = ensure_bridge(&bridge()).unwrap_err();
        assert!(matches!(err, NetError::Conflict(_)), "{err:?}");
        assert_eq!(
            err.to_string(),
            "cannot make bridge ctest0 for 10.123.0.0/16: it overlaps with the host's route 10.123.7.0/24 dev podman0 table 9, which would take its traffic: free that subnet on the host, or use a network on another subnet"
        );
        assert!(!link_exists("ctest0").unwrap());
        // A bridge that exists already (ours, made before) is kept as it is.
        sh(&[
            "route",
            "del",
            "10.123.7.0/24",
            "dev",
            "podman0",
            "table",
            "9",
        ]);
        ensure_bridge(&bridge()).unwrap();
        sh(&[
            "route",
            "add",
            "10.123.7.0/24",
            "dev",
            "podman0",
            "table",
            "9",
        ]);
        ensure_bridge(&bridge()).unwrap();
    })
}

#[test]
fn bridge_keeps_its_mac_when_a_lower_one_joins() {
    in_fresh_netns(|| {
        ensure_bridge(&bridge()).unwrap();
        let mac = ip(&["link", "show", "ctest0"])[0]["address"].clone();
        sh(&[
            "link",
            "add",
            "low",
            "address",
            "02:00:00:00:00:01",
            "type",
            "veth",
            "peer",
            "name",
            "low2",
        ]);
        sh(&["link", "set", "low", "master", "ctest0"]);
        assert_eq!(ip(&["link", "show", "ctest0"])[0]["address"], mac);
    })
}

#[test]
fn attach_configures_both_ends_and_detach_removes_them() {
    in_fresh_netns(|| {
        ensure_bridge(&bridge()).unwrap();
        let ns = new_ns();
        attach(&ns.path, &endpoint(2)).unwrap();

        let inside = ip_in(&ns, &["addr", "show", "dev", "eth0"]);
        assert_eq!(inside[0]["address"], "02:42:0a:7b:00:02");
        assert_eq!(ipv4_of(&inside), ["10.123.0.2/16"]);
        assert!(is_up(&inside));
        let routes = ip_in(&ns, &["route", "show", "default"]);
        assert_eq!(routes[0]["gateway"], "10.123.0.1", "{routes}");
        assert_eq!(routes[0]["dev"], "eth0");
        assert_eq!(links_in(&ns.path).unwrap(), ["lo", "eth0"]);

        let host = ip(&["-d", "link", "show", "vethtest2"]);
        assert_eq!(host[0]["master"], "ctest0");
        assert_eq!(
            host[0]["linkinfo"]["info_slave_data"]["hairpin"], true,
            "{host}"
        );
        assert!(is_up(&host));
        assert!(link_exists("vethtest2").unwrap());
        assert!(
            ping_from(&ns, Ipv4Addr::new(10, 123, 0, 1)),
            "the gateway answers"
        );

        detach_in(&ns.path, "eth0").unwrap();
        assert!(!link_exists("vethtest2").unwrap());
        assert_eq!(links_in(&ns.path).unwrap(), ["lo"]);
        detach_in(&ns.path, "eth0").unwrap();
        detach_in(Path::new("/nonexistent/netns"), "eth0").unwrap();
    })
}

#[test]
fn two_containers_reach_each_other_over_the_bridge() {
    in_fresh_netns(|| {
        ensure_bridge(&bridge()).unwrap();
        let (a, b) = (new_ns(), new_ns());
        attach(&a.path, &endpoint(2)).unwrap();
        attach(&b.path, &endpoint(3)).unwrap();
        assert!(ping_from(&a, Ipv4Addr::new(10, 123, 0, 3)));
        assert!(ping_from(&b, Ipv4Addr::new(10, 123, 0, 2)));
        detach_in(&b.path, "eth0").unwrap();
        assert!(!ping_from(&a, Ipv4Addr::new(10, 123, 0, 3)));
    })
}

#[test]
fn second_network_gets_eth1_without_a_second_default_route() {
    in_fresh_netns(|| {
        ensure_bridge(&bridge()).unwrap();
        let internal = BridgeConfig {
            name: "ctest1".into(),
            gateway: Ipv4Addr::new(10, 124, 0, 1),
            prefix_len: 24,
        };
        ensure_bridge(&internal).unwrap();
        let ns = new_ns();
        attach(&ns.path, &endpoint(2)).unwrap();
        let second = Endpoint {
            bridge: "ctest1".into(),
            host_if: "vethint".into(),
            container_if: "eth1".into(),
            address: Ipv4Addr::new(10, 124, 0, 5),
            prefix_len: 24,
            gateway: None,
            mac: [0x02, 0x42, 10, 124, 0, 5],
        };
        attach(&ns.path, &second).unwrap();
        assert_eq!(links_in(&ns.path).unwrap(), ["lo", "eth0", "eth1"]);
        assert_eq!(
            ipv4_of(&ip_in(&ns, &["addr", "show", "dev", "eth1"])),
            ["10.124.0.5/24"]
        );
        let defaults = ip_in(&ns, &["route", "show", "default"]);
        assert_eq!(defaults.as_array().unwrap().len(), 1, "{defaults}");
        assert_eq!(defaults[0]["dev"], "eth0");
        assert!(ping_from(&ns, Ipv4Addr::new(10, 124, 0, 1)));
    })
}

#[test]
fn internal_endpoint_has_no_default_route() {
    in_fresh_netns(|| {
        ensure_bridge(&bridge()).unwrap();
        let ns = new_ns();
        attach(
            &ns.path,
            &Endpoint {
                gateway: None,
                ..endpoint(4)
            },
        )
        .unwrap();
        let routes = ip_in(&ns, &["route", "show", "default"]);
        assert_eq!(routes, Value::Array(vec![]), "{routes}");
        assert!(
            ping_from(&ns, Ipv4Addr::new(10, 123, 0, 1)),
            "the subnet is still reachable"
        );
    })
}

#[test]
fn attach_to_a_missing_bridge_fails_without_leftovers() {
    in_fresh_netns(|| {
        let ns = new_ns();
        let err = attach(&ns.path, &endpoint(2)).unwrap_err();
        assert!(is_errno(&err, libc::ENODEV), "{err}");
        assert!(!link_exists("vethtest2").unwrap());
        assert_eq!(links_in(&ns.path).unwrap(), ["lo"]);
    })
}

#[test]
fn attach_failing_inside_the_namespace_removes_the_veth() {
    in_fresh_netns(|| {
        ensure_bridge(&bridge()).unwrap();
        let ns = new_ns();
        // The gateway is outside the subnet: adding the default route fails last.
        let ep = Endpoint {
            gateway: Some(Ipv4Addr::new(192, 0, 2, 1)),
            ..endpoint(2)
        };
        let err = attach(&ns.path, &ep).unwrap_err();
        assert!(
            matches!(
                &err,
                NetError::Netlink {
                    op: "add route",
                    ..
                }
            ),
            "{err}"
        );
        assert!(!link_exists("vethtest2").unwrap());
        assert_eq!(links_in(&ns.path).unwrap(), ["lo"]);
    })
}

#[test]
fn attach_never_deletes_a_link_it_did_not_create() {
    in_fresh_netns(|| {
        ensure_bridge(&bridge()).unwrap();
        sh(&[
            "link",
            "add",
            "vethtest2",
            "type",
            "veth",
            "peer",
            "name",
            "theirs",
        ]);
        let ns = new_ns();
        let err = attach(&ns.path, &endpoint(2)).unwrap_err();
        assert!(is_errno(&err, libc::EEXIST), "{err}");
        assert!(link_exists("vethtest2").unwrap());
        assert!(link_exists("theirs").unwrap());
        assert_eq!(links_in(&ns.path).unwrap(), ["lo"]);
    })
}

#[test]
fn delete_link_removes_a_link_and_a_missing_one_is_ok() {
    in_fresh_netns(|| {
        delete_link("nosuchlink").unwrap();
        sh(&[
            "link", "add", "gone1", "type", "veth", "peer", "name", "gone2",
        ]);
        assert!(link_exists("gone2").unwrap());
        delete_link("gone1").unwrap();
        assert!(!link_exists("gone1").unwrap());
        assert!(!link_exists("gone2").unwrap(), "the peer goes with it");
    })
}

#[test]
fn host_networks_lists_routes_of_every_table_and_addresses_of_down_links() {
    in_fresh_netns(|| {
        sh(&["link", "add", "h1", "type", "veth", "peer", "name", "h2"]);
        sh(&["addr", "add", "10.77.1.5/24", "dev", "h1"]);
        sh(&["link", "set", "h1", "up"]);
        sh(&["link", "set", "h2", "up"]);
        sh(&["route", "add", "10.90.0.0/16", "dev", "h1"]);
        sh(&["route", "add", "blackhole", "10.91.0.0/16", "table", "100"]);
        sh(&["route", "add", "default", "via", "10.77.1.1"]);
        // Down: its route is gone, its address stays.
        sh(&["link", "add", "podman0", "type", "bridge"]);
        sh(&["addr", "add", "10.88.0.1/16", "dev", "podman0"]);
        let found = host_networks(None).unwrap();
        let what: Vec<&str> = found.iter().map(|h| h.what.as_str()).collect();
        for expected in [
            "route 10.77.1.0/24 dev h1",
            "route 10.90.0.0/16 dev h1",
            "route blackhole 10.91.0.0/16 table 100",
            "address 10.77.1.5/24 of h1",
            "address 10.88.0.1/16 of podman0",
        ] {
            assert!(what.contains(&expected), "{expected} missing: {what:#?}");
        }
        assert!(
            !found.iter().any(|h| h.net.prefix_len() == 0),
            "no default route: {what:#?}"
        );
        let net = |s: &str| s.parse::<Ipv4Net>().unwrap();
        assert!(found.iter().any(|h| h.net == net("10.88.0.0/16")));
        assert!(found.iter().any(|h| h.net == net("10.77.1.0/24")));
        // Our own bridge being re-made is not in the way of itself.
        let without = host_networks(Some("podman0")).unwrap();
        assert!(!without.iter().any(|h| h.what.contains("podman0")));
        assert_eq!(without.len(), found.len() - 1);
    })
}

#[test]
fn invalid_names_are_rejected_before_the_kernel_sees_them() {
    for name in ["", "a/b", "x y", "sixteen-chars-xx", ".."] {
        let err = link_exists(name).unwrap_err();
        assert!(
            matches!(err, NetError::InvalidArgument(_)),
            "{name:?}: {err}"
        );
    }
    let err = ensure_bridge(&BridgeConfig {
        prefix_len: 33,
        ..bridge()
    })
    .unwrap_err();
    assert!(matches!(err, NetError::InvalidArgument(_)), "{err}");
}
