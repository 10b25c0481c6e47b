//! Where new networks' subnets come from, and stores sharing a network namespace
//! (Issue 11 A.2, A.3). Each test runs in a network namespace it makes: the "host"
//! links and routes below (podman0, docker0, a policy-routing table) exist only there.
//!
//! A.2: the default bridge and `network create` take the first of docker's default
//! pools that overlaps no route or address on the host; a configured subnet that does
//! is an error naming what it overlaps. A.3: two stores (two `--root`s) in one
//! namespace each keep their own nftables table and bridges.

use crate::common::*;
use serde_json::Value;
use std::net::SocketAddr;
use std::time::Duration;

/// `ip ARGS` inside the test's namespace.
fn ip(ns: &NetNs, args: &[&str]) {
    let out = ns.cmd("ip").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn network(c: &Coracle, name: &str) -> Value {
    let out = c.run(["network", "inspect", name]);
    out.assert_success();
    let v: Value = serde_json::from_str(&out.stdout).expect("network inspect prints JSON");
    v[0].clone()
}

fn subnet_of(c: &Coracle, name: &str) -> String {
    network(c, name)["IPAM"]["Config"][0]["Subnet"]
        .as_str()
        .unwrap()
        .to_string()
}

fn bridge_of(c: &Coracle, name: &str) -> String {
    network(c, name)["Options"]["com.docker.network.bridge.name"]
        .as_str()
        .unwrap()
        .to_string()
}

fn start_web(c: &Coracle, name: &str, flags: &[&str]) {
    let mut args: Vec<String> = ["run", "-d", "--name", name]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.extend(flags.iter().map(|s| s.to_string()));
    args.extend(web_server(name));
    c.run(&args).assert_success();
}

fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// The names of the `inet coracle*` tables in the namespace's ruleset.
fn coracle_tables(ns: &NetNs) -> Vec<String> {
    let mut tables: Vec<String> = ns
        .ruleset()
        .lines()
        .filter_map(|l| l.strip_prefix("table inet "))
        .filter(|t| t.starts_with("coracle"))
        .map(|t| t.trim_end_matches(" {").to_string())
        .collect();
    tables.sort();
    tables
}

/// `nft list table inet NAME`.
fn table(ns: &NetNs, name: &str) -> String {
    let out = ns
        .cmd("nft")
        .args(["list", "table", "inet", name])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn new_networks_keep_clear_of_the_hosts_routes_and_addresses() {
    if skip_unless_root() {
        return;
    }
    let (_reg, mut c) = with_busybox();
    let ns = netns(&c);
    // podman's bridge, up: its route holds 10.88.0.0/16, coracle's old default.
    ip(ns, &["link", "add", "podman0", "type", "bridge"]);
    ip(ns, &["addr", "add", "10.88.0.1/16", "dev", "podman0"]);
    ip(ns, &["link", "set", "podman0", "up"]);
    // docker0, down: no route, but its address holds the first candidate.
    ip(ns, &["link", "add", "docker0", "type", "bridge"]);
    ip(ns, &["addr", "add", "172.17.0.1/16", "dev", "docker0"]);
    // A route inside the second candidate, and the third in a policy-routing table.
    ip(ns, &["route", "add", "172.18.3.0/24", "dev", "podman0"]);
    ip(
        ns,
        &["route", "add", "blackhole", "172.19.0.0/16", "table", "100"],
    );

    // A configured default subnet on podman's: refused, naming the route.
    let config = c.config_dir().join("network.toml");
    std::fs::write(&config, "default_subnet = \"10.88.0.0/16\"\n").unwrap();
    c.env("CORACLE_NETWORK_CONFIG", &config);
    let refused = c.run(["run", "--rm", "box", "true"]);
    assert_ne!(refused.code, 0, "{}", refused.stdout);
    assert!(
        refused.stderr.contains("10.88.0.0/16")
            && refused
                .stderr
                .contains("overlaps with the host's route 10.88.0.0/16 dev podman0"),
        "{}",
        refused.stderr
    );
    std::fs::write(&config, "default_subnet = \"172.17.8.0/24\"\n").unwrap();
    let refused = c.run(["network", "ls"]);
    assert!(
        refused
            .stderr
            .contains("overlaps with the host's address 172.17.0.1/16 of docker0"),
        "{}",
        refused.stderr
    );
    let absent = c.config_dir().join("absent.toml");
    c.env("CORACLE_NETWORK_CONFIG", absent);
    let ns = netns(&c);

    // The default network: the first candidate clear of all of them.
    start_web(&c, "web", &["-p", "18080:80"]);
    assert_eq!(subnet_of(&c, "bridge"), "172.20.0.0/16");
    let web_ip = ip_on(&c, "web", "bridge");
    assert!(web_ip.starts_with("172.20."), "{web_ip}");
    // The published port answers, and a peer on the bridge reaches the server.
    let (status, body) = wait_http(ns, local(18080));
    assert_eq!((status, body.as_str()), (200, "hello from web\n"));
    let peer = run(
        &c,
        &[
            "box",
            "sh",
            "-c",
            &format!("timeout 5 wget -qO- http://{web_ip}/; exit $?"),
        ],
    );
    assert_eq!(peer.stdout, "hello from web\n", "{}", peer.stderr);

    // A user network: the next free candidate.
    c.run(["network", "create", "appnet"]).assert_success();
    assert_eq!(subnet_of(&c, "appnet"), "172.21.0.0/16");
    start_web(&c, "app", &["--network", "appnet"]);
    let by_name = run(
        &c,
        &[
            "--network",
            "appnet",
            "box",
            "sh",
            "-c",
            "timeout 5 wget -qO- http://app/; exit $?",
        ],
    );
    assert_eq!(by_name.stdout, "hello from app\n", "{}", by_name.stderr);

    // A route that came after its network was made (podman started later): the
    // network's bridge is refused, naming the route, rather than ports that hang.
    c.run(["network", "create", "late"]).assert_success();
    assert_eq!(subnet_of(&c, "late"), "172.22.0.0/16");
    ip(ns, &["route", "add", "172.22.0.0/16", "dev", "podman0"]);
    let links = ns.links();
    let refused = run(&c, &["--network", "late", "box", "true"]);
    assert_ne!(refused.code, 0, "{}", refused.stdout);
    assert!(
        refused
            .stderr
            .contains("overlaps with the host's route 172.22.0.0/16 dev podman0"),
        "{}",
        refused.stderr
    );
    assert_eq!(ns.links(), links, "no bridge or veth left behind");

    // --subnet overlapping a route or an address of the host: refused, naming it.
    for (subnet, what) in [
        ("10.88.5.0/24", "route 10.88.0.0/16 dev podman0"),
        ("172.18.3.128/25", "route 172.18.3.0/24 dev podman0"),
        ("172.19.0.0/24", "route blackhole 172.19.0.0/16 table 100"),
        ("172.17.16.0/20", "address 172.17.0.1/16 of docker0"),
    ] {
        let out = c.run(["network", "create", "--subnet", subnet, "clash"]);
        assert_ne!(out.code, 0, "{subnet}: {}", out.stdout);
        let expected = format!("{subnet} overlaps with the host's {what}");
        assert!(out.stderr.contains(&expected), "{expected}: {}", out.stderr);
    }
    let names = c.run(["network", "ls", "--format", "{{.Name}}"]).stdout;
    assert!(!names.lines().any(|n| n == "clash"), "{names}");

    // Pools of one's own (docker's default-address-pools): podman's is skipped whole.
    std::fs::write(
        &config,
        "default_address_pools = [\n  { base = \"10.88.0.0/16\", size = 24 },\n  { base = \"10.200.0.0/23\", size = 24 },\n]\n",
    )
    .unwrap();
    c.env("CORACLE_NETWORK_CONFIG", &config);
    c.run(["network", "create", "mine"]).assert_success();
    assert_eq!(subnet_of(&c, "mine"), "10.200.0.0/24");
    std::fs::write(
        &config,
        "default_address_pools = [{ base = \"10.201.0.0/16\", size = 8 }]\n",
    )
    .unwrap();
    let bad = c.run(["network", "create", "bad"]);
    assert!(
        bad.stderr
            .contains("invalid address pool 10.201.0.0/16: size /8 must be between /16 and /32"),
        "{}",
        bad.stderr
    );
}

#[test]
fn two_stores_in_one_namespace_keep_their_own_rules() {
    if skip_unless_root() {
        return;
    }
    let (reg, a) = with_busybox();
    let mut b = coracle();
    let image = format!("{}/test/busybox", reg.host());
    b.run(["pull", "-q", &image]).assert_success();
    b.run(["tag", &image, "box"]).assert_success();
    b.share_network_of(&a);
    let ns = netns(&a);

    start_web(&a, "web", &["-p", "18080:80"]);
    wait_http(ns, local(18080));
    start_web(&b, "web", &["-p", "18081:80"]);
    // Both answer: the second store's firewall did not replace the first's.
    let (_, body) = wait_http(ns, local(18081));
    assert_eq!(body, "hello from web\n");
    assert_eq!(
        ns.http_get(local(18080), "/").unwrap().1,
        "hello from web\n"
    );
    let from_a = a.run(["exec", "web", "cat", "/etc/hostname"]).stdout;
    let from_b = b.run(["exec", "web", "cat", "/etc/hostname"]).stdout;
    assert_ne!(from_a, from_b, "two containers");

    // Their own bridges, on subnets apart: b's default network kept clear of the
    // route a's bridge put on the host.
    let (bridge_a, bridge_b) = (bridge_of(&a, "bridge"), bridge_of(&b, "bridge"));
    assert_ne!(bridge_a, bridge_b);
    assert_eq!(subnet_of(&a, "bridge"), "172.17.0.0/16");
    assert_eq!(subnet_of(&b, "bridge"), "172.18.0.0/16");
    let links = ns.links();
    assert!(
        links.contains(&bridge_a) && links.contains(&bridge_b),
        "{links:?}"
    );

    // A table each, each with its own port.
    let tables = coracle_tables(ns);
    assert_eq!(tables.len(), 2, "{}", ns.ruleset());
    let owner_of = |port: &str| {
        tables
            .iter()
            .filter(|t| table(ns, t).contains(&format!("dport {port}")))
            .cloned()
            .collect::<Vec<_>>()
    };
    let (table_a, table_b) = (owner_of("18080"), owner_of("18081"));
    assert_eq!(table_a.len(), 1, "{}", ns.ruleset());
    assert_eq!(table_b.len(), 1, "{}", ns.ruleset());
    assert_ne!(table_a, table_b);
    assert!(table(ns, &table_b[0]).contains(&bridge_b));
    assert!(!table(ns, &table_b[0]).contains(&bridge_a));

    // Removing a's container leaves b's rules and port alone.
    let before_b = table(ns, &table_b[0]);
    a.run(["rm", "-f", "web"]).assert_success();
    assert_eq!(table(ns, &table_b[0]), before_b);
    assert!(!table(ns, &table_a[0]).contains("dport 18080"));
    assert_eq!(
        ns.http_get(local(18081), "/").unwrap().1,
        "hello from web\n"
    );
    assert!(ns.http_get(local(18080), "/").is_err(), "a's port is gone");

    // Once b's container goes too, no published port is left; each store keeps its
    // bridge and its table's bridge rules, as docker keeps docker0's.
    b.run(["rm", "-f", "web"]).assert_success();
    wait_until("the veths to go", Duration::from_secs(10), || {
        !ns.links().iter().any(|l| l.starts_with("veth"))
    });
    assert!(!ns.ruleset().contains("dnat ip to"), "{}", ns.ruleset());
    assert_eq!(coracle_tables(ns), tables);
}
