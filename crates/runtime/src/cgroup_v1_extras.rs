//! Two cgroup v1 settings of the spec that libcontainer 0.7.0 leaves out, written by
//! the built-in runtime between its create (the cgroups exist, no user code has run)
//! and start, as [`crate::cgroup_devices`] does for v2's device rules:
//! - `linux.resources.memory.disableOOMKiller` (`--oom-kill-disable`): libcontainer
//!   hands libcgroups `disable_oom_killer: false` whatever the spec says, so
//!   `memory.oom_control` stayed 0;
//! - `linux.resources.blockIO.weightDevice` (`--blkio-weight-device`): libcgroups'
//!   v1 blkio controller writes the weight and the throttles, never the per-device
//!   weights (`blkio.weight_device`, or BFQ's `blkio.bfq.weight_device`).
//!
//! cgroup v2 needs neither: it has no OOM-killer switch (the CLI drops the flag there
//! with docker's warning) and libcgroups' v2 io controller writes the weights.

use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

use oci_spec::runtime::Spec;

#[derive(Debug, thiserror::Error)]
pub enum CgroupV1Error {
    #[error("cgroup path {0:?} of the container is not a plain absolute path")]
    CgroupPath(PathBuf),
    #[error("the host has no cgroup v1 {0} hierarchy for {1}")]
    NoHierarchy(&'static str, &'static str),
    #[error("write {value:?} to {path}: {source}")]
    Write {
        path: PathBuf,
        value: String,
        #[source]
        source: io::Error,
    },
}

/// Applies what the spec asks and libcontainer left out (see the module's doc).
pub fn apply(spec: &Spec) -> Result<(), CgroupV1Error> {
    let Some(linux) = spec.linux().as_ref() else {
        return Ok(());
    };
    let Some(resources) = linux.resources().as_ref() else {
        return Ok(());
    };
    let disable_oom = resources
        .memory()
        .as_ref()
        .and_then(|m| m.disable_oom_killer())
        .unwrap_or(false);
    let weights = resources
        .block_io()
        .as_ref()
        .and_then(|b| b.weight_device().clone())
        .unwrap_or_default();
    if !disable_oom && weights.is_empty() {
        return Ok(());
    }
    let cgroup = linux
        .cgroups_path()
        .as_ref()
        .ok_or_else(|| CgroupV1Error::CgroupPath(PathBuf::new()))?;
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    if disable_oom {
        let dir = controller_dir(&mountinfo, "memory", cgroup)
            .ok_or(CgroupV1Error::NoHierarchy("memory", "--oom-kill-disable"))?;
        write(&dir?.join("memory.oom_control"), "1")?;
    }
    if !weights.is_empty() {
        let dir = controller_dir(&mountinfo, "blkio", cgroup)
            .ok_or(CgroupV1Error::NoHierarchy("blkio", "--blkio-weight-device"))??;
        // CFQ's file where the kernel still has it, else BFQ's (runc's order).
        let file = ["blkio.weight_device", "blkio.bfq.weight_device"]
            .iter()
            .map(|f| dir.join(f))
            .find(|p| p.exists())
            .unwrap_or_else(|| dir.join("blkio.weight_device"));
        for w in &weights {
            if let Some(weight) = w.weight() {
                write(&file, &format!("{}:{} {weight}", w.major(), w.minor()))?;
            }
        }
    }
    Ok(())
}

fn write(path: &Path, value: &str) -> Result<(), CgroupV1Error> {
    fs::write(path, value).map_err(|source| CgroupV1Error::Write {
        path: path.to_path_buf(),
        value: value.to_string(),
        source,
    })
}

/// The container's directory in the v1 hierarchy holding `controller` (None without
/// one: a pure v2 host); the path must stay inside the hierarchy.
fn controller_dir(
    mountinfo: &str,
    controller: &str,
    cgroup: &Path,
) -> Option<Result<PathBuf, CgroupV1Error>> {
    let mut dir = v1_mount_point(mountinfo, controller)?;
    for c in cgroup.components() {
        match c {
            Component::RootDir => {}
            Component::Normal(n) => dir.push(n),
            _ => return Some(Err(CgroupV1Error::CgroupPath(cgroup.to_path_buf()))),
        }
    }
    Some(Ok(dir))
}

/// Where the v1 hierarchy with `controller` is mounted (co-mounted ones included:
/// `cpu,cpuacct`), from /proc/self/mountinfo.
fn v1_mount_point(mountinfo: &str, controller: &str) -> Option<PathBuf> {
    mountinfo.lines().find_map(|l| {
        let (left, right) = l.split_once(" - ")?;
        let mut fields = right.split_whitespace();
        if fields.next()? != "cgroup" {
            return None;
        }
        let options = fields.nth(1)?;
        let point = left.split_whitespace().nth(4)?;
        options
            .split(',')
            .any(|o| o == controller)
            .then(|| PathBuf::from(point))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: &str = "\
30 25 0:26 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw
33 30 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
34 30 0:30 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
35 30 0:31 / /sys/fs/cgroup/blkio rw - cgroup cgroup rw,blkio
";

    #[test]
    fn v1_hierarchies_are_found_by_controller() {
        assert_eq!(
            v1_mount_point(INFO, "memory").unwrap(),
            Path::new("/sys/fs/cgroup/memory")
        );
        assert_eq!(
            v1_mount_point(INFO, "cpuacct").unwrap(),
            Path::new("/sys/fs/cgroup/cpu,cpuacct")
        );
        assert!(v1_mount_point(INFO, "cpus").is_none());
        assert!(v1_mount_point(
            "31 30 0:27 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
            "memory"
        )
        .is_none());
        let dir = controller_dir(INFO, "blkio", Path::new("/ci/jobs/abc"))
            .unwrap()
            .unwrap();
        assert_eq!(dir, Path::new("/sys/fs/cgroup/blkio/ci/jobs/abc"));
        assert!(controller_dir(INFO, "blkio", Path::new("/ci/../../etc"))
            .unwrap()
            .is_err());
    }

    #[test]
    fn nothing_to_do_without_the_two_settings() {
        apply(&Spec::default()).unwrap();
    }
}
