//! `port CONTAINER [PRIVATE_PORT[/PROTO]]`, and the PORTS column of `ps`: docker's
//! formats (docker/cli `container/port.go`, `formatter.DisplayablePorts`).

use crate::Context;
use clap::Args;
use coracle_core::PortMapping;
use std::cmp::Ordering;
use std::net::Ipv4Addr;

#[derive(Args)]
pub struct PortArgs {
    /// Container, by name or id
    pub container: String,
    /// Only this container port: PORT[/PROTO] (tcp when omitted)
    #[arg(value_name = "PRIVATE_PORT[/PROTO]")]
    pub port: Option<String>,
}

pub fn exec(ctx: &Context, args: PortArgs) -> anyhow::Result<i32> {
    let mut engine = ctx.engine()?;
    let ports = engine.networks().container_port(&args.container)?;
    let lines = match &args.port {
        Some(spec) => {
            let lines = port_lines(&ports, spec)?;
            if lines.is_empty() {
                anyhow::bail!("No public port '{spec}' published for {}", args.container);
            }
            lines
        }
        None => all_lines(&ports),
    };
    for l in lines {
        println!("{l}");
    }
    Ok(0)
}

/// `80/tcp -> 0.0.0.0:18080` for every published port, in docker's (natural) order.
fn all_lines(ports: &[PortMapping]) -> Vec<String> {
    let mut out: Vec<String> = ports
        .iter()
        .filter_map(|p| {
            let (ip, host_port) = host_side(p)?;
            Some(format!(
                "{}/{} -> {ip}:{host_port}",
                p.container_port,
                p.proto.as_str()
            ))
        })
        .collect();
    out.sort_by(|a, b| natural_cmp(a, b));
    out
}

/// The host addresses of one container port (`80`, `53/udp`).
fn port_lines(ports: &[PortMapping], spec: &str) -> anyhow::Result<Vec<String>> {
    let (port, proto) = spec.split_once('/').unwrap_or((spec, ""));
    let proto = if proto.is_empty() { "tcp" } else { proto };
    let port: u16 = match port.parse() {
        Ok(p) if port.bytes().all(|b| b.is_ascii_digit()) => p,
        _ => {
            let why = if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) {
                "value out of range"
            } else {
                "invalid syntax"
            };
            anyhow::bail!("invalid port ({port}): strconv.ParseUint: parsing {port:?}: {why}");
        }
    };
    let mut out: Vec<String> = ports
        .iter()
        .filter(|p| p.container_port == port && p.proto.as_str() == proto)
        .filter_map(|p| host_side(p).map(|(ip, hp)| format!("{ip}:{hp}")))
        .collect();
    out.sort_by(|a, b| natural_cmp(a, b));
    Ok(out)
}

/// Where a published port listens on the host; None: exposed only.
fn host_side(p: &PortMapping) -> Option<(Ipv4Addr, u16)> {
    p.host_port().map(|port| (p.host_addr(), port))
}

/// docker's `sortorder.NaturalLess` as an ordering: digit runs compare as numbers
/// (and sort before other characters), the rest bytewise.
pub(crate) fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        let (da, db) = (a[i].is_ascii_digit(), b[j].is_ascii_digit());
        if da != db {
            return if da {
                Ordering::Less
            } else {
                Ordering::Greater
            };
        }
        if !da {
            if a[i] != b[j] {
                return a[i].cmp(&b[j]);
            }
            i += 1;
            j += 1;
            continue;
        }
        while i < a.len() && a[i] == b'0' {
            i += 1;
        }
        while j < b.len() && b[j] == b'0' {
            j += 1;
        }
        let (nz_a, nz_b) = (i, j);
        while i < a.len() && a[i].is_ascii_digit() {
            i += 1;
        }
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        let by_number = (i - nz_a)
            .cmp(&(j - nz_b))
            .then_with(|| a[nz_a..i].cmp(&b[nz_b..j]))
            // Equal numbers: fewer leading zeros first.
            .then_with(|| nz_a.cmp(&nz_b));
        if by_number != Ordering::Equal {
            return by_number;
        }
    }
    a.len().cmp(&b.len())
}

/// The PORTS column: `0.0.0.0:18080->80/tcp, 53/udp`. As docker: ports sorted by
/// container port, address, host port, protocol; runs of consecutive ports that are
/// either unpublished or published on the same number (and address) collapse into
/// ranges (`8000-8001/tcp`, `0.0.0.0:80-81->80-81/tcp`); mappings to another host
/// port are listed one by one after the ranges. A mapping with no host port is an
/// exposed port, not published.
pub(crate) fn displayable_ports(ports: &[PortMapping]) -> String {
    struct Port {
        ip: String,
        public: u16,
        private: u16,
        kind: &'static str,
    }
    let mut ports: Vec<Port> = ports
        .iter()
        .map(|p| Port {
            ip: host_side(p)
                .map(|(ip, _)| ip.to_string())
                .unwrap_or_default(),
            public: host_side(p).map(|(_, hp)| hp).unwrap_or(0),
            private: p.container_port,
            kind: p.proto.as_str(),
        })
        .collect();
    ports.sort_by(|a, b| {
        a.private
            .cmp(&b.private)
            .then_with(|| a.ip.cmp(&b.ip))
            .then_with(|| a.public.cmp(&b.public))
            .then_with(|| a.kind.cmp(b.kind))
    });
    // (key, first, last) in the order the keys were first seen.
    let mut groups: Vec<(String, u16, u16)> = Vec::new();
    let mut result = Vec::new();
    let mut host_mappings = Vec::new();
    for p in &ports {
        let key = if p.ip.is_empty() {
            p.kind.to_string()
        } else {
            if p.public != p.private {
                host_mappings.push(format!("{}:{}->{}/{}", p.ip, p.public, p.private, p.kind));
                continue;
            }
            format!("{}/{}", p.ip, p.kind)
        };
        match groups.iter_mut().find(|(k, _, _)| *k == key) {
            None => groups.push((key, p.private, p.private)),
            Some(g) if u32::from(p.private) == u32::from(g.2) + 1 => g.2 = p.private,
            Some(g) => {
                result.push(form_group(&g.0, g.1, g.2));
                (g.1, g.2) = (p.private, p.private);
            }
        }
    }
    result.extend(
        groups
            .iter()
            .map(|(k, first, last)| form_group(k, *first, *last)),
    );
    result.extend(host_mappings);
    result.join(", ")
}

