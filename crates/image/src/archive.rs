//! `save` and `load`: image archives in the formats docker reads and writes. Writing
//! produces a docker-archive (`manifest.json`, `repositories`, `<config hex>.json`,
//! `<diff hex>/layer.tar` uncompressed, as `docker load` expects). Reading accepts a
//! docker-archive (old `<id>/layer.tar` or new `blobs/sha256/<hex>` paths, compressed
//! or not) and OCI image layouts (a directory or an oci-archive tar, nested indexes).
//! It works on plain data (paths, digests), not the database, so the engine decides
//! what to import. Every blob is verified against its digest and every layer against
//! its diff ID.

use crate::config::LayerLimits;
use crate::manifest::{
    self, human_size, Compression, ImageConfig, Manifest, ManifestError, MAX_ARCHIVE_INDEX_SIZE,
    MAX_CONFIG_SIZE, MAX_MANIFEST_SIZE,
};
use coracle_core::digest::Hasher;
use coracle_core::{Digest, ErrorKind, ImageReference};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::{self, Read, Seek, Write};
use std::path::{Component, Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("archive {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("archive member {member:?} escapes the archive (absolute path or `..`)")]
    UnsafePath { member: String },
    #[error("archive {path}: {message}")]
    Format { path: PathBuf, message: String },
    #[error("archive: {what}: digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        what: String,
        expected: Digest,
        actual: Digest,
    },
    /// Past the `[limits]` of the registry config (see [`LayerLimits`]).
    #[error("archive: {what} unpacks to more than {}: {why}; refusing it as a decompression bomb (raise the limit in the [limits] table of /etc/coracle/registries.toml if the image is genuine)", human_size(*limit))]
    TooLarge {
        what: String,
        limit: u64,
        /// Which limit, e.g. "the limit on one layer's unpacked size (max_layer_size)".
        why: String,
    },
}

impl ArchiveError {
    /// A missing input file is NotFound, other local I/O Internal; a malformed,
    /// unsafe or tampered archive is InvalidArgument (the input is at fault).
    pub fn kind(&self) -> ErrorKind {
        match self {
            ArchiveError::Io { source, .. } if source.kind() == io::ErrorKind::NotFound => {
                ErrorKind::NotFound
            }
            ArchiveError::Io { .. } => ErrorKind::Internal,
            _ => ErrorKind::InvalidArgument,
        }
    }
}

type Result<T> = std::result::Result<T, crate::ImageError>;

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> crate::ImageError {
    let path = path.to_path_buf();
    move |source| ArchiveError::Io { path, source }.into()
}

fn format_err(path: &Path, message: impl Into<String>) -> crate::ImageError {
    ArchiveError::Format {
        path: path.to_path_buf(),
        message: message.into(),
    }
    .into()
}

/// One image to save.
#[derive(Debug, Clone)]
pub struct ArchiveImage {
    pub config_digest: Digest,
    pub config_bytes: Vec<u8>,
    /// Familiar names: `alpine:latest`, `127.0.0.1:5000/x:v1`.
    pub repo_tags: Vec<String>,
    pub layers: Vec<ArchiveLayer>,
}

#[derive(Debug, Clone)]
pub struct ArchiveLayer {
    pub diff_id: Digest,
    /// The (possibly compressed) blob in the content store.
    pub blob_path: PathBuf,
}

/// Hashes and counts what is written through it.
struct HashWriter<W> {
    inner: W,
    hasher: Hasher,
    count: u64,
}

impl<W: Write> Write for HashWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Hashes and counts what is read through it.
struct HashReader<R> {
    inner: R,
    hasher: Hasher,
    count: u64,
}

impl<R: Read> Read for HashReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

/// Fails a write that would take the total past `left` bytes.
struct Budgeted<W> {
    inner: W,
    left: u64,
}

/// The error [`Budgeted`] and [`BudgetReader`] fail with.
#[derive(Debug)]
struct OverBudget;

