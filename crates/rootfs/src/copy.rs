//! Copying files in and out of a container's filesystem (`coracle cp`), docker's way,
//! without ever leaving the container's root.
//!
//! A [`Tree`] is a directory taken as `/`: a container's root (the running
//! container's `/proc/<pid>/root`, which sees its volumes and tmpfs mounts, or the
//! rootfs of a stopped one mounted by [`with_private_rootfs`]) or a host directory.
//! Every path inside it is resolved by the kernel with `openat2(RESOLVE_IN_ROOT |
//! RESOLVE_NO_MAGICLINKS)` relative to the tree's descriptor, so a symlink in the
//! container naming `/`, `../..` or `/proc/self/root` leads back into the tree, never
//! to the host. Everything below that is done with `*at` calls relative to descriptors
//! of resolved parents, never following the final component; paths are never handed
//! to the host's own path walk. The tree may be changing underneath (a running
//! container is untrusted): a race can make a copy fail or pick the wrong file inside
//! the container, but not reach outside it.
//!
//! The copy goes through a tar stream (docker's wire format): [`write_archive`]
//! archives an [`Entry`] under a chosen top-level name, [`Tree::extract`] unpacks a
//! stream into a directory of a tree. The rules for where things land (`SRC/.` copies
//! the contents, a directory onto an existing directory goes inside it, ...) are
//! docker's `archive.PrepareArchiveCopy`, in [`plan_copy`].

mod archive;
mod extract;
mod mountns;

pub use archive::{write_archive, ArchiveStats};
pub use extract::{ExtractOptions, ExtractStats, Owner};
pub use mountns::{with_private_rootfs, BindMount};

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, ResolveFlags, StatxFlags};
use rustix::io::Errno;
use std::ffi::{CString, OsStr};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

const IN_ROOT: ResolveFlags = ResolveFlags::IN_ROOT.union(ResolveFlags::NO_MAGICLINKS);

/// Symlinks followed by hand (`-L`, destinations) before giving up, as the kernel.
pub const MAX_SYMLINKS: usize = 40;

