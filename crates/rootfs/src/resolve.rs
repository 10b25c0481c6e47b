//! Paths inside a container's root filesystem, resolved as the container will see them:
//! symlinks (absolute or relative) and `..` never lead out of the root. Resolution is
//! the kernel's own (`openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)` on a dirfd of
//! the root), and the host path is read back from `/proc/self/fd` of the resulting
//! `O_PATH` fd. Missing components are created with `mkdirat`/`openat(O_CREAT|O_EXCL|
//! O_NOFOLLOW)` relative to their resolved parent's fd, never through a symlink.
//!
//! The paths returned are meant for the runtime's mounts, made before the container
//! runs: nothing untrusted changes the rootfs in between.

use crate::error::ResolveError;
use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;
use std::collections::VecDeque;
use std::ffi::OsStr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Symlinks followed by hand (dangling ones, to create their targets) before giving up
/// with ELOOP, as the kernel's own limit.
const MAX_HOPS: usize = 40;

const IN_ROOT: ResolveFlags = ResolveFlags::IN_ROOT.union(ResolveFlags::NO_MAGICLINKS);

/// What the final component must be.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Last {
    /// Must exist already; any type.
    Existing,
    Dir,
    File,
}

struct Ctx<'a> {
    root: &'a Path,
    path: &'a str,
}

impl Ctx<'_> {
    fn err(&self, op: &'static str) -> impl FnOnce(Errno) -> ResolveError + '_ {
        move |e| ResolveError::Io {
            op,
            root: self.root.to_path_buf(),
            path: self.path.to_owned(),
            source: e.into(),
        }
    }
}

/// Resolves the container path `path` (absolute or relative to the root; `..` and
/// symlinks cannot leave it) inside `root` and returns the host path it names. The
/// path must exist.
pub fn resolve_in_root(root: &Path, path: &str) -> Result<PathBuf, ResolveError> {
    walk(root, path, Last::Existing, 0)
}

/// Like [`resolve_in_root`], creating missing directories (with `mode`, exactly: the
/// umask is not applied; owned by the caller). The final component must end up a
/// directory. A dangling symlink on the way is followed inside the root and its target
/// created, as runc does for mount targets.
pub fn ensure_dir_in_root(root: &Path, path: &str, mode: u32) -> Result<PathBuf, ResolveError> {
    walk(root, path, Last::Dir, mode)
}

/// Like [`ensure_dir_in_root`] for a file bind-mount target (`/etc/hosts`, which may
/// be a symlink in the image): missing parent directories are created 0755 and a
/// missing final file is created empty with `mode`. The final component must not be a
/// directory.
pub fn ensure_file_in_root(root: &Path, path: &str, mode: u32) -> Result<PathBuf, ResolveError> {
    walk(root, path, Last::File, mode)
}

fn open_in_root(root: &OwnedFd, rel: &[u8]) -> Result<OwnedFd, Errno> {
    let rel: &[u8] = if rel.is_empty() { b"." } else { rel };
    rfs::openat2(
        root,
        OsStr::from_bytes(rel),
        OFlags::PATH | OFlags::CLOEXEC,
        Mode::empty(),
        IN_ROOT,
    )
}

fn join(done: &[Vec<u8>]) -> Vec<u8> {
    done.join(&b'/')
}

fn components(p: &[u8]) -> impl Iterator<Item = Vec<u8>> + '_ {
    p.split(|&b| b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
        .map(<[u8]>::to_vec)
}

