//! Errors of this crate. Each names the layer, the archive entry and the syscall.

use coracle_core::{Digest, ErrorKind};
use std::io;
use std::path::PathBuf;

/// Why unpacking a layer failed.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("layer {layer}: opening destination {}: {source}", dest.display())]
    Dest {
        layer: String,
        dest: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("layer {layer}: reading the tar stream: {source}")]
    Read {
        layer: String,
        #[source]
        source: io::Error,
    },
    #[error("layer {layer}: entry {entry:?}: path climbs out of the layer root with `..`")]
    PathEscapes { layer: String, entry: String },
    #[error(
        "layer {layer}: entry {entry:?}: hard link target {target:?} is outside the layer root"
    )]
    LinkEscapes {
        layer: String,
        entry: String,
        target: String,
    },
    #[error("layer {layer}: entry {entry:?}: {reason}")]
    InvalidEntry {
        layer: String,
        entry: String,
        reason: String,
    },
    #[error("layer {layer}: entry {entry:?}: {syscall} {path:?}: {source}")]
    Syscall {
        layer: String,
        entry: String,
        /// The syscall that failed, e.g. `mknodat`.
        syscall: &'static str,
        /// The path it was applied to, relative to the layer root.
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("unpacking layers is not supported on this platform: {0}")]
    Unsupported(&'static str),
}

impl UnpackError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            UnpackError::Dest { source, .. } if source.kind() == io::ErrorKind::NotFound => {
                ErrorKind::NotFound
            }
            UnpackError::Dest { .. } => ErrorKind::Internal,
            UnpackError::Read { source, .. } => match source.kind() {
                io::ErrorKind::InvalidData
                | io::ErrorKind::UnexpectedEof
                | io::ErrorKind::InvalidInput
                | io::ErrorKind::Other => ErrorKind::InvalidArgument,
                _ => ErrorKind::Unavailable,
            },
            UnpackError::PathEscapes { .. }
            | UnpackError::LinkEscapes { .. }
            | UnpackError::InvalidEntry { .. } => ErrorKind::InvalidArgument,
            UnpackError::Syscall { source, .. } => errno_kind(source),
            UnpackError::Unsupported(_) => ErrorKind::Unavailable,
        }
    }
}

/// Failures caused by the archive's content (a link to nothing, a file where a dir must
/// be) are the caller's bad input; resource exhaustion and privilege are the machine's.
fn errno_kind(e: &io::Error) -> ErrorKind {
    const INPUT: &[i32] = &[
        2,  // ENOENT
        20, // ENOTDIR
        21, // EISDIR
        17, // EEXIST
        40, // ELOOP
        36, // ENAMETOOLONG
        22, // EINVAL
        39, // ENOTEMPTY
        18, // EXDEV
        31, // EMLINK
    ];
    const MACHINE: &[i32] = &[
        28,  // ENOSPC
        122, // EDQUOT
        24,  // EMFILE
        23,  // ENFILE
        12,  // ENOMEM
        1,   // EPERM
        13,  // EACCES
        30,  // EROFS
        38,  // ENOSYS
        95,  // EOPNOTSUPP
    ];
    match e.raw_os_error() {
        Some(n) if INPUT.contains(&n) => ErrorKind::InvalidArgument,
        Some(n) if MACHINE.contains(&n) => ErrorKind::Unavailable,
        _ => ErrorKind::Internal,
    }
}

/// Why a layer store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("layer store: {op} {}: {source}", path.display())]
    Io {
        /// What was being done, e.g. `rename` or `create temp dir`.
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("layer {0} is not in the layer store")]
    NotFound(Digest),
}

impl StoreError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            StoreError::NotFound(_) => ErrorKind::NotFound,
            StoreError::Io { source, .. } if source.kind() == io::ErrorKind::NotFound => {
                ErrorKind::NotFound
            }
            StoreError::Io { source, .. } => match errno_kind(source) {
                ErrorKind::Unavailable => ErrorKind::Unavailable,
                _ => ErrorKind::Internal,
            },
        }
    }
}
