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
    /// A GNU sparse entry (old GNU type `S`, or PAX `GNU.sparse.*` records): refused,
    /// as docker refuses it, since expanding it writes its holes as real zeros.
    #[error(
        "layer {layer}: entry {entry:?}: sparse files (GNU sparse tar entries{detail}) are not supported in image layers; rebuild the layer without sparse entries (e.g. without `tar --sparse`)"
    )]
    Sparse {
        layer: String,
        entry: String,
        /// e.g. ", declared 10737418240 bytes".
        detail: String,
    },
    /// The uncompressed stream grew past what [`crate::UnpackLimits`] allow.
    #[error("{}", too_large_message(layer, *limit, *kind, *compressed, limits))]
    TooLarge {
        layer: String,
        /// The budget the stream exceeded, in bytes.
        limit: u64,
        kind: crate::LimitKind,
        /// The blob's (compressed) size, when known.
        compressed: Option<u64>,
        limits: crate::UnpackLimits,
    },
    #[error("unpacking layers is not supported on this platform: {0}")]
    Unsupported(&'static str),
}

/// `1073741824` -> `1 GiB`, `1536` -> `1.5 KiB`, `100` -> `100 bytes`.
pub fn human_size(n: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} bytes")
    } else if v.fract() == 0.0 {
        format!("{v:.0} {}", UNITS[unit])
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

fn too_large_message(
    layer: &str,
    limit: u64,
    kind: crate::LimitKind,
    compressed: Option<u64>,
    limits: &crate::UnpackLimits,
) -> String {
    let what = match (kind, compressed) {
        (crate::LimitKind::Ratio, Some(c)) => format!(
            "a {} blob unpacks to more than {}, over {}:1 (max_layer_ratio, enforced past the first {})",
            human_size(c),
            human_size(limit),
            limits.max_ratio,
            human_size(limits.ratio_grace)
        ),
        _ => format!(
            "unpacks to more than {}, the limit on one layer's unpacked size (max_layer_size)",
            human_size(limit)
        ),
    };
    format!(
        "layer {layer}: {what}; refusing it as a decompression bomb (raise the limit in the [limits] table of /etc/coracle/registries.toml if the image is genuine)"
    )
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
            | UnpackError::InvalidEntry { .. }
            | UnpackError::Sparse { .. }
            | UnpackError::TooLarge { .. } => ErrorKind::InvalidArgument,
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

/// The `ErrorKind` of an OS error: missing things are `NotFound`, privilege and missing
/// kernel features `Unavailable`, the rest `Internal`.
fn io_kind(e: &io::Error) -> ErrorKind {
    match e.kind() {
        io::ErrorKind::NotFound => ErrorKind::NotFound,
        io::ErrorKind::AlreadyExists => ErrorKind::AlreadyExists,
        io::ErrorKind::InvalidInput => ErrorKind::InvalidArgument,
        _ => match errno_kind(e) {
            ErrorKind::Unavailable => ErrorKind::Unavailable,
            _ => ErrorKind::Internal,
        },
    }
}

/// Why preparing, mounting or unmounting a container root filesystem failed.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("container rootfs: {op} {}: {source}", path.display())]
    Io {
        /// What was being done, e.g. `create directory` or `copy layer`.
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A mount syscall failed; `detail` carries the kernel's own message when the new
    /// mount API gave one (e.g. `overlay: failed to resolve 'x': -2`).
    #[error("mounting overlay on {}: {syscall}: {source}{}", target.display(),
        if detail.is_empty() { String::new() } else { format!(" ({detail})") })]
    Mount {
        target: PathBuf,
        /// The syscall that failed, e.g. `fsconfig lowerdir+` or `mount`.
        syscall: &'static str,
        detail: String,
        #[source]
        source: io::Error,
    },
    #[error("unmounting {}: {source}", target.display())]
    Unmount {
        target: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("container rootfs: {0}")]
    Invalid(String),
}

impl SnapshotError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            SnapshotError::Io { source, .. } => io_kind(source),
            SnapshotError::Mount { source, .. } => match source.raw_os_error() {
                // ENODEV: no overlay; EPERM: not allowed; EINVAL: the filesystem under
                // the upper dir cannot host one (the copy fallback still works).
                Some(19 | 1 | 22 | 95) => ErrorKind::Unavailable,
                _ => io_kind(source),
            },
            SnapshotError::Unmount { source, .. } => io_kind(source),
            SnapshotError::Invalid(_) => ErrorKind::InvalidArgument,
        }
    }
}

/// Why resolving or creating a path inside a container root failed.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("{op} {path:?} in root {}: {source}", root.display())]
    Io {
        op: &'static str,
        root: PathBuf,
        /// The path inside the root, as the caller gave it.
        path: String,
        #[source]
        source: io::Error,
    },
}

impl ResolveError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            ResolveError::Io { source, .. } => match source.raw_os_error() {
                Some(20 | 21 | 40 | 17) => ErrorKind::InvalidArgument,
                _ => io_kind(source),
            },
        }
    }
}

/// Why a volume operation failed.
#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    #[error("{0:?} includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path")]
    InvalidName(String),
    #[error("no such volume: {0}")]
    NotFound(String),
    #[error("volume {name}: {op} {}: {source}", path.display())]
    Io {
        name: String,
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("volume {name}: metadata {}: {source}", path.display())]
    Metadata {
        name: String,
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    /// Mounted for a container (or a copy-up) that is still running.
    #[error("remove {0}: volume has active mounts")]
    InUse(String),
    /// The local driver's mount of the volume's device failed (docker's wording).
    #[error("volume {name}: failed to mount local volume: mount {what}: {source}")]
    Mount {
        name: String,
        /// `DEVICE:TARGET (type "T", o "O")`.
        what: String,
        #[source]
        source: io::Error,
    },
}

impl VolumeError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            VolumeError::InvalidName(_) => ErrorKind::InvalidArgument,
            VolumeError::NotFound(_) => ErrorKind::NotFound,
            VolumeError::Io { source, .. } => io_kind(source),
            VolumeError::Metadata { .. } => ErrorKind::Internal,
            VolumeError::InUse(_) => ErrorKind::Conflict,
            VolumeError::Mount { source, .. } => match source.kind() {
                io::ErrorKind::NotFound | io::ErrorKind::InvalidInput => ErrorKind::InvalidArgument,
                _ => io_kind(source),
            },
        }
    }
}
