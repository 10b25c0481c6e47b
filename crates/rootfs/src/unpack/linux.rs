//! The Linux unpacker: every path is resolved inside the destination with
//! `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)` to open the entry's parent, and
//! the final component is created with `*at` syscalls relative to that parent without
//! following it.

use super::{UnpackOptions, UnpackStats, WhiteoutMode};
use crate::error::UnpackError;
use crate::fsutil::{clear_dir, remove_tree_at};
use coracle_core::Digest;
use rustix::fs::{
    self as rfs, AtFlags, FileType, Gid, Mode, OFlags, ResolveFlags, Timespec, Timestamps, Uid,
    XattrFlags,
};
use rustix::io::Errno;
use sha2::{Digest as _, Sha256};
use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::ffi::{CStr, OsStr};
use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::rc::Rc;

/// Read and copy granularity for file content.
const BUF_SIZE: usize = 256 * 1024;
const WHITEOUT_PREFIX: &[u8] = b".wh.";
const OPAQUE_MARKER: &[u8] = b".wh..wh..opq";

/// Hashes every byte read through it: the diff ID is the digest of the whole stream.
/// Also counts them, and fails once they exceed `budget` (setting `over`, so that
/// the error reported is the limit, not whatever the tar reader made of it).
struct HashReader<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
    budget: Option<u64>,
    over: Rc<Cell<bool>>,
}

impl<R: Read> Read for HashReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        if self.budget.is_some_and(|b| self.count > b) {
            self.over.set(true);
            return Err(io::Error::other("layer exceeds its unpack limit"));
        }
        Ok(n)
    }
}

pub(super) fn unpack_layer<R: Read>(
    tar_stream: R,
    dest: &Path,
    opts: &UnpackOptions,
) -> Result<UnpackStats, UnpackError> {
    let root = rfs::open(
        dest,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| UnpackError::Dest {
        layer: opts.layer.clone(),
        dest: dest.to_path_buf(),
        source: e.into(),
    })?;
    let mut u = Unpacker::new(opts, root);
    let hashing = HashReader {
        inner: tar_stream,
        hasher: Sha256::new(),
        count: 0,
        budget: u.budget.map(|(b, _)| b),
        over: u.over.clone(),
    };
    let mut archive = tar::Archive::new(BufReader::with_capacity(BUF_SIZE, hashing));
    {
        let entries = archive.entries().map_err(|e| u.read_err(e))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| u.read_err(e))?;
            u.entry(&mut entry)?;
        }
    }
    // The archive ends at its two zero blocks; the diff ID covers the padding after it.
    let mut rest = archive.into_inner();
    io::copy(&mut rest, &mut io::sink()).map_err(|e| u.read_err(e))?;
    u.finish_dirs()?;
    let hasher = rest.into_inner().hasher;
    Ok(UnpackStats {
        diff_id: Digest::from_sha256_bytes(hasher.finalize().into()),
        size: u.size.get(),
        entries: u.entries,
    })
}

/// Ownership, mode, times and xattrs of the current entry (header overridden by PAX).
struct Meta {
    uid: u64,
    gid: u64,
    mode: u32,
    mtime: (i64, i64),
    atime: Option<(i64, i64)>,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Meta {
    fn times(&self) -> Timestamps {
        let ts = |(s, ns): (i64, i64)| Timespec {
            tv_sec: s,
            tv_nsec: ns as _,
        };
        Timestamps {
            last_access: ts(self.atime.unwrap_or(self.mtime)),
            last_modification: ts(self.mtime),
        }
    }
}

/// A directory whose times (and, rootless, restrictive mode) are set once the whole
/// layer is written: writing children changes a directory's mtime.
struct DeferredDir {
    path: Vec<u8>,
    times: Timestamps,
    mode: Option<u32>,
}

/// Where metadata goes: an open file, or a name in an open parent (never followed).
#[derive(Clone, Copy)]
enum Target<'a> {
    Fd(BorrowedFd<'a>),
    At(BorrowedFd<'a>, &'a OsStr),
}

struct Unpacker<'o> {
    opts: &'o UnpackOptions,
    root: Rc<OwnedFd>,
    /// The last parent directory opened, by its cleaned path: consecutive entries of
    /// one directory share it. Dropped whenever something at or above it is removed.
    cache: RefCell<(Vec<u8>, Option<Rc<OwnedFd>>)>,
    /// Apply mode: every path this layer has an entry for (opaque dirs keep those).
    created: RefCell<HashSet<Vec<u8>>>,
    dirs: RefCell<Vec<DeferredDir>>,
    buf: RefCell<Vec<u8>>,
    /// The current entry's path as the archive spells it (for errors).
    entry_name: Vec<u8>,
    /// The current entry's path cleaned: relative, no `.`, `..` or empty components.
    rel: Vec<u8>,
    meta: Meta,
    size: Cell<u64>,
    entries: u64,
    /// The most uncompressed bytes this layer may have, and which limit set it.
    budget: Option<(u64, super::LimitKind)>,
    /// Set by the stream's reader once the budget is exceeded.
    over: Rc<Cell<bool>>,
}

