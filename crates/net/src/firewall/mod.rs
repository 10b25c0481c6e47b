//! The host firewall as desired state: the engine computes everything that must hold
//! (every network that has a bridge, every published port) and a driver makes the
//! kernel match it in one step. Replacing the whole state instead of adding and
//! removing single rules means a crash half-way, a missed teardown or two engines
//! racing can never leave stale or duplicated rules behind: the next apply fixes it.

mod nft;

pub use nft::Nftables;

use crate::NetError;
use coracle_core::PortMapping;
use ipnet::Ipv4Net;
use std::net::Ipv4Addr;

/// A bridge network whose traffic the firewall must handle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkRule {
    pub bridge: String,
    pub subnet: Ipv4Net,
    /// `--internal`: no traffic in or out of the bridge, no masquerading.
    pub internal: bool,
}

/// A published port: traffic to the host's `host_ip:host_port` goes to the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortForward {
    /// Bound to one host port.
    pub mapping: PortMapping,
    pub container_ip: Ipv4Addr,
}

/// Everything the firewall must do at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FirewallState {
    pub networks: Vec<NetworkRule>,
    pub ports: Vec<PortForward>,
}

/// A way to make the kernel's packet filter match a `FirewallState`; the engine takes
/// one as a parameter so its tests can pass a recording fake.
pub trait FirewallDriver {
    /// Make the firewall exactly `state` (atomically); empty networks => our table gone.
    fn apply(&self, state: &FirewallState) -> Result<(), NetError>;
}

