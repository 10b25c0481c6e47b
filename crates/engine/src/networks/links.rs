//! `--link`, as docker has it. On the default network, legacy links: the linked
//! container must exist at create and run at each start, and the new container gets
//! an /etc/hosts line `IP alias hostname name` and the variables docker's
//! `daemon/links` makes (`ALIAS_PORT`, `ALIAS_NAME`, `ALIAS_ENV_*`...). On a
//! user-defined network a link is an alias only this container's DNS answers.

use crate::container_config::StoredConfig;
pub use crate::stored::LegacyLink;
use crate::stored::{NetMode, DEFAULT_NETWORK};
use crate::{Engine, EngineError};
use coracle_model::{ContainerSpec, NetworkMode};
use coracle_state::ContainerRecord;
use std::net::IpAddr;

/// `--link` on a user-defined network, as `(ALIAS, NAME)`.
pub(crate) type LinkAliases = Vec<(String, String)>;

/// Where a linked container notes the containers that link to it (one empty file
/// per id).
const LINKED_BY: &str = "linked-by";

struct Linked {
    child: ContainerRecord,
    ip: IpAddr,
    names: String,
}

/// What a container's legacy links give it at a start.
pub(crate) struct LinkedNames {
    /// `/etc/hosts` lines: the names (space-separated) and the address.
    pub hosts: Vec<(String, IpAddr)>,
    pub env: Vec<String>,
}

impl Engine {
    /// At create, docker's `registerLinks`: on a user-defined network the links are
    /// DNS aliases (`alias -> name`, nothing checked); elsewhere each linked container
    /// must exist (one on another's network stands for that one) and must not share
    /// the host's network.
    pub(crate) fn resolve_links(
        &mut self,
        opts: &ContainerSpec,
    ) -> Result<(Vec<LegacyLink>, LinkAliases), EngineError> {
        if let NetworkMode::Named(n) = &opts.network {
            if n != DEFAULT_NETWORK {
                let aliases = opts
                    .links
                    .iter()
                    .map(|l| (l.alias.clone(), l.name.clone()))
                    .collect();
                return Ok((Vec::new(), aliases));
            }
        }
        let mut out = Vec::new();
        for l in &opts.links {
            let mut key = l.name.clone();
            let child = loop {
                let c = self.find_container(&key).map_err(|e| match e {
                    EngineError::NoSuchContainer(_) => EngineError::InvalidArgument(format!(
                        "could not get container for {key}: No such container: {key}"
                    )),
                    e => e,
                })?;
                match self.container_config(&c.id)?.network.mode {
                    NetMode::Container(target) => key = target,
                    NetMode::Host => {
                        return Err(EngineError::InvalidArgument(
                            "conflicting options: host type networking can't be used with links. This would result in undefined behavior".into(),
                        ))
                    }
                    _ => break c,
                }
            };
            // A later link with the same alias replaces an earlier one (docker's map).
            out.retain(|o: &LegacyLink| o.alias != l.alias);
            out.push(LegacyLink {
                id: child.id,
                alias: l.alias.clone(),
            });
        }
        Ok((out, Vec::new()))
    }

    /// At start, docker's `setupLinkedContainers` and `addLegacyLinks`: every linked
    /// container must run on the default network; its address goes into /etc/hosts
    /// and its ports, name and environment into variables.
    pub(crate) fn linked_names(
        &mut self,
        id: &str,
        links: &[LegacyLink],
    ) -> Result<LinkedNames, EngineError> {
        let mut out = LinkedNames {
            hosts: Vec::new(),
            env: Vec::new(),
        };
        if links.is_empty() {
            return Ok(out);
        }
        let parent = self
            .db
            .container(id)?
            .ok_or_else(|| EngineError::NoSuchContainer(id.to_string()))?;
        let default = self.default_network()?;
        for link in links {
            let link_name = format!("/{}/{}", parent.name, link.alias);
            let l = self.linked(&link_name, link, &default.id, None)?;
            let stored = StoredConfig::parse(&l.child.config);
            let ports: Vec<String> = stored
                .config
                .exposed_ports
                .as_ref()
                .map(|p| p.keys().cloned().collect())
                .unwrap_or_default();
            out.env.extend(link_env(
                &link_name,
                &l.ip.to_string(),
                stored.config.env.as_deref().unwrap_or(&[]),
                &ports,
            ));
            out.hosts.push((l.names, l.ip));
        }
        self.mark_linked_by(id, links)?;
        Ok(out)
    }

