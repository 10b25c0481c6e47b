//! Container root filesystems, containerd-snapshotter style: [`prepare`] lays out
//! `<container dir>/{upper,work,merged}` and returns the mount as data
//! ([`RootfsMount`]); the caller mounts it with [`mount`] (in whatever process and
//! mount namespace it chooses) and tears it down with [`unmount`].
//!
//! # Overlay
//!
//! The image's layer directories are the read-only lower dirs, `upper` takes the
//! container's writes, `work` is overlay's scratch space. Creating a container costs
//! three `mkdir`s and one mount whatever the image's size.
//!
//! Mount options:
//! - `index=off` always (as docker): the inode index ties an upper dir to the exact
//!   lower dirs it was first mounted on and makes later mounts fail with ESTALE when a
//!   layer dir was re-extracted; we never need the hard-link/NFS-export features it
//!   serves.
//! - `userxattr` only when rootless ([`OverlayOptions::rootless`]): an unprivileged
//!   overlay (in a user namespace) cannot use `trusted.*` xattrs; the layers were then
//!   unpacked with `user.overlay.opaque` (see [`crate::UnpackOptions::rootless`]).
//! - `volatile` is off by default and opt-in ([`OverlayOptions::volatile`]). It skips
//!   every sync of the upper dir, which is a real saving for write-heavy containers, but
//!   after a host crash the upper dir is unusable (overlay refuses to mount it again
//!   until `work/incompat/volatile` is removed, and its contents may be torn). Docker
//!   never uses it; `docker start` of a stopped container (and `--restart`) reuses the
//!   upper dir and users expect its files to survive. Podman turns it on for `--rm`
//!   containers only, which is the use we leave open to the engine: a container that is
//!   removed when it exits has no upper dir worth keeping.
//!
//! Long lower lists (images with 60+ layers): [`mount`] uses the new mount API,
//! `fsopen("overlay")` + one `fsconfig(FSCONFIG_SET_STRING, "lowerdir+", dir)` per layer
//! (Linux ≥ 6.8), which has no limit on the total length. On older kernels it falls
//! back to `mount(2)`, whose option string must fit in one page (4096 bytes, about 55
//! layer paths under `/var/lib/coracle/layers/<64 hex>`). That fallback always mounts
//! through short names, as containers/storage does: a temporary directory next to the
//! upper dir holds symlinks `0`, `1`, … to the layer dirs, and the mount is made from a
//! helper thread that has unshared its working directory (`unshare(CLONE_FS)`) and
//! `chdir`ed there, with `lowerdir=.l-XXXX/0:.l-XXXX/1:…` relative to it. Overlay
//! resolves the lower dirs at mount time, so the links are removed right after.
//! 500 layers (overlay's own maximum) fit in well under a page that way.
//!
//! # Copy fallback
//!
//! Where overlay is unavailable (no `overlay` in `/proc/filesystems` and `fsopen`
//! answers ENODEV), or when asked ([`Backend::Copy`]), [`prepare`] copies the layers
//! bottom-up into `merged` with whiteouts applied (owners, modes, xattrs, devices, hard
//! links preserved), through a temp dir renamed into place so a half-made copy never
//! passes for a root filesystem. Its cost grows with the image; it exists so coracle
//! still works on such machines. [`mount`] and [`unmount`] are no-ops for it: the
//! runtime bind-mounts the root onto itself anyway.

use crate::error::SnapshotError;
use crate::fsutil::remove_tree;
use crate::treecopy::{copy_tree, CopyOptions};
use rustix::fs::{self as rfs, Mode, OFlags, CWD};
use rustix::io::Errno;
use rustix::mount::{
    fsconfig_create, fsconfig_set_flag, fsconfig_set_string, fsmount, fsopen, move_mount,
    FsMountFlags, FsOpenFlags, MountAttrFlags, MountFlags, MoveMountFlags, UnmountFlags,
};
use std::ffi::CString;
use std::fs;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Size of the data page `mount(2)` copies its option string into.
const PAGE_LIMIT: usize = 4096;