#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// The path does not exist in the tree.
    #[error("{path}: no such file or directory")]
    NotFound { path: String },
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: String,
        #[source]
        source: io::Error,
    },
    /// A copy docker refuses, in docker's words ("cannot copy directory", ...).
    #[error("{0}")]
    Invalid(String),
    #[error("reading the archive: {0}")]
    Read(#[source] io::Error),
    #[error("writing the archive: {0}")]
    Write(#[source] io::Error),
    #[error(transparent)]
    Mount(#[from] crate::SnapshotError),
    #[error(transparent)]
    Resolve(#[from] crate::ResolveError),
}

impl CopyError {
    pub fn kind(&self) -> coracle_core::ErrorKind {
        use coracle_core::ErrorKind as K;
        match self {
            CopyError::NotFound { .. } => K::NotFound,
            CopyError::Invalid(_) | CopyError::Read(_) => K::InvalidArgument,
            CopyError::Io { source, .. } => {
                match source.raw_os_error().map(Errno::from_raw_os_error) {
                    Some(Errno::NOENT) => K::NotFound,
                    Some(Errno::EXIST) => K::AlreadyExists,
                    Some(
                        Errno::NOTDIR | Errno::ISDIR | Errno::ROFS | Errno::ACCESS | Errno::PERM,
                    ) => K::InvalidArgument,
                    Some(Errno::BUSY) => K::Conflict,
                    _ => K::Internal,
                }
            }
            CopyError::Write(_) => K::Unavailable,
            CopyError::Mount(e) => e.kind(),
            CopyError::Resolve(e) => e.kind(),
        }
    }
}

pub(crate) fn io_err<'a>(op: &'static str, path: &'a str) -> impl FnOnce(Errno) -> CopyError + 'a {
    move |e| CopyError::Io {
        op,
        path: path.to_string(),
        source: e.into(),
    }
}

/// What a path names, from `lstat` (or `stat`, for a path followed to a directory).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathStat {
    /// `st_mode`: type and permission bits.
    pub mode: u32,
    pub size: u64,
    pub mtime: i64,
    /// The target, for a symlink.
    pub link_target: Option<Vec<u8>>,
}

impl PathStat {
    fn from_stat(st: &rfs::Stat, link_target: Option<Vec<u8>>) -> PathStat {
        PathStat {
            mode: st.st_mode,
            size: st.st_size as u64,
            mtime: st.st_mtime,
            link_target,
        }
    }
    pub fn file_type(&self) -> FileType {
        FileType::from_raw_mode(self.mode)
    }
    pub fn is_dir(&self) -> bool {
        self.file_type() == FileType::Directory
    }
    pub fn is_symlink(&self) -> bool {
        self.file_type() == FileType::Symlink
    }
}

/// Where an entry is, as descriptors: never a path for the host to walk.
#[derive(Debug)]
pub(crate) enum At {
    /// A directory reached by following every symlink (paths ending in `/` or `/.`,
    /// and the root).
    Dir(OwnedFd),
    /// `name` in the directory `parent`, not followed.
    Child { parent: OwnedFd, name: CString },
}

/// A located path of a [`Tree`]: what [`Tree::stat`] found, ready to archive.
#[derive(Debug)]
pub struct Entry {
    pub(crate) at: At,
    pub stat: PathStat,
}

/// Whether a directory can be written to, and if not, why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Writability {
    Writable,
    /// On the tree's root mount, which is read-only (`--read-only`).
    ReadOnlyRoot,
    /// On another mount (a volume) that is read-only.
    ReadOnlyMount,
}

/// A directory taken as `/`; see the module docs.
#[derive(Debug)]
pub struct Tree {
    root: OwnedFd,
}

impl Tree {
    /// A host directory (the host's own path walk resolves `dir`: it is the caller's).
    pub fn open(dir: &Path) -> Result<Tree, CopyError> {
        let label = dir.display().to_string();
        let root = rfs::open(
            dir,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| match e {
            Errno::NOENT => CopyError::NotFound {
                path: label.clone(),
            },
            e => io_err("open", &label)(e),
        })?;
        Ok(Tree { root })
    }

    /// A tree from a directory descriptor (e.g. of `/proc/<pid>/root`).
    pub fn from_fd(root: OwnedFd) -> Tree {
        Tree { root }
    }

    /// Opens `path` (absolute or not, already cleaned or not) inside the tree.
    pub(crate) fn open_at(&self, path: &[u8], flags: OFlags) -> Result<OwnedFd, Errno> {
        open_in(self.root.as_fd(), path, flags)
    }

    /// docker's `stat` of a container path: every component but the last resolved
    /// inside the tree, the last one not followed, unless the path ends in `/` or `/.`
    /// (then it must be a directory, reached through any symlinks). A missing path is
    /// [`CopyError::NotFound`].
    pub fn stat(&self, path: &str) -> Result<Entry, CopyError> {
        let abs = container_path(path);
        let cleaned = clean(&abs);
        let not_found = |e: Errno| match e {
            Errno::NOENT => CopyError::NotFound {
                path: path.to_string(),
            },
            e => io_err("lstat", path)(e),
        };
        if cleaned == "/" || asserts_directory(&abs) {
            let fd = self
                .open_at(cleaned.as_bytes(), OFlags::PATH)
                .map_err(not_found)?;
            let st = rfs::fstat(&fd).map_err(not_found)?;
            if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
                return Err(not_found(Errno::NOTDIR));
            }
            return Ok(Entry {
                at: At::Dir(fd),
                stat: PathStat::from_stat(&st, None),
            });
        }
        let (dir, base) = split_path_dir_entry(&cleaned);
        let parent = self
            .open_at(dir.as_bytes(), OFlags::PATH | OFlags::DIRECTORY)
            .map_err(not_found)?;
        let name = CString::new(base.as_bytes())
            .map_err(|_| CopyError::Invalid(format!("path {path:?} contains a NUL byte")))?;
        let st = rfs::statat(&parent, &*name, AtFlags::SYMLINK_NOFOLLOW).map_err(not_found)?;
        let link = if FileType::from_raw_mode(st.st_mode) == FileType::Symlink {
            Some(
                rfs::readlinkat(&parent, &*name, Vec::new())
                    .map_err(not_found)?
                    .into_bytes(),
            )
        } else {
            None
        };
        Ok(Entry {
            at: At::Child { parent, name },
            stat: PathStat::from_stat(&st, link),
        })
    }

    /// The directory `path` names with every symlink followed (docker's extraction
    /// point): [`CopyError::NotFound`] if missing, docker's "extraction point is not a
    /// directory" if it is something else.
    pub fn resolve_dir(&self, path: &str) -> Result<OwnedFd, CopyError> {
        let fd = self
            .open_at(clean(path).as_bytes(), OFlags::PATH)
            .map_err(|e| match e {
                Errno::NOENT => CopyError::NotFound {
                    path: path.to_string(),
                },
                e => io_err("resolve", path)(e),
            })?;
        let st = rfs::fstat(&fd).map_err(io_err("fstat", path))?;
        if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
            return Err(CopyError::Invalid(
                "extraction point is not a directory".into(),
            ));
        }
        Ok(fd)
    }

    /// Whether files can be created in `dir` (a descriptor from [`Tree::resolve_dir`]).
    pub fn writability(&self, dir: &OwnedFd) -> Result<Writability, CopyError> {
        let vfs = rfs::fstatvfs(dir).map_err(io_err("statvfs", "extraction point"))?;
        if !vfs.f_flag.contains(rfs::StatVfsMountFlags::RDONLY) {
            return Ok(Writability::Writable);
        }
        let mnt = |fd: BorrowedFd<'_>| {
            rfs::statx(fd, c"", AtFlags::EMPTY_PATH, StatxFlags::MNT_ID)
                .map(|s| s.stx_mnt_id)
                .map_err(io_err("statx", "extraction point"))
        };
        if mnt(dir.as_fd())? == mnt(self.root.as_fd())? {
            Ok(Writability::ReadOnlyRoot)
        } else {
            Ok(Writability::ReadOnlyMount)
        }
    }
}

