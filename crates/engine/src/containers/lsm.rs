//! AppArmor and SELinux confinement of a new container, as dockerd applies it, on hosts
//! that have the module enabled (elsewhere the options are checked and have no effect,
//! as docker's).

use crate::EngineError;
use coracle_model::{MountRequest, Relabel, SecurityOptions};
use coracle_runtime::lsm::{apparmor, selinux, HostLsm};
use oci_spec::runtime::Spec;
use std::collections::HashSet;
use std::io::Read;
use std::path::Path;

/// What decides a container's confinement besides its `--security-opt`s.
pub(crate) struct Confinement<'a> {
    pub security: &'a SecurityOptions,
    pub privileged: bool,
    /// `--pid host` or `--ipc host`: docker disables SELinux labels for these.
    pub shares_host_pid_or_ipc: bool,
    /// The bundle is for the built-in runtime.
    pub builtin_runtime: bool,
    /// The store's containers directory, whose bundles hold the MCS levels in use.
    pub containers_dir: &'a Path,
    /// The mounts asked for: `-v SRC:DST:z|Z` binds are relabelled.
    pub mounts: &'a [MountRequest],
}

/// Sets `process.apparmorProfile`, `process.selinuxLabel` and `linux.mountLabel`.
pub(crate) fn confine(spec: &mut Spec, host: HostLsm, c: &Confinement) -> Result<(), EngineError> {
    if host.apparmor {
        let profile = apparmor::container_profile(c.security.apparmor.as_deref(), c.privileged);
        if profile == apparmor::DEFAULT_PROFILE {
            apparmor::ensure_default_loaded()?;
        }
        if let Some(p) = spec.process_mut().as_mut() {
            p.set_apparmor_profile(Some(profile));
        }
    }
    if host.selinux && !c.privileged && !c.shares_host_pid_or_ipc {
        let level = fresh_mcs_level(c.containers_dir)?;
        let contexts = selinux::default_contexts(Path::new("/"));
        if let Some(labels) = selinux::container_labels(&contexts, &level, &c.security.labels)? {
            if c.builtin_runtime {
                return Err(EngineError::InvalidArgument(BUILTIN_NO_SELINUX.into()));
            }
            if let Some(p) = spec.process_mut().as_mut() {
                p.set_selinux_label(Some(labels.process));
            }
            relabel_binds(c.mounts, &labels.mount)?;
            if let Some(l) = spec.linux_mut().as_mut() {
                l.set_mount_label(Some(labels.mount));
            }
        }
    }
    Ok(())
}

/// docker relabels a `:z`/`:Z` bind's source before the container starts, so that the
/// confined process may use it.
fn relabel_binds(mounts: &[MountRequest], mount_label: &str) -> Result<(), EngineError> {
    for m in mounts {
        if let MountRequest::Bind {
            source,
            relabel: Some(r),
            ..
        } = m
        {
            let label = selinux::relabel_target(source, mount_label, *r == Relabel::Shared)?;
            selinux::relabel(source, &label)?;
        }
    }
    Ok(())
}

/// youki's libcontainer 0.7.0 passes the mount label to its mounts but never sets the
/// process label: a container would run with the caller's context.
const BUILTIN_NO_SELINUX: &str = "SELinux is enabled on this host and the built-in runtime \
(youki's libcontainer 0.7.0) cannot apply a container's SELinux process label: \
run it with --runtime crun (or runc), or with --security-opt label=disable to run it \
without SELinux separation";

/// An MCS level no container of the store uses (docker keeps them unique per daemon).
fn fresh_mcs_level(containers_dir: &Path) -> Result<String, EngineError> {
    let used = used_mcs_levels(containers_dir);
    let mut urandom =
        std::fs::File::open("/dev/urandom").map_err(EngineError::io("open", "/dev/urandom"))?;
    for _ in 0..1000 {
        let mut b = [0u8; 4];
        urandom
            .read_exact(&mut b)
            .map_err(EngineError::io("read", "/dev/urandom"))?;
        if let Some(level) = selinux::mcs_level(b, &used) {
            return Ok(level);
        }
    }
    Err(EngineError::Conflict(
        "no free SELinux MCS level for a new container: remove unused containers".into(),
    ))
}

