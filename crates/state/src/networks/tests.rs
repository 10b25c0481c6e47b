use super::*;
use crate::{ContainerRecord, ImageLayer, NewImage};
use coracle_core::{Digest, ErrorKind};
use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::path::Path;

fn db_with_image(path: &Path) -> (Db, Digest) {
    let mut db = Db::open(path).unwrap();
    let id = Digest::sha256_of(b"img");
    let diff = Digest::sha256_of(b"layer");
    db.put_image(&NewImage {
        id: id.clone(),
        manifest_digest: Digest::sha256_of(b"m"),
        manifest: vec![],
        manifest_type: "x".into(),
        config: vec![],
        created: None,
        os: "linux".into(),
        architecture: "amd64".into(),
        variant: None,
        layers: vec![ImageLayer {
            chain_id: diff.clone(),
            diff_id: diff.clone(),
            blob_digest: diff,
            blob_size: 1,
            media_type: "x".into(),
            size: 1,
        }],
    })
    .unwrap();
    (db, id)
}

/// A 64-hex container id that starts with `prefix`.
fn cid(prefix: &str) -> String {
    format!("{prefix:0<64}")
}

fn add_container(db: &mut Db, img: &Digest, id: &str, name: &str) {
    db.insert_container(&ContainerRecord::new_created(
        id.into(),
        name.into(),
        img.clone(),
        "busybox".into(),
        1,
        "{}".into(),
    ))
    .unwrap();
}

fn network(id: &str, name: &str, bridge: &str, subnet: &str) -> NetworkRecord {
    NetworkRecord {
        id: id.into(),
        name: name.into(),
        driver: "bridge".into(),
        bridge: bridge.into(),
        subnet: subnet.into(),
        gateway: subnet.replace(".0/24", ".1"),
        internal: false,
        labels: BTreeMap::from([("team".to_string(), "a b".to_string())]),
        created: "2024-01-01T00:00:00Z".into(),
    }
}

fn lease(container: &str, ip: &str) -> LeaseRecord {
    LeaseRecord {
        network_id: String::new(),
        container_id: container.into(),
        ip: ip.parse().unwrap(),
        mac: "02:42:0a:59:00:02".parse().unwrap(),
        host_if: "veth0000000".into(),
        container_if: "eth0".into(),
    }
}

/// Lowest free host of a /24 (2..=254; .1 is the gateway), as IPAM would choose.
fn lowest_free(prefix: &str, used: &[Ipv4Addr]) -> Option<String> {
    (2..=254)
        .map(|h| format!("{prefix}.{h}"))
        .find(|ip| !used.contains(&ip.parse().unwrap()))
}

fn ep(network_id: &str, aliases: &[&str]) -> EndpointConfig {
    EndpointConfig {
        network_id: network_id.into(),
        aliases: aliases.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

#[test]
fn networks_insert_lookup_list_delete() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = db_with_image(&dir.path().join("state.db"));
    let a = network("n1", "zeta", "coracle1", "10.89.0.0/24");
    let mut b = network("n2", "alpha", "coracle2", "10.89.1.0/24");
    b.internal = true;
    b.labels.clear();
    db.insert_network(&a).unwrap();
    db.insert_network(&b).unwrap();
    assert_eq!(db.network_by_name("zeta").unwrap(), Some(a.clone()));
    assert_eq!(db.network_by_id("n2").unwrap(), Some(b.clone()));
    assert_eq!(db.network_by_name("n1").unwrap(), None, "ids are not names");
    assert_eq!(db.networks().unwrap(), vec![b, a.clone()], "by name");

    let err = db
        .insert_network(&network("n3", "zeta", "coracle3", "10.89.2.0/24"))
        .unwrap_err();
    assert!(matches!(err, StateError::NetworkNameInUse { .. }), "{err}");
    assert_eq!(err.to_string(), "network with name zeta already exists");
    assert_eq!(err.kind(), ErrorKind::Conflict);
    let err = db
        .insert_network(&network("n3", "other", "coracle1", "10.89.2.0/24"))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "bridge taken: {err}");

    assert!(db.delete_network("n1").unwrap());
    assert!(!db.delete_network("n1").unwrap());
    assert_eq!(db.network_by_name("zeta").unwrap(), None);
    db.insert_network(&a).unwrap();
}

