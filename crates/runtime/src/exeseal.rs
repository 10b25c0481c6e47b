//! The host binary must never be reachable from a container (CVE-2019-5736).
//!
//! libcontainer forks the container's init and every exec'd process from the process
//! that calls it, so until that process execs the user's program its /proc/self/exe is
//! coracle. A container that replaced the program with a `#!/proc/self/exe` script
//! would get coracle running inside it, dumpable, and through /proc/PID/exe could
//! chmod, chown or rewrite the host's binary. So every process that enters a
//! container through the built-in runtime runs from a sealed copy of the binary and
//! is non-dumpable until it execs the user's program:
//!
//! - a read-only overlayfs made with the new mount API, never attached to any mount
//!   tree, whose top lower layer is the binary's directory (runc 1.2's approach). The
//!   file shares the page cache with the original (no copy, no memory) and every
//!   write, chmod or chown through it fails with EROFS; nothing can remount it.
//! - where overlay is refused (no privilege, old kernel): a copy in a sealed memfd
//!   (crun's approach; the seals forbid writes, and the copy is not the host's file).
//!
//! [`SealedExe`] is such a copy to spawn or exec; [`self_is_sealed`] tells whether this
//! process already runs from one (checked on the file, not trusted from the caller).

use std::ffi::{CString, OsString};
use std::fs;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use coracle_core::ErrorKind;
use nix::fcntl::{fcntl, FcntlArg, SealFlag};
use nix::sys::memfd::{memfd_create, MemFdCreateFlag};
use nix::sys::statfs::OVERLAYFS_SUPER_MAGIC;
use rustix::mount::{self, FsMountFlags, FsOpenFlags, MountAttrFlags};

/// The seals a memfd copy must carry to count as sealed.
const BASE_SEALS: SealFlag = SealFlag::F_SEAL_SEAL
    .union(SealFlag::F_SEAL_SHRINK)
    .union(SealFlag::F_SEAL_GROW)
    .union(SealFlag::F_SEAL_WRITE);

/// Set by [`SealedExe::exec`] so that [`ensure_sealed`] never re-executes in a loop.
const REEXEC_ENV: &str = "CORACLE_SEALED_REEXEC";

/// Lowest fd number a [`SealedExe`] gets: a child that moves its stdio or an inherited
/// pipe onto the low numbers before exec cannot replace the file it execs.
const MIN_FD: RawFd = 10;

/// An empty directory for overlay's second lower layer, on kernels that refuse a
/// detached tmpfs there (overlay needs two lower layers to run without an upper one).
const SCRATCH_LOWER: &str = "/run/coracle/exeseal-empty";

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("seal a copy of coracle's binary (CVE-2019-5736): {call}: {source}")]
    Sys {
        call: String,
        #[source]
        source: std::io::Error,
    },
    #[error("copy coracle's binary into a memfd: copied {copied} of {size} bytes")]
    ShortCopy { copied: u64, size: u64 },
    #[error("re-execute coracle from its sealed copy: {0}")]
    Exec(#[source] nix::Error),
    #[error("the built-in runtime refuses to run from an unsealed coracle binary ({0}): a container could reach the host's binary through /proc/self/exe (CVE-2019-5736); coracle re-executes itself from a sealed copy before it enters a container")]
    NotSealed(String),
}

impl SealError {
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::Internal
    }
}

fn sys(call: impl Into<String>) -> impl FnOnce(std::io::Error) -> SealError {
    let call = call.into();
    move |source| SealError::Sys { call, source }
}

/// How a [`SealedExe`] protects the binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealKind {
    /// A file on a detached read-only overlayfs over the binary's directory.
    Overlay,
    /// A sealed memfd copy.
    Memfd,
}

/// A sealed copy of this process's binary, held by a close-on-exec fd (exec'd through
/// `/proc/self/fd/N`, which the kernel resolves before it closes the fd).
#[derive(Debug)]
pub struct SealedExe {
    fd: OwnedFd,
    kind: SealKind,
}

impl SealedExe {
    pub fn kind(&self) -> SealKind {
        self.kind
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The path to spawn (`std::process::Command::new`): valid in this process and in
    /// its children until they exec.
    pub fn path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/self/fd/{}", self.fd.as_raw_fd()))
    }

