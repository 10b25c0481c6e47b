//! Container networking through the real binary, docker's behaviour as the reference:
//! the default bridge, none/host/container modes, user-defined networks with their
//! embedded DNS, isolation between networks, --internal, the addressing flags, network
//! rm/prune and concurrent address allocation. Every test runs in a network namespace
//! of its own (see `with_busybox`), so bridges and firewall tables never touch the host.
//!
//! busybox 1.35's `wget -T` crashes (NULL dereference while parsing it), so clients use
//! `timeout N wget ...; exit $?`: the trailing command keeps sh from exec'ing `timeout`,
//! which would make wget pid 1, immune to timeout's SIGTERM.

use crate::common::*;
use serde_json::Value;
use std::collections::HashSet;
use std::time::Duration;

/// `run --rm FLAGS box sh -c SCRIPT`.
fn sh(c: &Coracle, flags: &[&str], script: &str) -> Output {
    let mut args = vec!["run", "--rm"];
    args.extend_from_slice(flags);
    args.extend_from_slice(&["box", "sh", "-c", script]);
    c.run(args)
}

/// `run -d --name NAME FLAGS` + a web server; waits until it answers on its address on
/// `network` (the test namespace holds the bridge, so it routes to every subnet).
fn start_web(c: &Coracle, name: &str, network: &str, flags: &[&str]) -> String {
    let mut args: Vec<String> = ["run", "-d", "--name", name]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.extend(flags.iter().map(|s| s.to_string()));
    args.extend(web_server(name));
    c.run(&args).assert_success();
    let ip = ip_on(c, name, network);
    let (status, body) = wait_http(netns(c), format!("{ip}:80").parse().unwrap());
    assert_eq!(
        (status, body.as_str()),
        (200, format!("hello from {name}\n").as_str())
    );
    ip
}

fn create_network(c: &Coracle, args: &[&str]) -> String {
    let mut all = vec!["network", "create"];
    all.extend_from_slice(args);
    let out = c.run(all);
    out.assert_success();
    let id = out.stdout.trim().to_string();
    assert!(
        id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "network create prints the full id: {:?}",
        out.stdout
    );
    id
}

fn network_inspect(c: &Coracle, name: &str) -> Value {
    let out = c.run(["network", "inspect", name]);
    out.assert_success();
    let v: Value = serde_json::from_str(&out.stdout).expect("network inspect prints JSON");
    v[0].clone()
}

/// "172.18.0.0/16" + 50 -> "172.18.0.50".
fn host_in(subnet: &str, last: u8) -> String {
    let net = subnet.split('/').next().unwrap();
    let mut octets: Vec<&str> = net.split('.').collect();
    let last = last.to_string();
    octets[3] = &last;
    octets.join(".")
}

#[test]
fn the_default_bridge_gives_addresses_a_route_and_the_hosts_resolvers() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    let addr = run(&c, &["box", "ip", "-4", "addr", "show", "eth0"]);
    addr.assert_success();
    assert!(
        addr.stdout.contains("inet 172.17.") && addr.stdout.contains("/16 "),
        "{}",
        addr.stdout
    );
    let route = run(&c, &["box", "ip", "route"]);
    assert!(
        route.stdout.contains("default via 172.17.0.1 dev eth0"),
        "{}",
        route.stdout
    );

    c.run(["run", "-d", "--name", "one", "box", "sleep", "60"])
        .assert_success();
    c.run(["run", "-d", "--name", "two", "box", "sleep", "60"])
        .assert_success();
    let one = inspect_container(&c, "one");
    let net = &one["NetworkSettings"]["Networks"]["bridge"];
    let ip = net["IPAddress"].as_str().expect("IPAddress").to_string();
    assert!(ip.starts_with("172.17."), "{net:#}");
    assert_eq!(net["Gateway"], "172.17.0.1", "{net:#}");
    assert_eq!(net["IPPrefixLen"], 16, "{net:#}");
    let own = c.run(["exec", "one", "ip", "-4", "addr", "show", "eth0"]);
    assert!(
        own.stdout.contains(&format!("inet {ip}/16")),
        "{}",
        own.stdout
    );
    // docker's MAC for a bridged address: 02:42 and the four address bytes.
    let octets: Vec<u8> = ip.split('.').map(|o| o.parse().unwrap()).collect();
    let mac = format!(
        "02:42:{:02x}:{:02x}:{:02x}:{:02x}",
        octets[0], octets[1], octets[2], octets[3]
    );
    assert_eq!(net["MacAddress"], mac.as_str(), "{net:#}");
    let eth0 = c.run(["exec", "one", "cat", "/sys/class/net/eth0/address"]);
    assert_eq!(eth0.stdout.trim(), mac);
    let ip_two = ip_on(&c, "two", "bridge");
    assert_ne!(ip, ip_two, "two containers, two addresses");
    let ping = c.run(["exec", "two", "ping", "-c", "1", "-W", "2", &ip]);
    assert!(ping.success(), "{}{}", ping.stdout, ping.stderr);

    // Default bridge: the host's resolvers (a loopback one would be unreachable).
    let resolv = run(&c, &["box", "cat", "/etc/resolv.conf"]).stdout;
    assert!(!resolv.contains("127.0.0.11"), "{resolv}");
    let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    for ns in host
        .lines()
        .filter(|l| l.starts_with("nameserver") && !l.contains(" 127."))
    {
        assert!(
            resolv.lines().any(|l| l.trim() == ns.trim()),
            "{ns}: {resolv}"
        );
    }
}

