//! The store of unpacked layers: `<store>/layers/<chain-id hex>/`, each written into a
//! temp dir `.tmp-<pid>-<random>` and renamed into place, so a directory under its
//! final name is always complete. Temp dirs left by a dead process (`kill -9` mid
//! pull) are recognised by their pid and removed by [`LayerStore::gc_incomplete`].
//! Processes unpacking the same layer at once take turns on a per-chain-id
//! [`LayerLock`] (an flock the kernel drops with its holder): the second finds the
//! layer committed and unpacks nothing.

use crate::error::StoreError;
use crate::fsutil::remove_tree;
use coracle_core::Digest;
use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

const TMP_PREFIX: &str = ".tmp-";
const LOCK_PREFIX: &str = ".lock-";

/// Unpacked layers under one directory (normally `<store root>/layers`).
#[derive(Debug, Clone)]
pub struct LayerStore {
    dir: PathBuf,
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StoreError + 'a {
    move |source| StoreError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

impl LayerStore {
    /// Opens the store at `dir` (the `layers` directory itself), creating it if needed.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(io_err("create directory", &dir))?;
        Ok(LayerStore { dir })
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the layer with this chain ID lives (whether or not it is there).
    pub fn path(&self, chain_id: &Digest) -> PathBuf {
        self.dir.join(chain_id.hex())
    }

    /// Whether the layer with this chain ID is complete in the store.
    pub fn contains(&self, chain_id: &Digest) -> bool {
        fs::symlink_metadata(self.path(chain_id)).is_ok_and(|m| m.is_dir())
    }

    /// Starts writing the layer `chain_id`: an empty temp dir to unpack into.
    pub fn begin(&self, chain_id: &Digest) -> Result<LayerWriter, StoreError> {
        let tmp = self.make_temp_dir("")?;
        // Layer roots are the container's `/`: 0755 as the image expects.
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o755))
            .map_err(io_err("chmod", &tmp))?;
        Ok(LayerWriter {
            tmp,
            dest: self.path(chain_id),
            done: false,
        })
    }

    fn make_temp_dir(&self, tag: &str) -> Result<PathBuf, StoreError> {
        let prefix = format!("{TMP_PREFIX}{}-{tag}", std::process::id());
        let dir = tempfile::Builder::new()
            .prefix(&prefix)
            .rand_bytes(12)
            .tempdir_in(&self.dir)
            .map_err(io_err("create temp dir in", &self.dir))?;
        Ok(dir.keep())
    }

    /// Removes a layer. Its directory is first renamed to a temp name, so a removal
    /// cut short leaves a temp dir for [`gc_incomplete`](Self::gc_incomplete), never a
    /// half-empty layer under its real name.
    pub fn remove(&self, chain_id: &Digest) -> Result<(), StoreError> {
        let path = self.path(chain_id);
        if !self.contains(chain_id) {
            return Err(StoreError::NotFound(chain_id.clone()));
        }
        let doomed = self.make_temp_dir("rm-")?;
        // Renaming a directory onto an empty one replaces it.
        match fs::rename(&path, &doomed) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let _ = fs::remove_dir(&doomed);
                return Err(StoreError::NotFound(chain_id.clone()));
            }
            Err(e) => {
                let _ = fs::remove_dir(&doomed);
                return Err(io_err("rename", &path)(e));
            }
        }
        remove_tree(&doomed).map_err(io_err("remove", &doomed))
    }

    /// The chain IDs of the complete layers in the store.
    pub fn list(&self) -> Result<Vec<Digest>, StoreError> {
        let mut out = Vec::new();
        for ent in fs::read_dir(&self.dir).map_err(io_err("read directory", &self.dir))? {
            let ent = ent.map_err(io_err("read directory", &self.dir))?;
            let Some(name) = ent.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if let Ok(d) = format!("sha256:{name}").parse::<Digest>() {
                if ent.file_type().is_ok_and(|t| t.is_dir()) {
                    out.push(d);
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// Takes the lock of layer `chain_id` if no other writer holds it: the holder
    /// alone unpacks the layer; others wait, then find it committed.
    pub fn try_lock(&self, chain_id: &Digest) -> Result<Option<LayerLock>, StoreError> {
        let path = self.dir.join(format!("{LOCK_PREFIX}{}", chain_id.hex()));
        Ok(try_lock_file(&path)
            .map_err(io_err("lock", &path))?
            .map(|file| LayerLock { path, _file: file }))
    }

    /// Removes temp dirs whose writing process is gone (kill(pid, 0) says ESRCH), and
    /// lock files a killed holder left. Returns how many dirs were removed and the
    /// bytes of file content they held.
    pub fn gc_incomplete(&self) -> Result<(usize, u64), StoreError> {
        let mut removed = (0, 0);
        for ent in fs::read_dir(&self.dir).map_err(io_err("read directory", &self.dir))? {
            let ent = ent.map_err(io_err("read directory", &self.dir))?;
            let name = ent.file_name();
            if let Some(hex) = name.to_str().and_then(|n| n.strip_prefix(LOCK_PREFIX)) {
                if let Ok(chain) = format!("sha256:{hex}").parse::<Digest>() {
                    // Taken and dropped: the file goes with it.
                    drop(self.try_lock(&chain)?);
                }
                continue;
            }
            let Some(pid) = name.to_str().and_then(temp_dir_pid) else {
                continue;
            };
            if pid_alive(pid) {
                continue;
            }
            let path = ent.path();
            let bytes = content_bytes(&path);
            remove_tree(&path).map_err(io_err("remove", &path))?;
            removed.0 += 1;
            removed.1 += bytes;
        }
        Ok(removed)
    }
}

/// Bytes of file content under `dir` (not following symlinks; unreadable parts
/// count as 0).
fn content_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            match entry.metadata() {
                Ok(m) if m.is_dir() => stack.push(entry.path()),
                Ok(m) if m.is_file() => total += m.len(),
                _ => {}
            }
        }
    }
    total
}