fn form_group(key: &str, first: u16, last: u16) -> String {
    let (ip, kind) = match key.split_once('/') {
        Some((ip, kind)) => (ip, kind),
        None => ("", key),
    };
    let mut group = first.to_string();
    if first != last {
        group = format!("{group}-{last}");
    }
    if !ip.is_empty() {
        group = format!("{ip}:{group}->{group}");
    }
    format!("{group}/{kind}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use coracle_core::Protocol::{self, Tcp, Udp};

    fn pm(container_port: u16, proto: Protocol, host: Option<([u8; 4], u16)>) -> PortMapping {
        PortMapping {
            host_ip: host.map(|(ip, _)| Ipv4Addr::from(ip)),
            host_ports: host.map(|(_, p)| (p, p)),
            container_port,
            proto,
        }
    }
    const ANY: [u8; 4] = [0, 0, 0, 0];

    #[test]
    fn ports_column_as_docker() {
        assert_eq!(displayable_ports(&[]), "");
        assert_eq!(
            displayable_ports(&[pm(53, Udp, None), pm(80, Tcp, Some((ANY, 18080)))]),
            "53/udp, 0.0.0.0:18080->80/tcp"
        );
        // Same-number mappings and unpublished ports collapse into ranges.
        assert_eq!(
            displayable_ports(&[
                pm(81, Tcp, Some((ANY, 81))),
                pm(80, Tcp, Some((ANY, 80))),
                pm(8000, Tcp, None),
                pm(8001, Tcp, None),
                pm(8002, Tcp, None),
                pm(9000, Udp, None),
            ]),
            "0.0.0.0:80-81->80-81/tcp, 8000-8002/tcp, 9000/udp"
        );
        // Other host ports are listed one by one, after the groups.
        assert_eq!(
            displayable_ports(&[
                pm(81, Tcp, Some((ANY, 8001))),
                pm(80, Tcp, Some((ANY, 8000))),
                pm(443, Tcp, None),
            ]),
            "443/tcp, 0.0.0.0:8000->80/tcp, 0.0.0.0:8001->81/tcp"
        );
        // A gap closes a group; the closed one comes first.
        assert_eq!(
            displayable_ports(&[pm(1, Tcp, None), pm(2, Tcp, None), pm(5, Tcp, None)]),
            "1-2/tcp, 5/tcp"
        );
        assert_eq!(
            displayable_ports(&[
                pm(80, Tcp, Some(([127, 0, 0, 1], 80))),
                pm(80, Tcp, Some((ANY, 80))),
            ]),
            "0.0.0.0:80->80/tcp, 127.0.0.1:80->80/tcp"
        );
    }

    #[test]
    fn port_output_as_docker() {
        let ports = [
            pm(8080, Tcp, Some((ANY, 18081))),
            pm(80, Tcp, Some((ANY, 18080))),
            pm(53, Udp, Some(([127, 0, 0, 1], 5353))),
            pm(443, Tcp, None),
        ];
        assert_eq!(
            all_lines(&ports),
            [
                "53/udp -> 127.0.0.1:5353",
                "80/tcp -> 0.0.0.0:18080",
                "8080/tcp -> 0.0.0.0:18081"
            ]
        );
        assert_eq!(port_lines(&ports, "80").unwrap(), ["0.0.0.0:18080"]);
        assert_eq!(port_lines(&ports, "80/tcp").unwrap(), ["0.0.0.0:18080"]);
        assert_eq!(port_lines(&ports, "53/udp").unwrap(), ["127.0.0.1:5353"]);
        assert!(port_lines(&ports, "53").unwrap().is_empty());
        assert!(port_lines(&ports, "443").unwrap().is_empty());
        assert_eq!(
            port_lines(&ports, "abc").unwrap_err().to_string(),
            "invalid port (abc): strconv.ParseUint: parsing \"abc\": invalid syntax"
        );
        assert!(port_lines(&ports, "70000")
            .unwrap_err()
            .to_string()
            .contains("value out of range"));
    }

    #[test]
    fn natural_order() {
        let mut v = vec!["a10", "a9", "a09", "b", "a", "1x", "x1"];
        v.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(v, ["1x", "a", "a9", "a09", "a10", "b", "x1"]);
        assert_eq!(natural_cmp("net2", "net10"), Ordering::Less);
        assert_eq!(natural_cmp("same", "same"), Ordering::Equal);
    }
}