/// Which way to build the root filesystem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Backend {
    /// Overlay when the kernel has it ([`overlay_supported`]), else a copy.
    #[default]
    Auto,
    Overlay,
    Copy,
}

/// How [`prepare_with`] lays out the root filesystem.
#[derive(Debug, Clone, Copy, Default)]
pub struct PrepareOptions {
    pub backend: Backend,
    /// See [`OverlayOptions::rootless`]; for a copy, ownership and device failures are
    /// skipped.
    pub rootless: bool,
    /// See [`OverlayOptions::volatile`].
    pub volatile: bool,
}

/// Overlay mount options beyond the directories (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct OverlayOptions {
    /// Adds `userxattr` (an unprivileged overlay in a user namespace).
    pub rootless: bool,
    /// Adds `volatile`: no syncs of the upper dir; for disposable (`--rm`) containers.
    pub volatile: bool,
}

/// What is mounted at the target.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum RootfsKind {
    Overlay {
        /// Layer dirs, top-most first (overlay's `lowerdir` order).
        lowers: Vec<PathBuf>,
        upper: PathBuf,
        work: PathBuf,
        options: OverlayOptions,
    },
    /// The layers were copied into the target by [`prepare`]; nothing to mount.
    Copy,
}

/// A container root filesystem, as data: where it goes and what makes it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RootfsMount {
    /// `<container dir>/merged`: the container's `/`.
    pub target: PathBuf,
    pub kind: RootfsKind,
}

impl RootfsMount {
    /// The classic `mount(2)` option string for an overlay with absolute paths (what
    /// `mount -t overlay overlay -o <this> <target>` or an OCI runtime spec mount
    /// would take); `None` for a copy. It may exceed a page for long lower lists, which
    /// [`mount`] itself handles.
    pub fn overlay_options(&self) -> Option<String> {
        match &self.kind {
            RootfsKind::Overlay {
                lowers,
                upper,
                work,
                options,
            } => {
                let lower: Vec<String> = lowers.iter().map(|p| escape(p)).collect();
                Some(option_string(
                    &lower.join(":"),
                    &escape(upper),
                    &escape(work),
                    *options,
                ))
            }
            RootfsKind::Copy => None,
        }
    }
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> SnapshotError + 'a {
    move |source| SnapshotError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// Whether the kernel offers overlayfs: listed in `/proc/filesystems`, or loadable
/// (`fsopen("overlay")` autoloads the module).
pub fn overlay_supported() -> bool {
    if fs::read_to_string("/proc/filesystems").is_ok_and(|s| {
        s.lines()
            .any(|l| l.split_whitespace().last() == Some("overlay"))
    }) {
        return true;
    }
    !matches!(
        fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC),
        Err(Errno::NODEV)
    )
}

/// [`prepare_with`] with the default options: overlay when available, rootful.
pub fn prepare(container_dir: &Path, lower_dirs: &[PathBuf]) -> Result<RootfsMount, SnapshotError> {
    prepare_with(container_dir, lower_dirs, &PrepareOptions::default())
}