impl std::fmt::Display for OverBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("over the unpack limit")
    }
}

impl std::error::Error for OverBudget {}

fn is_over_budget(e: &crate::ImageError) -> bool {
    matches!(e, crate::ImageError::Archive(ArchiveError::Io { source, .. })
        if source.get_ref().is_some_and(|s| s.is::<OverBudget>()))
}

impl<W: Write> Write for Budgeted<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.len() as u64 > self.left {
            return Err(io::Error::other(OverBudget));
        }
        let n = self.inner.write(buf)?;
        self.left -= n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Fails once more than `left` bytes were read through it, setting `over` (the tar
/// reader may not hand the error back as it was).
struct BudgetReader<R> {
    inner: R,
    left: u64,
    over: std::rc::Rc<std::cell::Cell<bool>>,
}

impl<R: Read> Read for BudgetReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        match self.left.checked_sub(n as u64) {
            Some(left) => self.left = left,
            None => {
                self.over.set(true);
                return Err(io::Error::other(OverBudget));
            }
        }
        Ok(n)
    }
}

/// Why `budget` is what it is, for [`ArchiveError::TooLarge`].
fn budget_reason(by_ratio: bool, limits: &LayerLimits, compressed: u64) -> String {
    if by_ratio {
        format!(
            "a {} blob over {}:1 (max_layer_ratio, enforced past the first {})",
            human_size(compressed),
            limits.max_layer_ratio,
            human_size(limits.layer_ratio_grace)
        )
    } else {
        "the limit on one layer's unpacked size (max_layer_size)".to_string()
    }
}

fn sniff_file(path: &Path) -> Result<Compression> {
    let mut f = File::open(path).map_err(io_err(path))?;
    let mut head = [0u8; 4];
    let mut n = 0;
    while n < head.len() {
        let k = f.read(&mut head[n..]).map_err(io_err(path))?;
        if k == 0 {
            break;
        }
        n += k;
    }
    Ok(Compression::sniff(&head[..n]))
}

/// What one pass over a layer file found.
struct LayerDigests {
    compression: Compression,
    blob: Digest,
    blob_size: u64,
    diff: Digest,
}

/// Decompress `path` (gzip/zstd/plain by magic bytes) into `out`, hashing both the
/// stored bytes and the uncompressed stream in the same pass.
fn decompress_to(path: &Path, out: impl Write) -> Result<LayerDigests> {
    let compression = sniff_file(path)?;
    let file = File::open(path).map_err(io_err(path))?;
    let mut reader = HashReader {
        inner: file,
        hasher: Hasher::new(coracle_core::digest::Algorithm::Sha256),
        count: 0,
    };
    let mut writer = HashWriter {
        inner: out,
        hasher: Hasher::new(coracle_core::digest::Algorithm::Sha256),
        count: 0,
    };
    let err = io_err(path);
    let result = (|| -> io::Result<()> {
        match compression {
            Compression::None => {
                io::copy(&mut reader, &mut writer)?;
            }
            Compression::Gzip => {
                let mut d = flate2::read::MultiGzDecoder::new(&mut reader);
                io::copy(&mut d, &mut writer)?;
                drop(d);
                io::copy(&mut reader, &mut io::sink())?;
            }
            Compression::Zstd => {
                let mut d = zstd::stream::read::Decoder::new(&mut reader)?;
                io::copy(&mut d, &mut writer)?;
                drop(d);
                io::copy(&mut reader, &mut io::sink())?;
            }
        }
        writer.flush()
    })();
    result.map_err(err)?;
    Ok(LayerDigests {
        compression,
        blob: reader.hasher.finish(),
        blob_size: reader.count,
        diff: writer.hasher.finish(),
    })
}

