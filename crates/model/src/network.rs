//! Network flags of `run`/`create`: `-p`, `--expose`, `--add-host`, `--mac-address`,
//! `--dns*`, `--ip`. docker's grammar and docker's error words (docker/go-connections
//! `nat.ParsePortSpec`, docker/cli `opts`), checked against docker 28's client.

use std::net::{IpAddr, Ipv4Addr};

use coracle_core::{PortMapping, Protocol};
use serde::{Deserialize, Serialize};

use super::{bad, OptionsError};

/// A port the container listens on (`--expose`, the image's ExposedPorts, `-p`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ExposedPort {
    pub port: u16,
    pub proto: Protocol,
}

/// The address an `--add-host` name maps to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum HostAddr {
    Ip(IpAddr),
    /// `host-gateway`: the host's address as seen from the container.
    HostGateway,
}

/// `--add-host name:ip`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtraHost {
    pub name: String,
    pub addr: HostAddr,
}

/// Go's `strconv.ParseUint(s, 10, 16)` with its error text, which docker prints.
fn parse_u16_go(s: &str) -> Result<u16, String> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("strconv.ParseUint: parsing {s:?}: invalid syntax"));
    }
    s.parse::<u16>()
        .map_err(|_| format!("strconv.ParseUint: parsing {s:?}: value out of range"))
}

/// go-connections `nat.ParsePortRange`: `p` or `lo-hi` (hi >= lo).
fn parse_port_range(s: &str) -> Result<(u16, u16), String> {
    if s.is_empty() {
        return Err("empty string specified for ports".into());
    }
    let Some((lo, hi)) = s.split_once('-') else {
        let p = parse_u16_go(s)?;
        return Ok((p, p));
    };
    let lo = parse_u16_go(lo)?;
    let hi = parse_u16_go(hi)?;
    if hi < lo {
        return Err(format!("invalid range specified for port: {s}"));
    }
    Ok((lo, hi))
}

/// go-connections `nat.SplitProtoPort`: ("tcp", "80") for "80", "80/", "80/tcp".
fn split_proto_port(raw: &str) -> (&str, &str) {
    let mut parts = raw.splitn(3, '/');
    let port = parts.next().unwrap_or("");
    if port.is_empty() {
        return ("", "");
    }
    match parts.next() {
        None | Some("") => ("tcp", port),
        Some(proto) => (proto, port),
    }
}

fn parse_proto(proto: &str) -> Result<Protocol, OptionsError> {
    match proto.to_ascii_lowercase().as_str() {
        "tcp" => Ok(Protocol::Tcp),
        "udp" => Ok(Protocol::Udp),
        "sctp" => Err(OptionsError::Invalid("sctp is not supported".into())),
        _ => Err(OptionsError::Invalid(format!("invalid proto: {proto}"))),
    }
}

/// docker's long `--publish target=80,published=8080,protocol=udp` form, turned into
/// the short one as docker/cli's `convertToStandardNotation` does.
fn long_publish_syntax(s: &str) -> Result<String, OptionsError> {
    let (mut target, mut published, mut protocol) = (None, "", "tcp");
    for param in s.split(',') {
        let (k, v) = match param.split_once('=') {
            Some((k, v)) if !k.is_empty() => (k, v),
            _ => {
                return Err(OptionsError::Invalid(format!(
                    "invalid publish opts format (should be name=value but got '{param}')"
                )))
            }
        };
        match k {
            "target" => target = Some(v),
            "published" => published = v,
            "protocol" => protocol = v,
            // Single host: the swarm routing mesh (ingress) and host mode both publish
            // on this host's addresses.
            "mode" if v == "host" || v == "ingress" => {}
            _ => {
                return Err(OptionsError::Invalid(format!(
                    "invalid publish option {param:?}: use target, published, protocol or mode"
                )))
            }
        }
    }
    let target = target.ok_or_else(|| {
        OptionsError::Invalid("missing required field 'target' for publish opts".into())
    })?;
    Ok(format!("{published}:{target}/{protocol}"))
}

