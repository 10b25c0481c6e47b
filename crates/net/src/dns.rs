//! The embedded DNS resolver of user-defined networks (docker's 127.0.0.11), served by
//! each container's monitor from its poll loop: container names, aliases and short ids
//! of peers are answered here, everything else is relayed to the host's resolvers.
//!
//! The listening socket lives in the container's namespace, the upstream sockets in the
//! monitor's (host) namespace, so the host's resolv.conf servers, loopback ones
//! included, are reachable exactly as from the host.

use crate::NetError;
use simple_dns::rdata::{RData, A};
use simple_dns::{
    Label, Name, Packet, PacketFlag, Question, ResourceRecord, CLASS, QCLASS, QTYPE, RCODE, TYPE,
};
use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6, UdpSocket};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::path::Path;
use std::time::{Duration, Instant};

pub const DNS_ADDR: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 11);
const DNS_PORT: u16 = 53;
/// docker's TTL for container records.
const TTL: u32 = 600;
/// docker's largest UDP message; bigger datagrams are dropped, never relayed cut short.
const MAX_MESSAGE: usize = 4096;
const MAX_PENDING: usize = 256;
/// How long an upstream gets before the next one is asked.
const RETRY_AFTER: Duration = Duration::from_secs(2);
/// glibc reads at most this many `nameserver` lines (MAXNS); containers see the same.
const MAX_NAMESERVERS: usize = 3;

const HEADER_LEN: usize = 12;
const FLAG_QR: u16 = 0x8000;
const OPCODE_MASK: u16 = 0x7800;
const FLAG_RD: u16 = 0x0100;
const TYPE_A: u16 = 1;
const TYPE_ANY: u16 = 255;
const CLASS_IN: u16 = 1;
const CLASS_ANY: u16 = 255;

pub trait Names {
    /// IPv4 addresses for `name` (lowercase, no trailing dot) if it is a container on this
    /// container's networks; None: not ours (forward it).
    fn lookup(&mut self, name: &str) -> Option<Vec<Ipv4Addr>>;
}

/// A query relayed upstream and not answered yet, keyed by the id it was sent with.
struct Pending {
    client: SocketAddr,
    client_id: u16,
    /// Index in `upstreams` of the server asked last; only it may answer.
    upstream: usize,
    deadline: Instant,
    /// Arrival order, to drop the oldest when full.
    seq: u64,
    /// The query with the upstream id, kept to ask the next server.
    query: Box<[u8]>,
}

pub struct DnsServer {
    listener: UdpSocket,
    upstreams: Vec<SocketAddr>,
    out_v4: Option<UdpSocket>,
    out_v6: Option<UdpSocket>,
    pending: HashMap<u16, Pending>,
    seq: u64,
    retry_after: Duration,
    /// Reused for every datagram; one byte longer than MAX_MESSAGE to notice truncation.
    buf: Vec<u8>,
    ids: RandomState,
}

impl DnsServer {
    /// Binds 127.0.0.11:53/udp inside the netns at `netns`; `upstreams` are reached from the
    /// caller's (host) namespace; empty = never forward (internal networks).
    pub fn bind_in(netns: &Path, upstreams: Vec<SocketAddr>) -> Result<DnsServer, NetError> {
        let socket = crate::netns::run_in(netns, || {
            UdpSocket::bind(SocketAddr::from((DNS_ADDR, DNS_PORT)))
        })?
        .map_err(NetError::io("bind DNS socket 127.0.0.11:53 in", netns))?;
        DnsServer::from_socket(socket, upstreams)
    }