#[test]
fn none_host_and_container_network_modes() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    let none = run(&c, &["--network", "none", "box", "ls", "/sys/class/net"]);
    assert_eq!(none.stdout, "lo\n", "{}", none.stderr);
    let lo = run(
        &c,
        &[
            "--network",
            "none",
            "box",
            "ping",
            "-c",
            "1",
            "-W",
            "2",
            "127.0.0.1",
        ],
    );
    assert!(
        lo.success(),
        "loopback is up, as docker's: {}{}",
        lo.stdout,
        lo.stderr
    );

    netns(&c).add_host_address("192.0.2.10/24");
    let host = run(&c, &["--network", "host", "box", "ip", "-4", "addr"]);
    assert!(
        host.stdout.contains("hostaddr0") && host.stdout.contains("192.0.2.10/24"),
        "--network host shares the caller's namespace: {}",
        host.stdout
    );

    c.run(["run", "-d", "--name", "base", "box", "sleep", "60"])
        .assert_success();
    let ip = ip_on(&c, "base", "bridge");
    let joined = run(
        &c,
        &[
            "--network",
            "container:base",
            "box",
            "ip",
            "-4",
            "addr",
            "show",
            "eth0",
        ],
    );
    assert!(
        joined.stdout.contains(&format!("inet {ip}/16")),
        "container:base shares base's eth0: {}{}",
        joined.stdout,
        joined.stderr
    );
    let missing = run(&c, &["--network", "container:nosuch", "box", "true"]);
    assert_eq!(missing.code, 125, "{}", missing.stderr);
}

