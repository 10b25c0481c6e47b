//! Resolved run settings -> OCI runtime spec, with docker's defaults (moby
//! `oci/defaults.go` and `daemon/oci_linux.go`). Pure: the engine resolves images,
//! users, volumes and host facts first and passes them in [`SpecInput`].

mod exec;
pub mod update;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    Capability, LinuxBlockIo, LinuxBuilder, LinuxCapabilities, LinuxCpu, LinuxDevice,
    LinuxDeviceCgroup, LinuxDeviceType, LinuxMemory, LinuxNamespace, LinuxNamespaceType, LinuxPids,
    LinuxResources, LinuxSeccomp, LinuxThrottleDevice, LinuxThrottleDeviceBuilder,
    LinuxWeightDeviceBuilder, Mount, PosixRlimit, PosixRlimitBuilder, PosixRlimitType, Process,
    Root, Spec, User,
};

pub use exec::*;

use crate::seccomp::{self, KernelVersion, SeccompError};
use coracle_model::defaults;
use coracle_model::{BlkioDevice, Resources};
use coracle_model::{NamespaceMode, Propagation, Ulimit};

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// docker's message, exit code 125.
    #[error("No command specified")]
    NoCommand,
    #[error("--ulimit {name}: hard limit {asked} is above this process's hard limit {host} for {rlimit} (raising it needs CAP_SYS_RESOURCE); use at most {host}")]
    RlimitAboveHardLimit {
        name: String,
        rlimit: &'static str,
        asked: String,
        host: u64,
    },
    #[error("the working directory '{0}' is invalid, it needs to be an absolute path")]
    RelativeWorkdir(String),
    #[error("{what}: {path:?} is not an absolute path inside the container")]
    RelativeTarget { what: &'static str, path: String },
    #[error("unknown capability {0:?}")]
    UnknownCapability(String),
    #[error(transparent)]
    Seccomp(#[from] SeccompError),
    #[error("building the OCI spec: {0}")]
    Build(String),
}

impl SpecError {
    pub fn kind(&self) -> coracle_core::ErrorKind {
        use coracle_core::ErrorKind;
        match self {
            SpecError::NoCommand
            | SpecError::RlimitAboveHardLimit { .. }
            | SpecError::RelativeTarget { .. }
            | SpecError::RelativeWorkdir(_)
            | SpecError::UnknownCapability(_) => ErrorKind::InvalidArgument,
            SpecError::Seccomp(e) => e.kind(),
            SpecError::Build(_) => ErrorKind::Internal,
        }
    }
}

fn build_err(e: impl std::fmt::Display) -> SpecError {
    SpecError::Build(e.to_string())
}

/// The process's user, resolved in the container's /etc/passwd and /etc/group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcessUser {
    pub uid: u32,
    pub gid: u32,
    /// supplementary groups (from /etc/group and `--group-add`).
    pub additional_gids: Vec<u32>,
}

/// The container's network namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum NetworkNamespace {
    /// A new, empty namespace (loopback only): `--network none`.
    #[default]
    Private,
    /// The host's: `--network host`.
    Host,
    /// An existing namespace prepared by the engine (bridge networks).
    Path(PathBuf),
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Namespaces {
    pub pid: NamespaceMode,
    pub ipc: NamespaceMode,
    pub uts: NamespaceMode,
    /// `--cgroupns` (private by default).
    pub cgroup: NamespaceMode,
    pub network: NetworkNamespace,
}

/// A mount resolved to host paths by the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResolvedMount {
    /// A bind mount: `-v`/`--mount type=bind`, and named volumes (their directory).
    Bind {
        source: PathBuf,
        target: String,
        read_only: bool,
        /// None = `rprivate` (docker's default).
        propagation: Option<Propagation>,
        /// false only for `bind-recursive=disabled`.
        recursive: bool,
    },
    /// `--tmpfs` / `--mount type=tmpfs`: options already merged with docker's defaults.
    Tmpfs {
        target: String,
        options: Vec<String>,
    },
}

impl ResolvedMount {
    fn target(&self) -> &str {
        match self {
            ResolvedMount::Bind { target, .. } | ResolvedMount::Tmpfs { target, .. } => target,
        }
    }
}

