//! Host port reservations for published ports. The monitor binds each published host
//! port for the container's life, so a port someone else holds is an error at `run`
//! (as podman's reservations make it) and nobody can take it while the container runs;
//! the firewall's DNAT carries the traffic, the socket itself never receives any.
//!
//! The sockets are bound without SO_REUSEADDR and, for TCP, never listen: a bound but
//! non-listening socket accepts no connections, yet still makes every other bind of the
//! port fail (Linux lets two sockets share a port only if both set SO_REUSEADDR).

use crate::NetError;
use coracle_core::{PortMapping, Protocol};
use rustix::io::Errno;
use rustix::net::{AddressFamily, SocketFlags, SocketType};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::OwnedFd;

/// A bound host port, held until dropped.
#[derive(Debug)]
pub struct Reservation {
    /// The mapping asked for, bound to the port taken (the kernel's choice when any
    /// port would do).
    pub mapping: PortMapping,
    _socket: OwnedFd,
}

impl Reservation {
    pub fn host_port(&self) -> u16 {
        self.mapping.host_port().unwrap_or(0)
    }
}

/// Takes the host port `request` asks for: its one port, the first free one of its
/// range (`-p 8000-8010:80`), or any free port the kernel picks.
pub fn reserve(request: &PortMapping) -> Result<Reservation, NetError> {
    let (proto, host_ip) = (request.proto, request.host_ip);
    let bound = match request.host_ports {
        None => bind_port(proto, host_ip, 0)?,
        Some((lo, hi)) if lo == hi => bind_port(proto, host_ip, lo)?,
        Some((lo, hi)) => bind_in_range(proto, host_ip, lo, hi)?,
    };
    Ok(Reservation {
        mapping: request.bound(bound.1),
        _socket: bound.0,
    })
}

fn in_use(host_ip: Option<Ipv4Addr>, port: impl std::fmt::Display) -> NetError {
    NetError::PortInUse {
        addr: format!("{}:{port}", host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED)),
    }
}

/// Binds host_ip:port (None = 0.0.0.0; port 0 = kernel-chosen) without SO_REUSEADDR:
/// the socket and the port bound; EADDRINUSE => NetError::PortInUse.
fn bind_port(
    proto: Protocol,
    host_ip: Option<Ipv4Addr>,
    port: u16,
) -> Result<(OwnedFd, u16), NetError> {
    let type_ = match proto {
        Protocol::Tcp => SocketType::STREAM,
        Protocol::Udp => SocketType::DGRAM,
    };
    // CLOEXEC: the container (and any helper the monitor runs) must not inherit it.
    let socket = rustix::net::socket_with(AddressFamily::INET, type_, SocketFlags::CLOEXEC, None)
        .map_err(|e| NetError::Sys {
        call: "socket",
        source: e.into(),
    })?;
    let addr = SocketAddrV4::new(host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED), port);
    match rustix::net::bind(&socket, &addr) {
        Ok(()) => {}
        Err(Errno::ADDRINUSE) => return Err(in_use(host_ip, port)),
        Err(Errno::ADDRNOTAVAIL) => {
            return Err(NetError::InvalidArgument(format!(
                "cannot publish on {addr}: the host has no such address"
            )))
        }
        Err(e) => {
            return Err(NetError::Sys {
                call: "bind",
                source: e.into(),
            })
        }
    }
    let bound = rustix::net::getsockname(&socket).map_err(|e| NetError::Sys {
        call: "getsockname",
        source: e.into(),
    })?;
    let bound = SocketAddrV4::try_from(bound).map_err(|e| NetError::Sys {
        call: "getsockname",
        source: e.into(),
    })?;
    Ok((socket, bound.port()))
}

