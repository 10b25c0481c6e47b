//! Typed queries for networks, container endpoints (the networks a container is
//! configured for), IP leases (where an attached container actually is) and published
//! ports. IP allocation runs in one IMMEDIATE transaction with UNIQUE(network_id, ip)
//! as the backstop, so concurrent `run`s in separate processes never share an address.

use crate::db::sql_err;
use crate::{Db, StateError};
use coracle_core::{MacAddr, PortMapping};
use rusqlite::{params, OptionalExtension, Row, Transaction, TransactionBehavior};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::str::FromStr;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkRecord {
    pub id: String,
    pub name: String,
    pub driver: String,
    /// The Linux bridge, e.g. `coracle1`.
    pub bridge: String,
    /// CIDR, e.g. `10.89.0.0/24`.
    pub subnet: String,
    pub gateway: String,
    pub internal: bool,
    pub labels: BTreeMap<String, String>,
    /// RFC 3339.
    pub created: String,
}

/// A network a container is configured for, with its per-network options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointConfig {
    pub network_id: String,
    pub aliases: Vec<String>,
    /// `--ip`.
    pub ip: Option<String>,
    /// `--mac-address`.
    pub mac: Option<String>,
}

/// An address held by a container attached to a network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRecord {
    pub network_id: String,
    pub container_id: String,
    pub ip: Ipv4Addr,
    pub mac: MacAddr,
    pub host_if: String,
    pub container_if: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortRecord {
    pub container_id: String,
    /// Bound to one host port.
    pub mapping: PortMapping,
}

pub(crate) const NETWORK_COLUMNS: &str =
    "id, name, driver, bridge, subnet, gateway, internal, labels, created";
const LEASE_COLUMNS: &str = "network_id, container_id, ip, mac, host_if, container_if";
const PORT_COLUMNS: &str = "container_id, proto, host_ip, host_port, container_port";

/// A JSON column that does not parse is corruption, reported like other bad values.
fn json_col<T>(
    r: &Row,
    idx: usize,
    what: &'static str,
    parse: fn(&str) -> serde_json::Result<T>,
) -> rusqlite::Result<T> {
    let text: String = r.get(idx)?;
    parse(&text).map_err(|_| {
        rusqlite::Error::FromSqlConversionFailure(
            idx,
            rusqlite::types::Type::Text,
            Box::new(StateError::Corrupt { what, value: text }),
        )
    })
}

/// A text column holding a value's canonical text (an address): one that does not
/// parse is corruption, as for JSON.
fn parsed_col<T: FromStr>(r: &Row, idx: usize, what: &'static str) -> rusqlite::Result<T> {
    let text: String = r.get(idx)?;
    text.parse().map_err(|_| {
        rusqlite::Error::FromSqlConversionFailure(
            idx,
            rusqlite::types::Type::Text,
            Box::new(StateError::Corrupt { what, value: text }),
        )
    })
}

pub(crate) fn row_to_network(r: &Row) -> rusqlite::Result<NetworkRecord> {
    Ok(NetworkRecord {
        id: r.get(0)?,
        name: r.get(1)?,
        driver: r.get(2)?,
        bridge: r.get(3)?,
        subnet: r.get(4)?,
        gateway: r.get(5)?,
        internal: r.get(6)?,
        labels: json_col(r, 7, "network labels", |s| serde_json::from_str(s))?,
        created: r.get(8)?,
    })
}

pub(crate) fn row_to_endpoint(r: &Row) -> rusqlite::Result<EndpointConfig> {
    Ok(EndpointConfig {
        network_id: r.get(0)?,
        aliases: json_col(r, 1, "endpoint aliases", |s| serde_json::from_str(s))?,
        ip: r.get(2)?,
        mac: r.get(3)?,
    })
}

fn row_to_lease(r: &Row) -> rusqlite::Result<LeaseRecord> {
    Ok(LeaseRecord {
        network_id: r.get(0)?,
        container_id: r.get(1)?,
        ip: parsed_col(r, 2, "lease address")?,
        mac: parsed_col(r, 3, "lease MAC address")?,
        host_if: r.get(4)?,
        container_if: r.get(5)?,
    })
}