/// `openat2(dirfd, path, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`, retried on the
/// EAGAIN the kernel answers when a rename raced with the walk.
pub(crate) fn open_in(root: BorrowedFd<'_>, path: &[u8], flags: OFlags) -> Result<OwnedFd, Errno> {
    let rel = trim_slashes(path);
    let rel: &[u8] = if rel.is_empty() { b"." } else { rel };
    let mut tries = 0;
    loop {
        match rfs::openat2(
            root,
            OsStr::from_bytes(rel),
            flags | OFlags::CLOEXEC,
            Mode::empty(),
            IN_ROOT,
        ) {
            Err(Errno::AGAIN) if tries < 32 => tries += 1,
            r => return r,
        }
    }
}

fn trim_slashes(p: &[u8]) -> &[u8] {
    let start = p.iter().position(|&b| b != b'/').unwrap_or(p.len());
    &p[start..]
}

/// Archives `entry` as `name` and extracts it into `dir` of `dst`, streaming through
/// a pipe (the archive is written on a thread of its own).
pub fn copy_entry(
    entry: &Entry,
    name: &str,
    dst: &Tree,
    dir: &str,
    opts: &ExtractOptions,
) -> Result<(ArchiveStats, ExtractStats), CopyError> {
    let (reader, writer) = io::pipe().map_err(|e| CopyError::Io {
        op: "pipe",
        path: String::new(),
        source: e,
    })?;
    std::thread::scope(|s| {
        let producer = s.spawn(move || write_archive(entry, name, writer));
        let extracted = dst.extract(dir, reader, opts);
        let archived = producer
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p));
        match (archived, extracted) {
            (Ok(a), Ok(x)) => Ok((a, x)),
            // The extractor stopped reading: its error is the cause.
            (Err(CopyError::Write(_)), Err(e)) => Err(e),
            (Err(e), _) | (Ok(_), Err(e)) => Err(e),
        }
    })
}