    pub fn from_socket(
        socket: UdpSocket,
        upstreams: Vec<SocketAddr>,
    ) -> Result<DnsServer, NetError> {
        socket
            .set_nonblocking(true)
            .map_err(NetError::sys("set DNS socket non-blocking"))?;
        let out_v4 = if upstreams.iter().any(SocketAddr::is_ipv4) {
            Some(upstream_socket((Ipv4Addr::UNSPECIFIED, 0).into())?)
        } else {
            None
        };
        // A host whose IPv6 is switched off still forwards to its IPv4 servers; its IPv6
        // ones are then skipped like unreachable servers.
        let out_v6 = if upstreams.iter().any(SocketAddr::is_ipv6) {
            upstream_socket((Ipv6Addr::UNSPECIFIED, 0).into()).ok()
        } else {
            None
        };
        Ok(DnsServer {
            listener: socket,
            upstreams,
            out_v4,
            out_v6,
            pending: HashMap::new(),
            seq: 0,
            retry_after: RETRY_AFTER,
            buf: vec![0; MAX_MESSAGE + 1],
            ids: RandomState::new(),
        })
    }

    /// Fds to poll for POLLIN.
    pub fn fds(&self) -> Vec<BorrowedFd<'_>> {
        let mut fds = vec![self.listener.as_fd()];
        fds.extend(self.out_v4.iter().chain(&self.out_v6).map(AsFd::as_fd));
        fds
    }

    /// Non-blocking: handle everything readable on `fd` (queries or upstream answers).
    pub fn handle(&mut self, fd: RawFd, names: &mut dyn Names) {
        let mut buf = std::mem::take(&mut self.buf);
        if fd == self.listener.as_raw_fd() {
            while let Some((len, from)) = recv(&self.listener, &mut buf) {
                self.on_query(&buf[..len], from, names);
            }
        } else {
            while let Some((len, from)) = self.upstream_socket(fd).and_then(|s| recv(s, &mut buf)) {
                self.on_answer(&mut buf[..len], from);
            }
        }
        self.buf = buf;
    }

    fn upstream_socket(&self, fd: RawFd) -> Option<&UdpSocket> {
        self.out_v4
            .iter()
            .chain(&self.out_v6)
            .find(|s| s.as_raw_fd() == fd)
    }

    /// When pending forwarded queries must be expired/retried (poll timeout), if any.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.pending.values().map(|p| p.deadline).min()
    }

    /// Expire/retry pending queries whose deadline passed.
    pub fn on_timeout(&mut self) {
        let now = Instant::now();
        let expired: Vec<u16> = self
            .pending
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            if let Some(mut p) = self.pending.remove(&id) {
                p.upstream += 1;
                self.send_upstream(id, p);
            }
        }
    }

    fn on_query(&mut self, msg: &[u8], client: SocketAddr, names: &mut dyn Names) {
        if msg.len() > MAX_MESSAGE {
            return;
        }
        let Some(query) = parse_query(msg) else {
            return;
        };
        if query.opcode != 0 {
            self.reply(&query, RCODE::NotImplemented, &[], client);
            return;
        }
        let ours = if query.qclass == CLASS_IN || query.qclass == CLASS_ANY {
            lookup_name(&query.labels).and_then(|name| names.lookup(&name))
        } else {
            None
        };
        match ours {
            // Only A records exist for containers; other types of a known name get an
            // empty NOERROR so that resolvers stop there instead of asking upstream.
            Some(addrs) if query.qtype == TYPE_A || query.qtype == TYPE_ANY => {
                self.reply(&query, RCODE::NoError, &addrs, client)
            }
            Some(_) => self.reply(&query, RCODE::NoError, &[], client),
            // docker answers REFUSED when it may not forward (internal networks) and
            // SERVFAIL when forwarding failed. REFUSED is the right one here: the name is
            // not ours and nobody will be asked, a final "not from me" rather than a
            // transient failure, so resolvers move on at once instead of retrying us.
            None if self.upstreams.is_empty() => self.reply(&query, RCODE::Refused, &[], client),
            None => self.forward(msg, client, query.id),
        }
    }

    fn reply(&self, query: &Query<'_>, rcode: RCODE, addrs: &[Ipv4Addr], client: SocketAddr) {
        let labels: Vec<Label<'_>> = query
            .labels
            .iter()
            .map(|l| Label::new_unchecked(*l))
            .collect();
        let name = Name::new_with_labels(&labels);
        let mut packet = Packet::new_reply(query.id);
        *packet.rcode_mut() = rcode;
        if rcode == RCODE::NoError {
            packet.set_flags(PacketFlag::AUTHORITATIVE_ANSWER);
        }
        if query.rd {
            packet.set_flags(PacketFlag::RECURSION_DESIRED | PacketFlag::RECURSION_AVAILABLE);
        }
        // The question is echoed as asked (case included: some resolvers check it).
        if let Ok(qclass) = QCLASS::try_from(query.qclass) {
            let qtype =
                QTYPE::try_from(query.qtype).unwrap_or(QTYPE::TYPE(TYPE::Unknown(query.qtype)));
            packet
                .questions
                .push(Question::new(name.clone(), qtype, qclass, false));
        }
        for addr in addrs {
            let rdata = RData::A(A::from(*addr));
            packet
                .answers
                .push(ResourceRecord::new(name.clone(), CLASS::IN, TTL, rdata));
        }
        if let Ok(bytes) = packet.build_bytes_vec_compressed() {
            // A full socket buffer loses this answer; the client asks again.
            let _ = self.listener.send_to(&bytes, client);
        }
    }

    fn forward(&mut self, msg: &[u8], client: SocketAddr, client_id: u16) {
        if self.pending.len() >= MAX_PENDING {
            if let Some(oldest) = self
                .pending
                .iter()
                .min_by_key(|(_, p)| p.seq)
                .map(|(id, _)| *id)
            {
                self.pending.remove(&oldest);
            }
        }
        // Unpredictable ids (with the kernel's random source port) keep off-path
        // spoofed answers out; unique ones tell the relayed answers apart.
        let id = loop {
            self.seq += 1;
            let id = self.ids.hash_one(self.seq) as u16;
            if !self.pending.contains_key(&id) {
                break id;
            }
        };
        let mut query: Box<[u8]> = msg.into();
        query[..2].copy_from_slice(&id.to_be_bytes());
        let pending = Pending {
            client,
            client_id,
            upstream: 0,
            deadline: Instant::now(),
            seq: self.seq,
            query,
        };
        self.send_upstream(id, pending);
    }

    /// Sends to `p.upstream` or, if it cannot be reached, to the ones after it; after the
    /// last the query is dropped and the client's resolver times out as with any server.
    fn send_upstream(&mut self, id: u16, mut p: Pending) {
        while let Some(&addr) = self.upstreams.get(p.upstream) {
            let sock = if addr.is_ipv4() {
                &self.out_v4
            } else {
                &self.out_v6
            };
            if sock
                .as_ref()
                .is_some_and(|s| s.send_to(&p.query, addr).is_ok())
            {
                p.deadline = Instant::now() + self.retry_after;
                self.pending.insert(id, p);
                return;
            }
            p.upstream += 1;
        }
    }

    fn on_answer(&mut self, msg: &mut [u8], from: SocketAddr) {
        if msg.len() < HEADER_LEN
            || msg.len() > MAX_MESSAGE
            || u16::from_be_bytes([msg[2], msg[3]]) & FLAG_QR == 0
        {
            return;
        }
        let id = u16::from_be_bytes([msg[0], msg[1]]);
        let Some(p) = self.pending.get(&id) else {
            return;
        };
        let asked = self.upstreams.get(p.upstream);
        if asked.is_none_or(|a| a.ip() != from.ip() || a.port() != from.port()) {
            return;
        }
        let Some(p) = self.pending.remove(&id) else {
            return;
        };
        msg[..2].copy_from_slice(&p.client_id.to_be_bytes());
        let _ = self.listener.send_to(msg, p.client);
    }
}

