//! What a container is, as docker's flags say it: `coracle run` flag values parsed into
//! typed values with docker's rules and error wording, and docker's defaults as data
//! (`defaults`). Pure: nothing here reads files or the environment (the caller passes an
//! env lookup and file contents), except the `host_has_*` probes of /sys.

mod cgroups;
mod command;
pub mod defaults;
mod lifecycle;
mod links;
mod mounts;
mod network;
mod process;
mod resolve;
mod resources;
mod update;

use coracle_core::PortMapping;
use std::collections::BTreeMap;

pub use cgroups::{
    host_has_blkio_throttle, host_has_blkio_weight_device, host_has_oom_kill_disable,
    parse_cgroup_parent, parse_cgroupns, parse_device_cgroup_rule, parse_throttle_bps,
    parse_throttle_iops, parse_userns, parse_weight_device, BlkioThrottles, DeviceCgroupRule,
    ThrottleDevice, WeightDevice,
};
pub use lifecycle::{
    merge_health, parse_detach_keys, parse_go_duration, parse_labels, parse_log_options,
    parse_restart, parse_signal, HealthConfig, HealthFlags, LogOptions, RestartPolicy,
    DEFAULT_DETACH_KEYS,
};
pub use links::{parse_attach, parse_link, parse_volumes_from, AttachStreams, Link, VolumesFrom};
pub use mounts::{
    check_proc_mount, clean_path, merge_tmpfs_options, parse_mount, parse_tmpfs, parse_volume,
    validate_volume_name, MountRequest, Propagation, Relabel, TmpfsMount,
};
pub use network::*;
pub use process::{
    parse_capability, parse_env, parse_env_file, parse_group_add, parse_namespace_mode,
    parse_network, parse_security_opt, parse_sysctl, parse_user, resolve_capabilities,
    valid_label_option, IdRef, NamespaceMode, NetworkMode, SeccompOption, SecurityOptions,
    SysctlContext, UserSpec,
};
pub use resources::{
    cpuset_members, host_cpuset_mems, host_has_blkio_weight, host_has_memory_swappiness,
    parse_blkio_weight, parse_cpu_cfs, parse_cpu_shares, parse_cpus, parse_cpuset,
    parse_cpuset_mems, parse_device, parse_memory, parse_memory_reservation, parse_memory_swap,
    parse_memory_swappiness, parse_oom_score_adj, parse_pids_limit, parse_ram_in_bytes,
    parse_shm_size, parse_ulimit, BlkioDevice, CpuQuota, DeviceMapping, Resources, Ulimit,
};

pub use command::{merge_env, resolve_command, EnvContext};
pub use resolve::{
    hostname, resolve, HostFacts, ImageDefaults, ResolvedContainer, DEFAULT_STOP_TIMEOUT,
};
pub use resources::{
    host_cpuset_cpus, host_has_swap_limit, parse_pids_limit_update, BLKIO_WEIGHT_DISCARDED,
    SWAP_LIMIT_DISCARDED,
};
pub use update::UpdateOptions;

/// A bad `run` flag value. Every variant is the user's mistake (InvalidArgument).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OptionsError {
    /// docker's wording: `invalid argument "12x" for "-m, --memory" flag: ...`.
    #[error("invalid argument \"{value}\" for \"{flag}\" flag: {reason}")]
    InvalidArgument {
        flag: &'static str,
        value: String,
        reason: String,
    },
    /// A rule across flags, or one docker reports without the flag prefix.
    #[error("{0}")]
    Invalid(String),
    #[error("{option} is not supported by coracle: {hint}")]
    Unsupported { option: String, hint: String },
}

impl OptionsError {
    pub fn kind(&self) -> coracle_core::ErrorKind {
        coracle_core::ErrorKind::InvalidArgument
    }
}

pub(crate) fn bad(flag: &'static str, value: &str, reason: impl Into<String>) -> OptionsError {
    OptionsError::InvalidArgument {
        flag,
        value: value.to_string(),
        reason: reason.into(),
    }
}

/// When to pull the image (`--pull`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PullPolicy {
    #[default]
    Missing,
    Always,
    Never,
}

