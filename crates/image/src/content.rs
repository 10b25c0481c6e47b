//! The content store: every blob (layer, config, manifest) stored once under
//! `blobs/<algorithm>/<hex>`. Content enters only through an [`Ingest`], which hashes
//! while writing to a private temp file under `blobs/ingest/` and renames the file into
//! place only when size and digest match, so a path in `blobs/sha256/` is always a
//! complete, verified blob. Temp files of dead writers are collected by
//! [`ContentStore::gc_incomplete`].
//!
//! Processes pulling the same blob at once share one download: a writer of a layer
//! holds a per-digest [`BlobLock`] (an flock, released by the kernel when its holder
//! dies) while it fetches, and the next one finds the blob committed. A download cut
//! short by a dead process is adopted by the next writer of that digest and resumed
//! ([`ContentStore::begin_resumable`]).

use coracle_core::digest::Hasher;
use coracle_core::{Digest, ErrorKind};
use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    #[error("content store: {op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("blob {expected}: content has digest {actual}, expected {expected}")]
    DigestMismatch { expected: Digest, actual: Digest },
    #[error("blob {blob}: got {actual} bytes, expected {expected}")]
    SizeMismatch {
        blob: Digest,
        expected: u64,
        actual: u64,
    },
    #[error("blob {0} not found in the content store")]
    NotFound(Digest),
}

impl ContentError {
    /// I/O failures are `Internal` (NotFound for a missing file); a digest or size
    /// mismatch is `Internal` too: the content we were given is corrupt, which retrying
    /// the same call cannot fix.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ContentError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                ErrorKind::NotFound
            }
            ContentError::NotFound(_) => ErrorKind::NotFound,
            _ => ErrorKind::Internal,
        }
    }
}

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> ContentError {
    let path = path.to_path_buf();
    move |source| ContentError::Io { op, path, source }
}

type Result<T> = std::result::Result<T, crate::ImageError>;

/// Blobs by digest in one directory (the store's `blobs/`). Cheap to clone.
#[derive(Debug, Clone)]
pub struct ContentStore {
    root: PathBuf,
}

impl ContentStore {
    /// Open (creating if needed) the store rooted at `dir` (normally `<root>/blobs`).
    pub fn open(dir: &Path) -> Result<ContentStore> {
        for sub in ["sha256", "ingest"] {
            let p = dir.join(sub);
            std::fs::create_dir_all(&p).map_err(io_err("create directory", &p))?;
        }
        Ok(ContentStore {
            root: dir.to_path_buf(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the blob lives (whether or not it exists): `blobs/sha256/<hex>`.
    pub fn path(&self, digest: &Digest) -> PathBuf {
        self.root.join(digest.algorithm_name()).join(digest.hex())
    }

    fn ingest_dir(&self) -> PathBuf {
        self.root.join("ingest")
    }

    pub fn contains(&self, digest: &Digest) -> bool {
        self.path(digest).is_file()
    }

    pub fn size(&self, digest: &Digest) -> Result<u64> {
        let p = self.path(digest);
        match std::fs::metadata(&p) {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(ContentError::NotFound(digest.clone()).into())
            }
            Err(e) => Err(io_err("stat", &p)(e).into()),
        }
    }

    pub fn open_blob(&self, digest: &Digest) -> Result<File> {
        let p = self.path(digest);
        match File::open(&p) {
            Ok(f) => Ok(f),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(ContentError::NotFound(digest.clone()).into())
            }
            Err(e) => Err(io_err("open", &p)(e).into()),
        }
    }

    /// Read a whole (small) blob: manifests and configs.
    pub fn read_bytes(&self, digest: &Digest) -> Result<Vec<u8>> {
        let p = self.path(digest);
        match std::fs::read(&p) {
            Ok(b) => Ok(b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(ContentError::NotFound(digest.clone()).into())
            }
            Err(e) => Err(io_err("read", &p)(e).into()),
        }
    }

    /// Remove a blob; `Ok(false)` if it was not there.
    pub fn remove(&self, digest: &Digest) -> Result<bool> {
        let p = self.path(digest);
        match std::fs::remove_file(&p) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_err("remove", &p)(e).into()),
        }
    }