fn split_tag(name: &str) -> (&str, &str) {
    let slash = name.rfind('/').map(|i| i + 1).unwrap_or(0);
    match name[slash..].rfind(':') {
        Some(i) => (&name[..slash + i], &name[slash + i + 1..]),
        None => (name, "latest"),
    }
}

fn append_bytes<W: Write>(
    tar: &mut tar::Builder<W>,
    name: &str,
    data: &[u8],
    out_path: &Path,
) -> Result<()> {
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Regular);
    tar.append_data(&mut h, name, data)
        .map_err(io_err(out_path))
}

fn append_dir<W: Write>(tar: &mut tar::Builder<W>, name: &str, out_path: &Path) -> Result<()> {
    let mut h = tar::Header::new_gnu();
    h.set_size(0);
    h.set_mode(0o755);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Directory);
    tar.append_data(&mut h, name, io::empty())
        .map_err(io_err(out_path))
}

/// Write a docker-archive of `images` to `out`.
///
/// Layers are stored compressed in the content store but docker-archive wants them
/// uncompressed, and a tar header needs the size up front: each layer is
/// decompressed once into an anonymous temp file next to its blob (hashing it on the
/// way to check the diff ID), then copied into the archive. Memory stays bounded; disk
/// needs room for one uncompressed layer at a time. Layers shared by several images
/// are written once.
pub fn write_docker_archive(out: impl Write, images: &[ArchiveImage]) -> Result<()> {
    let out_path = Path::new("<output>");
    let mut tar = tar::Builder::new(out);
    let mut written_layers: HashSet<Digest> = HashSet::new();
    let mut written_configs: HashSet<Digest> = HashSet::new();
    let mut manifest = Vec::new();
    let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for image in images {
        let actual = Digest::sha256_of(&image.config_bytes);
        if actual != image.config_digest {
            return Err(ArchiveError::DigestMismatch {
                what: "image config".into(),
                expected: image.config_digest.clone(),
                actual,
            }
            .into());
        }
        let mut layer_names = Vec::new();
        for layer in &image.layers {
            let hex = layer.diff_id.hex().to_string();
            layer_names.push(format!("{hex}/layer.tar"));
            if !written_layers.insert(layer.diff_id.clone()) {
                continue;
            }
            let dir = layer.blob_path.parent().unwrap_or(Path::new("."));
            let mut tmp = tempfile::tempfile_in(dir)
                .or_else(|_| tempfile::tempfile())
                .map_err(io_err(dir))?;
            let digests = decompress_to(&layer.blob_path, &mut tmp)?;
            if digests.diff != layer.diff_id {
                return Err(ArchiveError::DigestMismatch {
                    what: format!("layer {} (uncompressed)", layer.blob_path.display()),
                    expected: layer.diff_id.clone(),
                    actual: digests.diff,
                }
                .into());
            }
            let size = tmp.stream_position().map_err(io_err(&layer.blob_path))?;
            tmp.rewind().map_err(io_err(&layer.blob_path))?;
            append_dir(&mut tar, &format!("{hex}/"), out_path)?;
            append_bytes(&mut tar, &format!("{hex}/VERSION"), b"1.0", out_path)?;
            let json = serde_json::to_vec(&json!({"id": hex, "created": "1970-01-01T00:00:00Z"}))
                .expect("JSON");
            append_bytes(&mut tar, &format!("{hex}/json"), &json, out_path)?;
            let mut h = tar::Header::new_gnu();
            h.set_size(size);
            h.set_mode(0o644);
            h.set_mtime(0);
            h.set_entry_type(tar::EntryType::Regular);
            tar.append_data(&mut h, format!("{hex}/layer.tar"), &mut tmp)
                .map_err(io_err(&layer.blob_path))?;
        }
        let config_name = format!("{}.json", image.config_digest.hex());
        if written_configs.insert(image.config_digest.clone()) {
            append_bytes(&mut tar, &config_name, &image.config_bytes, out_path)?;
        }
        if let Some(top) = image.layers.last() {
            for t in &image.repo_tags {
                let (name, tag) = split_tag(t);
                repositories
                    .entry(name.to_string())
                    .or_default()
                    .insert(tag.to_string(), top.diff_id.hex().to_string());
            }
        }
        manifest.push(json!({
            "Config": config_name,
            "RepoTags": image.repo_tags,
            "Layers": layer_names,
        }));
    }
    let manifest = serde_json::to_vec(&manifest).expect("JSON");
    append_bytes(&mut tar, "manifest.json", &manifest, out_path)?;
    if !repositories.is_empty() {
        let repos = serde_json::to_vec(&repositories).expect("JSON");
        append_bytes(&mut tar, "repositories", &repos, out_path)?;
    }
    tar.into_inner()
        .and_then(|mut w| w.flush())
        .map_err(io_err(out_path))?;
    Ok(())
}

