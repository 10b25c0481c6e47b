//! Layer filesystems: decompressing and unpacking layer tarballs safely, and the
//! on-disk store of unpacked layers (`<store>/layers/<chain-id hex>/`).
//!
//! Unpacking never creates, changes or follows anything outside the destination
//! directory, whatever the archive says: every parent path is resolved inside the
//! destination with `openat2(RESOLVE_IN_ROOT)` and every final component is created
//! with `*at` syscalls relative to that parent, never following it.
//!
//! Containers: [`snapshot`] prepares a container's root filesystem (overlay over the
//! layer dirs, or a copy where overlay is missing) and returns it as data to mount;
//! [`resolve`] finds and creates mount targets inside a rootfs without leaving it;
//! [`etc_files`] writes hostname, hosts and resolv.conf; [`volume`] keeps named volumes.

pub mod compression;
#[cfg(target_os = "linux")]
pub mod copy;
pub mod error;
pub mod etc_files;
#[cfg(unix)]
mod fsutil;
#[cfg(target_os = "linux")]
pub mod resolve;
#[cfg(target_os = "linux")]
pub mod snapshot;
#[cfg(unix)]
pub mod store;
#[cfg(target_os = "linux")]
mod treecopy;
pub mod unpack;
#[cfg(target_os = "linux")]
pub mod volume;

#[cfg(test)]
mod testutil;

pub use compression::{decompress, sniff, Compression};
pub use error::{ResolveError, SnapshotError, StoreError, UnpackError, VolumeError};
pub use etc_files::{write_etc_files, DnsOverrides, EtcConfig, EtcFiles, HostsConfig};
#[cfg(unix)]
pub use fsutil::remove_tree;
#[cfg(target_os = "linux")]
pub use resolve::{ensure_dir_in_root, ensure_file_in_root, resolve_in_root};
#[cfg(target_os = "linux")]
pub use snapshot::{RootfsKind, RootfsMount};
#[cfg(unix)]
pub use store::{LayerLock, LayerStore, LayerWriter};
pub use unpack::{
    flatten_into, unpack_layer, LimitKind, UnpackLimits, UnpackOptions, UnpackStats, WhiteoutMode,
};
#[cfg(target_os = "linux")]
pub use volume::{copy_up, Volume, VolumeStore};
