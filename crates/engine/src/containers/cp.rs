//! `cp` between a container and the host, both ways, docker's rules (its CLI's
//! `cp.go` and its daemon's `archive_unix.go`).
//!
//! The container side is always a [`Tree`] resolved by descriptor (see
//! `coracle_rootfs::copy`): a running (or paused) container through
//! `/proc/<init>/root`, which sees it as it sees itself, volumes and tmpfs mounts
//! included; a stopped one through its rootfs and bind mounts assembled in a private
//! mount namespace ([`with_private_rootfs`]), so a copy into a volume of a stopped
//! container lands in the volume, as docker's. The host side is the user's own: its
//! paths are walked normally.
//!
//! Files copied in are owned by root in the container unless `-a` keeps the
//! source's owners; files copied out belong to whoever runs `cp` unless `-a` (docker's
//! documented behaviour).

use crate::{Containers, Engine, EngineError};
use coracle_rootfs::copy::{
    archive_name, base, clean, container_path, copy_entry, plan_copy, split_path_dir_entry,
    with_private_rootfs, write_archive, BindMount, CopyError, CopyInfo, Entry, ExtractOptions,
    Owner, Tree, Writability, MAX_SYMLINKS,
};
use coracle_rootfs::RootfsMount;
use coracle_state::{ContainerRecord, ContainerState};
use rustix::fs::{FileType, Mode, OFlags};
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::Path;

mod host;
use host::{host_destination, host_source, resolve_local_path, validate_output_path};

#[derive(Debug, thiserror::Error)]
pub enum CpError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Copy(#[from] CopyError),
    /// docker's daemon's words for a missing path.
    #[error("Could not find the file {path} in container {container}")]
    FileNotFound { path: String, container: String },
    #[error("Container {0} is restarting, wait until the container is running")]
    Restarting(String),
    /// A copy docker refuses, in docker's words.
    #[error("{0}")]
    Invalid(String),
    /// A host path that cannot be used, as Go reports it (`lstat /x: no such file
    /// or directory`).
    #[error("{op} {path}: {reason}")]
    Local {
        op: &'static str,
        path: String,
        reason: String,
    },
}

impl CpError {
    pub fn kind(&self) -> coracle_core::ErrorKind {
        use coracle_core::ErrorKind as K;
        match self {
            CpError::Engine(e) => e.kind(),
            CpError::Copy(e) => e.kind(),
            CpError::FileNotFound { .. } => K::NotFound,
            CpError::Restarting(_) => K::Conflict,
            CpError::Invalid(_) => K::InvalidArgument,
            CpError::Local { reason, .. } if reason.contains("no such file") => K::NotFound,
            CpError::Local { .. } => K::InvalidArgument,
        }
    }
}

/// `-L` and `-a`.
#[derive(Debug, Clone, Copy, Default)]
pub struct CopyOptions {
    /// Follow a symlink named as the source.
    pub follow_link: bool,
    /// Keep owners (docker's archive mode).
    pub archive: bool,
}

/// Where a copy out of a container goes.
pub enum CopyOut<'a> {
    /// A host path as the user typed it (relative to the working directory or
    /// absolute; a trailing `/` or `/.` means something).
    Host(&'a str),
    /// A tar stream (`-`).
    Stream(&'a mut (dyn Write + Send)),
}

/// Where a copy into a container comes from.
pub enum CopyIn<'a> {
    Host(&'a str),
    Stream(&'a mut (dyn Read + Send)),
}

/// What a copy moved, for docker's "Successfully copied" line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CopyReport {
    /// Bytes of regular file content.
    pub content_bytes: u64,
    /// Bytes of the tar stream that carried it.
    pub archive_bytes: u64,
    pub source_is_dir: bool,
    /// Where it went: the absolute host path, or `CONTAINER:PATH`.
    pub destination: String,
}

/// Counts what is read through it.
struct Counting<'a> {
    inner: &'a mut (dyn Read + Send),
    n: u64,
}

impl Read for Counting<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.n += n as u64;
        Ok(n)
    }
}

/// How the container's filesystem is reached.
enum Access {
    Running(OwnedFd),
    Stopped {
        rootfs: RootfsMount,
        binds: Vec<BindMount>,
        read_only: bool,
        /// The container directory's lock: a `start` (its monitor mounts the same
        /// overlay) or `rm` waits until the copy is done.
        _lock: std::fs::File,
    },
}

impl Access {
    fn run<T: Send>(
        self,
        f: impl FnOnce(&Tree) -> Result<T, CpError> + Send,
    ) -> Result<T, CpError> {
        match self {
            Access::Running(root) => f(&Tree::from_fd(root)),
            Access::Stopped {
                rootfs,
                binds,
                read_only,
                _lock,
            } => with_private_rootfs(&rootfs, &binds, read_only, f)?,
        }
    }
}