    /// Every complete blob in the store (sorted).
    pub fn list(&self) -> Result<Vec<Digest>> {
        let mut out = Vec::new();
        for alg in ["sha256", "sha512"] {
            let dir = self.root.join(alg);
            let entries = match std::fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_err("list", &dir)(e).into()),
            };
            for entry in entries {
                let entry = entry.map_err(io_err("list", &dir))?;
                if let Some(name) = entry.file_name().to_str() {
                    if let Ok(d) = format!("{alg}:{name}").parse::<Digest>() {
                        out.push(d);
                    }
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// Store a small blob whose digest is known, verifying it.
    pub fn write_bytes(&self, digest: &Digest, data: &[u8]) -> Result<PathBuf> {
        if self.contains(digest) {
            return Ok(self.path(digest));
        }
        let mut ingest = self.begin(digest, Some(data.len() as u64))?;
        ingest.write(data)?;
        ingest.commit()
    }

    /// Store a small blob under its computed sha256 digest.
    pub fn put_bytes(&self, data: &[u8]) -> Result<Digest> {
        let digest = Digest::sha256_of(data);
        self.write_bytes(&digest, data)?;
        Ok(digest)
    }

    /// Start writing a blob. The temp file is `ingest/<hex>.<pid>.<random>`, private to
    /// this writer, so concurrent pulls of one blob never share a file.
    pub fn begin(&self, expected: &Digest, expected_size: Option<u64>) -> Result<Ingest> {
        let dir = self.ingest_dir();
        let prefix = format!("{}.{}.", expected.hex(), std::process::id());
        let tmp = tempfile::Builder::new()
            .prefix(&prefix)
            .rand_bytes(8)
            .tempfile_in(&dir)
            .map_err(io_err("create ingest file in", &dir))?;
        Ok(Ingest {
            store: self.clone(),
            tmp: Some(tmp),
            hasher: expected.hasher(),
            expected: expected.clone(),
            expected_size,
            written: 0,
        })
    }

    /// Take the ingest lock of `digest` if no other writer holds it. Held, this
    /// writer alone downloads the blob; the others wait for it (polling) and then find
    /// the blob committed.
    pub fn try_lock(&self, digest: &Digest) -> Result<Option<BlobLock>> {
        let path = self.ingest_dir().join(format!("{}.lock", digest.hex()));
        Ok(try_lock_file(&path)
            .map_err(io_err("lock", &path))?
            .map(|file| BlobLock { path, _file: file }))
    }

    /// Start writing a blob whose ingest lock we hold, continuing the partial download
    /// a dead process left for it (the bytes it has are hashed again; the caller asks
    /// for the rest with a Range request). Other dead partials of the digest go.
    pub fn begin_resumable(&self, lock: &BlobLock, expected_size: u64) -> Result<Ingest> {
        let digest_hex = lock
            .path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".lock"))
            .unwrap_or_default()
            .to_string();
        let expected: Digest =
            format!("sha256:{digest_hex}")
                .parse()
                .map_err(|_| ContentError::Io {
                    op: "lock",
                    path: lock.path.clone(),
                    source: std::io::Error::other("not a blob lock"),
                })?;
        let mut partials: Vec<(u64, PathBuf)> = self
            .partials()?
            .into_iter()
            .filter(|p| p.hex == digest_hex && !p.alive)
            .map(|p| (p.size, p.path))
            .collect();
        partials.sort();
        let best = partials.pop().filter(|(size, _)| *size <= expected_size);
        for (_, p) in &partials {
            let _ = std::fs::remove_file(p);
        }
        let Some((_, old)) = best else {
            return self.begin(&expected, Some(expected_size));
        };
        match self.adopt(&old, &expected, expected_size) {
            Ok(ingest) => Ok(ingest),
            Err(_) => {
                let _ = std::fs::remove_file(&old);
                self.begin(&expected, Some(expected_size))
            }
        }
    }