/// docker's -p grammar: [ip:][hostPort|hostRange]:containerPort|containerRange[/tcp|udp], `containerPort` alone,
/// `ip::containerPort`; range-to-range of equal length expands pairwise into one entry per port; a host range with one
/// container port is one entry with that range. sctp => error "sctp is not supported"; IPv6 host ip => error.
pub fn parse_publish(s: &str) -> Result<Vec<PortMapping>, OptionsError> {
    let spec = if s.contains('=') {
        long_publish_syntax(s)?
    } else {
        s.to_string()
    };
    // nat.splitParts: the last part is the container port, the one before the host
    // port, everything before that (IPv6 has colons) the host address.
    let parts: Vec<&str> = spec.split(':').collect();
    let n = parts.len();
    let (ip, host, container) = match n {
        1 => (String::new(), "", parts[0]),
        2 => (String::new(), parts[0], parts[1]),
        _ => (parts[..n - 2].join(":"), parts[n - 2], parts[n - 1]),
    };
    let (proto, container) = split_proto_port(container);
    let ip = match ip.strip_prefix('[').and_then(|i| i.strip_suffix(']')) {
        Some(inner) => inner.to_string(),
        None => ip,
    };
    let host_ip = if ip.is_empty() {
        None
    } else {
        match ip.parse::<IpAddr>() {
            Ok(IpAddr::V4(v4)) => Some(v4).filter(|a| !a.is_unspecified()),
            Ok(IpAddr::V6(_)) => {
                return Err(OptionsError::Unsupported {
                    option: format!("-p {s}"),
                    hint: format!(
                        "ports are published on IPv4 addresses only; {ip} is an IPv6 address"
                    ),
                })
            }
            Err(_) => return Err(OptionsError::Invalid(format!("invalid IP address: {ip}"))),
        }
    };
    if container.is_empty() {
        return Err(OptionsError::Invalid(format!(
            "no port specified: {spec}<empty>"
        )));
    }
    let (c_lo, c_hi) = parse_port_range(container)
        .ok()
        .filter(|(lo, _)| *lo > 0)
        .ok_or_else(|| OptionsError::Invalid(format!("invalid containerPort: {container}")))?;
    let host_range = if host.is_empty() {
        None
    } else {
        let r = parse_port_range(host)
            .ok()
            // Port 0 alone asks for a random port (docker); inside a range it is no port.
            .filter(|(lo, hi)| *lo > 0 || *hi == 0)
            .ok_or_else(|| OptionsError::Invalid(format!("invalid hostPort: {host}")))?;
        Some(r).filter(|r| *r != (0, 0))
    };
    if let Some((h_lo, h_hi)) = host_range {
        if c_hi - c_lo != h_hi - h_lo && c_hi != c_lo {
            return Err(OptionsError::Invalid(format!(
                "invalid ranges specified for container and host Ports: {container} and {host}"
            )));
        }
    }
    let proto = parse_proto(proto)?;
    let single_with_host_range = c_lo == c_hi && host_range.is_some_and(|(lo, hi)| lo != hi);
    Ok((c_lo..=c_hi)
        .enumerate()
        .map(|(i, container_port)| PortMapping {
            host_ip,
            host_ports: host_range.map(|(lo, hi)| {
                if single_with_host_range {
                    (lo, hi)
                } else {
                    (lo + i as u16, lo + i as u16)
                }
            }),
            container_port,
            proto,
        })
        .collect())
}

/// `--expose 80`, `80/udp`, `8000-8002/tcp`.
pub fn parse_expose(s: &str) -> Result<Vec<ExposedPort>, OptionsError> {
    if s.contains(':') {
        return Err(OptionsError::Invalid(format!(
            "invalid port format for --expose: {s}"
        )));
    }
    let (proto, port) = split_proto_port(s);
    let (lo, hi) = parse_port_range(port).map_err(|e| {
        OptionsError::Invalid(format!(
            "invalid range format for --expose: {s}, error: {e}"
        ))
    })?;
    if lo == 0 {
        return Err(OptionsError::Invalid(format!(
            "invalid range format for --expose: {s}, error: port 0 is not a port"
        )));
    }
    let proto = parse_proto(proto)?;
    Ok((lo..=hi).map(|port| ExposedPort { port, proto }).collect())
}

/// An image config ExposedPorts key ("80/tcp", "53/udp", "8080"); None for sctp/garbage.
pub fn parse_exposed_key(key: &str) -> Option<ExposedPort> {
    let (port, proto) = match key.split_once('/') {
        Some((p, proto)) => (p, proto),
        None => (key, "tcp"),
    };
    let port = parse_u16_go(port).ok().filter(|p| *p > 0)?;
    let proto = match proto.to_ascii_lowercase().as_str() {
        "tcp" | "" => Protocol::Tcp,
        "udp" => Protocol::Udp,
        _ => return None,
    };
    Some(ExposedPort { port, proto })
}

/// Go's `net.ParseIP` after `strings.TrimSpace`: dotted IPv4 or IPv6, no zone.
fn parse_go_ip(s: &str) -> Option<IpAddr> {
    s.trim().parse::<IpAddr>().ok()
}

