//! The nftables driver: one table per store (`inet coracle`, or the name the engine
//! gives a store of its own) holding every rule that store needs, rebuilt
//! from the desired state and swapped in with a single `nft -j -f -` transaction
//! (add table; delete table; add table + chains + rules). The kernel applies a
//! transaction all or nothing, so no packet ever sees a half-built table, applying
//! the same state twice leaves one copy of each rule, and rules of networks or ports
//! that are gone vanish without being tracked one by one.
//!
//! The table only ever holds one store's rules, so nothing else on the host (another
//! store's table included) is touched. Several tables' base chains see every packet,
//! and a drop in any of them is final, so the forward rules only ever drop traffic
//! into or out of the store's own bridges (iifname/oifname match them); `nft`
//! runs as a child of the calling thread and so acts on that thread's network
//! namespace (which is how the root tests in firewall/mod.rs stay off the host).

use super::{FirewallDriver, FirewallState, NetworkRule, PortForward};
use crate::NetError;
use ipnet::Ipv4Net;
use nftables::expr::{self, Expression, MetaKey, NamedExpression};
use nftables::schema::{self, NfCmd, NfListObject, NfObject};
use nftables::stmt::{self, Operator, Statement};
use nftables::types::{NfChainPolicy, NfChainType, NfFamily, NfHook};
use std::borrow::Cow;
use std::io::{self, Write};
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

const DEFAULT_TABLE: &str = "coracle";

const PREROUTING: &str = "prerouting";
const OUTPUT: &str = "output";
const PORTS: &str = "ports";
const POSTROUTING: &str = "postrouting";
const FORWARD: &str = "forward";

/// Standard hook priorities (dstnat, srcnat, filter), as iptables' nat and filter tables.
const DSTNAT: i32 = -100;
const SRCNAT: i32 = 100;
const FILTER: i32 = 0;

const LOOPBACK_NET: Ipv4Net = Ipv4Net::new_assert(Ipv4Addr::new(127, 0, 0, 0), 8);

/// The nftables firewall driver, owning one table of family `inet`.
#[derive(Debug, Clone)]
pub struct Nftables {
    table: String,
    /// The `nft` to run, looked up in PATH; tests point it elsewhere.
    program: &'static str,
}

impl Nftables {
    /// The driver for table `inet coracle`.
    pub fn new() -> Nftables {
        Nftables::with_table(DEFAULT_TABLE)
    }

    /// A driver owning another table (each store's own, or tests').
    pub fn with_table(name: &str) -> Nftables {
        Nftables {
            table: name.to_string(),
            program: "nft",
        }
    }
}

impl Default for Nftables {
    fn default() -> Nftables {
        Nftables::new()
    }
}

impl FirewallDriver for Nftables {
    fn apply(&self, state: &FirewallState) -> Result<(), NetError> {
        let doc = ruleset(&self.table, state);
        let json = serde_json::to_string(&doc)
            .map_err(|e| NetError::Firewall(format!("encoding the ruleset: {e}")))?;
        nft(self.program, &["-j", "-f", "-"], &json)
    }
}

/// Runs `program args` with `input` on stdin: Unavailable when it is not installed,
/// Firewall with what it printed on stderr when it fails.
fn nft(program: &str, args: &[&str], input: &str) -> Result<(), NetError> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => NetError::Unavailable(
                "nft (nftables) is not installed: install the nftables package".to_string(),
            ),
            _ => NetError::Firewall(format!("running {program}: {e}")),
        })?;
    // nft reads all of its input before it prints anything, so writing it all before
    // collecting stderr cannot deadlock on a full pipe. A failed write means nft quit
    // early: its stderr then says why, better than our EPIPE.
    let written = child
        .stdin
        .take()
        .map(|mut stdin| stdin.write_all(input.as_bytes()));
    let out = child
        .wait_with_output()
        .map_err(|e| NetError::Firewall(format!("waiting for {program}: {e}")))?;
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
    if !out.status.success() {
        return Err(NetError::Firewall(if stderr.is_empty() {
            format!("{program} {} failed: {}", args.join(" "), out.status)
        } else {
            stderr
        }));
    }
    if let Some(Err(e)) = written {
        return Err(NetError::Firewall(format!("writing to {program}: {e}")));
    }
    Ok(())
}

