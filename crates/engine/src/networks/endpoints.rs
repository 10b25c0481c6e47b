//! Joining containers to networks and leaving them: address leases, bridges, veths and
//! the firewall. A network's bridge is made when a container first joins it (after
//! boot) and stays until the network is removed, as docker keeps docker0: creating and
//! deleting a bridge per container would cost two RCU grace periods on every run.
//!
//! Every change happens under the store's network lock, and the firewall is then made
//! to match the database as a whole (networks with bridges, published ports), so a
//! teardown that was interrupted is finished by the next one instead of leaking rules.

use crate::TeardownError;
use crate::{Engine, EngineError};
use coracle_core::MacAddr;
use coracle_net::firewall::{FirewallState, NetworkRule, PortForward};
use coracle_net::{ipam, link, netns};
use coracle_state::{EndpointConfig, LeaseRecord, NetworkRecord};
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::net::Ipv4Addr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// The pieces of a network record in the types netlink and the firewall take.
pub(crate) struct Addressing {
    pub subnet: ipnet::Ipv4Net,
    pub gateway: Ipv4Addr,
}

pub(crate) fn addressing(net: &NetworkRecord) -> Result<Addressing, EngineError> {
    Ok(Addressing {
        subnet: ipam::parse_subnet(&net.subnet)?,
        gateway: ipam::parse_ipv4("gateway", &net.gateway)?,
    })
}

impl Engine {
    /// Serialises this store's network changes (leases, bridges, the firewall) across
    /// processes; released when the file is dropped.
    pub(crate) fn network_lock(&self) -> Result<File, EngineError> {
        let path = self.paths.root.join("network.lock");
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(crate::perms::FILE_MODE)
            .open(&path)
            .map_err(EngineError::io("open", &path))?;
        rustix::fs::flock(&f, rustix::fs::FlockOperation::LockExclusive)
            .map_err(|e| EngineError::io("lock", &path)(e.into()))?;
        Ok(f)
    }

    /// Leases an address on `net` for the container and wires its namespace at `ns` to
    /// the network's bridge as `container_if`. `default_route`: this network carries the
    /// container's way out. Caller holds the network lock and syncs the firewall.
    pub(crate) fn attach_locked(
        &mut self,
        container_id: &str,
        ns: &Path,
        net: &NetworkRecord,
        ep: &EndpointConfig,
        container_if: &str,
        default_route: bool,
    ) -> Result<LeaseRecord, EngineError> {
        let a = addressing(net)?;
        let requested = ep
            .ip
            .as_deref()
            .map(|ip| ipam::parse_ipv4("--ip", ip))
            .transpose()?;
        if let Some(ip) = requested {
            ipam::check_in_subnet("--ip", a.subnet, ip)?;
        }
        let mac = ep
            .mac
            .as_deref()
            .map(coracle_model::parse_mac)
            .transpose()?;
        let host_if = ipam::veth_name()?;
        let lease = self.db.insert_lease_with(&net.id, &mut |used| {
            let used: HashSet<Ipv4Addr> = used.iter().copied().collect();
            let ip = match requested {
                Some(ip) if used.contains(&ip) || ip == a.gateway => return None,
                Some(ip) => ip,
                None => ipam::pick_address(a.subnet, a.gateway, &used)?,
            };
            Some(LeaseRecord {
                network_id: net.id.clone(),
                container_id: container_id.to_string(),
                ip,
                mac: MacAddr(mac.unwrap_or_else(|| ipam::mac_for(ip))),
                host_if: host_if.clone(),
                container_if: container_if.to_string(),
            })
        })?;
        let Some(lease) = lease else {
            return Err(match requested {
                Some(ip) => EngineError::Conflict(format!(
                    "failed to set up the network of the container: address {ip} on network {} is already in use",
                    net.name
                )),
                None => EngineError::Conflict(format!(
                    "no available IPv4 addresses on this network's address pools: {} ({})",
                    net.name, net.id
                )),
            });
        };
        let wired = link::ensure_bridge(&link::BridgeConfig {
            name: net.bridge.clone(),
            gateway: a.gateway,
            prefix_len: a.subnet.prefix_len(),
        })
        .and_then(|()| {
            link::attach(
                ns,
                &link::Endpoint {
                    bridge: net.bridge.clone(),
                    host_if: lease.host_if.clone(),
                    container_if: container_if.to_string(),
                    address: lease.ip,
                    prefix_len: a.subnet.prefix_len(),
                    gateway: (default_route && !net.internal).then_some(a.gateway),
                    mac: lease.mac.octets(),
                },
            )
        });
        if let Err(e) = wired {
            let mut failures = Vec::new();
            self.detach_locked(&lease, true, &mut failures);
            for f in failures {
                coracle_runtime::note!("coracle: {f}");
            }
            return Err(e.into());
        }
        Ok(lease)
    }

