//! `coracle run`: create the container, start its monitor and, unless `-d`, attach to
//! it until it exits (or the user detaches). Exit codes as docker: 125 when coracle
//! fails, 126/127 when the command cannot be run, else the container's.
//!
//! Also the flags `run` and `create` share, parsed by the model's parsers into its
//! `ContainerSpec`, with docker's messages for bad values.

use crate::commands::UsageError;
use crate::progress::PullDisplay;
use crate::Context;
use clap::Args;
use coracle_core::Platform;
use coracle_engine::process::note;
use coracle_engine::{
    AttachEnd, AttachSession, Engine, EngineError, PreparedContainer, RunRequest, Started,
};
use coracle_model::{self as o, ContainerSpec, PullPolicy, RunChoices};
use std::io::Write;
use std::path::PathBuf;

#[derive(Args, Debug)]
#[command(trailing_var_arg = true, disable_help_flag = true)]
pub struct RunArgs {
    #[command(flatten)]
    pub container: ContainerArgs,
    /// Run in the background and print the container ID
    #[arg(short, long)]
    pub detach: bool,
    /// Key sequence for detaching (default ctrl-p,ctrl-q)
    #[arg(long, value_name = "KEYS")]
    pub detach_keys: Option<String>,
    /// Proxy received signals to the container (not with a tty)
    #[arg(long, default_value = "true", value_parser = clap::builder::BoolishValueParser::new(), action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub sig_proxy: bool,
}