/// An archive read and verified. Layer files live in a temp dir that is removed
/// when this is dropped.
#[derive(Debug)]
pub struct LoadedArchive {
    pub images: Vec<LoadedImage>,
    _dir: Option<tempfile::TempDir>,
}

#[derive(Debug, Clone)]
pub struct LoadedImage {
    pub config_digest: Digest,
    pub config_bytes: Vec<u8>,
    /// As written in the archive (`alpine:latest`, `docker.io/library/alpine:latest`).
    pub repo_tags: Vec<String>,
    /// The original manifest, when the archive had one (OCI layouts).
    pub manifest: Option<(String, Vec<u8>)>,
    pub layers: Vec<LoadedLayer>,
}

#[derive(Debug, Clone)]
pub struct LoadedLayer {
    pub diff_id: Digest,
    /// Media type of the blob as stored (an uncompressed `layer.tar` is a plain tar).
    pub media_type: String,
    /// Digest and size of the blob as stored (== diff_id when uncompressed).
    pub blob_digest: Digest,
    pub size: u64,
    pub path: PathBuf,
}

impl LoadedLayer {
    /// The blob's bytes as stored (possibly compressed).
    pub fn open(&self) -> Result<File> {
        File::open(&self.path).map_err(io_err(&self.path))
    }
}

/// Read a docker-archive or OCI layout (directory, or tar possibly gzip/zstd
/// compressed). Tar archives are extracted into a temp dir under `scratch` (in the
/// store, so layers can later be renamed into place). The default [`LayerLimits`]
/// apply; see [`read_archive_with`].
pub fn read_archive(path: &Path, scratch: &Path) -> Result<LoadedArchive> {
    read_archive_with(path, scratch, &LayerLimits::default())
}

/// [`read_archive`] with these limits: no member may be larger than a layer may be, a
/// compressed archive may not expand past the ratio, and every layer is refused as
/// soon as it expands past them (before anything of it is stored).
pub fn read_archive_with(
    path: &Path,
    scratch: &Path,
    limits: &LayerLimits,
) -> Result<LoadedArchive> {
    let meta = std::fs::metadata(path).map_err(io_err(path))?;
    let (root, dir) = if meta.is_dir() {
        (path.to_path_buf(), None)
    } else {
        std::fs::create_dir_all(scratch).map_err(io_err(scratch))?;
        let dir = tempfile::Builder::new()
            .prefix("load-")
            .tempdir_in(scratch)
            .map_err(io_err(scratch))?;
        extract(path, dir.path(), limits)?;
        (dir.path().to_path_buf(), Some(dir))
    };
    let images = if root.join("manifest.json").is_file() {
        read_docker(&root, limits)?
    } else if root.join("index.json").is_file() && root.join("oci-layout").is_file() {
        read_oci(&root, limits)?
    } else {
        return Err(format_err(
            path,
            "neither a docker archive (manifest.json) nor an OCI layout (oci-layout, index.json)",
        ));
    };
    Ok(LoadedArchive { images, _dir: dir })
}