    /// Undoes one lease. The veth goes with the container's namespace (the kernel
    /// deletes both ends when the namespace dies); deleting it here would cost an RCU
    /// grace period (~25 ms) on every stop. `delete_veth`: the namespace stays (a
    /// failed attach), so the host end is removed now.
    pub(crate) fn detach_locked(
        &mut self,
        lease: &LeaseRecord,
        delete_veth: bool,
        failures: &mut Vec<TeardownError>,
    ) {
        if delete_veth {
            if let Err(source) = link::delete_link(&lease.host_if) {
                failures.push(TeardownError::Veth {
                    host_if: lease.host_if.clone(),
                    source,
                });
            }
        }
        if let Err(e) = self.db.delete_lease(&lease.network_id, &lease.container_id) {
            failures.push(e.into());
        }
    }

    /// Everything a container holds on networks goes: leases, veths, unused bridges,
    /// published ports, firewall rules, its namespace file. Safe to repeat, and after a
    /// reboot (when the kernel already dropped the links).
    pub(crate) fn release_container_network(&mut self, container_id: &str) -> Vec<TeardownError> {
        let mut failures = Vec::new();
        let lock = match self.network_lock() {
            Ok(f) => Some(f),
            Err(e) => {
                failures.push(e.into());
                None
            }
        };
        match self.db.leases_of_container(container_id) {
            Ok(leases) => {
                for l in &leases {
                    self.detach_locked(l, false, &mut failures);
                }
            }
            Err(e) => failures.push(e.into()),
        }
        if let Err(e) = self.db.set_container_ports(container_id, &[]) {
            failures.push(e.into());
        }
        if let Err(e) = self.sync_firewall() {
            failures.push(e.into());
        }
        drop(lock);
        if let Err(e) = netns::remove(&self.run_dir.netns(container_id)) {
            failures.push(e.into());
        }
        failures
    }

    /// Makes the firewall match the database: rules for every network that has a
    /// bridge (some lease) and DNAT for every published port. Caller holds the lock.
    pub(crate) fn sync_firewall(&self) -> Result<(), EngineError> {
        let leases = self.db.leases()?;
        let nets: HashMap<String, NetworkRecord> = self
            .db
            .networks()?
            .into_iter()
            .map(|n| (n.id.clone(), n))
            .collect();
        let mut state = FirewallState::default();
        let mut ids: Vec<&String> = nets.keys().collect();
        ids.sort();
        for id in ids {
            let n = &nets[id];
            if link::link_exists(&n.bridge)? {
                state.networks.push(NetworkRule {
                    bridge: n.bridge.clone(),
                    subnet: ipam::parse_subnet(&n.subnet)?,
                    internal: n.internal,
                });
            }
        }
        for p in self.db.ports()? {
            let Some(target) = self.port_target(&p.container_id, &leases, &nets)? else {
                continue;
            };
            state.ports.push(PortForward {
                mapping: p.mapping,
                container_ip: target,
            });
        }
        // This store's own table: other stores in this namespace own theirs, and
        // their rules only ever match their own bridges.
        let table = self.store_net().table();
        let firewall = (self.firewall)(&table);
        // Most starts and stops change no rule (no ports, a bridge already up): skip
        // `nft` then. The record is per network namespace and table (tmpfs: gone at
        // reboot, with the rules).
        let Some(cookie) = netns_cookie() else {
            firewall.apply(&state)?;
            return Ok(());
        };
        let applied = self
            .run_dir
            .path()
            .join(format!("firewall-{cookie}-{table}.state"));
        let wanted = format!("{state:?}");
        if std::fs::read_to_string(&applied).is_ok_and(|s| s == wanted) {
            return Ok(());
        }
        let _ = std::fs::remove_file(&applied);
        firewall.apply(&state)?;
        if let Err(e) = crate::perms::write_private(&applied, wanted.as_bytes()) {
            coracle_runtime::note!("coracle: record firewall state {}: {e}", applied.display());
        }
        Ok(())
    }

    /// Where a container's published ports lead: its address on the first of its
    /// networks (in the order it joined them) that is not internal.
    fn port_target(
        &self,
        container_id: &str,
        leases: &[LeaseRecord],
        nets: &HashMap<String, NetworkRecord>,
    ) -> Result<Option<Ipv4Addr>, EngineError> {
        for ep in self.db.container_endpoints(container_id)? {
            if nets.get(&ep.network_id).is_some_and(|n| n.internal) {
                continue;
            }
            if let Some(l) = leases
                .iter()
                .find(|l| l.container_id == container_id && l.network_id == ep.network_id)
            {
                return Ok(Some(l.ip));
            }
        }
        Ok(None)
    }
}

/// The calling thread's network namespace's cookie: unlike its inode number, never
/// reused for another namespace while the system runs (Linux 5.14+).
fn netns_cookie() -> Option<u64> {
    const SO_NETNS_COOKIE: libc::c_int = 71;
    let sock = std::os::unix::net::UnixDatagram::unbound().ok()?;
    let mut cookie: u64 = 0;
    let mut len = std::mem::size_of::<u64>() as libc::socklen_t;
    // SAFETY: a valid socket fd and an out-buffer of the size given.
    let r = unsafe {
        libc::getsockopt(
            std::os::fd::AsRawFd::as_raw_fd(&sock),
            libc::SOL_SOCKET,
            SO_NETNS_COOKIE,
            (&mut cookie as *mut u64).cast(),
            &mut len,
        )
    };
    (r == 0).then_some(cookie)
}