/// The flags `run` and `create` share: what the container is, and how its image is
/// got.
#[derive(Args, Debug)]
pub struct ContainerArgs {
    /// Print help (`-h` is --hostname, as docker's)
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,
    /// Keep STDIN open
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short, long)]
    pub tty: bool,
    /// Attach to STDIN, STDOUT or STDERR
    #[arg(short = 'a', long = "attach", value_name = "STREAM")]
    pub attach: Vec<String>,
    /// Write the container ID to the file
    #[arg(long, value_name = "FILE")]
    pub cidfile: Option<String>,
    /// Suppress the pull output
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Set metadata on the container (k=v)
    #[arg(short = 'l', long = "label", value_name = "K=V")]
    pub label: Vec<String>,
    /// Read labels from a file of k=v lines
    #[arg(long, value_name = "FILE")]
    pub label_file: Vec<PathBuf>,
    /// Restart policy: no, always, on-failure[:max-retries], unless-stopped
    #[arg(long, default_value = "no")]
    pub restart: String,
    /// Logging driver: json-file (default) or none
    #[arg(long)]
    pub log_driver: Option<String>,
    /// Log driver options: max-size=SIZE, max-file=N
    #[arg(long, value_name = "K=V")]
    pub log_opt: Vec<String>,
    /// Signal to stop the container (default: the image's, or SIGTERM)
    #[arg(long)]
    pub stop_signal: Option<String>,
    /// Seconds to wait before killing the container on stop (default 10)
    #[arg(long, allow_negative_numbers = true)]
    pub stop_timeout: Option<i64>,
    /// Command to run to check health
    #[arg(long)]
    pub health_cmd: Option<String>,
    /// Time between running the check (ms|s|m|h)
    #[arg(long)]
    pub health_interval: Option<String>,
    /// Maximum time to allow one check to run (ms|s|m|h)
    #[arg(long)]
    pub health_timeout: Option<String>,
    /// Consecutive failures needed to report unhealthy
    #[arg(long, allow_negative_numbers = true)]
    pub health_retries: Option<i64>,
    /// Start period for the container to initialize before counting retries (ms|s|m|h)
    #[arg(long)]
    pub health_start_period: Option<String>,
    /// Time between running the check during the start period (ms|s|m|h)
    #[arg(long)]
    pub health_start_interval: Option<String>,
    /// Disable any container-specified HEALTHCHECK
    #[arg(long)]
    pub no_healthcheck: bool,
    /// Remove the container when it exits
    #[arg(long)]
    pub rm: bool,
    /// Container name
    #[arg(long)]
    pub name: Option<String>,
    /// Set environment variables (K=V, or K to take the value from this shell)
    #[arg(short, long = "env", value_name = "K=V")]
    pub env: Vec<String>,
    /// Read environment variables from a file
    #[arg(long, value_name = "FILE")]
    pub env_file: Vec<PathBuf>,
    /// Overwrite the image's ENTRYPOINT
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Working directory inside the container (created if missing)
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// User: name|uid[:group|gid]
    #[arg(short, long)]
    pub user: Option<String>,
    /// Additional groups to join
    #[arg(long, value_name = "GROUP")]
    pub group_add: Vec<String>,
    /// Container host name
    #[arg(short = 'h', long)]
    pub hostname: Option<String>,
    /// Container NIS domain name
    #[arg(long)]
    pub domainname: Option<String>,
    /// Connect a container to a network (bridge, host, none, container:NAME|ID, or a network name)
    #[arg(long, alias = "net", default_value = "bridge")]
    pub network: String,
    /// Publish a container's port(s) to the host
    #[arg(
        short = 'p',
        long = "publish",
        value_name = "[IP:][HOST_PORT:]CONTAINER_PORT[/PROTO]"
    )]
    pub publish: Vec<String>,
    /// Publish all exposed ports to random ports
    #[arg(short = 'P', long)]
    pub publish_all: bool,
    /// Expose a port or a range of ports
    #[arg(long, value_name = "PORT[/PROTO]")]
    pub expose: Vec<String>,
    /// IPv4 address (e.g., 172.30.100.104)
    #[arg(long)]
    pub ip: Option<String>,
    /// IPv6 address (refused: IPv6 is not supported yet)
    #[arg(long)]
    pub ip6: Option<String>,
    /// Container MAC address (e.g., 92:d0:c6:0a:29:33)
    #[arg(long)]
    pub mac_address: Option<String>,
    /// Add network-scoped alias for the container
    #[arg(long, value_name = "ALIAS")]
    pub network_alias: Vec<String>,
    /// Add link to another container
    #[arg(long, value_name = "CONTAINER[:ALIAS]")]
    pub link: Vec<String>,
    /// Set custom DNS servers
    #[arg(long, value_name = "IP")]
    pub dns: Vec<String>,
    /// Set custom DNS search domains
    #[arg(long, value_name = "DOMAIN")]
    pub dns_search: Vec<String>,
    /// Set DNS options
    #[arg(long, alias = "dns-opt", value_name = "OPTION")]
    pub dns_option: Vec<String>,
    /// Add a custom host-to-IP mapping (host:ip)
    #[arg(long, value_name = "HOST:IP")]
    pub add_host: Vec<String>,
    /// PID namespace: host to share the host's
    #[arg(long)]
    pub pid: Option<String>,
    /// IPC namespace: host to share the host's
    #[arg(long)]
    pub ipc: Option<String>,
    /// UTS namespace: host to share the host's
    #[arg(long)]
    pub uts: Option<String>,
    /// Add Linux capabilities
    #[arg(long, value_name = "CAP")]
    pub cap_add: Vec<String>,
    /// Drop Linux capabilities
    #[arg(long, value_name = "CAP")]
    pub cap_drop: Vec<String>,
    /// Give extended privileges to this container
    #[arg(long)]
    pub privileged: bool,
    /// Security options: seccomp=unconfined|PROFILE.json, no-new-privileges
    #[arg(long, value_name = "OPT")]
    pub security_opt: Vec<String>,
    /// Mount the container's root filesystem read-only
    #[arg(long)]
    pub read_only: bool,
    /// Mount a tmpfs: /path[:options]
    #[arg(long, value_name = "PATH[:OPTS]")]
    pub tmpfs: Vec<String>,
    /// Memory limit (e.g. 512m)
    #[arg(short, long)]
    pub memory: Option<String>,
    /// Memory plus swap limit; -1 for unlimited swap
    #[arg(long)]
    pub memory_swap: Option<String>,
    /// Memory soft limit
    #[arg(long, value_name = "BYTES")]
    pub memory_reservation: Option<String>,
    /// Tune container memory swappiness (0 to 100)
    #[arg(long, value_name = "INT", allow_negative_numbers = true)]
    pub memory_swappiness: Option<String>,
    /// Number of CPUs (e.g. 1.5)
    #[arg(long)]
    pub cpus: Option<String>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long)]
    pub cpu_shares: Option<String>,
    /// Limit CPU CFS (Completely Fair Scheduler) period
    #[arg(long, value_name = "INT", allow_negative_numbers = true)]
    pub cpu_period: Option<String>,
    /// Limit CPU CFS (Completely Fair Scheduler) quota
    #[arg(long, value_name = "INT", allow_negative_numbers = true)]
    pub cpu_quota: Option<String>,
    /// MEMs in which to allow execution (0-3, 0,1)
    #[arg(long)]
    pub cpuset_mems: Option<String>,
    /// Block IO (relative weight), between 10 and 1000, or 0 to disable
    #[arg(long, value_name = "UINT16")]
    pub blkio_weight: Option<String>,
    /// Block IO weight (relative device weight): DEVICE:WEIGHT
    #[arg(long, value_name = "DEVICE:WEIGHT")]
    pub blkio_weight_device: Vec<String>,
    /// Limit read rate (bytes per second) from a device: DEVICE:RATE (e.g. /dev/sda:1mb)
    #[arg(long, value_name = "DEVICE:RATE")]
    pub device_read_bps: Vec<String>,
    /// Limit write rate (bytes per second) to a device: DEVICE:RATE
    #[arg(long, value_name = "DEVICE:RATE")]
    pub device_write_bps: Vec<String>,
    /// Limit read rate (IO per second) from a device: DEVICE:N
    #[arg(long, value_name = "DEVICE:N")]
    pub device_read_iops: Vec<String>,
    /// Limit write rate (IO per second) to a device: DEVICE:N
    #[arg(long, value_name = "DEVICE:N")]
    pub device_write_iops: Vec<String>,
    /// Add a rule to the cgroup allowed devices list ('c 1:3 mr')
    #[arg(long, value_name = "RULE")]
    pub device_cgroup_rule: Vec<String>,
    /// Disable OOM Killer (cgroup v1; ignored with a warning on v2)
    #[arg(long)]
    pub oom_kill_disable: bool,
    /// Optional parent cgroup for the container
    #[arg(long, value_name = "PATH")]
    pub cgroup_parent: Option<String>,
    /// Cgroup namespace to use: host or private (default)
    #[arg(long, value_name = "MODE")]
    pub cgroupns: Option<String>,
    /// User namespace to use: host (the only mode supported)
    #[arg(long, value_name = "MODE")]
    pub userns: Option<String>,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long)]
    pub cpuset_cpus: Option<String>,
    /// Tune the container's pids limit (-1 for unlimited)
    #[arg(long)]
    pub pids_limit: Option<String>,
    /// Tune host's OOM preferences (-1000 to 1000)
    #[arg(long, value_name = "INT", allow_negative_numbers = true)]
    pub oom_score_adj: Option<String>,
    /// Ulimit options: name=soft[:hard]
    #[arg(long, value_name = "ULIMIT")]
    pub ulimit: Vec<String>,
    /// Size of /dev/shm (default 64m)
    #[arg(long)]
    pub shm_size: Option<String>,
    /// Add a host device: HOST[:CONTAINER[:PERMS]]
    #[arg(long, value_name = "DEVICE")]
    pub device: Vec<String>,
    /// Run an init inside the container that forwards signals and reaps processes
    #[arg(long)]
    pub init: bool,
    /// Namespaced kernel parameters
    #[arg(long, value_name = "K=V")]
    pub sysctl: Vec<String>,
    /// Bind mount a volume: SRC:DST[:ro|rw]
    #[arg(short, long = "volume", value_name = "SRC:DST[:OPTS]")]
    pub volume: Vec<String>,
    /// Attach a filesystem mount: type=bind|volume|tmpfs,source=...,target=...
    #[arg(long, value_name = "MOUNT")]
    pub mount: Vec<String>,
    /// Mount volumes from the specified container(s)
    #[arg(long, value_name = "CONTAINER[:ro|rw]")]
    pub volumes_from: Vec<String>,
    /// Pull image before running: missing, always or never
    #[arg(long, default_value = "missing", value_parser = ["missing", "always", "never"])]
    pub pull: String,
    /// Platform of the image to pull: os/arch[/variant]
    #[arg(long)]
    pub platform: Option<String>,
    /// OCI runtime: built-in (default), crun, runc, or a path to a runtime binary
    #[arg(long)]
    pub runtime: Option<String>,
    /// Image to run
    pub image: String,
    /// Command and arguments
    pub command: Vec<String>,
}

