//! Layer filesystems: decompressing and unpacking layer tarballs safely, and the
//! on-disk store of unpacked layers (`<store>/layers/<chain-id hex>/`).
//!
//! Unpacking never creates, changes or follows anything outside the destination
//! directory, whatever the archive says: every parent path is resolved inside the
//! destination with `openat2(RESOLVE_IN_ROOT)` and every final component is created
//! with `*at` syscalls relative to that parent, never following it.

pub mod compression;
pub mod error;
#[cfg(unix)]
mod fsutil;
#[cfg(unix)]
pub mod store;
pub mod unpack;

#[cfg(test)]
mod testutil;

pub use compression::{decompress, sniff, Compression};
pub use error::{StoreError, UnpackError};
#[cfg(unix)]
pub use fsutil::remove_tree;
#[cfg(unix)]
pub use store::{LayerStore, LayerWriter};
pub use unpack::{flatten_into, unpack_layer, UnpackOptions, UnpackStats, WhiteoutMode};
