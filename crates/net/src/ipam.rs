//! IP address management as pure functions: parsing and checking subnets and addresses
//! the way docker does, choosing addresses and subnets, and naming interfaces. Which
//! addresses are in use lives in the state database; the engine passes it in.

use crate::NetError;
use ipnet::{IpNet, Ipv4Net};
use std::collections::HashSet;
use std::io::Read;
use std::net::Ipv4Addr;

/// The default `bridge` network.
pub const DEFAULT_SUBNET: &str = "10.88.0.0/16";

/// A `--subnet` value: IPv4 CIDR with no host bits set (docker's rules and messages).
pub fn parse_subnet(s: &str) -> Result<Ipv4Net, NetError> {
    let net: IpNet = s.parse().map_err(|_| {
        NetError::InvalidArgument(format!("invalid subnet {s}: invalid CIDR address: {s}"))
    })?;
    let net = match net {
        IpNet::V4(net) => net,
        IpNet::V6(_) => {
            return Err(NetError::InvalidArgument(
                "IPv6 networks are not supported yet".into(),
            ))
        }
    };
    if net.addr() != net.network() {
        return Err(NetError::InvalidArgument(format!(
            "invalid subnet {s}: it should be {}",
            net.trunc()
        )));
    }
    Ok(net)
}

/// An IPv4 address given for `what` (e.g. "IPv4 address" for `--ip`, "gateway").
pub fn parse_ipv4(what: &str, s: &str) -> Result<Ipv4Addr, NetError> {
    s.parse()
        .map_err(|_| NetError::InvalidArgument(format!("invalid {what}: {s}")))
}

/// The first address after the network address: the default gateway. (For /31 and
/// /32 this is not a usable host; `check_in_subnet` rejects it.)
pub fn first_host(subnet: Ipv4Net) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(subnet.network()).saturating_add(1))
}

/// Lowest host address not in `used`, not the gateway, network or broadcast.
/// /31 and /32 have no such address.
pub fn pick_address(
    subnet: Ipv4Net,
    gateway: Ipv4Addr,
    used: &HashSet<Ipv4Addr>,
) -> Option<Ipv4Addr> {
    if subnet.prefix_len() > 30 {
        return None;
    }
    let first = u32::from(subnet.network()) + 1;
    let last = u32::from(subnet.broadcast()) - 1;
    (first..=last)
        .map(Ipv4Addr::from)
        .find(|ip| *ip != gateway && !used.contains(ip))
}

/// `--ip`/`--gateway` checks: inside the subnet, not its network or broadcast address.
pub fn check_in_subnet(what: &str, subnet: Ipv4Net, ip: Ipv4Addr) -> Result<(), NetError> {
    let why = if !subnet.contains(&ip) {
        format!("it does not belong to subnet {subnet}")
    } else if ip == subnet.network() {
        format!("it is the network address of {subnet}")
    } else if ip == subnet.broadcast() {
        format!("it is the broadcast address of {subnet}")
    } else {
        return Ok(());
    };
    Err(NetError::InvalidArgument(format!(
        "invalid {what} {ip}: {why}"
    )))
}

/// First 10.89.N.0/24 (N = 0..=255) overlapping none of `taken`.
pub fn next_free_subnet(taken: &[Ipv4Net]) -> Option<Ipv4Net> {
    (0..=255u8)
        .map(|n| Ipv4Net::new(Ipv4Addr::new(10, 89, n, 0), 24).expect("prefix 24 is valid"))
        .find(|candidate| !taken.iter().any(|t| overlaps(*candidate, *t)))
}

