//! The pure half of creating a container: what the flags ask for, merged with the
//! image's defaults and checked against the facts of the host it will run on, the way
//! dockerd resolves a container at create. Everything that needs the container's root
//! filesystem (its /etc/passwd, mount points, volumes) is left to the engine.
//!
//! The CLI, compose and the API server all produce [`ContainerSpec`]; the engine reads the
//! image config and the host into [`ImageDefaults`] and [`HostFacts`], calls
//! [`resolve`], and builds the OCI spec, docker's `Config` view and the monitor's
//! config from the one [`ResolvedContainer`].

use std::collections::HashMap;

use crate::{
    defaults, merge_health, parse_signal, parse_user, resolve_command, ContainerSpec, HealthConfig,
    IdRef, MountRequest, NamespaceMode, NetworkMode, OptionsError, UserSpec,
};

/// What the image's config contributes (its `config` object, already parsed).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageDefaults {
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub env: Vec<String>,
    /// `USER`, as written (`name`, `uid:gid`...).
    pub user: Option<String>,
    pub working_dir: Option<String>,
    /// `VOLUME` paths, as written.
    pub volumes: Vec<String>,
    /// `STOPSIGNAL`, as written (`SIGQUIT`, `3`).
    pub stop_signal: Option<String>,
    pub healthcheck: Option<HealthConfig>,
}

/// What the host allows: read once by the engine, passed in so resolving stays pure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostFacts {
    /// The host's name: a container sharing the host's network or UTS namespace keeps it.
    pub nodename: String,
    /// This process's bounding set (bit N = capability N): nothing outside it can be
    /// granted.
    pub bounding_capabilities: u64,
    /// This process's effective set.
    pub effective_capabilities: u64,
    /// The highest capability number the kernel knows.
    pub last_cap: u8,
    /// This process's OOM score adjustment: lowering a container's below it needs
    /// CAP_SYS_RESOURCE.
    pub oom_score_adj: i32,
    /// This process's hard rlimits by `RLIMIT_*` name.
    pub hard_limits: HashMap<String, u64>,
}

/// A container as it will be created: every default applied, every cross-check made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedContainer {
    /// Entrypoint and command joined (docker's `Path` and `Args`).
    pub args: Vec<String>,
    /// Absolute.
    pub cwd: String,
    /// `--user`, else the image's `USER`; looked up in the container's /etc/passwd by
    /// the engine.
    pub user: Option<UserSpec>,
    pub hostname: String,
    /// The capabilities the process gets, all held by this process.
    pub capabilities: Vec<String>,
    pub oom_score_adj: Option<i32>,
    /// The container's own mounts, then the `--volumes-from` ones, then an anonymous
    /// volume for each image `VOLUME` nothing else mounts at.
    pub mounts: Vec<MountRequest>,
    /// The image's HEALTHCHECK merged with `--health-*`; None: no check.
    pub health: Option<HealthConfig>,
    /// `--stop-signal`, the image's STOPSIGNAL, else SIGTERM.
    pub stop_signal: i32,
    /// `--stop-timeout`, else docker's 10 seconds.
    pub stop_timeout: i64,
    /// `--group-add` as given (names resolved in the container's /etc/group).
    pub group_add: Vec<String>,
    pub cgroups_path: String,
}

/// docker's default `--stop-timeout`.
pub const DEFAULT_STOP_TIMEOUT: i64 = 10;

/// Resolves `spec` for the container `id` against its image and the host.
/// `shared_mounts` are the `--volumes-from` mounts, already looked up.
pub fn resolve(
    spec: &ContainerSpec,
    id: &str,
    image: &ImageDefaults,
    shared_mounts: &[MountRequest],
    host: &HostFacts,
) -> Result<ResolvedContainer, OptionsError> {
    let args = resolve_command(
        image.entrypoint.as_deref(),
        image.cmd.as_deref(),
        spec.entrypoint.as_deref(),
        &spec.args,
    )?;
    let own: Vec<MountRequest> = spec.mounts.iter().chain(shared_mounts).cloned().collect();
    Ok(ResolvedContainer {
        args,
        cwd: working_dir(spec, image)?,
        user: user(spec, image)?,
        hostname: hostname(spec, id, &host.nodename),
        capabilities: held_capabilities(spec, host)?,
        oom_score_adj: check_oom_score_adj(spec.oom_score_adj, host)?,
        mounts: with_image_volumes(&own, &image.volumes),
        health: merge_health(image.healthcheck.as_ref(), &spec.health)?,
        stop_signal: stop_signal(spec, image)?,
        stop_timeout: spec.stop_timeout.unwrap_or(DEFAULT_STOP_TIMEOUT),
        group_add: spec
            .group_add
            .iter()
            .map(|g| match g {
                IdRef::Id(n) => n.to_string(),
                IdRef::Name(n) => n.clone(),
            })
            .collect(),
        cgroups_path: spec.cgroups_path(id),
    })
}