#[test]
fn user_networks_are_listed_inspected_and_resolve_names_and_aliases() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    let id = create_network(&c, &["net1"]);
    let dup = c.run(["network", "create", "net1"]);
    assert_eq!(dup.code, 1, "{}", dup.stderr);
    assert!(
        dup.stderr.contains("network with name net1 already exists"),
        "{}",
        dup.stderr
    );

    let ls = c.run(["network", "ls"]);
    ls.assert_success();
    let rows: Vec<Vec<&str>> = ls
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows[0],
        ["NETWORK", "ID", "NAME", "DRIVER", "SCOPE"],
        "{}",
        ls.stdout
    );
    assert!(
        rows.iter()
            .any(|r| r[..] == [&id[..12], "net1", "bridge", "local"]),
        "{}",
        ls.stdout
    );
    assert!(
        rows.iter().any(|r| r.get(1) == Some(&"bridge")),
        "the default network is listed: {}",
        ls.stdout
    );
    let quiet = c.run(["network", "ls", "-q", "--filter", "name=net1"]);
    assert_eq!(quiet.stdout.trim(), &id[..12]);

    let n = network_inspect(&c, "net1");
    assert_eq!(n["Name"], "net1");
    assert_eq!(n["Id"], id.as_str());
    assert_eq!(n["Driver"], "bridge");
    assert_eq!(n["Internal"], false);
    let subnet = n["IPAM"]["Config"][0]["Subnet"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        // The default bridge took docker's first pool, 172.17.0.0/16.
        subnet == "172.18.0.0/16",
        "{n:#}"
    );
    assert_eq!(
        n["IPAM"]["Config"][0]["Gateway"],
        host_in(&subnet, 1).as_str()
    );

    let web_ip = start_web(
        &c,
        "web",
        "net1",
        &["--network", "net1", "--network-alias", "webalias"],
    );
    assert!(
        web_ip.starts_with(&subnet[..subnet.len() - 4]),
        "{web_ip} in {subnet}"
    );

    let client = |script: &str| sh(&c, &["--network", "net1"], script);
    let resolv = client("cat /etc/resolv.conf");
    assert!(
        resolv.stdout.contains("nameserver 127.0.0.11"),
        "{}",
        resolv.stdout
    );
    for url in ["http://web/", "http://webalias/", "http://WEB/"] {
        let got = client(&format!("timeout 3 wget -qO- {url}; exit $?"));
        assert_eq!(got.stdout, "hello from web\n", "{url}: {}", got.stderr);
    }
    let web_id = inspect_container(&c, "web")["Id"]
        .as_str()
        .unwrap()
        .to_string();
    let short = &web_id[..12];
    let member = &network_inspect(&c, "net1")["Containers"][&web_id];
    assert_eq!(member["Name"], "web", "{member:#}");
    assert_eq!(
        member["IPv4Address"],
        format!("{web_ip}/16").as_str(),
        "{member:#}"
    );
    let got = client(&format!("timeout 3 wget -qO- http://{short}/; exit $?"));
    assert_eq!(
        got.stdout, "hello from web\n",
        "by short id: {}",
        got.stderr
    );
    let lookup = client("nslookup web 127.0.0.11");
    assert!(
        lookup.stdout.contains(&format!("Address: {web_ip}")),
        "{}{}",
        lookup.stdout,
        lookup.stderr
    );

    // Not on net1: the name means nothing and the address is out of reach.
    let bridge_dns = sh(&c, &[], "nslookup web 127.0.0.11");
    assert!(
        !bridge_dns.stdout.contains(&web_ip),
        "default bridge resolves no net1 names: {}",
        bridge_dns.stdout
    );
    let bridge = sh(
        &c,
        &[],
        &format!("timeout 2 wget -qO- http://{web_ip}/; exit $?"),
    );
    assert_ne!(
        bridge.code, 0,
        "default bridge reached net1: {}",
        bridge.stdout
    );
    create_network(&c, &["net2"]);
    let subnet2 = network_inspect(&c, "net2")["IPAM"]["Config"][0]["Subnet"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(subnet, subnet2, "each network gets its own subnet");
    let other = sh(
        &c,
        &["--network", "net2"],
        &format!("timeout 2 wget -qO- http://{web_ip}/; exit $?"),
    );
    assert_ne!(other.code, 0, "net2 reached net1: {}", other.stdout);
    let other_dns = sh(&c, &["--network", "net2"], "nslookup web 127.0.0.11");
    assert!(!other_dns.stdout.contains(&web_ip), "{}", other_dns.stdout);
}