pub fn parse_pull_policy(s: &str) -> Result<PullPolicy, OptionsError> {
    match s {
        "missing" => Ok(PullPolicy::Missing),
        "always" => Ok(PullPolicy::Always),
        "never" => Ok(PullPolicy::Never),
        _ => Err(bad(
            "--pull",
            s,
            "invalid pull option: must be one of \"always\", \"missing\" or \"never\"",
        )),
    }
}

/// The resource limits asked for, before docker's defaulting (see [`ContainerSpec::resources`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResourceOptions {
    /// `-m, --memory` in bytes.
    pub memory: Option<i64>,
    /// `--memory-swap` (memory + swap) in bytes, `-1` unlimited.
    pub memory_swap: Option<i64>,
    pub cpus: Option<CpuQuota>,
    pub cpu_shares: Option<u64>,
    pub cpuset_cpus: Option<String>,
    /// None = unlimited.
    pub pids_limit: Option<i64>,
    /// `--cpu-period` in µs (0 = the kernel's).
    pub cpu_period: Option<i64>,
    /// `--cpu-quota` in µs (0 = unset, -1 = unlimited).
    pub cpu_quota: Option<i64>,
    /// `--memory-reservation` in bytes (soft limit).
    pub memory_reservation: Option<i64>,
    /// `--memory-swappiness` 0..=100.
    pub memory_swappiness: Option<u64>,
    /// `--cpuset-mems`.
    pub cpuset_mems: Option<String>,
    /// `--blkio-weight` 10..=1000.
    pub blkio_weight: Option<u16>,
    /// `--blkio-weight-device`.
    pub blkio_weight_device: Vec<WeightDevice>,
    /// `--device-{read,write}-{bps,iops}`.
    pub blkio_throttles: BlkioThrottles,
    /// `--oom-kill-disable`: Some where the host has the knob (docker's `*bool`).
    pub oom_kill_disable: Option<bool>,
    /// `--cgroup-parent` as given (the cgroup path is [`ContainerSpec::cgroups_path`]).
    pub cgroup_parent: Option<String>,
    /// `--device-cgroup-rule`, in order.
    pub device_cgroup_rules: Vec<DeviceCgroupRule>,
}