fn row_to_port(r: &Row) -> rusqlite::Result<PortRecord> {
    let host_ip: Ipv4Addr = parsed_col(r, 2, "published port address")?;
    let host_port: u16 = r.get(3)?;
    Ok(PortRecord {
        container_id: r.get(0)?,
        mapping: PortMapping {
            host_ip: (!host_ip.is_unspecified()).then_some(host_ip),
            host_ports: Some((host_port, host_port)),
            container_port: r.get(4)?,
            proto: parsed_col(r, 1, "published port protocol")?,
        },
    })
}

fn insert_endpoint(
    tx: &Transaction<'_>,
    container_id: &str,
    ep: &EndpointConfig,
    position: i64,
) -> rusqlite::Result<usize> {
    let aliases = serde_json::to_string(&ep.aliases).expect("strings serialize");
    tx.execute(
        "INSERT OR IGNORE INTO container_endpoints (container_id, network_id, aliases, ip, mac, position) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![container_id, ep.network_id, aliases, ep.ip, ep.mac, position],
    )
}

impl Db {
    /// Every multi-step change takes the write lock up front (IMMEDIATE), so two
    /// processes cannot both read "free" and then both write.
    fn immediate(&self, op: &'static str) -> Result<Transaction<'_>, StateError> {
        Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate).map_err(self.err(op))
    }

