//! Unit tests of the embedded DNS server, all on loopback sockets.

use super::*;

struct FakeNames {
    names: HashMap<String, Vec<Ipv4Addr>>,
    asked: Vec<String>,
}

impl Names for FakeNames {
    fn lookup(&mut self, name: &str) -> Option<Vec<Ipv4Addr>> {
        self.asked.push(name.to_string());
        self.names.get(name).cloned()
    }
}

fn names() -> FakeNames {
    let web = vec![Ipv4Addr::new(10, 89, 0, 2), Ipv4Addr::new(10, 89, 1, 2)];
    let names = HashMap::from([("web".to_string(), web)]);
    FakeNames {
        names,
        asked: Vec::new(),
    }
}

fn socket() -> UdpSocket {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_nonblocking(true).unwrap();
    sock
}

fn server(upstreams: &[&UdpSocket]) -> DnsServer {
    let upstreams = upstreams.iter().map(|s| s.local_addr().unwrap()).collect();
    DnsServer::from_socket(UdpSocket::bind("127.0.0.1:0").unwrap(), upstreams).unwrap()
}

fn query(id: u16, name: &str, qtype: TYPE) -> Vec<u8> {
    let mut packet = Packet::new_query(id);
    packet.set_flags(PacketFlag::RECURSION_DESIRED);
    let question = Question::new(
        Name::new(name).unwrap(),
        qtype.into(),
        CLASS::IN.into(),
        false,
    );
    packet.questions.push(question);
    packet.build_bytes_vec().unwrap()
}

fn ask(server: &DnsServer, client: &UdpSocket, msg: &[u8]) {
    client
        .send_to(msg, server.listener.local_addr().unwrap())
        .unwrap();
}

/// One turn of the monitor's loop: poll the server's fds, handle what is readable,
/// run the timeouts that are due.
fn pump(server: &mut DnsServer, names: &mut FakeNames) {
    use rustix::event::{poll, PollFd, PollFlags, Timespec};
    let mut fds: Vec<PollFd<'_>> = server
        .fds()
        .into_iter()
        .map(|fd| PollFd::from_borrowed_fd(fd, PollFlags::IN))
        .collect();
    let ten_ms = Timespec {
        tv_sec: 0,
        tv_nsec: 10_000_000,
    };
    poll(&mut fds, Some(&ten_ms)).expect("poll");
    // By number: `fds` borrows the server that handles them.
    let ready: Vec<RawFd> = fds
        .iter()
        .filter(|p| p.revents().contains(PollFlags::IN))
        .map(|p| p.as_fd().as_raw_fd())
        .collect();
    drop(fds);
    for fd in ready {
        server.handle(fd, names);
    }
    if server.next_deadline().is_some_and(|d| d <= Instant::now()) {
        server.on_timeout();
    }
}

/// Runs the server until `sock` receives a datagram, for at most `within`.
fn pump_until(
    server: &mut DnsServer,
    names: &mut FakeNames,
    sock: &UdpSocket,
    within: Duration,
) -> Option<(Vec<u8>, SocketAddr)> {
    let end = Instant::now() + within;
    let mut buf = [0u8; MAX_MESSAGE];
    loop {
        if let Ok((len, from)) = sock.recv_from(&mut buf) {
            return Some((buf[..len].to_vec(), from));
        }
        if Instant::now() >= end {
            return None;
        }
        pump(server, names);
    }
}

const WAIT: Duration = Duration::from_secs(3);
const QUIET: Duration = Duration::from_millis(300);

fn addresses(packet: &Packet<'_>) -> Vec<Ipv4Addr> {
    let addr = |rr: &ResourceRecord<'_>| match &rr.rdata {
        RData::A(a) => Ipv4Addr::from(a.address),
        other => panic!("not an A record: {other:?}"),
    };
    packet.answers.iter().map(addr).collect()
}