fn upstream_socket(addr: SocketAddr) -> Result<UdpSocket, NetError> {
    let sock = UdpSocket::bind(addr).map_err(NetError::sys("bind DNS upstream socket"))?;
    sock.set_nonblocking(true)
        .map_err(NetError::sys("set DNS upstream socket non-blocking"))?;
    Ok(sock)
}

/// One datagram, or None once the socket is drained (or failing: poll wakes us again).
fn recv(sock: &UdpSocket, buf: &mut [u8]) -> Option<(usize, SocketAddr)> {
    loop {
        match sock.recv_from(buf) {
            Ok(got) => return Some(got),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return None,
        }
    }
}

/// What the server decides on, read straight off the wire: simple-dns's `Packet::parse`
/// rejects queries for types it does not know and chokes on unusual additional records,
/// and such queries must still be forwarded untouched.
struct Query<'a> {
    id: u16,
    opcode: u16,
    rd: bool,
    labels: Vec<&'a [u8]>,
    qtype: u16,
    qclass: u16,
}

fn parse_query(msg: &[u8]) -> Option<Query<'_>> {
    let word = |at: usize| {
        msg.get(at..at + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
    };
    if msg.len() < HEADER_LEN {
        return None;
    }
    let flags = word(2)?;
    if flags & FLAG_QR != 0 || word(4)? != 1 {
        return None;
    }
    let mut at = HEADER_LEN;
    let mut labels = Vec::new();
    let mut name_len = 1;
    loop {
        let len = usize::from(*msg.get(at)?);
        at += 1;
        if len == 0 {
            break;
        }
        // Above 63 are compression pointers, which cannot occur in the first name.
        name_len += len + 1;
        if len > 63 || name_len > 255 {
            return None;
        }
        labels.push(msg.get(at..at + len)?);
        at += len;
    }
    Some(Query {
        id: word(0)?,
        opcode: (flags & OPCODE_MASK) >> 11,
        rd: flags & FLAG_RD != 0,
        labels,
        qtype: word(at)?,
        qclass: word(at + 2)?,
    })
}