    fn collect<T>(
        &self,
        op: &'static str,
        sql: &str,
        params: impl rusqlite::Params,
        f: fn(&Row) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>, StateError> {
        let mut stmt = self.conn.prepare_cached(sql).map_err(self.err(op))?;
        let rows = stmt.query_map(params, f).map_err(self.err(op))?;
        rows.collect::<Result<_, _>>().map_err(self.err(op))
    }

    /// Records a network; a taken name is `NetworkNameInUse` (docker's message).
    pub fn insert_network(&self, n: &NetworkRecord) -> Result<(), StateError> {
        const OP: &str = "create network";
        let tx = self.immediate(OP)?;
        let taken = tx
            .query_row("SELECT 1 FROM networks WHERE name = ?1", [&n.name], |_| {
                Ok(())
            })
            .optional()
            .map_err(sql_err(&self.path, OP))?;
        if taken.is_some() {
            return Err(StateError::NetworkNameInUse {
                name: n.name.clone(),
            });
        }
        let labels = serde_json::to_string(&n.labels).expect("strings serialize");
        tx.execute(
            &format!("INSERT INTO networks ({NETWORK_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"),
            params![n.id, n.name, n.driver, n.bridge, n.subnet, n.gateway, n.internal, labels, n.created],
        )
        .map_err(sql_err(&self.path, OP))?;
        tx.commit().map_err(sql_err(&self.path, OP))
    }

    pub fn network_by_name(&self, name: &str) -> Result<Option<NetworkRecord>, StateError> {
        self.conn
            .query_row(
                &format!("SELECT {NETWORK_COLUMNS} FROM networks WHERE name = ?1"),
                [name],
                row_to_network,
            )
            .optional()
            .map_err(self.err("look up network"))
    }

    pub fn network_by_id(&self, id: &str) -> Result<Option<NetworkRecord>, StateError> {
        self.conn
            .query_row(
                &format!("SELECT {NETWORK_COLUMNS} FROM networks WHERE id = ?1"),
                [id],
                row_to_network,
            )
            .optional()
            .map_err(self.err("look up network"))
    }

    /// All networks, by name.
    pub fn networks(&self) -> Result<Vec<NetworkRecord>, StateError> {
        self.collect(
            "list networks",
            &format!("SELECT {NETWORK_COLUMNS} FROM networks ORDER BY name"),
            [],
            row_to_network,
        )
    }

    /// Deletes a network record; one with leases fails (constraint, kind Conflict).
    /// Endpoints naming it stay: the containers they belong to fail to start, as in docker.
    pub fn delete_network(&self, id: &str) -> Result<bool, StateError> {
        let n = self
            .conn
            .execute("DELETE FROM networks WHERE id = ?1", [id])
            .map_err(self.err("remove network"))?;
        Ok(n > 0)
    }

    /// Replaces the container's endpoints with `eps`, in that order.
    pub fn set_container_endpoints(
        &self,
        container_id: &str,
        eps: &[EndpointConfig],
    ) -> Result<(), StateError> {
        const OP: &str = "set container networks";
        let tx = self.immediate(OP)?;
        tx.execute(
            "DELETE FROM container_endpoints WHERE container_id = ?1",
            [container_id],
        )
        .map_err(sql_err(&self.path, OP))?;
        for (i, ep) in eps.iter().enumerate() {
            insert_endpoint(&tx, container_id, ep, i as i64).map_err(sql_err(&self.path, OP))?;
        }
        tx.commit().map_err(sql_err(&self.path, OP))
    }

    /// Appends an endpoint; false if the container already has one on that network.
    pub fn add_container_endpoint(
        &self,
        container_id: &str,
        ep: &EndpointConfig,
    ) -> Result<bool, StateError> {
        const OP: &str = "connect container";
        let tx = self.immediate(OP)?;
        let next: i64 = tx
            .query_row(
                "SELECT COALESCE(MAX(position) + 1, 0) FROM container_endpoints WHERE container_id = ?1",
                [container_id],
                |r| r.get(0),
            )
            .map_err(sql_err(&self.path, OP))?;
        let n = insert_endpoint(&tx, container_id, ep, next).map_err(sql_err(&self.path, OP))?;
        tx.commit().map_err(sql_err(&self.path, OP))?;
        Ok(n > 0)
    }

    pub fn remove_container_endpoint(
        &self,
        container_id: &str,
        network_id: &str,
    ) -> Result<bool, StateError> {
        let n = self
            .conn
            .execute(
                "DELETE FROM container_endpoints WHERE container_id = ?1 AND network_id = ?2",
                [container_id, network_id],
            )
            .map_err(self.err("disconnect container"))?;
        Ok(n > 0)
    }

    /// The container's endpoints in the order they were added.
    pub fn container_endpoints(
        &self,
        container_id: &str,
    ) -> Result<Vec<EndpointConfig>, StateError> {
        self.collect(
            "list container networks",
            "SELECT network_id, aliases, ip, mac FROM container_endpoints WHERE container_id = ?1 ORDER BY position",
            [container_id],
            row_to_endpoint,
        )
    }

    /// Ids of the containers configured for a network (running or not), sorted.
    pub fn network_endpoint_containers(&self, network_id: &str) -> Result<Vec<String>, StateError> {
        self.collect(
            "list network containers",
            "SELECT container_id FROM container_endpoints WHERE network_id = ?1 ORDER BY container_id",
            [network_id],
            |r| r.get(0),
        )
    }

    /// In one IMMEDIATE transaction: `choose(addresses in use on the network)` returns the lease
    /// to insert (None: nothing free / requested address taken -> Ok(None)). The lease is
    /// recorded on `network_id` whatever its own `network_id` says.
    pub fn insert_lease_with(
        &self,
        network_id: &str,
        choose: &mut dyn FnMut(&[Ipv4Addr]) -> Option<LeaseRecord>,
    ) -> Result<Option<LeaseRecord>, StateError> {
        const OP: &str = "allocate address";
        let tx = self.immediate(OP)?;
        let used: Vec<Ipv4Addr> = {
            let mut stmt = tx
                .prepare_cached("SELECT ip FROM leases WHERE network_id = ?1")
                .map_err(sql_err(&self.path, OP))?;
            let rows = stmt
                .query_map([network_id], |r| parsed_col(r, 0, "lease address"))
                .map_err(sql_err(&self.path, OP))?;
            rows.collect::<Result<_, _>>()
                .map_err(sql_err(&self.path, OP))?
        };
        let Some(mut lease) = choose(&used) else {
            return Ok(None);
        };
        lease.network_id = network_id.to_string();
        tx.execute(
            &format!("INSERT INTO leases ({LEASE_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"),
            params![
                lease.network_id,
                lease.container_id,
                lease.ip.to_string(),
                lease.mac.to_string(),
                lease.host_if,
                lease.container_if
            ],
        )
        .map_err(sql_err(&self.path, OP))?;
        tx.commit().map_err(sql_err(&self.path, OP))?;
        Ok(Some(lease))
    }

    /// The container's leases in the order they were allocated.
    pub fn leases_of_container(&self, container_id: &str) -> Result<Vec<LeaseRecord>, StateError> {
        self.collect(
            "list leases",
            &format!("SELECT {LEASE_COLUMNS} FROM leases WHERE container_id = ?1 ORDER BY rowid"),
            [container_id],
            row_to_lease,
        )
    }

    pub fn leases_of_network(&self, network_id: &str) -> Result<Vec<LeaseRecord>, StateError> {
        self.collect(
            "list leases",
            &format!("SELECT {LEASE_COLUMNS} FROM leases WHERE network_id = ?1 ORDER BY rowid"),
            [network_id],
            row_to_lease,
        )
    }

    pub fn leases(&self) -> Result<Vec<LeaseRecord>, StateError> {
        self.collect(
            "list leases",
            &format!("SELECT {LEASE_COLUMNS} FROM leases ORDER BY network_id, rowid"),
            [],
            row_to_lease,
        )
    }

    pub fn delete_lease(&self, network_id: &str, container_id: &str) -> Result<bool, StateError> {
        let n = self
            .conn
            .execute(
                "DELETE FROM leases WHERE network_id = ?1 AND container_id = ?2",
                [network_id, container_id],
            )
            .map_err(self.err("release address"))?;
        Ok(n > 0)
    }

    /// Replaces the container's published ports with `ports`, in that order.
    pub fn set_container_ports(
        &self,
        container_id: &str,
        ports: &[PortRecord],
    ) -> Result<(), StateError> {
        const OP: &str = "set published ports";
        let tx = self.immediate(OP)?;
        tx.execute("DELETE FROM ports WHERE container_id = ?1", [container_id])
            .map_err(sql_err(&self.path, OP))?;
        for p in ports {
            tx.execute(
                &format!("INSERT INTO ports ({PORT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5)"),
                params![
                    container_id,
                    p.mapping.proto.as_str(),
                    p.mapping.host_addr().to_string(),
                    p.mapping.host_port(),
                    p.mapping.container_port
                ],
            )
            .map_err(sql_err(&self.path, OP))?;
        }
        tx.commit().map_err(sql_err(&self.path, OP))
    }

    pub fn container_ports(&self, container_id: &str) -> Result<Vec<PortRecord>, StateError> {
        self.collect(
            "list published ports",
            &format!("SELECT {PORT_COLUMNS} FROM ports WHERE container_id = ?1 ORDER BY rowid"),
            [container_id],
            row_to_port,
        )
    }

    pub fn ports(&self) -> Result<Vec<PortRecord>, StateError> {
        self.collect(
            "list published ports",
            &format!("SELECT {PORT_COLUMNS} FROM ports ORDER BY container_id, rowid"),
            [],
            row_to_port,
        )
    }

    /// DNS: IPs (leases on one of `network_ids`) of containers whose name, alias on that
    /// network, or 12-char id prefix is `name` (ASCII case-insensitive), each IP once.
    pub fn resolve_on_networks(
        &self,
        network_ids: &[String],
        name: &str,
    ) -> Result<Vec<String>, StateError> {
        let ids = serde_json::to_string(network_ids).expect("strings serialize");
        // SQLite's lower() folds ASCII only, which is what DNS names need.
        self.collect(
            "resolve name",
            "SELECT l.ip FROM leases l
             JOIN containers c ON c.id = l.container_id
             LEFT JOIN container_endpoints e
               ON e.container_id = l.container_id AND e.network_id = l.network_id
             WHERE l.network_id IN (SELECT value FROM json_each(?1))
               AND (lower(c.name) = lower(?2)
                    OR substr(c.id, 1, 12) = lower(?2)
                    OR EXISTS (SELECT 1 FROM json_each(e.aliases) a
                               WHERE lower(a.value) = lower(?2)))
             GROUP BY l.ip
             ORDER BY min(l.rowid)",
            params![ids, name],
            |r| r.get(0),
        )
    }
}

#[cfg(test)]
mod tests;