/// What a container is, as `run`/`create` flags (docker's `Config`, `HostConfig` and
/// `NetworkingConfig`) say it: typed values. The CLI fills it with the parsers of this
/// crate (compose and the API server will too); [`resolve`] merges it with the image
/// and the host. What one invocation chooses beyond the container is [`RunChoices`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerSpec {
    // --- Docker semantics
    /// `--name`.
    pub name: Option<String>,
    /// `--entrypoint` (`Some("")` clears the image's entrypoint).
    pub entrypoint: Option<String>,
    /// The command arguments after the image.
    pub args: Vec<String>,
    /// `--env-file` entries then `-e` entries, in order, already looked up (`K=V`).
    pub env: Vec<String>,
    /// `-w, --workdir` (created if missing).
    pub workdir: Option<String>,
    pub user: Option<UserSpec>,
    /// `--group-add`.
    pub group_add: Vec<IdRef>,
    /// `-h, --hostname`.
    pub hostname: Option<String>,
    /// `--domainname`.
    pub domainname: Option<String>,
    pub rm: bool,
    /// `-i`.
    pub interactive: bool,
    /// `-t`.
    pub tty: bool,
    /// `--runtime`: None = built-in.
    pub runtime: Option<String>,

    // --- Isolation and limits
    pub network: NetworkMode,
    pub pid: NamespaceMode,
    pub ipc: NamespaceMode,
    pub uts: NamespaceMode,
    /// `--cgroupns` (private unless `host`, on every host: see the README).
    pub cgroupns: NamespaceMode,
    /// `--userns host` was given (nothing else is accepted).
    pub userns_host: bool,
    /// normalised (`CAP_X` or `ALL`).
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub privileged: bool,
    pub security: SecurityOptions,
    /// `--read-only`.
    pub read_only: bool,
    pub resources: ResourceOptions,
    pub ulimits: Vec<Ulimit>,
    pub shm_size: Option<u64>,
    pub devices: Vec<DeviceMapping>,
    /// `--init`.
    pub init: bool,
    /// `--oom-score-adj` (spec process.oomScoreAdj); None leaves the kernel's.
    pub oom_score_adj: Option<i32>,
    pub sysctls: BTreeMap<String, String>,

    // --- Network (the mode is `network` above)
    /// `-p, --publish`, one entry per container port.
    pub publish: Vec<PortMapping>,
    /// `-P, --publish-all`: every exposed port (image and `--expose`) on a random host port.
    pub publish_all: bool,
    /// `--expose`.
    pub expose: Vec<ExposedPort>,
    /// `--ip` on the (first) user-defined network.
    pub ip: Option<std::net::Ipv4Addr>,
    /// `--mac-address` of the (first) network's interface.
    pub mac_address: Option<[u8; 6]>,
    /// `--network-alias` on the (first) user-defined network.
    pub network_aliases: Vec<String>,
    /// `--dns`: nameservers instead of the host's / the embedded server's upstreams.
    pub dns: Vec<std::net::IpAddr>,
    /// `--dns-search` (`.` alone: no search line).
    pub dns_search: Vec<String>,
    /// `--dns-option`, verbatim (`ndots:2`).
    pub dns_options: Vec<String>,
    /// `--add-host`.
    pub extra_hosts: Vec<ExtraHost>,
    /// `--link`: legacy links on the default network, DNS aliases on a user network.
    pub links: Vec<Link>,

    // --- Volumes and mounts
    /// `-v`, `--mount` and `--tmpfs`, in command-line order.
    pub mounts: Vec<MountRequest>,
    /// `--volumes-from`, in command-line order.
    pub volumes_from: Vec<VolumesFrom>,

    // --- Lifecycle
    /// `--label`, `--label-file`.
    pub labels: BTreeMap<String, String>,
    pub restart: RestartPolicy,
    pub log: LogOptions,
    /// `--stop-signal` (None: the image's STOPSIGNAL, else SIGTERM).
    pub stop_signal: Option<i32>,
    /// `--stop-timeout` seconds (None: docker's 10).
    pub stop_timeout: Option<i64>,
    /// The `--health-*` flags, merged with the image's HEALTHCHECK at create.
    pub health: HealthFlags,
    /// `-a/--attach` (None: docker's default, stdout and stderr, stdin with `-i`; `-d`
    /// attaches none).
    pub attach: Option<AttachStreams>,
    /// `--cidfile`, as given (the CLI writes it; docker keeps the path in
    /// `HostConfig.ContainerIDFile`).
    pub cidfile: Option<String>,
}

/// The choices of one `run`/`create` invocation that are not part of the container
/// it makes (a compose service or an API request never carries them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunChoices {
    /// `-d`: print the id and return instead of attaching.
    pub detach: bool,
    /// `--sig-proxy` (default true): pass the signals `run` gets on to the container.
    pub sig_proxy: bool,
    /// `--detach-keys` (None: ctrl-p ctrl-q).
    pub detach_keys: Option<Vec<u8>>,
    /// `--pull`.
    pub pull: PullPolicy,
}

impl Default for RunChoices {
    fn default() -> RunChoices {
        RunChoices {
            detach: false,
            sig_proxy: true,
            detach_keys: None,
            pull: PullPolicy::Missing,
        }
    }
}

impl ContainerSpec {
    /// A container with docker's defaults for every flag.
    pub fn new() -> ContainerSpec {
        ContainerSpec::default()
    }

    /// Docker's checks across flags (those the daemon makes before creating anything):
    /// memory minimum, swap vs memory, duplicate mount points, sysctls vs host
    /// namespaces, `--sig-proxy` needs no tty... Messages follow docker's.
    pub fn validate(&self) -> Result<(), OptionsError> {
        self.resources.validate(false)?;
        if self.rm && self.restart != RestartPolicy::No {
            return Err(OptionsError::Invalid(
                "Conflicting options: --restart and --rm".into(),
            ));
        }
        self.validate_non_resources()
    }