/// Host files bound over the container's /etc/hostname, /etc/hosts, /etc/resolv.conf
/// (read-only when the root filesystem is, as docker).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EtcFiles {
    pub hostname: Option<PathBuf>,
    pub hosts: Option<PathBuf>,
    pub resolv_conf: Option<PathBuf>,
}

/// A device node given to the container (`--device`, or every host device when
/// privileged), resolved by the engine from the host node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// path inside the container.
    pub path: String,
    /// 'c' (char), 'b' (block) or 'p' (fifo).
    pub typ: char,
    pub major: i64,
    pub minor: i64,
    /// the host node's mode bits (permission part).
    pub file_mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// cgroup access: subset of "rwm".
    pub permissions: String,
}

/// The seccomp filter to install.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum SeccompChoice {
    /// coracle's default profile (docker's semantics).
    #[default]
    Default,
    Unconfined,
    /// A profile in docker's JSON format (the file's contents).
    Profile(String),
}

/// Everything the spec depends on, already resolved by the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecInput {
    /// The container's root filesystem (the overlay's merged dir).
    pub rootfs: PathBuf,
    /// `--read-only`.
    pub readonly_rootfs: bool,
    /// argv from [`coracle_model::resolve_command`] (without the init, added here).
    pub args: Vec<String>,
    /// from [`coracle_model::merge_env`].
    pub env: Vec<String>,
    /// absolute working directory.
    pub cwd: String,
    pub user: ProcessUser,
    /// `-t`.
    pub terminal: bool,
    /// set when the UTS namespace is private.
    pub hostname: Option<String>,
    /// `--domainname`, set with the hostname when the UTS namespace is private.
    pub domainname: Option<String>,
    pub namespaces: Namespaces,
    /// explicit cgroups path, e.g. [`defaults::cgroups_path`].
    pub cgroups_path: String,
    /// user mounts in command-line order (sorted by depth here, as docker).
    pub mounts: Vec<ResolvedMount>,
    pub etc_files: EtcFiles,
    pub resources: Resources,
    /// `--ulimit`s; none by default (the container inherits the caller's limits).
    pub ulimits: Vec<Ulimit>,
    /// The caller's hard limits by rlimit name (`RLIMIT_NOFILE` ...). A `--ulimit`
    /// above one is an error: the runtime could not set it without CAP_SYS_RESOURCE.
    pub host_hard_limits: HashMap<String, u64>,
    /// bytes of /dev/shm; None = 64 MiB.
    pub shm_size: Option<u64>,
    /// `--device`s; with `privileged`, every host device.
    pub devices: Vec<Device>,
    pub sysctls: BTreeMap<String, String>,
    pub privileged: bool,
    /// the final capability list (`CAP_X`), from
    /// [`coracle_model::ContainerSpec::capabilities`].
    pub capabilities: Vec<String>,
    pub seccomp: SeccompChoice,
    pub no_new_privileges: bool,
    /// `--security-opt systempaths=unconfined`.
    pub unconfined_system_paths: bool,
    /// `--init`: the host path of the init binary, bound at [`defaults::INIT_PATH`]
    /// and run as `INIT_PATH -- ARGS...`.
    pub init: Option<PathBuf>,
    /// `--oom-score-adj`.
    pub oom_score_adj: Option<i32>,
    /// host architecture (`std::env::consts::ARCH`), for the seccomp profile.
    pub arch: String,
    /// host kernel, for seccomp `minKernel`; None: assume recent.
    pub kernel: Option<KernelVersion>,
}

