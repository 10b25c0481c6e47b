//! The stored config of a new container: docker's `Config` merged from the image's
//! config and the run options the way dockerd merges them at create, `HostConfig`
//! from the options, `Mounts` from the resolved mounts.

use super::{
    Config, DeviceJson, HostConfig, LogConfig, MountPoint, MountSpec, RestartPolicyJson,
    StoredConfig, UlimitJson,
};
use crate::request::RunRequest;
use coracle_image::ImageConfig;
use coracle_model::{
    ContainerSpec, HealthConfig, IdRef, MountRequest, NamespaceMode, NetworkMode, SeccompOption,
    UserSpec,
};
use coracle_runtime::spec::ResolvedMount;
use serde_json::Value;
use std::collections::BTreeMap;

/// What `create_container` knows about a new container. `mounts` and `health` are
/// known only once the root filesystem is prepared; before that the record carries
/// the document without them.
pub(crate) struct ConfigSources<'a> {
    pub id: &'a str,
    pub created: chrono::DateTime<chrono::Utc>,
    pub request: &'a RunRequest,
    pub image: &'a ImageConfig,
    /// The resolved command: entrypoint and cmd joined.
    pub args: &'a [String],
    /// The resolved hostname.
    pub hostname: &'a str,
    pub runtime: Option<&'a str>,
    pub health: Option<&'a HealthConfig>,
    /// Resolved: `--volumes-from` mounts sit between the requested mounts and the
    /// image's volumes.
    pub mounts: Option<&'a [ResolvedMount]>,
    /// `--volumes-from`: the other containers' mount points as this one has them.
    pub volumes_from: &'a [MountPoint],
}

/// The document for a new container: docker's `Config` merged from the image's
/// config and the run options the way dockerd merges them at create.
pub(crate) fn build(src: &ConfigSources) -> StoredConfig {
    let opts = &src.request.spec;
    let img = &src.image.config;
    let streams = opts.attached_streams();
    let (cmd, entrypoint) = match &opts.entrypoint {
        // An explicit entrypoint drops the image's Cmd (docker's merge rule).
        Some(ep) => (non_empty(&opts.args), Some(vec![ep.clone()])),
        None => (
            non_empty(&opts.args).or_else(|| img.cmd.clone()),
            img.entrypoint.clone(),
        ),
    };
    let mut labels = img.labels.clone().unwrap_or_default();
    labels.extend(opts.labels.clone());
    let mut volumes = img.volumes.clone().unwrap_or_default();
    for m in &opts.mounts {
        if let MountRequest::Anonymous { target, .. } = m {
            volumes.insert(target.clone(), Value::Object(Default::default()));
        }
    }
    let config = Config {
        hostname: src.hostname.to_string(),
        domainname: opts.domainname.clone().unwrap_or_default(),
        user: opts
            .user
            .as_ref()
            .map(user_string)
            .or_else(|| img.user.clone())
            .unwrap_or_default(),
        attach_stdin: streams.stdin,
        attach_stdout: streams.stdout,
        attach_stderr: streams.stderr,
        exposed_ports: exposed_ports(img.exposed_ports.as_ref(), opts),
        tty: opts.tty,
        open_stdin: opts.interactive,
        stdin_once: opts.interactive && streams.stdin,
        env: merged_env(img.env.as_deref().unwrap_or(&[]), &opts.env),
        cmd,
        healthcheck: src.health.cloned(),
        image: src.request.image.clone(),
        volumes: (!volumes.is_empty()).then_some(volumes),
        working_dir: opts
            .workdir
            .clone()
            .or_else(|| img.working_dir.clone())
            .unwrap_or_default(),
        entrypoint,
        on_build: img.on_build.clone(),
        labels,
        stop_signal: match opts.stop_signal {
            Some(n) => Some(signal_name(n)),
            None => img.stop_signal.clone().filter(|s| !s.is_empty()),
        },
        stop_timeout: opts.stop_timeout,
    };
    let mounts = match src.mounts {
        Some(resolved) => {
            let (own, shared) = (opts.mounts.len(), src.volumes_from.len());
            let mut resolved = resolved.to_vec();
            resolved.drain(own..(own + shared).min(resolved.len()));
            let mut points = mount_points(&opts.mounts, &resolved);
            let at = own.min(points.len());
            points.splice(at..at, src.volumes_from.iter().cloned());
            points
        }
        None => Vec::new(),
    };
    StoredConfig {
        created: src
            .created
            .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        path: src.args.first().cloned().unwrap_or_default(),
        args: src.args.iter().skip(1).cloned().collect(),
        config,
        host_config: host_config(opts, src.runtime),
        mounts,
    }
}