    /// Replaces this process with the sealed copy run with `args` (args[0] included)
    /// and this process's environment. Returns only on failure.
    pub fn exec(&self, args: &[OsString]) -> SealError {
        let argv: Vec<CString> = args
            .iter()
            .filter_map(|a| CString::new(a.as_bytes()).ok())
            .collect();
        let env: Vec<CString> = std::env::vars_os()
            .filter(|(k, _)| k != REEXEC_ENV)
            .chain([(REEXEC_ENV.into(), "1".into())])
            .filter_map(|(k, v)| {
                let mut kv = k.as_bytes().to_vec();
                kv.push(b'=');
                kv.extend_from_slice(v.as_bytes());
                CString::new(kv).ok()
            })
            .collect();
        match nix::unistd::fexecve(self.fd.as_raw_fd(), &argv, &env) {
            Err(e) => SealError::Exec(e),
            Ok(never) => match never {},
        }
    }
}

/// A sealed copy of the running binary: the overlay where the kernel allows it, else a
/// sealed memfd.
pub fn seal_self() -> Result<SealedExe, SealError> {
    let (fd, kind) = match overlay_copy() {
        Ok(fd) => (fd, SealKind::Overlay),
        Err(_) => (memfd_copy()?, SealKind::Memfd),
    };
    let fd = nix::fcntl::fcntl(fd.as_raw_fd(), FcntlArg::F_DUPFD_CLOEXEC(MIN_FD))
        .map_err(|e| sys("fcntl(F_DUPFD_CLOEXEC)")(e.into()))?;
    // SAFETY: F_DUPFD_CLOEXEC returned a new fd that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    Ok(SealedExe { fd, kind })
}

/// Unless this process already runs from a sealed copy, re-executes it from one with
/// the same arguments and environment (fds without close-on-exec stay open). Returns
/// Ok only when already sealed.
pub fn ensure_sealed() -> Result<(), SealError> {
    if self_is_sealed() {
        return Ok(());
    }
    if std::env::var_os(REEXEC_ENV).is_some() {
        // Only a loop breaker: whether we are sealed is read from the file itself.
        return Err(SealError::NotSealed(
            "re-executed from a sealed copy, yet /proc/self/exe is not one".into(),
        ));
    }
    let sealed = seal_self()?;
    let args: Vec<OsString> = std::env::args_os().collect();
    Err(sealed.exec(&args))
}

/// Fails unless this process runs from a sealed copy: the built-in runtime checks it
/// before it forks anything into a container.
pub fn require_sealed() -> Result<(), SealError> {
    if self_is_sealed() {
        return Ok(());
    }
    let exe = fs::read_link("/proc/self/exe")
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "/proc/self/exe".into());
    Err(SealError::NotSealed(exe))
}

/// Non-dumpable: other processes (those of a container this process forks into) cannot
/// open its /proc/PID files or ptrace it. execve of the user's program makes the new
/// program dumpable again, as usual.
pub fn set_non_dumpable() -> Result<(), SealError> {
    nix::sys::prctl::set_dumpable(false).map_err(|e| sys("prctl(PR_SET_DUMPABLE, 0)")(e.into()))
}

/// Whether /proc/self/exe is a sealed copy: a memfd carrying the seals, or a file on a
/// read-only overlayfs that is attached to no mount tree we can see (the one
/// [`seal_self`] makes; an administrator's read-only overlay root is not enough).
pub fn self_is_sealed() -> bool {
    let Ok(exe) = fs::File::open("/proc/self/exe") else {
        return false;
    };
    is_sealed_file(exe.as_fd())
}

fn is_sealed_file(fd: BorrowedFd<'_>) -> bool {
    if let Ok(seals) = fcntl(fd.as_raw_fd(), FcntlArg::F_GET_SEALS) {
        return SealFlag::from_bits_truncate(seals).contains(BASE_SEALS);
    }
    let Ok(st) = nix::sys::statfs::fstatfs(fd) else {
        return false;
    };
    let read_only = st.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY);
    if st.filesystem_type() != OVERLAYFS_SUPER_MAGIC || !read_only {
        return false;
    }
    match mount_id(fd) {
        Some(id) => !mount_attached(id),
        None => false,
    }
}

