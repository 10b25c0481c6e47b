//! Published ports (-p, -P, UDP, `port`, `ps`, `inspect`), port conflicts, and teardown:
//! after `--rm`, `rm -f` and a killed monitor nothing of the container is left in the
//! network (veths, bridges, the nftables table, namespace files, leases). Every test
//! runs in a network namespace of its own, standing in for the host.

use crate::common::*;
use serde_json::json;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

const HOST_ADDR: &str = "192.0.2.10";

fn run_web(c: &Coracle, name: &str, flags: &[&str]) {
    let mut args: Vec<String> = ["run", "-d", "--name", name]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.extend(flags.iter().map(|s| s.to_string()));
    args.extend(web_server(name));
    c.run(&args).assert_success();
}

fn addr(ip: &str, port: u16) -> SocketAddr {
    format!("{ip}:{port}").parse().unwrap()
}

/// The host port `coracle port NAME SPEC` prints (its first line, "0.0.0.0:PORT").
fn published(c: &Coracle, name: &str, spec: &str) -> u16 {
    let out = c.run(["port", name, spec]);
    out.assert_success();
    let first = out.stdout.lines().next().unwrap_or_default();
    let port = first
        .strip_prefix("0.0.0.0:")
        .unwrap_or_else(|| panic!("port {name} {spec}: {:?}", out.stdout));
    port.parse().unwrap()
}

fn id_of(c: &Coracle, name: &str) -> String {
    inspect_container(c, name)["Id"]
        .as_str()
        .unwrap()
        .to_string()
}

fn netns_file(id: &str) -> bool {
    Path::new("/run/coracle/netns").join(id).exists()
}

#[test]
fn published_ports_answer_on_loopback_the_hosts_address_and_from_containers() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    let ns = netns(&c);
    ns.add_host_address(&format!("{HOST_ADDR}/24"));
    run_web(&c, "web", &["-p", "18080:80"]);
    let (status, body) = wait_http(ns, addr("127.0.0.1", 18080));
    assert_eq!((status, body.as_str()), (200, "hello from web\n"));
    let (status, body) = ns.http_get(addr(HOST_ADDR, 18080), "/").unwrap();
    assert_eq!((status, body.as_str()), (200, "hello from web\n"));
    // Another container, through the host's address (hairpin NAT).
    let got = run(
        &c,
        &[
            "box",
            "sh",
            "-c",
            &format!("timeout 3 wget -qO- http://{HOST_ADDR}:18080/; exit $?"),
        ],
    );
    assert_eq!(got.stdout, "hello from web\n", "{}", got.stderr);
    // And the container itself, through the host's published port.
    let own = c.run([
        "exec",
        "web",
        "sh",
        "-c",
        &format!("timeout 3 wget -qO- http://{HOST_ADDR}:18080/; exit $?"),
    ]);
    assert_eq!(own.stdout, "hello from web\n", "{}", own.stderr);

    let io = c.run(["stats", "--no-stream", "--format", "{{.NetIO}}", "web"]);
    assert_ne!(
        io.stdout.trim(),
        "0B / 0B",
        "traffic is counted: {}",
        io.stderr
    );
    assert!(io.stdout.contains(" / "), "{}", io.stdout);

    assert_eq!(published(&c, "web", "80"), 18080);
    assert_eq!(published(&c, "web", "80/tcp"), 18080);
    let all = c.run(["port", "web"]);
    assert_eq!(
        all.stdout.lines().next(),
        Some("80/tcp -> 0.0.0.0:18080"),
        "{}",
        all.stdout
    );
    let none = c.run(["port", "web", "81"]);
    assert_eq!(none.code, 1, "{}", none.stdout);

    let ps = c.run(["ps", "--format", "{{.Names}} {{.Ports}}"]);
    assert!(
        ps.stdout.contains("web 0.0.0.0:18080->80/tcp"),
        "{}",
        ps.stdout
    );
    let table = c.run(["ps"]);
    assert!(table.stdout.lines().next().unwrap().contains("PORTS"));
    assert!(
        table.stdout.contains("0.0.0.0:18080->80/tcp"),
        "{}",
        table.stdout
    );
    let v = inspect_container(&c, "web");
    assert_eq!(
        v["NetworkSettings"]["Ports"],
        json!({"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "18080"}]})
    );
    assert_eq!(
        v["HostConfig"]["PortBindings"],
        json!({"80/tcp": [{"HostIp": "", "HostPort": "18080"}]})
    );

    // Bound to one address: answers there, not on others.
    run_web(&c, "local", &["-p", "127.0.0.1:18082:80"]);
    let (status, _) = wait_http(ns, addr("127.0.0.1", 18082));
    assert_eq!(status, 200);
    assert!(ns.http_get(addr(HOST_ADDR, 18082), "/").is_err());
    assert_eq!(
        c.run(["port", "local", "80"]).stdout.lines().next(),
        Some("127.0.0.1:18082")
    );
    // A range: the first free port in it.
    run_web(&c, "ranged", &["-p", "18090-18095:80"]);
    let port = published(&c, "ranged", "80");
    assert!((18090..=18095).contains(&port), "{port}");
    wait_http(ns, addr("127.0.0.1", port));
}

#[test]
fn random_ports_publish_all_and_udp() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    let ns = netns(&c);
    run_web(&c, "rnd", &["-p", "80"]);
    let port = published(&c, "rnd", "80");
    assert!(port >= 1024, "{port}");
    let (status, body) = wait_http(ns, addr("127.0.0.1", port));
    assert_eq!((status, body.as_str()), (200, "hello from rnd\n"));

    run_web(&c, "all", &["-P", "--expose", "80"]);
    let port = published(&c, "all", "80");
    let (status, body) = wait_http(ns, addr("127.0.0.1", port));
    assert_eq!((status, body.as_str()), (200, "hello from all\n"));

    // UDP: a static echo server (busybox's nc here has no -u), bind-mounted in.
    let dir = c.tmp().join("udp");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("echo.c"), UDP_ECHO).unwrap();
    let built = std::process::Command::new("cc")
        .args(["-static", "-O1", "-o"])
        .arg(dir.join("udpecho"))
        .arg(dir.join("echo.c"))
        .status()
        .unwrap();
    assert!(
        built.success(),
        "cc -static (libc6-dev) builds the echo server"
    );
    let bind = format!("{}:/probe:ro", dir.display());
    c.run([
        "run",
        "-d",
        "--name",
        "udp",
        "-p",
        "18081:53/udp",
        "-v",
        &bind,
        "box",
        "/probe/udpecho",
        "53",
    ])
    .assert_success();
    wait_until("the echo server", Duration::from_secs(10), || {
        c.run(["logs", "udp"]).stdout.contains("listening")
    });
    assert_eq!(published(&c, "udp", "53/udp"), 18081);
    let reply = ns.run_in(|| {
        let s = UdpSocket::bind("0.0.0.0:0").unwrap();
        s.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut buf = [0u8; 600];
        while Instant::now() < deadline {
            s.send_to(b"ping-udp", "127.0.0.1:18081").unwrap();
            if let Ok(n) = s.recv(&mut buf) {
                return Some(String::from_utf8_lossy(&buf[..n]).into_owned());
            }
        }
        None
    });
    assert_eq!(reply.as_deref(), Some("echo:ping-udp"), "no UDP reply");
    assert!(c.run(["logs", "udp"]).stdout.contains("got:ping-udp"));
    let ps = c.run(["ps", "--format", "{{.Names}} {{.Ports}}"]);
    assert!(
        ps.stdout.contains("udp 0.0.0.0:18081->53/udp"),
        "{}",
        ps.stdout
    );
}

