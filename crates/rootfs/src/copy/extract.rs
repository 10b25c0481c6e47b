//! Unpacking a tar stream into a directory of a [`Tree`], as docker's `archive.Untar`
//! does for `cp`: parents created as needed, an existing file replaced, an existing
//! directory merged into, a directory never replaced by a file or the reverse (docker's
//! `NoOverwriteDirNonDir`), entries outside the extraction directory refused.
//!
//! Each entry's parent is resolved inside the tree (`RESOLVE_IN_ROOT`) and the entry is
//! created relative to it without following it. Metadata goes through descriptors
//! opened `O_NOFOLLOW` (or `*at` calls with `AT_SYMLINK_NOFOLLOW`): a symlink swapped in
//! by a running container is never followed by a chmod, chown or utimes.

use super::{io_err, CopyError, Tree};
use crate::fsutil::remove_tree_at;
use rustix::fs::{
    self as rfs, AtFlags, FileType, Gid, Mode, OFlags, Timespec, Timestamps, Uid, XattrFlags,
};
use rustix::io::Errno;
use std::ffi::{CString, OsStr};
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::rc::Rc;
use tar::EntryType;

/// Who owns what is extracted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// The archive's uid/gid (`cp -a`).
    Archive,
    /// Everything owned by these ids (docker: root, for copies into a container).
    Fixed { uid: u32, gid: u32 },
    /// Left to whoever runs the copy (docker, for copies to the host).
    Caller,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtractOptions {
    pub owner: Owner,
    /// Refuse to replace a directory with a non-directory or the reverse.
    pub no_overwrite_dir_non_dir: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExtractStats {
    pub content_bytes: u64,
    pub entries: u64,
}

struct Meta {
    uid: u32,
    gid: u32,
    mode: u32,
    mtime: Timespec,
    atime: Option<Timespec>,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Meta {
    fn times(&self) -> Timestamps {
        Timestamps {
            last_access: self.atime.unwrap_or(self.mtime),
            last_modification: self.mtime,
        }
    }
}

struct Extractor<'t> {
    tree: &'t Tree,
    opts: ExtractOptions,
    /// The extraction directory as components (cleaned, not resolved).
    base: Vec<Vec<u8>>,
    shown_base: String,
    /// The last parent opened, by path: entries of one directory come together.
    cache: Option<(Vec<u8>, Rc<OwnedFd>)>,
    dirs: Vec<(Vec<u8>, Timestamps)>,
    stats: ExtractStats,
}

impl Tree {
    /// Unpacks the tar stream `input` into the directory `dir` of this tree (followed
    /// through symlinks, as docker's extraction point).
    pub fn extract<R: Read>(
        &self,
        dir: &str,
        input: R,
        opts: &ExtractOptions,
    ) -> Result<ExtractStats, CopyError> {
        let cleaned = super::clean(dir);
        self.resolve_dir(&cleaned)?;
        let mut x = Extractor {
            tree: self,
            opts: *opts,
            base: components(cleaned.as_bytes()),
            shown_base: cleaned,
            cache: None,
            dirs: Vec::new(),
            stats: ExtractStats::default(),
        };
        let mut archive = tar::Archive::new(input);
        for entry in archive.entries().map_err(CopyError::Read)? {
            let mut entry = entry.map_err(CopyError::Read)?;
            x.entry(&mut entry)?;
        }
        // Whatever follows the end-of-archive blocks is read too, so that a writer
        // feeding a pipe is never left blocked.
        io::copy(&mut archive.into_inner(), &mut io::sink()).map_err(CopyError::Read)?;
        for (path, times) in x.dirs.iter().rev() {
            match x.tree.open_at(path, OFlags::RDONLY | OFlags::DIRECTORY) {
                Ok(fd) => rfs::futimens(&fd, times).map_err(io_err("utimes", &show(path)))?,
                Err(Errno::NOENT) => {}
                Err(e) => return Err(io_err("open", &show(path))(e)),
            }
        }
        Ok(x.stats)
    }
}

fn components(p: &[u8]) -> Vec<Vec<u8>> {
    p.split(|&b| b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
        .map(<[u8]>::to_vec)
        .collect()
}

fn join(parts: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in parts {
        out.push(b'/');
        out.extend_from_slice(p);
    }
    if out.is_empty() {
        out.push(b'/');
    }
    out
}

fn show(p: &[u8]) -> String {
    String::from_utf8_lossy(p).into_owned()
}

/// The entry's path relative to the extraction directory, `..` resolved; None if it
/// climbs out of it.
fn relative(name: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    for c in name.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                out.pop()?;
            }
            c => out.push(c.to_vec()),
        }
    }
    Some(out)
}

