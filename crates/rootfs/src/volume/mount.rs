//! Volumes with the local driver's mount options (`-o type=tmpfs -o device=tmpfs -o
//! o=size=100m`, `-o type=none -o o=bind -o device=/srv`, `type=nfs` ...): while a
//! container uses one, `mount -t TYPE -o O DEVICE` is mounted on its `_data`, and it is
//! unmounted when the last user is gone, as docker's local driver does.
//!
//! There is no daemon to hold docker's in-memory refcount, so the users are files:
//! `<volume>/users/<user>`, each flock-ed by the process that uses the volume (a
//! container's monitor, for its whole life) and released by the kernel when that
//! process dies. A marker whose lock can be taken is a dead user's and is dropped.
//! Every decision to mount or unmount is made holding the `users` directory's own
//! flock, so two containers starting and stopping at once agree on one mount, and a
//! crashed monitor never keeps a volume mounted past the next release of it.

use super::VolumeStore;
use crate::error::VolumeError;
use crate::snapshot::{is_mount_point, unmount_path};
use rustix::fs::{flock, FlockOperation};
use rustix::io::Errno;
use rustix::mount::{MountFlags, MountPropagationFlags};
use std::collections::BTreeMap;
use std::ffi::CString;
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

const USERS: &str = "users";
/// `MS_REMOUNT`, which rustix keeps out of `MountFlags` (moby's table has it).
const MS_REMOUNT: u32 = 32;

/// A live use of a mounted volume: the flock-ed marker. Dropping it (or the process
/// dying) makes the user stale; [`VolumeStore::release`] also drops the marker and
/// unmounts when it was the last.
#[derive(Debug)]
pub struct VolumeUse {
    _marker: File,
}

/// Whether options make the volume a mount (docker's `needsMount`): a device or type.
pub fn needs_mount(options: &BTreeMap<String, String>) -> bool {
    ["device", "type"]
        .iter()
        .any(|k| options.get(*k).is_some_and(|v| !v.is_empty()))
}

/// A propagation option of `o=` (moby's table), if it is one.
fn propagation(opt: &str) -> Option<MountPropagationFlags> {
    use MountPropagationFlags as P;
    Some(match opt {
        "unbindable" => P::UNBINDABLE,
        "runbindable" => P::UNBINDABLE | P::REC,
        "private" => P::PRIVATE,
        "rprivate" => P::PRIVATE | P::REC,
        "shared" => P::SHARED,
        "rshared" => P::SHARED | P::REC,
        "slave" => P::DOWNSTREAM,
        "rslave" => P::DOWNSTREAM | P::REC,
        _ => return None,
    })
}

/// A flag option of `o=` (moby's table) as the bits it sets and clears, if it is one.
fn flag(opt: &str) -> Option<(u32, u32)> {
    use MountFlags as F;
    let (set, clear) = match opt {
        "defaults" => (F::empty(), F::empty()),
        "ro" => (F::RDONLY, F::empty()),
        "rw" => (F::empty(), F::RDONLY),
        "nosuid" => (F::NOSUID, F::empty()),
        "suid" => (F::empty(), F::NOSUID),
        "nodev" => (F::NODEV, F::empty()),
        "dev" => (F::empty(), F::NODEV),
        "noexec" => (F::NOEXEC, F::empty()),
        "exec" => (F::empty(), F::NOEXEC),
        "sync" => (F::SYNCHRONOUS, F::empty()),
        "async" => (F::empty(), F::SYNCHRONOUS),
        "dirsync" => (F::DIRSYNC, F::empty()),
        "remount" => (F::from_bits_retain(MS_REMOUNT), F::empty()),
        "mand" => (F::PERMIT_MANDATORY_FILE_LOCKING, F::empty()),
        "nomand" => (F::empty(), F::PERMIT_MANDATORY_FILE_LOCKING),
        "noatime" => (F::NOATIME, F::empty()),
        "atime" => (F::empty(), F::NOATIME),
        "nodiratime" => (F::NODIRATIME, F::empty()),
        "diratime" => (F::empty(), F::NODIRATIME),
        "bind" => (F::BIND, F::empty()),
        "rbind" => (F::BIND | F::REC, F::empty()),
        "relatime" => (F::RELATIME, F::empty()),
        "norelatime" => (F::empty(), F::RELATIME),
        "strictatime" => (F::STRICTATIME, F::empty()),
        "nostrictatime" => (F::empty(), F::STRICTATIME),
        _ => return None,
    };
    Some((set.bits(), clear.bits()))
}