/// `--add-host name:ip`, `name=ip`, `name:[::1]`, `name:host-gateway`. docker splits on
/// the first `=` else the first `:`, so IPv6 addresses need no brackets.
pub fn parse_add_host(s: &str) -> Result<ExtraHost, OptionsError> {
    const FLAG: &str = "--add-host";
    let (name, value) = s
        .split_once('=')
        .or_else(|| s.split_once(':'))
        .filter(|(k, _)| !k.is_empty() && !k.contains(':'))
        .ok_or_else(|| bad(FLAG, s, format!("bad format for add-host: {s:?}")))?;
    if value == "host-gateway" {
        return Ok(ExtraHost {
            name: name.to_string(),
            addr: HostAddr::HostGateway,
        });
    }
    let v = match value.strip_prefix('[').and_then(|v| v.strip_suffix(']')) {
        Some(inner) if value.len() > 2 => inner,
        _ => value,
    };
    let ip = parse_go_ip(v)
        .ok_or_else(|| bad(FLAG, s, format!("invalid IP address in add-host: {v:?}")))?;
    Ok(ExtraHost {
        name: name.to_string(),
        addr: HostAddr::Ip(ip),
    })
}

/// `--mac-address`: six bytes as Go's `net.ParseMAC` writes them (`02:42:ac:11:00:02`,
/// `02-42-ac-11-00-02`, `0242.ac11.0002`). A multicast address (low bit of the first
/// byte) cannot be an interface's, so it is refused here rather than by the kernel.
pub fn parse_mac(s: &str) -> Result<[u8; 6], OptionsError> {
    let invalid = || OptionsError::Invalid(format!("{s} is not a valid mac address"));
    let hex_byte = |h: &str| -> Option<u8> {
        (h.len() == 2 && h.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| u8::from_str_radix(h, 16).ok())
            .flatten()
    };
    let bytes: Option<Vec<u8>> = if s.contains(':') || s.contains('-') {
        let sep = if s.contains(':') { ':' } else { '-' };
        s.split(sep).map(hex_byte).collect()
    } else {
        s.split('.')
            .map(|g| {
                (g.len() == 4)
                    .then(|| Some(vec![hex_byte(&g[..2])?, hex_byte(&g[2..])?]))
                    .flatten()
            })
            .collect::<Option<Vec<Vec<u8>>>>()
            .map(|v| v.concat())
    };
    let mac: [u8; 6] = bytes.and_then(|b| b.try_into().ok()).ok_or_else(invalid)?;
    if mac[0] & 1 == 1 || mac == [0; 6] {
        return Err(OptionsError::Invalid(format!(
            "{s} is not a valid mac address: a container needs a unicast address (the lowest bit of the first byte clear, not all zero)"
        )));
    }
    Ok(mac)
}

/// `--dns` (docker 28's words).
pub fn parse_dns_server(s: &str) -> Result<IpAddr, OptionsError> {
    parse_go_ip(s).ok_or_else(|| {
        bad(
            "--dns",
            s,
            format!("IP address is not correctly formatted: {s}"),
        )
    })
}

/// `--dns-search`: a domain, or `.` (no search domains at all, docker).
pub fn parse_dns_search(s: &str) -> Result<String, OptionsError> {
    let v = s.trim_matches(' ');
    if v == "." {
        return Ok(v.to_string());
    }
    let err = || bad("--dns-search", s, format!("{v} is not a valid domain"));
    // docker's domainRegexp: dot-separated labels of [A-Za-z0-9-] not starting or
    // ending with '-', an optional final dot, at least one letter, < 255 chars.
    let body = v.strip_suffix('.').unwrap_or(v);
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if !v.bytes().any(|b| b.is_ascii_alphabetic()) || body.len() >= 255 {
        return Err(err());
    }
    if !body.split('.').all(label_ok) {
        return Err(err());
    }
    Ok(body.to_string())
}