/// What `inspect` shows of a container's confinement (empty where none was applied).
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct StoredConfinement {
    pub apparmor_profile: String,
    pub process_label: String,
    pub mount_label: String,
}

impl StoredConfinement {
    /// From the container's bundle `config.json`.
    pub(crate) fn read(config: &Path) -> StoredConfinement {
        let Ok(spec) = Spec::load(config) else {
            return StoredConfinement::default();
        };
        let process = spec.process().as_ref();
        StoredConfinement {
            apparmor_profile: process
                .and_then(|p| p.apparmor_profile().clone())
                .unwrap_or_default(),
            process_label: process
                .and_then(|p| p.selinux_label().clone())
                .unwrap_or_default(),
            mount_label: spec
                .linux()
                .as_ref()
                .and_then(|l| l.mount_label().clone())
                .unwrap_or_default(),
        }
    }
}

fn used_mcs_levels(containers_dir: &Path) -> HashSet<String> {
    let mut used = HashSet::new();
    let Ok(entries) = std::fs::read_dir(containers_dir) else {
        return used;
    };
    for e in entries.flatten() {
        let Ok(spec) = Spec::load(e.path().join("config.json")) else {
            continue;
        };
        let label = spec
            .process()
            .as_ref()
            .and_then(|p| p.selinux_label().clone());
        if let Some(level) = label.as_deref().and_then(selinux::level_of) {
            used.insert(level.to_string());
        }
    }
    used
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> Spec {
        Spec::default()
    }

    fn confinement<'a>(s: &'a SecurityOptions, dir: &'a Path) -> Confinement<'a> {
        Confinement {
            security: s,
            privileged: false,
            shares_host_pid_or_ipc: false,
            builtin_runtime: true,
            containers_dir: dir,
            mounts: &[],
        }
    }

    #[test]
    fn nothing_changes_without_an_lsm() {
        let dir = tempfile::tempdir().unwrap();
        let s = SecurityOptions {
            apparmor: Some("mine".into()),
            labels: vec!["type:spc_t".into()],
            ..Default::default()
        };
        let mut sp = spec();
        confine(&mut sp, HostLsm::default(), &confinement(&s, dir.path())).unwrap();
        assert_eq!(sp, spec());
    }

    #[test]
    fn apparmor_profile_is_set() {
        // A named profile needs no loading, so this runs without AppArmor.
        let dir = tempfile::tempdir().unwrap();
        let s = SecurityOptions {
            apparmor: Some("mine".into()),
            ..Default::default()
        };
        let host = HostLsm {
            apparmor: true,
            selinux: false,
        };
        let mut sp = spec();
        confine(&mut sp, host, &confinement(&s, dir.path())).unwrap();
        assert_eq!(
            sp.process().as_ref().unwrap().apparmor_profile().as_deref(),
            Some("mine")
        );
        let s = SecurityOptions::default();
        let mut c = confinement(&s, dir.path());
        c.privileged = true;
        let mut sp = spec();
        confine(&mut sp, host, &c).unwrap();
        assert_eq!(
            sp.process().as_ref().unwrap().apparmor_profile().as_deref(),
            Some("unconfined")
        );
    }

    #[test]
    fn selinux_labels_or_refusal() {
        let dir = tempfile::tempdir().unwrap();
        let host = HostLsm {
            apparmor: false,
            selinux: true,
        };
        let s = SecurityOptions::default();
        let mut c = confinement(&s, dir.path());
        let err = confine(&mut spec(), host, &c).unwrap_err().to_string();
        assert!(err.contains("--runtime crun"), "{err}");
        c.builtin_runtime = false;
        let mut sp = spec();
        confine(&mut sp, host, &c).unwrap();
        let label = sp
            .process()
            .as_ref()
            .unwrap()
            .selinux_label()
            .clone()
            .unwrap();
        assert!(
            label.starts_with("system_u:system_r:container_t:s0:c"),
            "{label}"
        );
        let mount = sp.linux().as_ref().unwrap().mount_label().clone().unwrap();
        assert_eq!(selinux::level_of(&mount), selinux::level_of(&label));
        // the level is taken: a stored bundle holding it is seen
        std::fs::create_dir(dir.path().join("c1")).unwrap();
        sp.save(dir.path().join("c1/config.json")).unwrap();
        let used = used_mcs_levels(dir.path());
        assert!(used.contains(selinux::level_of(&label).unwrap()));
        let stored = StoredConfinement::read(&dir.path().join("c1/config.json"));
        assert_eq!(
            (stored.process_label, stored.mount_label),
            (label.clone(), mount)
        );
        assert_eq!(
            StoredConfinement::read(&dir.path().join("none.json")),
            StoredConfinement::default()
        );
        // label=disable, --privileged: no labels, and the built-in runtime is fine
        let s = SecurityOptions {
            labels: vec!["disable".into()],
            ..Default::default()
        };
        let mut c = confinement(&s, dir.path());
        let mut sp = spec();
        confine(&mut sp, host, &c).unwrap();
        assert_eq!(sp.process().as_ref().unwrap().selinux_label(), &None);
        let s = SecurityOptions::default();
        c.security = &s;
        c.privileged = true;
        confine(&mut sp, host, &c).unwrap();
        assert_eq!(sp.process().as_ref().unwrap().selinux_label(), &None);
    }

    #[test]
    fn z_binds_are_relabelled_with_the_labels() {
        let dir = tempfile::tempdir().unwrap();
        let host = HostLsm {
            apparmor: false,
            selinux: true,
        };
        let bind = |source: &Path, relabel| MountRequest::Bind {
            source: source.to_path_buf(),
            target: "/data".into(),
            read_only: false,
            propagation: None,
            create_source: true,
            recursive: true,
            relabel,
        };
        let s = SecurityOptions::default();
        let mut c = confinement(&s, dir.path());
        c.builtin_runtime = false;
        // The system's directories are refused, as go-selinux refuses them.
        let usr = [bind(Path::new("/usr"), Some(Relabel::Shared))];
        c.mounts = &usr;
        let err = confine(&mut spec(), host, &c).unwrap_err().to_string();
        assert_eq!(err, "SELinux relabeling of /usr is not allowed");
        // Elsewhere the label is written on the tree. Without SELinux, root may still
        // set the attribute (it is then plain data); others get EPERM.
        let src = dir.path().join("src");
        std::fs::create_dir_all(src.join("sub")).unwrap();
        std::fs::write(src.join("sub/file"), "x").unwrap();
        let data = [bind(&src, Some(Relabel::Private))];
        c.mounts = &data;
        let mut sp = spec();
        match confine(&mut sp, host, &c) {
            Ok(()) => {
                let mount = sp.linux().as_ref().unwrap().mount_label().clone().unwrap();
                for p in [src.clone(), src.join("sub/file")] {
                    let mut buf = vec![0u8; 256];
                    let n = rustix::fs::getxattr(&p, "security.selinux", &mut buf[..]).unwrap();
                    assert_eq!(std::str::from_utf8(&buf[..n]).unwrap(), mount, "{p:?}");
                }
            }
            Err(e) => assert!(
                e.to_string()
                    .starts_with(&format!("relabel {}", src.display())),
                "{e}"
            ),
        }
        // Without z/Z, or with labels disabled, nothing is touched.
        let plain = [bind(&src, None)];
        c.mounts = &plain;
        confine(&mut spec(), host, &c).unwrap();
        let disabled = SecurityOptions {
            labels: vec!["disable".into()],
            ..Default::default()
        };
        c.security = &disabled;
        c.mounts = &data;
        confine(&mut spec(), host, &c).unwrap();
    }
}