    fn validate_non_resources(&self) -> Result<(), OptionsError> {
        let mut targets = std::collections::HashSet::new();
        for m in &self.mounts {
            if !targets.insert(m.target()) {
                return Err(OptionsError::Invalid(format!(
                    "Duplicate mount point: {}",
                    m.target()
                )));
            }
        }
        self.validate_network()?;
        let ctx = SysctlContext {
            host_network: self.network == NetworkMode::Host,
            host_ipc: self.ipc == NamespaceMode::Host,
        };
        for (k, v) in &self.sysctls {
            parse_sysctl(&format!("{k}={v}"), ctx)?;
        }
        if let Some(h) = &self.hostname {
            if h.len() > 64 || h.is_empty() {
                return Err(OptionsError::Invalid(format!(
                    "invalid hostname {h:?}: a hostname is 1 to 64 characters"
                )));
            }
        }
        Ok(())
    }
}

impl ResourceOptions {
    /// docker's daemon checks of the resource settings (moby
    /// `verifyPlatformContainerResources`), in its order and words. `update` is
    /// docker's flag of the same name: an update may set `--memory-swap` alone.
    pub fn validate(&self, update: bool) -> Result<(), OptionsError> {
        let r = self;
        if let Some(m) = r.memory.filter(|m| *m > 0) {
            if m < defaults::MIN_MEMORY {
                return Err(OptionsError::Invalid(
                    "Minimum memory limit allowed is 6MB".into(),
                ));
            }
        }
        if let Some(swap) = r.memory_swap.filter(|s| *s > 0) {
            match r.memory.filter(|m| *m > 0) {
                None if update => {}
                None => return Err(OptionsError::Invalid(
                    "You should always set the Memory limit when using Memoryswap limit, see usage"
                        .into(),
                )),
                Some(m) if swap < m => {
                    return Err(OptionsError::Invalid(
                        "Minimum memoryswap limit should be larger than memory limit, see usage"
                            .into(),
                    ))
                }
                _ => {}
            }
        }
        if let Some(c) = r.cpus {
            check_cpus_available(c.nano_cpus, host_cpus())?;
        }
        check_cpu_cfs(r)?;
        check_memory_reservation(r)?;
        if let Some(p) = &r.cgroup_parent {
            parse_cgroup_parent(p)?;
        }
        if let (Some(cpus), Some(host)) = (&r.cpuset_cpus, host_cpuset_cpus()) {
            check_cpuset_cpus(cpus, &host)?;
        }
        if let (Some(mems), Some(host)) = (&r.cpuset_mems, host_cpuset_mems()) {
            check_cpuset_mems(mems, &host)?;
        }
        Ok(())
    }
}

impl ContainerSpec {
    /// docker's network-mode conflicts (moby `validateNetContainerMode`, endpoint
    /// settings), in docker's order and words.
    fn validate_network(&self) -> Result<(), OptionsError> {
        let invalid = |m: &str| Err(OptionsError::Invalid(m.to_string()));
        let publishes = !self.publish.is_empty() || self.publish_all;
        if let NetworkMode::Container(_) = self.network {
            if self.hostname.is_some() {
                return invalid("conflicting options: hostname and the network mode");
            }
            if !self.links.is_empty() {
                return invalid("conflicting options: container type network can't be used with links. This would result in undefined behavior");
            }
            if !self.dns.is_empty() || !self.dns_search.is_empty() || !self.dns_options.is_empty() {
                return invalid("conflicting options: dns and the network mode");
            }
            if !self.extra_hosts.is_empty() {
                return invalid(
                    "conflicting options: custom host-to-IP mapping and the network mode",
                );
            }
            if publishes {
                return invalid(
                    "conflicting options: port publishing and the container type network mode",
                );
            }
            if !self.expose.is_empty() {
                return invalid(
                    "conflicting options: port exposing and the container type network mode",
                );
            }
            if let Some(k) = self.sysctls.keys().find(|k| k.starts_with("net.")) {
                return Err(OptionsError::Invalid(format!(
                    "sysctl '{k}' is not allowed with --network container: it would change the other container's value"
                )));
            }
        }
        if self.network == NetworkMode::Host && !self.links.is_empty() {
            return invalid("conflicting options: host type networking can't be used with links. This would result in undefined behavior");
        }
        let user_defined = matches!(self.network, NetworkMode::Named(_));
        // A MAC address needs an interface of our own: bridge or user network only.
        if self.mac_address.is_some()
            && !matches!(
                self.network,
                NetworkMode::DefaultBridge | NetworkMode::Named(_)
            )
        {
            return invalid("conflicting options: mac-address and the network mode");
        }
        if self.ip.is_some() && !user_defined {
            return invalid("user specified IP address is supported on user defined networks only");
        }
        if !self.network_aliases.is_empty() && !user_defined {
            return invalid(
                "network-scoped alias is supported only for containers in user defined networks",
            );
        }
        if publishes && self.network == NetworkMode::None {
            return invalid("published ports need a network: --network none has none");
        }
        Ok(())
    }