impl Default for SpecInput {
    fn default() -> SpecInput {
        SpecInput {
            rootfs: PathBuf::from("rootfs"),
            readonly_rootfs: false,
            args: Vec::new(),
            env: Vec::new(),
            cwd: "/".into(),
            user: ProcessUser::default(),
            terminal: false,
            hostname: None,
            domainname: None,
            namespaces: Namespaces::default(),
            cgroups_path: String::new(),
            mounts: Vec::new(),
            etc_files: EtcFiles::default(),
            resources: Resources::default(),
            ulimits: Vec::new(),
            host_hard_limits: HashMap::new(),
            shm_size: None,
            devices: Vec::new(),
            sysctls: BTreeMap::new(),
            privileged: false,
            capabilities: defaults::DEFAULT_CAPABILITIES
                .iter()
                .map(|s| s.to_string())
                .collect(),
            seccomp: SeccompChoice::Default,
            no_new_privileges: false,
            unconfined_system_paths: false,
            init: None,
            oom_score_adj: None,
            arch: std::env::consts::ARCH.to_string(),
            kernel: None,
        }
    }
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn mount(dest: &str, typ: &str, source: impl AsRef<Path>, options: Vec<String>) -> Mount {
    let mut m = Mount::default();
    m.set_destination(PathBuf::from(dest));
    m.set_typ(Some(typ.to_string()));
    m.set_source(Some(source.as_ref().to_path_buf()));
    m.set_options(Some(options));
    m
}

/// Docker's default mounts (moby `oci/defaults.go`), adjusted as `daemon/oci_linux.go`
/// does for privileged containers, the IPC mode and `--shm-size`.
fn default_mounts(input: &SpecInput) -> Vec<Mount> {
    let ro_unless_privileged = if input.privileged { "rw" } else { "ro" };
    let shm_size = input.shm_size.unwrap_or(defaults::DEFAULT_SHM_SIZE);
    let shm = if input.namespaces.ipc == NamespaceMode::Host {
        mount(
            "/dev/shm",
            "bind",
            "/dev/shm",
            strings(&["rbind", "rprivate"]),
        )
    } else {
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            vec![
                "rw".into(),
                "nosuid".into(),
                "noexec".into(),
                "nodev".into(),
                "mode=1777".into(),
                format!("size={shm_size}"),
            ],
        )
    };
    vec![
        mount(
            "/proc",
            "proc",
            "proc",
            strings(&["rw", "nosuid", "noexec", "nodev"]),
        ),
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            strings(&["rw", "nosuid", "strictatime", "mode=755", "size=65536k"]),
        ),
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            strings(&[
                "rw",
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ]),
        ),
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            strings(&[ro_unless_privileged, "nosuid", "noexec", "nodev"]),
        ),
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            strings(&[ro_unless_privileged, "nosuid", "noexec", "nodev"]),
        ),
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            strings(&["rw", "nosuid", "noexec", "nodev"]),
        ),
        shm,
    ]
}

fn check_target(what: &'static str, t: &str) -> Result<(), SpecError> {
    if t.starts_with('/') {
        Ok(())
    } else {
        Err(SpecError::RelativeTarget {
            what,
            path: t.to_string(),
        })
    }
}

/// User mounts, /etc files and the init binary as OCI mounts, sorted by depth of the
/// destination (parents before children, stable), as docker's `sortMounts`.
fn user_mounts(input: &SpecInput) -> Result<Vec<Mount>, SpecError> {
    let mut out: Vec<(String, Mount)> = Vec::new();
    for m in &input.mounts {
        check_target("mount target", m.target())?;
        let om = match m {
            ResolvedMount::Bind {
                source,
                target,
                read_only,
                propagation,
                recursive,
            } => {
                let mut opts = vec![if *recursive { "rbind" } else { "bind" }.to_string()];
                if *read_only {
                    opts.push("ro".into());
                }
                opts.push(
                    propagation
                        .unwrap_or(Propagation::Rprivate)
                        .as_str()
                        .to_string(),
                );
                mount(target, "bind", source, opts)
            }
            ResolvedMount::Tmpfs { target, options } => {
                mount(target, "tmpfs", "tmpfs", options.clone())
            }
        };
        out.push((m.target().to_string(), om));
    }
    let etc_mode = if input.readonly_rootfs { "ro" } else { "rw" };
    for (dest, src) in [
        ("/etc/resolv.conf", &input.etc_files.resolv_conf),
        ("/etc/hostname", &input.etc_files.hostname),
        ("/etc/hosts", &input.etc_files.hosts),
    ] {
        // a user mount over the same path wins, as docker
        if let Some(src) = src {
            if !out.iter().any(|(t, _)| t == dest) {
                out.push((
                    dest.to_string(),
                    mount(dest, "bind", src, strings(&["rbind", "rprivate", etc_mode])),
                ));
            }
        }
    }
    if let Some(init) = &input.init {
        out.push((
            defaults::INIT_PATH.to_string(),
            mount(defaults::INIT_PATH, "bind", init, strings(&["bind", "ro"])),
        ));
    }
    let depth = |t: &str| Path::new(t).components().count();
    out.sort_by_key(|(t, _)| depth(t));
    Ok(out.into_iter().map(|(_, m)| m).collect())
}