#[test]
fn a_port_in_use_fails_the_run_and_leaves_nothing_behind() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    let ns = netns(&c);
    c.run([
        "run", "-d", "--name", "first", "-p", "18080:80", "box", "sleep", "60",
    ])
    .assert_success();
    let links = ns.links();
    let rules = ns.ruleset();

    let second = c.run([
        "run", "-d", "--name", "second", "-p", "18080:80", "box", "sleep", "60",
    ]);
    assert_eq!(second.code, 125, "{}", second.stderr);
    assert!(
        second.stderr.contains("port is already allocated")
            || second.stderr.contains("address already in use"),
        "{}",
        second.stderr
    );
    let running = c.run(["ps", "-q", "--filter", "name=^second$"]);
    assert_eq!(running.stdout, "", "not running");
    assert_eq!(ns.links(), links, "no veth left");
    assert_eq!(ns.ruleset(), rules, "firewall unchanged");
    let kept = c.run(["ps", "-aq", "--no-trunc", "--filter", "name=^second$"]);
    if let Some(id) = kept.stdout.lines().next() {
        assert!(!netns_file(id), "no namespace file for {id}");
    }

    // A port something else on the host holds.
    let holder = ns.run_in(|| TcpListener::bind("0.0.0.0:18085").unwrap());
    let third = c.run([
        "run", "-d", "--name", "third", "-p", "18085:80", "box", "sleep", "60",
    ]);
    assert_eq!(third.code, 125, "{}", third.stderr);
    assert!(
        third.stderr.contains("port is already allocated")
            || third.stderr.contains("address already in use"),
        "{}",
        third.stderr
    );
    assert_eq!(ns.links(), links, "no veth left");
    assert_eq!(ns.ruleset(), rules, "firewall unchanged");
    drop(holder);
    // Freed: the same port works now (the failed runs leaked no reservation).
    c.run(["rm", "-f", "first"]).assert_success();
    run_web(&c, "fourth", &["-p", "18080:80"]);
    let (status, _) = wait_http(ns, addr("127.0.0.1", 18080));
    assert_eq!(status, 200);
}