#[test]
fn endpoints_keep_order_and_replace() {
    let dir = tempfile::tempdir().unwrap();
    let (mut db, img) = db_with_image(&dir.path().join("state.db"));
    let (c1, c2) = (cid("c1"), cid("c2"));
    add_container(&mut db, &img, &c1, "one");
    add_container(&mut db, &img, &c2, "two");
    let mut with_ip = ep("nb", &["db", "cache"]);
    with_ip.ip = Some("10.89.0.9".into());
    with_ip.mac = Some("02:00:00:00:00:01".into());
    db.set_container_endpoints(&c1, &[ep("nz", &[]), with_ip.clone()])
        .unwrap();
    assert_eq!(
        db.container_endpoints(&c1).unwrap(),
        vec![ep("nz", &[]), with_ip.clone()]
    );
    assert!(db.add_container_endpoint(&c1, &ep("na", &["x"])).unwrap());
    assert!(!db.add_container_endpoint(&c1, &ep("nz", &["y"])).unwrap());
    let nets: Vec<_> = db
        .container_endpoints(&c1)
        .unwrap()
        .into_iter()
        .map(|e| e.network_id)
        .collect();
    assert_eq!(nets, ["nz", "nb", "na"], "in the order added");

    db.add_container_endpoint(&c2, &ep("nb", &[])).unwrap();
    assert_eq!(
        db.network_endpoint_containers("nb").unwrap(),
        [c1.as_str(), &c2]
    );
    assert!(db.remove_container_endpoint(&c1, "nb").unwrap());
    assert!(!db.remove_container_endpoint(&c1, "nb").unwrap());
    assert_eq!(db.network_endpoint_containers("nb").unwrap(), [c2.as_str()]);

    db.set_container_endpoints(&c1, &[ep("nq", &["q"])])
        .unwrap();
    assert_eq!(db.container_endpoints(&c1).unwrap(), vec![ep("nq", &["q"])]);
    db.set_container_endpoints(&c1, &[]).unwrap();
    assert!(db.container_endpoints(&c1).unwrap().is_empty());
}

#[test]
fn leases_come_from_choose_and_pin_their_network() {
    let dir = tempfile::tempdir().unwrap();
    let (mut db, img) = db_with_image(&dir.path().join("state.db"));
    db.insert_network(&network("n1", "front", "coracle1", "10.89.0.0/24"))
        .unwrap();
    let (c1, c2, c3) = (cid("a1"), cid("a2"), cid("a3"));
    for (id, name) in [(&c1, "one"), (&c2, "two"), (&c3, "three")] {
        add_container(&mut db, &img, id, name);
    }
    let mut seen = Vec::new();
    let got = db
        .insert_lease_with("n1", &mut |used| {
            seen = used.to_vec();
            Some(lease(&c1, "10.89.0.2"))
        })
        .unwrap()
        .unwrap();
    assert!(seen.is_empty());
    assert_eq!(got.network_id, "n1");
    db.insert_lease_with("n1", &mut |used| {
        seen = used.to_vec();
        lowest_free("10.89.0", used).map(|ip| lease(&c2, &ip))
    })
    .unwrap();
    assert_eq!(seen, [Ipv4Addr::new(10, 89, 0, 2)]);
    assert_eq!(
        db.leases_of_container(&c2).unwrap()[0].ip,
        Ipv4Addr::new(10, 89, 0, 3)
    );

    // A requested address that is taken: choose says None, nothing is recorded.
    let none = db
        .insert_lease_with("n1", &mut |used| {
            (!used.contains(&Ipv4Addr::new(10, 89, 0, 3))).then(|| lease(&c3, "10.89.0.3"))
        })
        .unwrap();
    assert_eq!(none, None);
    // The UNIQUE constraint is the backstop if choose gets it wrong.
    let err = db
        .insert_lease_with("n1", &mut |_| Some(lease(&c3, "10.89.0.3")))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    assert_eq!(db.leases_of_network("n1").unwrap().len(), 2);
    assert_eq!(db.leases().unwrap().len(), 2);

    let err = db.delete_network("n1").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    assert!(db.network_by_id("n1").unwrap().is_some());
    assert!(db.delete_lease("n1", &c1).unwrap());
    assert!(!db.delete_lease("n1", &c1).unwrap());
    assert!(db.delete_lease("n1", &c2).unwrap());
    assert!(db.delete_network("n1").unwrap());
}

