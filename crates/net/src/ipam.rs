//! IP address management as pure functions: parsing and checking subnets and addresses
//! the way docker does, choosing addresses and subnets, and naming interfaces. Which
//! addresses are in use lives in the state database; the engine passes it in.

use crate::NetError;
use ipnet::{IpNet, Ipv4Net};
use std::collections::HashSet;
use std::io::Read;
use std::net::Ipv4Addr;

/// A range new networks' subnets are cut from: `base` split into /`size` subnets, as
/// an entry of docker's `default-address-pools`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressPool {
    pub base: Ipv4Net,
    pub size: u8,
}

impl AddressPool {
    /// docker's checks: base a valid subnet, size between its prefix and 32.
    pub fn new(base: &str, size: u8) -> Result<AddressPool, NetError> {
        let base = parse_subnet(base)?;
        if size < base.prefix_len() || size > 32 {
            return Err(NetError::InvalidArgument(format!(
                "invalid address pool {base}: size /{size} must be between /{} and /32",
                base.prefix_len()
            )));
        }
        Ok(AddressPool { base, size })
    }

    /// Its subnets, in address order.
    pub fn subnets(self) -> impl Iterator<Item = Ipv4Net> {
        let first = u32::from(self.base.network()) as u64;
        let count = 1u64 << (self.size - self.base.prefix_len());
        let step = 1u64 << (32 - self.size);
        (0..count).map(move |i| {
            let addr = Ipv4Addr::from((first + i * step) as u32);
            Ipv4Net::new(addr, self.size).expect("size checked")
        })
    }
}

/// Where subnets of new networks come from when none is given: docker's
/// `default-address-pools` (172.17.0.0/16 ... 172.31.0.0/16, then 192.168.0.0/16 in
/// /20s), walked in order by the default bridge and by `network create` alike. A
/// candidate overlapping a route or an interface address on the host, or a network of
/// the store, is skipped, as docker does: podman's 10.88.0.0/16 and 10.89.N.0/24, a VPN
/// or a LAN on 192.168.x never share an address with our bridges. (Before, coracle
/// used podman's own 10.88.0.0/16, and published ports hung wherever podman0 was up.)
pub fn default_pools() -> Vec<AddressPool> {
    let pool = |a, b, len, size| AddressPool {
        base: Ipv4Net::new(Ipv4Addr::new(a, b, 0, 0), len).expect("valid"),
        size,
    };
    (17..=31u8)
        .map(|b| pool(172, b, 16, 16))
        .chain([pool(192, 168, 16, 20)])
        .collect()
}

/// Every candidate subnet of `pools`, pool by pool.
pub fn candidates(pools: &[AddressPool]) -> impl Iterator<Item = Ipv4Net> + '_ {
    pools.iter().flat_map(|p| p.subnets())
}

/// Something on the host holding IPv4 space: a route or an interface's address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostNet {
    pub net: Ipv4Net,
    /// As `ip` prints it, e.g. "route 10.88.0.0/16 dev podman0", "address
    /// 172.17.0.1/16 of docker0".
    pub what: String,
    /// A route (else an address).
    pub route: bool,
}

/// The first candidate overlapping neither `taken` (the store's networks) nor
/// anything on the host.
pub fn choose_subnet(
    candidates: impl IntoIterator<Item = Ipv4Net>,
    taken: &[Ipv4Net],
    host: &[HostNet],
) -> Option<Ipv4Net> {
    candidates
        .into_iter()
        .find(|c| !taken.iter().any(|t| overlaps(*c, *t)) && host_overlap(*c, host).is_none())
}

/// What on the host `subnet` would share addresses with, if anything.
pub fn host_overlap(subnet: Ipv4Net, host: &[HostNet]) -> Option<&HostNet> {
    host.iter().find(|h| overlaps(subnet, h.net))
}

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