fn device_type(c: char) -> LinuxDeviceType {
    match c {
        'b' => LinuxDeviceType::B,
        'p' => LinuxDeviceType::P,
        'u' => LinuxDeviceType::U,
        'a' => LinuxDeviceType::A,
        _ => LinuxDeviceType::C,
    }
}

fn device_rule(
    allow: bool,
    typ: char,
    major: Option<i64>,
    minor: Option<i64>,
    access: &str,
) -> LinuxDeviceCgroup {
    let mut r = LinuxDeviceCgroup::default();
    r.set_allow(allow);
    r.set_typ(Some(device_type(typ)));
    r.set_major(major);
    r.set_minor(minor);
    r.set_access(Some(access.to_string()));
    r
}

fn resources(input: &SpecInput) -> LinuxResources {
    let r = &input.resources;
    let mut res = LinuxResources::default();
    let rules: Vec<LinuxDeviceCgroup> = if input.privileged {
        vec![device_rule(true, 'a', None, None, "rwm")]
    } else {
        let mut v: Vec<LinuxDeviceCgroup> = defaults::DEFAULT_DEVICE_RULES
            .iter()
            .map(|&(allow, t, ma, mi, acc)| device_rule(allow, t, ma, mi, acc))
            .collect();
        v.extend(
            input
                .devices
                .iter()
                .map(|d| device_rule(true, d.typ, Some(d.major), Some(d.minor), &d.permissions)),
        );
        // Type `a` is written as one rule for `c` and one for `b`: a v1 devices cgroup
        // reads any `a` rule as "every device" whatever its numbers, where the v2 BPF
        // program (crun's, runc's, ours) honours them; this way both mean the same.
        for (typ, major, minor, access) in &r.device_cgroup_rules {
            let types: &[char] = if *typ == 'a' { &['c', 'b'] } else { &[*typ] };
            v.extend(
                types
                    .iter()
                    .map(|t| device_rule(true, *t, *major, *minor, access)),
            );
        }
        v
    };
    res.set_devices(Some(rules));
    if r.memory.is_some()
        || r.memory_swap.is_some()
        || r.memory_reservation.is_some()
        || r.memory_swappiness.is_some()
        || r.disable_oom_killer
    {
        let mut m = LinuxMemory::default();
        m.set_disable_oom_killer(r.disable_oom_killer.then_some(true));
        m.set_limit(r.memory);
        m.set_swap(r.memory_swap);
        m.set_reservation(r.memory_reservation);
        m.set_swappiness(r.memory_swappiness);
        res.set_memory(Some(m));
    }
    if r.cpu_quota.is_some()
        || r.cpu_period.is_some()
        || r.cpu_shares.is_some()
        || r.cpuset_cpus.is_some()
        || r.cpuset_mems.is_some()
    {
        let mut c = LinuxCpu::default();
        c.set_quota(r.cpu_quota);
        c.set_period(r.cpu_period);
        c.set_shares(r.cpu_shares);
        c.set_cpus(r.cpuset_cpus.clone());
        c.set_mems(r.cpuset_mems.clone());
        res.set_cpu(Some(c));
    }
    res.set_block_io(block_io(r));
    if let Some(limit) = r.pids_limit {
        let mut p = LinuxPids::default();
        p.set_limit(limit);
        res.set_pids(Some(p));
    }
    res
}

/// `--blkio-weight`, `--blkio-weight-device` and the four throttles.
fn block_io(r: &Resources) -> Option<LinuxBlockIo> {
    let throttles = [
        &r.blkio_read_bps,
        &r.blkio_write_bps,
        &r.blkio_read_iops,
        &r.blkio_write_iops,
    ];
    if r.blkio_weight.is_none()
        && r.blkio_weight_device.is_empty()
        && throttles.iter().all(|t| t.is_empty())
    {
        return None;
    }
    let throttle = |list: &[BlkioDevice]| -> Option<Vec<LinuxThrottleDevice>> {
        (!list.is_empty()).then(|| {
            list.iter()
                .filter_map(|d| {
                    LinuxThrottleDeviceBuilder::default()
                        .major(d.major)
                        .minor(d.minor)
                        .rate(d.value)
                        .build()
                        .ok()
                })
                .collect()
        })
    };
    let mut b = LinuxBlockIo::default();
    b.set_weight(r.blkio_weight);
    b.set_weight_device((!r.blkio_weight_device.is_empty()).then(|| {
        r.blkio_weight_device
            .iter()
            .filter_map(|d| {
                LinuxWeightDeviceBuilder::default()
                    .major(d.major)
                    .minor(d.minor)
                    .weight(d.value as u16)
                    .build()
                    .ok()
            })
            .collect()
    }));
    b.set_throttle_read_bps_device(throttle(&r.blkio_read_bps));
    b.set_throttle_write_bps_device(throttle(&r.blkio_write_bps));
    b.set_throttle_read_iops_device(throttle(&r.blkio_read_iops));
    b.set_throttle_write_iops_device(throttle(&r.blkio_write_iops));
    Some(b)
}

