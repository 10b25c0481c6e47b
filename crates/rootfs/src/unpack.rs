//! Unpacking layer tarballs into directories.

use crate::error::UnpackError;
use coracle_core::Digest;
use std::io::Read;
use std::path::Path;

#[cfg(target_os = "linux")]
mod linux;
#[cfg(all(test, target_os = "linux"))]
mod tests;

/// What to do with whiteout entries (`.wh.NAME`, `.wh..wh..opq`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhiteoutMode {
    /// Produce an overlayfs lower directory: `.wh.NAME` becomes a 0:0 character device
    /// `NAME`; `.wh..wh..opq` sets `trusted.overlay.opaque=y` (`user.overlay.opaque=y`
    /// when rootless) on its directory. Other `.wh..wh.*` entries are ignored.
    Overlay,
    /// Flatten layers applied one after another onto one directory: `.wh.NAME` removes
    /// `NAME`; `.wh..wh..opq` removes the directory's existing contents that this same
    /// layer did not create.
    Apply,
}

/// How to unpack one layer.
#[derive(Debug, Clone)]
pub struct UnpackOptions {
    pub mode: WhiteoutMode,
    /// Running without privilege (or in a user namespace): ownership changes that fail
    /// and device nodes that cannot be made are skipped instead of failing the unpack.
    pub rootless: bool,
    /// The layer's name in errors, e.g. its digest.
    pub layer: String,
}

impl UnpackOptions {
    pub fn new(mode: WhiteoutMode, layer: impl Into<String>) -> Self {
        UnpackOptions {
            mode,
            rootless: false,
            layer: layer.into(),
        }
    }
}

/// What unpacking a layer found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnpackStats {
    /// sha256 of the whole uncompressed tar stream, trailing padding included.
    pub diff_id: Digest,
    /// Bytes of regular-file content written.
    pub size: u64,
    /// Archive entries processed (PAX and GNU long-name headers are not entries).
    pub entries: u64,
}

/// Unpacks the (uncompressed) tar stream into `dest`, an existing directory. Nothing
/// outside `dest` is ever created, changed or followed: absolute entry paths are taken
/// relative to `dest`, paths whose `..` climb above it are rejected, and symlinks in the
/// archive are resolved as if `dest` were `/`. The stream is read to its end, so the
/// returned `diff_id` covers all of it. On error, `dest` is left half-written: unpack
/// into a temporary directory (see [`crate::LayerStore::begin`]).
pub fn unpack_layer<R: Read>(
    tar_stream: R,
    dest: &Path,
    opts: &UnpackOptions,
) -> Result<UnpackStats, UnpackError> {
    #[cfg(target_os = "linux")]
    {
        linux::unpack_layer(tar_stream, dest, opts)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (tar_stream, dest, opts);
        Err(UnpackError::Unsupported(
            "layer unpack needs Linux (openat2 RESOLVE_IN_ROOT)",
        ))
    }
}

/// Flattens an image into `dest` (`coracle image unpack IMAGE DIR`): takes the layer
/// blobs bottom first, each compressed or not (recognised by magic bytes), and applies
/// them one after another with [`WhiteoutMode::Apply`]. Layers are named `layer N` in
/// errors. Returns each layer's stats in order.
pub fn flatten_into<I, R>(
    layers: I,
    dest: &Path,
    rootless: bool,
) -> Result<Vec<UnpackStats>, UnpackError>
where
    I: IntoIterator<Item = R>,
    R: Read + Send + 'static,
{
    let mut all = Vec::new();
    for (i, blob) in layers.into_iter().enumerate() {
        let opts = UnpackOptions {
            mode: WhiteoutMode::Apply,
            rootless,
            layer: format!("layer {i}"),
        };
        let reader = crate::compression::decompress(blob).map_err(|source| UnpackError::Read {
            layer: opts.layer.clone(),
            source,
        })?;
        all.push(unpack_layer(reader, dest, &opts)?);
    }
    Ok(all)
}