fn walk(root: &Path, path: &str, last: Last, mode: u32) -> Result<PathBuf, ResolveError> {
    let cx = Ctx { root, path };
    let rootfd = rfs::open(
        root,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(cx.err("open root"))?;
    // Components resolved so far (as spelled, possibly through symlinks the kernel
    // follows inside the root), and those still to walk.
    let mut done: Vec<Vec<u8>> = Vec::new();
    let mut todo: VecDeque<Vec<u8>> = components(path.as_bytes()).collect();
    let mut hops = 0;
    while let Some(c) = todo.pop_front() {
        let mut cand = done.clone();
        cand.push(c.clone());
        match open_in_root(&rootfd, &join(&cand)) {
            Ok(_) => {
                done = cand;
                continue;
            }
            Err(Errno::NOENT) if last != Last::Existing => {}
            Err(e) => return Err(cx.err("resolve")(e)),
        }
        // Missing: the parent (all of `done`) exists; `c` is absent or a dangling link.
        let parent = open_dir_in_root(&rootfd, &join(&done)).map_err(cx.err("open parent"))?;
        match rfs::statat(&parent, OsStr::from_bytes(&c), AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Symlink => {
                hops += 1;
                if hops > MAX_HOPS {
                    return Err(cx.err("resolve")(Errno::LOOP));
                }
                let target = rfs::readlinkat(&parent, OsStr::from_bytes(&c), Vec::new())
                    .map_err(cx.err("readlinkat"))?;
                let target = target.as_bytes();
                if target.starts_with(b"/") {
                    done.clear();
                }
                for t in components(target).collect::<Vec<_>>().into_iter().rev() {
                    todo.push_front(t);
                }
            }
            Ok(_) => {
                // Appeared since (a race): walk it again.
                hops += 1;
                if hops > MAX_HOPS {
                    return Err(cx.err("resolve")(Errno::LOOP));
                }
                todo.push_front(c);
            }
            Err(Errno::NOENT) => {
                let name = OsStr::from_bytes(&c);
                if todo.is_empty() && last == Last::File {
                    match rfs::openat(
                        &parent,
                        name,
                        OFlags::WRONLY
                            | OFlags::CREATE
                            | OFlags::EXCL
                            | OFlags::NOFOLLOW
                            | OFlags::CLOEXEC,
                        Mode::from_raw_mode(mode),
                    ) {
                        Ok(fd) => {
                            rfs::fchmod(&fd, Mode::from_raw_mode(mode)).map_err(cx.err("fchmod"))?
                        }
                        Err(Errno::EXIST) => {}
                        Err(e) => return Err(cx.err("create file")(e)),
                    }
                } else {
                    let m = if todo.is_empty() { mode } else { 0o755 };
                    match rfs::mkdirat(&parent, name, Mode::from_raw_mode(m)) {
                        Ok(()) => {
                            let fd = rfs::openat(
                                &parent,
                                name,
                                OFlags::RDONLY
                                    | OFlags::DIRECTORY
                                    | OFlags::NOFOLLOW
                                    | OFlags::CLOEXEC,
                                Mode::empty(),
                            )
                            .map_err(cx.err("open new directory"))?;
                            rfs::fchmod(&fd, Mode::from_raw_mode(m)).map_err(cx.err("fchmod"))?;
                        }
                        Err(Errno::EXIST) => {}
                        Err(e) => return Err(cx.err("mkdirat")(e)),
                    }
                }
                todo.push_front(c);
            }
            Err(e) => return Err(cx.err("lstat")(e)),
        }
    }
    let fd = open_in_root(&rootfd, &join(&done)).map_err(cx.err("resolve"))?;
    let st = rfs::fstat(&fd).map_err(cx.err("fstat"))?;
    let is_dir = FileType::from_raw_mode(st.st_mode) == FileType::Directory;
    match last {
        Last::Dir if !is_dir => return Err(cx.err("use as directory")(Errno::NOTDIR)),
        Last::File if is_dir => return Err(cx.err("use as file")(Errno::ISDIR)),
        _ => {}
    }
    let link = format!("/proc/self/fd/{}", fd.as_raw_fd());
    let p = rfs::readlink(link.as_str(), Vec::new()).map_err(cx.err("readlink /proc/self/fd"))?;
    Ok(PathBuf::from(OsStr::from_bytes(p.as_bytes())))
}

fn open_dir_in_root(root: &OwnedFd, rel: &[u8]) -> Result<OwnedFd, Errno> {
    let rel: &[u8] = if rel.is_empty() { b"." } else { rel };
    rfs::openat2(
        root,
        OsStr::from_bytes(rel),
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
        IN_ROOT,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::{symlink, PermissionsExt};

    struct T {
        _tmp: tempfile::TempDir,
        root: PathBuf,
        outside: PathBuf,
    }

    fn setup() -> T {
        let tmp = tempfile::tempdir().unwrap();
        let base = fs::canonicalize(tmp.path()).unwrap();
        let root = base.join("root");
        let outside = base.join("outside");
        fs::create_dir_all(root.join("etc")).unwrap();
        fs::create_dir_all(root.join("usr/lib")).unwrap();
        fs::create_dir_all(outside.join("etc")).unwrap();
        fs::write(root.join("etc/passwd"), b"in").unwrap();
        fs::write(outside.join("etc/passwd"), b"out").unwrap();
        T {
            _tmp: tmp,
            root,
            outside,
        }
    }

    fn assert_inside(t: &T, p: &Path) {
        assert!(
            p.starts_with(&t.root),
            "{} escaped {}",
            p.display(),
            t.root.display()
        );
    }

    #[test]
    fn resolves_plain_paths() {
        let t = setup();
        assert_eq!(
            resolve_in_root(&t.root, "/etc/passwd").unwrap(),
            t.root.join("etc/passwd")
        );
        assert_eq!(
            resolve_in_root(&t.root, "etc//./passwd").unwrap(),
            t.root.join("etc/passwd")
        );
        assert_eq!(resolve_in_root(&t.root, "/").unwrap(), t.root);
        assert_eq!(resolve_in_root(&t.root, "").unwrap(), t.root);
        let e = resolve_in_root(&t.root, "/nope").unwrap_err();
        assert_eq!(e.kind(), coracle_core::ErrorKind::NotFound);
        assert!(e.to_string().contains("/nope"), "{e}");
    }

    #[test]
    fn absolute_symlink_to_host_etc_stays_inside() {
        let t = setup();
        symlink(t.outside.join("etc"), t.root.join("hostetc")).unwrap();
        symlink("/etc", t.root.join("etc2")).unwrap();
        // An absolute link is read as the container sees it: `/etc` of the root.
        let p = resolve_in_root(&t.root, "/etc2/passwd").unwrap();
        assert_eq!(p, t.root.join("etc/passwd"));
        // A link naming the host path of `outside` resolves to that path *inside* the
        // root, which does not exist.
        assert!(resolve_in_root(&t.root, "/hostetc/passwd").is_err());
        let made = ensure_dir_in_root(&t.root, "/hostetc/sub", 0o755).unwrap();
        assert_inside(&t, &made);
        assert!(made.ends_with("outside/etc/sub"), "{}", made.display());
        assert!(!t.outside.join("etc/sub").exists());
    }

    #[test]
    fn dotdot_and_relative_symlinks_stay_inside() {
        let t = setup();
        symlink("../../../../../..", t.root.join("usr/lib/up")).unwrap();
        symlink("../../../etc", t.root.join("usr/lib/etc")).unwrap();
        assert_eq!(resolve_in_root(&t.root, "/usr/lib/up").unwrap(), t.root);
        assert_eq!(
            resolve_in_root(&t.root, "/usr/lib/up/etc/passwd").unwrap(),
            t.root.join("etc/passwd")
        );
        assert_eq!(
            resolve_in_root(&t.root, "/../../../etc/passwd").unwrap(),
            t.root.join("etc/passwd")
        );
        assert_eq!(
            resolve_in_root(&t.root, "/usr/lib/etc/passwd").unwrap(),
            t.root.join("etc/passwd")
        );
        let d = ensure_dir_in_root(&t.root, "/usr/lib/up/../../x/y", 0o750).unwrap();
        assert_eq!(d, t.root.join("x/y"));
        assert_eq!(
            fs::metadata(&d).unwrap().permissions().mode() & 0o7777,
            0o750
        );
        assert_eq!(
            fs::metadata(t.root.join("x")).unwrap().permissions().mode() & 0o7777,
            0o755
        );
        assert!(!t.outside.parent().unwrap().join("x").exists());
    }

    #[test]
    fn ensure_dir_creates_and_is_idempotent() {
        let t = setup();
        let d = ensure_dir_in_root(&t.root, "/work/dir", 0o755).unwrap();
        assert_eq!(d, t.root.join("work/dir"));
        assert!(d.is_dir());
        assert_eq!(ensure_dir_in_root(&t.root, "work/dir/", 0o755).unwrap(), d);
        // A file in the way is an error, not a replacement.
        let e = ensure_dir_in_root(&t.root, "/etc/passwd/x", 0o755).unwrap_err();
        assert_eq!(e.kind(), coracle_core::ErrorKind::InvalidArgument, "{e}");
        let e = ensure_dir_in_root(&t.root, "/etc/passwd", 0o755).unwrap_err();
        assert_eq!(e.kind(), coracle_core::ErrorKind::InvalidArgument, "{e}");
    }

    #[test]
    fn dangling_symlinks_are_created_inside() {
        let t = setup();
        // /etc/hosts -> /run/hosts (missing), as some images ship it.
        symlink("/run/hosts", t.root.join("etc/hosts")).unwrap();
        symlink("../outside-rel/resolv.conf", t.root.join("etc/resolv.conf")).unwrap();
        let h = ensure_file_in_root(&t.root, "/etc/hosts", 0o644).unwrap();
        assert_eq!(h, t.root.join("run/hosts"));
        assert!(h.is_file());
        assert_eq!(
            fs::metadata(&h).unwrap().permissions().mode() & 0o777,
            0o644
        );
        let r = ensure_file_in_root(&t.root, "/etc/resolv.conf", 0o644).unwrap();
        assert_eq!(r, t.root.join("outside-rel/resolv.conf"));
        // An existing file is returned as is.
        let p = ensure_file_in_root(&t.root, "/etc/passwd", 0o600).unwrap();
        assert_eq!(fs::read(p).unwrap(), b"in");
        // Directory where a file is wanted.
        assert!(ensure_file_in_root(&t.root, "/etc", 0o644).is_err());
        // A dangling link to the host's absolute path is created inside.
        symlink(t.outside.join("new"), t.root.join("etc/new")).unwrap();
        let n = ensure_file_in_root(&t.root, "/etc/new", 0o644).unwrap();
        assert_inside(&t, &n);
        assert!(!t.outside.join("new").exists());
    }

    #[test]
    fn symlink_loops_fail() {
        let t = setup();
        symlink("b", t.root.join("a")).unwrap();
        symlink("a", t.root.join("b")).unwrap();
        assert!(resolve_in_root(&t.root, "/a").is_err());
        assert!(ensure_dir_in_root(&t.root, "/a/x", 0o755).is_err());
    }
}