/// `-h`, else the host's name with the host's network or UTS namespace (docker keeps
/// it there), else the short id.
pub fn hostname(spec: &ContainerSpec, id: &str, nodename: &str) -> String {
    let shares_host_name = spec.network == NetworkMode::Host || spec.uts == NamespaceMode::Host;
    match &spec.hostname {
        Some(h) => h.clone(),
        None if shares_host_name => nodename.to_string(),
        None => id[..12.min(id.len())].to_string(),
    }
}

fn working_dir(spec: &ContainerSpec, image: &ImageDefaults) -> Result<String, OptionsError> {
    let cwd = spec
        .workdir
        .clone()
        .or_else(|| image.working_dir.clone().filter(|w| !w.is_empty()))
        .unwrap_or_else(|| "/".into());
    if !cwd.starts_with('/') {
        return Err(OptionsError::Invalid(format!(
            "the working directory '{cwd}' is invalid, it needs to be an absolute path"
        )));
    }
    Ok(cwd)
}

fn user(spec: &ContainerSpec, image: &ImageDefaults) -> Result<Option<UserSpec>, OptionsError> {
    if spec.user.is_some() {
        return Ok(spec.user.clone());
    }
    image
        .user
        .as_deref()
        .filter(|u| !u.is_empty())
        .map(parse_user)
        .transpose()
}

fn stop_signal(spec: &ContainerSpec, image: &ImageDefaults) -> Result<i32, OptionsError> {
    match (spec.stop_signal, &image.stop_signal) {
        (Some(s), _) => Ok(s),
        (None, Some(s)) if !s.is_empty() => parse_signal(s),
        _ => Ok(libc::SIGTERM),
    }
}

/// The container's capabilities, limited to those this process may pass on: a
/// capability outside our bounding set cannot be granted (here root lacks
/// CAP_SYS_RESOURCE). `ALL`/`--privileged` quietly mean "all we have"; naming a missing
/// one explicitly is an error.
fn held_capabilities(spec: &ContainerSpec, host: &HostFacts) -> Result<Vec<String>, OptionsError> {
    let held = |name: &str| {
        defaults::ALL_CAPABILITIES
            .iter()
            .position(|c| *c == name)
            .is_none_or(|bit| host.bounding_capabilities & (1u64 << bit) != 0)
    };
    if let Some(missing) = spec.cap_add.iter().find(|c| *c != "ALL" && !held(c)) {
        return Err(OptionsError::Invalid(format!(
            "--cap-add {missing}: coracle does not hold this capability itself, so it cannot grant it"
        )));
    }
    Ok(spec
        .capabilities(host.last_cap)
        .into_iter()
        .filter(|c| held(c))
        .collect())
}

/// The kernel refuses to lower a process's OOM score below its own without
/// CAP_SYS_RESOURCE; say so before the runtime fails with a bare I/O error.
fn check_oom_score_adj(adj: Option<i32>, host: &HostFacts) -> Result<Option<i32>, OptionsError> {
    let Some(v) = adj else { return Ok(None) };
    let own = host.oom_score_adj;
    const CAP_SYS_RESOURCE: u32 = 24;
    if v < own && host.effective_capabilities & (1u64 << CAP_SYS_RESOURCE) == 0 {
        return Err(OptionsError::Invalid(format!(
            "--oom-score-adj {v}: lowering the OOM score below coracle's own ({own}) needs \
             CAP_SYS_RESOURCE, which coracle does not hold; use a value of at least {own}"
        )));
    }
    Ok(adj)
}

/// The requested mounts, then an anonymous volume for each image `VOLUME` no request
/// mounts at (docker's rule: an exact destination match, after cleaning the path),
/// filled from the image unless empty there.
fn with_image_volumes(requests: &[MountRequest], image_volumes: &[String]) -> Vec<MountRequest> {
    let mut out = requests.to_vec();
    for path in image_volumes {
        let path = clean_volume_path(path);
        if path == "/" || out.iter().any(|m| clean_volume_path(m.target()) == path) {
            continue;
        }
        out.push(MountRequest::Anonymous {
            target: path,
            read_only: false,
            no_copy: false,
        });
    }
    out
}