    /// One linked container as a start needs it: running (or being started: `starting`
    /// is the container whose start is under way), with its address on the default
    /// network and its /etc/hosts names (`alias hostname [name]`).
    fn linked(
        &self,
        link_name: &str,
        link: &LegacyLink,
        default_network: &str,
        starting: Option<&str>,
    ) -> Result<Linked, EngineError> {
        let child = self
            .db
            .container(&link.id)?
            .filter(|c| c.state.is_up() || starting == Some(c.id.as_str()));
        let Some(child) = child else {
            let name = self
                .db
                .container(&link.id)?
                .map_or(link.id.clone(), |c| c.name);
            return Err(EngineError::Conflict(format!(
                "Cannot link to a non running container: /{name} AS {link_name}"
            )));
        };
        let ip = self
            .db
            .leases_of_container(&child.id)?
            .into_iter()
            .find(|l| l.network_id == default_network)
            .map(|l| IpAddr::V4(l.ip))
            .ok_or_else(|| {
                EngineError::Conflict(format!(
                    "container {} not attached to default bridge network",
                    child.id
                ))
            })?;
        let hostname = StoredConfig::parse(&child.config).config.hostname;
        let mut names = format!("{} {hostname}", link.alias);
        if link.alias != child.name {
            names.push(' ');
            names.push_str(&child.name);
        }
        Ok(Linked { child, ip, names })
    }

    /// Notes `parent` in each linked container's directory, so that the linked
    /// container's next start can find the containers whose /etc/hosts name it
    /// without reading every container's config.
    fn mark_linked_by(&self, parent: &str, links: &[LegacyLink]) -> Result<(), EngineError> {
        for l in links {
            let dir = self.containers_dir().join(&l.id).join(LINKED_BY);
            crate::perms::private_dir(&dir).map_err(EngineError::io("create", &dir))?;
            let file = dir.join(parent);
            crate::perms::write_private(&file, b"").map_err(EngineError::io("write", &file))?;
        }
        Ok(())
    }

    /// docker's `addLegacyLinks` for the other side: once `id` has its address on the
    /// default network (a restart may give it another), the running containers
    /// linking to it get their /etc/hosts rewritten. Best effort, as a failure here
    /// must not stop `id` from starting.
    pub(crate) fn update_linking_containers(&mut self, id: &str) {
        let dir = self.containers_dir().join(id).join(LINKED_BY);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return;
        };
        for e in entries.flatten() {
            let parent = e.file_name().to_string_lossy().into_owned();
            match self.db.container(&parent) {
                Ok(Some(p)) if p.is_active() => {
                    if let Err(err) = self.rewrite_linked_hosts(&p, id) {
                        tracing::debug!(parent = %parent, error = %err, "linked /etc/hosts not updated");
                    }
                }
                Ok(None) => {
                    let _ = std::fs::remove_file(e.path());
                }
                _ => {}
            }
        }
    }

    fn rewrite_linked_hosts(
        &mut self,
        parent: &ContainerRecord,
        starting: &str,
    ) -> Result<(), EngineError> {
        let cfg = self.container_config(&parent.id)?;
        let default = self.default_network()?;
        let own = self
            .db
            .leases_of_container(&parent.id)?
            .into_iter()
            .find(|l| l.network_id == default.id)
            .map(|l| IpAddr::V4(l.ip));
        // The linked containers that do not run now keep no line (docker keeps a
        // stale one; there is no address to give them).
        let hosts: Vec<(String, IpAddr)> = cfg
            .network
            .legacy_links
            .iter()
            .filter_map(|link| {
                let link_name = format!("/{}/{}", parent.name, link.alias);
                self.linked(&link_name, link, &default.id, Some(starting))
                    .ok()
                    .map(|l| (l.names, l.ip))
            })
            .collect();
        self.write_hosts(&parent.id, &cfg, own, &hosts)
    }

    /// `HostConfig.Links` as docker's inspect shows it, with today's names:
    /// `/linked:/this/alias`.
    pub(crate) fn links_for_inspect(&self, name: &str, links: &[LegacyLink]) -> Vec<String> {
        links
            .iter()
            .filter_map(|l| {
                let child = self.db.container(&l.id).ok()??;
                Some(format!("/{}:/{name}/{}", child.name, l.alias))
            })
            .collect()
    }
}