/// Lays out `container_dir/{upper,work,merged}` (creating `container_dir` and its parents if needed)
/// over `lower_dirs` (top-most layer first) and returns the mount to make. Idempotent:
/// preparing an existing container again (restart) keeps its upper dir or its copy.
/// An image without layers gets an empty lower dir `container_dir/empty`.
pub fn prepare_with(
    container_dir: &Path,
    lower_dirs: &[PathBuf],
    opts: &PrepareOptions,
) -> Result<RootfsMount, SnapshotError> {
    if let Some(parent) = container_dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(io_err("create directory", parent))?;
    }
    mkdir(container_dir, 0o700)?;
    let dir = fs::canonicalize(container_dir).map_err(io_err("resolve", container_dir))?;
    let mut lowers = Vec::with_capacity(lower_dirs.len().max(1));
    for l in lower_dirs {
        let md = fs::metadata(l).map_err(io_err("open layer dir", l))?;
        if !md.is_dir() {
            return Err(SnapshotError::Invalid(format!(
                "layer {} is not a directory",
                l.display()
            )));
        }
        lowers.push(fs::canonicalize(l).map_err(io_err("resolve", l))?);
    }
    let target = dir.join("merged");
    let use_copy = match opts.backend {
        Backend::Copy => true,
        Backend::Overlay => false,
        Backend::Auto => !overlay_supported(),
    };
    if use_copy {
        // A copy is renamed into place whole, so it is never empty. An empty `merged`
        // is the mount point an overlay prepare left when its mount failed (a store on
        // overlayfs): the copy must replace it, not pass for a root filesystem.
        if is_empty_dir(&target) {
            for d in [&target, &dir.join("upper"), &dir.join("work")] {
                let _ = fs::remove_dir(d);
            }
        }
        if !target.exists() {
            tracing::debug!(target = %target.display(), layers = lowers.len(), "copying the layers");
            copy_layers(&dir, &lowers, &target, opts.rootless)?;
        }
        return Ok(RootfsMount {
            target,
            kind: RootfsKind::Copy,
        });
    }
    if lowers.is_empty() {
        let empty = dir.join("empty");
        mkdir(&empty, 0o755)?;
        lowers.push(empty);
    }
    let upper = dir.join("upper");
    let work = dir.join("work");
    // The upper dir is the container's `/` as far as new entries go: 0755 like a layer.
    mkdir(&upper, 0o755)?;
    mkdir(&work, 0o700)?;
    mkdir(&target, 0o755)?;
    Ok(RootfsMount {
        target,
        kind: RootfsKind::Overlay {
            lowers,
            upper,
            work,
            options: OverlayOptions {
                rootless: opts.rootless,
                volatile: opts.volatile,
            },
        },
    })
}

fn mkdir(path: &Path, mode: u32) -> Result<(), SnapshotError> {
    match fs::DirBuilder::new().mode(mode).create(path) {
        Ok(()) => fs::set_permissions(path, fs::Permissions::from_mode(mode))
            .map_err(io_err("chmod", path)),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && path.is_dir() => Ok(()),
        Err(e) => Err(io_err("create directory", path)(e)),
    }
}

fn copy_layers(
    dir: &Path,
    lowers: &[PathBuf],
    target: &Path,
    rootless: bool,
) -> Result<(), SnapshotError> {
    let tmp = tempfile::Builder::new()
        .prefix(".merged-copy-")
        .tempdir_in(dir)
        .map_err(io_err("create temp dir in", dir))?;
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o755))
        .map_err(io_err("chmod", tmp.path()))?;
    let opts = CopyOptions {
        whiteouts: true,
        rootless,
    };
    for l in lowers.iter().rev() {
        copy_tree(l, tmp.path(), opts).map_err(io_err("copy layer", l))?;
    }
    let tmp = tmp.keep();
    if let Err(e) = fs::rename(&tmp, target) {
        let _ = remove_tree(&tmp);
        return Err(io_err("rename copy to", target)(e));
    }
    Ok(())
}

/// Mounts the root filesystem at its target (a no-op for a copy). See the module docs
/// for how long lower lists are handled.
pub fn mount(m: &RootfsMount) -> Result<(), SnapshotError> {
    mount_using(m, Api::Auto)
}

/// Which mount API to use (tests force each).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Api {
    Auto,
    #[cfg_attr(not(test), allow(dead_code))]
    Legacy,
}

