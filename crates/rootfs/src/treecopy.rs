//! A safe recursive tree copy: never follows a symlink (every entry is opened or
//! created relative to its parent's fd with `O_NOFOLLOW` / `*at` calls), preserves
//! owners, modes (setuid/setgid/sticky), times, xattrs, symlinks, hard links (within
//! one copy), devices, fifos and sockets. Used by the copy fallback of the snapshotter
//! (layers applied bottom-up, overlay whiteouts honoured) and by volume copy-up.
//!
//! Depth is bounded by the fd limit: each level of recursion holds two directory fds.

use crate::fsutil::{clear_dir, remove_tree_at};
use rustix::fs::{
    self as rfs, AtFlags, FileType, Gid, Mode, OFlags, ResolveFlags, Stat, Timespec, Timestamps,
    Uid, XattrFlags,
};
use rustix::io::Errno;
use std::collections::HashMap;
use std::ffi::{CStr, CString, OsStr};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// How to copy.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct CopyOptions {
    /// The source is an overlay lower dir: a 0:0 character device removes the entry
    /// from the destination, an opaque directory (`trusted.overlay.opaque=y` or
    /// `user.overlay.opaque=y`) replaces the destination directory's contents, and the
    /// overlay xattrs themselves are not copied.
    pub whiteouts: bool,
    /// Unprivileged: failures to chown, to make devices and to set `trusted.*` xattrs
    /// are skipped.
    pub rootless: bool,
}

struct Copier {
    opts: CopyOptions,
    /// Hard links: (dev, ino) of a source file with nlink > 1 -> its copy's path
    /// relative to the destination root.
    links: HashMap<(u64, u64), Vec<u8>>,
    dst_root: OwnedFd,
}

