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
    /// Ceilings on how much the layer may expand to.
    pub limits: UnpackLimits,
    /// Size of the blob as stored (compressed), when known: the decompression ratio is
    /// measured against it.
    pub compressed_size: Option<u64>,
}

impl UnpackOptions {
    /// Options with the default [`UnpackLimits`] and no known compressed size.
    pub fn new(mode: WhiteoutMode, layer: impl Into<String>) -> Self {
        UnpackOptions {
            mode,
            rootless: false,
            layer: layer.into(),
            limits: UnpackLimits::default(),
            compressed_size: None,
        }
    }
}

const GIB: u64 = 1 << 30;

/// How far one layer may expand: a small blob must not be able to fill the store's
/// filesystem (a gzip or zstd bomb). Both are measured on the uncompressed tar stream,
/// which bounds what unpacking writes (sparse entries, the only way a tar writes more
/// than it carries, are refused).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnpackLimits {
    /// Most bytes one layer's uncompressed tar stream may have; 0: no limit.
    pub max_size: u64,
    /// Most uncompressed bytes per compressed byte; 0: no limit. Only enforced once the
    /// stream is past `ratio_grace`: small layers of zeros are legitimate.
    pub max_ratio: u64,
    /// Uncompressed bytes any layer may have whatever its ratio.
    pub ratio_grace: u64,
}

impl Default for UnpackLimits {
    /// 64 GiB, and 100:1 past the first GiB. Real layers stay far below both: large
    /// ones (CUDA, ML frameworks, baked-in weights) are a few to ~20 GiB and compress
    /// 1-3:1; text-heavy ones (sources, node_modules) 5-10:1. gzip cannot exceed about
    /// 1030:1, so 100:1 past 1 GiB stops a zero bomb after 1 GiB while leaving a
    /// tenfold margin over any real layer.
    fn default() -> Self {
        UnpackLimits {
            max_size: 64 * GIB,
            max_ratio: 100,
            ratio_grace: GIB,
        }
    }
}

/// Which limit a layer broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKind {
    /// [`UnpackLimits::max_size`].
    Size,
    /// [`UnpackLimits::max_ratio`].
    Ratio,
}

impl UnpackLimits {
    /// No limits at all.
    pub const NONE: UnpackLimits = UnpackLimits {
        max_size: 0,
        max_ratio: 0,
        ratio_grace: 0,
    };

    /// The most uncompressed bytes a layer whose blob has `compressed` bytes may have,
    /// and the limit that sets it; `None`: unlimited.
    pub fn budget(&self, compressed: Option<u64>) -> Option<(u64, LimitKind)> {
        let by_size = (self.max_size > 0).then_some((self.max_size, LimitKind::Size));
        let by_ratio = match (self.max_ratio, compressed) {
            (0, _) | (_, None) => None,
            (ratio, Some(c)) => Some((
                c.saturating_mul(ratio).max(self.ratio_grace),
                LimitKind::Ratio,
            )),
        };
        match (by_size, by_ratio) {
            (Some(s), Some(r)) => Some(if r.0 < s.0 { r } else { s }),
            (s, r) => s.or(r),
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
        // These blobs were accepted (limits and all) when they were pulled or loaded.
        let opts = UnpackOptions {
            rootless,
            limits: UnpackLimits::NONE,
            ..UnpackOptions::new(WhiteoutMode::Apply, format!("layer {i}"))
        };
        let reader = crate::compression::decompress(blob).map_err(|source| UnpackError::Read {
            layer: opts.layer.clone(),
            source,
        })?;
        all.push(unpack_layer(reader, dest, &opts)?);
    }
    Ok(all)
}
