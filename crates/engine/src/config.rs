//! What an engine is opened with: its store, its run directory, how it gets an OCI
//! runtime and a firewall driver, and where its configuration files are. The binary
//! opens every engine with [`EngineConfig::new`]'s defaults; tests pass fakes, and
//! rootless mode will pass its own directories and network backend.

use crate::EngineError;
use coracle_image::RegistryConfig;
use coracle_net::firewall::{FirewallDriver, Nftables};
use coracle_runtime::runtime::{Runtime, RuntimeError};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

/// The run directory of rootful stores (all of them share it).
pub const DEFAULT_RUN_DIR: &str = "/run/coracle";

/// Where the default network's subnet and the address pools may be configured
/// (`$CORACLE_NETWORK_CONFIG` overrides the path).
pub const NETWORK_CONFIG_PATH: &str = "/etc/coracle/network.toml";

/// Gives the runtime a container selects by name (`youki`, empty for the built-in
/// one, `crun`, a path), keeping its state under the given directory.
pub type RuntimeFactory =
    Arc<dyn Fn(&str, &Path) -> Result<Box<dyn Runtime>, RuntimeError> + Send + Sync>;

/// Gives the driver of one store's firewall table (the table's name).
pub type FirewallFactory = Arc<dyn Fn(&str) -> Box<dyn FirewallDriver> + Send + Sync>;

/// Everything an [`Engine`](crate::Engine) is opened with.
#[derive(Clone)]
pub struct EngineConfig {
    /// The store: database, blobs, layers, containers, volumes.
    pub root: PathBuf,
    pub run_dir: RunDir,
    pub runtimes: RuntimeFactory,
    pub firewall: FirewallFactory,
    /// `registries.toml`, read on the first registry operation.
    pub registries: PathBuf,
    /// `network.toml`, read when a network's subnet is chosen.
    pub network: PathBuf,
}

impl EngineConfig {
    /// The store at `root` with everything else as the binary has it: `/run/coracle`,
    /// the runtimes `runtime::select` knows, nftables, and the configuration files at
    /// their usual paths (or where the environment points).
    pub fn new(root: impl Into<PathBuf>) -> EngineConfig {
        EngineConfig {
            root: root.into(),
            run_dir: RunDir::default(),
            runtimes: Arc::new(coracle_runtime::runtime::select),
            firewall: Arc::new(|table: &str| -> Box<dyn FirewallDriver> {
                Box::new(Nftables::with_table(table))
            }),
            registries: RegistryConfig::default_path(),
            network: std::env::var_os("CORACLE_NETWORK_CONFIG")
                .map(PathBuf::from)
                .unwrap_or_else(|| NETWORK_CONFIG_PATH.into()),
        }
    }
}

/// State that must not outlive a reboot (tmpfs, as docker's and podman's): runtime
/// state, attach sockets, network namespaces, records of the firewall's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunDir(PathBuf);

impl Default for RunDir {
    fn default() -> Self {
        RunDir(DEFAULT_RUN_DIR.into())
    }
}

impl RunDir {
    pub fn new(path: impl Into<PathBuf>) -> RunDir {
        RunDir(path.into())
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// The runtimes' container state (each runtime in a subdirectory) and exec's
    /// console sockets.
    pub fn runtime_state(&self) -> PathBuf {
        self.0.join("runtime")
    }

    /// Where the namespaces of containers with a network of their own are bound.
    pub fn netns_dir(&self) -> PathBuf {
        self.0.join("netns")
    }

    pub fn netns(&self, container_id: &str) -> PathBuf {
        self.netns_dir().join(container_id)
    }

    /// The monitor's socket that attach clients connect to.
    pub fn attach_socket(&self, container_id: &str) -> PathBuf {
        coracle_runtime::monitor::attach::socket_path(&self.0, container_id)
    }
}

/// `registries.toml`, read on first use: only registry operations need it, so a bad
/// file fails those and nothing else (monitors, health probes, `ps`).
pub(crate) struct LazyRegistryConfig {
    path: PathBuf,
    loaded: OnceLock<RegistryConfig>,
}

impl LazyRegistryConfig {
    pub(crate) fn new(path: PathBuf) -> LazyRegistryConfig {
        LazyRegistryConfig {
            path,
            loaded: OnceLock::new(),
        }
    }

    /// One already loaded (a store being repaired reaches no registry).
    pub(crate) fn given(config: RegistryConfig) -> LazyRegistryConfig {
        LazyRegistryConfig {
            path: PathBuf::new(),
            loaded: OnceLock::from(config),
        }
    }

    pub(crate) fn get(&self) -> Result<&RegistryConfig, EngineError> {
        if let Some(config) = self.loaded.get() {
            return Ok(config);
        }
        let config = RegistryConfig::load_from(&self.path)?;
        Ok(self.loaded.get_or_init(|| config))
    }
}