    /// The resource limits docker would apply: `--memory` without `--memory-swap` gives
    /// swap = 2 × memory; `--memory-swap -1` unlimited swap; `--cpus` → quota/period.
    pub fn resources(&self) -> Resources {
        let r = &self.resources;
        let memory = r.memory.filter(|m| *m > 0);
        let memory_swap = match (memory, r.memory_swap) {
            (_, Some(-1)) => Some(-1),
            (Some(_), Some(s)) if s > 0 => Some(s),
            (Some(m), _) => Some(m * 2),
            (None, _) => None,
        };
        Resources {
            memory,
            memory_swap,
            cpu_quota: r.cpus.map(|c| c.quota).or(r.cpu_quota.filter(|q| *q != 0)),
            cpu_period: r
                .cpus
                .map(|c| c.period)
                .or(r.cpu_period.filter(|p| *p > 0).map(|p| p as u64)),
            cpu_shares: r.cpu_shares.filter(|s| *s > 0),
            cpuset_cpus: r.cpuset_cpus.clone(),
            pids_limit: r.pids_limit,
            memory_reservation: r.memory_reservation.filter(|m| *m > 0),
            memory_swappiness: r.memory_swappiness,
            cpuset_mems: r.cpuset_mems.clone(),
            blkio_weight: r.blkio_weight,
            disable_oom_killer: r.oom_kill_disable == Some(true),
            device_cgroup_rules: r
                .device_cgroup_rules
                .iter()
                .map(|d| (d.typ, d.major, d.minor, d.access.clone()))
                .collect(),
            // Block devices are the engine's to resolve (it stats the host's nodes).
            ..Default::default()
        }
    }

    /// The container's cgroups path: `/coracle/ID`, or `PARENT/ID` with
    /// `--cgroup-parent` (docker's `filepath.Join(parent, id)`, rooted).
    pub fn cgroups_path(&self, id: &str) -> String {
        match &self.resources.cgroup_parent {
            Some(p) => match parse_cgroup_parent(p) {
                Ok(parent) => format!("{}/{id}", parent.trim_end_matches('/')),
                Err(_) => defaults::cgroups_path(id),
            },
            None => defaults::cgroups_path(id),
        }
    }

    /// The capability list docker would give the container ([`resolve_capabilities`]).
    pub fn capabilities(&self, last_cap: u8) -> Vec<String> {
        resolve_capabilities(&self.cap_add, &self.cap_drop, self.privileged, last_cap)
    }
}

impl TmpfsMount {
    /// This tmpfs as a [`MountRequest`].
    pub fn into_request(self) -> MountRequest {
        MountRequest::Tmpfs(self)
    }
}

/// The CPUs this process may run on, as docker's daemon counts them (moby
/// `sysinfo.NumCPU`: the scheduler affinity mask, not the cgroup quota).
pub fn host_cpus() -> u32 {
    match rustix::thread::sched_getaffinity(None).map(|set| set.count()) {
        Ok(count) if count > 0 => return count,
        _ => {}
    }
    std::thread::available_parallelism().map_or(1, |n| n.get() as u32)
}

/// `--cpus` above the host's CPUs is refused, as docker's daemon refuses it (a
/// quota the kernel would accept but could never grant).
fn check_cpus_available(nano_cpus: i64, cpus: u32) -> Result<(), OptionsError> {
    if nano_cpus > i64::from(cpus) * 1_000_000_000 {
        return Err(OptionsError::Invalid(format!(
            "range of CPUs is from 0.01 to {cpus}.00, as there are only {cpus} CPUs available"
        )));
    }
    Ok(())
}

