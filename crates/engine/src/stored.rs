//! What is stored for a container beside its bundle (`container.json`): how its monitor
//! runs it, restarts it and networks it. Shared by the modules that create, run,
//! network and inspect containers, so it belongs to none of them.

use coracle_core::PortMapping;
use coracle_model::{HealthConfig, LogOptions, RestartPolicy};
use coracle_rootfs::snapshot::RootfsMount;
use std::net::IpAddr;

/// The network every container joins unless told otherwise (docker's `bridge`).
pub const DEFAULT_NETWORK: &str = "bridge";

/// What the monitor needs, stored beside the bundle as `container.json`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ContainerRuntimeConfig {
    pub id: String,
    pub name: String,
    pub rm: bool,
    pub tty: bool,
    pub interactive: bool,
    /// None: the built-in runtime.
    pub runtime: Option<String>,
    pub rootfs: RootfsMount,
    #[serde(default)]
    pub restart: RestartPolicy,
    #[serde(default)]
    pub log: LogOptions,
    /// The merged health check (image's HEALTHCHECK and `--health-*`); None or
    /// `NONE`: no check.
    #[serde(default)]
    pub health: Option<HealthConfig>,
    /// Signal `stop` sends first (`--stop-signal`, the image's STOPSIGNAL, SIGTERM).
    #[serde(default = "default_stop_signal")]
    pub stop_signal: i32,
    /// Seconds `stop` waits before SIGKILL (`--stop-timeout`, docker's 10).
    #[serde(default = "default_stop_timeout")]
    pub stop_timeout: i64,
    /// Volumes made for this container's anonymous mounts (`rm -v` and `--rm` remove
    /// them).
    #[serde(default)]
    pub anonymous_volumes: Vec<String>,
    /// `--group-add` as given (names resolved in the container's /etc/group): `exec -u`
    /// applies them too, as docker's.
    #[serde(default)]
    pub group_add: Vec<String>,
    /// How it is networked (containers made before networks: `none`/host as their
    /// spec says).
    #[serde(default)]
    pub network: NetworkConfig,
    /// The spec's `linux.cgroupsPath` (`--cgroup-parent`); None: made before the flag,
    /// so the default one.
    #[serde(default)]
    pub cgroups_path: Option<String>,
}

impl ContainerRuntimeConfig {
    /// The container's cgroups path, in every hierarchy.
    pub fn cgroups_path(&self) -> String {
        self.cgroups_path
            .clone()
            .unwrap_or_else(|| coracle_model::defaults::cgroups_path(&self.id))
    }
}

pub(crate) fn default_stop_signal() -> i32 {
    libc::SIGTERM
}

pub(crate) fn default_stop_timeout() -> i64 {
    10
}

/// How a container is networked, as its monitor needs to know at each start.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum NetMode {
    /// The runtime's own namespace (containers made before networks, or `host`).
    #[default]
    None,
    /// `--network none`: a namespace of its own with loopback up (docker's), made by
    /// the monitor at `/run/coracle/netns/ID`.
    Loopback,
    Host,
    /// Its own namespace on the networks recorded as its endpoints.
    Bridge,
    /// Another container's namespace (that container's id).
    Container(String),
}

/// The network part of a container's `container.json`.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct NetworkConfig {
    pub mode: NetMode,
    /// `-p` and `-P`, as host ports to reserve at each start.
    #[serde(default)]
    pub publish: Vec<PortMapping>,
    /// Its /etc/hosts line names, rewritten with its address at start.
    #[serde(default)]
    pub hostname: String,
    /// `--add-host`, host-gateway already resolved.
    #[serde(default)]
    pub extra_hosts: Vec<(String, IpAddr)>,
    /// Where the embedded DNS server sends names it does not know: `--dns`, else the
    /// host's resolvers.
    #[serde(default)]
    pub dns_upstreams: Vec<String>,
    /// `--link` on the default network (docker's legacy links), checked and put into
    /// /etc/hosts and the environment at each start.
    #[serde(default)]
    pub legacy_links: Vec<LegacyLink>,
    /// With legacy links: the process environment before the links' variables.
    #[serde(default)]
    pub link_base_env: Vec<String>,
    /// `--link NAME:ALIAS` on a user-defined network, as `(ALIAS, NAME)`: this
    /// container's DNS answers ALIAS as NAME.
    #[serde(default)]
    pub link_aliases: Vec<(String, String)>,
}

/// A legacy link: the linked container's id and the alias this container knows it by.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LegacyLink {
    pub id: String,
    pub alias: String,
}