#[test]
fn teardown_after_rm_rm_f_and_a_killed_monitor_leaves_nothing() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    let ns = netns(&c);
    // A network's bridge and its rules stay while the network exists (docker0's way):
    // the baseline is taken once the default network has been used.
    run(&c, &["box", "true"]).assert_success();
    // Its veth goes with its namespace, which the kernel tears down asynchronously.
    wait_until("the first veth to go", Duration::from_secs(10), || {
        !ns.links().iter().any(|l| l.starts_with("veth"))
    });
    let baseline = ns.links();
    let rules = ns.ruleset();
    let no_table = |ns: &NetNs| ns.ruleset() == rules;

    let out = run(&c, &["-p", "18080:80", "box", "true"]);
    out.assert_success();
    wait_until("after run --rm", Duration::from_secs(10), || {
        ns.links() == baseline
    });
    assert!(no_table(ns), "after run --rm:\n{}", ns.ruleset());

    c.run([
        "run", "-d", "--name", "web", "-p", "18080:80", "box", "sleep", "60",
    ])
    .assert_success();
    let id = id_of(&c, "web");
    let links = ns.links();
    let out = c.run(["network", "inspect", "bridge"]);
    let v: serde_json::Value = serde_json::from_str(&out.assert_success().stdout).unwrap();
    let bridge = v[0]["Options"]["com.docker.network.bridge.name"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(bridge.starts_with("coracle"), "{bridge}");
    assert!(links.contains(&bridge), "{links:?}");
    assert!(links.iter().any(|l| l.starts_with("veth")), "{links:?}");
    assert!(
        ns.ruleset().contains("table inet coracle"),
        "{}",
        ns.ruleset()
    );
    assert!(netns_file(&id));
    c.run(["rm", "-f", "web"]).assert_success();
    wait_until("after rm -f", Duration::from_secs(10), || {
        ns.links() == baseline
    });
    assert!(no_table(ns), "after rm -f:\n{}", ns.ruleset());
    assert!(!netns_file(&id));

    // A monitor killed with SIGKILL: the next command that looks reconciles.
    c.run([
        "run", "-d", "--name", "victim", "-p", "18080:80", "box", "sleep", "60",
    ])
    .assert_success();
    let id = id_of(&c, "victim");
    let init = inspect_container(&c, "victim")["State"]["Pid"]
        .as_i64()
        .unwrap();
    let stat = std::fs::read_to_string(format!("/proc/{init}/stat")).unwrap();
    // Fields after the parenthesised command name: state, ppid.
    let ppid: i32 = stat
        .rsplit_once(") ")
        .unwrap()
        .1
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let cmdline = std::fs::read(format!("/proc/{ppid}/cmdline")).unwrap();
    assert!(
        String::from_utf8_lossy(&cmdline).contains(&id),
        "the parent of the container's init is its monitor"
    );
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(ppid).unwrap(),
        rustix::process::Signal::KILL,
    )
    .unwrap();
    wait_until("the monitor to die", Duration::from_secs(5), || {
        std::fs::read_to_string(format!("/proc/{ppid}/stat")).map_or(true, |s| s.contains(") Z"))
    });
    c.run(["ps", "-a"]).assert_success();
    c.run(["rm", "-f", "victim"]).assert_success();
    wait_until(
        "after a killed monitor and rm",
        Duration::from_secs(10),
        || ns.links() == baseline,
    );
    assert!(
        no_table(ns),
        "after a killed monitor and rm:\n{}",
        ns.ruleset()
    );
    assert!(!netns_file(&id));

    // Every lease went back: the next container gets the first address again, and the
    // published port is free.
    run_web(&c, "again", &["-p", "18080:80"]);
    assert_eq!(ip_on(&c, "again", "bridge"), "172.17.0.2");
    wait_http(ns, addr("127.0.0.1", 18080));
}

const UDP_ECHO: &str = r#"#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
int main(int argc, char **argv) {
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons(atoi(argv[1]));
    if (bind(s, (struct sockaddr *)&a, sizeof a) < 0) { perror("bind"); return 1; }
    printf("listening\n");
    fflush(stdout);
    for (;;) {
        char buf[512], reply[600];
        struct sockaddr_in from;
        socklen_t len = sizeof from;
        ssize_t n = recvfrom(s, buf, sizeof buf - 1, 0, (struct sockaddr *)&from, &len);
        if (n < 0) { perror("recvfrom"); return 1; }
        buf[n] = 0;
        printf("got:%s\n", buf);
        fflush(stdout);
        int m = snprintf(reply, sizeof reply, "echo:%s", buf);
        sendto(s, reply, m, 0, (struct sockaddr *)&from, len);
    }
}
"#;