/// Whether two subnets share an address.
pub fn overlaps(a: Ipv4Net, b: Ipv4Net) -> bool {
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
        assert_eq!(parse_subnet("10.88.0.0/16").unwrap(), net("10.88.0.0/16"));
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
    fn the_default_pools_are_dockers() {
        let all: Vec<Ipv4Net> = candidates(&default_pools()).collect();
        assert_eq!(all.len(), 15 + 16);
        assert_eq!(all[0], net("172.17.0.0/16"));
        assert_eq!(all[14], net("172.31.0.0/16"));
        assert_eq!(all[15], net("192.168.0.0/20"));
        assert_eq!(all[16], net("192.168.16.0/20"));
        assert_eq!(all[30], net("192.168.240.0/20"));
        assert!(!all.iter().any(|n| overlaps(*n, net("10.88.0.0/16"))));
    }

    #[test]
    fn pools_split_their_base_and_are_checked() {
        let p = AddressPool::new("10.10.0.0/16", 24).unwrap();
        let subnets: Vec<Ipv4Net> = p.subnets().collect();
        assert_eq!(subnets.len(), 256);
        assert_eq!(subnets[0], net("10.10.0.0/24"));
        assert_eq!(subnets[255], net("10.10.255.0/24"));
        let whole = AddressPool::new("0.0.0.0/0", 1).unwrap();
        assert_eq!(
            whole.subnets().collect::<Vec<_>>(),
            [net("0.0.0.0/1"), net("128.0.0.0/1")]
        );
        assert_eq!(
            AddressPool::new("10.0.0.0/16", 32)
                .unwrap()
                .subnets()
                .count(),
            1 << 16
        );
        assert_eq!(
            msg(AddressPool::new("10.10.0.0/16", 8)),
            "invalid address pool 10.10.0.0/16: size /8 must be between /16 and /32"
        );
        assert!(msg(AddressPool::new("10.10.0.0/16", 33)).contains("/33"));
        assert!(msg(AddressPool::new("10.10.0.1/16", 24)).contains("it should be"));
        let two = [p, AddressPool::new("10.20.0.0/23", 24).unwrap()];
        let all: Vec<Ipv4Net> = candidates(&two).collect();
        assert_eq!(all.len(), 258);
        assert_eq!(all[256], net("10.20.0.0/24"));
    }

    #[test]
    fn choose_subnet_skips_the_store_and_the_host() {
        let host = |n: &str, what: &str| HostNet {
            net: net(n),
            what: what.to_string(),
            route: what.starts_with("route"),
        };
        assert_eq!(
            choose_subnet(candidates(&default_pools()), &[], &[]),
            Some(net("172.17.0.0/16"))
        );
        // docker0's address, a route inside the next candidate, a store network
        // covering two more: the first free one after them.
        let on_host = [
            host("172.17.0.1/16", "address 172.17.0.1/16 of docker0"),
            host("172.18.5.0/24", "route 172.18.5.0/24 dev wg0"),
            host("10.88.0.0/16", "route 10.88.0.0/16 dev podman0"),
        ];
        let taken = [net("172.19.0.0/16"), net("172.20.0.0/16")];
        assert_eq!(
            choose_subnet(candidates(&default_pools()), &taken, &on_host),
            Some(net("172.21.0.0/16"))
        );
        assert_eq!(
            host_overlap(net("10.88.1.0/24"), &on_host).map(|h| h.what.as_str()),
            Some("route 10.88.0.0/16 dev podman0")
        );
        assert_eq!(host_overlap(net("10.89.0.0/24"), &on_host), None);
        // A wide route covering every candidate: nothing left.
        let wide = [host("172.16.0.0/12", "r"), host("192.168.0.0/16", "r")];
        assert_eq!(
            choose_subnet(candidates(&default_pools()), &[], &wide),
            None
        );
        // Given candidates are walked in their order.
        let mine = [net("10.10.0.0/24"), net("10.10.1.0/24")];
        assert_eq!(
            choose_subnet(mine, &[net("10.10.0.128/25")], &[]),
            Some(net("10.10.1.0/24"))
        );
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