impl Engine {
    /// A running (or paused) container's root, through its init.
    fn running_root(&self, c: &ContainerRecord) -> Result<Option<OwnedFd>, CpError> {
        let Some(pid) = self.container_init_pid(c) else {
            return Ok(None);
        };
        let path = format!("/proc/{pid}/root");
        let root = match rustix::fs::open(
            path.as_str(),
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            // Exited since.
            Err(rustix::io::Errno::NOENT | rustix::io::Errno::SRCH) => return Ok(None),
            Err(e) => return Err(EngineError::io("open", &path)(e.into()).into()),
        };
        // The pid was checked to be the container's; check again now that the root
        // is held, in case it exited and the pid was reused in between.
        Ok((self.container_init_pid(c) == Some(pid)).then_some(root))
    }

    fn container_access(&mut self, key: &str, c: &ContainerRecord) -> Result<Access, CpError> {
        if c.state == ContainerState::Restarting {
            return Err(CpError::Restarting(c.id.clone()));
        }
        if let Some(root) = self.running_root(c)? {
            return Ok(Access::Running(root));
        }
        let dir = self.containers_dir().join(&c.id);
        let lock = crate::containers::lock_dir(&dir).map_err(|e| match e {
            EngineError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                EngineError::NoSuchContainer(key.to_string())
            }
            e => e,
        })?;
        // Under the lock: it may have been started (or removed) meanwhile.
        let c = self.find_container(&c.id).map_err(|e| match e {
            EngineError::NoSuchContainer(_) => EngineError::NoSuchContainer(key.to_string()),
            e => e,
        })?;
        if c.state == ContainerState::Restarting {
            return Err(CpError::Restarting(c.id.clone()));
        }
        if let Some(root) = self.running_root(&c)? {
            return Ok(Access::Running(root));
        }
        // Stopped (or between runs): its rootfs, as its runtime would assemble it.
        let cfg = self.container_config(&c.id)?;
        let spec_path = self.containers_dir().join(&c.id).join("config.json");
        let spec = oci_spec::runtime::Spec::load(&spec_path)
            .map_err(EngineError::corrupt(spec_path.display()))?;
        let binds = spec
            .mounts()
            .iter()
            .flatten()
            .filter_map(|m| {
                let opts = m.options().clone().unwrap_or_default();
                let is_bind = m.typ().as_deref() == Some("bind")
                    || opts.iter().any(|o| o == "bind" || o == "rbind");
                Some(BindMount {
                    source: m.source().clone().filter(|_| is_bind)?,
                    destination: m.destination().to_string_lossy().into_owned(),
                    read_only: opts.iter().any(|o| o == "ro"),
                })
            })
            .collect();
        let read_only = spec
            .root()
            .as_ref()
            .and_then(|r| r.readonly())
            .unwrap_or(false);
        Ok(Access::Stopped {
            rootfs: cfg.rootfs,
            binds,
            read_only,
            _lock: lock,
        })
    }
}

impl Containers<'_> {
    /// `cp CONTAINER:SRC DEST|-`.
    pub fn copy_from_container(
        &mut self,
        key: &str,
        src: &str,
        dst: CopyOut<'_>,
        opts: CopyOptions,
    ) -> Result<CopyReport, CpError> {
        // The host side first, as docker's client checks it before asking the daemon.
        let host_dst = match &dst {
            CopyOut::Host(p) => {
                let abs = resolve_local_path(p)?;
                validate_output_path(&abs)?;
                Some(abs)
            }
            CopyOut::Stream(_) => None,
        };
        let c = self.find_container(key)?;
        let access = self.container_access(key, &c)?;
        match dst {
            CopyOut::Stream(out) => access.run(|tree| {
                let (entry, name, _) = locate_source(tree, src, opts.follow_link, key)?;
                let a = write_archive(&entry, &name, out)?;
                Ok(CopyReport {
                    content_bytes: a.content_bytes,
                    archive_bytes: a.archive_bytes,
                    source_is_dir: entry.stat.is_dir(),
                    destination: "-".into(),
                })
            }),
            CopyOut::Host(_) => {
                let dst = host_dst.expect("resolved above");
                let info = host_destination(&dst)?;
                let owner = if opts.archive {
                    Owner::Archive
                } else {
                    Owner::Caller
                };
                access.run(|tree| {
                    let (entry, name, rebase) = locate_source(tree, src, opts.follow_link, key)?;
                    let wanted = rebase.unwrap_or(name);
                    let plan = plan_copy(entry.stat.is_dir(), &wanted, &info)?;
                    let host = Tree::open(Path::new(&plan.dir))?;
                    let x = ExtractOptions {
                        owner,
                        no_overwrite_dir_non_dir: true,
                    };
                    let (a, _) = copy_entry(&entry, &plan.name, &host, "/", &x)?;
                    Ok(CopyReport {
                        content_bytes: a.content_bytes,
                        archive_bytes: a.archive_bytes,
                        source_is_dir: entry.stat.is_dir(),
                        destination: dst.clone(),
                    })
                })
            }
        }
    }

    /// `cp SRC|- CONTAINER:DEST`.
    pub fn copy_to_container(
        &mut self,
        key: &str,
        src: CopyIn<'_>,
        dst: &str,
        opts: CopyOptions,
    ) -> Result<CopyReport, CpError> {
        let host_src = match &src {
            CopyIn::Host(p) => Some(host_source(&resolve_local_path(p)?, opts.follow_link)?),
            CopyIn::Stream(_) => None,
        };
        let c = self.find_container(key)?;
        let access = self.container_access(key, &c)?;
        let x = ExtractOptions {
            owner: if opts.archive {
                Owner::Archive
            } else {
                Owner::Fixed { uid: 0, gid: 0 }
            },
            no_overwrite_dir_non_dir: true,
        };
        match src {
            CopyIn::Stream(input) => access.run(|tree| {
                let info = container_destination(tree, dst, key)?;
                if !info.is_dir {
                    return Err(CpError::Invalid(format!(
                        "destination \"{key}:{dst}\" must be a directory"
                    )));
                }
                extraction_point(tree, &info.path, key)?;
                let mut counted = Counting { inner: input, n: 0 };
                let s = tree.extract(&info.path, &mut counted, &x)?;
                Ok(CopyReport {
                    content_bytes: s.content_bytes,
                    archive_bytes: counted.n,
                    source_is_dir: true,
                    destination: format!("{key}:{}", info.path),
                })
            }),
            CopyIn::Host(_) => {
                let (entry, name) = host_src.expect("resolved above");
                access.run(|tree| {
                    let info = container_destination(tree, dst, key)?;
                    let plan = plan_copy(entry.stat.is_dir(), &name, &info)?;
                    extraction_point(tree, &plan.dir, key)?;
                    let (a, _) = copy_entry(&entry, &plan.name, tree, &plan.dir, &x)?;
                    Ok(CopyReport {
                        content_bytes: a.content_bytes,
                        archive_bytes: a.archive_bytes,
                        source_is_dir: entry.stat.is_dir(),
                        destination: format!("{key}:{}", info.path),
                    })
                })
            }
        }
    }
}