fn non_empty(v: &[String]) -> Option<Vec<String>> {
    (!v.is_empty()).then(|| v.to_vec())
}

/// docker's `ReplaceOrAppendEnvValues(image env, user env)`.
fn merged_env(image: &[String], user: &[String]) -> Option<Vec<String>> {
    let key = |e: &str| e.split_once('=').map_or(e, |(k, _)| k).to_string();
    let mut out: Vec<String> = image.to_vec();
    for e in user {
        let k = key(e);
        match out.iter().position(|o| key(o) == k) {
            Some(i) => out[i] = e.clone(),
            None => out.push(e.clone()),
        }
    }
    (!out.is_empty()).then_some(out)
}

fn id_ref(r: &IdRef) -> String {
    match r {
        IdRef::Id(n) => n.to_string(),
        IdRef::Name(s) => s.clone(),
    }
}

fn user_string(u: &UserSpec) -> String {
    match &u.group {
        Some(g) => format!("{}:{}", id_ref(&u.user), id_ref(g)),
        None => id_ref(&u.user),
    }
}

/// `SIGTERM` for 15, `SIGRTMIN+3` for real-time signals: how docker shows a stop
/// signal given by name.
pub(crate) fn signal_name(n: i32) -> String {
    if (libc::SIGRTMIN()..=libc::SIGRTMAX()).contains(&n) {
        let off = n - libc::SIGRTMIN();
        return if off == 0 {
            "SIGRTMIN".into()
        } else {
            format!("SIGRTMIN+{off}")
        };
    }
    nix::sys::signal::Signal::try_from(n)
        .map(|s| s.as_str().to_string())
        .unwrap_or_else(|_| n.to_string())
}

fn namespace_mode(m: NamespaceMode, private: &str) -> String {
    match m {
        NamespaceMode::Host => "host".into(),
        NamespaceMode::Private => private.into(),
    }
}

fn some_if_any(v: Vec<String>) -> Option<Vec<String>> {
    (!v.is_empty()).then_some(v)
}

fn host_config(opts: &ContainerSpec, runtime: Option<&str>) -> HostConfig {
    let mounts = HostMounts::of(opts);
    let defaults_or = |list: &[&str]| {
        if opts.privileged {
            None
        } else if opts.security.unconfined_system_paths {
            Some(Vec::new())
        } else {
            Some(list.iter().map(|s| s.to_string()).collect())
        }
    };
    let host_config = HostConfig {
        binds: some_if_any(mounts.binds),
        container_id_file: opts.cidfile.clone().unwrap_or_default(),
        volumes_from: some_if_any(opts.volumes_from.iter().map(|v| v.spec.clone()).collect()),
        log_config: LogConfig {
            kind: if opts.log.enabled {
                "json-file"
            } else {
                "none"
            }
            .into(),
            config: opts.log.config_map(),
        },
        network_mode: network_mode(&opts.network),
        port_bindings: port_bindings(opts),
        publish_all_ports: opts.publish_all,
        dns: opts.dns.iter().map(|d| d.to_string()).collect(),
        dns_search: opts.dns_search.clone(),
        dns_options: opts.dns_options.clone(),
        extra_hosts: some_if_any(extra_hosts(opts)),
        restart_policy: RestartPolicyJson {
            name: opts.restart.name().into(),
            maximum_retry_count: opts.restart.max_retries(),
        },
        auto_remove: opts.rm,
        cap_add: some_if_any(opts.cap_add.clone()),
        cap_drop: some_if_any(opts.cap_drop.clone()),
        cgroupns_mode: namespace_mode(opts.cgroupns, "private"),
        userns_mode: if opts.userns_host { "host" } else { "" }.into(),
        group_add: some_if_any(opts.group_add.iter().map(id_ref).collect()),
        ipc_mode: namespace_mode(opts.ipc, "private"),
        pid_mode: namespace_mode(opts.pid, ""),
        privileged: opts.privileged,
        readonly_rootfs: opts.read_only,
        security_opt: some_if_any(security_opt(opts)),
        tmpfs: (!mounts.tmpfs.is_empty()).then_some(mounts.tmpfs),
        uts_mode: namespace_mode(opts.uts, ""),
        sysctls: (!opts.sysctls.is_empty()).then(|| opts.sysctls.clone()),
        runtime: runtime
            .filter(|r| !r.is_empty())
            .unwrap_or(coracle_runtime::runtime::BUILTIN)
            .to_string(),
        mounts: (!mounts.specs.is_empty()).then_some(mounts.specs),
        masked_paths: defaults_or(&coracle_model::defaults::MASKED_PATHS),
        readonly_paths: defaults_or(&coracle_model::defaults::READONLY_PATHS),
        init: opts.init.then_some(true),
        ..Default::default()
    };
    with_resources(host_config, opts)
}