fn rlimits(input: &SpecInput) -> Result<Vec<PosixRlimit>, SpecError> {
    let mut out = Vec::new();
    for u in &input.ulimits {
        if let Some(&host) = input.host_hard_limits.get(u.rlimit) {
            if u.hard > host {
                return Err(SpecError::RlimitAboveHardLimit {
                    name: u.name.clone(),
                    rlimit: u.rlimit,
                    asked: if u.hard == u64::MAX {
                        "unlimited".into()
                    } else {
                        u.hard.to_string()
                    },
                    host,
                });
            }
        }
        let typ: PosixRlimitType =
            serde_json::from_value(serde_json::Value::String(u.rlimit.to_string()))
                .map_err(|_| build_err(format!("unknown rlimit {}", u.rlimit)))?;
        out.push(
            PosixRlimitBuilder::default()
                .typ(typ)
                .soft(u.soft)
                .hard(u.hard)
                .build()
                .map_err(build_err)?,
        );
    }
    Ok(out)
}

fn capability_set(names: &[String]) -> Result<oci_spec::runtime::Capabilities, SpecError> {
    names
        .iter()
        .map(|n| {
            serde_json::from_value::<Capability>(serde_json::Value::String(n.clone()))
                .map_err(|_| SpecError::UnknownCapability(n.clone()))
        })
        .collect()
}

/// The OCI runtime spec for `input`, with docker's defaults: default mounts, device
/// rules, the 14 default capabilities (in bounding/effective/permitted for root, only
/// bounding for other users, never inheritable or ambient, as moby), masked and
/// read-only paths, the default seccomp profile; `privileged` lifts all of these.
pub fn build_spec(input: &SpecInput) -> Result<Spec, SpecError> {
    if !input.cwd.starts_with('/') {
        return Err(SpecError::RelativeWorkdir(input.cwd.clone()));
    }
    let process = process_spec(input)?;
    let mounts = mounts(input)?;
    let (namespaces, private_net) = namespaces(input);
    let devices = devices(input)?;
    let seccomp = seccomp_spec(input)?;
    let mut linux = LinuxBuilder::default()
        .namespaces(namespaces)
        .resources(resources(input))
        .cgroups_path(PathBuf::from(&input.cgroups_path))
        .devices(devices)
        .build()
        .map_err(build_err)?;
    let sysctl = sysctls(input, private_net);
    linux.set_sysctl((!sysctl.is_empty()).then_some(sysctl));
    linux.set_seccomp(seccomp);
    linux.set_rootfs_propagation(rootfs_propagation(input));
    let confine_paths = !input.privileged && !input.unconfined_system_paths;
    linux.set_masked_paths(confine_paths.then(|| strings(&defaults::MASKED_PATHS)));
    linux.set_readonly_paths(confine_paths.then(|| strings(&defaults::READONLY_PATHS)));

    let mut root = Root::default();
    root.set_path(input.rootfs.clone());
    root.set_readonly(Some(input.readonly_rootfs));
    let mut spec = Spec::default();
    spec.set_version("1.0.2".to_string());
    spec.set_root(Some(root));
    spec.set_mounts(Some(mounts));
    spec.set_process(Some(process));
    let private_uts = input.namespaces.uts == NamespaceMode::Private;
    spec.set_hostname(input.hostname.clone().filter(|_| private_uts));
    spec.set_domainname(input.domainname.clone().filter(|_| private_uts));
    spec.set_linux(Some(linux));
    spec.set_annotations(None);
    Ok(spec)
}