/// The mount id of the file behind `fd` (from /proc/self/fdinfo).
fn mount_id(fd: BorrowedFd<'_>) -> Option<u64> {
    let info = fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.as_raw_fd())).ok()?;
    info.lines()
        .find_map(|l| l.strip_prefix("mnt_id:"))
        .and_then(|v| v.trim().parse().ok())
}

/// Whether mount `id` is in this process's mount namespace.
fn mount_attached(id: u64) -> bool {
    let Ok(table) = fs::read_to_string("/proc/self/mountinfo") else {
        // Unknown: do not call it sealed.
        return true;
    };
    table
        .lines()
        .any(|l| l.split(' ').next().and_then(|f| f.parse::<u64>().ok()) == Some(id))
}

/// Opens the binary through a detached read-only overlay over its directory.
fn overlay_copy() -> Result<OwnedFd, SealError> {
    let exe = fs::read_link("/proc/self/exe").map_err(sys("readlink /proc/self/exe"))?;
    let (dir, name) = match (exe.parent(), exe.file_name()) {
        // A replaced binary: the directory holds another file now; copy ours instead.
        (Some(d), Some(n)) if !exe.as_os_str().as_bytes().ends_with(b" (deleted)") => (d, n),
        _ => {
            return Err(SealError::NotSealed(format!(
                "{} is not a file in a directory",
                exe.display()
            )))
        }
    };
    let mnt = match detached_tmpfs() {
        Ok(tmp) => overlay_mount(
            dir,
            Path::new(&format!("/proc/self/fd/{}", tmp.as_raw_fd())),
        ),
        Err(e) => Err(e),
    }
    .or_else(|_| {
        fs::create_dir_all(SCRATCH_LOWER).map_err(sys(format!("create {SCRATCH_LOWER}")))?;
        overlay_mount(dir, Path::new(SCRATCH_LOWER))
    })?;
    let file = nix::fcntl::openat(
        Some(mnt.as_raw_fd()),
        Path::new(name),
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_NOFOLLOW | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| {
        sys(format!(
            "open {} on the sealing overlay",
            name.to_string_lossy()
        ))(e.into())
    })?;
    // SAFETY: openat returned a new fd that nothing else owns.
    let file = unsafe { OwnedFd::from_raw_fd(file) };
    // overlay passes size and mtime through: a different file there is not ours.
    let (ours, theirs) = (
        fs::metadata("/proc/self/exe").map_err(sys("stat /proc/self/exe"))?,
        nix::sys::stat::fstat(file.as_raw_fd()).map_err(|e| sys("fstat")(e.into()))?,
    );
    if ours.size() as i64 != theirs.st_size || ours.mtime() != theirs.st_mtime {
        return Err(SealError::NotSealed(format!(
            "{} changed while it was being sealed",
            exe.display()
        )));
    }
    Ok(file)
}

/// An empty read-only tmpfs attached nowhere: overlay's second lower layer.
fn detached_tmpfs() -> Result<OwnedFd, SealError> {
    let ctx = fsopen("tmpfs")?;
    fsconfig_create(&ctx, "tmpfs")?;
    fsmount(&ctx, "tmpfs", MountAttrFlags::MOUNT_ATTR_RDONLY)
}

fn overlay_mount(top: &Path, scratch: &Path) -> Result<OwnedFd, SealError> {
    let ctx = fsopen("overlay")?;
    // `dir` first: a file of the same name in the scratch layer cannot hide the binary.
    let lower = format!("{}:{}", escape_lower(top), escape_lower(scratch));
    fsconfig_string(&ctx, "lowerdir", &lower)?;
    // Spares dmesg a note when the layers are on different filesystems; not needed.
    let _ = fsconfig_string(&ctx, "xino", "off");
    fsconfig_create(&ctx, "overlay")?;
    fsmount(
        &ctx,
        "overlay",
        MountAttrFlags::MOUNT_ATTR_RDONLY
            | MountAttrFlags::MOUNT_ATTR_NOSUID
            | MountAttrFlags::MOUNT_ATTR_NODEV,
    )
}