pub fn exec(ctx: &Context, args: RunArgs) -> anyhow::Result<i32> {
    match create_and_start(ctx, &args) {
        Ok(code) => Ok(code),
        Err(err) => {
            eprintln!("coracle: {}", crate::error_chain(&err));
            Ok(start_failure_code(&err))
        }
    }
}

/// docker's code for a failed `run`/`start`: the command's 126/127, else 125.
pub(crate) fn start_failure_code(err: &anyhow::Error) -> i32 {
    match err.downcast_ref::<EngineError>() {
        Some(EngineError::StartFailed { code, .. }) => *code,
        _ => crate::EXIT_ENGINE_ERROR,
    }
}

/// The container `run` and `create` make: the image pulled if need be (progress on
/// stderr, none with `-q`), and with `--cidfile` its id written to that file, which
/// must not exist before (docker's guard against two runs of one script) and is
/// removed again when the container could not be made.
pub(crate) fn create(
    engine: &mut Engine,
    args: &ContainerArgs,
    options: &ContainerSpec,
    pull: PullPolicy,
) -> anyhow::Result<PreparedContainer> {
    let platform = args.platform.as_deref().map(Platform::parse).transpose()?;
    let mut cidfile = options
        .cidfile
        .as_deref()
        .map(CidFile::create)
        .transpose()?;
    // The container owns stdout: pull progress goes to stderr, as docker's.
    let display = if args.quiet {
        PullDisplay::new(true)
    } else {
        PullDisplay::on_stderr()
    };
    let prepared = engine.containers().create_container(
        &RunRequest {
            image: args.image.clone(),
            platform,
            spec: options.clone(),
            pull,
        },
        &display,
    );
    display.finish();
    let prepared = prepared?;
    if let Some(f) = cidfile.as_mut() {
        f.write(&prepared.id)?;
    }
    Ok(prepared)
}