#[test]
fn lease_addresses_are_stored_as_text_and_bad_ones_are_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let (mut db, img) = db_with_image(&dir.path().join("state.db"));
    db.insert_network(&network("n1", "front", "coracle1", "10.89.0.0/24"))
        .unwrap();
    let c1 = cid("d1");
    add_container(&mut db, &img, &c1, "one");
    let mut l = lease(&c1, "10.89.0.7");
    l.mac = MacAddr([0x02, 0x42, 0x0a, 0x59, 0x00, 0xAB]);
    db.insert_lease_with("n1", &mut |_| Some(l.clone()))
        .unwrap();
    let text = |col: &str| -> String {
        db.conn
            .query_row(&format!("SELECT {col} FROM leases"), [], |r| r.get(0))
            .unwrap()
    };
    // The same text as before the columns were typed: existing databases read back.
    assert_eq!(
        (text("ip"), text("mac")),
        ("10.89.0.7".into(), "02:42:0a:59:00:ab".into())
    );
    l.network_id = "n1".into();
    assert_eq!(db.leases_of_container(&c1).unwrap(), [l]);

    for (col, bad, what) in [
        ("ip", "10.89.0.300", "lease address"),
        ("mac", "02:42:0a", "lease MAC address"),
    ] {
        let good = text(col);
        db.conn
            .execute(&format!("UPDATE leases SET {col} = ?1"), [bad])
            .unwrap();
        let err = db.leases_of_container(&c1).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Internal, "{err}");
        assert!(err.to_string().contains(what), "{err}");
        assert!(err.to_string().contains(bad), "{err}");
        db.conn
            .execute(&format!("UPDATE leases SET {col} = ?1"), [good])
            .unwrap();
    }
    // Allocation reads the addresses in use: a bad one fails it rather than being skipped.
    db.conn
        .execute("UPDATE leases SET ip = 'nonsense'", [])
        .unwrap();
    let err = db
        .insert_lease_with("n1", &mut |_| panic!("not reached"))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Internal, "{err}");
}