/// An upstream's answer to a forwarded query: same id and question, one A record.
fn upstream_answer(forwarded: &[u8], addr: Ipv4Addr) -> Vec<u8> {
    let asked = Packet::parse(forwarded).unwrap();
    let mut answer = Packet::new_reply(asked.id());
    answer.set_flags(PacketFlag::RECURSION_DESIRED | PacketFlag::RECURSION_AVAILABLE);
    answer.questions = asked.questions.clone();
    let name = asked.questions[0].qname.clone();
    answer.answers.push(ResourceRecord::new(
        name,
        CLASS::IN,
        42,
        RData::A(addr.into()),
    ));
    answer.build_bytes_vec().unwrap()
}

#[test]
fn known_name_gets_its_a_records() {
    let (mut server, mut names, client) = (server(&[]), names(), socket());
    ask(&server, &client, &query(0x1234, "web", TYPE::A));
    let (reply, _) = pump_until(&mut server, &mut names, &client, WAIT).expect("no answer");
    let reply = Packet::parse(&reply).unwrap();
    assert_eq!(reply.id(), 0x1234);
    assert_eq!(reply.rcode(), RCODE::NoError);
    assert!(reply.has_flags(PacketFlag::RESPONSE | PacketFlag::AUTHORITATIVE_ANSWER));
    assert!(reply.has_flags(PacketFlag::RECURSION_DESIRED | PacketFlag::RECURSION_AVAILABLE));
    assert_eq!(reply.questions.len(), 1);
    assert_eq!(reply.questions[0].qname.to_string(), "web");
    assert_eq!(addresses(&reply), names.names["web"]);
    assert!(reply
        .answers
        .iter()
        .all(|rr| rr.ttl == TTL && rr.name.to_string() == "web"));
}

#[test]
fn other_types_of_a_known_name_get_an_empty_noerror() {
    let (mut server, mut names, client) = (server(&[]), names(), socket());
    for qtype in [TYPE::AAAA, TYPE::MX] {
        ask(&server, &client, &query(7, "web", qtype));
        let (reply, _) = pump_until(&mut server, &mut names, &client, WAIT).expect("no answer");
        let reply = Packet::parse(&reply).unwrap();
        assert_eq!((reply.id(), reply.rcode()), (7, RCODE::NoError));
        assert!(reply.answers.is_empty());
        assert_eq!(reply.questions[0].qtype, qtype.into());
    }
}

#[test]
fn mixed_case_and_trailing_dot_resolve() {
    let (mut server, mut names, client) = (server(&[]), names(), socket());
    ask(&server, &client, &query(9, "WeB.", TYPE::A));
    let (reply, _) = pump_until(&mut server, &mut names, &client, WAIT).expect("no answer");
    let reply = Packet::parse(&reply).unwrap();
    assert_eq!(addresses(&reply), names.names["web"]);
    // The question comes back as asked; the lookup saw the canonical name.
    assert_eq!(reply.questions[0].qname.to_string(), "WeB");
    assert_eq!(names.asked, ["web"]);
}

#[test]
fn unknown_names_are_forwarded_and_the_answer_relayed() {
    let upstream = socket();
    let (mut server, mut names, client) = (server(&[&upstream]), names(), socket());
    let asked = query(0xbeef, "example.com", TYPE::A);
    ask(&server, &client, &asked);
    let (forwarded, from) =
        pump_until(&mut server, &mut names, &upstream, WAIT).expect("not forwarded");
    // Relayed as is but for the id.
    assert_eq!(forwarded.len(), asked.len());
    assert_eq!(forwarded[2..], asked[2..]);
    let upstream_id = u16::from_be_bytes([forwarded[0], forwarded[1]]);
    assert_eq!(server.pending.len(), 1);
    assert!(server.next_deadline().is_some());

    let answer = upstream_answer(&forwarded, Ipv4Addr::new(192, 0, 2, 7));
    // A stranger knowing the id, and the upstream with an id never sent: ignored.
    socket().send_to(&answer, from).unwrap();
    let mut unknown = answer.clone();
    unknown[..2].copy_from_slice(&upstream_id.wrapping_add(1).to_be_bytes());
    upstream.send_to(&unknown, from).unwrap();
    assert!(pump_until(&mut server, &mut names, &client, QUIET).is_none());

    upstream.send_to(&answer, from).unwrap();
    let (reply, _) = pump_until(&mut server, &mut names, &client, WAIT).expect("not relayed");
    assert_eq!(u16::from_be_bytes([reply[0], reply[1]]), 0xbeef);
    assert_eq!(reply[2..], answer[2..]);
    assert_eq!(
        addresses(&Packet::parse(&reply).unwrap()),
        [Ipv4Addr::new(192, 0, 2, 7)]
    );
    assert!(server.pending.is_empty() && server.next_deadline().is_none());
    // Answered once: a repeated answer goes nowhere.
    upstream.send_to(&answer, from).unwrap();
    assert!(pump_until(&mut server, &mut names, &client, QUIET).is_none());
    assert_eq!(names.asked, ["example.com"]);
}