    /// Rename a dead writer's partial file to one of ours and hash what it holds.
    fn adopt(&self, old: &Path, expected: &Digest, expected_size: u64) -> Result<Ingest> {
        let dir = self.ingest_dir();
        let prefix = format!("{}.{}.", expected.hex(), std::process::id());
        let tmp = tempfile::Builder::new()
            .prefix(&prefix)
            .rand_bytes(8)
            .make_in(&dir, |new| {
                std::fs::rename(old, new)?;
                std::fs::OpenOptions::new().read(true).write(true).open(new)
            })
            .map_err(io_err("adopt partial download", old))?;
        let (file, path) = tmp.into_parts();
        let mut file = file;
        let mut hasher = expected.hasher();
        let mut written = 0u64;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = file.read(&mut buf).map_err(io_err("read", &path))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            written += n as u64;
        }
        Ok(Ingest {
            store: self.clone(),
            tmp: Some(tempfile::NamedTempFile::from_parts(file, path)),
            hasher,
            expected: expected.clone(),
            expected_size: Some(expected_size),
            written,
        })
    }

    /// The partial downloads in `ingest/` (`<hex>.<pid>.<random>`).
    fn partials(&self) -> Result<Vec<Partial>> {
        let dir = self.ingest_dir();
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err("list", &dir)(e).into()),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io_err("list", &dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".lock") {
                continue;
            }
            let mut parts = name.split('.');
            let hex = parts.next().unwrap_or_default().to_string();
            let pid = parts.next().and_then(|p| p.parse::<i32>().ok());
            let meta = entry.metadata().ok();
            out.push(Partial {
                hex,
                alive: pid.is_some_and(process_alive),
                size: meta.as_ref().map_or(0, |m| m.len()),
                modified: meta.and_then(|m| m.modified().ok()),
                path: entry.path(),
            });
        }
        Ok(out)
    }

    /// Remove ingest files whose writer process is gone (crash, kill -9), except those
    /// younger than `keep_younger_than` whose blob is not stored yet: a later pull of
    /// the same blob resumes them.
    /// A file whose digest is locked is being adopted and stays. Stale lock files go.
    pub fn gc_incomplete(&self, keep_younger_than: Option<Duration>) -> Result<Collected> {
        let mut collected = Collected::default();
        let now = SystemTime::now();
        for p in self.partials()? {
            if p.alive {
                continue;
            }
            let young = match (keep_younger_than, p.modified) {
                (Some(keep), Some(m)) => now.duration_since(m).unwrap_or_default() < keep,
                _ => false,
            };
            let committed = format!("sha256:{}", p.hex)
                .parse::<Digest>()
                .is_ok_and(|d| self.contains(&d));
            if young && p.size > 0 && !committed {
                continue;
            }
            let lock = match format!("sha256:{}", p.hex).parse::<Digest>().ok() {
                Some(d) => match self.try_lock(&d)? {
                    Some(l) => Some(l),
                    None => continue,
                },
                None => None,
            };
            match std::fs::remove_file(&p.path) {
                Ok(()) => {
                    collected.files += 1;
                    collected.bytes += p.size;
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err("remove", &p.path)(e).into()),
            }
            drop(lock);
        }
        self.remove_stale_locks()?;
        Ok(collected)
    }

    /// Lock files left by killed holders (a holder removes its own).
    fn remove_stale_locks(&self) -> Result<()> {
        let dir = self.ingest_dir();
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return Ok(());
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(hex) = name.strip_suffix(".lock") {
                if let Ok(d) = format!("sha256:{hex}").parse::<Digest>() {
                    // Taken and dropped: the file goes with it.
                    drop(self.try_lock(&d)?);
                }
            }
        }
        Ok(())
    }
}

