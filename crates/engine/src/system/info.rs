//! `info`: what docker's `GET /info` reports, for what coracle has. Field names are
//! docker's (`system.Info`), so `--format '{{.CgroupVersion}}'` works as it does there.
//! New facts (e.g. the isolation tier) are added as fields of [`SystemInfo`].

use crate::containers::ps::ListOptions;
use crate::host::fs_magic;
use crate::{EngineError, System};
use coracle_runtime::lsm::HostLsm;
use coracle_state::ContainerState;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SystemInfo {
    pub containers: usize,
    pub containers_running: usize,
    pub containers_paused: usize,
    pub containers_stopped: usize,
    pub images: usize,
    /// `overlayfs`, or `vfs` where the kernel has no overlay (layers are copied).
    pub driver: String,
    /// `[["Backing Filesystem", "extfs"]]`, docker's pairs.
    pub driver_status: Vec<[String; 2]>,
    pub logging_driver: String,
    pub cgroup_driver: String,
    /// "1" or "2"; a hybrid host is "1", as docker reports it.
    pub cgroup_version: String,
    pub runtimes: BTreeMap<String, RuntimeInfo>,
    pub default_runtime: String,
    /// docker's `name=...` entries: seccomp always, apparmor and selinux where the host
    /// has them enabled, cgroupns (every container has a cgroup namespace).
    pub security_options: Vec<String>,
    pub kernel_version: String,
    pub operating_system: String,
    #[serde(rename = "OSType")]
    pub os_type: String,
    pub architecture: String,
    #[serde(rename = "NCPU")]
    pub ncpu: usize,
    pub mem_total: u64,
    pub name: String,
    pub docker_root_dir: String,
    pub server_version: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct RuntimeInfo {
    /// The binary; "built-in" for the runtime linked into coracle.
    pub path: String,
}

impl System<'_> {
    pub fn info(&mut self) -> Result<SystemInfo, EngineError> {
        let containers = self.containers().list_containers(&ListOptions {
            all: true,
            ..Default::default()
        })?;
        let count = |state| containers.iter().filter(|c| c.state == state).count();
        let (running, paused) = (
            count(ContainerState::Running),
            count(ContainerState::Paused),
        );
        let images = self.image_summaries()?.len();
        let root = self.paths.root.clone();
        let uts = rustix::system::uname();
        Ok(SystemInfo {
            containers: containers.len(),
            containers_running: running,
            containers_paused: paused,
            containers_stopped: containers.len() - running - paused,
            images,
            driver: if coracle_rootfs::snapshot::overlay_supported() {
                "overlayfs".into()
            } else {
                "vfs".into()
            },
            driver_status: vec![["Backing Filesystem".into(), backing_filesystem(&root)]],
            logging_driver: "json-file".into(),
            cgroup_driver: "cgroupfs".into(),
            cgroup_version: cgroup_version(Path::new("/sys/fs/cgroup")).into(),
            runtimes: runtimes(),
            default_runtime: coracle_runtime::runtime::BUILTIN.into(),
            security_options: security_options(HostLsm::detect(Path::new("/"))),
            kernel_version: uts.release().to_string_lossy().into_owned(),
            operating_system: operating_system(Path::new("/etc/os-release")),
            os_type: "linux".into(),
            architecture: uts.machine().to_string_lossy().into_owned(),
            ncpu: std::thread::available_parallelism().map_or(1, |n| n.get()),
            mem_total: mem_total(),
            name: uts.nodename().to_string_lossy().into_owned(),
            docker_root_dir: root.display().to_string(),
            server_version: env!("CARGO_PKG_VERSION").into(),
        })
    }
}

/// The built-in runtime and the OCI runtimes `--runtime` finds on PATH.
fn runtimes() -> BTreeMap<String, RuntimeInfo> {
    let mut out = BTreeMap::new();
    out.insert(
        coracle_runtime::runtime::BUILTIN.to_string(),
        RuntimeInfo {
            path: "built-in".into(),
        },
    );
    for name in ["crun", "runc"] {
        if let Ok(p) = coracle_runtime::runtime::OciCli::resolve(name) {
            out.insert(
                name.to_string(),
                RuntimeInfo {
                    path: p.display().to_string(),
                },
            );
        }
    }
    out
}

pub(crate) fn security_options(lsm: HostLsm) -> Vec<String> {
    let mut out = Vec::new();
    if lsm.apparmor {
        out.push("name=apparmor".to_string());
    }
    out.push("name=seccomp,profile=builtin".to_string());
    if lsm.selinux {
        out.push("name=selinux".to_string());
    }
    out.push("name=cgroupns".to_string());
    out
}

/// "2" when the cgroup mount point is the unified hierarchy, else "1" (v1 or hybrid).
pub(crate) fn cgroup_version(mount: &Path) -> &'static str {
    const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;
    match fs_magic(mount) {
        Some(CGROUP2_SUPER_MAGIC) => "2",
        _ => "1",
    }
}

/// docker's names for the store's filesystem (graphdriver `FsNames`).
fn backing_filesystem(root: &Path) -> String {
    let Some(magic) = fs_magic(root) else {
        return "<unknown>".into();
    };
    match magic {
        0xEF53 => "extfs",
        0x5846_5342 => "xfs",
        0x9123_683E => "btrfs",
        0x0102_1994 => "tmpfs",
        0x794C_7630 => "overlayfs",
        0x2FC1_2FC1 => "zfs",
        0x6969 => "nfs",
        0xF2F5_2010 => "f2fs",
        0xF15F => "ecryptfs",
        0x7371_7368 => "squashfs",
        _ => "<unknown>",
    }
    .into()
}

/// `PRETTY_NAME` of os-release, docker's "Operating System".
pub(crate) fn operating_system(os_release: &Path) -> String {
    let text = std::fs::read_to_string(os_release).unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim().trim_matches('"').to_string())
        .unwrap_or_else(|| "<unknown>".into())
}

fn mem_total() -> u64 {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn security_options_name_what_the_host_has() {
        assert_eq!(
            security_options(HostLsm::default()),
            ["name=seccomp,profile=builtin", "name=cgroupns"]
        );
        let both = HostLsm {
            apparmor: true,
            selinux: true,
        };
        assert_eq!(
            security_options(both),
            [
                "name=apparmor",
                "name=seccomp,profile=builtin",
                "name=selinux",
                "name=cgroupns"
            ]
        );
    }

    #[test]
    fn host_facts() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("os-release");
        std::fs::write(
            &f,
            "NAME=\"Debian\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n",
        )
        .unwrap();
        assert_eq!(operating_system(&f), "Debian GNU/Linux 12 (bookworm)");
        assert_eq!(operating_system(&dir.path().join("none")), "<unknown>");
        // a plain directory is not a cgroup2 mount
        assert_eq!(cgroup_version(dir.path()), "1");
        assert!(mem_total() > 0);
    }
}