/// The name as `Names` wants it; None for names no container can have (the root,
/// labels with dots, spaces or non-ASCII bytes), which are then never ours. On the wire
/// a name has no trailing dot, so "web." and "web" are the same here.
fn lookup_name(labels: &[&[u8]]) -> Option<String> {
    if labels.is_empty() {
        return None;
    }
    let mut name = String::new();
    for label in labels {
        if !label.iter().all(|b| b.is_ascii_graphic() && *b != b'.') {
            return None;
        }
        if !name.is_empty() {
            name.push('.');
        }
        name.push_str(&std::str::from_utf8(label).ok()?.to_ascii_lowercase());
    }
    Some(name)
}

/// Upstream servers from resolv.conf text (`nameserver` lines, IPv4 and IPv6, port 53).
pub fn upstreams_from_resolv_conf(text: &str) -> Vec<SocketAddr> {
    let mut servers = Vec::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        if words.next() != Some("nameserver") {
            continue;
        }
        let Some(addr) = words.next() else {
            continue;
        };
        let server = match addr.split_once('%') {
            Some((ip, scope)) => ip
                .parse::<Ipv6Addr>()
                .ok()
                .map(|ip| SocketAddr::V6(SocketAddrV6::new(ip, DNS_PORT, 0, scope_id(scope)))),
            None => addr
                .parse::<IpAddr>()
                .ok()
                .map(|ip| SocketAddr::new(ip, DNS_PORT)),
        };
        if let Some(server) = server.filter(|s| !servers.contains(s)) {
            servers.push(server);
        }
        if servers.len() == MAX_NAMESERVERS {
            break;
        }
    }
    servers
}

/// `fe80::1%eth0` names its interface in the namespace reading resolv.conf: the host's,
/// where the upstream sockets are.
fn scope_id(scope: &str) -> u32 {
    use rustix::net::{netdevice::name_to_index, socket, AddressFamily, SocketType};
    scope.parse().unwrap_or_else(|_| {
        // As if_nametoindex(3): SIOCGIFINDEX on a throwaway socket; 0 for no such name.
        socket(AddressFamily::UNIX, SocketType::DGRAM, None)
            .and_then(|s| name_to_index(&s, scope))
            .unwrap_or(0)
    })
}

#[cfg(test)]
mod tests;