/// overlay's lowerdir list separates with ':' and escapes with '\'.
fn escape_lower(p: &Path) -> String {
    p.to_string_lossy()
        .replace('\\', "\\\\")
        .replace(':', "\\:")
}

fn fsopen(fs: &str) -> Result<OwnedFd, SealError> {
    mount::fsopen(fs, FsOpenFlags::FSOPEN_CLOEXEC)
        .map_err(|e| sys(format!("fsopen({fs})"))(e.into()))
}

fn fsconfig_string(ctx: &OwnedFd, key: &str, value: &str) -> Result<(), SealError> {
    if value.contains('\0') {
        return Err(SealError::NotSealed(format!("NUL in {key}")));
    }
    mount::fsconfig_set_string(ctx, key, value)
        .map_err(|e| sys(format!("fsconfig {key}={value}"))(e.into()))
}

fn fsconfig_create(ctx: &OwnedFd, fs: &str) -> Result<(), SealError> {
    mount::fsconfig_create(ctx).map_err(|e| sys(format!("fsconfig create {fs}"))(e.into()))
}

fn fsmount(ctx: &OwnedFd, fs: &str, attrs: MountAttrFlags) -> Result<OwnedFd, SealError> {
    mount::fsmount(ctx, FsMountFlags::FSMOUNT_CLOEXEC, attrs)
        .map_err(|e| sys(format!("fsmount({fs})"))(e.into()))
}

/// A copy of the binary in a memfd, sealed against every change.
fn memfd_copy() -> Result<OwnedFd, SealError> {
    let mut exe = fs::File::open("/proc/self/exe").map_err(sys("open /proc/self/exe"))?;
    let size = exe.metadata().map_err(sys("stat /proc/self/exe"))?.len();
    let name = c"coracle-sealed";
    let base = MemFdCreateFlag::MFD_CLOEXEC | MemFdCreateFlag::MFD_ALLOW_SEALING;
    // MFD_EXEC (Linux 6.3) says we mean to exec it (vm.memfd_noexec); older kernels
    // refuse the flag.
    let fd = memfd_create(
        name,
        base | MemFdCreateFlag::from_bits_retain(libc::MFD_EXEC),
    )
    .or_else(|_| memfd_create(name, base))
    .map_err(|e| sys("memfd_create")(e.into()))?;
    let mut out = fs::File::from(fd);
    let copied = std::io::copy(&mut (&mut exe).take(size), &mut out)
        .map_err(sys("copy /proc/self/exe into a memfd"))?;
    if copied != size {
        return Err(SealError::ShortCopy { copied, size });
    }
    use std::os::unix::fs::PermissionsExt;
    let _ = out.set_permissions(fs::Permissions::from_mode(0o511));
    let fd = OwnedFd::from(out);
    // Newer seals first, each on its own: a kernel without one still gets the rest.
    // F_SEAL_FUTURE_WRITE (5.1) refused the private writable mappings exec makes until
    // 5.5 (kernel commit 05d351102dbe); F_SEAL_WRITE covers it anyway.
    let mut extra = vec![SealFlag::from_bits_retain(libc::F_SEAL_EXEC)];
    if kernel_at_least(5, 5) {
        extra.push(SealFlag::F_SEAL_FUTURE_WRITE);
    }
    for seal in extra {
        let _ = fcntl(fd.as_raw_fd(), FcntlArg::F_ADD_SEALS(seal));
    }
    fcntl(fd.as_raw_fd(), FcntlArg::F_ADD_SEALS(BASE_SEALS))
        .map_err(|e| sys("fcntl(F_ADD_SEALS)")(e.into()))?;
    Ok(fd)
}