/// Fixtures shared with the driver's unit tests, and the root tests of the nftables
/// driver against the real kernel (each inside a fresh network namespace).
#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use coracle_core::Protocol;
    use serde_json::Value;
    use std::io::{self, Read, Write};
    use std::net::{SocketAddr, TcpListener, TcpStream};
    use std::process::Command;
    use std::sync::mpsc;
    use std::thread::JoinHandle;
    use std::time::{Duration, Instant};

    pub(crate) fn network(bridge: &str, subnet: &str, internal: bool) -> NetworkRule {
        NetworkRule {
            bridge: bridge.to_string(),
            subnet: subnet.parse().unwrap(),
            internal,
        }
    }

    pub(crate) fn forward(
        proto: Protocol,
        host_ip: Option<&str>,
        host_port: u16,
        ip: &str,
        port: u16,
    ) -> PortForward {
        PortForward {
            mapping: PortMapping {
                host_ip: host_ip.map(|h| h.parse().unwrap()),
                host_ports: Some((host_port, host_port)),
                container_port: port,
                proto,
            },
            container_ip: ip.parse().unwrap(),
        }
    }

    /// Two networks (the second internal), a tcp forward on every address and a udp one
    /// on 127.0.0.1.
    pub(crate) fn two_networks() -> FirewallState {
        FirewallState {
            networks: vec![
                network("coracle0", "10.88.0.0/16", false),
                network("coracle1", "10.89.0.0/24", true),
            ],
            ports: vec![
                forward(Protocol::Tcp, None, 18080, "10.88.0.2", 80),
                forward(Protocol::Udp, Some("127.0.0.1"), 15353, "10.88.0.3", 53),
            ],
        }
    }

    // ---- root tests: the real kernel, each inside a fresh network namespace ----

    /// Runs `f` on a new thread moved into a new, empty network namespace: everything
    /// it does, including the `nft` and `ip` processes it spawns, stays in there and
    /// the namespace vanishes with the thread. Skipped, saying so, unless root.
    fn in_new_netns(f: impl FnOnce() + Send + 'static) {
        if coracle_testsupport::skip_unless_root() {
            return;
        }
        std::thread::spawn(move || {
            unshare_net();
            f()
        })
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    }

    fn unshare_net() {
        // SAFETY: unshare only changes the calling thread's namespaces.
        let rc = unsafe { libc::unshare(libc::CLONE_NEWNET) };
        assert_eq!(
            rc,
            0,
            "unshare(CLONE_NEWNET) (root tests): {}",
            io::Error::last_os_error()
        );
    }

    fn run(program: &str, args: &[&str]) {
        let out = Command::new(program).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{program} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn nft_list(what: &[&str]) -> String {
        let out = Command::new("nft")
            .args(["-j", "list"])
            .args(what)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "nft list {what:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn table_exists(name: &str) -> bool {
        let tables: Value = serde_json::from_str(&nft_list(&["tables"])).unwrap();
        tables["nftables"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["table"]["family"] == "inet" && o["table"]["name"] == name)
    }

    /// The listed table: (chain names, rules as `expr` arrays per chain).
    fn listed(name: &str) -> (Vec<String>, Vec<(String, Value)>) {
        let out = nft_list(&["table", "inet", name]);
        let doc: Value = serde_json::from_str(&out).unwrap();
        let objects = doc["nftables"].as_array().unwrap();
        let chains = objects
            .iter()
            .filter_map(|o| o["chain"]["name"].as_str())
            .map(String::from)
            .collect();
        let rules = objects
            .iter()
            .filter_map(|o| o.get("rule"))
            .map(|r| (r["chain"].as_str().unwrap().to_string(), r["expr"].clone()))
            .collect();
        (chains, rules)
    }

    /// What each listed DNAT rule does: (host address, protocol, host port, target).
    /// nft prints `meta l4proto tcp th dport N` back as `tcp dport N`.
    fn listed_forwards(rules: &[(String, Value)]) -> Vec<(Option<String>, String, u64, String)> {
        let mut found = Vec::new();
        for (_, expr) in rules.iter().filter(|(chain, _)| chain == "ports") {
            let (mut daddr, mut proto, mut dport, mut target) =
                (None, String::new(), 0, String::new());
            for item in expr.as_array().unwrap() {
                let m = &item["match"];
                let field = &m["left"]["payload"];
                if field["protocol"] == "ip" && field["field"] == "daddr" {
                    daddr = m["right"].as_str().map(String::from);
                } else if m["left"]["meta"]["key"] == "l4proto" {
                    proto = m["right"].as_str().unwrap().to_string();
                } else if field["field"] == "dport" {
                    dport = m["right"].as_u64().unwrap();
                    if field["protocol"] != "th" {
                        proto = field["protocol"].as_str().unwrap().to_string();
                    }
                } else if let Some(nat) = item.get("dnat") {
                    target = format!("{}:{}", nat["addr"].as_str().unwrap(), nat["port"]);
                }
            }
            found.push((daddr, proto, dport, target));
        }
        found
    }

    #[test]
    fn apply_replaces_the_whole_table() {
        in_new_netns(|| {
            let fw = Nftables::new();
            fw.apply(&two_networks()).unwrap();
            let (chains, rules) = listed("coracle");
            for chain in ["prerouting", "output", "ports", "postrouting", "forward"] {
                assert!(
                    chains.iter().any(|c| c == chain),
                    "chain {chain} missing: {chains:?}"
                );
            }
            assert_eq!(rules.len(), 1 + 1 + 2 + 5 + 5, "{rules:#?}");
            assert_eq!(
                listed_forwards(&rules),
                vec![
                    (None, "tcp".into(), 18080, "10.88.0.2:80".into()),
                    (
                        Some("127.0.0.1".into()),
                        "udp".into(),
                        15353,
                        "10.88.0.3:53".into()
                    ),
                ]
            );
            let post = rules
                .iter()
                .filter(|(c, _)| c == "postrouting")
                .map(|(_, e)| e.to_string());
            assert!(post
                .clone()
                .any(|e| e.contains("10.88.0.0") && e.contains("masquerade")));
            assert!(post
                .clone()
                .any(|e| e.contains("127.0.0.0") && e.contains("coracle1")));

            // Applying again replaces, it does not append.
            fw.apply(&two_networks()).unwrap();
            assert_eq!(listed("coracle").1.len(), rules.len());

            // A smaller state: the second network and the udp forward are gone.
            let smaller = FirewallState {
                networks: vec![network("coracle0", "10.88.0.0/16", false)],
                ports: vec![forward(Protocol::Tcp, None, 18081, "10.88.0.4", 81)],
            };
            fw.apply(&smaller).unwrap();
            let (_, rules) = listed("coracle");
            assert_eq!(rules.len(), 1 + 1 + 1 + 3 + 3, "{rules:#?}");
            assert_eq!(
                listed_forwards(&rules),
                vec![(None, "tcp".into(), 18081, "10.88.0.4:81".into())]
            );
            assert!(!rules
                .iter()
                .any(|(_, e)| e.to_string().contains("coracle1")));
        });
    }

    #[test]
    fn empty_state_removes_the_table_and_is_idempotent() {
        in_new_netns(|| {
            let fw = Nftables::with_table("coracle_test");
            // Nothing there yet: still fine.
            fw.apply(&FirewallState::default()).unwrap();
            assert!(!table_exists("coracle_test"));
            fw.apply(&two_networks()).unwrap();
            assert!(table_exists("coracle_test"));
            fw.apply(&FirewallState::default()).unwrap();
            assert!(!table_exists("coracle_test"));
            let listed = Command::new("nft")
                .args(["list", "tables"])
                .output()
                .unwrap();
            assert!(!String::from_utf8_lossy(&listed.stdout).contains("coracle_test"));
            fw.apply(&FirewallState::default()).unwrap();
        });
    }

    #[test]
    fn rejected_rules_report_what_nft_said() {
        in_new_netns(|| {
            // An interface name longer than IFNAMSIZ is refused by nft itself.
            let state = FirewallState {
                networks: vec![network(&"x".repeat(40), "10.88.0.0/16", false)],
                ports: vec![],
            };
            let err = Nftables::new().apply(&state).unwrap_err();
            assert!(
                matches!(err, NetError::Firewall(ref msg) if msg.contains("exceeds maximum length")),
                "{err:?}"
            );
            // The failed transaction left nothing behind.
            assert!(!table_exists("coracle"));
        });
    }

    const GREETING: &str = "hello from the container";

    /// A thread standing in for a container: it moves into a new network namespace,
    /// hands out its thread id (for `ip link set IF netns TID`), waits until the caller
    /// has moved `ifname` in, configures `cidr` on it (and a default route via
    /// `gateway`), then runs `body`.
    fn container<T: Send + 'static>(
        ifname: &'static str,
        cidr: &'static str,
        gateway: Option<&'static str>,
        body: impl FnOnce() -> T + Send + 'static,
    ) -> (String, mpsc::Sender<()>, JoinHandle<T>) {
        let (tid_tx, tid_rx) = mpsc::channel();
        let (moved_tx, moved_rx) = mpsc::channel::<()>();
        let handle = std::thread::spawn(move || {
            unshare_net();
            tid_tx
                .send(rustix::thread::gettid().as_raw_nonzero().get())
                .unwrap();
            moved_rx.recv().unwrap();
            run("ip", &["link", "set", "lo", "up"]);
            run("ip", &["addr", "add", cidr, "dev", ifname]);
            run("ip", &["link", "set", ifname, "up"]);
            if let Some(gateway) = gateway {
                run("ip", &["route", "add", "default", "via", gateway]);
            }
            body()
        });
        (tid_rx.recv().unwrap().to_string(), moved_tx, handle)
    }

    /// A veth pair `host_if` (here, up) <-> `peer_if` (moved into the thread `tid`'s netns).
    fn veth_to(host_if: &str, peer_if: &str, tid: &str) {
        run(
            "ip",
            &[
                "link", "add", host_if, "type", "veth", "peer", "name", peer_if,
            ],
        );
        run("ip", &["link", "set", peer_if, "netns", tid]);
        run("ip", &["link", "set", host_if, "up"]);
    }

    /// Listens on `addr`, says when it is ready, and greets up to `count` clients
    /// (giving up after a while so a failing test cannot hang).
    fn serve(addr: &'static str, count: usize, ready: mpsc::Sender<()>) -> usize {
        let listener = TcpListener::bind(addr).unwrap();
        listener.set_nonblocking(true).unwrap();
        ready.send(()).unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut served = 0;
        while served < count && Instant::now() < deadline {
            match listener.accept() {
                Ok((mut conn, _)) => {
                    conn.set_nonblocking(false).unwrap();
                    conn.write_all(GREETING.as_bytes()).unwrap();
                    served += 1;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                Err(e) => panic!("accept: {e}"),
            }
        }
        served
    }

    fn fetch(addr: &str) -> io::Result<String> {
        let addr: SocketAddr = addr.parse().unwrap();
        let mut conn = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
        conn.set_read_timeout(Some(Duration::from_secs(5)))?;
        let mut text = String::new();
        conn.read_to_string(&mut text)?;
        Ok(text)
    }

    /// What link::ensure_bridge sets for a bridge.
    fn sysctls(bridge: &str) {
        std::fs::write("/proc/sys/net/ipv4/ip_forward", "1").unwrap();
        let path = format!("/proc/sys/net/ipv4/conf/{bridge}/route_localnet");
        std::fs::write(path, "1").unwrap();
    }

    /// A published port end to end: a listener in a second namespace behind a veth
    /// (a container behind its bridge), reached from the "host" namespace on
    /// 127.0.0.1 and on the host's own address, and no longer once the state is empty.
    #[test]
    fn published_port_reaches_a_listener_in_another_namespace() {
        in_new_netns(|| {
            let (ready_tx, ready_rx) = mpsc::channel();
            let (tid, moved, listener) = container("eth0", "10.77.0.2/24", None, move || {
                serve("10.77.0.2:8080", 2, ready_tx)
            });
            run("ip", &["link", "set", "lo", "up"]);
            veth_to("br-test", "eth0", &tid);
            run("ip", &["addr", "add", "10.77.0.1/24", "dev", "br-test"]);
            sysctls("br-test");
            moved.send(()).unwrap();
            ready_rx.recv_timeout(Duration::from_secs(10)).unwrap();

            let fw = Nftables::new();
            fw.apply(&FirewallState {
                networks: vec![network("br-test", "10.77.0.0/24", false)],
                ports: vec![forward(Protocol::Tcp, None, 18080, "10.77.0.2", 8080)],
            })
            .unwrap();
            assert_eq!(fetch("127.0.0.1:18080").unwrap(), GREETING);
            assert_eq!(fetch("10.77.0.1:18080").unwrap(), GREETING);
            assert_eq!(listener.join().unwrap(), 2);

            fw.apply(&FirewallState::default()).unwrap();
            let err = fetch("127.0.0.1:18080").unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused, "{err}");
        });
    }

    /// Hairpin: a container reaches a peer's published port on the same bridge through
    /// the host's address (the peer must answer the host, not the client directly).
    #[test]
    fn containers_reach_published_ports_of_peers_through_the_host() {
        in_new_netns(|| {
            let (ready_tx, ready_rx) = mpsc::channel();
            let (tid1, moved1, server) = container("eth0", "10.78.0.2/24", None, move || {
                serve("10.78.0.2:8080", 1, ready_tx)
            });
            let (go_tx, go_rx) = mpsc::channel::<()>();
            let (tid2, moved2, client) = container("eth0", "10.78.0.3/24", None, move || {
                go_rx.recv().unwrap();
                fetch("10.78.0.1:18080")
            });
            run("ip", &["link", "add", "br-test", "type", "bridge"]);
            run("ip", &["addr", "add", "10.78.0.1/24", "dev", "br-test"]);
            run("ip", &["link", "set", "br-test", "up"]);
            for (host_if, tid) in [("veth1", &tid1), ("veth2", &tid2)] {
                veth_to(host_if, "eth0", tid);
                run("ip", &["link", "set", host_if, "master", "br-test"]);
            }
            sysctls("br-test");
            // With br_netfilter, bridged frames pass conntrack too and the server's
            // direct answer would be un-NATed on the bridge anyway; hosts without it
            // depend on the masquerade rule alone, so test that case.
            let br_nf = "/proc/sys/net/bridge/bridge-nf-call-iptables";
            if std::path::Path::new(br_nf).exists() {
                std::fs::write(br_nf, "0").unwrap();
            }
            moved1.send(()).unwrap();
            moved2.send(()).unwrap();
            ready_rx.recv_timeout(Duration::from_secs(10)).unwrap();

            Nftables::new()
                .apply(&FirewallState {
                    networks: vec![network("br-test", "10.78.0.0/24", false)],
                    ports: vec![forward(Protocol::Tcp, None, 18080, "10.78.0.2", 8080)],
                })
                .unwrap();
            go_tx.send(()).unwrap();
            assert_eq!(client.join().unwrap().unwrap(), GREETING);
            assert_eq!(server.join().unwrap(), 1);
        });
    }

    /// Networks are isolated from each other: a container on another bridge cannot
    /// open connections into this one (it could before the firewall), except to
    /// published ports.
    #[test]
    fn other_networks_reach_only_published_ports() {
        in_new_netns(|| {
            let (ready_tx, ready_rx) = mpsc::channel();
            let (tid1, moved1, server) =
                container("eth0", "10.79.0.2/24", Some("10.79.0.1"), move || {
                    serve("10.79.0.2:8080", 2, ready_tx)
                });
            // The client fetches each address it is sent and reports the outcome.
            let (addr_tx, addr_rx) = mpsc::channel::<&'static str>();
            let (result_tx, result_rx) = mpsc::channel();
            let (tid2, moved2, client) =
                container("eth0", "10.80.0.2/24", Some("10.80.0.1"), move || {
                    for addr in addr_rx {
                        result_tx.send(fetch(addr).map_err(|e| e.kind())).unwrap();
                    }
                });
            let fetch_from_client = |addr| {
                addr_tx.send(addr).unwrap();
                result_rx.recv().unwrap()
            };
            for (bridge, cidr, host_if, tid) in [
                ("br-a", "10.79.0.1/24", "veth1", &tid1),
                ("br-b", "10.80.0.1/24", "veth2", &tid2),
            ] {
                run("ip", &["link", "add", bridge, "type", "bridge"]);
                run("ip", &["addr", "add", cidr, "dev", bridge]);
                run("ip", &["link", "set", bridge, "up"]);
                veth_to(host_if, "eth0", tid);
                run("ip", &["link", "set", host_if, "master", bridge]);
                sysctls(bridge);
            }
            moved1.send(()).unwrap();
            moved2.send(()).unwrap();
            ready_rx.recv_timeout(Duration::from_secs(10)).unwrap();

            // No firewall yet: plain routing lets it through.
            let greeting = Ok(GREETING.to_string());
            assert_eq!(fetch_from_client("10.79.0.2:8080"), greeting);
            Nftables::new()
                .apply(&FirewallState {
                    networks: vec![
                        network("br-a", "10.79.0.0/24", false),
                        network("br-b", "10.80.0.0/24", false),
                    ],
                    ports: vec![forward(Protocol::Tcp, None, 18080, "10.79.0.2", 8080)],
                })
                .unwrap();
            let isolated = fetch_from_client("10.79.0.2:8080");
            assert_eq!(isolated, Err(io::ErrorKind::TimedOut));
            assert_eq!(fetch_from_client("10.80.0.1:18080"), greeting);
            drop(addr_tx);
            client.join().unwrap();
            assert_eq!(server.join().unwrap(), 2);
        });
    }
}
