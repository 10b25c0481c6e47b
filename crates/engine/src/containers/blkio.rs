//! `--blkio-weight-device` and `--device-{read,write}-{bps,iops}`: the host's block
//! device nodes named by path become major:minor for the spec, as docker's daemon
//! (`getBlkioThrottleDevices`) stats them; anything but a block device is refused.

use crate::EngineError;
use coracle_model::{BlkioDevice, Resources};
use coracle_model::{ContainerSpec, ThrottleDevice};
use std::os::unix::fs::{FileTypeExt, MetadataExt};

/// Fills the block I/O device lists of `res` from `opts`.
pub fn resolve(opts: &ContainerSpec, res: &mut Resources) -> Result<(), EngineError> {
    let r = &opts.resources;
    res.blkio_weight_device = r
        .blkio_weight_device
        .iter()
        .map(|w| device("--blkio-weight-device", &w.path, u64::from(w.weight)))
        .collect::<Result<_, _>>()?;
    let t = &r.blkio_throttles;
    let list = |flag: &'static str, l: &[ThrottleDevice]| {
        l.iter()
            .map(|d| device(flag, &d.path, d.rate))
            .collect::<Result<Vec<_>, _>>()
    };
    res.blkio_read_bps = list("--device-read-bps", &t.read_bps)?;
    res.blkio_write_bps = list("--device-write-bps", &t.write_bps)?;
    res.blkio_read_iops = list("--device-read-iops", &t.read_iops)?;
    res.blkio_write_iops = list("--device-write-iops", &t.write_iops)?;
    Ok(())
}

fn device(flag: &str, path: &str, value: u64) -> Result<BlkioDevice, EngineError> {
    // stat, not lstat: /dev/disk/by-id/... names are symlinks to the node.
    let meta = std::fs::metadata(path)
        .map_err(|e| EngineError::InvalidArgument(format!("{flag} {path}: stat {path}: {e}")))?;
    if !meta.file_type().is_block_device() {
        return Err(EngineError::InvalidArgument(format!(
            "{flag} {path}: not a block device (name a disk such as /dev/sda; see lsblk)"
        )));
    }
    let rdev = meta.rdev();
    Ok(BlkioDevice {
        major: nix::sys::stat::major(rdev) as i64,
        minor: nix::sys::stat::minor(rdev) as i64,
        value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_block_devices_are_taken() {
        let e = device("--device-read-bps", "/dev/null", 1).unwrap_err();
        assert!(e.to_string().contains("not a block device"), "{e}");
        let e = device("--device-read-bps", "/dev/no-such-disk", 1).unwrap_err();
        assert!(e.to_string().contains("stat /dev/no-such-disk"), "{e}");
        let e = device("--device-read-bps", "/", 1).unwrap_err();
        assert!(e.to_string().contains("not a block device"), "{e}");
    }
}