/// `--ip`: an IPv4 address a container can own (not 0.0.0.0). The daemon's words.
pub fn parse_ipv4_address(s: &str) -> Result<Ipv4Addr, OptionsError> {
    match s.parse::<Ipv4Addr>() {
        Ok(ip) if !ip.is_unspecified() => Ok(ip),
        _ => Err(OptionsError::Invalid(format!("invalid IPv4 address: {s}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(
        host_ip: Option<[u8; 4]>,
        host: Option<(u16, u16)>,
        c: u16,
        proto: Protocol,
    ) -> PortMapping {
        PortMapping {
            host_ip: host_ip.map(Ipv4Addr::from),
            host_ports: host,
            container_port: c,
            proto,
        }
    }
    use Protocol::{Tcp, Udp};

    fn err(s: &str) -> String {
        parse_publish(s).unwrap_err().to_string()
    }

    #[test]
    fn publish_forms() {
        assert_eq!(parse_publish("80").unwrap(), vec![p(None, None, 80, Tcp)]);
        assert_eq!(
            parse_publish("8080:80").unwrap(),
            vec![p(None, Some((8080, 8080)), 80, Tcp)]
        );
        assert_eq!(
            parse_publish("127.0.0.1:8080:80/udp").unwrap(),
            vec![p(Some([127, 0, 0, 1]), Some((8080, 8080)), 80, Udp)]
        );
        assert_eq!(
            parse_publish("127.0.0.1::80").unwrap(),
            vec![p(Some([127, 0, 0, 1]), None, 80, Tcp)]
        );
        assert_eq!(
            parse_publish("0.0.0.0:0:80/TCP").unwrap(),
            vec![p(None, None, 80, Tcp)]
        );
        assert_eq!(parse_publish("80/").unwrap(), vec![p(None, None, 80, Tcp)]);
        assert_eq!(
            parse_publish("8000-8001:80-81").unwrap(),
            vec![
                p(None, Some((8000, 8000)), 80, Tcp),
                p(None, Some((8001, 8001)), 81, Tcp)
            ]
        );
        assert_eq!(
            parse_publish("8000-8010:80").unwrap(),
            vec![p(None, Some((8000, 8010)), 80, Tcp)]
        );
        assert_eq!(
            parse_publish("80-82/udp").unwrap(),
            vec![
                p(None, None, 80, Udp),
                p(None, None, 81, Udp),
                p(None, None, 82, Udp)
            ]
        );
        assert_eq!(
            parse_publish("target=80,published=8080,protocol=udp,mode=host").unwrap(),
            vec![p(None, Some((8080, 8080)), 80, Udp)]
        );
        assert_eq!(
            parse_publish("target=80").unwrap(),
            vec![p(None, None, 80, Tcp)]
        );
    }

    #[test]
    fn publish_errors_are_dockers() {
        assert_eq!(err("abc:80"), "invalid hostPort: abc");
        assert_eq!(err("80/foo"), "invalid proto: foo");
        assert_eq!(err("70000"), "invalid containerPort: 70000");
        assert_eq!(err("0"), "invalid containerPort: 0");
        assert_eq!(err("8000-7000:80"), "invalid hostPort: 8000-7000");
        assert_eq!(err(""), "no port specified: <empty>");
        assert_eq!(err("1.2.3:80:80"), "invalid IP address: 1.2.3");
        assert_eq!(err("foo"), "invalid containerPort: foo");
        assert_eq!(
            err("80:90-91"),
            "invalid ranges specified for container and host Ports: 90-91 and 80"
        );
        assert_eq!(
            err("published=8080"),
            "missing required field 'target' for publish opts"
        );
        assert_eq!(
            err("target=80,x"),
            "invalid publish opts format (should be name=value but got 'x')"
        );
        assert_eq!(err("8080:80/sctp"), "sctp is not supported");
        assert!(
            err("[::1]:80:80").contains("IPv6"),
            "{}",
            err("[::1]:80:80")
        );
        assert!(err("::1:80:80").contains("IPv6"));
    }

    #[test]
    fn expose_forms_and_errors() {
        let e = |port, proto| ExposedPort { port, proto };
        assert_eq!(parse_expose("80").unwrap(), vec![e(80, Tcp)]);
        assert_eq!(parse_expose("53/udp").unwrap(), vec![e(53, Udp)]);
        assert_eq!(
            parse_expose("8000-8002/tcp").unwrap(),
            vec![e(8000, Tcp), e(8001, Tcp), e(8002, Tcp)]
        );
        let msg = |s| parse_expose(s).unwrap_err().to_string();
        assert_eq!(msg("80:90"), "invalid port format for --expose: 80:90");
        assert_eq!(
            msg("abc"),
            "invalid range format for --expose: abc, error: strconv.ParseUint: parsing \"abc\": invalid syntax"
        );
        assert_eq!(
            msg("90-80"),
            "invalid range format for --expose: 90-80, error: invalid range specified for port: 90-80"
        );
        assert_eq!(msg("80/foo"), "invalid proto: foo");
        assert_eq!(msg("80/sctp"), "sctp is not supported");
    }

    #[test]
    fn exposed_keys() {
        assert_eq!(
            parse_exposed_key("80/tcp"),
            Some(ExposedPort {
                port: 80,
                proto: Tcp
            })
        );
        assert_eq!(
            parse_exposed_key("53/udp"),
            Some(ExposedPort {
                port: 53,
                proto: Udp
            })
        );
        assert_eq!(
            parse_exposed_key("8080"),
            Some(ExposedPort {
                port: 8080,
                proto: Tcp
            })
        );
        assert_eq!(parse_exposed_key("9/sctp"), None);
        assert_eq!(parse_exposed_key("x/tcp"), None);
        assert_eq!(parse_exposed_key("0/tcp"), None);
    }

    #[test]
    fn add_host_forms_and_errors() {
        let h = |s| parse_add_host(s).unwrap();
        assert_eq!(
            h("db:10.0.0.5"),
            ExtraHost {
                name: "db".into(),
                addr: HostAddr::Ip("10.0.0.5".parse().unwrap())
            }
        );
        assert_eq!(
            h("db=10.0.0.5").addr,
            HostAddr::Ip("10.0.0.5".parse().unwrap())
        );
        assert_eq!(h("v6:::1").addr, HostAddr::Ip("::1".parse().unwrap()));
        assert_eq!(
            h("v6=[2001:db8::1]").addr,
            HostAddr::Ip("2001:db8::1".parse().unwrap())
        );
        assert_eq!(h("v6:[::1]").addr, HostAddr::Ip("::1".parse().unwrap()));
        assert_eq!(h("gw:host-gateway").addr, HostAddr::HostGateway);
        let msg = |s| parse_add_host(s).unwrap_err().to_string();
        assert_eq!(
            msg("foo"),
            "invalid argument \"foo\" for \"--add-host\" flag: bad format for add-host: \"foo\""
        );
        assert_eq!(
            msg(":1.2.3.4"),
            "invalid argument \":1.2.3.4\" for \"--add-host\" flag: bad format for add-host: \":1.2.3.4\""
        );
        assert_eq!(
            msg("foo:bar"),
            "invalid argument \"foo:bar\" for \"--add-host\" flag: invalid IP address in add-host: \"bar\""
        );
        assert_eq!(
            msg("a:b:c"),
            "invalid argument \"a:b:c\" for \"--add-host\" flag: invalid IP address in add-host: \"b:c\""
        );
    }

    #[test]
    fn mac_addresses() {
        let mac = [0x02, 0x42, 0xac, 0x11, 0x00, 0x02];
        assert_eq!(parse_mac("02:42:ac:11:00:02").unwrap(), mac);
        assert_eq!(parse_mac("02-42-AC-11-00-02").unwrap(), mac);
        assert_eq!(parse_mac("0242.ac11.0002").unwrap(), mac);
        assert_eq!(
            parse_mac("zz").unwrap_err().to_string(),
            "zz is not a valid mac address"
        );
        assert!(parse_mac("02:42:ac:11:00").is_err());
        assert!(parse_mac("02:42:ac:11:00:02:03").is_err());
        assert!(parse_mac("2:42:ac:11:00:02").is_err());
        assert!(parse_mac("01:00:5e:00:00:01")
            .unwrap_err()
            .to_string()
            .contains("unicast"));
        assert!(parse_mac("00:00:00:00:00:00").is_err());
    }

    #[test]
    fn dns_flags() {
        assert_eq!(
            parse_dns_server("1.1.1.1").unwrap(),
            IpAddr::from([1, 1, 1, 1])
        );
        assert_eq!(
            parse_dns_server(" ::1 ").unwrap(),
            "::1".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            parse_dns_server("foo").unwrap_err().to_string(),
            "invalid argument \"foo\" for \"--dns\" flag: IP address is not correctly formatted: foo"
        );
        assert_eq!(parse_dns_search("example.com").unwrap(), "example.com");
        assert_eq!(parse_dns_search("example.com.").unwrap(), "example.com");
        assert_eq!(parse_dns_search(".").unwrap(), ".");
        assert_eq!(
            parse_dns_search("-bad").unwrap_err().to_string(),
            "invalid argument \"-bad\" for \"--dns-search\" flag: -bad is not a valid domain"
        );
        assert!(parse_dns_search("123").is_err());
        assert!(parse_dns_search("a..b").is_err());
        assert!(parse_dns_search("a_b.com").is_err());
    }

    #[test]
    fn ipv4_flag() {
        assert_eq!(
            parse_ipv4_address("10.89.0.5").unwrap(),
            Ipv4Addr::new(10, 89, 0, 5)
        );
        for bad in ["foo", "0.0.0.0", "2001::1", "10.0.0"] {
            assert_eq!(
                parse_ipv4_address(bad).unwrap_err().to_string(),
                format!("invalid IPv4 address: {bad}")
            );
        }
    }
}