#[test]
fn subnet_gateway_ip_mac_dns_and_add_host_flags() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    create_network(
        &c,
        &[
            "--subnet",
            "10.90.5.0/24",
            "--gateway",
            "10.90.5.254",
            "custom",
        ],
    );
    let n = network_inspect(&c, "custom");
    assert_eq!(n["IPAM"]["Config"][0]["Subnet"], "10.90.5.0/24");
    assert_eq!(n["IPAM"]["Config"][0]["Gateway"], "10.90.5.254");
    let out = sh(
        &c,
        &["--network", "custom"],
        "ip -4 addr show eth0; ip route",
    );
    assert!(out.stdout.contains("inet 10.90.5.1/24"), "{}", out.stdout);
    assert!(
        out.stdout.contains("default via 10.90.5.254"),
        "{}",
        out.stdout
    );
    let bad = c.run(["network", "create", "--subnet", "10.90.6.1/24", "bad"]);
    assert_ne!(bad.code, 0);
    assert!(
        bad.stderr.contains("10.90.6.0/24"),
        "names the right subnet: {}",
        bad.stderr
    );

    let out = sh(
        &c,
        &["--network", "custom", "--ip", "10.90.5.50"],
        "ip -4 addr show eth0",
    );
    assert!(
        out.stdout.contains("inet 10.90.5.50/24"),
        "{}{}",
        out.stdout,
        out.stderr
    );
    let outside = run(
        &c,
        &["--network", "custom", "--ip", "10.91.0.5", "box", "true"],
    );
    assert_eq!(outside.code, 125, "{}", outside.stderr);
    c.run([
        "run",
        "-d",
        "--name",
        "holder",
        "--network",
        "custom",
        "--ip",
        "10.90.5.60",
        "box",
        "sleep",
        "60",
    ])
    .assert_success();
    assert_eq!(ip_on(&c, "holder", "custom"), "10.90.5.60");
    let taken = run(
        &c,
        &["--network", "custom", "--ip", "10.90.5.60", "box", "true"],
    );
    assert_eq!(taken.code, 125, "an address in use: {}", taken.stderr);

    let mac = sh(
        &c,
        &["--mac-address", "02:42:ac:11:00:99"],
        "cat /sys/class/net/eth0/address",
    );
    assert_eq!(mac.stdout, "02:42:ac:11:00:99\n", "{}", mac.stderr);

    let resolv = run(
        &c,
        &[
            "--dns",
            "192.0.2.53",
            "--dns-search",
            "example.com",
            "--dns-option",
            "ndots:2",
            "box",
            "cat",
            "/etc/resolv.conf",
        ],
    );
    let lines: Vec<&str> = resolv.stdout.lines().map(str::trim).collect();
    assert!(
        lines.contains(&"nameserver 192.0.2.53"),
        "{}",
        resolv.stdout
    );
    assert!(lines.contains(&"search example.com"), "{}", resolv.stdout);
    assert!(lines.contains(&"options ndots:2"), "{}", resolv.stdout);
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("nameserver")).count(),
        1,
        "--dns replaces the host's resolvers: {}",
        resolv.stdout
    );

    let hosts = run(
        &c,
        &[
            "--add-host",
            "foo:1.2.3.4",
            "--add-host",
            "gw:host-gateway",
            "box",
            "cat",
            "/etc/hosts",
        ],
    );
    let entries: Vec<Vec<&str>> = hosts
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert!(
        entries.iter().any(|e| e[..] == ["1.2.3.4", "foo"]),
        "{}",
        hosts.stdout
    );
    assert!(
        entries.iter().any(|e| e[..] == ["172.17.0.1", "gw"]),
        "{}",
        hosts.stdout
    );
    let bad = run(&c, &["--add-host", "nocolon", "box", "true"]);
    assert_eq!(bad.code, 125, "{}", bad.stderr);
    let missing = run(&c, &["--network", "nosuch", "box", "true"]);
    assert_eq!(missing.code, 125, "{}", missing.stderr);
    assert!(
        missing.stderr.contains("network nosuch not found"),
        "{}",
        missing.stderr
    );
}

#[test]
fn an_internal_network_reaches_its_peers_and_nothing_else() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    netns(&c).add_host_address("192.0.2.10/24");
    let _server = HostServer::start(netns(&c), 8088, "host-ok\n");
    // Control: a normal bridge reaches the host's address.
    let ping = sh(&c, &[], "ping -c 1 -W 2 192.0.2.10");
    assert!(ping.success(), "{}{}", ping.stdout, ping.stderr);
    let got = sh(
        &c,
        &[],
        "timeout 3 wget -qO- http://192.0.2.10:8088/; exit $?",
    );
    assert_eq!(got.stdout, "host-ok\n", "{}", got.stderr);

    create_network(&c, &["--internal", "inner"]);
    assert_eq!(network_inspect(&c, "inner")["Internal"], true);
    start_web(&c, "peer", "inner", &["--network", "inner"]);
    let route = sh(&c, &["--network", "inner"], "ip route");
    assert!(
        !route.stdout.contains("default"),
        "no way out: {}",
        route.stdout
    );
    let got = sh(
        &c,
        &["--network", "inner"],
        "timeout 3 wget -qO- http://peer/; exit $?",
    );
    assert_eq!(got.stdout, "hello from peer\n", "{}", got.stderr);
    let out = sh(&c, &["--network", "inner"], "ping -c 1 -W 2 192.0.2.10");
    assert_ne!(out.code, 0, "internal reached the host: {}", out.stdout);
    let out = sh(
        &c,
        &["--network", "inner"],
        "timeout 2 wget -qO- http://192.0.2.10:8088/; exit $?",
    );
    assert_ne!(out.code, 0, "internal reached the host: {}", out.stdout);
}