// ---- docker's path rules (moby `pkg/archive/copy.go`), on `/`-separated strings ----

/// Go's `path.Clean` for an absolute path: no `.`, `..` or empty components, no
/// trailing slash (except `/` itself).
pub fn clean(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    format!("/{}", out.join("/"))
}

/// A container path as docker takes it: absolute, cleaned, keeping a trailing `/` or
/// `/.` that says "a directory" / "its contents".
pub fn container_path(path: &str) -> String {
    preserve_trailing_dot_or_separator(&clean(path), path)
}

/// docker's `PreserveTrailingDotOrSeparator`.
pub fn preserve_trailing_dot_or_separator(cleaned: &str, original: &str) -> String {
    let mut out = cleaned.to_string();
    if !specifies_current_dir(&out) && specifies_current_dir(original) {
        if !out.ends_with('/') {
            out.push('/');
        }
        out.push('.');
    }
    if !out.ends_with('/') && original.ends_with('/') {
        out.push('/');
    }
    out
}

/// Whether the path says it must be a directory: a trailing `/` or a last `.`.
pub fn asserts_directory(path: &str) -> bool {
    path.ends_with('/') || specifies_current_dir(path)
}

fn specifies_current_dir(path: &str) -> bool {
    base(path) == "."
}

/// Go's `filepath.Base`.
pub fn base(path: &str) -> &str {
    let p = path.trim_end_matches('/');
    if p.is_empty() {
        return if path.is_empty() { "." } else { "/" };
    }
    p.rsplit('/').next().unwrap_or(p)
}

/// docker's `SplitPathDirEntry`: the cleaned parent and the last component, keeping a
/// final `.`.
pub fn split_path_dir_entry(path: &str) -> (String, String) {
    let mut cleaned = clean(path);
    if specifies_current_dir(path) {
        if !cleaned.ends_with('/') {
            cleaned.push('/');
        }
        cleaned.push('.');
    }
    let b = base(&cleaned).to_string();
    let dir = match cleaned.trim_end_matches('/').rsplit_once('/') {
        Some((d, _)) => clean(d),
        None => "/".to_string(),
    };
    (dir, b)
}

/// The top-level name docker gives the archive of `path`: its last component, or `.`
/// when the contents are asked for (`dir/.`) or the path is the root.
pub fn archive_name(path: &str) -> String {
    let (_, b) = split_path_dir_entry(path);
    if b == "/" {
        ".".into()
    } else {
        b
    }
}

/// What is known of a copy's destination (docker's `CopyInfo`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyInfo {
    pub path: String,
    pub exists: bool,
    pub is_dir: bool,
}

/// Where an archive goes: extracted into `dir`, its top-level entry named `name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyPlan {
    pub dir: String,
    pub name: String,
}

/// docker's `PrepareArchiveCopy`: `src_name` is what the copied thing is called (its
/// base name, `.` for contents); the plan says where to extract and what to call it.
pub fn plan_copy(src_is_dir: bool, src_name: &str, dst: &CopyInfo) -> Result<CopyPlan, CopyError> {
    let (dst_dir, dst_base) = split_path_dir_entry(&dst.path);
    let into = |dir: String, name: &str| {
        Ok(CopyPlan {
            dir,
            name: name.to_string(),
        })
    };
    if dst.exists && dst.is_dir {
        // Extracted into the directory as it is.
        return into(dst.path.clone(), src_name);
    }
    if dst.exists && src_is_dir {
        return Err(CopyError::Invalid("cannot copy directory".into()));
    }
    if !dst.exists && !src_is_dir && asserts_directory(&dst.path) {
        // A file cannot create the directory the path asks for.
        return Err(CopyError::Invalid("no such directory".into()));
    }
    // Replacing a file, or creating the destination: the entry takes its name.
    into(dst_dir, &dst_base)
}

#[cfg(test)]
mod tests;