#[test]
fn concurrent_allocation_across_connections_never_shares_an_address() {
    const THREADS: usize = 8;
    const EACH: usize = 20;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let (mut db, img) = db_with_image(&path);
    db.insert_network(&network("n1", "front", "coracle1", "10.89.0.0/24"))
        .unwrap();
    for t in 0..THREADS {
        for i in 0..EACH {
            let id = cid(&format!("{t:x}{i:02x}"));
            add_container(&mut db, &img, &id, &format!("c{t}-{i}"));
        }
    }
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let path = path.clone();
            std::thread::spawn(move || {
                let db = Db::open(&path).unwrap();
                for i in 0..EACH {
                    let id = cid(&format!("{t:x}{i:02x}"));
                    let got = db
                        .insert_lease_with("n1", &mut |used| {
                            lowest_free("10.89.0", used).map(|ip| lease(&id, &ip))
                        })
                        .unwrap();
                    assert!(got.is_some());
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let ips: HashSet<Ipv4Addr> = db
        .leases_of_network("n1")
        .unwrap()
        .into_iter()
        .map(|l| l.ip)
        .collect();
    assert_eq!(ips.len(), THREADS * EACH);
}

#[test]
fn deleting_a_container_removes_its_endpoints_leases_and_ports() {
    let dir = tempfile::tempdir().unwrap();
    let (mut db, img) = db_with_image(&dir.path().join("state.db"));
    db.insert_network(&network("n1", "front", "coracle1", "10.89.0.0/24"))
        .unwrap();
    let (c1, c2) = (cid("b1"), cid("b2"));
    add_container(&mut db, &img, &c1, "one");
    add_container(&mut db, &img, &c2, "two");
    for (c, ip) in [(&c1, "10.89.0.2"), (&c2, "10.89.0.3")] {
        db.set_container_endpoints(c, &[ep("n1", &["a"])]).unwrap();
        db.insert_lease_with("n1", &mut |_| Some(lease(c, ip)))
            .unwrap();
        db.set_container_ports(c, &[port(c, "tcp", 8080, 80)])
            .unwrap();
    }
    assert!(db.delete_container(&c1).unwrap());
    assert!(db.container_endpoints(&c1).unwrap().is_empty());
    assert!(db.leases_of_container(&c1).unwrap().is_empty());
    assert!(db.container_ports(&c1).unwrap().is_empty());
    assert_eq!(db.network_endpoint_containers("n1").unwrap(), [c2.as_str()]);
    assert_eq!(db.leases().unwrap().len(), 1);
    assert_eq!(db.ports().unwrap().len(), 1);
}

fn port(container: &str, proto: &str, host: u16, inner: u16) -> PortRecord {
    PortRecord {
        container_id: container.into(),
        mapping: PortMapping {
            host_ip: None,
            host_ports: Some((host, host)),
            container_port: inner,
            proto: proto.parse().unwrap(),
        },
    }
}

#[test]
fn a_corrupt_port_row_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let (mut db, img) = db_with_image(&dir.path().join("state.db"));
    let c1 = cid("d1");
    add_container(&mut db, &img, &c1, "one");
    db.conn
        .execute(
            "INSERT INTO ports VALUES (?1, 'tcp', 'not-an-address', 80, 80)",
            [&c1],
        )
        .unwrap();
    let err = db.container_ports(&c1).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Internal, "{err}");
    assert!(err.to_string().contains("not-an-address"), "{err}");
}

#[test]
fn ports_replace_and_list() {
    let dir = tempfile::tempdir().unwrap();
    let (mut db, img) = db_with_image(&dir.path().join("state.db"));
    let (c1, c2) = (cid("d1"), cid("d2"));
    add_container(&mut db, &img, &c1, "one");
    add_container(&mut db, &img, &c2, "two");
    let mut local = port(&c1, "udp", 5353, 53);
    local.mapping.host_ip = Some(std::net::Ipv4Addr::LOCALHOST);
    let first = vec![port(&c1, "tcp", 65535, 80), local];
    db.set_container_ports(&c1, &first).unwrap();
    db.set_container_ports(&c2, &[port(&c2, "tcp", 8081, 81)])
        .unwrap();
    assert_eq!(
        db.container_ports(&c1).unwrap(),
        first,
        "in the given order"
    );
    assert_eq!(db.ports().unwrap().len(), 3);
    db.set_container_ports(&c1, &[port(&c1, "tcp", 9000, 90)])
        .unwrap();
    assert_eq!(
        db.container_ports(&c1).unwrap(),
        vec![port(&c1, "tcp", 9000, 90)]
    );
    db.set_container_ports(&c1, &[]).unwrap();
    assert_eq!(db.ports().unwrap(), vec![port(&c2, "tcp", 8081, 81)]);
}

#[test]
fn resolve_by_name_alias_and_short_id_on_shared_networks_only() {
    let dir = tempfile::tempdir().unwrap();
    let (mut db, img) = db_with_image(&dir.path().join("state.db"));
    db.insert_network(&network("n1", "front", "coracle1", "10.89.0.0/24"))
        .unwrap();
    db.insert_network(&network("n2", "back", "coracle2", "10.89.1.0/24"))
        .unwrap();
    let (web, db1, db2) = (cid("abcdef012345"), cid("e1"), cid("e2"));
    add_container(&mut db, &img, &web, "Web");
    add_container(&mut db, &img, &db1, "db1");
    add_container(&mut db, &img, &db2, "db2");
    db.set_container_endpoints(&web, &[ep("n1", &["site"]), ep("n2", &["api"])])
        .unwrap();
    db.set_container_endpoints(&db1, &[ep("n2", &["Database"])])
        .unwrap();
    db.set_container_endpoints(&db2, &[ep("n2", &["database"])])
        .unwrap();
    for (c, net, ip) in [
        (&web, "n1", "10.89.0.2"),
        (&web, "n2", "10.89.1.2"),
        (&db1, "n2", "10.89.1.3"),
        (&db2, "n2", "10.89.1.4"),
    ] {
        db.insert_lease_with(net, &mut |_| Some(lease(c, ip)))
            .unwrap();
    }
    let n1 = ["n1".to_string()];
    let n2 = ["n2".to_string()];
    let both = ["n1".to_string(), "n2".to_string()];
    let r = |nets: &[String], name: &str| db.resolve_on_networks(nets, name).unwrap();
    assert_eq!(r(&n1, "web"), ["10.89.0.2"]);
    assert_eq!(r(&n1, "WEB"), ["10.89.0.2"], "case-insensitive");
    assert_eq!(r(&both, "web"), ["10.89.0.2", "10.89.1.2"]);
    assert_eq!(r(&n1, "site"), ["10.89.0.2"]);
    assert!(r(&n1, "api").is_empty(), "alias of another network");
    assert_eq!(r(&n2, "API"), ["10.89.1.2"]);
    assert_eq!(r(&n1, "abcdef012345"), ["10.89.0.2"], "short id");
    assert_eq!(r(&n1, "ABCDEF012345"), ["10.89.0.2"]);
    assert!(r(&n1, "abcdef").is_empty(), "only the 12-char id");
    assert!(r(&n1, "db1").is_empty(), "not on n1");
    assert_eq!(r(&both, "db1"), ["10.89.1.3"]);
    assert_eq!(r(&n2, "database"), ["10.89.1.3", "10.89.1.4"]);
    assert!(r(&[], "web").is_empty());
    assert!(r(&n2, "nothing").is_empty());
}