#[test]
fn network_connect_and_disconnect_add_and_remove_interfaces() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    create_network(&c, &["front"]);
    create_network(&c, &["back"]);
    start_web(&c, "api", "front", &["--network", "front"]);
    c.run(["network", "connect", "--alias", "apiback", "back", "api"])
        .assert_success();
    let back_ip = ip_on(&c, "api", "back");
    let eth1 = c.run(["exec", "api", "ip", "-4", "addr", "show", "eth1"]);
    assert!(
        eth1.stdout.contains(&format!("inet {back_ip}/16")),
        "{}",
        eth1.stdout
    );
    let got = sh(
        &c,
        &["--network", "back"],
        "timeout 3 wget -qO- http://apiback/; exit $?",
    );
    assert_eq!(got.stdout, "hello from api\n", "{}", got.stderr);
    let again = c.run(["network", "connect", "back", "api"]);
    assert_ne!(again.code, 0, "already connected: {}", again.stdout);

    c.run(["network", "disconnect", "back", "api"])
        .assert_success();
    let links = c.run(["exec", "api", "ls", "/sys/class/net"]);
    assert_eq!(links.stdout, "eth0\nlo\n");
    assert!(inspect_container(&c, "api")["NetworkSettings"]["Networks"]["back"].is_null());
    let got = sh(
        &c,
        &["--network", "back"],
        "timeout 2 wget -qO- http://apiback/; exit $?",
    );
    assert_ne!(got.code, 0, "{}", got.stdout);
}

#[test]
fn network_rm_refuses_networks_in_use_and_prune_removes_unused_ones() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    let id = create_network(&c, &["net1"]);
    c.run([
        "run",
        "-d",
        "--name",
        "user",
        "--network",
        "net1",
        "box",
        "sleep",
        "60",
    ])
    .assert_success();
    let busy = c.run(["network", "rm", "net1"]);
    assert_eq!(busy.code, 1, "{}", busy.stderr);
    assert!(
        busy.stderr.contains(&format!(
            "error while removing network: network net1 id {id} has active endpoints"
        )),
        "{}",
        busy.stderr
    );
    let builtin = c.run(["network", "rm", "bridge"]);
    assert_ne!(
        builtin.code, 0,
        "the default network stays: {}",
        builtin.stdout
    );
    c.run(["stop", "-t", "0", "user"]).assert_success();
    let rm = c.run(["network", "rm", "net1"]);
    rm.assert_success();
    assert_eq!(rm.stdout, "net1\n");
    let gone = c.run(["network", "inspect", "net1"]);
    assert_eq!(gone.code, 1, "{}", gone.stdout);
    assert!(
        gone.stderr.contains("network net1 not found"),
        "{}",
        gone.stderr
    );
    c.run(["rm", "user"]).assert_success();

    create_network(&c, &["unused"]);
    create_network(&c, &["used"]);
    c.run([
        "run",
        "-d",
        "--name",
        "keeper",
        "--network",
        "used",
        "box",
        "sleep",
        "60",
    ])
    .assert_success();
    let prune = c.run(["network", "prune", "-f"]);
    prune.assert_success();
    let pruned: Vec<&str> = prune.stdout.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(pruned, ["Deleted Networks:", "unused"], "{}", prune.stdout);
    let names = c.run(["network", "ls", "--format", "{{.Name}}"]).stdout;
    let names: HashSet<&str> = names.lines().collect();
    assert!(
        names.contains("used") && names.contains("bridge"),
        "{names:?}"
    );
    assert!(!names.contains("unused"), "{names:?}");
}

#[test]
fn concurrent_runs_on_one_network_get_distinct_addresses() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    create_network(&c, &["net1"]);
    let bridge = network_inspect(&c, "net1")["Options"]["com.docker.network.bridge.name"]
        .as_str()
        .unwrap()
        .to_string();
    let before = netns(&c).links();
    let names: Vec<String> = (0..8).map(|i| format!("par{i}")).collect();
    std::thread::scope(|s| {
        let handles: Vec<_> = names
            .iter()
            .map(|n| {
                let c = &c;
                s.spawn(move || {
                    c.run([
                        "run",
                        "-d",
                        "--name",
                        n,
                        "--network",
                        "net1",
                        "box",
                        "sleep",
                        "60",
                    ])
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap().assert_success();
        }
    });
    let ips: HashSet<String> = names.iter().map(|n| ip_on(&c, n, "net1")).collect();
    assert_eq!(ips.len(), 8, "{ips:?}");
    let mut rm = vec!["rm", "-f"];
    rm.extend(names.iter().map(String::as_str));
    c.run(rm).assert_success();
    wait_until(
        "the veths to go",
        Duration::from_secs(10),
        // The network's bridge stays while the network exists.
        || {
            let now: Vec<String> = netns(&c)
                .links()
                .into_iter()
                .filter(|l| *l != bridge)
                .collect();
            now == before
        },
    );
}