pub(crate) fn mount_using(m: &RootfsMount, api: Api) -> Result<(), SnapshotError> {
    let RootfsKind::Overlay {
        lowers,
        upper,
        work,
        options,
    } = &m.kind
    else {
        return Ok(());
    };
    tracing::debug!(
        target = %m.target.display(),
        upper = %upper.display(),
        layers = lowers.len(),
        "mounting overlay"
    );
    if lowers.is_empty() {
        return Err(SnapshotError::Invalid("overlay without lower dirs".into()));
    }
    if api == Api::Auto && kernel_has_lowerdir_plus() {
        match mount_fsconfig(&m.target, lowers, upper, work, *options) {
            Ok(()) => return Ok(()),
            Err(Fallback::Legacy) => {}
            Err(Fallback::Fail(e)) => return Err(e),
        }
    }
    mount_legacy(&m.target, lowers, upper, work, *options)
}

/// Overlay takes `lowerdir+` through fsconfig from Linux 6.8. Before 6.5 overlay had no
/// fsconfig parameters at all and the generic legacy context would only fail at
/// `FSCONFIG_CMD_CREATE`, so the version decides up front (an EINVAL for the first
/// `lowerdir+` still falls back, for backports that differ).
fn kernel_has_lowerdir_plus() -> bool {
    static HAS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *HAS.get_or_init(|| {
        fs::read_to_string("/proc/sys/kernel/osrelease")
            .ok()
            .and_then(|r| parse_release(&r))
            .is_none_or(|v| v >= (6, 8))
    })
}

/// `6.18.44-foo` -> (6, 18).
fn parse_release(r: &str) -> Option<(u32, u32)> {
    let mut it = r.trim().split(|c: char| !c.is_ascii_digit());
    let major = it.next()?.parse().ok()?;
    let minor = it.next()?.parse().ok()?;
    Some((major, minor))
}

enum Fallback {
    /// The kernel lacks the new API or `lowerdir+`: use `mount(2)`.
    Legacy,
    Fail(SnapshotError),
}

/// The messages the kernel queued on a filesystem context (`e overlayfs: ...`).
fn fs_context_log(fd: &OwnedFd) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 1024];
    // Reading an empty log answers ENODATA; cap the loop anyway.
    for _ in 0..16 {
        match rustix::io::read(fd, &mut buf) {
            Ok(n) if n > 0 => out.push(String::from_utf8_lossy(&buf[..n]).into_owned()),
            _ => break,
        }
    }
    out.join("; ")
}

fn mount_fsconfig(
    target: &Path,
    lowers: &[PathBuf],
    upper: &Path,
    work: &Path,
    options: OverlayOptions,
) -> Result<(), Fallback> {
    let fail = |syscall: &'static str, e: Errno, fd: Option<&OwnedFd>| {
        Fallback::Fail(SnapshotError::Mount {
            target: target.to_path_buf(),
            syscall,
            detail: fd.map(fs_context_log).unwrap_or_default(),
            source: e.into(),
        })
    };
    let fd = match fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC) {
        Ok(fd) => fd,
        Err(Errno::NOSYS) => return Err(Fallback::Legacy),
        Err(e) => return Err(fail("fsopen overlay", e, None)),
    };
    fsconfig_set_string(&fd, "source", "overlay")
        .map_err(|e| fail("fsconfig source", e, Some(&fd)))?;
    for (i, l) in lowers.iter().enumerate() {
        match fsconfig_set_string(&fd, "lowerdir+", l) {
            Ok(()) => {}
            // Before 6.8 overlay rejects the unknown key with EINVAL.
            Err(Errno::INVAL) if i == 0 => {
                let log = fs_context_log(&fd);
                if log.contains("lowerdir+") || log.contains("nknown parameter") || log.is_empty() {
                    return Err(Fallback::Legacy);
                }
                return Err(Fallback::Fail(SnapshotError::Mount {
                    target: target.to_path_buf(),
                    syscall: "fsconfig lowerdir+",
                    detail: format!("{}: {log}", l.display()),
                    source: Errno::INVAL.into(),
                }));
            }
            Err(e) => {
                let log = fs_context_log(&fd);
                return Err(Fallback::Fail(SnapshotError::Mount {
                    target: target.to_path_buf(),
                    syscall: "fsconfig lowerdir+",
                    detail: format!(
                        "{}{}{log}",
                        l.display(),
                        if log.is_empty() { "" } else { ": " }
                    ),
                    source: e.into(),
                }));
            }
        }
    }
    fsconfig_set_string(&fd, "upperdir", upper)
        .map_err(|e| fail("fsconfig upperdir", e, Some(&fd)))?;
    fsconfig_set_string(&fd, "workdir", work)
        .map_err(|e| fail("fsconfig workdir", e, Some(&fd)))?;
    fsconfig_set_string(&fd, "index", "off")
        .map_err(|e| fail("fsconfig index=off", e, Some(&fd)))?;
    if options.rootless {
        fsconfig_set_flag(&fd, "userxattr")
            .map_err(|e| fail("fsconfig userxattr", e, Some(&fd)))?;
    }
    if options.volatile {
        fsconfig_set_flag(&fd, "volatile").map_err(|e| fail("fsconfig volatile", e, Some(&fd)))?;
    }
    fsconfig_create(&fd).map_err(|e| fail("fsconfig create", e, Some(&fd)))?;
    let mnt = fsmount(&fd, FsMountFlags::FSMOUNT_CLOEXEC, MountAttrFlags::empty())
        .map_err(|e| fail("fsmount", e, Some(&fd)))?;
    move_mount(
        mnt.as_fd(),
        c"",
        CWD,
        target,
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )
    .map_err(|e| fail("move_mount", e, None))
}

