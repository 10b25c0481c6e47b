//! The engine: the one place that joins the state database, the content store, the
//! registry client and the layer store. Every front end (CLI, later the API server and
//! compose) goes through it; all writes to the store happen here.

mod clock;
mod config;
mod container_config;
mod containers;
mod error;
mod filters;
pub mod helper;
mod host;
mod images;
mod names;
mod networks;
mod perms;
pub mod process;
mod request;
mod services;
mod store;
mod stored;
mod system;
#[cfg(test)]
mod testing;
mod timestamp;
mod volumes;

pub use config::{
    EngineConfig, FirewallFactory, RunDir, RuntimeFactory, DEFAULT_RUN_DIR, NETWORK_CONFIG_PATH,
};
pub use container_config::{Config as ContainerConfig, HostConfig, MountPoint, StoredConfig};
pub use containers::attach_session::{AttachEnd, AttachError, AttachSession};
pub use containers::container_inspect::{ContainerInspect, InspectState};
pub use containers::container_prune::ContainerPruneReport;
pub use containers::cp::{CopyIn, CopyOptions, CopyOut, CopyReport, CpError};
pub use containers::exec::ExecRequest;
pub use containers::exec_session::{ExecSession, ExecSessionError};
pub use containers::health::{Health, HealthcheckResult};
pub use containers::lifecycle::{BootReport, Started};
pub use containers::logs::LogsOptions;
pub use containers::monitor::MonitorArgs;
pub use containers::ps::{command_text, human_duration, ContainerSummary, ListOptions};
pub use containers::run::PreparedContainer;
pub use containers::stats::{StatsError, StatsReader, StatsSample, StatsTarget};
pub use containers::top::{ProcessList, TopError};
pub use coracle_state::ContainerState;
pub use error::EngineError;
pub use error::TeardownError;
pub use filters::Filters;
pub use helper::{Helper, HelperArgsError};
pub use images::auth::{login, logout};
pub use images::image_filters::{split_tag, ImageListFilter};
pub use images::lookup::{familiar, familiar_key};
pub use images::pull::{LayerEvent, PullOptions, PullOutcome, PullProgress, PullStatus};
pub use images::push::{PushEvent, PushOptions};
pub use images::search::SearchResult;
pub use images::{ImageSummary, PruneReport, RemoveEvent};
pub use networks::{EndpointRequest, NetworkCreateRequest, NetworkSummary};
pub use request::RunRequest;
pub use services::{Containers, Images, Networks, System, Volumes};
pub use store::{default_root, StorePaths, DEFAULT_ROOT};
pub use stored::ContainerRuntimeConfig;
pub use system::disk_usage::{DiskUsage, ImageUsage, VolumeUsage};
pub use system::info::{RuntimeInfo, SystemInfo};
pub use system::repair::{
    repair_store, Lost, RecordSource, RecoveredContainer, RecoveredImage, RepairReport,
};
pub use timestamp::parse_timestamp;

use config::LazyRegistryConfig;
use coracle_image::{ContentStore, RegistryClient};
use coracle_rootfs::LayerStore;
use coracle_state::Db;
use std::path::PathBuf;

/// How long a dead pull's partial download is kept for a later pull to resume.
const KEEP_PARTIAL_DOWNLOADS: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

pub struct Engine {
    paths: StorePaths,
    db: Db,
    content: ContentStore,
    layers: LayerStore,
    registry_config: LazyRegistryConfig,
    /// `network.toml` (see `network`).
    network_config: PathBuf,
    run_dir: RunDir,
    runtimes: RuntimeFactory,
    firewall: FirewallFactory,
    /// Bytes of dead processes' leftovers removed when this engine opened (prune
    /// counts them as reclaimed).
    collected: u64,
}

impl Engine {
    /// Open (creating if needed) the store at `root` with the default configuration
    /// (see [`EngineConfig::new`]).
    pub fn open(root: impl Into<PathBuf>) -> Result<Engine, EngineError> {
        Engine::with_config(EngineConfig::new(root))
    }

    /// Open (creating if needed) the store `config.root`, private to its owner (see
    /// `perms`), and remove what interrupted pulls left behind.
    pub fn with_config(config: EngineConfig) -> Result<Engine, EngineError> {
        let paths = StorePaths::new(config.root);
        tracing::debug!(root = %paths.root.display(), "opening the store");
        perms::check_owner(&paths.root)?;
        perms::secure_store(&paths, &config.run_dir)?;
        let db = Db::open(&paths.database())?;
        let content = ContentStore::open(&paths.blobs())?;
        let layers = LayerStore::open(paths.layers())?;
        let mut engine = Engine {
            paths,
            db,
            content,
            layers,
            registry_config: LazyRegistryConfig::new(config.registries),
            network_config: config.network,
            run_dir: config.run_dir,
            runtimes: config.runtimes,
            firewall: config.firewall,
            collected: 0,
        };
        engine.collected = engine.collect_incomplete();
        engine.drop_unmade_containers();
        Ok(engine)
    }

    /// Registry I/O is async; the engine's callers are not. Each registry operation
    /// gets a small runtime of its own (two workers: downloads overlap, and the
    /// unpack threads are blocking threads outside it).
    fn registry_client(
        &self,
        tls_verify: Option<bool>,
    ) -> Result<(tokio::runtime::Runtime, RegistryClient), EngineError> {
        let config = self.registry_config.get()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(EngineError::io("start async runtime", &self.paths.root))?;
        let client = RegistryClient::new(config, tls_verify)?;
        Ok((runtime, client))
    }

    pub fn paths(&self) -> &StorePaths {
        &self.paths
    }

    pub fn run_dir(&self) -> &RunDir {
        &self.run_dir
    }

    /// The OCI runtime `name` selects (empty: the built-in one), its state in this
    /// engine's run directory.
    fn runtime(
        &self,
        name: &str,
    ) -> Result<Box<dyn coracle_runtime::runtime::Runtime>, coracle_runtime::runtime::RuntimeError>
    {
        (self.runtimes)(name, &self.run_dir.runtime_state())
    }

    /// Leftovers of processes that died mid-write are recognisable by their temp names
    /// and dead owner pids; removing them is always safe, so failures are ignored here
    /// and retried on the next start. Partial downloads younger than a day stay: the
    /// next pull of the blob resumes them (`image prune` removes them). Returns the
    /// bytes removed.
    fn collect_incomplete(&self) -> u64 {
        let blobs = self
            .content
            .gc_incomplete(Some(KEEP_PARTIAL_DOWNLOADS))
            .map_or(0, |c| c.bytes);
        let layers = self.layers.gc_incomplete().map_or(0, |(_, bytes)| bytes);
        blobs + layers
    }
}