fn open_dir(path: &Path) -> io::Result<OwnedFd> {
    Ok(rfs::open(
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

fn ctx(e: impl Into<io::Error>, what: &str, rel: &[u8]) -> io::Error {
    let e: io::Error = e.into();
    io::Error::new(
        e.kind(),
        format!("{what} {:?}: {e}", String::from_utf8_lossy(rel)),
    )
}

/// Copies the contents of directory `src` into directory `dst` (both must exist),
/// merging with what `dst` holds: a source directory merges into an existing destination
/// directory, any other source entry replaces the destination entry. `dst` itself takes
/// `src`'s owner, mode, xattrs and times.
pub(crate) fn copy_tree(src: &Path, dst: &Path, opts: CopyOptions) -> io::Result<()> {
    let s = open_dir(src).map_err(|e| ctx(e, "open source", src.as_os_str().as_bytes()))?;
    let d = open_dir(dst).map_err(|e| ctx(e, "open destination", dst.as_os_str().as_bytes()))?;
    let mut c = Copier {
        opts,
        links: HashMap::new(),
        dst_root: rfs::openat(
            &d,
            c".",
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?,
    };
    let st = rfs::fstat(&s)?;
    let mut rel = Vec::new();
    if opts.whiteouts && is_opaque(&s) {
        clear_dir(d.as_fd(), |_| false)?;
    }
    c.copy_children(s.as_fd(), d.as_fd(), &mut rel)?;
    c.set_meta(Node::Fd(s.as_fd()), Node::Fd(d.as_fd()), &st, &rel)
}

/// Where metadata is read or written: an open file, or a name in an open directory
/// (never followed).
#[derive(Clone, Copy)]
enum Node<'a> {
    Fd(BorrowedFd<'a>),
    At(BorrowedFd<'a>, &'a CStr),
}

impl Node<'_> {
    fn proc_path(&self) -> CString {
        match self {
            Node::Fd(fd) => CString::new(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap(),
            Node::At(dir, name) => {
                let mut p = format!("/proc/self/fd/{}/", dir.as_raw_fd()).into_bytes();
                p.extend_from_slice(name.to_bytes());
                CString::new(p).unwrap()
            }
        }
    }
}

fn is_opaque(dir: &OwnedFd) -> bool {
    for name in [c"trusted.overlay.opaque", c"user.overlay.opaque"] {
        let mut buf = [0u8; 4];
        if let Ok(n) = rfs::fgetxattr(dir, name, &mut buf) {
            if buf[..n] == *b"y" {
                return true;
            }
        }
    }
    false
}

fn is_overlay_xattr(name: &[u8]) -> bool {
    name.starts_with(b"trusted.overlay.") || name.starts_with(b"user.overlay.")
}

fn list_xattrs(node: Node<'_>) -> io::Result<Vec<(CString, Vec<u8>)>> {
    let list = match node {
        Node::Fd(fd) => read_growing(|buf| rfs::flistxattr(fd, buf)),
        Node::At(..) => {
            let p = node.proc_path();
            read_growing(|buf| rfs::llistxattr(&*p, buf))
        }
    };
    let list = match list {
        Ok(l) => l,
        Err(Errno::NOTSUP) => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let mut out = Vec::new();
    for name in list.split(|&b| b == 0).filter(|n| !n.is_empty()) {
        let cname = CString::new(name).unwrap();
        let value = match node {
            Node::Fd(fd) => read_growing(|buf| rfs::fgetxattr(fd, &*cname, buf)),
            Node::At(..) => {
                let p = node.proc_path();
                read_growing(|buf| rfs::lgetxattr(&*p, &*cname, buf))
            }
        };
        match value {
            Ok(v) => out.push((cname, v)),
            Err(Errno::NODATA) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(out)
}

/// Calls a `*xattr` function with a buffer that grows until the answer fits.
fn read_growing(mut f: impl FnMut(&mut [u8]) -> Result<usize, Errno>) -> Result<Vec<u8>, Errno> {
    let mut size = 256;
    loop {
        let mut buf = vec![0u8; size];
        match f(&mut buf) {
            Ok(n) => {
                buf.truncate(n);
                return Ok(buf);
            }
            Err(Errno::RANGE) if size < (1 << 20) => size *= 4,
            Err(e) => return Err(e),
        }
    }
}

impl Copier {
    fn copy_children(
        &mut self,
        src: BorrowedFd<'_>,
        dst: BorrowedFd<'_>,
        rel: &mut Vec<u8>,
    ) -> io::Result<()> {
        let listing = rfs::openat(
            src,
            c".",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let mut names = Vec::new();
        for ent in rfs::Dir::new(listing)? {
            let ent = ent?;
            let n = ent.file_name();
            if n != c"." && n != c".." {
                names.push(n.to_owned());
            }
        }
        names.sort();
        for name in names {
            let len = rel.len();
            if !rel.is_empty() {
                rel.push(b'/');
            }
            rel.extend_from_slice(name.to_bytes());
            let r = self.copy_entry(src, dst, &name, rel);
            rel.truncate(len);
            r?;
        }
        Ok(())
    }

    fn copy_entry(
        &mut self,
        src: BorrowedFd<'_>,
        dst: BorrowedFd<'_>,
        name: &CStr,
        rel: &mut Vec<u8>,
    ) -> io::Result<()> {
        let st = rfs::statat(src, name, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| ctx(e, "lstat source", rel))?;
        let ty = FileType::from_raw_mode(st.st_mode);
        let existing = match rfs::statat(dst, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(d) => Some(FileType::from_raw_mode(d.st_mode)),
            Err(Errno::NOENT) => None,
            Err(e) => return Err(ctx(e, "lstat destination", rel)),
        };
        if self.opts.whiteouts && ty == FileType::CharacterDevice && st.st_rdev == 0 {
            return remove_tree_at(dst, OsStr::from_bytes(name.to_bytes()))
                .map_err(|e| ctx(e, "remove whited-out", rel));
        }
        if ty == FileType::Directory {
            let sfd = rfs::openat(
                src,
                name,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| ctx(e, "open source dir", rel))?;
            let merge = existing == Some(FileType::Directory);
            if !merge {
                if existing.is_some() {
                    remove_tree_at(dst, OsStr::from_bytes(name.to_bytes()))
                        .map_err(|e| ctx(e, "replace", rel))?;
                }
                rfs::mkdirat(dst, name, Mode::from_raw_mode(0o700))
                    .map_err(|e| ctx(e, "mkdirat", rel))?;
            }
            let dfd = rfs::openat(
                dst,
                name,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| ctx(e, "open destination dir", rel))?;
            if merge && self.opts.whiteouts && is_opaque(&sfd) {
                clear_dir(dfd.as_fd(), |_| false).map_err(|e| ctx(e, "clear opaque dir", rel))?;
            }
            self.copy_children(sfd.as_fd(), dfd.as_fd(), rel)?;
            return self.set_meta(Node::Fd(sfd.as_fd()), Node::Fd(dfd.as_fd()), &st, rel);
        }

        if existing.is_some() {
            remove_tree_at(dst, OsStr::from_bytes(name.to_bytes()))
                .map_err(|e| ctx(e, "replace", rel))?;
        }
        let key = (st.st_dev, st.st_ino);
        if st.st_nlink > 1 {
            if let Some(first) = self.links.get(&key) {
                let (parent, base) = match first.iter().rposition(|&b| b == b'/') {
                    Some(i) => (&first[..i], &first[i + 1..]),
                    None => (&b"."[..], &first[..]),
                };
                let pfd = rfs::openat2(
                    &self.dst_root,
                    OsStr::from_bytes(parent),
                    OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                    Mode::empty(),
                    ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_XDEV,
                );
                let linked = pfd.and_then(|pfd| {
                    rfs::linkat(&pfd, OsStr::from_bytes(base), dst, name, AtFlags::empty())
                });
                match linked {
                    Ok(()) => return Ok(()),
                    // The first copy is gone (whited out later): copy this one afresh.
                    Err(Errno::NOENT) => {}
                    Err(e) => return Err(ctx(e, "linkat", rel)),
                }
            }
        }

        match ty {
            FileType::RegularFile => {
                let sfd = rfs::openat(
                    src,
                    name,
                    OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| ctx(e, "open source file", rel))?;
                let dfd = rfs::openat(
                    dst,
                    name,
                    OFlags::WRONLY
                        | OFlags::CREATE
                        | OFlags::EXCL
                        | OFlags::NOFOLLOW
                        | OFlags::CLOEXEC,
                    Mode::from_raw_mode(0o600),
                )
                .map_err(|e| ctx(e, "create file", rel))?;
                let mut sf = File::from(sfd);
                let mut df = File::from(dfd);
                io::copy(&mut sf, &mut df).map_err(|e| ctx(e, "copy content of", rel))?;
                self.set_meta(Node::Fd(sf.as_fd()), Node::Fd(df.as_fd()), &st, rel)?;
            }
            FileType::Symlink => {
                let target = rfs::readlinkat(src, name, Vec::new())
                    .map_err(|e| ctx(e, "readlinkat", rel))?;
                rfs::symlinkat(&*target, dst, name).map_err(|e| ctx(e, "symlinkat", rel))?;
                self.set_meta(Node::At(src, name), Node::At(dst, name), &st, rel)?;
            }
            FileType::CharacterDevice
            | FileType::BlockDevice
            | FileType::Fifo
            | FileType::Socket => {
                match rfs::mknodat(
                    dst,
                    name,
                    ty,
                    Mode::from_raw_mode(st.st_mode & 0o7777),
                    st.st_rdev,
                ) {
                    Ok(()) => {}
                    Err(Errno::PERM | Errno::ACCESS)
                        if self.opts.rootless
                            && matches!(ty, FileType::CharacterDevice | FileType::BlockDevice) =>
                    {
                        return Ok(());
                    }
                    Err(e) => return Err(ctx(e, "mknodat", rel)),
                }
                self.set_meta(Node::At(src, name), Node::At(dst, name), &st, rel)?;
            }
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    format!("unknown file type at {:?}", String::from_utf8_lossy(rel)),
                ))
            }
        }
        if st.st_nlink > 1 {
            self.links.insert(key, rel.clone());
        }
        Ok(())
    }

    /// Owner, then mode (chown clears setuid), then xattrs (chown clears
    /// security.capability), then times.
    fn set_meta(&self, src: Node<'_>, dst: Node<'_>, st: &Stat, rel: &[u8]) -> io::Result<()> {
        let uid = Some(Uid::from_raw(st.st_uid));
        let gid = Some(Gid::from_raw(st.st_gid));
        let chown = match dst {
            Node::Fd(fd) => rfs::fchown(fd, uid, gid),
            Node::At(dir, name) => rfs::chownat(dir, name, uid, gid, AtFlags::SYMLINK_NOFOLLOW),
        };
        match chown {
            Ok(()) => {}
            Err(Errno::PERM | Errno::INVAL) if self.opts.rootless => {}
            Err(e) => return Err(ctx(e, "chown", rel)),
        }
        let is_link = FileType::from_raw_mode(st.st_mode) == FileType::Symlink;
        if !is_link {
            let mode = Mode::from_raw_mode(st.st_mode & 0o7777);
            match dst {
                Node::Fd(fd) => rfs::fchmod(fd, mode),
                Node::At(dir, name) => rfs::chmodat(dir, name, mode, AtFlags::empty()),
            }
            .map_err(|e| ctx(e, "chmod", rel))?;
        }
        for (name, value) in list_xattrs(src).map_err(|e| ctx(e, "list xattrs of", rel))? {
            if self.opts.whiteouts && is_overlay_xattr(name.to_bytes()) {
                continue;
            }
            let r = match dst {
                Node::Fd(fd) => rfs::fsetxattr(fd, &*name, &value, XattrFlags::empty()),
                Node::At(..) => {
                    let p = dst.proc_path();
                    rfs::lsetxattr(&*p, &*name, &value, XattrFlags::empty())
                }
            };
            match r {
                Ok(()) => {}
                Err(Errno::NOTSUP) => {}
                Err(Errno::PERM) if self.opts.rootless => {}
                Err(e) => {
                    return Err(ctx(
                        e,
                        &format!("set xattr {} on", name.to_string_lossy()),
                        rel,
                    ))
                }
            }
        }
        let ts = |s: i64, ns: i64| Timespec {
            tv_sec: s,
            tv_nsec: ns as _,
        };
        // stat field types differ between architectures.
        #[allow(clippy::unnecessary_cast)]
        let times = Timestamps {
            last_access: ts(st.st_atime as i64, st.st_atime_nsec as i64),
            last_modification: ts(st.st_mtime as i64, st.st_mtime_nsec as i64),
        };
        match dst {
            Node::Fd(fd) => rfs::futimens(fd, &times),
            Node::At(dir, name) => rfs::utimensat(dir, name, &times, AtFlags::SYMLINK_NOFOLLOW),
        }
        .map_err(|e| ctx(e, "set times of", rel))
    }
}

/// Whether directory `path` has no entries (a missing directory counts as empty).
pub(crate) fn dir_is_empty(path: &Path) -> io::Result<bool> {
    match std::fs::read_dir(path) {
        Ok(mut it) => Ok(it.next().is_none()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(e),
    }
}