/// An absolute path without `.`, empty components or a trailing slash (`..` stays
/// inside `/`), as Go's `filepath.Clean` makes a volume path.
fn clean_volume_path(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0123456789abcdef";

    fn host() -> HostFacts {
        HostFacts {
            nodename: "thehost".into(),
            bounding_capabilities: u64::MAX,
            effective_capabilities: u64::MAX,
            last_cap: 40,
            oom_score_adj: 0,
            hard_limits: HashMap::new(),
        }
    }

    fn image() -> ImageDefaults {
        ImageDefaults {
            cmd: Some(vec!["/bin/sh".into()]),
            volumes: vec!["/data/".into(), "/".into()],
            ..Default::default()
        }
    }

    #[test]
    fn defaults_follow_docker() {
        let r = resolve(&ContainerSpec::new(), ID, &image(), &[], &host()).unwrap();
        assert_eq!(r.args, ["/bin/sh"]);
        assert_eq!(r.cwd, "/");
        assert_eq!(r.hostname, "0123456789ab");
        assert_eq!(r.stop_signal, libc::SIGTERM);
        assert_eq!(r.stop_timeout, 10);
        assert_eq!(r.capabilities.len(), defaults::DEFAULT_CAPABILITIES.len());
        // An image VOLUME becomes an anonymous volume at its clean path; `/` never.
        assert_eq!(
            r.mounts,
            [MountRequest::Anonymous {
                target: "/data".into(),
                read_only: false,
                no_copy: false
            }]
        );
    }

    #[test]
    fn the_image_fills_what_the_flags_leave() {
        let img = ImageDefaults {
            user: Some("nobody".into()),
            working_dir: Some("/srv".into()),
            stop_signal: Some("SIGQUIT".into()),
            ..image()
        };
        let r = resolve(&ContainerSpec::new(), ID, &img, &[], &host()).unwrap();
        assert_eq!(r.cwd, "/srv");
        assert_eq!(r.user, Some(parse_user("nobody").unwrap()));
        assert_eq!(r.stop_signal, libc::SIGQUIT);
        let mut o = ContainerSpec::new();
        o.workdir = Some("relative".into());
        let e = resolve(&o, ID, &img, &[], &host()).unwrap_err();
        assert!(
            e.to_string().contains("needs to be an absolute path"),
            "{e}"
        );
    }

    #[test]
    fn host_namespaces_keep_the_host_name() {
        let mut o = ContainerSpec::new();
        o.uts = NamespaceMode::Host;
        assert_eq!(hostname(&o, ID, "thehost"), "thehost");
        o.hostname = Some("given".into());
        assert_eq!(hostname(&o, ID, "thehost"), "given");
    }

    #[test]
    fn capabilities_are_limited_to_those_held() {
        let mut h = host();
        let sys_resource = 24;
        h.bounding_capabilities &= !(1u64 << sys_resource);
        let mut o = ContainerSpec::new();
        o.privileged = true;
        let r = resolve(&o, ID, &image(), &[], &h).unwrap();
        assert!(!r.capabilities.iter().any(|c| c == "CAP_SYS_RESOURCE"));
        o.cap_add = vec!["CAP_SYS_RESOURCE".into()];
        let e = resolve(&o, ID, &image(), &[], &h).unwrap_err();
        assert!(
            e.to_string().starts_with("--cap-add CAP_SYS_RESOURCE"),
            "{e}"
        );
    }

    #[test]
    fn oom_score_below_our_own_needs_cap_sys_resource() {
        let mut h = host();
        h.oom_score_adj = 100;
        h.effective_capabilities = 0;
        let mut o = ContainerSpec::new();
        o.oom_score_adj = Some(50);
        assert!(resolve(&o, ID, &image(), &[], &h).is_err());
        o.oom_score_adj = Some(100);
        assert_eq!(
            resolve(&o, ID, &image(), &[], &h).unwrap().oom_score_adj,
            Some(100)
        );
    }

    #[test]
    fn explicit_mounts_replace_image_volumes() {
        let mut o = ContainerSpec::new();
        o.mounts = vec![crate::parse_volume("/host:/data/.").unwrap()];
        let r = resolve(&o, ID, &image(), &[], &host()).unwrap();
        assert_eq!(r.mounts.len(), 1);
        assert!(matches!(r.mounts[0], MountRequest::Bind { .. }));
    }
}