/// Escapes a path for overlay's option parser (`\`, `,` and `:` are special).
fn escape(p: &Path) -> String {
    let s = p.to_string_lossy();
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '\\' | ',' | ':') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn option_string(lowerdir: &str, upper: &str, work: &str, o: OverlayOptions) -> String {
    let mut s = format!("lowerdir={lowerdir},upperdir={upper},workdir={work},index=off");
    if o.rootless {
        s.push_str(",userxattr");
    }
    if o.volatile {
        s.push_str(",volatile");
    }
    s
}

fn mount_legacy(
    target: &Path,
    lowers: &[PathBuf],
    upper: &Path,
    work: &Path,
    options: OverlayOptions,
) -> Result<(), SnapshotError> {
    // Short links to the layers in a temp dir beside the upper dir.
    let base = upper.parent().unwrap_or(Path::new("/"));
    let links = tempfile::Builder::new()
        .prefix(".l-")
        .rand_bytes(4)
        .tempdir_in(base)
        .map_err(io_err("create temp dir in", base))?;
    let links_name = links
        .path()
        .file_name()
        .expect("temp dir has a name")
        .to_string_lossy()
        .into_owned();
    let mut lowerdir = String::new();
    for (i, l) in lowers.iter().enumerate() {
        let link = links.path().join(i.to_string());
        std::os::unix::fs::symlink(l, &link).map_err(io_err("symlink", &link))?;
        if i > 0 {
            lowerdir.push(':');
        }
        lowerdir.push_str(&format!("{links_name}/{i}"));
    }
    let data = option_string(&lowerdir, &escape(upper), &escape(work), options);
    if data.len() >= PAGE_LIMIT {
        return Err(SnapshotError::Invalid(format!(
            "overlay options for {} layers are {} bytes, over the {PAGE_LIMIT}-byte page mount(2) takes",
            lowers.len(),
            data.len()
        )));
    }
    let data = CString::new(data).map_err(|_| SnapshotError::Invalid("path with a NUL".into()))?;
    let cwd = rfs::open(
        base,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| io_err("open", base)(e.into()))?;
    let target_c = CString::new(target.as_os_str().as_bytes())
        .map_err(|_| SnapshotError::Invalid("path with a NUL".into()))?;
    // chdir on a thread of its own: unshare(CLONE_FS) gives it a private cwd, so the
    // rest of the process never sees the change.
    let r = std::thread::scope(|s| {
        s.spawn(|| -> Result<(), (&'static str, Errno)> {
            // SAFETY: CLONE_FS only detaches this thread's cwd/root/umask from the
            // process's; no other state is unshared.
            unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::FS) }
                .map_err(|e| ("unshare(CLONE_FS)", e))?;
            rustix::process::fchdir(&cwd).map_err(|e| ("fchdir", e))?;
            rustix::mount::mount(
                "overlay",
                &*target_c,
                "overlay",
                MountFlags::empty(),
                &*data,
            )
            .map_err(|e| ("mount", e))
        })
        .join()
        .expect("mount thread panicked")
    });
    drop(links); // overlay resolved the links at mount time
    r.map_err(|(syscall, e)| SnapshotError::Mount {
        target: target.to_path_buf(),
        syscall,
        detail: String::new(),
        source: e.into(),
    })
}