/// docker's `links.Link.ToEnv`: for the lowest port (tcp first) `ALIAS_PORT`, for
/// each port `ALIAS_PORT_<n>_<PROTO>` with `_ADDR`, `_PORT`, `_PROTO`, a run of
/// consecutive ports also `_START`/`_END`; then `ALIAS_NAME` and the linked
/// container's variables as `ALIAS_ENV_*` (not HOME or PATH, which builds add).
pub(crate) fn link_env(link_name: &str, ip: &str, env: &[String], ports: &[String]) -> Vec<String> {
    let alias = link_name
        .rsplit('/')
        .next()
        .unwrap_or(link_name)
        .to_uppercase()
        .replace('-', "_");
    let mut ports: Vec<(u16, String)> = ports
        .iter()
        .filter_map(|p| {
            let (n, proto) = p.split_once('/').unwrap_or((p, "tcp"));
            Some((n.parse().ok()?, proto.to_string()))
        })
        .collect();
    ports.sort_by(|a, b| {
        let tcp = |p: &(u16, String)| p.1 != "tcp";
        (tcp(a), &a.1, a.0).cmp(&(tcp(b), &b.1, b.0))
    });
    let mut out = Vec::new();
    // docker's loop as it is: a run of ports is reported once the next port breaks it
    // (or at the end), so its _START/_END come after that next port's variables.
    let (mut start, mut end) = (0usize, 0usize);
    for (i, (n, proto)) in ports.iter().enumerate() {
        if i == 0 {
            out.push(format!("{alias}_PORT={proto}://{ip}:{n}"));
        }
        let prefix = format!("{alias}_PORT_{n}_{}", proto.to_uppercase());
        out.push(format!("{prefix}={proto}://{ip}:{n}"));
        out.push(format!("{prefix}_ADDR={ip}"));
        out.push(format!("{prefix}_PORT={n}"));
        out.push(format!("{prefix}_PROTO={proto}"));
        let (e, ep) = &ports[end];
        if u32::from(*n) == u32::from(*e) + 1 && proto == ep {
            end = i;
            if i < ports.len() - 1 {
                continue;
            }
        }
        if end != start {
            let ((s, sp), (e, ep)) = (&ports[start], &ports[end]);
            let prefix = format!("{alias}_PORT_{s}_{}", sp.to_uppercase());
            out.push(format!("{prefix}_START={sp}://{ip}:{s}"));
            out.push(format!("{prefix}_PORT_START={s}"));
            out.push(format!("{prefix}_END={ep}://{ip}:{e}"));
            out.push(format!("{prefix}_PORT_END={e}"));
        }
        (start, end) = (i, i);
    }
    out.push(format!("{alias}_NAME={link_name}"));
    for e in env {
        let Some((k, v)) = e.split_once('=') else {
            continue;
        };
        if k == "HOME" || k == "PATH" {
            continue;
        }
        out.push(format!("{alias}_ENV_{k}={v}"));
    }
    out
}

/// The process environment with the links' variables: after docker's PATH, HOSTNAME
/// and TERM, before the image's and `-e` ones, which win over a link's of the same
/// name (docker's `CreateDaemonEnvironment`).
pub(crate) fn with_link_env(base: &[String], links: &[String]) -> Vec<String> {
    let key = |e: &str| e.split_once('=').map_or(e, |(k, _)| k).to_string();
    let lead = base
        .iter()
        .take_while(|e| matches!(key(e).as_str(), "PATH" | "HOSTNAME" | "TERM"))
        .count();
    let mut out = base[..lead].to_vec();
    out.extend(
        links
            .iter()
            .filter(|l| !base.iter().any(|b| key(b) == key(l)))
            .cloned(),
    );
    out.extend_from_slice(&base[lead..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn env_as_docker_links_make_it() {
        let env = link_env(
            "/app/my-db",
            "172.17.0.2",
            &s(&["PATH=/bin", "HOME=/root", "PASSWORD=x=y"]),
            &s(&["6379/tcp", "53/udp", "5432/tcp", "5433/tcp"]),
        );
        assert_eq!(
            env,
            s(&[
                "MY_DB_PORT=tcp://172.17.0.2:5432",
                "MY_DB_PORT_5432_TCP=tcp://172.17.0.2:5432",
                "MY_DB_PORT_5432_TCP_ADDR=172.17.0.2",
                "MY_DB_PORT_5432_TCP_PORT=5432",
                "MY_DB_PORT_5432_TCP_PROTO=tcp",
                "MY_DB_PORT_5433_TCP=tcp://172.17.0.2:5433",
                "MY_DB_PORT_5433_TCP_ADDR=172.17.0.2",
                "MY_DB_PORT_5433_TCP_PORT=5433",
                "MY_DB_PORT_5433_TCP_PROTO=tcp",
                "MY_DB_PORT_6379_TCP=tcp://172.17.0.2:6379",
                "MY_DB_PORT_6379_TCP_ADDR=172.17.0.2",
                "MY_DB_PORT_6379_TCP_PORT=6379",
                "MY_DB_PORT_6379_TCP_PROTO=tcp",
                "MY_DB_PORT_5432_TCP_START=tcp://172.17.0.2:5432",
                "MY_DB_PORT_5432_TCP_PORT_START=5432",
                "MY_DB_PORT_5432_TCP_END=tcp://172.17.0.2:5433",
                "MY_DB_PORT_5432_TCP_PORT_END=5433",
                "MY_DB_PORT_53_UDP=udp://172.17.0.2:53",
                "MY_DB_PORT_53_UDP_ADDR=172.17.0.2",
                "MY_DB_PORT_53_UDP_PORT=53",
                "MY_DB_PORT_53_UDP_PROTO=udp",
                "MY_DB_NAME=/app/my-db",
                "MY_DB_ENV_PASSWORD=x=y",
            ])
        );
        assert_eq!(link_env("/a/b", "10.0.0.2", &[], &[]), s(&["B_NAME=/a/b"]));
    }

    #[test]
    fn link_variables_sit_after_the_defaults_and_yield_to_the_containers() {
        let base = s(&["PATH=/bin", "HOSTNAME=h", "DB_NAME=mine", "HOME=/"]);
        let links = s(&["DB_NAME=/a/db", "DB_PORT=tcp://1.2.3.4:5"]);
        assert_eq!(
            with_link_env(&base, &links),
            s(&[
                "PATH=/bin",
                "HOSTNAME=h",
                "DB_PORT=tcp://1.2.3.4:5",
                "DB_NAME=mine",
                "HOME=/"
            ])
        );
    }
}