/// `HostConfig`'s resource limits, devices and cgroup settings.
fn with_resources(host_config: HostConfig, opts: &ContainerSpec) -> HostConfig {
    let resources = opts.resources();
    let resources_opts = &opts.resources;
    HostConfig {
        cgroup_parent: resources_opts.cgroup_parent.clone().unwrap_or_default(),
        oom_kill_disable: resources_opts.oom_kill_disable,
        device_cgroup_rules: some_if_any(
            resources_opts
                .device_cgroup_rules
                .iter()
                .map(|r| r.rule.clone())
                .collect(),
        ),
        blkio_weight_device: resources_opts
            .blkio_weight_device
            .iter()
            .map(|w| serde_json::json!({"Path": w.path, "Weight": w.weight}))
            .collect(),
        blkio_device_read_bps: throttle_json(&resources_opts.blkio_throttles.read_bps),
        blkio_device_write_bps: throttle_json(&resources_opts.blkio_throttles.write_bps),
        blkio_device_read_iops: throttle_json(&resources_opts.blkio_throttles.read_iops),
        blkio_device_write_iops: throttle_json(&resources_opts.blkio_throttles.write_iops),
        shm_size: opts
            .shm_size
            .unwrap_or(coracle_model::defaults::DEFAULT_SHM_SIZE),
        cpu_shares: resources.cpu_shares.unwrap_or(0),
        memory: resources.memory.unwrap_or(0),
        nano_cpus: opts.resources.cpus.map_or(0, |c| c.nano_cpus),
        cpuset_cpus: resources.cpuset_cpus.clone().unwrap_or_default(),
        devices: opts
            .devices
            .iter()
            .map(|d| DeviceJson {
                path_on_host: d.host_path.clone(),
                path_in_container: d.container_path.clone(),
                cgroup_permissions: d.permissions.clone(),
            })
            .collect(),
        memory_swap: resources.memory_swap.unwrap_or(0),
        pids_limit: opts.resources.pids_limit,
        oom_score_adj: opts.oom_score_adj.map_or(0, i64::from),
        cpu_period: opts.resources.cpu_period.unwrap_or(0),
        cpu_quota: opts.resources.cpu_quota.unwrap_or(0),
        memory_reservation: resources.memory_reservation.unwrap_or(0),
        cpuset_mems: resources.cpuset_mems.clone().unwrap_or_default(),
        blkio_weight: resources.blkio_weight.unwrap_or(0),
        memory_swappiness: resources.memory_swappiness.map(|s| s as i64),
        ulimits: (!opts.ulimits.is_empty()).then(|| {
            opts.ulimits
                .iter()
                .map(|u| UlimitJson {
                    name: u.name.clone(),
                    hard: u.hard,
                    soft: u.soft,
                })
                .collect()
        }),
        ..host_config
    }
}

