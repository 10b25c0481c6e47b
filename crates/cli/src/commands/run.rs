//! `coracle run`: docker's flags, parsed into the engine's run request.

use crate::Context;
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug)]
#[command(trailing_var_arg = true, disable_help_flag = true)]
pub struct RunArgs {
    /// Print help (`-h` is --hostname, as docker's)
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,
    /// Keep STDIN open
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short, long)]
    pub tty: bool,
    /// Run in the background and print the container ID
    #[arg(short, long)]
    pub detach: bool,
    /// Key sequence for detaching (default ctrl-p,ctrl-q)
    #[arg(long, value_name = "KEYS")]
    pub detach_keys: Option<String>,
    /// Attach to STDIN, STDOUT or STDERR
    #[arg(short = 'a', long = "attach", value_name = "STREAM")]
    pub attach: Vec<String>,
    /// Write the container ID to the file
    #[arg(long, value_name = "FILE")]
    pub cidfile: Option<String>,
    /// Suppress the pull output
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Proxy received signals to the container (not with a tty)
    #[arg(long, default_value = "true", value_parser = clap::builder::BoolishValueParser::new(), action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub sig_proxy: bool,
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
    crate::commands::run_impl::exec(ctx, args)
}