/// What [`ContentStore::gc_incomplete`] removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Collected {
    pub files: usize,
    pub bytes: u64,
}

struct Partial {
    hex: String,
    alive: bool,
    size: u64,
    modified: Option<SystemTime>,
    path: PathBuf,
}

/// The ingest lock of one digest ([`ContentStore::try_lock`]); dropped, it is released.
#[derive(Debug)]
pub struct BlobLock {
    path: PathBuf,
    _file: File,
}

impl Drop for BlobLock {
    fn drop(&mut self) {
        // Removed while still held (the file closes after this): whoever waits on
        // this file then finds its path gone and locks the next file instead.
        let _ = std::fs::remove_file(&self.path);
    }
}

/// An exclusive flock on `path` without blocking: `None` when someone holds it. A
/// lock on a file its holder already removed does not count: try the new one.
pub(crate) fn try_lock_file(path: &Path) -> std::io::Result<Option<File>> {
    use rustix::fs::{flock, fstat, stat, FlockOperation};
    loop {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .mode(0o600)
            .open(path)?;
        match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(rustix::io::Errno::WOULDBLOCK) => return Ok(None),
            Err(e) => return Err(e.into()),
        }
        let held = fstat(&file)?;
        match stat(path) {
            Ok(now) if now.st_ino == held.st_ino && now.st_dev == held.st_dev => {
                return Ok(Some(file))
            }
            Ok(_) | Err(rustix::io::Errno::NOENT) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

fn process_alive(pid: i32) -> bool {
    match rustix::process::Pid::from_raw(pid) {
        None => false,
        Some(p) => match rustix::process::test_kill_process(p) {
            Ok(()) => true,
            Err(e) => e != rustix::io::Errno::SRCH,
        },
    }
}

/// One blob being written. Bytes are hashed as they are written; [`Ingest::commit`]
/// checks size and digest and renames the file into place. Dropped without commit,
/// the temp file is deleted.
pub struct Ingest {
    store: ContentStore,
    tmp: Option<tempfile::NamedTempFile>,
    hasher: Hasher,
    expected: Digest,
    expected_size: Option<u64>,
    written: u64,
}

impl std::fmt::Debug for Ingest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ingest")
            .field("expected", &self.expected)
            .field("written", &self.written)
            .finish()
    }
}

impl Ingest {
    pub fn digest(&self) -> &Digest {
        &self.expected
    }

    /// The temp file being written.
    pub fn temp_path(&self) -> &Path {
        self.tmp.as_ref().expect("ingest file present").path()
    }

    pub fn write(&mut self, data: &[u8]) -> Result<()> {
        let tmp = self.tmp.as_mut().expect("ingest file present");
        if let Some(limit) = self.expected_size {
            let after = self.written + data.len() as u64;
            if after > limit {
                return Err(ContentError::SizeMismatch {
                    blob: self.expected.clone(),
                    expected: limit,
                    actual: after,
                }
                .into());
            }
        }
        tmp.as_file_mut()
            .write_all(data)
            .map_err(io_err("write", tmp.path()))?;
        self.hasher.update(data);
        self.written += data.len() as u64;
        Ok(())
    }

    /// Bytes written so far (where a resumed download continues).
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Throw away what was written and start again from byte 0.
    pub fn reset(&mut self) -> Result<()> {
        let tmp = self.tmp.as_mut().expect("ingest file present");
        let path = tmp.path().to_path_buf();
        let f = tmp.as_file_mut();
        f.set_len(0).map_err(io_err("truncate", &path))?;
        std::io::Seek::seek(f, std::io::SeekFrom::Start(0)).map_err(io_err("seek", &path))?;
        self.hasher = self.expected.hasher();
        self.written = 0;
        Ok(())
    }