/// Member name -> safe relative path, or an error for `..`/absolute names.
fn safe_member(name: &Path) -> Result<PathBuf> {
    let mut out = PathBuf::new();
    for c in name.components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            _ => {
                return Err(ArchiveError::UnsafePath {
                    member: name.display().to_string(),
                }
                .into())
            }
        }
    }
    Ok(out)
}

fn extract(archive: &Path, dest: &Path, limits: &LayerLimits) -> Result<()> {
    let compression = sniff_file(archive)?;
    let file = File::open(archive).map_err(io_err(archive))?;
    let compressed = file.metadata().map_err(io_err(archive))?.len();
    let reader: Box<dyn Read> = match compression {
        Compression::None => Box::new(io::BufReader::new(file)),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(file)),
        Compression::Zstd => {
            Box::new(zstd::stream::read::Decoder::new(file).map_err(io_err(archive))?)
        }
    };
    // A compressed archive is held to the layers' ratio as a whole: its members are
    // written to disk before any layer is looked at.
    let ratio = LayerLimits {
        max_layer_size: 0,
        ..*limits
    };
    let budget = match compression {
        Compression::None => None,
        _ => ratio.budget(Some(compressed)),
    };
    let over = std::rc::Rc::new(std::cell::Cell::new(false));
    let reader = BudgetReader {
        inner: reader,
        left: budget.map_or(u64::MAX, |(b, _)| b),
        over: over.clone(),
    };
    let too_large = |what: String, (limit, by_ratio): (u64, bool)| -> crate::ImageError {
        ArchiveError::TooLarge {
            what,
            limit,
            why: budget_reason(by_ratio, limits, compressed),
        }
        .into()
    };
    let read_err = |e: io::Error| match budget {
        Some(b) if over.get() => too_large(format!("{}", archive.display()), b),
        _ => io_err(archive)(e),
    };
    let mut tar = tar::Archive::new(reader);
    let mut links: Vec<(PathBuf, PathBuf)> = Vec::new();
    for entry in tar.entries().map_err(read_err)? {
        let mut entry = entry.map_err(read_err)?;
        let name = entry.path().map_err(io_err(archive))?.into_owned();
        if limits.max_layer_size > 0 && entry.size() > limits.max_layer_size {
            return Err(too_large(
                format!("member {} of {}", name.display(), archive.display()),
                (limits.max_layer_size, false),
            ));
        }
        let rel = safe_member(&name)?;
        if rel.as_os_str().is_empty() {
            continue;
        }
        let target = dest.join(&rel);
        match entry.header().entry_type() {
            tar::EntryType::Directory => {
                std::fs::create_dir_all(&target).map_err(io_err(&target))?;
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                if let Some(parent) = target.parent() {
                    std::fs::create_dir_all(parent).map_err(io_err(parent))?;
                }
                let mut f = File::create(&target).map_err(io_err(&target))?;
                io::copy(&mut entry, &mut f).map_err(|e| match budget {
                    Some(b) if over.get() => too_large(format!("{}", archive.display()), b),
                    _ => io_err(&target)(e),
                })?;
            }
            // Old docker saves link duplicate layers; resolved to copies below,
            // never created as links on disk.
            tar::EntryType::Symlink | tar::EntryType::Link => {
                let link = entry
                    .link_name()
                    .map_err(io_err(archive))?
                    .ok_or_else(|| {
                        format_err(archive, format!("{}: link without target", name.display()))
                    })?
                    .into_owned();
                let resolved = if entry.header().entry_type() == tar::EntryType::Link {
                    safe_member(&link)?
                } else {
                    let base = rel.parent().unwrap_or(Path::new(""));
                    normalize_inside(&base.join(&link)).ok_or_else(|| ArchiveError::UnsafePath {
                        member: format!("{} -> {}", name.display(), link.display()),
                    })?
                };
                links.push((rel, resolved));
            }
            _ => {}
        }
    }
    for (rel, source) in links {
        let from = dest.join(&source);
        let to = dest.join(&rel);
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).map_err(io_err(parent))?;
        }
        if !from.is_file() {
            return Err(format_err(
                archive,
                format!("{} links to missing {}", rel.display(), source.display()),
            ));
        }
        std::fs::copy(&from, &to).map_err(io_err(&to))?;
    }
    Ok(())
}