/// The run's mounts as `HostConfig` lists them: `Binds`, `Mounts` and `Tmpfs`.
struct HostMounts {
    binds: Vec<String>,
    specs: Vec<MountSpec>,
    tmpfs: BTreeMap<String, String>,
}

impl HostMounts {
    fn of(opts: &ContainerSpec) -> HostMounts {
        let mut binds = Vec::new();
        let mut specs = Vec::new();
        let mut tmpfs = BTreeMap::new();
        for m in &opts.mounts {
            match m {
                // `-v` binds create a missing source (docker's legacy rule); `--mount`
                // binds do not, and docker lists them in HostConfig.Mounts instead.
                MountRequest::Bind {
                    source,
                    target,
                    read_only,
                    create_source: false,
                    ..
                } => specs.push(MountSpec {
                    kind: "bind".into(),
                    source: source.display().to_string(),
                    target: target.clone(),
                    read_only: *read_only,
                }),
                MountRequest::Bind { source, target, .. } => {
                    let mode = bind_mode(m);
                    binds.push(if mode.is_empty() {
                        format!("{}:{target}", source.display())
                    } else {
                        format!("{}:{target}:{mode}", source.display())
                    });
                }
                MountRequest::Named {
                    name,
                    target,
                    read_only,
                    no_copy,
                } => {
                    let mode = volume_mode(*read_only, *no_copy);
                    binds.push(if mode.is_empty() {
                        format!("{name}:{target}")
                    } else {
                        format!("{name}:{target}:{mode}")
                    });
                }
                MountRequest::Anonymous { .. } => {}
                MountRequest::Tmpfs(t) => {
                    tmpfs.insert(t.target.clone(), t.options.join(","));
                }
            }
        }
        HostMounts {
            binds,
            specs,
            tmpfs,
        }
    }
}

/// `HostConfig.NetworkMode`.
fn network_mode(network: &NetworkMode) -> String {
    match network {
        NetworkMode::None => "none".into(),
        NetworkMode::Host => "host".into(),
        NetworkMode::DefaultBridge => "bridge".into(),
        NetworkMode::Named(n) => n.clone(),
        NetworkMode::Container(n) => format!("container:{n}"),
    }
}

/// `HostConfig.ExtraHosts`: `NAME:ADDR` as given to `--add-host`.
fn extra_hosts(opts: &ContainerSpec) -> Vec<String> {
    opts.extra_hosts
        .iter()
        .map(|h| match &h.addr {
            coracle_model::HostAddr::Ip(ip) => format!("{}:{ip}", h.name),
            coracle_model::HostAddr::HostGateway => format!("{}:host-gateway", h.name),
        })
        .collect()
}

/// `HostConfig.SecurityOpt`, in docker's order.
fn security_opt(opts: &ContainerSpec) -> Vec<String> {
    let mut security_opt = Vec::new();
    match &opts.security.seccomp {
        SeccompOption::Default => {}
        SeccompOption::Unconfined => security_opt.push("seccomp=unconfined".to_string()),
        SeccompOption::Profile(p) => security_opt.push(format!("seccomp={}", p.display())),
    }
    if opts.security.no_new_privileges {
        security_opt.push("no-new-privileges".into());
    }
    if opts.security.unconfined_system_paths {
        security_opt.push("systempaths=unconfined".into());
    }
    if let Some(p) = &opts.security.apparmor {
        security_opt.push(format!("apparmor={p}"));
    }
    for l in &opts.security.labels {
        security_opt.push(format!("label={l}"));
    }
    security_opt
}

/// docker's `ThrottleDevice` JSON.
fn throttle_json(list: &[coracle_model::ThrottleDevice]) -> Vec<Value> {
    list.iter()
        .map(|t| serde_json::json!({"Path": t.path, "Rate": t.rate}))
        .collect()
}

/// The mode part of a `-v SRC:DST:MODE` bind, as docker records it.
fn bind_mode(m: &MountRequest) -> String {
    let MountRequest::Bind {
        read_only,
        propagation,
        relabel,
        ..
    } = m
    else {
        return String::new();
    };
    let mut parts = Vec::new();
    if *read_only {
        parts.push("ro");
    }
    match relabel {
        Some(coracle_model::Relabel::Shared) => parts.push("z"),
        Some(coracle_model::Relabel::Private) => parts.push("Z"),
        None => {}
    }
    if let Some(p) = propagation {
        parts.push(p.as_str());
    }
    parts.join(",")
}