/// `o=` split as moby's `parseOptions`: mount flags, propagation, and the rest as
/// the filesystem's data.
fn parse_o(o: &str) -> (MountFlags, MountPropagationFlags, String) {
    let mut flags = 0u32;
    let mut prop = MountPropagationFlags::empty();
    let mut data = Vec::new();
    for opt in o.split(',').filter(|s| !s.is_empty()) {
        if let Some(p) = propagation(opt) {
            prop |= p;
        } else if let Some((set, clear)) = flag(opt) {
            flags = (flags | set) & !clear;
        } else {
            data.push(opt);
        }
    }
    (MountFlags::from_bits_retain(flags), prop, data.join(","))
}

/// Mounts the volume's device on `target` as moby's `mount.Mount(device, target,
/// type, o)`: flags and data from `o`, propagation changed after, a read-only bind
/// remounted read-only. A relative bind device is taken from `/` (dockerd's cwd).
fn mount_device(
    name: &str,
    options: &BTreeMap<String, String>,
    target: &Path,
) -> Result<(), VolumeError> {
    let get = |k: &str| options.get(k).map(String::as_str).unwrap_or_default();
    let (fs_type, o, device) = (get("type"), get("o"), get("device"));
    let err = |source: io::Error| VolumeError::Mount {
        name: name.to_owned(),
        what: format!("{device}:{} (type {fs_type:?}, o {o:?})", target.display()),
        source,
    };
    if device.is_empty() {
        return Err(err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "missing device in volume options",
        )));
    }
    let (flags, prop, data) = parse_o(o);
    let source = if flags.contains(MountFlags::BIND) {
        Path::new("/").join(device)
    } else {
        PathBuf::from(device)
    };
    let data =
        CString::new(data).map_err(|e| err(io::Error::new(io::ErrorKind::InvalidInput, e)))?;
    let data = (!data.as_bytes().is_empty()).then_some(data.as_c_str());
    tracing::debug!(volume = name, device, fs_type, o, "mounting volume");
    rustix::mount::mount(&source, target, fs_type, flags, data).map_err(|e| err(e.into()))?;
    let finish = || -> Result<(), Errno> {
        if !prop.is_empty() {
            rustix::mount::mount_change(target, prop)?;
        }
        if flags.contains(MountFlags::BIND | MountFlags::RDONLY) {
            rustix::mount::mount_remount(target, flags, "")?;
        }
        Ok(())
    };
    if let Err(e) = finish() {
        let _ = unmount_path(target);
        return Err(err(e.into()));
    }
    Ok(())
}

impl VolumeStore {
    fn users_dir(&self, name: &str) -> PathBuf {
        self.dir.join(name).join(USERS)
    }