    /// Verify size and digest, fsync, and rename into `blobs/<alg>/<hex>`. If another
    /// writer committed the same blob first, ours is dropped and this succeeds.
    pub fn commit(mut self) -> Result<PathBuf> {
        let tmp = self.tmp.take().expect("ingest file present");
        if let Some(size) = self.expected_size {
            if size != self.written {
                return Err(ContentError::SizeMismatch {
                    blob: self.expected.clone(),
                    expected: size,
                    actual: self.written,
                }
                .into());
            }
        }
        let hasher = std::mem::replace(&mut self.hasher, self.expected.hasher());
        let actual = hasher.finish();
        if actual != self.expected {
            // `tmp` is dropped here, deleting the file.
            return Err(ContentError::DigestMismatch {
                expected: self.expected.clone(),
                actual,
            }
            .into());
        }
        let target = self.store.path(&self.expected);
        if target.is_file() {
            return Ok(target);
        }
        tmp.as_file()
            .sync_all()
            .map_err(io_err("fsync", tmp.path()))?;
        let parent = target
            .parent()
            .expect("blob path has a parent")
            .to_path_buf();
        std::fs::create_dir_all(&parent).map_err(io_err("create directory", &parent))?;
        let tmp_path = tmp.path().to_path_buf();
        tmp.persist(&target)
            .map_err(|e| io_err("rename into place", &tmp_path)(e.error))?;
        let dir = File::open(&parent).map_err(io_err("open", &parent))?;
        dir.sync_all().map_err(io_err("fsync", &parent))?;
        Ok(target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ImageError;

    fn store() -> (tempfile::TempDir, ContentStore) {
        let dir = tempfile::tempdir().unwrap();
        let s = ContentStore::open(&dir.path().join("blobs")).unwrap();
        (dir, s)
    }

    fn ingest_files(s: &ContentStore) -> usize {
        std::fs::read_dir(s.root().join("ingest")).unwrap().count()
    }

    #[test]
    fn write_read_list_remove() {
        let (_d, s) = store();
        let data = b"hello blob";
        let digest = s.put_bytes(data).unwrap();
        assert_eq!(digest, Digest::sha256_of(data));
        assert!(s.contains(&digest));
        assert_eq!(s.size(&digest).unwrap(), data.len() as u64);
        assert_eq!(s.read_bytes(&digest).unwrap(), data);
        assert_eq!(s.path(&digest), s.root().join("sha256").join(digest.hex()));
        assert_eq!(s.list().unwrap(), vec![digest.clone()]);
        assert!(s.remove(&digest).unwrap());
        assert!(!s.remove(&digest).unwrap());
        assert!(matches!(
            s.open_blob(&digest),
            Err(ImageError::Content(ContentError::NotFound(_)))
        ));
        assert_eq!(ingest_files(&s), 0);
    }

    #[test]
    fn streaming_ingest_commits_verified() {
        let (_d, s) = store();
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let digest = Digest::sha256_of(&data);
        let mut ing = s.begin(&digest, Some(data.len() as u64)).unwrap();
        for chunk in data.chunks(7000) {
            ing.write(chunk).unwrap();
        }
        assert_eq!(ing.written(), data.len() as u64);
        let p = ing.commit().unwrap();
        assert_eq!(std::fs::read(p).unwrap(), data);
        assert_eq!(ingest_files(&s), 0);
    }

    #[test]
    fn mismatch_names_both_digests_and_leaves_nothing() {
        let (_d, s) = store();
        let expected = Digest::sha256_of(b"right");
        let mut ing = s.begin(&expected, None).unwrap();
        ing.write(b"wrong").unwrap();
        let err = ing.commit().unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains(&expected.to_string()), "{msg}");
        assert!(
            msg.contains(&Digest::sha256_of(b"wrong").to_string()),
            "{msg}"
        );
        assert_eq!(err.kind(), ErrorKind::Internal);
        assert!(!s.contains(&expected));
        assert_eq!(ingest_files(&s), 0);

        let mut ing = s.begin(&expected, Some(3)).unwrap();
        assert!(ing.write(b"right").is_err());
        drop(ing);
        assert_eq!(ingest_files(&s), 0);
        assert!(s.write_bytes(&expected, b"wrong").is_err());
    }

    #[test]
    fn concurrent_writers_use_separate_files_and_both_succeed() {
        let (_d, s) = store();
        let data = b"same content";
        let digest = Digest::sha256_of(data);
        let mut a = s.begin(&digest, None).unwrap();
        let mut b = s.begin(&digest, None).unwrap();
        assert_ne!(a.temp_path(), b.temp_path());
        a.write(data).unwrap();
        b.write(data).unwrap();
        a.commit().unwrap();
        b.commit().unwrap();
        assert!(s.contains(&digest));
        assert_eq!(ingest_files(&s), 0);
    }

    #[test]
    fn reset_starts_over() {
        let (_d, s) = store();
        let digest = Digest::sha256_of(b"good");
        let mut ing = s.begin(&digest, Some(4)).unwrap();
        ing.write(b"ba").unwrap();
        ing.reset().unwrap();
        assert_eq!(ing.written(), 0);
        ing.write(b"good").unwrap();
        ing.commit().unwrap();
        assert_eq!(s.read_bytes(&digest).unwrap(), b"good");
    }

    #[test]
    fn gc_removes_only_dead_writers_files() {
        let (_d, s) = store();
        let digest = Digest::sha256_of(b"x");
        let live = s.begin(&digest, None).unwrap();
        // A pid that cannot exist (above pid_max's ceiling of 2^22).
        let dead =
            s.root()
                .join("ingest")
                .join(format!("{}.{}.abcdefgh", digest.hex(), 99_999_999));
        std::fs::write(&dead, b"partial").unwrap();
        let junk = s.root().join("ingest").join("garbage");
        std::fs::write(&junk, b"?").unwrap();
        assert_eq!(s.gc_incomplete(None).unwrap().files, 2);
        assert!(live.temp_path().exists());
        assert!(!dead.exists());
    }

    #[test]
    fn a_dead_writers_partial_is_adopted_and_completed() {
        let (_d, s) = store();
        let data: Vec<u8> = (0..50_000u32).map(|i| (i % 253) as u8).collect();
        let digest = Digest::sha256_of(&data);
        let dead =
            s.root()
                .join("ingest")
                .join(format!("{}.{}.abcdefgh", digest.hex(), 99_999_999));
        std::fs::write(&dead, &data[..20_000]).unwrap();
        // Young partials survive the collection at start-up.
        let kept = s.gc_incomplete(Some(Duration::from_secs(3600))).unwrap();
        assert_eq!(kept.files, 0);
        let lock = s.try_lock(&digest).unwrap().unwrap();
        assert!(s.try_lock(&digest).unwrap().is_none(), "lock is exclusive");
        let mut ing = s.begin_resumable(&lock, data.len() as u64).unwrap();
        assert_eq!(ing.written(), 20_000);
        assert!(!dead.exists());
        ing.write(&data[20_000..]).unwrap();
        ing.commit().unwrap();
        assert_eq!(s.read_bytes(&digest).unwrap(), data);
        drop(lock);
        assert_eq!(ingest_files(&s), 0, "lock file removed with the lock");
        assert!(s.try_lock(&digest).unwrap().is_some());
    }

    #[test]
    fn gc_counts_bytes_and_spares_locked_digests() {
        let (_d, s) = store();
        let digest = Digest::sha256_of(b"y");
        let dead =
            s.root()
                .join("ingest")
                .join(format!("{}.{}.abcdefgh", digest.hex(), 99_999_999));
        std::fs::write(&dead, vec![0u8; 1000]).unwrap();
        let lock = s.try_lock(&digest).unwrap().unwrap();
        assert_eq!(s.gc_incomplete(None).unwrap().files, 0);
        drop(lock);
        let c = s.gc_incomplete(None).unwrap();
        assert_eq!((c.files, c.bytes), (1, 1000));
    }
}