fn volume_mode(read_only: bool, no_copy: bool) -> String {
    let mut parts = Vec::new();
    if read_only {
        parts.push("ro");
    }
    if no_copy {
        parts.push("nocopy");
    }
    parts.join(",")
}

/// docker's `Mounts`: the requests paired with what they resolved to (one each, in
/// order). Anonymous volumes get their generated name from the volume's directory
/// (`<volumes>/<name>/_data`).
/// Resolved mounts past the requests are the image's `VOLUME`s, anonymous volumes.
fn mount_points(requests: &[MountRequest], resolved: &[ResolvedMount]) -> Vec<MountPoint> {
    let image_volumes = resolved.iter().skip(requests.len()).map(|r| {
        let target = match r {
            ResolvedMount::Bind { target, .. } | ResolvedMount::Tmpfs { target, .. } => target,
        };
        MountRequest::Anonymous {
            target: target.clone(),
            read_only: false,
            no_copy: false,
        }
    });
    let requests: Vec<MountRequest> = requests.iter().cloned().chain(image_volumes).collect();
    requests
        .iter()
        .zip(resolved)
        .map(|(req, res)| {
            let source = match res {
                ResolvedMount::Bind { source, .. } => source.display().to_string(),
                ResolvedMount::Tmpfs { .. } => String::new(),
            };
            match req {
                MountRequest::Bind {
                    target,
                    read_only,
                    propagation,
                    create_source,
                    ..
                } => MountPoint {
                    kind: "bind".into(),
                    source,
                    destination: target.clone(),
                    mode: if *create_source {
                        bind_mode(req)
                    } else {
                        String::new()
                    },
                    rw: !read_only,
                    propagation: propagation.map_or("rprivate", |p| p.as_str()).into(),
                    ..Default::default()
                },
                MountRequest::Named {
                    name,
                    target,
                    read_only,
                    no_copy,
                } => MountPoint {
                    kind: "volume".into(),
                    name: name.clone(),
                    source,
                    destination: target.clone(),
                    driver: "local".into(),
                    mode: match volume_mode(*read_only, *no_copy) {
                        m if m.is_empty() => "z".into(),
                        m => m,
                    },
                    rw: !read_only,
                    propagation: String::new(),
                },
                MountRequest::Anonymous {
                    target, read_only, ..
                } => MountPoint {
                    kind: "volume".into(),
                    name: std::path::Path::new(&source)
                        .parent()
                        .and_then(|p| p.file_name())
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                    source,
                    destination: target.clone(),
                    driver: "local".into(),
                    mode: String::new(),
                    rw: !read_only,
                    propagation: String::new(),
                },
                MountRequest::Tmpfs(t) => MountPoint {
                    kind: "tmpfs".into(),
                    destination: t.target.clone(),
                    rw: !t.options.iter().any(|o| o == "ro"),
                    ..Default::default()
                },
            }
        })
        .collect()
}

/// docker's Config.ExposedPorts: the image's, `--expose` and every `-p` port.
fn exposed_ports(
    image: Option<&BTreeMap<String, serde_json::Value>>,
    opts: &ContainerSpec,
) -> Option<BTreeMap<String, serde_json::Value>> {
    let mut out = image.cloned().unwrap_or_default();
    for e in &opts.expose {
        out.insert(
            format!("{}/{}", e.port, e.proto.as_str()),
            serde_json::json!({}),
        );
    }
    for p in &opts.publish {
        out.insert(
            format!("{}/{}", p.container_port, p.proto.as_str()),
            serde_json::json!({}),
        );
    }
    (!out.is_empty()).then_some(out)
}