/// Unmounts the root filesystem (a no-op for a copy, and for a target that is not
/// mounted). A busy mount is detached lazily (`MNT_DETACH`) so nothing stays mounted
/// at the target whatever holds it; every mount stacked on the target is removed.
pub fn unmount(m: &RootfsMount) -> Result<(), SnapshotError> {
    if m.kind == RootfsKind::Copy {
        return Ok(());
    }
    unmount_path(&m.target)
}

/// Unmounts whatever is mounted at `target` (all stacked mounts), detaching lazily
/// when busy. Not mounted (or missing) is success.
pub fn unmount_path(target: &Path) -> Result<(), SnapshotError> {
    let err = |e: Errno| SnapshotError::Unmount {
        target: target.to_path_buf(),
        source: e.into(),
    };
    for _ in 0..64 {
        match rustix::mount::unmount(target, UnmountFlags::NOFOLLOW) {
            Ok(()) => continue,
            Err(Errno::INVAL | Errno::NOENT) => return Ok(()),
            Err(Errno::BUSY) => {
                match rustix::mount::unmount(target, UnmountFlags::NOFOLLOW | UnmountFlags::DETACH)
                {
                    Ok(()) => continue,
                    Err(Errno::INVAL | Errno::NOENT) => return Ok(()),
                    Err(e) => return Err(err(e)),
                }
            }
            Err(e) => return Err(err(e)),
        }
    }
    Err(err(Errno::BUSY))
}

fn is_empty_dir(path: &Path) -> bool {
    fs::read_dir(path).is_ok_and(|mut d| d.next().is_none())
}

/// Whether the root filesystem is in place: an overlay mounted at its target, or a
/// completed copy.
pub fn is_mounted(m: &RootfsMount) -> Result<bool, SnapshotError> {
    match m.kind {
        RootfsKind::Copy => Ok(m.target.is_dir()),
        RootfsKind::Overlay { .. } => is_mount_point(&m.target),
    }
}

/// Whether something is mounted at `path` in this mount namespace
/// (`/proc/self/mountinfo`).
pub fn is_mount_point(path: &Path) -> Result<bool, SnapshotError> {
    let path = match fs::canonicalize(path) {
        Ok(p) => p,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(io_err("resolve", path)(e)),
    };
    let info = Path::new("/proc/self/mountinfo");
    let text = fs::read(info).map_err(io_err("read", info))?;
    let found = mount_points(&text).any(|p| p == path.as_os_str().as_bytes());
    Ok(found)
}

/// The mount points listed in a mountinfo text, unescaped.
pub(crate) fn mount_points(text: &[u8]) -> impl Iterator<Item = Vec<u8>> + '_ {
    text.split(|&b| b == b'\n').filter_map(|line| {
        let field = line.split(|&b| b == b' ').nth(4)?;
        Some(unescape_octal(field))
    })
}

fn unescape_octal(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'\\'
            && i + 3 < s.len()
            && s[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((s[i + 1] - b'0') * 64 + (s[i + 2] - b'0') * 8 + (s[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests;