#[test]
fn a_silent_upstream_is_followed_by_the_next() {
    let (silent, second) = (socket(), socket());
    let (mut server, mut names, client) = (server(&[&silent, &second]), names(), socket());
    server.retry_after = Duration::from_millis(100);
    ask(&server, &client, &query(5, "example.org", TYPE::A));
    let (first_try, _) =
        pump_until(&mut server, &mut names, &silent, WAIT).expect("first not asked");
    let (retry, from) =
        pump_until(&mut server, &mut names, &second, WAIT).expect("second not asked");
    assert_eq!(first_try, retry);
    // Give the second server time for the checks below.
    server
        .pending
        .values_mut()
        .for_each(|p| p.deadline = Instant::now() + WAIT);
    // The first server answering late is no longer the one asked.
    let answer = upstream_answer(&retry, Ipv4Addr::new(192, 0, 2, 9));
    silent.send_to(&answer, from).unwrap();
    assert!(pump_until(&mut server, &mut names, &client, QUIET).is_none());
    second.send_to(&answer, from).unwrap();
    let (reply, _) = pump_until(&mut server, &mut names, &client, WAIT).expect("not relayed");
    let reply = Packet::parse(&reply).unwrap();
    assert_eq!(
        (reply.id(), addresses(&reply)),
        (5, vec![Ipv4Addr::new(192, 0, 2, 9)])
    );
}

#[test]
fn a_query_is_dropped_after_the_last_upstream() {
    let (silent, quiet) = (socket(), socket());
    let (mut server, mut names, client) = (server(&[&silent, &quiet]), names(), socket());
    server.retry_after = Duration::from_millis(50);
    ask(&server, &client, &query(5, "example.org", TYPE::A));
    assert!(pump_until(&mut server, &mut names, &quiet, WAIT).is_some());
    assert!(pump_until(&mut server, &mut names, &client, QUIET).is_none());
    assert!(server.pending.is_empty() && server.next_deadline().is_none());
}

#[test]
fn pending_queries_are_capped_dropping_the_oldest() {
    let silent = socket();
    let (mut server, mut names, client) = (server(&[&silent]), names(), socket());
    let total = MAX_PENDING as u16 + 10;
    for id in 0..total {
        ask(&server, &client, &query(id, "example.net", TYPE::A));
        // Drain as we go so no datagram is lost in a full socket buffer.
        pump(&mut server, &mut names);
    }
    for _ in 0..20 {
        pump(&mut server, &mut names);
    }
    assert_eq!(server.pending.len(), MAX_PENDING);
    let mut kept: Vec<u16> = server.pending.values().map(|p| p.client_id).collect();
    kept.sort();
    assert_eq!(kept, (10..total).collect::<Vec<_>>());
}

#[test]
fn internal_networks_refuse_unknown_names() {
    let (mut server, mut names, client) = (server(&[]), names(), socket());
    assert_eq!(server.fds().len(), 1);
    ask(&server, &client, &query(3, "example.com", TYPE::A));
    let (reply, _) = pump_until(&mut server, &mut names, &client, WAIT).expect("no answer");
    let reply = Packet::parse(&reply).unwrap();
    assert_eq!((reply.id(), reply.rcode()), (3, RCODE::Refused));
    assert!(reply.answers.is_empty() && server.pending.is_empty());
}