/// `--cpu-period` / `--cpu-quota` against `--cpus` and the kernel's CFS ranges
/// (moby `verifyPlatformContainerResources`, same messages).
fn check_cpu_cfs(r: &ResourceOptions) -> Result<(), OptionsError> {
    let period = r.cpu_period.unwrap_or(0);
    let quota = r.cpu_quota.unwrap_or(0);
    if r.cpus.is_some() && period > 0 {
        return Err(OptionsError::Invalid(
            "Conflicting options: Nano CPUs and CPU Period cannot both be set".into(),
        ));
    }
    if r.cpus.is_some() && quota > 0 {
        return Err(OptionsError::Invalid(
            "Conflicting options: Nano CPUs and CPU Quota cannot both be set".into(),
        ));
    }
    if period != 0 && !(1000..=1_000_000).contains(&period) {
        return Err(OptionsError::Invalid(
            "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)"
                .into(),
        ));
    }
    if quota > 0 && quota < 1000 {
        return Err(OptionsError::Invalid(
            "CPU cfs quota can not be less than 1ms (i.e. 1000)".into(),
        ));
    }
    Ok(())
}

/// `--cpuset-cpus` naming CPUs the host lacks: docker's daemon refuses it.
fn check_cpuset_cpus(cpus: &str, host: &str) -> Result<(), OptionsError> {
    let have = cpuset_members(host);
    if cpuset_members(cpus).iter().any(|n| !have.contains(n)) {
        return Err(OptionsError::Invalid(format!(
            "Requested CPUs are not available - requested {cpus}, available: {host}"
        )));
    }
    Ok(())
}

/// `--cpuset-mems` naming nodes the host lacks: docker's daemon refuses it.
fn check_cpuset_mems(mems: &str, host: &str) -> Result<(), OptionsError> {
    let have = cpuset_members(host);
    if cpuset_members(mems).iter().any(|n| !have.contains(n)) {
        return Err(OptionsError::Invalid(format!(
            "Requested memory nodes are not available - requested {mems}, available: {host}"
        )));
    }
    Ok(())
}

