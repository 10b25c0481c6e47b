//! Links, addresses and routes over route netlink: the bridge of a network, and the veth
//! pair joining a container's namespace to it.
//!
//! A netlink socket talks to the namespace it was opened in, so work inside a container's
//! namespace opens its socket inside `netns::run_in`. Requests are synchronous (send,
//! then read to the kernel's ack), which keeps the monitor single-threaded.

use std::fs::{self, File};
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd;
use std::path::Path;

use ipnet::Ipv4Net;
use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL,
    NLM_F_REQUEST,
};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{
    InfoBridgePort, InfoData, InfoKind, InfoPortData, InfoPortKind, InfoVeth, LinkAttribute,
    LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

use crate::{ipam, netns, NetError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeConfig {
    pub name: String,
    pub gateway: Ipv4Addr,
    pub prefix_len: u8,
}

/// Idempotent: bridge exists, has the gateway address, is up; net.ipv4.ip_forward=1 and
/// the bridge's route_localnet=1 (127.0.0.1 -> published ports).
///
/// Other IPv4 addresses on the bridge are removed: a bridge left behind by a network
/// that had another subnet must not keep routing that subnet.
pub fn ensure_bridge(c: &BridgeConfig) -> Result<(), NetError> {
    check_name(&c.name)?;
    let wanted = Ipv4Net::new(c.gateway, c.prefix_len).map_err(|_| {
        NetError::InvalidArgument(format!("invalid prefix length {}", c.prefix_len))
    })?;
    let mut nl = Netlink::open()?;
    let index = match nl.link(&c.name)? {
        Some(link) if link_kind(&link) == Some(&InfoKind::Bridge) => link.header.index,
        Some(_) => {
            return Err(NetError::Conflict(format!(
                "link {} exists and is not a bridge",
                c.name
            )))
        }
        None => {
            check_routes_clear(wanted.trunc(), &c.name)?;
            nl.create_bridge(&c.name)?;
            nl.index(&c.name)?
        }
    };
    let mut present = false;
    for addr in nl.ipv4_addresses(Some(index))? {
        if addr == wanted {
            present = true;
        } else {
            nl.delete_address(index, addr, &c.name)?;
        }
    }
    if !present {
        nl.add_address(index, wanted, &c.name)?;
    }
    nl.set_up(index, &c.name)?;
    enable_sysctl("/proc/sys/net/ipv4/ip_forward")?;
    enable_sysctl(&format!(
        "/proc/sys/net/ipv4/conf/{}/route_localnet",
        c.name
    ))
}

/// A bridge about to be made must not share its subnet with a route already there
/// (one added since its network was made: podman0 coming up on 10.88.0.0/16): the host
/// would send the subnet's traffic, published ports included, elsewhere. Wider routes
/// (a VPN's 172.16.0.0/12, the default route) lose to the bridge's own by longest
/// prefix and are fine; so are addresses of links that are down, which route nothing.
fn check_routes_clear(subnet: Ipv4Net, bridge: &str) -> Result<(), NetError> {
    let clash = host_networks(Some(bridge))?.into_iter().find(|h| {
        h.route && h.net.prefix_len() >= subnet.prefix_len() && ipam::overlaps(h.net, subnet)
    });
    match clash {
        Some(h) => Err(NetError::Conflict(format!(
            "cannot make bridge {bridge} for {subnet}: it overlaps with the host's {}, which would take its traffic: free that subnet on the host, or use a network on another subnet",
            h.what
        ))),
        None => Ok(()),
    }
}

pub fn link_exists(name: &str) -> Result<bool, NetError> {
    check_name(name)?;
    Ok(Netlink::open()?.link(name)?.is_some())
}

/// Deletes a link in the calling thread's namespace; a missing link is Ok.
pub fn delete_link(name: &str) -> Result<(), NetError> {
    check_name(name)?;
    let msg = RouteNetlinkMessage::DelLink(link_named(name));
    match Netlink::open()?.ack(msg, 0, "delete link", name) {
        Err(e) if is_errno(&e, libc::ENODEV) => Ok(()),
        other => other,
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub bridge: String,
    pub host_if: String,
    pub container_if: String,
    pub address: Ipv4Addr,
    pub prefix_len: u8,
    /// Default route via this gateway (None: no default route, --internal networks).
    pub gateway: Option<Ipv4Addr>,
    pub mac: [u8; 6],
}

/// veth host_if <-> container_if with the container end created directly in the netns at
/// `netns`; host end enslaved to the bridge, hairpin on, up; inside: mac, address, up,
/// default route. Undoes itself on failure.
pub fn attach(netns: &Path, ep: &Endpoint) -> Result<(), NetError> {
    check_name(&ep.host_if)?;
    check_name(&ep.container_if)?;
    check_name(&ep.bridge)?;
    let address = Ipv4Net::new(ep.address, ep.prefix_len).map_err(|_| {
        NetError::InvalidArgument(format!("invalid prefix length {}", ep.prefix_len))
    })?;
    let mut nl = Netlink::open()?;
    let bridge = match nl.link(&ep.bridge)? {
        Some(link) => link.header.index,
        None => return Err(netlink_error("find bridge", &ep.bridge, libc::ENODEV)),
    };
    let ns = File::open(netns).map_err(NetError::io("open netns", netns))?;
    nl.create_veth(ep, bridge, &ns)?;
    let configured = (|| {
        let host = nl.index(&ep.host_if)?;
        nl.set_hairpin(host, &ep.host_if)?;
        nl.set_up(host, &ep.host_if)?;
        netns::run_in(netns, || configure_container(ep, address))?
    })();
    if configured.is_err() {
        // Deleting one end of a veth deletes both; the original error is what matters.
        let _ = nl.ack(
            RouteNetlinkMessage::DelLink(link_named(&ep.host_if)),
            0,
            "delete link",
            &ep.host_if,
        );
    }
    configured
}

/// Runs inside the container's namespace, with a socket opened there.
fn configure_container(ep: &Endpoint, address: Ipv4Net) -> Result<(), NetError> {
    let mut nl = Netlink::open()?;
    let index = nl.index(&ep.container_if)?;
    nl.add_address(index, address, &ep.container_if)?;
    nl.set_up(index, &ep.container_if)?;
    if let Some(gateway) = ep.gateway {
        nl.add_default_route(index, gateway, &ep.container_if)?;
    }
    Ok(())
}

/// Removes `container_if` (and so its host peer) from inside the netns; missing is Ok.
///
/// A missing namespace file is Ok too: a teardown repeated after the namespace was
/// removed has nothing left to do (the veth pair goes with its namespace).
pub fn detach_in(netns: &Path, container_if: &str) -> Result<(), NetError> {
    if !netns.exists() {
        return Ok(());
    }
    netns::run_in(netns, || delete_link(container_if))?
}

/// The IPv4 space this namespace already uses, to keep new subnets clear of it:
/// routes of every routing table (docker reads the main one; policy tables of VPNs
/// count as much) except the local table and default routes, and the networks of every
/// interface's addresses, which cover interfaces that are down (their routes are
/// gone, their addresses are not: podman0 between two podman runs). Anything on link
/// `ignore` is left out: a bridge of ours being re-made.
pub fn host_networks(ignore: Option<&str>) -> Result<Vec<ipam::HostNet>, NetError> {
    let mut nl = Netlink::open()?;
    let names = nl.link_names()?;
    let name_of = |index: u32| names.get(&index).cloned().unwrap_or(format!("if{index}"));
    let mut found = Vec::new();
    for route in nl.ipv4_routes()? {
        let dev = route.oif.map(name_of);
        if route.net.prefix_len() == 0 || (dev.is_some() && dev.as_deref() == ignore) {
            continue;
        }
        let mut what = match route.kind {
            Some(kind) => format!("route {kind} {}", route.net),
            None => format!("route {}", route.net),
        };
        if let Some(dev) = dev {
            what.push_str(&format!(" dev {dev}"));
        }
        if route.table != u32::from(RouteHeader::RT_TABLE_MAIN) {
            what.push_str(&format!(" table {}", route.table));
        }
        found.push(ipam::HostNet {
            net: route.net,
            what,
            route: true,
        });
    }
    for (index, addr) in nl.ipv4_addresses_of_links()? {
        let dev = name_of(index);
        if Some(dev.as_str()) == ignore {
            continue;
        }
        found.push(ipam::HostNet {
            net: addr.trunc(),
            what: format!("address {addr} of {dev}"),
            route: false,
        });
    }
    Ok(found)
}

struct Ipv4Route {
    net: Ipv4Net,
    oif: Option<u32>,
    table: u32,
    /// Set for routes that are not plain unicast ("blackhole", "unreachable"...).
    kind: Option<&'static str>,
}

/// Names of the links inside the netns at `path` (to pick the next ethN).
pub fn links_in(netns: &Path) -> Result<Vec<String>, NetError> {
    netns::run_in(netns, || {
        let mut nl = Netlink::open()?;
        let replies = nl.request(
            RouteNetlinkMessage::GetLink(LinkMessage::default()),
            NLM_F_DUMP,
            "list links",
            "",
        )?;
        Ok(replies
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewLink(link) => link_name(&link).map(str::to_string),
                _ => None,
            })
            .collect())
    })?
}

/// `ip link set lo up` in the calling thread's namespace (new namespaces start with it down).
/// A new network namespace at `path` with `lo` up (docker's `--network none`, and
/// every container's own namespace before its interfaces arrive).
pub fn create_netns(path: &std::path::Path) -> Result<(), NetError> {
    netns::create(path, loopback_up)
}

fn loopback_up() -> Result<(), NetError> {
    let mut nl = Netlink::open()?;
    let index = nl.index("lo")?;
    nl.set_up(index, "lo")
}

fn check_name(name: &str) -> Result<(), NetError> {
    // IFNAMSIZ is 16 with the NUL; the kernel's dev_valid_name rules.
    let valid = !name.is_empty()
        && name.len() < 16
        && name != "."
        && name != ".."
        && !name.contains(|c: char| c == '/' || c == ':' || c.is_whitespace());
    if valid {
        Ok(())
    } else {
        Err(NetError::InvalidArgument(format!(
            "invalid interface name {name:?}"
        )))
    }
}

fn enable_sysctl(path: &str) -> Result<(), NetError> {
    // Reading first avoids rewriting ip_forward, which resets every interface's
    // forwarding setting as a side effect.
    if fs::read_to_string(path)
        .map_err(NetError::io("read", path))?
        .trim()
        == "1"
    {
        return Ok(());
    }
    fs::write(path, "1").map_err(NetError::io("write", path))
}

fn netlink_error(op: &'static str, what: &str, errno: i32) -> NetError {
    NetError::Netlink {
        op,
        what: what.to_string(),
        source: io::Error::from_raw_os_error(errno),
    }
}

fn is_errno(e: &NetError, errno: i32) -> bool {
    matches!(e, NetError::Netlink { source, .. } if source.raw_os_error() == Some(errno))
}

fn link_named(name: &str) -> LinkMessage {
    let mut msg = LinkMessage::default();
    msg.attributes.push(LinkAttribute::IfName(name.to_string()));
    msg
}

fn link_name(link: &LinkMessage) -> Option<&str> {
    link.attributes.iter().find_map(|a| match a {
        LinkAttribute::IfName(name) => Some(name.as_str()),
        _ => None,
    })
}

fn link_kind(link: &LinkMessage) -> Option<&InfoKind> {
    link.attributes.iter().find_map(|a| match a {
        LinkAttribute::LinkInfo(infos) => infos.iter().find_map(|i| match i {
            LinkInfo::Kind(kind) => Some(kind),
            _ => None,
        }),
        _ => None,
    })
}

/// A locally administered unicast MAC for a bridge. Set explicitly, the bridge keeps it;
/// left to the kernel, it takes the lowest MAC of its ports and changes as containers
/// come and go, breaking the containers' ARP entries for the gateway.
fn random_mac() -> Result<[u8; 6], NetError> {
    let mut mac = [0u8; 6];
    match rustix::rand::getrandom(&mut mac, rustix::rand::GetRandomFlags::empty()) {
        Ok(n) if n == mac.len() => {}
        r => {
            return Err(NetError::Sys {
                call: "getrandom",
                source: r.map_or_else(io::Error::from, |_| io::ErrorKind::UnexpectedEof.into()),
            })
        }
    }
    mac[0] = (mac[0] & 0xfe) | 0x02;
    Ok(mac)
}

/// An address message's address with its prefix. IFA_LOCAL is the interface's own
/// address (IFA_ADDRESS is the peer's on point-to-point links).
fn address_net(a: &AddressMessage) -> Option<Ipv4Net> {
    let local = a.attributes.iter().find_map(|attr| match attr {
        AddressAttribute::Local(IpAddr::V4(ip)) => Some(*ip),
        _ => None,
    });
    let address = a.attributes.iter().find_map(|attr| match attr {
        AddressAttribute::Address(IpAddr::V4(ip)) => Some(*ip),
        _ => None,
    });
    Ipv4Net::new(local.or(address)?, a.header.prefix_len).ok()
}

/// A route netlink socket in the namespace of the thread that opened it.
struct Netlink {
    socket: Socket,
    sequence: u32,
}

impl Netlink {
    fn open() -> Result<Netlink, NetError> {
        let mut socket =
            Socket::new(NETLINK_ROUTE).map_err(NetError::sys("socket(NETLINK_ROUTE)"))?;
        socket.bind_auto().map_err(NetError::sys("bind(netlink)"))?;
        socket
            .connect(&SocketAddr::new(0, 0))
            .map_err(NetError::sys("connect(netlink)"))?;
        Ok(Netlink {
            socket,
            sequence: 0,
        })
    }

    /// Sends one request and collects the replies up to the kernel's ack (or, for a
    /// dump, its end); a kernel error becomes `NetError::Netlink` with its errno.
    fn request(
        &mut self,
        msg: RouteNetlinkMessage,
        flags: u16,
        op: &'static str,
        what: &str,
    ) -> Result<Vec<RouteNetlinkMessage>, NetError> {
        let fail = |source| NetError::Netlink {
            op,
            what: what.to_string(),
            source,
        };
        let dump = flags & NLM_F_DUMP == NLM_F_DUMP;
        self.sequence = self.sequence.wrapping_add(1);
        let mut packet = NetlinkMessage::new(NetlinkHeader::default(), NetlinkPayload::from(msg));
        packet.header.flags = NLM_F_REQUEST | flags | if dump { 0 } else { NLM_F_ACK };
        packet.header.sequence_number = self.sequence;
        packet.finalize();
        let mut buf = vec![0; packet.buffer_len()];
        packet.serialize(&mut buf);
        self.socket.send(&buf, 0).map_err(fail)?;

        let mut replies = Vec::new();
        loop {
            let (datagram, _) = self.socket.recv_from_full().map_err(fail)?;
            let mut rest = &datagram[..];
            while !rest.is_empty() {
                let reply =
                    NetlinkMessage::<RouteNetlinkMessage>::deserialize(rest).map_err(|e| {
                        fail(io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!("bad reply: {e}"),
                        ))
                    })?;
                let len = reply.header.length as usize;
                // Replies to an earlier request are skipped: only a request that failed
                // midway leaves any, and its caller already has its error.
                if reply.header.sequence_number == self.sequence {
                    match reply.payload {
                        NetlinkPayload::Error(e) => {
                            return match e.code {
                                Some(code) => Err(fail(io::Error::from_raw_os_error(-code.get()))),
                                None => Ok(replies),
                            }
                        }
                        NetlinkPayload::Done(done) if done.code != 0 => {
                            return Err(fail(io::Error::from_raw_os_error(-done.code)))
                        }
                        NetlinkPayload::Done(_) => return Ok(replies),
                        NetlinkPayload::InnerMessage(m) => replies.push(m),
                        _ => {}
                    }
                }
                // Messages in a datagram are 4-byte aligned.
                let next = (len + 3) & !3;
                if len == 0 || next >= rest.len() {
                    break;
                }
                rest = &rest[next..];
            }
        }
    }

    /// A request answered by an ack only.
    fn ack(
        &mut self,
        msg: RouteNetlinkMessage,
        flags: u16,
        op: &'static str,
        what: &str,
    ) -> Result<(), NetError> {
        self.request(msg, flags, op, what).map(drop)
    }

    fn link(&mut self, name: &str) -> Result<Option<LinkMessage>, NetError> {
        match self.request(
            RouteNetlinkMessage::GetLink(link_named(name)),
            0,
            "get link",
            name,
        ) {
            Ok(replies) => Ok(replies.into_iter().find_map(|m| match m {
                RouteNetlinkMessage::NewLink(link) => Some(link),
                _ => None,
            })),
            Err(e) if is_errno(&e, libc::ENODEV) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn index(&mut self, name: &str) -> Result<u32, NetError> {
        match self.link(name)? {
            Some(link) => Ok(link.header.index),
            None => Err(netlink_error("get link", name, libc::ENODEV)),
        }
    }

    fn create_bridge(&mut self, name: &str) -> Result<(), NetError> {
        let mut msg = link_named(name);
        msg.attributes
            .push(LinkAttribute::Address(random_mac()?.to_vec()));
        msg.attributes
            .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(
                InfoKind::Bridge,
            )]));
        let flags = NLM_F_CREATE | NLM_F_EXCL;
        match self.ack(
            RouteNetlinkMessage::NewLink(msg),
            flags,
            "create bridge",
            name,
        ) {
            // Another monitor attaching to the same network made it first.
            Err(e) if is_errno(&e, libc::EEXIST) => Ok(()),
            other => other,
        }
    }

    fn create_veth(&mut self, ep: &Endpoint, bridge: u32, netns: &File) -> Result<(), NetError> {
        let mut peer = link_named(&ep.container_if);
        peer.attributes
            .push(LinkAttribute::Address(ep.mac.to_vec()));
        peer.attributes
            .push(LinkAttribute::NetNsFd(netns.as_raw_fd()));
        let mut msg = link_named(&ep.host_if);
        msg.attributes.push(LinkAttribute::Controller(bridge));
        msg.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Veth),
            LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer))),
        ]));
        let what = format!("{} (peer {} in {})", ep.host_if, ep.container_if, ep.bridge);
        self.ack(
            RouteNetlinkMessage::NewLink(msg),
            NLM_F_CREATE | NLM_F_EXCL,
            "create veth",
            &what,
        )
    }

    /// Hairpin lets a container reach itself through the bridge, which published ports
    /// need when a container connects to its own port on the host's address.
    fn set_hairpin(&mut self, index: u32, name: &str) -> Result<(), NetError> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::PortKind(InfoPortKind::Bridge),
            LinkInfo::PortData(InfoPortData::BridgePort(vec![InfoBridgePort::HairpinMode(
                true,
            )])),
        ]));
        self.ack(RouteNetlinkMessage::NewLink(msg), 0, "set hairpin on", name)
    }

    fn set_up(&mut self, index: u32, name: &str) -> Result<(), NetError> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.header.flags = LinkFlags::Up;
        msg.header.change_mask = LinkFlags::Up;
        self.ack(RouteNetlinkMessage::SetLink(msg), 0, "set up", name)
    }

    /// Every link's index and name.
    fn link_names(&mut self) -> Result<std::collections::HashMap<u32, String>, NetError> {
        let replies = self.request(
            RouteNetlinkMessage::GetLink(LinkMessage::default()),
            NLM_F_DUMP,
            "list links",
            "",
        )?;
        Ok(replies
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewLink(link) => {
                    Some((link.header.index, link_name(&link)?.to_string()))
                }
                _ => None,
            })
            .collect())
    }

    /// IPv4 routes of every table but the local one (which only repeats the host's
    /// own and broadcast addresses).
    fn ipv4_routes(&mut self) -> Result<Vec<Ipv4Route>, NetError> {
        let mut msg = RouteMessage::default();
        msg.header.address_family = AddressFamily::Inet;
        let replies = self.request(
            RouteNetlinkMessage::GetRoute(msg),
            NLM_F_DUMP,
            "list routes",
            "",
        )?;
        let mut routes = Vec::new();
        for m in replies {
            let RouteNetlinkMessage::NewRoute(r) = m else {
                continue;
            };
            let mut table = u32::from(r.header.table);
            let (mut dst, mut oif) = (None, None);
            for attr in &r.attributes {
                match attr {
                    RouteAttribute::Table(t) => table = *t,
                    RouteAttribute::Destination(RouteAddress::Inet(ip)) => dst = Some(*ip),
                    RouteAttribute::Oif(i) => oif = Some(*i),
                    _ => {}
                }
            }
            // RT_TABLE_LOCAL
            if table == 255 {
                continue;
            }
            let kind = match r.header.kind {
                RouteType::Unicast => None,
                RouteType::BlackHole => Some("blackhole"),
                RouteType::Unreachable => Some("unreachable"),
                RouteType::Prohibit => Some("prohibit"),
                RouteType::Local => Some("local"),
                RouteType::Broadcast | RouteType::Multicast | RouteType::Anycast => continue,
                _ => Some("other"),
            };
            let dst = dst.unwrap_or(Ipv4Addr::UNSPECIFIED);
            let Ok(net) = Ipv4Net::new(dst, r.header.destination_prefix_length) else {
                continue;
            };
            routes.push(Ipv4Route {
                net: net.trunc(),
                oif,
                table,
                kind,
            });
        }
        Ok(routes)
    }

    /// Every link's IPv4 addresses, with the link's index.
    fn ipv4_addresses_of_links(&mut self) -> Result<Vec<(u32, Ipv4Net)>, NetError> {
        let mut msg = AddressMessage::default();
        msg.header.family = AddressFamily::Inet;
        let replies = self.request(
            RouteNetlinkMessage::GetAddress(msg),
            NLM_F_DUMP,
            "list addresses",
            "",
        )?;
        Ok(replies
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewAddress(a) => {
                    let net = address_net(&a)?;
                    Some((a.header.index, net))
                }
                _ => None,
            })
            .collect())
    }

    /// IPv4 addresses with their prefix, of one link or of all.
    fn ipv4_addresses(&mut self, index: Option<u32>) -> Result<Vec<Ipv4Net>, NetError> {
        let mut msg = AddressMessage::default();
        msg.header.family = AddressFamily::Inet;
        let replies = self.request(
            RouteNetlinkMessage::GetAddress(msg),
            NLM_F_DUMP,
            "list addresses",
            "",
        )?;
        Ok(replies
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewAddress(a) => Some(a),
                _ => None,
            })
            .filter(|a| index.is_none_or(|i| a.header.index == i))
            .filter_map(|a| address_net(&a))
            .collect())
    }

    fn address_message(index: u32, net: Ipv4Net) -> AddressMessage {
        let mut msg = AddressMessage::default();
        msg.header.family = AddressFamily::Inet;
        msg.header.prefix_len = net.prefix_len();
        msg.header.index = index;
        msg.attributes
            .push(AddressAttribute::Local(IpAddr::V4(net.addr())));
        msg.attributes
            .push(AddressAttribute::Address(IpAddr::V4(net.addr())));
        if net.prefix_len() < 31 {
            msg.attributes
                .push(AddressAttribute::Broadcast(net.broadcast()));
        }
        msg
    }

    fn add_address(&mut self, index: u32, net: Ipv4Net, name: &str) -> Result<(), NetError> {
        let msg = Self::address_message(index, net);
        let what = format!("{net} to {name}");
        match self.ack(
            RouteNetlinkMessage::NewAddress(msg),
            NLM_F_CREATE | NLM_F_EXCL,
            "add address",
            &what,
        ) {
            // A concurrent ensure_bridge added the same address.
            Err(e) if is_errno(&e, libc::EEXIST) => Ok(()),
            other => other,
        }
    }

    fn delete_address(&mut self, index: u32, net: Ipv4Net, name: &str) -> Result<(), NetError> {
        let msg = Self::address_message(index, net);
        let what = format!("{net} from {name}");
        match self.ack(
            RouteNetlinkMessage::DelAddress(msg),
            0,
            "delete address",
            &what,
        ) {
            Err(e) if is_errno(&e, libc::EADDRNOTAVAIL) => Ok(()),
            other => other,
        }
    }

    fn add_default_route(
        &mut self,
        index: u32,
        gateway: Ipv4Addr,
        name: &str,
    ) -> Result<(), NetError> {
        let mut msg = RouteMessage::default();
        msg.header.address_family = AddressFamily::Inet;
        msg.header.table = RouteHeader::RT_TABLE_MAIN;
        msg.header.protocol = RouteProtocol::Boot;
        msg.header.scope = RouteScope::Universe;
        msg.header.kind = RouteType::Unicast;
        msg.attributes
            .push(RouteAttribute::Gateway(RouteAddress::Inet(gateway)));
        msg.attributes.push(RouteAttribute::Oif(index));
        let what = format!("default via {gateway} dev {name}");
        self.ack(
            RouteNetlinkMessage::NewRoute(msg),
            NLM_F_CREATE | NLM_F_EXCL,
            "add route",
            &what,
        )
    }
}

#[cfg(test)]
mod tests;