/// A free port in lo..=hi (the first that binds).
fn bind_in_range(
    proto: Protocol,
    host_ip: Option<Ipv4Addr>,
    lo: u16,
    hi: u16,
) -> Result<(OwnedFd, u16), NetError> {
    if lo == 0 || lo > hi {
        return Err(NetError::InvalidArgument(format!(
            "invalid host port range {lo}-{hi}"
        )));
    }
    for port in lo..=hi {
        match bind_port(proto, host_ip, port) {
            Err(NetError::PortInUse { .. }) => continue,
            other => return other,
        }
    }
    Err(in_use(host_ip, format_args!("{lo}-{hi}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{TcpListener, UdpSocket};

    const LOCAL: Option<Ipv4Addr> = Some(Ipv4Addr::LOCALHOST);

    /// `-p [host_ip:]port:1/proto` (port 0: any free port).
    fn reserve_port(
        proto: Protocol,
        host_ip: Option<Ipv4Addr>,
        port: u16,
    ) -> Result<Reservation, NetError> {
        reserve(&PortMapping {
            host_ip,
            host_ports: (port != 0).then_some((port, port)),
            container_port: 1,
            proto,
        })
    }

    /// `-p [host_ip:]lo-hi:1/proto`.
    fn reserve_in_range(
        proto: Protocol,
        host_ip: Option<Ipv4Addr>,
        lo: u16,
        hi: u16,
    ) -> Result<Reservation, NetError> {
        reserve(&PortMapping {
            host_ip,
            host_ports: Some((lo, hi)),
            container_port: 1,
            proto,
        })
    }

    fn is_in_use(r: Result<Reservation, NetError>, want: &str) {
        match r {
            Err(NetError::PortInUse { addr }) => assert_eq!(addr, want),
            other => panic!("expected PortInUse {want}, got {other:?}"),
        }
    }

    /// `n` consecutive ports nobody holds, below the ephemeral range: a port freed by a
    /// test must not be taken by some connect() or bind(0) elsewhere before the test
    /// binds it again (reserving ports out of the kernel's way is what users do too).
    fn quiet_ports(proto: Protocol, n: u16) -> u16 {
        use std::sync::atomic::{AtomicU16, Ordering};
        static NEXT: AtomicU16 = AtomicU16::new(0);
        let ephemeral: u16 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse().ok())
            .unwrap_or(32768);
        let (base, span) = (ephemeral / 2, ephemeral / 2 - n);
        let seed = (std::process::id() % u32::from(span)) as u16;
        for _ in 0..1000 {
            let step = NEXT.fetch_add(n, Ordering::Relaxed);
            let lo = base + (seed + step) % span;
            let held: Vec<_> = (lo..lo + n)
                .map_while(|p| reserve_port(proto, LOCAL, p).ok())
                .collect();
            if held.len() == usize::from(n) {
                return lo;
            }
        }
        panic!("no {n} consecutive free {proto} ports");
    }

    #[test]
    fn port_zero_gets_a_kernel_port() {
        for proto in [Protocol::Tcp, Protocol::Udp] {
            let r = reserve_port(proto, LOCAL, 0).unwrap();
            assert_ne!(r.host_port(), 0);
            assert_eq!((r.mapping.proto, r.mapping.host_ip), (proto, LOCAL));
            is_in_use(
                reserve_port(proto, LOCAL, r.host_port()),
                &format!("127.0.0.1:{}", r.host_port()),
            );
        }
    }

    #[test]
    fn tcp_reservation_blocks_others_until_dropped() {
        let port = quiet_ports(Protocol::Tcp, 1);
        let r = reserve_port(Protocol::Tcp, LOCAL, port).unwrap();
        assert_eq!(r.host_port(), port);
        is_in_use(
            reserve_port(Protocol::Tcp, LOCAL, port),
            &format!("127.0.0.1:{port}"),
        );
        // std's listener sets SO_REUSEADDR; ours lacks it, so it still fails.
        assert!(TcpListener::bind(("127.0.0.1", port)).is_err());
        // Bound, not listening: a connection is refused, not queued.
        assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
        drop(r);
        let again = reserve_port(Protocol::Tcp, LOCAL, port).unwrap();
        assert_eq!(again.host_port(), port);
        drop(again);
        drop(TcpListener::bind(("127.0.0.1", port)).unwrap());
    }

    #[test]
    fn wildcard_reservation_reports_0_0_0_0() {
        let r = reserve_port(Protocol::Tcp, None, 0).unwrap();
        let port = r.host_port();
        is_in_use(
            reserve_port(Protocol::Tcp, None, port),
            &format!("0.0.0.0:{port}"),
        );
        is_in_use(
            reserve_port(Protocol::Tcp, LOCAL, port),
            &format!("127.0.0.1:{port}"),
        );
        // The same number on the other protocol is a different port.
        drop(reserve_port(Protocol::Udp, None, port).unwrap());
    }

    #[test]
    fn udp_reservation_blocks_others_until_dropped() {
        let port = quiet_ports(Protocol::Udp, 1);
        let r = reserve_port(Protocol::Udp, LOCAL, port).unwrap();
        is_in_use(
            reserve_port(Protocol::Udp, LOCAL, port),
            &format!("127.0.0.1:{port}"),
        );
        assert!(UdpSocket::bind(("127.0.0.1", port)).is_err());
        drop(r);
        drop(UdpSocket::bind(("127.0.0.1", port)).unwrap());
        drop(reserve_port(Protocol::Udp, LOCAL, port).unwrap());
    }

    #[test]
    fn reservation_sockets_are_cloexec() {
        let r = reserve_port(Protocol::Tcp, LOCAL, 0).unwrap();
        let flags = rustix::io::fcntl_getfd(&r._socket).unwrap();
        assert!(flags.contains(rustix::io::FdFlags::CLOEXEC));
    }

    #[test]
    fn range_skips_taken_ports() {
        for proto in [Protocol::Tcp, Protocol::Udp] {
            let lo = quiet_ports(proto, 2);
            let next = lo + 1;
            let taken = reserve_port(proto, LOCAL, lo).unwrap();
            let r = reserve_in_range(proto, LOCAL, lo, next).unwrap();
            assert_eq!(r.host_port(), next, "{proto}");
            is_in_use(
                reserve_in_range(proto, LOCAL, lo, next),
                &format!("127.0.0.1:{lo}-{next}"),
            );
            drop(taken);
            assert_eq!(
                reserve_in_range(proto, LOCAL, lo, next)
                    .unwrap()
                    .host_port(),
                lo
            );
        }
        assert!(matches!(
            reserve_in_range(Protocol::Tcp, None, 9000, 8000),
            Err(NetError::InvalidArgument(_))
        ));
    }

    #[test]
    fn unknown_host_address_is_invalid() {
        // TEST-NET-1 is assigned to no interface here.
        let r = reserve_port(Protocol::Tcp, Some(Ipv4Addr::new(192, 0, 2, 1)), 0);
        assert!(matches!(r, Err(NetError::InvalidArgument(_))), "{r:?}");
    }
}