fn overlaps(a: Ipv4Net, b: Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// docker's MAC for an address: 02:42 (locally administered) then the IPv4 bytes, so
/// the MAC is unique wherever the address is.
pub fn mac_for(ip: Ipv4Addr) -> [u8; 6] {
    let [a, b, c, d] = ip.octets();
    [0x02, 0x42, a, b, c, d]
}

/// `02:42:0a:58:00:02`.
pub fn format_mac(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// `veth` + 7 random hex digits: fits IFNAMSIZ, and random so two engines attaching
/// at once do not pick the same name.
pub fn veth_name() -> Result<String, NetError> {
    const PATH: &str = "/dev/urandom";
    let mut bytes = [0u8; 4];
    std::fs::File::open(PATH)
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(NetError::io("read", PATH))?;
    let hex = format!("{:08x}", u32::from_ne_bytes(bytes));
    Ok(format!("veth{}", &hex[..7]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    fn msg(r: Result<impl std::fmt::Debug, NetError>) -> String {
        let e = r.unwrap_err();
        assert!(
            matches!(e, NetError::InvalidArgument(_)),
            "{e:?} is not InvalidArgument"
        );
        e.to_string()
    }

    #[test]
    fn subnets_follow_docker_rules() {
        assert_eq!(parse_subnet("10.1.0.0/24").unwrap(), net("10.1.0.0/24"));
        assert_eq!(parse_subnet(DEFAULT_SUBNET).unwrap(), net("10.88.0.0/16"));
        assert_eq!(
            msg(parse_subnet("FOO")),
            "invalid subnet FOO: invalid CIDR address: FOO"
        );
        assert!(msg(parse_subnet("10.1.0.0")).starts_with("invalid subnet 10.1.0.0: "));
        assert!(msg(parse_subnet("10.1.0.0/33")).starts_with("invalid subnet"));
        assert_eq!(
            msg(parse_subnet("10.1.0.5/24")),
            "invalid subnet 10.1.0.5/24: it should be 10.1.0.0/24"
        );
        assert_eq!(
            msg(parse_subnet("fd00::/64")),
            "IPv6 networks are not supported yet"
        );
    }

    #[test]
    fn addresses_parse_and_check_against_the_subnet() {
        assert_eq!(
            parse_ipv4("IPv4 address", "10.1.0.7").unwrap(),
            ip("10.1.0.7")
        );
        assert_eq!(
            msg(parse_ipv4("IPv4 address", "10.1.0")),
            "invalid IPv4 address: 10.1.0"
        );
        assert!(msg(parse_ipv4("gateway", "fd00::1")).contains("gateway"));
        let s = net("10.1.0.0/24");
        assert_eq!(first_host(s), ip("10.1.0.1"));
        assert_eq!(first_host(net("10.88.0.0/16")), ip("10.88.0.1"));
        check_in_subnet("IP address", s, ip("10.1.0.1")).unwrap();
        check_in_subnet("IP address", s, ip("10.1.0.254")).unwrap();
        assert_eq!(
            msg(check_in_subnet("IP address", s, ip("10.2.0.5"))),
            "invalid IP address 10.2.0.5: it does not belong to subnet 10.1.0.0/24"
        );
        assert!(msg(check_in_subnet("gateway", s, ip("10.1.0.0"))).contains("network address"));
        assert!(msg(check_in_subnet("gateway", s, ip("10.1.0.255"))).contains("broadcast"));
    }

    #[test]
    fn pick_skips_network_broadcast_gateway_and_used() {
        let s = net("10.1.0.0/29"); // .0 network, .7 broadcast
        let gw = ip("10.1.0.1");
        let mut used = HashSet::new();
        assert_eq!(pick_address(s, gw, &used), Some(ip("10.1.0.2")));
        used.insert(ip("10.1.0.2"));
        used.insert(ip("10.1.0.4"));
        assert_eq!(pick_address(s, gw, &used), Some(ip("10.1.0.3")));
        used.insert(ip("10.1.0.3"));
        assert_eq!(pick_address(s, gw, &used), Some(ip("10.1.0.5")));
        used.insert(ip("10.1.0.5"));
        used.insert(ip("10.1.0.6"));
        assert_eq!(pick_address(s, gw, &used), None, "full: never .7");
        // A gateway elsewhere than .1 frees .1 and is itself skipped.
        assert_eq!(
            pick_address(s, ip("10.1.0.6"), &HashSet::new()),
            Some(ip("10.1.0.1"))
        );
        let used = HashSet::from([ip("10.1.0.1")]);
        assert_eq!(pick_address(s, ip("10.1.0.2"), &used), Some(ip("10.1.0.3")));
        let empty = HashSet::new();
        assert_eq!(
            pick_address(net("10.1.0.0/30"), gw, &empty),
            Some(ip("10.1.0.2"))
        );
        assert_eq!(pick_address(net("10.1.0.0/31"), gw, &empty), None);
        assert_eq!(pick_address(net("10.1.0.0/32"), gw, &empty), None);
        assert_eq!(
            pick_address(net("10.88.0.0/16"), ip("10.88.0.1"), &empty),
            Some(ip("10.88.0.2"))
        );
    }

    #[test]
    fn next_free_subnet_avoids_overlaps() {
        assert_eq!(next_free_subnet(&[]), Some(net("10.89.0.0/24")));
        assert_eq!(
            next_free_subnet(&[net("10.89.0.0/24"), net("10.89.1.128/25")]),
            Some(net("10.89.2.0/24"))
        );
        // A host route inside a candidate and a wide net covering several both count.
        assert_eq!(
            next_free_subnet(&[
                net("10.89.0.5/32"),
                net("10.89.0.0/23"),
                net("10.88.0.0/16")
            ]),
            Some(net("10.89.2.0/24"))
        );
        assert_eq!(next_free_subnet(&[net("10.0.0.0/8")]), None);
        let all: Vec<_> = (0..=255u8)
            .map(|n| Ipv4Net::new(Ipv4Addr::new(10, 89, n, 0), 24).unwrap())
            .collect();
        assert_eq!(next_free_subnet(&all[..255]), Some(net("10.89.255.0/24")));
        assert_eq!(next_free_subnet(&all), None);
    }

    #[test]
    fn macs_come_from_the_address() {
        let mac = mac_for(ip("10.88.0.2"));
        assert_eq!(mac, [0x02, 0x42, 0x0a, 0x58, 0x00, 0x02]);
        assert_eq!(format_mac(&mac), "02:42:0a:58:00:02");
        assert_eq!(
            format_mac(&mac_for(ip("192.168.255.10"))),
            "02:42:c0:a8:ff:0a"
        );
    }

    #[test]
    fn veth_names_are_random_and_fit_ifnamsiz() {
        let names: HashSet<String> = (0..50).map(|_| veth_name().unwrap()).collect();
        assert!(names.len() > 45, "random: {names:?}");
        for n in &names {
            assert_eq!(n.len(), 11, "{n}");
            assert!(n.starts_with("veth"));
            assert!(n[4..]
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        }
    }
}