/// `--cidfile`: made before the container, kept only once the id is in it.
struct CidFile {
    path: std::path::PathBuf,
    file: std::fs::File,
    written: bool,
}

impl CidFile {
    fn create(path: &str) -> anyhow::Result<CidFile> {
        let file = match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(UsageError(format!(
                    "Container ID file found, make sure the other container isn't running or delete {path}"
                ))
                .into())
            }
            Err(e) => anyhow::bail!("failed to create the container ID file {path}: {e}"),
        };
        Ok(CidFile {
            path: path.into(),
            file,
            written: false,
        })
    }

    /// The id without a newline, as docker writes it.
    fn write(&mut self, id: &str) -> anyhow::Result<()> {
        self.file.write_all(id.as_bytes()).map_err(|e| {
            anyhow::anyhow!(
                "failed to write the container ID to the file {}: {e}",
                self.path.display()
            )
        })?;
        self.written = true;
        Ok(())
    }
}

impl Drop for CidFile {
    fn drop(&mut self) {
        if !self.written {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn create_and_start(ctx: &Context, args: &RunArgs) -> anyhow::Result<i32> {
    let (options, choices) = to_container_spec(
        &args.container,
        args.detach,
        args.sig_proxy,
        &args.detach_keys,
    )?;
    if args.detach && !args.container.attach.is_empty() {
        return Err(UsageError("Conflicting options: -a and -d".into()).into());
    }
    let mut engine = ctx.engine()?;
    let prepared = create(&mut engine, &args.container, &options, choices.pull)?;
    let streams = options.attached_streams();
    // docker: with no stream attached, the id is printed and `run` returns.
    let attach = streams.stdin || streams.stdout || streams.stderr;
    let stream = match engine.containers().start_container(&prepared.id, attach)? {
        Started::Started { attach } | Started::AlreadyRunning { attach } => attach,
    };
    let Some(stream) = stream else {
        println!("{}", prepared.id);
        return Ok(0);
    };
    let end = engine.containers().run_attach_session(
        stream,
        &AttachSession {
            container: prepared.id.clone(),
            tty: options.tty,
            // docker relays stdin only to a container whose stdin is open (`-i`).
            stdin: options.interactive && streams.stdin,
            stdout: streams.stdout,
            stderr: streams.stderr,
            detach_keys: choices.detach_keys.clone(),
            sig_proxy: choices.sig_proxy,
        },
    )?;
    Ok(match end {
        AttachEnd::Exited(code) => code,
        AttachEnd::Detached => 0,
        AttachEnd::Lost => 255,
    })
}

/// The flags as the container they describe and this invocation's own choices;
/// `detach`, `sig_proxy` and `detach_keys` are `run`'s flags (`create` passes what it
/// accepts of them).
pub(crate) fn to_container_spec(
    args: &ContainerArgs,
    detach: bool,
    sig_proxy: bool,
    detach_keys: &Option<String>,
) -> anyhow::Result<(ContainerSpec, RunChoices)> {
    let mut opts = ContainerSpec::new();
    let mut choices = RunChoices {
        detach,
        sig_proxy,
        ..RunChoices::default()
    };
    opts.name = args.name.clone();
    opts.entrypoint = args.entrypoint.clone();
    opts.args = args.command.clone();
    let lookup = |k: &str| std::env::var(k).ok();
    for file in &args.env_file {
        let text = std::fs::read_to_string(file)
            .map_err(|e| anyhow::anyhow!("open {}: {e}", file.display()))?;
        opts.env.extend(o::parse_env_file(
            &file.display().to_string(),
            &text,
            &lookup,
        )?);
    }
    for e in &args.env {
        opts.env.extend(o::parse_env(e, &lookup)?);
    }
    opts.workdir = args.workdir.clone();
    opts.user = parsed(&args.user, o::parse_user)?;
    opts.group_add = args
        .group_add
        .iter()
        .map(|g| o::parse_group_add(g))
        .collect::<Result<_, _>>()?;
    opts.hostname = args.hostname.clone();
    opts.domainname = args.domainname.clone();
    opts.rm = args.rm;
    opts.interactive = args.interactive;
    opts.tty = args.tty;
    choices.pull = o::parse_pull_policy(&args.pull)?;
    opts.runtime = args.runtime.clone();
    opts.network = o::parse_network(&args.network)?;
    network_flags(args, &mut opts)?;
    opts.pid = ns("--pid", &args.pid)?;
    opts.ipc = ns("--ipc", &args.ipc)?;
    opts.uts = ns("--uts", &args.uts)?;
    opts.cap_add = caps("--cap-add", &args.cap_add)?;
    opts.cap_drop = caps("--cap-drop", &args.cap_drop)?;
    opts.privileged = args.privileged;
    for s in &args.security_opt {
        o::parse_security_opt(s, &mut opts.security)?;
    }
    opts.read_only = args.read_only;
    resource_flags(args, &mut opts)?;
    opts.oom_score_adj = parsed(&args.oom_score_adj, o::parse_oom_score_adj)?;
    opts.ulimits = args
        .ulimit
        .iter()
        .map(|u| o::parse_ulimit(u))
        .collect::<Result<_, _>>()?;
    opts.shm_size = parsed(&args.shm_size, o::parse_shm_size)?;
    opts.devices = args
        .device
        .iter()
        .map(|d| o::parse_device(d))
        .collect::<Result<_, _>>()?;
    opts.init = args.init;
    let sysctl_ctx = o::SysctlContext {
        host_network: opts.network == o::NetworkMode::Host,
        host_ipc: opts.ipc == o::NamespaceMode::Host,
    };
    for s in &args.sysctl {
        let (k, v) = o::parse_sysctl(s, sysctl_ctx)?;
        opts.sysctls.insert(k, v);
    }
    let cwd = std::env::current_dir()?;
    for v in &args.volume {
        opts.mounts.push(o::parse_volume(v)?.absolutize(&cwd));
    }
    for m in &args.mount {
        opts.mounts.push(o::parse_mount(m)?.absolutize(&cwd));
    }
    for t in &args.tmpfs {
        opts.mounts.push(o::MountRequest::Tmpfs(o::parse_tmpfs(t)?));
    }
    script_flags(args, &mut opts)?;
    if detach {
        // docker's client: a detached container attaches no stream.
        opts.attach = Some(o::AttachStreams {
            stdin: false,
            stdout: false,
            stderr: false,
        });
    }
    choices.detach_keys = parsed(detach_keys, o::parse_detach_keys)?;
    lifecycle_flags(args, &mut opts)?;
    opts.validate()?;
    Ok((opts, choices))
}

/// The memory, CPU, block I/O and pids limits (with `cgroup_flags` between them, in
/// docker's order of checks). What the host's cgroups cannot do is dropped with
/// docker's warning.
fn resource_flags(args: &ContainerArgs, opts: &mut ContainerSpec) -> anyhow::Result<()> {
    let r = &mut opts.resources;
    r.memory = parsed(&args.memory, o::parse_memory)?;
    r.memory_swap = parsed(&args.memory_swap, o::parse_memory_swap)?;
    r.memory_reservation = parsed(&args.memory_reservation, o::parse_memory_reservation)?;
    r.memory_swappiness = parsed(&args.memory_swappiness, o::parse_memory_swappiness)?.flatten();
    if r.memory_swappiness.is_some() && !o::host_has_memory_swappiness() {
        // As docker's daemon: cgroup v2 has no per-cgroup swappiness.
        note!(
            "WARNING: Your kernel does not support memory swappiness capabilities or the cgroup is not mounted. Memory swappiness discarded."
        );
        r.memory_swappiness = None;
    }
    r.cpuset_mems = parsed(&args.cpuset_mems, o::parse_cpuset_mems)?;
    r.blkio_weight =
        blkio_weight_on_host(parsed(&args.blkio_weight, o::parse_blkio_weight)?.flatten());
    cgroup_flags(args, opts)?;
    let r = &mut opts.resources;
    r.cpus = parsed(&args.cpus, o::parse_cpus)?.flatten();
    r.cpu_shares = parsed(&args.cpu_shares, o::parse_cpu_shares)?;
    r.cpuset_cpus = parsed(&args.cpuset_cpus, o::parse_cpuset)?;
    r.cpu_period = parsed(&args.cpu_period, |v| o::parse_cpu_cfs("--cpu-period", v))?;
    r.cpu_quota = parsed(&args.cpu_quota, |v| o::parse_cpu_cfs("--cpu-quota", v))?;
    r.pids_limit = parsed(&args.pids_limit, o::parse_pids_limit)?.flatten();
    Ok(())
}

/// `--label*`, `--restart`, `--log-*`, `--stop-*` and the health check flags.
fn lifecycle_flags(args: &ContainerArgs, opts: &mut ContainerSpec) -> anyhow::Result<()> {
    let mut label_lines = Vec::new();
    for file in &args.label_file {
        let text = std::fs::read_to_string(file)
            .map_err(|e| anyhow::anyhow!("open {}: {e}", file.display()))?;
        label_lines.extend(text.lines().map(str::to_string));
    }
    opts.labels = o::parse_labels(&label_lines, &args.label)?;
    opts.restart = o::parse_restart(&args.restart)?;
    opts.log = o::parse_log_options(args.log_driver.as_deref(), &args.log_opt)?;
    opts.stop_signal = parsed(&args.stop_signal, o::parse_signal)?;
    opts.stop_timeout = args.stop_timeout;
    opts.health = o::HealthFlags {
        cmd: args.health_cmd.clone(),
        interval: args.health_interval.clone(),
        timeout: args.health_timeout.clone(),
        start_period: args.health_start_period.clone(),
        start_interval: args.health_start_interval.clone(),
        retries: args.health_retries,
        no_healthcheck: args.no_healthcheck,
    };
    Ok(())
}

/// `--cgroup-parent`, `--cgroupns`, `--userns`, `--oom-kill-disable`, the block I/O
/// device flags and `--device-cgroup-rule`. What the host's cgroups cannot do is
/// dropped with docker's warning, as docker's daemon drops it.
fn cgroup_flags(args: &ContainerArgs, opts: &mut ContainerSpec) -> anyhow::Result<()> {
    let r = &mut opts.resources;
    r.cgroup_parent = args.cgroup_parent.clone().filter(|p| !p.is_empty());
    if let Some(p) = &r.cgroup_parent {
        o::parse_cgroup_parent(p)?;
    }
    opts.cgroupns = match &args.cgroupns {
        Some(m) => o::parse_cgroupns(m)?,
        None => o::NamespaceMode::Private,
    };
    opts.userns_host = parsed(&args.userns, o::parse_userns)?.unwrap_or(false);
    r.oom_kill_disable = Some(args.oom_kill_disable);
    if !o::host_has_oom_kill_disable() {
        if args.oom_kill_disable {
            note!(
                "WARNING: Your kernel does not support OomKillDisable. OomKillDisable discarded."
            );
        }
        r.oom_kill_disable = None;
    }
    if r.oom_kill_disable == Some(true) && r.memory.is_none_or(|m| m <= 0) {
        note!(
            "WARNING: OOM killer is disabled for the container, but no memory limit is set, this can result in the system running out of resources."
        );
    }
    let throttles = |flag: &'static str, list: &[String], bps: bool| {
        list.iter()
            .map(|s| {
                if bps {
                    o::parse_throttle_bps(flag, s)
                } else {
                    o::parse_throttle_iops(flag, s)
                }
            })
            .collect::<Result<Vec<_>, _>>()
    };
    let t = &mut r.blkio_throttles;
    t.read_bps = throttles("--device-read-bps", &args.device_read_bps, true)?;
    t.write_bps = throttles("--device-write-bps", &args.device_write_bps, true)?;
    t.read_iops = throttles("--device-read-iops", &args.device_read_iops, false)?;
    t.write_iops = throttles("--device-write-iops", &args.device_write_iops, false)?;
    if !t.is_empty() && !o::host_has_blkio_throttle() {
        for (list, what) in [
            (
                &mut t.read_bps,
                "BPS Block I/O read limit or the cgroup is not mounted. Block I/O BPS read limit",
            ),
            (
                &mut t.write_bps,
                "BPS Block I/O write limit or the cgroup is not mounted. Block I/O BPS write limit",
            ),
            (
                &mut t.read_iops,
                "IOPS Block read limit or the cgroup is not mounted. Block I/O IOPS read limit",
            ),
            (
                &mut t.write_iops,
                "IOPS Block write limit or the cgroup is not mounted. Block I/O IOPS write limit",
            ),
        ] {
            if !list.is_empty() {
                note!("WARNING: Your kernel does not support {what} discarded.");
                list.clear();
            }
        }
    }
    r.blkio_weight_device = args
        .blkio_weight_device
        .iter()
        .map(|s| o::parse_weight_device(s))
        .collect::<Result<_, _>>()?;
    if !r.blkio_weight_device.is_empty() && !o::host_has_blkio_weight_device() {
        note!(
            "WARNING: Your kernel does not support Block I/O weight_device or the cgroup is not mounted. Weight-device discarded."
        );
        r.blkio_weight_device.clear();
    }
    r.device_cgroup_rules = args
        .device_cgroup_rule
        .iter()
        .map(|s| o::parse_device_cgroup_rule(s))
        .collect::<Result<_, _>>()?;
    Ok(())
}

/// `-p`, `-P`, `--expose`, `--ip`, `--mac-address`, `--network-alias`, `--dns*`,
/// `--add-host` (the cross-flag rules are `ContainerSpec::validate`'s).
fn network_flags(args: &ContainerArgs, opts: &mut ContainerSpec) -> anyhow::Result<()> {
    for p in &args.publish {
        opts.publish.extend(o::parse_publish(p)?);
    }
    opts.publish_all = args.publish_all;
    for e in &args.expose {
        opts.expose.extend(o::parse_expose(e)?);
    }
    if args.ip6.is_some() {
        return Err(o::OptionsError::Invalid("--ip6: IPv6 is not supported yet".into()).into());
    }
    opts.ip = parsed(&args.ip, o::parse_ipv4_address)?;
    opts.mac_address = parsed(&args.mac_address, o::parse_mac)?;
    opts.network_aliases = args.network_alias.clone();
    opts.dns = args
        .dns
        .iter()
        .map(|d| o::parse_dns_server(d))
        .collect::<Result<_, _>>()?;
    opts.dns_search = args
        .dns_search
        .iter()
        .map(|d| o::parse_dns_search(d))
        .collect::<Result<_, _>>()?;
    opts.dns_options = args.dns_option.clone();
    opts.extra_hosts = args
        .add_host
        .iter()
        .map(|h| o::parse_add_host(h))
        .collect::<Result<_, _>>()?;
    Ok(())
}

/// `--link`, `--volumes-from`, `-a` and `--cidfile` (`-a` with `-d` is the caller's
/// check: `create` has no `-d`).
fn script_flags(args: &ContainerArgs, opts: &mut ContainerSpec) -> anyhow::Result<()> {
    opts.links = args
        .link
        .iter()
        .map(|l| o::parse_link(l))
        .collect::<Result<_, _>>()?;
    opts.volumes_from = args
        .volumes_from
        .iter()
        .map(|v| o::parse_volumes_from(v))
        .collect::<Result<_, _>>()?;
    if !args.attach.is_empty() {
        opts.attach = Some(o::parse_attach(&args.attach, args.interactive)?);
    }
    opts.cidfile = args.cidfile.clone().filter(|f| !f.is_empty());
    Ok(())
}

/// A flag's value parsed when it was given (`None` when it was not).
pub(crate) fn parsed<T, E>(
    v: &Option<String>,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> Result<Option<T>, E> {
    v.as_deref().map(parse).transpose()
}

fn ns(flag: &'static str, v: &Option<String>) -> anyhow::Result<o::NamespaceMode> {
    Ok(match v {
        Some(s) => o::parse_namespace_mode(flag, s)?,
        None => o::NamespaceMode::Private,
    })
}

fn caps(flag: &'static str, v: &[String]) -> anyhow::Result<Vec<String>> {
    Ok(v.iter()
        .map(|c| o::parse_capability(flag, c))
        .collect::<Result<_, _>>()?)
}

/// `--blkio-weight` as this host can apply it: dropped with docker's warning when its
/// cgroups have no block I/O weight (as docker's daemon drops it, for `run` and
/// `update` alike).
pub(crate) fn blkio_weight_on_host(weight: Option<u16>) -> Option<u16> {
    if weight.is_some() && !o::host_has_blkio_weight() {
        note!("{}", o::BLKIO_WEIGHT_DISCARDED);
        return None;
    }
    weight
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Run {
        #[command(flatten)]
        args: RunArgs,
    }

    fn options(flags: &[&str]) -> anyhow::Result<ContainerSpec> {
        let argv = ["run"].iter().chain(flags).chain(&["box"]);
        let a = Run::try_parse_from(argv)?.args;
        to_container_spec(&a.container, a.detach, a.sig_proxy, &a.detach_keys).map(|(spec, _)| spec)
    }

    #[test]
    fn script_flags_reach_the_run_options() {
        let o = options(&[
            "--link=web:db",
            "--volumes-from=data:ro",
            "-a",
            "stderr",
            "--cidfile=/tmp/x.cid",
        ])
        .unwrap();
        assert_eq!(
            (o.links[0].name.as_str(), o.links[0].alias.as_str()),
            ("web", "db")
        );
        assert!(o.volumes_from[0].read_only);
        let s = o.attached_streams();
        assert!(!s.stdin && !s.stdout && s.stderr);
        assert_eq!(o.cidfile.as_deref(), Some("/tmp/x.cid"));
        let e = options(&["--network", "container:web", "--link", "db"]).unwrap_err();
        assert!(e
            .to_string()
            .contains("container type network can't be used with links"));
    }

    #[test]
    fn c4_flags_reach_the_run_options() {
        let o = options(&[
            "--oom-score-adj=-10",
            "--cpu-period=50000",
            "--cpu-quota=-1",
            "--memory-reservation=64m",
            "--domainname=example.test",
        ])
        .unwrap();
        assert_eq!(o.oom_score_adj, Some(-10));
        assert_eq!(o.resources.cpu_period, Some(50_000));
        assert_eq!(o.resources.cpu_quota, Some(-1));
        assert_eq!(o.resources.memory_reservation, Some(64 << 20));
        assert_eq!(o.domainname.as_deref(), Some("example.test"));
        let e = options(&["--ip6", "2001:db8::5"]).unwrap_err().to_string();
        assert_eq!(e, "--ip6: IPv6 is not supported yet");
        assert!(options(&["--oom-score-adj", "-1001"]).is_err());
    }

    #[test]
    fn cgroup_flags_reach_the_run_options() {
        let o = options(&[
            "--cgroup-parent=ci/jobs",
            "--cgroupns=host",
            "--userns=host",
            "--device-cgroup-rule=c 1:3 mr",
            "--device-read-bps=/dev/sda:1mb",
            "--device-write-iops=/dev/sda:50",
        ])
        .unwrap();
        assert_eq!(o.resources.cgroup_parent.as_deref(), Some("ci/jobs"));
        assert_eq!(o.cgroups_path("abc"), "/ci/jobs/abc");
        assert_eq!(options(&[]).unwrap().cgroups_path("abc"), "/coracle/abc");
        assert_eq!(o.cgroupns, o::NamespaceMode::Host);
        assert!(o.userns_host);
        assert_eq!(o.resources.device_cgroup_rules[0].rule, "c 1:3 mr");
        let t = &o.resources.blkio_throttles;
        assert_eq!((t.read_bps[0].rate, t.write_iops[0].rate), (1 << 20, 50));
        assert_eq!(
            options(&[]).unwrap().resources.oom_kill_disable,
            o::host_has_oom_kill_disable().then_some(false)
        );
        for (flags, want) in [
            (["--cgroup-parent", "../x"], "--cgroup-parent"),
            (["--cgroupns", "shared"], "--cgroupns"),
            (["--userns", "remap"], "--userns"),
            (
                ["--device-cgroup-rule", "c 1:3"],
                "invalid device cgroup format",
            ),
        ] {
            let e = options(&flags).unwrap_err().to_string();
            assert!(e.contains(want), "{flags:?}: {e}");
        }
    }

    #[test]
    fn network_flags_reach_the_run_options() {
        let o = options(&[]).unwrap();
        assert_eq!(o.network, o::NetworkMode::DefaultBridge);
        let o = options(&[
            "--network=mynet",
            "-p",
            "127.0.0.1:8080:80",
            "-p",
            "53/udp",
            "-P",
            "--expose",
            "81-82",
            "--ip",
            "10.89.0.7",
            "--mac-address",
            "02:42:0a:59:00:07",
            "--network-alias",
            "db",
            "--dns",
            "1.1.1.1",
            "--dns-search",
            "example.com",
            "--dns-opt",
            "ndots:2",
            "--dns-option",
            "timeout:1",
            "--add-host",
            "gw:host-gateway",
        ])
        .unwrap();
        assert_eq!(o.network, o::NetworkMode::Named("mynet".into()));
        assert_eq!(o.publish.len(), 2);
        assert_eq!(o.publish[0].host_ports, Some((8080, 8080)));
        assert_eq!(o.publish[1].proto, coracle_core::Protocol::Udp);
        assert!(o.publish_all);
        assert_eq!(o.expose.len(), 2);
        assert_eq!(o.ip, Some(std::net::Ipv4Addr::new(10, 89, 0, 7)));
        assert_eq!(o.mac_address, Some([2, 0x42, 10, 0x59, 0, 7]));
        assert_eq!(o.network_aliases, ["db"]);
        assert_eq!(o.dns, [std::net::IpAddr::from([1, 1, 1, 1])]);
        assert_eq!(o.dns_search, ["example.com"]);
        assert_eq!(o.dns_options, ["ndots:2", "timeout:1"]);
        assert_eq!(o.extra_hosts[0].addr, o::HostAddr::HostGateway);
        let e = options(&["--network", "container:web", "-p", "80"]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "conflicting options: port publishing and the container type network mode"
        );
        let e = options(&["--dns", "nope"]).unwrap_err();
        assert!(e
            .to_string()
            .contains("IP address is not correctly formatted"));
    }
}