/// The whole transaction that makes table `inet <table>` exactly `state`: always
/// add+delete first (adding an existing table is a no-op, deleting a missing one is an
/// error, so the pair deletes it whether or not it exists), then, unless no network
/// needs rules, the table built from scratch.
fn ruleset(table: &str, state: &FirewallState) -> schema::Nftables<'static> {
    let mut doc = Doc {
        table: table.to_string(),
        cmds: Vec::new(),
    };
    doc.add(NfListObject::Table(doc.table_obj()));
    doc.cmds
        .push(NfObject::CmdObject(NfCmd::Delete(NfListObject::Table(
            doc.table_obj(),
        ))));
    if state.networks.is_empty() {
        return doc.finish();
    }
    doc.add(NfListObject::Table(doc.table_obj()));
    doc.base_chain(PREROUTING, NfChainType::NAT, NfHook::Prerouting, DSTNAT);
    doc.base_chain(OUTPUT, NfChainType::NAT, NfHook::Output, DSTNAT);
    doc.add(NfListObject::Chain(schema::Chain {
        family: NfFamily::INet,
        table: doc.table.clone().into(),
        name: PORTS.into(),
        ..schema::Chain::default()
    }));
    doc.base_chain(POSTROUTING, NfChainType::NAT, NfHook::Postrouting, SRCNAT);
    doc.base_chain(FORWARD, NfChainType::Filter, NfHook::Forward, FILTER);

    // Only traffic addressed to one of the host's own addresses can be a published port
    // (docker-proxy's semantics); traffic passing through to other hosts is left alone.
    for chain in [PREROUTING, OUTPUT] {
        doc.rule(chain, vec![fib_daddr_is_local(), jump(PORTS)]);
    }

    for port in &state.ports {
        doc.rule(PORTS, dnat_rule(port));
    }

    let nets = &state.networks;
    for n in nets.iter().filter(|n| !n.internal) {
        // Containers reach the outside world with the host's address.
        doc.rule(
            POSTROUTING,
            vec![
                ip_match("saddr", Operator::EQ, net(n.subnet)),
                iface(MetaKey::Oifname, Operator::NEQ, n),
                masquerade(),
            ],
        );
    }
    for n in nets {
        // 127.0.0.1:port on the host, DNATed to a container: the container cannot
        // answer a loopback source, so it sees the bridge's gateway address instead.
        doc.rule(
            POSTROUTING,
            vec![
                iface(MetaKey::Oifname, Operator::EQ, n),
                ip_match("saddr", Operator::EQ, net(LOOPBACK_NET)),
                masquerade(),
            ],
        );
    }
    for n in nets {
        // Hairpin: a container reaching a published port of a peer on its own bridge
        // through the host's address; without masquerading the peer would answer it
        // directly, from an address the client never talked to.
        doc.rule(
            POSTROUTING,
            vec![
                iface(MetaKey::Oifname, Operator::EQ, n),
                ip_match("saddr", Operator::EQ, net(n.subnet)),
                ct_status_dnat(),
                masquerade(),
            ],
        );
    }

    // Internal networks first: nothing crosses their bridge's boundary, not even
    // answers or published ports.
    for n in nets.iter().filter(|n| n.internal) {
        doc.rule(
            FORWARD,
            vec![
                iface(MetaKey::Iifname, Operator::EQ, n),
                iface(MetaKey::Oifname, Operator::NEQ, n),
                drop_packet(),
            ],
        );
        doc.rule(
            FORWARD,
            vec![
                iface(MetaKey::Oifname, Operator::EQ, n),
                iface(MetaKey::Iifname, Operator::NEQ, n),
                drop_packet(),
            ],
        );
    }
    doc.rule(FORWARD, vec![ct_state_established(), accept()]);
    doc.rule(FORWARD, vec![ct_status_dnat(), accept()]);
    // Anything else entering a bridge from elsewhere (another network, the outside)
    // is refused: networks are isolated from each other and from the LAN.
    for n in nets.iter().filter(|n| !n.internal) {
        doc.rule(
            FORWARD,
            vec![
                iface(MetaKey::Oifname, Operator::EQ, n),
                iface(MetaKey::Iifname, Operator::NEQ, n),
                drop_packet(),
            ],
        );
    }
    doc.finish()
}

