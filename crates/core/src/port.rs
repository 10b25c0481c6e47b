//! A published port, one type from `-p` to the firewall: the flag parser makes it, the
//! container's stored network config keeps it, a start binds it to one host port, the
//! database records the bound one and the firewall forwards it.

use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;

/// A port's transport protocol, spelled as docker (`80/tcp`), nftables and the database
/// spell it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    #[default]
    Tcp,
    Udp,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

impl std::fmt::Display for Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Not `tcp` or `udp`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown protocol {0:?}: expected tcp or udp")]
pub struct ProtocolError(pub String);

impl std::str::FromStr for Protocol {
    type Err = ProtocolError;
    fn from_str(s: &str) -> Result<Protocol, ProtocolError> {
        match s {
            "tcp" => Ok(Protocol::Tcp),
            "udp" => Ok(Protocol::Udp),
            _ => Err(ProtocolError(s.to_string())),
        }
    }
}

/// Traffic to the host's `host_ip` on a port of `host_ports` goes to the container's
/// `container_port`. As `-p` asks for it, `host_ports` is a range to take one free port
/// from (None: any free port); once bound at start it is that one port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PortMapping {
    /// None: every IPv4 address of the host (0.0.0.0).
    pub host_ip: Option<Ipv4Addr>,
    /// Inclusive; a single port is (p, p).
    pub host_ports: Option<(u16, u16)>,
    pub container_port: u16,
    pub proto: Protocol,
}

impl PortMapping {
    /// This mapping bound to `host_port`.
    pub fn bound(self, host_port: u16) -> PortMapping {
        PortMapping {
            host_ports: Some((host_port, host_port)),
            ..self
        }
    }

    /// The host port, once the mapping names exactly one (bound, or `-p 8080:80`).
    pub fn host_port(&self) -> Option<u16> {
        match self.host_ports {
            Some((lo, hi)) if lo == hi => Some(lo),
            _ => None,
        }
    }

    /// The address the host listens on: 0.0.0.0 for every address.
    pub fn host_addr(&self) -> Ipv4Addr {
        self.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED)
    }

    /// docker's order for listings (`port`, `ps`, inspect): container port, protocol,
    /// then the host side.
    pub fn listing_key(&self) -> (u16, Protocol, Ipv4Addr, Option<(u16, u16)>) {
        (
            self.container_port,
            self.proto,
            self.host_addr(),
            self.host_ports,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_round_trips_through_its_name() {
        for p in [Protocol::Tcp, Protocol::Udp] {
            assert_eq!(p.as_str().parse::<Protocol>(), Ok(p));
        }
        assert!("sctp".parse::<Protocol>().is_err());
    }

    #[test]
    fn a_bound_mapping_names_one_host_port() {
        let m = PortMapping {
            host_ip: None,
            host_ports: Some((8000, 8010)),
            container_port: 80,
            proto: Protocol::Tcp,
        };
        assert_eq!(m.host_port(), None);
        assert_eq!(m.bound(8003).host_port(), Some(8003));
        assert_eq!(m.host_addr(), Ipv4Addr::UNSPECIFIED);
    }

    #[test]
    fn stored_shape_is_the_one_container_json_always_had() {
        let m = PortMapping {
            host_ip: Some(Ipv4Addr::LOCALHOST),
            host_ports: Some((8080, 8080)),
            container_port: 80,
            proto: Protocol::Udp,
        };
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(
            json,
            r#"{"host_ip":"127.0.0.1","host_ports":[8080,8080],"container_port":80,"proto":"udp"}"#
        );
    }
}