/// The container's process: its command (behind the init with `--init`), user,
/// capabilities, rlimits.
fn process_spec(input: &SpecInput) -> Result<Process, SpecError> {
    let mut args = input.args.clone();
    if args.is_empty() {
        return Err(SpecError::NoCommand);
    }
    if input.init.is_some() {
        let mut with_init = vec![defaults::INIT_PATH.to_string(), "--".to_string()];
        with_init.append(&mut args);
        args = with_init;
    }
    let mut user = User::default();
    user.set_uid(input.user.uid);
    user.set_gid(input.user.gid);
    if !input.user.additional_gids.is_empty() {
        user.set_additional_gids(Some(input.user.additional_gids.clone()));
    }
    let capabilities = process_capabilities(input)?;
    let mut process = Process::default();
    process.set_terminal(Some(input.terminal));
    process.set_user(user);
    process.set_args(Some(args));
    process.set_env(Some(input.env.clone()));
    process.set_cwd(PathBuf::from(&input.cwd));
    process.set_capabilities(Some(capabilities));
    process.set_oom_score_adj(input.oom_score_adj);
    let rl = rlimits(input)?;
    process.set_rlimits(if rl.is_empty() { None } else { Some(rl) });
    process.set_no_new_privileges(if input.no_new_privileges {
        Some(true)
    } else {
        None
    });
    Ok(process)
}

/// The capability sets: bounding always; effective and permitted for root only; never
/// inheritable or ambient (as moby).
fn process_capabilities(input: &SpecInput) -> Result<LinuxCapabilities, SpecError> {
    let caps = capability_set(&input.capabilities)?;
    let mut lc = LinuxCapabilities::default();
    lc.set_bounding(Some(caps.clone()));
    if input.user.uid == 0 {
        lc.set_effective(Some(caps.clone()));
        lc.set_permitted(Some(caps));
    } else {
        lc.set_effective(None);
        lc.set_permitted(None);
    }
    lc.set_inheritable(None);
    lc.set_ambient(None);
    Ok(lc)
}

/// The default mounts not overridden by a user mount, then the user's.
fn mounts(input: &SpecInput) -> Result<Vec<Mount>, SpecError> {
    let user = user_mounts(input)?;
    let mut mounts: Vec<Mount> = default_mounts(input)
        .into_iter()
        .filter(|d| !user.iter().any(|u| u.destination() == d.destination()))
        .collect();
    mounts.extend(user);
    Ok(mounts)
}

/// The namespaces, in docker's order (the cgroup namespace private unless
/// `--cgroupns host`), and whether the network namespace is not the host's.
fn namespaces(input: &SpecInput) -> (Vec<LinuxNamespace>, bool) {
    let ns = |t: LinuxNamespaceType, path: Option<PathBuf>| {
        let mut n = LinuxNamespace::default();
        n.set_typ(t);
        n.set_path(path);
        n
    };
    let mut namespaces = vec![ns(LinuxNamespaceType::Mount, None)];
    let private_net = match &input.namespaces.network {
        NetworkNamespace::Private => {
            namespaces.push(ns(LinuxNamespaceType::Network, None));
            true
        }
        NetworkNamespace::Path(p) => {
            namespaces.push(ns(LinuxNamespaceType::Network, Some(p.clone())));
            true
        }
        NetworkNamespace::Host => false,
    };
    let private = [
        (input.namespaces.uts, LinuxNamespaceType::Uts),
        (input.namespaces.pid, LinuxNamespaceType::Pid),
        (input.namespaces.ipc, LinuxNamespaceType::Ipc),
        (input.namespaces.cgroup, LinuxNamespaceType::Cgroup),
    ];
    for (mode, typ) in private {
        if mode == NamespaceMode::Private {
            namespaces.push(ns(typ, None));
        }
    }
    (namespaces, private_net)
}

/// The `--device`s, as the runtime creates them in the container.
fn devices(input: &SpecInput) -> Result<Vec<LinuxDevice>, SpecError> {
    input
        .devices
        .iter()
        .map(|d| {
            check_target("device path", &d.path)?;
            let mut ld = LinuxDevice::default();
            ld.set_path(PathBuf::from(&d.path));
            ld.set_typ(device_type(d.typ));
            ld.set_major(d.major);
            ld.set_minor(d.minor);
            ld.set_file_mode(d.file_mode);
            ld.set_uid(d.uid);
            ld.set_gid(d.gid);
            Ok(ld)
        })
        .collect()
}