/// docker's HostConfig.PortBindings: `-p` as given ("" for a random host port).
fn port_bindings(opts: &ContainerSpec) -> BTreeMap<String, serde_json::Value> {
    let mut out: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    for p in &opts.publish {
        let key = format!("{}/{}", p.container_port, p.proto.as_str());
        let host_port = match p.host_ports {
            None => String::new(),
            Some((lo, hi)) if lo == hi => lo.to_string(),
            Some((lo, hi)) => format!("{lo}-{hi}"),
        };
        let binding = serde_json::json!({
            "HostIp": p.host_ip.map(|ip| ip.to_string()).unwrap_or_default(),
            "HostPort": host_port,
        });
        match out.entry(key).or_insert_with(|| serde_json::json!([])) {
            serde_json::Value::Array(list) => list.push(binding),
            other => *other = serde_json::json!([binding]),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use coracle_model::{parse_mount, parse_tmpfs, parse_volume, RestartPolicy};

    fn image() -> ImageConfig {
        ImageConfig::parse(
            br#"{"architecture":"amd64","os":"linux","config":{
                "Env":["PATH=/bin","A=1"],"Cmd":["sh"],"Labels":{"from":"image","x":"1"},
                "WorkingDir":"/srv","StopSignal":"SIGQUIT","Volumes":{"/cache":{}}},
                "rootfs":{"type":"layers","diff_ids":[]}}"#,
        )
        .unwrap()
    }

    fn sources<'a>(
        req: &'a RunRequest,
        img: &'a ImageConfig,
        args: &'a [String],
    ) -> ConfigSources<'a> {
        let id = "0123456789abcdef0123";
        // As `create` resolves it; leaked: a test's few bytes outlive the sources.
        let hostname = coracle_model::hostname(&req.spec, id, "host");
        ConfigSources {
            id,
            created: chrono::DateTime::from_timestamp(1_700_000_000, 5).unwrap(),
            request: req,
            image: img,
            args,
            hostname: Box::leak(hostname.into_boxed_str()),
            runtime: None,
            health: None,
            mounts: None,
            volumes_from: &[],
        }
    }

    #[test]
    fn merges_image_config_and_options_as_dockerd() {
        let mut o = ContainerSpec::new();
        o.env = vec!["A=2".into(), "B=3".into()];
        o.labels = [("x".to_string(), "2".to_string())].into();
        o.restart = RestartPolicy::OnFailure { max: Some(3) };
        o.stop_signal = Some(9);
        o.interactive = true;
        o.network = NetworkMode::None;
        let req = RunRequest {
            image: "box".into(),
            platform: None,
            spec: o,
            pull: Default::default(),
        };
        let img = image();
        let args = vec!["sh".to_string()];
        let c = build(&sources(&req, &img, &args));
        assert_eq!(c.created, "2023-11-14T22:13:20.000000005Z");
        assert_eq!((c.path.as_str(), c.args.len()), ("sh", 0));
        assert_eq!(c.config.hostname, "0123456789ab");
        assert_eq!(
            c.config.env.as_deref().unwrap(),
            ["PATH=/bin", "A=2", "B=3"]
        );
        assert_eq!(c.config.cmd.as_deref().unwrap(), ["sh"]);
        assert_eq!(c.config.labels["from"], "image");
        assert_eq!(c.config.labels["x"], "2", "--label overrides the image's");
        assert_eq!(c.config.working_dir, "/srv");
        assert_eq!(c.config.stop_signal.as_deref(), Some("SIGKILL"));
        assert!(c.config.attach_stdin && c.config.stdin_once && c.config.attach_stdout);
        assert!(c.config.volumes.as_ref().unwrap().contains_key("/cache"));
        assert_eq!(c.host_config.network_mode, "none");
        assert_eq!(c.host_config.restart_policy.name, "on-failure");
        assert_eq!(c.host_config.restart_policy.maximum_retry_count, 3);
        assert_eq!(c.host_config.log_config.kind, "json-file");
        assert_eq!(c.host_config.runtime, "youki");
        assert_eq!(c.host_config.shm_size, 64 << 20);
        let json = c.to_json();
        assert!(
            !json.contains("BlkioWeight"),
            "defaults are left out: {json}"
        );
        assert_eq!(StoredConfig::parse(&json), c, "and read back as they were");
    }

    #[test]
    fn entrypoint_flag_drops_image_cmd_and_detach_attaches_nothing() {
        let mut o = ContainerSpec::new();
        o.entrypoint = Some("".into());
        // `-d`: the CLI attaches no stream.
        o.attach = Some(coracle_model::AttachStreams {
            stdin: false,
            stdout: false,
            stderr: false,
        });
        let req = RunRequest {
            image: "box".into(),
            platform: None,
            spec: o,
            pull: Default::default(),
        };
        let img = image();
        let c = build(&sources(&req, &img, &[]));
        assert_eq!(c.config.cmd, None);
        assert_eq!(c.config.entrypoint.as_deref().unwrap(), [""]);
        assert!(!c.config.attach_stdout && !c.config.attach_stderr);
        assert_eq!(c.config.stop_signal.as_deref(), Some("SIGQUIT"));
    }

    #[test]
    fn mounts_in_docker_shape() {
        let mut o = ContainerSpec::new();
        o.mounts = vec![
            parse_volume("/host:/in:ro").unwrap(),
            parse_volume("data:/data").unwrap(),
            parse_volume("/anon").unwrap(),
            parse_mount("type=bind,source=/src,target=/m").unwrap(),
            parse_tmpfs("/t:size=1m").unwrap().into_request(),
        ];
        let resolved = vec![
            ResolvedMount::Bind {
                source: "/host".into(),
                target: "/in".into(),
                read_only: true,
                propagation: None,
                recursive: true,
            },
            ResolvedMount::Bind {
                source: "/store/volumes/data/_data".into(),
                target: "/data".into(),
                read_only: false,
                propagation: None,
                recursive: true,
            },
            ResolvedMount::Bind {
                source: "/store/volumes/f00d/_data".into(),
                target: "/anon".into(),
                read_only: false,
                propagation: None,
                recursive: true,
            },
            ResolvedMount::Bind {
                source: "/src".into(),
                target: "/m".into(),
                read_only: false,
                propagation: None,
                recursive: true,
            },
            ResolvedMount::Tmpfs {
                target: "/t".into(),
                options: vec!["size=1m".into()],
            },
        ];
        let req = RunRequest {
            image: "box".into(),
            platform: None,
            spec: o,
            pull: Default::default(),
        };
        let img = image();
        let mut src = sources(&req, &img, &[]);
        src.mounts = Some(&resolved);
        let c = build(&src);
        let m = &c.mounts;
        assert_eq!(m.len(), 5);
        assert_eq!(
            (
                m[0].kind.as_str(),
                m[0].mode.as_str(),
                m[0].rw,
                m[0].propagation.as_str()
            ),
            ("bind", "ro", false, "rprivate")
        );
        assert_eq!((m[1].name.as_str(), m[1].mode.as_str()), ("data", "z"));
        assert_eq!(
            (m[2].name.as_str(), m[2].driver.as_str()),
            ("f00d", "local")
        );
        assert_eq!((m[3].kind.as_str(), m[3].mode.as_str()), ("bind", ""));
        assert_eq!((m[4].kind.as_str(), m[4].source.as_str()), ("tmpfs", ""));
        let h = &c.host_config;
        assert_eq!(h.binds.as_deref().unwrap(), ["/host:/in:ro", "data:/data"]);
        assert_eq!(h.mounts.as_ref().unwrap()[0].target, "/m");
        assert!(h.tmpfs.as_ref().unwrap().contains_key("/t"));
        assert!(c.config.volumes.as_ref().unwrap().contains_key("/anon"));
        assert_eq!(StoredConfig::parse(&c.to_json()), c);
    }

    #[test]
    fn old_documents_still_read() {
        let c = StoredConfig::parse(r#"{"Image":"box","Cmd":["true"],"Tty":false}"#);
        assert_eq!(c.path, "");
        assert_eq!(StoredConfig::parse("not json"), StoredConfig::default());
    }

    #[test]
    fn signal_names() {
        assert_eq!(signal_name(15), "SIGTERM");
        assert_eq!(signal_name(libc::SIGRTMIN() + 2), "SIGRTMIN+2");
    }
}
