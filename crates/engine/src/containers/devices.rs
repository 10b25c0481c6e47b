//! `--device` and `--privileged`: host device nodes described for the spec (type,
//! numbers, mode and owner read from the host node). FIFOs, which docker also passes
//! for `--device`, are not device nodes here: a cgroup device rule cannot name them.

use crate::EngineError;
use coracle_model::DeviceMapping;
use coracle_runtime::spec::Device;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

pub fn resolve(mappings: &[DeviceMapping], privileged: bool) -> Result<Vec<Device>, EngineError> {
    let mut out = Vec::new();
    if privileged {
        collect_host_devices(Path::new("/dev"), &mut out);
    }
    for m in mappings {
        for mut d in from_path(Path::new(&m.host_path), &m.container_path)? {
            d.permissions = m.permissions.clone();
            out.push(d);
        }
    }
    Ok(out)
}

/// youki's libcontainer 0.7.0 creates device nodes only under /dev (runc and crun
/// anywhere): say so before it fails with "failed to prepare rootfs".
pub fn check_builtin_paths(devices: &[Device]) -> Result<(), EngineError> {
    match devices
        .iter()
        .find(|d| !Path::new(&d.path).starts_with("/dev"))
    {
        Some(d) => Err(EngineError::InvalidArgument(format!(
            "--device: the built-in runtime creates device nodes only under /dev, not at {}: \
             choose a container path under /dev, or run with --runtime crun (or runc)",
            d.path
        ))),
        None => Ok(()),
    }
}

/// docker's `DevicesFromPath`: a device node (a symlink to one is followed), or every
/// device node under a directory, recursively, at the same place under
/// `container_path`; an error when there is none.
pub fn from_path(host: &Path, container_path: &str) -> Result<Vec<Device>, EngineError> {
    let gathering = |reason: String| {
        EngineError::InvalidArgument(format!(
            "error gathering device information while adding custom device {:?}: {reason}",
            host.display().to_string()
        ))
    };
    let mut resolved = host.to_path_buf();
    if std::fs::symlink_metadata(host).is_ok_and(|m| m.file_type().is_symlink()) {
        if let Ok(target) = std::fs::canonicalize(host) {
            resolved = target;
        }
    }
    let meta = std::fs::symlink_metadata(&resolved)
        .map_err(|e| gathering(format!("lstat {}: {e}", resolved.display())))?;
    if let Some(mut d) = describe(&resolved, &meta) {
        d.path = container_path.to_string();
        return Ok(vec![d]);
    }
    let mut found = Vec::new();
    if meta.is_dir() {
        walk_devices(&resolved, &mut found);
    }
    if found.is_empty() {
        return Err(gathering("not a device node".into()));
    }
    for d in &mut found {
        let rel = Path::new(&d.path)
            .strip_prefix(&resolved)
            .unwrap_or(Path::new(""));
        d.path = Path::new(container_path).join(rel).display().to_string();
    }
    Ok(found)
}

/// Every device node under `dir` (symlinks not followed, nothing skipped: docker's
/// walk for `--device DIR`).
fn walk_devices(dir: &Path, out: &mut Vec<Device>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            walk_devices(&path, out);
        } else if let Some(d) = describe(&path, &meta) {
            out.push(d);
        }
    }
}

fn describe(path: &Path, meta: &std::fs::Metadata) -> Option<Device> {
    let ft = meta.file_type();
    let typ = if ft.is_char_device() {
        'c'
    } else if ft.is_block_device() {
        'b'
    } else {
        return None;
    };
    let rdev = meta.rdev();
    Some(Device {
        path: path.display().to_string(),
        typ,
        major: rustix::fs::major(rdev) as i64,
        minor: rustix::fs::minor(rdev) as i64,
        file_mode: Some(meta.mode() & 0o7777),
        uid: Some(meta.uid()),
        gid: Some(meta.gid()),
        permissions: "rwm".into(),
    })
}

/// Device nodes under `dir`, skipping the pty and console nodes the runtime makes
/// itself (as docker's GetDevices does).
fn collect_host_devices(dir: &Path, out: &mut Vec<Device>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        let name = e.file_name();
        let name = name.to_string_lossy();
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            if !matches!(
                name.as_ref(),
                "pts" | "shm" | "fd" | "mqueue" | ".lxc" | ".lxd-mounts" | ".udev"
            ) {
                collect_host_devices(&path, out);
            }
            continue;
        }
        if name == "console" || name == "ptmx" {
            continue;
        }
        if let Some(d) = describe(&path, &meta) {
            out.push(d);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_without_device_nodes_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/file"), "x").unwrap();
        let host = dir.path().display().to_string();
        let err = from_path(dir.path(), "/dev/x").unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "error gathering device information while adding custom device \"{host}\": not a device node"
            )
        );
        let file = dir.path().join("sub/file");
        let err = from_path(&file, "/dev/x").unwrap_err().to_string();
        assert!(err.ends_with(": not a device node"), "{err}");
        let err = from_path(&dir.path().join("missing"), "/dev/x")
            .unwrap_err()
            .to_string();
        assert!(err.contains("No such file or directory"), "{err}");
    }

    #[test]
    fn a_directory_of_devices_is_mirrored() {
        // /dev/null and friends are device nodes on every Linux host; a symlink to a
        // directory is followed at the top, as docker does.
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("dev");
        std::os::unix::fs::symlink("/dev", &link).unwrap();
        let devs = from_path(&link, "/hostdev").unwrap();
        let null = devs
            .iter()
            .find(|d| d.path == "/hostdev/null")
            .expect("null");
        assert_eq!((null.typ, null.major, null.minor), ('c', 1, 3));
        assert!(devs.iter().all(|d| d.path.starts_with("/hostdev/")));
        let single = from_path(Path::new("/dev/null"), "/dev/mynull").unwrap();
        assert_eq!(single.len(), 1);
        assert_eq!(single[0].path, "/dev/mynull");
        assert!(check_builtin_paths(&single).is_ok());
        let err = check_builtin_paths(&devs).unwrap_err().to_string();
        assert!(err.contains("only under /dev, not at /hostdev/"), "{err}");
    }
}