fn timespec(secs: f64) -> Timespec {
    let s = secs.floor();
    Timespec {
        tv_sec: s as i64,
        tv_nsec: ((secs - s) * 1e9) as _,
    }
}

impl Extractor<'_> {
    fn full(&self, rel: &[Vec<u8>]) -> Vec<Vec<u8>> {
        let mut v = self.base.clone();
        v.extend_from_slice(rel);
        v
    }

    fn meta<R: Read>(&self, e: &mut tar::Entry<'_, R>, shown: &str) -> Result<Meta, CopyError> {
        let bad = |what: &str| CopyError::Invalid(format!("{shown}: bad {what} in archive header"));
        let h = e.header();
        let mut m = Meta {
            uid: h.uid().map_err(|_| bad("uid"))? as u32,
            gid: h.gid().map_err(|_| bad("gid"))? as u32,
            mode: h.mode().map_err(|_| bad("mode"))? & 0o7777,
            mtime: Timespec {
                tv_sec: h.mtime().map_err(|_| bad("mtime"))? as i64,
                tv_nsec: 0,
            },
            atime: None,
            xattrs: Vec::new(),
        };
        if let Some(pax) = e.pax_extensions().map_err(CopyError::Read)? {
            for ext in pax {
                let ext = ext.map_err(CopyError::Read)?;
                let value = || std::str::from_utf8(ext.value_bytes()).ok();
                match ext.key_bytes() {
                    b"uid" => {
                        m.uid = value()
                            .and_then(|v| v.parse().ok())
                            .ok_or_else(|| bad("uid"))?
                    }
                    b"gid" => {
                        m.gid = value()
                            .and_then(|v| v.parse().ok())
                            .ok_or_else(|| bad("gid"))?
                    }
                    b"mtime" => {
                        m.mtime = value()
                            .and_then(|v| v.parse().ok())
                            .map(timespec)
                            .ok_or_else(|| bad("mtime"))?
                    }
                    b"atime" => m.atime = value().and_then(|v| v.parse().ok()).map(timespec),
                    k if k.starts_with(b"SCHILY.xattr.") => m.xattrs.push((
                        k[b"SCHILY.xattr.".len()..].to_vec(),
                        ext.value_bytes().to_vec(),
                    )),
                    _ => {}
                }
            }
        }
        Ok(m)
    }

    /// The parent directory `comps` (inside the tree), created 0755 where missing.
    fn parent(&mut self, comps: &[Vec<u8>]) -> Result<Rc<OwnedFd>, CopyError> {
        let path = join(comps);
        if let Some((p, fd)) = &self.cache {
            if *p == path {
                return Ok(fd.clone());
            }
        }
        let flags = OFlags::PATH | OFlags::DIRECTORY;
        let fd = match self.tree.open_at(&path, flags) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => {
                for i in 0..comps.len() {
                    let sub = join(&comps[..=i]);
                    match self.tree.open_at(&sub, flags) {
                        Ok(_) => continue,
                        Err(Errno::NOENT) => {}
                        Err(e) => return Err(io_err("open", &show(&sub))(e)),
                    }
                    let up = self
                        .tree
                        .open_at(&join(&comps[..i]), flags)
                        .map_err(io_err("open", &show(&sub)))?;
                    match rfs::mkdirat(
                        &up,
                        OsStr::from_bytes(&comps[i]),
                        Mode::from_raw_mode(0o755),
                    ) {
                        Ok(()) | Err(Errno::EXIST) => {}
                        Err(e) => return Err(io_err("mkdir", &show(&sub))(e)),
                    }
                }
                self.tree
                    .open_at(&path, flags)
                    .map_err(io_err("open", &show(&path)))?
            }
            Err(e) => return Err(io_err("open", &show(&path))(e)),
        };
        let fd = Rc::new(fd);
        self.cache = Some((path, fd.clone()));
        Ok(fd)
    }

    fn entry<R: Read>(&mut self, e: &mut tar::Entry<'_, R>) -> Result<(), CopyError> {
        let raw = e.path_bytes().into_owned();
        let ty = e.header().entry_type();
        let is_dir = ty == EntryType::Directory;
        let rel = relative(&raw).ok_or_else(|| {
            CopyError::Invalid(format!(
                "{:?} is outside of {:?}",
                show(&raw),
                self.shown_base
            ))
        })?;
        let Some((name, parent_rel)) = rel.split_last() else {
            // The extraction directory itself: docker leaves it as it is.
            return if is_dir {
                Ok(())
            } else {
                Err(CopyError::Invalid(format!(
                    "cannot overwrite directory {:?} with non-directory {:?}",
                    self.shown_base, self.shown_base
                )))
            };
        };
        let full = self.full(&rel);
        let path = join(&full);
        let shown = show(&path);
        let parent = self.parent(&self.full(parent_rel))?;
        let cname = CString::new(name.clone())
            .map_err(|_| CopyError::Invalid(format!("{shown}: NUL in name")))?;
        let meta = self.meta(e, &shown)?;

        let existing = match rfs::statat(&*parent, &*cname, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => Some(FileType::from_raw_mode(st.st_mode)),
            Err(Errno::NOENT) => None,
            Err(e) => return Err(io_err("lstat", &shown)(e)),
        };
        if let Some(old) = existing {
            let old_dir = old == FileType::Directory;
            if self.opts.no_overwrite_dir_non_dir && old_dir != is_dir {
                return Err(CopyError::Invalid(if old_dir {
                    format!(
                        "cannot overwrite directory {shown:?} with non-directory {:?}",
                        self.shown_base
                    )
                } else {
                    format!(
                        "cannot overwrite non-directory {shown:?} with directory {:?}",
                        self.shown_base
                    )
                }));
            }
            if !(old_dir && is_dir) {
                remove_tree_at(parent.as_fd(), OsStr::from_bytes(name)).map_err(|e| {
                    CopyError::Io {
                        op: "remove",
                        path: shown.clone(),
                        source: e,
                    }
                })?;
                if old_dir {
                    self.cache = None;
                }
            }
        }

        self.stats.entries += 1;
        match ty {
            EntryType::Directory => {
                if existing != Some(FileType::Directory) {
                    rfs::mkdirat(&*parent, &*cname, Mode::from_raw_mode(0o700))
                        .map_err(io_err("mkdir", &shown))?;
                }
                let fd = rfs::openat(
                    &*parent,
                    &*cname,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(io_err("open", &shown))?;
                self.apply_fd(fd.as_fd(), &meta, &shown)?;
                self.dirs.push((path, meta.times()));
            }
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                let fd = rfs::openat(
                    &*parent,
                    &*cname,
                    OFlags::WRONLY
                        | OFlags::CREATE
                        | OFlags::EXCL
                        | OFlags::NOFOLLOW
                        | OFlags::CLOEXEC,
                    Mode::from_raw_mode(0o600),
                )
                .map_err(io_err("create", &shown))?;
                let mut file = File::from(fd);
                let n = io::copy(e, &mut file).map_err(|err| match err.kind() {
                    io::ErrorKind::UnexpectedEof | io::ErrorKind::InvalidData => {
                        CopyError::Read(err)
                    }
                    _ => CopyError::Io {
                        op: "write",
                        path: shown.clone(),
                        source: err,
                    },
                })?;
                self.stats.content_bytes += n;
                self.apply_fd(file.as_fd(), &meta, &shown)?;
                rfs::futimens(&file, &meta.times()).map_err(io_err("utimes", &shown))?;
            }
            EntryType::Symlink => {
                let target = e
                    .link_name_bytes()
                    .ok_or_else(|| {
                        CopyError::Invalid(format!("{shown}: symlink without a target"))
                    })?
                    .into_owned();
                rfs::symlinkat(OsStr::from_bytes(&target), &*parent, &*cname)
                    .map_err(io_err("symlink", &shown))?;
                if let Some((uid, gid)) = self.ids(&meta) {
                    rfs::chownat(
                        &*parent,
                        &*cname,
                        Some(uid),
                        Some(gid),
                        AtFlags::SYMLINK_NOFOLLOW,
                    )
                    .map_err(io_err("lchown", &shown))?;
                }
                rfs::utimensat(&*parent, &*cname, &meta.times(), AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(io_err("utimes", &shown))?;
            }
            EntryType::Link => {
                let target = e
                    .link_name_bytes()
                    .ok_or_else(|| {
                        CopyError::Invalid(format!("{shown}: hard link without a target"))
                    })?
                    .into_owned();
                let trel = relative(&target).filter(|t| !t.is_empty()).ok_or_else(|| {
                    CopyError::Invalid(format!(
                        "invalid hardlink {:?} -> {:?}",
                        shown,
                        show(&target)
                    ))
                })?;
                let (tname, tparent) = trel.split_last().expect("not empty");
                let tdir = self
                    .tree
                    .open_at(&join(&self.full(tparent)), OFlags::PATH | OFlags::DIRECTORY)
                    .map_err(io_err("open", &show(&target)))?;
                rfs::linkat(
                    &tdir,
                    OsStr::from_bytes(tname),
                    &*parent,
                    &*cname,
                    AtFlags::empty(),
                )
                .map_err(io_err("link", &shown))?;
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                let (ft, dev) = match ty {
                    EntryType::Fifo => (FileType::Fifo, 0),
                    _ => {
                        let h = e.header();
                        let major = h.device_major().ok().flatten().unwrap_or(0);
                        let minor = h.device_minor().ok().flatten().unwrap_or(0);
                        let ft = if ty == EntryType::Char {
                            FileType::CharacterDevice
                        } else {
                            FileType::BlockDevice
                        };
                        (ft, rfs::makedev(major, minor))
                    }
                };
                rfs::mknodat(&*parent, &*cname, ft, Mode::from_raw_mode(0o600), dev)
                    .map_err(io_err("mknod", &shown))?;
                let fd = rfs::openat(
                    &*parent,
                    &*cname,
                    OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(io_err("open", &shown))?;
                if let Some((uid, gid)) = self.ids(&meta) {
                    rfs::chownat(&fd, c"", Some(uid), Some(gid), AtFlags::EMPTY_PATH)
                        .map_err(io_err("chown", &shown))?;
                }
                // An O_PATH descriptor takes no fchmod; its /proc magic link names
                // exactly that inode, not whatever is at the path now.
                rfs::chmod(
                    format!("/proc/self/fd/{}", fd.as_raw_fd()).as_str(),
                    Mode::from_raw_mode(meta.mode),
                )
                .map_err(io_err("chmod", &shown))?;
                rfs::utimensat(&*parent, &*cname, &meta.times(), AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(io_err("utimes", &shown))?;
            }
            EntryType::XGlobalHeader
            | EntryType::XHeader
            | EntryType::GNULongName
            | EntryType::GNULongLink => {
                self.stats.entries -= 1;
            }
            other => {
                return Err(CopyError::Invalid(format!(
                    "{shown}: unhandled tar header type {:?}",
                    other.as_byte() as char
                )))
            }
        }
        Ok(())
    }

    fn ids(&self, meta: &Meta) -> Option<(Uid, Gid)> {
        let (uid, gid) = match self.opts.owner {
            Owner::Archive => (meta.uid, meta.gid),
            Owner::Fixed { uid, gid } => (uid, gid),
            Owner::Caller => return None,
        };
        Some((Uid::from_raw(uid), Gid::from_raw(gid)))
    }

    /// Owner, then mode (a chown clears set-id bits), then xattrs (a chown clears
    /// `security.capability`), on an open file or directory.
    fn apply_fd(&self, fd: BorrowedFd<'_>, meta: &Meta, shown: &str) -> Result<(), CopyError> {
        if let Some((uid, gid)) = self.ids(meta) {
            rfs::fchown(fd, Some(uid), Some(gid)).map_err(io_err("chown", shown))?;
        }
        rfs::fchmod(fd, Mode::from_raw_mode(meta.mode)).map_err(io_err("chmod", shown))?;
        for (name, value) in &meta.xattrs {
            match rfs::fsetxattr(fd, OsStr::from_bytes(name), value, XattrFlags::empty()) {
                // As docker: attributes the filesystem or our privileges do not
                // allow are dropped, not fatal.
                Ok(()) | Err(Errno::NOTSUP | Errno::PERM) => {}
                Err(e) => return Err(io_err("setxattr", shown)(e)),
            }
        }
        Ok(())
    }
}