    /// The `users` directory, flock-ed exclusively: mount decisions are made under it.
    fn lock_users(&self, name: &str) -> Result<File, VolumeError> {
        let dir = self.users_dir(name);
        match fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(self.io(name, "create directory", &dir)(e)),
        }
        let f = File::open(&dir).map_err(self.io(name, "open", &dir))?;
        flock(&f, FlockOperation::LockExclusive)
            .map_err(|e| self.io(name, "lock", &dir)(e.into()))?;
        Ok(f)
    }

    /// Counts the live users of a locked volume, dropping dead users' markers.
    fn live_users(&self, name: &str) -> Result<usize, VolumeError> {
        let dir = self.users_dir(name);
        let rd = match fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(self.io(name, "read directory", &dir)(e)),
        };
        let mut live = 0;
        for ent in rd.flatten() {
            let path = ent.path();
            let Ok(f) = File::open(&path) else { continue };
            match flock(&f, FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => {
                    tracing::debug!(volume = name, user = ?ent.file_name(), "dropping a dead user");
                    let _ = fs::remove_file(&path);
                }
                Err(_) => live += 1,
            }
        }
        Ok(live)
    }

    /// Unmounts a locked volume's `_data` when no live user is left.
    fn unmount_if_unused(&self, name: &str) -> Result<usize, VolumeError> {
        let live = self.live_users(name)?;
        let data = self.path(name);
        if live == 0 && is_mount_point(&data).unwrap_or(false) {
            tracing::debug!(volume = name, "unmounting volume: its last user is gone");
            unmount_path(&data)
                .map_err(|e| self.io(name, "unmount", &data)(io::Error::other(e.to_string())))?;
        }
        Ok(live)
    }

    /// Makes `user` (a container id, or a name unique to the calling process) a user
    /// of volume `name` and mounts its device unless it is mounted already. `None` for
    /// a volume without mount options (a plain directory). The returned use must be
    /// kept while the volume is used, and ended with [`release`](Self::release).
    pub fn acquire(&self, name: &str, user: &str) -> Result<Option<VolumeUse>, VolumeError> {
        let v = self.get(name)?;
        if !needs_mount(&v.options) {
            return Ok(None);
        }
        let _lock = self.lock_users(name)?;
        let marker = self.users_dir(name).join(user);
        let f = File::create(&marker).map_err(self.io(name, "create", &marker))?;
        flock(&f, FlockOperation::NonBlockingLockExclusive)
            .map_err(|e| self.io(name, "lock", &marker)(e.into()))?;
        let data = self.path(name);
        if !is_mount_point(&data).unwrap_or(false) {
            if let Err(e) = mount_device(name, &v.options, &data) {
                let _ = fs::remove_file(&marker);
                return Err(e);
            }
        }
        Ok(Some(VolumeUse { _marker: f }))
    }

    /// Ends `user`'s use of volume `name` (whether its process is alive or not) and
    /// unmounts the volume if no live user is left. A missing volume is fine.
    pub fn release(&self, name: &str, user: &str) -> Result<(), VolumeError> {
        if !self.users_dir(name).is_dir() {
            return Ok(());
        }
        let _lock = self.lock_users(name)?;
        let marker = self.users_dir(name).join(user);
        match fs::remove_file(&marker) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(self.io(name, "remove", &marker)(e)),
        }
        self.unmount_if_unused(name)?;
        Ok(())
    }

    /// Before a volume goes: refused while a live user has it mounted, unmounted if
    /// only dead users are left.
    pub(super) fn settle(&self, name: &str) -> Result<(), VolumeError> {
        if !self.users_dir(name).is_dir() && !is_mount_point(&self.path(name)).unwrap_or(false) {
            return Ok(());
        }
        let _lock = self.lock_users(name)?;
        if self.unmount_if_unused(name)? > 0 {
            return Err(VolumeError::InUse(name.to_owned()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn o_is_split_as_moby_does() {
        let (f, p, d) = parse_o("size=100m,uid=1000,ro,noexec");
        assert_eq!(f, MountFlags::RDONLY | MountFlags::NOEXEC);
        assert!(p.is_empty());
        assert_eq!(d, "size=100m,uid=1000");
        let (f, p, d) = parse_o("rbind,rprivate,ro,rw");
        assert_eq!(f, MountFlags::BIND | MountFlags::REC);
        assert_eq!(
            p,
            MountPropagationFlags::PRIVATE | MountPropagationFlags::REC
        );
        assert_eq!(d, "");
        let (_, _, d) = parse_o("addr=10.0.0.1,nfsvers=4,soft");
        assert_eq!(d, "addr=10.0.0.1,nfsvers=4,soft");
    }

    #[test]
    fn mount_needs_a_device_or_type() {
        let opts = |kv: &[(&str, &str)]| {
            kv.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>()
        };
        assert!(!needs_mount(&opts(&[])));
        assert!(!needs_mount(&opts(&[("size", "0")])));
        assert!(needs_mount(&opts(&[
            ("type", "tmpfs"),
            ("device", "tmpfs")
        ])));
    }
}
