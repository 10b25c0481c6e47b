//! `run` flags (strings, as typed) into the runtime's typed `RunOptions`, with
//! docker's messages for bad values.

use crate::commands::run::RunArgs;
use coracle_model::{self as o, RunOptions};

pub fn to_run_options(args: &RunArgs) -> anyhow::Result<RunOptions> {
    let mut opts = RunOptions::new();
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
    opts.pull = o::parse_pull_policy(&args.pull)?;
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
    let r = &mut opts.resources;
    r.memory = parsed(&args.memory, o::parse_memory)?;
    r.memory_swap = parsed(&args.memory_swap, o::parse_memory_swap)?;
    r.memory_reservation = parsed(&args.memory_reservation, o::parse_memory_reservation)?;
    r.memory_swappiness = parsed(&args.memory_swappiness, o::parse_memory_swappiness)?.flatten();
    if r.memory_swappiness.is_some() && !o::host_has_memory_swappiness() {
        // As docker's daemon: cgroup v2 has no per-cgroup swappiness.
        coracle_runtime::note!(
            "WARNING: Your kernel does not support memory swappiness capabilities or the cgroup is not mounted. Memory swappiness discarded."
        );
        r.memory_swappiness = None;
    }
    r.cpuset_mems = parsed(&args.cpuset_mems, o::parse_cpuset_mems)?;
    r.blkio_weight = parsed(&args.blkio_weight, o::parse_blkio_weight)?.flatten();
    if r.blkio_weight.is_some() && !o::host_has_blkio_weight() {
        coracle_runtime::note!("{}", o::BLKIO_WEIGHT_DISCARDED);
        r.blkio_weight = None;
    }
    cgroup_flags(args, &mut opts)?;
    let r = &mut opts.resources;
    r.cpus = parsed(&args.cpus, o::parse_cpus)?.flatten();
    r.cpu_shares = parsed(&args.cpu_shares, o::parse_cpu_shares)?;
    r.cpuset_cpus = parsed(&args.cpuset_cpus, o::parse_cpuset)?;
    r.cpu_period = parsed(&args.cpu_period, |v| o::parse_cpu_cfs("--cpu-period", v))?;
    r.cpu_quota = parsed(&args.cpu_quota, |v| o::parse_cpu_cfs("--cpu-quota", v))?;
    r.pids_limit = parsed(&args.pids_limit, o::parse_pids_limit)?.flatten();
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
    opts.detach = args.detach;
    opts.sig_proxy = args.sig_proxy;
    opts.detach_keys = parsed(&args.detach_keys, o::parse_detach_keys)?;
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
    opts.validate()?;
    Ok(opts)
}

/// `--cgroup-parent`, `--cgroupns`, `--userns`, `--oom-kill-disable`, the block I/O
/// device flags and `--device-cgroup-rule`. What the host's cgroups cannot do is
/// dropped with docker's warning, as docker's daemon drops it.
fn cgroup_flags(args: &RunArgs, opts: &mut RunOptions) -> anyhow::Result<()> {
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
            coracle_runtime::note!(
                "WARNING: Your kernel does not support OomKillDisable. OomKillDisable discarded."
            );
        }
        r.oom_kill_disable = None;
    }
    if r.oom_kill_disable == Some(true) && r.memory.is_none_or(|m| m <= 0) {
        coracle_runtime::note!(
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
                coracle_runtime::note!("WARNING: Your kernel does not support {what} discarded.");
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
        coracle_runtime::note!(
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
/// `--add-host` (the cross-flag rules are `RunOptions::validate`'s).
fn network_flags(args: &RunArgs, opts: &mut RunOptions) -> anyhow::Result<()> {
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
fn script_flags(args: &RunArgs, opts: &mut RunOptions) -> anyhow::Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Run {
        #[command(flatten)]
        args: RunArgs,
    }

    fn options(flags: &[&str]) -> anyhow::Result<RunOptions> {
        let argv = ["run"].iter().chain(flags).chain(&["box"]);
        to_run_options(&Run::try_parse_from(argv)?.args)
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