/// The `--sysctl`s, with docker's two defaults in a private network namespace.
fn sysctls(input: &SpecInput, private_net: bool) -> HashMap<String, String> {
    let mut sysctl: HashMap<String, String> = input
        .sysctls
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if private_net {
        sysctl
            .entry("net.ipv4.ip_unprivileged_port_start".into())
            .or_insert_with(|| "0".into());
        sysctl
            .entry("net.ipv4.ping_group_range".into())
            .or_insert_with(|| "0 2147483647".into());
    }
    sysctl
}

/// The seccomp filter: none when privileged or unconfined, else docker's default
/// profile or the one given.
fn seccomp_spec(input: &SpecInput) -> Result<Option<LinuxSeccomp>, SpecError> {
    if input.privileged {
        return Ok(None);
    }
    Ok(match &input.seccomp {
        SeccompChoice::Unconfined => None,
        SeccompChoice::Default => Some(seccomp::default_seccomp(
            &input.capabilities,
            &input.arch,
            input.kernel,
        )?),
        SeccompChoice::Profile(json) => Some(seccomp::profile_to_oci(
            json,
            &input.capabilities,
            &input.arch,
            input.kernel,
        )?),
    })
}

/// The root's propagation a bind mount needs: shared for a shared bind, rslave for
/// a slave one, else the runtime's default.
fn rootfs_propagation(input: &SpecInput) -> Option<String> {
    let props: Vec<Propagation> = input
        .mounts
        .iter()
        .filter_map(|m| match m {
            ResolvedMount::Bind { propagation, .. } => *propagation,
            _ => None,
        })
        .collect();
    if props
        .iter()
        .any(|p| matches!(p, Propagation::Shared | Propagation::Rshared))
    {
        Some("shared".to_string())
    } else if props
        .iter()
        .any(|p| matches!(p, Propagation::Slave | Propagation::Rslave))
    {
        Some("rslave".to_string())
    } else {
        None
    }
}

#[cfg(test)]
mod cgroup_flag_tests {
    use super::*;

    fn input() -> SpecInput {
        SpecInput {
            args: vec!["true".into()],
            ..SpecInput::default()
        }
    }

    #[test]
    fn cgroupns_host_leaves_the_cgroup_namespace_out() {
        let has_cgroupns = |i: &SpecInput| {
            let spec = build_spec(i).unwrap();
            let linux = spec.linux().clone().unwrap();
            linux
                .namespaces()
                .clone()
                .unwrap()
                .iter()
                .any(|n| n.typ() == LinuxNamespaceType::Cgroup)
        };
        let mut i = input();
        assert!(has_cgroupns(&i));
        i.namespaces.cgroup = NamespaceMode::Host;
        assert!(!has_cgroupns(&i));
    }

    #[test]
    fn device_rules_oom_and_block_io_reach_the_resources() {
        let mut i = input();
        i.resources.device_cgroup_rules = vec![
            ('c', Some(1), Some(11), "r".into()),
            ('a', Some(7), None, "rm".into()),
        ];
        i.resources.disable_oom_killer = true;
        let dev = |v: u64| BlkioDevice {
            major: 254,
            minor: 0,
            value: v,
        };
        i.resources.blkio_read_bps = vec![dev(1 << 20)];
        i.resources.blkio_write_iops = vec![dev(100)];
        i.resources.blkio_weight_device = vec![dev(300)];
        let r = resources(&i);
        let rules: Vec<String> = r
            .devices()
            .clone()
            .unwrap()
            .iter()
            .map(|d| d.to_string())
            .collect();
        let n = rules.len();
        assert_eq!(rules[n - 3..], ["c 1:11 r", "c 7:* rm", "b 7:* rm"]);
        assert_eq!(r.memory().unwrap().disable_oom_killer(), Some(true));
        let b = r.block_io().clone().unwrap();
        let t = b.throttle_read_bps_device().clone().unwrap();
        assert_eq!((t[0].major(), t[0].minor(), t[0].rate()), (254, 0, 1 << 20));
        assert_eq!(
            b.throttle_write_iops_device().clone().unwrap()[0].rate(),
            100
        );
        assert!(b.throttle_write_bps_device().is_none());
        assert_eq!(b.weight_device().clone().unwrap()[0].weight(), Some(300));
        // privileged: every device already, the rules add nothing
        i.privileged = true;
        assert_eq!(resources(&i).devices().clone().unwrap().len(), 1);
    }
}