/// Cleans an archive path into `out` (components joined by `/`, leading `/` dropped,
/// `.` skipped, `..` popping). Fails when `..` would climb above the root.
fn clean(raw: &[u8], out: &mut Vec<u8>) -> Result<(), ()> {
    out.clear();
    for comp in raw.split(|&b| b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => {
                if out.is_empty() {
                    return Err(());
                }
                let cut = out.iter().rposition(|&b| b == b'/').unwrap_or(0);
                out.truncate(cut);
            }
            c => {
                if !out.is_empty() {
                    out.push(b'/');
                }
                out.extend_from_slice(c);
            }
        }
    }
    Ok(())
}

/// Where the final component of a cleaned path starts.
fn name_start(rel: &[u8]) -> usize {
    rel.iter().rposition(|&b| b == b'/').map_or(0, |i| i + 1)
}

/// `path` is `top` or beneath it.
fn is_under(path: &[u8], top: &[u8]) -> bool {
    top.is_empty()
        || (path.starts_with(top) && (path.len() == top.len() || path[top.len()] == b'/'))
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn os(b: &[u8]) -> &OsStr {
    OsStr::from_bytes(b)
}

/// Parses a PAX time (`1700000000.123456789`, possibly negative) into (sec, nsec).
fn parse_pax_time(v: &[u8]) -> Option<(i64, i64)> {
    let s = std::str::from_utf8(v).ok()?;
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let sec: i64 = secs.parse().ok()?;
    let mut ns: i64 = 0;
    for (i, c) in frac.bytes().take(9).enumerate() {
        if !c.is_ascii_digit() {
            return None;
        }
        ns += i64::from(c - b'0') * 10i64.pow(8 - i as u32);
    }
    if sec < 0 && ns > 0 {
        // -1.5 means 1.5 s before the epoch: (-2 s, +0.5 s).
        Some((sec - 1, 1_000_000_000 - ns))
    } else {
        Some((sec, ns))
    }
}

fn parse_pax_u64(v: &[u8]) -> Option<u64> {
    std::str::from_utf8(v).ok()?.parse().ok()
}

/// Xattrs this engine manages itself: a layer must not smuggle in overlay metadata
/// (opaque markers, redirects, metacopy) that would change what the overlay shows.
fn reserved_xattr(name: &[u8]) -> bool {
    name.starts_with(b"trusted.overlay.") || name.starts_with(b"user.overlay.")
}

impl<'o> Unpacker<'o> {
    fn new(opts: &'o UnpackOptions, root: OwnedFd) -> Self {
        Unpacker {
            opts,
            root: Rc::new(root),
            cache: RefCell::new((Vec::new(), None)),
            created: RefCell::new(HashSet::new()),
            dirs: RefCell::new(Vec::new()),
            buf: RefCell::new(vec![0u8; BUF_SIZE]),
            entry_name: Vec::new(),
            rel: Vec::new(),
            meta: Meta {
                uid: 0,
                gid: 0,
                mode: 0,
                mtime: (0, 0),
                atime: None,
                xattrs: Vec::new(),
            },
            size: Cell::new(0),
            entries: 0,
            budget: opts.limits.budget(opts.compressed_size),
            over: Rc::new(Cell::new(false)),
        }
    }

    // ---- errors -------------------------------------------------------------------

    fn read_err(&self, source: io::Error) -> UnpackError {
        if let (true, Some((limit, kind))) = (self.over.get(), self.budget) {
            return UnpackError::TooLarge {
                layer: self.opts.layer.clone(),
                limit,
                kind,
                compressed: self.opts.compressed_size,
                limits: self.opts.limits,
            };
        }
        UnpackError::Read {
            layer: self.opts.layer.clone(),
            source,
        }
    }

    fn sys(&self, syscall: &'static str, path: &[u8], e: impl Into<io::Error>) -> UnpackError {
        UnpackError::Syscall {
            layer: self.opts.layer.clone(),
            entry: lossy(&self.entry_name),
            syscall,
            path: lossy(path),
            source: e.into(),
        }
    }

    fn invalid(&self, reason: impl Into<String>) -> UnpackError {
        UnpackError::InvalidEntry {
            layer: self.opts.layer.clone(),
            entry: lossy(&self.entry_name),
            reason: reason.into(),
        }
    }

    // ---- one entry ----------------------------------------------------------------

    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<(), UnpackError> {
        let ty = entry.header().entry_type();
        if ty.is_pax_global_extensions() {
            return Ok(());
        }
        self.entries += 1;
        self.entry_name.clear();
        self.entry_name.extend_from_slice(&entry.path_bytes());
        if ty.is_gnu_sparse() {
            // The tar crate would expand the holes into real zeros: a few bytes of
            // archive could declare terabytes.
            return Err(self.sparse(&self.entry_name, entry.size()));
        }
        self.read_meta(entry)?;
        if clean(&self.entry_name, &mut self.rel).is_err() {
            return Err(UnpackError::PathEscapes {
                layer: self.opts.layer.clone(),
                entry: lossy(&self.entry_name),
            });
        }
        // Old archives mark directories with a trailing slash on a regular entry.
        let is_dir = ty.is_dir()
            || (matches!(ty, tar::EntryType::Regular) && self.entry_name.ends_with(b"/"));
        if self.rel.is_empty() {
            // The root itself ("./"): docker leaves the destination's own metadata alone.
            return if is_dir {
                Ok(())
            } else {
                Err(self.invalid("a non-directory entry names the layer root"))
            };
        }
        let ns = name_start(&self.rel);
        let name = &self.rel[ns..];
        if let Some(target) = name.strip_prefix(WHITEOUT_PREFIX) {
            if name == OPAQUE_MARKER {
                return self.opaque(ns);
            }
            if target.starts_with(WHITEOUT_PREFIX) {
                return Ok(()); // other AUFS metadata (.wh..wh.plnk, .wh..wh.aufs)
            }
            if target.is_empty() || target == b"." || target == b".." {
                return Err(self.invalid("whiteout without a valid name"));
            }
            return self.whiteout(ns);
        }
        if self.opts.mode == WhiteoutMode::Apply {
            self.created.borrow_mut().insert(self.rel.clone());
        }
        use tar::EntryType as T;
        match ty {
            _ if is_dir => self.dir(ns),
            T::Regular | T::Continuous => self.file(entry, ns),
            T::Symlink => self.symlink(entry, ns),
            T::Link => self.hardlink(entry, ns),
            T::Char | T::Block | T::Fifo => self.node(entry, ty, ns),
            other => Err(self.invalid(format!(
                "unsupported tar entry type {:?} ({:?})",
                other,
                other.as_byte() as char
            ))),
        }
    }

    fn read_meta<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<(), UnpackError> {
        let h = entry.header();
        let bad = |what: &str, e: io::Error| self.invalid(format!("bad {what} in header: {e}"));
        let uid = h.uid().map_err(|e| bad("uid", e))?;
        let gid = h.gid().map_err(|e| bad("gid", e))?;
        let mode = h.mode().map_err(|e| bad("mode", e))? & 0o7777;
        let mtime = h.mtime().map_err(|e| bad("mtime", e))?;
        self.meta.uid = uid;
        self.meta.gid = gid;
        self.meta.mode = mode;
        self.meta.mtime = (i64::try_from(mtime).unwrap_or(i64::MAX), 0);
        self.meta.atime = None;
        self.meta.xattrs.clear();
        let exts = match entry.pax_extensions() {
            Ok(Some(exts)) => exts,
            Ok(None) => return Ok(()),
            Err(e) => return Err(self.read_err(e)),
        };
        let mut sparse: Option<(Vec<u8>, Option<u64>)> = None;
        for ext in exts {
            let ext = ext.map_err(|e| UnpackError::Read {
                layer: self.opts.layer.clone(),
                source: e,
            })?;
            let (k, v) = (ext.key_bytes(), ext.value_bytes());
            // PAX sparse formats 0.0, 0.1 and 1.0: the data holds a map of holes
            // that GNU tar (and Go's archive/tar) expand.
            if let Some(field) = k.strip_prefix(b"GNU.sparse.") {
                let s = sparse.get_or_insert_with(|| (self.entry_name.clone(), None));
                match field {
                    b"name" => s.0 = v.to_vec(),
                    b"realsize" | b"size" => s.1 = parse_pax_u64(v),
                    _ => {}
                }
                continue;
            }
            if let Some(name) = k.strip_prefix(b"SCHILY.xattr.") {
                self.meta.xattrs.push((name.to_vec(), v.to_vec()));
                continue;
            }
            match k {
                b"uid" => self.meta.uid = parse_pax_u64(v).unwrap_or(self.meta.uid),
                b"gid" => self.meta.gid = parse_pax_u64(v).unwrap_or(self.meta.gid),
                b"mtime" => self.meta.mtime = parse_pax_time(v).unwrap_or(self.meta.mtime),
                b"atime" => self.meta.atime = parse_pax_time(v).or(self.meta.atime),
                _ => {}
            }
        }
        match sparse {
            Some((name, size)) => Err(self.sparse(&name, size.unwrap_or(0))),
            None => Ok(()),
        }
    }

    fn sparse(&self, name: &[u8], declared: u64) -> UnpackError {
        UnpackError::Sparse {
            layer: self.opts.layer.clone(),
            entry: lossy(name),
            detail: if declared > 0 {
                format!(", declared {}", crate::error::human_size(declared))
            } else {
                String::new()
            },
        }
    }

    // ---- resolving parents inside the root ----------------------------------------

    /// `openat2(root, path, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`: symlinks met on
    /// the way are resolved as if the root were `/`, `..` stops at the root.
    fn open_in_root(&self, path: &[u8], flags: OFlags) -> Result<OwnedFd, Errno> {
        let mut tries = 0;
        loop {
            match rfs::openat2(
                &*self.root,
                os(path),
                flags | OFlags::CLOEXEC,
                Mode::empty(),
                ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
            ) {
                // A concurrent rename anywhere can make a `..` walk retry.
                Err(Errno::AGAIN) if tries < 64 => tries += 1,
                r => return r,
            }
        }
    }

    /// The parent directory of the current entry (`rel[..ns]`), created (0755, like
    /// docker) where missing when `create`; `None` when missing and not `create`.
    fn lookup_parent(&self, ns: usize, create: bool) -> Result<Option<Rc<OwnedFd>>, UnpackError> {
        if ns == 0 {
            return Ok(Some(self.root.clone()));
        }
        let ppath = &self.rel[..ns - 1];
        {
            let cache = self.cache.borrow();
            if let (path, Some(fd)) = &*cache {
                if path == ppath {
                    return Ok(Some(fd.clone()));
                }
            }
        }
        let fd = match self.open_in_root(ppath, OFlags::PATH | OFlags::DIRECTORY) {
            Ok(fd) => fd,
            Err(Errno::NOENT) if create => self.make_parents(ns - 1)?,
            Err(Errno::NOENT | Errno::NOTDIR) if !create => return Ok(None),
            Err(e) => return Err(self.sys("openat2", ppath, e)),
        };
        let fd = Rc::new(fd);
        let mut cache = self.cache.borrow_mut();
        cache.0.clear();
        cache.0.extend_from_slice(ppath);
        cache.1 = Some(fd.clone());
        Ok(Some(fd))
    }

    fn parent(&self, ns: usize) -> Result<Rc<OwnedFd>, UnpackError> {
        Ok(self.lookup_parent(ns, true)?.expect("created when missing"))
    }

    /// Creates the missing directories of `rel[..end]`, each one relative to its parent
    /// as resolved inside the root, and returns the last.
    fn make_parents(&self, end: usize) -> Result<OwnedFd, UnpackError> {
        let mut dir: Option<OwnedFd> = None;
        let mut start = 0;
        loop {
            let comp_end = self.rel[start..end]
                .iter()
                .position(|&b| b == b'/')
                .map_or(end, |i| start + i);
            let prefix = &self.rel[..comp_end];
            let flags = OFlags::PATH | OFlags::DIRECTORY;
            let fd = match self.open_in_root(prefix, flags) {
                Ok(fd) => fd,
                Err(Errno::NOENT) => {
                    let pfd = dir.as_ref().map_or(self.root.as_fd(), |d| d.as_fd());
                    let comp = os(&self.rel[start..comp_end]);
                    match rfs::mkdirat(pfd, comp, Mode::from_raw_mode(0o700)) {
                        Ok(()) => {
                            rfs::chmodat(pfd, comp, Mode::from_raw_mode(0o755), AtFlags::empty())
                                .map_err(|e| self.sys("fchmodat", prefix, e))?;
                            if self.opts.mode == WhiteoutMode::Apply {
                                self.created.borrow_mut().insert(prefix.to_vec());
                            }
                        }
                        // A dangling symlink: the openat2 below reports it.
                        Err(Errno::EXIST) => {}
                        Err(e) => return Err(self.sys("mkdirat", prefix, e)),
                    }
                    self.open_in_root(prefix, flags)
                        .map_err(|e| self.sys("openat2", prefix, e))?
                }
                Err(e) => return Err(self.sys("openat2", prefix, e)),
            };
            if comp_end == end {
                return Ok(fd);
            }
            dir = Some(fd);
            start = comp_end + 1;
        }
    }

    /// Forgets the cached parent if it is `path` or beneath it (it is being removed).
    fn invalidate_under(&self, path: &[u8]) {
        let mut cache = self.cache.borrow_mut();
        if cache.1.is_some() && is_under(&cache.0, path) {
            cache.1 = None;
        }
    }

    /// The current entry's final component exists in `p`: make way for the new entry
    /// as docker does. Returns true when both are directories (they merge).
    fn make_room(&self, p: BorrowedFd<'_>, ns: usize, want_dir: bool) -> Result<bool, UnpackError> {
        let name = os(&self.rel[ns..]);
        let st = match rfs::statat(p, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(Errno::NOENT) => return Ok(false),
            Err(e) => return Err(self.sys("fstatat", &self.rel, e)),
        };
        if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
            if want_dir {
                return Ok(true);
            }
            self.invalidate_under(&self.rel);
            remove_tree_at(p, name).map_err(|e| self.sys("remove directory tree", &self.rel, e))?;
        } else {
            match rfs::unlinkat(p, name, AtFlags::empty()) {
                Ok(()) | Err(Errno::NOENT) => {}
                Err(e) => return Err(self.sys("unlinkat", &self.rel, e)),
            }
        }
        Ok(false)
    }

    /// Runs `create` for the final component; if it exists, replaces it and retries.
    fn create_replacing(
        &self,
        p: BorrowedFd<'_>,
        ns: usize,
        syscall: &'static str,
        mut create: impl FnMut() -> Result<(), Errno>,
    ) -> Result<(), UnpackError> {
        match create() {
            Err(Errno::EXIST) => {
                self.make_room(p, ns, false)?;
                create().map_err(|e| self.sys(syscall, &self.rel, e))
            }
            r => r.map_err(|e| self.sys(syscall, &self.rel, e)),
        }
    }

    // ---- metadata -----------------------------------------------------------------

    fn chown(&self, t: Target<'_>) -> Result<(), UnpackError> {
        let (uid, gid) = match (u32::try_from(self.meta.uid), u32::try_from(self.meta.gid)) {
            (Ok(u), Ok(g)) if u != u32::MAX && g != u32::MAX => {
                (Uid::from_raw_unchecked(u), Gid::from_raw_unchecked(g))
            }
            _ if self.opts.rootless => return Ok(()),
            _ => return Err(self.invalid("owner uid/gid out of range")),
        };
        let r = match t {
            Target::Fd(fd) => rfs::fchown(fd, Some(uid), Some(gid)),
            Target::At(p, n) => rfs::chownat(p, n, Some(uid), Some(gid), AtFlags::SYMLINK_NOFOLLOW),
        };
        match r {
            Ok(()) => Ok(()),
            // Unprivileged, or an id the user namespace does not map.
            Err(_) if self.opts.rootless => Ok(()),
            Err(e) => Err(self.sys("fchownat", &self.rel, e)),
        }
    }

    /// Sets the mode; must follow chown, which clears setuid/setgid.
    fn chmod(&self, t: Target<'_>, mode: u32) -> Result<(), UnpackError> {
        let mode = Mode::from_raw_mode(mode);
        match t {
            Target::Fd(fd) => rfs::fchmod(fd, mode),
            Target::At(p, n) => rfs::chmodat(p, n, mode, AtFlags::empty()),
        }
        .map_err(|e| self.sys("fchmodat", &self.rel, e))
    }

    fn xattrs(&self, t: Target<'_>) -> Result<(), UnpackError> {
        if self.meta.xattrs.is_empty() {
            return Ok(());
        }
        // A name relative to an fd, for the l*xattr calls: /proc/self/fd/N/NAME.
        let proc_path = match t {
            Target::Fd(_) => None,
            Target::At(p, n) => {
                let mut s = format!("/proc/self/fd/{}/", p.as_raw_fd()).into_bytes();
                s.extend_from_slice(n.as_bytes());
                Some(s)
            }
        };
        for (name, value) in &self.meta.xattrs {
            if reserved_xattr(name) {
                continue;
            }
            let r = match (&t, &proc_path) {
                (Target::Fd(fd), _) => rfs::fsetxattr(fd, os(name), value, XattrFlags::empty()),
                (_, Some(path)) => rfs::lsetxattr(os(path), os(name), value, XattrFlags::empty()),
                (Target::At(..), None) => unreachable!(),
            };
            match r {
                Ok(()) => {}
                // As docker: a filesystem without xattrs, or a namespace we may not
                // write (trusted.* unprivileged, user.* on a symlink), is skipped.
                Err(Errno::OPNOTSUPP | Errno::PERM) => {}
                Err(e) => return Err(self.sys("setxattr", &self.rel, e)),
            }
        }
        Ok(())
    }

    fn times(&self, t: Target<'_>) -> Result<(), UnpackError> {
        let times = self.meta.times();
        match t {
            Target::Fd(fd) => rfs::futimens(fd, &times),
            Target::At(p, n) => rfs::utimensat(p, n, &times, AtFlags::SYMLINK_NOFOLLOW),
        }
        .map_err(|e| self.sys("utimensat", &self.rel, e))
    }

    // ---- entry types --------------------------------------------------------------

    fn file<R: Read>(&self, entry: &mut tar::Entry<'_, R>, ns: usize) -> Result<(), UnpackError> {
        let p = self.parent(ns)?;
        let name = os(&self.rel[ns..]);
        let flags =
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let mode = Mode::from_raw_mode(0o600);
        let mut fd = None;
        self.create_replacing(p.as_fd(), ns, "openat", || {
            fd = Some(rfs::openat(&*p, name, flags, mode)?);
            Ok(())
        })?;
        let mut f = File::from(fd.expect("set on success"));
        let mut buf = self.buf.borrow_mut();
        loop {
            let n = match entry.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.read_err(e)),
            };
            f.write_all(&buf[..n])
                .map_err(|e| self.sys("write", &self.rel, e))?;
            self.size.set(self.size.get() + n as u64);
        }
        let t = Target::Fd(f.as_fd());
        self.chown(t)?;
        self.chmod(t, self.meta.mode)?;
        self.xattrs(t)?;
        self.times(t)
    }

    fn dir(&self, ns: usize) -> Result<(), UnpackError> {
        let p = self.parent(ns)?;
        let name = os(&self.rel[ns..]);
        let mkdir = || rfs::mkdirat(&*p, name, Mode::from_raw_mode(0o700));
        match mkdir() {
            Ok(()) => {}
            Err(Errno::EXIST) => {
                if !self.make_room(p.as_fd(), ns, true)? {
                    mkdir().map_err(|e| self.sys("mkdirat", &self.rel, e))?;
                }
            }
            Err(e) => return Err(self.sys("mkdirat", &self.rel, e)),
        }
        let fd = rfs::openat(
            &*p,
            name,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| self.sys("openat", &self.rel, e))?;
        let t = Target::Fd(fd.as_fd());
        self.chown(t)?;
        // Without CAP_DAC_OVERRIDE, a directory we cannot write into would stop its own
        // children: keep u+rwx until the end of the layer.
        let mode = self.meta.mode;
        let deferred = (self.opts.rootless && mode & 0o700 != 0o700).then_some(mode);
        self.chmod(
            t,
            if deferred.is_some() {
                mode | 0o700
            } else {
                mode
            },
        )?;
        self.xattrs(t)?;
        self.dirs.borrow_mut().push(DeferredDir {
            path: self.rel.clone(),
            times: self.meta.times(),
            mode: deferred,
        });
        Ok(())
    }

    fn symlink<R: Read>(&self, entry: &tar::Entry<'_, R>, ns: usize) -> Result<(), UnpackError> {
        let target = entry
            .link_name_bytes()
            .ok_or_else(|| self.invalid("symlink without a target"))?;
        if target.is_empty() {
            return Err(self.invalid("symlink with an empty target"));
        }
        let p = self.parent(ns)?;
        let name = os(&self.rel[ns..]);
        // The target is data: it may point anywhere, it is never followed here.
        self.create_replacing(p.as_fd(), ns, "symlinkat", || {
            rfs::symlinkat(os(&target), &*p, name)
        })?;
        let t = Target::At(p.as_fd(), name);
        self.chown(t)?;
        self.xattrs(t)?;
        self.times(t)
    }

    fn hardlink<R: Read>(&self, entry: &tar::Entry<'_, R>, ns: usize) -> Result<(), UnpackError> {
        let raw = entry
            .link_name_bytes()
            .ok_or_else(|| self.invalid("hard link without a target"))?;
        let escapes = || UnpackError::LinkEscapes {
            layer: self.opts.layer.clone(),
            entry: lossy(&self.entry_name),
            target: lossy(&raw),
        };
        let mut target = Vec::with_capacity(raw.len());
        clean(&raw, &mut target).map_err(|()| escapes())?;
        if target.is_empty() {
            return Err(escapes());
        }
        let tns = name_start(&target);
        let tp = if tns == 0 {
            self.root.clone()
        } else {
            let tparent = &target[..tns - 1];
            // Resolved inside the root like every other path: a target reached through
            // a symlink stays inside too.
            Rc::new(
                self.open_in_root(tparent, OFlags::PATH | OFlags::DIRECTORY)
                    .map_err(|e| self.sys("openat2 (hard link target)", &target, e))?,
            )
        };
        let tname = os(&target[tns..]);
        let p = self.parent(ns)?;
        let name = os(&self.rel[ns..]);
        // Flags 0: a target that is a symlink is linked itself, not followed.
        match rfs::linkat(&*tp, tname, &*p, name, AtFlags::empty()) {
            Ok(()) => Ok(()),
            Err(Errno::EXIST) => {
                self.make_room(p.as_fd(), ns, false)?;
                rfs::linkat(&*tp, tname, &*p, name, AtFlags::empty())
                    .map_err(|e| self.sys("linkat", &target, e))
            }
            Err(e) => Err(self.sys("linkat", &target, e)),
        }
    }

    fn node<R: Read>(
        &self,
        entry: &tar::Entry<'_, R>,
        ty: tar::EntryType,
        ns: usize,
    ) -> Result<(), UnpackError> {
        let h = entry.header();
        let dev = |what| -> Result<u32, UnpackError> {
            let r = if what == "major" {
                h.device_major()
            } else {
                h.device_minor()
            };
            r.map_err(|e| self.invalid(format!("bad device {what}: {e}")))
                .map(|v| v.unwrap_or(0))
        };
        let (file_type, devno) = match ty {
            tar::EntryType::Char => (
                FileType::CharacterDevice,
                rfs::makedev(dev("major")?, dev("minor")?),
            ),
            tar::EntryType::Block => (
                FileType::BlockDevice,
                rfs::makedev(dev("major")?, dev("minor")?),
            ),
            _ => (FileType::Fifo, 0),
        };
        let p = self.parent(ns)?;
        let name = os(&self.rel[ns..]);
        let r = self.create_replacing(p.as_fd(), ns, "mknodat", || {
            rfs::mknodat(&*p, name, file_type, Mode::from_raw_mode(0o600), devno)
        });
        match r {
            Ok(()) => {}
            Err(UnpackError::Syscall { source, .. })
                if self.opts.rootless
                    && file_type != FileType::Fifo
                    && source.raw_os_error() == Some(Errno::PERM.raw_os_error()) =>
            {
                // Device nodes need CAP_MKNOD in the initial namespace: skipped rootless.
                return Ok(());
            }
            Err(e) => return Err(e),
        }
        let t = Target::At(p.as_fd(), name);
        self.chown(t)?;
        self.chmod(t, self.meta.mode)?;
        self.xattrs(t)?;
        self.times(t)
    }

    // ---- whiteouts ----------------------------------------------------------------

    /// `.wh.NAME`: the current entry is `rel` = `dir/.wh.NAME`.
    fn whiteout(&self, ns: usize) -> Result<(), UnpackError> {
        let target_start = ns + WHITEOUT_PREFIX.len();
        let target = os(&self.rel[target_start..]);
        match self.opts.mode {
            WhiteoutMode::Overlay => {
                // overlayfs' whiteout: a 0:0 character device named NAME.
                let p = self.parent(ns)?;
                self.create_replacing(p.as_fd(), target_start, "mknodat (whiteout)", || {
                    rfs::mknodat(
                        &*p,
                        target,
                        FileType::CharacterDevice,
                        Mode::empty(),
                        rfs::makedev(0, 0),
                    )
                })
            }
            WhiteoutMode::Apply => {
                let Some(p) = self.lookup_parent(ns, false)? else {
                    return Ok(()); // nothing there to hide
                };
                let mut path = self.rel[..ns].to_vec();
                path.extend_from_slice(target.as_bytes());
                self.invalidate_under(&path);
                remove_tree_at(p.as_fd(), target)
                    .map_err(|e| self.sys("remove (whiteout)", &path, e))
            }
        }
    }

    /// `.wh..wh..opq`: the directory holding it hides what lower layers put in it.
    fn opaque(&self, ns: usize) -> Result<(), UnpackError> {
        let dir_path = &self.rel[..ns.saturating_sub(1)];
        match self.opts.mode {
            WhiteoutMode::Overlay => {
                let p = self.parent(ns)?;
                let d = rfs::openat(
                    &*p,
                    c".",
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| self.sys("openat", dir_path, e))?;
                let xattr = if self.opts.rootless {
                    "user.overlay.opaque"
                } else {
                    "trusted.overlay.opaque"
                };
                rfs::fsetxattr(&d, xattr, b"y", XattrFlags::empty())
                    .map_err(|e| self.sys("fsetxattr (opaque)", dir_path, e))
            }
            WhiteoutMode::Apply => {
                let Some(p) = self.lookup_parent(ns, false)? else {
                    return Ok(());
                };
                let d = rfs::openat(
                    &*p,
                    c".",
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| self.sys("openat", dir_path, e))?;
                self.invalidate_under(dir_path);
                let mut path = dir_path.to_vec();
                self.clear_not_created(d.as_fd(), &mut path)
                    .map_err(|e| self.sys("remove (opaque)", dir_path, e))
            }
        }
    }

    /// Removes everything beneath `dir` (at `path`) this layer has no entry for.
    fn clear_not_created(&self, dir: BorrowedFd<'_>, path: &mut Vec<u8>) -> io::Result<()> {
        let mut keep_dirs = Vec::new();
        {
            let created = self.created.borrow();
            let base = path.len();
            clear_dir(dir, |n: &CStr| {
                if base > 0 {
                    path.push(b'/');
                }
                path.extend_from_slice(n.to_bytes());
                let keep = created.contains(path.as_slice());
                path.truncate(base);
                if keep {
                    keep_dirs.push(n.to_owned());
                }
                keep
            })?;
        }
        for child in keep_dirs {
            let fd = match rfs::openat(
                dir,
                &*child,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            ) {
                Ok(fd) => fd,
                // Not a directory (or a symlink): nothing beneath to clear.
                Err(Errno::NOTDIR | Errno::LOOP | Errno::NOENT) => continue,
                Err(e) => return Err(e.into()),
            };
            let base = path.len();
            if base > 0 {
                path.push(b'/');
            }
            path.extend_from_slice(child.to_bytes());
            self.clear_not_created(fd.as_fd(), path)?;
            path.truncate(base);
        }
        Ok(())
    }

    // ---- the end ------------------------------------------------------------------

    /// Sets directory times (and deferred modes) now that their contents are written:
    /// deepest-last entries first, the last entry for a path wins.
    fn finish_dirs(&mut self) -> Result<(), UnpackError> {
        let dirs = self.dirs.take();
        let mut seen: HashSet<&[u8]> = HashSet::with_capacity(dirs.len());
        for d in dirs.iter().rev() {
            if !seen.insert(&d.path) {
                continue;
            }
            let err = |syscall, e: Errno| UnpackError::Syscall {
                layer: self.opts.layer.clone(),
                entry: lossy(&d.path),
                syscall,
                path: lossy(&d.path),
                source: e.into(),
            };
            let fd = match self.open_in_root(
                &d.path,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW,
            ) {
                Ok(fd) => fd,
                // Removed or replaced by a later entry of this layer.
                Err(Errno::NOENT | Errno::NOTDIR | Errno::LOOP) => continue,
                Err(e) => return Err(err("openat2", e)),
            };
            if let Some(mode) = d.mode {
                rfs::fchmod(&fd, Mode::from_raw_mode(mode)).map_err(|e| err("fchmod", e))?;
            }
            rfs::futimens(&fd, &d.times).map_err(|e| err("futimens", e))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_paths() {
        let mut out = Vec::new();
        let ok = |s: &str, want: &str| {
            let mut out = Vec::new();
            clean(s.as_bytes(), &mut out).unwrap();
            assert_eq!(String::from_utf8(out).unwrap(), want, "cleaning {s:?}");
        };
        ok("a/b/c", "a/b/c");
        ok("./a//b/./c/", "a/b/c");
        ok("/abs/path", "abs/path");
        ok("a/../b", "b");
        ok("a/b/../../c", "c");
        ok("./", "");
        ok("/", "");
        for bad in ["..", "../x", "a/../../x", "/../x", "a/b/../../../x"] {
            assert!(
                clean(bad.as_bytes(), &mut out).is_err(),
                "{bad} must escape"
            );
        }
    }

    #[test]
    fn pax_times() {
        assert_eq!(parse_pax_time(b"1700000000"), Some((1_700_000_000, 0)));
        assert_eq!(
            parse_pax_time(b"1700000000.5"),
            Some((1_700_000_000, 500_000_000))
        );
        assert_eq!(
            parse_pax_time(b"1700000000.123456789123"),
            Some((1_700_000_000, 123_456_789))
        );
        assert_eq!(parse_pax_time(b"-1.5"), Some((-2, 500_000_000)));
        assert_eq!(parse_pax_time(b"x"), None);
    }

    #[test]
    fn under() {
        assert!(is_under(b"a/b", b"a"));
        assert!(is_under(b"a", b"a"));
        assert!(!is_under(b"ab", b"a"));
        assert!(is_under(b"anything", b""));
    }
}
