//! Golden tests: run options as the CLI parses them -> `coracle_model::resolve` (what
//! `create` runs) against a fake image and host -> SpecInput with the host paths the
//! engine would find -> OCI spec JSON, compared with tests/golden/*.json.
//! `UPDATE_GOLDEN=1 cargo test -p coracle-runtime --test golden` rewrites the files
//! (review the diff against docker's behaviour before committing it).

use std::collections::HashMap;
use std::path::PathBuf;

use coracle_model::defaults;
use coracle_model::{
    self as options, merge_env, ContainerSpec, EnvContext, HostFacts, ImageDefaults, MountRequest,
    NamespaceMode, SysctlContext,
};
use coracle_runtime::seccomp::KernelVersion;
use coracle_runtime::spec::{
    build_spec, Device, EtcFiles, Namespaces, NetworkNamespace, ProcessUser, ResolvedMount,
    SeccompChoice, SpecInput,
};

const ID: &str = "0123456789ab";

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn host_hard_limits() -> HashMap<String, u64> {
    HashMap::from([
        ("RLIMIT_NOFILE".to_string(), 524288),
        ("RLIMIT_NPROC".to_string(), 127_000),
    ])
}

/// What `create` does: resolve the options against a fake image and host, then fill in
/// what the root filesystem and the host's paths would tell (`user`, `home`, mounts,
/// devices).
fn resolve(o: &ContainerSpec, user: ProcessUser, home: Option<&str>) -> SpecInput {
    let image = ImageDefaults {
        cmd: Some(strings(&["/bin/sh"])),
        env: strings(&["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]),
        ..Default::default()
    };
    let host = HostFacts {
        nodename: "host".into(),
        bounding_capabilities: u64::MAX,
        effective_capabilities: u64::MAX,
        last_cap: defaults::LAST_CAP,
        oom_score_adj: -1000,
        hard_limits: host_hard_limits(),
    };
    let r = options::resolve(o, ID, &image, &[], &host).unwrap();
    let env = merge_env(
        &image.env,
        &o.env,
        &EnvContext {
            hostname: r.hostname.clone(),
            home: home.map(String::from),
            tty: o.tty,
        },
    );
    let mounts = r
        .mounts
        .iter()
        .map(
            |m| match m.clone().absolutize(std::path::Path::new("/home/u/proj")) {
                MountRequest::Bind {
                    source,
                    target,
                    read_only,
                    propagation,
                    recursive,
                    ..
                } => ResolvedMount::Bind {
                    source,
                    target,
                    read_only,
                    propagation,
                    recursive,
                },
                MountRequest::Named {
                    name,
                    target,
                    read_only,
                    ..
                } => ResolvedMount::Bind {
                    source: PathBuf::from(format!("/var/lib/coracle/volumes/{name}/_data")),
                    target,
                    read_only,
                    propagation: None,
                    recursive: true,
                },
                MountRequest::Anonymous {
                    target, read_only, ..
                } => ResolvedMount::Bind {
                    source: PathBuf::from("/var/lib/coracle/volumes/anon0/_data"),
                    target,
                    read_only,
                    propagation: None,
                    recursive: true,
                },
                MountRequest::Tmpfs(t) => ResolvedMount::Tmpfs {
                    target: t.target,
                    options: t.options,
                },
            },
        )
        .collect();
    let devices = o
        .devices
        .iter()
        .map(|d| {
            // the engine stats the host node; here: /dev/net/tun
            Device {
                path: d.container_path.clone(),
                typ: 'c',
                major: 10,
                minor: 200,
                file_mode: Some(0o666),
                uid: Some(0),
                gid: Some(0),
                permissions: d.permissions.clone(),
            }
        })
        .collect();
    let dir = format!("/var/lib/coracle/containers/{ID}");
    SpecInput {
        rootfs: PathBuf::from(format!("{dir}/merged")),
        readonly_rootfs: o.read_only,
        args: r.args,
        env,
        cwd: r.cwd,
        user,
        terminal: o.tty,
        hostname: (o.uts == NamespaceMode::Private).then_some(r.hostname),
        domainname: o.domainname.clone(),
        namespaces: Namespaces {
            pid: o.pid,
            ipc: o.ipc,
            uts: o.uts,
            cgroup: o.cgroupns,
            network: match o.network {
                options::NetworkMode::Host => NetworkNamespace::Host,
                _ => NetworkNamespace::Private,
            },
        },
        cgroups_path: r.cgroups_path,
        mounts,
        etc_files: EtcFiles {
            hostname: Some(PathBuf::from(format!("{dir}/hostname"))),
            hosts: Some(PathBuf::from(format!("{dir}/hosts"))),
            resolv_conf: Some(PathBuf::from(format!("{dir}/resolv.conf"))),
        },
        resources: o.resources(),
        ulimits: o.ulimits.clone(),
        host_hard_limits: host.hard_limits,
        shm_size: o.shm_size,
        devices,
        sysctls: o.sysctls.clone(),
        privileged: o.privileged,
        capabilities: r.capabilities,
        seccomp: match &o.security.seccomp {
            options::SeccompOption::Default => SeccompChoice::Default,
            options::SeccompOption::Unconfined => SeccompChoice::Unconfined,
            options::SeccompOption::Profile(_) => unreachable!(),
        },
        no_new_privileges: o.security.no_new_privileges,
        unconfined_system_paths: o.security.unconfined_system_paths,
        init: o.init.then(|| PathBuf::from("/usr/libexec/coracle/init")),
        oom_score_adj: r.oom_score_adj,
        arch: "x86_64".into(),
        kernel: KernelVersion::parse("6.1"),
    }
}

fn sort_caps(v: &mut serde_json::Value) {
    if let Some(caps) = v.pointer_mut("/process/capabilities") {
        for set in caps.as_object_mut().unwrap().values_mut() {
            set.as_array_mut()
                .unwrap()
                .sort_by(|a, b| a.as_str().cmp(&b.as_str()));
        }
    }
}

fn check(name: &str, input: &SpecInput) {
    let spec = build_spec(input).unwrap();
    let mut v = serde_json::to_value(&spec).unwrap();
    sort_caps(&mut v);
    let got = serde_json::to_string_pretty(&v).unwrap() + "\n";
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("{name}.json"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_GOLDEN=1)", path.display()));
    assert!(
        want == got,
        "{name}: spec differs from {}; run with UPDATE_GOLDEN=1 and review the diff\n--- got:\n{got}",
        path.display()
    );
}

fn root() -> ProcessUser {
    ProcessUser::default()
}

#[test]
fn golden_defaults() {
    // coracle run --network none alpine
    let mut o = ContainerSpec::new();
    o.network = options::parse_network("none").unwrap();
    check("defaults", &resolve(&o, root(), None));
}

#[test]
fn golden_privileged() {
    // coracle run --privileged --network host alpine sh -c 'id'
    let mut o = ContainerSpec::new();
    o.privileged = true;
    o.network = options::parse_network("host").unwrap();
    o.args = strings(&["sh", "-c", "id"]);
    let mut input = resolve(&o, root(), None);
    // the engine lists every host device for a privileged container
    input.devices = vec![
        Device {
            path: "/dev/sda".into(),
            typ: 'b',
            major: 8,
            minor: 0,
            file_mode: Some(0o660),
            uid: Some(0),
            gid: Some(6),
            permissions: "rwm".into(),
        },
        Device {
            path: "/dev/kmsg".into(),
            typ: 'c',
            major: 1,
            minor: 11,
            file_mode: Some(0o644),
            uid: Some(0),
            gid: Some(0),
            permissions: "rwm".into(),
        },
    ];
    check("privileged", &input);
}

#[test]
fn golden_read_only_tmpfs() {
    // coracle run --read-only --tmpfs /tmp --tmpfs /run:rw,exec,size=16m alpine touch /tmp/x
    let mut o = ContainerSpec::new();
    o.read_only = true;
    o.network = options::NetworkMode::None;
    o.mounts
        .push(options::parse_tmpfs("/tmp").unwrap().into_request());
    o.mounts.push(
        options::parse_tmpfs("/run:rw,exec,size=16m")
            .unwrap()
            .into_request(),
    );
    o.args = strings(&["touch", "/tmp/x"]);
    o.validate().unwrap();
    check("read_only_tmpfs", &resolve(&o, root(), None));
}

#[test]
fn golden_limits() {
    // coracle run -m 512m --memory-swap 1g --cpus 1.5 --cpu-shares 512 --cpuset-cpus 0-1
    //   --pids-limit 100 --ulimit nofile=1024:2048 --ulimit nproc=64 --shm-size 128m
    //   --device /dev/net/tun --sysctl net.core.somaxconn=1024 --init --network none alpine
    let mut o = ContainerSpec::new();
    o.network = options::NetworkMode::None;
    o.resources.memory = Some(options::parse_memory("512m").unwrap());
    o.resources.memory_swap = Some(options::parse_memory_swap("1g").unwrap());
    o.resources.cpus = options::parse_cpus("1.5").unwrap();
    o.resources.cpu_shares = Some(options::parse_cpu_shares("512").unwrap());
    o.resources.cpuset_cpus = Some(options::parse_cpuset("0-1").unwrap());
    o.resources.pids_limit = options::parse_pids_limit("100").unwrap();
    o.ulimits
        .push(options::parse_ulimit("nofile=1024:2048").unwrap());
    o.ulimits.push(options::parse_ulimit("nproc=64").unwrap());
    o.shm_size = Some(options::parse_shm_size("128m").unwrap());
    o.devices
        .push(options::parse_device("/dev/net/tun").unwrap());
    let (k, v) =
        options::parse_sysctl("net.core.somaxconn=1024", SysctlContext::default()).unwrap();
    o.sysctls.insert(k, v);
    o.init = true;
    o.validate().unwrap();
    check("limits", &resolve(&o, root(), None));
}

#[test]
fn golden_cap_drop_all_add_net_admin() {
    // coracle run --cap-drop ALL --cap-add net_admin --network none alpine ip link
    let mut o = ContainerSpec::new();
    o.network = options::NetworkMode::None;
    o.cap_drop
        .push(options::parse_capability("--cap-drop", "ALL").unwrap());
    o.cap_add
        .push(options::parse_capability("--cap-add", "net_admin").unwrap());
    o.args = strings(&["ip", "link"]);
    check("cap_drop_all_add_net_admin", &resolve(&o, root(), None));
}

#[test]
fn golden_user_with_groups() {
    // coracle run -u 1000:1000 --group-add 10 -it -w /app -e A=1 --security-opt
    //   no-new-privileges -v ./site:/app/site:ro -v data:/data -v /srv:/mnt/srv:rshared
    //   --pid host --ipc host --uts host --network none alpine
    let mut o = ContainerSpec::new();
    o.network = options::NetworkMode::None;
    o.user = Some(options::parse_user("1000:1000").unwrap());
    o.group_add.push(options::parse_group_add("10").unwrap());
    o.tty = true;
    o.interactive = true;
    o.workdir = Some("/app".into());
    o.env
        .push(options::parse_env("A=1", &|_| None).unwrap().unwrap());
    options::parse_security_opt("no-new-privileges", &mut o.security).unwrap();
    o.mounts
        .push(options::parse_volume("./site:/app/site:ro").unwrap());
    o.mounts.push(options::parse_volume("data:/data").unwrap());
    o.mounts
        .push(options::parse_volume("/srv:/mnt/srv:rshared").unwrap());
    o.pid = NamespaceMode::Host;
    o.ipc = NamespaceMode::Host;
    o.uts = NamespaceMode::Host;
    o.validate().unwrap();
    let user = ProcessUser {
        uid: 1000,
        gid: 1000,
        additional_gids: vec![1000, 10],
    };
    check("user_with_groups", &resolve(&o, user, Some("/home/app")));
}

#[test]
fn ulimit_above_host_hard_limit_is_refused() {
    let mut o = ContainerSpec::new();
    o.ulimits
        .push(options::parse_ulimit("nofile=1024:1048576").unwrap());
    let e = build_spec(&resolve(&o, root(), None)).unwrap_err();
    assert_eq!(e.kind(), coracle_core::ErrorKind::InvalidArgument);
    assert!(
        e.to_string()
            .contains("above this process's hard limit 524288"),
        "{e}"
    );
}

#[test]
fn bad_inputs_are_clear_errors() {
    let o = ContainerSpec::new();
    let good = resolve(&o, root(), None);

    let mut i = good.clone();
    i.cwd = "app".into();
    assert_eq!(
        build_spec(&i).unwrap_err().to_string(),
        "the working directory 'app' is invalid, it needs to be an absolute path"
    );

    let mut i = good.clone();
    i.args.clear();
    assert_eq!(
        build_spec(&i).unwrap_err().to_string(),
        "No command specified"
    );

    let mut i = good.clone();
    i.capabilities.push("CAP_BOGUS".into());
    assert!(build_spec(&i)
        .unwrap_err()
        .to_string()
        .contains("CAP_BOGUS"));

    let mut i = good.clone();
    i.mounts.push(ResolvedMount::Tmpfs {
        target: "tmp".into(),
        options: vec![],
    });
    assert!(build_spec(&i).unwrap_err().to_string().contains("\"tmp\""));

    let mut i = good.clone();
    i.seccomp = SeccompChoice::Profile("{not json".into());
    let e = build_spec(&i).unwrap_err();
    assert_eq!(e.kind(), coracle_core::ErrorKind::InvalidArgument);
    // privileged ignores the profile, as docker
    i.privileged = true;
    assert!(build_spec(&i)
        .unwrap()
        .linux()
        .as_ref()
        .unwrap()
        .seccomp()
        .is_none());

    // a user mount over /dev/shm replaces the default one
    let mut i = good;
    i.mounts.push(ResolvedMount::Tmpfs {
        target: "/dev/shm".into(),
        options: vec!["size=1m".into()],
    });
    let spec = build_spec(&i).unwrap();
    let shm: Vec<_> = spec
        .mounts()
        .as_ref()
        .unwrap()
        .iter()
        .filter(|m| m.destination() == std::path::Path::new("/dev/shm"))
        .collect();
    assert_eq!(shm.len(), 1);
    assert_eq!(
        shm[0].options().as_ref().unwrap(),
        &vec!["size=1m".to_string()]
    );
}