/// The source in the container: its entry, the name docker archives it under, and
/// with `-L` through a symlink, the name the copy must take (the link's).
fn locate_source(
    tree: &Tree,
    src: &str,
    follow: bool,
    key: &str,
) -> Result<(Entry, String, Option<String>), CpError> {
    let not_found = |path: String| {
        move |e| match e {
            CopyError::NotFound { .. } => CpError::FileNotFound {
                path,
                container: key.to_string(),
            },
            e => CpError::Copy(e),
        }
    };
    let abs = container_path(src);
    let mut entry = tree.stat(&abs).map_err(not_found(src.to_string()))?;
    if !(follow && entry.stat.is_symlink()) {
        return Ok((entry, archive_name(&abs), None));
    }
    let mut cur = clean(&abs);
    for _ in 0..MAX_SYMLINKS {
        let Some(target) = entry
            .stat
            .link_target
            .clone()
            .filter(|_| entry.stat.is_symlink())
        else {
            let rebase = base(&abs).to_string();
            return Ok((entry, archive_name(&cur), Some(rebase)));
        };
        let target = String::from_utf8_lossy(&target).into_owned();
        cur = if target.starts_with('/') {
            clean(&target)
        } else {
            clean(&format!("{}/{target}", split_path_dir_entry(&cur).0))
        };
        entry = tree.stat(&cur).map_err(not_found(cur.clone()))?;
    }
    Err(CpError::Invalid(format!("too many symlinks in {src}")))
}

/// The destination in the container, as docker's CLI stats it: a symlink named as
/// the destination is followed once; a missing one is fine (its parent must exist
/// when extracting).
fn container_destination(tree: &Tree, dst: &str, key: &str) -> Result<CopyInfo, CpError> {
    let mut path = container_path(dst);
    let mut found = tree.stat(&path).ok();
    if let Some(target) = found.as_ref().and_then(|e| e.stat.link_target.clone()) {
        let target = String::from_utf8_lossy(&target).into_owned();
        path = if target.starts_with('/') {
            target
        } else {
            format!("{}/{target}", split_path_dir_entry(&path).0)
        };
        found = tree.stat(&path).ok();
    }
    let Some(e) = found else {
        return Ok(CopyInfo {
            path,
            exists: false,
            is_dir: false,
        });
    };
    if matches!(
        e.stat.file_type(),
        FileType::CharacterDevice | FileType::BlockDevice
    ) {
        return Err(CpError::Invalid(format!(
            "destination \"{key}:{dst}\" must be a directory or a regular file: got a device"
        )));
    }
    Ok(CopyInfo {
        path,
        exists: true,
        is_dir: e.stat.is_dir(),
    })
}

/// The directory a copy is extracted into must exist and be writable.
fn extraction_point(tree: &Tree, dir: &str, key: &str) -> Result<(), CpError> {
    let fd = tree.resolve_dir(dir).map_err(|e| match e {
        CopyError::NotFound { .. } => CpError::FileNotFound {
            path: dir.to_string(),
            container: key.to_string(),
        },
        e => e.into(),
    })?;
    match tree.writability(&fd)? {
        Writability::Writable => Ok(()),
        Writability::ReadOnlyRoot => Err(CpError::Invalid(
            "container rootfs is marked read-only".into(),
        )),
        Writability::ReadOnlyMount => Err(CpError::Invalid(
            "mounted volume is marked read-only".into(),
        )),
    }
}
