//! Host port reservations for published ports. The monitor binds each published host
//! port for the container's life, so a port someone else holds is an error at `run`
//! (as podman's reservations make it) and nobody can take it while the container runs;
//! the firewall's DNAT carries the traffic, the socket itself never receives any.
//!
//! The sockets are bound without SO_REUSEADDR and, for TCP, never listen: a bound but
//! non-listening socket accepts no connections, yet still makes every other bind of the
//! port fail (Linux lets two sockets share a port only if both set SO_REUSEADDR).

use crate::firewall::Proto;
use crate::NetError;
use rustix::io::Errno;
use rustix::net::{AddressFamily, SocketFlags, SocketType};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::OwnedFd;

/// A bound host port, held until dropped.
#[derive(Debug)]
pub struct Reservation {
    pub proto: Proto,
    /// None = every address (0.0.0.0).
    pub host_ip: Option<Ipv4Addr>,
    /// The bound port (the kernel's choice when 0 was asked for).
    pub host_port: u16,
    _socket: OwnedFd,
}

fn in_use(host_ip: Option<Ipv4Addr>, port: impl std::fmt::Display) -> NetError {
    NetError::PortInUse {
        addr: format!("{}:{port}", host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED)),
    }
}

/// Binds host_ip:port (None = 0.0.0.0; port 0 = kernel-chosen) without SO_REUSEADDR and
/// keeps it bound while the value lives; EADDRINUSE => NetError::PortInUse.
pub fn reserve(
    proto: Proto,
    host_ip: Option<Ipv4Addr>,
    port: u16,
) -> Result<Reservation, NetError> {
    let type_ = match proto {
        Proto::Tcp => SocketType::STREAM,
        Proto::Udp => SocketType::DGRAM,
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
    Ok(Reservation {
        proto,
        host_ip,
        host_port: bound.port(),
        _socket: socket,
    })
}

/// A free port in lo..=hi (the first that binds), for `-p 8000-8010:80`.
pub fn reserve_in_range(
    proto: Proto,
    host_ip: Option<Ipv4Addr>,
    lo: u16,
    hi: u16,
) -> Result<Reservation, NetError> {
    if lo == 0 || lo > hi {
        return Err(NetError::InvalidArgument(format!(
            "invalid host port range {lo}-{hi}"
        )));
    }
    for port in lo..=hi {
        match reserve(proto, host_ip, port) {
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

    fn is_in_use(r: Result<Reservation, NetError>, want: &str) {
        match r {
            Err(NetError::PortInUse { addr }) => assert_eq!(addr, want),
            other => panic!("expected PortInUse {want}, got {other:?}"),
        }
    }

    /// `n` consecutive ports nobody holds, below the ephemeral range: a port freed by a
    /// test must not be taken by some connect() or bind(0) elsewhere before the test
    /// binds it again (reserving ports out of the kernel's way is what users do too).
    fn quiet_ports(proto: Proto, n: u16) -> u16 {
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
                .map_while(|p| reserve(proto, LOCAL, p).ok())
                .collect();
            if held.len() == usize::from(n) {
                return lo;
            }
        }
        panic!("no {n} consecutive free {proto} ports");
    }

    #[test]
    fn port_zero_gets_a_kernel_port() {
        for proto in [Proto::Tcp, Proto::Udp] {
            let r = reserve(proto, LOCAL, 0).unwrap();
            assert_ne!(r.host_port, 0);
            assert_eq!((r.proto, r.host_ip), (proto, LOCAL));
            is_in_use(
                reserve(proto, LOCAL, r.host_port),
                &format!("127.0.0.1:{}", r.host_port),
            );
        }
    }

    #[test]
    fn tcp_reservation_blocks_others_until_dropped() {
        let port = quiet_ports(Proto::Tcp, 1);
        let r = reserve(Proto::Tcp, LOCAL, port).unwrap();
        assert_eq!(r.host_port, port);
        is_in_use(
            reserve(Proto::Tcp, LOCAL, port),
            &format!("127.0.0.1:{port}"),
        );
        // std's listener sets SO_REUSEADDR; ours lacks it, so it still fails.
        assert!(TcpListener::bind(("127.0.0.1", port)).is_err());
        // Bound, not listening: a connection is refused, not queued.
        assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
        drop(r);
        let again = reserve(Proto::Tcp, LOCAL, port).unwrap();
        assert_eq!(again.host_port, port);
        drop(again);
        drop(TcpListener::bind(("127.0.0.1", port)).unwrap());
    }

    #[test]
    fn wildcard_reservation_reports_0_0_0_0() {
        let r = reserve(Proto::Tcp, None, 0).unwrap();
        let port = r.host_port;
        is_in_use(reserve(Proto::Tcp, None, port), &format!("0.0.0.0:{port}"));
        is_in_use(
            reserve(Proto::Tcp, LOCAL, port),
            &format!("127.0.0.1:{port}"),
        );
        // The same number on the other protocol is a different port.
        drop(reserve(Proto::Udp, None, port).unwrap());
    }

    #[test]
    fn udp_reservation_blocks_others_until_dropped() {
        let port = quiet_ports(Proto::Udp, 1);
        let r = reserve(Proto::Udp, LOCAL, port).unwrap();
        is_in_use(
            reserve(Proto::Udp, LOCAL, port),
            &format!("127.0.0.1:{port}"),
        );
        assert!(UdpSocket::bind(("127.0.0.1", port)).is_err());
        drop(r);
        drop(UdpSocket::bind(("127.0.0.1", port)).unwrap());
        drop(reserve(Proto::Udp, LOCAL, port).unwrap());
    }

    #[test]
    fn reservation_sockets_are_cloexec() {
        let r = reserve(Proto::Tcp, LOCAL, 0).unwrap();
        let flags = rustix::io::fcntl_getfd(&r._socket).unwrap();
        assert!(flags.contains(rustix::io::FdFlags::CLOEXEC));
    }

    #[test]
    fn range_skips_taken_ports() {
        for proto in [Proto::Tcp, Proto::Udp] {
            let lo = quiet_ports(proto, 2);
            let next = lo + 1;
            let taken = reserve(proto, LOCAL, lo).unwrap();
            let r = reserve_in_range(proto, LOCAL, lo, next).unwrap();
            assert_eq!(r.host_port, next, "{proto}");
            is_in_use(
                reserve_in_range(proto, LOCAL, lo, next),
                &format!("127.0.0.1:{lo}-{next}"),
            );
            drop(taken);
            assert_eq!(
                reserve_in_range(proto, LOCAL, lo, next).unwrap().host_port,
                lo
            );
        }
        assert!(matches!(
            reserve_in_range(Proto::Tcp, None, 9000, 8000),
            Err(NetError::InvalidArgument(_))
        ));
    }

    #[test]
    fn unknown_host_address_is_invalid() {
        // TEST-NET-1 is assigned to no interface here.
        let r = reserve(Proto::Tcp, Some(Ipv4Addr::new(192, 0, 2, 1)), 0);
        assert!(matches!(r, Err(NetError::InvalidArgument(_))), "{r:?}");
    }
}