/// `--memory-reservation` against docker's minimum and `--memory`.
fn check_memory_reservation(r: &ResourceOptions) -> Result<(), OptionsError> {
    let Some(res) = r.memory_reservation.filter(|m| *m > 0) else {
        return Ok(());
    };
    if r.memory.is_some_and(|m| m > 0 && m < res) {
        return Err(OptionsError::Invalid(
            "Minimum memory limit can not be less than memory reservation limit, see usage".into(),
        ));
    }
    if res < defaults::MIN_MEMORY {
        return Err(OptionsError::Invalid(
            "Minimum memory reservation allowed is 6MB".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpuset_mems_must_exist_on_the_host() {
        check_cpuset_cpus("0-1", "0-3").unwrap();
        assert_eq!(
            check_cpuset_cpus("5", "0-1").unwrap_err().to_string(),
            "Requested CPUs are not available - requested 5, available: 0-1"
        );
        check_cpuset_mems("0", "0").unwrap();
        check_cpuset_mems("0-1,3", "0-3").unwrap();
        assert_eq!(
            check_cpuset_mems("1", "0").unwrap_err().to_string(),
            "Requested memory nodes are not available - requested 1, available: 0"
        );
    }

    #[test]
    fn memory_reservation_checked_as_docker_checks_it() {
        let mut o = ContainerSpec::new();
        o.resources.memory_reservation = Some(1 << 20);
        assert_eq!(
            o.validate().unwrap_err().to_string(),
            "Minimum memory reservation allowed is 6MB"
        );
        o.resources.memory_reservation = Some(64 << 20);
        o.resources.memory = Some(32 << 20);
        assert!(o
            .validate()
            .unwrap_err()
            .to_string()
            .contains("can not be less than memory reservation"));
        o.resources.memory = Some(128 << 20);
        o.validate().unwrap();
        assert_eq!(o.resources().memory_reservation, Some(64 << 20));
    }

    #[test]
    fn cpu_period_and_quota_checked_as_docker_checks_them() {
        let err = |period: Option<i64>, quota: Option<i64>, cpus: &str| {
            let mut o = ContainerSpec::new();
            o.resources.cpu_period = period;
            o.resources.cpu_quota = quota;
            o.resources.cpus = parse_cpus(cpus).unwrap();
            o.validate().err().map(|e| e.to_string())
        };
        assert_eq!(err(Some(50_000), Some(25_000), "0"), None);
        assert_eq!(err(None, Some(-1), "0"), None);
        assert_eq!(
            err(Some(50_000), None, "1").unwrap(),
            "Conflicting options: Nano CPUs and CPU Period cannot both be set"
        );
        assert_eq!(
            err(None, Some(50_000), "1").unwrap(),
            "Conflicting options: Nano CPUs and CPU Quota cannot both be set"
        );
        for p in [900, 2_000_000, -3] {
            assert!(err(Some(p), None, "0").unwrap().contains("CPU cfs period"));
        }
        assert!(err(None, Some(999), "0").unwrap().contains("CPU cfs quota"));
        let mut o = ContainerSpec::new();
        o.resources.cpu_period = Some(50_000);
        o.resources.cpu_quota = Some(25_000);
        let r = o.resources();
        assert_eq!((r.cpu_period, r.cpu_quota), (Some(50_000), Some(25_000)));
    }

    #[test]
    fn resources_apply_docker_defaults() {
        let mut o = ContainerSpec::new();
        o.resources.memory = Some(64 << 20);
        let r = o.resources();
        assert_eq!(r.memory, Some(64 << 20));
        assert_eq!(r.memory_swap, Some(128 << 20));
        o.resources.memory_swap = Some(-1);
        assert_eq!(o.resources().memory_swap, Some(-1));
        o.resources.memory_swap = Some(100 << 20);
        assert_eq!(o.resources().memory_swap, Some(100 << 20));
        o.resources.cpus = parse_cpus("1.5").unwrap();
        let r = o.resources();
        assert_eq!((r.cpu_quota, r.cpu_period), (Some(150_000), Some(100_000)));
        assert_eq!(ContainerSpec::new().resources(), Resources::default());
    }

    #[test]
    fn cpus_over_the_host_are_refused_as_docker_refuses_them() {
        assert_eq!(
            check_cpus_available(1000 * 1_000_000_000, 2)
                .unwrap_err()
                .to_string(),
            "range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available"
        );
        check_cpus_available(2_000_000_000, 2).unwrap();
        assert!(host_cpus() >= 1);
        let mut o = ContainerSpec::new();
        o.resources.cpus = parse_cpus("100000").unwrap();
        assert!(o
            .validate()
            .unwrap_err()
            .to_string()
            .contains("range of CPUs"));
    }

    #[test]
    fn validate_follows_docker() {
        let mut o = ContainerSpec::new();
        o.resources.memory = Some(1 << 20);
        assert_eq!(
            o.validate().unwrap_err().to_string(),
            "Minimum memory limit allowed is 6MB"
        );
        o.resources.memory = None;
        o.resources.memory_swap = Some(100 << 20);
        assert!(o
            .validate()
            .unwrap_err()
            .to_string()
            .contains("always set the Memory limit"));
        o.resources.memory = Some(200 << 20);
        assert!(o
            .validate()
            .unwrap_err()
            .to_string()
            .contains("larger than memory limit"));
        o.resources.memory_swap = Some(-1);
        o.validate().unwrap();
        o.mounts.push(parse_volume("/a:/x").unwrap());
        o.mounts.push(parse_tmpfs("/x").unwrap().into_request());
        assert_eq!(
            o.validate().unwrap_err().to_string(),
            "Duplicate mount point: /x"
        );
        o.mounts.pop();
        o.network = NetworkMode::Host;
        o.sysctls.insert("net.ipv4.ip_forward".into(), "1".into());
        assert!(o.validate().is_err());
        assert_eq!(
            OptionsError::Invalid(String::new()).kind(),
            coracle_core::ErrorKind::InvalidArgument
        );
    }

    #[test]
    fn network_conflicts_follow_docker() {
        let check = |f: &dyn Fn(&mut ContainerSpec)| {
            let mut o = ContainerSpec::new();
            f(&mut o);
            o.validate().err().map(|e| e.to_string())
        };
        let container = |o: &mut ContainerSpec| o.network = parse_network("container:web").unwrap();
        let msg = |m: &str| Some(m.to_string());
        assert_eq!(check(&container), None);
        let publish = |o: &mut ContainerSpec| o.publish = parse_publish("8080:80").unwrap();
        let ports = msg("conflicting options: port publishing and the container type network mode");
        assert_eq!(
            check(&|o| {
                container(o);
                publish(o)
            }),
            ports
        );
        assert_eq!(
            check(&|o| {
                container(o);
                o.publish_all = true
            }),
            ports
        );
        assert_eq!(
            check(&|o| {
                container(o);
                o.expose = parse_expose("80").unwrap()
            }),
            msg("conflicting options: port exposing and the container type network mode")
        );
        let dns = msg("conflicting options: dns and the network mode");
        assert_eq!(
            check(&|o| {
                container(o);
                o.dns = vec![parse_dns_server("1.1.1.1").unwrap()]
            }),
            dns
        );
        assert_eq!(
            check(&|o| {
                container(o);
                o.dns_search = vec!["example.com".into()]
            }),
            dns
        );
        assert_eq!(
            check(&|o| {
                container(o);
                o.dns_options = vec!["ndots:1".into()]
            }),
            dns
        );
        assert_eq!(
            check(&|o| {
                container(o);
                o.extra_hosts = vec![parse_add_host("a:1.2.3.4").unwrap()]
            }),
            msg("conflicting options: custom host-to-IP mapping and the network mode")
        );
        assert_eq!(
            check(&|o| {
                container(o);
                o.hostname = Some("h".into())
            }),
            msg("conflicting options: hostname and the network mode")
        );
        let mac = msg("conflicting options: mac-address and the network mode");
        let set_mac =
            |o: &mut ContainerSpec| o.mac_address = Some(parse_mac("02:42:ac:11:00:02").unwrap());
        assert_eq!(
            check(&|o| {
                container(o);
                set_mac(o)
            }),
            mac
        );
        assert_eq!(
            check(&|o| {
                o.network = NetworkMode::Host;
                set_mac(o)
            }),
            mac
        );
        assert_eq!(check(&|o| set_mac(o)), None);
        assert!(check(&|o| {
            container(o);
            o.sysctls.insert("net.ipv4.ip_forward".into(), "1".into());
        })
        .unwrap()
        .contains("--network container"));

        let ip = msg("user specified IP address is supported on user defined networks only");
        let set_ip = |o: &mut ContainerSpec| o.ip = Some(parse_ipv4_address("10.89.0.9").unwrap());
        let alias =
            msg("network-scoped alias is supported only for containers in user defined networks");
        let set_alias = |o: &mut ContainerSpec| o.network_aliases = vec!["db".into()];
        for mode in [
            NetworkMode::DefaultBridge,
            NetworkMode::None,
            NetworkMode::Host,
        ] {
            assert_eq!(
                check(&|o| {
                    o.network = mode.clone();
                    set_ip(o)
                }),
                ip
            );
            assert_eq!(
                check(&|o| {
                    o.network = mode.clone();
                    set_alias(o)
                }),
                alias
            );
        }
        let named = |o: &mut ContainerSpec| o.network = NetworkMode::Named("mynet".into());
        assert_eq!(
            check(&|o| {
                named(o);
                set_ip(o);
                set_alias(o);
                set_mac(o);
                publish(o)
            }),
            None
        );

        let none = msg("published ports need a network: --network none has none");
        assert_eq!(
            check(&|o| {
                o.network = NetworkMode::None;
                publish(o)
            }),
            none
        );
        assert_eq!(
            check(&|o| {
                o.network = NetworkMode::None;
                o.publish_all = true
            }),
            none
        );
        assert_eq!(
            check(&|o| {
                o.network = NetworkMode::None;
                o.expose = parse_expose("80").unwrap()
            }),
            None
        );
        // docker keeps them with host networking (and warns that they are discarded).
        assert_eq!(
            check(&|o| {
                o.network = NetworkMode::Host;
                publish(o);
                o.publish_all = true
            }),
            None
        );
        assert_eq!(check(&publish), None);
    }

    #[test]
    fn pull_policy() {
        assert_eq!(parse_pull_policy("never").unwrap(), PullPolicy::Never);
        assert!(parse_pull_policy("sometimes").is_err());
    }
}