/// The commands of one transaction, all on one table.
struct Doc {
    table: String,
    cmds: Vec<NfObject<'static>>,
}

impl Doc {
    fn table_obj(&self) -> schema::Table<'static> {
        schema::Table {
            family: NfFamily::INet,
            name: self.table.clone().into(),
            handle: None,
        }
    }

    fn add(&mut self, obj: NfListObject<'static>) {
        self.cmds.push(NfObject::CmdObject(NfCmd::Add(obj)));
    }

    fn base_chain(&mut self, name: &'static str, kind: NfChainType, hook: NfHook, prio: i32) {
        self.add(NfListObject::Chain(schema::Chain {
            family: NfFamily::INet,
            table: self.table.clone().into(),
            name: name.into(),
            _type: Some(kind),
            hook: Some(hook),
            prio: Some(prio),
            policy: Some(NfChainPolicy::Accept),
            ..schema::Chain::default()
        }));
    }

    fn rule(&mut self, chain: &'static str, expr: Vec<Statement<'static>>) {
        self.add(NfListObject::Rule(schema::Rule {
            family: NfFamily::INet,
            table: self.table.clone().into(),
            chain: chain.into(),
            expr: expr.into(),
            ..schema::Rule::default()
        }));
    }

    fn finish(self) -> schema::Nftables<'static> {
        schema::Nftables {
            objects: self.cmds.into(),
        }
    }
}

/// `[ip daddr HOST_IP | meta nfproto ipv4] meta l4proto P th dport N dnat ip to IP:PORT`
fn dnat_rule(p: &PortForward) -> Vec<Statement<'static>> {
    let m = &p.mapping;
    let family = match m.host_ip {
        Some(ip) => ip_match("daddr", Operator::EQ, string(ip.to_string())),
        // The table is inet: `dnat ip to` needs the rule to be IPv4-only.
        None => matches(meta(MetaKey::Nfproto), Operator::EQ, string("ipv4")),
    };
    vec![
        family,
        matches(
            meta(MetaKey::L4proto),
            Operator::EQ,
            string(m.proto.as_str()),
        ),
        matches(
            payload("th", "dport"),
            Operator::EQ,
            Expression::Number(m.host_port().unwrap_or(0).into()),
        ),
        Statement::DNAT(Some(stmt::NAT {
            addr: Some(string(p.container_ip.to_string())),
            family: Some(stmt::NATFamily::IP),
            port: Some(Expression::Number(m.container_port.into())),
            flags: None,
        })),
    ]
}

fn matches(
    left: Expression<'static>,
    op: Operator,
    right: Expression<'static>,
) -> Statement<'static> {
    Statement::Match(stmt::Match { left, right, op })
}

fn string(s: impl Into<String>) -> Expression<'static> {
    Expression::String(Cow::Owned(s.into()))
}

fn meta(key: MetaKey) -> Expression<'static> {
    Expression::Named(NamedExpression::Meta(expr::Meta { key }))
}

fn payload(protocol: &'static str, field: &'static str) -> Expression<'static> {
    Expression::Named(NamedExpression::Payload(expr::Payload::PayloadField(
        expr::PayloadField {
            protocol: protocol.into(),
            field: field.into(),
        },
    )))
}

fn ct(key: &'static str) -> Expression<'static> {
    Expression::Named(NamedExpression::CT(expr::CT {
        key: key.into(),
        family: None,
        dir: None,
    }))
}

fn net(n: Ipv4Net) -> Expression<'static> {
    Expression::Named(NamedExpression::Prefix(expr::Prefix {
        addr: Box::new(string(n.network().to_string())),
        len: n.prefix_len().into(),
    }))
}

/// `ip saddr|daddr OP right`
fn ip_match(field: &'static str, op: Operator, right: Expression<'static>) -> Statement<'static> {
    matches(payload("ip", field), op, right)
}

/// `iifname|oifname OP <bridge of n>`
fn iface(key: MetaKey, op: Operator, n: &NetworkRule) -> Statement<'static> {
    matches(meta(key), op, string(n.bridge.clone()))
}