#[test]
fn garbage_gets_no_answer_and_breaks_nothing() {
    let upstream = socket();
    let (mut server, mut names, client) = (server(&[&upstream]), names(), socket());
    let mut answer_to_us = query(1, "web", TYPE::A);
    answer_to_us[2] |= 0x80;
    let mut two_questions = query(1, "web", TYPE::A);
    two_questions[5] = 2;
    let mut pointer = query(1, "web", TYPE::A);
    pointer[12] = 0xc0;
    let full = query(1, "example.com", TYPE::A);
    let garbage: Vec<Vec<u8>> = vec![
        vec![],
        vec![0xff; 3],
        vec![0xff; 600],
        (0..=255u8).cycle().take(4000).collect(),
        answer_to_us,
        two_questions,
        pointer,
        full[..full.len() - 3].to_vec(),
        full[..13].to_vec(),
    ];
    for msg in &garbage {
        if !msg.is_empty() {
            ask(&server, &client, msg);
        }
    }
    assert!(pump_until(&mut server, &mut names, &client, QUIET).is_none());
    assert!(server.pending.is_empty());
    // Garbage from the upstream is dropped as well.
    let upstream_side = server.out_v4.as_ref().unwrap().local_addr().unwrap();
    for msg in &garbage[1..4] {
        upstream.send_to(msg, upstream_side).unwrap();
    }
    pump_until(&mut server, &mut names, &client, QUIET);
    ask(&server, &client, &query(2, "web", TYPE::A));
    let (reply, _) = pump_until(&mut server, &mut names, &client, WAIT).expect("no answer");
    assert_eq!(Packet::parse(&reply).unwrap().id(), 2);
}

#[test]
fn unknown_query_types_are_forwarded_untouched() {
    let upstream = socket();
    let (mut server, mut names, client) = (server(&[&upstream]), names(), socket());
    let mut asked = query(4, "example.com", TYPE::A);
    let at = asked.len() - 4;
    asked[at..at + 2].copy_from_slice(&999u16.to_be_bytes());
    ask(&server, &client, &asked);
    let (forwarded, _) =
        pump_until(&mut server, &mut names, &upstream, WAIT).expect("not forwarded");
    assert_eq!(forwarded[2..], asked[2..]);
}

#[test]
fn resolv_conf_nameservers() {
    let text = "# generated\nsearch example.com\nnameserver 192.0.2.1\n nameserver\t2001:db8::53 # v6\n\
        nameserver 192.0.2.1\nnameserver bogus\nnameserver fe80::1%7\noptions ndots:2\nnameserver 192.0.2.4\n";
    let want: Vec<SocketAddr> = vec![
        "192.0.2.1:53".parse().unwrap(),
        "[2001:db8::53]:53".parse().unwrap(),
        SocketAddr::V6(SocketAddrV6::new("fe80::1".parse().unwrap(), 53, 0, 7)),
    ];
    assert_eq!(upstreams_from_resolv_conf(text), want);
    assert!(upstreams_from_resolv_conf("domain x\n").is_empty());
}

#[test]
fn resolv_conf_scopes_name_an_interface() {
    // lo is interface 1 in every network namespace.
    let lo = SocketAddr::V6(SocketAddrV6::new("fe80::1".parse().unwrap(), 53, 0, 1));
    assert_eq!(upstreams_from_resolv_conf("nameserver fe80::1%lo\n"), [lo]);
    // No such interface: no scope, as if_nametoindex(3) answers 0.
    let none = SocketAddr::V6(SocketAddrV6::new("fe80::1".parse().unwrap(), 53, 0, 0));
    let text = "nameserver fe80::1%no-such-if0\n";
    assert_eq!(upstreams_from_resolv_conf(text), [none]);
}