/// Lexically resolve `..` in a relative path; `None` if it climbs out.
fn normalize_inside(p: &Path) -> Option<PathBuf> {
    let mut parts: Vec<&std::ffi::OsStr> = Vec::new();
    for c in p.components() {
        match c {
            Component::Normal(x) => parts.push(x),
            Component::CurDir => {}
            Component::ParentDir => {
                parts.pop()?;
            }
            _ => return None,
        }
    }
    Some(parts.iter().collect())
}

/// A whole small file (a manifest, index or config) of at most `limit` bytes: refused
/// from its size on disk before anything is read, and the read bounded regardless.
fn read_capped(
    path: &Path,
    what: impl Fn() -> String,
    limit: u64,
    limit_of: &'static str,
) -> Result<Vec<u8>> {
    let too_large = |size: String| -> crate::ImageError {
        ManifestError::TooLarge {
            what: what(),
            size,
            limit,
            limit_of,
        }
        .into()
    };
    let file = File::open(path).map_err(io_err(path))?;
    let len = file.metadata().map_err(io_err(path))?.len();
    if len > limit {
        return Err(too_large(human_size(len)));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(io_err(path))?;
    if bytes.len() as u64 > limit {
        return Err(too_large(format!("more than {}", human_size(limit))));
    }
    Ok(bytes)
}

fn read_json(root: &Path, rel: &str) -> Result<(Vec<u8>, Value)> {
    let rel_path = safe_member(Path::new(rel))?;
    let path = root.join(rel_path);
    let what = || format!("{rel} of the archive");
    let bytes = read_capped(
        &path,
        what,
        MAX_ARCHIVE_INDEX_SIZE,
        "an archive's index files",
    )?;
    let value = serde_json::from_slice(&bytes)
        .map_err(|e| format_err(&path, format!("invalid JSON: {e}")))?;
    Ok((bytes, value))
}

/// Path of a blob in an OCI layout.
fn blob_path(root: &Path, d: &Digest) -> PathBuf {
    root.join("blobs").join(d.algorithm_name()).join(d.hex())
}

fn verify_bytes(what: &str, bytes: &[u8], expected: &Digest) -> Result<()> {
    let mut h = expected.hasher();
    h.update(bytes);
    let actual = h.finish();
    if &actual != expected {
        return Err(ArchiveError::DigestMismatch {
            what: what.to_string(),
            expected: expected.clone(),
            actual,
        }
        .into());
    }
    Ok(())
}

/// Check a layer file (`rel` in the archive) against its diff ID (and its blob digest
/// when known), refusing it once it expands past `limits`.
fn verify_layer(
    (root, rel): (&Path, &str),
    diff_id: &Digest,
    blob: Option<&Digest>,
    media_type: Option<&str>,
    limits: &LayerLimits,
) -> Result<LoadedLayer> {
    let path = &root.join(safe_member(Path::new(rel))?);
    let compressed = std::fs::metadata(path).map_err(io_err(path))?.len();
    let budget = limits.budget(Some(compressed));
    let sink = Budgeted {
        inner: io::sink(),
        left: budget.map_or(u64::MAX, |(b, _)| b),
    };
    let d = match decompress_to(path, sink) {
        Err(e) if is_over_budget(&e) => {
            let (limit, by_ratio) = budget.expect("only a budget is exceeded");
            return Err(ArchiveError::TooLarge {
                what: format!("layer {rel}"),
                limit,
                why: budget_reason(by_ratio, limits, compressed),
            }
            .into());
        }
        r => r?,
    };
    if let Some(expected) = blob {
        if *expected != d.blob {
            return Err(ArchiveError::DigestMismatch {
                what: format!("layer blob {}", path.display()),
                expected: expected.clone(),
                actual: d.blob,
            }
            .into());
        }
    }
    if *diff_id != d.diff {
        return Err(ArchiveError::DigestMismatch {
            what: format!("layer {} (uncompressed)", path.display()),
            expected: diff_id.clone(),
            actual: d.diff,
        }
        .into());
    }
    Ok(LoadedLayer {
        diff_id: diff_id.clone(),
        media_type: media_type
            .map(str::to_string)
            .unwrap_or_else(|| d.compression.oci_media_type().to_string()),
        blob_digest: d.blob,
        size: d.blob_size,
        path: path.to_path_buf(),
    })
}

/// `blobs/sha256/<hex>` or `<hex>.json` / `<hex>/layer.tar`: the digest the name
/// promises, if any.
fn digest_in_name(rel: &str) -> Option<Digest> {
    if let Some(rest) = rel.strip_prefix("blobs/") {
        let (alg, hex) = rest.split_once('/')?;
        return format!("{alg}:{hex}").parse().ok();
    }
    None
}

fn read_docker(root: &Path, limits: &LayerLimits) -> Result<Vec<LoadedImage>> {
    let manifest_path = root.join("manifest.json");
    let (_, manifest) = read_json(root, "manifest.json")?;
    let entries = manifest
        .as_array()
        .ok_or_else(|| format_err(&manifest_path, "manifest.json is not a list"))?;
    let mut images = Vec::new();
    for entry in entries {
        let config_rel = entry["Config"]
            .as_str()
            .ok_or_else(|| format_err(&manifest_path, "entry without Config"))?;
        let config_path = root.join(safe_member(Path::new(config_rel))?);
        let what = || format!("config {config_rel} in the archive");
        let config_bytes = read_capped(&config_path, what, MAX_CONFIG_SIZE, "image configs")?;
        let config_digest = Digest::sha256_of(&config_bytes);
        let named = digest_in_name(config_rel).or_else(|| {
            config_rel
                .strip_suffix(".json")
                .and_then(|h| format!("sha256:{h}").parse().ok())
        });
        if let Some(expected) = named {
            verify_bytes(&format!("config {config_rel}"), &config_bytes, &expected)?;
        }
        let config = ImageConfig::parse(&config_bytes)?;
        let layer_rels: Vec<&str> = entry["Layers"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if layer_rels.len() != config.diff_ids.len() {
            return Err(format_err(
                &manifest_path,
                format!(
                    "image {config_rel} lists {} layers but its config has {} diff IDs",
                    layer_rels.len(),
                    config.diff_ids.len()
                ),
            ));
        }
        let mut layers = Vec::new();
        for (rel, diff_id) in layer_rels.iter().zip(&config.diff_ids) {
            let named = digest_in_name(rel);
            layers.push(verify_layer(
                (root, rel),
                diff_id,
                named.as_ref(),
                None,
                limits,
            )?);
        }
        let repo_tags = entry["RepoTags"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        images.push(LoadedImage {
            config_digest,
            config_bytes,
            repo_tags,
            manifest: None,
            layers,
        });
    }
    Ok(images)
}

fn read_oci(root: &Path, limits: &LayerLimits) -> Result<Vec<LoadedImage>> {
    let (_, index) = read_json(root, "index.json")?;
    let index_path = root.join("index.json");
    let descs: Vec<manifest::Descriptor> = serde_json::from_value(index["manifests"].clone())
        .map_err(|e| format_err(&index_path, format!("invalid manifests: {e}")))?;
    let mut images = Vec::new();
    for d in &descs {
        read_oci_descriptor(root, d, None, &mut images, 0, limits)?;
    }
    Ok(images)
}

fn tag_from_annotations(d: &manifest::Descriptor) -> Option<String> {
    let a = d.annotations.as_ref()?;
    if let Some(n) = a.get("io.containerd.image.name") {
        return Some(n.clone());
    }
    // ref.name may be a full reference or just a tag; only a full one names an image.
    a.get("org.opencontainers.image.ref.name")
        .filter(|n| n.contains(':') || n.contains('/'))
        .filter(|n| ImageReference::parse(n).is_ok())
        .cloned()
}

fn read_oci_descriptor(
    root: &Path,
    d: &manifest::Descriptor,
    inherited_tag: Option<String>,
    images: &mut Vec<LoadedImage>,
    depth: usize,
    limits: &LayerLimits,
) -> Result<()> {
    let path = blob_path(root, &d.digest);
    if depth > 8 {
        return Err(format_err(&path, "indexes nested too deeply"));
    }
    let what = || format!("manifest {} in the archive", d.digest);
    if d.size > MAX_MANIFEST_SIZE {
        return Err(ManifestError::TooLarge {
            what: what(),
            size: format!("its descriptor declares {}", human_size(d.size)),
            limit: MAX_MANIFEST_SIZE,
            limit_of: "manifests and indexes",
        }
        .into());
    }
    let bytes = read_capped(&path, what, MAX_MANIFEST_SIZE, "manifests and indexes")?;
    verify_bytes(&format!("manifest {}", d.digest), &bytes, &d.digest)?;
    let tag = tag_from_annotations(d).or(inherited_tag);
    match manifest::parse_manifest(
        &bytes,
        Some(&d.media_type),
        &format!("manifest {}", d.digest),
    )? {
        Manifest::Index(index) => {
            for child in &index.manifests {
                if child.platform.as_ref().is_some_and(|p| p.is_unknown()) {
                    continue; // attestations
                }
                read_oci_descriptor(root, child, tag.clone(), images, depth + 1, limits)?;
            }
        }
        Manifest::Image(m) => {
            let config_path = blob_path(root, &m.config.digest);
            let what = || format!("config {} in the archive", m.config.digest);
            let config_bytes = read_capped(&config_path, what, MAX_CONFIG_SIZE, "image configs")?;
            verify_bytes(
                &format!("config {}", m.config.digest),
                &config_bytes,
                &m.config.digest,
            )?;
            let config = ImageConfig::parse(&config_bytes)?;
            if config.diff_ids.len() != m.layers.len() {
                return Err(format_err(
                    &path,
                    format!(
                        "manifest {} lists {} layers but its config has {} diff IDs",
                        d.digest,
                        m.layers.len(),
                        config.diff_ids.len()
                    ),
                ));
            }
            let mut layers = Vec::new();
            for (l, diff_id) in m.layers.iter().zip(&config.diff_ids) {
                let lp = blob_path(root, &l.digest);
                let rel = format!("blobs/{}/{}", l.digest.algorithm_name(), l.digest.hex());
                let layer = verify_layer(
                    (root, &rel),
                    diff_id,
                    Some(&l.digest),
                    Some(&l.media_type),
                    limits,
                )?;
                if layer.size != l.size {
                    return Err(format_err(
                        &lp,
                        format!(
                            "layer {} is {} bytes, manifest says {}",
                            l.digest, layer.size, l.size
                        ),
                    ));
                }
                layers.push(layer);
            }
            // Several manifests may share one config (same image, other tag).
            if let Some(existing) = images
                .iter_mut()
                .find(|i| i.config_digest == m.config.digest)
            {
                if let Some(t) = tag {
                    if !existing.repo_tags.contains(&t) {
                        existing.repo_tags.push(t);
                    }
                }
                return Ok(());
            }
            images.push(LoadedImage {
                config_digest: m.config.digest.clone(),
                config_bytes,
                repo_tags: tag.into_iter().collect(),
                manifest: Some((m.media_type.clone(), bytes)),
                layers,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
