//! `--device` and `--privileged`: host device nodes described for the spec (type,
//! numbers, mode and owner read from the host node).

use crate::EngineError;
use coracle_runtime::options::DeviceMapping;
use coracle_runtime::spec::Device;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

pub fn resolve(mappings: &[DeviceMapping], privileged: bool) -> Result<Vec<Device>, EngineError> {
    let mut out = Vec::new();
    if privileged {
        collect_host_devices(Path::new("/dev"), &mut out);
    }
    for m in mappings {
        let host = Path::new(&m.host_path);
        let meta = std::fs::metadata(host).map_err(|e| {
            EngineError::InvalidArgument(format!(
                "error gathering device information while adding custom device {:?}: {e}",
                m.host_path
            ))
        })?;
        if meta.is_dir() {
            // docker adds every device node under a directory.
            let mut found = Vec::new();
            collect_host_devices(host, &mut found);
            for mut d in found {
                d.path = d.path.replacen(&m.host_path, &m.container_path, 1);
                d.permissions = m.permissions.clone();
                out.push(d);
            }
            continue;
        }
        let mut d = describe(host, &meta).ok_or_else(|| {
            EngineError::InvalidArgument(format!("{} is not a device node", m.host_path))
        })?;
        d.path = m.container_path.clone();
        d.permissions = m.permissions.clone();
        out.push(d);
    }
    Ok(out)
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
