//! A stopped container's filesystem as it looks when it runs: its root filesystem with
//! its bind mounts (volumes, bind-mounted host paths) on top, built in a mount
//! namespace of its own.
//!
//! The namespace belongs to one thread, made for the purpose: it unshares its mount
//! namespace, turns every mount it inherited into a slave (nothing it mounts
//! propagates back to the host), mounts the overlay unless the host already has it
//! mounted, adds the binds, and runs the caller's function on the result. When the
//! thread ends, the kernel tears the namespace down with every mount in it, whatever
//! happened: an error, a panic, or the process killed. The host's mount table never
//! changes, so a concurrent `ps` or `start` never sees a half-made mount, and a rootfs
//! the host had mounted stays mounted.

use super::{CopyError, Tree};
use crate::resolve::{ensure_dir_in_root, ensure_file_in_root};
use crate::snapshot::{self, RootfsMount};
use rustix::mount::{MountFlags, MountPropagationFlags};
use rustix::thread::UnshareFlags;
use std::path::PathBuf;

/// A bind mount of the container's (OCI `mounts` of type `bind`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindMount {
    pub source: PathBuf,
    /// The container path it is mounted on.
    pub destination: String,
    pub read_only: bool,
}

fn err(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(rustix::io::Errno) -> CopyError {
    let path = path.into();
    move |e| CopyError::Io {
        op,
        path: path.display().to_string(),
        source: e.into(),
    }
}

/// Runs `f` on the container's filesystem: `rootfs` mounted (unless it already is)
/// with `binds` on it in order, all read-only where asked and the root too when
/// `read_only`; see the module docs. Needs CAP_SYS_ADMIN.
pub fn with_private_rootfs<T, F>(
    rootfs: &RootfsMount,
    binds: &[BindMount],
    read_only: bool,
    f: F,
) -> Result<T, CopyError>
where
    T: Send,
    F: FnOnce(&Tree) -> T + Send,
{
    // Asked in this thread's namespace, the host's: the new one starts as its copy.
    let mounted = snapshot::is_mounted(rootfs)?;
    std::thread::scope(|s| {
        s.spawn(move || -> Result<T, CopyError> {
            // SAFETY: NEWNS (with the FS it implies) detaches only this thread's mount
            // namespace, root and cwd; the descriptor table stays shared.
            unsafe { rustix::thread::unshare_unsafe(UnshareFlags::NEWNS | UnshareFlags::FS) }
                .map_err(err("unshare(CLONE_NEWNS)", "/"))?;
            rustix::mount::mount_change(
                "/",
                MountPropagationFlags::DOWNSTREAM | MountPropagationFlags::REC,
            )
            .map_err(err("make mounts slave", "/"))?;
            if !mounted {
                snapshot::mount(rootfs)?;
            }
            let target = &rootfs.target;
            for b in binds {
                // A source that is gone would keep the container from starting too;
                // what is under the mount point is what there is to copy.
                let Ok(meta) = std::fs::metadata(&b.source) else {
                    continue;
                };
                let at = if meta.is_dir() {
                    ensure_dir_in_root(target, &b.destination, 0o755)?
                } else {
                    ensure_file_in_root(target, &b.destination, 0o644)?
                };
                rustix::mount::mount_bind_recursive(&b.source, &at)
                    .map_err(err("bind mount", &at))?;
                if b.read_only {
                    rustix::mount::mount_remount(&at, MountFlags::BIND | MountFlags::RDONLY, c"")
                        .map_err(err("remount read-only", &at))?;
                }
            }
            if read_only {
                // A mount of its own on top (a copied rootfs is no mount at all) whose
                // flag can change without touching the binds under it.
                rustix::mount::mount_bind_recursive(target, target)
                    .map_err(err("bind mount", target))?;
                rustix::mount::mount_remount(target, MountFlags::BIND | MountFlags::RDONLY, c"")
                    .map_err(err("remount read-only", target))?;
            }
            let tree = Tree::open(target)?;
            Ok(f(&tree))
        })
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
}