/// Whether the running kernel's version is at least `major.minor`.
fn kernel_at_least(major: u32, minor: u32) -> bool {
    let release = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut parts = release
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let (a, b) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (a, b) >= (major, minor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_version_compares() {
        assert!(kernel_at_least(3, 0));
        assert!(!kernel_at_least(999, 0));
    }

    #[test]
    fn lower_dirs_are_escaped() {
        assert_eq!(escape_lower(Path::new("/a:b\\c")), "/a\\:b\\\\c");
    }

    #[test]
    fn a_plain_binary_is_not_sealed() {
        assert!(!self_is_sealed());
        assert!(matches!(require_sealed(), Err(SealError::NotSealed(_))));
    }

    #[test]
    fn memfd_copy_is_sealed_and_identical() {
        let fd = memfd_copy().unwrap();
        assert!(is_sealed_file(fd.as_fd()));
        let mut f = fs::File::from(fd);
        assert!(std::io::Write::write_all(&mut f, b"x").is_err());
        let mut copy = Vec::new();
        std::io::Seek::rewind(&mut f).unwrap();
        f.read_to_end(&mut copy).unwrap();
        assert_eq!(copy, fs::read("/proc/self/exe").unwrap());
    }

    #[test]
    fn overlay_copy_is_read_only_and_detached() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: overlay sealing needs root");
            return;
        }
        let fd = overlay_copy().unwrap();
        // An O_PATH fd: check the file through a readable open of it.
        let f = fs::File::open(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap();
        assert!(is_sealed_file(f.as_fd()));
        let path = format!("/proc/self/fd/{}", fd.as_raw_fd());
        let err = fs::OpenOptions::new().write(true).open(&path).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EROFS), "{err}");
        use std::os::unix::fs::PermissionsExt;
        let err = fs::set_permissions(&path, fs::Permissions::from_mode(0o4755)).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EROFS), "{err}");
        let err = std::os::unix::fs::chown(&path, Some(1234), None).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EROFS), "{err}");
        assert_eq!(
            fs::read(&path).unwrap(),
            fs::read("/proc/self/exe").unwrap()
        );
    }

    /// Runs `exe --help` (this test binary: prints libtest's usage) and waits.
    fn run_help(exe: &Path) -> std::process::ExitStatus {
        std::process::Command::new(exe)
            .arg("--help")
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap()
    }

    #[test]
    fn sealed_copies_run() {
        let memfd = SealedExe {
            fd: memfd_copy().unwrap(),
            kind: SealKind::Memfd,
        };
        assert!(run_help(&memfd.path()).success());
        if nix::unistd::geteuid().is_root() {
            let sealed = seal_self().unwrap();
            assert_eq!(sealed.kind(), SealKind::Overlay);
            assert!(run_help(&sealed.path()).success());
        }
    }

    /// `cargo test -p coracle-runtime --lib exeseal::tests::cost -- --ignored
    /// --nocapture`: what sealing and running from a sealed copy cost.
    #[test]
    #[ignore]
    fn cost() {
        use std::time::Instant;
        let size = fs::metadata("/proc/self/exe").unwrap().len();
        let n = 20u32;
        let t = Instant::now();
        for _ in 0..n {
            drop(overlay_copy().unwrap());
        }
        let overlay = t.elapsed() / n;
        let t = Instant::now();
        for _ in 0..5 {
            drop(memfd_copy().unwrap());
        }
        let memfd = t.elapsed() / 5;
        let exe = fs::read_link("/proc/self/exe").unwrap();
        let sealed = seal_self().unwrap();
        let time = |p: &Path| {
            run_help(p);
            let t = Instant::now();
            for _ in 0..n {
                run_help(p);
            }
            t.elapsed() / n
        };
        let (plain, from_overlay) = (time(&exe), time(&sealed.path()));
        println!(
            "binary {} MB: overlay seal {overlay:?}, memfd copy {memfd:?}; \
             exec+run --help: plain {plain:?}, from the overlay {from_overlay:?}",
            size >> 20
        );
    }

    #[test]
    fn scratch_layer_works_too() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: overlay sealing needs root");
            return;
        }
        let scratch = std::env::temp_dir().join(format!("coracle-exeseal-{}", std::process::id()));
        fs::create_dir_all(&scratch).unwrap();
        let exe = fs::read_link("/proc/self/exe").unwrap();
        let mnt = overlay_mount(exe.parent().unwrap(), &scratch).unwrap();
        let st = nix::sys::statfs::fstatfs(mnt.as_fd()).unwrap();
        assert!(st.filesystem_type() == OVERLAYFS_SUPER_MAGIC);
        drop(mnt);
        fs::remove_dir_all(&scratch).unwrap();
    }
}