/// The lock of one layer ([`LayerStore::try_lock`]); dropped, it is released.
#[derive(Debug)]
pub struct LayerLock {
    path: PathBuf,
    _file: fs::File,
}

impl Drop for LayerLock {
    fn drop(&mut self) {
        // Removed while still held (the file closes after this): a waiter that then
        // gets the lock on it sees the path gone and locks the next file instead.
        let _ = fs::remove_file(&self.path);
    }
}

/// An exclusive flock on `path` without blocking: `None` when someone holds it. A
/// lock on a file its holder already removed does not count: try the new one.
fn try_lock_file(path: &Path) -> io::Result<Option<fs::File>> {
    use rustix::fs::{flock, fstat, stat, FlockOperation};
    use std::os::unix::fs::OpenOptionsExt;
    loop {
        let file = fs::OpenOptions::new()
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

/// The pid in a temp dir name `.tmp-<pid>-<random>`.
fn temp_dir_pid(name: &str) -> Option<i32> {
    let rest = name.strip_prefix(TMP_PREFIX)?;
    let (pid, _) = rest.split_once('-')?;
    pid.parse().ok().filter(|&p| p > 0)
}

fn pid_alive(pid: i32) -> bool {
    if pid == std::process::id() as i32 {
        return true;
    }
    let Some(pid) = rustix::process::Pid::from_raw(pid) else {
        return false;
    };
    // EPERM: alive, just not ours to signal.
    !matches!(
        rustix::process::test_kill_process(pid),
        Err(rustix::io::Errno::SRCH)
    )
}

/// A layer being written. Unpack into [`dir`](Self::dir), then [`commit`](Self::commit);
/// dropped uncommitted, the temp dir is removed.
#[derive(Debug)]
pub struct LayerWriter {
    tmp: PathBuf,
    dest: PathBuf,
    done: bool,
}

impl LayerWriter {
    /// The temp dir to unpack into.
    pub fn dir(&self) -> &Path {
        &self.tmp
    }

    /// Moves the layer into place and returns its final path. If another process
    /// committed the same layer first, keeps theirs, drops ours, and succeeds.
    pub fn commit(mut self) -> Result<PathBuf, StoreError> {
        self.done = true;
        match rename_noreplace(&self.tmp, &self.dest) {
            Ok(()) => Ok(self.dest.clone()),
            Err(e)
                if e.kind() == io::ErrorKind::AlreadyExists
                    || e.raw_os_error() == Some(rustix::io::Errno::NOTEMPTY.raw_os_error()) =>
            {
                remove_tree(&self.tmp).map_err(io_err("remove", &self.tmp))?;
                Ok(self.dest.clone())
            }
            Err(e) => {
                self.done = false; // let Drop clean up
                Err(io_err("rename", &self.tmp)(e))
            }
        }
    }
}

impl Drop for LayerWriter {
    fn drop(&mut self) {
        if !self.done {
            let _ = remove_tree(&self.tmp);
        }
    }
}

#[cfg(target_os = "linux")]
fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    use rustix::fs::{renameat_with, RenameFlags, CWD};
    renameat_with(CWD, from, CWD, to, RenameFlags::NOREPLACE).map_err(Into::into)
}

#[cfg(not(target_os = "linux"))]
fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    // rename(2) replaces an empty directory and fails on a non-empty one (ENOTEMPTY);
    // both leave one complete layer in place, which is all commit needs.
    fs::rename(from, to)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn digest(n: u8) -> Digest {
        Digest::sha256_of(&[n])
    }

    #[test]
    fn begin_commit_contains_list_remove() {
        let tmp = tempfile::tempdir().unwrap();
        let store = LayerStore::open(tmp.path().join("layers")).unwrap();
        let d = digest(1);
        assert!(!store.contains(&d));
        let w = store.begin(&d).unwrap();
        let name = w.dir().file_name().unwrap().to_str().unwrap().to_owned();
        assert!(
            name.starts_with(&format!(".tmp-{}-", std::process::id())),
            "{name}"
        );
        assert_eq!(
            fs::metadata(w.dir()).unwrap().permissions().mode() & 0o7777,
            0o755
        );
        fs::write(w.dir().join("f"), b"hello").unwrap();
        assert!(!store.contains(&d), "visible before commit");
        let path = w.commit().unwrap();
        assert_eq!(path, tmp.path().join("layers").join(d.hex()));
        assert_eq!(store.path(&d), path);
        assert!(store.contains(&d));
        assert_eq!(fs::read(path.join("f")).unwrap(), b"hello");
        assert_eq!(store.list().unwrap(), vec![d.clone()]);
        // Only the committed layer is left: no temp dirs.
        assert_eq!(fs::read_dir(store.dir()).unwrap().count(), 1);

        store.remove(&d).unwrap();
        assert!(!store.contains(&d));
        assert!(store.list().unwrap().is_empty());
        assert_eq!(fs::read_dir(store.dir()).unwrap().count(), 0);
        let err = store.remove(&d).unwrap_err();
        assert_eq!(err.kind(), coracle_core::ErrorKind::NotFound);
    }

    #[test]
    fn dropping_an_uncommitted_writer_removes_its_temp_dir() {
        let tmp = tempfile::tempdir().unwrap();
        let store = LayerStore::open(tmp.path()).unwrap();
        let w = store.begin(&digest(2)).unwrap();
        let dir = w.dir().to_path_buf();
        fs::create_dir_all(dir.join("a/b")).unwrap();
        fs::set_permissions(dir.join("a"), fs::Permissions::from_mode(0o500)).unwrap();
        drop(w);
        assert!(!dir.exists());
        assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 0);
    }

    #[test]
    fn concurrent_commit_of_the_same_layer_keeps_the_first() {
        let tmp = tempfile::tempdir().unwrap();
        let store = LayerStore::open(tmp.path()).unwrap();
        let d = digest(3);
        let a = store.begin(&d).unwrap();
        let b = store.begin(&d).unwrap();
        assert_ne!(a.dir(), b.dir());
        fs::write(a.dir().join("who"), b"a").unwrap();
        fs::write(b.dir().join("who"), b"b").unwrap();
        let pa = a.commit().unwrap();
        let pb = b.commit().unwrap();
        assert_eq!(pa, pb);
        assert_eq!(fs::read(pa.join("who")).unwrap(), b"a");
        assert_eq!(store.list().unwrap(), vec![d]);
        assert_eq!(
            fs::read_dir(tmp.path()).unwrap().count(),
            1,
            "loser's temp dir left"
        );
    }

    #[test]
    fn concurrent_commit_from_threads() {
        let tmp = tempfile::tempdir().unwrap();
        let store = LayerStore::open(tmp.path()).unwrap();
        let d = digest(4);
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let store = store.clone();
                let d = d.clone();
                std::thread::spawn(move || {
                    let w = store.begin(&d).unwrap();
                    fs::write(w.dir().join("n"), [i]).unwrap();
                    w.commit().unwrap()
                })
            })
            .collect();
        for h in handles {
            assert_eq!(h.join().unwrap(), store.path(&d));
        }
        assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 1);
        assert_eq!(fs::read(store.path(&d).join("n")).unwrap().len(), 1);
    }

    #[test]
    fn gc_removes_temp_dirs_of_dead_processes_only() {
        let tmp = tempfile::tempdir().unwrap();
        let store = LayerStore::open(tmp.path()).unwrap();
        // A pid that has certainly exited (and was reaped).
        let mut child = Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let dead_dir = tmp.path().join(format!(".tmp-{dead}-abcdef"));
        fs::create_dir_all(dead_dir.join("usr/bin")).unwrap();
        fs::write(dead_dir.join("usr/bin/x"), b"x").unwrap();
        fs::set_permissions(dead_dir.join("usr"), fs::Permissions::from_mode(0o500)).unwrap();
        // Live writers: ours, and pid 1's.
        let ours = store.begin(&digest(5)).unwrap();
        let init_dir = tmp.path().join(".tmp-1-zzzz");
        fs::create_dir(&init_dir).unwrap();
        // Not temp dirs at all.
        let done = store.begin(&digest(6)).unwrap().commit().unwrap();
        fs::create_dir(tmp.path().join(".tmp-notapid-x")).unwrap();

        assert_eq!(store.gc_incomplete().unwrap(), (1, 1));
        assert!(!dead_dir.exists());
        assert!(ours.dir().exists());
        assert!(init_dir.exists());
        assert!(done.exists());
        assert!(tmp.path().join(".tmp-notapid-x").exists());
    }

    #[test]
    fn remove_handles_read_only_trees() {
        let tmp = tempfile::tempdir().unwrap();
        let store = LayerStore::open(tmp.path().join("layers")).unwrap();
        let outside = tmp.path().join("outside");
        fs::create_dir(&outside).unwrap();
        fs::write(outside.join("keep"), b"k").unwrap();
        let d = digest(7);
        let w = store.begin(&d).unwrap();
        fs::create_dir_all(w.dir().join("a/b/c")).unwrap();
        fs::write(w.dir().join("a/b/c/f"), b"f").unwrap();
        std::os::unix::fs::symlink(&outside, w.dir().join("a/b/out")).unwrap();
        for (p, m) in [("a/b/c", 0o500), ("a/b", 0o500), ("a", 0o000)] {
            fs::set_permissions(w.dir().join(p), fs::Permissions::from_mode(m)).unwrap();
        }
        w.commit().unwrap();
        store.remove(&d).unwrap();
        assert!(!store.contains(&d));
        assert_eq!(fs::read_dir(store.dir()).unwrap().count(), 0);
        assert_eq!(fs::read(outside.join("keep")).unwrap(), b"k");
    }

    #[test]
    fn layer_lock_is_exclusive_and_leaves_no_file() {
        let tmp = tempfile::tempdir().unwrap();
        let store = LayerStore::open(tmp.path()).unwrap();
        let d = digest(8);
        let lock = store.try_lock(&d).unwrap().unwrap();
        assert!(store.try_lock(&d).unwrap().is_none());
        assert!(store.try_lock(&digest(9)).unwrap().is_some());
        assert!(store.list().unwrap().is_empty(), "a lock is not a layer");
        drop(lock);
        assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 0);
        assert!(store.try_lock(&d).unwrap().is_some());
    }

    #[test]
    fn temp_dir_names() {
        assert_eq!(temp_dir_pid(".tmp-123-abc"), Some(123));
        assert_eq!(temp_dir_pid(".tmp-123-rm-abc"), Some(123));
        assert_eq!(temp_dir_pid(".tmp-0-abc"), None);
        assert_eq!(temp_dir_pid(".tmp-x-abc"), None);
        assert_eq!(temp_dir_pid("abc"), None);
    }
}