fn fib_daddr_is_local() -> Statement<'static> {
    let fib = expr::Fib {
        result: expr::FibResult::Type,
        flags: [expr::FibFlag::Daddr].into(),
    };
    matches(
        Expression::Named(NamedExpression::Fib(fib)),
        Operator::EQ,
        string("local"),
    )
}

/// `ct status dnat`: the connection was DNATed, i.e. it is a published port.
fn ct_status_dnat() -> Statement<'static> {
    matches(ct("status"), Operator::IN, string("dnat"))
}

fn ct_state_established() -> Statement<'static> {
    matches(
        ct("state"),
        Operator::IN,
        Expression::List(vec![string("established"), string("related")]),
    )
}

fn jump(chain: &'static str) -> Statement<'static> {
    Statement::Jump(stmt::JumpTarget {
        target: chain.into(),
    })
}

fn masquerade() -> Statement<'static> {
    Statement::Masquerade(None)
}

fn accept() -> Statement<'static> {
    Statement::Accept(None)
}

fn drop_packet() -> Statement<'static> {
    Statement::Drop(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use coracle_core::Protocol;
    use serde_json::{json, Value};

    use crate::firewall::tests::{forward, network, two_networks};

    fn doc_json(table: &str, state: &FirewallState) -> Value {
        serde_json::to_value(ruleset(table, state)).unwrap()
    }

    /// The `expr` of every rule the document adds to `chain`, in order.
    fn rules_of(doc: &Value, chain: &str) -> Vec<Value> {
        doc["nftables"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|cmd| cmd["add"].get("rule"))
            .filter(|r| r["chain"] == chain)
            .map(|r| r["expr"].clone())
            .collect()
    }

    #[test]
    fn empty_state_only_removes_the_table() {
        let expected = json!({"nftables": [
            {"add": {"table": {"family": "inet", "name": "coracle"}}},
            {"delete": {"table": {"family": "inet", "name": "coracle"}}},
        ]});
        assert_eq!(doc_json("coracle", &FirewallState::default()), expected);
        // Ports without a network to lead to cannot be published.
        let ports_only = FirewallState {
            networks: vec![],
            ports: two_networks().ports,
        };
        assert_eq!(doc_json("coracle", &ports_only), expected);
    }

    #[test]
    fn one_network_one_port_snapshot() {
        let state = FirewallState {
            networks: vec![network("coracle0", "10.88.0.0/16", false)],
            ports: vec![forward(
                Protocol::Tcp,
                Some("192.0.2.1"),
                8080,
                "10.88.0.2",
                80,
            )],
        };
        let t = |name: &str| json!({"family": "inet", "table": "t", "name": name});
        let base = |name: &str, ty: &str, hook: &str, prio: i32| {
            let mut c = t(name);
            c["type"] = json!(ty);
            c["hook"] = json!(hook);
            c["prio"] = json!(prio);
            c["policy"] = json!("accept");
            json!({"add": {"chain": c}})
        };
        let rule = |chain: &str, expr: Value| json!({"add": {"rule": {"family": "inet", "table": "t", "chain": chain, "expr": expr}}});
        let m = |op: &str, left: Value, right: Value| json!({"match": {"left": left, "right": right, "op": op}});
        let meta = |key: &str| json!({"meta": {"key": key}});
        let ip = |field: &str| json!({"payload": {"protocol": "ip", "field": field}});
        let prefix = |addr: &str, len: u32| json!({"prefix": {"addr": addr, "len": len}});
        let fib_jump = json!([
            m("==", json!({"fib": {"result": "type", "flags": ["daddr"]}}), json!("local")),
            {"jump": {"target": "ports"}},
        ]);
        let ct_dnat = m("in", json!({"ct": {"key": "status"}}), json!("dnat"));
        let expected = json!({"nftables": [
            {"add": {"table": {"family": "inet", "name": "t"}}},
            {"delete": {"table": {"family": "inet", "name": "t"}}},
            {"add": {"table": {"family": "inet", "name": "t"}}},
            base("prerouting", "nat", "prerouting", -100),
            base("output", "nat", "output", -100),
            {"add": {"chain": t("ports")}},
            base("postrouting", "nat", "postrouting", 100),
            base("forward", "filter", "forward", 0),
            rule("prerouting", fib_jump.clone()),
            rule("output", fib_jump),
            rule("ports", json!([
                m("==", ip("daddr"), json!("192.0.2.1")),
                m("==", meta("l4proto"), json!("tcp")),
                m("==", json!({"payload": {"protocol": "th", "field": "dport"}}), json!(8080)),
                {"dnat": {"addr": "10.88.0.2", "family": "ip", "port": 80}},
            ])),
            rule("postrouting", json!([
                m("==", ip("saddr"), prefix("10.88.0.0", 16)),
                m("!=", meta("oifname"), json!("coracle0")),
                {"masquerade": null},
            ])),
            rule("postrouting", json!([
                m("==", meta("oifname"), json!("coracle0")),
                m("==", ip("saddr"), prefix("127.0.0.0", 8)),
                {"masquerade": null},
            ])),
            rule("postrouting", json!([
                m("==", meta("oifname"), json!("coracle0")),
                m("==", ip("saddr"), prefix("10.88.0.0", 16)),
                ct_dnat.clone(),
                {"masquerade": null},
            ])),
            rule("forward", json!([
                m("in", json!({"ct": {"key": "state"}}), json!(["established", "related"])),
                {"accept": null},
            ])),
            rule("forward", json!([ct_dnat, {"accept": null}])),
            rule("forward", json!([
                m("==", meta("oifname"), json!("coracle0")),
                m("!=", meta("iifname"), json!("coracle0")),
                {"drop": null},
            ])),
        ]});
        assert_eq!(doc_json("t", &state), expected);
    }

    #[test]
    fn internal_networks_are_sealed_before_anything_is_accepted() {
        let doc = doc_json("coracle", &two_networks());
        let forward = rules_of(&doc, "forward");
        let text: Vec<String> = forward.iter().map(Value::to_string).collect();
        assert_eq!(forward.len(), 5, "{text:#?}");
        // Both directions of coracle1 (internal) dropped before the accepts.
        for (i, (first, second)) in [("iifname", "oifname"), ("oifname", "iifname")]
            .iter()
            .enumerate()
        {
            assert_eq!(forward[i][0]["match"]["left"]["meta"]["key"], *first);
            assert_eq!(forward[i][0]["match"]["right"], "coracle1");
            assert_eq!(forward[i][1]["match"]["left"]["meta"]["key"], *second);
            assert_eq!(forward[i][1]["match"]["op"], "!=");
            assert_eq!(forward[i][2], json!({"drop": null}));
        }
        assert!(text[2].contains("established") && text[2].contains("accept"));
        assert!(text[3].contains("\"dnat\"") && text[3].contains("accept"));
        assert!(text[4].contains("coracle0") && text[4].contains("drop"));

        let post = rules_of(&doc, "postrouting");
        // Outbound masquerade only for coracle0; loopback and hairpin for both.
        assert_eq!(post.len(), 5);
        assert_eq!(
            post.iter()
                .filter(|r| r.to_string().contains("\"!=\""))
                .count(),
            1
        );
        assert!(!post[0].to_string().contains("coracle1"));
    }

    #[test]
    fn forwards_without_host_ip_are_limited_to_ipv4() {
        let doc = doc_json("coracle", &two_networks());
        let ports = rules_of(&doc, "ports");
        assert_eq!(ports.len(), 2);
        assert_eq!(
            ports[0][0],
            json!({"match": {"left": {"meta": {"key": "nfproto"}}, "right": "ipv4", "op": "=="}})
        );
        assert_eq!(ports[0][1]["match"]["right"], "tcp");
        assert_eq!(
            ports[0][3]["dnat"],
            json!({"addr": "10.88.0.2", "family": "ip", "port": 80})
        );
        assert_eq!(ports[1][0]["match"]["right"], "127.0.0.1");
        assert_eq!(ports[1][1]["match"]["right"], "udp");
        assert_eq!(ports[1][2]["match"]["right"], 15353);
    }

    #[test]
    fn missing_nft_is_unavailable() {
        let fw = Nftables {
            table: "coracle".to_string(),
            program: "/nonexistent/coracle-test/nft",
        };
        let err = fw.apply(&two_networks()).unwrap_err();
        assert!(matches!(err, NetError::Unavailable(_)), "{err:?}");
        assert_eq!(
            err.to_string(),
            "nft (nftables) is not installed: install the nftables package"
        );
    }
}
